"""What a callable passed as fn or initializer wraps, and how pickle sends it."""

from __future__ import annotations

import types
from typing import Any, Callable, Iterable


class Starred:
    """``fn(*args)`` as a function of one argument (picklable when *fn* is): what
    ``parallel_starmap`` maps."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.__wrapped__ = fn  # the functools convention: error messages name fn

    def __call__(self, args: Iterable[Any]) -> Any:
        return self.__wrapped__(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Starred, (self.__wrapped__,))


def unstarred(fn: Any) -> Any:
    """The fn a :class:`Starred` calls, else *fn*: whose item times and pickle count."""
    return fn.__wrapped__ if type(fn) is Starred else fn


def function_inside(fn: object) -> object:
    """The function inside a :class:`Starred`, then a ``functools.partial``, then a bound
    method, else *fn*."""
    target = unstarred(fn)
    target = getattr(target, "func", target)  # functools.partial
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
    fn = unstarred(fn)  # pickled as the class and fn
    plain = (types.FunctionType, types.BuiltinFunctionType, type)
    return isinstance(fn, plain) and importable_by_reference(fn)
