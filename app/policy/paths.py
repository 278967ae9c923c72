"""Whether a path lies inside another, as the filesystem resolves both (symlinks followed): the one check the
confinement modules share. A link inside a root that points out of it is outside."""

from __future__ import annotations

import os
from pathlib import Path


def inside(path: Path, root: Path) -> bool:
    """`path` is `root` or lies under it, both resolved (os.path.realpath: a missing tail is kept as written)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
