"""parallel_starmap: fn(*args) for each tuple, with parallel_map's guarantees."""

from __future__ import annotations

import itertools
import operator
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parmap import SerializationError, parallel_starmap

from helpers import START_METHODS


@given(
    pairs=st.lists(st.tuples(st.integers(), st.integers())),
    chunksize=st.none() | st.integers(1, 20),
    start_method=st.sampled_from(START_METHODS),
)
def test_matches_itertools_starmap(
    pairs: list[tuple[int, int]], chunksize: int | None, start_method: str
) -> None:
    """Same results, same order as itertools.starmap, in worker processes."""
    result = parallel_starmap(
        operator.sub, pairs, 2, chunksize, start_method=start_method, serial_fallback=False
    )
    assert result == list(itertools.starmap(operator.sub, pairs))


@pytest.mark.parametrize("backend", ["process", "thread", "serial"])
def test_lambda_of_two_arguments(backend: str, start_method: str) -> None:
    """A lambda of several arguments works on every backend (by value for processes)."""
    options = {"start_method": start_method} if backend == "process" else {}
    pairs = [(x, x + 1) for x in range(30)]
    result = parallel_starmap(
        lambda a, b: a * b, pairs, 2, backend=backend, serial_fallback=False, **options
    )
    assert result == [a * b for a, b in pairs]


def test_exception_names_the_tuple_index() -> None:
    """An exception from fn carries the index of the argument tuple."""
    pairs = [(1, 1), (2, 1), (3, 0), (4, 1)]
    with pytest.raises(ZeroDivisionError) as info:
        parallel_starmap(operator.floordiv, pairs, 2, 1, serial_fallback=False)
    assert "parmap: raised by fn for the item at index 2" in getattr(info.value, "__notes__", [])


def test_unpicklable_fn_is_named() -> None:
    """The error names the user's function, not parmap's wrapper."""
    lock = threading.Lock()

    def locked_add(a: int, b: int) -> int:
        with lock:
            return a + b

    with pytest.raises(SerializationError, match=r"cannot send fn \(.*locked_add\)"):
        parallel_starmap(locked_add, [(1, 2)] * 10, 2, serial_fallback=False)


def test_bad_fn_is_refused_before_anything_runs() -> None:
    """fn must be callable, as for parallel_map."""
    with pytest.raises(TypeError, match="fn must be callable"):
        parallel_starmap(3, [(1, 2)])  # type: ignore[arg-type]
