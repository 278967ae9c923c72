"""Command limits: which cgroup files carry which limit (app/codex/command_limits.py)."""

from __future__ import annotations

from app.codex.command_limits import Limits, own_cgroups
from app.config import Settings


def test_limits_as_cgroup_files() -> None:
    limits = Limits.of(Settings(_env_file=None, codex_command_max_memory_mb=600, codex_command_max_cpus=0.5))
    assert limits.files("pids", v2=True) == {"pids.max": "512"}
    assert limits.files("memory", v2=True) == {"memory.max": str(600 << 20)}
    assert limits.files("memory", v2=False) == {"memory.limit_in_bytes": str(600 << 20)}
    assert limits.files("cpu", v2=True) == {"cpu.max": "50000 100000"}
    assert limits.files("cpu", v2=False) == {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"}
    off = Limits(0, 0, 0)
    assert not any(off.files(c, v2) for c in ("pids", "memory", "cpu") for v2 in (True, False))


def test_own_cgroups_reads_both_hierarchies() -> None:
    text = "12:pids:/a\n4:cpu,cpuacct:/b\n1:name=systemd:/c\n0::/d\n"
    assert own_cgroups(text) == {"pids": "/a", "cpu": "/b", "cpuacct": "/b", "name=systemd": "/c", "": "/d"}
