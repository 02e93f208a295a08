"""When a call's wait for its chunks is worth a warning, and what the warning says."""

from __future__ import annotations

import os

from parmap._backends import Running
from parmap._stall import STALL_FACTOR, STALL_SECONDS, StallWatch, stall_message


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_is_reported_after_a_minute_then_each_time_it_doubles() -> None:
    clock = Clock()
    watch = StallWatch(clock)
    assert watch.wait_seconds(None) == STALL_SECONDS
    clock.now += STALL_SECONDS - 1
    assert watch.stalled_for() is None
    assert watch.wait_seconds(None) == 1
    clock.now += 1
    assert watch.stalled_for() == STALL_SECONDS
    reported = []
    for _ in range(3):  # the wait goes on: reports at 2, 4 and 8 times the first
        clock.now += watch.wait_seconds(None)
        reported.append(watch.stalled_for())
    assert reported == [2 * STALL_SECONDS, 4 * STALL_SECONDS, 8 * STALL_SECONDS]


def test_a_wait_much_longer_than_the_ones_before_it_is_reported() -> None:
    """Chunks that each took 2 minutes: a wait is reported at four times that, not sooner."""
    clock = Clock()
    watch = StallWatch(clock)
    watch.wait_seconds(None)
    clock.now += 2 * STALL_SECONDS
    watch.chunks_finished()  # reported as it went, but it ended: items are that slow
    assert watch.wait_seconds(None) == STALL_FACTOR * 2 * STALL_SECONDS
    clock.now += STALL_FACTOR * 2 * STALL_SECONDS - 1
    assert watch.stalled_for() is None
    clock.now += 1
    assert watch.stalled_for() == STALL_FACTOR * 2 * STALL_SECONDS


def test_only_the_time_spent_waiting_for_chunks_counts() -> None:
    """A lazy consumer that takes long over a result does not make the next wait look stuck."""
    clock = Clock()
    watch = StallWatch(clock)
    watch.wait_seconds(None)
    clock.now += 1
    watch.chunks_finished()
    clock.now += 10 * STALL_SECONDS  # the consumer's time, between two waits
    assert watch.wait_seconds(None) == STALL_SECONDS
    clock.now += STALL_SECONDS - 1
    assert watch.stalled_for() is None


def test_a_timeout_that_ends_sooner_bounds_the_wait() -> None:
    watch = StallWatch(Clock())
    assert watch.wait_seconds(2.5) == 2.5
    assert watch.wait_seconds(10 * STALL_SECONDS) == STALL_SECONDS


def test_the_warning_names_each_worker_process_and_its_items() -> None:
    running = [Running(5, 5, 4321), Running(0, 1, 1234)]
    message = stall_message("process", running, 61.2)
    assert message.startswith("parmap: no chunk has finished for 61 s. ")
    assert (
        "Still running: item 0 in worker process 1234, items 5-9 in worker process 4321, "
        "both alive." in message
    )
    assert "`py-spy dump --pid 1234`" in message
    assert "pass timeout= to make a call fail instead of waiting" in message


def test_the_warning_for_threads_names_their_items_and_this_process() -> None:
    message = stall_message("thread", [Running(3, 1), Running(8, 1)], 0.3)
    assert "no chunk has finished for 0.3 s." in message
    assert f"Still running: items 3 and 8, on threads of process {os.getpid()}." in message
    assert f"`py-spy dump --pid {os.getpid()}`" in message


def test_the_warning_for_an_executor_allows_for_chunks_still_queued_there() -> None:
    message = stall_message("executor", [Running(0, 100)], 120)
    assert "Still running on the executor, or waiting for a worker: items 0-99." in message
    assert "py-spy" not in message
