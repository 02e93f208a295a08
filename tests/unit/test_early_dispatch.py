"""The timer around the first item (parmap._early): how it is set and put back."""

from __future__ import annotations

import signal
from typing import Any

import pytest

import parmap._early
from parmap._early import MIN_ALARM_SECONDS, EarlyDispatch


def _never_called(mid_item: bool) -> Any:
    raise AssertionError("no work may be handed out")


@pytest.mark.parametrize("requested", [0.001, 0.02])
def test_the_timer_is_at_least_a_kernel_tick(requested: float) -> None:
    """For a fn timed before, a warm pool's 1 ms budget still sets a 4 ms timer: one due
    before the next tick costs a reprogrammed timer device twice, 17 us a call on a
    virtual machine."""
    early = EarlyDispatch(_never_called, iter([]), 1)
    with early.armed(requested, 1):
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    assert max(requested, MIN_ALARM_SECONDS) * 0.9 < remaining <= max(requested, MIN_ALARM_SECONDS)
    assert interval == 0.0, "one shot"
    assert MIN_ALARM_SECONDS >= 0.004
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0), "cancelled after the block"
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL, "the handler is put back"


def test_a_timer_without_a_floor_is_its_budget() -> None:
    """A new fn's first call sets the timer to its budget: a warm pool's 1 ms."""
    early = EarlyDispatch(_never_called, iter([]), 1)
    with early.armed(0.001, 1, shortest=0.0):
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 0.000_9 < remaining <= 0.001
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0), "cancelled after the block"


def test_a_sigalrm_handler_installed_from_c_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python reports a handler it did not install (C code's, in an embedding program) as
    None. Such a SIGALRM is not free: no timer is set and no handler replaces it. Before,
    the timer took SIGALRM over, and putting None back raised TypeError after the item."""
    installed: list[Any] = []
    monkeypatch.setattr(parmap._early.raw_signal, "getsignal", lambda signum: None)
    monkeypatch.setattr(
        parmap._early.raw_signal, "signal", lambda signum, handler: installed.append(handler)
    )
    early = EarlyDispatch(_never_called, iter([]), 1)
    with early.armed(0.02, 1):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0), "no timer set"
    assert installed == [], "no handler installed or put back"
