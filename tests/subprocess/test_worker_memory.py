"""A worker that moves large messages keeps the memory it frees for its next chunk, and
hands it back once idle (_memory.py). Run in fresh interpreters: the settings are
process-wide, and a fresh malloc is where the difference shows."""

from __future__ import annotations

import pytest

from support import MALLOC_SETTINGS, on_glibc, run_python

pytestmark = pytest.mark.skipif(not on_glibc(), reason="glibc malloc's settings")

_MEASURE = """
import multiprocessing, resource
from parmap._memory import LARGE_MESSAGE_BYTES, FreedMemory

def faults_to_fill(megabytes):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = bytearray(megabytes << 20)  # zero-filled: every page touched
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

memory = FreedMemory()
memory.after_message(SIZE_OF_THE_MESSAGE)
faults_to_fill(16)
print("kept:", memory.kept)
print("faults:", faults_to_fill(16))
held = resident_mb()
waiting, _ = multiprocessing.Pipe()  # nothing will come: the worker is idle
assert not memory.wait_for_work(waiting, 0.2)  # idle past its 50 ms
print("handed back MB:", held - resident_mb())
"""


def _measure(message_bytes: str, env: dict[str, str] | None = None) -> dict[str, str]:
    code = _MEASURE.replace("SIZE_OF_THE_MESSAGE", message_bytes)
    others = tuple(name for name in MALLOC_SETTINGS if name not in (env or {}))
    result = run_python(code, how="-c", env=env, unset=others)
    assert result.returncode == 0, result.stderr
    return dict(line.split(": ", 1) for line in result.stdout.splitlines())


def test_after_a_large_message_freed_blocks_serve_the_next_ones_without_fresh_pages() -> None:
    measured = _measure("LARGE_MESSAGE_BYTES")
    assert measured["kept"] == "True"
    # 16 MB is 4,096 pages: none of them fresh the second time.
    assert int(measured["faults"]) < 100, measured
    assert float(measured["handed back MB"]) > 12, "idle, the worker gave the 16 MB back"


def test_small_messages_leave_malloc_as_it_was() -> None:
    measured = _measure("LARGE_MESSAGE_BYTES - 1")
    assert measured["kept"] == "False"
    # glibc maps a block this large afresh, or grows its heap for it: fresh pages.
    assert int(measured["faults"]) > 2000, measured


@pytest.mark.parametrize(
    "setting",
    [
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"},
    ],
)
def test_a_users_own_malloc_settings_win(setting: dict[str, str]) -> None:
    assert _measure("LARGE_MESSAGE_BYTES", env=setting)["kept"] == "False"


_FORKED_WORKER = """
import os, time
from parmap import parallel_map, shutdown

def anonymous_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("RssAnon:"))
    return int(line.split()[1]) / 1024

blocks = [bytearray(60_000) for _ in range(800)]  # 48 MB on malloc's heap ...
del blocks[::2]  # ... half of it freed, in holes the heap cannot give back
parallel_map(abs, range(4), 1, serial_fallback=False, start_method="fork")
me = os.getpid()
with open(f"/proc/{me}/task/{me}/children") as children:
    (worker,) = [int(pid) for pid in children.read().split()]
shared = anonymous_mb(worker)
deadline = time.monotonic() + 10
while anonymous_mb(worker) > shared - 16 and time.monotonic() < deadline:
    time.sleep(0.01)  # the worker lets go once idle for 1 s; the loop only watches
print("let go of MB:", shared - anonymous_mb(worker))
shutdown()
"""


def test_a_forked_worker_lets_go_of_the_callers_free_heap_once_idle() -> None:
    """The caller's free heap pages, shared by fork, must not stay mapped in its workers:
    the caller reusing them would have the kernel copy each page first, and a process
    tree would hold that memory twice (docs/design.md, "Workers let go of ...")."""
    result = run_python(_FORKED_WORKER, how="-c")
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split(": ")[1]) >= 16, result.stdout
