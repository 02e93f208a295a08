"""The timer around the first item (parmap._early): how it is set and put back."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from parmap._early import EarlyDispatch


def _never_called() -> Any:
    raise AssertionError("no work may be handed out")


@pytest.mark.parametrize("requested", [0.001, 0.02])
def test_the_timer_is_one_shot_and_put_back(requested: float) -> None:
    """The timer is set for the budget, once, and leaves SIGALRM as it found it."""
    early = EarlyDispatch(_never_called, iter([]), 1)
    with early.armed(requested, 1):
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    assert requested * 0.5 < remaining <= requested
    assert interval == 0.0, "one shot"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0), "cancelled after the block"
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL, "the handler is put back"
