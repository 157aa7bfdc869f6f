"""Run the compiler passes in order and cache the result per function and wrt."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import linecache
import math
import threading
import types

import gast
import numpy

from pullback.compiler import activity as activity_pass
from pullback.compiler import emit, naming, optimize, rules, specialize
from pullback.compiler.check import check_function
from pullback.compiler.classify import CHECKPOINT, classify, static_call
from pullback.compiler.normalize import normalize_function
from pullback.compiler.parse import ParsedFunction, parse_function, unwrap_function
from pullback.compiler.reverse import (
    Aliases,
    ReverseBuilder,
    flatten,
    is_arithmetic_only,
    name,
)
from pullback.errors import DifferentiationError, WrtError
from pullback.runtime import markers, registry


@dataclasses.dataclass
class CompiledVJP:
    """A compiled VJP and what the API needs to call and describe it."""

    function: types.FunctionType
    params: tuple[str, ...]
    wrt: tuple[str, ...]
    vjp: types.FunctionType
    source: str
    filename: str
    # Parameter -> message, for differentiation arguments whose derivative
    # is statically zero; the API decides whether to warn from their values.
    zero_derivatives: dict[str, str]
    # Position of each `wrt` parameter among `params`.
    wrt_positions: tuple[int, ...] = ()
    # Free name -> the object the compiled code was specialized for.
    resolved: dict = dataclasses.field(default_factory=dict)
    # The VJP for calls whose arguments are all Python numbers, when the
    # function does only arithmetic; None otherwise.
    numbers_vjp: types.FunctionType | None = None
    # (holder, key) of each free name the function reads that held a number
    # when compiled: the VJP for numbers is right only while each still does.
    # The holder is a closure cell (key None) or the globals dict.
    numbers_guard: tuple = ()
    # The function's `*name` parameter, or None. A `wrt` entry such as
    # "rest[1]" selects one item of its tuple.
    variadic: str | None = None
    # Whether the function makes a checkpointed call itself.
    checkpoints: bool = False
    # Value-and-gradient code specialized to argument shapes and dtypes, for
    # functions whose shapes never depend on values; see `specialize`.
    specializer: specialize.Specializer | None = None

    def __post_init__(self):
        self.wrt_positions = tuple(
            self.params.index(variadic_item(name)[0]) for name in self.wrt)

    def is_current(self) -> bool:
        """Return whether every free name still refers to the object compiled against.

        Rules are chosen when compiling, so rebinding a global such as
        `activation = np.tanh` to another function needs a new VJP. Called on
        every gradient call, so the checks are prepared once.
        """
        checks = self.__dict__.get("_checks")
        if checks is None:
            checks = self.__dict__["_checks"] = self._prepare_checks()
        for holder, key, value in checks:
            if key is None:  # A closure cell.
                try:
                    if holder.cell_contents is not value:
                        return False
                except ValueError:
                    return False
            elif holder.get(key, _DELETED) is not value:
                return False
        return True

    def _prepare_checks(self) -> list:
        code = getattr(self.function, "__code__", None)
        if code is None or not self.resolved:
            return []
        cells = dict(zip(code.co_freevars, self.function.__closure__ or (), strict=True))
        namespace = self.function.__globals__
        checks = []
        for free_name, value in self.resolved.items():
            if free_name in cells:
                checks.append((cells[free_name], None, value))
            elif free_name in namespace:
                checks.append((namespace, free_name, value))
        return checks


_lock = threading.RLock()

# A stand-in that `CompiledVJP.is_current` reads for a global deleted since compiling.
_DELETED = object()


def variadic_item(selector: str) -> tuple[str, int | None]:
    """Split a `wrt` entry into a parameter name and an index: "rest[1]" is ("rest", 1).

    A plain parameter name has the index None.
    """
    base, bracket, rest = selector.partition("[")
    if not bracket:
        return selector, None
    return base, int(rest.rstrip("]"))


def variadic_parameter(function) -> tuple[str | None, int]:
    """Return the name of a plain function's `*name` parameter and the positional count.

    The name is None when the function has no such parameter. Registered
    derivatives and checkpointed functions are looked through as in
    `parameter_names`.
    """
    function = markers.checkpointed_target(function) or function
    if registry.custom_derivative(function) is not None:
        return None, 0
    method = getattr(function, "__func__", None)
    if method is not None and registry.custom_derivative(method) is not None:
        return None, 0
    code = unwrap_function(function).__code__
    # A bound method's instance fills the first positional parameter.
    bound = 1 if isinstance(function, types.MethodType) else 0
    if not code.co_flags & inspect.CO_VARARGS:
        return None, code.co_argcount - bound
    name = code.co_varnames[code.co_argcount + code.co_kwonlyargcount]
    return name, code.co_argcount - bound


def parameter_names(function) -> tuple[str, ...]:
    """Return the parameters in signature order, a `*name` parameter included."""
    function = markers.checkpointed_target(function) or function
    record = registry.custom_derivative(function)
    if record is not None:
        return record.param_names
    method = getattr(function, "__func__", None)
    record = registry.custom_derivative(method) if method is not None else None
    if record is not None:
        return record.param_names[1:]  # A bound method: self is given.
    bound = 1 if isinstance(function, types.MethodType) else 0
    function = unwrap_function(function)
    code = function.__code__
    names = code.co_varnames
    positional = names[bound : code.co_argcount]
    keyword_only = names[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    variadic = ()
    if code.co_flags & inspect.CO_VARARGS:
        variadic = (names[code.co_argcount + code.co_kwonlyargcount],)
    return tuple(positional + variadic + keyword_only)


def resolve_wrt(function, wrt) -> tuple[str, ...]:
    """Turn `wrt` (None, a name, an index, or a tuple of them) into names.

    For a function with a `*rest` parameter, the name "rest" selects the
    whole tuple of extra positional arguments. An index counts the
    positional arguments as a call passes them, so an index past the named
    positional parameters selects one item of rest, written "rest[i]".
    """
    params = parameter_names(function)
    qualname = getattr(function, "__qualname__", repr(function))
    advertised = _advertised_parameters(function)
    if advertised is not None:
        wrt = _advertised_wrt(wrt, advertised)
    if wrt is None:
        code = getattr(getattr(function, "__func__", function), "__code__", None)
        if not params and code is not None and code.co_flags & inspect.CO_VARKEYWORDS:
            return ()  # The syntax check rejects **kwargs parameters.
        if not params:
            raise WrtError(f"{qualname} has no parameters to differentiate with respect to")
        return params
    items = wrt if isinstance(wrt, tuple | list) else (wrt,)
    if not items:
        raise WrtError(f"wrt=() selects no parameter of {qualname}; pass at least one")
    variadic, positional_count = variadic_parameter(function)
    names = []
    requested = []  # Each entry of `names` as the user wrote it.
    for item in items:
        written = item
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise WrtError(
                f"wrt items must be parameter names or indices, got {item!r}"
            )
        if isinstance(item, int) and variadic is not None:
            item = _variadic_index(item, qualname, variadic, positional_count, params)
        elif isinstance(item, int):
            if not -len(params) <= item < len(params):
                raise WrtError(
                    f"wrt index {item} is out of range: {qualname} has "
                    f"{len(params)} parameter{'' if len(params) == 1 else 's'} "
                    f"{params}"
                )
            item = params[item]
        elif item not in params:
            raise WrtError(
                f"{qualname} has no parameter {item!r}; its parameters are {params}"
            )
        if item in names:
            first = _describe_entry(requested[names.index(item)])
            second = _describe_entry(written)
            what = _describe_selector(item, variadic)
            if first == second:
                message = f"wrt lists {first} twice, and it selects {what}"
            else:
                message = f"wrt selects {what} twice, as {first} and as {second}"
            raise WrtError(f"{message}; list each parameter or item once")
        names.append(item)
        requested.append(written)
    if variadic in names and any(variadic_item(n)[1] is not None for n in names):
        raise WrtError(
            f"wrt selects both the parameter {variadic!r} of {qualname} and an "
            f"item of it; pass {variadic!r} for every item, or indices for some"
        )
    return tuple(names)


def _advertised_parameters(function) -> tuple[str, ...] | None:
    """Return the parameters a `*args` wrapper made by `functools.wraps` advertises.

    A wrapper `def wrapper(*args)` that copies `f`'s signature through
    `__wrapped__` is differentiated as a function of `f`'s parameters: item
    i of `args` stands for `f`'s i-th parameter. This holds only when every
    parameter of `f` is positional without a default, so each call passes
    all of them. Otherwise, and for any other function, return None.
    """
    if not isinstance(function, types.FunctionType) or not hasattr(function, "__wrapped__"):
        return None
    own = inspect.signature(function, follow_wrapped=False).parameters.values()
    if [p.kind for p in own] != [inspect.Parameter.VAR_POSITIONAL]:
        return None
    try:
        advertised = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY,
                  inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not advertised or any(p.kind not in positional or p.default is not p.empty
                             for p in advertised):
        return None
    return tuple(p.name for p in advertised)


def _advertised_wrt(wrt, advertised: tuple[str, ...]):
    """Translate `wrt` for an advertised signature into indices into `*args`."""
    if wrt is None:
        return tuple(range(len(advertised)))
    items = wrt if isinstance(wrt, tuple | list) else (wrt,)
    indices = tuple(
        advertised.index(item) if isinstance(item, str) and item in advertised else item
        for item in items
    )
    return indices if isinstance(wrt, tuple | list) else indices[0]


def _describe_selector(selector: str, variadic: str | None) -> str:
    """Describe a resolved wrt entry in the user's terms: "the 2nd item of *rest"."""
    name, index = variadic_item(selector)
    if index is None:
        return f"the parameter {name!r}"
    return f"the {_ordinal(index + 1)} item of *{variadic}"


def _describe_entry(entry) -> str:
    return f"index {entry}" if isinstance(entry, int) else repr(entry)


def _ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _variadic_index(index: int, qualname: str, variadic: str, positional_count: int,
                    params: tuple[str, ...]) -> str:
    """Resolve an index into the positional arguments of a function with *variadic."""
    if index < 0:
        raise WrtError(
            f"wrt index {index} is ambiguous: {qualname} takes *{variadic}, so "
            "how many positional arguments a call passes is not known when "
            f"compiling; count from the start, or pass the name {variadic!r}"
        )
    if index < positional_count:
        return params[index]
    return f"{variadic}[{index - positional_count}]"


def compile_vjp(function, wrt=None, single_use: bool = False) -> CompiledVJP:
    """Compile (or fetch from the cache) the VJP of `function` for `wrt`.

    With `single_use`, the pullback deletes each forward value after its last
    use, so it can run only once; see `registry.single_use_vjp_of`.
    """
    function = static_call(function) or function
    if _is_callable_object(function):
        # A layer or model differentiated directly: gradient(model)(x). The
        # class's method, bound here, as Python's call syntax looks it up,
        # so an instance attribute named __call__ does not count.
        function = types.MethodType(_class_call(function), function)
    # Differentiated directly, a checkpointed function has no caller whose
    # memory recomputation could save: its own VJP is the one to run.
    if isinstance(function, types.MethodType):
        # A bound method forwards attribute reads to its function, so the
        # checkpointed function is read from there and bound again.
        target = markers.checkpointed_target(function.__func__)
        if target is not None:
            function = types.MethodType(target, function.__self__)
    else:
        function = markers.checkpointed_target(function) or function
    record = registry.custom_derivative(function)
    if record is not None:
        return _registered(record, resolve_wrt(function, wrt))
    method = getattr(function, "__func__", None)
    record = registry.custom_derivative(method) if method is not None else None
    if record is not None:
        return _registered_method(record, function.__self__, resolve_wrt(function, wrt))
    if isinstance(function, types.MethodType):
        return _bound_method(function, resolve_wrt(function, wrt), single_use)
    rule = _rule_of(function)
    if isinstance(function, numpy.ufunc) and (
            rule is not None or _has_no_derivative(function)):
        # A ufunc passed as a value, as in Dense(3, 2, np.tanh): its rule, or
        # its zero derivative (np.floor), applies through a wrapper. By
        # default only its operands are differentiated, not `dtype`.
        if wrt is None:
            wrt = tuple(range(function.nin))
        function = _ufunc_wrapper(function)
    elif rule is not None:
        # NOTE: only ufuncs, whose parameters are uniform, get a wrapper.
        raise DifferentiationError(
            f"{rule.name} is differentiated here as a value (passed in, stored in "
            "an attribute or given to pullback directly), but pullback applies "
            "its derivative rule only where differentiated code calls it by name",
            hint=f"hint: call {rule.name} by name, or wrap it in a Python function "
            f"that does, as in def f(x): return {rule.name}(x)",
        )
    function = unwrap_function(function)
    return _compile_cached(function, resolve_wrt(function, wrt), single_use)


def compile_primal(function) -> CompiledVJP:
    """Compile `function` with respect to no parameter: its forward pass alone.

    The compiled forward pass deletes each local after its last use, where
    the function as written keeps every local until it returns. A
    checkpointed call runs it, so its intermediates never coexist. The VJP
    returns `(value, pullback)` like any other, and its pullback returns ().
    """
    function = markers.checkpointed_target(function) or function
    return _compile_cached(unwrap_function(function), (), single_use=True)


def _compile_cached(function: types.FunctionType, wrt_names: tuple[str, ...],
                    single_use: bool) -> CompiledVJP:
    """Compile the VJP of `function` for resolved `wrt_names`, or fetch it from the cache."""
    # The key names the function too: `functools.wraps` copies a function's
    # `__dict__`, and with it the cache, to its wrapper.
    key = (function, wrt_names, single_use)
    with _lock:
        cache = registry.function_cache(function)
        compiled = cache.get(key)
        if compiled is None or not compiled.is_current():
            parameters = tuple(dict.fromkeys(variadic_item(n)[0] for n in wrt_names))
            if parameters == wrt_names:
                compiled = _compile(function, wrt_names, single_use)
            else:
                compiled = _select_items(_compile_cached(function, parameters, single_use),
                                         wrt_names)
            cache[key] = compiled
        return compiled


def _class_call(value):
    """Return `__call__` as `value`'s class defines it, or None."""
    # Read from the class dictionaries: builtin types define __call__ as a
    # slot wrapper, which is no Python function.
    return next((base.__dict__["__call__"] for base in type(value).__mro__
                 if "__call__" in base.__dict__), None)


def _is_callable_object(value) -> bool:
    """Return whether `value` is an instance whose class defines `__call__` in Python."""
    return (isinstance(_class_call(value), types.FunctionType)
            and not isinstance(value, types.FunctionType | types.MethodType | type))


def _has_no_derivative(function) -> bool:
    try:
        return function in rules.NON_DIFFERENTIABLE_FUNCTIONS
    except TypeError:  # An unhashable callable.
        return False


def _rule_of(function):
    try:
        return rules.FUNCTION_RULES.get(function)
    except TypeError:  # An unhashable callable.
        return None


_ufunc_wrappers: dict = {}


def _ufunc_wrapper(ufunc) -> types.FunctionType:
    """Return a Python function that calls `ufunc`, so its rule can differentiate it.

    Differentiated code that calls a ufunc through a variable or attribute
    finds out which function it is only when the call runs. The wrapper's
    source is registered in `linecache`, as generated code is.
    """
    wrapper = _ufunc_wrappers.get(ufunc)
    if wrapper is not None:
        return wrapper
    parameters = ", ".join(["x"] if ufunc.nin == 1 else
                           [f"x{i + 1}" for i in range(ufunc.nin)])
    filename = f"<pullback wrapper of numpy.{ufunc.__name__}>"
    # NOTE: the wrapper takes the operands and `dtype=` only. A call through a
    # variable with another keyword (`out=`, `where=`) raises TypeError, so
    # call the ufunc by name there.
    text = (f"def {ufunc.__name__}({parameters}, *, dtype=None):\n"
            f"    return numpy.{ufunc.__name__}({parameters}, dtype=dtype)\n")
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    namespace = {"numpy": numpy}
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102
    wrapper = _ufunc_wrappers[ufunc] = namespace[ufunc.__name__]
    return wrapper


def _bound_method(method: types.MethodType, wrt_names: tuple[str, ...],
                  single_use: bool) -> CompiledVJP:
    """Compile the VJP of a bound method: its function's VJP with the instance bound.

    The instance is a constant, as it is where differentiated code calls a
    method of a global object, so the parameters and `wrt` leave it out.
    To differentiate with respect to the object, pass it as an argument.
    """
    function = unwrap_function(method)
    # Items of a *name parameter are selected after binding, so that wrt
    # indices and argument counts leave the instance out.
    parameters = tuple(dict.fromkeys(variadic_item(n)[0] for n in wrt_names))
    compiled = _compile_cached(function, parameters, single_use)
    numbers_vjp = compiled.numbers_vjp
    if numbers_vjp is not None:
        numbers_vjp = registry.bind_instance(numbers_vjp, method)
    instance_name = compiled.params[0]
    note = (
        f"# {method.__qualname__} is bound to a {type(method.__self__).__name__}, "
        f"which is passed as {instance_name} and is not differentiated.\n"
    )
    bound = dataclasses.replace(
        compiled, function=method, params=compiled.params[1:],
        vjp=registry.bind_instance(compiled.vjp, method), numbers_vjp=numbers_vjp,
        source=note + compiled.source, specializer=None,
    )
    if parameters != wrt_names:
        bound = _select_items(bound, wrt_names)
    return bound


def _select_items(compiled: CompiledVJP, selectors: tuple[str, ...]) -> CompiledVJP:
    """Wrap a VJP so its pullback returns items of the `*name` parameter's cotangent.

    `compiled` differentiates whole parameters. Each selector "rest[i]" picks
    item i of the cotangent of rest, and each plain name its parameter's
    cotangent.
    """
    parts = [variadic_item(selector) for selector in selectors]
    slots = [compiled.wrt.index(name) for name, _ in parts]
    positional_count = compiled.params.index(compiled.variadic)
    qualname = compiled.function.__qualname__
    variadic = compiled.variadic
    base_vjp = compiled.vjp

    def selected_vjp(*args, **kwargs):
        passed = len(args)
        for selector, (_, index) in zip(selectors, parts, strict=True):
            if index is not None and positional_count + index >= passed:
                raise WrtError(
                    f"wrt index {positional_count + index} selects "
                    f"{_describe_selector(selector, variadic)} of {qualname}, but "
                    f"the call passes {passed} positional arguments; pass more "
                    "arguments or choose a smaller index"
                )
        value, pullback = base_vjp(*args, **kwargs)

        def selected_pullback(cotangent):
            cotangents = pullback(cotangent)
            return tuple(
                cotangents[slot] if index is None else cotangents[slot][index]
                for slot, (_, index) in zip(slots, parts, strict=True)
            )

        return value, selected_pullback

    note = (
        f"# wrt {', '.join(selectors)}: {variadic}[i] is item i of the cotangent "
        f"of *{variadic}, which the pullback below returns whole.\n"
    )
    return dataclasses.replace(compiled, wrt=selectors, vjp=selected_vjp,
                               source=note + compiled.source, specializer=None)


def _registered(record, wrt: tuple[str, ...]) -> CompiledVJP:
    """Wrap a registered derivative in the compiled-VJP interface."""
    source = (
        f"# {record.name} has a registered derivative ({record.site}); "
        "pullback calls it instead of generating code.\n"
    )
    covered = [record.param_names[i] for i in record.wrt]
    stops = {
        name: f"{record.name} has no derivative with respect to {name!r}: its "
        f"registered derivative ({record.site}) covers {', '.join(covered)}."
        for name in wrt
        if name not in covered
    }
    return CompiledVJP(record.function, record.param_names, wrt,
                       record.vjp_for(wrt), source, record.site, stops)


def _registered_method(record, instance, wrt: tuple[str, ...]) -> CompiledVJP:
    """Wrap the registered derivative of a method, bound to `instance`."""
    compiled = _registered(record, wrt)
    compiled.params = record.param_names[1:]
    compiled.vjp = record.bound_vjp_for(instance, wrt)
    compiled.wrt_positions = tuple(compiled.params.index(name) for name in wrt)
    return compiled


def clear_cache() -> None:
    with _lock:
        registry.forget_compiled()


def _module_alias(parsed: ParsedFunction, module, local_names: set[str]):
    """Return the user's name for `module` if it has one, else None."""
    for identifier, value in parsed.free_values.items():
        if value is module and identifier not in local_names:
            return identifier
    preferred = {"numpy": "np", "math": "math"}.get(module.__name__)
    namespace = parsed.function.__globals__
    if preferred and namespace.get(preferred) is module and preferred not in local_names:
        return preferred
    return None


def _aliases(parsed: ParsedFunction, runtime: str, local_names: set[str]) -> Aliases:
    def expression(module, attribute):
        alias = _module_alias(parsed, module, local_names)
        if alias is not None:
            return name(alias)
        return gast.Attribute(value=name(runtime), attr=attribute, ctx=gast.Load())

    return Aliases(runtime, expression(numpy, "np"), expression(math, "math"))


def _compile(function: types.FunctionType, wrt: tuple[str, ...],
             single_use: bool = False) -> CompiledVJP:
    import pullback.runtime as runtime_module

    parsed = parse_function(function)
    check_function(parsed)

    local_names = naming.assigned_names(parsed.node)
    taken = (naming.names_in(parsed.node) | set(function.__globals__)
             | set(parsed.free_values))
    runtime = naming.runtime_alias(taken)
    namer = naming.Namer(taken | {runtime})
    aliases = _aliases(parsed, runtime, local_names)

    normalized = normalize_function(parsed, namer, runtime)
    block, resolved = classify(normalized)
    for module, alias in ((numpy, aliases.numpy), (math, aliases.math)):
        if isinstance(alias, gast.Name):
            # Generated code may reach NumPy through a global `np` that the
            # function itself never reads; rebinding it must recompile too.
            resolved.setdefault(alias.id, module)
    activity = activity_pass.analyze(block, normalized.params, list(wrt), normalized.result)
    activity_pass.check_unsupported(block, activity, parsed)

    numbers_namer = copy.deepcopy(namer)
    vjp_node = _build_vjp(normalized, block, activity, wrt, aliases, scalars=False,
                          single_use=single_use)
    source = _header(parsed, wrt, single_use) + emit.to_source(vjp_node)
    vjp, filename = emit.build_function(
        source, vjp_node.name, runtime, runtime_module, function,
        parsed.closure_names, f"{parsed.name}_vjp",
    )
    numbers_vjp = None
    variadic = parsed.node.args.vararg
    # Only the API calls the VJP for numbers. Arguments that fill a *name
    # parameter do not line up with the parameters, which the API's path for
    # numbers relies on.
    guard = _numbers_guard(function)
    if (is_arithmetic_only(block) and variadic is None and wrt
            and guard is not None):
        # A second VJP for arguments that are all Python numbers: nothing
        # broadcasts there, so it calls no runtime helper per operation.
        normalized.namer = numbers_namer
        numbers_node = _build_vjp(normalized, block, activity, wrt, aliases, scalars=True)
        numbers_source = emit.to_source(numbers_node)
        numbers_vjp, _ = emit.build_function(
            numbers_source, numbers_node.name, runtime, runtime_module, function,
            parsed.closure_names, f"{parsed.name}_vjp_for_numbers",
        )
        source += (
            "\n\n# The same VJP for arguments that are all Python numbers, where "
            "nothing broadcasts:\n" + numbers_source
        )
    zero = _zero_derivative_messages(parsed, activity, wrt)
    compiled = CompiledVJP(function, tuple(normalized.params), wrt, vjp, source,
                           filename, zero)
    compiled.variadic = variadic.id if variadic is not None else None
    compiled.numbers_guard = guard or ()
    compiled.numbers_vjp = numbers_vjp
    compiled.resolved = resolved
    compiled.checkpoints = any(item.kind == CHECKPOINT for item in flatten(block))
    if (not single_use and wrt and variadic is None and not zero
            and specialize.is_specializable(block, normalized.params)):
        compiled.specializer = _specializer(vjp_node, parsed, runtime, aliases, compiled)
    return compiled


def _specializer(vjp_node, parsed: ParsedFunction, runtime: str, aliases: Aliases,
                 compiled: CompiledVJP) -> specialize.Specializer | None:
    """Return a specializer of `compiled`, or None if its VJP is not straight-line."""
    import pullback.runtime as runtime_module

    fused = specialize.fuse(vjp_node, runtime)
    if fused is None:
        return None

    def build(tree, runtime_object, constants):
        source = emit.to_source(tree)
        built, _ = emit.build_function(
            source, tree.name, runtime, runtime_object or runtime_module,
            parsed.function, parsed.closure_names, tree.name, constants,
        )
        return built

    return specialize.Specializer(fused, build, runtime, aliases.numpy,
                                  compiled.params, compiled.wrt_positions)


# Free values that arithmetic-only code may read without computing arrays.
_NUMBER_VALUE_TYPES = (int, float, complex, bool, numpy.number, numpy.bool_)
_CODE_VALUE_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                     type, numpy.ufunc, types.MethodType)


def _numbers_guard(function) -> tuple | None:
    """Return the free names to check before the VJP for numbers runs, or None.

    Given numbers, arithmetic-only code computes numbers unless a free name
    refers to an array (`x * W` with a global `W`). The VJP for numbers does
    not unbroadcast, so it would be wrong there. None means a free name
    refers to such a value now, so no VJP for numbers is built. Otherwise the
    names bound to numbers are returned, because they may be rebound to
    arrays later.
    """
    code = function.__code__
    cells = dict(zip(code.co_freevars, function.__closure__ or (), strict=True))
    namespace = function.__globals__
    guard = []
    for free_name in (*code.co_freevars, *code.co_names):
        if free_name in cells:
            holder, key = cells[free_name], None
            try:
                value = holder.cell_contents
            except ValueError:  # An empty cell: the name is not bound yet.
                continue
        elif free_name in namespace:
            holder, key = namespace, free_name
            value = namespace[free_name]
        else:
            continue  # A builtin, or an attribute name in co_names.
        if isinstance(value, _NUMBER_VALUE_TYPES):
            guard.append((holder, key))
        elif not isinstance(value, _CODE_VALUE_TYPES) and value is not None:
            return None
    return tuple(guard)


def _build_vjp(normalized, block, activity, wrt, aliases, scalars: bool,
               single_use: bool = False):
    builder = ReverseBuilder(normalized, block, activity, list(wrt), aliases,
                             scalars=scalars)
    vjp_node = builder.build()
    pullback_node = next(s for s in vjp_node.body if isinstance(s, gast.FunctionDef))
    optimize.optimize_pullback(pullback_node)
    if not scalars:
        optimize.fold_mean_adjoints_into_products(pullback_node, aliases.runtime)
        # Numbers are immutable: the VJP for numbers has no array to reuse.
        optimize.overwrite_dead_cotangents(pullback_node, aliases.runtime)
        optimize.write_arithmetic_into_dead_cotangents(pullback_node, aliases.runtime)
    if not scalars:
        optimize.save_shapes_only(vjp_node, pullback_node, aliases.runtime)
    captured = optimize.forward_names(vjp_node) if single_use else set()
    optimize.release_dead_locals(pullback_node, captured)
    optimize.release_dead_forward_locals(vjp_node)
    vjp_node.body = emit.drop_orphan_comments(vjp_node.body)
    return vjp_node


def _header(parsed: ParsedFunction, wrt: tuple[str, ...], single_use: bool = False) -> str:
    line = parsed.node.lineno
    where = f"{parsed.function.__qualname__} ({parsed.filename}:{line})"
    if not wrt:
        return f"# forward pass of {where}, which frees each local after its last use\n"
    kind = "single-use VJP" if single_use else "VJP"
    return f"# {kind} of {where}, with respect to {', '.join(wrt)}\n"


def _zero_derivative_messages(parsed, activity, wrt) -> dict[str, str]:
    messages = {}
    where = f"{parsed.filename}:{parsed.node.lineno}"
    for param in wrt:
        if activity.is_active(param) or param in activity.explicitly_stopped:
            continue
        cuts = activity.implicit_cuts.get(param)
        qualname = parsed.function.__qualname__
        if cuts:
            places = "; ".join(f"line {line}: {what}" for line, what in cuts)
            messages[param] = (
                f"the derivative of {qualname} ({where}) with respect to "
                f"{param!r} is zero: every path from {param!r} to the result "
                f"passes through an operation whose derivative is zero ({places}). "
                f"If that is intended, wrap those uses in pullback.no_derivative(...)."
            )
        else:
            messages[param] = (
                f"the derivative of {qualname} ({where}) with respect to "
                f"{param!r} is zero: the result does not depend on {param!r}. "
                f"If that is intended, wrap its uses in pullback.no_derivative(...) "
                f"or leave it out of wrt."
            )
    return messages


def signature(function) -> inspect.Signature:
    return inspect.signature(unwrap_function(function))
