"""Start methods, and whether this code already runs inside a parmap worker.

The only module that asks what the platform offers; the others ask it.
"""

from __future__ import annotations

import sys
import threading
from typing import Literal, cast

StartMethod = Literal["fork", "spawn", "forkserver"]
START_METHODS: tuple[StartMethod, ...] = ("fork", "spawn", "forkserver")

_in_worker_process = False
_thread_state = threading.local()


def available_start_methods() -> list[StartMethod]:
    """The start methods this platform supports, the platform's default first."""
    import multiprocessing

    return [cast(StartMethod, m) for m in multiprocessing.get_all_start_methods()]


def default_start_method() -> StartMethod:
    """The start method ``multiprocessing`` would use now, importing it only if needed.

    Until ``multiprocessing`` is imported nobody can have chosen a method, so the
    platform's default applies: spawn on macOS and Windows, forkserver on other
    systems from Python 3.14, fork before.
    """
    if "multiprocessing" in sys.modules:
        return resolve_start_method(None)
    if sys.platform in ("darwin", "win32"):
        return "spawn"
    return "forkserver" if sys.version_info >= (3, 14) else "fork"


def resolve_start_method(requested: str | None) -> StartMethod:
    """The start method to use: *requested*, or the one ``multiprocessing`` would use.

    Without a request, an explicit ``multiprocessing.set_start_method`` wins, then the
    running Python's default (fork on Linux before 3.14, forkserver from 3.14, spawn on
    macOS and Windows). Reading it never fixes the global default as a side effect.
    """
    import multiprocessing

    available = available_start_methods()
    if requested is None:
        chosen = multiprocessing.get_start_method(allow_none=True)
        return cast(StartMethod, chosen) if chosen else available[0]
    if requested not in START_METHODS:
        valid = ", ".join(repr(m) for m in START_METHODS)
        msg = f"start_method must be one of {valid} or None (got {requested!r})"
        raise ValueError(msg)
    if requested not in available:
        offered = ", ".join(repr(m) for m in available)
        msg = (
            f"start_method {requested!r} is not available on this platform; "
            f"choose one of {offered} or None"
        )
        raise ValueError(msg)
    return requested


def inside_worker() -> bool:
    """True inside a parmap worker process or worker thread (so nested calls run serially)."""
    return _in_worker_process or getattr(_thread_state, "in_worker", False)


def mark_worker_process() -> None:
    """Called once at the start of a worker process."""
    global _in_worker_process
    _in_worker_process = True


def mark_worker_thread() -> None:
    """Called at the start of each worker thread of the thread backend."""
    _thread_state.in_worker = True
