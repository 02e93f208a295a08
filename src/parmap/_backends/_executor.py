"""Backends built on ``concurrent.futures``: the thread backend and any user Executor.

Each chunk is one task (never one task per item), so a remote executor such as
Dask's ``client.get_executor()`` pays its per-task overhead once per chunk. The
thread backend checks out worker threads (``_threads.py``) and hands them back at the end.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from concurrent import futures
from functools import partial
from typing import Any, Callable, NamedTuple, Optional, Union

from .._errors import RemoteTraceback, add_note, item_note
from .._worker import Tally, run_chunk_task
from . import PROGRESS_SECONDS, Chunk, Running
from ._threads import ThreadSettings, WorkerThreads, acquire_threads, hand_back


class _Flight(NamedTuple):
    """A chunk in flight: its first index, its size, and its tally where it runs in this
    process (there it is counted, and stopped after its current item when the call ends)."""

    start: int
    size: int
    tally: Optional[Tally]


class ChunkTask:
    """A chunk for parmap's own threads (``WorkerThreads.run_soon``): the part of a
    future that a session uses, without its condition and callbacks.

    Whoever takes its claim first decides: the thread that runs it, or the caller that
    cancels it before it starts. Once done, it puts itself into *finished*.
    """

    __slots__ = (
        "_answer",
        "_claim",
        "_error",
        "_finished",
        "_items",
        "_run",
        "_start",
        "_state",
        "tally",
    )

    def __init__(
        self,
        run: Callable[[Any], Any],
        start: int,
        items: list[Any],
        tally: Tally,
        finished: queue.SimpleQueue[Any],
    ) -> None:
        self._run = run
        self._start = start
        self._items = items
        self.tally = tally
        self._finished = finished
        self._claim = threading.Lock()
        self._state = _QUEUED
        self._answer: tuple[Any, ...] = ()
        self._error: Optional[BaseException] = None

    def run(self) -> None:
        if not self._claim.acquire(blocking=False):
            return  # cancelled while queued
        self._state = _RUNNING
        try:
            self._answer = run_chunk_task(self._run, self._start, self._items, self.tally)
        except BaseException as error:  # ChunkStopped: the call has ended
            self._error = error
        self._end()

    def fail(self, error: BaseException) -> None:
        if self._claim.acquire(blocking=False):
            self._error = error
            self._end()

    def cancel(self) -> bool:
        return self._claim.acquire(blocking=False)

    def _end(self) -> None:
        self._items = []  # not kept past the chunk: a session may hold its tasks a while
        self._state = _DONE
        self._finished.put(self)

    def running(self) -> bool:
        return self._state == _RUNNING

    def done(self) -> bool:
        return self._state == _DONE

    def result(self) -> tuple[Any, ...]:
        """What ``run_chunk_task`` returned; raises what stopped the chunk."""
        if self._error is not None:
            raise self._error
        return self._answer


_QUEUED, _RUNNING, _DONE = range(3)


class ExecutorSession:
    """Submit chunks to *executor*, at most *capacity* at a time."""

    def __init__(
        self,
        executor: futures.Executor,
        fn: Callable[[Any], Any],
        capacity: int,
        *,
        remote: bool,
        finish: Optional[Callable[[bool], None]] = None,
        submit_keywords: Optional[dict[str, Any]] = None,
        on_done: Optional[Callable[[int], None]] = None,
    ) -> None:
        self._executor = executor
        self._fn = fn
        self._capacity = capacity
        # Told when the call is over whether chunks still run (threads kept or let go).
        self._finish = finish
        self._remote = remote  # exceptions lost their traceback on the way back
        self.place = "executor" if remote else "thread"
        self._submit_keywords = submit_keywords or {}
        self._on_done = on_done  # told how many items each finished chunk had
        # With progress on, threads count each chunk's items as they finish, so a bar
        # moves during a long chunk. A remote worker's count would never come back.
        self._counting = on_done is not None and not remote
        # Chunks on parmap's own threads go as tasks, not futures (ChunkTask).
        self._threads = executor if isinstance(executor, WorkerThreads) else None
        self._in_flight: dict[Union[futures.Future[Any], ChunkTask], _Flight] = {}
        self._done: queue.SimpleQueue[Union[futures.Future[Any], ChunkTask]]
        self._done = queue.SimpleQueue()
        self._next_report = 0.0  # time.monotonic() when running chunks are reported next

    def has_capacity(self) -> bool:
        return len(self._in_flight) < self._capacity

    def submit(self, chunk: Chunk, fn: Optional[Callable[[Any], Any]] = None) -> None:
        """Run *chunk* with this session's fn, or with *fn* (the same fn, watched)."""
        run = self._fn if fn is None else fn
        if self._threads is not None:
            task = ChunkTask(run, chunk.start, chunk.items, Tally(), self._done)
            self._in_flight[task] = _Flight(chunk.start, len(chunk.items), task.tally)
            self._threads.run_soon(task)
            return
        tally = None if self._remote else Tally()
        future = self._executor.submit(
            run_chunk_task, run, chunk.start, chunk.items, tally, **self._submit_keywords
        )
        self._in_flight[future] = _Flight(chunk.start, len(chunk.items), tally)
        # Finished futures land in a queue: waiting costs the same however many chunks
        # are in flight (futures.wait would hook into every one of them each time).
        future.add_done_callback(self._done.put)

    def wait(self, timeout: Optional[float]) -> list[tuple[int, list[Any]]]:
        if self._counting:  # wake up to report the running chunks' counts
            timeout = PROGRESS_SECONDS if timeout is None else min(timeout, PROGRESS_SECONDS)
        try:
            done = [self._done.get(timeout=timeout)]
        except queue.Empty:
            self._report_running()
            return []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        finished = []
        for future in done:
            tally = self._in_flight.pop(future).tally
            answer = future.result()  # raises what the executor itself failed with
            if answer[0] == "raised":
                _, _, index, error, text = answer
                if self._remote:
                    error.__cause__ = RemoteTraceback(text)
                add_note(error, item_note(index))
                raise error
            finished.append((answer[1], answer[2]))
            unreported = len(answer[2]) - (tally.reported if tally is not None else 0)
            if self._on_done is not None and unreported:
                self._on_done(unreported)
        if self._counting and time.monotonic() >= self._next_report:
            self._report_running()  # chunks that keep finishing must not hide a long one
        return finished

    def _report_running(self) -> None:
        """Tell the progress callback about items of running chunks not reported yet."""
        if not self._counting or self._on_done is None:
            return
        self._next_report = time.monotonic() + PROGRESS_SECONDS
        unreported = 0
        for _, _, tally in self._in_flight.values():
            if tally is None:
                continue
            done = tally.done  # read once: its thread may add to it meanwhile
            unreported += done - tally.reported
            tally.reported = done
        if unreported:
            self._on_done(unreported)

    def cancel(self) -> None:
        busy = False
        for future, (_, _, tally) in self._in_flight.items():
            if not future.cancel() and not future.done():
                busy = True
                if tally is not None:
                    tally.stopped = True  # running: it stops after its current item
        self._in_flight.clear()
        self._finished(busy)

    def running(self) -> list[Running]:
        if self._remote:  # whether a remote task has started, its future may not say
            return [
                Running(start, size)
                for future, (start, size, _) in self._in_flight.items()
                if not future.done()
            ]
        # Each thread is on one item of its chunk.
        return [
            Running(start + tally.done, 1)
            for future, (start, size, tally) in self._in_flight.items()
            if future.running() and tally is not None and tally.done < size
        ]

    def close(self) -> None:
        self._finished(busy=False)

    def _finished(self, busy: bool) -> None:
        finish, self._finish = self._finish, None
        if finish is not None:
            finish(busy)


class StartMark:
    """*fn* that notes when it was first called and when that call ended, on the clock
    and on its thread's CPU clock, so the caller can tell an item that has not started
    from one that started and is still running, and one that waited from one that
    computed, without taking any chunk's results from the session."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self._fn = fn
        self.started: Optional[float] = None  # time.perf_counter() at the first call
        self.done = Latch()  # set once the first call returned or raised
        self._ended = 0.0
        self._cpu_seconds = 0.0  # the first call's time on its thread's CPU clock

    def __call__(self, item: Any) -> Any:
        if self.started is not None:
            return self._fn(item)
        cpu_began = time.thread_time()
        self.started = time.perf_counter()
        try:
            return self._fn(item)
        finally:
            self._ended = time.perf_counter()
            self._cpu_seconds = time.thread_time() - cpu_began
            self.done.set()

    def waited(self, at_least: float) -> bool:
        """Whether the first call has ended after *at_least* seconds, most of them off
        its thread's CPU: it waited (I/O, a lock, C code that released the GIL)."""
        if not self.done.is_set() or self.started is None:
            return False
        seconds = self._ended - self.started
        return seconds >= at_least and self._cpu_seconds < seconds / 2


class Latch:
    """A ``threading.Event`` that is set once and never cleared, for a tenth of its
    making: a lock held until ``set()`` (an Event builds a Condition, 6 us a call)."""

    __slots__ = ("_is_set", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._is_set = False

    def set(self) -> None:
        if not self._is_set:  # one thread sets it, once: StartMark's first call
            self._is_set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._is_set

    def wait(self, timeout: float) -> bool:
        """Whether it is set, waiting up to *timeout* seconds for it."""
        if self._is_set:
            return True
        if not self._lock.acquire(timeout=max(0.0, timeout)):  # an Event takes any timeout
            return self._is_set
        self._lock.release()  # for any other waiter
        return True


def thread_session(
    fn: Callable[[Any], Any],
    settings: ThreadSettings,
    on_done: Optional[Callable[[int], None]] = None,
) -> ExecutorSession:
    """A session on worker threads: the kept ones if they fit, handed back at the end."""
    threads = acquire_threads(settings)
    # Two chunks per thread: a thread that finishes one takes the next from the queue at
    # once instead of waiting for the caller to wake up and submit it.
    return ExecutorSession(
        threads,
        fn,
        2 * settings.size,
        remote=False,
        finish=partial(hand_back, threads),
        on_done=on_done,
    )


def executor_session(
    executor: futures.Executor,
    fn: Callable[[Any], Any],
    workers: int,
    on_done: Optional[Callable[[int], None]] = None,
) -> ExecutorSession:
    """A session on the user's *executor*, which stays theirs to shut down."""
    remote = not isinstance(executor, futures.ThreadPoolExecutor)
    # Two chunks per worker, as for threads: a remote worker that finishes one starts the
    # next without waiting a network round trip for it (Dask: 4-5 ms a task, not 8).
    return ExecutorSession(
        executor,
        fn,
        2 * workers,
        remote=remote,
        submit_keywords=_dask_keywords(executor),
        on_done=on_done,
    )


def _dask_keywords(executor: futures.Executor) -> dict[str, Any]:
    """``pure=False`` for Dask's ``client.get_executor()``, unless its owner chose.

    By default Dask names a task by a hash of its function and arguments and does not
    run a task whose name it still holds: an identical chunk of a later call (same fn,
    same items) would get the earlier results back, wrong for a fn that reads a clock,
    a file or a web page. Impure tasks get fresh names, and their items are not hashed.
    """
    dask_executors = sys.modules.get("distributed.cfexecutor")  # imported by its maker
    if dask_executors is None or not isinstance(executor, dask_executors.ClientExecutor):
        return {}
    if "pure" in getattr(executor, "_kwargs", {}):  # get_executor(pure=...)
        return {}
    return {"pure": False}
