"""The public functions: check the arguments, choose where ``fn`` runs, hand over.

How a call runs (docs/design.md has the full picture):

1. Arguments are checked; nothing has started yet.
2. Serial cases run ``fn`` in the caller: ``backend="serial"``, a call made inside a
   parmap worker (nested), or a single worker with serial fallback on.
3. With serial fallback on, the caller runs the first items itself for about as long
   as starting workers would take (a cold pool is started meanwhile if an item runs
   long, see ``_early.py``). If the input ends, that was all. Otherwise the measured
   cost per item decides whether workers finish sooner than the caller would.
4. Otherwise chunks go to the backend through the scheduler, in input order.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar, Union

from ._early import EarlyDispatch
from ._chunking import Costs, chunk_size, default_buffersize, parallel_pays_off
from ._options import Options, Progress, check_call, make_options
from ._platform import StartMethod, inside_worker
from ._progress import make_reporter
from ._scheduler import Deadline, iter_chunks, run_chunks
from ._serial import Probe, probe, run_serially, transfer_seconds

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from ._backends import Session
    from ._backends._process import ProcessPool

    BackendName = str

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("parmap")

#: Seconds to start a cold pool, by start method, measured on Linux (2 workers):
#: forking is cheap; spawn boots a fresh interpreter per worker.
START_SECONDS = {"fork": 0.02, "forkserver": 0.1, "spawn": 0.3}
#: Seconds of per-call set-up with workers already running (sending fn) ...
WARM_START_SECONDS = 0.001
#: ... and for a thread pool, which starts its threads on demand.
THREAD_START_SECONDS = 0.002
#: One chunk's round trip: pipe to a process, a future to a thread or an executor.
CHUNK_SECONDS = {"process": 0.000_2, "thread": 0.000_05, "executor": 0.001}
#: The probe runs at least this long, so timer resolution does not decide.
MIN_PROBE_SECONDS = 0.001


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
        iterable: the items; read completely before the work starts.
        workers: how many workers; default: the CPUs this process may use (affinity
            and cgroup quota), or 32 for ``backend="thread"``.
        chunksize: items per task; default: sized from the measured cost per item,
            shrinking towards the end so workers finish together.
        backend: ``"process"``, ``"thread"``, ``"serial"`` or an Executor instance.
        start_method: ``"fork"``, ``"spawn"`` or ``"forkserver"``; default: the
            running Python's (``multiprocessing``'s) default.
        serial_fallback: run in the caller when workers would not finish sooner.
        timeout: seconds for the whole call; then ``TimeoutError`` and the workers
            still running are stopped.
        progress: ``True`` for a tqdm bar, or ``callback(done, total)``.
        initializer: called as ``initializer(*initargs)`` once in each worker before
            any item (and once in the caller when items run there).
        initargs: arguments for *initializer*.

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
    )
    items = iterable if isinstance(iterable, list) else list(iterable)
    results: list[R] = []
    for chunk_results in _execute(fn, iter(items), len(items), options, lazy=False):
        results.extend(chunk_results)
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
) -> Iterator[R]:
    """Lazily apply *fn* to the items of *iterable* in parallel; yield the results.

        >>> squares = parallel_imap(abs, iter([-1, 2, -3]))
        >>> next(squares), list(squares)
        (1, [2, 3])

    Reads at most *buffersize* items ahead of the consumer, so it runs over endless
    input in bounded memory. Nothing starts until the first ``next()``. Breaking out
    of the loop (or dropping the iterator) cancels the work still in flight.

    Args:
        ordered: yield in input order (default), or as results complete.
        buffersize: most items read from *iterable* and not yet yielded; default:
            two chunks per worker.
        timeout: seconds for the whole iteration, checked at each wait.
        Other arguments: as for :func:`parallel_map`.

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
        ordered=ordered,
        buffersize=buffersize,
    )
    total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
    return _flatten(_execute(fn, iter(iterable), total, options, lazy=True))


def _flatten(chunks: Iterator[list[R]]) -> Iterator[R]:
    for results in chunks:
        yield from results


def _execute(
    fn: Callable[[Any], Any],
    items: Iterator[Any],
    total: Optional[int],
    options: Options,
    *,
    lazy: bool,
) -> Iterator[list[Any]]:
    """Yield lists of results in order (or completion order) for the whole input."""
    deadline = Deadline(options.timeout) if options.timeout is not None else None
    reporter = make_reporter(options.progress, total)
    try:
        reason = _serial_reason(options)
        if reason is not None:
            logger.debug("running serially in the caller: %s", reason)
            _initialize_caller(options)
            yield from run_serially(
                fn, items, 0, deadline, reporter and reporter.update, 1 if lazy else 0
            )
            return
        yield from _execute_parallel(fn, items, total, options, deadline, reporter, lazy=lazy)
    finally:
        if reporter is not None:
            reporter.close()


def _execute_parallel(
    fn: Callable[[Any], Any],
    items: Iterator[Any],
    total: Optional[int],
    options: Options,
    deadline: Optional[Deadline],
    reporter: Any,
    *,
    lazy: bool,
) -> Iterator[list[Any]]:
    on_done = reporter and reporter.update
    pool = _acquire_pool(options)
    try:
        done, item_seconds, session, submitted = 0, None, None, []
        if options.serial_fallback:
            early = EarlyDispatch(lambda: _open_session(fn, options, pool), items)
            first = _probe(fn, items, options, pool, deadline, on_done, early)
            yield first.results
            done, item_seconds = len(first.results), first.item_seconds()
            session, submitted = early.session, early.submitted
            if submitted:
                logger.debug("handed out %d item(s) while the first one ran", len(submitted))
                done = early.next_index
            elif first.exhausted:
                return
            elif not _worth_going_parallel(first, total, options, pool):
                yield from run_serially(fn, items, done, deadline, on_done, 1 if lazy else 0)
                return
        if session is None:
            session = _open_session(fn, options, pool)
        remaining = None if total is None else total - done
        next_size: Callable[[Optional[int]], int] = (
            (lambda _: options.chunksize)  # type: ignore[misc,return-value]
            if options.chunksize
            else partial(_sized, workers=options.workers, item_seconds=item_seconds)
        )
        buffersize = options.buffersize or (
            default_buffersize(options.workers, next_size(None)) if lazy else sys.maxsize
        )
        logger.debug(
            "going parallel: backend=%s workers=%d chunksize=%s buffersize=%d",
            _backend_name(options),
            options.workers,
            options.chunksize or "auto",
            buffersize,
        )
        yield from run_chunks(
            session,
            iter_chunks(items, done, remaining, next_size),
            ordered=options.ordered,
            buffersize=buffersize,
            deadline=deadline,
            on_done=on_done,
            submitted=submitted,
        )
    finally:
        if pool is not None:
            from ._backends._process import release_pool

            release_pool(pool)


def _sized(remaining: Optional[int], *, workers: int, item_seconds: Optional[float]) -> int:
    return chunk_size(remaining, workers, item_seconds)


def _serial_reason(options: Options) -> Optional[str]:
    if options.backend == "serial":
        return 'backend="serial"'
    if inside_worker():
        return "called inside a parmap worker (nested calls run serially)"
    if options.workers == 1 and options.serial_fallback:
        return "workers=1"
    return None


def _initialize_caller(options: Options) -> None:
    if options.initializer is not None:
        options.initializer(*options.initargs)


def _acquire_pool(options: Options) -> Optional[ProcessPool]:
    if options.backend != "process":
        return None
    from ._backends._process import acquire_pool
    from ._serialization import dumps_initializer

    init_payload = None
    if options.initializer is not None:
        init_payload = dumps_initializer(options.initializer, options.initargs)
    assert options.start_method is not None
    return acquire_pool(options.workers, options.start_method, init_payload)


def _probe(
    fn: Callable[[Any], Any],
    items: Iterator[Any],
    options: Options,
    pool: Optional[ProcessPool],
    deadline: Optional[Deadline],
    on_done: Optional[Callable[[int], None]],
    early: EarlyDispatch,
) -> Probe:
    _initialize_caller(options)
    budget = max(MIN_PROBE_SECONDS, _start_seconds(options, pool))
    first_item: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    if pool is not None:
        first_item = partial(early.armed, budget, 1)
    result = probe(
        fn, items, budget, deadline, on_done, first_item, lambda: early.session is not None
    )
    if early.error is not None:
        if early.session is not None:
            early.session.cancel()
        raise early.error
    return result


def _worth_going_parallel(
    first: Probe, total: Optional[int], options: Options, pool: Optional[ProcessPool]
) -> bool:
    done = len(first.results)
    # Unknown length: assume as much again is coming (what has been seen so far).
    remaining = done if total is None else total - done
    name = _backend_name(options)
    costs = Costs(
        start=_start_seconds(options, pool),
        per_chunk=CHUNK_SECONDS.get(name, CHUNK_SECONDS["executor"]),
        per_item=0.0 if name == "thread" else transfer_seconds(first.last_items, first.results[-len(first.last_items) :]),
    )
    gil_seconds = first.cpu_seconds / done if name == "thread" else 0.0
    decision = parallel_pays_off(
        first.item_seconds(), remaining, options.workers, costs, gil_seconds=gil_seconds
    )
    logger.debug(
        "probe ran %d item(s) in %.2f ms (%.3g s each); %d left; parallel %s",
        done,
        first.seconds * 1000,
        first.item_seconds(),
        remaining,
        "pays off" if decision else "would not pay off: staying serial",
    )
    return decision


def _start_seconds(options: Options, pool: Optional[ProcessPool]) -> float:
    if pool is not None:
        assert options.start_method is not None
        return WARM_START_SECONDS if pool.started else START_SECONDS[options.start_method]
    return THREAD_START_SECONDS if options.backend == "thread" else 0.0


def _open_session(
    fn: Callable[[Any], Any], options: Options, pool: Optional[ProcessPool]
) -> Session:
    if pool is not None:
        from ._backends._process import ProcessSession
        from ._serialization import dumps_callable

        return ProcessSession(pool, dumps_callable(fn))
    from ._backends._executor import executor_session, thread_session

    if options.backend == "thread":
        return thread_session(fn, options.workers, options.initializer, options.initargs)
    assert not isinstance(options.backend, str)
    return executor_session(options.backend, fn, options.workers)


def _backend_name(options: Options) -> str:
    return options.backend if isinstance(options.backend, str) else "executor"


def shutdown() -> None:
    """Stop the worker processes kept warm between calls.

    They are started again by the next call that needs them. Also runs at interpreter
    exit, so calling it is only needed to free the processes earlier.

    .. versionadded:: 0.1
    """
    if "parmap._backends._process" in sys.modules:
        from ._backends._process import shutdown as shutdown_pool

        shutdown_pool()
