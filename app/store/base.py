"""The response store's interface, shared by its backends (sqlite.py, redis.py).

A stored response is owned by a hash of the API key that created it; every lookup names its owner, so one key
never sees another's responses or items. A backend failure becomes StoreUnavailable (503 in the OpenAI envelope)
in one place, `_call`, which also logs the store going down and coming back once each.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from app import turn
from app.errors import ApiError
from app.turn import Item

log = logging.getLogger("codex_wrapper")
T = TypeVar("T")


class StoreUnavailable(ApiError):
    """The store cannot be reached or written: 503, without the store's address (key holders see this)."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "The response store is unavailable; retry later.",
            code="store_unavailable",
            headers={"Retry-After": "5"},
        )


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    conversation: tuple[Item, ...]  # kept through app.turn.encode_history / decode_history only


@dataclass(frozen=True)
class RunRecord:
    """Who runs a background response now (app/background): its instance, that instance's last heartbeat
    (time.time()), and whether a cancel was asked for."""

    instance: str
    beat: float
    cancel: bool


@dataclass(frozen=True)
class StoreHealth:
    backend: str
    location: str  # a path or a URL without its password: for the operator (doctor), not for /ready
    state: Literal["ok", "unavailable"]
    detail: str  # ok: facts worth knowing (version, persistence); unavailable: why


def items_of(stored: StoredResponse) -> list[tuple[str, dict[str, Any]]]:
    """The items `find_item` reaches, by id: the response's output items, then the input items of its request."""
    found = []
    for item in (*stored.response.get("output", ()), *stored.input_items):
        item_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(item_id, str) and item_id:
            found.append((item_id, item))
    return found


def encode_conversation(conversation: tuple[Item, ...]) -> str:
    """The conversation as JSON through app.turn's codec; backends keep the text as it is, unread."""
    return json.dumps(turn.encode_history(conversation), ensure_ascii=False)


def decode_conversation(raw: str) -> tuple[Item, ...]:
    return turn.decode_history(json.loads(raw))


def reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class ResponseStore(ABC):
    """Stored responses for previous_response_id, item_reference, GET, DELETE and input_items; background
    responses' events and run records (app/background)."""

    backend: ClassVar[str]
    errors: ClassVar[tuple[type[BaseException], ...]]  # what the backend raises when its storage fails

    def __init__(self, location: str, ttl_days: float) -> None:
        self.location = location
        self.ttl_seconds = ttl_days * 86400  # 0: kept forever
        self.up = True  # as the last call found it
        self.write_failures = 0  # responses answered but not kept (see `keep`)

    async def put(self, owner: str, stored: StoredResponse) -> None:
        """Keep `stored` (and index its items) in one atomic write; StoreUnavailable if it cannot."""
        await self._call(self._put(owner, stored))

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        return await self._call(self._get(owner, response_id))

    async def delete(self, owner: str, response_id: str) -> bool:
        """Remove the response and the items it indexed; whether it existed."""
        return await self._call(self._delete(owner, response_id))

    async def find_item(self, owner: str, item_id: str) -> dict[str, Any] | None:
        """An output or input item of one of the owner's stored responses, by its id (the latest one to use it)."""
        return await self._call(self._find_item(owner, item_id))

    async def save_run(
        self,
        owner: str,
        stored: StoredResponse,
        events: list[dict[str, Any]],
        first: int,
        *,
        begin: str | None = None,
        end: bool = False,
    ) -> None:
        """A background response as it goes: its snapshot, its events numbered from `first` (a retried write adds
        none twice), and its run record (`begin`: made for that instance; `end`: removed)."""
        await self._call(self._save_run(owner, stored, events, first, begin, end))

    async def run_events(self, owner: str, response_id: str, after: int) -> list[dict[str, Any]]:
        """The stored events of a background response with a sequence number above `after`, in order."""
        return await self._call(self._run_events(owner, response_id, after))

    async def run_record(self, owner: str, response_id: str) -> RunRecord | None:
        return await self._call(self._run_record(owner, response_id))

    async def request_cancel(self, owner: str, response_id: str) -> bool:
        """Flag a running background response for cancel (its runner sees the flag); whether it was running."""
        return await self._call(self._request_cancel(owner, response_id))

    async def beat(self, instance: str, runs: list[tuple[str, str]]) -> set[str]:
        """Renew the heartbeat of this instance's runs (owner, response id); the ids flagged for cancel."""
        return await self._call(self._beat(instance, runs))

    async def runs_of(self, instance: str) -> list[tuple[str, str]]:
        """The runs (owner, response id) an instance left recorded: after its crash, none of them is running."""
        return await self._call(self._runs_of(instance))

    async def keep(self, owner: str, stored: StoredResponse) -> bool:
        """`put` for a turn whose answer is already the client's: a failure is logged and counted, not raised."""
        try:
            await self.put(owner, stored)
        except StoreUnavailable:
            self.write_failures += 1
            log.error("response %s answered but not stored: the response store is unavailable", stored.response["id"])
            return False
        return True

    async def health(self, detail: bool = False) -> StoreHealth:
        """A cheap round trip to the storage, for /ready; with `detail`, facts for doctor too."""
        try:
            facts = await self._probe(detail)
        except self.errors as exc:
            self._went_down(exc)
            return StoreHealth(self.backend, self.location, "unavailable", reason(exc))
        self._came_back()
        return StoreHealth(self.backend, self.location, "ok", facts)

    async def _call(self, operation: Awaitable[T]) -> T:
        try:
            result = await operation
        except self.errors as exc:
            self._went_down(exc)
            raise StoreUnavailable from exc
        self._came_back()
        return result

    def _went_down(self, exc: BaseException) -> None:
        if self.up:
            log.warning("response store %s at %s is unavailable (%s)", self.backend, self.location, reason(exc))
        self.up = False

    def _came_back(self) -> None:
        if not self.up:
            log.warning("response store %s at %s is available again", self.backend, self.location)
        self.up = True

    @abstractmethod
    async def _put(self, owner: str, stored: StoredResponse) -> None: ...

    @abstractmethod
    async def _get(self, owner: str, response_id: str) -> StoredResponse | None: ...

    @abstractmethod
    async def _delete(self, owner: str, response_id: str) -> bool: ...

    @abstractmethod
    async def _find_item(self, owner: str, item_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def _save_run(
        self,
        owner: str,
        stored: StoredResponse,
        events: list[dict[str, Any]],
        first: int,
        begin: str | None,
        end: bool,
    ) -> None: ...

    @abstractmethod
    async def _run_events(self, owner: str, response_id: str, after: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def _run_record(self, owner: str, response_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def _request_cancel(self, owner: str, response_id: str) -> bool: ...

    @abstractmethod
    async def _beat(self, instance: str, runs: list[tuple[str, str]]) -> set[str]: ...

    @abstractmethod
    async def _runs_of(self, instance: str) -> list[tuple[str, str]]: ...

    @abstractmethod
    async def _probe(self, detail: bool) -> str: ...

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
