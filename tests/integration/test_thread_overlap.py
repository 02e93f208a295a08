"""Threads and items that compute: serial unless their computing overlaps.

Pure-Python items hold the GIL, so threads run them in turns, no faster than the caller;
hashing, compression and numpy release it, and run side by side on as many CPUs. The
probe cannot tell the two apart, so where threads would pay off only for the second kind,
a call runs a chunk on each of as many threads as CPUs at once and reads the process's CPU
clock against the wall clock meanwhile. Here that clock is a stand-in saying how far the
items overlapped, and the CPUs are two, so the rule is checked whatever machine runs it.
"""

from __future__ import annotations

import itertools
import threading
import time
from types import SimpleNamespace
from typing import Iterator

import pytest

import parmap
from parmap import _call, _fn_memory, parallel_imap, parallel_map

from helpers import CountingSource

#: The least item time that gets a trial, as parmap sets it.
TRIAL_FLOOR = _call.SIDE_BY_SIDE_ITEM_SECONDS


def _compute_then_name(x: int) -> tuple[int, str]:
    """About 0.2-0.4 ms of Python: CPU time, in the probe's eyes."""
    total = 0
    for i in range(8_000):
        total += i * x
    return x, threading.current_thread().name


@pytest.fixture
def overlap(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The process's CPU clock runs this many times as fast as the wall clock: so much
    the items seem to overlap on threads. And the first item, on a thread, is taken for
    the computing it is (on a busy machine the caller may find it still running after
    0.1 ms, and send the rest to threads at once, as for a wait)."""
    monkeypatch.setattr(_call, "_first_thread_item_answers", lambda mark: True)
    monkeypatch.setattr(_call, "available_cpus", lambda: 2)
    # Items of any cost get a trial, so that a fast machine's items are not too cheap.
    monkeypatch.setattr(_call, "SIDE_BY_SIDE_ITEM_SECONDS", 1e-6)
    factor = [1.0]
    clock = SimpleNamespace(
        perf_counter=time.perf_counter,
        thread_time=time.thread_time,
        get_clock_info=time.get_clock_info,
        process_time=lambda: factor[0] * time.perf_counter(),
    )
    monkeypatch.setattr(_call, "time", clock)
    yield factor
    parmap.shutdown()


def test_items_that_overlap_on_threads_go_to_threads(overlap: list[float]) -> None:
    overlap[0] = 1.9
    results = parallel_map(_compute_then_name, range(300), 2, backend="thread")
    assert [x for x, _ in results] == list(range(300))
    assert results[-1][1].startswith("parmap-thread"), "the rest went to threads"
    assert _fn_memory.overlap(_compute_then_name) == pytest.approx(1.9, rel=0.01)


def test_items_that_take_turns_on_threads_stay_in_the_caller(overlap: list[float]) -> None:
    """A trial that shows no overlap is not remembered: the next call tries again (the
    items it runs on threads take about as long as in the caller)."""
    overlap[0] = 1.0
    for _ in range(2):
        results = parallel_map(_compute_then_name, range(300), 2, backend="thread")
        assert [x for x, _ in results] == list(range(300))
        threads = {name for _, name in results}
        assert results[-1][1] == threading.main_thread().name, "the rest ran in the caller"
        assert any(name.startswith("parmap-thread") for name in threads), "the trial ran"
        assert _fn_memory.overlap(_compute_then_name) is None


def test_a_remembered_overlap_sends_the_next_call_to_threads_without_a_trial(
    overlap: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    overlap[0] = 1.9
    parallel_map(_compute_then_name, range(300), 2, backend="thread")

    def no_trial(*args: object) -> object:
        raise AssertionError("a second trial")

    monkeypatch.setattr(_call.Call, "_side_by_side", no_trial)
    results = parallel_map(_compute_then_name, range(300), 2, backend="thread")
    assert [x for x, _ in results] == list(range(300))
    assert results[-1][1].startswith("parmap-thread")


def most_read_ahead(count: int, *, workers: int, buffersize: int) -> int:
    """The most items parallel_imap read ahead of its loop over *count* of them (each
    result checked on the way)."""
    source = CountingSource()
    items = itertools.islice(source, count)
    results = parallel_imap(
        _compute_then_name, items, workers, backend="thread", buffersize=buffersize
    )
    most_ahead = consumed = 0
    for consumed, (x, _) in enumerate(results, 1):
        assert x == consumed - 1
        most_ahead = max(most_ahead, source.read - consumed)
    assert consumed == count
    return most_ahead


def test_the_trial_and_the_chunks_after_it_stay_within_the_buffer(
    overlap: list[float],
) -> None:
    """parallel_imap reads at most buffersize items ahead of its consumer: the trial's
    chunks (10 ms of these items would be 50 each), and the automatic chunks after it (16
    items each, which read 16 past buffersize=8), are cut to the room left."""
    overlap[0] = 1.9
    assert most_read_ahead(400, workers=2, buffersize=8) <= 8


def _name(x: int) -> str:
    return threading.current_thread().name


def test_cheap_items_get_no_trial(overlap: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    """Items under 50 us hand the GIL back and forth too often to gain on threads, and a
    thread's loop over trivial items is slower than map's: a million of them took 1.44
    times map's time with a trial, 0.99 times without."""
    monkeypatch.setattr(_call, "SIDE_BY_SIDE_ITEM_SECONDS", TRIAL_FLOOR)
    overlap[0] = 1.9
    names = parallel_map(_name, range(50_000), 2, backend="thread")
    assert set(names[1:]) == {threading.main_thread().name}, "the first ran on a thread"
    assert _fn_memory.overlap(_name) is None


def test_the_trial_takes_no_more_threads_than_the_buffer_has_room_for(
    overlap: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 16 CPUs, the trial would run 16 chunks at once: under buffersize=4, it runs 4
    chunks of one item."""
    monkeypatch.setattr(_call, "available_cpus", lambda: 16)
    overlap[0] = 1.9
    assert most_read_ahead(200, workers=16, buffersize=4) <= 4
    assert _fn_memory.overlap(_compute_then_name) is not None, "the trial ran"
