"""JSON Schemas from clients, pure logic (app/schemas.py): offline `$ref`s, limits, RE2, the time limit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.schemas import Mismatch, RefusedAt, SchemaChecker, SchemaLimits, check_all, first_error_now

LIMITS = SchemaLimits()
APP = Path(__file__).resolve().parents[2] / "app"


def refusal(*schemas: Any, limits: SchemaLimits = LIMITS) -> str | None:
    """Why check_all refuses these schemas (as one request's), or None."""
    try:
        check_all([(f"s{n}", schema) for n, schema in enumerate(schemas)], limits)
    except RefusedAt as refused:
        return refused.reason
    return None


def doubling(levels: int) -> dict[str, Any]:
    defs: dict[str, Any] = {"d0": {"type": "string"}}
    for level in range(1, levels + 1):
        defs[f"d{level}"] = {"anyOf": [{"$ref": f"#/$defs/d{level - 1}"}, {"$ref": f"#/$defs/d{level - 1}"}]}
    return {"$defs": defs, "$ref": f"#/$defs/d{levels}"}


def test_refs_that_leave_the_document_are_refused_and_nothing_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "auth.json"
    secret.write_text(json.dumps({"OPENAI_API_KEY": "sk-unit-secret"}))
    for ref in (
        f"file://{secret}#/nope",
        f"file://{secret}",
        "http://127.0.0.1:9/latest/meta-data",
        "https://json-schema.org/draft/2020-12/schema",  # even the bundled metaschemas: not this document
        "other.json#/x",
        "#/$defs/missing",
        "#no-such-anchor",
    ):
        for keyword in ("$ref", "$dynamicRef"):
            reason = refusal({"type": "object", "properties": {"a": {keyword: ref}}})
            assert reason is not None and "does not point inside the schema" in reason, (keyword, ref)
            assert "sk-unit-secret" not in reason


def test_refs_inside_the_document_resolve() -> None:
    assert refusal({"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}}) is None
    assert refusal({"$defs": {"a": {"$anchor": "name", "type": "string"}}, "items": {"$ref": "#name"}}) is None
    embedded = {
        "$id": "https://example.com/root.json",
        "$defs": {"a": {"$id": "a.json", "type": "string"}},
        "properties": {"x": {"$ref": "https://example.com/a.json"}, "y": {"$ref": "a.json"}},
    }
    assert refusal(embedded) is None
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {"type": "integer"}},
              "properties": {"x": {"$ref": "#/definitions/a"}}}  # fmt: skip
    assert refusal(draft7) is None and first_error_now(draft7, {"x": "no"}) == Mismatch(
        "x", "'no' is not of type 'integer'"
    )


def test_a_recursive_schema_counts_its_cycle_once_and_validates() -> None:
    node = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}
    tree = {"$defs": {"n": node}, "$ref": "#/$defs/n"}
    assert refusal(tree, limits=SchemaLimits(max_subschemas=10)) is None
    assert first_error_now(tree, {"kids": [{"kids": [{"kids": 1}]}]}) == Mismatch(
        "kids/0/kids/0/kids", "1 is not of type 'array'"
    )
    assert refusal({"$ref": "#"}) is None  # a schema that is only a cycle is followed once


def test_depth_bytes_and_subschemas_are_bounded_for_the_whole_request() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(5000):  # walked without recursion: a limit, never a RecursionError
        deep = {"type": "object", "properties": {"a": deep}}
    assert "CODEX_SCHEMA_MAX_DEPTH" in str(refusal(deep))
    half = {"type": "object", "description": "x" * 600}
    small = SchemaLimits(max_bytes=1024)
    assert refusal(half, limits=small) is None
    assert "CODEX_SCHEMA_MAX_BYTES" in str(refusal(half, half, limits=small))  # together, not each
    assert refusal(doubling(8)) is None
    assert "CODEX_SCHEMA_MAX_SUBSCHEMAS" in str(refusal(doubling(20)))  # 1.4 KB, a million places to validate
    wide = {"properties": {f"p{n}": {"type": "string"} for n in range(60)}}
    assert "CODEX_SCHEMA_MAX_SUBSCHEMAS" in str(refusal(wide, wide, limits=SchemaLimits(max_subschemas=100)))


def test_patterns_run_on_re2_or_are_refused() -> None:
    for pattern in ("(?=a)b", "(a)\\1", "(?<!x)y"):
        assert "RE2" in str(refusal({"properties": {"s": {"type": "string", "pattern": pattern}}}))
        assert "RE2" in str(refusal({"patternProperties": {pattern: {}}}))
    mixed = {"patternProperties": {"^x": {}}, "unevaluatedProperties": False}
    assert "unevaluatedProperties" in str(refusal(mixed))
    redos = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
    assert refusal(redos) is None
    mismatch = first_error_now(redos, {"s": "a" * 100_000 + "!"})  # linear: Python's re would never return
    assert mismatch is not None and mismatch.where == "s" and len(mismatch.message) < 500
    assert first_error_now(redos, {"s": "aaa"}) is None
    assert first_error_now(redos, {"s": "\ud800"}) is not None  # text RE2 cannot take matches nothing
    keyed = {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}
    assert first_error_now(keyed, {"x-a": 1}) is None
    assert first_error_now(keyed, {"x-a": "1"}) == Mismatch("x-a", "'1' is not of type 'integer'")
    assert first_error_now(keyed, {"y": 1}) == Mismatch("(root)", "'y' do not match any of the regexes: '^x-'")


def test_invalid_schemas_are_named_without_quoting_them_whole() -> None:
    assert "5 is not of type 'object'" in str(refusal({"type": "object", "properties": 5}))
    huge_enum = {"type": "object", "properties": {"a": {"enum": "x" * 10_000}}}
    reason = refusal(huge_enum)
    assert reason is not None and len(reason) < 1000


async def test_the_checker_names_the_param_and_stops_at_its_time_limit() -> None:
    checker = SchemaChecker(SchemaLimits(timeout=0.5))
    try:
        with pytest.raises(RefusedAt) as caught:
            await checker.check(
                [("tools[0].parameters", {"$ref": "file:///etc/passwd"}, "invalid_function_parameters")]
            )
        error = caught.value
        assert (error.param, error.code) == ("tools[0].parameters", "invalid_function_parameters")
        assert error.reason.startswith("$ref 'file:///etc/passwd' does not point inside the schema")
        costly = {"type": "array", "minItems": 1, "items": {"anyOf": [{"$ref": "#"}, {"$ref": "#"}]}}
        await checker.check([("text.format.schema", costly, None)])
        mismatch = await checker.first_error(costly, json.loads("[" * 40 + "]" * 40))
        assert mismatch is not None and mismatch.where is None and "CODEX_SCHEMA_TIMEOUT_SECONDS" in mismatch.message
        assert await checker.first_error(costly, [[[]]]) is not None and await checker.first_error({}, 1) is None
    finally:
        checker.close()
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(600):  # too deep to hand to a worker process at all
        deep = {"type": "object", "properties": {"a": deep}}
    checker = SchemaChecker(LIMITS)
    try:
        with pytest.raises(RefusedAt) as caught:
            await checker.check([("tools[0].parameters", {}, None), ("tools[1].parameters", deep, None)])
        assert caught.value.param == "tools[1].parameters" and "CODEX_SCHEMA_MAX_DEPTH" in caught.value.reason
        assert await checker.first_error({}, json.loads("[" * 900 + "]" * 900)) == Mismatch(
            None, "it is nested too deeply to check"
        )
    finally:
        checker.close()
    slow = SchemaChecker(SchemaLimits(max_subschemas=10**9, timeout=0.5))
    try:
        with pytest.raises(RefusedAt) as caught:
            await slow.check([("response_format.json_schema.schema", doubling(30), None)])
        assert "took longer than 0.5 s" in caught.value.reason
    finally:
        slow.close()


def test_every_validator_in_app_is_built_offline() -> None:
    """The repository's rule: no validator without the offline registry (a `$ref` would be fetched)."""
    built = re.compile(r"validator_for\(|Draft[0-9]+Validator\(|jsonschema\.validate\(")
    unsafe = [
        f"{path.relative_to(APP)}:{n}"
        for path in APP.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line) and "registry" not in line and "check_schema" not in line
    ]
    assert unsafe == []
