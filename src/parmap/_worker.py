"""Code that runs inside workers: the process main loop and the chunk runner.

Kept import-light: under spawn and forkserver every worker imports this module.

Messages are pickled tuples. The caller sends ``("chunk", start, items, report_every)``
or ``("stop",)``. Before a worker's first chunk of a call, it sends the frame
``FN_FRAME`` followed by the pickled fn as a frame of its own; before that, if the
caller's directory, ``sys.path``, environment or recursion limit changed since the worker
last heard, ``SURROUNDINGS_FRAME`` and the new ones (``_surroundings.py``). When *report_every* is
a number of seconds (progress is on), the worker first sends, as often as that,
``("progress", start, done)``. It answers each chunk with exactly one of::

    ("ok", start, results)
    ("raised", start, index, exception_payload, type_name, message, traceback_text)
    ("failed", start, message)          # fn, items or results could not cross
and, once at start-up if the initializer raises,
    ("init_failed", exception_payload, type_name, message, traceback_text)

A worker that waits for a message longer than the idle timeout exits with status
``IDLE_EXIT_CODE``; a chunk that arrived as it gave up was not read, let alone run.

Large chunks and answers travel unframed, their numpy arrays apart from the pickle
(``_frames.py``).
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import signal
import sys
import time
import traceback
from typing import Any, Callable, NamedTuple, Sequence

from . import _frames as frames
from ._callables import function_inside
from ._errors import fn_stopped_error
from ._memory import worker_memory as memory
from ._platform import (
    die_with_parent,
    mark_worker_process,
    mark_worker_thread,
    release_forkserver_lifeline,
)
from ._serialization import (
    dumps_exception,
    pickle_portable,
    unpicklable_result_message,
)
from ._surroundings import Surroundings, follow

#: Announces that the next frame is a pickled fn (not a valid pickle itself).
FN_FRAME = b"fn"
#: Announces that the next frame is the caller's pickled :class:`Surroundings`.
SURROUNDINGS_FRAME = b"surroundings"
#: A worker's exit status once it has waited for work longer than the idle timeout
#: (EX_TEMPFAIL: try again). It read nothing since its last answer, so a chunk the
#: caller sent meanwhile never ran and can go to a fresh worker.
IDLE_EXIT_CODE = 75


class ChunkFailure(Exception):
    """``fn`` raised *error* for the item at absolute *index* (a StopIteration becomes
    the RuntimeError that says what it would have done in a map)."""

    def __init__(self, index: int, error: BaseException) -> None:
        if isinstance(error, StopIteration):
            error = fn_stopped_error(index, error)
        super().__init__(index, error)
        self.index = index
        self.error = error


def call_chunk(fn: Callable[[Any], Any], start: int, items: Sequence[Any]) -> list[Any]:
    """Apply *fn* to *items*; on failure say which item (absolute index) raised."""
    results: list[Any] = []
    try:
        # extend() keeps what map produced before the exception, so len(results)
        # is the offset of the failing item without counting in the hot loop.
        results.extend(map(fn, items))
    except BaseException as exc:
        raise ChunkFailure(start + len(results), exc) from None
    if len(results) < len(items):  # map ended at fn's StopIteration, and swallowed it
        raise ChunkFailure(start + len(results), fn_stopped_error(start + len(results)))
    return results


class ChunkStopped(Exception):
    """The call that a thread's chunk belongs to has ended: the rest is not run."""


class Tally:
    """A chunk running on a thread of the caller's process: its results so far, whose
    number the caller reads to report progress, and how many of them it has reported.

    The caller sets ``stopped`` when the call ends early (an error, a timeout, Ctrl-C):
    a thread cannot be killed, but it stops after the item it is running.
    """

    __slots__ = ("reported", "results", "stopped")

    def __init__(self) -> None:
        self.results: list[Any] = []  # only its thread appends; the caller reads len()
        self.reported = 0
        self.stopped = False

    @property
    def done(self) -> int:
        return len(self.results)


def call_chunk_on_thread(
    fn: Callable[[Any], Any], start: int, items: Sequence[Any], tally: Tally
) -> list[Any]:
    """:func:`call_chunk`, checking before each item that the call still wants it (an
    attribute read: 6 ns an item more than ``map``, where a method call took 50)."""
    results = tally.results
    append = results.append
    try:
        for item in items:
            if tally.stopped:
                break
            append(fn(item))
    except BaseException as exc:
        raise ChunkFailure(start + len(results), exc) from None
    if tally.stopped:  # nobody waits for these results
        raise ChunkStopped
    return results


def run_chunk_task(
    fn: Callable[[Any], Any], start: int, items: Sequence[Any], tally: Tally | None = None
) -> tuple[Any, ...]:
    """One chunk as a task for a ``concurrent.futures.Executor`` (local or remote); a
    thread in the caller's process keeps its results in *tally*, if given."""
    try:
        if tally is None:
            return ("ok", start, call_chunk(fn, start, items))
        return ("ok", start, call_chunk_on_thread(fn, start, items, tally))
    except ChunkFailure as failure:
        return ("raised", start, failure.index, failure.error, _traceback_text(failure.error))


def thread_initializer(
    initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    """Runs first in every worker thread of the thread backend."""
    mark_worker_thread()
    if initializer is not None:
        initializer(*initargs)


class WorkerSetup(NamedTuple):
    """How a worker process starts, as its pool's settings say."""

    init_payload: bytes | None  # the pickled initializer and initargs
    tie_to_parent: bool  # ask the kernel to kill the worker when its parent exits
    idle_timeout: float | None  # seconds without work after which the worker exits
    native_threads: int | None  # BLAS/OpenMP threads; None leaves the libraries alone
    forked: bool  # started by fork: shares the caller's heap
    surroundings: Surroundings  # the caller's directory, sys.path, environment, recursion limit


def process_main(conn: Any, inherited: Sequence[Any], setup: WorkerSetup) -> None:
    """Main loop of a worker process: run chunks until told to stop or the caller is gone."""
    if not _set_up(conn, inherited, setup):
        return
    surroundings = setup.surroundings
    idle_timeout = setup.idle_timeout
    fn: Callable[[Any], Any] | None = None
    fn_error = "worker received a chunk before any fn"
    while True:
        try:
            if not memory.wait_for_work(conn, idle_timeout):
                # Idle too long: free the memory; the caller starts a new one.
                sys.exit(IDLE_EXIT_CODE)
            incoming = frames.receive(conn)
            memory.after_message(incoming.size)
            if incoming.frame == FN_FRAME:
                fn, fn_error = _load_fn(conn.recv_bytes())
                continue
            if incoming.frame == SURROUNDINGS_FRAME:
                now = pickle.loads(conn.recv_bytes())
                follow(surroundings, now)
                surroundings = now
                continue
        except (EOFError, OSError):  # the caller closed the pipe or died
            return
        try:
            message = incoming.load()
        except frames.PipeClosed:  # in the middle of the message
            return
        except Exception as exc:
            _send(conn, ("failed", -1, _load_error("the items of a chunk", exc)))
            continue
        # Unpickled: a chunk of large items must not be held twice while fn runs (the
        # items hold on to the buffers they need).
        del incoming
        if message[0] == "stop":
            return
        memory.after_message(_answer_chunk(conn, fn, fn_error, message))
        del message  # nor kept while waiting: the next chunk may be as large


def _set_up(conn: Any, inherited: Sequence[Any], setup: WorkerSetup) -> bool:
    """Make the new worker ready for chunks; False if its initializer failed (the caller
    has been told)."""
    # Everything the worker has so far (under fork: the caller's whole heap) goes to the
    # collector's permanent generation, which it never scans. Otherwise the worker's
    # first full collection writes to the header of every object it inherited, and the
    # kernel copies each page it shares with the caller: a worker of a caller holding
    # 3 million lists grew by 370 MB and ran allocating work 3.7 times slower.
    gc.freeze()
    if setup.forked:
        memory.forked()
        _reseed_copied_random_state()
    for connection in inherited:  # the caller's ends of other pipes, copied by fork
        connection.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    follow(None, setup.surroundings)  # before the initializer, thread limits or imports
    release_forkserver_lifeline()
    if setup.tie_to_parent:
        die_with_parent()
    mark_worker_process()
    if setup.native_threads is not None:  # before the initializer or fn loads a library
        from ._native_threads import limit_native_threads

        limit_native_threads(setup.native_threads)
    return setup.init_payload is None or _run_initializer(conn, setup.init_payload)


def _reseed_copied_random_state() -> None:
    """Give a forked worker random numbers of its own.

    Python's ``random`` reseeds itself in a forked child; numpy's global generator does
    not. Once the caller has seeded it or drawn from it, every worker forked from the
    caller holds the same state: ``np.random.random()`` returned the same numbers in each
    worker, so half the draws of two workers were repeats. A new seed from the operating
    system, as a worker started by spawn or forkserver has, before the initializer, which
    may seed it on purpose.
    """
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def _answer_chunk(
    conn: Any, fn: Callable[[Any], Any] | None, fn_error: str, message: tuple[Any, ...]
) -> int:
    """Run the chunk of a ``("chunk", start, items, report_every)`` message; send the
    answer and return its size in bytes."""
    _, start, items, report_every = message
    if fn is None:
        return _send(conn, ("failed", start, fn_error))
    report = None
    if report_every is not None:
        report = ProgressReport(conn, start, report_every)
    return _send(conn, _answer(fn, start, items, report))


def _load_fn(payload: bytes) -> tuple[Callable[[Any], Any] | None, str]:
    """This call's fn, or None and the reason it could not be loaded."""
    try:
        fn = pickle.loads(payload)
    except Exception as exc:
        return None, _load_error("fn", exc)
    _share_initializer_state(fn)
    return fn, ""


def _answer(
    fn: Callable[[Any], Any],
    start: int,
    items: Sequence[Any],
    report: ProgressReport | None,
) -> tuple[Any, ...]:
    try:
        if report is None:
            return ("ok", start, call_chunk(fn, start, items))
        return ("ok", start, call_chunk_reporting(fn, start, items, report))
    except ChunkFailure as failure:
        return ("raised", start, failure.index, *_describe(failure.error))


class ProgressReport:
    """Sends ``("progress", start, done)`` to the caller at most every *every* seconds."""

    def __init__(self, conn: Any, start: int, every: float) -> None:
        self._conn = conn
        self._start = start
        self._every = every
        self._due = time.monotonic() + every

    def finished(self, done: int) -> None:
        if time.monotonic() >= self._due:
            self._send(done)

    def _send(self, done: int) -> None:
        self._due = time.monotonic() + self._every
        # If the caller is gone, the main loop notices at its next read.
        with contextlib.suppress(OSError):
            self._conn.send_bytes(pickle.dumps(("progress", self._start, done), frames.PROTOCOL))


def call_chunk_reporting(
    fn: Callable[[Any], Any], start: int, items: Sequence[Any], report: ProgressReport
) -> list[Any]:
    """:func:`call_chunk`, one item at a time, telling the caller how many have finished."""
    results: list[Any] = []
    append = results.append
    try:
        for item in items:
            append(fn(item))
            report.finished(len(results))
    except BaseException as exc:
        raise ChunkFailure(start + len(results), exc) from None
    return results


def _run_initializer(conn: Any, init_payload: bytes) -> bool:
    try:
        initializer_payload, initargs = pickle.loads(init_payload)
        initializer = pickle.loads(initializer_payload)
        namespace = _copied_namespace(initializer)
        before = dict(namespace) if namespace is not None else {}
        initializer(*initargs)
    except BaseException as exc:
        _send(conn, ("init_failed", *_describe(exc)))
        return False
    if namespace is not None:
        _initializer_state.update(
            (name, value)
            for name, value in namespace.items()
            if not name.startswith("__")
            and (name not in before or before[name] is not value or isinstance(value, _FILLED))
        )
    return True


#: Containers an initializer may fill in place (``CACHE[key] = value``) rather than
#: assign: its copy is the one fn must see.
_FILLED = (dict, list, set, bytearray)


#: Globals an initializer sent by value set in its own copy of ``__main__``.
_initializer_state: dict[str, Any] = {}


def _copied_namespace(fn: object) -> dict[str, Any] | None:
    """The globals of a function sent by value (a copy), None for an imported one.

    An initializer and fn defined in ``__main__`` (a script, a notebook) travel by
    value, each with its own copy of the globals it uses. The names the initializer
    sets are copied into fn's globals before it runs, so ``global session`` in the
    initializer is seen by fn, as it would be in the caller or under fork.
    """
    target = function_inside(fn)
    namespace = getattr(target, "__globals__", None)
    module = sys.modules.get(getattr(target, "__module__", None) or "")
    if namespace is None or (module is not None and namespace is vars(module)):
        return None
    return namespace  # type: ignore[no-any-return]


def _share_initializer_state(fn: object) -> None:
    namespace = _copied_namespace(fn) if _initializer_state else None
    if namespace is not None:
        namespace.update(_initializer_state)


def _describe(error: BaseException) -> tuple[bytes | None, str, str, str]:
    return dumps_exception(error), type(error).__qualname__, str(error), _traceback_text(error)


def _traceback_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _load_error(what: str, exc: BaseException) -> str:
    return (
        f"a worker process could not load {what}: {type(exc).__name__}: {exc}. Workers "
        "import what fn needs by name; make sure those modules are importable in a fresh "
        "interpreter (installed, or on sys.path), or define fn in the script itself."
    )


def _send(conn: Any, message: tuple[Any, ...]) -> int:
    """Send *message*; return its size in bytes."""
    try:
        pickled = pickle_portable(message, apart=True)
    except Exception as exc:
        if message[0] != "ok":
            raise
        failure = ("failed", message[1], unpicklable_result_message(message[2], message[1], exc))
        pickled = pickle_portable(failure, apart=False)
    return frames.send(conn, pickled)
