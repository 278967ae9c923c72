"""File inputs (Responses `input_file` parts, chat `file` parts) as what Codex can give the model.

Codex takes text and images only. A text file sent inline (`file_data`) becomes text of its message, in a
`<file name="...">` block; an image file becomes an image. Anything else would be dropped, so it is refused by
name: file ids (there is no Files API here), file URLs, PDFs and other binary files.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from app.errors import ApiError, invalid
from app.images import IMAGE_TYPES, ImageRef

TEXT_TYPES = (
    "application/json", "application/ld+json", "application/x-ndjson", "application/xml", "application/yaml",
    "application/x-yaml", "application/toml", "application/javascript", "application/typescript",
    "application/x-sh", "application/x-python", "application/sql", "application/csv", "application/graphql",
)  # fmt: skip
UNTYPED = ("", "application/octet-stream")
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*),(?P<data>.*)$", re.S)


@dataclass(frozen=True)
class FilePart:
    """What a file part gives the model: text, or an image."""

    text: str | None = None
    image: ImageRef | None = None


def _refuse(where: str, why: str) -> ApiError:
    return invalid(f"Cannot use the file at '{where}': {why}.", param=where, code="unsupported_content")


def _decode(data: str, filename: str, where: str) -> tuple[str, bytes]:
    """(media type, bytes) of `file_data`: a data URL, or bare base64 typed by the file name."""
    match = _DATA_URL.match(data)
    try:
        if match is None:
            guessed = mimetypes.guess_type(filename)[0] if filename else None
            return (guessed or ""), base64.b64decode(data, validate=True)
        params = match["params"].split(";")
        raw = match["data"]
        body = base64.b64decode(raw, validate=True) if "base64" in params else unquote_to_bytes(raw)
        return match["type"].strip().lower(), body
    except (binascii.Error, ValueError):
        raise _refuse(where, "file_data is neither a data URL nor base64") from None


def _is_text(media_type: str) -> bool:
    return media_type.startswith("text/") or media_type in TEXT_TYPES or media_type.endswith(("+json", "+xml"))


def file_part(spec: dict[str, Any], where: str, images_allowed: bool) -> FilePart:
    """A file part's content for the model (`spec` holds file_data / file_id / file_url / filename)."""
    given = spec.get("filename")
    filename: str = given if isinstance(given, str) else ""
    data = spec.get("file_data")
    if not data:
        if spec.get("file_id"):
            raise _refuse(where, "file ids need the Files API, which this gateway does not have; send file_data")
        if spec.get("file_url"):
            raise _refuse(where, "file URLs are not fetched; send the file's content as file_data")
        raise invalid(
            f"Missing required parameter: '{where}.file_data'.",
            param=f"{where}.file_data",
            code="missing_required_parameter",
        )
    if not isinstance(data, str):
        raise invalid(f"Invalid type for '{where}.file_data': expected a string.", param=f"{where}.file_data")
    media_type, body = _decode(data, filename, where)
    if media_type in IMAGE_TYPES:
        if not images_allowed:
            raise _refuse(where, "images are taken in user messages only")
        url = f"data:{media_type};base64,{base64.b64encode(body).decode()}"
        return FilePart(image=ImageRef(url, f"{where}.file_data"))
    if not _is_text(media_type) and media_type not in UNTYPED:
        why = f"{media_type} files cannot be given to the model through Codex (it reads text and images only)"
        raise _refuse(where, why)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        raise _refuse(where, "the file is not UTF-8 text (Codex reads text and images only)")
    name = filename.replace('"', "'") or "file"
    return FilePart(text=f'<file name="{name}">\n{text}\n</file>')
