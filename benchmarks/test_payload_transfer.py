"""benchmarks/payload_transfer.py runs end to end on a few payloads, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.timeout(120)
def test_the_script_prices_every_way_of_sending() -> None:
    command = [sys.executable, str(HERE / "payload_transfer.py"), "--scale", "0.05"]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=100)
    for row in (
        "pipe to a process and back",
        "shared memory, in and out",
        "parallel_map(..., serial_fallback=False)",
        "numpy arrays, pickle.dumps, one frame",
        "numpy arrays, as parmap sends them",
        "bytes, pickle.dumps, one frame",
        "bytes, as parmap sends them",
    ):
        assert row in done.stdout, f"no {row!r} row in:\n{done.stdout}"
