"""Images for Codex: a request's image parts fetched safely (fetch.py), measured from their header without decoding
(size.py), and put in place in the turn's messages (materialize.py)."""

from app.images.fetch import IMAGE_TYPES, ImageFetcher, ImageLimits, ImageRef, decode_data_url
from app.images.materialize import MessageDraft, materialize

__all__ = ["IMAGE_TYPES", "ImageFetcher", "ImageLimits", "ImageRef", "MessageDraft", "decode_data_url", "materialize"]
