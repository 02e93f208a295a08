"""After each integration test: no worker process or thread is left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psutil
import pytest

import parmap

from helpers import worker_processes


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Each test ends with parmap.shutdown() leaving no child process and no stray thread."""
    threads_before = set(threading.enumerate())
    yield
    parmap.shutdown()
    children = worker_processes()
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"worker processes left behind: {alive}"
    stray = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    for thread in stray:
        thread.join(5)
    assert not [t for t in stray if t.is_alive()], f"threads left behind: {stray}"
