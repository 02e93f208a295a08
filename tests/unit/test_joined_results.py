"""parallel_map's joining of the lists of results a call yields."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parmap._api import _joined


@given(st.lists(st.lists(st.integers(), max_size=6), max_size=6))
def test_the_pieces_are_joined_in_order(pieces: list[list[int]]) -> None:
    expected = [x for piece in pieces for x in piece]
    assert _joined(iter([list(piece) for piece in pieces]), len(expected)) == expected


def test_a_second_piece_of_most_results_is_not_copied() -> None:
    """The first item run on a thread, then the other 999 in the caller: the list of
    999 is the one returned, so its results are not copied one by one."""
    first, rest = [0], list(range(1, 1000))
    joined = _joined(iter([first, rest]), 1000)
    assert joined is rest
    assert joined == list(range(1000))


def test_chunks_are_appended_to_the_first_piece() -> None:
    """Chunks from workers, each a small part of the results: nothing moves at the end."""
    pieces = [list(range(start, start + 10)) for start in range(0, 100, 10)]
    first = pieces[0]
    joined = _joined(iter(pieces), 100)
    assert joined is first
    assert joined == list(range(100))
