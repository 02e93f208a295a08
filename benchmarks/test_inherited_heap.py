"""benchmarks/inherited_heap.py runs end to end on a small caller heap, so it cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from inherited_heap import NAMES
from printed_table import printed_rows

HERE = Path(__file__).parent


@pytest.mark.timeout(120)
def test_the_script_prints_a_row_per_contender() -> None:
    command = [sys.executable, str(HERE / "inherited_heap.py"), "--rounds", "1"]
    rows = printed_rows([*command, "--objects", "10000"])

    assert list(rows) == list(NAMES)
    for seconds, private_mb in rows.values():
        assert seconds > 0
        assert private_mb > 0
