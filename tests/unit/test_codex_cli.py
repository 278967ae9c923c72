"""Which Codex runs: the pinned one unless CODEX_PATH names another; any other is named as untested."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.codex.binary import PINNED_CODEX, codex_note, is_tested, locate_codex, pinned_version, probe_version
from app.config import Settings

OTHER_VERSION = "0.120.0"


@pytest.fixture
def other_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `codex` of another version first on PATH, as a globally installed Codex is."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "codex"
    fake.write_text(f"#!/bin/sh\necho 'codex-cli {OTHER_VERSION}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CODEX_PATH", raising=False)
    return fake


def test_the_pinned_version_is_the_one_package_json_pins() -> None:
    assert pinned_version() == "0.169.0"


def test_the_pinned_codex_wins_over_one_on_path(other_codex: Path) -> None:
    located = locate_codex(Settings(_env_file=None))
    assert located.source == "pinned" and located.path != other_codex
    binary = probe_version(located, dict(os.environ))
    assert binary.version == pinned_version() and is_tested(binary) and codex_note(binary) == ""


def test_codex_on_path_is_only_a_fallback_and_named_untested(other_codex: Path, tmp_path: Path) -> None:
    located = locate_codex(Settings(_env_file=None), pinned=tmp_path / "no-node-modules" / "codex")
    assert located.source == "PATH" and located.path == other_codex
    binary = probe_version(located, dict(os.environ))
    note = codex_note(binary)
    assert not is_tested(binary)
    assert f"Codex {OTHER_VERSION} at {other_codex} runs from PATH" in note
    assert "not the tested Codex 0.169.0" in note and "make install" in note


def test_codex_path_of_another_version_is_named_untested(other_codex: Path) -> None:
    binary = probe_version(locate_codex(Settings(_env_file=None, codex_path=str(other_codex))), dict(os.environ))
    assert binary.source == "CODEX_PATH" and binary.version == OTHER_VERSION
    assert "from CODEX_PATH: not the tested Codex 0.169.0" in codex_note(binary)


def test_codex_path_of_the_pinned_version_is_quiet() -> None:
    binary = probe_version(locate_codex(Settings(_env_file=None, codex_path=str(PINNED_CODEX))), dict(os.environ))
    assert binary.source == "CODEX_PATH" and is_tested(binary) and codex_note(binary) == ""


def test_without_a_pin_to_compare_nothing_is_called_untested(
    other_codex: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("app.codex.binary.REPO_ROOT", tmp_path)  # no package.json
    binary = probe_version(locate_codex(Settings(_env_file=None, codex_path=str(other_codex))), dict(os.environ))
    assert pinned_version() == "" and is_tested(binary) and codex_note(binary) == ""
