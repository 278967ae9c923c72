"""Shared fixtures: the fake model provider and a gateway running the real Codex against it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.provider import FakeProvider
from tests.harness import RunningGateway, run_gateway, scratch_root, write_codex_home
from tests.redis_server import RedisServer

if not os.environ.get("PYTEST_DEBUG_TEMPROOT"):  # pytest's own variable for the root of its temp folders
    os.environ["PYTEST_DEBUG_TEMPROOT"] = str(scratch_root())


@pytest.fixture(scope="session")
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def codex_home(provider: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_codex_home(tmp_path_factory.mktemp("codex-home"), provider.base_url)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workdir")


ENGINES = ("app-server", "exec")


@pytest.fixture(scope="session", params=ENGINES)
def gateway(
    request: pytest.FixtureRequest, codex_home: Path, workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """One gateway per engine for the tests that need no special settings: each such test runs on both."""
    log = tmp_path_factory.mktemp("logs") / f"gateway-{request.param}.log"
    with run_gateway(codex_home, workdir, log, CODEX_TIMEOUT="20", CODEX_ENGINE=request.param) as running:
        yield running


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """For tests that start their own gateway: run them on both engines (`start_gateway(CODEX_ENGINE=engine)`)."""
    return request.param


@pytest.fixture
def start_gateway(provider: FakeProvider, workdir: Path, tmp_path: Path) -> Iterator[object]:
    """Start a gateway with its own CODEX_HOME and settings: `start_gateway(CODEX_TIMEOUT="2")`."""
    stack = []

    def start(codex_config: dict | None = None, **settings: str) -> RunningGateway:
        home = write_codex_home(tmp_path / f"home{len(stack)}", provider.base_url, **(codex_config or {}))
        manager = run_gateway(home, workdir, tmp_path / f"gateway{len(stack)}.log", **settings)
        stack.append(manager)
        return manager.__enter__()

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real Redis for the tests that share it; a test that stops or restarts Redis starts its own."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
