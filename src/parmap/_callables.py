"""What a callable passed as fn or initializer wraps, and how pickle sends it."""

from __future__ import annotations

import types


def function_inside(fn: object) -> object:
    """The function inside a ``functools.partial`` and then a bound method, else *fn*."""
    target = getattr(fn, "func", fn)  # functools.partial
    return getattr(target, "__func__", target)  # bound method


def importable_by_reference(fn: object) -> bool:
    """False for what a fresh worker could not import: ``__main__``, lambdas, locals."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "")
    if module in (None, "__main__", "__mp_main__"):
        return False
    return "<lambda>" not in qualname and "<locals>" not in qualname


def pickled_by_name(fn: object) -> bool:
    """Whether pickling *fn* writes only its module and name: a function, builtin or
    class a worker imports. Anything else (by value, a bound method's object, a
    partial's arguments) copies the state of objects as they are at that moment."""
    plain = (types.FunctionType, types.BuiltinFunctionType, type)
    return isinstance(fn, plain) and importable_by_reference(fn)
