"""parmap: ``map``, in parallel, in one line, without the usual regrets.

>>> from parmap import parallel_map
>>> parallel_map(abs, [-1, 2, -3])
[1, 2, 3]
"""

from __future__ import annotations

from typing import Any

from ._api import parallel_imap, parallel_map, parallel_starmap, shutdown
from ._errors import ParmapError, SerializationError, WorkerCrashedError

__all__ = [
    "ParmapError",
    "SerializationError",
    "WorkerCrashedError",
    "parallel_imap",
    "parallel_map",
    "parallel_starmap",
    "shutdown",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("parmap-ng")
    msg = f"module 'parmap' has no attribute {name!r}"
    raise AttributeError(msg)
