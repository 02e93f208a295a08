"""Running Python code in a fresh interpreter, with a hard time limit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

from parmap import _memory

#: Seconds a child interpreter may take before the test fails (and the child is killed).
CHILD_TIMEOUT = 60


def run_python(
    code: str,
    *,
    how: str = "script",
    tmp_path: Optional[Path] = None,
    timeout: float = CHILD_TIMEOUT,
    env: Optional[dict[str, str]] = None,
    unset: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run *code* as a script file, with ``-c``, or piped on stdin; return the result.

    The child's stdout and stderr are shown in the assertion message when it fails or
    runs out of time, so a regression is diagnosed from the test report alone.
    """
    code = textwrap.dedent(code)
    command = [sys.executable, "-X", "faulthandler"]
    stdin = None
    if how == "script":
        assert tmp_path is not None, "a script needs a folder"
        script = tmp_path / "script.py"
        script.write_text(code)
        command.append(str(script))
    elif how == "-c":
        command += ["-c", code]
    elif how == "stdin":
        command.append("-")
        stdin = code
    else:
        raise ValueError(f"how must be 'script', '-c' or 'stdin' (got {how!r})")
    child_env = {**os.environ, **(env or {})}
    for name in ("PYTHONSTARTUP", *unset):
        child_env.pop(name, None)
    try:
        return subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env,
            cwd=tmp_path,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(
            f"child interpreter ran past {timeout} s\n"
            f"stdout:\n{_text(expired.stdout)}\nstderr:\n{_text(expired.stderr)}"
        ) from None


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value or "")


def run_interactive(lines: list[str], *, timeout: float = CHILD_TIMEOUT) -> str:
    """Type *lines* into ``python -i`` on a pseudo-terminal, as a person would; return the screen.

    The interpreter believes it talks to a terminal, so ``__main__`` is the interactive
    one (no file), exactly the situation of a REPL session.
    """
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-i", "-q"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
        env={**os.environ, "PYTHONSTARTUP": "", "TERM": "dumb"},
    )
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + timeout
    try:
        for line in lines:
            os.write(leader, line.encode() + b"\n")
        os.write(leader, b"exit()\n")
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal: it exited
                break
            if not chunk:
                break
            screen += chunk
        else:
            raise AssertionError(f"interactive session ran past {timeout} s:\n{screen.decode()}")
        child.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(leader)
    return screen.decode(errors="replace")


def on_glibc() -> bool:
    """Whether this is Linux with glibc, whose malloc settings workers may change."""
    return _memory.glibc() is not None


#: Environment variables of a user's own malloc settings, which parmap's workers leave alone
#: (Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its process, and so in the test process).
MALLOC_SETTINGS = (*_memory.MALLOC_VARIABLES, "GLIBC_TUNABLES")
