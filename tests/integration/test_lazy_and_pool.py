"""parallel_imap stays lazy and bounded; the warm pool, initializer and nesting behave."""

from __future__ import annotations

import functools
import itertools
import logging
import multiprocessing
import os
import re
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest

import parmap
from markers import NEEDS_WAIT_COUNTS
from parmap import parallel_imap, parallel_map, parallel_starmap
from parmap._backends import Chunk
from parmap._backends._process import ProcessSession
from parmap._early import MIN_ALARM_SECONDS, EarlyDispatch
from parmap._platform import START_METHODS

from helpers import (
    CountingSource,
    PausingClock,
    busy_for,
    identity,
    nested_map,
    options_with,
    pid_of,
    private_mb_after_collection,
    read_state,
    resident_mb,
    set_state,
    spin,
    square,
    worker_processes,
)
from support import describe, run_python


def test_imap_reads_a_bounded_number_of_items_ahead() -> None:
    """On endless input, at most buffersize items are read beyond what was consumed."""
    source = CountingSource()
    results = parallel_imap(square, source, 2, 4, buffersize=16, serial_fallback=False)
    taken = list(itertools.islice(results, 100))
    assert taken == [x * x for x in range(100)]
    assert source.read <= 100 + 16 + 4
    results.close()  # type: ignore[attr-defined]


def test_imap_default_buffer_is_bounded_with_fallback_on() -> None:
    """With defaults, an endless generator is consumed in bounded memory too."""
    source = CountingSource()
    results = parallel_imap(identity, source, 2)
    for _ in itertools.islice(results, 50_000):
        pass
    assert source.read < 50_000 + 200_000
    results.close()  # type: ignore[attr-defined]


def test_imap_starts_nothing_before_first_next() -> None:
    """Creating the iterator reads no input and starts no process."""
    source = CountingSource()
    results = parallel_imap(square, source, 2, serial_fallback=False)
    assert source.read == 0
    assert worker_processes() == []
    assert next(results) == 0
    results.close()  # type: ignore[attr-defined]


def test_abandoned_imap_stops_its_work() -> None:
    """Breaking out of the loop cancels outstanding chunks; the next call works."""
    for value in parallel_imap(spin, itertools.repeat(200), 2, 1, serial_fallback=False):
        assert value > 0
        break
    assert parallel_map(square, range(10), 2, serial_fallback=False) == [x * x for x in range(10)]


def test_warm_pool_is_reused_between_calls() -> None:
    """A second call runs on the same worker processes: no start-up paid again."""
    first = set(parallel_map(pid_of, range(20), 2, 1, serial_fallback=False))
    second = set(parallel_map(pid_of, range(20), 2, 1, serial_fallback=False))
    assert first == second


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc (Linux)")
def test_a_worker_holds_a_chunk_of_large_items_once() -> None:
    """While fn runs, a worker holds the chunk's items but no longer the bytes they came
    in, and it lets go of them before the next chunk arrives: its peak stays at one
    chunk unpickling (bytes and items) however many chunks it runs."""
    item_mb, per_chunk = 20, 2
    chunk_mb = item_mb * per_chunk
    # Workers forked together, now: a forked worker starts as large as the caller was, and
    # one replaced by an earlier test could start larger than the other measured idle.
    parmap.shutdown()
    idle = max(now for now, _ in parallel_map(resident_mb, [b""] * 2, 2, 1, serial_fallback=False))
    items = [bytes(item_mb * 2**20) for _ in range(4 * per_chunk)]  # two chunks per worker
    measured = parallel_map(resident_mb, items, 2, per_chunk, serial_fallback=False)
    for now, peak in measured:
        assert now < idle + 1.5 * chunk_mb, "the chunk's bytes stayed in memory beside its items"
        assert peak < idle + 2.5 * chunk_mb, "the last chunk's items were kept while the next came"


@pytest.mark.skipif(
    not os.path.exists("/proc/self/smaps_rollup") or "fork" not in START_METHODS,
    reason="forks and reads /proc (Linux)",
)
def test_a_forked_workers_garbage_collection_leaves_the_callers_objects_shared() -> None:
    """A full collection in a forked worker does not touch the objects it inherited, so
    the memory it shares with the caller stays shared instead of being copied."""
    inherited = [[i] for i in range(1_000_000)]  # about 90 MB of objects the collector tracks
    parmap.shutdown()  # workers forked now, from a caller that holds them
    try:
        private = parallel_map(
            private_mb_after_collection, range(2), 2, 1, start_method="fork", serial_fallback=False
        )
    finally:
        parmap.shutdown()  # no later test gets workers that carry these objects
    assert len(inherited) == 1_000_000
    # Copied, the lists alone would make each worker's private memory 90 MB larger.
    assert max(private) < 40, f"workers' private memory after a collection: {private} MB"


def test_shutdown_stops_the_warm_pool() -> None:
    """shutdown() ends the workers; a later call starts new ones."""
    first = set(parallel_map(pid_of, range(20), 2, 1, serial_fallback=False))
    parmap.shutdown()
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in first
    )
    second = set(parallel_map(pid_of, range(20), 2, 1, serial_fallback=False))
    assert first.isdisjoint(second)


A_FORK_WHILE_ANOTHER_THREAD_CHECKS_OUT_THE_POOL = """
import faulthandler
import os
import threading
from parmap import parallel_map, shutdown
from parmap._backends import _warm

def pid_of(x):
    return os.getpid()

parallel_map(pid_of, range(8), 2, 1, serial_fallback=False)  # the parent's warm pool
inside, release = threading.Event(), threading.Event()

def checking_out():  # another call of the parent's, inside the pool registry's lock
    with _warm._kept_pool._lock:
        inside.set()
        release.wait()

thread = threading.Thread(target=checking_out)
thread.start()
inside.wait()
child = os.fork()
if child == 0:
    faulthandler.dump_traceback_later(20, exit=True)  # a hang fails with a traceback
    pids = set(parallel_map(pid_of, range(8), 2, 1, serial_fallback=False))
    shutdown()
    os._exit(0 if pids and os.getpid() not in pids else 3)
release.set()
thread.join()
print("child exit code:", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_while_another_thread_checks_out_the_pool_can_start_its_own(
    tmp_path: Path,
) -> None:
    """A process forked while another of its threads held the warm pool's registry lock
    (a call checking the pool out or handing it back) gets a lock of its own: its first
    process call starts its own workers instead of waiting forever."""
    result = run_python(A_FORK_WHILE_ANOTHER_THREAD_CHECKS_OUT_THE_POOL, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "child exit code: 0" in result.stdout, describe(result)


def test_initializer_runs_in_each_worker(start_method: str) -> None:
    """initializer(*initargs) sets per-worker state that fn can read."""
    values = parallel_map(
        read_state,
        range(10),
        2,
        1,
        start_method=start_method,
        initializer=set_state,
        initargs=("ready",),
        serial_fallback=False,
    )
    assert values == ["ready"] * 10


def test_initializer_runs_in_the_caller_when_items_run_there() -> None:
    """Serially run items see the initializer's state as workers would."""
    from helpers import worker_state

    worker_state.clear()
    assert (
        parallel_map(read_state, range(3), initializer=set_state, initargs=("here",))
        == ["here"] * 3
    )


def test_thread_backend_initializer_runs_per_thread() -> None:
    """backend='thread' runs the initializer in its threads too."""
    values = parallel_map(
        read_state,
        range(10),
        3,
        1,
        backend="thread",
        initializer=set_state,
        initargs=("t",),
        serial_fallback=False,
    )
    assert values == ["t"] * 10


def test_nested_calls_run_serially_inside_workers() -> None:
    """fn calling parallel_map does not start workers of its own."""
    results = parallel_map(nested_map, [3, 4, 5], 2, 1, serial_fallback=False)
    assert results == [[x * x for x in range(n)] for n in (3, 4, 5)]
    grandchildren = [c for child in psutil.Process().children() for c in child.children()]
    assert grandchildren == []


def test_a_call_inside_a_multiprocessing_pool_worker_runs_serially_there() -> None:
    """A Pool worker is daemonic and may not start processes: a parmap call there runs in
    that worker instead of failing with "daemonic processes are not allowed to have
    children"."""
    with multiprocessing.Pool(1) as pool:
        results = pool.map(nested_map, [3, 5], chunksize=1)
    assert results == [[x * x for x in range(n)] for n in (3, 5)]


def test_small_input_starts_no_process() -> None:
    """parallel_map(f, range(10)) runs in the caller: no process is started."""
    parmap.shutdown()
    assert parallel_map(square, range(10)) == [x * x for x in range(10)]
    assert worker_processes() == []


def test_million_trivial_items_stay_in_the_caller() -> None:
    """Cheap items are not worth sending anywhere: no worker is started."""
    parmap.shutdown()
    assert parallel_map(identity, range(1_000_000)) == list(range(1_000_000))
    assert worker_processes() == []


def _probed_items(log: str) -> int:
    return int(re.search(r"probe: (\d+) item\(s\)", log).group(1))  # type: ignore[union-attr]


def test_items_too_cheap_to_send_end_the_probe_early(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Once a millisecond of items shows that no input of them could pay for workers,
    the rest runs in one go, as fast as map: probing on for as long as starting workers
    would take (here made a whole second) cost a million trivial items 1 ms over map."""
    parmap.shutdown()
    monkeypatch.setattr(parmap._call, "START_SECONDS", dict.fromkeys(START_METHODS, 1.0))
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        assert parallel_map(identity, range(1_000_000)) == list(range(1_000_000))
    assert "left: serial" in caplog.text
    assert _probed_items(caplog.text) < 500_000, "the probe ran on past the verdict"
    assert worker_processes() == []


def _count_pricings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sample size of every pricing of sending items from now on."""
    priced: list[int] = []
    real_price = parmap._serial.transfer_seconds

    def counting_price(items: list[object], results: list[object]) -> float:
        priced.append(len(items))
        return real_price(items, results)

    monkeypatch.setattr(parmap._serial, "transfer_seconds", counting_price)
    return priced


def test_a_probe_prices_sending_its_sample_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pricing 1 MB items walks up to 32 objects (0.05-0.2 ms): the probe's batches and
    the verdict share one price instead of each walking them again."""
    priced = _count_pricings(monkeypatch)
    payloads = [bytes(1_000_000)] * 400  # each sent would be a megabyte
    assert parallel_map(zlib.crc32, payloads, 2) == [zlib.crc32(payloads[0])] * 400
    assert len(priced) == 1


def test_a_probe_that_goes_on_prices_its_sample_at_most_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Items worth sending: the probe's one early look for a serial verdict prices the
    sample, the verdict prices it again as it has grown since, and no batch in between."""
    priced = _count_pricings(monkeypatch)
    parmap.shutdown()  # a cold pool: a 20 ms probe or longer, many batches
    assert parallel_map(busy_for, [0.000_1] * 2000, 2) == [None] * 2000
    assert 1 <= len(priced) <= 2, priced


def test_items_worth_sending_keep_the_probe_going(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Items that could pay for workers on a long enough input are probed for the whole
    budget: the early end is only for items that never could."""
    monkeypatch.setattr(parmap._call, "START_SECONDS", dict.fromkeys(START_METHODS, 0.05))
    parmap.shutdown()
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        assert parallel_map(busy_for, [0.000_5] * 40, 2) == [None] * 40
    assert "ran all 40 item(s) in the caller" in caplog.text, "the probe stopped early"


#: The caller's clock in the tests of pauses: it runs with the CPU time and jumps when a
#: test says so.
_CLOCK = PausingClock(base=time.thread_time)


def _losing_the_cpu_at_zero(x: int) -> int:
    if x == 0:
        _CLOCK.paused += 0.05
    return x


def _count_handed_out(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The start of every chunk sent to a worker from now on."""
    sent: list[int] = []
    submit = ProcessSession.submit

    def counting_submit(session: ProcessSession, chunk: Chunk) -> None:
        sent.append(chunk.start)
        submit(session, chunk)

    monkeypatch.setattr(ProcessSession, "submit", counting_submit)
    return sent


def _map_cheap_items_pausing_at_the_first(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> list[int]:
    """With warm workers, map 20,000 trivial items; the caller loses its CPU for 50 ms
    during the first (on _CLOCK). Checks the results; returns the chunks sent out.

    Priced by the clock, the probe's items look costly enough to send (tens of us each).
    Priced by their CPU time, they stay in the caller even where a slow host makes them
    take 0.7 us of CPU, against 0.4 us to send one: with 200,000 of them, the model rightly
    found workers worth it there (1.3 times faster), which is not what these tests are about.
    """
    monkeypatch.setattr(parmap._serial, "time", _CLOCK)
    parallel_map(square, range(4), 2, serial_fallback=False)  # warm: a 1 ms probe
    sent = _count_handed_out(monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        results = parallel_map(_losing_the_cpu_at_zero, range(20_000), 2)
    assert results == list(range(20_000))
    return sent


@NEEDS_WAIT_COUNTS
def test_a_probe_that_lost_its_cpu_prices_items_by_cpu_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller lost its CPU for 50 ms during the probe's first item: by the clock, the
    first item costs 50 ms; by their CPU time, nothing. The caller never waited, so the
    pause was another process's: the items are priced by their CPU time at once and
    stay in the caller, without a second look."""
    sent = _map_cheap_items_pausing_at_the_first(monkeypatch, caplog)
    assert sent == [], "no item should have gone to a worker"
    assert " 0 wait(s);" in caplog.text
    assert "left: serial" in caplog.text
    assert "look again" not in caplog.text


def test_where_waits_are_not_counted_a_probe_that_lost_its_cpu_looks_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the platform does not count the caller's waits, a pause looks like items
    that wait: the call looks again, sees cheap items, and keeps them in the caller."""
    monkeypatch.setattr(parmap._serial, "voluntary_switches", lambda: None)
    sent = _map_cheap_items_pausing_at_the_first(monkeypatch, caplog)
    assert sent == [], "no item should have gone to a worker"
    assert "left: look again" in caplog.text
    assert "left: serial" in caplog.text


def _wait_then_pid(_: int) -> int:
    time.sleep(0.000_2)
    return os.getpid()


def test_items_that_wait_go_to_workers_after_one_second_look(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Items that wait (I/O) use little CPU, as a probe that lost its CPU does; the
    second look sees them wait again, and they go to the workers.

    The first item's timer is off: on a busy machine a 0.2 ms item that loses its CPU
    for a few ms would have it hand out work before the probe decides (1 run in 10 under
    two busy loops), and that path has tests of its own."""
    monkeypatch.setattr(parmap._early, "_alarm_is_free", lambda: False)
    parallel_map(square, range(4), 2, serial_fallback=False)
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        pids = parallel_map(_wait_then_pid, range(400), 2)
    assert set(pids) - {os.getpid()}
    assert caplog.text.count("left: look again") == 1


def test_costly_items_go_to_workers() -> None:
    """Items that take milliseconds each are handed to worker processes."""
    pids = set(parallel_map(_spin_then_pid, range(60), 2))
    assert pids - {os.getpid()}


def _spin_then_pid(_: int) -> int:
    spin(5000)
    return os.getpid()


@pytest.mark.parametrize("workers", [2, 3])
def test_long_first_item_hands_out_work_meanwhile(
    caplog: pytest.LogCaptureFixture, workers: int, start_method: str
) -> None:
    """During a long first item, all workers but one take an item at once: running ones,
    or under forkserver ones started then. Under fork none is started then (it would copy
    the item's state half done: test_no_worker_is_forked_in_the_middle_of_the_first_item),
    and starting spawn workers (0.3 s) takes longer than this item, so both start warm.

    The caller's own item keeps one CPU busy, so one worker waits for it.
    """
    parmap.shutdown()
    options: dict[str, Any] = {"workers": workers, "start_method": start_method}
    if start_method != "forkserver":
        parallel_map(square, range(4), **options, serial_fallback=False)  # warm
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        pids = parallel_map(_long_first_item, range(6), **options)
    assert f"handed out {workers - 1} item(s) while the first ran" in caplog.text
    assert pids[0] == os.getpid()
    assert os.getpid() not in pids[1:workers]


def _timer_floors(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The shortest timer each call allows around its first item, call by call."""
    floors: list[float] = []
    armed = EarlyDispatch.armed

    def spy(
        self: EarlyDispatch, seconds: float, next_index: int, shortest: float = MIN_ALARM_SECONDS
    ) -> Any:
        floors.append(shortest)
        return armed(self, seconds, next_index, shortest)

    monkeypatch.setattr(EarlyDispatch, "armed", spy)
    return floors


def _power(x: int, exponent: int) -> int:
    return int(x**exponent)


class _Powers:
    def square(self, x: int) -> int:
        return x * x


def _a_new_lambda() -> Callable[[int], int]:
    return lambda x: x * x


#: Each makes a new object at every call, as user code does.
_NEW_FNS: dict[str, Callable[[], Callable[[int], int]]] = {
    "function": lambda: _cube,
    "bound method": lambda: _Powers().square,
    "partial": lambda: functools.partial(_power, exponent=2),
    "lambda": _a_new_lambda,
}


def _cube(x: int) -> int:
    return x**3


@pytest.mark.parametrize("kind", sorted(_NEW_FNS))
def test_only_a_fns_first_call_times_its_first_item_under_a_tick(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A fn's first call sets the first item's timer to its budget (1 ms on a warm
    pool), so a costly item leaves the other CPUs idle 1 ms, not 4. Later calls keep
    the 4 ms floor, which spares cheap calls about 20 us: also those of bound methods,
    partials and lambdas, which are new objects at every call (known by their code)."""
    parallel_map(square, range(4), 2, serial_fallback=False)  # warm
    floors = _timer_floors(monkeypatch)
    for _ in range(3):
        fn = _NEW_FNS[kind]()
        assert parallel_map(fn, range(8), 2) == list(map(fn, range(8)))
    assert floors == [0.0, MIN_ALARM_SECONDS, MIN_ALARM_SECONDS]


def _three_ms_first_item(x: int) -> int:
    if x == 0:
        busy_for(0.003)
    return os.getpid()


def test_a_new_fns_first_item_of_3_ms_hands_out_work_meanwhile(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under the 4 ms floor a 3 ms first item ran alone; a new fn's 1 ms timer hands
    the next item to a worker while it runs."""
    parallel_map(square, range(4), 2, serial_fallback=False)  # warm
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        pids = parallel_map(_three_ms_first_item, range(4), 2)
    assert "handed out 1 item(s) while the first ran" in caplog.text
    assert pids[0] == os.getpid()
    assert pids[1] != os.getpid()


def _long_first_item(x: int) -> int:
    """Item 0 computes for a quarter of a second; the others return at once."""
    if x == 0:
        deadline = time.perf_counter() + 0.25
        while time.perf_counter() < deadline:
            spin(100)
    return os.getpid()


def test_max_tasks_per_child_replaces_workers(start_method: str) -> None:
    """With max_tasks_per_child=2 no worker runs more than two chunks; results stay right."""
    from collections import Counter

    pids = parallel_map(
        pid_of,
        range(20),
        2,
        1,
        start_method=start_method,
        max_tasks_per_child=2,
        serial_fallback=False,
    )
    counts = Counter(pids)
    assert len(pids) == 20
    assert max(counts.values()) <= 2
    assert len(counts) >= 10


def test_max_tasks_per_child_needs_the_process_backend() -> None:
    """The option names its backend when given with threads."""
    with pytest.raises(ValueError, match="max_tasks_per_child applies only to backend='process'"):
        parallel_map(square, range(3), backend="thread", max_tasks_per_child=1)


#: This process's pid, kept up to date in forked workers. Cheap items that say where
#: they ran read it instead of calling os.getpid(): that call costs about what sending
#: an item to a worker costs, which made "cheap" a coin toss for the cost model.
_pid = os.getpid()


def _note_the_pid_after_fork() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_the_pid_after_fork)


def _busy_then_pid(x: int) -> int:
    """Items at or above 1000 compute for 0.6 ms; smaller ones return at once."""
    if x >= 1000:
        busy_for(0.000_6)
    return _pid


def test_repeated_small_calls_start_workers_once_they_add_up(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No single call of 40 items of 0.6 ms pays for starting workers; a run of them does.

    The first call stays in the caller; the time warm workers would have saved adds up
    over the calls until it pays for their start, and from then on the calls use them.
    Under spawn and forkserver the probe lasts as long as a start costs (0.3 s, 0.1 s),
    so each call's whole input runs inside it, and must count all the same.
    """
    parmap.shutdown()
    monkeypatch.setattr(parmap._call, "_missed_savings", 0.0)
    items = [1000] * 40

    def uses_workers() -> bool:
        pids = parallel_map(_busy_then_pid, items, 2, start_method=start_method)
        return set(pids) != {os.getpid()}

    assert not uses_workers()
    assert worker_processes() == []
    calls = 1
    while not uses_workers():
        calls += 1
        assert calls < 100, "workers were never started"
    assert uses_workers(), "the next call should use the warm workers"


def _slow_then_pid(x: int) -> int:
    """Items at or above 1000 compute for 40 ms; smaller ones return at once.

    After a call of slow items, the next call hands items out at once and waits a quarter
    of their time, 10 ms, for an early answer that says they are cheap this time. On a
    busy machine a worker's answer to a cheap item can come later than a short wait
    (with 0.6 ms items, a wait of 0.5 ms failed here 1 run in 20; with 8 ms items, one
    of 2 ms failed 6 runs in 30 while two other processes computed), or the caller can
    look only after the wait's end; either way the call takes cheap items for costly
    ones and goes parallel. A wait of 10 ms passed 30 runs of 30 under that load.
    """
    if x >= 1000:
        busy_for(0.04)
    return _pid


COSTLY = [1000 + x for x in range(10)]  # a call that remembers 40 ms per item


def _slow_pair_then_pid(x: int, _: object) -> int:
    return _slow_then_pid(x)


class _SlowStage:
    def run(self, x: int) -> int:
        return _slow_then_pid(x)


def _starmap_slow(items: list[int]) -> list[int]:
    return parallel_starmap(_slow_pair_then_pid, [(item, None) for item in items], 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda items: parallel_map(_SlowStage().run, items, 2),
        lambda items: parallel_map(functools.partial(_slow_pair_then_pid, _=None), items, 2),
        _starmap_slow,
    ],
    ids=["bound method", "partial", "starmap"],
)
def test_what_a_call_learnt_of_fn_outlives_its_wrapper(
    call: Callable[[list[int]], list[int]],
) -> None:
    """A bound method, a partial and parallel_starmap's wrapper are new objects in each
    call; what a call learnt about the function's items must outlive them, or every call
    times an item in the caller again while a warm worker waits."""
    parallel_map(square, range(4), 2, serial_fallback=False)  # the pool is warm
    assert set(call(COSTLY)) - {os.getpid()}
    pids = call(COSTLY)
    assert pids[0] != os.getpid(), "the first item should go to a worker at once"


def test_work_handed_out_early_comes_back_when_the_rest_runs_in_the_caller() -> None:
    """fn's last call was costly, so work goes out at once; this input is cheap, so the
    rest runs in the caller, and the items handed out still come back in order."""
    assert set(parallel_map(_slow_then_pid, COSTLY, 2)) - {os.getpid()}
    cheap = [0] * 20_000
    pids = parallel_map(_slow_then_pid, cheap, 2)
    assert len(pids) == len(cheap)
    assert pids.count(os.getpid()) >= len(cheap) - 2  # at most one item per worker went out
    assert set(pids[1:3]) - {os.getpid()}, "the first items were handed out at once"


def test_a_call_that_stayed_in_the_caller_hands_nothing_out_next_time() -> None:
    """fn's last call found its items too cheap to send, so the next call, as cheap,
    hands out nothing: an item sent at once would cost a round trip, and its result
    would split the list into pieces to copy together (1M items: 3 % of the call)."""
    parallel_map(square, range(4), 2, serial_fallback=False)  # the pool is warm
    assert set(parallel_map(_slow_then_pid, COSTLY, 2)) - {os.getpid()}
    cheap = [0] * 400_000  # ~30 ms per worker: enough to hand out, were fn's cost remembered
    parallel_map(_slow_then_pid, cheap, 2)  # costly last time: two items go out at once
    assert set(parallel_map(_slow_then_pid, cheap, 2)) == {os.getpid()}


def test_a_call_whose_workers_answered_early_hands_nothing_out_next_time() -> None:
    """fn's last call was costly, so this one hands an item to each worker at once. They
    answer early, and the input ends in the caller's probe: the items are cheap. The
    next call must not hand items out again, paying a round trip for them (10 items of
    20 us: 0.6 ms a call, against map's 0.2 ms)."""
    parallel_map(square, range(4), 2, serial_fallback=False)  # the pool is warm
    assert set(parallel_map(_slow_then_pid, COSTLY, 2)) - {os.getpid()}
    cheap = [0] * 10
    assert set(parallel_map(_slow_then_pid, cheap, 2)) - {os.getpid()}, "handed out at once"
    assert _item_seconds_remembered(_slow_then_pid) is None, "the 40 ms is forgotten"
    assert set(parallel_map(_slow_then_pid, cheap, 2)) == {os.getpid()}


def test_cheap_items_taken_for_costly_ones_run_in_the_caller_after_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fn's last call was costly, and no worker answers early this time (as when a busy
    machine delays the answer; forced here), so the call goes parallel at once. The
    first chunk back shows the items are cheap: the rest is timed and run in the caller,
    not sent in chunks sized for 40 ms items (20 times as long as map here)."""
    assert set(parallel_map(_slow_then_pid, COSTLY, 2)) - {os.getpid()}
    monkeypatch.setattr(ProcessSession, "poll", lambda self, timeout: False)
    cheap = [0] * 400_000
    pids = parallel_map(_slow_then_pid, cheap, 2)
    assert len(pids) == len(cheap)
    workers = set(pids) - {os.getpid()}
    assert workers, "the first items went out at once"
    assert pids.count(os.getpid()) >= len(cheap) - 2_000, "the rest ran in the caller"
    assert _item_seconds_remembered(_slow_then_pid) is None, "the 40 ms is forgotten"


def _item_seconds_remembered(fn: object) -> object:
    return parmap._fn_memory.item_seconds(fn)


def _five_ms_then_pid(_: int) -> int:
    busy_for(0.005)
    return os.getpid()


def _compute_1300us_then_pid(_: int) -> int:
    busy_for(0.001_3)
    return os.getpid()


def test_a_narrow_parallel_verdict_is_not_remembered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Items of 1.3 ms that cost 0.8 ms each to send go parallel, but only just: were
    they half as costly, the caller would be faster. Such a verdict is not remembered,
    so the next call times its first item again instead of handing out work unprobed
    on the strength of a first item that may have read high. (A new fn's first item
    gets a 1 ms timer on a warm pool, which may hand out work beside it: the verdict is
    the same, and just as narrow. The next call's timer keeps the 4 ms tick floor.)"""
    monkeypatch.setattr(parmap._serial.Probe, "transfer_seconds", lambda self: 0.000_8)
    parallel_map(square, range(4), 2, serial_fallback=False)  # warm
    pids = parallel_map(_compute_1300us_then_pid, range(200), 2)
    assert set(pids) - {os.getpid()}, "the call went to the workers"
    assert pids[0] == os.getpid(), "its first item was timed in the caller"
    assert _item_seconds_remembered(_compute_1300us_then_pid) is None
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        pids = parallel_map(_compute_1300us_then_pid, range(200), 2)
    assert pids[0] == os.getpid(), "the next call times its first item in the caller too"
    assert "at once" not in caplog.text


class _CallerWithoutCpu:
    """Stands in for the time module in parmap._early: the caller's CPU time stands
    still, as when another process holds its CPU throughout."""

    perf_counter = staticmethod(time.perf_counter)

    @staticmethod
    def thread_time() -> float:
        return 0.0


def _fifteen_ms_by_the_clock(_: int) -> int:
    end = time.perf_counter() + 0.015
    while time.perf_counter() < end:
        spin(50)
    return os.getpid()


@NEEDS_WAIT_COUNTS
def test_the_timer_counts_the_callers_cpu_time_not_the_clocks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first item runs 15 ms by the clock, but the caller's CPU time stands still and
    it never waits: another process held its CPU. The timer (1 ms: a new fn, a warm
    pool) fires and finds the item has not had its budget, so it hands out nothing
    while the first item runs."""
    parallel_map(square, range(4), 2, serial_fallback=False)  # warm: a 1 ms budget
    monkeypatch.setattr(parmap._early, "time", _CallerWithoutCpu)
    with caplog.at_level(logging.DEBUG, logger="parmap"):
        pids = parallel_map(_fifteen_ms_by_the_clock, range(2), 2)
    assert pids[0] == os.getpid()
    assert "while the first ran" not in caplog.text


def test_the_timers_handler_losing_its_cpu_leaves_the_item_time_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The timer's handler hands out work while the first item runs; waking a worker
    can cost the caller its CPU for a while. That pause is neither the item's clock
    time nor its CPU time: the item time remembered for the next call is what the item
    computed, its 5 ms of CPU time less the handler's (busy_for counts both)."""
    parallel_map(square, range(4), 2, serial_fallback=False)  # warm: the timer fires
    monkeypatch.setattr(parmap._serial, "time", _CLOCK)
    monkeypatch.setattr(parmap._early, "time", _CLOCK)
    hand_out = EarlyDispatch._hand_out

    handler_cpu: list[float] = []

    def hand_out_and_lose_the_cpu(early: EarlyDispatch, *, mid_item: bool) -> None:
        began = time.thread_time()
        hand_out(early, mid_item=mid_item)
        handler_cpu.append(time.thread_time() - began)
        _CLOCK.paused += 0.01

    monkeypatch.setattr(EarlyDispatch, "_hand_out", hand_out_and_lose_the_cpu)
    pids = parallel_map(_five_ms_then_pid, range(40), 2)
    assert pids[0] == os.getpid(), "the first item runs in the caller"
    assert set(pids) - {os.getpid()}, "the timer handed out work"
    remembered = _item_seconds_remembered(_five_ms_then_pid)
    assert isinstance(remembered, float)
    computed = 0.005 - sum(handler_cpu)  # usually 30 us of it; 1 ms once on a busy CI
    # A handler that outlasts the item's remaining CPU time (117 ms once on a slow CI host;
    # a full garbage collection of the test process would take that) ends busy_for as it
    # returns: the item computed only what it had before the timer fired, at most 1 ms.
    lowest, highest = max(0.0, computed - 0.001), max(computed, 0.001) + 0.003
    assert lowest <= remembered <= highest


@pytest.mark.parametrize("warm", [False, True], ids=["probe measured", "timer handed out"])
def test_costly_again_runs_no_item_in_the_caller(warm: bool) -> None:
    """fn's last call was costly and so is this one: every item runs in a worker.

    Timing an item in the caller would only take a CPU from a worker; the workers'
    silence for a quarter of the remembered item time says the items are as costly.
    The first call learns the item time either way: from its probe (cold pool: the
    budget is a fork's start) or from its first item, which outlasts a warm pool's
    budget and so has a worker take the next item meanwhile.
    """
    parmap.shutdown()
    if warm:
        parallel_map(square, range(4), 2, serial_fallback=False)
    first = parallel_map(_five_ms_then_pid, range(40), 2)
    assert first[0] == os.getpid(), "the first call times its first item in the caller"
    pids = parallel_map(_five_ms_then_pid, range(40), 2)
    assert len(pids) == 40
    assert os.getpid() not in pids


def test_an_answer_there_when_the_caller_looks_late_is_not_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller lost its CPU after handing items out and looks only once a worker has
    answered: that answer may or may not have been early, and with every CPU busy it
    most likely was not. The call goes parallel (its chunks' check would catch cheap
    items) and runs no item in the caller. CI saw the caller time an item here when it
    took such an answer for an early one.
    """
    parallel_map(square, range(4), 2, serial_fallback=False)
    parallel_map(_five_ms_then_pid, range(40), 2)  # remembers 5 ms per item
    submit = ProcessSession.submit

    def submit_and_look_only_after_an_answer(session: ProcessSession, chunk: Chunk) -> None:
        submit(session, chunk)
        if chunk.start == 1:  # the last item handed out at once
            assert session.poll(10.0), "a worker answers a 5 ms item"

    monkeypatch.setattr(ProcessSession, "submit", submit_and_look_only_after_an_answer)
    pids = parallel_map(_five_ms_then_pid, range(40), 2)
    assert len(pids) == 40
    assert os.getpid() not in pids


def _tenth_of_a_second_then_pid(_: int) -> int:
    time.sleep(0.1)  # waits rather than computes: the caller gets a CPU when it wants one
    return os.getpid()


def test_answers_after_the_caller_lost_its_cpu_are_not_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker woken by the last item handed out may take the caller's CPU for a
    scheduler tick. Answers that come once the caller is back are not early ones: the
    wait for them counts from the hand-out, and no item runs in the caller.

    Here the caller is away for 80 ms of the items' 100 ms; a wait for a quarter of the
    remembered 100 ms counted from its return would see them answer "early".
    """
    parallel_map(square, range(4), 2, serial_fallback=False)
    parallel_map(_tenth_of_a_second_then_pid, range(6), 2)  # remembers 0.1 s per item
    submit = ProcessSession.submit

    def submit_and_lose_the_cpu(session: ProcessSession, chunk: Chunk) -> None:
        submit(session, chunk)
        if chunk.start == 1:  # the last item handed out at once, to the second worker
            time.sleep(0.08)  # not a wait for anything: the caller is off its CPU

    monkeypatch.setattr(ProcessSession, "submit", submit_and_lose_the_cpu)
    pids = parallel_map(_tenth_of_a_second_then_pid, range(6), 2)
    assert os.getpid() not in pids


def test_without_the_probe_a_streams_chunks_follow_their_timing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With serial_fallback=False nothing is measured before work goes out: a stream's
    first chunks hold an item each, and later ones grow with what was read and with what
    the timed chunks say fits in 10 ms. In 16-item chunks throughout (3,125 of them here),
    a stream of cheap items took 5 to 6 times as long as map."""
    sizes: list[int] = []
    submit = ProcessSession.submit

    def recording_submit(session: ProcessSession, chunk: Chunk) -> None:
        sizes.append(len(chunk.items))
        submit(session, chunk)

    monkeypatch.setattr(ProcessSession, "submit", recording_submit)
    stream = (x for x in range(50_000))
    assert list(parallel_imap(square, stream, 2, serial_fallback=False)) == [
        x * x for x in range(50_000)
    ]
    assert sizes[:2] == [1, 1], "one item for each worker's share of the none read yet"
    assert max(sizes) >= 1_000, "sizes follow the timed chunks"
    assert len(sizes) < 300


def test_without_the_probe_a_streams_chunks_follow_their_timing_on_an_executor() -> None:
    """The same on an Executor: its chunks are timed too. In 16-item chunks, 100,000
    cheap items took 30 times as long as map on a ThreadPoolExecutor, 120 times on a
    ProcessPoolExecutor."""
    from concurrent.futures import ThreadPoolExecutor

    sizes: list[int] = []

    class RecordingExecutor(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            sizes.append(len(args[2]))  # run_chunk_task(fn, start, items, tally)
            return super().submit(fn, *args, **kwargs)

    with RecordingExecutor(2) as executor:
        stream = (x for x in range(50_000))
        results = parallel_imap(square, stream, backend=executor, serial_fallback=False)
        assert list(results) == [x * x for x in range(50_000)]
    assert max(sizes) >= 1_000, "sizes follow the timed chunks"
    assert len(sizes) < 300


def test_a_stream_of_waits_keeps_every_thread_busy() -> None:
    """A stream's first items go out one to a chunk, so 32 threads each take one at once
    (here every item waits until 32 run together). In 16-item chunks, 200 waits of 10 ms
    ran on 13 of 32 threads, 2.2 times as long as ThreadPoolExecutor.map."""
    import threading

    together = threading.Barrier(32, timeout=30)

    def wait_for_32(x: int) -> int:
        together.wait()
        return x

    stream = (x for x in range(64))
    assert list(parallel_imap(wait_for_32, stream, 32, backend="thread")) == list(range(64))


def _wait_a_millisecond(x: int) -> int:
    threading.Event().wait(0.001)  # the workload: I/O, off the CPU
    return x


def test_a_stream_of_waits_on_threads_goes_in_short_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Items that wait leave the CPUs idle, so a chunk of them need not run 10 ms to hide
    its round trip: 1 ms will do. Chunks of 10 ms put ten waits of 1 ms in a row on a
    thread, and 200 of them took 1.10 times as long as ThreadPoolExecutor.map (1.00 now)."""
    from parmap._backends._executor import ExecutorSession

    sizes: list[int] = []
    submit = ExecutorSession.submit

    def recording_submit(session: ExecutorSession, chunk: Chunk, fn: Any = None) -> None:
        sizes.append(len(chunk.items))
        submit(session, chunk, fn)

    monkeypatch.setattr(ExecutorSession, "submit", recording_submit)
    stream = (x for x in range(200))
    assert list(parallel_imap(_wait_a_millisecond, stream, 32, backend="thread")) == list(
        range(200)
    )
    assert max(sizes) <= 2


def test_a_lazy_calls_buffer_grows_with_its_timed_chunks() -> None:
    """parallel_imap's default buffer is two chunks per worker as chunks are sized now:
    as the timed chunks grow, so does the room for them (a buffer fixed at the first
    16-item chunks let one large chunk out at a time)."""
    from parmap._call import Call, Handover
    from parmap._recheck import ChunkClock

    options = options_with(workers=2, serial_fallback=False)
    call = Call(square, iter(()), None, options, lazy=True)
    clock = ChunkClock(object())  # type: ignore[arg-type]  # no chunk goes out: never asked
    buffersize = call._buffer_limit(call._chunk_sizer(Handover(None, [], 0, None), clock), None)
    assert buffersize() == 2 * 2 * 16, "nothing timed yet: two 16-item chunks per worker"
    clock.item_seconds = 1e-6
    assert buffersize() == 2 * 2 * 10_000, "then two 10 ms chunks per worker"
