"""Every error parmap raises on its own account, and how worker failures are dressed.

An exception raised by ``fn`` is not wrapped: it comes back with its own type, the
worker's traceback as its ``__cause__`` and a note that names the failing item.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backends import Running


class ParmapError(Exception):
    """Base class of the errors parmap raises itself (not those raised by ``fn``).

    .. versionadded:: 0.1
    """


class WorkerCrashedError(ParmapError):
    """A worker process exited while it was running items.

    Raised instead of waiting forever, as ``multiprocessing.Pool`` would. The dead
    worker and those still running items are replaced; the next call works.

    .. versionadded:: 0.1
    """


class SerializationError(ParmapError):
    """``fn``, an item, a result or an exception could not be sent between processes.

    The message names which one (and the item's index; for a result that does not load
    in the caller, the items of its chunk), the reason, and a fix.

    .. versionadded:: 0.1
    """


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised in a worker.

    Attached as ``__cause__`` of the re-raised exception, so the report shows where in
    the worker the error happened (as ``concurrent.futures`` does).
    """

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return f'\n"""\n{self.traceback_text.rstrip()}\n"""'


def describe_items(spans: list[tuple[int, int]]) -> str:
    """``item 3`` or ``items 3, 8-11 and 20``, for (first index, count) spans."""
    parts = [str(first) if n == 1 else f"{first}-{first + n - 1}" for first, n in sorted(spans)]
    if len(parts) == 1:
        return f"item {parts[0]}" if spans[0][1] == 1 else f"items {parts[0]}"
    return f"items {', '.join(parts[:-1])} and {parts[-1]}"


def timeout_detail(place: str, running: list[Running]) -> str:
    """What a timeout's message says about the items still *running* on a session
    whose chunks run in *place*, and what stopping the call does to them."""
    spans = [(busy.start, busy.size) for busy in running]
    one = len(spans) == 1
    items = describe_items(spans)
    was, pronoun = ("was", "it") if one and spans[0][1] == 1 else ("were", "them")
    if place == "process":
        processes = "process running" if one else "processes running"
        stopped = "was stopped" if one else "were stopped"
        return f"{items} {was} still running; the worker {processes} {pronoun} {stopped}"
    if place == "thread":
        threads = "a thread, which stops" if one else "threads, which stop"
        return f"{items} {was} still running on {threads} after {pronoun}"
    return (
        f"{items} {was} still running on the executor's workers or waiting for them, "
        f"which finish {pronoun}"
    )


def item_note(index: int) -> str:
    """The note attached to an exception raised by ``fn``."""
    return f"parmap: raised by fn for the item at index {index}"


def fn_stopped_error(index: int, stop: BaseException | None = None) -> RuntimeError:
    """What parmap raises where ``fn`` raised StopIteration for the item at *index*
    (*stop*, where it was caught; ``map`` swallows it, so the caller only sees that it
    stopped early).

    ``map`` takes a StopIteration from its function for the end of its input: ``list(map(
    fn, items))`` ends there without an error and drops the rest. Workers then returned
    short chunks, and the results no longer lined up with the items. The usual cause is a
    bare ``next()`` on an empty iterator inside ``fn``: an error, not an end.
    """
    error = RuntimeError(
        f"fn raised StopIteration for the item at index {index}. map() would have ended "
        "there without an error and dropped the remaining items; parmap raises instead. "
        "The usual cause is next() on an empty iterator inside fn (call fn on that item to "
        "see where): give next() a default, or catch StopIteration and raise another error."
    )
    error.__cause__ = stop
    return error


def add_note(exc: BaseException, note: str) -> None:
    """Attach *note* to *exc*: ``add_note`` on 3.11+, a ``__notes__`` list before."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
        return
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list):
        notes = []
        try:
            exc.__notes__ = notes  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions with __slots__
            return
    notes.append(note)
    # Before 3.11 tracebacks do not print notes; the worker's traceback, printed as
    # the cause, carries the note instead.
    cause = exc.__cause__
    if isinstance(cause, RemoteTraceback):
        cause.traceback_text = f"{cause.traceback_text.rstrip()}\n{note}"


def rebuild_exception(
    payload: bytes | None, type_name: str, message: str, traceback_text: str
) -> BaseException:
    """The exception a worker reported, with the worker's traceback as its cause.

    When the original cannot travel (it did not pickle or unpickle), a
    :class:`SerializationError` stands in for it, carrying its type, message and traceback.
    """
    import pickle

    error: BaseException | None = None
    if payload is not None:
        try:
            error = pickle.loads(payload)
        except Exception:
            error = None
    if error is None:
        msg = (
            f"fn raised {type_name}: {message}, and that exception could not be sent back "
            "from the worker process (it does not survive pickling). Give the exception "
            "class an __init__ that accepts its args, or raise a built-in exception."
        )
        error = SerializationError(msg)
    error.__cause__ = RemoteTraceback(traceback_text)
    return error
