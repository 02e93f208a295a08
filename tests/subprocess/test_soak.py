"""Many calls with random faults end with nothing leaked: processes, threads, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import describe, run_python

SOAK = """
import os, random, threading, time, warnings
warnings.simplefilter("error")
import psutil
import parmap
from parmap import parallel_map, parallel_imap, SerializationError, WorkerCrashedError

def work(x):
    kind, value = x
    if kind == "raise":
        raise ValueError(value)
    if kind == "crash":
        os._exit(3)
    if kind == "hang":
        threading.Event().wait()
    if kind == "lock":
        return threading.Lock()
    return value * 2

random.seed({seed})
expected = {{"raise": ValueError, "crash": WorkerCrashedError, "hang": TimeoutError,
            "lock": SerializationError}}
began = time.monotonic()
calls = 0
while time.monotonic() - began < 10 and calls < 100:
    calls += 1
    fault = random.choice(["none", "none", "raise", "crash", "hang", "lock", "shutdown"])
    items = [("ok", i) for i in range(random.randint(1, 40))]
    if fault == "shutdown":
        parmap.shutdown()
        continue
    if fault != "none":
        items[random.randrange(len(items))] = (fault, 0)
    limit = 0.5 if fault == "hang" else 30  # generous: restarting workers takes time
    try:
        if random.random() < 0.5:
            out = parallel_map(work, items, 2, random.choice([None, 1, 3]), start_method={method!r},
                               serial_fallback=False, timeout=limit)
        else:
            it = parallel_imap(work, items, 2, random.choice([None, 1, 3]), start_method={method!r},
                               serial_fallback=False, timeout=limit)
            out = [next(it) for _ in range(random.randint(0, len(items)))]
            it.close()
            assert out == [v * 2 for _, v in items[: len(out)]], out
            continue
    except Exception as error:
        assert isinstance(error, expected[fault]), (fault, repr(error))
    else:
        assert fault == "none", fault
        assert out == [v * 2 for _, v in items]
parmap.shutdown()
children = [c for c in psutil.Process().children(recursive=True)
            if "multiprocessing" not in " ".join(c.cmdline())]
assert psutil.wait_procs(children, timeout=5)[1] == [], children
assert threading.active_count() == 1, threading.enumerate()
print("calls", calls)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_soak_with_random_faults_leaks_nothing(method: str, tmp_path: Path) -> None:
    """Errors, crashes, timeouts, unpicklable results and shutdowns, then a clean exit."""
    result = run_python(SOAK.format(seed=7, method=method), tmp_path=tmp_path, timeout=90)
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("calls "), describe(result)
    assert result.stderr == "", describe(result)
