"""The warm pool: worker processes kept between calls, and stopped at exit.

One pool at a time is kept warm (``_kept.py``). A call checks it out if its settings
match, and hands it back when it ends; a call with other settings stops it and starts
its own. Interpreter exit, ``shutdown()``, and the exit of a process started by
``multiprocessing`` all stop it; a forked child forgets it.
"""

from __future__ import annotations

import atexit
import multiprocessing.util  # registers its atexit hook before ours, so ours runs first
import os
from typing import Optional

from .._log import debug
from ._kept import KeptOne
from ._process import PoolSettings, ProcessPool

_kept_pool: KeptOne[ProcessPool] = KeptOne()


def acquire_pool(settings: PoolSettings) -> ProcessPool:
    """Check out the warm pool if it fits this call, else a new (not yet started) pool."""
    _ensure_exit_hook()
    pool = _kept_pool.take()
    if pool is not None and pool.settings == settings:
        if pool.started:
            debug("reusing the warm pool of %d %s worker(s)", pool.size, pool.start_method)
        return pool
    if pool is not None:
        debug("shutting down the warm pool: this call needs other settings")
        pool.shutdown()
    return ProcessPool(settings)


def warm_pool_fits(settings: PoolSettings) -> bool:
    """Whether a started warm pool with *settings* is waiting (without checking it out)."""
    pool = _kept_pool.peek()
    return pool is not None and pool.started and pool.settings == settings


def release_pool(pool: ProcessPool) -> None:
    """Keep *pool* warm for the next call, unless another pool already is."""
    pool.discard_busy()
    if not _kept_pool.offer(pool):
        pool.shutdown()


def shutdown() -> None:
    """Stop the warm pool's workers, if any; the next call starts fresh ones."""
    pool = _kept_pool.take()
    if pool is not None:
        pool.shutdown()


_exit_hook_pid: Optional[int] = None


def _ensure_exit_hook() -> None:
    """Stop the warm pool when this process exits, whatever kind of process it is.

    ``atexit`` covers an ordinary interpreter. A process started by ``multiprocessing``
    (a ``Process`` target, a ``ProcessPoolExecutor`` worker) exits without running
    ``atexit``, joining its child processes first: without this finalizer, its warm
    workers would keep it from ever exiting.
    """
    global _exit_hook_pid
    if _exit_hook_pid != os.getpid():
        _exit_hook_pid = os.getpid()
        multiprocessing.util.Finalize(None, shutdown, exitpriority=100)


atexit.register(shutdown)
