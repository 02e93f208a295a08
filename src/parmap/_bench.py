"""``python -m parmap bench``: the origin notes' example, serially and with parallel_map.

``cpu_bound(n) = sum(i * i for i in range(n))`` over ``[5_000_000 + x for x in
range(20)]``: the notes measured 8.9 s serially and 2.6 s with ``multiprocessing.Pool``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Optional, Sequence

#: The origin notes' input: 20 numbers a little above five million.
BASE_NUMBER = 5_000_000
ITEMS = 20


def cpu_bound(number: int) -> int:
    return sum(i * i for i in range(number))


def bench(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parmap bench",
        description="Time the origin example serially and with parmap.parallel_map.",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the work per item (default 1.0; 0.1 for a quick look)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: usable CPUs)"
    )
    parser.add_argument(
        "--start-method",
        choices=("fork", "spawn", "forkserver"),
        default=None,
        help="how workers start (default: the running Python's default)",
    )
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error(f"--scale must be > 0 (got {args.scale})")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be >= 1 (got {args.workers})")

    from . import parallel_map
    from ._cpu import available_cpus
    from ._platform import resolve_start_method

    numbers = [int(BASE_NUMBER * args.scale) + x for x in range(ITEMS)]
    workers = args.workers or available_cpus()
    method = resolve_start_method(args.start_method)
    print(f"parmap bench: sum(i * i for i in range(n)) for {ITEMS} numbers near {numbers[0]:,}")
    print(
        f"Python {platform.python_version()} on {platform.system()}, "
        f"{os.cpu_count()} CPUs ({available_cpus()} usable), {workers} workers, "
        f"start method {method}"
    )

    began = time.perf_counter()
    expected = list(map(cpu_bound, numbers))
    serial = time.perf_counter() - began
    print(f"serial   (list(map(...)))     {serial:8.2f} s")

    began = time.perf_counter()
    results = parallel_map(cpu_bound, numbers, workers=workers, start_method=method)
    parallel = time.perf_counter() - began
    print(f"parallel (parallel_map(...))  {parallel:8.2f} s")

    if results != expected:
        print("error: parallel results differ from serial ones", file=sys.stderr)
        return 1
    print(f"speedup                       {serial / parallel:8.2f}x")
    return 0
