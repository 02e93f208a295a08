"""Checking every argument before any process starts, with messages that say the fix."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, Union

from ._cpu import available_cpus
from ._native_threads import threads_per_worker
from ._platform import StartMethod, resolve_start_method

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from typing_extensions import TypeAlias, TypeGuard

BACKENDS = ("process", "thread", "serial")
#: Threads wait on I/O rather than compute, so their default is not the CPU count:
#: 32 is ``ThreadPoolExecutor``'s cap, enough to overlap many slow requests.
DEFAULT_THREAD_WORKERS = 32

#: Environment variable: seconds an idle worker process or thread waits for work before
#: it exits.
IDLE_TIMEOUT_ENV = "PARMAP_IDLE_TIMEOUT"
#: Five minutes, as joblib's reusable executor: long enough to serve bursts of calls,
#: short enough that an idle program gives its memory back.
DEFAULT_IDLE_TIMEOUT = 300.0


Progress: TypeAlias = Union[bool, Callable[[int, Optional[int]], object]]


class Options(NamedTuple):
    """One call's checked settings; *workers* resolved, *start_method* None for the default."""

    backend: Union[str, Executor]
    workers: int
    chunksize: Optional[int]
    start_method: Optional[StartMethod]
    serial_fallback: bool
    timeout: Optional[float]
    progress: Progress
    initializer: Optional[Callable[..., object]]
    initargs: tuple[Any, ...]
    max_tasks_per_child: Optional[int] = None
    idle_timeout: Optional[float] = DEFAULT_IDLE_TIMEOUT
    ordered: bool = True
    buffersize: Optional[int] = None
    #: Cap the BLAS/OpenMP threads of worker processes (see ``native_threads``).
    limit_native_threads: bool = False

    @property
    def native_threads(self) -> Optional[int]:
        """Native threads per worker process, or None to leave them alone.

        Worked out only when workers start: reading the CPU quota (cgroup files) took
        0.2-0.5 ms, most of a first call that then ran its few items in the caller.
        """
        if not self.limit_native_threads:
            return None
        return threads_per_worker(available_cpus(), self.workers)


def check_call(fn: object, iterable: object) -> None:
    if not callable(fn):
        msg = f"fn must be callable (got {_short(fn)} of type {type(fn).__name__})"
        if callable(iterable):
            msg += "; the arguments look swapped: the function comes first, as in map(fn, items)"
        raise TypeError(msg)
    try:
        iter(iterable)  # type: ignore[call-overload]
    except TypeError:
        msg = (
            f"iterable must be iterable (got {_short(iterable)} of type {type(iterable).__name__})"
        )
        raise TypeError(msg) from None


def make_options(
    *,
    workers: object,
    chunksize: object,
    backend: object,
    start_method: object,
    serial_fallback: object,
    timeout: object,
    progress: object,
    initializer: object,
    initargs: object,
    max_tasks_per_child: object = None,
    ordered: object = True,
    buffersize: object = None,
    limit_native_threads: object = True,
) -> Options:
    """Check every keyword and resolve the defaults; raise before anything starts."""
    checked_backend = _check_backend(backend)
    if start_method is not None and checked_backend != "process":
        msg = f"start_method applies only to backend='process' (got backend={_name(backend)})"
        raise ValueError(msg)
    if max_tasks_per_child is not None and checked_backend != "process":
        msg = (
            f"max_tasks_per_child applies only to backend='process' (got backend={_name(backend)})"
        )
        raise ValueError(msg)
    if initializer is not None and not callable(initializer):
        msg = f"initializer must be callable or None (got {initializer!r})"
        raise TypeError(msg)
    if initializer is not None and not isinstance(checked_backend, str):
        msg = (
            "initializer applies only to backend='process' or 'thread': parmap does not start "
            f"the workers of an Executor (got backend={_name(backend)}), so it cannot run code "
            "in them first. Build per-worker state lazily inside fn instead, for example in a "
            "function decorated with functools.lru_cache (see docs/scale-out.md)"
        )
        raise ValueError(msg)
    if not isinstance(initargs, (tuple, list)):
        msg = (
            f"initargs must be a tuple or list (got {initargs!r} of type {type(initargs).__name__})"
        )
        raise TypeError(msg)
    if not (isinstance(progress, bool) or callable(progress)):
        msg = f"progress must be True, False or a callable(done, total) (got {progress!r})"
        raise TypeError(msg)
    limit_threads = _flag("limit_native_threads", limit_native_threads)
    checked_workers = _positive_int("workers", workers)
    if checked_backend == "process":
        checked_workers = checked_workers or available_cpus()
    else:
        checked_workers = checked_workers or _default_workers(checked_backend)
    return Options(
        backend=checked_backend,
        workers=checked_workers,
        chunksize=_positive_int("chunksize", chunksize),
        start_method=_start_method(start_method),
        serial_fallback=_flag("serial_fallback", serial_fallback),
        timeout=_timeout(timeout),
        progress=progress,
        initializer=initializer,
        initargs=tuple(initargs),
        max_tasks_per_child=_positive_int("max_tasks_per_child", max_tasks_per_child),
        idle_timeout=idle_timeout() if checked_backend in ("process", "thread") else None,
        ordered=_flag("ordered", ordered),
        buffersize=_positive_int("buffersize", buffersize),
        limit_native_threads=limit_threads and checked_backend == "process",
    )


def _start_method(value: object) -> Optional[StartMethod]:
    """An explicit start method, checked against the platform; None stays the default.

    The default is looked up only when workers are about to start, so that a call
    that runs in the caller does not import ``multiprocessing``.
    """
    requested = _optional_str("start_method", value)
    return None if requested is None else resolve_start_method(requested)


def _is_executor(backend: object) -> TypeGuard[Executor]:
    """Whether *backend* is an Executor; whoever made one has imported concurrent.futures."""
    futures = sys.modules.get("concurrent.futures")
    return futures is not None and isinstance(backend, futures.Executor)


def idle_timeout() -> Optional[float]:
    """Seconds idle workers live on: ``PARMAP_IDLE_TIMEOUT``, else five minutes.

    ``0``, ``none`` or ``off`` keep them until ``shutdown()`` or interpreter exit.
    """
    value = os.environ.get(IDLE_TIMEOUT_ENV, "").strip().lower()
    if not value:
        return DEFAULT_IDLE_TIMEOUT
    if value in ("0", "none", "off"):
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        msg = (
            f"{IDLE_TIMEOUT_ENV} must be a number of seconds > 0, or 0/none/off to keep idle "
            f"workers (got {value!r})"
        )
        raise ValueError(msg)
    return seconds


def _check_backend(backend: object) -> Union[str, Executor]:
    if _is_executor(backend):
        return backend
    if isinstance(backend, str) and backend in BACKENDS:
        return backend
    valid = ", ".join(repr(b) for b in BACKENDS)
    msg = f"backend must be one of {valid} or a concurrent.futures.Executor (got {backend!r})"
    raise ValueError(msg)


def _default_workers(backend: Union[str, Executor]) -> int:
    if backend == "thread":
        return DEFAULT_THREAD_WORKERS
    if not isinstance(backend, str):
        size = getattr(backend, "_max_workers", None)
        return size if isinstance(size, int) and size >= 1 else available_cpus()
    return available_cpus()


def _several_iterables(value: object) -> bool:
    """Whether *value*, passed where a number goes, looks like a second iterable."""
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes))


def _positive_int(name: str, value: object) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an int >= 1 or None (got {value!r} of type {type(value).__name__})"
        if name in ("workers", "chunksize") and _several_iterables(value):
            msg += (
                ". parallel_map takes one iterable: to map fn over several, as map(fn, a, b) "
                "does, use parallel_starmap(fn, zip(a, b))"
            )
        raise TypeError(msg)
    if value < 1:
        msg = f"{name} must be an int >= 1 or None (got {value!r})"
        if name == "workers" and value < 0:
            msg += ": workers=None uses every CPU, as n_jobs=-1 does in joblib"
        raise ValueError(msg)
    return value


def _timeout(value: object) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"timeout must be a number of seconds > 0 or None (got {value!r})"
        raise TypeError(msg)
    if not value > 0:
        msg = f"timeout must be a number of seconds > 0 or None (got {value!r})"
        raise ValueError(msg)
    return float(value)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"{name} must be True or False (got {value!r})"
        raise TypeError(msg)
    return value


def _optional_str(name: str, value: object) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        msg = f"{name} must be a string or None (got {value!r})"
        raise TypeError(msg)
    return value


def _name(backend: object) -> str:
    return repr(backend) if isinstance(backend, str) else type(backend).__name__


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
