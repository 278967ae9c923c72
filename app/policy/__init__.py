"""What a turn may do and see: the confinement of Codex for a key holder. Every module here decides from settings
and checked request values only.

- run_policy.py: `x_codex`, the server's ceilings, and the RunPolicy of each request (efforts.py: an effort or
  verbosity as the model can take it)
- permissions.py: the permission profile of a turn and the paths no sandboxed command may read
- worker_seal.py: app-server workers in namespaces that hide those paths once per worker (no per-turn profile),
  with no secret in their reach
- workspaces.py: one folder per API key; project_docs.py: AGENTS.md read by the gateway, inside the workspace only
- layout.py: the startup check that Codex's sandbox cannot write what configures it; paths.py: `inside`
"""

from app.policy.paths import inside
from app.policy.permissions import SandboxLayout
from app.policy.run_policy import XCodex, parse_x_codex, resolve_policy

__all__ = ["SandboxLayout", "XCodex", "inside", "parse_x_codex", "resolve_policy"]
