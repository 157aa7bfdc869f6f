"""Derivative stops, derivative surgery and recomputation, as user-facing calls.

Each is an ordinary function when called outside differentiated code; the
compiler recognizes calls to them and emits the matching adjoint.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import reprlib
import types

import numpy as np

# Attribute set on functions decorated with @no_derivative.
NO_DERIVATIVE_ATTRIBUTE = "__pullback_no_derivative__"


def no_derivative(x):
    """Return `x`; no derivative flows back through the result.

    Used as a decorator, `@no_derivative` marks a function whose results have
    no derivative with respect to its inputs (index computations, samplers,
    logging)::

        y = no_derivative(np.cos(x))   # y is a constant for the pullback

        @no_derivative
        def sample_index(logits): ...
    """
    if isinstance(x, types.FunctionType):
        setattr(x, NO_DERIVATIVE_ATTRIBUTE, True)
    return x


def is_no_derivative_function(function) -> bool:
    return getattr(function, NO_DERIVATIVE_ATTRIBUTE, False) is True


def with_derivative(x, hook):
    """Return `x`; in the pullback, `hook(cotangent)` runs for this use of `x`.

    The hook receives the cotangent flowing back through this use and may
    return a replacement. A hook that returns None only observes, though it
    may change an array cotangent in place. Hooks run in the reverse order of
    the forward pass, and each receives only the cotangent of its own use::

        y = with_derivative(np.sin(x), lambda g: print("sin", g))
    """
    if not callable(hook):
        from pullback.errors import ArgumentTypeError

        raise ArgumentTypeError(
            f"the hook passed to with_derivative must be callable, but it is "
            f"{_describe(hook)}; pass a function that takes the cotangent and "
            "returns a replacement or None"
        )
    return x


def apply_hook(hook, cotangent):
    """Run a `with_derivative` hook on its own copy of an array cotangent.

    Cotangents of the operands of `a + b` are one array object, so a hook
    that mutates its argument in place gets a private copy: it must not
    change the cotangent another use receives.
    """
    if isinstance(cotangent, np.ndarray):
        cotangent = cotangent.copy()
    replacement = hook(cotangent)
    if replacement is None:
        return cotangent
    name = getattr(hook, "__name__", repr(hook))
    if _is_numeric(cotangent) and not _is_numeric(replacement):
        from pullback.errors import CotangentError

        raise CotangentError(
            f"the with_derivative hook {name} returned {_describe(replacement)} "
            f"for a cotangent of shape {np.shape(cotangent)}; return a number or "
            "a floating-point array of that shape, or None to keep the cotangent"
        )
    if np.shape(replacement) != np.shape(cotangent):
        from pullback.errors import CotangentError

        raise CotangentError(
            f"the with_derivative hook {name} returned a cotangent of shape "
            f"{np.shape(replacement)} for a value of shape {np.shape(cotangent)}; "
            "return one of the same shape, or None to keep the cotangent"
        )
    return replacement


def _is_numeric(value) -> bool:
    """Return whether `value` is a number or a numeric NumPy value, bools excluded."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Number):
        return True
    return isinstance(value, np.ndarray | np.generic) and value.dtype.kind in "iufc"


def _describe(value) -> str:
    return f"{reprlib.repr(value)} of type {type(value).__name__}"


# Attribute naming the function a checkpointed wrapper recomputes.
CHECKPOINTED_ATTRIBUTE = "__pullback_checkpointed__"


def checkpointed(function):
    """Mark `function` so differentiated callers recompute it in the pullback.

    A compiled caller keeps only the inputs of a checkpointed call and runs
    the function's VJP again when the pullback runs, trading compute for
    memory. The function must be pure: it runs twice, so printing or other
    effects happen twice. Random draws from a NumPy `Generator` passed as an
    argument are replayed exactly.
    """
    if getattr(function, CHECKPOINTED_ATTRIBUTE, None) is not None:
        return function

    @functools.wraps(function)
    def checkpointed_function(*args, **kwargs):
        return function(*args, **kwargs)

    setattr(checkpointed_function, CHECKPOINTED_ATTRIBUTE, function)
    return checkpointed_function


def checkpointed_target(function):
    """Return the function a checkpointed wrapper recomputes, or None.

    A bound method reads the mark from its function, so the target is bound
    to the same instance: `layer.apply` recomputes `apply` for `layer`.
    """
    target = getattr(function, CHECKPOINTED_ATTRIBUTE, None)
    if target is not None and isinstance(function, types.MethodType):
        return types.MethodType(target, function.__self__)
    return target


def call_signature(function) -> inspect.Signature:
    """Return the signature a call of `function` binds to when differentiated.

    A checkpointed wrapper binds like the function it recomputes. Any other
    Python function or method binds to its own parameters, which its compiled
    VJP takes, even where `functools.wraps` set a `__wrapped__` that
    inspect.signature would follow to the wrapped function.
    """
    target = checkpointed_target(function)
    if target is not None:
        return call_signature(target)
    follow_wrapped = not isinstance(function, types.FunctionType | types.MethodType)
    return inspect.signature(function, follow_wrapped=follow_wrapped)


def generator_states(*args, **kwargs):
    """Return `(generator, state)` for each NumPy random generator the arguments reach.

    A `Generator` or legacy `RandomState` counts when it is an argument, an
    item of a list, tuple or dict argument, or an attribute of an argument
    object at any depth (a Dropout layer's generator, say). Returns None when
    there is none, the common case.
    """
    found = []
    seen = set()
    pending = [*args, *kwargs.values()]
    while pending:
        value = pending.pop()
        if isinstance(value, _LEAF_TYPES) or id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, np.random.Generator | np.random.RandomState):
            found.append((value, random_state(value)))
        elif isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif not isinstance(value, _OPAQUE_TYPES):
            pending.extend(getattr(value, "__dict__", {}).values())
    return found or None


# Values that cannot hold a generator, skipped at once.
_LEAF_TYPES = (np.ndarray, np.generic, int, float, complex, str, bytes, type(None))

# Values whose attributes are not searched: functions, classes and modules.
_OPAQUE_TYPES = (
    types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    types.ModuleType, type, np.ufunc,
)


def random_state(generator):
    """Return the state of a NumPy `Generator` or `RandomState`."""
    if isinstance(generator, np.random.RandomState):
        return generator.get_state()
    return generator.bit_generator.state


def set_random_state(generator, state) -> None:
    """Restore a state that `random_state` returned."""
    if isinstance(generator, np.random.RandomState):
        generator.set_state(state)
    else:
        generator.bit_generator.state = state
