"""Keep native thread pools (BLAS, OpenMP) from oversubscribing the CPUs in workers.

numpy's BLAS, OpenMP code and numexpr each start one thread per CPU by default. In
*n* worker processes that makes *n* times too many threads: they fight over the
cores and the whole map gets slower than with one worker. Each worker therefore gets
``CPUs // workers`` native threads, unless the user already chose a number.

Two ways, because libraries read their setting at different times: the environment
variables count for libraries loaded after the worker starts (always the case under
spawn and forkserver); a library already loaded in a forked worker (the caller
imported numpy) is told at run time through threadpoolctl, when it is installed.
"""

from __future__ import annotations

import os
import sys

#: The variables the common native thread pools read when they load.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: Modules whose presence means a native thread pool may already be running.
NATIVE_MODULES = ("numpy", "scipy", "torch", "numexpr", "sklearn")


def threads_per_worker(cpus: int, workers: int) -> int:
    """Native threads each worker may run so that all of them fit on *cpus*.

    >>> threads_per_worker(16, 4)
    4
    >>> threads_per_worker(2, 8)
    1
    """
    return max(1, cpus // workers)


def limit_native_threads(count: int) -> None:
    """Cap this process's native thread pools at *count* threads (call in a worker).

    If the user set any of the variables, nothing changes: they chose.
    """
    if any(name in os.environ for name in THREAD_VARIABLES):
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    if any(name in sys.modules for name in NATIVE_MODULES):
        _limit_loaded_libraries(count)


def _limit_loaded_libraries(count: int) -> None:
    """Lower (never raise) the thread pools of libraries already loaded."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # optional: without it, libraries loaded by fork keep theirs
        return
    too_big = {p["prefix"]: count for p in threadpool_info() if p["num_threads"] > count}
    if too_big:
        threadpool_limits(limits=too_big)
