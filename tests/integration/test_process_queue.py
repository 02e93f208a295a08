"""A busy worker process gets its next short chunk at once, queued in its pipe.

Only chunks whose message fits in the pipe's buffer wait there, so that sending one
never blocks the caller while the worker is blocked sending its answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parmap import parallel_map
from parmap._backends import Chunk
from parmap._backends._process import (
    QUEUED_MESSAGE_BYTES,
    PoolSettings,
    ProcessPool,
    ProcessSession,
)
from parmap._serialization import dumps_callable

from helpers import identity, square


@pytest.fixture
def one_worker() -> Iterator[ProcessPool]:
    pool = ProcessPool(PoolSettings(1, "fork", None, None))
    yield pool
    pool.shutdown()


def _session(pool: ProcessPool) -> ProcessSession:
    return ProcessSession(pool, dumps_callable(square))


def _results_of(session: ProcessSession, chunks: int) -> dict[int, list[int]]:
    finished: dict[int, list[int]] = {}
    while len(finished) < chunks:
        finished.update(session.wait(10))
    return finished


def test_a_short_chunk_waits_in_the_busy_workers_pipe(one_worker: ProcessPool) -> None:
    """Two chunks go to one worker before it answers either; both answers come back."""
    session = _session(one_worker)
    session.submit(Chunk(0, [1, 2], may_queue=True))
    assert session.has_capacity(), "a busy worker has room for one more"
    session.submit(Chunk(2, [3], may_queue=True))
    assert not session.has_capacity(), "two chunks are all a worker holds"
    assert [len(w.chunks) for w in one_worker.workers] == [2]
    assert _results_of(session, 2) == {0: [1, 4], 2: [9]}
    assert session.has_capacity()


def test_a_chunk_that_may_not_queue_waits_for_a_free_worker(one_worker: ProcessPool) -> None:
    """Near the end of the input a chunk goes to the next worker that is done."""
    session = _session(one_worker)
    session.submit(Chunk(0, [1], may_queue=True))
    session.submit(Chunk(1, [2], may_queue=False))
    assert not session.has_capacity()
    assert [len(w.chunks) for w in one_worker.workers] == [1], "held in the caller"
    assert _results_of(session, 2) == {0: [1], 1: [4]}


def test_a_chunk_too_big_for_the_pipe_is_not_queued(one_worker: ProcessPool) -> None:
    """A message larger than QUEUED_MESSAGE_BYTES is held until the worker is free."""
    session = _session(one_worker)
    big = list(range(QUEUED_MESSAGE_BYTES))  # pickles to more than that many bytes
    session.submit(Chunk(0, [1], may_queue=True))
    session.submit(Chunk(1, big, may_queue=True))
    assert [len(w.chunks) for w in one_worker.workers] == [1]
    finished = _results_of(session, 2)
    assert finished[1] == [x * x for x in big]


@pytest.mark.timeout(60)
def test_large_items_and_results_cross_both_ways_without_a_deadlock() -> None:
    """Items and results far larger than a pipe's buffer, many chunks per worker."""
    items = [bytes([i]) * 300_000 for i in range(40)]
    assert parallel_map(identity, items, 2, 1, serial_fallback=False) == items
