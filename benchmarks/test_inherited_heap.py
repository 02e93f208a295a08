"""benchmarks/inherited_heap.py runs end to end on a small caller heap, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inherited_heap import NAMES

HERE = Path(__file__).parent


@pytest.mark.timeout(120)
def test_the_script_prints_a_row_per_contender() -> None:
    command = [sys.executable, str(HERE / "inherited_heap.py"), "--rounds", "1"]
    command += ["--objects", "10000"]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=100)

    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == list(NAMES)
    for row in rows:
        seconds, private_mb = (float(cell) for cell in row.strip("|").split("|")[1:])
        assert seconds > 0
        assert private_mb > 0
