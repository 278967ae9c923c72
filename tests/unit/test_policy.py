"""Every policy rule, table-driven, with injection attempts in every x_codex field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.codex.catalog import ModelInfo
from app.codex.provider import ProviderResolver
from app.config import Settings
from app.errors import ApiError
from app.policy.run_policy import parse_x_codex, resolve_policy

MODEL = ModelInfo("gpt-5.5", ("low", "medium", "high", "xhigh"))
INJECTIONS = [
    r"danger\u002dfull-access",  # the escape that reached Codex through the original's TOML paste
    "danger\u002dfull-access",  # the same escape decoded, as JSON delivers it: the danger gate applies
    'read-only" \nsandbox_mode = "danger-full-access',
    "read-only\nsandbox_mode=danger-full-access",
    "'read-only'",
    "READ-ONLY",
    "Danger-Full-Access",
    " read-only",
    "read-only\u0000",
    "workspace_write",
    "",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "home").mkdir()
    return Settings(_env_file=None, codex_workdir=work, codex_config_dir=tmp_path / "home")


def providers(settings: Settings, config: str = "") -> ProviderResolver:
    home = settings.codex_config_dir
    assert home is not None
    (home / "config.toml").write_text(config)
    return ProviderResolver(home, {})


def policy(settings: Settings, x_codex: Any, config: str = "", **kwargs: Any):
    return resolve_policy(settings, providers(settings, config), MODEL, parse_x_codex(x_codex), **kwargs)


def refused(settings: Settings, x_codex: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        policy(settings, x_codex, **kwargs)
    assert caught.value.status == 400
    return caught.value


def test_defaults_come_from_settings(settings: Settings) -> None:
    resolved = policy(settings, None)
    assert (resolved.sandbox, resolved.reasoning_effort, resolved.hide_reasoning) == ("read-only", "medium", False)
    assert resolved.cwd == settings.codex_workdir and resolved.network_access is None


@pytest.mark.parametrize("value", INJECTIONS)
def test_sandbox_injection_is_refused_naming_the_allowed_values(settings: Settings, value: str) -> None:
    if value == "danger-full-access":  # the JSON escape decodes to the real value: the danger gate applies
        assert refused(settings, {"sandbox": value}).code == "sandbox_not_allowed"
        return
    error = refused(settings, {"sandbox": value})
    assert error.param == "x_codex.sandbox"
    assert "read-only, workspace-write, danger-full-access" in error.message


@pytest.mark.parametrize("value", [*INJECTIONS, "HIGH", "ultra", "high "])
def test_effort_injection_is_refused(settings: Settings, value: str) -> None:
    error = refused(settings, {"reasoning_effort": value})
    assert error.param == "x_codex.reasoning_effort" and "low, medium, high, xhigh" in error.message


@pytest.mark.parametrize("field", ["network_access", "hide_reasoning"])
@pytest.mark.parametrize("value", ["true", 1, 0, "false", None.__class__.__name__, [], {}])
def test_booleans_must_be_booleans(settings: Settings, field: str, value: Any) -> None:
    assert refused(settings, {"sandbox": "read-only", field: value}).param == f"x_codex.{field}"


@pytest.mark.parametrize("x_codex", [[], "read-only", 5, True])
def test_x_codex_must_be_an_object(settings: Settings, x_codex: Any) -> None:
    assert refused(settings, x_codex).param == "x_codex"


@pytest.mark.parametrize("key", ["sandbox_mode", "model_provider", "SANDBOX", "config", "approval_policy"])
def test_unknown_x_codex_fields_are_refused(settings: Settings, key: str) -> None:
    error = refused(settings, {key: "danger-full-access"})
    assert error.param == f"x_codex.{key}" and "sandbox, network_access" in error.message


@pytest.mark.parametrize("field", ["sandbox", "reasoning_effort", "cwd"])
@pytest.mark.parametrize("value", [1, True, ["read-only"], {"v": 1}])
def test_strings_must_be_strings(settings: Settings, field: str, value: Any) -> None:
    assert refused(settings, {field: value}).param == f"x_codex.{field}"


ALL_MODES = ("read-only", "workspace-write", "danger-full-access")


def test_danger_needs_the_server_permission(settings: Settings) -> None:
    assert refused(settings, {"sandbox": "danger-full-access"}).code == "sandbox_not_allowed"
    open_modes = settings.model_copy(update={"codex_client_sandbox_modes": ALL_MODES})
    assert "CODEX_ALLOW_DANGER_FULL_ACCESS" in refused(open_modes, {"sandbox": "danger-full-access"}).message
    allowed = open_modes.model_copy(update={"codex_allow_danger_full_access": True})
    assert policy(allowed, {"sandbox": "danger-full-access"}).sandbox == "danger-full-access"


def test_clients_choose_only_the_sandboxes_the_server_allows(settings: Settings) -> None:
    error = refused(settings, {"sandbox": "workspace-write"})
    assert error.code == "sandbox_not_allowed" and "CODEX_CLIENT_SANDBOX_MODES" in error.message
    assert policy(settings, {"sandbox": "read-only"}).sandbox == "read-only"
    own = settings.model_copy(update={"codex_sandbox_mode": "workspace-write"})  # the operator's own default
    assert policy(own, {"sandbox": "workspace-write"}).sandbox == "workspace-write"
    assert policy(own, None).sandbox == "workspace-write"
    danger = settings.model_copy(update={"codex_allow_danger_full_access": True})
    assert refused(danger, {"sandbox": "danger-full-access"}).code == "sandbox_not_allowed"


def test_clients_turn_the_network_on_only_when_the_server_allows(settings: Settings) -> None:
    writable = settings.model_copy(update={"codex_client_sandbox_modes": ALL_MODES})
    error = refused(writable, {"sandbox": "workspace-write", "network_access": True})
    assert error.code == "network_not_allowed" and "CODEX_CLIENT_NETWORK_ACCESS" in error.message
    assert policy(writable, {"sandbox": "workspace-write", "network_access": False}).network_access is False
    networked = writable.model_copy(update={"codex_client_network_access": True})
    assert policy(networked, {"sandbox": "workspace-write", "network_access": True}).network_access is True


def test_the_operators_config_sets_the_network_default(settings: Settings) -> None:
    writable = settings.model_copy(update={"codex_client_sandbox_modes": ALL_MODES})
    on = "[sandbox_workspace_write]\nnetwork_access = true\n"
    assert policy(writable, {"sandbox": "workspace-write"}, config=on).network_access is True
    assert policy(writable, {"sandbox": "workspace-write"}).network_access is False


@pytest.mark.parametrize("sandbox", [None, "read-only", "danger-full-access"])
def test_network_access_only_with_workspace_write(settings: Settings, sandbox: str | None) -> None:
    allowed = settings.model_copy(
        update={"codex_allow_danger_full_access": True, "codex_client_sandbox_modes": ALL_MODES}
    )
    x_codex = {"network_access": True, **({"sandbox": sandbox} if sandbox else {})}
    assert refused(allowed, x_codex).param == "x_codex.network_access"
    resolved = policy(allowed, {"sandbox": "workspace-write", "network_access": False})
    assert resolved.network_access is False


def test_effort_precedence(settings: Settings) -> None:
    assert policy(settings, None, requested_effort="low").reasoning_effort == "low"
    assert policy(settings, {"reasoning_effort": "xhigh"}, requested_effort="low").reasoning_effort == "xhigh"
    assert refused(settings, None, requested_effort="extreme").param == "reasoning_effort"
    assert refused(settings, {"reasoning_effort": "low"}, requested_effort="extreme").param == "reasoning_effort"


def test_hide_reasoning_overrides_the_setting(settings: Settings) -> None:
    assert policy(settings, {"hide_reasoning": True}).hide_reasoning is True
    hiding = settings.model_copy(update={"codex_hide_reasoning": True})
    assert policy(hiding, {"hide_reasoning": False}).hide_reasoning is False


def test_cwd_inside_the_workdir(settings: Settings) -> None:
    assert policy(settings, {"cwd": "sub"}).cwd == settings.codex_workdir / "sub"
    assert policy(settings, {"cwd": str(settings.codex_workdir / "sub")}).cwd == settings.codex_workdir / "sub"
    assert policy(settings, {"cwd": "sub/.."}).cwd == settings.codex_workdir


@pytest.mark.parametrize("cwd", ["..", "../other", "/", "/etc", "sub/../../other", "link", "\u0000", "", "a" * 5000])
def test_cwd_escapes_are_refused(settings: Settings, cwd: str) -> None:
    (settings.codex_workdir / "link").symlink_to(settings.codex_workdir.parent / "other")
    assert refused(settings, {"cwd": cwd}).param == "x_codex.cwd"


def test_cwd_in_an_allowed_root_and_missing_dirs(settings: Settings) -> None:
    other = settings.codex_workdir.parent / "other"
    rooted = settings.model_copy(update={"codex_allowed_roots": (other,)})
    assert policy(rooted, {"cwd": str(other)}).cwd == other
    assert refused(settings, {"cwd": "missing"}).code == "cwd_not_found"


LOCAL_CONFIGS = [
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://127.0.0.1:11434/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://127.3.4.5/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://[::1]:8080/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://localhost:1234/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "unix:///run/llm.sock"',
    'model_provider = "ollama"',
    'profile = "p"\n[profiles.p]\nmodel_provider = "m"\n[model_providers.m]\nbase_url = "http://127.0.0.1/v1"',
]
REMOTE_CONFIGS = [
    "",
    'model_provider = "openai"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "https://api.example.com/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://localhost.example.com/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://127.0.0.1.nip.io/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://10.0.0.5/v1"',
    'model_provider = "m"\n[model_providers.m]\nbase_url = "http://user@evil.com#@127.0.0.1/v1"',
    'model_provider = "undefined"',
    'model_provider = "m"\n[model_providers.m]\nname = "no url"',
    'model_provider = "m"\nprofile = "p"\n[model_providers.m]\nbase_url = "http://127.0.0.1/v1"\n'
    '[profiles.p]\nmodel_provider = "openai"',
]


@pytest.mark.parametrize("config", LOCAL_CONFIGS)
def test_local_only_accepts_loopback_providers(settings: Settings, config: str) -> None:
    local = settings.model_copy(update={"codex_local_only": True})
    policy(local, None, config)


@pytest.mark.parametrize("config", REMOTE_CONFIGS)
def test_local_only_refuses_everything_else(settings: Settings, config: str) -> None:
    local = settings.model_copy(update={"codex_local_only": True})
    with pytest.raises(ApiError) as caught:
        policy(local, None, config)
    assert caught.value.code == "provider_not_local"
    policy(settings, None, config)  # without CODEX_LOCAL_ONLY the same provider is fine


@pytest.mark.parametrize("provider", ["ollama", "lmstudio"])
def test_oss_providers_follow_codex_oss_base_url(settings: Settings, provider: str) -> None:
    home = settings.codex_config_dir
    assert home is not None
    (home / "config.toml").write_text(f'model_provider = "{provider}"\n')
    assert ProviderResolver(home, {}).current().is_local
    assert ProviderResolver(home, {"CODEX_OSS_BASE_URL": "http://127.0.0.1:9/v1"}).current().is_local
    remote = ProviderResolver(home, {"CODEX_OSS_BASE_URL": "https://gpu.example.com/v1"}).current()
    assert not remote.is_local and remote.base_url == "https://gpu.example.com/v1"


def test_unreadable_config_is_refused_under_local_only(settings: Settings) -> None:
    local = settings.model_copy(update={"codex_local_only": True})
    with pytest.raises(ApiError) as caught:
        policy(local, None, "model_provider = ")
    assert caught.value.code == "provider_not_local" and "config.toml" in caught.value.message


def test_provider_is_re_read_when_config_changes(settings: Settings) -> None:
    resolver = providers(settings, 'model_provider = "ollama"')
    assert resolver.current().is_local
    home = settings.codex_config_dir
    assert home is not None
    (home / "config.toml").write_text('model_provider = "openai"  # remote now\n')
    assert not resolver.current().is_local
