"""Reporting a call that waits long for its workers, so that a hang is not silent.

From the caller, a worker stuck on a lock, a dead network peer or a deadlock inside a
library looks just like one busy with a long item, and without a ``timeout`` the call
would wait without a word. So once a call has waited ``STALL_SECONDS`` for a chunk to
finish, and ``STALL_FACTOR`` times longer than for any chunk before it (slow items are
not stuck ones), it logs a warning on the ``parmap`` logger that names the items still
running and the worker processes running them, all alive (a dead one ends the call with
``WorkerCrashedError``), and again each time that wait has doubled.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

from ._backends import Running
from ._errors import describe_items

#: A wait for the next chunk this long is reported ...
STALL_SECONDS = 60.0
#: ... if it is also this many times the longest wait for a chunk so far in the call.
STALL_FACTOR = 4.0


class StallWatch:
    """Times one call's waits for its chunks and says when one is worth reporting."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._waiting_since: Optional[float] = None  # no chunk has finished since then
        self._longest = 0.0  # the longest wait that ended with a chunk finishing
        self._report_at = 0.0

    def wait_seconds(self, limit: Optional[float]) -> float:
        """How long the next wait may block: until the next report, or *limit* if sooner."""
        now = self._clock()
        if self._waiting_since is None:
            self._waiting_since = now
            self._report_at = now + max(STALL_SECONDS, STALL_FACTOR * self._longest)
        until_report = max(0.0, self._report_at - now)
        return until_report if limit is None else min(limit, until_report)

    def chunks_finished(self) -> None:
        if self._waiting_since is not None:
            self._longest = max(self._longest, self._clock() - self._waiting_since)
        self._waiting_since = None

    def stalled_for(self) -> Optional[float]:
        """Seconds waited without a chunk finishing if that is to be reported now, else
        None. The next report is due when the wait has doubled."""
        now = self._clock()
        if self._waiting_since is None or now < self._report_at:
            return None
        waited = now - self._waiting_since
        self._report_at = self._waiting_since + 2 * waited
        return waited


def stall_message(place: str, running: list[Running], waited: float) -> str:
    """The warning for a call whose chunks in *place* have not finished for *waited* s."""
    spans = [(busy.start, busy.size) for busy in running]
    they = "it" if len(spans) == 1 and spans[0][1] == 1 else "they"
    head = f"parmap: no chunk has finished for {waited:.{0 if waited >= 10 else 1}f} s."
    if place == "process":
        running = sorted(running)
        where = ", ".join(
            f"{describe_items([(busy.start, busy.size)])} in worker process {busy.pid}"
            for busy in running
        )
        alive = {1: "which is alive", 2: "both alive"}.get(len(running), "all alive")
        still = f"Still running: {where}, {alive}."
        look = f"`py-spy dump --pid {running[0].pid}` shows where a worker process is"
    elif place == "thread":
        threads = "a thread" if len(spans) == 1 else "threads"
        still = f"Still running: {describe_items(spans)}, on {threads} of process {os.getpid()}."
        look = f"`py-spy dump --pid {os.getpid()}` shows where each thread is"
    else:
        still = f"Still running on the executor, or waiting for a worker: {describe_items(spans)}."
        look = "the executor's own tools (a Dask dashboard) show what its workers do"
    return (
        f"{head} {still} If {they} should have finished by now, {look}; pass timeout= to "
        f"make a call fail instead of waiting. Logged again each time this wait doubles."
    )
