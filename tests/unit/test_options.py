"""Every bad argument is refused up front, with a message that names it and what was expected."""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Iterator
from typing import Any, Callable

import psutil
import pytest

import parmap._platform
from parmap import parallel_imap, parallel_map
from parmap._options import BACKENDS
from parmap._platform import START_METHODS

API = [parallel_map, parallel_imap]
API_IDS = ["parallel_map", "parallel_imap"]


def _double(x: int) -> int:
    return 2 * x


def _pids() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


#: (keyword arguments, expected exception, exact text the message must contain)
BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"workers": 0}, ValueError, "workers must be an int >= 1 or None (got 0)"),
    (
        {"workers": -1},
        ValueError,
        "workers must be an int >= 1 or None (got -1): workers=None uses every CPU, as "
        "n_jobs=-1 does in joblib",
    ),
    ({"workers": 1.5}, TypeError, "workers must be an int >= 1 or None (got 1.5 of type float)"),
    ({"workers": True}, TypeError, "workers must be an int >= 1 or None (got True of type bool)"),
    ({"workers": "2"}, TypeError, "workers must be an int >= 1 or None (got '2' of type str)"),
    ({"chunksize": 0}, ValueError, "chunksize must be an int >= 1 or None (got 0)"),
    (
        {"chunksize": 2.0},
        TypeError,
        "chunksize must be an int >= 1 or None (got 2.0 of type float)",
    ),
    ({"timeout": 0}, ValueError, "timeout must be a number of seconds > 0 or None (got 0)"),
    ({"timeout": -1}, ValueError, "timeout must be a number of seconds > 0 or None (got -1)"),
    ({"timeout": "1"}, TypeError, "timeout must be a number of seconds > 0 or None (got '1')"),
    ({"timeout": True}, TypeError, "timeout must be a number of seconds > 0 or None (got True)"),
    ({"serial_fallback": "yes"}, TypeError, "serial_fallback must be True or False (got 'yes')"),
    ({"serial_fallback": 1}, TypeError, "serial_fallback must be True or False (got 1)"),
    (
        {"limit_native_threads": "no"},
        TypeError,
        "limit_native_threads must be True or False (got 'no')",
    ),
    (
        {"backend": "gpu"},
        ValueError,
        "backend must be one of 'process', 'thread', 'serial' or a "
        "concurrent.futures.Executor (got 'gpu')",
    ),
    (
        {"start_method": "threads"},
        ValueError,
        "start_method must be one of 'fork', 'spawn', 'forkserver' or None (got 'threads')",
    ),
    ({"start_method": 5}, TypeError, "start_method must be a string or None (got 5)"),
    (
        {"start_method": "spawn", "backend": "thread"},
        ValueError,
        "start_method applies only to backend='process' (got backend='thread')",
    ),
    (
        {"start_method": "fork", "backend": "serial"},
        ValueError,
        "start_method applies only to backend='process' (got backend='serial')",
    ),
    ({"initializer": 3}, TypeError, "initializer must be callable or None (got 3)"),
    ({"initargs": 5}, TypeError, "initargs must be a tuple or list (got 5 of type int)"),
    (
        {"progress": 3},
        TypeError,
        "progress must be True, False or a callable(done, total) (got 3)",
    ),
]

#: Only parallel_imap takes these.
BAD_IMAP_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"buffersize": 0}, ValueError, "buffersize must be an int >= 1 or None (got 0)"),
    ({"buffersize": -5}, ValueError, "buffersize must be an int >= 1 or None (got -5)"),
    (
        {"buffersize": 1.5},
        TypeError,
        "buffersize must be an int >= 1 or None (got 1.5 of type float)",
    ),
    ({"ordered": "yes"}, TypeError, "ordered must be True or False (got 'yes')"),
]

#: Bad fn or iterable: (fn, iterable, expected exception, message text).
BAD_CALLS: list[tuple[Any, Any, type[Exception], str]] = [
    ("abc", [1, 2], TypeError, "fn must be callable (got 'abc' of type str)"),
    (None, [1, 2], TypeError, "fn must be callable (got None of type NoneType)"),
    (_double, 5, TypeError, "iterable must be iterable (got 5 of type int)"),
    (_double, None, TypeError, "iterable must be iterable (got None of type NoneType)"),
    (
        [1, 2],
        _double,
        TypeError,
        "fn must be callable (got [1, 2] of type list); the arguments look swapped: the "
        "function comes first, as in map(fn, items)",
    ),
]


def _ids(cases: list[tuple[dict[str, Any], type[Exception], str]]) -> list[str]:
    return [",".join(f"{k}={v!r}" for k, v in kwargs.items()) for kwargs, _, _ in cases]


@pytest.mark.parametrize("api", API, ids=API_IDS)
@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_OPTIONS, ids=_ids(BAD_OPTIONS))
def test_bad_option_is_refused_with_its_name_expectation_and_value(
    api: Callable[..., Any], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A bad keyword raises the right error type, naming the keyword, the rule and the value."""
    with pytest.raises(error, match=re.escape(message)):
        api(_double, [1, 2, 3], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"), BAD_IMAP_OPTIONS, ids=_ids(BAD_IMAP_OPTIONS)
)
def test_bad_imap_option_is_refused(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """parallel_imap's own keywords are checked the same way."""
    with pytest.raises(error, match=re.escape(message)):
        parallel_imap(_double, [1, 2, 3], **kwargs)


@pytest.mark.parametrize("api", API, ids=API_IDS)
@pytest.mark.parametrize(("fn", "iterable", "error", "message"), BAD_CALLS)
def test_bad_fn_or_iterable_is_refused(
    api: Callable[..., Any], fn: Any, iterable: Any, error: type[Exception], message: str
) -> None:
    """A non-callable fn or a non-iterable input is refused, naming the value and its type."""
    with pytest.raises(error, match=re.escape(message)):
        api(fn, iterable)


@pytest.mark.parametrize("api", API, ids=API_IDS)
def test_a_second_iterable_where_map_takes_one_points_to_starmap(
    api: Callable[..., Any],
) -> None:
    """map(fn, a, b) maps over two iterables; parallel_map(fn, a, b) takes b for the
    number of workers, and the message says what to write instead."""
    with pytest.raises(TypeError, match=re.escape("use parallel_starmap(fn, zip(a, b))")):
        api(pow, [1, 2], [3, 4])


def test_long_iterable_repr_is_shortened() -> None:
    """A non-iterable with a huge repr is cut to a readable length in the message."""

    class Huge:
        def __repr__(self) -> str:
            return "H" * 1000

    with pytest.raises(
        TypeError, match=r"iterable must be iterable \(got H{57}\.\.\. of type Huge\)"
    ):
        parallel_map(_double, Huge())


@pytest.mark.parametrize("api", API, ids=API_IDS)
def test_backend_message_lists_every_valid_backend(api: Callable[..., Any]) -> None:
    """The backend error lists each valid backend name and mentions Executor instances."""
    with pytest.raises(ValueError, match=r"backend must be one of") as info:
        api(_double, [1], backend="gpu")
    for name in BACKENDS:
        assert repr(name) in str(info.value)
    assert "concurrent.futures.Executor" in str(info.value)


@pytest.mark.parametrize("api", API, ids=API_IDS)
def test_start_method_message_lists_every_valid_method(api: Callable[..., Any]) -> None:
    """The start_method error lists each valid start method."""
    with pytest.raises(ValueError, match=r"start_method must be one of") as info:
        api(_double, [1], start_method="threads")
    for name in START_METHODS:
        assert repr(name) in str(info.value)


def test_unavailable_start_method_names_the_available_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """A start method the platform lacks is refused, listing the ones it offers."""
    monkeypatch.setattr(parmap._platform, "available_start_methods", lambda: ["spawn"])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "start_method 'fork' is not available on this platform; choose one of 'spawn' or None"
        ),
    ):
        parallel_map(_double, [1], start_method="fork")


@pytest.mark.parametrize("api", API, ids=API_IDS)
@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_OPTIONS, ids=_ids(BAD_OPTIONS))
def test_bad_option_starts_no_process(
    api: Callable[..., Any], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Arguments are checked before any worker process exists."""
    before = _pids()
    # Were the bad keyword accepted, these settings would hand the work to 2 processes.
    settings = {"workers": 2, "serial_fallback": False, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        list(api(_double, range(100), **settings))
    assert _pids() <= before
    assert multiprocessing.active_children() == []


class RecordingSource:
    """An iterator that records every item handed out."""

    def __init__(self, count: int) -> None:
        self.pulled: list[int] = []
        self._values = iter(range(count))

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        value = next(self._values)
        self.pulled.append(value)
        return value


@pytest.mark.parametrize("api", API, ids=API_IDS)
@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_OPTIONS, ids=_ids(BAD_OPTIONS))
def test_bad_option_leaves_a_generator_untouched(
    api: Callable[..., Any], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A refused call reads nothing from a one-shot input, so the caller can retry with it."""
    source = RecordingSource(5)
    with pytest.raises(error, match=re.escape(message)):
        api(_double, source, **kwargs)
    assert source.pulled == []
    assert list(source) == list(range(5))


@pytest.mark.parametrize("api", API, ids=API_IDS)
def test_bad_fn_leaves_a_generator_untouched(api: Callable[..., Any]) -> None:
    """A non-callable fn is refused before the input is read."""
    source = RecordingSource(5)
    with pytest.raises(TypeError, match=re.escape("fn must be callable (got 'abc' of type str)")):
        api("abc", source)
    assert source.pulled == []


def test_imap_refuses_bad_arguments_at_call_time() -> None:
    """parallel_imap checks its arguments when called, not at the first next()."""
    source = RecordingSource(5)
    with pytest.raises(
        ValueError, match=re.escape("buffersize must be an int >= 1 or None (got 0)")
    ):
        parallel_imap(_double, source, buffersize=0)
    assert source.pulled == []


@pytest.mark.parametrize("api", API, ids=API_IDS)
@pytest.mark.parametrize("initargs", [(), (1, 2), [1, 2]])
def test_valid_initargs_are_accepted(api: Callable[..., Any], initargs: Any) -> None:
    """Tuples and lists are accepted as initargs."""
    seen: list[tuple[Any, ...]] = []
    results = api(
        _double,
        [1, 2],
        backend="serial",
        initializer=lambda *args: seen.append(args),
        initargs=initargs,
    )
    assert list(results) == [2, 4]
    assert seen == [tuple(initargs)]
