"""Progress reporting: a tqdm bar or a ``callback(done, total)``, counted in items.

tqdm is imported only when ``progress=True`` asks for it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ._options import Progress

INSTALL_HINT = "pip install 'parmap-ng[progress]'  (or: pip install tqdm)"


class ProgressReporter:
    """Counts finished items and reports them in the caller's thread."""

    def __init__(self, report: Callable[[int], None], close: Callable[[], None]) -> None:
        self.update = report
        self.close = close


def make_reporter(progress: Progress, total: Optional[int]) -> Optional[ProgressReporter]:
    """A reporter for *progress*, or None when progress is off."""
    if progress is False:
        return None
    if progress is True:
        return _tqdm_reporter(total)
    callback: Callable[[int, Optional[int]], object] = progress
    done = 0

    def report(count: int) -> None:
        nonlocal done
        done += count
        callback(done, total)

    return ProgressReporter(report, lambda: None)


def _tqdm_reporter(total: Optional[int]) -> ProgressReporter:
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        msg = f"progress=True needs tqdm, which is not installed. Install it with: {INSTALL_HINT}"
        raise ImportError(msg) from exc
    # No monitor thread: tqdm keeps it alive after the bar closes, and parmap leaves
    # no threads behind.
    quiet_tqdm: Any = type("ParmapTqdm", (tqdm,), {"monitor_interval": 0})
    bar = quiet_tqdm(total=total, unit="item")
    return ProgressReporter(bar.update, bar.close)
