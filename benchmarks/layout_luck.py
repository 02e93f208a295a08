"""How far the speed of the same CPU-bound item differs between the workers of two pools,
when neither pool does anything during the item.

    python benchmarks/layout_luck.py                 # about 2 minutes on 2 CPUs
    python benchmarks/layout_luck.py --rounds 5 --scale 0.5
    python benchmarks/layout_luck.py --free-order    # one process, a few seconds

Runs 20 items through ``ProcessPoolExecutor`` and through parmap (warm), each measurement
in a fresh interpreter, in shuffled order, and reports the CPU time one item takes inside
a worker (the thread's own CPU time, so waiting and scheduling do not count). Seven kinds
of work (``WORKS``): the origin example's ``cpu_bound``, other pure-Python loops, C loops
that make and drop objects, and ``zlib.crc32``. For ``cpu_bound`` also: each worker first
allocates and keeps 111 small ints (which moves where the hot loop's objects land in
pymalloc's pools), and the whole run under ``PYTHONMALLOC=malloc``.

docs/performance.md ("Same item, different workers") shows a run: the two pools' workers
differ by a few per cent either way, with a sign that changes with the work, with a few
objects more or less in the worker's heap, and from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable, NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import CONTENDERS, cpu_bound, origin_items  # noqa: E402

CONTENDER_NAMES = ("PPE (default)", "parmap")
PADDINGS = (0, 111)
_kept: list[list[int]] = []
MEGABYTE = bytes(range(256)) * 4096


def float_loop(number: int) -> float:
    total = 0.0
    for i in range(number // 2):
        total += i * 0.5
    return total


def dict_churn(number: int) -> int:
    table: dict[int, int] = {}
    for i in range(number // 2):
        table[i & 4095] = i
    return len(table)


def str_join(number: int) -> int:
    return len("".join([str(i) for i in range(number // 10)]))


def shuffle_sort(number: int) -> int:
    values = list(range(number // 20))
    random.Random(number).shuffle(values)
    return sorted(values)[-1]


def sum_range(number: int) -> int:  # C code that makes and drops an int per step
    return sum(sum(range(2_000_000)) for _ in range(max(1, number // 500_000)))


def crc32(number: int) -> int:  # C code that allocates nothing
    return sum(zlib.crc32(MEGABYTE) for _ in range(max(1, number // 5_000)))


WORKS: dict[str, Callable[[int], object]] = {
    "cpu_bound": cpu_bound,
    "float_loop": float_loop,
    "dict_churn": dict_churn,
    "str_join": str_join,
    "shuffle_sort": shuffle_sort,
    "sum_range": sum_range,
    "crc32": crc32,
}


def timed_item(number: int) -> tuple[int, float]:
    """Runs one item of LAYOUT_WORK; returns the pid and the CPU seconds it took."""
    if not _kept:  # first item in this process: keep LAYOUT_PADDING ints alive for good
        padding = int(os.environ.get("LAYOUT_PADDING", "0"))
        _kept.append([10**6 + i for i in range(padding)])
    work = WORKS[os.environ.get("LAYOUT_WORK", "cpu_bound")]
    began = time.thread_time()
    work(number)
    return os.getpid(), time.thread_time() - began


def child(contender_name: str, scale: float) -> None:
    """One measurement (run in a fresh interpreter); prints JSON."""
    contender = CONTENDERS[contender_name](2)
    try:
        items = origin_items(scale)
        began = time.perf_counter()
        results = contender.map(timed_item, items)
        wall = time.perf_counter() - began
    finally:
        contender.close()
    # Workers only: parmap times its first item in the caller.
    in_workers = [seconds for pid, seconds in results if pid != os.getpid()]
    print(json.dumps({"wall": wall, "item_cpu": in_workers}))


def free_order(rounds: int = 30) -> tuple[float, float]:
    """Median CPU seconds of ``sum(range(2_000_000))`` run the way a worker runs fn: with a
    chunk message of five ints just unpickled, and the previous chunk's message and items
    freed after it (parmap's worker loop before the fix) or before it (now)."""
    payload = pickle.dumps(("chunk", 0, [5_000_000 + i for i in range(5)], None), 5)
    freed_after, freed_first = [], []
    held: dict[str, Any] = {}  # the worker loop's locals: the message and its items
    for _ in range(rounds):
        held["message"] = pickle.loads(payload)
        held["items"] = held["message"][2]  # the previous items are freed here, last
        freed_after.append(_loop_seconds())
        held.clear()
        held["message"] = pickle.loads(payload)
        held["items"] = held["message"][2]
        freed_first.append(_loop_seconds())
    return statistics.median(freed_after), statistics.median(freed_first)


def _loop_seconds() -> float:
    began = time.thread_time()
    sum(range(2_000_000))
    return time.thread_time() - began


class Variant(NamedTuple):
    contender: str
    work: str  # a name in WORKS
    padding: int  # small ints each worker allocates and keeps before its first item
    system_malloc: bool  # PYTHONMALLOC=malloc: no pymalloc pools


def variants() -> list[Variant]:
    chosen = []
    for contender in CONTENDER_NAMES:
        chosen += [Variant(contender, work, 0, False) for work in WORKS]
        chosen += [Variant(contender, "cpu_bound", k, False) for k in PADDINGS if k]
        chosen.append(Variant(contender, "cpu_bound", 0, True))
    return chosen


def measure(variant: Variant, scale: float) -> dict[str, Any]:
    env = dict(os.environ, LAYOUT_PADDING=str(variant.padding), LAYOUT_WORK=variant.work)
    if variant.system_malloc:
        env["PYTHONMALLOC"] = "malloc"
    code = f"import layout_luck; layout_luck.child({variant.contender!r}, {scale!r})"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply each item's work")
    parser.add_argument(
        "--free-order",
        action="store_true",
        help="only time a loop after the previous chunk message is freed late or first",
    )
    args = parser.parse_args()
    if args.free_order:
        after, first = free_order()
        print(f"freed after the next was unpickled: {after * 1000:.2f} ms")
        print(f"freed first: {first * 1000:.2f} ms ({after / first:.3f}x)")
        return 0
    chosen = variants()
    runs: dict[Variant, list[dict[str, Any]]] = {v: [] for v in chosen}
    for round_ in range(args.rounds):
        order = list(chosen)
        random.Random(round_).shuffle(order)
        for variant in order:
            runs[variant].append(measure(variant, args.scale))
    print(f"{args.rounds} rounds, scale {args.scale}, Python {sys.version.split()[0]}\n")
    print("| work | contender | allocator | ints kept | CPU ms per item | median wall s |")
    print("|---|---|---|---:|---:|---:|")
    for variant in sorted(chosen, key=lambda v: (v.work, v.system_malloc, v.padding)):
        measured = runs[variant]
        per_item = statistics.mean(c for run in measured for c in run["item_cpu"])
        wall = statistics.median(run["wall"] for run in measured)
        allocator = "malloc" if variant.system_malloc else "pymalloc"
        print(
            f"| {variant.work} | {variant.contender} | {allocator} | {variant.padding} "
            f"| {per_item * 1000:.1f} | {wall:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
