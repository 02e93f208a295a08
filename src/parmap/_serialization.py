"""How ``fn``, items, results and exceptions cross the process boundary.

Items and results use plain pickle at the highest protocol: it is the fastest option
and what every stdlib pool uses. Only ``fn`` and the initializer may need more:
functions defined in ``__main__`` (a script, ``python -c``, the REPL, a notebook cell),
lambdas and closures cannot be found by reference in a worker, so they go by value
through cloudpickle. Anything that cannot be sent raises :class:`SerializationError`
naming what, why and how to fix it, before a worker waits for it.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Optional, Sequence

from ._callables import importable_by_reference
from ._errors import SerializationError
from ._frames import PROTOCOL, Pickled, pickle_apart

#: Where a fix for an unpicklable payload usually lies.
_THREAD_HINT = 'or use backend="thread", which does not pickle'


def describe_callable(fn: object) -> str:
    fn = getattr(fn, "__wrapped__", fn)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else type(fn).__name__


def dumps_callable(fn: Callable[..., Any], role: str = "fn") -> bytes:
    """Pickle *fn* by reference where a worker can import it, else by value."""
    try:
        if importable_by_reference(fn):
            # By value after all if it fails, or points into __main__ (a partial, say).
            return dumps_portable(fn)
        import cloudpickle

        by_value: bytes = cloudpickle.dumps(fn, PROTOCOL)
    except Exception as exc:
        fix = f"inside {role} or in an initializer" if role == "fn" else f"inside {role}"
        msg = (
            f"cannot send {role} ({describe_callable(fn)}) to worker processes: it refers "
            f"to an object that cannot be pickled ({type(exc).__name__}: {exc}). Create "
            f"that object {fix}, {_THREAD_HINT}."
        )
        raise SerializationError(msg) from exc
    return by_value


def dumps_initializer(initializer: Callable[..., object], initargs: tuple[Any, ...]) -> bytes:
    """The initializer (by value if need be) and its arguments (plain pickle)."""
    payload = dumps_callable(initializer, "initializer")
    try:
        return pickle.dumps((payload, initargs), PROTOCOL)
    except Exception as exc:
        msg = (
            f"cannot send initargs to worker processes: {type(exc).__name__}: {exc}. "
            f"Pass picklable initargs, {_THREAD_HINT}."
        )
        raise SerializationError(msg) from exc


def dumps_message(message: tuple[Any, ...], items: Sequence[Any], start: int) -> Pickled:
    """Pickle a message that holds *items* for a worker's pipe (``_frames.py``); name the
    bad item on failure."""
    try:
        return pickle_portable(message, apart=True)
    except Exception as exc:
        index, culprit, error = _first_unpicklable(items, exc)
        raise SerializationError(_unsendable_item_message(start + index, culprit, error)) from error


def _unsendable_item_message(index: int, item: object, error: Exception) -> str:
    return (
        f"cannot send the item at index {index} (a {type(item).__name__}) to a worker "
        f"process: {type(error).__name__}: {error}. Make the items picklable, {_THREAD_HINT}."
    )


def check_sample_travels(items: Sequence[Any], results: Sequence[Any], start: int) -> None:
    """Raise :class:`SerializationError` if an item of the caller's sample (the items from
    index *start* on, run in the caller to time fn), or its result, cannot be sent to or
    from a worker process, even by value: before workers run chunks whose results could
    never come back."""
    bad_item = _unpicklable(items)
    if bad_item is not None:
        index, item, error = bad_item
        raise SerializationError(_unsendable_item_message(start + index, item, error)) from error
    bad_result = _unpicklable(results)
    if bad_result is not None:
        index, result, error = bad_result
        msg = (
            f"fn's results cannot come back from worker processes: the result for the "
            f"item at index {start + index} (a {type(result).__name__}) cannot be "
            f"pickled ({type(error).__name__}: {error}). That item ran in the calling "
            f"process, which times fn's first items; the rest of this input would run "
            f"in workers. Return picklable values from fn, {_THREAD_HINT}."
        )
        raise SerializationError(msg) from error


def dumps_portable(value: object) -> bytes:
    """:func:`pickle_portable` as one bytes object."""
    return pickle_portable(value, apart=False).joined()


def pickle_portable(value: object, *, apart: bool) -> Pickled:
    """Plain pickle, unless the payload refers to ``__main__`` (or plain pickle fails).

    A worker does not run the caller's ``__main__``, so objects of classes defined
    there travel by value (cloudpickle). Checking the payload for the module name costs
    a byte scan; other payloads keep plain pickle's speed. With *apart*, large buffers
    are kept apart from the pickle (``_frames.py``).
    """
    try:
        pickled = pickle_apart(pickle.Pickler, value, apart=apart)
        if not pickled.mentions(_MAIN_REFERENCE):
            return pickled
    except Exception:
        pass  # plain pickle cannot: cloudpickle may
    import cloudpickle

    return pickle_apart(cloudpickle.Pickler, value, apart=apart)


#: How a pickle names the main module when it refers to something defined there.
_MAIN_REFERENCE = b"__main__"


def unpicklable_result_message(results: Sequence[Any], start: int, exc: Exception) -> str:
    """Explain which result of a chunk could not be pickled (runs in the worker)."""
    index, culprit, error = _first_unpicklable(results, exc)
    return (
        f"cannot send the result for the item at index {start + index} (a "
        f"{type(culprit).__name__}) back from the worker process: {type(error).__name__}: "
        f"{error}. Return picklable values from fn, {_THREAD_HINT}."
    )


def unloadable_results_message(start: int, count: int, exc: Exception) -> str:
    """Explain that the results of a chunk do not unpickle in the caller (runs there)."""
    if count == 1:
        items = f"the item at index {start}"
    else:
        items = f"the items at index {start} to {start + count - 1} (one of them or more)"
    return (
        f"cannot load the results for {items} that a worker process sent back: "
        f"{type(exc).__name__}: {exc}. Return values that unpickle in the calling process "
        f"(their classes importable there, their __reduce__ or __setstate__ working), "
        f"{_THREAD_HINT}."
    )


def _first_unpicklable(values: Sequence[Any], fallback: Exception) -> tuple[int, object, Exception]:
    """The first value that cannot be sent, or the first value with *fallback*, the error
    of the message they were in, where each goes alone."""
    bad = _unpicklable(values)
    return bad if bad is not None else (0, values[0] if values else None, fallback)


def _unpicklable(values: Sequence[Any]) -> Optional[tuple[int, object, Exception]]:
    """(index, value, error) of the first of *values* that cannot be sent, even by value."""
    for index, value in enumerate(values):
        try:
            dumps_portable(value)
        except Exception as exc:
            return index, value, exc
    return None


def dumps_exception(exc: BaseException) -> bytes | None:
    """Pickle *exc* if it also unpickles (some ``__init__`` signatures do not)."""
    try:
        payload = dumps_portable(exc)
        pickle.loads(payload)
    except Exception:
        return None
    return payload
