"""numpy matrix work in worker processes, with and without parmap's native thread limit.

    python benchmarks/native_threads.py [--rounds 5] [--size 300]

Each worker runs numpy's BLAS, which by default starts one thread per CPU. With as
many workers as CPUs that makes CPUs x CPUs threads competing for CPUs cores; parmap
gives each worker CPUs // workers threads instead (``limit_native_threads=True``,
the default). Every measurement runs in a fresh interpreter that imported numpy
before the workers started (the usual case, and the hard one under fork); the two
settings take turns, and the medians are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

ITEMS = 16
PRODUCTS_PER_ITEM = 10


def matrix_work(seed: int, size: int) -> float:
    """Ten matrix products of a size x size matrix; returns a checksum."""
    import numpy as np

    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((size, size)) / size
    for _ in range(PRODUCTS_PER_ITEM):
        matrix = matrix @ matrix + np.eye(size)
    return float(matrix.trace())


def child(limit: bool, size: int) -> None:
    from functools import partial

    import numpy as np  # noqa: F401 - loaded before the workers start
    from threadpoolctl import threadpool_info

    from parmap import parallel_map

    work = partial(matrix_work, size=size)
    expected = list(map(work, range(ITEMS)))
    started = time.perf_counter()
    results = parallel_map(work, range(ITEMS), serial_fallback=False, limit_native_threads=limit)
    seconds = time.perf_counter() - started
    # BLAS adds in a different order with more threads: equal up to rounding.
    assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(results, expected))
    blas = max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
    print(json.dumps({"seconds": seconds, "caller_blas_threads": blas}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child == "on", args.size)
        return 0
    times: dict[str, list[float]] = {"on": [], "off": []}
    blas = 0
    for _ in range(args.rounds):
        for setting in ("on", "off"):
            command = [sys.executable, __file__, "--child", setting, "--size", str(args.size)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            answer = json.loads(out.strip().splitlines()[-1])
            times[setting].append(answer["seconds"])
            blas = answer["caller_blas_threads"]
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    cpus = len(os.sched_getaffinity(0))
    print(f"{ITEMS} items of {PRODUCTS_PER_ITEM} products of {args.size}x{args.size} matrices,")
    print(f"{cpus} CPUs, BLAS threads per process by default: {blas}; medians of {args.rounds}")
    print(f"limit_native_threads=True  (default) {on:.3f} s")
    print(f"limit_native_threads=False           {off:.3f} s")
    print(f"the limit is {off / on:.2f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
