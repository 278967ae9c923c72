"""An image's format and dimensions, read from its header: no pixel is decoded, nothing is fetched.

Pillow's lazy `Image.open` reads the header only (of bytes in memory, limited to the formats Codex takes). Its WebP
reader sets up an animation decoder that reserves the whole canvas at once, so a WebP's canvas is first read from its
own RIFF header and judged before Pillow sees it. Pillow's own decompression-bomb warning and error are off: the
gateway's pixel limits (CODEX_MAX_IMAGE_PIXELS) answer a 400 instead.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image

Image.MAX_IMAGE_PIXELS = None  # replaced by CODEX_MAX_IMAGE_PIXELS, checked by the callers of `read_header`
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


class UnreadableImage(ValueError):
    """The bytes are not a PNG, JPEG, GIF or WebP image whose header can be read."""


@dataclass(frozen=True)
class ImageHeader:
    media_type: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def webp_canvas(body: bytes) -> tuple[int, int] | None:
    """A WebP's canvas from its first chunk (VP8X, VP8L or VP8); None when `body` is not a WebP."""
    if len(body) < 30 or body[:4] != b"RIFF" or body[8:12] != b"WEBP":
        return None
    chunk, data = body[12:16], body[20:30]
    if chunk == b"VP8X":
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    if chunk == b"VP8L" and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    raise UnreadableImage("a WebP whose first chunk is not VP8X, VP8L or VP8")


def read_header(body: bytes, max_pixels: int) -> ImageHeader:
    """The image's real format and size. A WebP canvas above `max_pixels` is reported without Pillow; any other
    size is reported as it is, for the caller to judge. UnreadableImage for anything else."""
    canvas = webp_canvas(body)
    if canvas is not None and canvas[0] * canvas[1] > max_pixels:
        return ImageHeader("image/webp", *canvas)
    try:
        with Image.open(io.BytesIO(body), formats=list(FORMATS)) as image:
            width, height = image.size
            kind = FORMATS.get(str(image.format))
    except Exception as exc:  # hostile bytes: whatever a format's header reader raises, the image is unreadable
        raise UnreadableImage(type(exc).__name__) from None
    if kind is None or width <= 0 or height <= 0:
        raise UnreadableImage("no size")
    return ImageHeader(kind, width, height)
