"""Build the VJP: the forward statements, then a pullback closure.

The pullback visits the forward operations in reverse. For each active one it
adds a contribution to the cotangent of each active input: the first
contribution binds `x_bar`, later ones add to it. Branches replay the forward
choice, which the closure reads from the forward pass's condition variable.
"""

from __future__ import annotations

import dataclasses

import gast

from pullback.compiler import rules
from pullback.compiler.activity import Activity
from pullback.compiler.classify import (
    CHECKPOINT,
    COPY,
    PACK,
    RULE,
    SUBSCRIPT,
    UNPACK,
    USER_CALL,
    Branch,
    Operation,
)
from pullback.compiler.normalize import NormalizedFunction, is_atom, source_line_of
from pullback.errors import InternalError

COMMENT_MARKER = "__pullback_comment__ "


@dataclasses.dataclass
class Aliases:
    """How generated code reaches NumPy, math and the runtime."""

    runtime: str
    numpy: object  # An expression AST.
    math: object


def name(identifier: str, store: bool = False):
    context = gast.Store() if store else gast.Load()
    return gast.Name(id=identifier, ctx=context, annotation=None, type_comment=None)


def parse_expression(source: str):
    return gast.parse(source, mode="eval").body


def comment(text: str):
    return gast.Expr(value=gast.Constant(value=COMMENT_MARKER + text, kind=None))


def _assign(target: str, value):
    return gast.Assign(targets=[name(target, store=True)], value=value)


def _runtime_call(aliases: Aliases, helper: str, *args):
    function = gast.Attribute(value=name(aliases.runtime), attr=helper, ctx=gast.Load())
    return gast.Call(func=function, args=list(args), keywords=[])


class _Commenter:
    """Insert `# line N: source` before the first statement of each line."""

    def __init__(self, normalized: NormalizedFunction, prefix: str):
        self.parsed = normalized.parsed
        self.prefix = prefix
        self.last: int | None = None

    def before(self, lineno: int | None, out: list) -> None:
        if lineno is None or lineno == self.last:
            return
        self.last = lineno
        out.append(comment(f"{self.prefix}line {lineno}: "
                           f"{self.parsed.source_line(lineno)}"))


class ReverseBuilder:
    def __init__(self, normalized: NormalizedFunction, block: list,
                 activity: Activity, wrt: list[str], aliases: Aliases):
        self.normalized = normalized
        self.namer = normalized.namer
        self.block = block
        self.activity = activity
        self.wrt = wrt
        self.aliases = aliases
        self.pullback_names: dict[int, str] = {}
        self.numeric_variables = {
            target for item in _flatten(block) if item.kind == RULE
            for target in item.targets
        }

    # Forward pass.

    def forward(self, block: list, commenter: _Commenter) -> list:
        out = []
        for item in block:
            commenter.before(item.lineno, out)
            if isinstance(item, Branch):
                body = self.forward(item.body, commenter) or [gast.Pass()]
                commenter.last = item.lineno
                orelse = self.forward(item.orelse, commenter)
                out.append(gast.If(test=item.condition, body=body, orelse=orelse))
                continue
            if item.kind == USER_CALL and self.is_active_operation(item):
                out.append(self.forward_user_call(item))
            elif item.kind == CHECKPOINT and self.is_active_operation(item):
                out.extend(self.forward_checkpoint(item))
            else:
                out.append(item.statement)
        return out

    def active_parameters(self, operation: Operation) -> list[int]:
        """Positions of the callee's parameters that receive an active argument."""
        return sorted({position for position, variable in operation.inputs
                       if self.activity.is_active(variable)})

    def wrt_names(self, operation: Operation):
        names = [operation.parameters[p] for p in self.active_parameters(operation)]
        return [gast.Constant(value=n, kind=None) for n in names]

    def forward_user_call(self, operation: Operation):
        """`y, y_pullback = rt.vjp_of(f, "x")(x, w)` in place of `y = f(x, w)`."""
        target = operation.targets[0]
        pullback = self.namer.fresh(f"{target}_pullback")
        self.pullback_names[id(operation)] = pullback
        call = operation.statement.value
        vjp = _runtime_call(self.aliases, "vjp_of", call.func, *self.wrt_names(operation))
        vjp_call = gast.Call(func=vjp, args=call.args, keywords=call.keywords)
        targets = gast.Tuple(elts=[name(target, True), name(pullback, True)],
                             ctx=gast.Store())
        return gast.Assign(targets=[targets], value=vjp_call)

    def forward_checkpoint(self, operation: Operation) -> list:
        """Call the function plainly, noting only its Generators' states."""
        target = operation.targets[0]
        states = self.namer.fresh(f"{target}_rng_states")
        self.pullback_names[id(operation)] = states
        call = operation.statement.value
        record = _runtime_call(self.aliases, "generator_states", *call.args)
        record.keywords = call.keywords
        return [_assign(states, record), operation.statement]

    def is_active_operation(self, operation: Operation) -> bool:
        return any(self.activity.is_active(t) for t in operation.targets) and any(
            self.activity.is_active(v) for _, v in operation.inputs
        )

    # Pullback.

    def pullback(self, block: list, defined: dict, commenter: _Commenter) -> list:
        out = []
        for item in reversed(block):
            if isinstance(item, Branch):
                out.extend(self.reverse_branch(item, defined, commenter))
                continue
            if not self.is_active_operation(item):
                continue
            if not any(t in defined for t in item.targets):
                continue  # No contribution reached the result on this path.
            statements = self.reverse_operation(item, defined)
            if statements:
                commenter.before(item.lineno, out)
                out.extend(statements)
        return out

    def reverse_branch(self, branch: Branch, defined: dict, commenter) -> list:
        then_defined, else_defined = dict(defined), dict(defined)
        line = source_line_of(branch.statement)
        commenter.last = line
        body = self.pullback(branch.body, then_defined, commenter)
        commenter.last = line
        orelse = self.pullback(branch.orelse, else_defined, commenter)
        commenter.last = None
        if not body and not orelse:
            return []
        for variable in sorted(set(then_defined) | set(else_defined)):
            for own, other in ((then_defined, body), (else_defined, orelse)):
                if variable not in own:
                    zero = _runtime_call(self.aliases, "zeros_like", name(variable))
                    other.append(_assign(self.namer.cotangent(variable), zero))
            defined[variable] = then_defined.get(variable, False) and else_defined.get(
                variable, False
            )
        out = []
        commenter.before(line, out)
        out.append(gast.If(test=branch.condition, body=body or [gast.Pass()],
                           orelse=orelse))
        return out

    def accumulate(self, variable: str, contribution, numeric: bool,
                   defined: dict, out: list) -> None:
        """Add a contribution to `variable`'s cotangent, binding it if new."""
        cotangent = self.namer.cotangent(variable)
        # Only values computed by rules are arrays or numbers for sure: a
        # parameter or a display may be a list, for which + would concatenate.
        numeric = numeric and variable in self.numeric_variables
        if variable not in defined:
            out.append(_assign(cotangent, contribution))
            defined[variable] = numeric
            return
        if numeric and defined[variable]:
            total = gast.BinOp(left=name(cotangent), op=gast.Add(), right=contribution)
        else:
            total = _runtime_call(self.aliases, "add", name(cotangent), contribution)
            defined[variable] = False
        out.append(_assign(cotangent, total))

    def reverse_operation(self, operation: Operation, defined: dict) -> list:
        out = []
        active_inputs = [(role, v) for role, v in operation.inputs
                         if self.activity.is_active(v)]
        kind = operation.kind
        if kind == RULE:
            self.reverse_rule(operation, active_inputs, defined, out)
        elif kind == COPY:
            target = operation.targets[0]
            cotangent = name(self.namer.cotangent(target))
            for _, variable in active_inputs:
                self.accumulate(variable, cotangent, defined[target], defined, out)
        elif kind == PACK:
            cotangent = name(self.namer.cotangent(operation.targets[0]))
            for index, variable in active_inputs:
                item = gast.Subscript(value=cotangent,
                                      slice=gast.Constant(value=index, kind=None),
                                      ctx=gast.Load())
                self.accumulate(variable, item, False, defined, out)
        elif kind == UNPACK:
            self.reverse_unpack(operation, active_inputs, defined, out)
        elif kind == SUBSCRIPT:
            self.reverse_subscript(operation, active_inputs, defined, out)
        elif kind == USER_CALL:
            pullback = self.pullback_names[id(operation)]
            self.reverse_user_call(operation, pullback, active_inputs, defined, out)
        elif kind == CHECKPOINT:
            call = operation.statement.value
            pullback = self.namer.fresh(f"{operation.targets[0]}_pullback")
            states = self.pullback_names[id(operation)]
            wrt = gast.Tuple(elts=self.wrt_names(operation), ctx=gast.Load())
            recompute = _runtime_call(self.aliases, "recompute", call.func, wrt,
                                      name(states), name(operation.targets[0]),
                                      *call.args)
            recompute.keywords = call.keywords
            out.append(comment(f"recompute {_source(call)} for its pullback"))
            out.append(_assign(pullback, recompute))
            self.reverse_user_call(operation, pullback, active_inputs, defined, out)
        else:
            raise InternalError(f"no adjoint for active {kind} operation at line "
                                f"{operation.lineno}")
        return out

    def reverse_rule(self, operation, active_inputs, defined, out) -> None:
        target = operation.targets[0]
        rule = operation.rule
        bindings = dict(operation.bindings)
        bindings["g"] = name(self.namer.cotangent(target))
        bindings["ans"] = name(target)
        bindings["np"] = self.aliases.numpy
        bindings["math"] = self.aliases.math
        bindings["rt"] = name(self.aliases.runtime)
        for role, variable in active_inputs:
            param = role
            if isinstance(role, tuple):  # One element of a *name parameter.
                param, position = role
                bindings["index"] = gast.Constant(value=position, kind=None)
            contribution = rules.instantiate(rule.adjoints[param], bindings)
            if rule.broadcasting and self.may_broadcast(operation, param):
                contribution = _runtime_call(self.aliases, "unbroadcast",
                                             contribution, name(variable))
            self.accumulate(variable, contribution, True, defined, out)

    @staticmethod
    def may_broadcast(operation: Operation, param: str) -> bool:
        """An operand broadcasts unless every other argument is a literal."""
        for other, node in operation.bindings.items():
            if other == param:
                continue
            if not (isinstance(node, gast.Constant) or is_atom(node) and
                    not isinstance(node, gast.Name)):
                return True
        return False

    def reverse_unpack(self, operation, active_inputs, defined, out) -> None:
        parts = []
        for target in operation.targets:
            if target in defined:
                parts.append(name(self.namer.cotangent(target)))
            else:
                parts.append(gast.Constant(value=None, kind=None))
        for _, variable in active_inputs:
            packed = gast.Tuple(elts=parts, ctx=gast.Load())
            contribution = _runtime_call(self.aliases, "unpack_adjoint",
                                         name(variable), packed)
            self.accumulate(variable, contribution, False, defined, out)

    def reverse_subscript(self, operation, active_inputs, defined, out) -> None:
        target = operation.targets[0]
        index = operation.statement.value.slice
        index_expression = gast.Subscript(
            value=gast.Attribute(value=self.aliases.numpy, attr="s_", ctx=gast.Load()),
            slice=index, ctx=gast.Load())
        for _, variable in active_inputs:
            contribution = _runtime_call(
                self.aliases, "subscript_adjoint",
                name(self.namer.cotangent(target)), name(variable), index_expression)
            self.accumulate(variable, contribution, False, defined, out)

    def reverse_user_call(self, operation, pullback, active_inputs, defined, out) -> None:
        target = operation.targets[0]
        positions = self.active_parameters(operation)
        names = [None] * len(positions)
        followups = []
        for position, variable in active_inputs:
            slot = positions.index(position)
            if variable not in defined:
                names[slot] = self.namer.cotangent(variable)
                defined[variable] = False
            else:
                piece = self.namer.fresh(
                    f"{variable}_bar_from_{_callee_word(operation.callee)}")
                names[slot] = piece
                followups.append((variable, piece))
        elements = [name(n, True) for n in names]
        call = gast.Call(func=name(pullback),
                         args=[name(self.namer.cotangent(target))], keywords=[])
        targets = gast.Tuple(elts=elements, ctx=gast.Store())
        out.append(gast.Assign(targets=[targets], value=call))
        for variable, piece in followups:
            self.accumulate(variable, name(piece), False, defined, out)

    # The whole VJP.

    def build(self) -> gast.FunctionDef:
        normalized = self.normalized
        parsed = normalized.parsed
        function_name = self.namer.fresh(f"{_base_name(parsed)}_vjp")
        pullback_name = self.namer.fresh(f"{_base_name(parsed)}_pullback")

        forward = self.forward(self.block, _Commenter(normalized, ""))
        result = normalized.result
        result_bar = self.namer.cotangent(result)
        defined = {result: self.result_is_numeric(result)}
        adjoint = self.pullback(self.block, defined, _Commenter(normalized, "adjoint of "))

        returned = []
        for param in self.wrt:
            if param in defined and self.activity.is_active(param):
                returned.append(name(self.namer.cotangent(param)))
            else:
                returned.append(_runtime_call(self.aliases, "zeros_like", name(param)))
        adjoint.append(gast.Return(value=gast.Tuple(elts=returned, ctx=gast.Load())))

        pullback = gast.FunctionDef(
            name=pullback_name,
            args=_arguments([result_bar]),
            body=adjoint,
            decorator_list=[],
            returns=None,
            type_comment=None,
            type_params=[],
        )
        value_and_pullback = gast.Tuple(elts=[name(result), name(pullback_name)],
                                        ctx=gast.Load())
        body = forward + [pullback, gast.Return(value=value_and_pullback)]
        return gast.FunctionDef(
            name=function_name,
            args=_user_arguments(parsed.node.args),
            body=body,
            decorator_list=[],
            returns=None,
            type_comment=None,
            type_params=[],
        )

    def result_is_numeric(self, result: str) -> bool:
        for item in _flatten(self.block):
            if result in item.targets:
                return item.kind == RULE
        return False


def _flatten(block):
    for item in block:
        if isinstance(item, Branch):
            yield from _flatten(item.body)
            yield from _flatten(item.orelse)
        else:
            yield item


def _source(node) -> str:
    import ast

    return ast.unparse(gast.gast_to_ast(node))


def _callee_word(callee) -> str:
    return getattr(callee, "__name__", "call").strip("<>") or "call"


def _base_name(parsed) -> str:
    return "lambda" if parsed.is_lambda else parsed.name


def _arguments(names: list[str]):
    return gast.arguments(
        args=[name(n, False) for n in names],
        posonlyargs=[],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )


def _user_arguments(arguments):
    """Copy the user's parameters, dropping annotations."""
    import copy

    copied = copy.deepcopy(arguments)
    for arg in copied.posonlyargs + copied.args + copied.kwonlyargs:
        arg.annotation = None
        arg.ctx = gast.Param()
    return copied
