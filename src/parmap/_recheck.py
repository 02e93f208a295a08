"""Timing chunks from their submission to their answer: to learn what an item costs
where nothing measured it, and to check an item time that an earlier call measured.

With ``serial_fallback=False`` no item runs in the caller first, so chunk sizes start
from what is known of the input alone (16 items of a stream), and a stream of cheap items
took 5 to 6 times as long as ``map`` in 16-item chunks. ``ChunkClock`` gives the sizes the
chunks' time per item instead: round trips included, so an upper bound, the closer the
larger the chunks.

A call whose fn was costly last time hands work out at once, and goes parallel when no
worker answers early (``_early.py``). But a worker that answers late on a busy machine
looks just like one still busy with a costly item, and a call of cheap items then runs
in workers, with chunks sized for costly ones: 400,000 trivial items took 5 times as
long as ``map`` after a call of 0.7 ms items, 20 times after one of 8 ms items. So while
such a call runs, every chunk's turnaround is compared with the item time assumed; one
back in under an eighth of it per item ends the hand-out, and the call times the rest
in the caller as if fn were new.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from ._backends import Chunk, Running, Session

#: Picks a chunk's size from the items left (None: unknown) and its first item's index.
ChunkSizer = Callable[[Optional[int], int], int]
#: A chunk back this many times sooner per item than assumed shows the assumption wrong
#: (the assumed time may read up to 2x high: it was measured beside busy workers).
CHEAPER_FACTOR = 8


class ChunkClock:
    """A session that times each chunk it sends: ``item_seconds`` is their time per item
    (None until one is back), each chunk weighed by its items and half as much as the
    one back after it.

    By its items: a small chunk's round trip swells its time per item, and taken alone
    it cut the next chunk small, which then did the same: one worker went on with small
    chunks beside the other's large ones. Less and less the older: items may change cost
    as the input goes on.
    """

    def __init__(self, session: Session, next_index: int = 0) -> None:
        self._session = session
        self._sent: dict[int, tuple[int, float]] = {}  # start: (items, when sent)
        self._seconds = self._items = 0.0  # the chunks' times and items, weighed
        self.item_seconds: Optional[float] = None
        self.next_index = next_index  # the first item not yet submitted
        self.cheaper = False  # a chunk showed the items far cheaper than assumed

    def sizes(self, next_size: ChunkSizer) -> ChunkSizer:
        """*next_size*, but 0 (no more chunks: the input looks ended) once cheaper."""
        return lambda remaining, start: 0 if self.cheaper else next_size(remaining, start)

    def has_capacity(self) -> bool:
        return self._session.has_capacity()

    def submit(self, chunk: Chunk) -> None:
        self._session.submit(chunk)
        self._sent[chunk.start] = (len(chunk.items), time.perf_counter())
        self.next_index = chunk.start + len(chunk.items)

    def wait(self, timeout: Optional[float]) -> list[tuple[int, list[Any]]]:
        finished = self._session.wait(timeout)
        now = time.perf_counter()
        for start, _ in finished:
            # Chunks handed out before this clock began were never timed here.
            items, sent_at = self._sent.pop(start, (0, now))
            if items:
                self._timed(items, now - sent_at)
        return finished

    def _timed(self, items: int, seconds: float) -> None:
        self._seconds = self._seconds / 2 + seconds
        self._items = self._items / 2 + items
        self.item_seconds = self._seconds / self._items

    def cancel(self) -> None:
        self._session.cancel()

    def close(self) -> None:
        self._session.close()

    @property
    def place(self) -> str:
        return self._session.place

    def running(self) -> list[Running]:
        return self._session.running()


class CostCheck(ChunkClock):
    """A session that stops taking chunks once one comes back much sooner than the
    *item_seconds* assumed for its items say it could."""

    def __init__(self, session: Session, item_seconds: float, next_index: int) -> None:
        super().__init__(session, next_index)
        self._per_item_limit = item_seconds / CHEAPER_FACTOR

    def _timed(self, items: int, seconds: float) -> None:
        super()._timed(items, seconds)
        if seconds < items * self._per_item_limit:
            self.cheaper = True
