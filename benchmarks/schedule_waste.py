"""Where a pool's time goes on one workload: the items themselves, and the waste around them.

    python benchmarks/schedule_waste.py                          # 2,000 items of ~2 ms
    python benchmarks/schedule_waste.py --workload calls_50x64 --rounds 10

Everything runs in one process. Every contender's workers are started and warmed up
first, then each round runs the workload once with each contender, in turn. ``fn`` is
wrapped so that every item records the worker process it ran in and when it started and
ended (``time.perf_counter`` is one clock for all processes on Linux and macOS). For each
call, and then as the median over all calls, it reports in milliseconds:

- *wall*: the call as its caller sees it;
- *busy*: time inside ``fn`` per worker, the items' own cost (it moves by a few per cent
  from one worker process to another: docs/performance.md, "Same item, different workers");
- *before*: from the call until the last worker starts its first item;
- *between*: per worker, the time between its items (chunk round trips included);
- *uneven*: how long the first worker to finish waits for the last one;
- *after*: from the end of the last item until the call returns.

*busy* is the items' cost; the other four are what a schedule controls. Items that parmap
times in the caller before it hands work out are left out of every measure but *wall*.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import CONTENDERS, WORKLOADS

DEFAULT_CONTENDERS = ("Pool (reused)", "PPE (tuned)", "loky", "parmap")
#: Tells the workers which workload's fn to run (inherited under every start method).
WORKLOAD_VARIABLE = "SCHEDULE_WASTE_WORKLOAD"
MEASURES = ("wall", "busy", "before", "between", "uneven", "after")


#: The workload's fn, set before any pool starts: workers that fork, or that receive
#: ``stamped`` by value (loky, parmap), get it with it; the others look it up by name.
_work: Callable[[Any], Any] | None = None


def stamped(item: Any) -> tuple[int, float, float]:
    """Runs the workload's fn on *item*; returns the pid and when the item began and ended."""
    fn = _work if _work is not None else WORKLOADS[os.environ[WORKLOAD_VARIABLE]].fn
    began = time.perf_counter()
    fn(item)
    return os.getpid(), began, time.perf_counter()


def waste(
    stamps: list[tuple[int, float, float]], called: float, returned: float
) -> dict[str, float] | None:
    """The measures of one call (seconds) from its items' stamps; None if every item ran
    in the caller (parmap found the items too cheap to send): no schedule to measure."""
    by_worker: dict[int, list[tuple[float, float]]] = {}
    for pid, began, ended in stamps:
        if pid != os.getpid():  # not an item parmap's probe ran in the caller
            by_worker.setdefault(pid, []).append((began, ended))
    spans = [sorted(items) for items in by_worker.values()]
    if not spans:
        return None
    ends = sorted(span[-1][1] for span in spans)
    workers = len(spans)
    return {
        "wall": returned - called,
        "busy": sum(ended - began for span in spans for began, ended in span) / workers,
        "before": max(span[0][0] for span in spans) - called,
        "between": sum(
            later[0] - earlier[1] for span in spans for earlier, later in zip(span, span[1:])
        )
        / workers,
        "uneven": ends[-1] - ends[0],
        "after": returned - ends[-1],
    }


def measure(
    workload_name: str, contender_names: list[str], rounds: int, scale: float
) -> dict[str, list[dict[str, float]]]:
    workload = WORKLOADS[workload_name]
    if workload.kind not in ("map", "calls"):
        raise SystemExit(f"{workload_name} is a {workload.kind!r} workload: only map and calls")
    global _work
    os.environ[WORKLOAD_VARIABLE] = workload_name
    _work = workload.fn
    items = workload.make_items(scale)
    calls = workload.calls if workload.kind == "calls" else 1
    contenders = [CONTENDERS[name](2) for name in contender_names]
    try:
        for contender in contenders:  # start and warm up every pool before any timing
            contender.map(stamped, items)
        per_call: dict[str, list[dict[str, float]]] = {name: [] for name in contender_names}
        for _ in range(rounds):
            for contender in contenders:
                for _ in range(calls):
                    called = time.perf_counter()
                    stamps = contender.map(stamped, items)
                    measures = waste(stamps, called, time.perf_counter())
                    if measures is not None:
                        per_call[contender.name].append(measures)
        return per_call
    finally:
        for contender in contenders:
            contender.close()


def table(per_call: dict[str, list[dict[str, float]]]) -> str:
    lines = [
        "| contender | " + " | ".join(f"{m} ms" for m in MEASURES) + " |",
        "|---|" + "---:|" * len(MEASURES),
    ]
    for name, calls in per_call.items():
        if not calls:
            lines.append(f"| {name} | every call ran in the caller |" + " |" * (len(MEASURES) - 1))
            continue
        medians = [statistics.median(call[m] for call in calls) * 1000 for m in MEASURES]
        lines.append(f"| {name} | " + " | ".join(f"{value:.2f}" for value in medians) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="items_2ms", help="a map or calls workload")
    parser.add_argument("--contenders", default=",".join(DEFAULT_CONTENDERS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the work")
    args = parser.parse_args(argv)
    names: list[str] = args.contenders.split(",")
    per_call = measure(args.workload, names, args.rounds, args.scale)
    title = WORKLOADS[args.workload].title
    print(f"{title}, 2 workers, medians over the calls that used workers:\n")
    print(table(per_call))


if __name__ == "__main__":
    main()
