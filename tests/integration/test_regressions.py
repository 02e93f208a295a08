"""Regressions found in review: each once let a call hang, ignore a limit or stop early."""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from typing import Callable

import pytest

import parmap._call
from parmap import SerializationError, parallel_imap, parallel_map

from helpers import (
    START_METHODS,
    CountingSource,
    busy_for,
    identity,
    logged_long_first_item,
    pid_of,
    read_natively_at_first,
    slow_tagged,
    slow_then_fail_at_zero,
    square,
    tagged,
)


def _warm_up() -> None:
    assert parallel_map(pid_of, range(4), 2, 1, serial_fallback=False)


def test_failing_first_item_does_not_poison_the_next_call() -> None:
    """Work handed out while a first item ran, which then raised, is cancelled."""
    _warm_up()
    with pytest.raises(ValueError, match="first item failed"):
        parallel_map(slow_then_fail_at_zero, range(10), 2)
    assert parallel_map(tagged, range(10), 2, 1, serial_fallback=False) == [
        ("new", x) for x in range(10)
    ]


def test_leaving_imap_after_the_first_result_does_not_poison_the_next_call() -> None:
    """Breaking out right after the first (caller-run) result cancels what was handed out."""
    _warm_up()
    for first in parallel_imap(slow_tagged, range(10), 2):
        assert first == ("old", 0)
        break
    assert parallel_map(tagged, range(10), 2, 1, serial_fallback=False) == [
        ("new", x) for x in range(10)
    ]


def test_timeout_holds_when_the_caller_runs_the_rest() -> None:
    """A sized input that stays in the caller still stops at the timeout."""
    with pytest.raises(TimeoutError):
        parallel_map(identity, itertools.repeat(0, 50_000_000), timeout=0.05)


def test_progress_reaches_the_total_when_the_caller_runs_the_rest() -> None:
    """The progress callback counts every item, also those run in one go in the caller."""
    calls: list[tuple[int, int | None]] = []
    parallel_map(identity, range(300_000), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (300_000, 300_000)


def test_imap_over_a_list_keeps_every_worker_busy() -> None:
    """With a known length, the read-ahead fits the chunks: both workers get work."""
    pids = set(parallel_imap(_busy_pid, list(range(40)), 2, serial_fallback=False))
    assert len(pids) == 2


def _busy_pid(x: int) -> int:
    busy_for(0.005)
    return pid_of(x)


def test_imap_timeout_bounds_each_wait_not_the_whole_stream() -> None:
    """A long stream of results that each come in time never times out."""
    results = list(parallel_imap(_busy_item, range(12), 2, 1, timeout=1.0, serial_fallback=False))
    assert results == list(range(12))


def _busy_item(x: int) -> int:
    busy_for(0.2)  # 12 items on 2 workers: 1.2 s in all, 0.2 s per wait
    return x


def test_garbage_collected_imap_stops_its_workers() -> None:
    """An iterator dropped mid-stream cancels its work; the next call gets idle workers."""
    import gc

    results = parallel_imap(_hang_after_first, itertools.count(1), 2, 1, serial_fallback=False)
    assert next(results) == 1  # the other worker is now stuck on item 2
    del results
    gc.collect()
    assert parallel_map(tagged, range(10), 2, 1, serial_fallback=False) == [
        ("new", x) for x in range(10)
    ]


def _hang_after_first(x: int) -> int:
    if x > 1:
        threading.Event().wait()
    return x


def test_pool_started_by_a_thread_that_ended_keeps_working() -> None:
    """Workers started from a short-lived thread are not killed when that thread ends."""
    started = threading.Thread(
        target=parallel_map, args=(pid_of, range(4), 2, 1), kwargs={"serial_fallback": False}
    )
    started.start()
    started.join()
    pids = parallel_map(pid_of, range(20), 2, 1, serial_fallback=False)
    assert len(pids) == 20


def test_the_unpicklable_item_is_the_one_blamed() -> None:
    """A lambda item travels by value; the lock after it is the one named."""
    with pytest.raises(SerializationError, match=r"index 1 \(a lock\)"):
        parallel_map(identity, [lambda: 1, threading.Lock()], 2, serial_fallback=False)


def test_thread_backend_runs_a_slow_first_item_on_a_thread() -> None:
    """An I/O-bound first item does not hold up the others in the caller's thread."""
    names = parallel_map(_wait_then_name, range(8), 4, backend="thread")
    assert all(name.startswith("parmap-thread") for name in names), names


def test_a_first_item_waiting_on_io_has_the_next_ones_start_beside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen waiting off the GIL, the first item gets company at once, not after a
    fixed wait: here the wait is made longer than the first item would wait."""
    monkeypatch.setattr(parmap._call, "FIRST_THREAD_ITEM_WAIT", 60.0)
    second_started = threading.Event()

    def first_waits_for_the_second(x: int) -> bool:
        if x == 0:  # the workload: item 0 can only succeed next to item 1
            return second_started.wait(5)
        second_started.set()
        return True

    assert parallel_map(first_waits_for_the_second, range(4), 4, backend="thread") == [True] * 4


def _run_step(step: Callable[[], object]) -> object:
    return step()


def test_threads_each_get_an_item_at_once_where_the_first_waited_last_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fn's first item waited in its last call, so this call hands every thread an item
    at once, instead of first watching one for up to 0.5 ms: here the watch is made to
    last a minute, and the items can only finish together."""
    waits = [functools.partial(threading.Event().wait, 0.005)] * 8  # I/O, the workload
    assert parallel_map(_run_step, waits, 4, backend="thread") == [False] * 8
    monkeypatch.setattr(parmap._call, "FIRST_THREAD_ITEM_WAIT", 60.0)
    monkeypatch.setattr(parmap._call, "FIRST_THREAD_ITEM_WAITING", 60.0)
    together = threading.Barrier(4, timeout=10)
    arrivals = parallel_map(_run_step, [together.wait] * 4, 4, backend="thread")
    assert sorted(arrivals) == [0, 1, 2, 3]  # each thread's place in the barrier


def test_the_items_handed_to_every_thread_at_once_stay_within_the_buffer() -> None:
    """parallel_imap's buffersize bounds what is read ahead of the consumer, the items
    handed to every thread at once included."""
    waits = [functools.partial(threading.Event().wait, 0.005)] * 8
    parallel_map(_run_step, waits, 8, backend="thread")  # fn's first item waited
    source = CountingSource()
    steps = (functools.partial(_index_and_thread, i) for i in source)
    results = parallel_imap(_run_step, steps, 8, backend="thread", buffersize=3)
    assert next(results)[0] == 0
    assert source.read <= 1 + 3
    results.close()  # type: ignore[attr-defined]


def test_a_first_item_that_no_longer_waits_runs_the_rest_in_the_caller() -> None:
    """fn waited last time, so the threads each get an item at once; this time the first
    is cheap, so those items are collected, the results stay in order, and the next
    call watches one item first again."""
    waits = [functools.partial(threading.Event().wait, 0.005)] * 8
    parallel_map(_run_step, waits, 4, backend="thread")
    assert parmap._fn_memory.seen_waiting(_run_step)
    steps = [functools.partial(_index_and_thread, i) for i in range(100)]
    results = parallel_map(_run_step, steps, 4, backend="thread")
    assert [i for i, _ in results] == list(range(100))
    assert all(name.startswith("parmap-thread") for _, name in results[:4]), "handed out"
    assert not parmap._fn_memory.seen_waiting(_run_step)


def test_an_input_that_all_goes_out_at_once_is_collected_unwatched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where fn waited last time and the whole input fits on the threads, every item goes
    out at once and nothing is left to decide: the caller collects the results without
    watching the first item (0.2 ms on 8 waits of 0.1 ms), and learns from the first
    item's own clocks whether fn still waits, for its next call."""
    waits = [functools.partial(threading.Event().wait, 0.005)] * 8
    parallel_map(_run_step, waits, 8, backend="thread")
    assert parmap._fn_memory.seen_waiting(_run_step)

    def no_watch(mark: object) -> bool:
        raise AssertionError("the first item was watched")

    monkeypatch.setattr(parmap._call, "_first_thread_item_answers", no_watch)
    assert parallel_map(_run_step, waits, 8, backend="thread") == [False] * 8
    assert parmap._fn_memory.seen_waiting(_run_step), "it still waits"
    steps = [functools.partial(_index_and_thread, i) for i in range(8)]
    results = parallel_map(_run_step, steps, 8, backend="thread")
    assert [i for i, _ in results] == list(range(8))
    assert all(name.startswith("parmap-thread") for _, name in results), "all went out"
    assert not parmap._fn_memory.seen_waiting(_run_step), "it no longer waits"


def _index_and_thread(index: int) -> tuple[int, str]:
    return index, threading.current_thread().name


def _wait_then_name(x: int) -> str:
    if x == 0:
        threading.Event().wait(0.2)  # an I/O wait: the workload, not synchronisation
    return threading.current_thread().name


@pytest.mark.parametrize("fallback", [True, False], ids=["first item on a thread", "all threads"])
def test_a_thread_call_returns_its_results_without_waiting_for_its_threads_to_exit(
    fallback: bool,
) -> None:
    """The results are in once the last chunk is: a thread's exit (here held up by a
    thread-local's finalizer, as a closing connection can be) happens after the call,
    when the kept threads are stopped."""
    call_returned = threading.Event()
    seen_at_exit: list[bool] = []
    per_thread = threading.local()

    class HeldUpExit:
        def __del__(self) -> None:  # runs as its thread exits
            seen_at_exit.append(call_returned.wait(5))

    def keep_a_held_up_exit() -> None:
        per_thread.guard = HeldUpExit()

    squares = parallel_map(
        square,
        range(40),
        4,
        backend="thread",
        initializer=keep_a_held_up_exit,
        serial_fallback=fallback,
    )
    call_returned.set()
    assert squares == [x * x for x in range(40)]
    parmap.shutdown()  # joins the kept threads
    assert seen_at_exit, "no thread exited"
    assert all(seen_at_exit), seen_at_exit


@pytest.mark.parametrize("method", [m for m in START_METHODS if m != "fork"])
def test_the_timers_log_lines_wait_for_the_first_item_to_end(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The timer that starts workers during a long first item interrupts fn, maybe in
    the middle of a write to the log's stream: what it logs comes after the item."""
    parmap.shutdown()
    caplog.set_level(logging.DEBUG)
    assert parallel_map(logged_long_first_item, range(8), 2, start_method=method) == list(range(8))
    messages = [record.getMessage() for record in caplog.records]
    started = [i for i, m in enumerate(messages) if m.startswith(f"started 2 {method} worker")]
    assert started, messages
    assert messages.index("first item ends") < started[0], messages


def test_c_code_blocked_in_the_first_item_is_not_interrupted(start_method: str) -> None:
    """The first item's timer is a signal. C code blocked in a system call that it does
    not retry (a read() of a pipe) failed with InterruptedError, where map ran it."""
    assert parallel_map(read_natively_at_first, range(8), 2, start_method=start_method) == list(
        range(8)
    )
