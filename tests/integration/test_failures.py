"""Failures come back as clear exceptions, promptly, and the next call works."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import pytest

from parmap import SerializationError, WorkerCrashedError, parallel_imap, parallel_map
from parmap._errors import RemoteTraceback

from helpers import (
    BadInit,
    exit_as_if_idle_at_three,
    exit_at_three,
    fail_at,
    fail_at_seven,
    fail_in_initializer,
    lock_after_work,
    next_of_nothing_at,
    raise_bad_init,
    return_lock,
    return_unloadable,
    sigkill_at_five,
    square,
    wait_forever_at_zero,
)

BACKENDS = ["process", "thread"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_keeps_its_type_message_and_names_the_item(backend: str) -> None:
    """fn's exception is re-raised as itself, with a note naming the item's index."""
    with pytest.raises(ValueError, match="bad item 7") as info:
        parallel_map(fail_at_seven, range(40), 2, 3, backend=backend, serial_fallback=False)
    assert "parmap: raised by fn for the item at index 7" in getattr(info.value, "__notes__", [])


@pytest.mark.parametrize("backend", [*BACKENDS, "serial"])
@pytest.mark.parametrize("serial_fallback", [True, False])
@pytest.mark.parametrize(("bad", "size"), [(0, 40), (17, 40), (39, 40), (700, 1000)])
@pytest.mark.parametrize("lazy", [False, True])
def test_stop_iteration_from_fn_is_an_error_not_the_end(
    backend: str, serial_fallback: bool, bad: int, size: int, lazy: bool
) -> None:
    """map ends quietly where fn raises StopIteration and drops the rest; parmap raises an
    error naming the item, wherever the item runs (among the first items, which the
    caller reads into lists, or past them), and no result is ever missing."""
    fn = partial(next_of_nothing_at, bad=bad)
    received: list[int] = []

    def run() -> None:
        if not lazy:
            parallel_map(fn, range(size), backend=backend, serial_fallback=serial_fallback)
            return
        stream = (x for x in range(size))
        for result in parallel_imap(fn, stream, backend=backend, serial_fallback=serial_fallback):
            received.append(result)

    with pytest.raises(RuntimeError, match=f"StopIteration for the item at index {bad}\\."):
        run()
    assert received == list(range(len(received)))  # in order, none skipped
    assert len(received) <= bad


@pytest.mark.parametrize("backend", ["process", "serial"])
@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("container", ["list", "dict keys"])
def test_fn_stopping_on_the_last_item_of_a_list_is_an_error(
    backend: str, lazy: bool, container: str
) -> None:
    """Past the first items, the caller runs the rest with map, which swallows the
    StopIteration; nothing is left in the input to tell it from the end, but a list's
    (or a dict view's) length is exact: one result short is an error too."""
    fn = partial(next_of_nothing_at, bad=999)
    items = list(range(1000)) if container == "list" else dict.fromkeys(range(1000)).keys()
    run = parallel_imap if lazy else parallel_map
    with pytest.raises(RuntimeError, match="StopIteration for the item at index 999"):
        list(run(fn, items, backend=backend))


class _LongerThanItIs:
    """Says 12 items and yields 10, as a class of a user's may: map takes what comes."""

    def __len__(self) -> int:
        return 12

    def __iter__(self) -> Iterator[int]:
        return iter(range(10))


@pytest.mark.parametrize("serial_fallback", [True, False])
def test_an_input_shorter_than_its_length_is_not_taken_for_a_stop(serial_fallback: bool) -> None:
    assert parallel_map(abs, _LongerThanItIs(), serial_fallback=serial_fallback) == list(range(10))


@pytest.mark.parametrize("how", ["process with progress", "executor", "serial"])
def test_stop_iteration_is_an_error_on_every_way_items_run(how: str) -> None:
    """Workers that report progress, an executor's and the serial backend say the same."""
    fn = partial(next_of_nothing_at, bad=5)
    with contextlib.ExitStack() as stack:
        options: dict[str, Any] = {"backend": "serial"}
        if how == "process with progress":
            options = {"progress": lambda done, total: None}
        elif how == "executor":
            options = {"backend": stack.enter_context(ThreadPoolExecutor(2))}
        with pytest.raises(RuntimeError, match="StopIteration for the item at index 5") as info:
            parallel_map(fn, range(40), chunksize=4, serial_fallback=False, **options)
    assert "parmap: raised by fn for the item at index 5" in info.value.__notes__


def test_worker_traceback_is_the_cause(start_method: str) -> None:
    """The worker's traceback travels as __cause__, naming the function that raised."""
    with pytest.raises(ValueError) as info:
        parallel_map(fail_at_seven, range(20), 2, start_method=start_method, serial_fallback=False)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fail_at" in str(cause)
    assert "bad item 7" in str(cause)


def test_serial_fallback_raises_the_same_exception() -> None:
    """Run in the caller, the same exception and note come back."""
    with pytest.raises(ValueError, match="bad item 7") as info:
        parallel_map(fail_at_seven, range(10))
    assert "parmap: raised by fn for the item at index 7" in getattr(info.value, "__notes__", [])


def _stream_that_breaks_at(bad: int) -> Iterator[int]:
    for x in range(bad + 100):
        if x == bad:
            raise ValueError(f"the input broke at {x}")
        yield x


class _FailsAt:
    """A callable object: its __call__ is what runs first."""

    def __call__(self, x: int) -> int:
        return fail_at(x, 3000)


@pytest.mark.parametrize("bad", [10, 3000])
def test_an_error_of_the_input_is_not_blamed_on_fn(bad: int) -> None:
    """The note names fn's item only where fn raised: an input that fails while the
    caller maps it with map (past the first items) raises its error as it is. (Where fn
    is C code, such as a builtin, its frame cannot be told apart: the note stays.)"""
    with pytest.raises(ValueError, match=f"the input broke at {bad}") as info:
        list(parallel_imap(square, _stream_that_breaks_at(bad)))
    assert not getattr(info.value, "__notes__", [])
    with pytest.raises(ValueError, match=f"the input broke at {bad}") as info:
        list(parallel_imap(partial(fail_at, bad=-1), _stream_that_breaks_at(bad)))
    assert not getattr(info.value, "__notes__", [])


def _two_arguments(x: int, y: int) -> int:
    return x + y


@pytest.mark.parametrize(
    ("fn", "items", "index"),
    [
        (partial(fail_at, bad=3000), range(4000), 3000),
        (_FailsAt(), range(4000), 3000),
        (int, [*map(str, range(3000)), "not a number", "1"], 3000),
        (_two_arguments, range(4000), 0),
    ],
    ids=["partial", "callable object", "builtin", "wrong arguments"],
)
def test_fn_raising_in_the_caller_past_the_first_items_is_named(
    fn: Any, items: Any, index: int
) -> None:
    """Whatever kind of callable fn is, its error names the item, also where the caller
    maps a stream with map."""
    with pytest.raises((ValueError, TypeError)) as info:
        list(parallel_imap(fn, iter(items)))
    assert f"parmap: raised by fn for the item at index {index}" in info.value.__notes__


def test_next_call_works_after_an_exception() -> None:
    """An exception from fn does not poison the pool."""
    with pytest.raises(ValueError):
        parallel_map(fail_at_seven, range(50), 2, 1, serial_fallback=False)
    assert parallel_map(square, range(50), 2, 1, serial_fallback=False) == [
        x * x for x in range(50)
    ]


def test_first_error_cancels_the_rest() -> None:
    """The call does not wait for work nobody will read: a hung item is abandoned."""
    began = time.monotonic()
    with pytest.raises(ValueError):
        # Worker A hangs on item 0 forever; worker B reaches item 7 and fails.
        parallel_map(_hang_or_fail, range(40), 2, 1, serial_fallback=False, timeout=60)
    assert time.monotonic() - began < 30


def _hang_or_fail(x: int) -> int:
    if x == 0:
        wait_forever_at_zero(0)
    return fail_at_seven(x)


def test_worker_crash_raises_instead_of_hanging(start_method: str) -> None:
    """A worker that dies mid-call gives WorkerCrashedError naming items and exit code."""
    with pytest.raises(WorkerCrashedError, match=r"exit code 13.*item 3") as info:
        parallel_map(
            exit_at_three, range(10), 2, 1, start_method=start_method, serial_fallback=False
        )
    assert "next call starts fresh workers" in str(info.value)
    assert parallel_map(
        square, range(10), 2, 1, start_method=start_method, serial_fallback=False
    ) == [x * x for x in range(10)]


def test_fn_exiting_with_the_idle_status_is_a_crash_not_a_loop() -> None:
    """A worker that exits with an idle worker's status (75) while its chunk runs is taken
    for idle once: the chunk goes to a new worker, which reads it before it could idle. When
    that one exits the same way, the call raises WorkerCrashedError naming the item; before,
    it sent the chunk again and again until the timeout."""
    with pytest.raises(WorkerCrashedError, match=r"exit code 75.*item 3"):
        parallel_map(exit_as_if_idle_at_three, range(10), 2, 1, serial_fallback=False, timeout=20)
    assert parallel_map(square, range(6), 2, 1, serial_fallback=False) == [x * x for x in range(6)]


def test_worker_killed_by_sigkill_points_at_memory_first() -> None:
    """SIGKILL is what the kernel's OOM killer sends: the error names the signal and the
    item, and gives running out of memory as the first likely cause."""
    with pytest.raises(WorkerCrashedError, match=r"signal SIGKILL.*item 5") as info:
        parallel_map(sigkill_at_five, range(10), 2, 1, serial_fallback=False)
    assert "killed it for using too much memory" in str(info.value)
    assert parallel_map(square, range(6), 2, 1, serial_fallback=False) == [x * x for x in range(6)]


def test_threads_stop_their_chunk_after_the_current_item_when_the_call_ends() -> None:
    """Threads cannot be killed, but once a call has raised, a thread in the middle of a
    chunk finishes only the item it is running: the rest of its chunk is not run."""
    other_chunk_started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def fail_once_the_other_chunk_runs(x: int) -> int:
        if x == 0:
            other_chunk_started.wait(10)
            raise ValueError("item 0")
        ran.append(x)
        if x == 10:
            other_chunk_started.set()
            release.wait(10)
        return x

    with pytest.raises(ValueError, match="item 0"):
        parallel_map(
            fail_once_the_other_chunk_runs,
            range(20),
            2,
            10,
            backend="thread",
            serial_fallback=False,
        )
    release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("parmap-thread"):
            thread.join(10)
    assert ran == [10]


def test_timeout_raises_and_stops_the_workers() -> None:
    """timeout= bounds the whole call; the hung worker is stopped, not left running, and
    the error says which item hung."""
    with pytest.raises(
        TimeoutError,
        match=r"timeout=0.5 s; item 0 was still running; the worker process running it was stopped",
    ):
        parallel_map(wait_forever_at_zero, range(4), 2, 1, timeout=0.5, serial_fallback=False)
    assert parallel_map(square, range(6), 2, 1, serial_fallback=False) == [x * x for x in range(6)]


def test_a_timeout_on_threads_names_the_items_still_running() -> None:
    """Each thread is on one item of its chunk: the error names those items."""
    release = threading.Event()

    def wait_at_zero_and_five(x: int) -> int:
        if x in (0, 5):
            release.wait(10)
        return x

    stuck = r"items 0 and 5 were still running on threads, which stop after them"
    try:
        with pytest.raises(TimeoutError, match=stuck):
            parallel_map(wait_at_zero_and_five, range(10), 2, 5, backend="thread", timeout=0.5)
    finally:
        release.set()


def test_imap_timeout_applies_to_each_wait() -> None:
    """A parallel_imap whose next result never comes raises TimeoutError."""
    results = parallel_imap(
        wait_forever_at_zero, range(4), 2, 1, timeout=0.5, serial_fallback=False
    )
    with pytest.raises(TimeoutError):
        next(results)


def test_unpicklable_item_names_its_index(start_method: str) -> None:
    """An item that cannot be pickled gives SerializationError with index and type."""
    items: list[object] = [1, 2, 3, threading.Lock(), 5]
    with pytest.raises(SerializationError, match=r"index 3 \(a lock\)"):
        parallel_map(str, items, 2, 1, start_method=start_method, serial_fallback=False)


def test_unpicklable_result_names_its_index(start_method: str) -> None:
    """A result that cannot be pickled gives SerializationError naming the item."""
    with pytest.raises(SerializationError, match=r"result for the item at index 4"):
        parallel_map(return_lock, range(8), 2, 1, start_method=start_method, serial_fallback=False)


@pytest.mark.parametrize("lazy", [False, True], ids=["parallel_map", "parallel_imap"])
def test_results_that_cannot_come_back_fail_before_workers_run_any(
    start_method: str, tmp_path: Path, lazy: bool
) -> None:
    """Results that cannot be pickled (a lock), seen in the caller's first items, fail
    the call when its verdict would send the rest to workers, naming the item: not once
    the workers' first chunks are done, minutes in with costly items."""
    ran = tmp_path / "ran"
    fn = partial(lock_after_work, str(ran))
    items = range(2_000)  # 2 s of work: workers pay off under every start method
    cannot = r"results cannot come back from worker processes: .* index 0 \(a lock\)"
    mapper = parallel_imap if lazy else parallel_map
    with pytest.raises(SerializationError, match=cannot):
        list(mapper(fn, items, 2, start_method=start_method))
    assert set(ran.read_text().split()) == {str(os.getpid())}, "no worker ran an item"


def test_result_that_does_not_unpickle_in_the_caller_names_its_items(start_method: str) -> None:
    """A result that reaches the caller but does not load there gives SerializationError
    naming the chunk's items and the loading error, and the next call works."""
    with pytest.raises(SerializationError, match=r"items at index 4 to 7 .*ValueError") as info:
        parallel_map(
            return_unloadable, range(12), 2, 4, start_method=start_method, serial_fallback=False
        )
    assert isinstance(info.value.__cause__, ValueError)
    assert parallel_map(square, range(6), 2, start_method=start_method) == [0, 1, 4, 9, 16, 25]


def test_unpicklable_exception_still_reports_type_and_message(start_method: str) -> None:
    """An exception that does not survive pickling is replaced by a clear stand-in."""
    with pytest.raises(SerializationError, match=r"BadInit: 2-2") as info:
        parallel_map(
            raise_bad_init, range(6), 2, 1, start_method=start_method, serial_fallback=False
        )
    assert "BadInit" in str(info.value.__cause__)


def test_unpicklable_fn_is_reported_before_work_starts(start_method: str) -> None:
    """fn closing over a lock cannot be sent: SerializationError says so and how to fix."""
    lock = threading.Lock()

    def uses_lock(x: int) -> int:
        with lock:
            return x

    with pytest.raises(SerializationError, match=r"cannot send fn \(.*uses_lock\)"):
        parallel_map(uses_lock, range(6), 2, start_method=start_method, serial_fallback=False)


def test_initializer_failure_is_raised_in_the_caller() -> None:
    """An initializer that raises in the workers raises in the caller, not a hang."""
    with pytest.raises(RuntimeError, match="initializer failed on purpose") as info:
        parallel_map(square, range(6), 2, initializer=fail_in_initializer, serial_fallback=False)
    assert "parmap: raised by the initializer in a worker process" in getattr(
        info.value, "__notes__", []
    )


def test_bad_init_exception_class_is_what_it_says() -> None:
    """Sanity check of the helper: BadInit really does not unpickle."""
    import pickle

    with pytest.raises(TypeError):
        pickle.loads(pickle.dumps(BadInit(1, 2)))


def test_printed_report_names_the_item_on_every_python() -> None:
    """The traceback a user sees names the failing item's index, on 3.9 and 3.10 too."""
    import traceback

    with pytest.raises(ValueError) as info:
        parallel_map(fail_at_seven, range(20), 2, 1, serial_fallback=False)
    error = info.value
    report = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "parmap: raised by fn for the item at index 7" in report
