"""A call that waits long for its workers says which items are still running, and where.

The stuck item is released by the warning itself (a logging handler), so each test
shows that the warning came while the item was stuck, with no timer involved.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from parmap import _stall, parallel_map

from helpers import wait_for_fifo_at_zero


class ReleaseOnWarning(logging.Handler):
    """Keeps the ``parmap`` logger's warnings, and calls *release* at the first one.
    (Not kept as ``self.release``: a Handler's own ``release()`` frees its lock.)"""

    def __init__(self, release: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.release_stuck_item = release
        self.messages: list[str] = []
        self.worker_pids: set[int] = set()  # this process's children at the warning

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.worker_pids = {child.pid for child in multiprocessing.active_children()}
        if len(self.messages) == 1:
            self.release_stuck_item()


@pytest.fixture
def watch_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ReleaseOnWarning]]:
    """Stalls reported after 0.2 s instead of a minute; the handler, once made, listens."""
    monkeypatch.setattr(_stall, "STALL_SECONDS", 0.2)
    logger = logging.getLogger("parmap")
    handlers: list[ReleaseOnWarning] = []

    def make(release: Callable[[], None]) -> ReleaseOnWarning:
        handler = ReleaseOnWarning(release)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield make
    for handler in handlers:
        logger.removeHandler(handler)


def test_a_stuck_thread_item_is_reported_with_its_index(
    watch_warnings: Callable[..., ReleaseOnWarning],
) -> None:
    released = threading.Event()
    handler = watch_warnings(released.set)

    def stuck_at_three(x: int) -> int:
        if x == 3:
            assert released.wait(30), "no stall warning came"
        return x

    ran = parallel_map(stuck_at_three, range(8), 2, 1, backend="thread", serial_fallback=False)
    assert ran == list(range(8))
    assert len(handler.messages) == 1
    message = handler.messages[0]
    assert f"item 3, on a thread of process {os.getpid()}" in message
    assert f"py-spy dump --pid {os.getpid()}" in message


def test_a_stuck_worker_process_is_reported_with_its_pid_and_items(
    watch_warnings: Callable[..., ReleaseOnWarning], tmp_path: Path
) -> None:
    fifo = tmp_path / "release"
    os.mkfifo(fifo)

    def release() -> None:
        with open(fifo, "w") as writer:  # the stuck item reads it and goes on
            writer.write("go")

    handler = watch_warnings(release)
    items = [(i, str(fifo)) for i in range(6)]
    ran = parallel_map(wait_for_fifo_at_zero, items, 2, 1, serial_fallback=False, timeout=30)
    assert ran == list(range(6))
    assert len(handler.messages) == 1
    message = handler.messages[0]
    named = message.split("item 0 in worker process ")[1].split(",")[0]
    assert int(named) in handler.worker_pids, message
    assert "which is alive" in message
