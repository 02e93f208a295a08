"""The main promise: parallel_map(f, xs) == list(map(f, xs)), whatever the settings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parmap import parallel_imap, parallel_map

from helpers import START_METHODS, identity, key_and_size, pid_of, square

chunksizes = st.none() | st.integers(1, 50)


@given(
    xs=st.lists(st.integers()),
    workers=st.integers(1, 3),
    chunksize=chunksizes,
    start_method=st.sampled_from(START_METHODS),
)
def test_process_backend_matches_builtin_map(
    xs: list[int], workers: int, chunksize: int | None, start_method: str
) -> None:
    """Same results, same order as map(), for any input, workers, chunksize, start method."""
    result = parallel_map(
        square, xs, workers, chunksize, start_method=start_method, serial_fallback=False
    )
    assert result == list(map(square, xs))


@given(xs=st.lists(st.integers(), max_size=300), fallback=st.booleans())
def test_defaults_match_builtin_map(xs: list[int], fallback: bool) -> None:
    """With default workers and chunksize, with or without serial fallback."""
    assert parallel_map(square, xs, serial_fallback=fallback) == list(map(square, xs))


@given(xs=st.lists(st.integers()), workers=st.integers(1, 8), chunksize=chunksizes)
def test_thread_backend_matches_builtin_map(
    xs: list[int], workers: int, chunksize: int | None
) -> None:
    """The thread backend keeps input order too."""
    expected = list(map(square, xs))
    assert (
        parallel_map(square, xs, workers, chunksize, backend="thread", serial_fallback=False)
        == expected
    )


@given(xs=st.lists(st.integers()), chunksize=chunksizes)
def test_executor_backend_matches_builtin_map(xs: list[int], chunksize: int | None) -> None:
    """Any concurrent.futures.Executor serves as a backend, in input order."""
    with ThreadPoolExecutor(3) as executor:
        result = parallel_map(
            square, xs, chunksize=chunksize, backend=executor, serial_fallback=False
        )
    assert result == list(map(square, xs))


@given(xs=st.lists(st.integers()), chunksize=chunksizes, fallback=st.booleans())
def test_imap_matches_builtin_map(xs: list[int], chunksize: int | None, fallback: bool) -> None:
    """parallel_imap over a generator yields what map() yields, in order."""
    out = parallel_imap(square, (x for x in xs), 2, chunksize, serial_fallback=fallback)
    assert list(out) == list(map(square, xs))


@given(xs=st.lists(st.integers(), unique=True), chunksize=chunksizes)
def test_unordered_imap_yields_every_result_once(xs: list[int], chunksize: int | None) -> None:
    """ordered=False yields each result exactly once, in any order."""
    out = parallel_imap(identity, xs, 2, chunksize, ordered=False, serial_fallback=False)
    assert sorted(out) == sorted(xs)


class _NoLength:
    """Iterates over *xs*, but its ``__len__`` raises TypeError, as some lazy datasets'
    do; ``list()`` and ``map`` take that as "length unknown"."""

    def __init__(self, xs: list[int]) -> None:
        self._xs = xs

    def __len__(self) -> int:
        raise TypeError("this dataset has no length")

    def __iter__(self) -> Iterator[int]:
        return iter(self._xs)


@pytest.mark.parametrize(
    "make_input",
    [
        list,
        tuple,
        lambda xs: range(len(xs)),
        lambda xs: (x for x in xs),
        dict.fromkeys,
        _NoLength,
    ],
    ids=["list", "tuple", "range", "generator", "dict", "len raises TypeError"],
)
@pytest.mark.parametrize("fallback", [True, False])
def test_any_iterable_is_accepted(make_input: object, fallback: bool) -> None:
    """Lists, tuples, ranges, generators and other iterables all work."""
    xs = list(range(57))
    source = make_input(xs)  # type: ignore[operator]
    expected = list(map(square, make_input(xs)))  # type: ignore[operator]
    assert parallel_map(square, source, 2, serial_fallback=fallback) == expected
    lazy = parallel_imap(square, make_input(xs), 2, serial_fallback=fallback)  # type: ignore[operator]
    assert list(lazy) == expected


def test_every_start_method_matches_builtin_map(start_method: str) -> None:
    """fork, spawn and forkserver give the same answer, from real worker processes."""
    xs = list(range(300))
    result = parallel_map(square, xs, 2, 7, start_method=start_method, serial_fallback=False)
    assert result == list(map(square, xs))


def test_work_runs_in_other_processes(start_method: str) -> None:
    """Without serial fallback the items really run in worker processes."""
    import os

    pids = set(
        parallel_map(pid_of, range(40), 2, 1, start_method=start_method, serial_fallback=False)
    )
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


def test_lambdas_and_closures_work(start_method: str) -> None:
    """Functions that plain pickle cannot send by reference are sent by value."""
    offset = 5
    assert parallel_map(
        lambda x: x + offset, range(20), 2, start_method=start_method, serial_fallback=False
    ) == [x + offset for x in range(20)]


def test_one_million_items() -> None:
    """Large inputs come back complete and in order."""
    xs = range(1_000_000)
    assert parallel_map(identity, xs, 2, serial_fallback=False) == list(xs)


@pytest.mark.parametrize("backend", ["process", "thread"])
@pytest.mark.parametrize("fallback", [True, False])
def test_the_groups_of_itertools_groupby_arrive_whole(backend: str, fallback: bool) -> None:
    """A group of groupby is empty once the groupby moves on, which a parallel map does
    before fn runs: fn counted 0 in every group, without an error (Pool.map does too)."""
    data = sorted(x % 7 for x in range(700))
    expected = list(map(key_and_size, itertools.groupby(data)))
    options = {"backend": backend, "serial_fallback": fallback}
    assert parallel_map(key_and_size, itertools.groupby(data), 2, **options) == expected
    assert list(parallel_imap(key_and_size, itertools.groupby(data), 2, **options)) == expected
