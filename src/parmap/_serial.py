"""Running ``fn`` in the caller: the serial backend, the serial fallback and its probe.

The probe runs the first items in the caller in doubling batches until the input ends
or they have taken *budget* seconds. What it measures (seconds per item, CPU share, waits,
transfer cost) decides whether the rest goes to workers. Batches go through
``list.extend(map(fn, batch))``, as fast as the builtin ``map``; ``extend`` keeps the
results produced before an exception, so the failing item's index is known for free.
"""

from __future__ import annotations

import contextlib
import math
import time
from itertools import islice
from typing import Any, Callable, ContextManager, Iterator, NamedTuple, Optional

from ._callables import entry_code
from ._errors import add_note, fn_stopped_error, item_note
from ._scheduler import Deadline

#: The protocol of the pickles that price a sample (``pickle.HIGHEST_PROTOCOL``, which
#: ``_pickle`` does not export; 5 on every Python parmap supports).
PRICING_PROTOCOL = 5
#: Items pickled to estimate what sending one item and its result costs ...
TRANSFER_SAMPLE = 64
#: ... stopping early where one more would take the sample past this long.
TRANSFER_SAMPLE_SECONDS = 0.000_5
#: Moving a pickled byte through a pipe to a worker process (or back), on top of
#: pickling it: 0.6 ms per MB on Linux (benchmarks/payload_transfer.py) ...
PIPE_SECONDS_PER_BYTE = 0.6e-9
#: ... and pickling and unpickling a byte of a large item (its copies into and out of
#: the pickle): 0.4 ms per MB. Kept for the bytes that now cross without those copies
#: (_frames.py): the caller writes a chunk to one worker at a time while the others
#: wait, and 1 MB arrays sent to workers took as long as if each cost 0.93-1.15 ms more
#: (docs/performance.md).
PICKLE_SECONDS_PER_BYTE = 0.4e-9
#: Small items are priced from this many first pairs, and from the whole sample only
#: where that fits in ``TRANSFER_SAMPLE_SECONDS`` too.
FIRST_SMALL_SAMPLE = 8
#: Items whose pickle is smaller than this are sampled together, as one list ...
SMALL_ITEM_BYTES = 4096
#: ... larger ones are priced per byte, from at most this many: their sizes tell.
LARGE_TRANSFER_SAMPLE = 16
#: Largest batch run in the caller between two looks at the deadline, the progress
#: report and a lazy consumer: small enough to hold, large enough to cost nothing ...
SERIAL_BATCH = 1024
#: ... and batches stop growing once one takes this long.
SERIAL_BATCH_SECONDS = 0.005
#: A probe whose CPU time is at least this share of its clock time had its CPU: its
#: waits are not counted (the clock's time and the CPU's hardly differ).
FULL_CPU_SHARE = 0.9


class Probe(NamedTuple):
    """What the caller learned by running the first items itself."""

    results: list[Any]
    seconds: float
    cpu_seconds: float
    exhausted: bool
    sample: list[Any]  # the first items run (at most TRANSFER_SAMPLE)
    #: Times the caller's thread stopped to wait (blocked) during the probe, counted
    #: where its CPU time fell short of the clock's; None where the platform does not
    #: count them per thread, or the caller had its CPU throughout.
    waits: Optional[int] = None

    def work_seconds(self) -> float:
        """What the items cost: the clock's time, or the CPU time where the caller never
        waited. Then any time the clock has beyond the CPU's went to other processes (or
        the hypervisor) that held the CPU; fn's items cost what they computed."""
        if self.waits == 0:
            return min(self.seconds, self.cpu_seconds)
        return self.seconds

    def item_seconds(self) -> float:
        return self.work_seconds() / max(1, len(self.results))

    def transfer_seconds(self) -> Optional[float]:
        """Seconds to pickle and unpickle one item and its result (a sample's average);
        None where the sample does not pickle with plain pickle."""
        return transfer_seconds(self.sample, self.results[: len(self.sample)])


def probe(
    fn: Callable[[Any], Any],
    items: Iterator[Any],
    *,
    budget: float,
    deadline: Optional[Deadline],
    on_done: Optional[Callable[[int], None]],
    first_item: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
    stop: Callable[[Probe], bool] = lambda found: False,
    start: int = 0,
    limit: Optional[int] = None,
    first_batch: int = 1,
) -> Probe:
    """Run items in the caller until *items* ends or its items have taken *budget*
    seconds (``Probe.work_seconds``).

    *start* is the index of the first item (for error notes); at most *limit* items
    are read. The first item runs inside ``first_item()``; the probe ends early once
    ``stop(probe_so_far)`` says so. Batches start at *first_batch* items and double, but
    never beyond what the time per item measured so far says fits in the rest of the
    budget.
    """
    results: list[Any] = []
    sample: list[Any] = []  # the first items, kept to price sending one
    size = first_batch
    began, began_cpu = time.perf_counter(), time.thread_time()
    began_waits = voluntary_switches()
    while True:
        if limit is not None:
            size = max(1, min(size, limit - len(results)))
        before = len(results)
        if len(sample) < TRANSFER_SAMPLE:
            batch = list(islice(items, size))
            sample.extend(batch[: TRANSFER_SAMPLE - len(sample)])
            with first_item() if not results else contextlib.nullcontext():
                extend_serially_over(results, fn, batch, start)
        else:
            _run_batch(results, fn, items, size, start)
        ended, ended_cpu = time.perf_counter(), time.thread_time()
        ran = len(results) - before
        if on_done is not None and ran:
            on_done(ran)
        elapsed = ended - began
        exhausted = ran < size
        cpu = ended_cpu - began_cpu
        found = Probe(results, elapsed, cpu, exhausted, sample)
        if cpu < FULL_CPU_SHARE * elapsed:  # waits, or other processes' turns: which?
            found = found._replace(waits=waits_since(began_waits))
        # The budget is spent on items, not on other processes' turns on the CPU: a
        # pause must not end the probe after one item that then prices all the rest.
        spent = found.work_seconds()
        full = limit is not None and len(results) >= limit
        if exhausted or spent >= budget or full or stop(found):
            return found
        if deadline is not None:
            deadline.left()
        # What the probe did between batches is not the items' time: the progress report,
        # and stop(), which prices the sample (the first time, in a fresh interpreter,
        # with an import) and may take longer than a batch of cheap items.
        began += time.perf_counter() - ended
        began_cpu += time.thread_time() - ended_cpu
        fits = (budget - spent) * len(results) / spent if spent > 0 else size * 2
        size = max(1, min(size * 2, math.ceil(fits)))


def _thread_wait_counter() -> Optional[Callable[[], int]]:
    """What reads the calling thread's waits so far, or None where the platform does
    not count them per thread (Linux does: getrusage(RUSAGE_THREAD))."""
    try:
        import resource

        who = resource.RUSAGE_THREAD
    except (ImportError, AttributeError):  # no resource module, or no per-thread usage
        return None
    return lambda: resource.getrusage(who).ru_nvcsw


#: Made with parmap's import: loading ``resource`` takes 0.15-0.2 ms, which in the first
#: call's probe was a third of what a first call of 8 items costs.
_count_waits = _thread_wait_counter()


def voluntary_switches() -> Optional[int]:
    """Times the calling thread has blocked (waited) so far, or None where the platform
    does not count them per thread (about a microsecond). A thread that lost its CPU to
    another process was switched out involuntarily; only a wait counts here."""
    if _count_waits is None:
        return None
    try:
        return _count_waits()
    except OSError:
        return None


def waits_since(began: Optional[int]) -> Optional[int]:
    """Waits since ``voluntary_switches()`` returned *began*; None where not counted."""
    if began is None:
        return None
    now = voluntary_switches()
    return None if now is None else now - began


def run_serially(
    fn: Callable[[Any], Any],
    items: Iterator[Any],
    start: int,
    *,
    deadline: Optional[Deadline],
    on_done: Optional[Callable[[int], None]],
    lazy: bool = False,
    max_batch: int = SERIAL_BATCH,
) -> Iterator[list[Any]]:
    """The rest of the input in the caller, as lists of results.

    One list when nothing needs to happen between items (fastest). Otherwise batches:
    they start at one item and double, up to *max_batch*, while a batch takes less
    than ``SERIAL_BATCH_SECONDS``, so a lazy consumer waits no longer for a result than
    that, and the deadline and progress are looked after in between. A lazy consumer
    gets the results computed before an exception, then the exception.
    """
    if not lazy and deadline is None and on_done is None:
        results: list[Any] = []
        extend_serially_to_the_end(results, fn, items, start)
        yield results
        return
    size = 1
    while True:
        if deadline is not None:
            deadline.left()
        results = []
        began = time.perf_counter()
        try:
            ended = _run_batch(results, fn, items, size, start)
        except Exception:
            if lazy and results:
                yield results  # what map() would have yielded before raising
            raise
        ran = len(results)
        if ran:
            if on_done is not None:
                on_done(ran)
            yield results
        if ended:
            return
        if time.perf_counter() - began < SERIAL_BATCH_SECONDS:
            size = min(size * 2, max_batch)
        start += ran


def extend_serially(
    results: list[Any], fn: Callable[[Any], Any], items: Any, start: int = 0
) -> None:
    """``results.extend(map(fn, items))``; *start* is the index of ``results[0]``."""
    try:
        results.extend(map(fn, items))
    except Exception as exc:
        if not _raised_by_the_input(exc, fn):
            add_note(exc, item_note(start + len(results)))
        raise


def _raised_by_the_input(exc: BaseException, fn: Callable[[Any], Any]) -> bool:
    """Whether *exc*, caught around ``map(fn, items)``, came from reading *items* (a
    generator's frame, not fn's, is the first it left), so the note that fn raised it
    would point the user at the wrong code. Where the first frame is C code (a C
    iterator, a builtin fn, a call of fn with the wrong arguments), fn is assumed."""
    frames = exc.__traceback__
    first = frames.tb_next if frames is not None else None
    if first is None:
        return False
    code = entry_code(fn)
    return code is not None and first.tb_frame.f_code is not code


def _run_batch(
    results: list[Any], fn: Callable[[Any], Any], items: Iterator[Any], size: int, start: int
) -> bool:
    """Run the next *size* items, appending to *results* (whose first is the item at
    *start*); return whether the input ended.

    The first batches are small, and read into a list first: their length tells fn's
    StopIteration from the end of the input exactly, even on the input's last item.
    """
    if size <= TRANSFER_SAMPLE:
        batch = list(islice(items, size))
        extend_serially_over(results, fn, batch, start)
        return len(batch) < size
    before = len(results)
    extend_serially(results, fn, islice(items, size), start)  # no copy: as fast as map
    if len(results) - before < size:
        check_input_ended(items, start + len(results))
        return True
    return False


def extend_serially_over(
    results: list[Any], fn: Callable[[Any], Any], batch: list[Any], start: int = 0
) -> None:
    """``results.extend(map(fn, batch))`` for a list of items, whose length tells fn's
    StopIteration (map ends there quietly) from the end of the batch."""
    before = len(results)
    extend_serially(results, fn, batch, start)
    if len(results) - before < len(batch):
        raise stopped_by_fn(start + len(results))


def extend_serially_to_the_end(
    results: list[Any], fn: Callable[[Any], Any], items: Iterator[Any], start: int = 0
) -> None:
    """``results.extend(map(fn, items))`` for the whole rest of *items*."""
    extend_serially(results, fn, items, start)
    check_input_ended(items, start + len(results))


def check_input_ended(items: Iterator[Any], index: int) -> None:
    """After ``map(fn, ...)`` over *items* stopped early, at the item at *index*: raise if
    that was fn's StopIteration, which map swallows, and not the end of the input. Reads
    one more item, where there is one: the call fails anyway.

    Where fn stopped on the input's last item, nothing is left to tell: a call whose
    input has an exact length checks its count of results at the end instead.
    """
    if next(items, _END) is not _END:
        raise stopped_by_fn(index)


def stopped_by_fn(index: int) -> RuntimeError:
    """The error for fn's StopIteration at *index*, seen in the caller."""
    error = fn_stopped_error(index)
    add_note(error, item_note(index))
    return error


#: What ``next()`` returns once the input has ended.
_END = object()


def transfer_seconds(items: list[Any], results: list[Any]) -> Optional[float]:
    """Seconds to send one item to a worker process and its result back (a sample's
    average): pickling and unpickling both, and moving their bytes through the pipes.
    None where plain pickle fails on the sample (cloudpickle may still send it).

    Small items are pickled and unpickled for real, as one list, as chunks travel. Large
    ones are priced without copying them: a pickler that only counts what it would write
    walks each item and its result, and their bytes are priced per byte. A real pickle
    and unpickle of a megabyte costs the caller 0.4-1.3 ms (fresh memory for two
    copies), as much as the work of a call that may then run in the caller anyway.
    """
    pickler = _fast_pickle()
    sampled = min(len(items), len(results), TRANSFER_SAMPLE)
    try:
        walk_began = time.perf_counter()
        first_size = pickled_size(items[:1])  # also the large sample's first walk
        if first_size >= SMALL_ITEM_BYTES:
            return _large_transfer_seconds(
                items[:sampled], results[:sampled], walk_began, first_size
            )
        return _small_transfer_seconds(pickler, items[:sampled], results[:sampled])
    except Exception:
        return None


def _small_transfer_seconds(pickler: Any, items: list[Any], results: list[Any]) -> float:
    """Pickle and unpickle the first FIRST_SMALL_SAMPLE pairs, then the rest of the
    sample only where pricing it too stays within ``TRANSFER_SAMPLE_SECONDS``.

    64 rows of a numpy array cost 1 ms to pickle and unpickle both ways, a quarter of
    what ``map`` took over 2,000 such rows: the first 8 price them as well.
    """
    began = time.perf_counter()
    size = priced = 0
    ends = (FIRST_SMALL_SAMPLE, len(items)) if len(items) > FIRST_SMALL_SAMPLE else (len(items),)
    for end in ends:
        for values in (items[priced:end], results[priced:end]):
            data = pickler.dumps(values, PRICING_PROTOCOL)
            pickler.loads(data)
            size += len(data)
        priced = end
        pickling = time.perf_counter() - began
        if priced and pickling * len(items) / priced > TRANSFER_SAMPLE_SECONDS:
            break
    return (pickling + size * PIPE_SECONDS_PER_BYTE) / max(1, priced)


def _large_transfer_seconds(
    items: list[Any], results: list[Any], began: float, first_size: int
) -> float:
    """Price up to LARGE_TRANSFER_SAMPLE large items pair by pair, for at most
    ``TRANSFER_SAMPLE_SECONDS`` from *began*, when the first item's walk (*first_size*
    bytes) started.

    Walking an object costs about as much again to unpickle it; its bytes cost the
    copies into and out of the pickle, and the pipe.
    """
    count = 0
    size = first_size
    for index, result in enumerate(results[:LARGE_TRANSFER_SAMPLE]):
        if index:
            size += pickled_size(items[index])
        size += pickled_size(result)
        count += 1
        # Stop before a pair that would end past the limit, not after it.
        elapsed = time.perf_counter() - began
        if elapsed * (count + 1) / count > TRANSFER_SAMPLE_SECONDS:
            break
    walking = time.perf_counter() - began
    per_byte = PICKLE_SECONDS_PER_BYTE + PIPE_SECONDS_PER_BYTE
    return (2 * walking + size * per_byte) / max(1, count)


class _ByteCounter:
    """A file that keeps only the number of bytes written to it."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        written = memoryview(data).nbytes  # bytes, or a buffer a pickler hands over
        self.size += written
        return written


def pickled_size(value: Any) -> int:
    """Bytes in *value*'s pickle, found without making it.

    The pickler hands large bytes-like objects to the file as they are, so a megabyte
    of ``bytes`` is counted in microseconds, without a copy.
    """
    counter = _ByteCounter()
    _fast_pickle().Pickler(counter, PRICING_PROTOCOL).dump(value)
    return counter.size


def _fast_pickle() -> Any:
    """The C pickler, without ``pickle.py``: in a fresh interpreter the first price of
    a sample imported it, 2 ms (8 ms on a busy machine) inside the first call's probe,
    where ``_pickle`` alone takes 0.7 ms."""
    try:
        import _pickle
    except ImportError:  # an interpreter without the accelerator
        import pickle

        return pickle
    return _pickle
