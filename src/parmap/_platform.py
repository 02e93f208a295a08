"""Start methods, and whether this code already runs inside a parmap worker.

The only module that asks what the platform offers; the others ask it.
"""

from __future__ import annotations

import contextlib
import os
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


#: prctl option: the signal this process gets when its parent exits (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel kill this worker when its parent exits, even mid-item (Linux).

    A worker waiting for work notices a dead caller by end-of-file on its pipe; one
    busy with a long item would not until the item ends. Under forkserver the parent
    is the fork server, which itself exits when the caller does.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - no prctl in this libc
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def release_forkserver_lifeline() -> None:
    """Let the fork server exit when the caller does (call in a worker it forked).

    Each process the fork server forks inherits the write end of the pipe through which
    the server learns that the caller is gone. While a worker holds it, the server
    never exits, and a worker waiting for the server to exit (``die_with_parent``)
    never does either. The worker closes it and forgets that server; a fork server it
    may need for processes of its own is started afresh.
    """
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    lifeline = getattr(server, "_forkserver_alive_fd", None)
    if server is None or lifeline is None:
        return
    with contextlib.suppress(OSError):
        os.close(lifeline)
    for attribute in ("_forkserver_alive_fd", "_forkserver_address", "_forkserver_pid"):
        if hasattr(server, attribute):
            setattr(server, attribute, None)


def inside_worker() -> bool:
    """True inside a parmap worker process or worker thread (so nested calls run serially)."""
    return _in_worker_process or getattr(_thread_state, "in_worker", False)


def inside_daemonic_process() -> bool:
    """True inside a daemonic ``multiprocessing`` process, such as a ``Pool`` worker, which
    may not start processes of its own. Such a process has ``multiprocessing`` imported,
    so nobody else pays for the import."""
    process = sys.modules.get("multiprocessing.process")
    return process is not None and bool(process.current_process().daemon)


def mark_worker_process() -> None:
    """Called once at the start of a worker process."""
    global _in_worker_process
    _in_worker_process = True


def mark_worker_thread() -> None:
    """Called at the start of each worker thread of the thread backend."""
    _thread_state.in_worker = True
