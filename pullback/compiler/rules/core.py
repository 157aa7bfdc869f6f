"""The rule table and the template idiom every derivative rule is written in.

A rule maps a primal operation to one adjoint template per differentiable
parameter. A template is a Python expression that reads like the code it
emits. It may use these names:

- `g`: the cotangent of the operation's result;
- `ans`: the result itself;
- the operation's parameter names, bound to the call's arguments or, when the
  call omits them, to the parameter's default;
- `np` and `math`: the NumPy and math modules;
- `rt`: the runtime package `pullback.runtime`, for helpers such as
  `rt.unreduce`;
- `index`, in the template of a `*name` parameter only: the position of one
  extra positional argument in that tuple. Such a template returns the
  cotangent of that one argument, as `np.einsum`'s `*operands` does.

A parameter that takes a sequence of arrays (`np.concatenate`'s `arrays`)
gets a sequence of the same type, one cotangent per element.

For example, `ufunc(np.sin, x="g * np.cos(x)")` emits
`x_bar = y_bar * np.cos(x)` for `y = np.sin(x)`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools

import gast

from pullback.errors import InternalError


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    default: str | None  # Source text of the default, None when required.
    keyword_only: bool = False
    # A `*name` parameter: the call's extra positional arguments, as a tuple.
    variadic: bool = False


@dataclasses.dataclass(frozen=True)
class Rule:
    """Adjoint templates of one primal operation."""

    name: str
    params: tuple[Param, ...]
    adjoints: dict[str, str]
    # Contributions are summed back to their primal's shape (broadcasting ops).
    broadcasting: bool = False
    # Keyword arguments that would change the primal's meaning (`out=`).
    rejected_keywords: frozenset[str] = frozenset()
    # The result is a container (list, dict), not an array or number, so its
    # cotangents add with rt.add rather than +.
    structured: bool = False
    # Arithmetic on numbers and arrays (operators, ufuncs, math): its
    # differentiable operands are numbers or arrays too.
    arithmetic: bool = False

    def param_names(self) -> list[str]:
        return [param.name for param in self.params]

    def differentiable_params(self) -> list[str]:
        return [name for name in self.param_names() if name in self.adjoints]


# What a call or operator with no derivative does to the derivative.
#   "constant": its result never depends on the values of its inputs
#               (shapes, constructors such as zeros_like), so nothing is lost.
#   "cut":      piecewise constant (floor, sign, argmax, comparisons): its
#               derivative is zero almost everywhere, so a dependency is cut.
CONSTANT = "constant"
CUT = "cut"

# Rules keyed by the callable object (np.sin, math.exp, abs).
FUNCTION_RULES: dict[object, Rule] = {}
# Rules keyed by gast operator class name ("Add", "USub").
OPERATOR_RULES: dict[str, Rule] = {}
# Rules for array methods and attributes, keyed by name; the first parameter
# is the array itself and is called "self".
METHOD_RULES: dict[str, Rule] = {}
ATTRIBUTE_RULES: dict[str, Rule] = {}

# Callables, operators, methods and attributes without a derivative.
NON_DIFFERENTIABLE_FUNCTIONS: dict[object, str] = {}
NON_DIFFERENTIABLE_OPERATORS: dict[str, str] = {}
NON_DIFFERENTIABLE_METHODS: dict[str, str] = {}
NON_DIFFERENTIABLE_ATTRIBUTES: dict[str, str] = {}


def parse_signature(signature: str) -> tuple[Param, ...]:
    """Parse `"a, axis=None, *, keepdims=False"` into parameters."""
    tree = gast.parse(f"def _signature({signature}): pass")
    arguments = tree.body[0].args
    if arguments.kwarg is not None:
        raise InternalError(f"rule signature {signature!r} has **kwargs")
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(
        arguments.defaults
    )
    params = [
        Param(arg.id, None if default is None else _source(default))
        for arg, default in zip(positional, defaults, strict=True)
    ]
    if arguments.vararg is not None:
        params.append(Param(arguments.vararg.id, "()", variadic=True))
    for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        params.append(
            Param(arg.id, None if default is None else _source(default), True)
        )
    return tuple(params)


def _source(node) -> str:
    import ast

    return ast.unparse(gast.gast_to_ast(node))


TEMPLATE_GLOBALS = frozenset({"g", "ans", "np", "math", "rt"})


def _check_templates(name: str, params: tuple[Param, ...], adjoints: dict) -> None:
    names = {param.name for param in params}
    unknown = set(adjoints) - names
    if unknown:
        raise InternalError(
            f"rule {name} has templates for {sorted(unknown)}, "
            f"which are not among its parameters {sorted(names)}"
        )
    for param in params:
        # A default is inserted into templates as it is, so a name in it would
        # be looked up in the user's module.
        if param.default is not None and template_names(param.default):
            raise InternalError(
                f"rule {name}: the default of {param.name} reads names; "
                "write it as a literal"
            )
    variadic = {param.name for param in params if param.variadic}
    for param_name, template in adjoints.items():
        # Any other name would be looked up in the user's module when the
        # generated code runs.
        allowed = names | TEMPLATE_GLOBALS
        if param_name in variadic:
            allowed = allowed | {"index"}
        stray = template_names(template) - allowed
        if stray:
            raise InternalError(
                f"rule {name}: the template for {param_name} reads {sorted(stray)}, "
                f"which are neither parameters nor among {sorted(TEMPLATE_GLOBALS)}"
            )


def _qualified_name(function) -> str:
    module = getattr(function, "__module__", None) or ""
    if module.startswith("numpy"):
        module = "numpy" + module[len("numpy") :].replace("._core", "").replace(
            ".core", ""
        )
        if module.startswith("numpy.") and module.split(".")[1].startswith("_"):
            module = "numpy"
    name = getattr(function, "__qualname__", None) or function.__name__
    if isinstance(function, _ufunc_type()):
        module = "numpy"
    return f"{module}.{name}" if module else name


@functools.cache
def _ufunc_type():
    import numpy as np

    return np.ufunc


def defrule(
    function,
    signature: str,
    *,
    broadcasting: bool = False,
    rejected_keywords=("out",),
    structured: bool = False,
    **adjoints: str,
) -> Rule:
    """Register adjoint templates for a callable with the given signature."""
    params = parse_signature(signature)
    name = _qualified_name(function)
    _check_templates(name, params, adjoints)
    # math functions take and return numbers.
    arithmetic = getattr(function, "__module__", None) == "math"
    rule = Rule(name, params, adjoints, broadcasting, frozenset(rejected_keywords),
                structured, arithmetic)
    FUNCTION_RULES[function] = rule
    return rule


def ufunc(function, **adjoints: str) -> Rule:
    """Register an elementwise NumPy ufunc: parameters `x` or `x1, x2`."""
    if function.nin == 1:
        signature = "x, /, *, dtype=None"
    else:
        names = ", ".join(f"x{i + 1}" for i in range(function.nin))
        signature = f"{names}, /, *, dtype=None"
    rule = defrule(
        function,
        signature,
        broadcasting=function.nin > 1,
        rejected_keywords=("out", "where"),
        **adjoints,
    )
    # A generalized ufunc such as np.matmul takes arrays only, so it never
    # runs in the VJP for numbers.
    rule = dataclasses.replace(rule, arithmetic=function.signature is None)
    FUNCTION_RULES[function] = rule
    return rule


def operator(
    op_name: str, signature: str, *, broadcasting: bool | None = None,
    arithmetic: bool = True, **adjoints: str
) -> Rule:
    """Register a Python operator by its gast class name ("Add", "USub").

    Binary operators broadcast unless `broadcasting=False` declares that their
    templates already return each operand's shape. `arithmetic=False` marks
    an operator that Python numbers do not support, such as `@`.
    """
    params = parse_signature(signature)
    _check_templates(op_name, params, adjoints)
    if broadcasting is None:
        broadcasting = len(params) > 1
    rule = Rule(f"operator {op_name}", params, adjoints, broadcasting=broadcasting,
                arithmetic=arithmetic)
    OPERATOR_RULES[op_name] = rule
    return rule


def method(
    name: str, signature: str, *, broadcasting: bool = False, **adjoints: str
) -> Rule:
    """Register an array method; the signature starts with `self`."""
    params = parse_signature(signature)
    _check_templates(f"ndarray.{name}", params, adjoints)
    rule = Rule(
        f"ndarray.{name}",
        params,
        adjoints,
        broadcasting=broadcasting,
        rejected_keywords=frozenset({"out"}),
    )
    METHOD_RULES[name] = rule
    return rule


def attribute(name: str, **adjoints: str) -> Rule:
    """Register an array attribute such as `.T`; its one parameter is `self`."""
    params = parse_signature("self")
    _check_templates(f"ndarray.{name}", params, adjoints)
    rule = Rule(f"ndarray.{name}", params, adjoints)
    ATTRIBUTE_RULES[name] = rule
    return rule


def nondifferentiable(*functions, kind: str = CUT) -> None:
    """Mark callables whose results carry no derivative."""
    for function in functions:
        NON_DIFFERENTIABLE_FUNCTIONS[function] = kind


@functools.cache
def parse_template(template: str):
    """Parse a template expression once; callers get a deep copy."""
    try:
        module = gast.parse(template, mode="eval")
    except SyntaxError as error:
        raise InternalError(
            f"rule template {template!r} does not parse: {error}"
        ) from error
    return module.body


class _Substitute(gast.NodeTransformer):
    """Replace a template's names by their bindings.

    `shape_of(x)` in a template marks a read that wants only the shape and
    dtype of `x`: it becomes the read of `x`, marked `pb_shape_only`, so the
    pullback may keep `rt.like(x)` in place of the array.
    """

    def __init__(self, bindings: dict):
        self.bindings = bindings

    def visit_Name(self, node):
        replacement = self.bindings.get(node.id)
        if replacement is None:
            return node
        return copy.deepcopy(replacement)

    def visit_Compare(self, node):
        # A template's `base is None` with a literal bound to `base` folds to
        # True or False here, because Python warns at `2 is None` when it
        # compiles the code (SyntaxWarning: "is" with a literal).
        self.generic_visit(node)
        if len(node.ops) != 1 or not isinstance(node.ops[0], gast.Is | gast.IsNot):
            return node
        left, right = node.left, node.comparators[0]
        if not (isinstance(right, gast.Constant) and right.value is None):
            return node
        if not _is_literal(left):
            return node
        is_none = isinstance(left, gast.Constant) and left.value is None
        if isinstance(node.ops[0], gast.IsNot):
            is_none = not is_none
        return gast.Constant(value=is_none, kind=None)

    def visit_IfExp(self, node):
        # Keep only the branch that a folded test selects.
        self.generic_visit(node)
        if isinstance(node.test, gast.Constant) and isinstance(node.test.value, bool):
            return node.body if node.test.value else node.orelse
        return node

    def visit_Call(self, node):
        func = node.func
        if (isinstance(func, gast.Name) and func.id == "shape_of"
                and len(node.args) == 1 and isinstance(node.args[0], gast.Name)):
            read = self.visit(node.args[0])
            if isinstance(read, gast.Name):
                read.pb_shape_only = True
            return read
        return self.generic_visit(node)


def _is_literal(node) -> bool:
    """Return whether `node` is a literal, such as `2`, `-2.0`, `None` or `(1, 2)`."""
    if isinstance(node, gast.Constant):
        return True
    if isinstance(node, gast.UnaryOp):
        return _is_literal(node.operand)
    if isinstance(node, gast.Tuple | gast.List):
        return all(_is_literal(element) for element in node.elts)
    return False


def instantiate(template: str, bindings: dict):
    """Return the template's expression with names replaced by AST nodes."""
    expression = copy.deepcopy(parse_template(template))
    return _Substitute(bindings).visit(expression)


def template_names(template: str) -> set[str]:
    """Return the names a template reads, to know which primals it keeps.

    The `shape_of` marker is not a read; the name inside it is.
    """
    expression = parse_template(template)
    markers = {
        id(node.func)
        for node in gast.walk(expression)
        if isinstance(node, gast.Call) and isinstance(node.func, gast.Name)
        and node.func.id == "shape_of"
    }
    return {
        node.id
        for node in gast.walk(expression)
        if isinstance(node, gast.Name) and id(node) not in markers
    }
