"""The API reference page covers the public API (its text comes from the docstrings)."""

from __future__ import annotations

import re
from pathlib import Path

import parmap

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_api_reference_renders_every_public_name() -> None:
    """docs/api.md has one ``::: parmap.NAME`` block for each name in __all__, and no other."""
    blocks = re.findall(r"^::: parmap\.(\w+)\s*$", API_PAGE.read_text(encoding="utf-8"), re.M)
    assert sorted(blocks) == sorted(parmap.__all__)


def test_api_reference_mentions_the_version() -> None:
    """__version__, which is not in __all__, has its own section."""
    assert "## `__version__`" in API_PAGE.read_text(encoding="utf-8")
