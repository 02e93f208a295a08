"""Workers run fn as ``map`` would in the caller: in its current directory, with its
``sys.path``, its environment and its recursion limit even when they changed after the
pool started, and with random numbers of their own."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

import parmap
from parmap import parallel_map

from helpers import (
    draw_from_numpy,
    getenv,
    read_text,
    read_variables,
    recursion_depth,
    setenv,
    working_directory,
)

CALLER_VARIABLE = "PARMAP_TEST_CALLER_VARIABLE"
WORKER_VARIABLE = "PARMAP_TEST_WORKER_VARIABLE"


def on_workers(fn: object, items: list[object], start_method: str, **options: object) -> set:
    """fn over *items* on two process workers, one item a chunk; the distinct results."""
    return set(
        parallel_map(fn, items, 2, 1, start_method=start_method, serial_fallback=False, **options)  # type: ignore[arg-type]
    )


@pytest.fixture(params=["warm pool", "new pool"])
def pool_after_change(request: pytest.FixtureRequest, start_method: str) -> str:
    """A pool that started before the caller changed something, reused; or one started
    after it (under forkserver, a copy of a fork server that started before it)."""
    on_workers(working_directory, list(range(4)), start_method)
    return str(request.param)


def settle(pool_after_change: str) -> None:
    if pool_after_change == "new pool":
        parmap.shutdown()


def test_workers_follow_the_callers_current_directory(
    start_method: str, pool_after_change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``os.chdir``, relative paths in fn resolve where they do in the caller."""
    (tmp_path / "data.txt").write_text("found", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settle(pool_after_change)
    assert on_workers(working_directory, list(range(8)), start_method) == {os.getcwd()}
    assert on_workers(read_text, ["data.txt"] * 8, start_method) == {"found"}


def test_workers_follow_the_callers_environment(
    start_method: str, pool_after_change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable the caller sets is seen by fn; one it deletes is gone."""
    monkeypatch.setenv(CALLER_VARIABLE, "set by the caller")
    settle(pool_after_change)
    assert on_workers(getenv, [CALLER_VARIABLE] * 8, start_method) == {"set by the caller"}
    monkeypatch.delenv(CALLER_VARIABLE)
    assert on_workers(getenv, [CALLER_VARIABLE] * 8, start_method) == {None}


def test_workers_import_from_a_directory_the_caller_added_to_sys_path(
    start_method: str, pool_after_change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fn from a module found through a sys.path entry added after the pool started."""
    name = f"added_later_{start_method}_{pool_after_change.replace(' ', '_')}"
    (tmp_path / f"{name}.py").write_text("def triple(x):\n    return 3 * x\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    try:
        settle(pool_after_change)
        assert parallel_map(
            module.triple, range(8), 2, 1, start_method=start_method, serial_fallback=False
        ) == [3 * x for x in range(8)]
    finally:
        del sys.modules[name]


def test_workers_recurse_as_deep_as_the_caller_allows(
    start_method: str, pool_after_change: str
) -> None:
    """``sys.setrecursionlimit`` in the caller holds in the workers: a warm worker had
    the limit of its start, one started by spawn or forkserver its own default."""
    depth = 3 * sys.getrecursionlimit()
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 1000)
    try:
        settle(pool_after_change)
        assert on_workers(recursion_depth, [depth] * 4, start_method) == {depth}
    finally:
        sys.setrecursionlimit(saved)


def test_what_a_worker_set_for_itself_stays_when_the_caller_changes_its_environment(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An initializer's variable (a GPU per worker, say) and the native thread limits
    outlive a change of some other variable in the caller."""
    names = [WORKER_VARIABLE, "OMP_NUM_THREADS", CALLER_VARIABLE]
    options = {"initializer": setenv, "initargs": (WORKER_VARIABLE, "set by the worker")}

    def read_all() -> set:
        return on_workers(read_variables, [names] * 8, start_method, **options)

    before = read_all()
    monkeypatch.setenv(CALLER_VARIABLE, "set by the caller")
    after = read_all()
    assert len(before) == 1, before
    [(worker_set, threads, caller_set)] = before
    assert (worker_set, caller_set) == ("set by the worker", None)
    assert after == {(worker_set, threads, "set by the caller")}


def test_workers_draw_different_random_numbers_after_the_caller_seeded_numpy(
    start_method: str,
) -> None:
    """Each worker has its own numpy random state, as in separate interpreters: forked
    copies of the caller's seeded generator would all draw the same numbers."""
    numpy = pytest.importorskip("numpy")
    saved = numpy.random.get_state()
    numpy.random.seed(1)
    try:
        draws = parallel_map(
            draw_from_numpy, range(16), 2, 1, start_method=start_method, serial_fallback=False
        )
    finally:
        numpy.random.set_state(saved)
    assert len({pid for pid, _ in draws}) == 2, "both workers must draw for the test to count"
    numbers = [number for _, number in draws]
    assert len(set(numbers)) == len(numbers), sorted(numbers)
