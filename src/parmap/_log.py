"""The ``parmap`` logger, without importing :mod:`logging` for programs that never do.

Every decision a call makes is logged at DEBUG on the ``parmap`` logger. A program that
has not imported ``logging`` cannot have configured a handler for it, so until it does,
messages are dropped without loading the module (about 5 ms of ``import parmap``).

Inside the first item's timer handler, messages are held back (:func:`hold`) and logged
once the item is over (:func:`release`): the handler may have interrupted a write to the
same stream, and its line would land in the middle of that one.
"""

from __future__ import annotations

import sys
from _thread import get_ident
from typing import Optional

LOGGER_NAME = "parmap"

#: Messages held back, and the thread whose messages they are; None: none held.
_held: Optional[list[tuple[str, tuple[object, ...]]]] = None
_holding_thread: Optional[int] = None


def debug(message: str, *args: object) -> None:
    """Log *message* % *args* at DEBUG on the ``parmap`` logger, if logging is in use."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    held = _held
    if held is not None and _holding_thread == get_ident():
        held.append((message, args))
        return
    logging.getLogger(LOGGER_NAME).debug(message, *args)


def hold() -> None:
    """Hold this thread's debug messages back until :func:`release`."""
    global _held, _holding_thread
    if _held is None:
        _held, _holding_thread = [], get_ident()


def release() -> None:
    """Log the messages held back, if any, and stop holding."""
    global _held, _holding_thread
    held, _held, _holding_thread = _held, None, None
    for message, args in held or ():
        debug(message, *args)


def warning(message: str, *args: object) -> None:
    """Log *message* % *args* at WARNING on the ``parmap`` logger. Without a handler
    configured, logging's last resort prints it on stderr."""
    import logging

    logging.getLogger(LOGGER_NAME).warning(message, *args)
