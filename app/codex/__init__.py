"""Codex itself, as the gateway finds, prepares and asks it; no request passes through here.

- binary.py: the Codex binary, its version and process groups; env.py: the environment Codex runs with
- home.py: CODEX_HOME (profile overrides or the isolated home); provider.py: which model provider Codex uses
- catalog.py: the models (`codex debug models`) and effort aliases; login.py: whether Codex is logged in
- login_handover.py: the login a sealed app-server worker gets in memory; file_stamp.py: when a file has changed
- sandbox_probe.py: whether Codex's sandbox works here; reaper.py: what a killed gateway left running
- command_limits.py: a cgroup per Codex process; plan_limits.py, plan_limits_shared.py: the ChatGPT plan's limits
"""

from app.codex.binary import CodexBinary, locate_codex
from app.codex.catalog import Catalog, ModelInfo
from app.codex.plan_limits import PlanLimits
from app.codex.provider import ProviderResolver

__all__ = ["Catalog", "CodexBinary", "ModelInfo", "PlanLimits", "ProviderResolver", "locate_codex"]
