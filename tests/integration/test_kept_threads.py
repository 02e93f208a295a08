"""backend="thread" keeps its threads between calls, and lets them go when it should."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import parmap
from parmap import parallel_map
from parmap._options import IDLE_TIMEOUT_ENV

from helpers import options_with
from support import describe, run_python

WORKERS = 4


@pytest.fixture(autouse=True)
def _no_kept_threads() -> Iterator[None]:
    parmap.shutdown()
    yield
    parmap.shutdown()


def names_of_threads_running_together(**options: object) -> set[str]:
    """The names of the threads of a call whose items wait until every one runs: so the
    call runs WORKERS items at once, on as many threads."""
    together = threading.Barrier(WORKERS, timeout=30)

    def name_once_all_run(_: int) -> str:
        together.wait()
        return threading.current_thread().name

    names = parallel_map(
        name_once_all_run,
        range(WORKERS),
        WORKERS,
        1,
        backend="thread",
        serial_fallback=False,
        **options,  # type: ignore[arg-type]
    )
    assert len(set(names)) == WORKERS
    return set(names)


def live_threads(names: set[str]) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name in names]


def test_a_second_call_runs_on_the_threads_of_the_first() -> None:
    """No thread is started again, and none runs the initializer twice: the second call's
    threads are the first call's, with the state the initializer gave them."""
    set_up: list[str] = []

    def set_up_thread() -> None:
        set_up.append(threading.current_thread().name)

    first = names_of_threads_running_together(initializer=set_up_thread)
    assert all(name.startswith("parmap-thread") for name in first)
    assert names_of_threads_running_together(initializer=set_up_thread) == first
    assert sorted(set_up) == sorted(first)


def _open_nothing(*_: object) -> None:
    """An initializer with no effect, for calls that differ in their initializer only."""


def _open_nothing_else(*_: object) -> None:
    """Another initializer with no effect."""


@pytest.mark.parametrize(
    "other",
    [
        {"initializer": _open_nothing_else, "initargs": ("mine",)},
        {"initializer": _open_nothing, "initargs": ("other",)},
    ],
    ids=["another initializer", "other initargs"],
)
def test_threads_are_not_shared_by_calls_that_set_them_up_differently(
    other: dict[str, object],
) -> None:
    """State an initializer gave a thread is only seen by calls with that initializer and
    those initargs; the threads made for other settings are stopped."""
    first = names_of_threads_running_together(initializer=_open_nothing, initargs=("mine",))
    second = names_of_threads_running_together(**other)
    assert not first & second
    for thread in live_threads(first):
        thread.join(30)
    assert live_threads(first) == []


def test_idle_threads_exit_after_the_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """PARMAP_IDLE_TIMEOUT applies to threads too; a later call starts new ones."""
    monkeypatch.setenv(IDLE_TIMEOUT_ENV, "0.2")
    first = names_of_threads_running_together()
    for thread in live_threads(first):
        thread.join(30)  # returns when the thread exits: after 0.2 s idle, or never
    assert live_threads(first) == []
    second = names_of_threads_running_together()
    assert not first & second


def test_threads_running_items_of_an_ended_call_are_not_kept() -> None:
    """A call that timed out leaves a thread on an item; the next call must not wait for
    it, so it gets new threads and the busy ones exit after their items."""
    release = threading.Event()
    stuck_on: list[str] = []

    def stuck_at_zero(x: int) -> int:
        if x == 0:
            stuck_on.append(threading.current_thread().name)
            release.wait(60)
        return x

    with pytest.raises(TimeoutError):
        parallel_map(
            stuck_at_zero, range(8), WORKERS, 1, backend="thread", timeout=2, serial_fallback=False
        )
    try:
        second = names_of_threads_running_together()
        assert stuck_on[0] not in second
    finally:
        release.set()
    for thread in live_threads(set(stuck_on)):
        thread.join(30)
    assert live_threads(set(stuck_on)) == []


def _fail_to_open() -> None:
    raise ConnectionRefusedError("no database here")


def test_an_initializer_error_is_raised_as_it_is() -> None:
    """What the initializer raised reaches the caller, with a note, not a BrokenThreadPool;
    the next call starts new threads and works."""
    with pytest.raises(ConnectionRefusedError, match="no database here") as raised:
        parallel_map(
            str,
            range(8),
            WORKERS,
            backend="thread",
            initializer=_fail_to_open,
            serial_fallback=False,
        )
    assert "parmap: raised by the initializer in a worker thread" in raised.value.__notes__
    assert parallel_map(str, range(8), WORKERS, backend="thread", serial_fallback=False) == [
        str(x) for x in range(8)
    ]


def test_shutdown_stops_the_kept_threads() -> None:
    first = names_of_threads_running_together()
    parmap.shutdown()
    assert live_threads(first) == []  # shutdown() joined them


KEPT_THREADS_AT_FORK = """
import os
import threading
from parmap import parallel_map

def name(x):
    return threading.current_thread().name

names = set(parallel_map(name, range(8), 4, 1, backend="thread", serial_fallback=False))
assert names and all(n.startswith("parmap-thread") for n in names), names
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print("threads at fork:", sorted(t.name for t in threading.enumerate() if t.name in names))
print("after:", parallel_map(name, range(8), 4, 1, backend="thread", serial_fallback=False)[0][:13])
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork is POSIX only")
def test_kept_threads_stop_before_the_process_forks(tmp_path: Path) -> None:
    """A forked child never copies idle parmap threads (Python 3.12+ warns of a fork with
    threads); the parent's next thread call starts new ones."""
    result = run_python(KEPT_THREADS_AT_FORK, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "threads at fork: []" in result.stdout, describe(result)
    assert "after: parmap-thread" in result.stdout, describe(result)
    assert "DeprecationWarning" not in result.stderr, describe(result)


FORK_WITH_A_THREAD_SLOW_TO_EXIT = """
import os
import threading
from parmap import parallel_map

release = threading.Event()
opened = []
closed_after_the_fork = []
per_thread = threading.local()

class SlowToClose:
    def __del__(self):  # runs as its thread exits
        closed_after_the_fork.append(release.wait(20))

def open_slow():
    per_thread.connection = SlowToClose()
    opened.append(threading.current_thread())

def name(x):
    return threading.current_thread().name

parallel_map(name, range(8), 4, 1, backend="thread", initializer=open_slow, serial_fallback=False)
pid = os.fork()
if pid == 0:
    os._exit(0)
release.set()
os.waitpid(pid, 0)
for thread in opened:
    thread.join(30)  # returns once its finalizers have run
every_one = len(closed_after_the_fork) == len(opened) > 0
print("closed after the fork:", all(closed_after_the_fork), every_one)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork is POSIX only")
def test_a_thread_slow_to_exit_does_not_hold_up_a_fork(tmp_path: Path) -> None:
    """A kept thread's thread-local finalizer blocks until the fork has returned: the fork
    waits for it only a moment, then goes on (the finalizer then ends when released)."""
    result = run_python(FORK_WITH_A_THREAD_SLOW_TO_EXIT, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "closed after the fork: True True" in result.stdout, describe(result)


EXIT_WITH_KEPT_THREADS = """
import threading
from parmap import parallel_map

def name(x):
    return threading.current_thread().name

names = parallel_map(name, range(8), 4, 1, backend="thread", serial_fallback=False)
print(all(n.startswith("parmap-thread") for n in names))
"""


def test_the_interpreter_exits_at_once_with_threads_kept(tmp_path: Path) -> None:
    """Kept threads wait five minutes for work; exit must not wait for them."""
    result = run_python(EXIT_WITH_KEPT_THREADS, tmp_path=tmp_path, timeout=30)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"], describe(result)
    assert result.stderr == "", describe(result)


def test_an_initializer_failing_after_shutdown_leaves_the_other_threads_their_exit() -> None:
    """One thread's initializer raises after its threads were told to stop: the failed
    tasks are dropped, but the stop meant for the others is not, so a thread that was busy
    meanwhile still exits (idle timeout off, so nothing else would end its wait)."""
    from parmap._backends._threads import ThreadSettings, WorkerThreads

    second_thread_may_fail = threading.Event()
    first_task_may_end = threading.Event()
    first_task_began = threading.Event()
    started: list[str] = []

    def first_task() -> bool:
        first_task_began.set()
        return first_task_may_end.wait(30)

    def set_up() -> None:
        started.append(threading.current_thread().name)
        if len(started) == 2:
            second_thread_may_fail.wait(30)
            raise ConnectionRefusedError("no database here")

    threads = WorkerThreads(ThreadSettings(2, set_up, (), None))
    try:
        busy = threads.submit(first_task)
        # The first thread has run its initializer and is busy: the next task starts the
        # second, whose initializer is the one that fails. (Submitted before the first
        # began, it could start a thread whose initializer ran first, so that the first
        # thread's failed instead, and its task with it: once in a CI run.)
        assert first_task_began.wait(30)
        failing = threads.submit(str, 1)
        # In the order they started: names end in a rising number.
        first, second = sorted(threads.threads(), key=lambda t: int(t.name.rsplit("_", 1)[1]))
        threads.shutdown(wait=False)
        second_thread_may_fail.set()
        second.join(30)
        with pytest.raises(ConnectionRefusedError):
            failing.result(30)
        first_task_may_end.set()
        assert busy.result(30) is True
        first.join(30)
        assert not first.is_alive()
    finally:  # a failure must not leave the first thread waiting for good
        second_thread_may_fail.set()
        first_task_may_end.set()
        threads.shutdown(wait=False)


def _thread_start_seconds(workers: int) -> float:
    """What the cost model counts for starting a call's threads (and its probe's budget)."""
    from parmap._call import Call

    options = options_with(workers=workers, backend="thread")
    return Call(abs, iter(()), 0, options, lazy=False)._start_seconds()


def test_threads_kept_running_cost_no_start() -> None:
    """Starting threads is a cost the caller weighs (and probes for) only for the threads
    it would start: none when every thread the call needs is kept running (32 threads
    each sleeping 1 ms: 4.8 ms started, 2.7 ms kept), all after shutdown."""
    from parmap._call import THREAD_START_SECONDS

    assert _thread_start_seconds(WORKERS) == THREAD_START_SECONDS, "nothing kept yet"
    names_of_threads_running_together()
    assert _thread_start_seconds(WORKERS) == 0.0
    assert _thread_start_seconds(WORKERS * 2) == THREAD_START_SECONDS, "other settings"
    parmap.shutdown()
    assert _thread_start_seconds(WORKERS) == THREAD_START_SECONDS


def test_a_chunk_queued_when_its_call_ends_never_runs() -> None:
    """A call that ends early (an error, a timeout, Ctrl-C) cancels its chunks: one that no
    thread has taken yet is never run, even once a thread is free to take it, and one that
    is running makes the threads count as busy (so they are not kept)."""
    from parmap._backends import Chunk
    from parmap._backends._executor import ExecutorSession
    from parmap._backends._threads import ThreadSettings, WorkerThreads

    began = threading.Event()
    may_end = threading.Event()
    ran: list[int] = []

    def record(item: int) -> int:
        ran.append(item)
        if item == 0:
            began.set()
            assert may_end.wait(30)
        return item

    threads = WorkerThreads(ThreadSettings(1, None, (), None))
    ended_busy: list[bool] = []
    session = ExecutorSession(threads, record, 4, remote=False, finish=ended_busy.append)
    try:
        session.submit(Chunk(0, [0]))
        session.submit(Chunk(1, [1]))
        assert began.wait(30)
        session.cancel()
        may_end.set()
        threads.shutdown(wait=True)  # the one thread takes the queued chunk, then exits
    finally:
        may_end.set()
        threads.shutdown(wait=False)
    assert ran == [0]
    assert ended_busy == [True]


def test_a_started_thread_takes_its_task_while_the_next_thread_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Starting a thread waits for it to run; meanwhile the threads started before take
    their tasks. When threads were started under the lock those threads fetch their tasks
    with, a call on 32 threads handed its first items out in one burst, 3-4 ms late, and
    200 waits of 10 ms took 77 ms where a ``ThreadPoolExecutor`` took 74."""
    from parmap._backends._threads import ThreadSettings, WorkerThreads

    second_start_began = threading.Event()
    first_task_ran = threading.Event()
    starting: list[threading.Thread] = []
    start_thread = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        starting.append(thread)
        if len(starting) == 2:
            second_start_began.set()
            # Bounded, so the old code fails here instead of waiting for ever.
            first_task_ran.wait(10)
        start_thread(thread)

    def set_up() -> None:
        # The first thread fetches its task only once the second one is being started.
        assert second_start_began.wait(30)

    monkeypatch.setattr(threading.Thread, "start", start)
    threads = WorkerThreads(ThreadSettings(2, set_up, (), None))
    try:
        first = threads.submit(first_task_ran.set)
        second = threads.submit(str, 2)
        assert first_task_ran.is_set(), "the first thread waited for the second's start"
        first.result(30)
        assert second.result(30) == "2"
    finally:
        second_start_began.set()
        first_task_ran.set()
        threads.shutdown(wait=True)


def test_a_thread_the_system_refuses_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the system cannot start another thread, the call gets the error, and the
    refused thread is not counted among the threads: the next task starts one again
    instead of waiting in the queue for a thread that never ran."""
    from parmap._backends._threads import ThreadSettings, WorkerThreads

    start_thread = threading.Thread.start
    refusals = [RuntimeError("can't start new thread")]

    def start(thread: threading.Thread) -> None:
        if refusals:
            raise refusals.pop()
        start_thread(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    threads = WorkerThreads(ThreadSettings(1, None, (), None))
    try:
        with pytest.raises(RuntimeError, match="can't start new thread"):
            threads.submit(str, 1)
        assert threads.threads() == []
        assert threads.submit(str, 2).result(30) == "2"
    finally:
        threads.shutdown(wait=True)
