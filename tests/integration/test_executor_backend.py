"""Any concurrent.futures.Executor is a backend; it receives chunks, not single items."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable

import pytest

from parmap import parallel_imap, parallel_map
from parmap._errors import RemoteTraceback

from helpers import START_METHODS, fail_at_seven, square


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the tasks submitted to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=3)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_executor_receives_one_task_per_chunk() -> None:
    """100 items with chunksize 10 are 10 tasks, not 100."""
    with CountingExecutor() as executor:
        result = parallel_map(
            square, range(100), chunksize=10, backend=executor, serial_fallback=False
        )
    assert result == [x * x for x in range(100)]
    assert executor.submitted == 10


def test_users_executor_is_left_running() -> None:
    """parmap never shuts down an executor it was given."""
    with ThreadPoolExecutor(2) as executor:
        parallel_map(square, range(10), backend=executor, serial_fallback=False)
        assert executor.submit(square, 3).result() == 9


def test_process_pool_executor_as_backend() -> None:
    """A ProcessPoolExecutor works too, and its errors come back like the process backend's.

    Its workers are not forked from this threaded test process: there the stdlib's own
    executor can deadlock on Python 3.9 (python/cpython#105464), which once hung this
    test in CI with parmap nowhere on the stack.
    """
    method = "forkserver" if "forkserver" in START_METHODS else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        assert parallel_map(square, range(40), backend=executor, serial_fallback=False) == [
            x * x for x in range(40)
        ]
        with pytest.raises(ValueError, match="bad item 7") as info:
            parallel_map(
                fail_at_seven, range(40), chunksize=3, backend=executor, serial_fallback=False
            )
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "parmap: raised by fn for the item at index 7" in getattr(info.value, "__notes__", [])


def test_imap_on_an_executor_is_bounded() -> None:
    """parallel_imap on an executor reads ahead at most buffersize items."""
    read = 0

    def source() -> Any:
        nonlocal read
        for value in range(10_000):
            read += 1
            yield value

    with ThreadPoolExecutor(2) as executor:
        results = parallel_imap(
            square, source(), 2, 5, buffersize=20, backend=executor, serial_fallback=False
        )
        assert [next(results) for _ in range(10)] == [x * x for x in range(10)]
        assert read <= 10 + 20 + 5
        results.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("fallback", [True, False])
def test_initializer_with_an_executor_is_refused_before_anything_runs(fallback: bool) -> None:
    """parmap cannot run an initializer in workers it did not start: it says so up front."""
    with CountingExecutor() as executor:
        with pytest.raises(ValueError, match=r"initializer applies only to backend='process'"):
            parallel_map(
                square,
                range(10),
                backend=executor,
                initializer=print,
                serial_fallback=fallback,
            )
        assert executor.submitted == 0
