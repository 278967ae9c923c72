"""Stored responses (for previous_response_id and GET/DELETE /v1/responses/{id}), in SQLite.

Each row holds the response object, the input items of its request, and the whole conversation that led to
it (plus its answer) as neutral messages, owned by a hash of the API key that created it. WAL mode and a busy
timeout let several gateway instances share one file; calls run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.turn import Item, decode_history, encode_history

log = logging.getLogger("codex_wrapper")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    conversation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created_at ON responses (created_at);
"""
_PRUNE_EVERY = 100  # writes between TTL prunes


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    conversation: tuple[Item, ...]


class ResponseStore:
    def __init__(self, path: Path, ttl_days: float) -> None:
        self.path = path
        self.ttl_seconds = ttl_days * 86400
        self._local = threading.local()
        self._writes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
        self._prune()

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def _put(self, owner: str, stored: StoredResponse) -> None:
        self._connect().execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
            (
                stored.response["id"],
                owner,
                int(stored.response.get("created_at") or time.time()),
                json.dumps(stored.response),
                json.dumps(stored.input_items),
                json.dumps(encode_history(stored.conversation)),
            ),
        )
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            self._prune()

    def _get(self, owner: str, response_id: str) -> StoredResponse | None:
        row = (
            self._connect()
            .execute(
                "SELECT response, input_items, conversation FROM responses WHERE id = ? AND owner = ?",
                (response_id, owner),
            )
            .fetchone()
        )
        if row is None:
            return None
        return StoredResponse(json.loads(row[0]), json.loads(row[1]), decode_history(json.loads(row[2])))

    def _delete(self, owner: str, response_id: str) -> bool:
        cursor = self._connect().execute("DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner))
        return cursor.rowcount > 0

    def _prune(self) -> None:
        if self.ttl_seconds <= 0:
            return
        cursor = self._connect().execute(
            "DELETE FROM responses WHERE created_at < ?", (int(time.time() - self.ttl_seconds),)
        )
        if cursor.rowcount:
            log.info("pruned %d stored responses older than CODEX_RESPONSES_TTL_DAYS", cursor.rowcount)

    async def put(self, owner: str, stored: StoredResponse) -> None:
        await asyncio.to_thread(self._put, owner, stored)

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        return await asyncio.to_thread(self._get, owner, response_id)

    async def delete(self, owner: str, response_id: str) -> bool:
        return await asyncio.to_thread(self._delete, owner, response_id)
