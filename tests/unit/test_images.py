"""The image fetcher against mocked HTTP (respx) and a scripted resolver: what it fetches and what it refuses."""

from __future__ import annotations

import base64

import httpx
import pytest
import respx

from app.errors import ApiError
from app.images.fetch import ImageFetcher, ImageRef, address_allowed

PNG = base64.b64decode(  # a real 1x1 PNG: its header is read
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
ADDRESSES = {
    "images.example.com": ["93.184.216.34"],
    "cdn.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "intranet.example.com": ["10.0.0.7"],
    "sneaky.example.com": ["93.184.216.34", "127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    if host in ADDRESSES:
        return ADDRESSES[host]
    try:
        return [str(httpx.URL(f"http://{host}").host)] if host[0].isdigit() or ":" in host else []
    except Exception as exc:  # pragma: no cover
        raise OSError(host) from exc


def fetcher(**kwargs: object) -> ImageFetcher:
    options = {"max_bytes": 1024, "timeout": 2.0, "resolver": fake_resolver, **kwargs}
    return ImageFetcher(**options)  # type: ignore[arg-type]


async def refused(url: str, **kwargs: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await fetcher(**kwargs).data_url(ImageRef(url, "messages[0].content[1].image_url.url"))
    assert caught.value.status == 400 and caught.value.param == "messages[0].content[1].image_url.url"
    return caught.value


async def test_a_data_url_is_checked_and_kept() -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert await fetcher().data_url(ImageRef(url, "p")) == url


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,@@@",
        "data:text/plain;base64,aGk=",
        "data:image/png,raw",
        "data:image/svg+xml;base64,PHN2Zz4=",
    ],
)
async def test_bad_data_urls_are_refused(url: str) -> None:
    await refused(url)


async def test_oversized_data_url_is_refused() -> None:
    error = await refused("data:image/png;base64," + base64.b64encode(b"x" * 2048).decode())
    assert error.code == "image_too_large"


@respx.mock
async def test_a_public_image_is_fetched() -> None:
    respx.get("https://images.example.com/cat.png").respond(200, content=PNG, headers={"content-type": "image/png"})
    url = await fetcher().data_url(ImageRef("https://images.example.com/cat.png", "p"))
    assert base64.b64decode(url.split(",", 1)[1]) == PNG


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://images.example.com/a.png",
        "gopher://x",
        "http://127.0.0.1/a.png",
        "http://localhost.localdomain.invalid/a.png",
        "http://[::1]/a.png",
        "http://10.1.2.3/a.png",
        "http://192.168.1.1/a.png",
        "http://172.16.0.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/a.png",
        "http://0.0.0.0/a.png",
        "http://intranet.example.com/a.png",
        "http://sneaky.example.com/a.png",
        "http://metadata.example.com/a.png",
        "http://mapped.example.com/a.png",
        "http://user:pw@images.example.com/a.png",
    ],
)
async def test_hostile_urls_are_refused_before_any_request(url: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().respond(200, content=PNG, headers={"content-type": "image/png"})
        await refused(url)
        assert not route.called


@respx.mock
async def test_a_redirect_to_a_private_address_is_refused() -> None:
    respx.get("https://images.example.com/r").respond(302, headers={"location": "http://10.0.0.1/secret.png"})
    inner = respx.get("http://10.0.0.1/secret.png").respond(200, content=PNG, headers={"content-type": "image/png"})
    await refused("https://images.example.com/r")
    assert not inner.called


@respx.mock
async def test_public_redirects_are_followed_a_few_times() -> None:
    respx.get("https://images.example.com/a").respond(302, headers={"location": "https://cdn.example.com/b.png"})
    respx.get("https://cdn.example.com/b.png").respond(200, content=PNG, headers={"content-type": "image/png"})
    assert (await fetcher().data_url(ImageRef("https://images.example.com/a", "p"))).startswith("data:image/png")
    respx.get("https://images.example.com/loop").respond(302, headers={"location": "/loop"})
    await refused("https://images.example.com/loop")


@respx.mock
@pytest.mark.parametrize(
    ("status", "headers", "content", "code"),
    [
        (404, {"content-type": "image/png"}, PNG, "image_fetch_failed"),
        (200, {"content-type": "text/html"}, b"<html>", "invalid_image_url"),
        (200, {"content-type": "image/png", "content-length": "99999"}, PNG, "image_too_large"),
        (200, {"content-type": "image/png"}, b"x" * 4096, "image_too_large"),
    ],
)
async def test_answers_that_are_not_small_images_are_refused(
    status: int, headers: dict, content: bytes, code: str
) -> None:
    respx.get("https://images.example.com/x").respond(status, content=content, headers=headers)
    assert (await refused("https://images.example.com/x")).code == code


def test_loopback_only_when_allowed() -> None:
    assert not address_allowed("127.0.0.1", allow_loopback=False)
    assert address_allowed("127.0.0.1", allow_loopback=True)
    assert not address_allowed("10.0.0.1", allow_loopback=True)
    assert not address_allowed("169.254.169.254", allow_loopback=True)


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:a9fe:a9fe::1", "2002:0a00:0001::1", "::ffff:10.0.0.1"],
)
def test_ipv6_forms_of_private_ipv4_are_refused(address: str) -> None:
    assert not address_allowed(address, allow_loopback=False)


def test_public_ipv6_and_nat64_of_public_ipv4_are_allowed() -> None:
    assert address_allowed("2606:2800:220:1:248:1893:25c8:1946", allow_loopback=False)
    assert address_allowed("64:ff9b::5db8:d822", allow_loopback=False)  # 93.184.216.34


async def test_a_refused_connection_is_a_400() -> None:
    with respx.mock:
        respx.get("https://images.example.com/down.png").mock(side_effect=httpx.ConnectError("refused"))
        assert (await refused("https://images.example.com/down.png")).code == "image_fetch_failed"
