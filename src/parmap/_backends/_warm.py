"""The warm pool: worker processes kept between calls, and stopped at exit.

One pool at a time is kept warm. A call checks it out (so two threads never share one)
if its settings match, and hands it back when it ends; a call with other settings
stops it and starts its own. Interpreter exit, ``shutdown()``, and the exit of a
process started by ``multiprocessing`` all stop it.
"""

from __future__ import annotations

import atexit
import multiprocessing.util  # registers its atexit hook before ours, so ours runs first
import os
import threading
from typing import Optional

from .._log import debug
from ._process import PoolSettings, ProcessPool

_registry_lock = threading.Lock()
_warm_pool: Optional[ProcessPool] = None


def acquire_pool(settings: PoolSettings) -> ProcessPool:
    """Check out the warm pool if it fits this call, else a new (not yet started) pool."""
    global _warm_pool
    _ensure_exit_hook()
    with _registry_lock:
        pool, _warm_pool = _warm_pool, None
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
    pool = _warm_pool
    return pool is not None and pool.started and pool.settings == settings


def release_pool(pool: ProcessPool) -> None:
    """Keep *pool* warm for the next call, unless another pool already is."""
    global _warm_pool
    pool.discard_busy()
    with _registry_lock:
        if _warm_pool is None:
            _warm_pool = pool
            return
    pool.shutdown()


def shutdown() -> None:
    """Stop the warm pool's workers, if any; the next call starts fresh ones."""
    global _warm_pool
    with _registry_lock:
        pool, _warm_pool = _warm_pool, None
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


def _forget_pools_in_child() -> None:
    """A forked child must not use (or stop) its parent's workers, and gets a lock of its
    own: another thread of the parent's may have held this one at the fork, and that
    thread does not exist in the child to release it."""
    global _warm_pool, _registry_lock
    _warm_pool = None
    _registry_lock = threading.Lock()


atexit.register(shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_in_child)
