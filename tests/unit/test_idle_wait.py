"""How an idle worker process waits for work (_memory.FreedMemory.wait_for_work): it gives
memory back at its moments, and its idle timeout counts from the start of the wait."""

from __future__ import annotations

import pytest

from parmap import _memory
from parmap._memory import HAND_BACK_SECONDS, LET_GO_SECONDS, FreedMemory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class Pipe:
    """A worker's end of its pipe: a message arrives after *arrives_after* seconds."""

    def __init__(self, clock: Clock, arrives_after: float = float("inf")) -> None:
        self.clock = clock
        self.arrives_at = clock.now + arrives_after
        self.polls: list[float] = []

    def poll(self, timeout: float) -> bool:
        self.polls.append(round(timeout, 6))
        if self.clock.now + timeout >= self.arrives_at:
            self.clock.now = max(self.clock.now, self.arrives_at)
            return True
        self.clock.now += timeout
        return False


class Libc:
    def __init__(self) -> None:
        self.trims = 0

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        return 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(_memory.time, "monotonic", clock.monotonic)
    return clock


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> Libc:
    libc = Libc()
    monkeypatch.setattr(_memory, "glibc", lambda: libc)
    return libc


def forked_worker() -> FreedMemory:
    memory = FreedMemory()
    memory.forked()
    return memory


def test_an_idle_forked_worker_lets_go_once_and_exits_on_time(clock: Clock, libc: Libc) -> None:
    memory = forked_worker()
    pipe = Pipe(clock)
    assert memory.wait_for_work(pipe, 300.0) is False
    assert pipe.polls == [LET_GO_SECONDS, 300.0 - LET_GO_SECONDS], "300 s in all"
    assert libc.trims == 1
    again = Pipe(clock)
    assert memory.wait_for_work(again, 300.0) is False
    assert again.polls == [300.0]
    assert libc.trims == 1, "the caller's pages go once"


def test_work_that_comes_first_is_taken_at_once_and_the_letting_go_waits(
    clock: Clock, libc: Libc
) -> None:
    memory = forked_worker()
    assert memory.wait_for_work(Pipe(clock, arrives_after=0.001), 300.0) is True
    assert libc.trims == 0
    assert memory.wait_for_work(Pipe(clock), None) is True, "no limit: the read waits"
    assert libc.trims == 1


def test_a_worker_of_large_messages_trims_after_50_ms_which_lets_go_too(
    clock: Clock, libc: Libc, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = forked_worker()
    monkeypatch.setattr(_memory, "_keep_freed_memory", lambda: libc)
    memory.after_message(_memory.LARGE_MESSAGE_BYTES)
    pipe = Pipe(clock)
    assert memory.wait_for_work(pipe, 300.0) is False
    assert pipe.polls == [HAND_BACK_SECONDS, 300.0 - HAND_BACK_SECONDS]
    assert libc.trims == 1


@pytest.mark.parametrize(
    ("memory", "idle_timeout"),
    [
        pytest.param(forked_worker(), 0.5, id="forked, due to exit before letting go"),
        pytest.param(FreedMemory(), 300.0, id="spawned, small messages"),
    ],
)
def test_a_worker_with_nothing_to_give_back_in_time_only_waits(
    clock: Clock, libc: Libc, memory: FreedMemory, idle_timeout: float
) -> None:
    pipe = Pipe(clock)
    assert memory.wait_for_work(pipe, idle_timeout) is False
    assert pipe.polls == [idle_timeout]
    assert libc.trims == 0
