"""Worker processes get CPUs // workers native (BLAS/OpenMP) threads, not one per CPU each.

In fresh interpreters, because the environment is the point: the caller's own (which a
library such as distributed changes on import) and, under forkserver, the fork server's.
numpy is loaded in the caller before the workers start, as in a numpy user's program:
forked workers inherit its BLAS already sized; spawn and forkserver workers load it
after parmap has set the limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parmap._native_threads import THREAD_VARIABLES

from support import describe, run_python

pytestmark = pytest.mark.timeout(120)

SCRIPT = """
import json, os, sys
import numpy
from threadpoolctl import threadpool_info
from parmap import parallel_map

def blas_threads(_):
    import numpy  # spawn and forkserver workers load it here, after the limit
    sizes = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return os.environ.get("OMP_NUM_THREADS"), max(sizes)

def seen(workers, **options):
    results = parallel_map(
        blas_threads, range(workers), workers, 1,
        start_method=sys.argv[1], serial_fallback=False, **options
    )
    return sorted(set(results))

if __name__ == "__main__":
    caller = blas_threads(None)
    report = {
        "caller": caller,
        "shares": {n: seen(n) for n in (1, 2, 4, 8)},
        "off": seen(2, limit_native_threads=False),
        "threads": sorted(set(parallel_map(
            blas_threads, range(4), 2, 1, backend="thread", serial_fallback=False
        ))),
        "caller_after": blas_threads(None),
    }
    print(json.dumps(report))
"""


def run(start_method: str, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    result = run_python(
        SCRIPT.replace("sys.argv[1]", repr(start_method)),
        tmp_path=tmp_path,
        env={"PYTHON_CPU_COUNT": "4", **env},  # parmap counts 4 CPUs on any machine
        unset=tuple(name for name in THREAD_VARIABLES if name not in env),
    )
    assert result.returncode == 0, describe(result)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_each_worker_gets_its_share_of_the_cpus(start_method: str, tmp_path: Path) -> None:
    """4 CPUs: 4, 2, 1, 1 threads per worker for 1, 2, 4, 8 workers; the caller, threads and
    limit_native_threads=False keep the library's default."""
    report = run(start_method, tmp_path, {})
    default = report["caller"][1]
    for workers, share in {"1": 4, "2": 2, "4": 1, "8": 1}.items():
        # OpenBLAS never starts more threads than the machine has CPUs, whatever it is told.
        assert report["shares"][workers] == [[str(share), min(share, default)]], workers
    assert report["off"] == [[None, default]]
    assert report["threads"] == [[None, default]]
    assert report["caller_after"] == [None, default]


def test_a_setting_of_the_user_is_respected(start_method: str, tmp_path: Path) -> None:
    """OMP_NUM_THREADS set by the user reaches the workers unchanged."""
    report = run(start_method, tmp_path, {"OMP_NUM_THREADS": "3"})
    assert {omp for omp, _ in report["shares"]["2"]} == {"3"}
    assert {omp for omp, _ in report["shares"]["8"]} == {"3"}
