"""Timing chunks: the clock that learns an item time where nothing measured one, and the
check that stops a hand-out once chunks come back far sooner than assumed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional

import pytest

from parmap import _recheck
from parmap._backends import Chunk
from parmap._recheck import ChunkClock, CostCheck


class InstantSession:
    """Runs each chunk at once (squares), so it is back as soon as the caller waits."""

    def __init__(self) -> None:
        self.ready: list[tuple[int, list[Any]]] = []
        self.closed = self.cancelled = False

    def has_capacity(self) -> bool:
        return True

    def submit(self, chunk: Chunk) -> None:
        self.ready.append((chunk.start, [x * x for x in chunk.items]))

    def wait(self, timeout: Optional[float]) -> list[tuple[int, list[Any]]]:
        finished, self.ready = self.ready, []
        return finished

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        self.closed = True


def test_a_chunk_back_far_sooner_than_assumed_stops_the_chunks() -> None:
    check = CostCheck(InstantSession(), item_seconds=1.0, next_index=0)  # 10 items: 10 s, assumed
    sizes = check.sizes(lambda remaining, start: 10)
    check.submit(Chunk(0, list(range(10))))
    assert sizes(100, 0) == 10, "nothing is known before a chunk is back"
    assert check.wait(None) == [(0, [x * x for x in range(10)])]
    assert check.cheaper
    assert sizes(90, 10) == 0, "no more chunks"
    assert check.next_index == 10, "where the caller takes over"


def test_chunks_as_slow_as_assumed_go_on() -> None:
    check = CostCheck(InstantSession(), item_seconds=1e-12, next_index=0)  # sooner is impossible
    sizes = check.sizes(lambda remaining, start: 10)
    for start in (0, 10):
        check.submit(Chunk(start, list(range(start, start + 10))))
        check.wait(None)
    assert not check.cheaper
    assert sizes(80, 20) == 10
    assert check.next_index == 20


def test_chunks_handed_out_before_the_check_are_not_judged() -> None:
    """They were sent before the check began: how long they took is unknown to it."""
    session = InstantSession()
    session.submit(Chunk(0, [1]))  # an item handed out at once, before the check
    check = CostCheck(session, item_seconds=1.0, next_index=1)
    assert check.wait(None) == [(0, [1])]
    assert not check.cheaper


def test_close_and_cancel_reach_the_session() -> None:
    session = InstantSession()
    CostCheck(session, 1.0, 0).close()
    CostCheck(session, 1.0, 0).cancel()
    assert session.closed
    assert session.cancelled


def test_a_clock_learns_the_chunks_time_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """Round trips included, each chunk weighed by its items and half as much as the next
    one: 16 items back in 2 ms read as 125 us each, and 1,600 more in 8 ms bring it near
    their 5 us. A small chunk after them, its round trip swelling its time per item, moves
    it little; chunks that take longer per item move it up, so sizes follow the items."""
    now = [0.0]
    monkeypatch.setattr(_recheck, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    clock = ChunkClock(InstantSession())
    start = 0

    def chunk_back(items: int, seconds: float) -> float:
        nonlocal start
        clock.submit(Chunk(start, list(range(items))))
        start += items
        now[0] += seconds
        clock.wait(None)
        assert clock.item_seconds is not None
        return clock.item_seconds

    assert clock.item_seconds is None, "nothing is known before a chunk is back"
    assert chunk_back(16, 0.002) == pytest.approx(0.002 / 16)
    assert chunk_back(1_600, 0.008) == pytest.approx(0.009 / 1_608)
    assert chunk_back(16, 0.002) < 2 * 0.009 / 1_608, "a small chunk moves it little"
    costlier = [chunk_back(1_600, 0.08) for _ in range(4)]
    assert costlier == sorted(costlier)
    assert costlier[-1] > 0.9 * 0.08 / 1_600, "near the costlier items' 50 us"
    assert not clock.cheaper, "only a check against an assumed time stops chunks"
    assert clock.next_index == start
