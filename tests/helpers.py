"""Functions the tests send to workers: importable by name under every start method."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

#: The start methods this platform offers; every process behaviour is tested under each.
START_METHODS = [
    m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()
]


class PausingClock:
    """Stands in for the time module in parmap's modules: *base*'s clock plus the pauses
    a test adds to ``paused``, as when another process takes the caller's CPU that long
    (the CPU time does not move meanwhile). With ``base=time.thread_time`` the clock
    runs with the CPU time, so real preemption on a busy machine does not show on it:
    the test sees only the pauses it makes."""

    thread_time = staticmethod(time.thread_time)

    def __init__(self, base: Callable[[], float] = time.perf_counter) -> None:
        self.paused = 0.0
        self._base = base

    def perf_counter(self) -> float:
        return self._base() + self.paused


_state = threading.local()
worker_state: dict[str, Any] = {}


def options_with(**chosen: object) -> Any:
    """The checked ``Options`` of a call that passes *chosen*, every other keyword left at
    parallel_map's default."""
    from parmap._options import make_options

    defaults: dict[str, object] = {
        "workers": None,
        "chunksize": None,
        "backend": "process",
        "start_method": None,
        "serial_fallback": True,
        "timeout": None,
        "progress": False,
        "initializer": None,
        "initargs": (),
    }
    return make_options(**{**defaults, **chosen})


def square(x: int) -> int:
    return x * x


def identity(x: Any) -> Any:
    return x


def pid_of(_: object) -> int:
    return os.getpid()


def resident_mb(_: object) -> tuple[float, float]:
    """This process's resident memory now and at its peak so far, in MB (Linux).

    *Now* counts what is held: glibc's free memory is handed back to the system first.
    Freed blocks of 20 MB raise glibc's mmap threshold, and the next ones may then come
    from a heap that keeps them once freed; a test of which objects a worker still holds
    once saw 48 MB of such free memory (Python 3.9).
    """
    import ctypes
    import ctypes.util
    import resource

    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        trim = getattr(ctypes.CDLL(libc_name), "malloc_trim", None)  # glibc only
        if trim is not None:
            trim(0)
    with open("/proc/self/statm") as statm:
        now = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return now / 2**20, peak_kb / 2**10


def private_mb_after_collection(_: object) -> float:
    """This process's private memory in MB once a full garbage collection has run (Linux):
    the pages it no longer shares with the process it was forked from, among others."""
    import gc

    gc.collect()
    with open("/proc/self/smaps_rollup") as rollup:
        kilobytes = sum(int(line.split()[1]) for line in rollup if line.startswith("Private_"))
    return kilobytes / 2**10


def fail_at(x: int, bad: int = 7) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def fail_at_seven(x: int) -> int:
    return fail_at(x, 7)


def next_of_nothing_at(x: int, bad: int) -> int:
    """A bare next() on an empty iterator for item *bad*: fn raises StopIteration."""
    if x == bad:
        return int(next(iter(())))
    return x


def exit_at_three(x: int) -> int:
    """Kill the worker process outright on item 3, as a crash would."""
    if x == 3:
        os._exit(13)
    return x


def exit_as_if_idle_at_three(x: int) -> int:
    """Kill the worker on item 3 with the status an idle worker exits with."""
    if x == 3:
        from parmap._worker import IDLE_EXIT_CODE

        os._exit(IDLE_EXIT_CODE)
    return x


def sigkill_at_five(x: int) -> int:
    """Kill the worker process with SIGKILL on item 5, as the kernel's OOM killer does."""
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def wait_forever_at_zero(x: int) -> int:
    """Item 0 blocks on an event nobody sets, standing in for a hung task."""
    if x == 0:
        threading.Event().wait()
    return x


def spin(n: int) -> int:
    """CPU-bound work of about n microseconds' worth of Python."""
    total = 0
    for i in range(n * 20):
        total += i
    return total


class BadInit(Exception):
    """An exception whose __init__ needs two arguments: it does not survive pickling."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}-{b}")


def raise_bad_init(x: int) -> int:
    if x == 2:
        raise BadInit(x, x)
    return x


def return_lock(x: int) -> object:
    if x == 4:
        return threading.Lock()
    return x


def lock_after_work(path: str, x: int) -> object:
    """A millisecond of work whose result cannot be pickled; notes in *path* which
    process ran it."""
    with open(path, "a") as file:
        file.write(f"{os.getpid()}\n")
    busy_for(0.001)
    return threading.Lock()


class LoadsOnlyInWorkers:
    """Pickles fine but does not unpickle: as a result of a class the caller cannot import,
    or whose ``__setstate__`` fails there."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return int, ("not a number",)


def return_unloadable(x: int) -> object:
    if x == 5:
        return LoadsOnlyInWorkers()
    return x


def set_state(value: str) -> None:
    worker_state["value"] = value


def read_state(_: object) -> str:
    return str(worker_state.get("value"))


def nested_map(x: int) -> list[int]:
    from parmap import parallel_map

    return parallel_map(square, range(x), serial_fallback=False)


def fail_in_initializer() -> None:
    raise RuntimeError("initializer failed on purpose")


def worker_processes() -> list[Any]:
    """This process's children, less multiprocessing's own long-lived helpers."""
    import psutil

    def is_helper(process: psutil.Process) -> bool:
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            return False
        return (
            "multiprocessing.forkserver" in command or "multiprocessing.resource_tracker" in command
        )

    return [c for c in psutil.Process().children(recursive=True) if not is_helper(c)]


def busy_for(seconds: float) -> None:
    """Compute (not sleep) for about *seconds* of CPU time: stands in for a costly item.

    CPU time, not the clock's: on a busy machine the item costs as much work as on a
    quiet one (and takes longer), as a real costly item does; parmap prices items that
    never wait by their CPU time.
    """
    import time

    end = time.thread_time() + seconds
    while time.thread_time() < end:
        spin(50)


def slow_then_fail_at_zero(x: int) -> tuple[str, int]:
    """Every item computes a while; item 0 then raises."""
    busy_for(0.1)
    if x == 0:
        raise ValueError("first item failed")
    return ("old", x)


def tagged(x: int) -> tuple[str, int]:
    return ("new", x)


def slow_tagged(x: int) -> tuple[str, int]:
    busy_for(0.1)
    return ("old", x)


class CountingSource:
    """An endless iterator that records how many items were read from it."""

    def __init__(self) -> None:
        self.read = 0

    def __iter__(self) -> Iterator[int]:
        for value in itertools.count():
            self.read += 1
            yield value


def double_in_place(array: Any) -> tuple[int, Any]:
    """Changes its item in place and returns it, with the pid of the process it ran in."""
    array *= 2
    return os.getpid(), array


def keeps_freed_memory(_: object) -> bool:
    """Whether the worker it runs in keeps the memory it frees (``_memory.py``)."""
    from parmap._memory import worker_memory

    return worker_memory.kept


def wait_for_fifo_at_zero(item: tuple[int, str]) -> int:
    """Item 0 blocks until someone opens the FIFO at its path for writing: a stuck
    task that the test itself can release, without a timer."""
    index, fifo = item
    if index == 0:
        with open(fifo) as reader:
            reader.read()
    return index


def working_directory(_: object) -> str:
    return os.getcwd()


def read_text(name: str) -> str:
    """The text of the file *name*, a path relative to the current directory."""
    with open(name, encoding="utf-8") as file:
        return file.read()


def getenv(name: str) -> str | None:
    return os.environ.get(name)


def setenv(name: str, value: str) -> None:
    """An initializer that sets a variable in the worker's own environment."""
    os.environ[name] = value


def read_variables(names: list[str]) -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in names)


def draw_from_numpy(_: object) -> tuple[int, float]:
    """The worker's pid and a number from numpy's global random generator."""
    import numpy

    return os.getpid(), float(numpy.random.random())


def recursion_depth(n: int) -> int:
    """n, counted by recursing n levels deep."""
    return 0 if n == 0 else 1 + recursion_depth(n - 1)


def logged_long_first_item(x: int) -> int:
    """Item 0 logs as it starts and ends, 0.4 s apart; the others return at once."""
    if x == 0:
        import logging

        log = logging.getLogger("tests.first_item")
        log.warning("first item starts")
        busy_for(0.4)
        log.warning("first item ends")
    return x


def read_natively_at_first(x: int) -> int:
    """Item 0 blocks in C's read() of a pipe until a signal has reached this process
    (the first item's timer, say), then gets its byte; the others return at once.

    C code that does not retry an interrupted system call gets EINTR from such a read
    unless the signal's handler asks for the call to be restarted.
    """
    if x != 0:
        return x
    import ctypes
    import select

    data_read, data_write = os.pipe()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous = signal.set_wakeup_fd(wake_write)  # C's handler writes there at once

    def write_once_signalled() -> None:
        select.select([wake_read], [], [], 10)
        os.write(data_write, b"!")

    writer = threading.Thread(target=write_once_signalled)
    writer.start()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buffer = ctypes.create_string_buffer(1)
        if libc.read(data_read, buffer, 1) != 1:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    finally:
        writer.join()
        signal.set_wakeup_fd(previous)
        for fd in (data_read, data_write, wake_read, wake_write):
            os.close(fd)
    return x


def key_and_size(pair: tuple[Any, Any]) -> tuple[Any, int]:
    """A group of itertools.groupby: its key and how many items it holds."""
    key, group = pair
    return key, sum(1 for _ in group)
