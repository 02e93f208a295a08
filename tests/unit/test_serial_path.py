"""Calls that run in the caller: backend="serial", workers=1, and nested calls."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

import parmap
from markers import NEEDS_WAIT_COUNTS
from parmap import parallel_imap, parallel_map
from parmap._platform import inside_worker, mark_worker_thread
from parmap._serial import probe

from helpers import CountingSource, PausingClock, busy_for

#: The two ways of asking for a serial run without nesting.
SERIAL_SETTINGS = [{"backend": "serial"}, {"workers": 1}]
SERIAL_IDS = ["backend=serial", "workers=1"]

INPUTS: list[tuple[str, Callable[[], Iterable[int]]]] = [
    ("list", lambda: [3, -1, 4, -1, 5, -9, 2, 6]),
    ("tuple", lambda: (3, -1, 4, -1, 5)),
    ("range", lambda: range(-50, 200, 3)),
    ("generator", lambda: (x * x - 7 for x in range(40))),
    ("empty list", list),
    ("empty generator", lambda: (x for x in ())),
]


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def no_process_started() -> Iterator[None]:
    """Each test here leaves the process without any new child."""
    before = _children()
    yield
    assert _children() <= before


def _triple_plus_one(x: int) -> int:
    return 3 * x + 1


# --- results -------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
@pytest.mark.parametrize(("kind", "make"), INPUTS, ids=[kind for kind, _ in INPUTS])
def test_map_equals_builtin_map(
    settings: dict[str, Any], kind: str, make: Callable[[], Iterable[int]]
) -> None:
    """parallel_map returns list(map(fn, xs)) for every kind of input."""
    assert parallel_map(_triple_plus_one, make(), **settings) == list(map(_triple_plus_one, make()))


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
@pytest.mark.parametrize(("kind", "make"), INPUTS, ids=[kind for kind, _ in INPUTS])
def test_imap_equals_builtin_map(
    settings: dict[str, Any], kind: str, make: Callable[[], Iterable[int]]
) -> None:
    """parallel_imap yields the items of map(fn, xs), in order, for every kind of input."""
    assert list(parallel_imap(_triple_plus_one, make(), **settings)) == list(
        map(_triple_plus_one, make())
    )


@given(xs=st.lists(st.integers()), use_workers=st.booleans(), progress=st.booleans())
def test_serial_map_matches_builtin_for_any_list(
    xs: list[int], use_workers: bool, progress: bool
) -> None:
    """Same results, same order as map(), with or without a progress callback."""
    settings = SERIAL_SETTINGS[use_workers]
    callback: Any = (lambda done, total: None) if progress else False
    assert parallel_map(_triple_plus_one, xs, progress=callback, **settings) == list(
        map(_triple_plus_one, xs)
    )
    assert list(parallel_imap(_triple_plus_one, xs, progress=callback, **settings)) == list(
        map(_triple_plus_one, xs)
    )


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
def test_fn_runs_in_the_calling_thread(settings: dict[str, Any]) -> None:
    """Serial calls run fn in the caller's own thread."""
    caller = threading.get_ident()
    assert parallel_map(lambda _: threading.get_ident(), range(5), **settings) == [caller] * 5


# --- errors --------------------------------------------------------------------------

FAILING_INDEXES = [0, 1, 2, 6, 7, 37, 63, 99]


class Boom(Exception):
    """A user exception type, to show the type is not replaced."""


def _failing_at(index: int) -> tuple[Callable[[int], int], list[BaseException]]:
    raised: list[BaseException] = []

    def fn(x: int) -> int:
        if x == index:
            error = Boom(f"item {x} is bad")
            raised.append(error)
            raise error
        return x

    return fn, raised


def _run_map(fn: Callable[[int], int], settings: dict[str, Any], progress: Any) -> list[int]:
    return parallel_map(fn, range(100), progress=progress, **settings)


def _run_imap(fn: Callable[[int], int], settings: dict[str, Any], progress: Any) -> list[int]:
    return list(parallel_imap(fn, iter(range(100)), progress=progress, **settings))


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
@pytest.mark.parametrize("run", [_run_map, _run_imap], ids=["parallel_map", "parallel_imap"])
@pytest.mark.parametrize("progress", [False, True], ids=["no-progress", "progress"])
@pytest.mark.parametrize("index", FAILING_INDEXES)
def test_exception_is_the_original_with_a_note_naming_the_index(
    settings: dict[str, Any],
    run: Callable[[Callable[[int], int], dict[str, Any], Any], list[int]],
    progress: bool,
    index: int,
) -> None:
    """fn's exception comes back as itself, with one note naming the failing item's index."""
    fn, raised = _failing_at(index)
    callback: Any = (lambda done, total: None) if progress else False
    with pytest.raises(Boom, match=f"item {index} is bad") as info:
        run(fn, settings, callback)
    assert info.value is raised[0]
    assert str(info.value) == f"item {index} is bad"
    assert info.value.__notes__ == [f"parmap: raised by fn for the item at index {index}"]


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
@pytest.mark.parametrize("index", [0, 1, 5, 30])
def test_imap_yields_the_results_before_the_failure(settings: dict[str, Any], index: int) -> None:
    """parallel_imap hands out every result before the failing item, then raises."""
    fn, _ = _failing_at(index)
    got: list[int] = []
    with pytest.raises(Boom, match=f"item {index} is bad"):
        got.extend(parallel_imap(fn, range(100), **settings))
    assert got == list(range(index))


# --- initializer ---------------------------------------------------------------------


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
@pytest.mark.parametrize(
    "api", [parallel_map, parallel_imap], ids=["parallel_map", "parallel_imap"]
)
def test_initializer_runs_once_in_the_caller(
    settings: dict[str, Any], api: Callable[..., Iterable[int]]
) -> None:
    """The initializer runs exactly once, in the calling thread, with initargs."""
    calls: list[tuple[int, tuple[Any, ...]]] = []

    def init(*args: Any) -> None:
        calls.append((threading.get_ident(), args))

    results = api(_triple_plus_one, range(50), initializer=init, initargs=("a", 2), **settings)
    assert list(results) == list(map(_triple_plus_one, range(50)))
    assert calls == [(threading.get_ident(), ("a", 2))]


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
def test_imap_initializer_waits_for_the_first_next(settings: dict[str, Any]) -> None:
    """parallel_imap starts nothing, not even the initializer, before the first next()."""
    calls: list[tuple[Any, ...]] = []
    results = parallel_imap(
        _triple_plus_one, range(5), initializer=lambda *a: calls.append(a), **settings
    )
    assert calls == []
    assert next(results) == _triple_plus_one(0)
    assert calls == [()]


# --- progress ------------------------------------------------------------------------


def _recorder() -> tuple[list[tuple[int, Optional[int]]], Callable[[int, Optional[int]], None]]:
    seen: list[tuple[int, Optional[int]]] = []
    return seen, lambda done, total: seen.append((done, total))


def _check_progress(
    seen: list[tuple[int, Optional[int]]], length: int, total: Optional[int]
) -> None:
    dones = [done for done, _ in seen]
    assert dones == sorted(set(dones)), "done must strictly increase"
    assert dones[0] >= 1
    assert dones[-1] == length
    assert {t for _, t in seen} == {total}


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
@pytest.mark.parametrize(("kind", "make"), INPUTS[:4], ids=[kind for kind, _ in INPUTS[:4]])
def test_map_progress_reaches_the_length(
    settings: dict[str, Any], kind: str, make: Callable[[], Iterable[int]]
) -> None:
    """parallel_map reports (done, total) with total = len and done ending at len."""
    length = len(list(make()))
    seen, callback = _recorder()
    parallel_map(_triple_plus_one, make(), progress=callback, **settings)
    _check_progress(seen, length, length)


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
@pytest.mark.parametrize(("kind", "make"), INPUTS[:3], ids=[kind for kind, _ in INPUTS[:3]])
def test_imap_progress_knows_the_total_of_sized_input(
    settings: dict[str, Any], kind: str, make: Callable[[], Iterable[int]]
) -> None:
    """parallel_imap over a sized input reports total = len."""
    length = len(list(make()))
    seen, callback = _recorder()
    list(parallel_imap(_triple_plus_one, make(), progress=callback, **settings))
    _check_progress(seen, length, length)


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
def test_imap_progress_total_is_none_for_a_generator(settings: dict[str, Any]) -> None:
    """parallel_imap over a generator cannot know the total: it reports None."""
    seen, callback = _recorder()
    list(parallel_imap(_triple_plus_one, (x for x in range(75)), progress=callback, **settings))
    _check_progress(seen, 75, None)


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
def test_progress_is_reported_in_the_calling_thread(settings: dict[str, Any]) -> None:
    """The progress callback runs in the caller's thread."""
    threads: set[int] = set()
    parallel_map(
        _triple_plus_one,
        range(20),
        progress=lambda d, t: threads.add(threading.get_ident()),
        **settings,
    )
    assert threads == {threading.get_ident()}


# --- laziness ------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
def test_imap_reads_a_bounded_number_of_items(settings: dict[str, Any]) -> None:
    """On endless input, nothing is read before next(), then at most buffersize ahead."""
    source = CountingSource()
    results = parallel_imap(_triple_plus_one, source, buffersize=1, **settings)
    assert source.read == 0
    assert next(results) == _triple_plus_one(0)
    assert source.read <= 2
    taken = list(itertools.islice(results, 99))
    assert taken == [_triple_plus_one(x) for x in range(1, 100)]
    assert source.read <= 100 + 1
    results.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("settings", SERIAL_SETTINGS, ids=SERIAL_IDS)
def test_imap_default_read_ahead_is_one_batch(settings: dict[str, Any]) -> None:
    """Without buffersize, the caller runs ahead by at most one batch of SERIAL_BATCH items."""
    from parmap._serial import SERIAL_BATCH

    source = CountingSource()
    results = parallel_imap(_triple_plus_one, source, **settings)
    taken = list(itertools.islice(results, 5000))
    assert taken == [_triple_plus_one(x) for x in range(5000)]
    assert source.read <= 5000 + SERIAL_BATCH
    results.close()  # type: ignore[attr-defined]


# --- nested calls --------------------------------------------------------------------


def test_marked_worker_thread_runs_parallel_map_serially() -> None:
    """Inside a parmap worker thread, parallel_map runs in that thread and starts no process."""
    outcome: dict[str, Any] = {}
    before = _children()

    def worker() -> None:
        try:
            mark_worker_thread()
            outcome["inside"] = inside_worker()
            outcome["thread"] = threading.get_ident()
            outcome["results"] = parallel_map(
                lambda x: (x * x, threading.get_ident()), range(30), 4, serial_fallback=False
            )
            outcome["children"] = _children()
        except BaseException as exc:  # handed to the main thread below
            outcome["error"] = exc

    thread = threading.Thread(target=worker)
    try:
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive()
        if "error" in outcome:
            raise outcome["error"]
        assert outcome["inside"] is True
        assert outcome["results"] == [(x * x, outcome["thread"]) for x in range(30)]
        assert outcome["children"] <= before
        assert not inside_worker(), "the mark must not leak into other threads"
    finally:
        parmap.shutdown()


def test_pricing_large_items_makes_no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe prices sending megabyte items without pickling them: a real pickle and
    unpickle costs the caller 0.4-1.3 ms a megabyte, of a call that may then run in the
    caller anyway. The price still covers every byte's copies and pipe."""
    import pickle

    from parmap import _serial

    def no_copy(*args: object, **kwargs: object) -> object:
        raise AssertionError("a large item was pickled to price it")

    monkeypatch.setattr(pickle, "dumps", no_copy)
    monkeypatch.setattr(pickle, "loads", no_copy)
    payloads = [bytes(1_000_000), bytearray(2_000_000)]
    seconds = _serial.transfer_seconds(payloads, [0, 0])
    per_byte = _serial.PICKLE_SECONDS_PER_BYTE + _serial.PIPE_SECONDS_PER_BYTE
    assert seconds >= 1_500_000 * per_byte, "the average pair's bytes, priced"


def test_pricing_large_items_walks_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk that tells a large first item from a small one is also its price's."""
    from parmap import _serial

    walked: list[object] = []
    real_size = _serial.pickled_size

    def recording_size(value: object) -> int:
        walked.append(value)
        return real_size(value)

    monkeypatch.setattr(_serial, "pickled_size", recording_size)
    monkeypatch.setattr(_serial, "TRANSFER_SAMPLE_SECONDS", 1.0)  # the whole sample
    payloads = [bytes(1_000_000), bytes(1_000_000)]
    assert _serial.transfer_seconds(payloads, [0, 1]) > 0
    assert walked == [payloads[:1], 0, payloads[1], 1], "each item and result once"


def _record_pricing_pickles(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What the pricing of a sample pickles from now on, in order."""
    import _pickle  # the C pickler alone: pricing does not import pickle.py

    pickled: list[object] = []
    real_dumps = _pickle.dumps

    def recording_dumps(value: object, protocol: Optional[int] = None) -> bytes:
        pickled.append(value)
        return real_dumps(value, protocol)

    monkeypatch.setattr(_pickle, "dumps", recording_dumps)
    return pickled


def test_pricing_small_items_times_their_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small items are pickled and unpickled for real, as lists each way, as a chunk
    and its results travel: what they cost is the walk over their objects. Cheap ones
    are priced from the whole sample: the first few pairs, then the rest."""
    from parmap import _serial

    pickled = _record_pricing_pickles(monkeypatch)
    items, results = list(range(100)), [str(x) for x in range(100)]
    assert _serial.transfer_seconds(items, results) > 0
    first, sample = _serial.FIRST_SMALL_SAMPLE, _serial.TRANSFER_SAMPLE
    assert pickled == [items[:first], results[:first], items[first:sample], results[first:sample]]


def test_pricing_costly_small_items_stops_after_the_first_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where pickling the first pairs says the whole sample would take longer than its
    limit (numpy rows: 1 ms for 64 pairs, a quarter of map's time over 2,000 of them),
    those first pairs are the price."""
    from parmap import _serial

    monkeypatch.setattr(_serial, "TRANSFER_SAMPLE_SECONDS", 0.0)  # any pickle is too long
    pickled = _record_pricing_pickles(monkeypatch)
    items, results = list(range(100)), [str(x) for x in range(100)]
    assert _serial.transfer_seconds(items, results) > 0
    first = _serial.FIRST_SMALL_SAMPLE
    assert pickled == [items[:first], results[:first]]


def test_pricing_fewer_items_than_the_first_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    from parmap import _serial

    pickled = _record_pricing_pickles(monkeypatch)
    assert _serial.transfer_seconds([1, 2, 3], [2, 3, 4]) > 0
    assert pickled == [[1, 2, 3], [2, 3, 4]], "each list once, no empty rest"


@pytest.mark.parametrize(
    "value",
    [
        None,
        bytes(1_000_000),
        bytearray(b"abc") * 100_000,
        "text " * 20_000,
        [bytes(100_000), {"key": bytearray(70_000)}, (1.5, "x")],
        list(range(50_000)),
    ],
    ids=["None", "bytes", "bytearray", "str", "nested buffers", "ints"],
)
def test_pickled_size_is_the_size_of_the_pickle(value: object) -> None:
    import pickle

    from parmap._serial import pickled_size

    assert pickled_size(value) == len(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


def test_pickled_size_counts_numpy_buffers() -> None:
    """numpy arrays reach the pickler as buffers (protocol 5), contiguous or not."""
    import pickle

    import numpy

    from parmap._serial import pickled_size

    for array in (numpy.arange(200_000.0), numpy.ones((400, 400))[::2, ::3]):
        assert pickled_size(array) == len(pickle.dumps(array, pickle.HIGHEST_PROTOCOL))


_PAUSING_CLOCK = PausingClock()


def _sleep_a_millisecond(_: int) -> None:
    time.sleep(0.001)


def _compute_a_millisecond_and_lose_the_cpu(_: int) -> None:
    busy_for(0.001)
    _PAUSING_CLOCK.paused += 0.01


@NEEDS_WAIT_COUNTS
def test_a_probe_prices_items_that_wait_by_the_clock_and_others_by_cpu_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sleeping makes the caller wait: the probe counts the waits and prices the items
    by the clock. Computing never waits (losing the CPU to another process is not a
    wait): the probe prices those items by the CPU time they took, not by the pauses."""
    monkeypatch.setattr(parmap._serial, "time", _PAUSING_CLOCK)

    def probe_three(fn: Callable[[int], None]) -> parmap._serial.Probe:
        return probe(fn, iter(range(3)), budget=10.0, deadline=None, on_done=None)

    sleeping = probe_three(_sleep_a_millisecond)
    assert sleeping.waits is not None
    assert sleeping.waits >= 3
    assert sleeping.item_seconds() == sleeping.seconds / 3 >= 0.001
    computing = probe_three(_compute_a_millisecond_and_lose_the_cpu)
    assert computing.waits == 0
    assert computing.seconds >= 0.03
    assert 0.001 <= computing.item_seconds() <= computing.cpu_seconds / 3 < 0.005
