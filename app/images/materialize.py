"""A request's messages with their images in place: every image a data URL (fetch.py), a few fetched at a time, the
request's count of images bounded; the first bad image is a 400."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.errors import ApiError, invalid
from app.images.fetch import ImageFetcher, ImageRef
from app.turn import Item, Message, ToolCall, ToolOutput


@dataclass(frozen=True)
class MessageDraft:
    """A message as a request gave it, its images not fetched yet."""

    role: str
    text: str
    images: tuple[ImageRef, ...] = ()


async def materialize(
    drafts: list[MessageDraft] | list[MessageDraft | ToolCall | ToolOutput], fetcher: ImageFetcher
) -> tuple[Item, ...]:
    """Messages with every image as a data URL (fetched a few at a time); the first bad image is a 400. Function
    calls and outputs pass as they are."""
    refs = [ref for draft in drafts if isinstance(draft, MessageDraft) for ref in draft.images]
    urls: list[str] = []
    if refs:
        urls = await _fetch_all(refs, fetcher)
    fetched = iter(urls)
    return tuple(
        Message(d.role, d.text, tuple(next(fetched) for _ in d.images))  # type: ignore[arg-type]
        if isinstance(d, MessageDraft)
        else d
        for d in drafts
    )


async def _fetch_all(refs: list[ImageRef], fetcher: ImageFetcher) -> list[str]:
    limits = fetcher.limits
    if len(refs) > limits.per_request:
        raise invalid(
            f"The request has {len(refs)} images; CODEX_MAX_IMAGES_PER_REQUEST allows {limits.per_request}.",
            param=refs[limits.per_request].param,
            code="too_many_images",
        )
    budget, slots = limits.budget(), asyncio.Semaphore(limits.fetches_per_request)

    async def one(ref: ImageRef) -> str:
        async with slots:
            return await fetcher.data_url(ref, budget)

    try:
        async with asyncio.TaskGroup() as group:  # the first bad image cancels the other fetches
            tasks = [group.create_task(one(ref)) for ref in refs]
    except BaseExceptionGroup as failed:
        raise next(e for e in failed.exceptions if isinstance(e, ApiError)) from None
    return [task.result() for task in tasks]
