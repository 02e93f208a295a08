"""Time from a fault to the exception in the caller, for each kind of failure.

Run: ``python benchmarks/fault_times.py``. Each figure is the median of a few runs,
measured from the moment the fault happens (recorded by the faulting worker, or the
timeout's due time) to the moment the caller catches the exception.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import time

from parmap import WorkerCrashedError, parallel_map

RUNS = 5


def _stamp_and(action: str, x: int) -> int:
    """Item 3 records when it faults, then faults; item 0 keeps its worker busy."""
    if x == 0:
        threading.Event().wait()  # the other worker is stuck: it must be stopped too
    if x == 3:
        with open(STAMP, "w") as file:
            file.write(repr(time.time()))
        if action == "raise":
            raise ValueError("fault")
        if action == "exit":
            os._exit(7)
        if action == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
    return x


def raise_fault(x: int) -> int:
    return _stamp_and("raise", x)


def exit_fault(x: int) -> int:
    return _stamp_and("exit", x)


def sigkill_fault(x: int) -> int:
    return _stamp_and("sigkill", x)


STAMP = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"parmap-fault-{os.getpid()}")


def fault_to_exception(fn: object, expected: type[BaseException]) -> float:
    try:
        parallel_map(fn, range(8), 2, 1, serial_fallback=False)  # type: ignore[arg-type]
    except expected:
        caught = time.time()
    else:
        raise AssertionError("no exception")
    with open(STAMP) as file:
        return caught - float(file.read())


def timeout_overshoot() -> float:
    began = time.time()
    try:
        parallel_map(raise_fault, [0, 0], 2, 1, serial_fallback=False, timeout=0.5)
    except TimeoutError:
        return time.time() - began - 0.5
    raise AssertionError("no timeout")


def main() -> None:
    rows = [
        ("fn raised (other worker hung)", lambda: fault_to_exception(raise_fault, ValueError)),
        ("worker called os._exit", lambda: fault_to_exception(exit_fault, WorkerCrashedError)),
        ("worker got SIGKILL", lambda: fault_to_exception(sigkill_fault, WorkerCrashedError)),
        ("timeout=0.5 s, overshoot", timeout_overshoot),
    ]
    print(f"Python {sys.version.split()[0]}, 2 workers, fork; median of {RUNS} runs")
    for label, measure in rows:
        seconds = statistics.median(measure() for _ in range(RUNS))
        print(f"  {label:32s} {seconds * 1000:8.1f} ms")
    os.unlink(STAMP)


if __name__ == "__main__":
    main()
