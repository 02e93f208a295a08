"""progress= counts items, not chunks, in every mode."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from parmap import parallel_imap, parallel_map

from helpers import fail_at_seven, square


@pytest.mark.parametrize("fallback", [True, False])
@pytest.mark.parametrize("backend", ["process", "thread", "serial"])
def test_callback_counts_every_item(backend: str, fallback: bool) -> None:
    """callback(done, total) is called in the caller, done rising to the item count."""
    calls: list[tuple[int, int | None]] = []
    result = parallel_map(
        square,
        range(100),
        2,
        7,
        backend=backend,
        serial_fallback=fallback,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert result == [x * x for x in range(100)]
    assert calls[-1] == (100, 100)
    done = [d for d, _ in calls]
    assert done == sorted(done)


def slow_square(x: int) -> int:
    """An item that takes a while (a simulated slow computation, not a wait for anything)."""
    time.sleep(0.05)
    return x * x


def test_progress_moves_during_one_long_chunk(start_method: str) -> None:
    """One chunk of 12 items of 50 ms: the count rises while the chunk is still running."""
    calls: list[tuple[int, int | None]] = []
    result = parallel_map(
        slow_square,
        range(12),
        1,
        12,
        start_method=start_method,
        serial_fallback=False,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert result == [x * x for x in range(12)]
    done = [d for d, _ in calls]
    assert done[-1] == 12
    assert len(done) >= 2, f"progress only at the end of the chunk: {calls}"
    assert all(0 < a < b for a, b in zip(done, done[1:])), calls
    assert {t for _, t in calls} == {12}


def test_callback_total_is_none_for_a_generator() -> None:
    """Without a length, total is None and done still counts items."""
    calls: list[tuple[int, int | None]] = []
    out = list(
        parallel_imap(
            square,
            (x for x in range(30)),
            2,
            4,
            serial_fallback=False,
            progress=lambda d, t: calls.append((d, t)),
        )
    )
    assert out == [x * x for x in range(30)]
    assert calls[-1] == (30, None)


def test_tqdm_bar_is_written_and_closed(capsys: pytest.CaptureFixture[str]) -> None:
    """progress=True draws a tqdm bar on stderr that ends at the item count."""
    assert (
        parallel_map(square, range(50), 2, 5, serial_fallback=False, progress=True)[-1] == 49 * 49
    )
    err = capsys.readouterr().err
    assert "50/50" in err


def test_tqdm_bar_is_closed_on_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An exception from fn still closes the bar (no half-drawn line left behind)."""
    with pytest.raises(ValueError):
        parallel_map(fail_at_seven, range(50), 2, 1, serial_fallback=False, progress=True)
    assert capsys.readouterr().err.endswith("\n")


def test_progress_true_without_tqdm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing tqdm: an ImportError that gives the install command, before work starts."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"pip install 'parmap-ng\[progress\]'"):
        parallel_map(square, range(10), progress=True)


def slow_square_failing_at_ten(x: int) -> int:
    if x == 10:
        raise ValueError("item ten")
    return slow_square(x)


def test_progress_counts_every_item_after_a_chunk_failed_midway() -> None:
    """A chunk that reported progress and then raised leaves nothing behind: the next
    call on the same (warm) worker still counts each of its items once."""
    with pytest.raises(ValueError, match="item ten"):
        parallel_map(
            slow_square_failing_at_ten,
            range(12),
            1,
            12,
            serial_fallback=False,
            progress=lambda d, t: None,
        )
    calls: list[tuple[int, int | None]] = []
    result = parallel_map(
        slow_square,
        range(12),
        1,
        12,
        serial_fallback=False,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert result == [x * x for x in range(12)]
    assert calls[-1] == (12, 12), calls


#: How long the held item waits for the report before it gives up (and the test fails).
TIMEOUT_SECONDS = 10


class HeldLastItem:
    """fn for one chunk of five items whose last item waits until the progress callback
    has counted the other four: only a report from inside the running chunk can say so."""

    def __init__(self) -> None:
        self.four_reported = threading.Event()
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, x: int) -> str:
        if x < 4:
            return "ran"
        released = self.four_reported.wait(timeout=TIMEOUT_SECONDS)
        return "released" if released else "not released"

    def progress(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))
        if done == 4:
            self.four_reported.set()


@pytest.mark.parametrize("backend", ["thread", "a ThreadPoolExecutor"])
def test_threads_report_items_during_a_long_chunk(backend: str) -> None:
    """On threads, the count rises while a chunk runs, not only when it ends."""
    held = HeldLastItem()
    with contextlib.ExitStack() as stack:
        chosen: Any = backend
        if backend == "a ThreadPoolExecutor":
            chosen = stack.enter_context(ThreadPoolExecutor(2))
        result = parallel_map(
            held,
            range(5),
            2,
            5,
            backend=chosen,
            serial_fallback=False,
            progress=held.progress,
        )
    assert result == ["ran"] * 4 + ["released"], held.calls
    assert held.calls == [(4, 5), (5, 5)]
