"""The public functions: check the arguments, then hand over to a :class:`Call`."""

from __future__ import annotations

import collections
import sys
from itertools import chain, groupby
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Optional,
    TypeVar,
    Union,
    cast,
)

from ._call import Call
from ._callables import Starred
from ._options import Progress, check_call, make_options
from ._platform import StartMethod

if TYPE_CHECKING:
    from concurrent.futures import Executor

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    workers: Optional[int] = None,
    chunksize: Optional[int] = None,
    *,
    backend: Union[str, Executor] = "process",
    start_method: Optional[StartMethod] = None,
    serial_fallback: bool = True,
    timeout: Optional[float] = None,
    progress: Progress = False,
    initializer: Optional[Callable[..., object]] = None,
    initargs: tuple[Any, ...] = (),
    max_tasks_per_child: Optional[int] = None,
    limit_native_threads: bool = True,
) -> list[R]:
    """Apply *fn* to every item of *iterable* in parallel; return a list in input order.

        >>> parallel_map(abs, [-1, 2, -3])
        [1, 2, 3]

    The same as ``list(map(fn, iterable))``, computed by worker processes (or threads,
    or any ``concurrent.futures.Executor``). Small or cheap inputs run serially in the
    caller, since starting workers would cost more than it saves; pass
    ``serial_fallback=False`` to always use the backend. See :func:`parallel_imap` for
    a lazy, bounded-memory variant.

    Args:
        fn: a function of one argument.
        iterable: the items. Inputs with a length (lists, tuples, ranges, dicts)
            are read as the work proceeds; others are read completely first.
        workers: how many workers; default: the CPUs this process may use (affinity
            and cgroup quota), or 32 for ``backend="thread"``.
        chunksize: items per task; default: sized from the measured cost per item,
            shrinking towards the end so workers finish together.
        backend: ``"process"``, ``"thread"``, ``"serial"`` or an Executor instance.
        start_method: ``"fork"``, ``"spawn"`` or ``"forkserver"``; default: the
            running Python's (``multiprocessing``'s) default.
        serial_fallback: run in the caller when workers would not finish sooner.
        timeout: seconds for the whole call; then ``TimeoutError``, naming the items
            still running. Worker processes still running are stopped; threads
            cannot be, and finish their current item in the background; a remote
            Executor's running tasks finish their chunk. Items run in the caller
            are checked between batches. Without a timeout, a call that waits a
            minute with no chunk finishing logs a warning naming those items.
        progress: ``True`` for a tqdm bar, or ``callback(done, total)``.
        initializer: called as ``initializer(*initargs)`` once in each worker before
            any item (and once in the caller when items run there).
        initargs: arguments for *initializer*.
        max_tasks_per_child: replace a worker process after it has run this many
            chunks (for code that leaks memory); default: never.
        limit_native_threads: give each worker process ``CPUs // workers`` threads
            for BLAS and OpenMP (numpy, scipy, numexpr), so workers times threads does
            not exceed the CPUs; ``False`` leaves the libraries' defaults. Variables
            such as ``OMP_NUM_THREADS`` that you set yourself are always respected.

    Returns:
        ``[fn(x) for x in iterable]``.

    Raises:
        Exception: whatever *fn* raised, with its own type, the worker's traceback as
            ``__cause__`` and a note naming the item's index; the rest is cancelled.
        WorkerCrashedError: a worker process died while running items.
        SerializationError: *fn*, an item, a result or an exception could not be
            sent between processes.
        TimeoutError: *timeout* passed.

    .. versionadded:: 0.1
    """
    check_call(fn, iterable)
    options = make_options(
        workers=workers,
        chunksize=chunksize,
        backend=backend,
        start_method=start_method,
        serial_fallback=serial_fallback,
        timeout=timeout,
        progress=progress,
        initializer=initializer,
        initargs=initargs,
        max_tasks_per_child=max_tasks_per_child,
        limit_native_threads=limit_native_threads,
    )
    iterable = _groups_kept(iterable)
    # Sized inputs (lists, tuples, ranges, dicts...) are read as they go; others first.
    total = _length(iterable)
    items = iterable if total is not None else list(iterable)
    exact = total is None or type(iterable) in _EXACT_LENGTH
    total = len(items) if total is None else total  # type: ignore[arg-type]
    call = Call(fn, iter(items), total, options, lazy=False, exact_total=exact)
    return _joined(call.run(), total)


def _groups_kept(iterable: Iterable[Any]) -> Iterable[Any]:
    """*iterable*, unless it is an ``itertools.groupby``: then its pairs, each group read
    into a list and handed over as an iterator of it.

    A group of ``groupby`` is a view of the shared input, and it is empty once the
    ``groupby`` has moved on. ``map`` runs fn on each pair before it reads the next; a
    parallel map reads ahead, so fn found every group empty (``Pool.map`` too), and the
    results were wrong without an error.
    """
    if type(iterable) is not groupby:
        return iterable
    return ((key, iter(list(group))) for key, group in iterable)


#: Types whose iteration yields exactly ``len()`` items (a class of the user's may say
#: one length and yield another, as a map allows).
_EXACT_LENGTH = frozenset(
    {list, tuple, range, str, bytes, bytearray, dict, set, frozenset, collections.deque}
    | {type({}.keys()), type({}.values()), type({}.items())}
)


def _length(iterable: Iterable[Any]) -> Optional[int]:
    """``len(iterable)``, or None where it has none: no ``__len__``, or one that raises
    TypeError (as ``operator.length_hint`` and ``list()`` allow; some lazy datasets do)."""
    if not hasattr(iterable, "__len__"):
        return None
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _joined(pieces: Iterator[list[R]], total: int) -> list[R]:
    """The lists of results, one after the other, as one list of *total* results.

    Often there is only one. Otherwise the later lists are appended to the first, except
    where the second holds at least half the results (the first item ran on a thread,
    the rest in the caller): then the first goes in front of the second at the end. That
    moves pointers (0.7 ms for a million), where appending the second would take and
    later drop a reference to each of its results (5.4 ms for a million).
    """
    head = next(pieces, [])
    results = next(pieces, None)
    if results is None:
        return head
    if 2 * len(results) < total:
        head.extend(results)
        results, head = head, []
    for chunk_results in pieces:
        results.extend(chunk_results)
    results[:0] = head
    return results


def parallel_imap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    workers: Optional[int] = None,
    chunksize: Optional[int] = None,
    *,
    ordered: bool = True,
    buffersize: Optional[int] = None,
    backend: Union[str, Executor] = "process",
    start_method: Optional[StartMethod] = None,
    serial_fallback: bool = True,
    timeout: Optional[float] = None,
    progress: Progress = False,
    initializer: Optional[Callable[..., object]] = None,
    initargs: tuple[Any, ...] = (),
    max_tasks_per_child: Optional[int] = None,
    limit_native_threads: bool = True,
) -> Iterator[R]:
    """Lazily apply *fn* to the items of *iterable* in parallel; yield the results.

        >>> squares = parallel_imap(abs, iter([-1, 2, -3]))
        >>> next(squares), list(squares)
        (1, [2, 3])

    Reads at most *buffersize* items ahead of the consumer, so it runs over endless
    input in bounded memory. Nothing starts until the first ``next()``. Breaking out
    of the loop (or dropping the iterator) cancels the work still in flight. The
    arguments not listed below are those of :func:`parallel_map`.

    Args:
        ordered: yield in input order (default), or as results complete.
        buffersize: most items read from *iterable* and not yet yielded; default:
            two chunks per worker (items run in the caller: one batch, at most 1,024).
        timeout: seconds each wait for the next results may take, counted again
            whenever the loop asks for more; then ``TimeoutError``.

    .. versionadded:: 0.1
    """
    check_call(fn, iterable)
    options = make_options(
        workers=workers,
        chunksize=chunksize,
        backend=backend,
        start_method=start_method,
        serial_fallback=serial_fallback,
        timeout=timeout,
        progress=progress,
        initializer=initializer,
        initargs=initargs,
        max_tasks_per_child=max_tasks_per_child,
        limit_native_threads=limit_native_threads,
        ordered=ordered,
        buffersize=buffersize,
    )
    iterable = _groups_kept(iterable)
    total = _length(iterable)
    exact = type(iterable) in _EXACT_LENGTH
    call = Call(fn, iter(iterable), total, options, lazy=True, exact_total=exact)
    return _LazyResults(call.run())


def parallel_starmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[Any]],
    workers: Optional[int] = None,
    chunksize: Optional[int] = None,
    *,
    backend: Union[str, Executor] = "process",
    start_method: Optional[StartMethod] = None,
    serial_fallback: bool = True,
    timeout: Optional[float] = None,
    progress: Progress = False,
    initializer: Optional[Callable[..., object]] = None,
    initargs: tuple[Any, ...] = (),
    max_tasks_per_child: Optional[int] = None,
    limit_native_threads: bool = True,
) -> list[R]:
    """Like :func:`parallel_map`, for a function of several arguments: ``fn(*args)``.

        >>> parallel_starmap(pow, [(2, 3), (3, 2), (10, 0)])
        [8, 9, 1]

    The same as ``list(itertools.starmap(fn, iterable))``, as ``Pool.starmap`` does, with
    the keywords and guarantees of :func:`parallel_map`; a note on an exception names
    the index of the argument tuple.

    .. versionadded:: 0.1
    """
    check_call(fn, iterable)
    return parallel_map(
        Starred(fn),
        iterable,
        workers,
        chunksize,
        backend=backend,
        start_method=start_method,
        serial_fallback=serial_fallback,
        timeout=timeout,
        progress=progress,
        initializer=initializer,
        initargs=initargs,
        max_tasks_per_child=max_tasks_per_child,
        limit_native_threads=limit_native_threads,
    )


class _LazyResults(chain[R]):
    """The results of parallel_imap, one by one, from the lists the call yields.

    A ``chain``, so that handing out each result runs in C: a generator doing
    ``yield from`` costs a third more than ``map`` on cheap items. ``close()`` stops
    the call as closing a generator would.
    """

    __slots__ = ("_batches",)
    _batches: Generator[list[R], None, None]

    def __new__(cls, batches: Generator[list[R], None, None]) -> _LazyResults[R]:
        self = cast("_LazyResults[R]", cls.from_iterable(batches))
        self._batches = batches
        return self

    def close(self) -> None:
        """Stop the call: cancel the work in flight and stop the workers running it."""
        self._batches.close()


def shutdown() -> None:
    """Stop the worker processes and threads kept warm between calls.

    They are started again by the next call that needs them. Also runs at interpreter
    exit, so calling it is only needed to free them earlier (or, for threads, to have
    their ``threading.local()`` values let go now).

    .. versionadded:: 0.1
    """
    if "parmap._backends._warm" in sys.modules:
        from ._backends._warm import shutdown as shutdown_pool

        shutdown_pool()
    if "parmap._backends._threads" in sys.modules:
        from ._backends._threads import shutdown as shutdown_threads

        shutdown_threads()
