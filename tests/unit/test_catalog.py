"""Model catalog: configured models, `codex debug models` parsing, effort aliases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.codex.catalog import FALLBACK_EFFORTS, Catalog, ModelInfo, configured_models, parse_debug_models
from app.errors import ApiError

CATALOG = Catalog((ModelInfo("gpt-5.5", ("low", "medium", "high", "xhigh")), ModelInfo("local", FALLBACK_EFFORTS)), 1)


def test_resolve_plain_and_alias() -> None:
    gpt = CATALOG.models[0]
    assert CATALOG.resolve("gpt-5.5") == (gpt, None)
    assert CATALOG.resolve("gpt-5.5 xhigh") == (gpt, "xhigh")
    assert CATALOG.resolve("  gpt-5.5   HIGH ") == (gpt, "high")


@pytest.mark.parametrize("name", ["gpt-5.5 ultra", "nope", "gpt-5.5 high extra", ""])
def test_resolve_refuses_what_is_not_listed(name: str) -> None:
    with pytest.raises(ApiError) as caught:
        CATALOG.resolve(name)
    assert caught.value.status == 404 and caught.value.code == "model_not_found"


def test_ids_list_models_and_aliases() -> None:
    assert CATALOG.ids()[:5] == ["gpt-5.5", "gpt-5.5 low", "gpt-5.5 medium", "gpt-5.5 high", "gpt-5.5 xhigh"]


def test_parse_debug_models_skips_hidden() -> None:
    raw = {
        "models": [
            {"slug": "b", "priority": 2, "visibility": "list", "supported_reasoning_levels": [{"effort": "low"}]},
            {"slug": "hidden", "priority": 0, "visibility": "hide"},
            {"slug": "a", "priority": 1, "visibility": "list", "supported_reasoning_levels": []},
        ]
    }
    assert parse_debug_models(json.dumps(raw).encode()) == [ModelInfo("a", ()), ModelInfo("b", ("low",))]


def test_configured_models_include_profiles_active_first(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'model = "base"\nprofile = "fast"\n[profiles.fast]\nmodel = "quick"\n[profiles.deep]\nmodel = "slow"\n'
    )
    assert configured_models(tmp_path) == ["quick", "base", "slow"]


def test_configured_models_tolerate_a_missing_or_broken_file(tmp_path: Path) -> None:
    assert configured_models(tmp_path) == []
    (tmp_path / "config.toml").write_text("model = ")
    assert configured_models(tmp_path) == []
