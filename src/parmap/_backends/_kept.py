"""One object kept between calls: the warm pool of worker processes, or the worker threads.

A call checks the object out (so two threads never share it) and offers it back when it
ends; only one is kept, so an offer while another is kept is refused and the caller
stops what it offered. A forked child keeps nothing of its parent's, and gets a new
lock: another thread of the parent's may have held the old one at the fork, and that
thread does not exist in the child to release it.
"""

from __future__ import annotations

import os
import threading
from typing import Generic, Optional, TypeVar

T = TypeVar("T")


class KeptOne(Generic[T]):
    """At most one object of type T, waiting for the next call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: Optional[T] = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def take(self) -> Optional[T]:
        """The kept object, now checked out (None if there was none)."""
        with self._lock:
            kept, self._kept = self._kept, None
        return kept

    def peek(self) -> Optional[T]:
        """The kept object, left where it is (None if there is none)."""
        return self._kept

    def offer(self, candidate: T) -> bool:
        """Keep *candidate* unless another object is kept already; say whether it was."""
        with self._lock:
            if self._kept is None:
                self._kept = candidate
                return True
        return False

    def _forget(self) -> None:
        self._kept = None
        self._lock = threading.Lock()
