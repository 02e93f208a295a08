"""Pure arithmetic of the schedule: chunk sizes and whether going parallel pays.

Imports nothing from ``multiprocessing``, so every rule here is unit-tested in
microseconds and shared by all backends.

Chunk sizes follow guided self-scheduling: each chunk is a fraction of the work that
is left, so early chunks are large (little overhead) and the last ones small (workers
finish together even when item costs are skewed). When the per-item time is known
from the serial probe, chunks stay above what keeps per-chunk overhead small, except
that no chunk takes more than an even share of the items left.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

#: Chunks handed out per worker over the remaining work; 4 is ``Pool.map``'s factor.
GUIDE_FACTOR = 4
#: A stream's chunks before they reach the floor: a share of as much again as was read,
#: for this many per worker. Fewer than GUIDE_FACTOR: the chunks grow by a quarter of
#: what was read each (2 workers), so 16 items become 10 ms of work in half as many.
STREAM_GUIDE_FACTOR = 2
#: A chunk should run at least this long, so a ~0.1 ms round trip stays below ~1 %.
MIN_CHUNK_SECONDS = 0.01
#: ... except items that wait, on threads: there the CPUs are idle, the round trip
#: (0.05 ms) costs them little, and what counts is that the waits overlap.
WAITING_CHUNK_SECONDS = 0.001
#: ... and at most this long, so results stream back and the tail stays short.
MAX_CHUNK_SECONDS = 0.5
#: Chunk size when nothing is known about the input length or the item cost.
DEFAULT_STREAM_CHUNKSIZE = 16
#: Parallel must beat serial by this factor before the work is handed out.
PAYOFF_MARGIN = 1.15


class Costs(NamedTuple):
    """What going parallel costs on top of the work itself (seconds)."""

    start: float  # starting workers (0 for a warm pool) and sending fn
    per_chunk: float  # one round trip caller -> worker -> caller
    per_item: float  # pickling an item and its result, both ways


def chunk_size(
    remaining: Optional[int],
    workers: int,
    item_seconds: Optional[float],
    seen: Optional[int] = None,
    *,
    least_seconds: float = MIN_CHUNK_SECONDS,
) -> int:
    """Items in the next chunk, given what is left and what one item costs; *seen* items
    of the input were read before this chunk (None: as if very many); a chunk runs at
    least *least_seconds* where the items allow.

    >>> chunk_size(1000, 2, None)
    125
    >>> chunk_size(1000, 2, 0.1)  # heavy items: the guided share, at most 0.5 s
    5
    >>> chunk_size(None, 2, 0.000_001)  # a stream of cheap items: 10 ms worth
    10000
    >>> chunk_size(None, 2, 0.000_001, seen=16_000)  # ... that may end soon
    4000
    >>> chunk_size(None, 2, 0.000_001, seen=0)  # ... a stream just begun
    16
    >>> chunk_size(None, 32, None, seen=1)  # a stream of unknown cost on 32 threads
    1
    """
    floor, ceiling = 1, None
    if item_seconds is not None and item_seconds > 0:
        floor = max(1, math.ceil(least_seconds / item_seconds))
        ceiling = max(1, int(MAX_CHUNK_SECONDS / item_seconds))
    if remaining is None:
        size = floor if item_seconds else DEFAULT_STREAM_CHUNKSIZE
        if seen is not None:
            # A stream may end soon: a share of as much again as was read (the verdict's
            # guess), growing to the size above. One floor-sized chunk held all 14,000
            # items left of a 30,000-item stream of 0.5 us items, for one worker (1.6x
            # map's time); 16-item chunks held 200 waits of 10 ms on 13 of 32 threads
            # (2.2x ThreadPoolExecutor's time).
            share = math.ceil(seen / (STREAM_GUIDE_FACTOR * workers))
            # With the cost known, never under the default: 16-item chunks, timed, then
            # cut to a share of the few items read so far, would shrink.
            least = DEFAULT_STREAM_CHUNKSIZE if item_seconds else 1
            size = min(size, max(least, share))
    else:
        size = max(floor, math.ceil(remaining / (GUIDE_FACTOR * workers)))
        # Never more than an even share of what is left: near the end, a floor-sized
        # chunk would leave the other workers idle while one works on.
        size = min(size, math.ceil(remaining / workers))
    if ceiling is not None:
        size = min(size, max(ceiling, 1))
    return max(1, size)


def parallel_pays_off(
    item_seconds: float,
    remaining: int,
    workers: int,
    costs: Costs,
    *,
    gil_seconds: float = 0.0,
) -> bool:
    """Whether *remaining* items finish clearly sooner in parallel than in the caller.

    The caller pickles every item and unpickles every result, so it can never go
    faster than ``per_item`` per item, however many workers there are. Threads share
    the GIL, so the CPU-bound part of an item (*gil_seconds*) does not overlap.

    >>> costs = Costs(start=0.02, per_chunk=0.0002, per_item=0.000_002)
    >>> parallel_pays_off(0.000_000_05, 1_000_000, 2, costs)  # trivial items
    False
    >>> parallel_pays_off(0.19, 19, 2, costs)  # the origin example
    True
    """
    if remaining <= 0 or workers <= 1:
        return False
    parallel = parallel_seconds(item_seconds, remaining, workers, costs, gil_seconds=gil_seconds)
    return parallel * PAYOFF_MARGIN < remaining * item_seconds


def parallel_seconds(
    item_seconds: float,
    remaining: int,
    workers: int,
    costs: Costs,
    *,
    gil_seconds: float = 0.0,
) -> float:
    """Estimated seconds for *remaining* items on *workers* workers, start included."""
    chunks = max(1, min(remaining, GUIDE_FACTOR * workers))
    per_worker = remaining * max((item_seconds + costs.per_item) / workers, gil_seconds)
    caller = remaining * costs.per_item
    return costs.start + max(per_worker, caller) + chunks * costs.per_chunk / workers


def default_buffersize(workers: int, chunksize: int) -> int:
    """Items read ahead of the consumer: two chunks per worker, room to reorder."""
    return 2 * workers * chunksize
