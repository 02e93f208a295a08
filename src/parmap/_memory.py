"""A worker keeps the memory it frees for its next chunk and hands it back once idle.

glibc's malloc serves a block of 128 KiB or more from a fresh mapping of its own, and
hands free memory at the top of its heap back to the kernel once there are more than a
few megabytes of it. A worker that receives a 1 MB item, runs fn and sends the result
frees all of it, and the next item gets fresh pages again, which the kernel maps and
zeroes on first touch: about 0.5 ms a megabyte on a virtual machine, as long as sorting
the megabyte takes. So once a message of ``LARGE_MESSAGE_BYTES`` or more has crossed its
pipe, a worker on glibc asks malloc to serve blocks of up to ``KEPT_BLOCK_BYTES`` from
its heap and to keep up to ``KEPT_FREE_BYTES`` of free memory, and it gives all free
memory back (``malloc_trim``) whenever it has waited ``HAND_BACK_SECONDS`` for work.
Sorting 200 numpy arrays of 1 MB in workers took 861-909 ms instead of 935-1044 ms, and
the workers' CPU 1.42 s instead of 1.64-1.70 s (docs/design.md).

Workers of small items never change a setting. Nor does a worker whose user set
malloc's own (``MALLOC_*_`` environment variables, ``GLIBC_TUNABLES``): those win.

A forked worker also lets go of the caller's free memory once it has waited
``LET_GO_SECONDS`` for work. Fork shares every page of the caller's heap with the
worker, the free ones too, and when the caller later reuses a free page the kernel
copies it first, because the worker still maps it. ``malloc_trim`` in the worker unmaps
its copies of the heap's free pages, so the caller's writes to them fault without a
copy: a caller refilling 100 MB it had freed before the pool started took 42-46 ms
instead of 70-72, and the machine's memory grew by 15-16 MB instead of 102-110
(docs/design.md).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterator, Optional

#: A message at least this large tells a worker that large blocks come and go ...
LARGE_MESSAGE_BYTES = 512 * 1024
#: ... and blocks up to this size come from the heap, where a freed one serves the next ...
KEPT_BLOCK_BYTES = 64 << 20
#: ... and up to this much free memory stays with the worker while it is busy ...
KEPT_FREE_BYTES = 256 << 20
#: ... and goes back to the kernel once the worker has waited this long for work.
HAND_BACK_SECONDS = 0.05

#: A forked worker idle this long lets go of the caller's free heap pages: long enough
#: that a worker waiting out another's long chunk, or the caller's probe, does not spend
#: the CPU it takes (loading ctypes, 2-10 ms, and the trim) in the middle of a call.
LET_GO_SECONDS = 1.0
#: mallopt's parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Environment variables by which a user sets glibc malloc's thresholds themselves (as
#: does ``glibc.malloc.*`` in GLIBC_TUNABLES).
MALLOC_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)


class FreedMemory:
    """What a worker does with the memory it frees: keep it while busy, then give it back."""

    def __init__(self) -> None:
        self._libc: Any = None
        self._decided = False
        self._holds_callers_heap = False

    def forked(self) -> None:
        """This worker was forked: it shares the caller's heap, free pages included."""
        self._holds_callers_heap = True

    @property
    def kept(self) -> bool:
        return self._libc is not None

    def after_message(self, size: int) -> None:
        """Called with the size of every message the worker receives or sends."""
        if not self._decided and size >= LARGE_MESSAGE_BYTES:
            self._decided = True
            self._libc = _keep_freed_memory()

    def wait_for_work(self, conn: Any, idle_timeout: Optional[float]) -> bool:
        """Wait for a message on *conn*, giving memory back at its moments meanwhile: what
        the worker freed after HAND_BACK_SECONDS, a forked worker's share of the caller's
        after LET_GO_SECONDS. False if none came within *idle_timeout* (None: no limit)."""
        began = time.monotonic()
        for due, give_back in self._hand_backs():
            if idle_timeout is not None and due >= idle_timeout:
                break  # the worker exits first, which gives everything back
            if conn.poll(max(0.0, due - (time.monotonic() - began))):
                return True
            give_back()
        if idle_timeout is None:
            return True  # the worker's read waits for the message (or end of file)
        return bool(conn.poll(max(0.0, idle_timeout - (time.monotonic() - began))))

    def _hand_backs(self) -> Iterator[tuple[float, Callable[[], None]]]:
        """What to give back while idle, by seconds of waiting (looked at step by step:
        the first step may make the second moot)."""
        if self._libc is not None:
            yield HAND_BACK_SECONDS, self._trim
        if self._holds_callers_heap:
            yield LET_GO_SECONDS, self._let_go

    def _trim(self) -> None:
        self._libc.malloc_trim(0)
        self._holds_callers_heap = False  # that let go of the caller's free pages too

    def _let_go(self) -> None:
        self._holds_callers_heap = False
        libc = glibc()
        if libc is not None:
            libc.malloc_trim(0)


#: The worker process's own (fork copies the caller's, which never decided anything).
worker_memory = FreedMemory()


def glibc() -> Optional[Any]:
    """The C library, if this is Linux with glibc (musl has no such settings); else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # numpy imports it anyway; a worker loads it once, while idle

        libc = ctypes.CDLL(None)
    except (ImportError, OSError):
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def _keep_freed_memory() -> Optional[Any]:
    """Set glibc malloc to keep freed blocks; its library, or None where it was not set."""
    libc = glibc() if not _user_set_malloc() else None
    if libc is None:
        return None
    if not libc.mallopt(_M_MMAP_THRESHOLD, KEPT_BLOCK_BYTES):
        return None
    if not libc.mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES):
        return None
    return libc


def _user_set_malloc() -> bool:
    if any(name in os.environ for name in MALLOC_VARIABLES):
        return True
    return "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
