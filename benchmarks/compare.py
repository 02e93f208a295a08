"""Compare parmap with the builtin map, multiprocessing, concurrent.futures, joblib,
loky and mpire on every workload of workloads.py; write a markdown table and a chart.

    pip install -e '.[bench]'
    python benchmarks/compare.py                      # the full comparison (~10 min)
    python benchmarks/compare.py --scale 0.1 --repeat 1 --only origin,skewed

Every measurement runs in a fresh interpreter, so no contender inherits another's
workers, caches or heap. Contenders take turns (the order rotates each round), so a
burst of noise on a shared machine spreads over all of them instead of hitting one.
The parent samples the resident memory of each child's process tree (the child and
every process it started) and stops a child that passes --memory-limit or
--time-limit; such a run is reported as stopped, not as a time.

The table goes to --out (a markdown file; docs/performance.md by default, between
its ``<!-- comparison -->`` markers) and the chart next to it as an SVG file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pickle
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import (  # noqa: E402
    CONTENDERS,
    IO_THREADS,
    WORKLOADS,
    contenders_for,
    expected_result,
    parmap_contender,
    run_workload,
)

MARK_START = "<!-- comparison:start -->"
MARK_END = "<!-- comparison:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the median is kept)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the work")
    parser.add_argument("--workers", type=int, default=None, help="default: usable CPUs")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument(
        "--contenders",
        default="",
        help="comma-separated contender names (default: all); map and parmap always run",
    )
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--memory-limit", type=float, default=2000.0, help="MB per run")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "performance.md")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument(
        "--render", action="store_true", help="only redraw the table and chart from --json"
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("WORKLOAD", "CONTENDER", "EXPECTED"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    workers = args.workers or len(os.sched_getaffinity(0))
    if args.child:
        return child(*args.child, workers=workers, scale=args.scale)
    names = [n for n in args.only.split(",") if n] or list(WORKLOADS)
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    if args.render:
        results = json.loads(args.json.read_text())
    else:
        results = compare(names, workers, args)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    table = render_table(results)
    chart_path = args.out.parent / "img" / "comparison.svg"
    chart_path.parent.mkdir(parents=True, exist_ok=True)
    chart_path.write_text(render_chart(results))
    insert_table(args.out, table)
    print(table)
    print(f"\nwrote {args.out}, {chart_path} and {args.json}")
    return 0


def child(
    workload_name: str, contender_name: str, expected_file: str, *, workers: int, scale: float
) -> int:
    """One measurement in this fresh interpreter; prints its seconds as JSON."""
    expected = pickle.loads(Path(expected_file).read_bytes())
    contender = CONTENDERS[contender_name](workers)
    try:
        seconds = run_workload(contender, WORKLOADS[workload_name], scale, expected)
    finally:
        contender.close()
    print(json.dumps(seconds))
    return 0


def compare(names: list[str], workers: int, args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="parmap-compare-"))
    for name in names:
        workload = WORKLOADS[name]
        contenders = contenders_for(workload)
        if args.contenders:
            # map and the row's own parmap always run: every ratio of the row needs them
            # (on threads, parmap is "parmap threads (32)").
            chosen = {*args.contenders.split(","), "map", parmap_contender(workload)}
            contenders = [c for c in contenders if c in chosen]
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        # Computed once here, so each child only checks its answer against it.
        expected = scratch / f"{name}.pickle"
        expected.write_bytes(pickle.dumps(expected_result(workload, args.scale)))
        for round_ in range(args.repeat):
            shift = round_ % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                stopped = next((r for r in runs[contender] if "stopped" in r), None)
                if stopped is not None:  # no median any more: running it again only costs time
                    run = dict(stopped, not_rerun=True)
                else:
                    run = measure(name, contender, expected, workers, args)
                runs[contender].append(run)
                shown = run.get("stopped") or " / ".join(f"{s:.4f}" for s in run["seconds"])
                if run.get("not_rerun"):
                    shown += " (in an earlier round; not run again)"
                print(
                    f"{name:<13} {contender:<26} {shown}  peak {run['peak_mb']:.0f} MB", flush=True
                )
        rows.append({"workload": name, "title": workload.title, "runs": runs})
    shutil.rmtree(scratch)
    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "workers": workers,
        "scale": args.scale,
        "repeat": args.repeat,
        "rows": rows,
    }


def measure(
    workload: str, contender: str, expected: Path, workers: int, args: argparse.Namespace
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", workload, contender, str(expected)]
    command += ["--workers", str(workers), "--scale", str(args.scale)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = Watch(process.pid, args.memory_limit, args.time_limit)
    watch.start()
    out, err = process.communicate()
    watch.stop()
    run: dict[str, Any] = {"peak_mb": watch.peak_mb}
    if watch.stopped:
        run["stopped"] = watch.stopped
    elif process.returncode != 0:
        raise RuntimeError(f"{contender} on {workload} failed:\n{err}")
    else:
        run["seconds"] = json.loads(out.strip().splitlines()[-1])
    return run


class Watch(threading.Thread):
    """Samples the RSS of a process tree every 20 ms; stops it past the limits.

    The sampling runs beside the measurement, on a CPU the contenders want: on Linux it
    reads /proc directly (about 0.1 ms a sample), as psutil's tree walk reads every
    process on the machine (about 0.8 ms, 4 % of a CPU at this rate).
    """

    def __init__(self, pid: int, memory_limit_mb: float, time_limit: float) -> None:
        super().__init__(daemon=True)
        self.tree = ProcTree(pid) if ProcTree.works(pid) else PsutilTree(pid)
        self.memory_limit = memory_limit_mb
        self.deadline = time.monotonic() + time_limit
        self.time_limit = time_limit
        self.peak_mb = 0.0
        self.stopped: Optional[str] = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            sample = self.tree.sample()
            if sample is None:
                continue  # a process ended between the listing and the reading
            pids, rss = sample
            self.peak_mb = max(self.peak_mb, rss / 2**20)
            if self.peak_mb > self.memory_limit:
                self.kill(pids, f"stopped: over {self.memory_limit:.0f} MB")
            elif time.monotonic() > self.deadline:
                self.kill(pids, f"stopped: over {self.time_limit:.0f} s")

    def kill(self, pids: list[int], why: str) -> None:
        self.stopped = why
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        self.done.set()

    def stop(self) -> None:
        self.done.set()
        self.join()


class ProcTree:
    """A process and its descendants, from /proc/PID/task/TID/children (Linux)."""

    PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, root: int) -> None:
        self.root = root

    @staticmethod
    def works(pid: int) -> bool:
        return os.path.exists(f"/proc/{pid}/task/{pid}/children")

    def sample(self) -> Optional[tuple[list[int], int]]:
        """The pids of the tree and their total resident memory in bytes."""
        pids, rss, stack = [], 0, [self.root]
        while stack:
            pid = stack.pop()
            try:  # a process may end between the listing and the reading
                with open(f"/proc/{pid}/statm") as statm:
                    rss += int(statm.read().split()[1]) * self.PAGE
                for thread in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{thread}/children") as children:
                        stack.extend(int(child) for child in children.read().split())
            except (OSError, ValueError, IndexError):
                continue
            pids.append(pid)
        return pids, rss


class PsutilTree:
    """The same through psutil, wherever /proc has no children lists."""

    def __init__(self, root: int) -> None:
        self.root = psutil.Process(root)

    def sample(self) -> Optional[tuple[list[int], int]]:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
            rss = sum(process.memory_info().rss for process in tree)
        except psutil.Error:
            return None
        return [process.pid for process in tree], rss


# -- reporting -------------------------------------------------------------------------


def medians(runs: list[dict[str, Any]], index: int) -> Optional[float]:
    times = [r["seconds"][index] for r in runs if "seconds" in r]
    if len(times) < len(runs):  # stopped at least once: no honest median
        return None
    return statistics.median(times)


def figure_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: the 8-item workload gives two (first call, later calls)."""
    rows = []
    for row in results["rows"]:
        workload = WORKLOADS[row["workload"]]
        parts = [(row["title"], 0)]
        if workload.kind == "first":
            parts.append(("8 trivial items, later calls (median of 21)", 1))
        for title, index in parts:
            times = {name: medians(runs, index) for name, runs in row["runs"].items()}
            by_round = {
                name: [r["seconds"][index] if "seconds" in r else None for r in runs]
                for name, runs in row["runs"].items()
            }
            peaks = {name: max(r["peak_mb"] for r in runs) for name, runs in row["runs"].items()}
            stopped = {
                name: next(r["stopped"] for r in runs if "stopped" in r)
                for name, runs in row["runs"].items()
                if any("stopped" in r for r in runs)
            }
            ours = parmap_contender(workload)
            rows.append(
                {
                    "workload": workload.name,
                    "later_calls": index == 1,
                    "title": title,
                    "kind": workload.kind,
                    "times": times,
                    "by_round": by_round,
                    "peaks": peaks,
                    "stopped": stopped,
                    "ours": ours,
                }
            )
    return rows


def best_other(row: dict[str, Any]) -> tuple[str, float]:
    others = {
        name: t
        for name, t in row["times"].items()
        if t is not None and not name.startswith("parmap")
    }
    name = min(others, key=others.__getitem__)
    return name, others[name]


def round_pairs(row: dict[str, Any], other: str) -> list[tuple[float, float]]:
    """(parmap's time, *other*'s time) in each round both finished, run one after the other."""
    return [
        (ours, theirs)
        for ours, theirs in zip(row["by_round"][row["ours"]], row["by_round"][other])
        if ours is not None and theirs is not None
    ]


def rounds_led(row: dict[str, Any], other: str) -> str:
    """In how many rounds parmap took no longer than *other*: a median ahead by less than
    the noise shows as about half."""
    pairs = round_pairs(row, other)
    return f"{sum(ours <= theirs for ours, theirs in pairs)} of {len(pairs)}"


def paired_ratio(row: dict[str, Any], other: str) -> str:
    """The median of parmap's time ÷ *other*'s, round by round: a burst of noise that slowed
    both runs of a round cancels out, which it does not in a ratio of medians."""
    pairs = round_pairs(row, other)
    if not pairs or any(theirs <= 0 for _, theirs in pairs):
        return "-"
    return f"{statistics.median(ours / theirs for ours, theirs in pairs):.3f}"


def render_table(results: dict[str, Any]) -> str:
    lines = [
        f"Measured {results['date']} on {results['machine']}, Python {results['python']}, "
        f"{results['workers']} workers, medians of {results['repeat']} runs, each in a "
        f"fresh interpreter (`python benchmarks/compare.py"
        + (f" --scale {results['scale']:g}" if results["scale"] != 1 else "")
        + (f" --repeat {results['repeat']}" if results["repeat"] != 3 else "")
        + "`).",
        "",
        "| workload | `map` | best other | parmap | parmap ÷ `map` | parmap ÷ best other "
        "| rounds parmap led it | paired ratio | parmap, cold |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = figure_rows(results)
    for row in rows:
        ours = row["times"][row["ours"]]
        mapped = row["times"]["map"]
        name, best = best_other(row)
        cold = (
            seconds(row["times"].get("parmap (cold)")) if "parmap (cold)" in row["times"] else "-"
        )
        lines.append(
            f"| {row['title']} | {seconds(mapped)} | {name}: {seconds(best)} | "
            f"{seconds(ours)} | {ratio(ours, mapped)} | **{ratio(ours, best)}** | "
            f"{rounds_led(row, name)} | {paired_ratio(row, name)} | {cold} |"
        )
    lines += [
        "",
        steadiness(rows[0]),
        "",
        "parmap is timed with warm workers, like the reused pools; *parmap, cold* is its first "
        "call in a fresh interpreter, which starts the workers and imports `multiprocessing`. "
        "*Paired ratio*: the median, over the rounds, of parmap's time ÷ the best other's in "
        "the same round.",
    ]
    lines += ["", "All contenders (median seconds; peak MB of the process tree for streams):", ""]
    for row in rows:
        lines.append(f"- {row['title']}: " + ", ".join(cell(row, name) for name in row["times"]))
    checks = floor_checks(rows, results["workers"])
    if checks:
        lines += ["", "The floors of issue #5 that this table can check, from its medians:", ""]
        lines += ["| floor | measured | holds |", "|---|---:|---|"]
        lines += [
            f"| {floor} | {measured} | {'yes' if holds else '**no**'} |"
            for floor, measured, holds in checks
        ]
    return "\n".join(lines)


def steadiness(row: dict[str, Any]) -> str:
    """How much the same serial work varied from round to round: the noise every ratio of
    the table has to be read against, which a shared machine cannot be asked to keep low."""
    times = sorted(t for t in row["by_round"]["map"] if t is not None)
    spread = (times[-1] - times[0]) / statistics.median(times)
    return (
        f"Steadiness of the machine: `map` took {seconds(times[0])} to {seconds(times[-1])} "
        f"on the {row['title'].split(':')[0]} from round to round, {spread:.1%} of its median; "
        "differences smaller than that between two contenders are within the noise."
    )


Check = tuple[str, str, bool]  # a floor, what was measured, whether it holds


def floor_checks(rows: list[dict[str, Any]], workers: int) -> list[Check]:
    """Each floor of issue #5 that the measured rows can show, checked on their medians.

    Every row has the general floor (parmap's median at most the best other contender's,
    ``map`` included); rows whose work has a floor of its own add it. A stopped
    contender has no median and no check.
    """
    checks = []
    for row in rows:
        ours = row["times"][row["ours"]]
        _, best = best_other(row)
        if ours is not None:
            floor = f"{row['title']}: ≤ 1.00x the best other"
            checks.append((floor, f"{ours / best:.3f}x", ours <= best))
    figures = Figures(rows)
    for own_floor in (efficiency_floors, map_floors, stream_floors, thread_floors):
        checks += own_floor(figures, workers)
    return checks


class Figures:
    """The medians and peaks of the rows, by workload and contender (None if not run)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = {(row["workload"], row["later_calls"]): row for row in rows}

    def time(self, workload: str, contender: str, later: bool = False) -> Optional[float]:
        row = self.rows.get((workload, later))
        return None if row is None else row["times"].get(contender)

    def peak(self, workload: str, contender: str) -> Optional[float]:
        row = self.rows.get((workload, False))
        return None if row is None else row["peaks"].get(contender)


def efficiency_floors(figures: Figures, workers: int) -> list[Check]:
    checks = []
    for workload, least in [("origin", 0.97), ("items_2ms", 0.97), ("skewed", 0.90)]:
        serial, ours = figures.time(workload, "map"), figures.time(workload, "parmap")
        if serial and ours:
            efficiency = serial / (ours * workers)
            floor = f"{workload}: CPU efficiency, `map` ÷ (parmap · {workers}), ≥ {least:.2f}"
            checks.append((floor, f"{efficiency:.3f}", efficiency >= least))
    return checks


def map_floors(figures: Figures, workers: int) -> list[Check]:
    checks = []
    for workload in ("trivial_1m", "payloads_1mb", "lazy_2m"):
        serial, ours = figures.time(workload, "map"), figures.time(workload, "parmap")
        if serial and ours:
            checks.append(
                (f"{workload}: ≤ 1.10x `map`", f"{ours / serial:.3f}x", ours <= 1.10 * serial)
            )
    for later, most in ((False, 0.005), (True, 0.001)):
        serial = figures.time("eight_items", "map", later)
        ours = figures.time("eight_items", "parmap", later)
        if serial is not None and ours is not None:
            calls = "later calls" if later else "first call"
            floor = f"eight_items, {calls}: within {most * 1000:g} ms of `map`"
            checks.append((floor, f"{(ours - serial) * 1000:.3f} ms", ours - serial <= most))
    serial, ours = figures.time("calls_50x64", "map"), figures.time("calls_50x64", "parmap")
    if serial and ours:
        floor = "calls_50x64: ≥ 1.75x faster than `map`"
        checks.append((floor, f"{serial / ours:.2f}x", serial >= 1.75 * ours))
    return checks


def stream_floors(figures: Figures, workers: int) -> list[Check]:
    checks = []
    peak, longer = figures.peak("lazy_2m", "parmap"), figures.peak("lazy_8m", "parmap")
    if peak is not None:
        floor = "lazy_2m: peak memory of the process tree < 100 MB"
        checks.append((floor, f"{peak:.0f} MB", peak < 100))
        if longer is not None:
            floor = "lazy_8m: peak memory not growing (≤ 1.10x lazy_2m's)"
            checks.append((floor, f"{longer:.0f} MB", longer <= 1.10 * peak))
    return checks


def thread_floors(figures: Figures, workers: int) -> list[Check]:
    checks = []
    pool = f"ThreadPoolExecutor ({IO_THREADS})"
    theirs = figures.time("io_threads", pool)
    ours = figures.time("io_threads", f"parmap threads ({IO_THREADS})")
    if theirs and ours:
        checks.append(
            (f"io_threads: ≤ 1.05x {pool}", f"{ours / theirs:.3f}x", ours <= 1.05 * theirs)
        )
    default = figures.time("io_threads", "parmap threads (default)")
    two = figures.time("io_threads", "parmap threads (2)")
    if default and two:
        floor = "io_threads: the default thread count ≥ 8x faster than 2 threads"
        checks.append((floor, f"{two / default:.1f}x", two >= 8 * default))
    return checks


def cell(row: dict[str, Any], name: str) -> str:
    if name in row["stopped"]:
        return f"{name} {row['stopped'][name]} ({row['peaks'][name]:.0f} MB)"
    text = f"{name} {seconds(row['times'][name])}"
    if row["kind"] == "lazy":
        text += f" ({row['peaks'][name]:.0f} MB)"
    return text


def seconds(value: Optional[float]) -> str:
    if value is None:
        return "stopped"
    if value < 0.01:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s"


def ratio(ours: Optional[float], theirs: Optional[float]) -> str:
    if ours is None or not theirs:
        return "n/a"
    return f"{ours / theirs:.2f}x"


def render_chart(results: dict[str, Any]) -> str:
    """Bars of parmap, the best other contender and map, relative to the fastest."""
    rows = figure_rows(results)
    bar, gap, left, width = 14, 16, 330, 420
    height = 40 + len(rows) * (3 * bar + gap)
    colours = {"parmap": "#2a7ab9", "best other": "#9a9a9a", "map": "#e08a2c"}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 230}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        '<text x="10" y="18" font-weight="bold">Time relative to the fastest '
        "contender (shorter is better; bars stop at 4x)</text>",
    ]
    y = 34
    for row in rows:
        name, best = best_other(row)
        ours, mapped = row["times"][row["ours"]], row["times"]["map"]
        fastest = min(t for t in (ours, best, mapped) if t is not None)
        out.append(f'<text x="10" y="{y + 1.7 * bar}">{escape(row["title"])}</text>')
        for label, value in (("parmap", ours), ("best other", best), ("map", mapped)):
            relative = (value / fastest) if value is not None else 4.0
            length = width * min(relative, 4.0) / 4.0
            out.append(
                f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar - 2}" '
                f'fill="{colours[label]}"/>'
            )
            shown = "stopped" if value is None else f"{relative:.2f}x ({seconds(value)})"
            tag = name if label == "best other" else label
            out.append(
                f'<text x="{left + length + 4:.1f}" y="{y + bar - 4}">{escape(tag)} {shown}</text>'
            )
            y += bar
        y += gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def insert_table(path: Path, table: str) -> None:
    """Replace what stands between the markers of *path* (or append them)."""
    text = path.read_text() if path.exists() else ""
    block = f"{MARK_START}\n{table}\n{MARK_END}"
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
