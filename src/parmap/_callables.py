"""What a callable passed as fn or initializer wraps, and how pickle sends it."""

from __future__ import annotations

import functools
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


def entry_code(fn: object) -> types.CodeType | None:
    """The code whose frame a call of *fn* enters first (a function's, through partials
    and bound methods; a callable object's ``__call__``), or None where the call starts
    in C code (a builtin, a class)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    if isinstance(fn, types.FunctionType):
        return fn.__code__
    # The __call__ that runs: the first in the class's MRO (type() itself defines one).
    call = next(
        (k.__dict__["__call__"] for k in type(fn).__mro__ if "__call__" in k.__dict__), None
    )
    return call.__code__ if isinstance(call, types.FunctionType) else None


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
