"""Checking, chunk by chunk, an item time that an earlier call measured.

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


class CostCheck:
    """A session that stops taking chunks once one comes back much sooner than the
    *item_seconds* assumed for its items say it could."""

    def __init__(self, session: Session, item_seconds: float, next_index: int) -> None:
        self._session = session
        self._per_item_limit = item_seconds / CHEAPER_FACTOR
        self._sent: dict[int, tuple[int, float]] = {}  # start: (items, when sent)
        self.cheaper = False  # a chunk came back too soon: no more chunks
        self.next_index = next_index  # the first item not yet submitted

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
            # Chunks handed out before this check began were never timed here.
            items, sent_at = self._sent.pop(start, (0, now))
            if items and now - sent_at < items * self._per_item_limit:
                self.cheaper = True
        return finished

    def cancel(self) -> None:
        self._session.cancel()

    def close(self) -> None:
        self._session.close()

    @property
    def place(self) -> str:
        return self._session.place

    def running(self) -> list[Running]:
        return self._session.running()
