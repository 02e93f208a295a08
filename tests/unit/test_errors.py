"""Error helpers and what crosses the process boundary: notes, tracebacks, pickling."""

from __future__ import annotations

import pickle
import re
import sys
import textwrap
import threading
import traceback
from types import SimpleNamespace
from typing import Any

import pytest

import parmap._errors
from parmap import SerializationError
from parmap._errors import (
    RemoteTraceback,
    add_note,
    item_note,
    rebuild_exception,
)
from parmap._serialization import (
    check_sample_travels,
    dumps_callable,
    dumps_exception,
    dumps_message,
)

from helpers import BadInit

TRACEBACK_TEXT = 'Traceback (most recent call last):\n  File "w.py", line 3, in f\nValueError: x\n'

# --- add_note ------------------------------------------------------------------------


@pytest.fixture(params=["native", "fallback"])
def note_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """add_note as on 3.11+ (BaseException.add_note) and as before 3.11 (a __notes__ list)."""
    if request.param == "native":
        if sys.version_info < (3, 11):
            pytest.skip("BaseException.add_note needs Python 3.11")
    else:
        # Only the module's view of sys changes, never the interpreter's.
        monkeypatch.setattr(parmap._errors, "sys", SimpleNamespace(version_info=(3, 10)))
    return str(request.param)


def test_add_note_sets_notes(note_path: str) -> None:
    """A note lands in exc.__notes__, on both code paths."""
    error = ValueError("boom")
    add_note(error, "first")
    assert error.__notes__ == ["first"]


def test_add_note_appends_in_order(note_path: str) -> None:
    """Several notes accumulate in the order they were added."""
    error = KeyError("k")
    add_note(error, "first")
    add_note(error, "second")
    assert error.__notes__ == ["first", "second"]


def test_add_note_keeps_existing_notes(note_path: str) -> None:
    """Notes added before (by user code) are kept, the new one comes last."""
    error = RuntimeError("r")
    error.__notes__ = ["from user code"]
    add_note(error, item_note(4))
    assert error.__notes__ == ["from user code", item_note(4)]


def test_add_note_leaves_message_and_args_alone(note_path: str) -> None:
    """A note does not change str(exc) or exc.args."""
    error = OSError(2, "missing")
    before = (str(error), error.args)
    add_note(error, "a note")
    assert (str(error), error.args) == before


def test_fallback_replaces_a_non_list_notes_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before 3.11, a __notes__ that is not a list is replaced by a fresh list."""
    monkeypatch.setattr(parmap._errors, "sys", SimpleNamespace(version_info=(3, 9)))
    error = ValueError("v")
    error.__notes__ = ("not", "a list")  # type: ignore[assignment]
    add_note(error, "added")
    assert error.__notes__ == ["added"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tracebacks print notes from 3.11")
def test_note_is_printed_with_the_traceback(note_path: str) -> None:
    """The note shows up under the exception line of a printed traceback."""
    error = ValueError("boom")
    add_note(error, item_note(12))
    printed = "".join(traceback.format_exception(error))
    assert "ValueError: boom\nparmap: raised by fn for the item at index 12" in printed


@pytest.mark.parametrize("index", [0, 1, 13, 10**9])
def test_item_note_names_the_index(index: int) -> None:
    """The note says fn raised for the item at the given index."""
    assert item_note(index) == f"parmap: raised by fn for the item at index {index}"


# --- RemoteTraceback -----------------------------------------------------------------


def test_remote_traceback_str_contains_the_text() -> None:
    """str() of a RemoteTraceback shows the worker's traceback text, quoted."""
    remote = RemoteTraceback(TRACEBACK_TEXT)
    assert TRACEBACK_TEXT.rstrip() in str(remote)
    assert str(remote) == f'\n"""\n{TRACEBACK_TEXT.rstrip()}\n"""'
    assert remote.traceback_text == TRACEBACK_TEXT


def test_remote_traceback_is_shown_as_the_cause() -> None:
    """Chained as __cause__, the remote text appears in the printed traceback."""
    error = rebuild_exception(pickle.dumps(ValueError("x")), "ValueError", "x", TRACEBACK_TEXT)
    printed = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert 'File "w.py", line 3, in f' in printed
    assert "The above exception was the direct cause" in printed


# --- rebuild_exception ---------------------------------------------------------------


@pytest.mark.parametrize(
    "original",
    [ValueError("bad value"), KeyError("key"), OSError(2, "missing"), ZeroDivisionError()],
    ids=lambda e: type(e).__name__,
)
def test_rebuild_returns_the_original_type(original: BaseException) -> None:
    """A payload that unpickles comes back with its own type and args, the traceback as cause."""
    error = rebuild_exception(
        pickle.dumps(original), type(original).__name__, str(original), TRACEBACK_TEXT
    )
    assert type(error) is type(original)
    assert error.args == original.args
    assert isinstance(error.__cause__, RemoteTraceback)
    assert error.__cause__.traceback_text == TRACEBACK_TEXT


def test_rebuild_stands_in_when_the_payload_does_not_unpickle() -> None:
    """An exception that does not unpickle becomes a SerializationError naming type and message."""
    original = BadInit(1, 2)
    payload = pickle.dumps(original)  # pickles fine, fails when loaded
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        pickle.loads(payload)
    error = rebuild_exception(payload, "BadInit", str(original), TRACEBACK_TEXT)
    assert isinstance(error, SerializationError)
    assert re.search(re.escape(f"fn raised BadInit: {original}, and that exception"), str(error))
    assert "does not survive pickling" in str(error)
    assert isinstance(error.__cause__, RemoteTraceback)
    assert error.__cause__.traceback_text == TRACEBACK_TEXT


def test_rebuild_without_payload_stands_in() -> None:
    """No payload at all (it did not pickle in the worker) gives the SerializationError too."""
    error = rebuild_exception(None, "LockError", "cannot pickle '_thread.lock'", TRACEBACK_TEXT)
    assert isinstance(error, SerializationError)
    assert "fn raised LockError: cannot pickle '_thread.lock'" in str(error)


def test_rebuild_with_garbage_payload_stands_in() -> None:
    """A payload that is not a pickle at all gives the SerializationError, not a crash."""
    error = rebuild_exception(b"not a pickle", "ValueError", "v", TRACEBACK_TEXT)
    assert isinstance(error, SerializationError)
    assert "fn raised ValueError: v" in str(error)


# --- dumps_callable ------------------------------------------------------------------


def test_importable_function_goes_by_reference() -> None:
    """A module-level function is pickled by name, without cloudpickle."""
    payload = dumps_callable(textwrap.dedent)
    assert b"cloudpickle" not in payload
    assert b"dedent" in payload
    assert pickle.loads(payload) is textwrap.dedent


def test_lambda_goes_by_value() -> None:
    """A lambda is pickled by value and works after loading."""
    payload = dumps_callable(lambda x: x * 3 + 1)
    assert b"cloudpickle" in payload
    loaded = pickle.loads(payload)
    assert callable(loaded)
    assert loaded(5) == 5 * 3 + 1


def test_closure_goes_by_value_with_its_cells() -> None:
    """A closure is pickled by value, carrying the values it closed over."""
    offset, scale = 7, 4

    def shifted(x: int) -> int:
        return x * scale + offset

    payload = dumps_callable(shifted)
    loaded = pickle.loads(payload)
    assert callable(loaded)
    assert [loaded(x) for x in range(5)] == [shifted(x) for x in range(5)]


def test_unpicklable_closure_names_role_and_fix() -> None:
    """A closure over a lock cannot be sent: SerializationError names the function and the fix."""
    lock = threading.Lock()

    def locked(x: int) -> int:
        with lock:
            return x

    with pytest.raises(
        SerializationError,
        match=r"cannot send initializer \(.*locked\) to worker processes.*backend=\"thread\"",
    ):
        dumps_callable(locked, "initializer")


# --- dumps_message -------------------------------------------------------------------


def test_dumps_message_round_trips_picklable_items() -> None:
    """A message of picklable items pickles as is."""
    message = ("chunk", 10, [1, "a", (2.5, None)])
    assert pickle.loads(dumps_message(message, message[2], 10).joined()) == message


@pytest.mark.parametrize(("start", "offset"), [(10, 3), (0, 0), (0, 4), (1000, 1)])
def test_dumps_message_names_the_first_unpicklable_item(start: int, offset: int) -> None:
    """The error names the bad item's index in the whole input (start + offset) and its type."""
    items: list[Any] = list(range(5))
    lock = threading.Lock()
    items[offset] = lock
    items.append(threading.Lock())  # a later bad item is not the one reported
    with pytest.raises(
        SerializationError,
        match=re.escape(
            f"cannot send the item at index {start + offset} (a {type(lock).__name__})"
        ),
    ) as info:
        dumps_message(("chunk", start, items), items, start)
    assert isinstance(info.value.__cause__, TypeError)


def test_a_sample_that_cloudpickle_sends_travels() -> None:
    """Plain pickle fails on lambdas as items or results; by value they go, so the
    probe's check lets the call go to workers."""
    check_sample_travels([lambda: 1, 2], [3, lambda: 4], start=100)


def test_the_sample_check_names_the_first_item_or_result_that_cannot_go() -> None:
    """Items are checked before results (an item that cannot go is the first failure a
    chunk would meet); the index counts from the sample's first item, *start*."""
    lock = threading.Lock()
    with pytest.raises(SerializationError, match=r"cannot send the item at index 11 \(a lock"):
        check_sample_travels([1, lock], [lock, 2], start=10)
    with pytest.raises(
        SerializationError, match=r"results cannot come back .* the item at index 12 \(a lock"
    ) as info:
        check_sample_travels([1, 2, 3], [1, 2, lock], start=10)
    assert isinstance(info.value.__cause__, TypeError)


def test_dumps_message_example_lock_at_offset_three() -> None:
    """A lock at offset 3 of a chunk starting at 10 is reported as the item at index 13."""
    lock = threading.Lock()
    items: list[Any] = [0, 1, 2, lock, 4]
    with pytest.raises(
        SerializationError, match=re.escape(f"item at index 13 (a {type(lock).__name__})")
    ):
        dumps_message(("chunk", 10, items), items, 10)


# --- dumps_exception -----------------------------------------------------------------


def test_dumps_exception_keeps_a_round_tripping_exception() -> None:
    """An exception that survives pickle both ways is returned as a loadable payload."""
    payload = dumps_exception(ValueError("fine"))
    assert payload is not None
    loaded = pickle.loads(payload)
    assert type(loaded) is ValueError
    assert loaded.args == ("fine",)


def test_dumps_exception_refuses_one_that_does_not_unpickle() -> None:
    """An exception whose __init__ needs two args pickles but does not load: None."""
    assert dumps_exception(BadInit(1, 2)) is None


def test_dumps_exception_refuses_one_that_does_not_pickle() -> None:
    """An exception carrying an unpicklable argument gives None."""
    assert dumps_exception(RuntimeError(threading.Lock())) is None
