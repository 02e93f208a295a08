"""The per-worker native thread limit: what it is, and what it leaves alone."""

from __future__ import annotations

import os

import pytest

from parmap._native_threads import THREAD_VARIABLES, limit_native_threads, threads_per_worker

from helpers import options_with


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A private copy of the environment without the variables: nothing leaks out."""
    private = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    monkeypatch.setattr(os, "environ", private)


@pytest.mark.parametrize(
    ("cpus", "workers", "threads"), [(8, 1, 8), (8, 2, 4), (8, 3, 2), (8, 8, 1), (2, 32, 1)]
)
def test_workers_times_threads_never_exceeds_the_cpus(
    cpus: int, workers: int, threads: int
) -> None:
    assert threads_per_worker(cpus, workers) == threads


@pytest.mark.usefixtures("clean_environment")
def test_every_known_variable_is_set() -> None:
    limit_native_threads(3)
    assert {name: os.environ[name] for name in THREAD_VARIABLES} == dict.fromkeys(
        THREAD_VARIABLES, "3"
    )


@pytest.mark.usefixtures("clean_environment")
def test_a_variable_set_by_the_user_leaves_all_of_them_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MKL_NUM_THREADS", "6")
    limit_native_threads(1)
    assert os.environ["MKL_NUM_THREADS"] == "6"
    assert "OMP_NUM_THREADS" not in os.environ


@pytest.mark.parametrize(
    ("backend", "flag", "expected"),
    [
        ("process", True, 2),
        ("process", False, None),
        ("thread", True, None),
        ("serial", True, None),
    ],
)
def test_only_worker_processes_are_limited(
    monkeypatch: pytest.MonkeyPatch, backend: str, flag: bool, expected: int | None
) -> None:
    monkeypatch.setenv("PYTHON_CPU_COUNT", "8")
    options = options_with(workers=4, backend=backend, limit_native_threads=flag)
    assert options.native_threads == expected


def test_the_cpu_quota_is_not_read_for_an_explicit_worker_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first call that runs in the caller should not pay for reading cgroup files: with
    workers given, the CPU count is looked up only when worker processes start."""
    looked_up = []
    monkeypatch.setattr("parmap._options.available_cpus", lambda: looked_up.append(1) or 8)
    options = options_with(workers=4, backend="process", limit_native_threads=True)
    assert looked_up == []
    assert options.native_threads == 2
    assert looked_up == [1]
