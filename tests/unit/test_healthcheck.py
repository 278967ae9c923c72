"""The image's health check: which URL it asks, from the same HOST and PORT the server reads."""

from __future__ import annotations

import pytest

from app.healthcheck import ready_url


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8000/ready"),
        ({"HOST": "0.0.0.0", "PORT": "9123"}, "http://127.0.0.1:9123/ready"),
        ({"HOST": "::", "PORT": "9123"}, "http://[::1]:9123/ready"),
        ({"HOST": "::1", "PORT": " 8080 "}, "http://[::1]:8080/ready"),
        ({"HOST": "10.0.0.5"}, "http://10.0.0.5:8000/ready"),
    ],
)
def test_the_url_follows_host_and_port(env: dict[str, str], url: str) -> None:
    assert ready_url(env) == url
