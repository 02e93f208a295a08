"""The same parallel_map call on a local Dask cluster, timed against a plain loop.

Starts a ``distributed.LocalCluster`` of two worker processes (one thread each) on
127.0.0.1, runs a CPU-bound function over 20 numbers with ``list(map(...))``, then
with ``parallel_map(..., backend=client.get_executor())``, and prints the times, the
cluster's start-up time and the cost of one task. Needs ``pip install 'parmap-ng[dask]'``.

    python docs/examples/dask_local.py
    python docs/examples/dask_local.py --workers 4 --size 5000000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from distributed import Client, LocalCluster

from parmap import parallel_map


def cpu_bound(n: int) -> int:
    return sum(i * i for i in range(n))


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="parallel_map on a local Dask cluster.")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--size", type=int, default=2_000_000, help="work per item")
    args = parser.parse_args()
    numbers = [args.size + x for x in range(20)]

    expected, serial_seconds = timed(lambda: list(map(cpu_bound, numbers)))
    # For comparison: parmap's own worker processes on this machine.
    _, process_seconds = timed(parallel_map, cpu_bound, numbers, args.workers)

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(cluster)
    start_seconds = time.perf_counter() - start
    try:
        executor = client.get_executor()
        workers = sum(client.nthreads().values())  # threads in the whole cluster
        results, dask_seconds = timed(parallel_map, cpu_bound, numbers, workers, backend=executor)
        if results != expected:
            msg = "Dask returned other results than map()"
            raise RuntimeError(msg)
        _, forced_seconds = timed(
            parallel_map, cpu_bound, numbers, workers, backend=executor, serial_fallback=False
        )
        tasks = 400  # one item per task: what a chunk costs on top of its work
        _, tiny_seconds = timed(
            parallel_map, abs, range(tasks), workers, 1, backend=executor, serial_fallback=False
        )
    finally:
        start = time.perf_counter()
        client.close()
        cluster.close()
        close_seconds = time.perf_counter() - start

    print(
        f"cpu_bound(n) for 20 numbers near {args.size:,}; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, LocalCluster of {args.workers} worker processes x 1 thread"
    )
    rows = [
        ("serial (list(map(...)))", f"{serial_seconds:.2f} s"),
        ('parallel_map, backend="process"', f"{process_seconds:.2f} s"),
        ("parallel_map on Dask", f"{dask_seconds:.2f} s"),
        ("parallel_map on Dask, serial_fallback=False", f"{forced_seconds:.2f} s"),
        ("speedup (serial / Dask)", f"{serial_seconds / dask_seconds:.2f}x"),
        ("cluster start, close", f"{start_seconds:.2f} s, {close_seconds:.2f} s"),
        (f"one task (chunk), {tasks} in a row", f"{tiny_seconds / tasks * 1000:.1f} ms"),
    ]
    for label, value in rows:
        print(f"{label:<46}{value}")


if __name__ == "__main__":
    main()
