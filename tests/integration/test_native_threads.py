"""Worker processes get CPUs // workers native (BLAS/OpenMP) threads, not one per CPU each.

numpy is imported in the caller before the workers fork (its BLAS pool already sized
for every CPU) and, under spawn and forkserver, only in the workers: both ways must
end with the limit in place.
"""

from __future__ import annotations

import os

# Loaded in the caller, as a numpy user's program would; spawn and forkserver workers
# load it when they import this module to find blas_threads, after the limit is set.
import numpy  # noqa: F401
import pytest
from threadpoolctl import threadpool_info

from parmap import parallel_map
from parmap._native_threads import THREAD_VARIABLES

from helpers import START_METHODS

pytestmark = pytest.mark.timeout(60)


def blas_threads(_: object) -> tuple[str | None, int]:
    """OMP_NUM_THREADS and the BLAS pool's size, as a worker sees them."""
    sizes = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert sizes, "numpy's BLAS is not visible to threadpoolctl"
    return os.environ.get("OMP_NUM_THREADS"), max(sizes)


def default_blas_threads() -> int:
    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


@pytest.fixture
def no_user_thread_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make parmap count 4 CPUs, whatever this machine has."""
    monkeypatch.setenv("PYTHON_CPU_COUNT", "4")


@pytest.mark.usefixtures("no_user_thread_settings", "four_cpus")
@pytest.mark.parametrize("workers", [1, 2, 4, 8])
def test_each_worker_gets_its_share_of_the_cpus(start_method: str, workers: int) -> None:
    """4 CPUs: 4, 2, 1, 1 threads per worker for 1, 2, 4, 8 workers.

    OpenBLAS never runs more threads than the machine has CPUs, whatever it is told.
    """
    results = parallel_map(
        blas_threads, range(workers), workers, 1, start_method=start_method, serial_fallback=False
    )
    expected = max(1, 4 // workers)
    assert set(results) == {(str(expected), min(expected, default_blas_threads()))}


@pytest.mark.usefixtures("no_user_thread_settings", "four_cpus")
def test_opting_out_leaves_the_libraries_defaults(start_method: str) -> None:
    """limit_native_threads=False: the workers' BLAS keeps its own default size."""
    if default_blas_threads() < 2:
        pytest.skip("this machine's BLAS uses one thread anyway: nothing to tell apart")
    results = parallel_map(
        blas_threads,
        range(2),
        2,
        1,
        start_method=start_method,
        serial_fallback=False,
        limit_native_threads=False,
    )
    assert {omp for omp, _ in results} == {None}
    assert all(size == default_blas_threads() for _, size in results)


@pytest.mark.usefixtures("four_cpus")
# Not forkserver: its workers inherit the environment of the moment the fork server
# started (earlier in this session), not the caller's current one (docs/user-guide.md).
@pytest.mark.parametrize("start_method", [m for m in START_METHODS if m != "forkserver"])
def test_a_setting_of_the_user_is_respected(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OMP_NUM_THREADS set by the user reaches the workers unchanged."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    results = parallel_map(
        blas_threads, range(2), 2, 1, start_method=start_method, serial_fallback=False
    )
    assert {omp for omp, _ in results} == {"3"}


def test_the_caller_and_threads_are_left_alone(no_user_thread_settings: None) -> None:
    """Only worker processes are limited: the caller's own BLAS keeps its size."""
    before = default_blas_threads()
    parallel_map(blas_threads, range(4), 2, 1, serial_fallback=False)
    threads = parallel_map(blas_threads, range(4), 2, 1, backend="thread", serial_fallback=False)
    assert default_blas_threads() == before
    assert os.environ.get("OMP_NUM_THREADS") is None
    assert {size for _, size in threads} == {before}
