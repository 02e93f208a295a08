"""The thread backend's workers: threads kept between calls, which exit once idle.

Starting a thread takes about 0.15 ms here, so a call on 32 threads spent about 5 ms
starting them, and 50 successive calls of 64 waits of 1 ms took 2.2 times as long as
with one ``ThreadPoolExecutor`` reused. So, as with worker processes (``_warm.py``), one
set of threads is kept between calls. A call checks it out if it asks for as many
threads with the same initializer and initargs, and hands it back when it ends.

A kept thread exits after the idle timeout (``PARMAP_IDLE_TIMEOUT``), at interpreter
exit, on ``shutdown()``, and before this process forks, so that a child is never a copy
of a process with idle threads in it (Python 3.12+ warns of that, rightly in general).
``WorkerThreads`` is an ``Executor`` of its own because a ``ThreadPoolExecutor``'s
threads never exit while it lives.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from concurrent import futures
from typing import Any, Callable, NamedTuple, Optional, Protocol, TypeVar

from .._errors import add_note
from .._log import debug
from .._worker import thread_initializer
from ._kept import KeptOne

T = TypeVar("T")

#: Numbers the threads' names (``parmap-thread_1``, ...) across all sets of threads.
_thread_numbers = itertools.count(1)
#: How long a fork waits for the kept threads to exit: each runs the finalizers of its
#: ``threading.local()`` values as it exits, and one that blocks (a connection that is
#: slow to close) must not hold the fork up for long.
FORK_JOIN_SECONDS = 1.0


class ThreadSettings(NamedTuple):
    """What a set of threads was made for; another call may use it if these fit."""

    size: int
    initializer: Optional[Callable[..., object]]
    initargs: tuple[Any, ...]
    idle_timeout: Optional[float]  # seconds a thread waits for a task; None: no limit

    def fits(self, other: ThreadSettings) -> bool:
        """The same size and timeout, and the very same initializer and initargs.

        Identity, not equality: comparing arguments could be costly or fail (a numpy
        array's ``==`` has no truth value). Equal but distinct ones get new threads.
        """
        return (
            self.size == other.size
            and self.idle_timeout == other.idle_timeout
            and self.initializer is other.initializer
            and len(self.initargs) == len(other.initargs)
            and all(mine is theirs for mine, theirs in zip(self.initargs, other.initargs))
        )


class Task(Protocol):
    """Work for a thread: run it, or fail it with an initializer's error, or cancel it."""

    def run(self) -> None:
        """Run on a worker thread; never raises."""

    def fail(self, error: BaseException) -> None:
        """It will not run: the threads' initializer raised *error*."""

    def cancel(self) -> bool:
        """Keep it from running, if it has not started; whether it will not run."""


class _FutureTask(NamedTuple):
    """A task submitted through the ``Executor`` interface, with its future."""

    future: futures.Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return  # cancelled while queued
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as error:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    def fail(self, error: BaseException) -> None:
        if self.future.set_running_or_notify_cancel():
            self.future.set_exception(error)

    def cancel(self) -> bool:
        return self.future.cancel()


class WorkerThreads(futures.Executor):
    """Up to *size* threads, started as tasks need them; each exits once idle too long."""

    def __init__(self, settings: ThreadSettings) -> None:
        self.settings = settings
        self.broken: Optional[BaseException] = None  # what an initializer raised
        self._tasks: queue.SimpleQueue[Optional[Task]] = queue.SimpleQueue()  # None: exit
        self._lock = threading.Lock()  # guards the fields below
        self._threads: set[threading.Thread] = set()
        self._waiting = 0  # threads waiting for a task
        self._queued = 0  # tasks on the queue that no thread has taken
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> futures.Future[T]:
        future: futures.Future[T] = futures.Future()
        self.run_soon(_FutureTask(future, fn, args, kwargs))
        return future

    def run_soon(self, task: Task) -> None:
        """Queue *task* for the next free thread, starting one if none is free.

        Tasks need no future: parmap's sessions hand chunks over as tasks that report
        their own end (``ChunkTask``), which takes a thread and the caller fewer steps a
        chunk than a future's condition and callbacks. With a future a chunk, a call of
        64 waits of 0.1 ms on 32 threads took 3.7 ms, as tasks 2.6 ms
        (``ThreadPoolExecutor.map``: 2.5 ms); every step holds the GIL.

        A new thread is started after the lock is released: ``Thread.start()`` waits
        for the thread to run (0.1-0.2 ms), and the threads started before, which take
        the lock to fetch their task, waited meanwhile. Started under the lock, 31
        threads took their first tasks in one burst 3-4 ms into a call, not one by one.
        """
        with self._lock:
            if self.broken is not None:
                task.fail(self.broken)
                return
            if self._closed:
                msg = "cannot submit to parmap's worker threads after shutdown"
                raise RuntimeError(msg)
            self._tasks.put(task)
            self._queued += 1
            # Counted under one lock, so every task has a waiting thread or a new one.
            thread = None
            if self._queued > self._waiting and len(self._threads) < self.settings.size:
                thread = self._new_thread()
        if thread is not None:
            self._start(thread)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let every thread exit once the tasks queued before (or cancelled) are done."""
        with self._lock:
            self._closed = True
            dropped = self._take_queued() if cancel_futures else []
            threads = list(self._threads)
            for _ in threads:
                self._tasks.put(None)
        for task in dropped:
            task.cancel()
        if wait:
            _join(threads, None)

    def threads(self) -> list[threading.Thread]:
        """The threads that have not left yet."""
        with self._lock:
            return list(self._threads)

    def _new_thread(self) -> threading.Thread:
        """A thread counted among the threads, not started yet (called with the lock held)."""
        thread = threading.Thread(target=self._work, name=f"parmap-thread_{next(_thread_numbers)}")
        self._threads.add(thread)
        return thread

    def _start(self, thread: threading.Thread) -> None:
        """Start *thread*; if the system refuses, forget it again and say so."""
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads.discard(thread)
            raise

    def _work(self) -> None:
        """A thread's life: the initializer, then tasks until told to exit or idle too long."""
        try:
            thread_initializer(self.settings.initializer, self.settings.initargs)
        except BaseException as error:
            self._break(error)
            return
        while True:
            task = self._next_task()
            if task is None:
                return
            task.run()
            del task  # nothing of it stays referenced while the thread waits for the next

    def _next_task(self) -> Optional[Task]:
        """The next task, or None once this thread should exit."""
        with self._lock:
            self._waiting += 1
        while True:
            try:
                task = self._tasks.get(timeout=self.settings.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._queued >= self._waiting:
                        continue  # a task came as the wait ran out: more than the others take
                    self._leave()
                    return None
            with self._lock:
                if task is None:
                    self._leave()
                    return None
                self._waiting -= 1
                self._queued -= 1
                return task

    def _leave(self) -> None:
        """Forget the current thread, which is about to exit (called with the lock held)."""
        self._waiting -= 1
        self._threads.discard(threading.current_thread())

    def _break(self, error: BaseException) -> None:
        """An initializer raised: fail every task with its error, now and from now on."""
        add_note(error, "parmap: raised by the initializer in a worker thread")
        with self._lock:
            self._threads.discard(threading.current_thread())
            if self.broken is None:
                self.broken = error
            failed = self._take_queued()
        for task in failed:
            task.fail(self.broken)

    def _take_queued(self) -> list[Task]:
        """Take every task off the queue (called with the lock held). The exit signals of
        an earlier shutdown stay: each is some other thread's only way out."""
        taken: list[Task] = []
        exits = 0
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is None:
                exits += 1
            else:
                taken.append(task)
                self._queued -= 1
        for _ in range(exits):
            self._tasks.put(None)
        return taken


def _join(threads: list[threading.Thread], timeout: Optional[float]) -> None:
    """Wait for *threads* to exit, *timeout* seconds at most in all (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


_kept: KeptOne[WorkerThreads] = KeptOne()  # idle threads, for the next call
_exiting = False


def acquire_threads(settings: ThreadSettings) -> WorkerThreads:
    """Check out the kept threads if they fit this call, else a new set (none started)."""
    threads = _kept.take()
    if threads is not None and threads.settings.fits(settings):
        debug("reusing the kept worker threads (up to %d)", settings.size)
        return threads
    if threads is not None:
        debug("stopping the kept worker threads: this call needs other settings")
        threads.shutdown(wait=False)
    return WorkerThreads(settings)


def threads_ready(settings: ThreadSettings) -> int:
    """How many kept threads, fitting *settings*, run already: a call starts only the rest
    (on one of them, a session and a one-item round trip took 54 us)."""
    threads = _kept.peek()
    if threads is None or not threads.settings.fits(settings):
        return 0
    return len(threads.threads())


def hand_back(threads: WorkerThreads, busy: bool) -> None:
    """Keep *threads* for the next call, unless some still run items of this one (*busy*),
    an initializer failed, other threads are kept already, or the interpreter exits."""
    if busy or threads.broken is not None or _exiting or not _kept.offer(threads):
        threads.shutdown(wait=False, cancel_futures=True)


def shutdown(wait: bool = True) -> None:
    """Stop the kept threads, if any (joined if *wait*: they are idle, so it is quick)."""
    threads = _kept.take()
    if threads is not None:
        threads.shutdown(wait=wait)


def _stop_before_fork() -> None:
    """Stop the kept threads and wait for them to exit, FORK_JOIN_SECONDS at most."""
    threads = _kept.take()
    if threads is not None:
        threads.shutdown(wait=False)
        _join(threads.threads(), FORK_JOIN_SECONDS)


def _at_exit() -> None:
    """Before the interpreter joins its threads: the kept ones must not make it wait."""
    global _exiting
    _exiting = True
    shutdown(wait=False)


# Runs before threading joins the non-daemon threads at exit, as concurrent.futures does.
threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_stop_before_fork)
