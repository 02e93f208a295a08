"""Smoke test of an installed parmap-ng wheel; .ci/run runs it outside the checkout.

Usage: python wheel_smoke.py EXPECTED_VERSION

Checks that parmap is imported from site-packages (not from src/), that its version and
py.typed are there, that its dependencies came with it, that parallel_map runs in worker
processes under every start method this platform offers, and that the bench runs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import multiprocessing
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Literal

import parmap

START_METHODS: tuple[Literal["fork", "spawn", "forkserver"], ...] = ("fork", "spawn", "forkserver")


def cpu_bound(n: int) -> int:
    """The bench's workload, small."""
    return sum(i * i for i in range(n))


def check(condition: bool, what: str) -> None:
    """Print one result line; exit at the first failure."""
    print(f"{'ok  ' if condition else 'FAIL'} {what}", flush=True)
    if not condition:
        sys.exit(1)


def main(expected_version: str) -> None:
    """Run every check in order."""
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    package_dir = Path(parmap.__file__).resolve().parent
    check(package_dir.parent == site_packages, f"parmap imported from {package_dir}")
    check(
        parmap.__version__ == expected_version,
        f"parmap.__version__ is {parmap.__version__!r} (pyproject.toml: {expected_version!r})",
    )
    check(
        importlib.resources.files("parmap").joinpath("py.typed").is_file(),
        "py.typed is installed in the package",
    )
    for requirement in ("cloudpickle", "typing-extensions"):
        version = importlib.metadata.version(requirement)
        check(bool(version), f"dependency {requirement} {version} is installed")

    numbers = [20_000 + i for i in range(40)]
    expected = list(map(cpu_bound, numbers))
    for method in START_METHODS:
        if method not in multiprocessing.get_all_start_methods():
            continue
        results = parmap.parallel_map(
            cpu_bound, numbers, workers=2, serial_fallback=False, start_method=method
        )
        check(results == expected, f"parallel_map in worker processes ({method})")
    parmap.shutdown()

    bench = subprocess.run(
        [sys.executable, "-m", "parmap", "bench", "--scale", "0.05"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(bench.stdout + bench.stderr, end="")
    check(bench.returncode == 0 and "speedup" in bench.stdout, "python -m parmap bench")


if __name__ == "__main__":
    main(sys.argv[1])
