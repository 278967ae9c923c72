"""Image dimensions from the header (app/images/size.py) and the pixel limits of the image fetcher."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from app.errors import ApiError
from app.images import ImageFetcher, ImageLimits, ImageRef, MessageDraft, materialize
from app.images.size import UnreadableImage, read_header, webp_canvas


def png(width: int, height: int) -> bytes:
    """A real bilevel PNG of any size that stays small: all-black rows compress to almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def saved(kind: str, size: tuple[int, int] = (40, 30), **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, kind, **options)
    return out.getvalue()


def huge_webp_canvas(width: int, height: int) -> bytes:
    """An animated WebP whose VP8X header claims a canvas of width x height."""
    frames = [Image.new("RGB", (16, 16), (n * 60, 0, 0)) for n in range(2)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    data = bytearray(out.getvalue())
    data[24:27], data[27:30] = (width - 1).to_bytes(3, "little"), (height - 1).to_bytes(3, "little")
    return bytes(data)


def data_url(body: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(body).decode()}"


FORMATS = [
    (saved("PNG"), "image/png"),
    (saved("JPEG"), "image/jpeg"),
    (saved("GIF"), "image/gif"),
    (saved("WEBP"), "image/webp"),
    (saved("WEBP", lossless=True), "image/webp"),
]
UNREADABLE = [
    b"",
    b"not an image",
    b"\x89PNG\r\n\x1a\n" + b"\0" * 32,
    saved("BMP"),
    saved("TIFF"),
    b"RIFF\0\0\0\0WEBPXXXX" * 3,
    b"<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>",
    saved("PNG")[:20],
]


@pytest.mark.parametrize(("body", "kind"), FORMATS)
def test_each_format_codex_takes_is_measured(body: bytes, kind: str) -> None:
    header = read_header(body, 10_000)
    assert (header.media_type, header.width, header.height, header.pixels) == (kind, 40, 30, 1200)


def test_a_bomb_is_measured_from_its_header_without_decoding() -> None:
    bomb = png(20000, 20000)
    assert len(bomb) < 100_000  # 400 million pixels in a few KB
    header = read_header(bomb, 4096 * 4096)
    assert (header.width, header.height) == (20000, 20000)


def test_a_webp_canvas_is_judged_before_pillow_reserves_it() -> None:
    big = huge_webp_canvas(16000, 16000)
    assert webp_canvas(big) == (16000, 16000)
    assert read_header(big, 4096 * 4096).pixels == 16000 * 16000
    assert webp_canvas(saved("WEBP")) == (40, 30) and webp_canvas(saved("WEBP", lossless=True)) == (40, 30)
    assert webp_canvas(saved("PNG")) is None


@pytest.mark.parametrize("body", UNREADABLE)
def test_anything_else_is_unreadable(body: bytes) -> None:
    with pytest.raises(UnreadableImage):
        read_header(body, 10_000)


def fetcher(**limits: int) -> ImageFetcher:
    return ImageFetcher(20 * 1024 * 1024, 2.0, limits=ImageLimits(**limits))


async def refused(url: str, **limits: int) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await fetcher(**limits).data_url(ImageRef(url, "messages[0].content[1].image_url.url"))
    assert caught.value.status == 400 and caught.value.param == "messages[0].content[1].image_url.url"
    return caught.value


async def test_an_image_above_the_pixel_limit_is_refused() -> None:
    error = await refused(data_url(png(20000, 20000)))
    assert error.code == "image_too_many_pixels"
    assert "20000x20000" in error.message and "CODEX_MAX_IMAGE_PIXELS" in error.message
    error = await refused(data_url(huge_webp_canvas(16000, 16000), "image/webp"))
    assert error.code == "image_too_many_pixels"
    error = await refused(data_url(png(101, 100)), pixels=100 * 100)
    assert error.code == "image_too_many_pixels"


async def test_an_image_at_the_limit_passes() -> None:
    url = data_url(png(4096, 4096))
    assert await fetcher().data_url(ImageRef(url, "p")) == url


async def test_an_unreadable_image_is_refused() -> None:
    error = await refused(data_url(b"\x89PNG\r\n\x1a\n" + b"\0" * 32))
    assert error.code == "invalid_image"


async def test_the_request_pixel_budget_counts_every_image() -> None:
    image = ImageRef(data_url(png(100, 100)), "p")
    drafts = [MessageDraft("user", "x", (image, image))]
    assert len((await materialize(drafts, fetcher(pixels_per_request=20_000)))[0].images) == 2  # type: ignore[union-attr]
    third = ImageRef(image.url, "messages[0].content[3].image_url.url")
    with pytest.raises(ApiError) as caught:
        await materialize([MessageDraft("user", "x", (image, image, third))], fetcher(pixels_per_request=20_000))
    assert (
        caught.value.code == "images_too_many_pixels" and "CODEX_MAX_IMAGE_PIXELS_PER_REQUEST" in caught.value.message
    )
