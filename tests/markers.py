"""Markers shared by test modules (kept out of helpers.py, which workers import)."""

from __future__ import annotations

import pytest

from parmap._serial import voluntary_switches

#: For tests of what parmap does with the caller's waits: only some platforms count them.
NEEDS_WAIT_COUNTS = pytest.mark.skipif(
    voluntary_switches() is None, reason="the platform does not count a thread's waits"
)
