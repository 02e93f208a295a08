"""How long the caller waits for the first item on a thread before going parallel.

The item's mark and the clock are stand-ins: each wait moves the clock on by its
timeout, and the item starts, finishes or waits when the test says, so the rule is
checked without depending on how the machine schedules threads.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Optional

import pytest

from parmap import _call
from parmap._call import (
    FIRST_THREAD_ITEM_WAIT,
    FIRST_THREAD_ITEM_WAITING,
    _first_thread_item_answers,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class FirstItem:
    """The first item's thread: it starts at *starts_at* (None: not yet) and is done at
    *done_at* (None: still running); *seen_done_late* is when the caller first sees it
    done: only once it holds the GIL again, after the wait that timed out. *waited*: what
    its own clocks say once it is done, that it spent its time off the CPU."""

    def __init__(
        self,
        clock: Clock,
        starts_at: Optional[float],
        done_at: Optional[float] = None,
        seen_done_late: bool = False,
        waited: bool = False,
    ) -> None:
        self.clock = clock
        self.starts_at = starts_at
        self.done_at = done_at
        self.seen_done_late = seen_done_late
        self.spent_off_the_cpu = waited
        self.timeouts: list[float] = []

    @property
    def started(self) -> Optional[float]:  # what StartMark.started reads
        if self.starts_at is None or self.clock.now < self.starts_at:
            return None
        return self.starts_at

    @property
    def done(self) -> FirstItem:  # StartMark.done, an Event: wait() and is_set()
        return self

    def wait(self, timeout: Optional[float]) -> bool:
        assert timeout is not None
        assert timeout >= 0
        self.timeouts.append(timeout)
        done = self.done_at is not None and self.clock.now + timeout >= self.done_at
        if done and not self.seen_done_late:  # done during the wait: it wakes the caller
            self.clock.now = max(self.clock.now, self.done_at or 0.0)
            return True
        self.clock.now += timeout
        return False

    def is_set(self) -> bool:  # the caller's second look, once it holds the GIL
        return self.done_at is not None and self.clock.now >= self.done_at

    def waited(self, at_least: float) -> bool:  # StartMark.waited
        assert at_least == FIRST_THREAD_ITEM_WAITING
        return self.is_set() and self.spent_off_the_cpu


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(_call, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    return clock


def _done(item: FirstItem) -> bool:
    return _first_thread_item_answers(item)  # type: ignore[arg-type]


def test_an_item_seen_waiting_hands_out_the_rest_before_the_wait_runs_out(clock: Clock) -> None:
    """Started, unfinished, and the caller has the GIL: it waits off the GIL (I/O)."""
    item = FirstItem(clock, starts_at=0.0)
    assert not _done(item)
    assert clock.now == pytest.approx(FIRST_THREAD_ITEM_WAITING)
    assert clock.now < FIRST_THREAD_ITEM_WAIT


def test_an_item_that_started_late_is_watched_from_its_start(clock: Clock) -> None:
    """A thread that took its time to start does not count as waiting for that time."""
    starts_at = 0.6 * FIRST_THREAD_ITEM_WAITING
    item = FirstItem(clock, starts_at=starts_at)
    assert not _done(item)
    assert clock.now == pytest.approx(starts_at + FIRST_THREAD_ITEM_WAITING)


def test_an_item_that_has_not_started_gets_the_whole_wait(clock: Clock) -> None:
    """A thread that never got going is not mistaken for one waiting on I/O."""
    item = FirstItem(clock, starts_at=None)
    assert not _done(item)
    assert clock.now == pytest.approx(FIRST_THREAD_ITEM_WAIT)


def test_an_item_that_finishes_in_time_is_the_answer(clock: Clock) -> None:
    item = FirstItem(clock, starts_at=0.0, done_at=0.5 * FIRST_THREAD_ITEM_WAITING)
    assert _done(item)


def test_an_item_done_while_the_caller_took_the_gil_back_is_not_running(clock: Clock) -> None:
    """The wait timed out, but the item finished before the caller could look: a
    CPU-bound item that held the GIL. It is the answer, not a reason to go parallel."""
    item = FirstItem(clock, starts_at=0.0, done_at=FIRST_THREAD_ITEM_WAITING, seen_done_late=True)
    assert _done(item)
    assert item.timeouts == [FIRST_THREAD_ITEM_WAITING], "one wait, then a look, no more"


def test_an_item_that_waited_is_no_answer_though_done_when_the_caller_looks(
    clock: Clock,
) -> None:
    """A wait of 0.1 ms ends about when the caller looks: by the item's own clocks it
    waited, so the call goes parallel, as it would had the caller looked a little sooner
    (it used to depend on which came first: in 48 of 300 calls of 8 waits of 0.1 ms)."""
    late = FirstItem(
        clock, starts_at=0.0, done_at=FIRST_THREAD_ITEM_WAITING, seen_done_late=True, waited=True
    )
    assert not _done(late)
    in_time = FirstItem(clock, starts_at=clock.now, done_at=clock.now, waited=True)
    assert not _done(in_time)


def test_no_wait_goes_past_the_end_of_the_whole_wait(clock: Clock) -> None:
    item = FirstItem(clock, starts_at=FIRST_THREAD_ITEM_WAIT - 0.1 * FIRST_THREAD_ITEM_WAITING)
    assert not _done(item)
    assert clock.now == pytest.approx(FIRST_THREAD_ITEM_WAIT)


def test_a_start_mark_tells_an_item_that_waited_from_one_that_computed() -> None:
    """By its own clocks: 5 ms blocked in a wait, against a call of a few microseconds."""
    from parmap._backends._executor import StartMark

    waits = StartMark(threading.Event().wait)
    assert not waits.done.wait(0)
    assert not waits.waited(FIRST_THREAD_ITEM_WAITING), "not run yet"
    assert waits(0.005) is False
    assert waits.done.wait(0)
    assert waits.waited(FIRST_THREAD_ITEM_WAITING)
    cheap = StartMark(abs)
    assert cheap(-1) == 1
    assert cheap.done.is_set()
    assert not cheap.waited(FIRST_THREAD_ITEM_WAITING)


def test_a_latch_wakes_a_waiting_thread_once_set() -> None:
    from parmap._backends._executor import Latch

    latch = Latch()
    assert not latch.wait(0.001)
    assert not latch.wait(-1.0), "as an Event: a timeout under 0 waits for nothing"
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(latch.wait(30)))
    waiter.start()
    latch.set()
    latch.set()  # a second set changes nothing
    waiter.join(30)
    assert woken == [True]
    assert latch.is_set()
    assert latch.wait(0)
