"""Backends run chunks somewhere else; each call talks to one through a :class:`Session`.

A session is one call's view of a backend. The scheduler (``_scheduler.py``) submits
chunks while the session has capacity and waits for finished ones; the session turns a
worker's failure into the exception the caller will see, and reports finished items to
the call's progress callback (worker processes and threads also report during long chunks).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Protocol

#: With progress on, a worker process or thread busy with a chunk has how far it got
#: reported this often, so a bar moves during long chunks (not only when a chunk ends).
PROGRESS_SECONDS = 0.2


class Chunk(NamedTuple):
    """Consecutive items of the input; *start* is the index of the first."""

    start: int
    items: list[Any]


class Running(NamedTuple):
    """Items running now: a worker process's chunk, a thread's current item, or a chunk
    on an executor's workers (started, or waiting for one)."""

    start: int
    size: int
    pid: Optional[int] = None  # the worker process running them, where parmap knows it


class Session(Protocol):
    """One call's use of a backend."""

    @property
    def place(self) -> str:
        """Where its chunks run, for messages: "process", "thread" or "executor"."""

    def has_capacity(self) -> bool:
        """Whether another chunk may be submitted now."""

    def submit(self, chunk: Chunk) -> None:
        """Start running *chunk*; never blocks for long."""

    def wait(self, timeout: Optional[float]) -> list[tuple[int, list[Any]]]:
        """Block until a chunk finishes; ``(start, results)`` pairs, [] on timeout.

        Raises the exception ``fn`` raised (or the backend's own error) instead.
        """

    def cancel(self) -> None:
        """Stop what is still running; called on error, timeout, Ctrl-C or abandonment."""

    def close(self) -> None:
        """The call finished normally."""

    def running(self) -> list[Running]:
        """The items running now, for a timeout's message and a stall's report."""
