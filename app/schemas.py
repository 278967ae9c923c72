"""JSON Schemas a client sends (function parameters, structured outputs): hostile data, handled offline and bounded.

- Offline: every `$ref` must point inside the schema itself. Validators are built with an empty `referencing`
  Registry that never retrieves anything, and each `$ref` is resolved at request time, so a file:// or http:// one
  is a 400 before any model runs (jsonschema's default would fetch it with urllib).
- Bounded: the request's schemas together have at most CODEX_SCHEMA_MAX_BYTES of JSON and CODEX_SCHEMA_MAX_SUBSCHEMAS
  subschemas (counted as validation reaches them: a local `$ref` counts each time it is reached, so `$defs` that
  double at each level are refused); each is at most CODEX_SCHEMA_MAX_DEPTH levels deep.
- Linear time: `pattern`, `patternProperties` and `format: regex` run on RE2 (google-re2); a pattern RE2 cannot run
  (lookaround, backreferences) is a 400.
- Off the event loop: checking and validation run in two worker processes with a time limit
  (CODEX_SCHEMA_TIMEOUT_SECONDS), enforced at every keyword; going over it is a clean error.
- Messages never quote a document the gateway would have read, and cut what they quote from the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import re2
from jsonschema import (
    Draft4Validator,
    Draft6Validator,
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
    FormatChecker,
    ValidationError,
    validators,
)
from jsonschema.protocols import Validator
from referencing import Registry, Specification
from referencing import jsonschema as dialects
from referencing.exceptions import NoSuchResource

WORKERS = 2  # processes checking schemas; each job stops itself at its deadline
QUOTE = 200  # characters of a schema value or error quoted in a message
REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


class SchemaRefused(Exception):
    """A schema the gateway will not use; the message says why (without the document a `$ref` names)."""


class SchemaTimeout(Exception):
    """Checking or validation went past CODEX_SCHEMA_TIMEOUT_SECONDS."""


@dataclass(frozen=True)
class SchemaLimits:
    max_bytes: int = 512 * 1024
    max_depth: int = 64
    max_subschemas: int = 10_000
    timeout: float = 5.0


@dataclass(frozen=True)
class Mismatch:
    """Why an instance does not fit: `where` is the JSON path of the first error, None when it could not be checked."""

    where: str | None
    message: str


def quote(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= QUOTE else text[:QUOTE] + "…")


def _cut(text: str) -> str:
    return text if len(text) <= 2 * QUOTE else text[: 2 * QUOTE] + "…"


# --- the clock: each job sets its deadline in its own thread; every keyword and walk step looks at it ------------

_clock = threading.local()


def _tick() -> None:
    if time.monotonic() > getattr(_clock, "deadline", math.inf):
        raise SchemaTimeout


# --- RE2 for every regular expression a schema holds ---------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the client's 400, not a line on stderr


@lru_cache(maxsize=512)
def _regex(pattern: str) -> Any:
    """The compiled RE2 pattern; SchemaRefused when RE2 cannot run it."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except Exception:  # re2.error, or text that is not valid Unicode (a lone surrogate)
        raise SchemaRefused(
            f"the pattern {quote(pattern)} cannot run in linear time here: patterns use RE2 syntax "
            "(no lookaround, no backreferences)"
        ) from None


def _matches(pattern: str, text: str) -> bool:
    try:
        return _regex(pattern).search(text) is not None
    except UnicodeError:  # text RE2 cannot take (a lone surrogate) matches no pattern
        return False


def _pattern(validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield ValidationError(f"{quote(instance)} does not match {quote(pattern)}")


def _pattern_properties(
    validator: Validator, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = sorted(
        (key for key in instance if key not in known and not any(_matches(p, key) for p in patterns)), key=str
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        listed = ", ".join(quote(extra) for extra in extras)
        if patterns:
            yield ValidationError(f"{listed} do not match any of the regexes: {', '.join(map(quote, patterns))}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


def _timed(keyword: Callable[..., Any]) -> Callable[..., Any]:
    def run(validator: Validator, value: Any, instance: Any, schema: Any) -> Any:
        _tick()
        return keyword(validator, value, instance, schema)

    return run


def _safe(base: type[Validator]) -> type[Validator]:
    """`base` with RE2 for regular expressions and the clock at every keyword."""
    keywords = {name: _timed(keyword) for name, keyword in base.VALIDATORS.items()}
    keywords.update(
        pattern=_timed(_pattern),
        patternProperties=_timed(_pattern_properties),
        additionalProperties=_timed(_additional_properties),
    )
    return cast("type[Validator]", validators.extend(base, keywords))


@dataclass(frozen=True)
class Dialect:
    validator: type[Validator]  # with RE2 and the clock
    specification: Specification[Any]


_DIALECTS = {
    "json-schema.org/draft/2020-12/schema": Dialect(_safe(Draft202012Validator), dialects.DRAFT202012),
    "json-schema.org/draft/2019-09/schema": Dialect(_safe(Draft201909Validator), dialects.DRAFT201909),
    "json-schema.org/draft-07/schema": Dialect(_safe(Draft7Validator), dialects.DRAFT7),
    "json-schema.org/draft-06/schema": Dialect(_safe(Draft6Validator), dialects.DRAFT6),
    "json-schema.org/draft-04/schema": Dialect(_safe(Draft4Validator), dialects.DRAFT4),
}
LATEST = _DIALECTS["json-schema.org/draft/2020-12/schema"]


def dialect_of(schema: Any) -> Dialect:
    """The schema's `$schema` dialect (draft 4 to 2020-12); 2020-12 when it names none or another."""
    named = schema.get("$schema") if isinstance(schema, dict) else None
    if not isinstance(named, str):
        return LATEST
    key = named.split("://", 1)[-1].rstrip("#")
    return _DIALECTS.get(key, LATEST)


def _never_retrieve(uri: str) -> Any:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class: its stubs omit the field


OFFLINE: Registry[Any] = Registry(retrieve=_never_retrieve)  # type: ignore[call-arg]  # empty: nothing is fetched

_META_FORMATS = FormatChecker()
_META_FORMATS.checkers = {**Draft202012Validator.FORMAT_CHECKER.checkers}


@_META_FORMATS.checks("regex", raises=SchemaRefused)  # type: ignore[untyped-decorator]  # jsonschema: untyped
def _is_regex(value: object) -> bool:
    return not isinstance(value, str) or _regex(value) is not None


# --- checking a request's schemas ---------------------------------------------------------------------------------


class Budget:
    """What the request's schemas may still take: bytes and subschemas."""

    def __init__(self, limits: SchemaLimits) -> None:
        self.limits = limits
        self.bytes = limits.max_bytes
        self.subschemas = limits.max_subschemas


def _shape(schema: Any, budget: Budget) -> None:
    """Depth and bytes, walked without recursion (a 900-deep schema is a 400, never a RecursionError). The walk
    adds up a lower bound of the JSON size and stops once it is over the budget, so a huge schema is never
    serialized; one within it is measured exactly."""
    limits, least, steps = budget.limits, 0, 0
    todo: list[tuple[Any, int]] = [(schema, 1)]
    while todo and least <= budget.bytes:
        value, depth = todo.pop()
        least += 1 + (len(value) if isinstance(value, str) else 0)
        steps += 1
        if steps % 1024 == 0:
            _tick()
        if depth > limits.max_depth:
            raise SchemaRefused(f"it is nested more than {limits.max_depth} levels deep (CODEX_SCHEMA_MAX_DEPTH)")
        if isinstance(value, dict):
            least += sum(len(key) for key in value)
            todo += ((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            todo += ((child, depth + 1) for child in value)
    size = least if least > budget.bytes else len(json.dumps(schema, separators=(",", ":")).encode())
    if size > budget.bytes:
        raise SchemaRefused(
            f"the request's JSON Schemas are larger than {limits.max_bytes} bytes together (CODEX_SCHEMA_MAX_BYTES)"
        )
    budget.bytes -= size


def _meta_check(schema: Any, dialect: Dialect) -> None:
    """The schema against its dialect's metaschema (offline: the metaschemas ship with jsonschema)."""
    meta = dialect.validator(dialect.validator.META_SCHEMA, format_checker=_META_FORMATS, registry=OFFLINE)
    error = next(iter(meta.iter_errors(schema)), None)
    if error is None:
        return
    if isinstance(error.cause, SchemaRefused):
        raise error.cause
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    raise SchemaRefused(f"at {where}: {_cut(error.message)}")


def _walk(schema: Any, dialect: Dialect, budget: Budget) -> None:
    """Every subschema as validation reaches it: each `$ref` resolves inside the document (a cycle is followed
    once), each regular expression runs on RE2, and the subschemas fit the budget."""
    spec = dialect.specification
    root = spec.create_resource(schema)
    base = root.id() or ""
    resolver = OFFLINE.with_resource(base, root).resolver(base_uri=base)
    on_path: set[int] = set()  # the subschemas (by identity) between the root and the one walked: a cycle
    todo: list[tuple[Any, Any]] = [(schema, resolver)]
    pattern_keys = unevaluated = False
    while todo:
        node, resolver = todo.pop()
        if node is None:  # leaving the subschema below it in the stack
            on_path.discard(resolver)
            continue
        budget.subschemas -= 1
        if budget.subschemas < 0:
            raise SchemaRefused(
                f"the request's JSON Schemas have more than {budget.limits.max_subschemas} subschemas together, "
                "counting each place a $ref leads each time it is reached (CODEX_SCHEMA_MAX_SUBSCHEMAS)"
            )
        if budget.subschemas % 256 == 0:
            _tick()
        if not isinstance(node, dict) or id(node) in on_path:
            continue
        on_path.add(id(node))
        todo.append((None, id(node)))
        if node is not schema and spec.id_of(node):
            resolver = resolver.in_subresource(spec.create_resource(node))
        for keyword in REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str):
                todo.append(_resolve(resolver, keyword, ref))
        if isinstance(node.get("pattern"), str):
            _regex(node["pattern"])
        if isinstance(node.get("patternProperties"), dict):
            pattern_keys = True
            for key in node["patternProperties"]:
                _regex(key)
        unevaluated = unevaluated or "unevaluatedProperties" in node
        todo += ((child, resolver) for child in spec.subresources_of(node))
    if pattern_keys and unevaluated:  # jsonschema would run those patterns on Python's re: not linear
        raise SchemaRefused("'unevaluatedProperties' together with 'patternProperties' is not supported here")


def _resolve(resolver: Any, keyword: str, ref: str) -> tuple[Any, Any]:
    try:
        resolved = resolver.lookup(ref)
    except Exception:  # Unresolvable (incl. remote and file URIs: the registry never retrieves), or a bad URI
        raise SchemaRefused(
            f"{keyword} {quote(ref)} does not point inside the schema: only references within the same document "
            "(such as '#/$defs/name') are followed, nothing is fetched"
        ) from None
    return resolved.contents, resolved.resolver


def check_one(schema: Any, budget: Budget) -> None:
    """Everything about one schema, in the calling thread (see the module's doc); SchemaRefused says why not."""
    if not isinstance(schema, dict | bool):
        raise SchemaRefused("a JSON Schema must be an object")
    _shape(schema, budget)
    dialect = dialect_of(schema)
    try:
        _meta_check(schema, dialect)
        _walk(schema, dialect, budget)
    except RecursionError:
        raise SchemaRefused("it is nested too deeply to check") from None


# --- validation of an instance ------------------------------------------------------------------------------------


def first_error_now(schema: Any, instance: Any) -> Mismatch | None:
    """The first way `instance` breaks `schema` (already checked by check_one), in the calling thread."""
    dialect = dialect_of(schema)
    try:
        validator = dialect.validator(schema, registry=OFFLINE)
        error = next(iter(validator.iter_errors(instance)), None)
    except SchemaTimeout:
        raise
    except RecursionError:
        return Mismatch(None, "it is nested too deeply to check")
    except Exception as exc:  # never the exception's text: it could quote a document
        return Mismatch(None, f"the schema cannot be applied ({type(exc).__name__})")
    if error is None:
        return None
    return Mismatch("/".join(str(part) for part in error.absolute_path) or "(root)", _cut(error.message))


# --- the gateway's side: jobs in worker processes, each with its deadline ----------------------------------------


def _with_deadline(timeout: float, job: Callable[[], Any]) -> Any:
    _clock.deadline = time.monotonic() + timeout  # from when the job starts, not while it waited for a worker
    try:
        return job()
    finally:
        _clock.deadline = math.inf


def check_job(schemas: list[tuple[str, Any]], limits: SchemaLimits) -> tuple[str, str] | None:
    """In a worker: (param, why) for the first schema refused, or None."""
    try:
        _with_deadline(limits.timeout, lambda: check_all(schemas, limits))
    except RefusedAt as refused:
        return refused.param, refused.reason
    return None


def validate_job(schema: Any, instance: Any, timeout: float) -> Mismatch | None:
    """In a worker: the first way `instance` breaks `schema`, or None."""
    try:
        return cast("Mismatch | None", _with_deadline(timeout, lambda: first_error_now(schema, instance)))
    except SchemaTimeout:
        return Mismatch(None, f"checking took longer than {timeout:g} s (CODEX_SCHEMA_TIMEOUT_SECONDS)")


def _worker_start(gateway: int) -> None:
    """In a new worker: end with the gateway, even if it is killed (Linux); yield the CPU to its event loop."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != gateway:  # it died before the line above
        os._exit(0)
    os.nice(10)


class SchemaChecker:
    """Checks a request's schemas and validates answers against them, within the limits, in WORKERS processes:
    spawned (they share no lock or thread with the gateway), started at the first schema, replaced if one dies.
    Processes rather than threads: a busy thread would take the GIL from the event loop (/health)."""

    def __init__(self, limits: SchemaLimits) -> None:
        self.limits = limits
        self._pool: ProcessPoolExecutor | None = None

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            spawn = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                WORKERS, mp_context=spawn, initializer=_worker_start, initargs=(os.getpid(),)
            )
        return self._pool

    def warm(self) -> None:
        """Start the workers now (each imports this module, about a second), not at the first schema."""
        pool = self._workers()
        for _ in range(WORKERS):
            pool.submit(validate_job, True, None, 1.0)

    async def _run(self, job: Callable[..., Any], *args: Any) -> Any:
        pool = self._workers()
        try:
            return await asyncio.wrap_future(pool.submit(job, *args))
        except BrokenProcessPool:  # a worker died (killed, out of memory): the next job gets new ones
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def check(self, schemas: Sequence[tuple[str, Any, str | None]]) -> None:
        """Check a request's (param, schema, error code) triples together; RefusedAt names the first refused
        (the caller answers it as a 400: this module stays free of FastAPI, which workers would import)."""
        if not schemas:
            return
        codes = {param: code for param, _, code in schemas}
        try:
            refused = await self._run(check_job, [(param, schema) for param, schema, _ in schemas], self.limits)
        except BrokenProcessPool:
            refused = (schemas[0][0], "the schema checker stopped while checking it")
        except RecursionError:  # too deep to pickle for a worker (about 1000 levels): far past the depth limit
            refused = (_too_deep(schemas), f"it is nested more than {self.limits.max_depth} levels deep "
                       "(CODEX_SCHEMA_MAX_DEPTH)")  # fmt: skip
        if refused is not None:
            param, reason = refused
            raise RefusedAt(param, reason, codes.get(param))

    async def first_error(self, schema: Any, instance: Any) -> Mismatch | None:
        try:
            return cast("Mismatch | None", await self._run(validate_job, schema, instance, self.limits.timeout))
        except BrokenProcessPool:
            return Mismatch(None, "the schema checker stopped while checking it")
        except RecursionError:  # too deep to pickle for a worker
            return Mismatch(None, "it is nested too deeply to check")


def _too_deep(schemas: Sequence[tuple[str, Any, str | None]]) -> str:
    """The param of the first schema that cannot be pickled for its depth (C speed, only on this rare path)."""
    for param, schema, _ in schemas:
        try:
            pickle.dumps(schema)
        except RecursionError:
            return param
    return schemas[0][0]


class RefusedAt(Exception):
    """SchemaRefused with the request parameter that holds the schema."""

    def __init__(self, param: str, reason: str, code: str | None = None) -> None:
        super().__init__(param, reason, code)
        self.param = param
        self.reason = reason
        self.code = code  # the error code for the param (invalid_function_parameters for a function)


def check_all(schemas: Iterable[tuple[str, Any]], limits: SchemaLimits) -> None:
    """Check (param, schema) pairs as one request's (one budget); RefusedAt names the first refused."""
    budget = Budget(limits)
    param = ""
    try:
        for where, schema in schemas:
            param = where
            check_one(schema, budget)
    except SchemaRefused as exc:
        raise RefusedAt(param, str(exc)) from None
    except SchemaTimeout:
        reason = f"checking the request's JSON Schemas took longer than {limits.timeout:g} s"
        raise RefusedAt(param, f"{reason} (CODEX_SCHEMA_TIMEOUT_SECONDS)") from None
