"""The response store in one SQLite file (the default): one machine, or several instances sharing a disk.

Each row holds the response object, the input items of its request and the whole conversation that led to it
(plus its answer); a second table indexes their items by id for item_reference. WAL mode and a busy timeout let
several gateway instances share the file; calls run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.store.base import (
    ResponseStore,
    RunRecord,
    StoredResponse,
    decode_conversation,
    encode_conversation,
    items_of,
)

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
CREATE TABLE IF NOT EXISTS items (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE INDEX IF NOT EXISTS items_response ON items (response_id);
CREATE INDEX IF NOT EXISTS items_created_at ON items (created_at);
CREATE TABLE IF NOT EXISTS response_events (
    response_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (response_id, seq)
);
CREATE INDEX IF NOT EXISTS response_events_created_at ON response_events (created_at);
CREATE TABLE IF NOT EXISTS background_runs (
    response_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    instance TEXT NOT NULL,
    beat REAL NOT NULL,
    cancel INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS background_runs_instance ON background_runs (instance);
"""
_VERSION = 1  # PRAGMA user_version: 1 added the items table (filled from the rows already stored)
_PRUNE_EVERY = 100  # writes between TTL prunes


class SqliteStore(ResponseStore):
    backend = "sqlite"
    errors = (sqlite3.Error, OSError)

    def __init__(self, path: Path, ttl_days: float) -> None:
        super().__init__(str(path), ttl_days)
        self.path = path
        self._local = threading.local()
        self._writes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()
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

    def _migrate(self) -> None:
        db = self._connect()
        db.executescript(_SCHEMA)
        with _transaction(db):
            if db.execute("PRAGMA user_version").fetchone()[0] >= _VERSION:
                return
            rows = db.execute("SELECT id, owner, created_at, response, input_items FROM responses").fetchall()
            for response_id, owner, created_at, response, input_items in rows:
                stored = StoredResponse(json.loads(response), json.loads(input_items), ())
                _index(db, owner, response_id, created_at, stored)
            db.execute(f"PRAGMA user_version={_VERSION}")

    def _fresh_since(self) -> float:
        return time.time() - self.ttl_seconds if self.ttl_seconds > 0 else float("-inf")

    def _put_now(self, owner: str, stored: StoredResponse) -> None:
        db = self._connect()
        with _transaction(db):
            self._write(db, owner, stored)
        self._wrote()

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            self._prune()

    def _write(self, db: sqlite3.Connection, owner: str, stored: StoredResponse) -> None:
        now, response_id = time.time(), stored.response["id"]
        db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
            (
                response_id,
                owner,
                now,
                json.dumps(stored.response),
                json.dumps(stored.input_items),
                encode_conversation(stored.conversation),
            ),
        )
        db.execute("DELETE FROM items WHERE owner = ? AND response_id = ?", (owner, response_id))
        _index(db, owner, response_id, now, stored)

    def _save_run_now(
        self,
        owner: str,
        stored: StoredResponse,
        events: list[dict[str, Any]],
        first: int,
        begin: str | None,
        end: bool,
    ) -> None:
        db, now, response_id = self._connect(), time.time(), stored.response["id"]
        with _transaction(db):
            self._write(db, owner, stored)
            db.executemany(
                "INSERT OR IGNORE INTO response_events VALUES (?, ?, ?, ?, ?)",
                [(response_id, first + n, owner, now, json.dumps(event)) for n, event in enumerate(events)],
            )
            if begin is not None:
                db.execute(
                    "INSERT OR REPLACE INTO background_runs VALUES (?, ?, ?, ?, 0)", (response_id, owner, begin, now)
                )
            if end:
                db.execute("DELETE FROM background_runs WHERE response_id = ? AND owner = ?", (response_id, owner))
        self._wrote()

    def _run_events_now(self, owner: str, response_id: str, after: int) -> list[dict[str, Any]]:
        rows = (
            self._connect()
            .execute(
                "SELECT event FROM response_events WHERE response_id = ? AND owner = ? AND seq > ? ORDER BY seq",
                (response_id, owner, after),
            )
            .fetchall()
        )
        return [json.loads(row[0]) for row in rows]

    def _run_record_now(self, owner: str, response_id: str) -> RunRecord | None:
        row = (
            self._connect()
            .execute(
                "SELECT instance, beat, cancel FROM background_runs WHERE response_id = ? AND owner = ?",
                (response_id, owner),
            )
            .fetchone()
        )
        return RunRecord(row[0], row[1], bool(row[2])) if row else None

    def _request_cancel_now(self, owner: str, response_id: str) -> bool:
        db = self._connect()
        with _transaction(db):
            found = db.execute(
                "UPDATE background_runs SET cancel = 1 WHERE response_id = ? AND owner = ?", (response_id, owner)
            ).rowcount
        return found > 0

    def _beat_now(self, instance: str, runs: list[tuple[str, str]]) -> set[str]:
        db, now = self._connect(), time.time()
        ids = [response_id for _, response_id in runs]
        with _transaction(db):
            db.executemany(
                "UPDATE background_runs SET beat = ? WHERE response_id = ? AND instance = ?",
                [(now, response_id, instance) for response_id in ids],
            )
            rows = db.execute("SELECT response_id FROM background_runs WHERE instance = ? AND cancel = 1", (instance,))
            flagged = {row[0] for row in rows.fetchall()}
        return flagged & set(ids)

    def _runs_of_now(self, instance: str) -> list[tuple[str, str]]:
        rows = self._connect().execute("SELECT owner, response_id FROM background_runs WHERE instance = ?", (instance,))
        return [(row[0], row[1]) for row in rows.fetchall()]

    def _get_now(self, owner: str, response_id: str) -> StoredResponse | None:
        row = (
            self._connect()
            .execute(
                "SELECT response, input_items, conversation FROM responses WHERE id = ? AND owner = ? "
                "AND created_at >= ?",
                (response_id, owner, self._fresh_since()),
            )
            .fetchone()
        )
        if row is None:
            return None
        return StoredResponse(json.loads(row[0]), json.loads(row[1]), decode_conversation(row[2]))

    def _delete_now(self, owner: str, response_id: str) -> bool:
        db = self._connect()
        with _transaction(db):
            gone = db.execute("DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner)).rowcount
            db.execute("DELETE FROM items WHERE owner = ? AND response_id = ?", (owner, response_id))
            db.execute("DELETE FROM response_events WHERE owner = ? AND response_id = ?", (owner, response_id))
        return gone > 0

    def _find_item_now(self, owner: str, item_id: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute(
                "SELECT item FROM items WHERE owner = ? AND id = ? AND created_at >= ?",
                (owner, item_id, self._fresh_since()),
            )
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def _prune(self) -> None:
        if self.ttl_seconds <= 0:
            return
        db, cutoff = self._connect(), self._fresh_since()
        with _transaction(db):
            pruned = db.execute("DELETE FROM responses WHERE created_at < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM items WHERE created_at < ?", (cutoff,))
            db.execute("DELETE FROM response_events WHERE created_at < ?", (cutoff,))
        if pruned:
            log.info("pruned %d stored responses older than CODEX_RESPONSES_TTL_DAYS", pruned)

    def _probe_now(self) -> str:
        db = self._connect()
        db.execute("SELECT 1 FROM responses LIMIT 1").fetchall()
        return f"journal {db.execute('PRAGMA journal_mode').fetchone()[0]}"

    async def _put(self, owner: str, stored: StoredResponse) -> None:
        await asyncio.to_thread(self._put_now, owner, stored)

    async def _get(self, owner: str, response_id: str) -> StoredResponse | None:
        return await asyncio.to_thread(self._get_now, owner, response_id)

    async def _delete(self, owner: str, response_id: str) -> bool:
        return await asyncio.to_thread(self._delete_now, owner, response_id)

    async def _find_item(self, owner: str, item_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._find_item_now, owner, item_id)

    async def _save_run(
        self,
        owner: str,
        stored: StoredResponse,
        events: list[dict[str, Any]],
        first: int,
        begin: str | None,
        end: bool,
    ) -> None:
        await asyncio.to_thread(self._save_run_now, owner, stored, events, first, begin, end)

    async def _run_events(self, owner: str, response_id: str, after: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._run_events_now, owner, response_id, after)

    async def _run_record(self, owner: str, response_id: str) -> RunRecord | None:
        return await asyncio.to_thread(self._run_record_now, owner, response_id)

    async def _request_cancel(self, owner: str, response_id: str) -> bool:
        return await asyncio.to_thread(self._request_cancel_now, owner, response_id)

    async def _beat(self, instance: str, runs: list[tuple[str, str]]) -> set[str]:
        return await asyncio.to_thread(self._beat_now, instance, runs)

    async def _runs_of(self, instance: str) -> list[tuple[str, str]]:
        return await asyncio.to_thread(self._runs_of_now, instance)

    async def _probe(self, detail: bool) -> str:
        return await asyncio.to_thread(self._probe_now)

    async def close(self) -> None:
        """Nothing to release: each worker thread's connection closes with its thread."""


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): one writer at a time across instances sharing the file."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _index(db: sqlite3.Connection, owner: str, response_id: str, created_at: float, stored: StoredResponse) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?)",
        [(owner, item_id, response_id, created_at, json.dumps(item)) for item_id, item in items_of(stored)],
    )
