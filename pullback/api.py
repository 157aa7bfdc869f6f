"""The differential operators: compile with `compiler/`, run with `runtime/`."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np

from pullback import runtime
from pullback.compiler import CompiledVJP, compile_vjp
from pullback.compiler.parse import unwrap_function
from pullback.errors import (
    CotangentError,
    NonScalarOutputError,
    warn_zero_derivative,
)
from pullback.runtime import registry
from pullback.runtime.tangents import is_differentiable_value

F = TypeVar("F", bound=Callable[..., Any])
Wrt = str | int | tuple[str | int, ...] | None


def _compile_all_parameters(function):
    return compile_vjp(function).vjp


registry.set_compiler_hook(_compile_all_parameters)


@overload
def differentiable(function: F, *, wrt: Wrt = None) -> F: ...
@overload
def differentiable(*, wrt: Wrt = None) -> Callable[[F], F]: ...


def differentiable(function=None, *, wrt=None):
    """Compile `function`'s VJP now and return `function` unchanged.

    Errors in the differentiable subset raise here, at the decorated
    definition, instead of at the first gradient call::

        @pullback.differentiable
        def f(x):
            return np.sin(x) * x

        pullback.gradient(f)(1.0)   # uses the VJP compiled above

    `wrt` names the parameters (names, indices, or a tuple of either) whose
    VJP is compiled ahead; other choices compile on first use.
    """

    def decorate(target):
        compile_vjp(target, wrt)
        return target

    if function is None:
        return decorate
    return decorate(function)


# Zero-derivative warnings go out once per compiled function and wrt.
_warned: set[tuple] = set()
_warned_lock = threading.Lock()


def _argument_values(compiled: CompiledVJP, args: tuple, kwargs: dict) -> dict:
    params = compiled.params
    if not kwargs and len(args) == len(params):
        return dict(zip(params, args, strict=True))
    import inspect

    bound = inspect.signature(compiled.function).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _warn_zero_derivatives(compiled: CompiledVJP, values: dict) -> None:
    if not compiled.zero_derivatives:
        return
    key = (compiled.function, compiled.wrt)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    code = compiled.function.__code__
    for param, message in compiled.zero_derivatives.items():
        if is_differentiable_value(values.get(param)):
            warn_zero_derivative(message, code.co_filename, code.co_firstlineno)


def _finish_cotangent(cotangent, primal):
    """Shape a parameter's cotangent for the caller: None where it has none."""
    if not is_differentiable_value(primal):
        return None
    if isinstance(cotangent, np.ndarray):
        if not cotangent.flags.writeable or cotangent.base is not None and (
            cotangent.strides and 0 in cotangent.strides
        ):
            cotangent = np.array(cotangent)
        if not isinstance(primal, np.ndarray) and cotangent.ndim == 0:
            cotangent = cotangent[()]
    return cotangent


def _format(compiled: CompiledVJP, cotangents: tuple, values: dict):
    finished = tuple(
        _finish_cotangent(cotangent, values.get(param))
        for param, cotangent in zip(compiled.wrt, cotangents, strict=True)
    )
    return finished[0] if len(finished) == 1 else finished


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a value of type {type(value).__name__}"


def _scalar_seed(function, value):
    """Return the cotangent 1 for a scalar result, or raise if not scalar."""
    name = getattr(function, "__qualname__", repr(function))
    if isinstance(value, bool) or not isinstance(value, float | int | np.generic | np.ndarray):
        raise NonScalarOutputError(
            f"gradient needs {name} to return a floating-point scalar, but it "
            f"returned {_describe(value)}. Use pullback.value_and_pullback(f, "
            "*args) and call the pullback with a cotangent of the result's shape"
        )
    if np.shape(value) != ():
        raise NonScalarOutputError(
            f"gradient needs {name} to return a scalar, but it returned "
            f"{_describe(value)}. Use pullback.value_and_pullback(f, *args) and "
            "call the pullback with a cotangent of shape "
            f"{np.shape(value)}, or reduce the result (for example with .sum())"
        )
    dtype = getattr(value, "dtype", None)
    if dtype is not None:
        if not np.issubdtype(dtype, np.inexact):
            raise NonScalarOutputError(
                f"gradient needs {name} to return a floating-point scalar, but it "
                f"returned {_describe(value)}, which has no derivative. Return a "
                "float, or convert with float(...) where the value is computed"
            )
        return np.ones((), dtype=dtype) if isinstance(value, np.ndarray) else dtype.type(1)
    if isinstance(value, int):
        raise NonScalarOutputError(
            f"gradient needs {name} to return a floating-point scalar, but it "
            "returned an int, which has no derivative. Return a float"
        )
    return type(value)(1)


def value_and_gradient(f: Callable, wrt: Wrt = None) -> Callable:
    """Return a function computing `(f(*args), gradient of f at args)`.

    `f` must return a floating-point scalar. With one differentiation
    parameter the gradient is bare; with several it is a tuple in parameter
    order. A parameter whose value has no derivative (an int, a bool, an
    integer array) gets None.

    >>> value_and_gradient(lambda x: x * x)(3.0)
    (9.0, 6.0)
    """
    compiled = compile_vjp(f, wrt)

    @functools.wraps(unwrap_function(f))
    def value_and_gradient_of_f(*args, **kwargs):
        value, pullback_of_f = compiled.vjp(*args, **kwargs)
        seed = _scalar_seed(compiled.function, value)
        values = _argument_values(compiled, args, kwargs)
        _warn_zero_derivatives(compiled, values)
        return value, _format(compiled, pullback_of_f(seed), values)

    return value_and_gradient_of_f


def gradient(f: Callable, wrt: Wrt = None) -> Callable:
    """Return a function computing the gradient of scalar-valued `f`.

    >>> import numpy as np
    >>> gradient(lambda x: np.sin(x))(0.0)
    1.0
    """
    evaluate = value_and_gradient(f, wrt)

    @functools.wraps(unwrap_function(f))
    def gradient_of_f(*args, **kwargs):
        return evaluate(*args, **kwargs)[1]

    return gradient_of_f


def _check_cotangent(function, cotangent, value, path: str = "the result"):
    """Raise CotangentError unless `cotangent` has `value`'s structure and shape."""
    name = getattr(function, "__qualname__", repr(function))
    if isinstance(value, tuple | list):
        if not isinstance(cotangent, tuple | list) or len(cotangent) != len(value):
            raise CotangentError(
                f"the cotangent of {path} of {name} must be a "
                f"{type(value).__name__} of {len(value)} items, like the "
                f"result, but got {_describe(cotangent)}"
            )
        checked = [
            _check_cotangent(function, c, v, f"{path}[{i}]")
            for i, (c, v) in enumerate(zip(cotangent, value, strict=True))
        ]
        return type(value)(checked)
    if cotangent is None:
        return runtime.zeros_like(value)
    if np.shape(cotangent) != np.shape(value):
        raise CotangentError(
            f"the cotangent of {path} of {name} must have shape "
            f"{np.shape(value)}, like the result, but has shape {np.shape(cotangent)}"
        )
    return cotangent


def value_and_pullback(f: Callable, *args, wrt: Wrt = None, **kwargs):
    """Return `(f(*args, **kwargs), pullback)`.

    `pullback(cotangent)` returns the vector-Jacobian product: the
    cotangents of the differentiation parameters, bare for one and a tuple
    for several. The cotangent has the result's structure and shapes.

    >>> import numpy as np
    >>> y, pb = value_and_pullback(lambda x: 2.0 * x, np.ones(3))
    >>> pb(np.array([1.0, 2.0, 3.0]))
    array([2., 4., 6.])
    """
    compiled = compile_vjp(f, wrt)
    value, pullback_of_f = compiled.vjp(*args, **kwargs)
    values = _argument_values(compiled, args, kwargs)
    _warn_zero_derivatives(compiled, values)

    def pullback_at_args(cotangent):
        checked = _check_cotangent(compiled.function, cotangent, value)
        return _format(compiled, pullback_of_f(checked), values)

    return value, pullback_at_args


def pullback(f: Callable, *args, wrt: Wrt = None, **kwargs):
    """Return the pullback of `f` at `args`; see `value_and_pullback`."""
    return value_and_pullback(f, *args, wrt=wrt, **kwargs)[1]


def adjoint_source(f: Callable, wrt: Wrt = None) -> str:
    """Return the generated Python source of `f`'s VJP for `wrt`.

    The source is the function pullback runs: the forward pass, then a
    nested pullback closure whose blocks quote the source lines they
    differentiate.
    """
    return compile_vjp(f, wrt).source
