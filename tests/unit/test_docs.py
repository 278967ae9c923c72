"""The docs as a newcomer meets them: a short README in each language, every doc in both, no dead link."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from tests.harness import REPO

DOCS = sorted([REPO / "README.md", REPO / "README.ja.md", *(REPO / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = [c for c in heading.strip().lower() if c in " -_" or unicodedata.category(c)[0] in "LNM"]
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def headings(path: Path) -> int:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    return len(re.findall(r"^#{1,4} ", text, flags=re.MULTILINE))


@pytest.mark.parametrize("name", ["README.md", "README.ja.md"])
def test_the_readme_is_a_short_front_door(name: str) -> None:
    assert len((REPO / name).read_bytes()) < 12 * 1024


def test_every_doc_exists_in_both_languages_with_the_same_sections() -> None:
    english = {p for p in DOCS if not p.name.endswith(".ja.md")}
    for path in english:
        japanese = path.with_name(path.name.removesuffix(".md") + ".ja.md")
        assert japanese.exists(), f"{japanese.name} is missing"
        assert headings(path) == headings(japanese), f"{path.name} and {japanese.name} differ in their sections"
    assert len(english) * 2 == len(DOCS)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_reaches_its_file_and_heading(path: Path) -> None:
    dead = []
    for target in LINK.findall(re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            dead.append(target)
    assert dead == []


def shown_default(value: object) -> str | None:
    """A setting's default as the ENV tables write it; None where the table describes it in words."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int | str) and value != "":
        return str(value)
    if isinstance(value, tuple) and value:
        return ",".join(map(str, value))
    return None


@pytest.mark.parametrize("name", ["ENV.md", "ENV.ja.md"])
def test_every_setting_has_a_row_with_its_default(name: str) -> None:
    from app.config import Settings

    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", (REPO / "docs" / name).read_text(), flags=re.MULTILINE))
    for field, info in Settings.model_fields.items():
        variable = field.upper()
        assert variable in rows, f"{name} has no row for {variable}"
        default = shown_default(info.default)
        assert default is None or f"`{default}`" in rows[variable], f"{name}: {variable} defaults to {default}"


def test_every_setting_is_in_the_env_example() -> None:
    from app.config import Settings

    text = (REPO / ".env.example").read_text()
    missing = [f.upper() for f in Settings.model_fields if f"\n# {f.upper()}=" not in text]
    assert missing == []
