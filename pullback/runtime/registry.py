"""Dispatch from a called function to its VJP.

Generated code reaches another function's VJP through `vjp_of`, when the call
runs, so a derivative registered after the caller was compiled still takes
effect. The runtime never compiles: the API installs a compiler hook that
builds the VJP of a plain Python function on first use.

Every VJP found here follows one convention: `vjp(*args, **kwargs)` returns
`(value, pullback)`, and `pullback(cotangent)` returns a tuple with one
cotangent for each name in `wrt`, in that order.
"""

from __future__ import annotations

import types
from collections.abc import Callable

from pullback.errors import PullbackError
from pullback.runtime.markers import checkpointed_target

# VJPs of callables other than plain Python functions, by (callable, wrt
# names, single use, primal). A plain function keeps its own in a
# `FunctionCache`, so they are freed with it.
_compiled: dict[tuple, Callable] = {}

# The attribute of a plain function's `__dict__` that contains its `FunctionCache`.
_CACHE_ATTRIBUTE = "__pullback_vjps__"

# Bumped whenever every cached VJP must be compiled again.
_epoch = 0


class FunctionCache(dict):
    """The compiled VJPs and sent warnings of one function, in the function's `__dict__`.

    A module-level dict would keep every function ever differentiated alive,
    with everything its closure holds. A pickled or copied function carries
    an empty cache, because cloudpickle pickles a local function's
    `__dict__` and compiled code holds locks and generated functions.
    """

    def __init__(self, warned=()):
        super().__init__()
        self.epoch = _epoch
        # (function, wrt) of each zero-derivative warning sent. They outlive
        # an epoch: a registration does not make a warning new.
        self.warned = set(warned)

    def __reduce__(self):
        return (FunctionCache, ())


def function_cache(function) -> FunctionCache | None:
    """Return the cache of a plain Python function, or None for another callable.

    A cache made before the last registration or `forget_compiled` is
    replaced by an empty one.
    """
    if type(function) is not types.FunctionType:
        return None
    namespace = function.__dict__
    cache = namespace.get(_CACHE_ATTRIBUTE)
    if cache is None:
        cache = namespace[_CACHE_ATTRIBUTE] = FunctionCache()
    elif cache.epoch != _epoch:
        cache = namespace[_CACHE_ATTRIBUTE] = FunctionCache(cache.warned)
    return cache


def forget_compiled() -> None:
    """Make every function compile its VJPs again at their next use."""
    global _epoch
    _epoch += 1
    _compiled.clear()

# Custom derivatives registered by `derivative_of`, which win over compiled
# VJPs. Values are `CustomDerivative` records.
_custom: dict[object, object] = {}

# Bumped by every registration, so callers compiled before it recompile.
generation = 0

_compiler_hook: Callable | None = None


def set_compiler_hook(hook: Callable) -> None:
    """Install `hook(function, wrt, single_use=False, primal=False)` as the compiler.

    The hook returns an object with the VJP as `vjp` and an `is_current()`
    method that returns whether the VJP still matches the function's globals.
    With `primal=True` it compiles the forward pass alone; see `primal_of`.
    """
    global _compiler_hook
    _compiler_hook = hook


def _key(function):
    """Key a callable by itself, or by identity when it is unhashable.

    ctypes function pointers, for one, cannot be hashed. The record keeps
    the function alive, so its id is not reused while registered.
    """
    try:
        hash(function)
    except TypeError:
        return ("unhashable callable", id(function))
    return function


def register_custom(function, record) -> None:
    global generation
    _custom[_key(function)] = record
    forget_compiled()
    generation += 1


def unregister_custom(function) -> None:
    global generation
    if _custom.pop(_key(function), None) is not None:
        forget_compiled()
        generation += 1


def custom_derivative(function):
    """Return the `CustomDerivative` registered for `function`, or None."""
    return _custom.get(_key(function))


class GenerationCache:
    """A cache by callable that empties itself after any derivative registration.

    A registration changes a function's parameters as callers see them, so
    what was computed from them before it must not be reused. Unhashable
    callables are computed every time.
    """

    def __init__(self):
        self._values: dict = {}
        self._generation = -1

    def get(self, key, compute: Callable):
        if self._generation != generation:
            self._values.clear()
            self._generation = generation
        try:
            return self._values[key]
        except KeyError:
            pass
        except TypeError:  # An unhashable callable.
            return compute(key)
        value = self._values[key] = compute(key)
        return value


class _Registered:
    """A cache entry for a registered derivative, which never goes stale."""

    __slots__ = ("vjp",)

    def __init__(self, vjp):
        self.vjp = vjp

    def is_current(self) -> bool:
        return True


def vjp_of(function, *wrt: str) -> Callable:
    """Return the VJP of `function` with respect to the parameters `wrt`."""
    return _find_vjp(function, wrt, single_use=False)


def single_use_vjp_of(function, *wrt: str) -> Callable:
    """Return a VJP of `function` whose pullbacks may each be called only once.

    A compiled pullback of this kind deletes each value it reads from the
    forward pass after its last use, so a caller that runs the pullback once
    and drops it, as a recomputation does, uses less memory while it runs.
    Calling such a pullback a second time raises NameError. Registered
    derivatives have no such variant and return their usual VJP.
    """
    return _find_vjp(function, wrt, single_use=True)


def primal_of(function) -> Callable:
    """Return `function`'s compiled forward pass, which frees each local after its last use.

    It is the VJP with respect to no parameter: it returns `(value,
    pullback)`, and the pullback returns (). A function with a registered
    derivative, and one that is not Python code (a NumPy ufunc, say), has
    no compiled form and runs as written.
    """
    plain = getattr(function, "__func__", function)
    if custom_derivative(plain) is not None or not isinstance(plain, types.FunctionType):
        return _as_written(function)
    return _find_vjp(function, (), single_use=True, primal=True)


def _as_written(function) -> Callable:
    def run(*args, **kwargs):
        return function(*args, **kwargs), _no_cotangents

    return run


def _no_cotangents(cotangent):
    return ()


def is_checkpointed(function) -> bool:
    """Return whether `function` is a `checkpointed` wrapper."""
    return checkpointed_target(function) is not None


def _find_vjp(function, wrt: tuple, single_use: bool, primal: bool = False) -> Callable:
    if type(function) is types.MethodType and custom_derivative(function) is None:
        # Not cached under the bound method, which would keep its instance alive.
        found = _find_vjp(function.__func__, wrt, single_use, primal)
        return bind_instance(found, function)
    key = (_key(function), wrt, single_use, primal)
    cache = function_cache(function)
    if cache is None:
        cache = _compiled
    compiled = cache.get(key)
    if compiled is not None and compiled.is_current():
        return compiled.vjp
    record = custom_derivative(function)
    if record is not None:
        vjp = record.vjp_for(wrt)
    elif not primal and is_checkpointed(function):
        # Reached from a caller at run time, as a layer's checkpointed
        # __call__ is: the call is recomputed, as a direct call would be.
        from pullback.runtime.checkpoint import recomputing_vjp

        vjp = recomputing_vjp(function, wrt)
    elif _compiler_hook is None:
        raise PullbackError(
            f"no VJP is available for {function!r} and no compiler is installed; "
            "import pullback (not only pullback.runtime) before running "
            "generated code"
        )
    else:
        if primal:
            compiled = _compiler_hook(function, wrt, single_use=single_use, primal=True)
        else:
            compiled = _compiler_hook(function, wrt, single_use=single_use)
        cache[key] = compiled
        return compiled.vjp
    cache[key] = _Registered(vjp)
    return vjp


def bind_instance(vjp: Callable, method: types.MethodType) -> Callable:
    """Return the VJP of the bound `method`, given `vjp` of its function.

    The instance goes first, as Python passes it, and gets no cotangent,
    because it is a constant of the call, as a global value is. `wrt` names
    only the method's own parameters, so the pullback is unchanged.
    """
    code = getattr(method.__func__, "__code__", None)
    if code is not None and code.co_argcount == 0:
        raise PullbackError(
            f"the method {method.__qualname__} has no parameter for its instance, "
            "which Python passes as the first item of its *args; differentiated "
            "code cannot tell that item from the arguments. Name the first "
            "parameter, as in def method(self, *args)"
        )
    instance = method.__self__

    def bound_vjp(*args, **kwargs):
        return vjp(instance, *args, **kwargs)

    return bound_vjp
