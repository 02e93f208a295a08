"""The workloads and contenders of the comparison, shared by compare.py and the
pytest-benchmark suite (test_comparison.py).

A workload is a function, its inputs and the kind of call (an eager ``map``, a lazy
stream, I/O on threads). A contender is one way of running that call: the builtin
``map``, ``multiprocessing.Pool``, ``ProcessPoolExecutor``, joblib, loky, mpire or
parmap. Contenders that keep a pool between calls get it started and warmed up
before the clock starts; those that start one per call (a ``Pool`` in a ``with``
block, mpire's ``WorkerPool``) pay for it in every call, as their users do. parmap is
timed warm (its workers started by a call with another function) and cold (its first
call in a fresh process starts its workers).

Every item's cost is fixed work (no calibration), so the numbers compare across runs
on one machine; *scale* shrinks the work for a quick look and for CI.
"""

from __future__ import annotations

import math
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

#: Numbers of the origin notes' example: ~0.17 s of CPU each on a 2020s machine.
ORIGIN_NUMBER = 5_000_000
#: ``cpu_bound(TWO_MS_NUMBER)`` takes about 2 ms here (Python 3.11, x86-64).
TWO_MS_NUMBER = 60_000
ONE_MS_NUMBER = TWO_MS_NUMBER // 2


def cpu_bound(number: int) -> int:
    """The origin notes' function: pure-Python arithmetic, about 34 ns per step."""
    return sum(i * i for i in range(number))


def increment(x: int) -> int:
    return x + 1


def io_wait(x: int) -> int:
    """A 10 ms wait that releases the GIL, like a network round trip."""
    time.sleep(0.01)
    return x


def warm_up_item(x: int) -> int:
    return x


def parse_record(line: str) -> int:
    """A stream's typical cheap step: split a CSV-like line and add its fields."""
    first, second, third = line.split(",")
    return int(first) + int(second) + int(third)


def records(length: int) -> Iterator[str]:
    """A generator of CSV-like lines, made on the fly, so nobody can take its length."""
    return (f"{i},{i % 7},{i % 3}" for i in range(length))


def records_total(length: int) -> int:
    return sum(i + i % 7 + i % 3 for i in range(length))


def sorted_array(array: Any) -> Any:
    """A data scientist's step on a big array, with a big array back: about 60 ms for
    8 MB of floats."""
    import numpy

    return numpy.sort(array)


def array_summary(arrays: list[Any]) -> list[tuple[float, float, float]]:
    """What checks a list of sorted arrays: numpy arrays do not compare with ``==``."""
    return [(float(a[0]), float(a[len(a) // 2]), float(a.sum())) for a in arrays]


# -- workloads -------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One row of the comparison."""

    name: str
    title: str
    fn: Callable[[Any], Any]
    make_items: Callable[[float], list[Any]]
    kind: str = "map"  # "map", "lazy" (a generator through imap), "thread", "calls"
    calls: int = 1  # successive calls of the same map ("calls")
    stream_length: int = 0  # items of a "lazy" stream
    only: tuple[str, ...] = field(default=())  # contenders, if not every one that can
    #: What results are checked by, where they do not compare as they are.
    summary: Optional[Callable[[Any], Any]] = None

    def checked(self, results: Any) -> Any:
        return results if self.summary is None else self.summary(results)


def origin_items(scale: float) -> list[int]:
    return [int(ORIGIN_NUMBER * scale) + x for x in range(20)]


def two_ms_items(scale: float) -> list[int]:
    return [TWO_MS_NUMBER] * max(8, int(2000 * scale))


def skewed_items(scale: float) -> list[int]:
    """1,000 items of ~1 ms; 12 of them, at random places, cost 20-50 times more."""
    count = max(40, int(1000 * scale))
    items = [ONE_MS_NUMBER] * count
    rng = random.Random(5)  # the same layout in every run
    for position in rng.sample(range(count), max(2, count // 80)):
        items[position] = ONE_MS_NUMBER * rng.randint(20, 50)
    return items


def sixty_four_ms_items(scale: float) -> list[int]:
    return [ONE_MS_NUMBER] * 64


def trivial_items(scale: float) -> list[int]:
    return list(range(max(1000, int(1_000_000 * scale))))


def eight_items(scale: float) -> list[int]:
    return list(range(8))


def payload_items(scale: float) -> list[bytes]:
    """200 distinct payloads of 1 MB (built outside the timing)."""
    return [bytes([i % 256]) * 1_000_000 for i in range(max(8, int(200 * scale)))]


def array_items(scale: float) -> list[Any]:
    """32 distinct numpy arrays of 8 MB (a million floats each)."""
    import numpy

    rng = numpy.random.default_rng(3)
    return [rng.random(1_000_000) for _ in range(max(4, int(32 * scale)))]


def io_items(scale: float) -> list[int]:
    return list(range(max(20, int(200 * scale))))


WORKLOADS = {
    w.name: w
    for w in [
        Workload("origin", "origin example: 20 items of ~0.17 s", cpu_bound, origin_items),
        Workload("items_2ms", "2,000 items of ~2 ms", cpu_bound, two_ms_items),
        Workload(
            "skewed", "skewed: 1,000 items of ~1 ms, 12 of them 20-50x", cpu_bound, skewed_items
        ),
        Workload(
            "calls_50x64",
            "50 successive calls of 64 items of ~1 ms",
            cpu_bound,
            sixty_four_ms_items,
            kind="calls",
            calls=50,  # fewer with --scale below 1
        ),
        Workload("trivial_1m", "1,000,000 trivial items", increment, trivial_items),
        Workload(
            "eight_items", "8 trivial items, first call", increment, eight_items, kind="first"
        ),
        Workload("payloads_1mb", "200 payloads of 1 MB, crc32", zlib.crc32, payload_items),
        Workload(
            "arrays_8mb",
            "32 numpy arrays of 8 MB, sorted",
            sorted_array,
            array_items,
            summary=array_summary,
        ),
        Workload(
            "lazy_2m",
            "lazy stream of 2,000,000 lines, split and added",
            parse_record,
            eight_items,  # not used: the stream is generated as it is read
            kind="lazy",
            stream_length=2_000_000,
        ),
        Workload(
            "lazy_8m",
            "lazy stream of 8,000,000 lines (memory must not grow)",
            parse_record,
            eight_items,
            kind="lazy",
            stream_length=8_000_000,
            only=("map", "parmap"),
        ),
        Workload("io_threads", "200 I/O waits of 10 ms, threads", io_wait, io_items, kind="thread"),
    ]
}


# -- contenders ------------------------------------------------------------------------


class Contender:
    """A way to run a map; *close* stops what it started."""

    name = "?"
    kinds: tuple[str, ...] = ("map", "calls", "first")

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        raise NotImplementedError

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the contender's workers."""

    def tuned_chunksize(self, count: int) -> int:
        """What ``Pool.map`` picks: four chunks per worker."""
        return max(1, math.ceil(count / (4 * self.workers)))


class BuiltinMap(Contender):
    name = "map"
    kinds = ("map", "calls", "first", "lazy", "thread")

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        return list(map(fn, items))

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)


class PoolPerCall(Contender):
    name = "Pool (new per call)"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        import multiprocessing

        self.multiprocessing = multiprocessing

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        with self.multiprocessing.Pool(self.workers) as pool:
            return pool.map(fn, items)


class PoolReused(Contender):
    name = "Pool (reused)"
    kinds = ("map", "calls", "first", "lazy")

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        import multiprocessing

        self.pool = multiprocessing.Pool(workers)
        self.pool.map(warm_up_item, range(4 * workers), chunksize=1)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        return self.pool.map(fn, items)

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return self.pool.imap(fn, items, chunksize=1000)  # the default, 1, is far slower

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class ProcessPoolDefault(Contender):
    name = "PPE (default)"
    kinds = ("map", "calls", "first", "lazy")
    chunksize: Optional[int] = None

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        from concurrent.futures import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(workers)
        list(self.executor.map(warm_up_item, range(4 * workers)))

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        chunksize = self.tuned_chunksize(len(items)) if self.chunksize else 1
        return list(self.executor.map(fn, items, chunksize=chunksize))

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return self.executor.map(fn, items, chunksize=self.chunksize or 1)

    def close(self) -> None:
        self.executor.shutdown(cancel_futures=True)


class ProcessPoolTuned(ProcessPoolDefault):
    name = "PPE (tuned)"
    chunksize = 1000  # for streams; lists get four chunks per worker


class Joblib(Contender):
    name = "joblib"
    kinds = ("map", "calls", "first", "lazy")

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        import joblib  # noqa: F401 - imported before the clock starts

        self.map(warm_up_item, list(range(4 * workers)))  # starts its reusable executor

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        from joblib import Parallel, delayed

        return list(Parallel(n_jobs=self.workers)(delayed(fn)(x) for x in items))

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=self.workers, return_as="generator")
        return iter(parallel(delayed(fn)(x) for x in items))

    def close(self) -> None:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)


class Loky(Contender):
    name = "loky"
    kinds = ("map", "calls", "first", "lazy")

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        from loky import get_reusable_executor

        self.executor = get_reusable_executor(max_workers=workers)
        list(self.executor.map(warm_up_item, range(4 * workers)))

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        chunksize = self.tuned_chunksize(len(items))
        return list(self.executor.map(fn, items, chunksize=chunksize))

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return self.executor.map(fn, items, chunksize=1000)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class Mpire(Contender):
    """mpire's documented idiom: a ``WorkerPool`` in a ``with`` block per map."""

    name = "mpire"
    kinds = ("map", "calls", "first", "lazy")

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        import mpire  # noqa: F401 - imported before the clock starts

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        from mpire import WorkerPool

        with WorkerPool(n_jobs=self.workers) as pool:
            # A list of results, as every contender returns: by default mpire joins
            # numpy arrays into one.
            return list(pool.map(fn, items, progress_bar=False, concatenate_numpy_output=False))

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        from mpire import WorkerPool

        def results() -> Iterator[Any]:
            with WorkerPool(n_jobs=self.workers) as pool:
                yield from pool.imap(fn, items, chunk_size=1000, progress_bar=False)

        return results()


class ParmapCold(Contender):
    """Its first call in the process starts the workers (and imports multiprocessing)."""

    name = "parmap (cold)"
    kinds = ("map", "calls", "first", "lazy")

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        import parmap  # noqa: F401 - imported before the clock starts

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        from parmap import parallel_map

        return parallel_map(fn, items, self.workers)

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        from parmap import parallel_imap

        return parallel_imap(fn, items, self.workers)

    def close(self) -> None:
        import parmap

        parmap.shutdown()


class Parmap(ParmapCold):
    """Warm, like the reused pools: workers started by an earlier call."""

    name = "parmap"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        from parmap import parallel_map

        parallel_map(warm_up_item, range(4 * workers), workers, serial_fallback=False)


#: Thread counts of the I/O workload: the same number for every contender, except the
#: ones that show parmap's default and its 2-thread run (for the "at least 8x" floor).
IO_THREADS = 32


class ThreadPool(Contender):
    name = f"ThreadPoolExecutor ({IO_THREADS})"
    kinds = ("thread",)

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        import concurrent.futures  # noqa: F401 - imported before the clock starts

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(IO_THREADS) as executor:
            return list(executor.map(fn, items))


class JoblibThreads(Contender):
    name = f"joblib threads ({IO_THREADS})"
    kinds = ("thread",)

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        import joblib  # noqa: F401 - imported before the clock starts

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=IO_THREADS, prefer="threads")
        return list(parallel(delayed(fn)(x) for x in items))


class ParmapThreads(Contender):
    name = f"parmap threads ({IO_THREADS})"
    kinds = ("thread",)
    threads: Optional[int] = IO_THREADS

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        # Imported before the clock starts, as the other thread pools' modules are.
        import parmap._backends._executor  # noqa: F401

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        from parmap import parallel_map

        return parallel_map(fn, items, self.threads, backend="thread")


class ParmapThreadsDefault(ParmapThreads):
    name = "parmap threads (default)"
    threads = None


class ParmapTwoThreads(ParmapThreads):
    name = "parmap threads (2)"
    threads = 2


CONTENDERS: dict[str, type[Contender]] = {
    c.name: c
    for c in [
        BuiltinMap,
        PoolPerCall,
        PoolReused,
        ProcessPoolDefault,
        ProcessPoolTuned,
        Joblib,
        Loky,
        Mpire,
        ParmapCold,
        Parmap,
        ThreadPool,
        JoblibThreads,
        ParmapThreads,
        ParmapThreadsDefault,
        ParmapTwoThreads,
    ]
}


def parmap_contender(workload: Workload) -> str:
    """The parmap row the others are compared with on *workload*."""
    return ParmapThreads.name if workload.kind == "thread" else Parmap.name


def contenders_for(workload: Workload) -> list[str]:
    kind = "map" if workload.kind == "first" else workload.kind
    names = [name for name, c in CONTENDERS.items() if kind in c.kinds]
    return [name for name in names if name in workload.only] if workload.only else names


def expected_result(workload: Workload, scale: float) -> Any:
    """What a run of *workload* must return, computed serially."""
    if workload.kind == "lazy":
        return records_total(stream_length(workload, scale))
    return workload.checked(list(map(workload.fn, workload.make_items(scale))))


def stream_length(workload: Workload, scale: float) -> int:
    return max(1000, int(workload.stream_length * scale))


def prepare(
    contender: Contender, workload: Workload, scale: float, expected: Any = None
) -> tuple[Callable[[], Any], Any]:
    """What to time (a call that does the workload's whole job) and what it must return.

    The inputs and, unless given, the expected answer are made here, outside any timing.
    """
    fn = workload.fn
    if expected is None:
        expected = expected_result(workload, scale)
    if workload.kind == "lazy":
        length = stream_length(workload, scale)
        return lambda: sum(contender.imap(fn, records(length))), expected
    items = workload.make_items(scale)
    if workload.kind == "calls":
        calls = max(2, round(workload.calls * min(1.0, scale)))

        def successive_calls() -> list[Any]:
            results: list[Any] = []
            for _ in range(calls):
                results = contender.map(fn, items)
            return results

        return successive_calls, expected
    return lambda: contender.map(fn, items), expected


def run_workload(
    contender: Contender, workload: Workload, scale: float, expected: Any = None
) -> list[float]:
    """Seconds of the timed part: one figure, or for "first" [first call, later calls]."""
    run, expected = prepare(contender, workload, scale, expected)
    started = time.perf_counter()
    result = run()
    seconds = [time.perf_counter() - started]
    if workload.checked(result) != expected:
        raise AssertionError(f"{contender.name} got wrong results on {workload.name}")
    if workload.kind == "first":  # then later calls: the median of 21
        later = []
        for _ in range(21):
            started = time.perf_counter()
            run()
            later.append(time.perf_counter() - started)
        seconds.append(sorted(later)[10])
    return seconds
