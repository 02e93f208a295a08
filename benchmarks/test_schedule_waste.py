"""benchmarks/schedule_waste.py: its measures follow their definitions, and it runs end to end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from printed_table import printed_rows
from schedule_waste import DEFAULT_CONTENDERS, table, waste

HERE = Path(__file__).parent


def test_waste_splits_a_call_into_item_time_and_the_gaps_around_it() -> None:
    # Worker 1 runs items at 1-3 and 4-6 ms; worker 2 at 2-5 ms. Called at 0, returned at 7.
    stamps = [(1, 0.001, 0.003), (2, 0.002, 0.005), (1, 0.004, 0.006)]
    measures = waste(stamps, called=0.0, returned=0.007)
    expected = {
        "wall": 0.007,
        "busy": (0.002 + 0.003 + 0.002) / 2,  # per worker
        "before": 0.002,  # worker 2 starts last
        "between": 0.001 / 2,  # worker 1 waits 3-4 ms; per worker
        "uneven": 0.001,  # worker 2 ends at 5, worker 1 at 6
        "after": 0.001,
    }
    assert measures == pytest.approx(expected)


def test_items_run_in_the_caller_are_not_a_worker() -> None:
    stamps = [(1, 0.001, 0.003), (2, 0.002, 0.005)]
    in_caller = [(os.getpid(), 0.0, 0.001)]  # parmap's probe, before it hands work out
    assert waste(in_caller + stamps, 0.0, 0.006) == waste(stamps, 0.0, 0.006)


def test_a_call_that_ran_wholly_in_the_caller_has_no_schedule() -> None:
    assert waste([(os.getpid(), 0.0, 0.001)], 0.0, 0.002) is None
    assert "| parmap | every call ran in the caller |" in table({"parmap": []})


@pytest.mark.timeout(120)
def test_the_script_prints_a_row_per_default_contender() -> None:
    # The defaults include loky, which sends stamped by value to workers it spawns.
    command = [sys.executable, str(HERE / "schedule_waste.py"), "--scale", "0.01"]
    command += ["--rounds", "1"]
    rows = printed_rows(command)

    assert list(rows) == list(DEFAULT_CONTENDERS)
    for values in rows.values():
        assert len(values) == 6
        assert all(value >= 0 for value in values)
