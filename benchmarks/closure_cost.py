"""What sending a function that holds 100 MB costs: parmap against multiprocessing.Pool.

parmap pickles fn once per call and sends it once per worker; ``Pool.map`` pickles the
function with every task (chunk). Run: ``python benchmarks/closure_cost.py``.
"""

from __future__ import annotations

import functools
import multiprocessing
import statistics
import sys
import time

import parmap
from parmap import parallel_map

PAYLOAD_BYTES = 100_000_000
ITEMS = 1_000
REPEATS = 3


def uses_payload(payload: bytes, x: int) -> int:
    return len(payload) + x


def time_parmap(payload: bytes) -> float:
    def closure(x: int) -> int:  # a real closure: sent by value
        return len(payload) + x

    began = time.perf_counter()
    result = parallel_map(closure, range(ITEMS), 2, serial_fallback=False)
    elapsed = time.perf_counter() - began
    assert result == [PAYLOAD_BYTES + x for x in range(ITEMS)]
    return elapsed


def time_pool(payload: bytes, chunksize: int | None) -> float:
    fn = functools.partial(uses_payload, payload)  # Pool cannot send a closure at all
    began = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map(fn, range(ITEMS), chunksize)
    elapsed = time.perf_counter() - began
    assert result == [PAYLOAD_BYTES + x for x in range(ITEMS)]
    return elapsed


def main() -> None:
    payload = bytes(PAYLOAD_BYTES)
    rows = []
    for label, run in [
        ("parmap (warm pool)", lambda: time_parmap(payload)),
        ("Pool.map, default chunksize", lambda: time_pool(payload, None)),
        ("Pool.map, chunksize=500", lambda: time_pool(payload, 500)),
    ]:
        run()  # warm-up: starts parmap's pool, fills caches
        rows.append((label, statistics.median(run() for _ in range(REPEATS))))
    parmap.shutdown()
    print(
        f"{ITEMS} items, fn holding {PAYLOAD_BYTES // 1_000_000} MB, 2 workers, "
        f"Python {sys.version.split()[0]}, median of {REPEATS}"
    )
    for label, seconds in rows:
        print(f"  {label:30s} {seconds:7.3f} s")


if __name__ == "__main__":
    main()
