"""The ``parmap`` logger, without importing :mod:`logging` for programs that never do.

Every decision a call makes is logged at DEBUG on the ``parmap`` logger. A program that
has not imported ``logging`` cannot have configured a handler for it, so until it does,
messages are dropped without loading the module (about 5 ms of ``import parmap``).
"""

from __future__ import annotations

import sys

LOGGER_NAME = "parmap"


def debug(message: str, *args: object) -> None:
    """Log *message* % *args* at DEBUG on the ``parmap`` logger, if logging is in use."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(LOGGER_NAME).debug(message, *args)


def warning(message: str, *args: object) -> None:
    """Log *message* % *args* at WARNING on the ``parmap`` logger. Without a handler
    configured, logging's last resort prints it on stderr."""
    import logging

    logging.getLogger(LOGGER_NAME).warning(message, *args)
