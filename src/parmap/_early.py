"""Handing out work while the caller is still timing the first item.

The serial probe cannot tell cheap work from costly work until an item finishes. If
the first item alone takes longer than starting workers, waiting for it leaves every
other CPU idle that long: on 20 items of 0.2 s and 2 CPUs, 5 % of the run. So a
one-shot SIGALRM timer, armed only around the first item, starts the workers if need
be and hands one item to each worker but one (the caller's item keeps a CPU busy).
The caller then finishes its item and carries on as the scheduler.

Under fork it starts none (the caller's ``open_session`` says so): a worker forked in
the middle of fn's item would copy what the item had half done, a module half
imported or a lock held. Only workers already running get work then. Nor does it hand
out a fn that pickles by value: its pickle would copy globals the item had half set.

When an earlier call with the same fn already showed that the work is worth a warm
pool, each worker gets an item at once instead (``hand_out_now``). If no worker answers
within a quarter of the item time measured then, the items cost about as much again
and the call goes parallel without timing one in the caller. An early answer means
cheaper items: the probe times the next ones in the caller, and if it finds them cheap
after all, the items handed out are collected and the rest runs in the caller.

The timer's seconds are the caller's CPU time where the caller never waits meanwhile (as
the probe's budget is): if it fires while another process holds the caller's CPU, it is
set again for the rest, so a cheap first item that lost its CPU hands out nothing.

A fn the caller has timed before gets a timer of at least ``MIN_ALARM_SECONDS`` (4 ms),
even when a warm pool's budget is 1 ms: one due before the kernel's next tick costs two
reprogrammings of the timer device a call, traps to the hypervisor on a virtual machine.
A new fn's first call pays that once (about 20 us) and gets its budget: a costly first
item then leaves the other CPUs idle 1 ms, not 4 (docs/design.md has the figures).

A timer signal rather than a helper thread, because forking from a second thread while
the main one runs user code is unsafe and warns on Python 3.12+; the handler runs in
the main thread between bytecodes. It is used only in the main thread and only when
nothing else uses SIGALRM; otherwise work is handed out after the first item.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from itertools import islice
from types import FrameType
from typing import Any, Callable, Iterator, Optional

from . import _log
from ._backends import Chunk, Session
from ._serial import FULL_CPU_SHARE, Probe, voluntary_switches, waits_since

try:
    # The C functions that ``signal`` wraps: its wrappers convert numbers to enums and back
    # by raising and catching ValueError for a Python handler, which made arming and
    # disarming the timer take 8 us a call instead of 2.
    import _signal as raw_signal  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - an interpreter without the C module
    raw_signal = signal

#: The shortest timer set around the first item: a tick of a 250 Hz kernel.
MIN_ALARM_SECONDS = 0.004


class EarlyDispatch:
    """Opens a session and submits single-item chunks to free workers, on a timer.

    The caller keeps one CPU busy with its own item, so *limit* is one less than the
    number of workers: more would only make every process run slower.
    """

    def __init__(
        self,
        open_session: Callable[[bool], Optional[Session]],
        items: Iterator[Any],
        limit: int,
    ) -> None:
        self._open_session = open_session
        self._items = items
        self._limit = limit  # items to hand out at most
        self.next_index = 0  # index of the next item the caller has not read yet
        self.session: Optional[Session] = None
        self.submitted: list[int] = []
        self.error: Optional[BaseException] = None
        self.immediate = False  # handed out before the first item ran, not on the timer
        self.alarm_seconds = 0.0  # how long the timer's handler held up the first item
        self.alarm_cpu_seconds = 0.0  # ... and the CPU time it took meanwhile
        self.last_send_at = 0.0  # perf_counter() just before the last item was sent
        self._shortest = MIN_ALARM_SECONDS  # the shortest timer to set
        self._cpu_budget = 0.0  # the timer's seconds: of the caller's CPU time ...
        self._armed_cpu = 0.0  # ... counted from this thread_time() ...
        self._armed_waits: Optional[int] = None  # ... unless it waits (blocks) meanwhile

    @contextlib.contextmanager
    def armed(
        self, seconds: float, next_index: int, shortest: float = MIN_ALARM_SECONDS
    ) -> Iterator[None]:
        """Fire after *seconds* (at least *shortest*) unless the block is over by then."""
        self.next_index = next_index
        if not _alarm_is_free():
            yield
            return
        previous = raw_signal.signal(signal.SIGALRM, self._on_alarm)
        # Restart the system calls the signal interrupts: Python retries them itself,
        # but native code in fn may not, and failed with EINTR (a C read() of a pipe).
        raw_signal.siginterrupt(signal.SIGALRM, False)
        self._shortest = shortest
        self._cpu_budget = max(seconds, shortest)
        self._armed_cpu = time.thread_time()
        self._armed_waits = voluntary_switches()
        signal.setitimer(signal.ITIMER_REAL, self._cpu_budget)
        try:
            yield
        finally:
            # Unless fn took SIGALRM over during the item (a timeout of its own, set up
            # on its first call): then the handler and the timer are fn's, and putting
            # the previous handler back made fn's next alarm kill the process.
            if raw_signal.getsignal(signal.SIGALRM) == self._on_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                raw_signal.signal(signal.SIGALRM, previous)
            _log.release()  # what the handler had to say, now that the item is over

    def not_counting_the_handler(self, found: Probe) -> Probe:
        """*found* without the time the timer's handler took inside the first item,
        which is not fn's: up to 5 ms, which made a 5 ms item look like 10, and longer
        where it started spawn workers."""
        if not self.alarm_seconds:
            return found
        return found._replace(
            seconds=max(0.0, found.seconds - self.alarm_seconds),
            cpu_seconds=max(0.0, found.cpu_seconds - self.alarm_cpu_seconds),
        )

    def hand_out_now(self) -> None:
        """Give every worker one of the first items now: the call is expected to go
        parallel. One each, not one less: the caller times an item beside them only if
        they answer early (cheap items), and then for only a millisecond."""
        self.immediate = True
        self._limit += 1
        self._hand_out(mid_item=False)

    def _on_alarm(self, signum: int, frame: Optional[FrameType]) -> None:
        began, began_cpu = time.perf_counter(), time.thread_time()
        computed = began_cpu - self._armed_cpu
        if computed < FULL_CPU_SHARE * self._cpu_budget and waits_since(self._armed_waits) == 0:
            # Another process held the caller's CPU: the item has not had the budget
            # yet. Wait for the rest of it, as the probe counts its budget in CPU time.
            rest = max(self._cpu_budget - computed, self._shortest)
            signal.setitimer(signal.ITIMER_REAL, rest)
            return
        if a_needed_lock_is_held():
            signal.setitimer(signal.ITIMER_REAL, self._shortest)  # try again shortly
            return
        _log.hold()  # this may have interrupted a write to the log's stream
        self._hand_out(mid_item=True)
        self.alarm_seconds += time.perf_counter() - began
        self.alarm_cpu_seconds += time.thread_time() - began_cpu

    def _hand_out(self, *, mid_item: bool) -> None:
        """Submit items to free workers; *mid_item*: from the timer, inside fn's item."""
        try:
            session = self._open_session(mid_item)
        except Exception:
            return
        if session is None:  # not without starting workers, which must wait
            return
        self.session = session
        try:
            while session.has_capacity() and len(self.submitted) < self._limit:
                batch = list(islice(self._items, 1))
                if not batch:
                    break
                self.last_send_at = time.perf_counter()
                session.submit(Chunk(self.next_index, batch))
                self.submitted.append(self.next_index)
                self.next_index += 1
        except Exception as exc:
            self.error = exc


def a_needed_lock_is_held() -> bool:
    """Whether a lock that handing out work may take is held now.

    The handler runs in the main thread, in the middle of whatever the first item was
    doing. If that was inside a lock the handler then takes (``multiprocessing``'s fork
    server starting, a parmap call of fn's own checking out a pool, cloudpickle pickling
    a class), the handler would wait for it for ever: the code holding it only goes on
    once the handler returns. A lock another thread holds is released soon; either way
    the handler tries again a tick later, and after the item nothing waits.
    """
    for lock in _locks_handing_out_takes():
        owned = getattr(lock, "_is_owned", None)  # an RLock: held by this thread?
        if owned() if owned is not None else lock.locked():
            return True
    return False


def _locks_handing_out_takes() -> Iterator[Any]:
    """The locks of the modules loaded so far that starting workers, checking out the
    warm pool and pickling items may take (non-reentrant ones, except the resource
    tracker's, an RLock from Python 3.11.7 on that raises when entered again)."""
    modules = sys.modules
    found = (
        (modules.get("parmap._backends._warm"), "_kept_pool", "_lock"),
        (modules.get("multiprocessing.forkserver"), "_forkserver", "_lock"),
        (modules.get("multiprocessing.resource_tracker"), "_resource_tracker", "_lock"),
        (modules.get("cloudpickle.cloudpickle"), None, "_DYNAMIC_CLASS_TRACKER_LOCK"),
    )
    for module, holder, name in found:
        owner = getattr(module, holder, None) if holder is not None else module
        lock = getattr(owner, name, None)
        if lock is not None:
            yield lock


def _alarm_is_free() -> bool:
    """Whether SIGALRM has its default handler and no timer is pending. A handler that
    Python did not install (C code's) reads as None: it is not free, and could not be
    put back."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        return False
    return raw_signal.getsignal(signal.SIGALRM) == signal.SIG_DFL and signal.getitimer(
        signal.ITIMER_REAL
    ) == (0.0, 0.0)
