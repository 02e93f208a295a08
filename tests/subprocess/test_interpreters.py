"""Behaviour that only a fresh interpreter can show: __main__ functions, exit, warnings."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from helpers import START_METHODS
from support import describe, run_python

MAP_MAIN_FUNCTION = """
import sys
from parmap import parallel_map

def triple(x):
    return 3 * x

if __name__ == "__main__":
    method = sys.argv[1] if len(sys.argv) > 1 else {method!r}
    options = dict(workers=2, start_method=method, serial_fallback=False)
    print(parallel_map(triple, range(50), **options) == [3 * x for x in range(50)])
    print(parallel_map(lambda x: x - 1, range(50), **options) == [x - 1 for x in range(50)])
"""


@pytest.mark.parametrize("how", ["script", "-c", "stdin"])
def test_functions_defined_in_main_work(how: str, start_method: str, tmp_path: Path) -> None:
    """Functions and lambdas from a script, python -c or stdin run in workers of every method."""
    result = run_python(MAP_MAIN_FUNCTION.format(method=start_method), how=how, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True", "True"], describe(result)


def test_exit_with_a_warm_pool_is_prompt_and_quiet(start_method: str, tmp_path: Path) -> None:
    """The interpreter exits with the pool still warm: no hang, no warning, no leaked resources."""
    code = f"""
    import warnings
    warnings.simplefilter("error")
    from parmap import parallel_map

    def square(x):
        return x * x

    if __name__ == "__main__":
        options = dict(workers=2, start_method={start_method!r}, serial_fallback=False)
        assert parallel_map(square, range(100), **options)[-1] == 99 * 99
        print("done")
    """
    result = run_python(code, tmp_path=tmp_path, timeout=30)
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() == "done"
    assert result.stderr == "", describe(result)


def test_workers_do_not_outlive_an_exited_caller(tmp_path: Path) -> None:
    """After the caller exits, none of its worker processes is still running."""
    import psutil

    code = """
    import os
    from parmap import parallel_map

    if __name__ == "__main__":
        pids = set(parallel_map(lambda _: os.getpid(), range(20), 2, 1, serial_fallback=False))
        print(" ".join(map(str, sorted(pids))))
    """
    result = run_python(code, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    pids = [int(pid) for pid in result.stdout.split()]
    assert pids, describe(result)
    survivors = [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert survivors == []


def test_debug_log_explains_the_decisions(tmp_path: Path) -> None:
    """The parmap logger at DEBUG says why a call ran serially or went parallel."""
    code = """
    import logging
    from parmap import parallel_map

    def square(x):
        return x * x

    if __name__ == "__main__":
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        parallel_map(square, range(10))
        parallel_map(square, range(10), 2, serial_fallback=False, start_method="spawn")
        parallel_map(square, range(10), backend="serial")
    """
    result = run_python(code, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    log = result.stderr
    assert "parmap: ran all 10 item(s) in the caller" in log, log
    assert "parmap: started 2 spawn worker(s)" in log, log
    assert "parmap: going parallel: backend=process start_method=spawn workers=2" in log, log
    assert 'running serially in the caller: backend="serial"' in log, log


INITIALIZER_IN_MAIN = """
import os
from parmap import parallel_map, parallel_starmap

session = None

def open_session(tag):
    global session
    session = (tag, os.getpid())

def use_session(x):
    return session

def use_session_with(x, y):
    return session

if __name__ == "__main__":
    for fallback in (False, True):
        options = dict(start_method={method!r}, initializer=open_session, initargs=("s",))
        options.update(serial_fallback=fallback)
        seen = set(parallel_map(use_session, range(40), 2, 1, **options))
        pairs = [(x, x) for x in range(40)]
        seen_starred = set(parallel_starmap(use_session_with, pairs, 2, 1, **options))
        print({{tag for tag, _ in seen | seen_starred}} == {{"s"}})
        if not fallback:
            print(os.getpid() not in {{pid for _, pid in seen | seen_starred}})
"""


def test_initializer_state_reaches_fn_defined_in_main(start_method: str, tmp_path: Path) -> None:
    """A global set by an initializer in __main__ is what fn (also in __main__) sees,
    through parallel_starmap too (it wraps fn: the state went to the wrapper, and fn saw
    None)."""
    result = run_python(INITIALIZER_IN_MAIN.format(method=start_method), tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"] * 3, describe(result)


CALLABLE_KINDS = """
import functools
from parmap import parallel_map

def outer():
    def nested(x):
        return x + 100
    return nested

class Scaler:
    def __init__(self, factor):
        self.factor = factor
    def scale(self, x):
        return self.factor * x

def power(x, exponent):
    return x ** exponent

if __name__ == "__main__":
    options = dict(workers=2, chunksize=3, start_method={method!r}, serial_fallback=False)
    xs = list(range(12))
    cases = {{
        "nested": (outer(), [x + 100 for x in xs]),
        "partial": (functools.partial(power, exponent=3), [x ** 3 for x in xs]),
        "partial-of-lambda": (functools.partial(lambda x, k: x - k, k=1), [x - 1 for x in xs]),
        "bound-method": (Scaler(4).scale, [4 * x for x in xs]),
    }}
    for name, (fn, expected) in cases.items():
        print(name, parallel_map(fn, xs, **options) == expected)
"""


def test_every_kind_of_callable_from_main_works(start_method: str, tmp_path: Path) -> None:
    """Nested functions, partials (of lambdas too) and bound methods of __main__ classes."""
    result = run_python(CALLABLE_KINDS.format(method=start_method), tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == [
        "nested",
        "True",
        "partial",
        "True",
        "partial-of-lambda",
        "True",
        "bound-method",
        "True",
    ], describe(result)


CONNECTION_PER_WORKER = """
import os
import sqlite3
from parmap import parallel_map
from helpers import busy_for

connection = None
CACHE = {{}}

def open_connection(path):
    global connection
    connection = sqlite3.connect(path)  # cannot be pickled
    CACHE["pid"] = os.getpid()  # filled in place, not assigned

def lookup(key):
    busy_for(0.002)  # enough work to go parallel
    row = connection.execute("SELECT ? * 2", (key,)).fetchone()
    return row[0], CACHE["pid"] == os.getpid()

if __name__ == "__main__":
    rows = parallel_map(lookup, range(200), 2, start_method={method!r},
                        initializer=open_connection, initargs=(":memory:",))
    print(rows == [(2 * key, True) for key in range(200)])
"""


def test_initializer_builds_unpicklable_state_per_worker(start_method: str, tmp_path: Path) -> None:
    """An initializer from the script opens a connection in each worker (and the caller).

    Neither the connection it made in the caller nor the caller's copy of a filled-in
    global travels to the workers: each worker uses its own.
    """
    tests = str(Path(__file__).resolve().parents[1])
    result = run_python(
        CONNECTION_PER_WORKER.format(method=start_method),
        tmp_path=tmp_path,
        env={"PYTHONPATH": tests},
    )
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"], describe(result)


def test_process_started_by_multiprocessing_exits_after_a_parallel_call(tmp_path: Path) -> None:
    """A multiprocessing.Process whose target used parmap still exits (warm pool stopped)."""
    code = """
    import multiprocessing
    from parmap import parallel_map

    def job():
        print(sum(parallel_map(abs, range(-9, 1), 2, serial_fallback=False)), flush=True)

    if __name__ == "__main__":
        child = multiprocessing.Process(target=job)
        child.start()
        child.join(30)
        print("exitcode", child.exitcode)
    """
    result = run_python(code, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["45", "exitcode", "0"], describe(result)


def test_default_start_method_is_found_without_importing_multiprocessing(tmp_path: Path) -> None:
    """parmap's guess of the default start method matches what multiprocessing says."""
    code = """
    import sys
    from parmap._platform import default_start_method

    guess = default_start_method()
    print("multiprocessing" in sys.modules)
    import multiprocessing
    print(guess == multiprocessing.get_all_start_methods()[0])
    """
    result = run_python(code, how="-c")
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["False", "True"], describe(result)


#: Scripts run with PARMAP_IDLE_TIMEOUT=1 start with this: what they need, and a wait for
#: workers to exit on their own, event-driven (each one's sentinel becomes ready then).
IDLE_TIMEOUT_PROLOGUE = """
import multiprocessing
import multiprocessing.connection
import os
from parmap import parallel_imap, parallel_map

def wait_for_exits(workers):
    pending = [p.sentinel for p in workers]
    while pending:
        ready = multiprocessing.connection.wait(pending, timeout=30)
        assert ready, "idle workers did not exit"
        pending = [s for s in pending if s not in ready]
"""

IDLE_WORKERS = """
def pid_of(_):
    return os.getpid()

if __name__ == "__main__":
    options = dict(workers=2, chunksize=1, start_method={method!r}, serial_fallback=False)
    first = set(parallel_map(pid_of, range(8), **options))
    workers = [p for p in multiprocessing.active_children() if p.pid in first]
    wait_for_exits(workers)
    print("exited", len(workers) == 2)
    second = set(parallel_map(pid_of, range(8), **options))
    print("fresh", first.isdisjoint(second) and len(second) == 2)
"""

PAUSED_CONSUMER = """
def pid_and_square(x):
    return os.getpid(), x * x

if __name__ == "__main__":
    options = dict(
        workers=2, chunksize=1, buffersize=2, start_method={method!r}, serial_fallback=False
    )
    results = parallel_imap(pid_and_square, range(40), **options)
    first = next(results)
    # The consumer pauses until every worker has exited idle.
    workers = [p for p in multiprocessing.active_children() if p.name == "parmap-worker"]
    old = {{p.pid for p in workers}}
    wait_for_exits(workers)
    rest = list(results)
    print("all", [square for _, square in [first, *rest]] == [x * x for x in range(40)])
    print("replaced", len(old) == 2 and any(pid not in old for pid, _ in rest))
"""


def _run_with_idle_timeout(
    script: str, start_method: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """*script* run after IDLE_TIMEOUT_PROLOGUE, with a 1 s idle timeout."""
    code = textwrap.dedent(IDLE_TIMEOUT_PROLOGUE) + script.format(method=start_method)
    return run_python(code, tmp_path=tmp_path, env={"PARMAP_IDLE_TIMEOUT": "1"})


def test_idle_workers_exit_and_are_replaced(start_method: str, tmp_path: Path) -> None:
    """After PARMAP_IDLE_TIMEOUT seconds idle, workers exit; the next call starts new ones."""
    result = _run_with_idle_timeout(IDLE_WORKERS, start_method, tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["exited", "True", "fresh", "True"], describe(result)


def test_a_consumer_pausing_past_the_idle_timeout_gets_every_result(
    start_method: str, tmp_path: Path
) -> None:
    """Workers that exit idle while a lazy consumer pauses (their chunks not sent yet) are
    replaced when it goes on: every result comes, in order, and no WorkerCrashedError."""
    result = _run_with_idle_timeout(PAUSED_CONSUMER, start_method, tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["all", "True", "replaced", "True"], describe(result)


#: A first item that is long because of what fn sets up on its first call: a module it
#: imports lazily (as with pandas or torch), or a table it fills under a lock. Either
#: takes 0.1 s of CPU, far past the first item's timer (20 ms with no workers yet).
FIRST_CALL_SET_UP = """
import threading
import time

def busy(seconds):
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass

_lock = threading.Lock()
_table = None

def via_a_lazy_import(x):
    import heavy_module
    return heavy_module.plus_one(x)

def through_a_lock(x):
    global _table
    with _lock:
        if _table is None:
            busy(0.1)
            _table = {i: i + 1 for i in range(100)}
    return _table[x]
"""

HEAVY_MODULE = """
from first_call import busy

busy(0.1)

def plus_one(x):
    return x + 1
"""

MAP_WITH_FIRST_CALL_SET_UP = """
import first_call
from parmap import parallel_map

if __name__ == "__main__":
    if {other_pool_first}:  # a warm pool of other settings, which this call must replace
        parallel_map(abs, range(6), workers=3, start_method="fork", serial_fallback=False)
    fn = getattr(first_call, {fn!r})
    results = parallel_map(fn, range(100), workers=2, start_method="fork", timeout=20)
    print(results == [x + 1 for x in range(100)])
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork start method is POSIX only")
@pytest.mark.parametrize("other_pool_first", [False, True], ids=["cold", "other pool warm"])
@pytest.mark.parametrize("fn", ["via_a_lazy_import", "through_a_lock"])
def test_no_worker_is_forked_in_the_middle_of_the_first_item(
    fn: str, other_pool_first: bool, tmp_path: Path
) -> None:
    """With no workers that fit the call running, none is forked while the caller runs
    fn's first item: a fork then copied a module half imported (the workers raised
    AttributeError: partially initialized module) or a lock held (they waited on it for
    ever)."""
    (tmp_path / "first_call.py").write_text(textwrap.dedent(FIRST_CALL_SET_UP))
    (tmp_path / "heavy_module.py").write_text(textwrap.dedent(HEAVY_MODULE))
    script = MAP_WITH_FIRST_CALL_SET_UP.format(fn=fn, other_pool_first=other_pool_first)
    result = run_python(script, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"], describe(result)


FIRST_ITEM_INSIDE_A_LOCK = """
import time
from parmap import parallel_map

def busy(seconds):
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass

def held_lock():
    if {lock!r} == "fork server":
        from multiprocessing import forkserver
        return forkserver._forkserver._lock
    if {lock!r} == "resource tracker":
        from multiprocessing import resource_tracker
        return resource_tracker._resource_tracker._lock
    from parmap._backends import _warm
    return _warm._kept_pool._lock

def fn(x):
    if x == 0:
        with held_lock():  # where the first item is when the timer fires
            busy(0.4)
    else:
        busy(0.02)
    return x + 1

if __name__ == "__main__":
    method = {start_method!r}
    if {lock!r} == "warm pool":  # else the timer starts workers: multiprocessing's locks
        parallel_map(abs, range(4), start_method=method, serial_fallback=False)
    print(parallel_map(fn, range(20), start_method=method) == [x + 1 for x in range(20)])
"""


@pytest.mark.parametrize(
    ("lock", "start_method"),
    [
        ("fork server", "forkserver"),
        ("resource tracker", "spawn"),
        ("warm pool", "fork"),
        ("warm pool", "spawn"),
    ],
)
def test_the_timer_waits_for_a_lock_the_first_item_holds(
    lock: str, start_method: str, tmp_path: Path
) -> None:
    """The first item's timer hands out work from a signal handler, in the middle of the
    item. If the item is inside a lock the handler takes (multiprocessing starting its
    fork server, or on Python 3.9 and 3.10 its resource tracker; a parmap call of fn's
    own checking out a pool), the handler waited for it for ever: the call hung. It now
    tries again a tick later."""
    if start_method not in START_METHODS:
        pytest.skip(f"needs the {start_method} method")
    script = FIRST_ITEM_INSIDE_A_LOCK.format(lock=lock, start_method=start_method)
    result = run_python(script, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"], describe(result)


FN_WITH_A_TIMEOUT_OF_ITS_OWN = """
import signal
import time
from parmap import parallel_map

class ItemTimeout(Exception):
    pass

def on_alarm(signum, frame):
    raise ItemTimeout

installed = False

def fn(x):
    global installed
    if not installed:  # once: the handler stays for the items after
        signal.signal(signal.SIGALRM, on_alarm)
        installed = True
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        # A sleep, not a loop: an exception from a signal handler in a tight loop can
        # escape the try on CPython (python/cpython#108214, #130279), with map too.
        time.sleep(0.2 if x == 3 else 0)
        return "done"
    except ItemTimeout:
        return "timed out"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)

if __name__ == "__main__":
    print(parallel_map(fn, range(6)) == list(map(fn, range(6))))
"""


def test_fn_that_sets_up_its_own_alarm_keeps_it(tmp_path: Path) -> None:
    """fn that installs a SIGALRM handler on its first call (a timeout of its own) keeps
    it: the first item's timer put the previous handler back after that item, so fn's
    next alarm killed the process ("Alarm clock") where map ran."""
    result = run_python(FN_WITH_A_TIMEOUT_OF_ITS_OWN, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"], describe(result)


def test_bad_idle_timeout_is_refused_before_work_starts(tmp_path: Path) -> None:
    """A malformed PARMAP_IDLE_TIMEOUT is a ValueError naming the variable."""
    code = """
    from parmap import parallel_map
    try:
        parallel_map(abs, range(3))
    except ValueError as error:
        print(error)
    """
    result = run_python(code, tmp_path=tmp_path, env={"PARMAP_IDLE_TIMEOUT": "soon"})
    assert result.returncode == 0, describe(result)
    assert "PARMAP_IDLE_TIMEOUT must be a number of seconds > 0" in result.stdout, describe(result)


def test_a_call_that_stays_in_the_caller_imports_neither_multiprocessing_nor_pickle() -> None:
    """Its probe prices a sample with the C pickler alone: importing pickle.py took 2 to
    8 ms inside a fresh interpreter's first call, a tenth of a million trivial items."""
    code = """
    import sys
    import parmap

    items = range(-200_000, 0)
    print(parmap.parallel_map(abs, items) == list(map(abs, items)))
    print([name for name in ("multiprocessing", "pickle") if name in sys.modules])
    """
    result = run_python(code, how="-c")
    assert result.returncode == 0, describe(result)
    assert result.stdout.split("\n")[:2] == ["True", "[]"], describe(result)


SET_UP_IN_TWO_STEPS = """
import time
from parmap import parallel_map

settings = {{}}

def busy(seconds):
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass

def scaled(x):
    if not settings:  # set up on first use, in two steps
        settings["factor"] = 2
        busy(0.4)
        settings["offset"] = 1
    return x * settings["factor"] + settings["offset"]

if __name__ == "__main__":
    options = dict(workers=2, start_method={method!r})
    if {warm}:
        parallel_map(abs, range(6), serial_fallback=False, **options)
    print(parallel_map(scaled, range(40), timeout=30, **options) == [2 * x + 1 for x in range(40)])
"""


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_fn_sent_by_value_is_not_pickled_in_the_middle_of_its_first_item(
    start_method: str, warm: bool, tmp_path: Path
) -> None:
    """A function from the script travels by value with the globals it uses. Pickled
    while the caller ran its first item (the timer's early start), it took a set-up
    half done to the workers: they raised KeyError for the setting not made yet."""
    script = SET_UP_IN_TWO_STEPS.format(method=start_method, warm=warm)
    result = run_python(script, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"], describe(result)


ELSEWHERE_FOR_A_WHILE = """
import multiprocessing
import os
import tempfile
import time

def where(x):
    if x == 0:  # works in a folder of its own, then comes back and removes it
        home, folder = os.getcwd(), tempfile.mkdtemp()
        before = {p.pid for p in multiprocessing.active_children()}
        os.chdir(folder)
        try:
            deadline = time.perf_counter() + 0.5
            while time.perf_counter() < deadline:  # leave as soon as new workers exist
                if {p.pid for p in multiprocessing.active_children()} - before:
                    break
        finally:
            os.chdir(home)
            os.rmdir(folder)
    return os.getcwd()
"""

MAP_WHERE = """
import os
import elsewhere
from parmap import parallel_map

if __name__ == "__main__":
    options = dict(workers=2, start_method={method!r})
    if {warm}:
        parallel_map(abs, range(6), serial_fallback=False, **options)
    print(set(parallel_map(elsewhere.where, range(40), timeout=30, **options)) == {{os.getcwd()}})
"""


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_workers_take_the_callers_directory_from_before_the_first_item(
    start_method: str, warm: bool, tmp_path: Path
) -> None:
    """Workers started, and work handed out, while the first item runs in the caller
    go with the caller's directory as it was before that item. The item works in a
    folder of its own and removes it as soon as new workers exist: spawn workers then
    failed to start (their directory was gone), and warm ones went to that folder."""
    (tmp_path / "elsewhere.py").write_text(textwrap.dedent(ELSEWHERE_FOR_A_WHILE))
    result = run_python(MAP_WHERE.format(method=start_method, warm=warm), tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["True"], describe(result)


OUT_OF_DESCRIPTORS = """
import errno
import os
from parmap import parallel_map

def triple(x):
    return 3 * x

if __name__ == "__main__":
    filler = []
    while True:  # take every descriptor but a few: not enough for four workers
        try:
            filler.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    for _ in range(6):
        os.close(filler.pop())
    options = dict(workers=4, start_method={method!r}, serial_fallback=False)
    try:
        parallel_map(triple, range(16), **options)
    except OSError as error:
        print("errno", errno.errorcode.get(error.errno))
        print("notes", getattr(error, "__notes__", None))
    for fd in filler:
        os.close(fd)
    print("next call", parallel_map(triple, range(16), **options) == [3 * x for x in range(16)])
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors on Linux")
def test_running_out_of_descriptors_says_so_and_the_next_call_works(
    start_method: str, tmp_path: Path
) -> None:
    """A worker that cannot start for want of file descriptors raises the OSError, with
    a note naming the limit and the fix; once descriptors are free again, the next call
    starts the missing workers and returns every result."""
    result = run_python(OUT_OF_DESCRIPTORS.format(method=start_method), tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "errno EMFILE" in result.stdout, describe(result)
    assert "could not start worker" in result.stdout, describe(result)
    assert "ulimit -n" in result.stdout, describe(result)
    assert "next call True" in result.stdout, describe(result)


@pytest.mark.skipif("forkserver" not in START_METHODS, reason="needs the forkserver method")
def test_a_temporary_directory_too_long_for_the_fork_server_is_named(tmp_path: Path) -> None:
    """The fork server's socket lives in the temporary directory, and a socket address
    holds about 100 bytes: the error says which directory and how to get around it."""
    long_directory = tmp_path / ("d" * 60) / ("e" * 60)
    long_directory.mkdir(parents=True)
    code = """
    from parmap import parallel_map
    try:
        parallel_map(abs, range(8), 2, start_method="forkserver", serial_fallback=False)
    except OSError as error:
        print(error, getattr(error, "__notes__", None))
    """
    result = run_python(code, tmp_path=tmp_path, env={"TMPDIR": str(long_directory)})
    assert result.returncode == 0, describe(result)
    assert "AF_UNIX path too long" in result.stdout, describe(result)
    assert str(long_directory) in result.stdout, describe(result)
    assert 'start_method="spawn"' in result.stdout, describe(result)
