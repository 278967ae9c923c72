"""The ChatGPT plan's limits: what Codex reports of them, and refusing turns while they are used up.

Fed by every app-server worker's `account/rateLimits/updated` (the backend's x-codex-* headers after each reply),
by `account/rateLimits/read` (a ChatGPT login only), and by turns that fail with usageLimitExceeded (both engines;
`codex exec --json` reports no limits otherwise). While a limit is known to be reached, turns are refused at once
(429 usage_limit_reached, Retry-After) until the reset, except one probe a minute that reaches the model, so an
early reset or bought credits are noticed. With a shared store (plan_limits_shared.py) every instance sees one state.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from app.errors import ApiError, failure_error
from app.turn import Failed, FailureKind

log = logging.getLogger("codex_wrapper")
PROBE_INTERVAL = 60.0  # seconds between probes while the limit holds; also the least time between two reads
UNKNOWN_RESET = 60.0  # how long a reached limit with no known reset time is held
WINDOWS = ("primary", "secondary")
SOURCE_UPDATED = "account/rateLimits/updated"
SOURCE_READ = "account/rateLimits/read"
SOURCE_REFUSED = "usage_limit_reached"
# Codex's message for usageLimitExceeded names the reset in its local time: "Try again at 6:37 AM." (today) or
# "Try again at Dec 6th, 2026 7:07 AM."
_TRY_AGAIN = re.compile(
    r"try again at (?:(?P<month>[A-Z][a-z]{2}) (?P<day>\d{1,2})(?:st|nd|rd|th), (?P<year>\d{4}) )?"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2}) ?(?P<ampm>[AP]M)",
    re.IGNORECASE,
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True)
class Window:
    used_percent: float
    window_minutes: int | None = None
    resets_at: int | None = None  # Unix seconds


@dataclass(frozen=True)
class Snapshot:
    """The plan's state as last reported; `taken_at` 0 means nothing is known yet."""

    plan_type: str | None = None
    primary: Window | None = None
    secondary: Window | None = None
    credits: dict[str, Any] | None = None  # hasCredits, unlimited, balance
    reached_type: str | None = None  # Codex's rateLimitReachedType
    taken_at: float = 0.0
    source: str = ""
    # a refusal in force: turns are refused until `reached_until` (Unix seconds); `reached_message` says why
    reached_until: float = 0.0
    reached_message: str = ""
    reached_known: bool = True  # whether `reached_until` is the reset Codex named (else a probe interval)
    reached_at: float = 0.0  # when a turn hit the limit

    def windows(self) -> dict[str, Window]:
        return {name: w for name in WINDOWS if (w := getattr(self, name)) is not None}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Snapshot:
        windows = {name: Window(**raw[name]) if raw.get(name) else None for name in WINDOWS}
        return cls(**{**raw, **windows})


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _window(raw: Any) -> Window | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("usedPercent"), int | float):
        return None
    return Window(float(raw["usedPercent"]), _int(raw.get("windowDurationMins")), _int(raw.get("resetsAt")))


def codex_limits(raw: Any) -> dict[str, Any] | None:
    """The `codex` RateLimitSnapshot of an `account/rateLimits/updated` params or `account/rateLimits/read` result
    (its multi-bucket view first); None when it names another bucket or has no snapshot."""
    if not isinstance(raw, dict):
        return None
    buckets = raw.get("rateLimitsByLimitId")
    codex = buckets.get("codex") if isinstance(buckets, dict) else None
    if isinstance(codex, dict):
        return codex
    limits = raw.get("rateLimits")
    if not isinstance(limits, dict) or limits.get("limitId") not in (None, "codex"):
        return None
    return limits


def merged(old: Snapshot, limits: dict[str, Any], source: str, now: float) -> Snapshot:
    """`old` updated with what `limits` reports: a rolling update is sparse, so a null leaves the old value."""
    credit = limits.get("credits")
    plan = limits.get("planType")
    reached = limits.get("rateLimitReachedType")
    return replace(
        old,
        plan_type=plan if isinstance(plan, str) else old.plan_type,
        primary=_window(limits.get("primary")) or old.primary,
        secondary=_window(limits.get("secondary")) or old.secondary,
        credits={k: credit.get(k) for k in ("hasCredits", "unlimited", "balance")}
        if isinstance(credit, dict)
        else old.credits,
        reached_type=reached if isinstance(reached, str) else None if source == SOURCE_READ else old.reached_type,
        taken_at=now,
        source=source,
    )


def parse_reset(message: str, now: float, tz: Any = None) -> float | None:
    """The reset time Codex's usage-limit message names (in Codex's local time zone, the gateway's), or None."""
    found = _TRY_AGAIN.search(message)
    if found is None:
        return None
    hour = int(found["hour"]) % 12 + (12 if found["ampm"].upper() == "PM" else 0)
    local = datetime.fromtimestamp(now, tz) if tz is not None else datetime.fromtimestamp(now).astimezone()
    try:
        if found["year"]:
            month = _MONTHS.index(found["month"].lower()) + 1
            day = local.replace(year=int(found["year"]), month=month, day=int(found["day"]))
        else:
            day = local
        at = day.replace(hour=hour, minute=int(found["minute"]), second=0, microsecond=0)
    except ValueError:
        return None
    stamp = at.timestamp()
    if not found["year"] and stamp < now - 120:  # a time of day already past is tomorrow's
        stamp = (at + timedelta(days=1)).timestamp()
    return stamp if stamp > now else now + UNKNOWN_RESET  # within the named minute: hold a probe interval


def utc_text(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


def limit_failure(until: float, now: float, known: bool = True) -> Failed:
    """A reached plan limit as a failed turn: the same 429 whether a turn hit it or it was refused before one."""
    seconds = max(1, math.ceil(until - now))
    when = f"It resets at {utc_text(until)}" if known else "Its reset time is not known"
    message = (
        f"The ChatGPT plan's usage limit behind this gateway is reached. {when}; retry after {seconds} s. "
        "GET /limits shows the plan's windows."
    )
    return Failed(FailureKind.USAGE_LIMIT, message, retry_at=until)


def limit_error(until: float, now: float, known: bool = True) -> ApiError:
    failed = limit_failure(until, now, known)
    return failure_error(failed.kind, failed.message, failed.retry_at, now)


class SharedState(Protocol):
    """Where several instances keep one state (app/codex/plan_limits_shared.py)."""

    async def load(self) -> Snapshot | None: ...

    async def save(self, snapshot: Snapshot, hold_probe: float = 0.0) -> None:
        """Keep `snapshot`; with `hold_probe`, no instance may claim a probe for that many seconds."""
        ...

    async def claim_probe(self, seconds: float) -> bool: ...

    async def close(self) -> None: ...


Reader = Callable[[], Awaitable[dict[str, Any] | None]]  # account/rateLimits/read through a worker


@dataclass
class PlanLimits:
    """One gateway's view of the plan: the snapshot, the refusal in force, and the counts for /metrics."""

    shared: SharedState | None = None
    clock: Callable[[], float] = time.time
    snapshot: Snapshot = field(default_factory=Snapshot)
    refusals: int = 0
    reader: Reader | None = None  # set by the app-server engine
    read_note: str = ""  # why account/rateLimits/read gave nothing (e.g. not a ChatGPT login)
    _last_probe: float = 0.0
    _last_read: float = float("-inf")
    _synced: float = float("-inf")
    _writes: set[asyncio.Task[None]] = field(default_factory=set)
    _pending: Snapshot | None = None
    _hold_probe = False  # the next write also starts the shared probe interval (a turn just hit the limit)

    # --- what Codex reports -------------------------------------------------------------------------------
    def update(self, params: Any, source: str = SOURCE_UPDATED) -> bool:
        """Take an `account/rateLimits/updated` params (or a read result); whether it was the codex bucket."""
        limits = codex_limits(params)
        if limits is None:
            return False
        now = self.clock()
        # a refusal in force stays: only a turn that works, or the reset, lifts it
        self.snapshot = merged(self.snapshot, limits, source, now)
        self._publish()
        return True

    def on_notification(self, message: dict[str, Any]) -> None:
        """RpcSession hook for notifications without a thread."""
        if message.get("method") == SOURCE_UPDATED:
            self.update(message.get("params"))

    def _window_full(self, now: float) -> float | None:
        """The latest reset of a window at 100% that has not reset yet."""
        resets = [
            float(w.resets_at)
            for w in self.snapshot.windows().values()
            if w.used_percent >= 100 and w.resets_at is not None and w.resets_at > now
        ]
        return max(resets) if resets else None

    def limit_hit(self, codex_message: str) -> Failed:
        """A turn failed with usageLimitExceeded: hold refusals until the reset; the failure to answer with."""
        now = self.clock()
        until = self._window_full(now) or parse_reset(codex_message, now)
        known = until is not None
        until = until or now + UNKNOWN_RESET
        self.snapshot = replace(
            self.snapshot,
            reached_until=until,
            reached_message=codex_message[:300],
            reached_known=known,
            reached_at=now,
            taken_at=now,
            source=SOURCE_REFUSED,
        )
        self._last_probe = now
        self._hold_probe = True
        self._publish()
        log.warning(
            "the plan's usage limit is reached; turns are refused until %s (%s)", utc_text(until), codex_message
        )
        return limit_failure(until, now, known)

    def turn_worked(self, started: float) -> None:
        """A turn started at `started` got an answer: a refusal in force ends (an early reset, bought credits) if the
        turn began after the limit was hit (one that began before may have reached the model before it)."""
        if self.snapshot.reached_until and started >= self.snapshot.reached_at:
            log.warning("a turn got an answer: the plan's usage limit no longer holds")
            self.snapshot = replace(self.snapshot, reached_until=0.0, reached_message="", taken_at=self.clock())
            self._publish()

    # --- admission ----------------------------------------------------------------------------------------
    async def admit(self) -> None:
        """Before a turn: the 429 while the limit holds, except one probe a minute (across instances)."""
        await self._sync()
        now = self.clock()
        until = self.snapshot.reached_until
        if until <= now:
            return
        if await self._claim_probe(now):
            log.info("the plan's usage limit holds until %s; this turn goes through as a probe", utc_text(until))
            return
        self.refusals += 1
        raise limit_error(until, now, self.snapshot.reached_known)

    async def _claim_probe(self, now: float) -> bool:
        if self.shared is not None:
            try:
                return await self.shared.claim_probe(PROBE_INTERVAL)
            except Exception as exc:  # the shared store failed: this instance decides alone
                log.debug("plan limits: cannot claim the probe in the shared store: %s", exc)
        if now - self._last_probe >= PROBE_INTERVAL:
            self._last_probe = now
            return True
        return False

    # --- reading ------------------------------------------------------------------------------------------
    async def refresh(self, force: bool = False) -> None:
        """account/rateLimits/read, at most once a minute (a ChatGPT login only: otherwise Codex refuses)."""
        now = self.clock()
        if self.reader is None or (not force and now - self._last_read < PROBE_INTERVAL):
            return
        self._last_read = now
        try:
            result = await self.reader()
        except Exception as exc:  # not a ChatGPT login, no worker ready, the backend failed
            self.read_note = str(exc)[:200]
            return
        if result is not None and self.update(result, SOURCE_READ):
            self.read_note = ""

    async def read_at_startup(self) -> None:
        """The plan's limits at startup (a ChatGPT login answers account/rateLimits/read); its name in the log."""
        if self.reader is None:
            return
        await self.refresh(force=True)
        if self.snapshot.source == SOURCE_READ:
            log.info("ChatGPT plan: %s", summary(self.snapshot, self.clock()))
        else:
            log.info("plan limits: not readable at startup (%s); a reply reports them", self.read_note or "no answer")

    async def current(self) -> Snapshot:
        await self._sync()
        return self.snapshot

    def reached(self, now: float | None = None) -> bool:
        """Whether turns are refused now (a turn hit the limit and it has not reset; a window at 100% alone is not
        enough: credits may still pay for turns)."""
        return self.snapshot.reached_until > (self.clock() if now is None else now)

    # --- the shared store ---------------------------------------------------------------------------------
    async def _sync(self) -> None:
        """Adopt the shared state when it is newer than ours (read at most once a second)."""
        now = self.clock()
        if self.shared is None or now - self._synced < 1.0:
            return
        self._synced = now
        try:
            found = await self.shared.load()
        except Exception as exc:
            log.debug("plan limits: cannot read the shared store: %s", exc)
            return
        if found is not None and found.taken_at > self.snapshot.taken_at:
            self.snapshot = found

    def _publish(self) -> None:
        """Write the snapshot to the shared store in the background: one writer, so writes land in order."""
        if self.shared is None:
            return
        self._pending = self.snapshot
        if self._writes:
            return  # the running writer takes the latest
        try:
            task = asyncio.get_running_loop().create_task(self._write())
        except RuntimeError:  # no loop (unit tests of pure logic)
            return
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self) -> None:
        assert self.shared is not None
        while (snapshot := self._pending) is not None:
            self._pending = None
            hold, self._hold_probe = self._hold_probe, False
            try:
                await self.shared.save(snapshot, PROBE_INTERVAL if hold else 0.0)
            except Exception as exc:
                log.debug("plan limits: cannot write the shared store: %s", exc)

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self.shared is not None:
            await self.shared.close()

    # --- what /limits, /metrics and doctor show -----------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        now = self.clock()
        windows = {
            name: (w.used_percent, max(0.0, w.resets_at - now) if w.resets_at is not None else None)
            for name, w in self.snapshot.windows().items()
        }
        return {"windows": windows, "refusals": self.refusals, "reached": self.reached(now)}


def describe(snapshot: Snapshot, now: float, read_note: str = "") -> dict[str, Any]:
    """The body of GET /limits: no account id, e-mail or token is ever in a snapshot."""
    if not snapshot.taken_at:
        return {
            "object": "plan_limits",
            "known": False,
            "message": "Nothing is known of the plan's limits yet: Codex reports them after a reply through the "
            "app-server engine, with a ChatGPT login when asked, or when a limit is reached."
            + (f" Asked, Codex answered: {read_note}" if read_note else ""),
            "limit_reached": False,
        }
    windows: dict[str, Any] = {}
    for name, w in snapshot.windows().items():
        resets = w.resets_at
        windows[name] = {
            "used_percent": w.used_percent,
            "window_minutes": w.window_minutes,
            "resets_at": iso(resets) if resets is not None else None,
            "resets_at_unix": resets,
            "resets_in_seconds": max(0, math.ceil(resets - now)) if resets is not None else None,
        }
    credit = snapshot.credits
    reset = snapshot.reached_until if snapshot.reached_until > now else None
    return {
        "object": "plan_limits",
        "known": True,
        "plan_type": snapshot.plan_type,
        "windows": windows,
        "credits": {
            "has_credits": credit.get("hasCredits"),
            "unlimited": credit.get("unlimited"),
            "balance": credit.get("balance"),
        }
        if credit
        else None,
        "limit_reached": reset is not None,
        "limit_resets_at": iso(reset) if reset is not None else None,
        "limit_resets_at_unix": int(reset) if reset is not None else None,
        "updated_at": iso(snapshot.taken_at),
        "updated_at_unix": int(snapshot.taken_at),
        "source": snapshot.source,
    }


def summary(snapshot: Snapshot, now: float) -> str:
    """One line for doctor and the startup log."""
    parts = [f"plan {snapshot.plan_type or 'unknown'}"]
    for name, w in snapshot.windows().items():
        length = f"{w.window_minutes} min" if w.window_minutes else "?"
        reset = f", resets {utc_text(w.resets_at)}" if w.resets_at is not None else ""
        parts.append(f"{name} ({length}) {w.used_percent:g}% used{reset}")
    if snapshot.reached_until > now:
        parts.append(f"limit reached until {utc_text(snapshot.reached_until)}")
    return "; ".join(parts)
