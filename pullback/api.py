"""The differential operators: compile with `compiler/`, run with `runtime/`."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np

from pullback import runtime
from pullback.compiler import CompiledVJP, compile_vjp
from pullback.compiler.pipeline import clear_cache, compile_primal, variadic_item
from pullback.errors import (
    ArgumentTypeError,
    CotangentError,
    DerivativeRegistrationError,
    NonScalarOutputError,
    WrtError,
    warn_zero_derivative,
)
from pullback.runtime import registry
from pullback.runtime.custom import CustomDerivative
from pullback.runtime.tangents import SCALAR_SEEDS, is_differentiable_value

F = TypeVar("F", bound=Callable[..., Any])
Wrt = str | int | tuple[str | int, ...] | None


def _compile_for_caller(function, wrt: tuple[str, ...], single_use: bool = False,
                        primal: bool = False):
    if primal:
        return compile_primal(function)
    return compile_vjp(function, wrt, single_use=single_use)


class _Compiled:
    """A compiled VJP that recompiles after any derivative registration.

    A registration can change how a compiled function differentiates a call
    it makes, so a VJP compiled before it must not be reused.
    """

    def __init__(self, function, wrt, single_use: bool = False):
        self.function = function
        self.wrt = wrt
        self.single_use = single_use
        self.generation = registry.generation
        self.compiled = self.compile()

    def get(self) -> CompiledVJP:
        if self.generation != registry.generation or not self.compiled.is_current():
            # Read first: a registration while compiling must make the next
            # call compile again.
            generation = registry.generation
            self.compiled = self.compile()
            self.generation = generation
        return self.compiled

    def compile(self) -> CompiledVJP:
        """Compile the VJP, single-use where that was asked for and pays.

        A single-use pullback frees each forward value after its last use.
        That lowers the peak memory, but glibc then returns the freed memory
        to the kernel and the next call faults it in again: the CNN training
        step of benchmarks/cnn_step.py took 17% longer. So only a function
        that checkpoints a call, and so trades time for memory, gets one.
        """
        compiled = compile_vjp(self.function, self.wrt)
        if self.single_use and compiled.checkpoints:
            compiled = compile_vjp(self.function, self.wrt, single_use=True)
        return compiled


registry.set_compiler_hook(_compile_for_caller)


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


# Parameters annotated with these types never warn, whatever their value.
_NON_DIFFERENTIABLE_ANNOTATIONS = (int, bool, str, "int", "bool", "str")

# Zero-derivative warnings go out once per function and wrt. A plain
# function records its warnings in its own cache, so that they do not keep
# it alive. Other callables, such as registered C functions, are recorded here.
_warned: set[tuple] = set()
_warned_lock = threading.Lock()


def _argument_values(compiled: CompiledVJP, args: tuple, kwargs: dict) -> dict:
    params = compiled.params
    if not kwargs and len(args) == len(params) and compiled.variadic is None:
        return dict(zip(params, args, strict=True))
    import inspect

    try:
        signature = inspect.signature(compiled.function, follow_wrapped=False)
    except (TypeError, ValueError):  # A C function with a registered derivative.
        values = dict(zip(params, args, strict=False))
        values.update(kwargs)
        return values
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _warn_zero_derivatives(compiled: CompiledVJP, values: dict) -> None:
    if not compiled.zero_derivatives:
        return
    function = getattr(compiled.function, "__func__", compiled.function)
    cache = registry.function_cache(function)
    warned = _warned if cache is None else cache.warned
    key = (function, compiled.wrt)
    with _warned_lock:
        if key in warned:
            return
        warned.add(key)
    code = getattr(compiled.function, "__code__", None)
    filename = code.co_filename if code else compiled.filename
    lineno = code.co_firstlineno if code else 0
    annotations = getattr(compiled.function, "__annotations__", {})
    for param, message in compiled.zero_derivatives.items():
        if annotations.get(param) in _NON_DIFFERENTIABLE_ANNOTATIONS:
            continue
        if is_differentiable_value(values.get(param)):
            warn_zero_derivative(message, filename, lineno)


def _finish_cotangent(cotangent, primal):
    """Shape a parameter's cotangent for the caller: None where it has none.

    A cotangent may be a read-only broadcast view (the adjoint of a sum), which
    is copied so the caller owns an ordinary array.
    """
    if type(primal) is float and type(cotangent) is float:
        return cotangent  # The common case of a number: nothing to adjust.
    if (
        type(cotangent) is np.ndarray
        and type(primal) is np.ndarray
        and cotangent.dtype is primal.dtype
        and primal.dtype.kind == "f"
        and (cotangent.base is None or cotangent.flags.writeable)
    ):
        # The common case of a floating array: a cotangent that owns its
        # memory was written by the pullback.
        return cotangent
    if runtime.contains_complex_value(primal) or runtime.contains_complex_value(cotangent):
        raise runtime.complex_values_error()
    if type(primal) is np.ndarray:
        if primal.dtype.kind != "f":
            return None
    elif not is_differentiable_value(primal):
        return None
    if cotangent is None:  # A registered derivative that leaves it out.
        return runtime.zeros_like(primal)
    if type(cotangent) is np.ndarray:
        if not cotangent.flags.writeable:
            cotangent = np.array(cotangent)
        if cotangent.ndim == 0 and type(primal) is not np.ndarray:
            cotangent = cotangent[()]
    if (isinstance(primal, float) and isinstance(cotangent, np.floating)
            and type(cotangent) is not np.float64):
        # A Python float or float64 computed with float32 arrays gets a
        # float32 cotangent. Its gradient keeps the parameter's precision.
        return type(primal)(cotangent)
    return cotangent


# Python numbers, and NumPy float64 scalars, which subclass float; float32
# scalars take the general VJP, which keeps their gradients float32.
_NUMBER_TYPES = frozenset({float, int, np.float64})


# Values a free name may hold for the VJP for numbers to apply: the exact
# types checked first, then their subclasses.
_GUARD_TYPES = frozenset({int, float, bool, complex, np.float64, np.float32, np.int64})
_GUARD_BASES = (int, float, complex, np.number)


def _vjp_for(compiled: CompiledVJP, args: tuple, kwargs: dict):
    """Pick the VJP for numbers when every argument is a Python number."""
    if compiled.numbers_vjp is not None and _takes_numbers(compiled, args, kwargs):
        return compiled.numbers_vjp
    return compiled.vjp


def _takes_numbers(compiled: CompiledVJP, args: tuple, kwargs: dict) -> bool:
    """Return whether the VJP for numbers applies to these arguments."""
    # One set operation in C checks every argument's type.
    if (kwargs or len(args) != len(compiled.params)
            or not _NUMBER_TYPES.issuperset(map(type, args))):
        return False
    for holder, key in compiled.numbers_guard:
        # A global or closure variable may have been rebound to an array.
        try:
            value = holder.cell_contents if key is None else holder[key]
        except (KeyError, ValueError):  # Deleted since, or an empty cell.
            return False
        if type(value) not in _GUARD_TYPES and not isinstance(value, _GUARD_BASES):
            return False
    return True


def _value_and_gradient_of_numbers(compiled: CompiledVJP, args: tuple):
    """Run the VJP for numbers: every argument is a number, and so is every result.

    A number needs none of the checks `_format` makes, and this path is the
    one where a call's fixed cost shows, so it is kept short.
    """
    value, pullback_of_f = compiled.numbers_vjp(*args)
    seed = _SEEDS.get(type(value))
    if seed is None:
        seed = _scalar_seed(compiled.function, value)
    if compiled.zero_derivatives:
        _warn_zero_derivatives(compiled, dict(zip(compiled.params, args, strict=True)))
    cotangents = pullback_of_f(seed)
    if int not in map(type, args):
        # No int argument, whose gradient would be None: the pullback's
        # tuple is the gradient as it is.
        return value, cotangents[0] if len(cotangents) == 1 else cotangents
    gradient = [
        None if type(args[position]) is int else cotangent
        for position, cotangent in zip(compiled.wrt_positions, cotangents, strict=True)
    ]
    return value, gradient[0] if len(gradient) == 1 else tuple(gradient)


def _format(compiled: CompiledVJP, cotangents: tuple, args: tuple, kwargs: dict):
    """Return the gradient for the caller: bare for one parameter, else a tuple."""
    if compiled.variadic is not None:
        return _unshared(_format_variadic(compiled, cotangents, args, kwargs))
    if not kwargs and len(args) == len(compiled.params):
        positions = compiled.wrt_positions
        if len(positions) == 1:
            return _finish_cotangent(cotangents[0], args[positions[0]])
        if _are_finished_arrays(cotangents, args, positions):
            return tuple(cotangents)
        # `_unshared` inlined: this is the path where a call's fixed cost shows.
        finished = []
        owners = []
        for cotangent, position in zip(cotangents, positions, strict=True):
            cotangent = _finish_cotangent(cotangent, args[position])
            if type(cotangent) is np.ndarray:
                base = cotangent.base
                owner = id(cotangent if base is None else base)
                if owner in owners:
                    cotangent = cotangent.copy()
                    owner = id(cotangent)
                owners.append(owner)
            finished.append(cotangent)
        return tuple(finished)
    values = _argument_values(compiled, args, kwargs)
    primals = [values.get(param) for param in compiled.wrt]
    if len(primals) == 1:
        return _finish_cotangent(cotangents[0], primals[0])
    return _unshared(tuple(map(_finish_cotangent, cotangents, primals)))


def _are_finished_arrays(cotangents, args: tuple, positions: tuple) -> bool:
    """Return whether the cotangents need neither `_finish_cotangent` nor a copy.

    That holds when each is a distinct array that owns its memory and has the
    floating dtype of its array argument, which is what a pullback of array
    arithmetic returns. No two of them can share memory then, so this skips
    `_unshared`'s bookkeeping.
    """
    if len(cotangents) != len(positions):
        return False  # The general path raises.
    ndarray = np.ndarray  # A local name: this runs on every gradient call.
    # The lengths match, and zip's strict check costs about 0.25 µs here.
    for cotangent, position in zip(cotangents, positions, strict=False):
        primal = args[position]
        if (
            type(cotangent) is not ndarray
            or type(primal) is not ndarray
            or cotangent.base is not None
        ):
            return False
        dtype = primal.dtype
        if cotangent.dtype is not dtype or dtype.kind != "f":
            return False
    return len(set(map(id, cotangents))) == len(cotangents)


def _unshared(gradient, seed=None):
    """Copy returned arrays that share memory with another returned one or the seed.

    `np.sum(x + y)` gives x and y the same cotangent array, and a pullback
    may pass its seed through unchanged. The caller owns what it gets, so
    scaling one gradient in place must not change another or the seed.
    """
    items = gradient if type(gradient) is tuple else (gradient,)
    # The ids of the arrays that own the memory seen so far. The objects
    # themselves stay alive in `items` and `seed` meanwhile.
    owners = []
    if type(seed) is np.ndarray:
        owners.append(id(seed if seed.base is None else seed.base))
    copied = None
    for index, item in enumerate(items):
        if type(item) is not np.ndarray:
            continue
        base = item.base
        owner = id(item if base is None else base)
        if owner in owners:
            if copied is None:
                copied = list(items)
            copied[index] = item = item.copy()
            owner = id(item)
        owners.append(owner)
    if copied is None:
        return gradient
    return tuple(copied) if type(gradient) is tuple else copied[0]


def _format_variadic(compiled: CompiledVJP, cotangents: tuple, args: tuple, kwargs: dict):
    """`_format` for a function with a `*name` parameter.

    The cotangent of that parameter is a tuple, and each of its items is
    finished against its own argument, so an int argument gets None.
    """
    values = _argument_values(compiled, args, kwargs)
    gradient = []
    for selector, cotangent in zip(compiled.wrt, cotangents, strict=True):
        name, index = variadic_item(selector)
        primal = values.get(name)
        if index is not None:
            primal = primal[index]
        if name == compiled.variadic and index is None:
            gradient.append(tuple(map(_finish_cotangent, cotangent, primal)))
        else:
            gradient.append(_finish_cotangent(cotangent, primal))
    return gradient[0] if len(gradient) == 1 else tuple(gradient)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {_count_items(len(value))}"
    if isinstance(value, dict):
        return f"a dict with the keys {_key_list(value)}"
    return f"a value of type {type(value).__name__}"


def _count_items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


_SEEDS = SCALAR_SEEDS


def _scalar_seed(function, value):
    """Return the cotangent 1 for a scalar result, or raise if not scalar."""
    seed = _SEEDS.get(type(value))
    if seed is not None:
        return seed
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
    # Each pullback runs once, so it may free every value it reads from the
    # forward pass after its last use; see `_Compiled.compile`.
    cached = _Compiled(f, wrt, single_use=True)

    @functools.wraps(f)
    def value_and_gradient_of_f(*args, **kwargs):
        compiled = cached.get()
        if compiled.numbers_vjp is not None and _takes_numbers(compiled, args, kwargs):
            return _value_and_gradient_of_numbers(compiled, args)
        specializer = compiled.specializer
        if specializer is not None and not kwargs and len(args) == specializer.count:
            for specialized in specializer.functions:
                answer = specialized(*args)
                if answer is not None:
                    return answer
            if not specializer.learn(args):
                compiled.specializer = None
        value, pullback_of_f = compiled.vjp(*args, **kwargs)
        seed = _SEEDS.get(type(value))
        if seed is None:
            seed = _scalar_seed(compiled.function, value)
        if compiled.zero_derivatives:
            _warn_zero_derivatives(compiled, _argument_values(compiled, args, kwargs))
        return value, _format(compiled, pullback_of_f(seed), args, kwargs)

    return value_and_gradient_of_f


def gradient(f: Callable, wrt: Wrt = None) -> Callable:
    """Return a function computing the gradient of scalar-valued `f`.

    >>> import numpy as np
    >>> gradient(lambda x: np.sin(x))(0.0)
    1.0
    """
    evaluate = value_and_gradient(f, wrt)

    @functools.wraps(f)
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
                f"{type(value).__name__} of {_count_items(len(value))}, like the "
                f"result, but got {_describe(cotangent)}"
            )
        checked = [
            _check_cotangent(function, c, v, f"{path}[{i}]")
            for i, (c, v) in enumerate(zip(cotangent, value, strict=True))
        ]
        return type(value)(checked)
    if isinstance(value, dict):
        if not isinstance(cotangent, dict) or cotangent.keys() != value.keys():
            raise CotangentError(
                f"the cotangent of {path} of {name} must be a dict with the "
                f"keys {_key_list(value)}, like the result, but got "
                f"{_describe(cotangent)}"
            )
        return {key: _check_cotangent(function, cotangent[key], item, f"{path}[{key!r}]")
                for key, item in value.items()}
    if cotangent is None:
        return runtime.zeros_like(value)
    if np.shape(cotangent) != np.shape(value):
        raise CotangentError(
            f"the cotangent of {path} of {name} must have shape "
            f"{np.shape(value)}, like the result, but has shape {np.shape(cotangent)}"
        )
    if isinstance(value, np.ndarray) and isinstance(cotangent, list | tuple):
        # A nested list of numbers for an array result, as np.asarray reads it.
        dtype = value.dtype if value.dtype.kind in "fc" else np.float64
        return np.asarray(cotangent, dtype=dtype)
    return cotangent


def _key_list(mapping: dict) -> str:
    return ", ".join(sorted(map(repr, mapping))) or "(none)"


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
    value, pullback_of_f = _vjp_for(compiled, args, kwargs)(*args, **kwargs)
    if compiled.zero_derivatives:
        _warn_zero_derivatives(compiled, _argument_values(compiled, args, kwargs))

    def pullback_at_args(cotangent):
        checked = _check_cotangent(compiled.function, cotangent, value)
        return _unshared(_format(compiled, pullback_of_f(checked), args, kwargs), checked)

    return value, pullback_at_args


def pullback(f: Callable, *args, wrt: Wrt = None, **kwargs):
    """Return the pullback of `f` at `args`; see `value_and_pullback`."""
    return value_and_pullback(f, *args, wrt=wrt, **kwargs)[1]


def adjoint_source(f: Callable, wrt: Wrt = None, *, single_use: bool = False) -> str:
    """Return the generated Python source of `f`'s VJP for `wrt`.

    The source is the function pullback runs: the forward pass, then a
    nested pullback closure whose blocks quote the source lines they
    differentiate. `value_and_pullback` runs this VJP. `gradient` and
    `value_and_gradient` call each pullback once, so for a function that
    checkpoints a call they run the single-use variant (`single_use=True`),
    whose pullback deletes each forward value after its last use.
    """
    return compile_vjp(f, wrt, single_use=single_use).source


def _parameter_names(function, vjp) -> tuple[str, ...]:
    """Return the parameters of `function`, or of its VJP when it has no signature.

    A keyword-only `wrt` of the VJP is left out unless `function` has a
    parameter of that name, because it receives the names of the requested
    cotangents instead of an argument.
    """
    import inspect

    def parameters(callable_object) -> list:
        signature = inspect.signature(callable_object)
        kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [p for p in signature.parameters.values() if p.kind not in kinds]

    # NOTE: a registered derivative cannot cover a *name parameter yet, since
    # its pullback's cotangents are matched to parameters one to one.
    for callable_object in (function, vjp):
        try:
            variadic = [p.name for p in inspect.signature(callable_object).parameters.values()
                        if p.kind == inspect.Parameter.VAR_POSITIONAL]
        except (TypeError, ValueError):
            continue  # Builtins and C functions may have no signature.
        if variadic:
            raise DerivativeRegistrationError(
                f"cannot register a derivative for {_name_of(function)}: "
                f"{_name_of(callable_object)} takes *{variadic[0]}, and registered "
                "derivatives support only named parameters. Give the function "
                "named parameters, or let pullback compile it from its source"
            )
    vjp_parameters = parameters(vjp)
    try:
        function_parameters = parameters(function)
    except (TypeError, ValueError):
        function_parameters = None  # Builtins and C functions may have no signature.
    if isinstance(function, np.ufunc) and function_parameters is not None:
        # The operands; `out`, `where` and the other options have no derivative.
        function_parameters = function_parameters[: function.nin]
    function_names = (None if function_parameters is None
                      else tuple(p.name for p in function_parameters))
    if _takes_requested_wrt(vjp, function_names):
        vjp_parameters = [p for p in vjp_parameters if p.name != "wrt"]
    vjp_names = tuple(p.name for p in vjp_parameters)
    if function_parameters is None:
        return vjp_names
    if len(function_names) != len(vjp_names):
        raise DerivativeRegistrationError(
            f"the VJP {vjp.__qualname__} takes {len(vjp_names)} parameters "
            f"{vjp_names}, but {_name_of(function)} takes {len(function_names)} "
            f"{function_names}; give the VJP the same parameters as the function"
        )
    for ours, theirs in zip(function_parameters, vjp_parameters, strict=True):
        _check_vjp_parameter(function, vjp, ours, theirs)
    return function_names


def _check_vjp_parameter(function, vjp, ours, theirs) -> None:
    """Raise unless the VJP's parameter `theirs` can stand in for `ours`.

    Compiled callers call the VJP with the function's call arguments, so a
    parameter that may be passed by keyword needs the function's name, and
    one that may be left out needs the function's default.
    """
    import inspect

    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if ours.kind in positional and theirs.kind not in positional:
        raise DerivativeRegistrationError(
            f"the VJP {vjp.__qualname__} takes {theirs.name!r} by keyword only, but "
            f"callers of {_name_of(function)} may pass it by position; make it an "
            "ordinary parameter, before any `*`"
        )
    if ours.kind is not inspect.Parameter.POSITIONAL_ONLY and ours.name != theirs.name:
        raise DerivativeRegistrationError(
            f"the VJP {vjp.__qualname__} names a parameter {theirs.name!r} where "
            f"{_name_of(function)} has {ours.name!r}; callers may pass it by "
            f"keyword, so name it {ours.name!r}"
        )
    if ours.default is not inspect.Parameter.empty and not _same_default(
            ours.default, theirs.default):
        given = "no default" if theirs.default is inspect.Parameter.empty else (
            f"the default {theirs.default!r}")
        raise DerivativeRegistrationError(
            f"the VJP {vjp.__qualname__} gives {theirs.name!r} {given}, but "
            f"{_name_of(function)} defaults it to {ours.default!r}; a caller that "
            "leaves the argument out calls the VJP, so give it the same default"
        )


def _same_default(a, b) -> bool:
    """Return whether two defaults give the same value: equal numbers (NaN
    included), equal arrays, or equal objects of one type."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    numbers = (int, float, complex, np.number)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool | np.bool_):
        if a == b:
            # 0.0 and -0.0 compare equal but give different results.
            return bool(np.signbit(np.real(a)) == np.signbit(np.real(b)))
        return bool(np.isnan(a) and np.isnan(b))
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # A value whose == has no single truth value.
        return False


def _takes_requested_wrt(vjp, function_names) -> bool:
    """Return whether `vjp` has a keyword-only `wrt` parameter that is not
    one of the function's own parameters."""
    import inspect

    parameter = inspect.signature(vjp).parameters.get("wrt")
    return (parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY
            and "wrt" not in (function_names or ()))


def _name_of(function) -> str:
    return getattr(function, "__qualname__", None) or getattr(
        function, "__name__", repr(function)
    )


def _site_of(vjp) -> str:
    code = getattr(vjp, "__code__", None)
    if code is None:
        return repr(vjp)
    return f"{code.co_filename}:{code.co_firstlineno}"


def _wrt_indices(names: tuple[str, ...], wrt, function) -> tuple[int, ...]:
    if wrt is None:
        return tuple(range(len(names)))
    items = wrt if isinstance(wrt, tuple | list) else (wrt,)
    indices = []
    for item in items:
        if isinstance(item, str) and item in names:
            index = names.index(item)
        elif isinstance(item, int) and not isinstance(item, bool) and (
            -len(names) <= item < len(names)
        ):
            index = item % len(names)
        else:
            raise WrtError(
                f"wrt={item!r} names no parameter of {_name_of(function)}, whose "
                f"parameters are {names}"
            )
        if index in indices:
            raise WrtError(f"wrt names the parameter {names[index]!r} twice")
        indices.append(index)
    return tuple(indices)


def derivative_of(function: Callable, wrt: Wrt = None, *, replace: bool = False):
    """Register a custom VJP for `function`, used wherever compiled code calls it.

    The decorated VJP takes `function`'s arguments, with the same parameter
    names and defaults, and returns `(value, pullback)`. The pullback takes
    the result's cotangent and returns a bare cotangent when one parameter is
    differentiated, or a tuple in parameter order. Compiled code then calls
    the VJP in place of `function`, so `function` itself runs once per
    evaluation::

        libm = ctypes.CDLL(ctypes.util.find_library("m"))
        libm.exp.restype = libm.exp.argtypes = ctypes.c_double  # sketch

        @pullback.derivative_of(libm.exp)
        def exp_vjp(x):
            y = libm.exp(x)
            return y, lambda g: g * y

    `wrt` restricts the registration to some parameters; the others get no
    derivative through `function`. A VJP with a keyword-only parameter
    `wrt` is called with the tuple of parameter names whose cotangents the
    caller needs, so its pullback can skip the others and return None in
    their places, as the caller never reads them. Called directly, the VJP
    gets its default, which should name every registered parameter::

        @pullback.derivative_of(scaled)
        def scaled_vjp(x, factor, *, wrt=("x", "factor")):
            def scaled_pullback(g):
                x_bar = g * factor if "x" in wrt else None
                factor_bar = np.sum(g * x) if "factor" in wrt else None
                return x_bar, factor_bar
            return x * factor, scaled_pullback

    Each cotangent is checked against its argument: its shape, the items of
    a tuple, list or dict, and the fields of an object's `ObjectTangent`. A
    floating cotangent takes the argument's dtype. Registering twice for one
    function raises
    `DerivativeRegistrationError` unless `replace=True`. A registration also
    applies to callers compiled before it.
    """
    if not callable(function):
        raise TypeError(f"derivative_of needs a callable, got {function!r}")
    key = getattr(function, "__func__", function)

    def register(vjp):
        if not callable(vjp):
            raise TypeError(
                f"derivative_of({_name_of(function)}) decorates a callable, got {vjp!r}"
            )
        names = _parameter_names(key, vjp)
        indices = _wrt_indices(names, wrt, function)
        existing = registry.custom_derivative(key)
        if existing is not None and not replace:
            raise DerivativeRegistrationError(
                f"a derivative for {_name_of(function)} is already registered at "
                f"{existing.site}; pass replace=True to derivative_of to replace it"
            )
        record = CustomDerivative(key, vjp, names, indices, _site_of(vjp),
                                  takes_wrt="wrt" not in names and _takes_requested_wrt(vjp, names))
        registry.register_custom(key, record)
        clear_cache()
        return vjp

    return register


def differentiable_function(vjp: Callable) -> Callable:
    """Return a differentiable callable built from `vjp(*args) -> (value, pullback)`.

    Calling the result returns the value alone; compiled code that calls it
    uses `vjp` for its derivative, as for a function registered with
    `derivative_of`::

        square = pullback.differentiable_function(lambda x: (x * x, lambda g: 2 * x * g))
    """
    if not callable(vjp):
        raise ArgumentTypeError(
            f"differentiable_function needs a callable VJP, got {vjp!r}; pass a "
            "function vjp(*args) that returns (value, pullback)"
        )

    @functools.wraps(vjp)
    def function(*args, **kwargs):
        return vjp(*args, **kwargs)[0]

    function.__qualname__ = f"differentiable_function({_name_of(vjp)})"
    derivative_of(function)(vjp)
    return function
