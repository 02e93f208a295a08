"""The public surface: exports, version, error hierarchy and ``python -m parmap``."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import parmap
from parmap import ParmapError, SerializationError, WorkerCrashedError

PUBLIC_NAMES = {
    "ParmapError",
    "SerializationError",
    "WorkerCrashedError",
    "parallel_imap",
    "parallel_map",
    "parallel_starmap",
    "shutdown",
}


def run_parmap(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m parmap ARGS`` in a fresh interpreter; show its output on failure."""
    return subprocess.run(
        [sys.executable, "-m", "parmap", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _shown(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


# --- exports -------------------------------------------------------------------------


def test_all_is_the_documented_public_set() -> None:
    """__all__ lists exactly the documented public names."""
    assert set(parmap.__all__) == PUBLIC_NAMES
    assert len(parmap.__all__) == len(PUBLIC_NAMES)


def test_all_is_sorted() -> None:
    """__all__ is kept in sorted order."""
    assert parmap.__all__ == sorted(parmap.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC_NAMES))
def test_every_public_name_is_importable(name: str) -> None:
    """Each name in __all__ is an attribute of the package."""
    assert getattr(parmap, name) is not None


def test_version_matches_the_installed_distribution() -> None:
    """parmap.__version__ is the installed parmap-ng version."""
    assert parmap.__version__ == importlib.metadata.version("parmap-ng")


def test_unknown_attribute_raises_attribute_error() -> None:
    """A missing attribute raises AttributeError naming it."""
    with pytest.raises(AttributeError, match="module 'parmap' has no attribute 'nope'"):
        _ = parmap.nope  # type: ignore[attr-defined]


@pytest.mark.parametrize("error", [WorkerCrashedError, SerializationError])
def test_parmap_errors_share_a_base(error: type[Exception]) -> None:
    """WorkerCrashedError and SerializationError can be caught as ParmapError."""
    assert issubclass(error, ParmapError)
    assert issubclass(ParmapError, Exception)
    with pytest.raises(ParmapError, match="caught by base"):
        raise error("caught by base")


def test_timeout_and_fn_errors_are_not_parmap_errors() -> None:
    """ParmapError is only for parmap's own failures, not the builtin TimeoutError."""
    assert not issubclass(TimeoutError, ParmapError)


# --- python -m parmap ----------------------------------------------------------------


def test_no_arguments_prints_usage_and_exits_2() -> None:
    """``python -m parmap`` alone prints the usage and exits with status 2."""
    result = run_parmap()
    assert result.returncode == 2, _shown(result)
    assert "usage: python -m parmap bench" in result.stdout + result.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0(flag: str) -> None:
    """``--help`` prints the usage and the commands and exits with status 0."""
    result = run_parmap(flag)
    assert result.returncode == 0, _shown(result)
    assert "usage: python -m parmap bench" in result.stdout
    assert "bench" in result.stdout


def test_unknown_command_exits_2() -> None:
    """An unknown command is named on stderr with the usage, exit status 2."""
    result = run_parmap("frobnicate")
    assert result.returncode == 2, _shown(result)
    assert "unknown command 'frobnicate'" in result.stderr
    assert "usage: python -m parmap bench" in result.stderr


def test_bench_runs_and_reports_speedup() -> None:
    """A tiny bench run exits 0 and prints the serial, parallel and speedup lines."""
    result = run_parmap("bench", "--scale", "0.002", "--workers", "2", timeout=120)
    assert result.returncode == 0, _shown(result)
    assert "speedup" in result.stdout
    assert "2 workers" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "0"], "--scale must be > 0 (got 0.0)"),
        (["--scale", "-1"], "--scale must be > 0 (got -1.0)"),
        (["--workers", "0"], "--workers must be >= 1 (got 0)"),
        (["--start-method", "threads"], "invalid choice: 'threads'"),
    ],
)
def test_bench_refuses_bad_arguments(args: list[str], message: str) -> None:
    """Bad bench arguments exit non-zero with a message naming the argument and the value."""
    result = run_parmap("bench", *args)
    assert result.returncode != 0, _shown(result)
    assert message in result.stderr, _shown(result)
    assert "speedup" not in result.stdout
