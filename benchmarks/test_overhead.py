"""What parmap costs next to the builtin map it replaces (pytest-benchmark).

Run: ``python -m pytest benchmarks --benchmark-only``; CI runs them once with
``--benchmark-disable`` so they cannot rot. Each benchmark checks its result too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

import parmap
from parmap import parallel_imap, parallel_map
from parmap._bench import cpu_bound

Benchmark = Any  # pytest-benchmark's fixture


def increment(x: int) -> int:
    return x + 1


def map_and_parallel_map(fn: Callable[[Any], Any]) -> pytest.MarkDecorator:
    """The benchmark twice: with the builtin map and with parallel_map (as *runner*)."""
    return pytest.mark.parametrize(
        "runner",
        [lambda items: list(map(fn, items)), lambda items: parallel_map(fn, items)],
        ids=["map", "parallel_map"],
    )


@map_and_parallel_map(increment)
def test_ten_trivial_items(benchmark: Benchmark, runner: Callable[[range], list[int]]) -> None:
    """range(10): parmap runs it in the caller; the gap to map is its fixed cost."""
    assert benchmark(runner, range(10)) == list(range(1, 11))


@map_and_parallel_map(increment)
def test_million_trivial_items(benchmark: Benchmark, runner: Callable[[range], list[int]]) -> None:
    """One million trivial items: parallel cannot pay, so parmap must match map."""
    result = benchmark(runner, range(1_000_000))
    assert len(result) == 1_000_000
    assert result[-1] == 1_000_000


def add_one(row: Any) -> Any:
    return row + 1


@map_and_parallel_map(add_one)
def test_numpy_rows(benchmark: Benchmark, runner: Callable[[Any], list[Any]]) -> None:
    """2,000 rows of a numpy array, each a few microseconds: they stay in the caller,
    and pricing what sending a row would cost must not add a quarter to map's time."""
    np = pytest.importorskip("numpy")
    rows = np.arange(100_000, dtype=float).reshape(2_000, 50)
    result = benchmark(runner, rows)
    assert np.array_equal(np.stack(result), rows + 1)


@pytest.mark.parametrize("warm", [False, True], ids=["cold-pool", "warm-pool"])
def test_origin_example_small(benchmark: Benchmark, warm: bool) -> None:
    """The origin example at a tenth of its size, with and without a warm pool."""
    numbers = [500_000 + x for x in range(20)]
    expected = list(map(cpu_bound, numbers))

    def run() -> list[int]:
        if not warm:
            parmap.shutdown()
        return parallel_map(cpu_bound, numbers)

    assert benchmark(run) == expected


def wait_a_millisecond(x: int) -> int:
    time.sleep(0.001)  # the workload: a short I/O wait, off the GIL
    return x


@pytest.fixture(scope="module")
def reused_thread_pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(32) as executor:
        yield executor


@pytest.mark.parametrize(
    "contender", ["ThreadPoolExecutor reused", "ThreadPoolExecutor per call", "parallel_map"]
)
def test_successive_thread_calls(
    benchmark: Benchmark, contender: str, reused_thread_pool: ThreadPoolExecutor
) -> None:
    """One of many calls of 64 waits of 1 ms on 32 threads: parmap keeps its threads from
    call to call, as a pool reused by hand does, instead of starting 32 each time."""
    items = list(range(64))

    def run() -> list[int]:
        if contender == "ThreadPoolExecutor reused":
            return list(reused_thread_pool.map(wait_a_millisecond, items))
        if contender == "ThreadPoolExecutor per call":
            with ThreadPoolExecutor(32) as executor:
                return list(executor.map(wait_a_millisecond, items))
        return parallel_map(wait_a_millisecond, items, 32, backend="thread")

    assert benchmark(run) == items


@pytest.mark.parametrize("contender", ["ThreadPoolExecutor reused", "parallel_imap"])
def test_a_stream_of_waits_on_threads(
    benchmark: Benchmark, contender: str, reused_thread_pool: ThreadPoolExecutor
) -> None:
    """200 waits of 1 ms read from a generator, on 32 threads: a stream of unknown cost
    starts at an item a chunk, so every thread gets one at once (in 16-item chunks, 13
    threads did all of them)."""

    def run() -> list[int]:
        stream = (x for x in range(200))
        if contender == "ThreadPoolExecutor reused":
            return list(reused_thread_pool.map(wait_a_millisecond, stream))
        return list(parallel_imap(wait_a_millisecond, stream, 32, backend="thread"))

    assert benchmark(run) == list(range(200))


def digest(data: bytes) -> bytes:
    """SHA-256 releases the GIL over buffers this large: threads compute side by side."""
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize("contender", ["map", "ThreadPoolExecutor reused", "parallel_map"])
def test_hashing_on_threads(
    benchmark: Benchmark, contender: str, reused_thread_pool: ThreadPoolExecutor
) -> None:
    """1,000 SHA-256 digests of 128 KB on threads: computing, as the probe sees it, but
    off the GIL. Taken for pure Python, it stayed in the caller (about map's time, 1.4
    times ThreadPoolExecutor's); two chunks side by side now show the overlap."""
    buffers = [bytes([i % 256]) * 128 * 1024 for i in range(1_000)]

    def run() -> list[bytes]:
        if contender == "map":
            return list(map(digest, buffers))
        if contender == "ThreadPoolExecutor reused":
            return list(reused_thread_pool.map(digest, buffers))
        return parallel_map(digest, buffers, backend="thread")

    assert benchmark(run) == [hashlib.sha256(data).digest() for data in buffers]
