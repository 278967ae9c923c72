"""The layers of app/: nothing below the HTTP layer imports it (app/api, app/middleware, the app's wiring) or an HTTP
framework. The engines, Codex, policy, images, the store, the executor and the turn model know no request."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
# The HTTP layer: endpoints and adapters, middlewares, the app's wiring, the gateway's per-request dependencies (API
# keys), metrics of requests, and background responses (the Responses API's, rendered by its builder); above it the
# commands (`python -m app serve|doctor|config`).
HTTP_LAYER = ("api", "middleware", "background", "main", "gateway", "auth", "metrics", "__main__", "cli", "effective")
HTTP_MODULES = tuple(f"app.{name}" for name in HTTP_LAYER)
HTTP_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(APP.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def lower_modules() -> list[Path]:
    return [
        path
        for path in sorted(APP.rglob("*.py"))
        if path.relative_to(APP).parts[0].removesuffix(".py") not in HTTP_LAYER
    ]


def test_no_layer_below_the_http_layer_imports_it() -> None:
    upward = [
        f"{_module(path)} imports {name}"
        for path in lower_modules()
        for name in _imports(path)
        if _is_under(name, HTTP_MODULES) or _is_under(name, HTTP_FRAMEWORKS)
    ]
    assert upward == []


def test_the_check_sees_the_lower_layers() -> None:
    """The walk finds the packages it guards (a moved folder must not slip out of the check)."""
    seen = {path.relative_to(APP).parts[0] for path in lower_modules()}
    assert {"codex", "engines", "policy", "images", "store", "executor.py", "turn.py", "errors.py"} <= seen


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from app.api.turn_start import admit\nimport fastapi\nfrom . import sibling\n")
    found = [name for name in _imports(module) if _is_under(name, HTTP_MODULES) or _is_under(name, HTTP_FRAMEWORKS)]
    assert found == ["app.api.turn_start", "app.api.turn_start.admit", "fastapi"]
