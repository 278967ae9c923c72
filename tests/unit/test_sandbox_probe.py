"""The sandbox probe's verdict names the cause Codex reported, and only the fix for that cause."""

from __future__ import annotations

from app.codex.sandbox_probe import HOME_FIX, LEAK_FIX, NAMESPACES_FIX, UNKNOWN_FIX, judge

# What Codex 0.169 printed for the probe on a fresh machine (no ~/.codex) with RUST_BACKTRACE=1 in the environment
MISSING_HOME = """WARNING: proceeding, even though we could not create PATH aliases: CODEX_HOME points to \
"/home/me/.codex", but that path does not exist
Error: CODEX_HOME points to "/home/me/.codex", but that path does not exist

Stack backtrace:
   0: <unknown>
   1: <unknown>
   9: <unknown>
  10: <unknown>
"""
NO_NAMESPACES = "bwrap: No permissions to create a new namespace, likely because the kernel does not allow it\n"


def test_a_missing_codex_home_is_named_not_bubblewrap() -> None:
    status = judge(1, "", MISSING_HOME, wrote=False)
    assert not status.works and status.fix == HOME_FIX
    assert 'CODEX_HOME points to "/home/me/.codex", but that path does not exist' in status.detail
    assert "<unknown>" not in status.reason() and "bubblewrap" not in status.reason()


def test_bubblewrap_without_namespaces_names_its_fix() -> None:
    status = judge(1, "", "WARNING: something\n" + NO_NAMESPACES, wrote=False)
    assert status.fix == NAMESPACES_FIX and "bwrap: No permissions" in status.detail


def test_an_unknown_cause_is_said_to_be_unknown() -> None:
    status = judge(1, "", "Error: something nobody expected\n\nStack backtrace:\n   0: <unknown>\n", wrote=False)
    assert status.fix == UNKNOWN_FIX and "something nobody expected" in status.detail
    assert "not known" in status.reason() and "bubblewrap" not in status.reason()
    silent = judge(101, "", "", wrote=False)
    assert silent.fix == UNKNOWN_FIX and "exit status 101" in silent.detail


def test_a_working_sandbox_and_a_write_that_went_through() -> None:
    assert judge(0, "sandbox-probe-ran\n", "", wrote=False).works
    leaked = judge(0, "sandbox-probe-ran\nsandbox-probe-wrote\n", "", wrote=True)
    assert not leaked.works and "went through" in leaked.detail and leaked.fix == LEAK_FIX


def test_a_permission_error_elsewhere_is_not_blamed_on_bubblewrap() -> None:
    status = judge(1, "", "Error: failed to open /home/me/.codex/log: Operation not permitted (os error 1)\n", False)
    assert status.fix == UNKNOWN_FIX and "Operation not permitted" in status.detail
