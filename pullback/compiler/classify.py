"""Describe each normalized statement as one operation with known derivative.

Activity analysis and the reverse pass both read these descriptions, so the
question "which inputs of this statement carry a derivative, and how" is
answered in one place.
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import types

import gast
import numpy as np

from pullback.compiler import rules
from pullback.compiler.normalize import NormalizedFunction, hashable, source_line_of
from pullback.compiler.rules.unsupported import library_name
from pullback.errors import DifferentiationError, InternalError, UnsupportedSyntaxError
from pullback.runtime import markers, registry

# Operation kinds.
RULE = "rule"  # A rule-table operation: operator, library call, array method.
USER_CALL = "user call"  # A call to a Python function, through its own VJP.
COPY = "copy"  # t = x
PACK = "pack"  # t = (a, b) or t = [a, b]
UNPACK = "unpack"  # a, b = t
SUBSCRIPT = "subscript"  # t = x[index]
CHECKPOINT = "checkpoint"  # A checkpointed call: recomputed in the pullback.
ATTRIBUTE = "attribute"  # t = obj.name, an attribute of a user object.
USER_METHOD = "user method"  # t = obj.name(...), a method of a user object.
NO_DERIVATIVE = "no derivative"  # The result carries no derivative.
EFFECT = "effect"  # A statement kept for its effect: assert, raise, bare call.


@dataclasses.dataclass
class Operation:
    statement: object
    kind: str
    targets: list[str]
    # Differentiable inputs: (role, variable name). The role is a rule
    # parameter name, a position in a display or call, or "value".
    inputs: list[tuple[object, str]] = dataclasses.field(default_factory=list)
    rule: rules.Rule | None = None
    # Rule parameter -> the AST of its argument (or of its default).
    bindings: dict = dataclasses.field(default_factory=dict)
    callee: object = None
    # For a user call: the callee's parameter index of each input role.
    # For NO_DERIVATIVE: why the derivative stops ("constant" or "cut") and
    # what stopped it, for zero-derivative diagnostics.
    stop_kind: str | None = None
    stop_name: str = ""
    # Names read without derivative (indices, conditions), for liveness.
    reads: list[str] = dataclasses.field(default_factory=list)
    # For user and checkpointed calls: the callee's parameter names; input
    # roles are positions in this tuple. An argument bound to a `*name`
    # parameter has the role (position of that parameter, index in its tuple).
    parameters: tuple[str, ...] = ()
    # For a user call: how many arguments the call passes to the callee's
    # `*name` parameter.
    variadic_count: int = 0
    # For a user call with a starred argument, `f(*xs, k=v)`: input role 0 is
    # the sequence xs and role i > 0 the keyword argument keywords[i - 1].
    starred: bool = False
    keywords: tuple[str, ...] = ()
    # For a call to a function whose derivative is registered for some
    # parameters only: the variables passed to the others, which get no
    # derivative, and what to say about that in a zero-derivative warning.
    uncovered: tuple[str, ...] = ()
    uncovered_reason: str = ""

    @property
    def lineno(self) -> int | None:
        return source_line_of(self.statement)


@dataclasses.dataclass
class Loop:
    """A normalized for or while loop and the operations of its body."""

    statement: object
    body: list
    # Names bound at the start of each iteration and again by back-edge copies.
    headers: set[str]

    @property
    def lineno(self) -> int | None:
        return source_line_of(self.statement)


@dataclasses.dataclass
class Branch:
    """A normalized if statement: its condition and both operation lists."""

    statement: object
    condition: object
    body: list
    orelse: list

    @property
    def lineno(self) -> int | None:
        return source_line_of(self.statement)


def _names(node) -> list[str]:
    return [n.id for n in gast.walk(node) if isinstance(n, gast.Name)]


def _input(node, role):
    if isinstance(node, gast.Name):
        return [(role, node.id)]
    return []


class Classifier:
    def __init__(self, normalized: NormalizedFunction):
        self.normalized = normalized
        self.parsed = normalized.parsed
        # Free name -> the object compile-time dispatch relied on.
        self.resolved: dict[str, object] = {}

    def block(self, statements: list) -> list:
        return [self.statement(s) for s in statements]

    def statement(self, node):
        if isinstance(node, gast.If) and getattr(node, "pb_exit_check", False):
            return Operation(node, EFFECT, [], reads=_names(node.test))
        if isinstance(node, gast.For | gast.While):
            return Loop(node, self.block(node.body), set(node.pb_headers))
        if isinstance(node, gast.If):
            return Branch(node, node.test, self.block(node.body), self.block(node.orelse))
        if isinstance(node, gast.Assign):
            target = node.targets[0]
            if isinstance(target, gast.Tuple):
                names = [element.id for element in target.elts]
                return Operation(node, UNPACK, names, _input(node.value, "value"))
            return self.assignment(node, target.id, node.value)
        if isinstance(node, gast.Expr):
            return Operation(node, EFFECT, [], reads=_names(node))
        if isinstance(node, gast.Assert | gast.Raise | gast.Pass):
            return Operation(node, EFFECT, [], reads=_names(node))
        raise InternalError(f"classify met a {type(node).__name__} statement")

    def location(self, node):
        return self.parsed.location(node)

    def assignment(self, statement, target: str, value) -> Operation:
        targets = [target]
        if isinstance(value, gast.Name):
            return Operation(statement, COPY, targets, [("value", value.id)])
        if isinstance(value, gast.Constant | gast.UnaryOp) and not _names(value):
            return Operation(statement, NO_DERIVATIVE, targets, stop_kind=rules.CONSTANT)
        if isinstance(value, gast.BinOp | gast.UnaryOp):
            return self.operator(statement, targets, value)
        if isinstance(value, gast.Compare):
            operation = self.stopped(statement, targets, value, rules.CUT, "comparison")
            return operation
        if isinstance(value, gast.Tuple | gast.List):
            inputs = [(i, e.id) for i, e in enumerate(value.elts)
                      if isinstance(e, gast.Name)]
            return Operation(statement, PACK, targets, inputs)
        if isinstance(value, gast.Subscript):
            reads = [n for n in _names(value.slice)]
            return Operation(statement, SUBSCRIPT, targets,
                             _input(value.value, "value"), reads=reads)
        if isinstance(value, gast.Attribute):
            return self.attribute(statement, targets, value)
        if isinstance(value, gast.Call):
            return self.call(statement, targets, value)
        if isinstance(value, gast.JoinedStr):
            return self.stopped(statement, targets, value, rules.CONSTANT, "f-string")
        if isinstance(value, gast.Lambda):
            # A function value, such as a with_derivative hook: no derivative
            # flows through it. Calling one in differentiated code is rejected
            # when the call is classified.
            return self.stopped(statement, targets, value, rules.CONSTANT, "lambda")
        raise InternalError(f"classify met a {type(value).__name__} expression")

    def stopped(self, statement, targets, value, kind, name) -> Operation:
        return Operation(statement, NO_DERIVATIVE, targets, stop_kind=kind,
                         stop_name=name, reads=_names(value))

    # Operators.

    def operator(self, statement, targets, value) -> Operation:
        op_name = type(value.op).__name__
        if isinstance(value, gast.BinOp):
            operands = {"x": value.left, "y": value.right}
        else:
            operands = {"x": value.operand}
        rule = rules.OPERATOR_RULES.get(op_name)
        if rule is None:
            kind = rules.NON_DIFFERENTIABLE_OPERATORS.get(op_name)
            if kind is None:
                raise InternalError(f"operator {op_name} has neither rule nor mark")
            return self.stopped(statement, targets, value, kind,
                                f"the operator {_OPERATOR_SYMBOLS.get(op_name, op_name)}")
        inputs = [(role, node.id) for role, node in operands.items()
                  if isinstance(node, gast.Name) and role in rule.adjoints]
        return Operation(statement, RULE, targets, inputs, rule, operands)

    # Attributes.

    def attribute(self, statement, targets, value) -> Operation:
        static = self.resolve(value)
        if static is not _UNRESOLVED:
            # A module constant, or a function used as a value (a hook, say):
            # either way no derivative flows through it.
            return self.stopped(statement, targets, value, rules.CONSTANT,
                                _source(value))
        rule = rules.ATTRIBUTE_RULES.get(value.attr)
        if rule is not None:
            return Operation(statement, RULE, targets, _input(value.value, "self"),
                             rule, {"self": value.value})
        kind = rules.NON_DIFFERENTIABLE_ATTRIBUTES.get(value.attr)
        if kind is not None:
            return self.stopped(statement, targets, value, kind, f".{value.attr}")
        # Any other attribute is a field of a user object, such as self.w.
        return Operation(statement, ATTRIBUTE, targets, _input(value.value, "value"),
                         reads=_names(value))

    # Calls.

    def resolve(self, node):
        """Return the object a free name or attribute path refers to now."""
        path = []
        while isinstance(node, gast.Attribute):
            path.append(node.attr)
            node = node.value
        if not isinstance(node, gast.Name):
            return _UNRESOLVED
        values = self.parsed.free_values
        if node.id == self.normalized.runtime_alias:
            import pullback.runtime

            value = pullback.runtime
        elif node.id in self.normalized.versions:
            return _UNRESOLVED
        elif node.id in values:
            value = values[node.id]
            self.resolved[node.id] = value
        elif hasattr(builtins, node.id) and not _is_user_name(node):
            value = getattr(builtins, node.id)  # A builtin the normalizer called.
        else:
            return _UNRESOLVED
        for attr in reversed(path):
            try:
                value = getattr(value, attr)
            except AttributeError:
                raise DifferentiationError(
                    f"{_source(node)} has no attribute {attr!r}",
                    self.location(node),
                    "hint: check the name",
                ) from None
        return value

    def reject_starred(self, call, callee_description: str) -> None:
        """Raise for `*xs` in a call that only a Python function's VJP can take."""
        starred = next((a for a in call.args if isinstance(a, gast.Starred)), None)
        if starred is None:
            return
        raise DifferentiationError(
            f"a starred argument in a call to {callee_description} is not supported in "
            "differentiated code",
            self.location(starred),
            "hint: pass each argument explicitly, or call a Python function "
            "defined with a *name parameter",
        )

    def call(self, statement, targets, value) -> Operation:
        callee_node = value.func
        callee = self.resolve(callee_node)
        callee = static_call(callee) or callee
        if (isinstance(callee, types.BuiltinMethodType)
                and isinstance(getattr(callee, "__self__", None), np.ndarray)
                and isinstance(callee_node, gast.Attribute)):
            # A method of a global or closure array, `W.dot(x)`: the same
            # array-method rules as for a local array apply.
            return self.method_call(statement, targets, value)
        if callee is _UNRESOLVED or _is_callable_object(callee):
            self.reject_starred(value, f"{_source(callee_node)}, a method or callable "
                                       "object,")
            if isinstance(callee_node, gast.Attribute) and callee is _UNRESOLVED:
                return self.method_call(statement, targets, value)
            if isinstance(callee_node, gast.Name | gast.Attribute):
                # A callable value, such as a layer or a function passed in:
                # differentiated through its __call__ when the call runs.
                method = gast.Attribute(value=callee_node, attr="__call__",
                                        ctx=gast.Load())
                as_method = gast.Call(func=method, args=value.args,
                                      keywords=value.keywords)
                gast.copy_location(as_method, value)
                operation = self.method_call(statement, targets, as_method)
                operation.call_value = True
                return operation
            raise DifferentiationError(
                f"cannot tell at compile time which function {_source(callee_node)} is",
                self.location(value),
                "hint: call a module-level function, or one from NumPy or math, "
                "directly by name",
            )
        if inspect.iscoroutinefunction(callee) or inspect.isasyncgenfunction(callee):
            # The call returns a coroutine or an async generator whatever the
            # arguments, and differentiated code cannot await it.
            raise UnsupportedSyntaxError(
                f"a call to the async function {_display_name(callee)} is not "
                "supported in differentiated code",
                self.location(value),
                "hint: call a plain function: define it with def instead of "
                "async def, or await it outside the differentiated function "
                "and pass in the result",
            )
        keyable = hashable(callee)
        record = registry.custom_derivative(callee)
        if record is not None:
            return self.user_call(statement, targets, value, callee,
                                  parameters=record.param_names, covered=record.wrt)
        target = markers.checkpointed_target(callee)
        if target is not None:
            self.reject_starred(value, f"the checkpointed function {_display_name(callee)}")
            operation = self.user_call(statement, targets, value, target)
            operation.kind = CHECKPOINT
            operation.callee = callee
            return operation
        if callee is markers.no_derivative:
            return self.stopped(statement, targets, value, EXPLICIT,
                                "pullback.no_derivative()")
        if markers.is_no_derivative_function(callee):
            # The decorator stops the derivative as explicitly as the call does,
            # so it silences the zero-derivative warning too.
            return self.stopped(statement, targets, value, EXPLICIT,
                                f"@no_derivative function {_display_name(callee)}()")
        rule = rules.FUNCTION_RULES.get(callee) if keyable else None
        if rule is not None:
            self.reject_starred(value, rule.name)
            return self.rule_call(statement, targets, value, rule)
        kind = rules.NON_DIFFERENTIABLE_FUNCTIONS.get(callee) if hashable(callee) else None
        if kind is not None:
            return self.stopped(statement, targets, value, kind,
                                f"{_display_name(callee)}()")
        if isinstance(callee, type) and not _names(value):
            return self.stopped(statement, targets, value, rules.CONSTANT,
                                f"{callee.__name__}()")
        if isinstance(callee, types.FunctionType | types.MethodType):
            if _is_library(callee):
                return self.unsupported(statement, targets, value, callee)
            if isinstance(callee, types.MethodType):
                self.reject_starred(value, f"the method {_display_name(callee)}")
            return self.user_call(statement, targets, value, callee)
        return self.unsupported(statement, targets, value, callee)

    def unsupported(self, statement, targets, value, callee) -> Operation:
        # A call on constants alone needs no derivative, whatever it calls.
        operation = self.stopped(statement, targets, value, rules.CONSTANT,
                                 f"{_display_name(callee)}()")
        operation.callee = callee
        operation.stop_kind = UNSUPPORTED
        return operation

    def rule_call(self, statement, targets, call, rule) -> Operation:
        bindings = self.bind(call, rule)
        return Operation(statement, RULE, targets, _rule_inputs(rule, bindings), rule,
                         bindings, reads=_names(call))

    def bind(self, call, rule, extra_first=None) -> dict:
        """Bind a call's arguments to a rule's parameters, defaults included."""
        args = ([extra_first] if extra_first is not None else []) + list(call.args)
        bindings = {}
        positional = [p for p in rule.params if not p.keyword_only and not p.variadic]
        variadic = next((p for p in rule.params if p.variadic), None)
        for param, arg in zip(positional, args, strict=False):
            bindings[param.name] = arg
        surplus = args[len(positional):]
        if surplus:
            if variadic is None:
                raise DifferentiationError(
                    f"{rule.name} takes at most {len(positional)} positional "
                    f"arguments, got {len(args)}",
                    self.location(call),
                    "hint: check the call against the function's signature",
                )
            bindings[variadic.name] = gast.Tuple(elts=surplus, ctx=gast.Load())
        names = {p.name for p in rule.params}
        for keyword in call.keywords:
            if keyword.arg in rule.rejected_keywords:
                raise DifferentiationError(
                    f"{rule.name}(..., {keyword.arg}=...) writes into an existing "
                    "array, which differentiated code does not support",
                    self.location(call),
                    f"hint: drop {keyword.arg}= and use the returned value",
                )
            if keyword.arg not in names:
                raise DifferentiationError(
                    f"{rule.name} has no parameter {keyword.arg!r} that pullback "
                    "knows how to differentiate",
                    self.location(call),
                    f"hint: its differentiable parameters are "
                    f"{', '.join(p.name for p in rule.params)}",
                )
            bindings[keyword.arg] = keyword.value
        for param in rule.params:
            if param.name in bindings:
                continue
            if param.default is None:
                raise DifferentiationError(
                    f"{rule.name} is missing its argument {param.name!r}",
                    self.location(call),
                    "hint: check the call against the function's signature",
                )
            bindings[param.name] = rules.core.parse_template(param.default)
        return bindings

    def is_instance_of_method(self, owner) -> bool:
        """Whether `owner` is the instance a method was called on, its `self`.

        `self.flatten(x)` calls the object's own method even where an array
        method has the same name.
        """
        parts = self.parsed.function.__qualname__.split(".")
        # `Model.__call__` is a method; `test.<locals>.total` is a local function.
        if len(parts) < 2 or parts[-2] == "<locals>" or not self.normalized.params:
            return False
        return isinstance(owner, gast.Name) and owner.id == self.normalized.params[0]

    def method_call(self, statement, targets, call) -> Operation:
        owner = call.func.value
        name = call.func.attr
        rule = rules.METHOD_RULES.get(name)
        if rule is not None and not self.is_instance_of_method(owner):
            bindings = self.bind(call, rule, extra_first=owner)
            return Operation(statement, RULE, targets, _rule_inputs(rule, bindings),
                             rule, bindings, reads=_names(call))
        kind = rules.NON_DIFFERENTIABLE_METHODS.get(name)
        if kind is not None:
            return self.stopped(statement, targets, call, kind, f".{name}()")
        # A method of a user object, differentiated through its function's
        # VJP when the call runs. Position 0 is the object.
        inputs = _input(owner, 0) + [
            (position + 1, node.id) for position, node in enumerate(call.args)
            if isinstance(node, gast.Name)
        ]
        operation = Operation(statement, USER_METHOD, targets, inputs, callee=name,
                              reads=_names(call))
        operation.keyword_reads = [k.value.id for k in call.keywords
                                   if isinstance(k.value, gast.Name)]
        return operation

    def user_call(self, statement, targets, call, callee, parameters=None,
                  covered=None) -> Operation:
        function = callee.__func__ if isinstance(callee, types.MethodType) else callee
        if parameters is not None:
            signature = _registered_signature(callee, parameters)
        else:
            try:
                signature = markers.call_signature(function)
            except (TypeError, ValueError):
                return self.unsupported(statement, targets, call, callee)
        if isinstance(callee, types.MethodType):
            self.require_instance_parameter(call, callee, signature)
        if any(isinstance(a, gast.Starred) for a in call.args):
            return self.starred_call(statement, targets, call, callee, signature)
        placeholders = list(range(len(call.args)))
        if isinstance(callee, types.MethodType):
            placeholders = [None] + placeholders
        keyword_values = {k.arg: ("keyword", k.arg) for k in call.keywords}
        try:
            bound = signature.bind(*placeholders, **keyword_values)
        except TypeError as error:
            raise DifferentiationError(
                f"the call to {_display_name(function)} does not match its "
                f"signature: {error}",
                self.location(call),
                "hint: check the call against the function's signature",
            ) from None
        inputs = []
        uncovered = []
        variadic_count = 0
        parameter_names = list(signature.parameters)
        for name, marker in bound.arguments.items():
            position = parameter_names.index(name)
            if covered is not None and position not in covered:
                uncovered.append(marker)
                continue
            kind = signature.parameters[name].kind
            if kind == inspect.Parameter.VAR_POSITIONAL:
                # A tuple of placeholders: the arguments the *name parameter takes.
                variadic_count = len(marker)
                inputs += [((position, index), call.args[argument].id)
                           for index, argument in enumerate(marker)
                           if isinstance(call.args[argument], gast.Name)]
                continue
            node = _marked_node(call, marker)
            if isinstance(node, gast.Name):
                inputs.append((position, node.id))
        operation = Operation(statement, USER_CALL, targets, inputs, callee=callee,
                              reads=_names(call), parameters=tuple(parameter_names),
                              variadic_count=variadic_count)
        if uncovered:
            operation.uncovered = tuple(_marked_names(call, uncovered))
            names = ", ".join(repr(parameter_names[p]) for p in sorted(covered))
            operation.uncovered_reason = (
                f"the derivative registered for {_display_name(function)}() covers "
                f"only {names}")
        return operation

    def require_instance_parameter(self, call, method, signature) -> None:
        """Raise unless a bound method's first parameter takes its instance by name."""
        first = next(iter(signature.parameters.values()), None)
        if first is not None and first.kind in (first.POSITIONAL_ONLY,
                                                first.POSITIONAL_OR_KEYWORD):
            return
        raise DifferentiationError(
            f"the method {_display_name(method)} has no named parameter for its "
            "instance, so Python passes the instance in its *args, where "
            "differentiated code cannot tell it from the arguments",
            self.location(call),
            "hint: name the first parameter, as in def method(self, *args)",
        )

    def starred_call(self, statement, targets, call, callee, signature) -> Operation:
        """Classify `f(*xs, k=v)`: xs is one input, whatever positions it fills."""
        keywords = tuple(k.arg for k in call.keywords)
        for keyword in call.keywords:
            parameter = signature.parameters.get(keyword.arg)
            if parameter is None or parameter.kind in (parameter.POSITIONAL_ONLY,
                                                       parameter.VAR_POSITIONAL):
                raise DifferentiationError(
                    f"{_display_name(callee)} has no keyword parameter {keyword.arg!r}",
                    self.location(call),
                    "hint: check the call against the function's signature",
                )
        sequence = call.args[0].value
        inputs = _input(sequence, 0) + [
            (index + 1, keyword.value.id) for index, keyword in enumerate(call.keywords)
            if isinstance(keyword.value, gast.Name)
        ]
        return Operation(statement, USER_CALL, targets, inputs, callee=callee,
                         reads=_names(call), parameters=tuple(signature.parameters),
                         starred=True, keywords=keywords)


UNSUPPORTED = "unsupported"
# The stop kind of an explicit `no_derivative(x)`.
EXPLICIT = "explicit"
_UNRESOLVED = object()

_OPERATOR_SYMBOLS = {
    "FloorDiv": "//", "Not": "not", "Invert": "~", "BitAnd": "&", "BitOr": "|",
    "BitXor": "^", "LShift": "<<", "RShift": ">>",
}


def _rule_inputs(rule, bindings: dict) -> list:
    """Differentiable inputs of a rule call: (parameter, name) pairs.

    Each element of a `*name` parameter is an input of its own, with the role
    (parameter, position), so its template reads `index`.
    """
    variadic = {param.name for param in rule.params if param.variadic}
    inputs = []
    for param in rule.differentiable_params():
        node = bindings.get(param)
        if param in variadic and isinstance(node, gast.Tuple):
            inputs += [((param, position), element.id)
                       for position, element in enumerate(node.elts)
                       if isinstance(element, gast.Name)]
        elif isinstance(node, gast.Name):
            inputs.append((param, node.id))
    return inputs


def _registered_signature(callee, parameters) -> inspect.Signature:
    """The signature calls to a registered function bind to, defaults included."""
    record = registry.custom_derivative(callee)
    for source in (callee, getattr(record, "vjp", None)):
        try:
            signature = inspect.signature(source)
        except (TypeError, ValueError):
            continue
        if tuple(signature.parameters) == tuple(parameters):
            return signature
    return inspect.Signature([
        inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters
    ])


def static_call(value):
    """Return what calling `value` runs when its class's `__call__` is static, or None.

    A staticmethod `__call__` is a plain function of the call's arguments,
    and a classmethod one is bound to the class, so neither involves the
    instance: the call is differentiated as a call of that function.
    """
    if isinstance(value, type | types.FunctionType | types.MethodType):
        return None
    call = inspect.getattr_static(type(value), "__call__", None)
    if isinstance(call, staticmethod):
        return call.__func__
    if isinstance(call, classmethod):
        return types.MethodType(call.__func__, type(value))
    return None


def _is_callable_object(value) -> bool:
    """Return whether `value` is an instance whose class defines __call__ in Python."""
    if isinstance(value, type | types.FunctionType | types.MethodType):
        return False
    call = inspect.getattr_static(type(value), "__call__", None)
    return isinstance(call, types.FunctionType) and registry.custom_derivative(value) is None


def _is_user_name(node) -> bool:
    return not getattr(node, "pb_normalized", False)



def _is_library(value) -> bool:
    return library_name(value) is not None


def _marked_names(call, markers: list) -> list[str]:
    """Return the variable names that `signature.bind` markers refer to in `call`."""
    nodes = [_marked_node(call, marker) for marker in markers]
    return [node.id for node in nodes if isinstance(node, gast.Name)]


def _marked_node(call, marker):
    """Return the argument node a `signature.bind` marker refers to, or None.

    A marker is a positional index, or ("keyword", name) for a keyword
    argument. Anything else, such as a default, refers to no node.
    """
    if isinstance(marker, int):
        return call.args[marker]
    if isinstance(marker, tuple) and marker and marker[0] == "keyword":
        return next(k.value for k in call.keywords if k.arg == marker[1])
    return None


def _display_name(callee) -> str:
    name = library_name(callee) if hashable(callee) else None
    if name:
        return name
    if isinstance(callee, str):
        return callee
    module = getattr(callee, "__module__", None)
    qualname = getattr(callee, "__qualname__", None) or getattr(
        callee, "__name__", repr(callee)
    )
    return f"{module}.{qualname}" if module not in (None, "builtins") else qualname


def _source(node) -> str:
    import ast

    return ast.unparse(gast.gast_to_ast(node))


def classify(normalized: NormalizedFunction) -> tuple[list, dict]:
    """Return the operations and branches of a normalized function's body.

    Also return the free names whose objects the classification relied on,
    such as `np` for a call to `np.sin`.
    """
    classifier = Classifier(normalized)
    return classifier.block(normalized.body), classifier.resolved


def display_name(callee) -> str:
    return _display_name(callee)
