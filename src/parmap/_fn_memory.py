"""What parmap remembers of each fn from one call to the next, within this process.

A program maps the same function again and again, and what its last call measured saves
the next one a measurement: the time per item (work goes out at once), whether its first
item was timed (the timer keeps its tick floor), whether it waited on a thread (every
thread gets an item at once), how far its items overlapped on threads (they go there
without a trial). Everything is held weakly: a function that goes away is forgotten.

Kept by the function inside fn (``_callables.function_inside``), or by its code: a bound
method, a partial, ``parallel_starmap``'s wrapper and a lambda made in a loop are new
objects at each call, their function and code are not. A value without weak references
is never remembered, and each reader says what that counts as.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any, Callable, Optional

from ._callables import function_inside

#: The time per item each fn took in its last probe, if that probe sent the rest to
#: workers: a call with a warm pool hands out work at once when it says the call will
#: go parallel (the probe still checks). Not kept for a fn whose last call stayed in
#: the caller: its items were cheap next to sending them (a million trivial items),
#: and handing two of them out would cost a round trip and a copy of the results.
_seconds_per_item: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
#: The code of every fn whose first item the caller has timed in this process.
_timed_code: weakref.WeakSet[Any] = weakref.WeakSet()
#: The code of every fn whose first item, on a thread, was last seen waiting (on I/O, a
#: lock, or C code that releases the GIL): its next call hands every thread an item at
#: once instead of first watching one (0.2-0.3 ms, a fifth of 8 waits of 1 ms).
_waiting_code: weakref.WeakSet[Any] = weakref.WeakSet()
#: How far fn's items overlapped in time on threads, by code: the process's CPU time
#: over the clock's while items ran side by side on as many threads as CPUs (1: they
#: hold the GIL; up to the CPUs: hashing, compression, numpy, which release it). Kept
#: only where they did overlap.
_overlap_by_code: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def forget_everything() -> None:
    """As in a fresh process (for tests: what one remembers must not steer the next)."""
    _seconds_per_item.clear()
    _timed_code.clear()
    _waiting_code.clear()
    _overlap_by_code.clear()


def code_of(fn: Callable[[Any], Any]) -> Any:
    target = function_inside(fn)
    return getattr(target, "__code__", target)


def item_seconds(fn: Callable[[Any], Any]) -> Optional[float]:
    try:
        return _seconds_per_item.get(function_inside(fn))
    except TypeError:  # no weak references to it: never remembered
        return None


def remember_item_seconds(fn: Callable[[Any], Any], seconds: float) -> None:
    with contextlib.suppress(TypeError):
        _seconds_per_item[function_inside(fn)] = seconds


def forget_item_seconds(fn: Callable[[Any], Any]) -> None:
    with contextlib.suppress(TypeError):
        _seconds_per_item.pop(function_inside(fn), None)


def timed_before(fn: Callable[[Any], Any]) -> bool:
    """Whether the caller has timed an item of fn's code before; remembers that it has."""
    code = code_of(fn)
    try:
        if code in _timed_code:
            return True
        _timed_code.add(code)
    except TypeError:  # no weak references to it: as if known, the cheaper guess
        return True
    return False


def seen_waiting(fn: Callable[[Any], Any]) -> bool:
    try:
        return code_of(fn) in _waiting_code
    except TypeError:  # never remembered
        return False


def remember_waiting(fn: Callable[[Any], Any], waiting: bool) -> None:
    with contextlib.suppress(TypeError):
        if waiting:
            _waiting_code.add(code_of(fn))
        else:
            _waiting_code.discard(code_of(fn))


def overlap(fn: Callable[[Any], Any]) -> Optional[float]:
    try:
        return _overlap_by_code.get(code_of(fn))
    except TypeError:  # never remembered
        return None


def remember_overlap(fn: Callable[[Any], Any], seen: float) -> None:
    with contextlib.suppress(TypeError):
        _overlap_by_code[code_of(fn)] = seen
