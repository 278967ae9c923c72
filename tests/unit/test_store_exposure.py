"""A Redis without a password is refused while sandboxes may have network (app/store/exposure.py)."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings
from app.store.exposure import check_store_exposure, has_password


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", False),
        ("redis://:@127.0.0.1:6379/0", False),
        ("redis://user@127.0.0.1:6379/0", False),
        ("redis://:pw@127.0.0.1:6379/0", True),
        ("rediss://gw:pw@redis.internal:6380/1", True),
        ("unix:///run/redis.sock?db=0", False),
        ("unix:///run/redis.sock?db=0&password=pw", True),
    ],
)
def test_a_password_is_found_where_the_client_reads_it(url: str, expected: bool) -> None:
    assert has_password(url) is expected


def test_only_network_makes_a_passwordless_redis_a_startup_error() -> None:
    settings = Settings(_env_file=None, codex_store_url="redis://10.0.0.5:6379/0")
    check_store_exposure(settings, sandbox_network=False)
    with pytest.raises(ConfigError, match=r"^CODEX_STORE_URL is a Redis without a password"):
        check_store_exposure(settings, sandbox_network=True)
    limits = Settings(_env_file=None, rate_limit_per_minute=5, rate_limit_storage_uri="redis://127.0.0.1:6379")
    with pytest.raises(ConfigError, match=r"^RATE_LIMIT_STORAGE_URI is a Redis"):
        check_store_exposure(limits, sandbox_network=True)
    check_store_exposure(Settings(_env_file=None, codex_store_url="redis://:pw@10.0.0.5/0"), sandbox_network=True)
