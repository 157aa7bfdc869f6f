"""Value-and-gradient code specialized to the shapes and dtypes of a call's arrays.

A generated VJP calls a runtime helper wherever an adjoint depends on shapes.
`unbroadcast` sums a cotangent back to an operand's shape, and
`matmul_adjoint_lhs` handles operands of every rank. `like_when_large` decides
whether the pullback keeps an operand or only its shape. Each helper checks
types, ranks, shapes and dtypes on every call, which costs more than the NumPy
operation it runs when the arrays are small.

Some functions are built only from operations whose results' shapes and
dtypes follow from their operands' shapes and dtypes: arithmetic operators,
`@`, ufuncs, `np.sum` and `np.mean`. In such a function, every one of those
checks comes out the same on each call whose array arguments have the same
shapes and dtypes, because values never decide a shape there. A `Specializer`
uses that. At the second call with a new signature (each argument's shape and
dtype), it runs the function once more with recording helpers and writes a
value-and-gradient function. There, each helper call whose outcome the
signature fixes is replaced by the NumPy expression the helper ran: the
cotangent itself, `np.add.reduce(g, 0)`, `g @ b.T`, `a.T @ g`. Forward and
backward pass share one function, so no pullback closure is made either.
Later calls with that signature run it.

Every other helper call stays as it is, so each specialized function computes
what the general VJP computes, bit for bit. A signature is specialized only
when each returned gradient is a new array that the caller can own as it is,
which makes the general API's finishing step unnecessary too.
"""

from __future__ import annotations

import copy
import threading

import gast
import numpy

from pullback.compiler import emit
from pullback.compiler.classify import COPY, RULE, Operation
from pullback.compiler.reverse import comment, name
from pullback.runtime.tangents import SCALAR_SEEDS

# NumPy 1.x gives an array combined with a NumPy scalar a dtype that depends
# on the scalar's value (value-based casting), which a signature cannot fix.
# NumPy 2 takes dtypes alone (NEP 50).
_DTYPES_FOLLOW_DTYPES = numpy.lib.NumpyVersion(numpy.__version__) >= "2.0.0"

# Operators whose result's shape and dtype follow from their operands'.
_OPERATORS = frozenset(
    f"operator {op}" for op in ("Add", "Sub", "Mult", "Div", "Pow", "MatMult", "USub", "UAdd")
)
_REDUCTIONS = frozenset({"numpy.sum", "numpy.mean"})

# Types of the literal arguments a specializable operation may take.
_LITERAL_TYPES = (bool, int, float, complex, type(None))

# A function is specialized for at most this many signatures. It decides
# about at most `_MAX_SEEN` signatures, and counts the calls of at most that
# many undecided ones at a time.
_MAX_SIGNATURES = 4
_MAX_SEEN = 64

# Calls with a signature before it is specialized: a signature called only
# once is not worth the compilation.
_CALLS_BEFORE_SPECIALIZING = 2

# Runtime helpers whose outcome the signature fixes, and so may be replaced.
_REPLACEABLE = frozenset(
    {"like_when_large", "unbroadcast", "matmul_adjoint_lhs", "matmul_adjoint_rhs"}
)

# The gradient's seed for each scalar result type, as generated source.
_SEED_TYPES = {float: None, numpy.float64: "float64", numpy.float32: "float32"}


def is_specializable(block: list, params: list[str]) -> bool:
    """Return whether every operation's result shape and dtype follow from its operands'.

    That holds for straight-line code of copies and specializable rule
    operations whose arguments are parameters, earlier results or literals.
    A free variable (a global array) could change its shape in place, and a
    branch, a loop or a call to a user function could depend on values.
    """
    if not _DTYPES_FOLLOW_DTYPES:
        return False
    defined = set(params)
    for item in block:
        if not isinstance(item, Operation):
            return False  # A branch or a loop.
        if item.kind == RULE:
            if not _shape_follows_operands(item.rule.name):
                return False
            if not all(_is_known_argument(node, defined) for node in item.bindings.values()):
                return False
        elif item.kind == COPY:
            if not all(read in defined for _, read in item.inputs):
                return False
        else:
            return False
        defined.update(item.targets)
    return True


def _shape_follows_operands(rule_name: str) -> bool:
    if rule_name in _OPERATORS or rule_name in _REDUCTIONS:
        return True
    module, _, attribute = rule_name.partition(".")
    return module == "numpy" and isinstance(getattr(numpy, attribute, None), numpy.ufunc)


def _is_known_argument(node, defined: set[str]) -> bool:
    if isinstance(node, gast.Name):
        return node.id in defined
    return isinstance(node, gast.Constant) and type(node.value) in _LITERAL_TYPES


def fuse(vjp: gast.FunctionDef, runtime_alias: str) -> gast.FunctionDef | None:
    """Return one function computing the value and then the gradient, or None.

    `vjp` is a straight-line VJP: forward statements, the pullback's
    definition, and `return (result, pullback)`. The pullback's body follows
    the forward statements, after a seed statement `result_bar =
    _pb.seed(result)` that `Specializer` replaces, and its returned
    cotangents are returned beside the value: bare for one parameter.
    """
    vjp = copy.deepcopy(vjp)
    *forward, definition, returned = vjp.body
    if not (
        isinstance(definition, gast.FunctionDef)
        and isinstance(returned, gast.Return)
        and isinstance(returned.value, gast.Tuple)
        and len(returned.value.elts) == 2
        and all(isinstance(node, gast.Name) for node in returned.value.elts)
        and returned.value.elts[1].id == definition.name
        and len(definition.args.args) == 1
    ):
        return None
    *backward, gradient = definition.body
    if not isinstance(gradient, gast.Return) or not isinstance(gradient.value, gast.Tuple):
        return None
    forward_names = _bound_names(forward) | {arg.id for arg in vjp.args.args}
    statements = [*forward, *backward]
    if any(isinstance(node, gast.FunctionDef | gast.Lambda | gast.Nonlocal | gast.Global
                      | gast.Return | gast.IfExp | gast.BoolOp)
           for statement in statements for node in gast.walk(statement)):
        return None  # Not straight-line code, or a scope of its own.
    if _bound_names(backward) & forward_names:
        return None  # The pullback's scope shadows a forward name.
    value = returned.value.elts[0]
    seed = gast.Assign(
        targets=[name(definition.args.args[0].id, store=True)],
        value=gast.Call(func=gast.Attribute(value=name(runtime_alias), attr="seed",
                                            ctx=gast.Load()),
                        args=[name(value.id)], keywords=[]),
    )
    seed.pb_seed = True
    cotangents = gradient.value.elts
    result = cotangents[0] if len(cotangents) == 1 else gast.Tuple(elts=cotangents,
                                                                   ctx=gast.Load())
    vjp.body = [*forward, seed, *backward,
                gast.Return(value=gast.Tuple(elts=[name(value.id), result], ctx=gast.Load()))]
    vjp.name = vjp.name.removesuffix("_vjp") + "_value_and_gradient"
    return vjp


def _bound_names(statements: list) -> set[str]:
    return {
        node.id
        for statement in statements
        for node in gast.walk(statement)
        if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Store)
    }


class Specializer:
    """Value-and-gradient functions of one compiled VJP, one per argument signature.

    A signature is the shape and dtype of each argument, all of them arrays.
    `functions` contains the specialized functions. Each one first checks the
    arguments against its own signature and returns None when they differ,
    so the API tries them in turn. When none accepts them, the API runs the
    general VJP and reports the call with `learn`.

    `fused` is the tree `fuse` returns. `build(tree, runtime, constants)`
    compiles such a tree into a function whose runtime alias refers to
    `runtime` (the runtime module when that is None), with each name in
    `constants` bound to its value.
    """

    def __init__(self, fused: gast.FunctionDef, build, runtime_alias: str,
                 numpy_expression, params: tuple[str, ...], wrt_positions: tuple[int, ...]):
        self._fused = fused
        self._build = build
        self._runtime_alias = runtime_alias
        self._numpy = numpy_expression
        self._wrt_positions = wrt_positions
        self.count = len(params)
        self.functions: tuple = ()
        # Signature -> whether it was specialized, and the call counts of
        # signatures not yet decided.
        self._decided: dict[tuple, bool] = {}
        self._seen: dict[tuple, int] = {}
        # Whether the last signature was declined for a reason that does not
        # depend on it: a result that is no scalar, or a gradient computed
        # by a helper that may return its argument.
        self._declined_for_all = False
        self._hopeless = False
        self._lock = threading.Lock()

    def learn(self, args: tuple) -> bool:
        """Count a call the specialized functions declined, and specialize at the second.

        Return False once specializing is not worth trying again: no
        signature is specialized, and one was declined for a reason that
        other signatures share. The API then stops calling this, which costs
        about 1 µs a call.
        """
        signature = _signature(args)
        if signature is None:
            return True
        with self._lock:
            if self._hopeless:
                return False
            if (signature in self._decided or len(self.functions) >= _MAX_SIGNATURES
                    or len(self._decided) >= _MAX_SEEN):
                return True
            calls = self._seen.get(signature, 0) + 1
            if calls < _CALLS_BEFORE_SPECIALIZING:
                if len(self._seen) >= _MAX_SEEN:
                    # Forget the counts of many one-off signatures, so that one
                    # called often after them is still specialized.
                    self._seen.clear()
                self._seen[signature] = calls
                return True
            self._seen.pop(signature, None)
            function = self._specialize(signature, args)
            self._decided[signature] = function is not None
            if function is not None:
                self.functions = (*self.functions, function)
            self._hopeless = not self.functions and self._declined_for_all
            return not self._hopeless

    def _specialize(self, signature: tuple, args: tuple):
        """Record the helpers' outcomes at `args` and build the specialized function."""
        self._declined_for_all = False
        if any(value.dtype.kind != "f" for value in args):
            return None  # The gradient of an integer array is None, which the API decides.

        recorded = self._record(args)
        if recorded is None:
            return None
        recorder, gradient = recorded

        # Declines from here on would repeat for every signature.
        self._declined_for_all = True
        if recorder.seed_type not in _SEED_TYPES:
            return None
        specialized = self._rewrite(recorder)
        if not self._owns_gradient(specialized, gradient, args):
            return None

        self._declined_for_all = False
        constants = _guard(specialized, self._runtime_alias, args)
        return self._build(specialized, None, constants)

    def _record(self, args: tuple):
        """Run the fused function with recording helpers; return (recorder, gradient) or None."""
        recorder = _Recorder()
        instrumented = _Sites(self._runtime_alias, recorder.instrument).visit(
            copy.deepcopy(self._fused))
        recording = self._build(instrumented, recorder, {})
        try:
            with numpy.errstate(all="ignore"):
                _, gradient = recording(*args)
        except Exception:  # noqa: BLE001 - the general VJP raises it again, with context.
            return None
        return recorder, gradient

    def _rewrite(self, recorder: _Recorder) -> gast.FunctionDef:
        """Return the fused tree with each recorded outcome's expression in place of its call."""
        specialized = _Sites(
            self._runtime_alias,
            lambda index, call: _replacement(recorder.outcomes.get(index), call, self._numpy),
        ).visit(copy.deepcopy(self._fused))
        _set_seed(specialized, _SEED_TYPES[recorder.seed_type], self._numpy)
        _drop_dead_copies(specialized)
        _merge_copies(specialized)
        specialized.body = emit.drop_orphan_comments(specialized.body)
        return specialized

    def _owns_gradient(self, tree: gast.FunctionDef, gradient, args: tuple) -> bool:
        """Return whether each returned cotangent is a new array of its argument's dtype.

        The recorded call shows the types and dtypes, which the signature
        fixes. That the arrays are new on every call, and so distinct and
        owned, follows from the expressions computing them: an operator, or
        a replaced helper that returns a product or a sum.
        """
        returned = tree.body[-1].value.elts[1]
        single = not isinstance(returned, gast.Tuple)
        names = [returned] if single else returned.elts
        items = (gradient,) if single else gradient
        if not all(isinstance(node, gast.Name) for node in names):
            return False
        if len({node.id for node in names}) != len(names) or len(items) != len(names):
            return False
        definitions = _last_definitions(tree.body)
        for node, item, position in zip(names, items, self._wrt_positions, strict=True):
            if not _is_new_array(definitions.get(node.id)):
                return False
            if type(item) is not numpy.ndarray or item.dtype != args[position].dtype:
                return False
        return True


def _signature(args: tuple) -> tuple | None:
    """Return each argument's shape and dtype, or None unless all are arrays."""
    signature = []
    for value in args:
        if type(value) is not numpy.ndarray:
            return None
        signature.append(value.shape)
        signature.append(value.dtype)
    return tuple(signature)


def _guard(tree: gast.FunctionDef, runtime_alias: str, args: tuple) -> dict:
    """Begin `tree` with a check of the arguments' types, dtypes and shapes.

    Arguments of another signature make the function return None. The check
    compares types and dtypes by identity, through free variables bound to
    them. The returned dict maps those variables' names to their values.
    """
    params = [arg.id for arg in tree.args.args]
    taken = {node.id for node in gast.walk(tree) if isinstance(node, gast.Name)}
    constants = {}

    def constant(label: str, value):
        for identifier, known in constants.items():
            if known is value:
                return name(identifier)
        identifier = f"{runtime_alias}_{label}"
        while identifier in taken or identifier in constants:
            identifier += "_"
        constants[identifier] = value
        return name(identifier)

    def attribute(param: str, attr: str):
        return gast.Attribute(value=name(param), attr=attr, ctx=gast.Load())

    checks = []
    for param, value in zip(params, args, strict=True):
        # `type` too is reached through a free variable: the user's module or
        # function may bind that name to something else.
        kind = gast.Call(func=constant("type", type), args=[name(param)], keywords=[])
        test = gast.BoolOp(op=gast.Or(), values=[
            gast.Compare(left=kind, ops=[gast.IsNot()],
                         comparators=[constant("ndarray", numpy.ndarray)]),
            gast.Compare(left=attribute(param, "dtype"), ops=[gast.IsNot()],
                         comparators=[constant(value.dtype.name, value.dtype)]),
            gast.Compare(left=attribute(param, "shape"), ops=[gast.NotEq()],
                         comparators=[gast.Constant(value=value.shape, kind=None)]),
        ])
        checks.append(gast.If(test=test, body=[gast.Return(value=gast.Constant(value=None,
                                                                                 kind=None))],
                              orelse=[]))
    tree.body[:0] = [
        comment("specialized to these argument types, dtypes and shapes; for others, "
                "return None and let the general VJP run"),
        *checks,
    ]
    return constants


def _last_definitions(statements: list) -> dict:
    definitions = {}
    for statement in statements:
        if isinstance(statement, gast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, gast.Name):
                definitions[target.id] = statement.value
        elif isinstance(statement, gast.AugAssign | gast.AnnAssign):
            for node in gast.walk(statement):
                if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Store):
                    definitions[node.id] = None
    return definitions


def _is_new_array(node) -> bool:
    """Return whether `node` computes a new array whenever it computes an array.

    An operator on arrays allocates its result, and so do the replacements
    `_replacement` marks. A helper call may return one of its arguments.
    """
    return isinstance(node, gast.BinOp | gast.UnaryOp) or getattr(node, "pb_new_array", False)


class _Sites(gast.NodeTransformer):
    """Number each replaceable helper call in evaluation order and rewrite it.

    `rewrite(index, call)` returns the node to put in the call's place.
    Arguments are visited before the call that takes them, so the numbering
    is the same before and after a rewrite.
    """

    def __init__(self, runtime_alias: str, rewrite):
        self.runtime_alias = runtime_alias
        self.rewrite = rewrite
        self.index = 0

    def visit_Call(self, node):
        self.generic_visit(node)
        if not self._is_replaceable(node):
            return node
        self.index += 1
        return self.rewrite(self.index, node)

    def _is_replaceable(self, call) -> bool:
        function = call.func
        return (
            isinstance(function, gast.Attribute)
            and isinstance(function.value, gast.Name)
            and function.value.id == self.runtime_alias
            and function.attr in _REPLACEABLE
            and not call.keywords
            and all(isinstance(arg, gast.Name) for arg in call.args[1:])
        )


class _Recorder:
    """A stand-in for the runtime module in a recording run, noting each helper's outcome."""

    def __init__(self):
        import pullback.runtime as runtime

        self._runtime = runtime
        self.outcomes: dict[int, str] = {}
        self.seed_type = None

    def __getattr__(self, attribute: str):
        return getattr(self._runtime, attribute)

    def instrument(self, index: int, call):
        """Rewrite `_pb.helper(args)` as `_pb.site(index, "helper", args)`."""
        helper = call.func.attr
        call.func.attr = "site"
        call.args[:0] = [gast.Constant(value=index, kind=None),
                         gast.Constant(value=helper, kind=None)]
        return call

    def site(self, index: int, helper: str, *args):
        result = getattr(self._runtime, helper)(*args)
        self.outcomes[index] = _OUTCOMES[helper](result, *args)
        return result

    def seed(self, value):
        self.seed_type = type(value)
        seed = SCALAR_SEEDS.get(type(value))
        if seed is None:
            raise TypeError("no scalar result")  # Caught by `_specialize`, which declines.
        return seed


def _like_outcome(result, value) -> str | None:
    return "argument" if result is value else None


def _unbroadcast_outcome(result, cotangent, primal) -> str | None:
    """Return which of `unbroadcast`'s first branches ran, checking their conditions."""
    from pullback.runtime.arrays import ShapeOf

    if (
        type(cotangent) is not numpy.ndarray
        or type(primal) not in (numpy.ndarray, ShapeOf)
        or cotangent.dtype != primal.dtype
    ):
        return None
    shape = primal.shape
    if cotangent.shape == shape:
        return "argument" if result is cotangent else None
    if cotangent.ndim == len(shape) + 1 and cotangent.shape[1:] == shape:
        return "sum over rows" if _same_value(result, numpy.add.reduce(cotangent, 0)) else None
    return None


def _lhs_outcome(result, cotangent, a, b) -> str | None:
    if _are_matrices(cotangent, a, b) and _same_value(result, cotangent @ b.T):
        return "product"
    return None


def _rhs_outcome(result, cotangent, a, b) -> str | None:
    if _are_matrices(cotangent, a, b) and _same_value(result, a.T @ cotangent):
        return "product"
    return None


def _are_matrices(*values) -> bool:
    return all(type(value) is numpy.ndarray and value.ndim == 2 for value in values)


def _same_value(result, expected) -> bool:
    """Return whether a helper returned `expected`: same type, dtype, shape and bits.

    This confirms that the helper took the branch computing `expected`, and
    not a branch with a cast or a copy in it.
    """
    return (
        type(result) is type(expected)
        and result.dtype == expected.dtype
        and result.shape == expected.shape
        and result.tobytes() == expected.tobytes()
    )


_OUTCOMES = {
    "like_when_large": _like_outcome,
    "unbroadcast": _unbroadcast_outcome,
    "matmul_adjoint_lhs": _lhs_outcome,
    "matmul_adjoint_rhs": _rhs_outcome,
}


def _replacement(outcome: str | None, call, numpy_expression):
    """Return the expression a helper call ran for the recorded `outcome`.

    Each mirrors the helper's own branch for that case, so the result is
    the same. `unbroadcast` returns a cotangent of its primal's shape and
    dtype as it is, and sums one with an extra leading axis with
    `np.add.reduce`. The matmul adjoints of 2-D arrays are one product.
    """
    helper = call.func.attr
    args = call.args
    if outcome is None:
        return call
    if outcome == "argument":
        return args[0]
    if outcome == "sum over rows":
        node = gast.Call(
            func=gast.Attribute(
                value=gast.Attribute(value=copy.deepcopy(numpy_expression), attr="add",
                                     ctx=gast.Load()),
                attr="reduce", ctx=gast.Load()),
            args=[args[0], gast.Constant(value=0, kind=None)], keywords=[])
    elif helper == "matmul_adjoint_lhs":
        node = gast.BinOp(left=args[0], op=gast.MatMult(), right=_transposed(args[2]))
    else:
        node = gast.BinOp(left=_transposed(args[1]), op=gast.MatMult(), right=args[0])
    node.pb_new_array = True
    return node


def _transposed(node):
    return gast.Attribute(value=node, attr="T", ctx=gast.Load())


def _is_seed(statement) -> bool:
    """Return whether `statement` is the seed statement `fuse` wrote, or its replacement."""
    return getattr(statement, "pb_seed", False)


def _set_seed(tree: gast.FunctionDef, dtype_name: str | None, numpy_expression) -> None:
    """Replace the seed statement's `_pb.seed(result)` with the constant it returned."""
    statement = next(s for s in tree.body if _is_seed(s))
    one = gast.Constant(value=1.0, kind=None)
    if dtype_name is None:
        statement.value = one
    else:
        statement.value = gast.Call(
            func=gast.Attribute(value=copy.deepcopy(numpy_expression), attr=dtype_name,
                                ctx=gast.Load()),
            args=[one], keywords=[])


def _copy_of(statement) -> tuple[str, str] | None:
    """Return (target, source) for a statement `target = source` between names."""
    if (
        isinstance(statement, gast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], gast.Name)
        and isinstance(statement.value, gast.Name)
    ):
        return statement.targets[0].id, statement.value.id
    return None


def _names(statements: list, context) -> list[str]:
    return [
        node.id
        for statement in statements
        for node in gast.walk(statement)
        if isinstance(node, gast.Name) and isinstance(node.ctx, context)
    ]


def _drop_dead_copies(tree: gast.FunctionDef) -> None:
    """Remove copies no statement reads, left where a helper call became its argument.

    `x_like = x` saved an operand for `unbroadcast`; once the call is
    replaced by the cotangent, nothing reads `x_like`.
    """
    read = set(_names(tree.body, gast.Load))
    dead = set()
    for statement in tree.body:
        copied = _copy_of(statement)
        if copied is not None and copied[0] not in read:
            dead.add(copied[0])
    kept = []
    for statement in tree.body:
        copied = _copy_of(statement)
        if copied is not None and copied[0] in dead:
            continue
        if isinstance(statement, gast.Delete):
            statement.targets = [t for t in statement.targets
                                 if not (isinstance(t, gast.Name) and t.id in dead)]
            if not statement.targets:
                continue
        kept.append(statement)
    tree.body = kept


def _merge_copies(tree: gast.FunctionDef) -> None:
    """Name a cotangent by its copy's name where `t = v` is followed by `del v`.

    `out_bar = out_minus_y_bar; del out_minus_y_bar`, left where
    `unbroadcast` became its argument, turns into one assignment to
    `out_bar`. The copy's name is the one later statements read. Only the
    backward statements, after the seed, are merged: a forward statement
    stays under the comment that quotes it.
    """
    parameters = {arg.id for arg in tree.args.args}
    index = next(i for i, statement in enumerate(tree.body) if _is_seed(statement))
    while index + 1 < len(tree.body):
        copied = _copy_of(tree.body[index])
        following = tree.body[index + 1]
        if copied is None or not _deletes_only(following, copied[1]):
            index += 1
            continue
        target, source = copied
        before = tree.body[:index]
        after = tree.body[index + 2:]
        if (
            source in parameters
            or target in _names(before, gast.Store) + _names(before, gast.Load)
            or _names(before, gast.Store).count(source) != 1
            or source in _names(after, gast.Store) + _names(after, gast.Load)
            or _names(after, gast.Store).count(target) != 0
        ):
            index += 1
            continue
        for statement in before:
            for node in gast.walk(statement):
                if isinstance(node, gast.Name) and node.id == source:
                    node.id = target
        del tree.body[index:index + 2]


def _deletes_only(statement, identifier: str) -> bool:
    return (
        isinstance(statement, gast.Delete)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], gast.Name)
        and statement.targets[0].id == identifier
    )
