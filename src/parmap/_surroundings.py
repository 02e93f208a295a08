"""The caller's working directory, ``sys.path``, environment and recursion limit, which
workers follow.

``list(map(fn, items))`` runs fn where the caller is now: relative paths resolve
against its current directory, imports search its ``sys.path``, ``os.environ`` holds
what it set, and recursion goes as deep as ``sys.setrecursionlimit`` allows. A worker
started by fork for the call inherits all four; a warm one was started calls ago, and
one started by spawn or forkserver has its own recursion limit. So each call takes a
snapshot, and a worker that has not followed that snapshot yet is sent it before the
call's fn (whose unpickling may need ``sys.path``). A snapshot equal to the last one is
the same object, so the usual call, where nothing changed, sends nothing and a worker
compares nothing.

A worker applies what the caller changed between two snapshots, not the whole of the
newer one: what the worker set itself (an initializer's ``CUDA_VISIBLE_DEVICES``, the
native thread limits) stays unless the caller changed the same thing. A new worker
takes the snapshot as a whole before anything else runs: under forkserver it is a copy
of the fork server, whose environment is that of the caller when the server started.

Kept import-light: workers import it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, NamedTuple, Optional


class Surroundings(NamedTuple):
    """The part of the caller's state a worker follows."""

    cwd: Optional[str]  # None: the caller's directory was removed
    path: tuple[str, ...]  # sys.path
    environ: dict[str, str]  # os.environ
    recursion_limit: int  # sys.getrecursionlimit()


_last: Optional[Surroundings] = None
_last_payload: Optional[bytes] = None
#: A copy of the mapping behind ``os.environ`` when ``_last`` was taken (see current()).
_last_raw_environ: Optional[dict[Any, Any]] = None


def current() -> Surroundings:
    """The caller's surroundings now: the very object of last time if nothing changed.
    Imports nothing: a call takes it before its first item, which may be its last.

    ``dict(os.environ)`` decodes every variable (20 us for 35 of them, as long as the
    rest of a call of 8 trivial items). So the mapping of bytes behind ``os.environ``
    is compared with a copy kept from last time (1 us), and decoded only if it changed.
    """
    global _last, _last_payload, _last_raw_environ
    cwd, path = _working_directory(), tuple(e for e in sys.path if isinstance(e, str))
    limit = sys.getrecursionlimit()
    raw = getattr(os.environ, "_data", None)  # CPython's, since 3.2; else decode
    last = _last
    if (
        last is not None
        and isinstance(raw, dict)
        and raw == _last_raw_environ
        and (cwd, path, limit) == (last.cwd, last.path, last.recursion_limit)
    ):
        return last
    now = Surroundings(cwd, path, dict(os.environ), limit)
    _last_raw_environ = dict(raw) if isinstance(raw, dict) else None
    if now == last:
        return last
    _last, _last_payload = now, None
    return now


def payload(surroundings: Surroundings) -> bytes:
    """*surroundings* pickled, once for the latest snapshot however many workers get it."""
    global _last_payload
    import pickle

    if surroundings is not _last:
        return pickle.dumps(surroundings, pickle.HIGHEST_PROTOCOL)
    if _last_payload is None:
        _last_payload = pickle.dumps(surroundings, pickle.HIGHEST_PROTOCOL)
    return _last_payload


def _working_directory() -> Optional[str]:
    try:
        return os.getcwd()
    except OSError:  # removed from under the caller: workers stay where they are
        return None


def follow(before: Optional[Surroundings], after: Surroundings) -> None:
    """In a worker: do what the caller did between *before* and *after*; with *before*
    None (a new worker), take *after* as a whole."""
    if after.cwd is not None and (before is None or before.cwd != after.cwd):
        with contextlib.suppress(OSError):  # removed since: stay where the worker is
            os.chdir(after.cwd)
    if before is None:
        sys.path[:] = _import_path(after.path)
    elif before.path != after.path:
        earlier = _import_path(before.path)
        own = [entry for entry in sys.path if entry not in earlier]
        now = _import_path(after.path)
        sys.path[:] = now + [entry for entry in own if entry not in now]
    _follow_environment(before.environ if before is not None else dict(os.environ), after)
    if before is None or before.recursion_limit != after.recursion_limit:
        sys.setrecursionlimit(after.recursion_limit)


def _import_path(path: tuple[str, ...]) -> list[str]:
    """The caller's *path* for this worker, with the directory the program started in
    after ``""``.

    ``""`` is the current directory, which the worker shares with the caller. A module
    imported through it before the caller changed directory can only be found again
    where the program started, where ``multiprocessing`` looks for it too (it passes that
    directory to the workers it starts).
    """
    entries = list(path)
    if "" in entries:
        process = sys.modules.get("multiprocessing.process")  # a worker has it
        started_in = getattr(process, "ORIGINAL_DIR", None)
        if isinstance(started_in, str) and started_in not in entries:
            entries.insert(entries.index("") + 1, started_in)
    return entries


def _follow_environment(before: dict[str, str], after: Surroundings) -> None:
    for name in before.keys() - after.environ.keys():
        os.environ.pop(name, None)
    for name, value in after.environ.items():
        if before.get(name) != value:
            os.environ[name] = value
