"""Allocating work in forked workers of a caller that holds many objects.

    python benchmarks/inherited_heap.py [--rounds 3] [--objects 3000000]

The caller builds ``--objects`` small lists, then starts each pool (fork), which runs 16
items that each build 300,000 one-element lists: enough allocation for the workers'
garbage collector to run full collections. A collection writes to the header of every
object it scans, so a worker that scans what it inherited copies the caller's heap page
by page. parmap's workers freeze what they inherit first (docs/design.md, "Workers freeze
what they inherit"). Each measurement runs in a fresh interpreter, contenders take turns,
and the medians are printed: the call's time and the largest private memory of a worker
after it (the pages it no longer shares with the caller, among others).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import CONTENDERS  # noqa: E402

NAMES = ("Pool (reused)", "PPE (tuned)", "parmap")
ITEMS = 16
LISTS_PER_ITEM = 300_000


def build_lists(count: int) -> tuple[int, int]:
    """Builds *count* one-element lists and keeps them to the end; returns (count, pid)."""
    kept = [[i] for i in range(count)]
    return len(kept), os.getpid()


def private_mb(pid: int) -> float:
    """Memory of process *pid* that no other process shares, in MB (Linux)."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        kilobytes = sum(int(line.split()[1]) for line in rollup if line.startswith("Private_"))
    return kilobytes / 2**10


def child(name: str, objects: int) -> None:
    """One measurement in this fresh interpreter; prints JSON."""
    held = [[i, str(i)] for i in range(objects)]  # before the workers start, as in a notebook
    contender = CONTENDERS[name](2)
    try:
        began = time.perf_counter()
        results = contender.map(build_lists, [LISTS_PER_ITEM] * ITEMS)
        seconds = time.perf_counter() - began
        assert [count for count, _ in results] == [LISTS_PER_ITEM] * ITEMS
        memory = max(private_mb(pid) for pid in {pid for _, pid in results})
    finally:
        contender.close()
    assert len(held) == objects
    print(json.dumps({"seconds": seconds, "worker_private_mb": memory}))


def measure(name: str, objects: int) -> dict[str, Any]:
    code = f"import inherited_heap; inherited_heap.child({name!r}, {objects})"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--objects", type=int, default=3_000_000)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in NAMES}
    for round_ in range(args.rounds):
        shift = round_ % len(NAMES)
        for name in NAMES[shift:] + NAMES[:shift]:
            runs[name].append(measure(name, args.objects))
    print(f"{args.objects:,} lists in the caller, {args.rounds} rounds, medians\n")
    print("| contender | seconds | worker's private MB |")
    print("|---|---:|---:|")
    for name, measured in runs.items():
        seconds = statistics.median(run["seconds"] for run in measured)
        memory = statistics.median(run["worker_private_mb"] for run in measured)
        print(f"| {name} | {seconds:.3f} | {memory:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
