"""A file's stamp: what changes when it is written, replaced or removed (through a symlink too)."""

from __future__ import annotations

from pathlib import Path

Stamp = tuple[tuple[int, int, int] | None, ...]


def stamp(paths: tuple[Path, ...]) -> Stamp:
    """What changes when a login is written or removed (through a symlink too) or config.toml is edited."""
    found: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            found.append(None)
        else:
            found.append((info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(found)
