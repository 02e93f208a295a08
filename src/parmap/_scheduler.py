"""The loop every parallel call runs: cut chunks, keep workers fed, put results in order.

Chunks are handed out first-in-first-out as workers free up. At most *buffersize*
items are read from the input ahead of the consumer, which keeps ``parallel_imap``
bounded on endless input. The loop runs in the caller's thread, so an exception from
``fn``, a timeout, Ctrl-C or an abandoned iterator all end in the same ``finally``,
which cancels whatever is still running.
"""

from __future__ import annotations

import time
from collections import deque
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Optional

from ._backends import Chunk, Session
from ._errors import timeout_detail
from ._log import warning
from ._stall import StallWatch, stall_message


class ChunkCutter:
    """Cuts consecutive chunks off *items*, the first starting at index *start*;
    ``next_size(remaining, start)`` picks each size from what is left (None: unknown) and
    the index of the chunk's first item (0: no more chunks)."""

    def __init__(
        self,
        items: Iterator[Any],
        start: int,
        remaining: Optional[int],
        next_size: Callable[[Optional[int], int], int],
        *,
        fit_room: bool = True,
    ) -> None:
        self._items = items
        self._start = start
        self._remaining = remaining
        self._next_size = next_size
        self._fit_room = fit_room

    def __call__(self, room: int) -> Optional[Chunk]:
        """The next chunk, of at most *room* items (at least one) if it fits the room;
        None once the input ends."""
        size = self._next_size(self._remaining, self._start)
        if self._fit_room:
            size = min(size, max(1, room))
        batch = list(islice(self._items, size))
        if not batch:
            return None
        chunk = Chunk(self._start, batch)
        self._start += len(batch)
        if self._remaining is not None:
            self._remaining -= len(batch)
        return chunk


def run_chunks(
    session: Session,
    cut: Callable[[int], Optional[Chunk]],
    *,
    ordered: bool,
    buffersize: Callable[[], int],
    deadline: Optional[Deadline],
    submitted: Iterable[int] = (),
    ready: Optional[tuple[int, list[Any]]] = None,
) -> Iterator[list[Any]]:
    """Yield each chunk's results, in input order when *ordered*; cancel on any exit.

    ``cut(room)`` reads the next chunk (None at the end of the input), of at most *room*
    items where it fits the room. ``buffersize()`` is the most items read and not
    yet yielded, as it stands (it may grow as chunks do). *submitted* lists the starts
    of single-item chunks the session already runs; *ready* is a chunk (start, results)
    the caller ran itself, which follows them.
    """
    in_flight: deque[int] = deque(submitted)  # chunk starts, in input order
    finished: dict[int, list[Any]] = {}
    held = len(in_flight)  # items read from the input and not yet yielded
    if ready is not None:
        in_flight.append(ready[0])
        finished[ready[0]] = ready[1]
        held += len(ready[1])
    exhausted = completed = False
    watch = StallWatch()
    try:
        while True:
            while not exhausted and session.has_capacity():
                room = buffersize() - held  # asked once a chunk: it follows the chunk sizes
                if room <= 0:
                    break
                chunk = cut(room)
                if chunk is None:
                    exhausted = True
                else:
                    session.submit(chunk)
                    in_flight.append(chunk.start)
                    held += len(chunk.items)
            if not in_flight:
                completed = True
                return
            for start, results in _wait(session, deadline, watch):
                finished[start] = results
            for start in _take_ready(in_flight, finished, ordered=ordered):
                results = finished.pop(start)
                held -= len(results)
                yield results
    finally:
        if completed:
            session.close()
        else:
            session.cancel()


def _time_left(deadline: Optional[Deadline], session: Session) -> Optional[float]:
    """Seconds to wait for the next chunk; past the deadline, a ``TimeoutError`` that
    names the items still running, so a call that hung says where."""
    if deadline is None:
        return None
    try:
        return deadline.left()
    except TimeoutError as error:
        running = session.running()
        if not running:
            raise
        msg = f"{error}; {timeout_detail(session.place, running)}"
        raise TimeoutError(msg) from None


def _wait(
    session: Session, deadline: Optional[Deadline], watch: StallWatch
) -> list[tuple[int, list[Any]]]:
    """The chunks that finish next; a wait that has gone on long is reported meanwhile."""
    done = session.wait(watch.wait_seconds(_time_left(deadline, session)))
    if done:
        watch.chunks_finished()
        return done
    waited = watch.stalled_for()
    if waited is not None:
        running = session.running()
        if running:
            warning("%s", stall_message(session.place, running, waited))
    return done


def _take_ready(in_flight: deque[int], finished: dict[int, Any], *, ordered: bool) -> list[int]:
    """Starts of the finished chunks that may be yielded now, removed from *in_flight*."""
    if not ordered:
        for start in finished:
            in_flight.remove(start)
        return list(finished)
    ready = []
    while in_flight and in_flight[0] in finished:
        ready.append(in_flight.popleft())
    return ready


class Deadline:
    """The end of a *timeout*: of a whole call, or of one wait of a lazy consumer."""

    def __init__(self, timeout: float, *, per_wait: bool = False) -> None:
        self.timeout = timeout
        self.per_wait = per_wait
        self.end = time.monotonic() + timeout

    def restart(self) -> None:
        """Count the timeout again from now (parallel_imap: each wait for a result)."""
        self.end = time.monotonic() + self.timeout

    def left(self) -> float:
        """Seconds left; raises the builtin ``TimeoutError`` once none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            what = "no result came" if self.per_wait else "the call did not finish"
            msg = f"parmap: {what} within timeout={self.timeout:g} s"
            raise TimeoutError(msg)
        return left
