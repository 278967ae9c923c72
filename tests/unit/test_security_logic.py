"""Pure logic of the issue 13 controls: URL reading, deny lists, layout checks, hosts, image and input bounds."""

from __future__ import annotations

import base64
import logging
import os
import tomllib
from pathlib import Path

import pytest

from app.api.turn_start import MAX_TURN_INPUT_BYTES, check_input_size
from app.codex.provider import is_loopback_url
from app.config import ConfigError, Settings
from app.engines.exec import toml_value
from app.errors import ApiError
from app.images import ImageFetcher, ImageLimits, ImageRef, MessageDraft, materialize
from app.middleware.hosts import LOOPBACK_NAMES, allowed_hosts, host_allowed, host_name
from app.policy import layout
from app.policy.permissions import SandboxLayout, deny_except, outermost, permission_profile
from app.policy.run_policy import resolve_cwd
from app.policy.workspaces import folder_name, user_workspace
from app.turn import Message

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://localhost:11434/v1", True),
        ("http://[::1]:1234/v1", True),
        ("http://127.0.0.2/v1", True),
        ("http://remote\\@127.0.0.1:8080/v1", False),  # finding 7: WHATWG (Codex) sends this to `remote`
        ("http://0.0.0.0:1\\@127.0.0.1:1/v1", False),
        ("http://user@127.0.0.1/v1", False),
        ("http://user:pw@127.0.0.1/v1", False),
        ("http:\\\\127.0.0.1/v1", False),
        ("http://127.0.0.1\t.evil.example/v1", False),
        (" http://127.0.0.1/v1", False),
        ("http://127.0.0.1%2e/v1", False),
        ("http://0x7f.1/v1", False),  # parsers disagree on the host: refused, not guessed
        ("http://localhost./v1", False),
        ("https://api.openai.com/v1", False),
        ("ftp://127.0.0.1/", False),
        ("not a url", False),
    ],
)
def test_local_only_needs_both_parsers_to_agree_on_a_loopback_host(url: str, local: bool) -> None:
    assert is_loopback_url(url) is local


def test_deny_except_keeps_what_must_stay_readable(tmp_path: Path) -> None:
    for name in ("app", "node_modules/@openai/codex", "workspace/a", ".env"):
        (tmp_path / name).mkdir(parents=True)
    keep = [tmp_path / "node_modules", tmp_path / "workspace"]
    assert deny_except(tmp_path, keep) == [tmp_path / ".env", tmp_path / "app"]
    assert deny_except(tmp_path / "app", keep) == [tmp_path / "app"]
    assert deny_except(tmp_path, [tmp_path]) == []
    assert deny_except(tmp_path / "workspace", [tmp_path / "workspace" / "a"]) == []
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "app" / "venv").symlink_to(tmp_path / "elsewhere")  # a link is denied by its target
    (tmp_path / "app" / "dangling").symlink_to(tmp_path / "gone")
    assert deny_except(tmp_path / "app", [tmp_path / "app" / "keep"]) == [tmp_path / "elsewhere"]


def test_nested_denied_paths_collapse_to_the_outermost() -> None:
    paths = [Path("/a/b/c"), Path("/a/b"), Path("/x"), Path("/a/b"), Path("/a/bc")]
    assert outermost(paths) == [Path("/x"), Path("/a/b"), Path("/a/bc")]


def settings_in(tmp_path: Path, **updates: object) -> Settings:
    values = {
        "codex_workdir": tmp_path / "work",
        "codex_config_dir": tmp_path / "home",
        "codex_data_dir": tmp_path / "data",
        "codex_wrapper_profile_dir": tmp_path / "profile",
        **updates,
    }
    for key in ("codex_workdir", "codex_config_dir", "codex_data_dir"):
        Path(values[key]).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_the_layout_denies_secrets_and_other_users_folders(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, codex_deny_read=(tmp_path / "extra",))
    for name in ("key-a", "key-b", "stray.txt"):
        (settings.codex_workdir / name).mkdir() if name.startswith("key") else (settings.codex_workdir / name).touch()
    sandbox = SandboxLayout.of(settings, tmp_path / "home")
    denied = sandbox.denied()
    for path in (tmp_path / "home", tmp_path / "data", tmp_path / "profile", tmp_path / "extra"):
        assert str(path) in denied
    assert not any(d.startswith(str(settings.codex_workdir)) for d in denied)  # one user: the workspace is open
    mine = sandbox.denied(settings.codex_workdir / "key-a")
    assert str(settings.codex_workdir / "key-b") in mine and str(settings.codex_workdir / "stray.txt") in mine
    assert str(settings.codex_workdir / "key-a") not in mine


def test_the_profile_opens_nothing_beyond_the_workspace() -> None:
    read_only = permission_profile("read-only", ("/secret",), network=True)
    assert read_only == {"filesystem": {":root": "read", "/secret": "deny"}}
    writable = permission_profile("workspace-write", (), network=False)
    assert writable is not None and "network" not in writable
    assert permission_profile("danger-full-access", ("/secret",), network=False) is None


def test_the_exec_override_is_one_toml_inline_table() -> None:
    profile = permission_profile("workspace-write", ('/a "q"\\b', "/ü"), network=True)
    assert tomllib.loads(f"v = {toml_value(profile)}")["v"] == profile


@pytest.mark.parametrize(
    "updates",
    [
        {"codex_wrapper_profile_dir": "work/codex_profile"},
        {"codex_config_dir": "work/.codex"},
        {"codex_data_dir": "work/data"},
        {"codex_allowed_roots": ("home",)},
        {"codex_workdir": "data/work"},
        {"codex_deny_read": ("",)},  # the workspace's parent: its commands could not read their own folder
    ],
)
def test_layouts_that_let_codex_write_its_configuration_are_refused(tmp_path: Path, updates: dict) -> None:
    values = {k: (tuple(tmp_path / p for p in v) if isinstance(v, tuple) else tmp_path / v) for k, v in updates.items()}
    settings = settings_in(tmp_path, **values)
    with pytest.raises(ConfigError) as caught:
        layout.check_layout(settings, settings.user_codex_home, {})
    assert "\n" not in str(caught.value)


def test_writable_roots_of_config_toml_and_tmpdir_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_in(tmp_path)
    layout.check_layout(settings, settings.user_codex_home, {})
    extra = {"sandbox_workspace_write": {"writable_roots": [str(tmp_path / "data")]}}
    with pytest.raises(ConfigError, match="writable_roots"):
        layout.check_layout(settings, settings.user_codex_home, extra)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"\$TMPDIR"):
        layout.check_layout(settings, settings.user_codex_home, {})


def test_the_old_profile_folder_moves_once_and_only_what_codex_already_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = tmp_path / "repo" / "workspace" / "codex_profile", tmp_path / "repo" / "codex_profile"
    old.mkdir(parents=True)
    monkeypatch.setattr(layout, "OLD_PROFILE_DIR", old)
    monkeypatch.setattr(layout, "REPO_ROOT", tmp_path / "repo")
    settings = settings_in(tmp_path, codex_wrapper_profile_dir=new)
    (settings.user_codex_home / "AGENTS.md").write_text("be brief")
    (old / "codex_agents.md").write_text("be brief")  # what Codex runs with: moved
    (old / "codex_config.toml").write_text("[mcp_servers.x]\n")  # differs from CODEX_HOME: maybe Codex wrote it
    with caplog.at_level(logging.WARNING, logger="codex_wrapper"):
        layout.migrate_profile(settings)
    assert (new / "codex_agents.md").read_text() == "be brief" and not (old / "codex_agents.md").exists()
    assert (old / "codex_config.toml").exists() and not (new / "codex_config.toml").exists()
    assert "appears once" in caplog.text and "was not moved" in caplog.text


def test_host_names_and_the_default_allow_list() -> None:
    assert host_name("LocalHost:8000") == "localhost" and host_name("[::1]:80") == "::1" and host_name("::1") is None
    assert host_allowed("a.example.com", ("*.example.com",)) and not host_allowed("example.com.evil", ("example.com",))
    assert allowed_hosts(Settings(_env_file=None)) == LOOPBACK_NAMES
    assert allowed_hosts(Settings(_env_file=None, proxy_api_key="k")) is None
    assert allowed_hosts(Settings(_env_file=None, host="0.0.0.0")) is None
    assert allowed_hosts(Settings(_env_file=None, codex_allowed_hosts="a.example,[::1]")) == ("a.example", "::1")
    assert allowed_hosts(Settings(_env_file=None, codex_allowed_hosts="*")) is None


async def test_images_are_counted_and_budgeted_per_request() -> None:
    fetcher = ImageFetcher(1024, 5, limits=ImageLimits(per_request=2, bytes_per_request=len(PNG) * 2))
    draft = MessageDraft("user", "x", tuple(ImageRef(DATA_URL, f"p{n}") for n in range(3)))
    with pytest.raises(ApiError) as caught:
        await materialize([draft], fetcher)
    assert caught.value.code == "too_many_images" and caught.value.param == "p2"
    tight = ImageFetcher(1024, 5, limits=ImageLimits(per_request=3, bytes_per_request=len(PNG) * 2))
    with pytest.raises(ApiError) as caught:
        await materialize([draft], tight)
    assert caught.value.code == "images_too_large" and "CODEX_MAX_IMAGE_BYTES_PER_REQUEST" in caught.value.message


def test_a_turn_too_large_for_one_json_line_is_413() -> None:
    check_input_size((Message("user", "x" * 1000),))
    with pytest.raises(ApiError) as caught:
        check_input_size((Message("user", "\u00e9" * (MAX_TURN_INPUT_BYTES // 6 + 1)),))  # escaped 6 bytes each
    assert caught.value.status == 413


def test_with_several_keys_each_caller_has_its_own_workspace(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, proxy_api_key="sk-a,sk-b")
    mine = user_workspace(settings, "sk-a")
    assert mine == settings.codex_workdir / folder_name("sk-a") != user_workspace(settings, "sk-b")
    assert "sk-a" not in mine.name
    mine.mkdir()
    (mine / "sub").mkdir()
    assert resolve_cwd("sub", settings, mine) == mine / "sub"
    with pytest.raises(ApiError):
        resolve_cwd(str(settings.codex_workdir), settings, mine)
    single = settings_in(tmp_path, proxy_api_key="sk-a")
    assert user_workspace(single, "sk-a") == single.codex_workdir


def test_a_checkout_under_tmp_may_still_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI may clone into /tmp: the gateway's directory and what lies in it are held to the workspaces only."""
    checkout = tmp_path / "clone"
    checkout.mkdir()
    monkeypatch.setattr(layout, "REPO_ROOT", checkout)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("CODEX_ENV_FILE", str(checkout / ".env"))
    elsewhere = tmp_path.parent / f"{tmp_path.name}-home"
    settings = settings_in(
        elsewhere, codex_wrapper_profile_dir=checkout / "codex_profile", codex_workdir=checkout / "workspace"
    )
    layout.check_layout(settings, settings.user_codex_home, {})
    with pytest.raises(ConfigError, match="CODEX_DATA_DIR"):  # put there directly, it is refused
        layout.check_layout(settings.model_copy(update={"codex_data_dir": tmp_path / "data"}), elsewhere / "home", {})


def test_the_private_temp_folder_is_0700_and_abandoned_ones_go(tmp_path: Path) -> None:
    settings = Settings(codex_data_dir=tmp_path / "data", _env_file=None)
    parent = tmp_path / "data" / "tmp"
    abandoned, alive = parent / "run-999999999-old", parent / f"run-{os.getpid()}-other"
    for folder in (abandoned, alive):
        folder.mkdir(parents=True)
    made = layout.private_temp_dir(settings)
    assert made.parent == parent and made.stat().st_mode & 0o777 == 0o700
    assert not abandoned.exists() and alive.exists()  # a live process's folder is its own business


def test_a_private_temp_folder_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match="cannot create a private temp folder"):
        layout.private_temp_dir(Settings(codex_data_dir=tmp_path / "data", _env_file=None))
