"""One call of parallel_map or parallel_imap, from checked options to results.

How a call runs (docs/design.md has the full picture):

1. Serial cases run ``fn`` in the caller: ``backend="serial"``, a call made inside a
   parmap worker (nested), or a single worker with serial fallback on.
2. With serial fallback on, the caller runs the first items itself for about as long
   as starting workers would take; if the first item runs longer than that, workers
   are started and given work meanwhile (``_early.py``; with threads, the first item
   simply runs on a thread). If the input ends, that was all. Otherwise the measured
   cost per item decides whether workers finish sooner.
3. The rest goes to the backend in chunks through the scheduler, in input order.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from functools import partial
from itertools import islice
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generator,
    Iterator,
    NamedTuple,
    Optional,
    cast,
)

from . import _fn_memory as fn_memory
from ._backends import Chunk, Session
from ._callables import pickled_by_name
from ._chunking import (
    MIN_CHUNK_SECONDS,
    WAITING_CHUNK_SECONDS,
    Costs,
    chunk_size,
    default_buffersize,
    parallel_pays_off,
    parallel_seconds,
)
from ._cpu import available_cpus
from ._early import MIN_ALARM_SECONDS, EarlyDispatch
from ._log import debug
from ._options import Options
from ._platform import (
    StartMethod,
    default_start_method,
    inside_daemonic_process,
    inside_worker,
)
from ._progress import ProgressReporter, make_reporter
from ._scheduler import ChunkCutter, Deadline, run_chunks
from ._serial import (
    SERIAL_BATCH,
    Probe,
    extend_serially_to_the_end,
    probe,
    run_serially,
    stopped_by_fn,
)
from ._surroundings import Surroundings
from ._surroundings import current as current_surroundings

if TYPE_CHECKING:
    from ._backends._executor import ExecutorSession, StartMark
    from ._backends._process import PoolSettings, ProcessPool, ProcessSession
    from ._backends._threads import ThreadSettings
    from ._recheck import ChunkClock

#: Seconds to start a cold pool, by start method, measured on Linux (2 workers):
#: forking is cheap; spawn boots a fresh interpreter per worker.
START_SECONDS = {"fork": 0.02, "forkserver": 0.1, "spawn": 0.3}
#: Seconds of per-call set-up with workers already running (sending fn) ...
WARM_START_SECONDS = 0.001
#: ... and for a thread pool of any size, which starts its threads on demand: the share
#: of the threads not kept running already (32 threads, each sleeping 1 ms: 4.8 ms
#: started, 2.7 ms kept).
THREAD_START_SECONDS = 0.002
#: How long the caller waits for the first item on a thread before it hands out the
#: rest: longer than a cheap item takes, short next to an I/O wait it would delay.
FIRST_THREAD_ITEM_WAIT = 0.000_5
#: ... unless the item is seen waiting sooner: still running this long after it started,
#: while the caller holds the GIL (so the item does not), it waits on I/O, a lock or C
#: code that releases the GIL, and the next items can wait beside it.
FIRST_THREAD_ITEM_WAITING = 0.000_1
#: One chunk's round trip: pipe to a process, a future to a thread or an executor.
CHUNK_SECONDS = {"process": 0.000_2, "thread": 0.000_05, "executor": 0.001}
#: The probe runs at least this long, so timer resolution does not decide.
MIN_PROBE_SECONDS = 0.001
#: Longer than a worker takes to answer a trivial item (a round trip is 0.1-0.2 ms).
ROUND_TRIP_SECONDS = 0.000_5
#: A known input is clearly worth workers once its remaining work per worker exceeds
#: this many times the start cost: then probing on only delays the workers.
CLEARLY_PARALLEL = 10
#: The probe stops early, for the caller, once items this many times as costly as
#: measured would still not pay for warm workers, however many of them there were.
CLEARLY_SERIAL = 2
#: Most items one probe round of parallel_imap reads (unless buffersize says otherwise),
#: so a lazy consumer never waits for, nor holds, more than this.
LAZY_PROBE_ITEMS = 1024
#: Imported only once a call may need worker processes ...
_WARM_MODULE = "parmap._backends._warm"
#: ... or worker threads.
_THREADS_MODULE = "parmap._backends._threads"
#: "A stream long enough that start-up costs vanish", for the cost model.
ENDLESS = 10**12
#: The verdict when the probe's CPU time is under BUSY_SHARE of its clock time: fn
#: waited, or the caller lost its CPU meanwhile; a short second probe tells which.
LOOK_AGAIN = "look again"
BUSY_SHARE = 0.5
#: The verdict on threads when the items computed in the probe and would pay off only if
#: their computing overlapped (code that releases the GIL): try some side by side.
SIDE_BY_SIDE = "side by side"
#: A verdict for the rest of the input where none is left.
FINISHED = "finished"
#: Each thread's chunk in that trial runs about this long, so that the threads' wake-ups
#: (0.1-0.2 ms) hardly count; items that hold the GIL take turns, and cost about what
#: they would in the caller.
SIDE_BY_SIDE_SECONDS = 0.01
#: ... for items of at least this long: shorter ones hand the GIL back and forth too
#: often to gain (200 SHA-256 digests of 64 KB, 58 us each, took as long on 2 threads as
#: in the caller), and a trial of trivial items costs a thread's slower loop over them.
SIDE_BY_SIDE_ITEM_SECONDS = 0.000_05
#: Items that ran side by side this many times faster than in turns release the GIL:
#: remembered, so fn's next calls go to threads without a trial.
OVERLAPPING = 1.25
#: ... timed by the process's CPU clock, where it ticks at least this finely (Linux and
#: macOS: 1 ns; Windows: 15.6 ms, too coarse for that).
PROCESS_CLOCK_RESOLUTION = 0.000_1

#: Seconds that warm workers would have saved the calls that ran in the caller because
#: starting workers did not pay for any one of them (see _cold_start_pays_over_calls).
_missed_savings = 0.0


class Handover(NamedTuple):
    """Where the serial phase leaves off when the rest goes to the backend."""

    session: Optional[Session]  # already opened by an early dispatch
    submitted: list[int]  # starts of the chunks that session already runs
    next_index: int  # index of the first item not yet read
    item_seconds: Optional[float]  # measured cost of one item
    ready: Optional[tuple[int, list[Any]]] = None  # (start, results) run in the caller
    # after the submitted chunks: they are yielded in their place
    assumed: bool = False  # item_seconds is an earlier call's: checked as chunks return
    waits: bool = False  # the first item waited (on a thread): chunks can be short


class Call:
    """Runs *fn* over *items* (*total* of them, if known) as *options* say."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        items: Iterator[Any],
        total: Optional[int],
        options: Options,
        *,
        lazy: bool,
        exact_total: bool = False,
    ) -> None:
        self.fn = fn
        self.items = items
        self.total = total
        # The input yields exactly *total* items (a list, a range...), not only says so.
        self.exact_total = exact_total
        self.options = options
        self.lazy = lazy  # a consumer waits: hand results over in small batches
        self.deadline: Optional[Deadline] = None
        self.reporter: Optional[ProgressReporter] = None
        self.pool: Optional[ProcessPool] = None
        self._settings: Optional[PoolSettings] = None
        self._fn_bytes: Optional[bytes] = None
        # The caller's directory, sys.path, environment and recursion limit for the
        # workers, taken before fn's first item runs here (None: when a session opens).
        self._surroundings: Optional[Surroundings] = None
        self._release_pool: Callable[[ProcessPool], None] = lambda pool: None
        self._looked_again = False  # _look_again ran: a call takes one second look
        self._tried_side_by_side = False  # _side_by_side ran: once a call
        # (sample, its length, seconds to send one item): a probe's price, shared by its
        # early look for a serial verdict and the verdict itself.
        self._priced: Optional[tuple[list[Any], int, Optional[float]]] = None
        # The sample of the probe whose items _clearly_serial has judged: once a probe, as
        # each look prices the sample, which grows with the batches.
        self._judged_sample: Optional[list[Any]] = None

    def run(self) -> Generator[list[Any], None, None]:
        """Lists of results, in input order (or completion order when not ordered).

        The timeout bounds the whole call, or for a lazy consumer each wait for the
        next results (counted again whenever the consumer asks for more).
        """
        if self.options.timeout is not None:
            self.deadline = Deadline(self.options.timeout, per_wait=self.lazy)
        self.reporter = make_reporter(self.options.progress, self.total)
        produced = 0
        try:
            for results in self._results():
                produced += len(results)
                yield results
                if self.lazy and self.deadline is not None:
                    self.deadline.restart()
            if self.exact_total and self.total is not None and produced < self.total:
                # fn's StopIteration on the last item, which ended map in the caller:
                # nothing was left in the input to tell it from the end.
                raise stopped_by_fn(produced)
        finally:
            if self.reporter is not None:
                self.reporter.close()

    def _results(self) -> Iterator[list[Any]]:
        reason = self._serial_reason()
        if reason is None:
            yield from self._run_with_backend()
            return
        debug("running serially in the caller: %s", reason)
        self._initialize_caller()
        yield from self._run_serially(0)

    @property
    def backend_name(self) -> str:
        backend = self.options.backend
        return backend if isinstance(backend, str) else "executor"

    def _on_done(self) -> Optional[Callable[[int], None]]:
        return self.reporter.update if self.reporter is not None else None

    def _serial_reason(self) -> Optional[str]:
        if self.options.backend == "serial":
            return 'backend="serial"'
        if inside_worker():
            return "called inside a parmap worker (nested calls run serially)"
        if self.options.backend == "process" and inside_daemonic_process():
            return "called inside a daemonic process, which may not start processes"
        if self.options.workers == 1 and self.options.serial_fallback:
            return "workers=1"
        return None

    def _initialize_caller(self) -> None:
        if self.options.initializer is not None:
            self.options.initializer(*self.options.initargs)

    def _run_serially(self, start: int) -> Iterator[list[Any]]:
        return run_serially(
            self.fn,
            self.items,
            start,
            deadline=self.deadline,
            on_done=self._on_done(),
            lazy=self.lazy,
            max_batch=self.options.buffersize or SERIAL_BATCH,
        )

    # -- with a backend ---------------------------------------------------------------

    def _run_with_backend(self) -> Iterator[list[Any]]:
        if self.options.backend == "process" and self.options.initializer is not None:
            # Pickle both before the caller runs the initializer: what it creates in
            # the caller's globals (a connection, a session) must not travel along.
            self._pool_settings()
            self._fn_payload()
        try:
            handover: Optional[Handover] = Handover(None, [], 0, None)
            if self.options.serial_fallback:
                handover = yield from self._serial_phase()
            if handover is not None:
                yield from self._parallel_phase(handover)
        finally:
            if self.pool is not None:
                self._release_pool(self.pool)

    def _acquire_pool(self) -> Optional[ProcessPool]:
        """Check out a process pool (process backend only), at most once per call.

        Deferred until workers may be needed, so that a call that stays in the caller
        never imports ``multiprocessing``. The release function is bound here: a
        generator abandoned at interpreter exit cannot import anything in ``finally``.
        """
        if self.options.backend != "process" or self.pool is not None:
            return self.pool
        from ._backends._warm import acquire_pool, release_pool

        self.pool = acquire_pool(self._pool_settings())
        self._release_pool = release_pool
        return self.pool

    def _pool_settings(self) -> PoolSettings:
        if self._settings is None:
            from ._backends._process import PoolSettings

            options = self.options
            init_payload = None
            if options.initializer is not None:
                from ._serialization import dumps_initializer

                init_payload = dumps_initializer(options.initializer, options.initargs)
            self._settings = PoolSettings(
                options.workers,
                self._start_method(),
                init_payload,
                options.max_tasks_per_child,
                options.idle_timeout,
                options.native_threads,
            )
        return self._settings

    def _fn_payload(self) -> bytes:
        if self._fn_bytes is None:
            from ._serialization import dumps_callable

            self._fn_bytes = dumps_callable(self.fn)
        return self._fn_bytes

    def _open_session(self, *, launch: bool = True) -> Session:
        """The call's session on its backend; *launch* (process backend): start missing or
        stale workers first."""
        pool = self._acquire_pool()
        if pool is not None:
            from ._backends._process import ProcessSession

            return ProcessSession(
                pool,
                self._fn_payload(),
                self._on_done(),
                launch=launch,
                surroundings=self._surroundings,
            )
        options = self.options
        if options.backend == "thread":
            return self._thread_session()
        from ._backends._executor import executor_session

        assert not isinstance(options.backend, str)
        return executor_session(options.backend, self.fn, options.workers, self._on_done())

    def _open_early_session(self, mid_item: bool) -> Optional[Session]:
        """A session for work handed out early; None if that would mean forking, or
        pickling fn or the initializer by value, while fn's first item runs in the
        caller (*mid_item*, in a signal handler).

        Either copies the caller as it is at that moment: a module fn is importing half
        imported, a lock fn holds held, a cache or setting it fills half filled. A
        forked worker would then fail (``partially initialized module``) or wait for
        ever on that lock; a fn sent by value would take the half-filled globals with
        it (``KeyError`` for the setting not made yet). So under fork, work goes out
        early only to workers already running; and a fn that pickles by value goes out
        only once the item is over, though under spawn and forkserver the workers start
        booting meanwhile.
        """
        if not mid_item or self.backend_name != "process":
            return self._open_session()
        fork = self._start_method() == "fork"
        pool = self._pool_to_use_mid_item(fork)
        if pool is None:
            return None
        if self._fn_bytes is None and not pickled_by_name(self.fn):
            if not fork:
                pool.start(self._surroundings)  # fresh interpreters: they boot meanwhile
            return None
        if fork and pool.needs_launch():
            return None
        return self._open_session(launch=not fork)

    def _pool_to_use_mid_item(self, fork: bool) -> Optional[ProcessPool]:
        """The call's pool, checked out in the middle of fn's first item; None where that
        would pickle the initializer by value, or where under *fork* no warm pool fits."""
        initializer = self.options.initializer
        if self._settings is None and initializer is not None and not pickled_by_name(initializer):
            return None  # its pickle, part of the pool's settings, could copy half a state
        if fork and not self._warm_pool_waits():  # nor stop another pool here, which takes time
            return None
        return self._acquire_pool()

    def _thread_session(self) -> ExecutorSession:
        from ._backends._executor import thread_session

        return thread_session(self.fn, self._thread_settings(), self._on_done())

    def _thread_settings(self) -> ThreadSettings:
        from ._backends._threads import ThreadSettings

        options = self.options
        return ThreadSettings(
            options.workers, options.initializer, options.initargs, options.idle_timeout
        )

    def _parallel_phase(self, handover: Handover) -> Iterator[list[Any]]:
        options = self.options
        session = handover.session or self._open_session()
        clock = self._chunk_clock(session, handover)
        if clock is not None:
            session = clock
        done = handover.next_index
        remaining = None if self.total is None else self.total - done
        next_size = self._chunk_sizer(handover, clock)
        buffersize = self._buffer_limit(next_size, remaining)
        debug(
            "going parallel: backend=%s%s workers=%d chunksize=%s buffersize=%d",
            self.backend_name,
            f" start_method={self.pool.start_method}" if self.pool is not None else "",
            options.workers,
            options.chunksize or "auto",
            buffersize(),
        )
        yield from run_chunks(
            session,
            ChunkCutter(self.items, done, remaining, next_size, fit_room=self._fit_room()),
            ordered=options.ordered,
            buffersize=buffersize,
            deadline=self.deadline,
            submitted=handover.submitted,
            ready=handover.ready,
        )
        if clock is not None and clock.cheaper:
            yield from self._time_the_rest(clock.next_index)

    def _chunk_clock(self, session: Session, handover: Handover) -> Optional[ChunkClock]:
        """A clock on the chunks, where automatic sizes need what it tells: checking an
        item time assumed from fn's last call (``CostCheck``), or learning one where
        nothing measured it (``serial_fallback=False``, on any backend; threads, once the
        first item was seen waiting)."""
        if self.options.chunksize is not None:
            return None
        if handover.assumed and handover.item_seconds:
            from ._recheck import CostCheck

            return CostCheck(session, handover.item_seconds, handover.next_index)
        if handover.item_seconds is None:
            from ._recheck import ChunkClock

            return ChunkClock(session, handover.next_index)
        return None

    def _chunk_sizer(
        self, handover: Handover, clock: Optional[ChunkClock]
    ) -> Callable[[Optional[int], int], int]:
        """What picks each chunk's size, from the items left and its first item's index."""
        if self.options.chunksize is not None:
            fixed = self.options.chunksize
            return lambda remaining, start: fixed
        workers = self.options.workers
        least = WAITING_CHUNK_SECONDS if handover.waits else MIN_CHUNK_SECONDS

        def sized(remaining: Optional[int], start: int) -> int:
            item_seconds = handover.item_seconds
            if item_seconds is None and clock is not None:
                item_seconds = clock.item_seconds
            return chunk_size(remaining, workers, item_seconds, seen=start, least_seconds=least)

        return sized if clock is None else clock.sizes(sized)

    def _buffer_limit(
        self, next_size: Callable[[Optional[int], int], int], remaining: Optional[int]
    ) -> Callable[[], int]:
        """Most items read and not yet yielded: the user's buffersize; else, for a lazy
        consumer, two chunks per worker as chunks are sized now (timed chunks grow),
        room for a long stream's chunks and not only its first, smaller ones; no limit
        for parallel_map, which holds the whole input anyway."""
        if self.options.buffersize is not None:
            limit = self.options.buffersize
            return lambda: limit
        if not self.lazy:
            return lambda: sys.maxsize
        workers = self.options.workers
        # Sized as far into a stream as can be: its chunks once they are fully grown.
        return lambda: default_buffersize(workers, next_size(remaining, sys.maxsize))

    def _fit_room(self) -> bool:
        """Whether chunks are cut to the room left under the buffer: under a buffersize
        the user gave, where the chunk sizes are automatic. A chunksize the user gave is
        kept whole; the default buffer is two chunks a worker, and may be passed by less
        than one (cutting it would only make more, smaller chunks)."""
        return self.options.chunksize is None and self.options.buffersize is not None

    def _time_the_rest(self, done: int) -> Iterator[list[Any]]:
        """The items turned out far cheaper than fn's last call said: forget what it
        said, and probe the rest in the caller, as for a new fn."""
        fn_memory.forget_item_seconds(self.fn)
        if self.total is not None and done >= self.total:
            return
        debug("a chunk came back far sooner than fn's last item time says: probing again")
        early = EarlyDispatch(self._open_early_session, self.items, self.options.workers - 1)
        handover = yield from self._probe_rounds(early, done)
        if handover is not None:
            yield from self._parallel_phase(handover)

    # -- the serial phase -------------------------------------------------------------

    def _serial_phase(self) -> Generator[list[Any], None, Optional[Handover]]:
        """Run items in the caller while that is the faster choice; None if it did all.

        Known length: one probe, then a final decision. Unknown length (a stream):
        probe again with a doubled budget while a long enough stream could still pay
        off; the ski-rental rule: keep paying the small cost until it adds up to the
        large one.
        """
        self._initialize_caller()
        done = 0
        if self.options.backend == "thread":
            handover, done = yield from self._first_item_on_a_thread()
            if handover is not None or done == self.total:
                return handover
        early = EarlyDispatch(self._open_early_session, self.items, self.options.workers - 1)
        handover = None
        try:
            seen = self._remembered_costly_item()
            if seen is not None:
                handover = self._hand_out_at_once(early, seen)
                done = early.next_index
            if handover is None:
                handover = yield from self._probe_rounds(early, done)
        finally:
            if early.session is not None and handover is None:
                early.session.cancel()  # an error, or the consumer left: stop that work
        return handover

    def _first_item_on_a_thread(
        self,
    ) -> Generator[list[Any], None, tuple[Optional[Handover], int]]:
        """Run the first item on a worker thread, waiting for it half a millisecond at most.

        A thread starts in a fraction of a millisecond and shares the caller's memory, so
        this costs little, and a first item that waits on I/O then overlaps with the next
        ones instead of delaying them. Where fn's first item was seen waiting last time,
        every thread gets an item at once, and the first is watched beside them; where
        that took the whole input, nothing is left to decide, and the items are collected
        as they finish. Returns a handover if the first item is still running or waited,
        else how many items ran.
        """
        from ._backends._executor import StartMark

        count = self.options.workers if fn_memory.seen_waiting(self.fn) else 1
        limit = min(count, self.options.buffersize or count)
        batch = list(islice(self.items, limit))
        if not batch:
            return None, 0
        session = self._thread_session()
        mark = StartMark(self.fn)
        try:
            session.submit(Chunk(0, batch[:1]), mark)
            for index in range(1, len(batch)):
                session.submit(Chunk(index, batch[index : index + 1]))
            whole_input_out = count > 1 and (len(batch) < limit or self.total == len(batch))
            answered = not whole_input_out and _first_thread_item_answers(mark)
            results = self._collect(session, len(batch)) if answered else None
        except BaseException:
            session.cancel()
            raise
        if results is not None:
            fn_memory.remember_waiting(self.fn, False)
            yield results
            return None, len(batch)
        handover = Handover(session, list(range(len(batch))), len(batch), None, waits=True)
        if not whole_input_out:
            fn_memory.remember_waiting(self.fn, True)
            debug("the first item on a thread is still running, or waited: going parallel")
            return handover, len(batch)
        yield from self._parallel_phase(handover)
        fn_memory.remember_waiting(self.fn, mark.waited(FIRST_THREAD_ITEM_WAITING))
        return None, len(batch)

    def _probe_rounds(
        self, early: EarlyDispatch, done: int
    ) -> Generator[list[Any], None, Optional[Handover]]:
        start_seconds = self._start_seconds()
        budget = max(MIN_PROBE_SECONDS, start_seconds)
        verdict = ""
        first_batch = 1
        while True:
            if verdict == LOOK_AGAIN:
                found = self._look_again(early, done)
            else:
                found = self._probe(early, done, budget, first_batch, start_seconds)
            if early.error is not None:
                raise early.error
            if early.immediate:
                return (yield from self._after_handing_out(early, found))
            found = early.not_counting_the_handler(found)
            if early.session is not None:
                return (yield from self._after_the_timer_handed_out(early, found))
            if found.exhausted:
                debug(
                    "ran all %d item(s) in the caller (%.2f ms): the input ended first",
                    done + len(found.results),
                    found.seconds * 1000,
                )
                self._count_missed_savings(found, done + len(found.results))
                yield found.results
                return None
            verdict, done = yield from self._act_on_the_verdict(found, done)
            if verdict == "parallel":
                return Handover(None, [], done, found.item_seconds())
            if verdict == "serial":
                yield from self._run_serially(done)
                return None
            if verdict == FINISHED:
                return None
            if verdict != LOOK_AGAIN:
                budget *= 2
                # The items' cost is known by now: the next probe need not find it
                # again from one item (11 batches a round of 1,024 cheap items).
                first_batch = max(1, len(found.results) // 2)

    def _probe(
        self,
        early: EarlyDispatch,
        done: int,
        budget: float,
        first_batch: int,
        start_seconds: float,
    ) -> Probe:
        """One probe round from item *done*: the first item of a call on worker processes
        runs with the timer armed, which hands work out if the item is long."""
        first_item: Callable[[], contextlib.AbstractContextManager[None]]
        first_item = contextlib.nullcontext
        if self.options.backend == "process" and done == 0 and self.total != 1:
            # What the timer's handler tells the workers, taken before fn runs.
            self._surroundings = current_surroundings()
            # A known fn keeps the timer's tick floor; a new one gets its budget.
            shortest = MIN_ALARM_SECONDS if fn_memory.timed_before(self.fn) else 0.0
            first_item = partial(early.armed, budget, 1, shortest)
        return probe(
            self.fn,
            self.items,
            budget=budget,
            deadline=self.deadline,
            on_done=self._on_done(),
            first_item=first_item,
            stop=partial(self._probe_can_stop, early, done, start_seconds),
            start=done,
            limit=self._probe_limit(),
            first_batch=first_batch,
        )

    def _after_the_timer_handed_out(
        self, early: EarlyDispatch, found: Probe
    ) -> Generator[list[Any], None, Handover]:
        """The first item ran long: the timer handed the next ones to workers meanwhile."""
        item_seconds = found.item_seconds()
        # The next call with this fn hands out work at once instead of leaving a worker
        # idle while the caller times an item again.
        remaining = ENDLESS if self.total is None else self.total - early.next_index
        costs = self._costs(self._send_seconds(found))
        self._remember_if_clear(item_seconds, remaining, costs)
        yield found.results
        debug("handed out %d item(s) while the first ran", len(early.submitted))
        return Handover(early.session, early.submitted, early.next_index, item_seconds)

    def _act_on_the_verdict(
        self, found: Probe, done: int
    ) -> Generator[list[Any], None, tuple[str, int]]:
        """Hand over the probe's results, and the verdict on the rest (FINISHED where
        nothing is left) with the index of the next item."""
        verdict = self._verdict(found, done + len(found.results))
        if verdict == SIDE_BY_SIDE:
            return (yield from self._side_by_side(found, done))
        if verdict == "serial" and self._can_finish_in_one_go():
            extend_serially_to_the_end(found.results, self.fn, self.items, done)  # as map
            yield found.results
            return FINISHED, done + len(found.results)
        yield found.results
        return verdict, done + len(found.results)

    def _remember_if_clear(self, item_seconds: float, remaining: int, costs: Costs) -> None:
        """Remember fn's item time for its next call (which then hands out work at once,
        unprobed) only if warm workers would pay off even were the items half as costly.

        A call that went parallel by a small margin may have been wrong: 1 MB payloads
        whose sending costs about what their work does went parallel once when the
        first item read high, and every later call then ran in workers, 3 times as
        slow as map (the chunk check catches only items far cheaper than assumed).
        Not remembered, the next call probes again, for about a millisecond.
        """
        warm = costs._replace(start=WARM_START_SECONDS)
        if parallel_pays_off(item_seconds / 2, remaining, self.options.workers, warm):
            fn_memory.remember_item_seconds(self.fn, item_seconds)
        else:
            fn_memory.forget_item_seconds(self.fn)

    def _costs(self, per_item: float) -> Costs:
        """The cost model's constants for this call, with *per_item* to send an item."""
        per_chunk = CHUNK_SECONDS.get(self.backend_name, CHUNK_SECONDS["executor"])
        return Costs(start=self._start_seconds(), per_chunk=per_chunk, per_item=per_item)

    def _remembered_costly_item(self) -> Optional[float]:
        """The item time an earlier call with this fn measured, if it says this call is
        worth the warm pool (which is waiting); else None."""
        if self.options.backend != "process" or self.total is None or self.total < 2:
            return None
        seen = fn_memory.item_seconds(self.fn)
        if seen is None or not self._warm_pool_waits():
            return None
        return seen if self._clearly_parallel(self.total, seen, WARM_START_SECONDS) else None

    def _hand_out_at_once(self, early: EarlyDispatch, seen: float) -> Optional[Handover]:
        """Give every worker an item now, and go parallel if no worker answers within
        a quarter of *seen*, the item time fn's last probe measured (at least
        ROUND_TRIP_SECONDS; a quarter, as that probe shared the CPUs with busy workers
        and may read high).

        Then the items cost about what they did, and a probe in the caller would only
        take a CPU from a worker. An early answer means cheaper items: None, and the
        caller probes the next items beside the workers; fn's item time is forgotten, so
        that its next call probes first too, instead of paying a round trip again (10
        items of 20 us took 0.6 ms a call that way, map 0.2 ms).
        """
        early.hand_out_now()
        if early.error is not None:
            raise early.error
        if early.session is None or not early.submitted:
            return None
        session = cast("ProcessSession", early.session)  # work goes out early only there
        patience = max(ROUND_TRIP_SECONDS, seen / 4)
        if self.deadline is not None:
            patience = min(patience, self.deadline.left())
        # Counted from the last send: the worker it wakes may take the caller's CPU for a
        # scheduler tick (4 ms) as the item is sent, and an answer that came in that time
        # was not early. Nor is one already there when the caller looks only after the
        # end: it may be early or not, and going parallel is the guess whose mistake is
        # cheap, since the chunks' check (CostCheck) catches cheap items within a chunk.
        ends = early.last_send_at + patience
        if time.perf_counter() < ends:
            answered = session.poll(ends - time.perf_counter())
            # Selectors round short timeouts up to a millisecond: the clock decides.
            if answered and time.perf_counter() < ends:
                fn_memory.forget_item_seconds(self.fn)
                return None
        debug(
            "handed out %d item(s) at once; still running after %.2f ms",
            len(early.submitted),
            patience * 1000,
        )
        return Handover(early.session, early.submitted, early.next_index, seen, assumed=True)

    def _after_handing_out(
        self, early: EarlyDispatch, found: Probe
    ) -> Generator[list[Any], None, Optional[Handover]]:
        """Workers took the first items at once and the caller probed the next ones:
        go parallel, or (cheap items after all) collect those items and go on serially."""
        ran = found.results
        next_index = early.next_index + len(ran)
        verdict = "" if found.exhausted else self._verdict(found, next_index)
        if verdict == LOOK_AGAIN:
            found = self._look_again(early, next_index)
            ran = ran + found.results
            next_index += len(found.results)
            verdict = "" if found.exhausted else self._verdict(found, next_index)
        if verdict == "parallel":
            debug("handed out %d item(s) at once", len(early.submitted))
            return Handover(
                early.session,
                early.submitted,
                next_index,
                found.item_seconds(),
                ready=(early.next_index, ran),
            )
        results = self._collect_early(early)
        results.extend(ran)
        if not found.exhausted and self._can_finish_in_one_go():
            # One list, as fast as map: parallel_map would copy a second one onto it.
            extend_serially_to_the_end(results, self.fn, self.items, next_index - len(results))
            yield results
            return None
        yield results
        if not found.exhausted:
            yield from self._run_serially(next_index)
        return None

    def _look_again(self, early: EarlyDispatch, start: int) -> Probe:
        """A second, short probe from item *start*, for a verdict the first could not
        settle (LOOK_AGAIN); once per call."""
        self._looked_again = True
        return probe(
            self.fn,
            self.items,
            budget=MIN_PROBE_SECONDS,
            deadline=self.deadline,
            on_done=self._on_done(),
            stop=partial(self._probe_can_stop, early, start, self._start_seconds()),
            start=start,
            limit=self._probe_limit(),
        )

    def _probe_limit(self) -> Optional[int]:
        """Most items one probe round reads: a lazy consumer waits for no more."""
        return (self.options.buffersize or LAZY_PROBE_ITEMS) if self.lazy else None

    def _collect_early(self, early: EarlyDispatch) -> list[Any]:
        """The results of the items handed out early, in order, once they are all back."""
        if early.session is None:  # the workers could not be reached: nothing went out
            return []
        return self._collect(early.session, len(early.submitted))

    def _collect(self, session: Session, chunks: int) -> list[Any]:
        """The results of the *chunks* chunks the session runs, in order, once they are
        all back; then the session is closed."""
        finished: dict[int, list[Any]] = {}
        while len(finished) < chunks:
            timeout = self.deadline.left() if self.deadline is not None else None
            finished.update(session.wait(timeout))
        session.close()
        return [result for start in sorted(finished) for result in finished[start]]

    def _probe_can_stop(
        self, early: EarlyDispatch, done: int, start_seconds: float, found: Probe
    ) -> bool:
        """Whether the probe has seen enough: workers already took items, or the rest
        of a long input is so much work that starting workers is a small part of it."""
        if early.session is not None and not early.immediate:
            return True  # the timer handed out work: the first item was long
        if found.work_seconds() < MIN_PROBE_SECONDS:
            return False
        if found.sample is not self._judged_sample:
            self._judged_sample = found.sample
            if self._clearly_serial(found):
                return True
        if self.total is None:
            return False
        if _missed_savings > 0.0 and self._start_pays_with_missed_savings(found):
            return True  # the verdict starts the workers (_cold_start_pays_over_calls)
        remaining = self.total - done - len(found.results)
        return self._clearly_parallel(remaining, found.item_seconds(), start_seconds)

    def _clearly_serial(self, found: Probe) -> bool:
        """Whether no input could ever pay for workers, were its items even twice as
        costly as the probe measured and the workers warm: then probing on only slows
        the caller (a probe's batches cost a million trivial items 1 ms over map)."""
        costs = self._costs(self._send_seconds(found))._replace(start=0.0)
        return not self._pays_off(found, ENDLESS, costs, item_scale=CLEARLY_SERIAL)

    def _clearly_parallel(self, items: int, item_seconds: float, start_seconds: float) -> bool:
        """Whether *items* are more work per worker than CLEARLY_PARALLEL starts."""
        work_per_worker = items * item_seconds / self.options.workers
        return work_per_worker > CLEARLY_PARALLEL * start_seconds

    def _can_finish_in_one_go(self) -> bool:
        """Nothing needs to happen between items: no consumer, deadline or progress."""
        return not self.lazy and self.deadline is None and self.reporter is None

    def _verdict(self, found: Probe, done: int) -> str:
        """ "parallel", "serial" (for the rest of the input), "probe again" (a stream) or
        LOOK_AGAIN (a short second probe: the first may have lost its CPU)."""
        costs = self._costs(self._send_seconds(found))

        def pays_off(remaining: int) -> bool:
            return self._pays_off(found, remaining, costs)

        # Unknown length: assume as much again is coming as has been seen so far.
        remaining = done if self.total is None else self.total - done
        if pays_off(remaining):
            verdict = LOOK_AGAIN if self._may_have_lost_the_cpu(found) else "parallel"
        elif self.total is None and pays_off(ENDLESS):
            verdict = "probe again"
        elif self._overlap_would_pay(found, ENDLESS if self.total is None else remaining, costs):
            verdict = SIDE_BY_SIDE
        elif self._cold_start_pays_over_calls(found, remaining, costs):
            verdict = "parallel"
        else:
            verdict = "serial"
        if verdict == "parallel":
            self._check_the_sample_travels(found, done - len(found.results))
            self._remember_if_clear(found.item_seconds(), remaining, costs)
        elif verdict == "serial":
            fn_memory.forget_item_seconds(self.fn)
        debug(
            "probe: %d item(s) in %.2f ms (%.2f ms of CPU, %s wait(s); %.3g s each, "
            "%.3g s to send); %s left: %s",
            len(found.results),
            found.seconds * 1000,
            found.cpu_seconds * 1000,
            "?" if found.waits is None else found.waits,
            found.item_seconds(),
            costs.per_item,
            "unknown" if self.total is None else remaining,
            verdict,
        )
        return verdict

    def _pays_off(
        self,
        found: Probe,
        remaining: int,
        costs: Costs,
        *,
        item_scale: float = 1.0,
        overlap: Optional[float] = None,
    ) -> bool:
        """Whether *remaining* items priced as *found* measured them (times
        *item_scale*) finish clearly sooner on the backend. Threads share the GIL: the
        CPU time of an item does not overlap with another's, unless fn's items were seen
        to (*overlap*, else as remembered), and then up to the CPUs at most."""
        gil_seconds = 0.0
        if self.backend_name == "thread":
            overlap = overlap or fn_memory.overlap(self.fn) or 1.0
            gil_seconds = item_scale * found.cpu_seconds / len(found.results) / overlap
        return parallel_pays_off(
            item_scale * found.item_seconds(),
            remaining,
            self.options.workers,
            costs,
            gil_seconds=gil_seconds,
        )

    def _overlap_would_pay(self, found: Probe, remaining: int, costs: Costs) -> bool:
        """Whether threads would pay off had fn's items released the GIL, which nothing
        has measured yet (and the process's CPU clock is fine enough to)."""
        if self.backend_name != "thread" or self._tried_side_by_side:
            return False
        if (self._probe_limit() or 2) < 2:
            return False  # a lazy consumer lets the call read one item ahead: not two
        if found.item_seconds() < SIDE_BY_SIDE_ITEM_SECONDS:
            return False
        if fn_memory.overlap(self.fn) is not None:
            return False
        if time.get_clock_info("process_time").resolution > PROCESS_CLOCK_RESOLUTION:
            return False  # Windows: 15.6 ms steps
        overlap = float(self._side_by_side_threads())
        return overlap > 1 and self._pays_off(found, remaining, costs, overlap=overlap)

    def _side_by_side_threads(self) -> int:
        """Threads whose items can compute at once, were the GIL no limit: one per CPU."""
        return min(self.options.workers, available_cpus())

    def _side_by_side(self, found: Probe, done: int) -> Generator[list[Any], None, tuple[str, int]]:
        """The probe's results, then a chunk of the next items on each of as many threads
        as CPUs, run side by side: the process's CPU time over the clock's meanwhile is
        how far fn's items overlap (remembered for its next calls); then the verdict
        again, and the index of the next item. Items that hold the GIL take turns, so
        this costs about what running them in the caller would."""
        yield found.results
        done += len(found.results)
        threads = self._side_by_side_threads()
        size = max(1, math.ceil(SIDE_BY_SIDE_SECONDS / max(found.item_seconds(), 1e-9)))
        limit = self._probe_limit()  # what a lazy consumer lets the call read ahead
        if limit is not None:
            threads = min(threads, limit)
            size = max(1, min(size, limit // threads))
        chunks: list[Chunk] = []
        for _ in range(threads):
            batch = list(islice(self.items, size))
            if batch:
                chunks.append(Chunk(done + len(chunks) * size, batch))
        self._tried_side_by_side = True
        if not chunks:
            return FINISHED, done
        session = self._thread_session()
        began, began_cpu = time.perf_counter(), time.process_time()
        try:
            for chunk in chunks:
                session.submit(chunk)
            results = self._collect(session, len(chunks))
        except BaseException:
            session.cancel()
            raise
        overlap = (time.process_time() - began_cpu) / (time.perf_counter() - began)
        if overlap >= OVERLAPPING:
            fn_memory.remember_overlap(self.fn, min(overlap, len(chunks)))
        debug("%d chunk(s) side by side on threads: overlap %.2f", len(chunks), overlap)
        yield results
        done += len(results)
        if len(chunks[-1].items) < size:
            return FINISHED, done
        return self._verdict(found, done), done

    def _send_seconds(self, found: Probe) -> float:
        """Seconds to send one item and its result (0 for threads, which share memory),
        priced once per sample as it stands: the probe's early look and the verdict share
        it unless the sample grew in between."""
        if self.backend_name == "thread":
            return 0.0
        priced = self._priced
        if priced is None or priced[0] is not found.sample or priced[1] != len(found.sample):
            priced = (found.sample, len(found.sample), found.transfer_seconds())
            self._priced = priced
        return 0.0 if priced[2] is None else priced[2]

    def _check_the_sample_travels(self, found: Probe, start: int) -> None:
        """Before work goes to worker processes: where plain pickle failed on the probe's
        sample (whose first item is the one at *start*), raise now if cloudpickle cannot
        send it either. Else the error came only once the workers' first chunks were
        done, minutes in with costly items, for results that could never come back."""
        priced = self._priced
        if self.options.backend != "process" or priced is None or priced[2] is not None:
            return
        from ._serialization import check_sample_travels

        check_sample_travels(found.sample, found.results[: len(found.sample)], start)

    def _may_have_lost_the_cpu(self, found: Probe) -> bool:
        """Whether the probe's CPU time is well short of its clock time and this call
        has not looked again yet: then its verdict "parallel" waits for a second look.

        Either fn waits (I/O, a sleep, a lock), which only the clock sees, or another
        process took the caller's CPU while the probe ran: a pause of a few ms makes a
        millisecond of trivial items (or one item) look many times as costly, and the
        call would hand out work that then runs slower than map. Where the caller is
        known not to have waited, its items were priced by their CPU time already.
        Elsewhere a second look tells the two apart, as a wait comes back and a
        preemption rarely does. Threads are left out: their cost model counts CPU time
        already.
        """
        if self._looked_again or self.backend_name == "thread" or found.waits == 0:
            return False
        return found.cpu_seconds < BUSY_SHARE * found.seconds

    def _cold_start_pays_over_calls(self, found: Probe, remaining: int, costs: Costs) -> bool:
        """Ski rental across calls: start workers once the time that warm workers would
        have saved, this call and earlier ones, adds up to what starting them costs.

        A program that maps small inputs again and again (50 calls of 64 items of 1 ms)
        never pays off the start in one call, yet gains from it over all of them.
        """
        global _missed_savings
        if not self._start_is_costly(costs):
            return False
        # The whole input counts, not just what is left of it: warm workers would have
        # taken the call from its first millisecond.
        items = self.total if self.total is not None else remaining
        _missed_savings += self._warm_savings(found, items, costs)
        if _missed_savings < costs.start:
            return False
        _missed_savings = 0.0
        debug("warm workers would have saved more than their start by now: starting them")
        return True

    def _count_missed_savings(self, found: Probe, items: int) -> None:
        """A call whose whole input ran in the probe adds what warm workers would have
        saved it too. Under spawn and forkserver the probe lasts as long as a start
        (0.3 s, 0.1 s), so 64 items of 1 ms always end inside it: uncounted, 50 such
        calls all ran in the caller, none faster than map."""
        global _missed_savings
        if self.options.backend != "process" or found.work_seconds() < MIN_PROBE_SECONDS:
            return  # too little work for workers to save any (8 trivial items: cheap)
        costs = self._costs(self._send_seconds(found))
        if self._start_is_costly(costs):
            _missed_savings += self._warm_savings(found, items, costs)

    def _start_pays_with_missed_savings(self, found: Probe) -> bool:
        """Whether what earlier calls missed plus what warm workers would save this one
        reach the cost of starting them: then the probe can stop, as its verdict will
        be to start them."""
        assert self.total is not None
        costs = self._costs(self._send_seconds(found))
        if not self._start_is_costly(costs):
            return False
        return _missed_savings + self._warm_savings(found, self.total, costs) >= costs.start

    def _start_is_costly(self, costs: Costs) -> bool:
        """Whether this call would have to start worker processes (no warm pool fits)."""
        return self.options.backend == "process" and costs.start > WARM_START_SECONDS

    def _warm_savings(self, found: Probe, items: int, costs: Costs) -> float:
        """Seconds warm workers would save a call of *items* items priced as *found*
        measured them, probing only a millisecond; 0 if they would not pay off."""
        warm = costs._replace(start=WARM_START_SECONDS)
        item_seconds, workers = found.item_seconds(), self.options.workers
        if not parallel_pays_off(item_seconds, items, workers, warm):
            return 0.0
        return items * item_seconds - parallel_seconds(item_seconds, items, workers, warm)

    def _warm_pool_waits(self) -> bool:
        """Whether started workers with this call's settings are there to check out."""
        if self.pool is not None:
            return self.pool.started
        if _WARM_MODULE not in sys.modules:  # no pool was ever started
            return False
        from ._backends._warm import warm_pool_fits

        return warm_pool_fits(self._pool_settings())

    def _start_method(self) -> StartMethod:
        return self.options.start_method or default_start_method()

    def _start_seconds(self) -> float:
        if self.options.backend == "process":
            if self._warm_pool_waits():
                return WARM_START_SECONDS
            return START_SECONDS[self._start_method()]
        if self.options.backend == "thread":
            return THREAD_START_SECONDS * self._threads_to_start() / self.options.workers
        return 0.0

    def _threads_to_start(self) -> int:
        """Threads this call would start: those not kept running for it already (the
        first item, run on a thread, has imported the module that keeps them)."""
        if _THREADS_MODULE not in sys.modules:
            return self.options.workers
        from ._backends._threads import threads_ready

        return max(0, self.options.workers - threads_ready(self._thread_settings()))


def _first_thread_item_answers(mark: StartMark) -> bool:
    """Whether the first item is done before it is seen waiting or the wait runs out,
    and did not wait itself: then its result is an answer, not a reason to go parallel."""
    ends = time.perf_counter() + FIRST_THREAD_ITEM_WAIT
    timeout = FIRST_THREAD_ITEM_WAITING
    while True:
        if mark.done.wait(timeout):
            break
        now = time.perf_counter()
        # Seen waiting once it has run that long; until it starts, look again as often.
        since = now if mark.started is None else mark.started
        decide_at = min(ends, since + FIRST_THREAD_ITEM_WAITING)
        if now >= decide_at:
            # It may have ended while this thread took the GIL back.
            if not mark.done.is_set():
                return False
            break
        timeout = decide_at - now
    # Done, maybe only just: an item that waited 0.1 ms ends about when the caller looks.
    return not mark.waited(FIRST_THREAD_ITEM_WAITING)
