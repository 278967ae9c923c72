"""Everything app/ imports is installed by requirements.txt alone (what `make run` and the image install).

The dev environment has more (openai, respx, pyyaml, ...), so a module that only it provides works in `make test`
and fails for a user. This reads every import in app/ and follows requirements.txt through the installed
packages' own requirements (extras only where a line asks for them).
"""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.harness import REPO


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file, following `-r other.txt`."""
    lines: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            lines += requirement_lines(path.parent / line.split(maxsplit=1)[1])
        elif line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    """Whether a dependency is installed here, given the extras its parent was asked for."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras or {""})


def provided_distributions(requirements: Path) -> set[str]:
    """The distributions that installing `requirements` brings in (markers evaluated for this interpreter)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(line) for line in requirement_lines(requirements)]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(canonicalize_name(e) for e in requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(key[0]) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [dependency for dependency in map(Requirement, requires) if _applies(dependency, key[1])]
    return {name for name, _ in seen}


def imported_top_modules(root: Path) -> dict[str, str]:
    """Top-level module name → the first file under `root` that imports it (absolute imports only)."""
    found: dict[str, str] = {}
    for file in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(file.relative_to(root.parent)))
    return found


def unprovided_imports(root: Path, requirements: Path, own_package: str) -> list[str]:
    """One line per third-party module imported under `root` that `requirements` does not install."""
    provided = provided_distributions(requirements)
    owners = metadata.packages_distributions()
    problems = []
    for module, where in sorted(imported_top_modules(root).items()):
        if module in sys.stdlib_module_names or module == own_package or module == "__future__":
            continue
        distributions = {canonicalize_name(d) for d in owners.get(module, [])}
        if not distributions:
            problems.append(f"{module} (imported in {where}) is not installed at all")
        elif not distributions & provided:
            problems.append(
                f"{module} (imported in {where}) comes from {', '.join(sorted(distributions))}, "
                f"which {requirements.name} does not install"
            )
    return problems


def test_requirements_txt_installs_everything_app_imports() -> None:
    assert unprovided_imports(REPO / "app", REPO / "requirements.txt", "app") == []


def test_a_dev_only_import_is_reported(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("import json\nimport fastapi\nfrom pkg import mod\n\ndef f():\n    import respx\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastapi==0.165.0  # the web framework\n")
    assert unprovided_imports(package, requirements, "pkg") == [
        "respx (imported in pkg/mod.py) comes from respx, which requirements.txt does not install"
    ]


def test_a_transitive_dependency_counts_and_a_dev_file_does_not_leak_in(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("import starlette\nimport anyio\nimport yaml\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fastapi==0.165.0\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\npyyaml\n")
    assert unprovided_imports(package, requirements, "pkg") == [
        "yaml (imported in pkg/mod.py) comes from pyyaml, which requirements.txt does not install"
    ]
    assert "pyyaml" in provided_distributions(tmp_path / "requirements-dev.txt")
