"""Every workload of the comparison, every contender, on pytest-benchmark.

    python -m pytest benchmarks/test_comparison.py --benchmark-only
    python -m pytest benchmarks/test_comparison.py --benchmark-only -k "origin and parmap"

Unlike benchmarks/compare.py (a fresh interpreter per measurement, parmap cold), the
rounds here run in one process, so from the second round on parmap's workers are
warm, as in a long-running program. With ``--benchmark-disable`` (CI) every case runs
once at 2 % of its size, so the suite cannot rot. Each case checks its result.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from workloads import CONTENDERS, WORKLOADS, contenders_for, prepare

Benchmark = Any  # pytest-benchmark's fixture

CASES = [(w, c) for w in WORKLOADS for c in contenders_for(WORKLOADS[w])]
#: Rounds per case: enough for a median, few enough that the heavy cases stay minutes.
ROUNDS = {"eight_items": 50, "trivial_1m": 5, "payloads_1mb": 5, "io_threads": 5}


@pytest.mark.parametrize(("workload", "contender"), CASES, ids=[f"{w}-{c}" for w, c in CASES])
def test_workload(benchmark: Benchmark, workload: str, contender: str) -> None:
    scale = 0.02 if benchmark.disabled else 1.0
    runner = CONTENDERS[contender](len(os.sched_getaffinity(0)))
    try:
        run, expected = prepare(runner, WORKLOADS[workload], scale)
        rounds = ROUNDS.get(workload, 3)
        result = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=0)
    finally:
        runner.close()
    assert WORKLOADS[workload].checked(result) == expected
