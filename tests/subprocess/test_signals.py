"""Ctrl-C, SIGTERM and SIGKILL of the caller: prompt exit, one traceback, no orphans."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

#: A caller whose two workers each announce their pid, then compute forever.
BUSY_CALLER = """
import os
import signal
from parmap import parallel_map

# Ctrl-C raises KeyboardInterrupt, as in a terminal's foreground job, also where the
# tests run in a background job (started with &), which starts with SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

def busy(x):
    os.write(1, f"busy {{os.getpid()}}\\n".encode())  # one write: lines never interleave
    while True:
        pass

if __name__ == "__main__":
    parallel_map(
        busy, range(2), 2, 1, start_method={method!r}, serial_fallback=False, progress={progress}
    )
"""


@contextlib.contextmanager
def _busy_caller(
    tmp_path: Path, method: str, *, progress: bool = False
) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A caller whose two workers are busy; its whole process group is killed afterwards.

    The final kill only matters when a test fails: it keeps a regression from leaving
    processes that spin forever.
    """
    caller, pids = _start_busy_caller(tmp_path, method, progress)
    try:
        yield caller, pids
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(caller.pid, signal.SIGKILL)
        caller.communicate()


def _start_busy_caller(
    tmp_path: Path, method: str, progress: bool
) -> tuple[subprocess.Popen[str], list[int]]:
    """Start the caller in its own process group; return it once both workers are busy."""
    script = tmp_path / "busy.py"
    script.write_text(BUSY_CALLER.format(method=method, progress=progress))
    caller = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    assert caller.stdout is not None
    output = b""
    deadline = time.monotonic() + 60
    try:
        # Raw reads: a buffered readline could hold the second line where select
        # cannot see it.
        while output.count(b"\n") < 2:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([caller.stdout], [], [], left)
            chunk = os.read(caller.stdout.fileno(), 4096) if ready else b""
            assert chunk, f"workers did not start: {output!r}"
            output += chunk
        lines = output.decode().splitlines()
        assert all(line.startswith("busy ") for line in lines), lines
        pids = [int(line.split()[1]) for line in lines]
    except BaseException:
        os.killpg(caller.pid, signal.SIGKILL)
        caller.communicate()
        raise
    return caller, pids


def _assert_gone(pids: list[int], within: float) -> None:
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=within)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"workers still running: {alive}"


@pytest.mark.parametrize("to_group", [True, False], ids=["process-group", "caller-only"])
def test_ctrl_c_stops_the_call_within_two_seconds(
    start_method: str, tmp_path: Path, to_group: bool
) -> None:
    """SIGINT gives KeyboardInterrupt in the caller fast, one traceback, and no orphans."""
    with _busy_caller(tmp_path, start_method) as (caller, pids):
        began = time.monotonic()
        if to_group:
            os.killpg(caller.pid, signal.SIGINT)
        else:
            os.kill(caller.pid, signal.SIGINT)
        _, stderr = caller.communicate(timeout=30)
        elapsed = time.monotonic() - began
        _assert_gone(pids, within=5)
    assert caller.returncode != 0
    assert elapsed < 2.0, f"took {elapsed:.2f} s\n{stderr}"
    assert stderr.count("Traceback (most recent call last)") == 1, stderr
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr


def test_ctrl_c_closes_the_progress_bar(start_method: str, tmp_path: Path) -> None:
    """With progress=True, Ctrl-C closes the bar: the traceback starts on a line of its own."""
    with _busy_caller(tmp_path, start_method, progress=True) as (caller, pids):
        os.killpg(caller.pid, signal.SIGINT)
        _, stderr = caller.communicate(timeout=30)
        _assert_gone(pids, within=5)
    assert "0/2" in stderr, stderr  # the bar was drawn, with the right total
    before, traceback_marker, _ = stderr.partition("Traceback (most recent call last)")
    assert traceback_marker, stderr
    assert before.endswith("\n"), repr(before)  # closed: no half-drawn bar line left
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_workers_do_not_outlive_a_killed_caller(
    start_method: str, tmp_path: Path, signum: int
) -> None:
    """A caller ended by SIGTERM or SIGKILL takes its busy workers with it."""
    with _busy_caller(tmp_path, start_method) as (caller, pids):
        os.kill(caller.pid, signum)
        caller.wait(timeout=30)
        _assert_gone(pids, within=5)
