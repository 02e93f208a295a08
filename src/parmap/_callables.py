"""What a callable passed as fn or initializer wraps: the function whose code runs."""

from __future__ import annotations


def function_inside(fn: object) -> object:
    """The function inside a ``functools.partial`` and then a bound method, else *fn*."""
    target = getattr(fn, "func", fn)  # functools.partial
    return getattr(target, "__func__", target)  # bound method
