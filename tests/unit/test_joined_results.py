"""parallel_map's joining of the lists of results a call yields."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parmap._api import _joined


@given(st.lists(st.lists(st.integers(), max_size=6), max_size=6))
def test_the_pieces_are_joined_in_order(pieces: list[list[int]]) -> None:
    expected = [x for piece in pieces for x in piece]
    assert _joined(iter([list(piece) for piece in pieces])) == expected


def test_a_short_first_piece_goes_in_front_of_the_second_not_the_second_into_it() -> None:
    """The first item run on a thread, then the other 999 in the caller: the list of
    999 is the one returned, so its results are not copied one by one."""
    first, rest = [0], list(range(1, 1000))
    joined = _joined(iter([first, rest]))
    assert joined is rest
    assert joined == list(range(1000))


def test_a_long_first_piece_takes_the_others() -> None:
    first, second, third = list(range(10)), [10], [11, 12]
    joined = _joined(iter([first, second, third]))
    assert joined is first
    assert joined == list(range(13))
