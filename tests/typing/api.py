"""Type-checked only (``mypy --strict``): the public API as users call it.

Never run and never collected by pytest (the name does not start with ``test_``); every
call sits in a function, so even importing this module does nothing. A line ending in
``# type: ignore[code]`` is a call that must be *rejected*: with ``warn_unused_ignores``
(part of ``--strict``), mypy fails if it ever starts accepting it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Optional, Union

from typing_extensions import assert_type

import parmap
from parmap import (
    ParmapError,
    SerializationError,
    WorkerCrashedError,
    parallel_imap,
    parallel_map,
    parallel_starmap,
    shutdown,
)


def square(x: int) -> int:
    return x * x


def shout(text: str) -> str:
    return text.upper()


def on_progress(done: int, total: int | None) -> None:
    print(done, total)


def init(prefix: str, level: int) -> None:
    print(prefix, level)


def result_types() -> None:
    assert_type(parallel_map(str, [1, 2]), list[str])
    assert_type(parallel_map(square, [1, 2]), list[int])
    assert_type(parallel_map(square, range(10)), list[int])
    assert_type(parallel_map(len, ["a", "bb"]), list[int])
    assert_type(parallel_map(shout, (s for s in "abc")), list[str])
    assert_type(parallel_map(lambda x: x + 1.5, [1, 2]), list[float])
    assert_type(parallel_map(square, []), list[int])

    fn: Callable[[int], int] = square
    assert_type(parallel_imap(fn, [1, 2, 3]), Iterator[int])
    assert_type(parallel_imap(shout, iter(["a"])), Iterator[str])
    for value in parallel_imap(square, range(3)):
        assert_type(value, int)


def keywords() -> None:
    with ThreadPoolExecutor(4) as threads:
        assert_type(parallel_map(square, [1], backend=threads), list[int])
        assert_type(parallel_imap(square, [1], backend=threads), Iterator[int])
    with ProcessPoolExecutor(2) as processes:
        parallel_map(square, [1], backend=processes)
    for backend in ("process", "thread", "serial"):
        parallel_map(square, [1], backend=backend)
    parallel_map(square, [1, 2], 4, 16)
    parallel_map(square, [1, 2], workers=None, chunksize=None)
    parallel_map(square, [1, 2], start_method="spawn")
    parallel_map(square, [1, 2], start_method="fork")
    parallel_map(square, [1, 2], start_method="forkserver")
    parallel_map(square, [1, 2], start_method=None)
    parallel_map(square, [1, 2], serial_fallback=False, timeout=2.5)
    parallel_map(square, [1, 2], timeout=3)
    parallel_map(square, [1, 2], progress=True)
    parallel_map(square, [1, 2], progress=on_progress)
    parallel_map(square, [1, 2], progress=lambda done, total: None)
    parallel_map(square, [1, 2], initializer=init, initargs=("x", 1))
    parallel_imap(square, [1, 2], ordered=False, buffersize=64)
    parallel_imap(square, [1, 2], 2, 8, progress=on_progress, timeout=None)


def progress_callback_types() -> None:
    def typed(done: int, total: Optional[int]) -> None:
        assert_type(done, int)
        assert_type(total, Optional[int])

    parallel_map(square, [1], progress=typed)
    parallel_imap(square, [1], progress=typed)


def rejected_calls() -> None:
    parallel_map(shout, [1, 2])  # type: ignore[arg-type]
    parallel_map(square, 5)  # type: ignore[arg-type]
    parallel_map(square, [1], start_method="threads")  # type: ignore[arg-type]
    parallel_map(square, [1], timeout="1")  # type: ignore[arg-type]
    parallel_map(square, [1], workers="2")  # type: ignore[arg-type]
    parallel_map(square, [1], progress=3)  # type: ignore[arg-type]
    parallel_map(square, [1], initargs=5)  # type: ignore[arg-type]
    parallel_map(square, [1], ordered=True)  # type: ignore[call-arg]
    parallel_map(square, [1], 2, 8, "thread")  # type: ignore[call-arg]
    parallel_map(fn=square)  # type: ignore[call-arg]
    wrong: list[str] = parallel_map(square, [1])  # type: ignore[arg-type]
    print(wrong)


def starmap_calls() -> None:
    def power(base: int, exponent: int) -> float:
        return float(base**exponent)

    assert_type(parallel_starmap(power, [(2, 3), (3, 2)]), list[float])
    assert_type(parallel_starmap(power, [(2, 3)], 2, 1, backend="thread"), list[float])
    parallel_starmap(power, 5)  # type: ignore[arg-type]


def errors_and_module() -> None:
    try:
        parallel_map(square, [1])
    except (WorkerCrashedError, SerializationError) as exc:
        assert_type(exc, Union[WorkerCrashedError, SerializationError])
    except ParmapError as exc:
        assert_type(exc, ParmapError)
    except TimeoutError:
        pass
    shutdown()
    assert_type(shutdown(), None)
    version: str = parmap.__version__
    names: list[str] = parmap.__all__
    print(version, names)
