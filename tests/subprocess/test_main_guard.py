"""Scripts without the main guard, nested calls, unimportable functions: fresh interpreters."""

from __future__ import annotations

from pathlib import Path

from support import describe, run_python

UNGUARDED_SCRIPT = """
import os
import sys
from parmap import parallel_map

LOG = sys.argv[1]

def record(x):
    with open(LOG, "a") as log:
        log.write(f"{{x}}\\n")
    return x * 2

print("module ran in", os.getpid())
print(parallel_map(record, range(30), 2, 1, start_method={method!r}, serial_fallback=False) == [
    x * 2 for x in range(30)
])
"""


def test_script_without_main_guard_runs_each_item_once(start_method: str, tmp_path: Path) -> None:
    """No bootstrapping error, no fork bomb: each item runs once and the script body once."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT.format(method=start_method))
    log = tmp_path / "items.log"
    result = subprocess.run(
        [sys.executable, str(script), str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, describe(result)
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith("module ran in")]) == 1, describe(result)
    assert lines[-1] == "True", describe(result)
    assert sorted(int(x) for x in log.read_text().split()) == list(range(30))


def test_nested_call_in_a_worker_runs_serially(start_method: str, tmp_path: Path) -> None:
    """fn calling parallel_map runs the inner call in its worker: no error, no extra processes."""
    code = f"""
    import multiprocessing
    from parmap import parallel_map

    def inner(x):
        return x + 1

    def outer(n):
        values = parallel_map(inner, range(n), 2, serial_fallback=False)
        return sum(values), len(multiprocessing.active_children())

    if __name__ == "__main__":
        options = dict(start_method={start_method!r}, serial_fallback=False)
        print(parallel_map(outer, [3, 4, 5], 2, 1, **options))
    """
    result = run_python(code, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() == "[(6, 0), (10, 0), (15, 0)]", describe(result)


def test_function_workers_cannot_import_gives_a_clear_error(tmp_path: Path) -> None:
    """fn from a module only the caller can import: SerializationError naming the module."""
    code = """
    import sys, types
    from parmap import parallel_map, SerializationError

    module = types.ModuleType("only_here")
    exec("def double(x):\\n    return 2 * x\\n", module.__dict__)
    module.double.__module__ = "only_here"
    sys.modules["only_here"] = module

    if __name__ == "__main__":
        try:
            parallel_map(module.double, range(10), 2, start_method="spawn", serial_fallback=False)
        except SerializationError as error:
            print("SerializationError:", error)
        print(parallel_map(abs, range(-3, 3), 2, start_method="spawn", serial_fallback=False))
    """
    result = run_python(code, tmp_path=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "could not load fn: ModuleNotFoundError: No module named 'only_here'" in result.stdout
    assert result.stdout.splitlines()[-1] == "[3, 2, 1, 0, 1, 2]", describe(result)
