"""The gateway's own AGENTS.md read (app/policy/project_docs.py) on a real filesystem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.engines.app_server.translate import gateway_reads_project_doc, thread_params
from app.policy.project_docs import instructions_message, read_project_doc
from app.turn import Message, RunPolicy, Turn


def test_the_override_wins_and_the_read_is_bounded(tmp_path: Path) -> None:
    assert read_project_doc(tmp_path, ()) is None
    (tmp_path / "AGENTS.md").write_text("plain\n")
    assert read_project_doc(tmp_path, ()) == "plain\n"
    (tmp_path / "AGENTS.override.md").write_text("override\n")
    assert read_project_doc(tmp_path, ()) == "override\n"
    (tmp_path / "AGENTS.override.md").write_text("  \n")  # blank: the next name is used, as Codex does
    assert read_project_doc(tmp_path, ()) == "plain\n"
    (tmp_path / "AGENTS.md").write_bytes(b"a" * 40_000)
    (tmp_path / "AGENTS.override.md").unlink()
    assert read_project_doc(tmp_path, ()) == "a" * 32 * 1024


def test_a_doc_that_resolves_outside_or_into_a_denied_path_is_never_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work, secret = tmp_path / "work", tmp_path / "home" / "auth.json"
    work.mkdir()
    secret.parent.mkdir()
    secret.write_text("sk-secret")
    (work / "AGENTS.md").symlink_to(secret)
    assert read_project_doc(work, (str(secret.parent),)) is None
    (work / "AGENTS.md").unlink()
    inner = work / "denied"
    inner.mkdir()
    (inner / "notes.md").write_text("denied notes")
    (work / "AGENTS.md").symlink_to(inner / "notes.md")  # inside the workspace, but denied
    assert read_project_doc(work, (str(inner),)) is None
    (work / "AGENTS.md").unlink()
    os.link(secret, work / "AGENTS.md")  # a hard link names the secret from inside
    assert read_project_doc(work, ()) is None
    (work / "AGENTS.md").unlink()
    os.mkfifo(work / "AGENTS.md")  # would block a plain open
    assert read_project_doc(work, ()) is None
    (work / "AGENTS.md").unlink()
    (work / "AGENTS.md").symlink_to("docs/real.md")  # a link inside the workspace is followed
    (work / "docs").mkdir()
    (work / "docs" / "real.md").write_text("real\n")
    assert read_project_doc(work, ()) == "real\n"
    skipped = [r.getMessage() for r in caplog.records if "AGENTS.md skipped" in r.getMessage()]
    assert len(skipped) == 4 and not any("sk-secret" in line or "denied notes" in line for line in skipped)


def test_the_doc_is_wrapped_as_codex_does() -> None:
    assert instructions_message(Path("/w"), "be kind\n") == {
        "type": "message",
        "role": "user",
        "content": [
            {
                "type": "input_text",
                "text": "# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\nbe kind\n\n</INSTRUCTIONS>",
            }
        ],
    }


@pytest.mark.parametrize(("mode", "sandbox", "gateway_reads"), [
    ("agent", "read-only", True), ("agent", "workspace-write", True),
    ("agent", "danger-full-access", False), ("chat", "read-only", False),
])  # fmt: skip
def test_codex_discovery_is_off_exactly_when_the_gateway_reads(mode: str, sandbox: str, gateway_reads: bool) -> None:
    turn = Turn("m", (Message("user", "q"),), RunPolicy(sandbox, "high", False, Path("/w"), mode=mode))
    assert gateway_reads_project_doc(turn) is gateway_reads
    assert ("project_doc_max_bytes" in thread_params(turn)["config"]) is gateway_reads
