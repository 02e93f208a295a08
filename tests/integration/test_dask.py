"""A Dask cluster is a backend: ``client.get_executor()`` runs parmap's chunks on Dask workers.

One real ``distributed.LocalCluster`` serves the whole module: two worker processes, one
thread each, talking TCP on loopback, started once and closed at the end.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, Callable

import psutil
import pytest
from distributed import Client, LocalCluster
from distributed.cfexecutor import ClientExecutor

import parmap
from parmap import parallel_imap, parallel_map
from parmap._cpu import available_cpus
from parmap._errors import RemoteTraceback

from helpers import CountingSource, busy_for, fail_at_seven, square, worker_processes

#: Dask worker processes in the cluster, one thread each.
DASK_WORKERS = 2

#: distributed keeps one pool thread per process ("Dask-Offload") for (de)serializing
#: large messages; it lives until interpreter exit by design, so it is not a leak.
DASK_PROCESS_WIDE_THREADS = ("Dask-Offload",)
#: pytest-timeout's timer for the test during whose teardown the cluster closes.
TIMEOUT_TIMER = "pytest_timeout "


class CountingExecutor(ClientExecutor):
    """Dask's executor, counting the tasks submitted and how many ran at once at most."""

    def __init__(self, client: Client, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.submitted = 0
        self.keywords: list[dict[str, Any]] = []
        self.most_in_flight = 0
        self._futures_seen: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        self.keywords.append(kwargs)
        # A future is done() before its waiters wake, so the ones not done here are
        # all still in parmap's hands.
        unfinished = sum(not f.done() for f in self._futures_seen)
        self.most_in_flight = max(self.most_in_flight, unfinished + 1)
        future = super().submit(fn, *args, **kwargs)
        self._futures_seen.append(future)
        return future


class OddItemError(Exception):
    """An exception class of the test module: Dask workers must rebuild it by name."""


def cube(x: int) -> int:
    return x * x * x


def adder(offset: int) -> Callable[[int], int]:
    """A closure: its function cannot be imported by name in a worker."""

    def add(x: int) -> int:
        return x + offset

    return add


def slow_square(x: int) -> int:
    """Computes for 10 ms, so the serial probe hands the rest to the cluster."""
    busy_for(0.01)
    return x * x


def pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def reject_eleven(x: int) -> int:
    if x == 11:
        raise OddItemError(f"odd item {x}")
    return x


def fresh_random(_: object) -> float:
    """Impure: a new value on every call, as reading a clock or a web page would be."""
    return random.random()


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Client, set[int]]]:
    """A LocalCluster of worker processes on loopback, and their process ids; closed after."""
    threads_before = set(threading.enumerate())
    # Dask's Nanny writes its pre-spawn environment (MALLOC_TRIM_THRESHOLD_,
    # OMP_NUM_THREADS and friends) into this process's os.environ: put it back after,
    # so the tests that follow see the environment they were started with.
    environment = dict(os.environ)
    local = LocalCluster(
        n_workers=DASK_WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(local)
    pids = set(client.run(os.getpid).values())
    try:
        yield client, pids
    finally:
        client.close()
        local.close()
        os.environ.clear()
        os.environ.update(environment)
    _, alive = psutil.wait_procs([p for p in worker_processes() if p.pid in pids], timeout=10)
    assert not alive, f"Dask worker processes left behind: {alive}"
    assert worker_processes() == []
    stray = [
        t
        for t in threading.enumerate()
        if t not in threads_before and not _dask_own(t) and not t.name.startswith(TIMEOUT_TIMER)
    ]
    for thread in stray:
        thread.join(5)
    assert not [t for t in stray if t.is_alive()], f"threads left behind: {stray}"


@pytest.fixture(autouse=True)
def no_leftover_processes(cluster: tuple[Client, set[int]]) -> Iterator[None]:
    """Replaces the integration check: the same, less the cluster that outlives each test.

    The cluster's worker processes and its process-wide threads belong to the module
    fixture, which checks that they are gone once the cluster is closed.
    """
    threads_before = set(threading.enumerate())
    yield
    parmap.shutdown()
    _, pids = cluster
    cluster_pids = pids | {c.pid for pid in pids for c in _descendants(pid)}
    children = [p for p in worker_processes() if p.pid not in cluster_pids]
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"worker processes left behind: {alive}"
    stray = [t for t in threading.enumerate() if t not in threads_before and not _dask_own(t)]
    for thread in stray:
        thread.join(5)
    assert not [t for t in stray if t.is_alive()], f"threads left behind: {stray}"


def _dask_own(thread: threading.Thread) -> bool:
    return thread.name.startswith(DASK_PROCESS_WIDE_THREADS)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def executor(cluster: tuple[Client, set[int]]) -> CountingExecutor:
    client, _ = cluster
    return CountingExecutor(client)


@pytest.mark.parametrize(
    ("fn", "serial_fallback", "chunksize"),
    [
        (square, False, None),
        (square, False, 7),
        (slow_square, True, None),
    ],
    ids=["fallback-off", "fallback-off-chunksize-7", "fallback-on-slow-items"],
)
def test_same_results_in_the_same_order_as_map(
    executor: CountingExecutor,
    fn: Callable[[int], int],
    serial_fallback: bool,
    chunksize: int | None,
) -> None:
    """parallel_map on Dask returns list(map(fn, items)), and the cluster did the work."""
    items = [random.randrange(-1000, 1000) for _ in range(60)]
    result = parallel_map(
        fn, items, chunksize=chunksize, backend=executor, serial_fallback=serial_fallback
    )
    assert result == list(map(fn, items))
    assert executor.submitted >= 1


def test_items_run_in_the_dask_worker_processes(
    cluster: tuple[Client, set[int]], executor: CountingExecutor
) -> None:
    """Every item is computed by one of the cluster's worker processes, not the caller."""
    _, pids = cluster
    result = parallel_map(pid_and_square, range(30), backend=executor, serial_fallback=False)
    assert [value for _, value in result] == [x * x for x in range(30)]
    assert {pid for pid, _ in result} <= pids


def test_each_chunk_is_one_dask_task(executor: CountingExecutor) -> None:
    """103 items in chunks of 10 are ceil(103 / 10) = 11 Dask tasks, never one per item."""
    result = parallel_map(square, range(103), chunksize=10, backend=executor, serial_fallback=False)
    assert result == [x * x for x in range(103)]
    assert executor.submitted == math.ceil(103 / 10)
    # Two chunks per worker: one running, one queued so it starts without a round trip.
    assert executor.most_in_flight <= 2 * DASK_WORKERS


def test_an_exception_comes_back_as_with_the_process_backend(executor: CountingExecutor) -> None:
    """fn's exception keeps its type and message, names the item, carries the worker traceback."""
    with pytest.raises(ValueError, match="bad item 7") as info:
        parallel_map(fail_at_seven, range(40), chunksize=3, backend=executor, serial_fallback=False)
    assert "parmap: raised by fn for the item at index 7" in getattr(info.value, "__notes__", [])
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fail_at" in str(cause)
    assert parallel_map(square, range(20), backend=executor, serial_fallback=False) == [
        x * x for x in range(20)
    ]


def test_an_exception_class_of_the_callers_module_comes_back(executor: CountingExecutor) -> None:
    """An exception type defined beside fn is rebuilt in the caller as that type."""
    with pytest.raises(OddItemError, match="odd item 11") as info:
        parallel_map(reject_eleven, range(30), 2, 4, backend=executor, serial_fallback=False)
    assert "parmap: raised by fn for the item at index 11" in getattr(info.value, "__notes__", [])


@pytest.mark.parametrize("buffersize", [16, None], ids=["buffersize-16", "default-buffersize"])
def test_imap_over_endless_input_reads_a_bounded_number_ahead(
    executor: CountingExecutor, buffersize: int | None
) -> None:
    """Lazy parallel_imap on Dask reads at most buffersize items (+ one chunk) beyond the loop."""
    source = CountingSource()
    results = parallel_imap(
        square, source, chunksize=4, buffersize=buffersize, backend=executor, serial_fallback=False
    )
    taken = list(itertools.islice(results, 100))
    results.close()  # type: ignore[attr-defined]
    assert taken == [x * x for x in range(100)]
    # The default is two chunks per worker; workers defaults to this machine's CPUs,
    # since a Dask executor does not say how many threads the cluster has.
    limit = buffersize or 2 * available_cpus() * 4
    assert source.read <= 100 + limit + 4
    assert executor.most_in_flight <= 2 * available_cpus()  # one running, one queued each


@pytest.mark.parametrize(
    "fn",
    [cube, lambda x: x - 1, adder(3)],
    ids=["module-function", "lambda", "closure"],
)
def test_functions_of_the_test_module_and_lambdas_run_on_dask(
    executor: CountingExecutor, fn: Callable[[int], int]
) -> None:
    """Dask pickles fn with cloudpickle, so lambdas and closures reach its workers too."""
    assert parallel_map(fn, range(25), backend=executor, serial_fallback=False) == [
        fn(x) for x in range(25)
    ]
    assert executor.submitted >= 1


def test_a_second_call_computes_again(executor: CountingExecutor) -> None:
    """Each call runs fn anew: Dask never hands back the results of an earlier identical call.

    Dask's executor names a task by a hash of its function and arguments unless told
    pure=False, and a task whose name is still held (here the counting executor keeps
    every future) is not run again. parmap submits its chunks as impure tasks.
    """
    items = [0] * 8
    first = parallel_map(fresh_random, items, chunksize=2, backend=executor, serial_fallback=False)
    second = parallel_map(fresh_random, items, chunksize=2, backend=executor, serial_fallback=False)
    assert set(first).isdisjoint(second)
    assert executor.submitted == 8


def test_an_executor_that_asks_for_pure_tasks_keeps_them(
    cluster: tuple[Client, set[int]],
) -> None:
    """A user's explicit get_executor(pure=True) is left alone, and results still come back."""
    client, _ = cluster
    executor = CountingExecutor(client, pure=True)
    for _ in range(2):
        assert parallel_map(
            square, range(20), chunksize=5, backend=executor, serial_fallback=False
        ) == [x * x for x in range(20)]
    assert executor.keywords == [{}] * 8
