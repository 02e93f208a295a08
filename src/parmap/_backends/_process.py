"""The process backend: a warm pool of worker processes driven by the caller's thread.

Data flow (no background threads; the caller's thread does all the waiting)::

    caller thread                                   worker process i (one per CPU)
    -------------                                   ------------------------------
    ProcessSession.submit(chunk)
      first chunk of a call: if the caller's
        directory, sys.path, environment or
        recursion limit changed,
        SURROUNDINGS_FRAME and them      ──pipe i──▶ follow the caller
      FN_FRAME, then the pickled fn      ──pipe i──▶ unpickle fn (once per call)
      pickle ("chunk", start, items)     ──pipe i──▶ recv_bytes, unpickle
        (large ones unframed: _frames.py)
                                                      results = map(fn, items)
    ProcessSession.wait(timeout)         ◀──pipe i── ("ok", start, results) or an error
      connection.wait(busy pipes + busy workers' sentinels, timeout)

Each worker has its own duplex pipe and at most one chunk in flight, so neither side
can block the other on a full pipe, and a dead worker is noticed at once through its
process sentinel instead of hanging the call (``multiprocessing.Pool`` loses the
task and waits forever). A call checks the pool out of ``_warm.py``, so two threads
never share one; the pool goes back warm when the call ends. Workers still
running a chunk when a call fails, times out or is interrupted are terminated and
replaced on the next call, so nothing keeps running in the background.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
import types
from typing import Any, Callable, Iterator, NamedTuple, Optional

from .. import _frames as frames
from .. import _surroundings
from .._errors import (
    SerializationError,
    WorkerCrashedError,
    add_note,
    describe_items,
    item_note,
    rebuild_exception,
)
from .._log import debug
from .._platform import StartMethod
from .._serialization import dumps_message, unloadable_results_message
from .._worker import (
    FN_FRAME,
    IDLE_EXIT_CODE,
    SURROUNDINGS_FRAME,
    WorkerSetup,
    process_main,
)
from . import PROGRESS_SECONDS, Chunk, Running

#: Seconds a worker gets to exit after "stop" or SIGTERM before it is killed.
EXIT_GRACE_SECONDS = 1.0
#: A worker idle this close to its idle timeout (or a quarter of a short timeout) is
#: replaced rather than sent work: it may be exiting at that very moment.
IDLE_MARGIN_SECONDS = 1.0


class _Worker:
    """One worker process, the caller's end of its pipe, and what it is doing."""

    __slots__ = (
        "call_id",
        "chunk",
        "conn",
        "idle_since",
        "process",
        "reported",
        "surroundings",
        "tasks",
    )

    def __init__(self, process: Any, conn: Any, surroundings: _surroundings.Surroundings) -> None:
        self.process = process
        self.conn = conn
        self.surroundings = surroundings  # the caller's, as the worker last followed them
        self.call_id: Optional[int] = None  # whose fn it holds
        self.chunk: Optional[Chunk] = None  # in flight
        self.reported = 0  # items of that chunk already counted as progress
        self.tasks = 0  # chunks it has answered
        self.idle_since = time.monotonic()  # it exits by itself after the idle timeout


class PoolSettings(NamedTuple):
    """What makes two pools interchangeable: a warm pool is reused only if these match."""

    workers: int
    start_method: StartMethod
    init_payload: Optional[bytes]  # pickled initializer and initargs
    max_tasks_per_child: Optional[int]  # chunks a worker runs before it is replaced
    idle_timeout: Optional[float] = None  # seconds an idle worker waits before it exits
    native_threads: Optional[int] = None  # BLAS/OpenMP threads per worker; None: untouched


class ProcessPool:
    """Worker processes started and replaced according to *settings*."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self.workers: list[_Worker] = []
        self._retired: list[Any] = []  # processes told to stop, not yet reaped

    @property
    def size(self) -> int:
        return self.settings.workers

    @property
    def start_method(self) -> StartMethod:
        return self.settings.start_method

    @property
    def started(self) -> bool:
        return len(self.workers) == self.size

    def start(self, surroundings: Optional[_surroundings.Surroundings] = None) -> None:
        """Replace dead workers and start missing ones; does not wait for them to boot.
        New workers take *surroundings* (by default the caller's now).

        A worker close to its idle timeout is replaced too: it may be exiting right now,
        and work sent to it then would look like a crash.
        """
        stale = self._exited()
        for worker in stale + [w for w in self._expiring() if w not in stale]:
            self.discard(worker)
        missing = self.size - len(self.workers)
        if missing > 0:
            began = time.perf_counter()
            for _ in range(missing):
                self.workers.append(self._launch(surroundings))
            debug(
                "started %d %s worker(s) in %.1f ms",
                missing,
                self.start_method,
                (time.perf_counter() - began) * 1000,
            )

    def needs_launch(self) -> bool:
        """Whether :meth:`start` would start a process: workers missing, dead or expiring."""
        return not self.started or bool(self._exited()) or bool(self._expiring())

    def _exited(self) -> list[_Worker]:
        """Workers that have exited (their sentinel says so even if someone reaped them)."""
        by_sentinel = {w.process.sentinel: w for w in self.workers}
        if not by_sentinel:
            return []
        return [by_sentinel[s] for s in multiprocessing.connection.wait(list(by_sentinel), 0)]

    def _expiring(self) -> list[_Worker]:
        timeout = self.settings.idle_timeout
        if timeout is None:
            return []
        limit = time.monotonic() - (timeout - min(IDLE_MARGIN_SECONDS, timeout / 4))
        return [w for w in self.workers if w.idle_since < limit]

    def _launch(self, surroundings: Optional[_surroundings.Surroundings] = None) -> _Worker:
        try:
            return self._start_worker(surroundings or _surroundings.current())
        except OSError as exc:  # out of descriptors, processes or memory; a bad TMPDIR
            add_note(exc, self._launch_failure_note(exc))
            raise

    def _launch_failure_note(self, exc: OSError) -> str:
        """What to do about *exc*, raised while starting a worker."""
        started = f"parmap: could not start worker {len(self.workers) + 1} of {self.size} "
        started += f"({self.start_method})"
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return (
                f"{started}: each worker holds two file descriptors of the caller's. "
                "Raise the limit of open files (ulimit -n) or pass fewer workers."
            )
        if exc.errno in (errno.EAGAIN, errno.ENOMEM):
            return f"{started}: the system refused another process. Pass fewer workers."
        if "AF_UNIX path too long" in str(exc):
            import tempfile

            return (
                f"{started}: the fork server's socket goes in the temporary directory "
                f"{tempfile.gettempdir()!r}, whose path is too long for a socket address. "
                "Set TMPDIR to a shorter directory (such as /tmp), or pass "
                'start_method="spawn".'
            )
        return f"{started}."

    def _start_worker(self, surroundings: _surroundings.Surroundings) -> _Worker:
        context: Any = multiprocessing.get_context(self.start_method)
        ours, theirs = context.Pipe(duplex=True)
        # A forked child inherits every descriptor; it must close the caller's ends,
        # or it would never see end-of-file when the caller dies.
        inherited = [w.conn for w in self.workers] + [ours] if self.start_method == "fork" else []
        # The kernel ties "kill me when my parent exits" to the thread that forked: only
        # a process's main thread (or the fork server's) lives as long as the process.
        tie_to_parent = (
            self.start_method == "forkserver"
            or threading.current_thread() is threading.main_thread()
        )
        process = context.Process(
            target=process_main,
            args=(
                theirs,
                inherited,
                WorkerSetup(
                    self.settings.init_payload,
                    tie_to_parent,
                    self.settings.idle_timeout,
                    self.settings.native_threads,
                    forked=self.start_method == "fork",
                    surroundings=surroundings,
                ),
            ),
            name="parmap-worker",
            daemon=False,  # fn may start processes of its own
        )
        try:
            with (
                _main_module_hidden(self.start_method),
                _working_in(surroundings.cwd if self.start_method != "fork" else None),
            ):
                process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _Worker(process, ours, surroundings)

    def discard(self, worker: _Worker) -> None:
        """Stop *worker* now (it may be running user code) and forget it."""
        if worker in self.workers:
            self.workers.remove(worker)
        _stop(worker, polite=False)

    def worn_out(self, worker: _Worker) -> bool:
        limit = self.settings.max_tasks_per_child
        return limit is not None and worker.tasks >= limit

    def replace(self, worker: _Worker) -> _Worker:
        """Retire an idle *worker* (it exits on its own) and start a fresh one."""
        self.workers.remove(worker)
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(_STOP_MESSAGE)
        worker.conn.close()
        self._retired.append(worker.process)
        self._reap_retired(wait=False)
        fresh = self._launch()
        self.workers.append(fresh)
        return fresh

    def _reap_retired(self, *, wait: bool) -> None:
        for process in list(self._retired):
            process.join(EXIT_GRACE_SECONDS if wait else 0)
            if process.exitcode is None and wait:
                process.kill()
                process.join()
            if process.exitcode is not None:
                process.close()
                self._retired.remove(process)

    def discard_busy(self) -> None:
        """Stop workers still running a chunk: nobody will read their answers."""
        for worker in [w for w in self.workers if w.chunk is not None]:
            self.discard(worker)

    def shutdown(self) -> None:
        """Ask every worker to exit, then make sure each did."""
        workers, self.workers = self.workers, []
        for worker in workers:
            _stop(worker, polite=True)
        self._reap_retired(wait=True)


@contextlib.contextmanager
def _main_module_hidden(start_method: StartMethod) -> Iterator[None]:
    """Start spawn and forkserver workers without re-running the caller's ``__main__``.

    ``multiprocessing`` makes such a worker import the main script (or module) again.
    That is why a script without ``if __name__ == "__main__":`` starts its work over in
    every worker, why code piped on stdin fails (there is no ``<stdin>`` file to run),
    and why a notebook's module is loaded in each worker. parmap does not need it: it
    sends functions and classes defined in ``__main__`` by value. So while the worker
    starts, ``multiprocessing`` is shown a ``__main__`` with no file and no spec.
    """
    if start_method == "fork":
        yield
        return
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextlib.contextmanager
def _working_in(directory: Optional[str]) -> Iterator[None]:
    """Be in *directory* while a spawn or forkserver worker starts (None: stay).

    ``multiprocessing`` has such a worker change to the caller's directory of the moment
    before it runs anything of parmap's. The first item's timer starts workers in the
    middle of that item, which may work in a folder of its own for a while: the workers
    then failed to start (``FileNotFoundError``) once the item had removed that folder.
    """
    if directory is None or not hasattr(os, "fchdir"):
        yield
        return
    try:  # a way back, even to a folder removed meanwhile
        back = os.open(".", os.O_RDONLY) if os.getcwd() != directory else None
    except OSError:  # no way back: stay
        back = None
    if back is None:
        yield
        return
    try:
        with contextlib.suppress(OSError):  # removed since: the worker follows later
            os.chdir(directory)
        yield
    finally:
        os.fchdir(back)
        os.close(back)


def _stop(worker: _Worker, *, polite: bool) -> None:
    process = worker.process
    if polite and process.exitcode is None:
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(_STOP_MESSAGE)
        process.join(EXIT_GRACE_SECONDS)
    if process.exitcode is None:
        process.terminate()
        process.join(EXIT_GRACE_SECONDS)
    if process.exitcode is None:  # pragma: no cover - SIGTERM ignored by user code
        process.kill()
        process.join()
    worker.conn.close()
    with contextlib.suppress(ValueError):  # reaped by someone else: nothing left to close
        process.close()


_STOP_MESSAGE = pickle.dumps(("stop",), frames.PROTOCOL)


class ProcessSession:
    """One call's use of a :class:`ProcessPool`."""

    place = "process"

    _call_ids = iter(range(1, 2**62))

    def __init__(
        self,
        pool: ProcessPool,
        fn_payload: bytes,
        on_done: Optional[Callable[[int], None]] = None,
        *,
        launch: bool = True,
        surroundings: Optional[_surroundings.Surroundings] = None,
    ) -> None:
        # The caller's, as the call found them before its first item (fn may change
        # directory or environment for a while), else as they are now.
        self._surroundings = surroundings or _surroundings.current()
        if launch:  # else the caller has checked that none is needed (needs_launch)
            pool.start(self._surroundings)
        self._pool = pool
        self._fn_payload = fn_payload
        self._on_done = on_done
        # With progress on, a worker says how far it got every PROGRESS_SECONDS.
        self._report_every = PROGRESS_SECONDS if on_done is not None else None
        self._call_id = next(self._call_ids)
        self._idle = list(pool.workers)
        self._busy: dict[Any, _Worker] = {}  # pipe or sentinel -> worker
        self._resent: set[int] = set()  # starts of chunks sent again after an idle exit

    def has_capacity(self) -> bool:
        return bool(self._idle)

    def submit(self, chunk: Chunk) -> None:
        self._send(self._idle.pop(), chunk)

    def _send(self, worker: _Worker, chunk: Chunk) -> None:
        message = dumps_message(
            ("chunk", chunk.start, chunk.items, self._report_every), chunk.items, chunk.start
        )
        send_fn = worker.call_id != self._call_id
        worker.call_id = self._call_id
        worker.chunk = chunk
        worker.reported = 0
        self._busy[worker.conn] = worker
        self._busy[worker.process.sentinel] = worker
        with contextlib.suppress(OSError):  # a dead worker: wait() reports its sentinel
            if send_fn:
                self._send_surroundings(worker)
                # Its own frame: a large closure is not copied into the message.
                worker.conn.send_bytes(FN_FRAME)
                worker.conn.send_bytes(self._fn_payload)
            frames.send(worker.conn, message)

    def _send_surroundings(self, worker: _Worker) -> None:
        """Tell *worker* where the caller is now, if it does not know (before fn, which
        may need the caller's sys.path to load)."""
        if worker.surroundings is not self._surroundings:
            worker.conn.send_bytes(SURROUNDINGS_FRAME)
            worker.conn.send_bytes(_surroundings.payload(self._surroundings))
            worker.surroundings = self._surroundings

    def poll(self, timeout: float) -> bool:
        """Whether a chunk finished (or a worker died) within *timeout*; collects nothing."""
        return bool(multiprocessing.connection.wait(list(self._busy), timeout))

    def wait(self, timeout: Optional[float]) -> list[tuple[int, list[Any]]]:
        ready = multiprocessing.connection.wait(list(self._busy), timeout)
        # Each worker once (its pipe and its sentinel may both be ready), all looked up
        # before any is collected: collecting may start a new worker, whose sentinel can
        # take the number of one in *ready* that has just been closed.
        workers = dict.fromkeys(self._busy[handle] for handle in ready)
        finished = []
        for worker in workers:
            done = self._collect(worker)
            if done is not None:
                finished.append(done)
        return finished

    def _collect(self, worker: _Worker) -> Optional[tuple[int, list[Any]]]:
        """The worker's finished chunk, or None if it only said how far it got."""
        chunk = worker.chunk
        assert chunk is not None
        try:
            answer = _receive(worker)
        except (EOFError, OSError):
            answer = None
        if answer is not None and answer[0] == "progress":
            self._report(worker, answer[2])
            return None
        del self._busy[worker.conn], self._busy[worker.process.sentinel]
        worker.chunk = None
        if answer is None:
            # An idle exit: the worker ran out of idle time before the chunk came (a lazy
            # consumer paused, or the input was slow to yield), so the chunk never ran and
            # a new worker takes it. Once: a new worker reads the chunk before it waits, so
            # the same status again is fn's own (os._exit(75)), which must not loop.
            if chunk.start not in self._resent and _left_idle(worker):
                debug("a worker exited idle before its chunk came: sending it to a new one")
                self._resent.add(chunk.start)
                self._send(self._pool.replace(worker), chunk)
                return None
            raise _crash_error(self._pool, worker, chunk)
        worker.tasks += 1
        worker.idle_since = time.monotonic()
        self._idle.append(self._pool.replace(worker) if self._pool.worn_out(worker) else worker)
        kind = answer[0]
        if kind == "ok":
            self._report(worker, len(answer[2]))
            return answer[1], answer[2]
        if kind == "raised":
            _, _, index, payload, type_name, message, text = answer
            error = rebuild_exception(payload, type_name, message, text)
            add_note(error, item_note(index))
            raise error
        if kind == "init_failed":
            error = rebuild_exception(*answer[1:])
            add_note(error, "parmap: raised by the initializer in a worker process")
            raise error
        if kind == "unloadable":
            message = unloadable_results_message(chunk.start, len(chunk.items), answer[1])
            raise SerializationError(message) from answer[1]
        raise SerializationError(answer[2])

    def _report(self, worker: _Worker, done: int) -> None:
        """Tell the progress callback about the items *worker* finished since last time."""
        if self._on_done is not None and done > worker.reported:
            self._on_done(done - worker.reported)
        worker.reported = done

    def cancel(self) -> None:
        for worker in set(self._busy.values()):
            self._pool.discard(worker)
        self._busy.clear()

    def close(self) -> None:
        """Nothing to do: idle workers stay warm for the next call."""

    def running(self) -> list[Running]:
        return [
            Running(worker.chunk.start, len(worker.chunk.items), worker.process.pid)
            for worker in set(self._busy.values())
            if worker.chunk is not None
        ]


def _receive(worker: _Worker) -> Optional[tuple[Any, ...]]:
    """The worker's answer, or None if it died without one, or ``("unloadable", error)``
    if it arrived whole but does not unpickle here (the worker is fine)."""
    if not worker.conn.poll():
        return None
    incoming = frames.receive(worker.conn)
    try:
        answer: tuple[Any, ...] = incoming.load()
    except frames.PipeClosed:
        raise  # the worker died in the middle of it
    except Exception as exc:
        return ("unloadable", exc)
    return answer


def _left_idle(worker: _Worker) -> bool:
    """Whether *worker*, found dead, had exited because it was idle too long."""
    worker.process.join(EXIT_GRACE_SECONDS)  # its sentinel or pipe may tell first
    return bool(worker.process.exitcode == IDLE_EXIT_CODE)


def _crash_error(pool: ProcessPool, worker: _Worker, chunk: Chunk) -> WorkerCrashedError:
    worker.process.join(EXIT_GRACE_SECONDS)
    code = worker.process.exitcode
    pool.discard(worker)
    if code is not None and code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    else:
        how = f"exit code {code}"
    items = describe_items([(chunk.start, len(chunk.items))])
    causes = "fn called os._exit() or sys.exit() outside Python's error handling, "
    if code == -signal.SIGKILL:
        causes = "the operating system killed it for using too much memory, "
    msg = (
        f"a worker process exited unexpectedly ({how}) while running {items}. "
        f"Common causes: {causes}or native code crashed (a segfault). Workers "
        "still running items were stopped; the next call starts fresh workers."
    )
    return WorkerCrashedError(msg)
