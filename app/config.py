"""Settings: every environment variable of the gateway, validated, with its default."""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
# Codex 0.169 takes the effort as a free string the model advertises; these are every value its catalog uses.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
MODES = ("agent", "chat")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")  # CODEX_STORE_URL values that select the Redis store
# A turn's images travel base64-encoded in one JSON-RPC line to Codex and back (its reader stops at 64 MiB).
MAX_IMAGE_BYTES_PER_REQUEST = 32 * 1024 * 1024
SandboxMode = Literal["read-only", "workspace-write", "danger-full-access"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra"]

log = logging.getLogger("codex_wrapper")


class ConfigError(Exception):
    """An invalid setting: the message is one line naming the variable, the value and what is allowed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    proxy_api_key: str | None = None  # one key, or several separated by commas
    rate_limit_per_minute: int = Field(0, ge=0)
    rate_limit_storage_uri: str | None = None  # unset: the store's Redis when CODEX_STORE_URL is one, else memory://

    codex_path: str | None = None
    codex_workdir: Path = REPO_ROOT / "workspace"
    codex_config_dir: Path | None = None
    codex_wrapper_profile_dir: Path = REPO_ROOT / "codex_profile"
    codex_isolated_home: bool = False
    codex_isolated_home_dir: Path | None = None
    codex_allowed_roots: Annotated[tuple[Path, ...], NoDecode] = ()
    codex_env_denylist: Annotated[tuple[str, ...], NoDecode] = ()
    codex_env_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    codex_sandbox_mode: SandboxMode = "read-only"
    codex_reasoning_effort: ReasoningEffort = "medium"
    codex_hide_reasoning: bool = False
    codex_local_only: bool = False
    codex_allow_danger_full_access: bool = False
    codex_client_sandbox_modes: Annotated[tuple[SandboxMode, ...], NoDecode] = ("read-only",)
    codex_client_network_access: bool = False
    codex_client_web_search: Literal["off", "cached", "live"] = "off"  # what a Responses web_search tool may get
    codex_deny_read: Annotated[tuple[Path, ...], NoDecode] = ()
    codex_engine: Literal["app-server", "exec"] = "app-server"
    codex_app_server_workers: int = Field(2, ge=1, le=64)
    codex_seal_workers: bool = True  # app-server workers sealed where they can be (app/policy/worker_seal.py)
    codex_rpc_timeout_seconds: float = Field(30.0, gt=0)  # each JSON-RPC request to an app-server worker
    codex_mode: Literal["agent", "chat"] = "agent"
    codex_timeout: float = Field(120.0, gt=0)
    codex_max_parallel_requests: int = Field(2, ge=1)
    codex_command_max_processes: int = Field(512, ge=0)  # per Codex process and its commands (codex/command_limits.py)
    codex_command_max_memory_mb: int = Field(2048, ge=0)
    codex_command_max_cpus: float = Field(1.0, ge=0)
    codex_max_queue: int = Field(32, ge=0)
    codex_queue_timeout_seconds: float = Field(30.0, gt=0)
    codex_max_background_queue: int = Field(32, ge=0)
    codex_background_timeout: float | None = Field(None, gt=0)  # None: CODEX_TIMEOUT
    codex_instance_id: str = ""  # empty: <hostname>:<PORT>
    codex_max_request_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    codex_shutdown_grace_seconds: float = Field(10.0, ge=0)
    codex_max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    codex_image_timeout_seconds: float = Field(10.0, gt=0)
    codex_image_allow_loopback: bool = False  # for tests and local image servers; private ranges stay refused
    codex_max_images_per_request: int = Field(16, ge=0)
    codex_max_image_bytes_per_request: int = Field(24 * 1024 * 1024, ge=1)
    codex_image_fetches_per_request: int = Field(4, ge=1)
    codex_image_fetches_per_server: int = Field(16, ge=1)
    codex_max_image_pixels: int = Field(4096 * 4096, ge=1)  # width x height of one image, from its header
    codex_max_image_pixels_per_request: int = Field(2 * 4096 * 4096, ge=1)
    codex_schema_max_bytes: int = Field(512 * 1024, ge=1024)
    codex_schema_max_depth: int = Field(64, ge=2)
    codex_schema_max_subschemas: int = Field(10_000, ge=1)
    codex_schema_timeout_seconds: float = Field(5.0, gt=0)
    codex_api_docs: bool = False
    codex_metrics_require_key: bool = True
    codex_allowed_hosts: Annotated[tuple[str, ...] | None, NoDecode] = None  # None: automatic (see allowed_hosts)
    codex_max_header_bytes: int = Field(32 * 1024, ge=1024)
    codex_request_read_timeout_seconds: float = Field(30.0, gt=0)
    codex_data_dir: Path = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "codex-wrapper"
    codex_responses_ttl_days: float = Field(30.0, ge=0)
    codex_store_url: str = ""  # empty: SQLite in CODEX_DATA_DIR; a path or sqlite:///path; redis://, rediss://, unix://
    codex_store_timeout_seconds: float = Field(2.0, gt=0)
    codex_env_file: str = ".env"
    codex_model: Annotated[str | None, NoDecode] = None

    @field_validator(
        "proxy_api_key", "codex_path", "codex_model", "rate_limit_storage_uri", "codex_background_timeout",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "codex_allowed_roots",
        "codex_env_denylist",
        "codex_env_allowlist",
        "codex_deny_read",
        "codex_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value

    @field_validator("codex_client_sandbox_modes", mode="before")
    @classmethod
    def _modes_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "codex_sandbox_mode",
        "codex_reasoning_effort",
        "log_level",
        "codex_engine",
        "codex_mode",
        "codex_client_web_search",
        mode="before",
    )
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("codex_store_url", mode="after")
    @classmethod
    def _store_url(cls, value: str) -> str:
        value = value.strip()
        if "://" in value and not value.startswith(("sqlite://", *REDIS_SCHEMES)):
            raise ValueError("unknown scheme")
        return value

    @model_validator(mode="after")
    def _keys_are_keys(self) -> Settings:
        if self.proxy_api_key is not None and not self.api_keys:
            raise ValueError("invalid setting PROXY_API_KEY: allowed is one key or several separated by commas")
        return self

    @model_validator(mode="after")
    def _danger_needs_permission(self) -> Settings:
        if self.codex_sandbox_mode == "danger-full-access" and not self.codex_allow_danger_full_access:
            raise ValueError("CODEX_SANDBOX_MODE=danger-full-access requires CODEX_ALLOW_DANGER_FULL_ACCESS=1")
        return self

    @model_validator(mode="after")
    def _image_limits_fit(self) -> Settings:
        if self.codex_max_image_bytes_per_request > MAX_IMAGE_BYTES_PER_REQUEST:
            raise ValueError(
                f"invalid setting CODEX_MAX_IMAGE_BYTES_PER_REQUEST={self.codex_max_image_bytes_per_request}: allowed "
                f"is at most {MAX_IMAGE_BYTES_PER_REQUEST} (Codex takes a turn's images in one JSON line)"
            )
        return self

    @property
    def api_keys(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in (self.proxy_api_key or "").split(",") if key.strip())

    @property
    def instance_id(self) -> str:
        """Names this instance's background runs in the store: keep it stable across restarts, unique per instance."""
        return self.codex_instance_id.strip() or f"{socket.gethostname()}:{self.port}"

    @property
    def store_is_redis(self) -> bool:
        return self.codex_store_url.startswith(REDIS_SCHEMES)

    @property
    def rate_limit_storage(self) -> str:
        """RATE_LIMIT_STORAGE_URI, else the store's Redis (so instances sharing it share the limits), else memory."""
        if self.rate_limit_storage_uri:
            return self.rate_limit_storage_uri
        if self.store_is_redis:
            url = self.codex_store_url
            return "redis+unix://" + url.removeprefix("unix://") if url.startswith("unix://") else url
        return "memory://"

    @property
    def user_codex_home(self) -> Path:
        """The user's CODEX_HOME: CODEX_CONFIG_DIR, else the OS environment's CODEX_HOME, else ~/.codex."""
        if self.codex_config_dir is not None:
            return self.codex_config_dir
        env_home = os.environ.get("CODEX_HOME")
        return Path(env_home).expanduser().resolve() if env_home else Path.home() / ".codex"

    @property
    def operator_codex_homes(self) -> tuple[Path, ...]:
        """Every Codex home the operator has, each holding a login: CODEX_CONFIG_DIR, the OS environment's
        CODEX_HOME and ~/.codex (whichever is set or exists; all are denied to every turn)."""
        homes = [self.user_codex_home, Path.home() / ".codex"]
        if os.environ.get("CODEX_HOME"):
            homes.append(Path(os.environ["CODEX_HOME"]).expanduser().resolve())
        return tuple(dict.fromkeys(homes))


def _describe(error: ErrorDetails) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    name = loc[0].upper() if loc else ""
    if not name:
        return error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if name == "CODEX_STORE_URL" and isinstance(value, str):
        value = re.sub(r"(//[^/@]*?:)[^@/]*@", r"\1***@", value)  # never print a password
    allowed = {
        "CODEX_SANDBOX_MODE": "one of " + ", ".join(SANDBOX_MODES),
        "CODEX_REASONING_EFFORT": "one of " + ", ".join(REASONING_EFFORTS),
        "CODEX_ENGINE": "one of app-server, exec",
        "CODEX_MODE": "one of " + ", ".join(MODES),
        "CODEX_STORE_URL": "a file path, sqlite:///path, or a redis://, rediss:// or unix:// URL",
        "CODEX_CLIENT_SANDBOX_MODES": "a comma-separated list of " + ", ".join(SANDBOX_MODES),
    }.get(name, error["msg"].lower())
    return f"invalid setting {name}={value!r}: allowed is {allowed}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the OS environment, then CODEX_ENV_FILE (default .env); raise ConfigError."""
    env_file = os.environ.get("CODEX_ENV_FILE", ".env")
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None
    settings = _absolute_paths(settings)
    if settings.codex_model:
        log.warning("CODEX_MODEL is deprecated and ignored: pick the model per request (GET /v1/models)")
    _prepare_dir("CODEX_WORKDIR", settings.codex_workdir)
    if settings.codex_config_dir is not None:
        _prepare_dir("CODEX_CONFIG_DIR", settings.codex_config_dir)
    return settings


def _absolute_paths(settings: Settings) -> Settings:
    """Codex runs inside CODEX_WORKDIR: every path it is given must not depend on the gateway's cwd."""
    updates: dict[str, Any] = {
        "codex_workdir": settings.codex_workdir.expanduser().resolve(),
        "codex_wrapper_profile_dir": settings.codex_wrapper_profile_dir.expanduser().resolve(),
    }
    updates["codex_data_dir"] = settings.codex_data_dir.expanduser().resolve()
    for name in ("codex_config_dir", "codex_isolated_home_dir"):
        if getattr(settings, name) is not None:
            updates[name] = getattr(settings, name).expanduser().resolve()
    updates["codex_allowed_roots"] = tuple(root.expanduser().resolve() for root in settings.codex_allowed_roots)
    updates["codex_deny_read"] = tuple(path.expanduser().resolve() for path in settings.codex_deny_read)
    if settings.codex_path and os.sep in settings.codex_path:
        updates["codex_path"] = str(Path(settings.codex_path).expanduser().resolve())
    return settings.model_copy(update=updates)


def _prepare_dir(name: str, path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"invalid setting {name}={str(path)!r}: cannot create it ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"invalid setting {name}={str(path)!r}: allowed is a directory this user can write")
