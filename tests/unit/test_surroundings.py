"""The snapshot of the caller's surroundings, and how a worker follows one to the next."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from parmap import _surroundings
from parmap._surroundings import Surroundings, current, follow

VARIABLE = "PARMAP_TEST_SURROUNDINGS"


def test_a_snapshot_is_the_same_object_until_something_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers are told only when the object differs: equal snapshots must be one."""
    first = current()
    assert current() is first
    monkeypatch.setenv(VARIABLE, "1")
    changed = current()
    assert changed is not first
    assert changed.environ[VARIABLE] == "1"
    assert current() is changed
    monkeypatch.chdir(tmp_path)
    moved = current()
    assert moved is not changed
    assert moved.cwd == str(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert current().path[0] == str(tmp_path)


def test_the_pickled_snapshot_is_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker of a call gets the same bytes, pickled for the first of them."""
    monkeypatch.setenv(VARIABLE, "pickled once")
    snapshot = current()
    assert _surroundings.payload(snapshot) is _surroundings.payload(snapshot)


def _snapshot(environ: dict[str, str], path: tuple[str, ...], cwd: str) -> Surroundings:
    return Surroundings(cwd, path, environ, sys.getrecursionlimit())


def test_a_worker_applies_the_callers_changes_and_keeps_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the caller changed between two snapshots is done; what the worker set for
    itself, and the caller left alone, stays."""
    monkeypatch.setattr(os, "environ", os.environ.copy())  # follow() changes it
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    os.environ.clear()
    os.environ.update({"SHARED": "old", "GONE": "x", "WORKERS_OWN": "mine"})
    sys.path[:] = ["/caller", "/workers-own"]
    before = _snapshot({"SHARED": "old", "GONE": "x"}, ("/caller",), str(tmp_path))
    (tmp_path / "next").mkdir()
    after = _snapshot(
        {"SHARED": "new", "ADDED": "y"}, ("/added", "/caller"), str(tmp_path / "next")
    )
    follow(before, after)
    assert dict(os.environ) == {"SHARED": "new", "ADDED": "y", "WORKERS_OWN": "mine"}
    assert sys.path == ["/added", "/caller", "/workers-own"]
    assert os.getcwd() == str(tmp_path / "next")


def test_a_new_worker_takes_the_snapshot_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forkserver worker holds the fork server's environment: none of it may stay."""
    monkeypatch.chdir(Path.cwd())  # put back afterwards
    monkeypatch.setattr(os, "environ", os.environ.copy())
    monkeypatch.setattr(sys, "path", list(sys.path))
    os.environ.clear()
    os.environ.update({"FROM_THE_SERVER": "stale"})
    follow(None, _snapshot({"FROM_THE_CALLER": "now"}, ("/caller",), str(tmp_path)))
    assert dict(os.environ) == {"FROM_THE_CALLER": "now"}
    assert sys.path == ["/caller"]
    assert os.getcwd() == str(tmp_path)


def test_the_directory_the_program_started_in_follows_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``""`` resolves where the caller is now; a module imported through it earlier is
    found where the program started, as multiprocessing has its workers look."""
    process = pytest.importorskip("multiprocessing.process")
    monkeypatch.setattr(process, "ORIGINAL_DIR", "/where/it/started", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    follow(None, _snapshot(dict(os.environ), ("", "/lib"), str(tmp_path)))
    assert sys.path == ["", "/where/it/started", "/lib"]
