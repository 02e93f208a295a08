"""Schedule arithmetic: chunk sizes, whether parallel pays off, buffers, chunks, deadlines."""

from __future__ import annotations

import math
import sys
import time
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parmap._backends import Chunk
from parmap._chunking import (
    DEFAULT_STREAM_CHUNKSIZE,
    GUIDE_FACTOR,
    MAX_CHUNK_SECONDS,
    MIN_CHUNK_SECONDS,
    PAYOFF_MARGIN,
    WAITING_CHUNK_SECONDS,
    Costs,
    chunk_size,
    default_buffersize,
    parallel_pays_off,
)
from parmap._scheduler import ChunkCutter, Deadline

remaining_counts = st.integers(min_value=1, max_value=10**7)
worker_counts = st.integers(min_value=1, max_value=256)
item_costs = st.none() | st.floats(min_value=1e-9, max_value=100.0)

#: Costs of a cold fork pool, as _api.py estimates them.
PROCESS_COSTS = Costs(start=0.02, per_chunk=0.000_2, per_item=0.000_002)
#: Costs of a thread pool: nothing is pickled.
THREAD_COSTS = Costs(start=0.002, per_chunk=0.000_05, per_item=0.0)


# --- chunk_size ----------------------------------------------------------------------


@given(remaining=st.none() | st.integers(0, 10**7), workers=worker_counts, item=item_costs)
def test_chunk_is_at_least_one(
    remaining: Optional[int], workers: int, item: Optional[float]
) -> None:
    """Every chunk has at least one item, whatever is known."""
    assert chunk_size(remaining, workers, item) >= 1


@given(remaining=remaining_counts, workers=worker_counts, item=item_costs)
def test_chunk_never_exceeds_remaining(remaining: int, workers: int, item: Optional[float]) -> None:
    """A chunk never asks for more items than are left."""
    assert chunk_size(remaining, workers, item) <= remaining


@given(remaining=remaining_counts, workers=worker_counts, item=st.floats(1e-9, 100.0))
def test_chunk_runs_at_least_min_chunk_seconds(remaining: int, workers: int, item: float) -> None:
    """With a known item cost, a chunk holds MIN_CHUNK_SECONDS of work, or an even share
    of what is left when that is less (so no worker is left idle at the end)."""
    floor = max(1, math.ceil(MIN_CHUNK_SECONDS / item))
    even_share = math.ceil(remaining / workers)
    assert chunk_size(remaining, workers, item) >= min(even_share, floor)


@given(remaining=remaining_counts, workers=worker_counts, item=item_costs)
def test_chunk_never_exceeds_an_even_share(
    remaining: int, workers: int, item: Optional[float]
) -> None:
    """No chunk takes more than its worker's even share of the items left."""
    assert chunk_size(remaining, workers, item) <= math.ceil(remaining / workers)


@given(remaining=st.none() | remaining_counts, workers=worker_counts, item=st.floats(1e-9, 100.0))
def test_chunk_runs_at_most_max_chunk_seconds(
    remaining: Optional[int], workers: int, item: float
) -> None:
    """A chunk holds at most MAX_CHUNK_SECONDS of work, except a single heavier item."""
    size = chunk_size(remaining, workers, item)
    assert size == 1 or size * item <= MAX_CHUNK_SECONDS


@given(
    smaller=st.integers(0, 10**6),
    extra=st.integers(0, 10**6),
    workers=worker_counts,
    item=item_costs,
)
def test_chunks_shrink_as_work_runs_out(
    smaller: int, extra: int, workers: int, item: Optional[float]
) -> None:
    """Guided scheduling: less work left never gives a larger chunk."""
    assert chunk_size(smaller, workers, item) <= chunk_size(smaller + extra, workers, item)


@pytest.mark.parametrize(("remaining", "workers"), [(1000, 2), (1000, 8), (37, 3), (10**6, 16)])
def test_unknown_cost_takes_a_guided_share(remaining: int, workers: int) -> None:
    """Without a measured cost, a chunk is remaining / (GUIDE_FACTOR * workers), rounded up."""
    expected = math.ceil(remaining / (GUIDE_FACTOR * workers))
    assert chunk_size(remaining, workers, None) == expected


def test_guided_chunks_reach_one_at_the_end() -> None:
    """The last chunks of a guided schedule are single items, so workers finish together."""
    assert chunk_size(1, 4, None) == 1
    assert chunk_size(GUIDE_FACTOR * 4, 4, None) == 1


@pytest.mark.parametrize("item", [2e-5, 1.25e-5])
def test_cheap_items_get_the_time_floor(item: float) -> None:
    """Cheap items are batched to MIN_CHUNK_SECONDS even when the guided share is smaller."""
    remaining, workers = 10**6, 1000  # guided share: 250 items; even share: 1000
    assert math.ceil(remaining / (GUIDE_FACTOR * workers)) == 250
    assert chunk_size(remaining, workers, item) == math.ceil(MIN_CHUNK_SECONDS / item)


def test_the_last_items_are_split_evenly() -> None:
    """64 items of 1 ms on 2 workers: the 10 ms floor gives way to an even split at the end."""
    assert chunk_size(62, 2, 0.001) == 10
    assert chunk_size(8, 2, 0.001) == 4
    assert chunk_size(1, 2, 0.001) == 1


@pytest.mark.parametrize("item", [0.01, 0.1, 0.25])
def test_heavy_items_get_the_time_ceiling(item: float) -> None:
    """Heavy items are capped at MAX_CHUNK_SECONDS even when the guided share is larger."""
    assert chunk_size(10**6, 1, item) == int(MAX_CHUNK_SECONDS / item)


@pytest.mark.parametrize("item", [0.6, 2.0, 100.0])
def test_items_heavier_than_the_ceiling_go_one_by_one(item: float) -> None:
    """An item heavier than MAX_CHUNK_SECONDS is a chunk of its own."""
    assert chunk_size(10**6, 1, item) == 1


def test_unknown_length_and_cost_uses_the_stream_default() -> None:
    """A stream of unknown cost is cut into DEFAULT_STREAM_CHUNKSIZE chunks."""
    assert chunk_size(None, 4, None) == DEFAULT_STREAM_CHUNKSIZE
    assert chunk_size(None, 4, 0.0) == DEFAULT_STREAM_CHUNKSIZE


@pytest.mark.parametrize("item", [1e-6, 1e-3, 0.02, 5.0])
def test_unknown_length_with_known_cost_uses_the_floor(item: float) -> None:
    """A stream of known cost gets MIN_CHUNK_SECONDS worth per chunk."""
    assert chunk_size(None, 4, item) == max(1, math.ceil(MIN_CHUNK_SECONDS / item))


@pytest.mark.parametrize("item", [1e-6, 1e-3])
def test_a_stream_gets_a_guided_share_of_what_was_read(item: float) -> None:
    """A stream may end soon: its chunks are a guided share of as much again as was read
    (by the caller's probe, and in chunks), growing with it to the floor, not one
    floor-sized chunk that takes all that is left for one worker."""
    floor = chunk_size(None, 2, item)
    assert chunk_size(None, 2, item, seen=800) == min(floor, 200)
    sizes = [chunk_size(None, 2, item, seen=seen) for seen in (0, 8, 800, 80_000, 8_000_000)]
    assert sizes == sorted(sizes), "growing with what was read"
    assert sizes[0] == min(floor, DEFAULT_STREAM_CHUNKSIZE), "never under the default"
    assert sizes[-1] == floor


def test_a_stream_of_unknown_cost_grows_to_the_default() -> None:
    """Of unknown cost (items handed to threads while the first waits), a stream's first
    chunks hold one item for each worker's share, so every thread takes an item at once."""
    sizes = [chunk_size(None, 32, None, seen=seen) for seen in (0, 1, 64, 65, 640, 10_000)]
    assert sizes == [1, 1, 1, 2, 10, DEFAULT_STREAM_CHUNKSIZE]


@given(remaining=st.integers(0, 20_000), workers=worker_counts, item=item_costs)
def test_successive_chunks_partition_the_input(
    remaining: int, workers: int, item: Optional[float]
) -> None:
    """Chunk sizes asked for in turn add up exactly to the input length, none overshooting."""
    left, sizes = remaining, []
    while left > 0:
        size = chunk_size(left, workers, item)
        assert 1 <= size <= left
        sizes.append(size)
        left -= size
    assert sum(sizes) == remaining
    assert len(sizes) <= remaining


@given(
    remaining=st.integers(0, 5_000),
    workers=worker_counts,
    item=item_costs,
    start=st.integers(0, 1000),
)
def test_chunks_cover_every_item_once_in_order(
    remaining: int, workers: int, item: Optional[float], start: int
) -> None:
    """A ChunkCutter cuts consecutive chunks whose starts index the items exactly."""
    items = list(range(start, start + remaining))

    def next_size(left: Optional[int], first: int) -> int:
        return chunk_size(left, workers, item, seen=first)

    chunks = every_chunk(ChunkCutter(iter(items), start, remaining, next_size))
    assert [x for chunk in chunks for x in chunk.items] == items
    for chunk in chunks:
        assert chunk.items[0] == chunk.start
        assert chunk.items
    assert all(len(c.items) >= 1 for c in chunks)


def test_items_that_wait_need_only_a_millisecond_a_chunk() -> None:
    """On threads, items seen waiting go in chunks of 1 ms, not 10: the CPUs are idle."""
    assert chunk_size(None, 32, 0.001, seen=200) == 10
    assert chunk_size(None, 32, 0.001, seen=200, least_seconds=WAITING_CHUNK_SECONDS) == 1
    assert chunk_size(None, 32, 0.000_1, seen=10**5, least_seconds=WAITING_CHUNK_SECONDS) == 10


def every_chunk(cut: ChunkCutter, room: int = sys.maxsize) -> list[Chunk]:
    return list(iter(lambda: cut(room), None))


def test_chunks_of_unknown_length_end_with_the_input() -> None:
    """With remaining=None, chunks follow next_size until the iterator runs dry."""
    chunks = every_chunk(ChunkCutter(iter(range(10)), 0, None, lambda remaining, start: 4))
    assert [(c.start, c.items) for c in chunks] == [
        (0, [0, 1, 2, 3]),
        (4, [4, 5, 6, 7]),
        (8, [8, 9]),
    ]


def test_chunks_fit_the_room_unless_their_size_is_fixed() -> None:
    """Automatic sizes give way to the room a user's buffersize leaves (a chunk of 16
    read with 8 items of room took parallel_imap 16 items past buffersize=8); the
    user's chunksize is kept whole, passing the buffer by less than a chunk."""
    automatic = ChunkCutter(iter(range(10)), 0, None, lambda remaining, start: 4)
    assert [len(c.items) for c in every_chunk(automatic, room=3)] == [3, 3, 3, 1]
    fixed = ChunkCutter(iter(range(10)), 0, None, lambda remaining, start: 4, fit_room=False)
    assert [len(c.items) for c in every_chunk(fixed, room=3)] == [4, 4, 2]
    no_room = ChunkCutter(iter(range(2)), 0, None, lambda remaining, start: 4)
    assert [len(c.items) for c in every_chunk(no_room, room=0)] == [1, 1], "one at least"


def test_chunks_see_the_remaining_count() -> None:
    """next_size sees what is left after each chunk (None when the length is unknown)."""
    seen: list[Optional[int]] = []

    def next_size(remaining: Optional[int], start: int) -> int:
        seen.append(remaining)
        return 3

    every_chunk(ChunkCutter(iter(range(7)), 0, 7, next_size))
    assert seen == [7, 4, 1, 0]


# --- parallel_pays_off ---------------------------------------------------------------


def test_trivial_items_stay_serial() -> None:
    """A million trivial items cost more to pickle than to compute: stay in the caller."""
    assert not parallel_pays_off(0.000_000_05, 1_000_000, 2, PROCESS_COSTS)


def test_origin_example_goes_parallel() -> None:
    """19 items of 0.19 s on 2 workers finish clearly sooner in parallel."""
    assert parallel_pays_off(0.19, 19, 2, PROCESS_COSTS)


@pytest.mark.parametrize("workers", [2, 4, 16, 64])
def test_heavy_items_go_parallel(workers: int) -> None:
    """Items of 10 ms or more, many of them, pay off on any number of workers."""
    assert parallel_pays_off(0.01, 1000, workers, PROCESS_COSTS)


@given(
    item=st.floats(0.0, 100.0),
    remaining=st.integers(-10, 10**6),
    gil=st.floats(0.0, 1.0),
)
def test_one_worker_never_pays_off(item: float, remaining: int, gil: float) -> None:
    """One worker cannot beat the caller, whatever the cost."""
    assert not parallel_pays_off(item, remaining, 1, PROCESS_COSTS, gil_seconds=gil)
    assert not parallel_pays_off(item, remaining, 0, PROCESS_COSTS, gil_seconds=gil)


@given(item=st.floats(0.0, 100.0), remaining=st.integers(-10, 0), workers=worker_counts)
def test_nothing_left_never_pays_off(item: float, remaining: int, workers: int) -> None:
    """With no items left there is nothing to hand out."""
    assert not parallel_pays_off(item, remaining, workers, PROCESS_COSTS)


def test_gil_bound_threads_do_not_pay_off() -> None:
    """Threads running pure-Python items (GIL time near item time) stay serial."""
    item = 0.01
    assert parallel_pays_off(item, 1000, 8, THREAD_COSTS, gil_seconds=0.0)
    assert not parallel_pays_off(item, 1000, 8, THREAD_COSTS, gil_seconds=item)
    assert not parallel_pays_off(item, 1000, 8, THREAD_COSTS, gil_seconds=item * 0.95)


def test_costly_transfer_keeps_it_serial() -> None:
    """When pickling an item costs more than computing it, the caller is the bottleneck."""
    item = 0.000_1
    cheap_transfer = Costs(start=0.02, per_chunk=0.000_2, per_item=0.000_001)
    costly_transfer = Costs(start=0.02, per_chunk=0.000_2, per_item=item * 2)
    assert parallel_pays_off(item, 100_000, 8, cheap_transfer)
    assert not parallel_pays_off(item, 100_000, 8, costly_transfer)


def test_start_cost_larger_than_the_work_keeps_it_serial() -> None:
    """Work shorter than starting workers stays in the caller."""
    spawn = Costs(start=0.3, per_chunk=0.000_2, per_item=0.000_002)
    assert not parallel_pays_off(0.01, 20, 8, spawn)


@given(
    item=st.floats(0.0, 10.0),
    remaining=st.integers(1, 10**5),
    workers=st.integers(2, 64),
    costs=st.builds(
        Costs,
        start=st.floats(0.0, 1.0),
        per_chunk=st.floats(0.0, 0.01),
        per_item=st.floats(0.0, 0.01),
    ),
)
def test_paying_off_means_beating_start_and_transfer(
    item: float, remaining: int, workers: int, costs: Costs
) -> None:
    """Going parallel is chosen only when serial time beats start-up and transfer by the margin."""
    if parallel_pays_off(item, remaining, workers, costs):
        serial = item * remaining
        assert serial > costs.start * PAYOFF_MARGIN
        assert serial > remaining * costs.per_item * PAYOFF_MARGIN


# --- default_buffersize --------------------------------------------------------------


@given(workers=worker_counts, chunksize=st.integers(1, 10**4))
def test_buffer_holds_two_chunks_per_worker(workers: int, chunksize: int) -> None:
    """The default read-ahead is two chunks for each worker."""
    size = default_buffersize(workers, chunksize)
    assert size == 2 * workers * chunksize
    assert size >= workers * chunksize  # every worker can be busy with a full chunk


# --- Deadline ------------------------------------------------------------------------


def test_deadline_reports_time_left() -> None:
    """A fresh deadline has at most its timeout left, and more than zero."""
    deadline = Deadline(1000.0)
    assert 0 < deadline.left() <= 1000.0


def test_expired_deadline_raises_timeout_error() -> None:
    """Once the end has passed, left() raises the builtin TimeoutError naming the timeout."""
    deadline = Deadline(0.25)
    deadline.end = time.monotonic() - 1.0
    with pytest.raises(TimeoutError, match=r"did not finish within timeout=0\.25 s"):
        deadline.left()
