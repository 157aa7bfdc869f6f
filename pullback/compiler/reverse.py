"""Build the VJP: the forward statements, then a pullback closure.

The pullback visits the forward operations in reverse. For each active one it
adds a contribution to the cotangent of each active input: the first
contribution binds `x_bar`, later ones add to it. Branches replay the forward
choice, which the closure reads from the forward pass's condition variable.
"""

from __future__ import annotations

import copy
import dataclasses

import gast

from pullback.compiler import rules
from pullback.compiler.activity import Activity
from pullback.compiler.classify import (
    ATTRIBUTE,
    CHECKPOINT,
    COPY,
    NO_DERIVATIVE,
    PACK,
    RULE,
    SUBSCRIPT,
    UNPACK,
    USER_CALL,
    USER_METHOD,
    Branch,
    Loop,
    Operation,
)
from pullback.compiler.normalize import NormalizedFunction, is_atom, source_line_of
from pullback.errors import InternalError
from pullback.runtime import markers, registry

COMMENT_MARKER = "__pullback_comment__ "


@dataclasses.dataclass
class Aliases:
    """The expressions through which generated code reaches NumPy, math and the runtime."""

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


@dataclasses.dataclass
class _Frame:
    """The tape of one loop: what each iteration saves for the pullback.

    Every iteration appends one tuple for the loop body and one more for each
    branch it takes inside the body. The pullback reads them from the end.
    """

    tape: str
    # The pullback's position in the tape. The pullback reads the tape without
    # emptying it, so it can run again.
    cursor: str = ""
    # Forward name -> the pullback's name for the value restored from the tape.
    saved: dict = dataclasses.field(default_factory=dict)
    # id(block) -> (the list holding the push, the push, names the block binds).
    pushes: dict = dataclasses.field(default_factory=dict)


def _push(tape: str):
    append = gast.Attribute(value=name(tape), attr="append", ctx=gast.Load())
    saved = gast.Tuple(elts=[], ctx=gast.Load())
    return gast.Expr(value=gast.Call(func=append, args=[saved], keywords=[]))


def _direct_stores(statements: list) -> set[str]:
    """Names a block binds itself, and names both branches of its ifs bind."""
    names = set()
    for statement in statements:
        if isinstance(statement, gast.If):
            names |= _direct_stores(statement.body) & _direct_stores(statement.orelse)
        elif isinstance(statement, gast.For | gast.While):
            continue
        else:
            names |= {n.id for n in gast.walk(statement)
                      if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
    return names


def shape_name(identifier: str):
    """Return a read of a value that wants only its shape and dtype."""
    node = name(identifier)
    node.pb_shape_only = True
    return node


def _shape_only(statements: list, identifier: str) -> bool:
    """Return whether every read of `identifier` wants only its shape and dtype."""
    reads = [n for s in statements for n in gast.walk(s)
             if isinstance(n, gast.Name) and n.id == identifier
             and isinstance(n.ctx, gast.Load)]
    return bool(reads) and all(getattr(n, "pb_shape_only", False) for n in reads)


def _loads(statements: list) -> set[str]:
    return {n.id for s in statements for n in gast.walk(s)
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}


class _RenameLoads(gast.NodeTransformer):
    def __init__(self, mapping: dict):
        self.mapping = mapping

    def visit_Name(self, node):
        if isinstance(node.ctx, gast.Load) and node.id in self.mapping:
            return name(self.mapping[node.id])
        return node


class ReverseBuilder:
    def __init__(self, normalized: NormalizedFunction, block: list,
                 activity: Activity, wrt: list[str], aliases: Aliases,
                 scalars: bool = False):
        self.normalized = normalized
        self.namer = normalized.namer
        self.block = block
        self.activity = activity
        self.wrt = wrt
        self.aliases = aliases
        self.pullback_names: dict[int, str] = {}
        # With `scalars`, every value is a number: the VJP for arguments that
        # are all Python numbers, where nothing broadcasts.
        self.scalars = scalars
        self.numeric_variables = {
            target for item in flatten(block)
            if item.kind == RULE and not item.rule.structured
            for target in item.targets
        } | {
            variable for item in flatten(block)
            if item.kind == RULE and item.rule.arithmetic
            for _, variable in item.inputs
        }
        self.loop_frames: dict[int, _Frame] = {}
        self.rule_results = {
            target for item in flatten(block)
            if item.kind == RULE and not item.rule.structured
            for target in item.targets
        }
        # Variables from outside a loop whose cotangent the loop's pullback
        # accumulates item by item, in place; see `reverse_loop`.
        self.item_accumulators: set[str] = set()
        # Variable -> kinds of contribution ("item" for a subscript's adjoint,
        # else "other"), recorded while a loop's trial pass runs.
        self.contribution_kinds: dict[str, set[str]] | None = None

    # Forward pass.

    def forward(self, block: list, commenter: _Commenter, frame=None) -> list:
        out = []
        for item in block:
            commenter.before(item.lineno, out)
            if isinstance(item, Branch):
                body = self.forward(item.body, commenter, frame)
                self.add_push(frame, item.body, body)
                commenter.last = item.lineno
                orelse = self.forward(item.orelse, commenter, frame)
                self.add_push(frame, item.orelse, orelse)
                out.append(gast.If(test=item.condition, body=body or [gast.Pass()],
                                   orelse=orelse))
                continue
            if isinstance(item, Loop):
                out.extend(self.forward_loop(item, commenter))
                commenter.last = None
                continue
            if item.kind == RULE and self.is_active_operation(item):
                out.extend(self.array_method_guard(item))
            if item.kind == USER_CALL and self.is_active_operation(item):
                out.append(self.forward_user_call(item))
            elif item.kind == CHECKPOINT and self.is_active_operation(item):
                out.extend(self.forward_checkpoint(item))
            elif item.kind == USER_METHOD and self.is_active_operation(item):
                out.append(self.forward_method_call(item))
            elif self.is_augmented_array_operation(item):
                out.append(self.in_place_assignment(item.statement))
            else:
                out.append(item.statement)
        return out

    def is_augmented_array_operation(self, operation: Operation) -> bool:
        """Return whether `operation` is `x op y` from `x op= y`, where `x` may be an array.

        That covers operators without a derivative too: `n <<= k` keeps an
        int8 array int8. The VJP for numbers computes numbers only, which
        `x op= y` rebinds.
        """
        return (not self.scalars and operation.kind in (RULE, NO_DERIVATIVE)
                and _augments_a_name(operation.statement))

    def with_in_place_results(self, loop):
        """Return a copy of an inactive loop, written as is, with `in_place_assignment` applied.

        The loop statement is shared with the VJP for numbers, so it is copied.
        """
        if self.scalars:
            return loop
        loop = copy.deepcopy(loop)
        for node in gast.walk(loop):
            for field in ("body", "orelse"):
                statements = getattr(node, field, None)
                if not isinstance(statements, list):
                    continue
                for index, statement in enumerate(statements):
                    if _augments_a_name(statement):
                        statements[index] = self.in_place_assignment(statement)
        return loop

    def in_place_assignment(self, statement):
        """Return `x_1 = _pb.in_place_result(x op y, x)` for `x_1 = x op y` from `x op= y`.

        NumPy computes `x op= y` in an array's own memory, so `x` keeps its
        shape and dtype. The pullback's adjoints of `x op y` already cast
        and sum each cotangent back to its operand, whatever the result's dtype.
        """
        value = statement.value
        checked = _runtime_call(self.aliases, "in_place_result", value, name(value.left.id))
        return gast.copy_location(gast.Assign(targets=statement.targets, value=checked),
                                  statement)

    def add_push(self, frame, block: list, statements: list, position=None) -> None:
        """Save what the block binds, inside a loop, for the pullback to restore."""
        if frame is None or not statements:
            return
        push = _push(frame.tape)
        index = len(statements) if position is None else position
        statements.insert(index, push)
        frame.pushes[id(block)] = (statements, push, _direct_stores(statements))

    def builtin(self, builtin_name: str):
        """Return a builtin, through the runtime when the user's module rebinds it."""
        if builtin_name in self.normalized.parsed.function.__globals__:
            return gast.Attribute(value=name(self.aliases.runtime), attr=builtin_name,
                                  ctx=gast.Load())
        return name(builtin_name)

    def zero(self, variable: str):
        """Return the zero a cotangent starts from before contributions add to it.

        It must support +, so an int variable's zero is 0.0 rather than the
        None that stands for "no tangent".
        """
        if self.scalars:
            return gast.Constant(value=0.0, kind=None)
        return _runtime_call(self.aliases, "zero_cotangent", shape_name(variable))

    def loop_is_active(self, loop: Loop) -> bool:
        return any(self.is_active_operation(op) for op in flatten(loop.body))

    def forward_loop(self, loop: Loop, commenter: _Commenter) -> list:
        """Emit the loop as written, appending each iteration's values to a tape."""
        statement = loop.statement
        if not self.loop_is_active(loop):
            return [self.with_in_place_results(statement)]
        label = statement.target.id if isinstance(statement, gast.For) else "while"
        tape = self.namer.fresh(f"{label}_iterations")
        frame = _Frame(tape, self.namer.fresh(f"{tape}_left"))
        self.loop_frames[id(loop)] = frame
        body = self.forward(loop.body, commenter, frame)
        # Save before the back-edge copies overwrite this iteration's values.
        position = next(
            (i for i, s in enumerate(body)
             if getattr(s, "pb_back_edge", False) or getattr(s, "pb_exit_check", False)),
            len(body),
        )
        self.add_push(frame, loop.body, body, position)
        if isinstance(statement, gast.For):
            frame.pushes[id(loop.body)][2].add(statement.target.id)
            copied = gast.For(target=statement.target, iter=statement.iter, body=body,
                              orelse=[], type_comment=None)
        else:
            copied = gast.While(test=statement.test, body=body, orelse=[])
        empty = gast.List(elts=[], ctx=gast.Load())
        return [_assign(frame.tape, empty), copied]

    def restore(self, frame, block: list, statements: list, always: bool = False) -> list:
        """Pop a block's saved values at the start of its reverse, and read them.

        The pullback reads a restored value under a name of its own, since
        assigning the forward name would make it local to the whole pullback.
        """
        entry = frame.pushes.get(id(block)) if frame else None
        if entry is None:
            return statements
        parent, push, bound = entry
        needed = sorted(_loads(statements) & bound)
        if not needed and not always:
            if any(statement is push for statement in parent):
                parent.remove(push)
            return statements
        # A value read only for its shape is saved as rt.like(value): for an
        # array that is its shape and dtype, so the array itself is freed.
        push.value.args[0].elts = [
            _runtime_call(self.aliases, "like", name(n)) if _shape_only(statements, n)
            else name(n)
            for n in needed
        ]
        saved = [frame.saved.setdefault(n, self.namer.fresh(f"{n}_saved")) for n in needed]
        step = gast.AugAssign(target=name(frame.cursor, True), op=gast.Sub(),
                              value=gast.Constant(value=1, kind=None))
        restores = [step]
        if saved:
            entry_value = gast.Subscript(value=name(frame.tape), slice=name(frame.cursor),
                                         ctx=gast.Load())
            targets = gast.Tuple(elts=[name(n, True) for n in saved], ctx=gast.Store())
            restores.append(gast.Assign(targets=[targets], value=entry_value))
        renamer = _RenameLoads(dict(zip(needed, saved, strict=True)))
        return restores + [renamer.visit(s) for s in statements]

    def active_parameters(self, operation: Operation) -> list[int]:
        """Positions of the callee's parameters that receive an active argument."""
        return sorted({_parameter_position(role) for role, variable in operation.inputs
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
        if operation.starred:
            return self.forward_starred_call(operation, pullback)
        vjp = _runtime_call(self.aliases, "vjp_of", call.func, *self.wrt_names(operation))
        vjp_call = gast.Call(func=vjp, args=call.args, keywords=call.keywords)
        targets = gast.Tuple(elts=[name(target, True), name(pullback, True)],
                             ctx=gast.Store())
        return gast.Assign(targets=[targets], value=vjp_call)

    def forward_starred_call(self, operation: Operation, pullback: str):
        """`y, y_pullback = rt.starred_vjp(f)(xs)` in place of `y = f(*xs)`."""
        call = operation.statement.value
        active = self.active_parameters(operation)
        keywords = [gast.Constant(value=operation.keywords[p - 1], kind=None)
                    for p in active if p > 0]
        vjp = _runtime_call(self.aliases, "starred_vjp", call.func, *keywords)
        if 0 not in active:
            vjp.keywords.append(gast.keyword(arg="arguments",
                                             value=gast.Constant(value=False, kind=None)))
        site = getattr(call.args[0], "pb_site", None)
        if site is not None:
            vjp.keywords.append(gast.keyword(arg="at", value=site))
        vjp_call = gast.Call(func=vjp, args=[call.args[0].value], keywords=call.keywords)
        targets = gast.Tuple(elts=[name(operation.targets[0], True), name(pullback, True)],
                             ctx=gast.Store())
        return gast.Assign(targets=[targets], value=vjp_call)

    def forward_method_call(self, operation: Operation):
        """`y, y_pullback = rt.method_vjp(obj, "f", (0, 1))(x)` for `y = obj.f(x)`."""
        target = operation.targets[0]
        pullback = self.namer.fresh(f"{target}_pullback")
        self.pullback_names[id(operation)] = pullback
        call = operation.statement.value
        positions = gast.Tuple(elts=[gast.Constant(value=p, kind=None)
                                     for p in self.active_parameters(operation)],
                               ctx=gast.Load())
        if getattr(operation, "call_value", False):  # `layer(x)`
            owner, method_name = call.func, "__call__"
        else:  # `obj.method(x)`
            owner, method_name = call.func.value, call.func.attr
        vjp = _runtime_call(self.aliases, "method_vjp", owner,
                            gast.Constant(value=method_name, kind=None), positions)
        vjp_call = gast.Call(func=vjp, args=call.args, keywords=call.keywords)
        targets = gast.Tuple(elts=[name(target, True), name(pullback, True)],
                             ctx=gast.Store())
        return gast.Assign(targets=[targets], value=vjp_call)

    def array_method_guard(self, operation: Operation) -> list:
        """Check that `owner.sum(...)` calls the array method the rule is for.

        A method call is compiled by its name, so on a user object with a
        method of the same name it would differentiate the wrong function.
        Values that rules computed are arrays or numbers and need no check.
        """
        rule = operation.rule
        if not rule.name.startswith("ndarray."):
            return []
        owner = operation.bindings.get("self")
        if not isinstance(owner, gast.Name) or owner.id in self.rule_results:
            return []
        member = gast.Constant(value=rule.name.split(".", 1)[1], kind=None)
        check = _runtime_call(self.aliases, "require_array_member", name(owner.id), member)
        return [gast.Expr(value=check)]

    def forward_checkpoint(self, operation: Operation) -> list:
        """Run the function's forward pass alone, keeping what recomputing it needs.

        `run_checkpointed` returns the value and a record of the call: its
        Generators' states and the value's fingerprint.
        """
        if not self.scalars:
            _compile_checkpointed(operation.callee,
                                  tuple(c.value for c in self.wrt_names(operation)))
        target = operation.targets[0]
        record = self.namer.fresh(f"{target}_checkpoint")
        self.pullback_names[id(operation)] = record
        call = operation.statement.value
        run = _runtime_call(self.aliases, "run_checkpointed", call.func, *call.args)
        run.keywords = call.keywords
        targets = gast.Tuple(elts=[name(target, True), name(record, True)],
                             ctx=gast.Store())
        return [gast.Assign(targets=[targets], value=run, type_comment=None)]

    def is_active_operation(self, operation: Operation) -> bool:
        return any(self.activity.is_active(t) for t in operation.targets) and any(
            self.activity.is_active(v) for _, v in operation.inputs
        )

    # Pullback.

    def pullback(self, block: list, defined: dict, commenter: _Commenter,
                 frame=None) -> list:
        out = []
        for item in reversed(block):
            if isinstance(item, Branch):
                out.extend(self.reverse_branch(item, defined, commenter, frame))
                continue
            if isinstance(item, Loop):
                out.extend(self.reverse_loop(item, defined, commenter))
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

    def reverse_branch(self, branch: Branch, defined: dict, commenter, frame=None) -> list:
        then_defined, else_defined = dict(defined), dict(defined)
        line = source_line_of(branch.statement)
        commenter.last = line
        body = self.pullback(branch.body, then_defined, commenter, frame)
        commenter.last = line
        orelse = self.pullback(branch.orelse, else_defined, commenter, frame)
        commenter.last = None
        # Cotangents of values the branches compute stay inside them; those
        # of values from before the if must be bound on both paths.
        local = {t for item in flatten(branch.body + branch.orelse) for t in item.targets}
        for variable in sorted((set(then_defined) | set(else_defined)) - local):
            for own, other in ((then_defined, body), (else_defined, orelse)):
                if variable not in own:
                    zero = self.zero(variable)
                    other.append(_assign(self.namer.cotangent(variable), zero))
            defined[variable] = then_defined.get(variable, False) and else_defined.get(
                variable, False
            )
        body = self.restore(frame, branch.body, body)
        orelse = self.restore(frame, branch.orelse, orelse)
        if not body and not orelse:
            return []
        out = []
        commenter.before(line, out)
        out.append(gast.If(test=copy.deepcopy(branch.condition),
                           body=body or [gast.Pass()], orelse=orelse))
        return out

    def reverse_loop(self, loop: Loop, defined: dict, commenter) -> list:
        """Pop iterations from the loop's tape and run each one's adjoint.

        Cotangents of values from outside the loop accumulate over the
        iterations, so they are bound to zero first when nothing has reached
        them yet. A header's cotangent passes from one reverse iteration to
        the next through its back-edge copy.
        """
        frame = self.loop_frames.get(id(loop))
        if frame is None:
            return []
        local = {t for item in flatten(loop.body) for t in item.targets} - loop.headers

        # A first pass finds which outer cotangents the loop reaches, and
        # whether all their contributions are numbers or arrays.
        trial = dict(defined)
        enclosing_kinds = self.contribution_kinds
        kinds = self.contribution_kinds = {}
        self.reverse_iteration(loop, trial, _Commenter(self.normalized, ""), frame)
        self.contribution_kinds = enclosing_kinds
        if enclosing_kinds is not None:
            for variable, found in kinds.items():
                enclosing_kinds.setdefault(variable, set()).update(found)

        # An outer value that the loop only indexes, such as the sequence of a
        # `for x in xs` loop, gets an accumulator that each iteration adds
        # its item's cotangent to in place. Adding a whole cotangent of xs
        # per iteration would cost the length of xs each time.
        before = []
        after = []
        accumulators = set()
        state = dict(defined)
        for variable in sorted(set(trial) - set(defined) - local):
            cotangent = self.namer.cotangent(variable)
            if kinds.get(variable) == {"item"} and variable not in loop.headers \
                    and not self.scalars:
                accumulators.add(variable)
                start = _runtime_call(self.aliases, "item_accumulator", name(variable))
                before.append(_assign(cotangent, start))
                end = _runtime_call(self.aliases, "accumulated", name(cotangent))
                after.append(_assign(cotangent, end))
                state[variable] = False
                continue
            zero = self.zero(variable)
            before.append(_assign(cotangent, zero))
            state[variable] = trial[variable]
        entry = dict(state)

        line = source_line_of(loop.statement)
        commenter.last = line
        self.item_accumulators |= accumulators
        body = self.reverse_iteration(loop, state, commenter, frame)
        self.item_accumulators -= accumulators
        body = self.restore(frame, loop.body, body, always=True)
        defined.clear()
        defined.update(entry)
        commenter.last = None
        out = []
        commenter.before(line, out)
        out.extend(before)
        out.extend(self.walk_tape_backwards(loop, frame, body))
        out.extend(after)
        commenter.last = None
        return out

    def walk_tape_backwards(self, loop: Loop, frame: _Frame, body: list) -> list:
        """Loop over the tape from its end, restoring each iteration's values.

        When only the loop body saves values, each entry is one iteration and
        a `for` over `reversed(tape)` reads it. Branches that save values of
        their own add entries, so then a cursor walks the tape.
        """
        branch_pushes = [
            push for block_id, (parent, push, _) in frame.pushes.items()
            if block_id != id(loop.body) and any(s is push for s in parent)
        ]
        if not branch_pushes:
            step, *rest = body
            if rest and isinstance(rest[0], gast.Assign) and isinstance(
                rest[0].value, gast.Subscript
            ):
                target, rest = rest[0].targets[0], rest[1:]
            else:
                target = name(self.namer.fresh("_entry"), True)
            backwards = gast.Call(func=self.builtin("reversed"),
                                  args=[name(frame.tape)], keywords=[])
            return [gast.For(target=target, iter=backwards, body=rest or [gast.Pass()],
                             orelse=[], type_comment=None)]
        length = gast.Call(func=self.builtin("len"), args=[name(frame.tape)], keywords=[])
        return [_assign(frame.cursor, length),
                gast.While(test=name(frame.cursor), body=body, orelse=[])]

    def reverse_iteration(self, loop: Loop, state: dict, commenter, frame) -> list:
        back_edges = [item for item in loop.body if isinstance(item, Operation)
                      and getattr(item.statement, "pb_back_edge", False)]
        rest = [item for item in loop.body if not any(item is b for b in back_edges)]
        headers = {h for h in loop.headers if self.activity.is_active(h)}
        for header in headers:
            state.setdefault(header, False)
        out = self.pullback(back_edges, state, commenter, frame)
        for header in headers:
            state.pop(header, None)  # Passed on to the back edge's source.
        out.extend(self.pullback(rest, state, commenter, frame))
        for header in sorted(headers):
            if header not in state:
                zero = self.zero(header)
                out.append(_assign(self.namer.cotangent(header), zero))
                state[header] = False
        return out

    def record_contribution(self, variable: str, kind: str = "other") -> None:
        if self.contribution_kinds is not None:
            self.contribution_kinds.setdefault(variable, set()).add(kind)

    def accumulate(self, variable: str, contribution, numeric: bool,
                   defined: dict, out: list, kind: str = "other") -> None:
        """Add a contribution to `variable`'s cotangent, binding it if new."""
        self.record_contribution(variable, kind)
        cotangent = self.namer.cotangent(variable)
        # Only values computed by rules are arrays or numbers for sure: a
        # parameter or a display may be a list, for which + would concatenate.
        numeric = numeric and (self.scalars or variable in self.numeric_variables)
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
        elif kind in (USER_CALL, USER_METHOD):
            pullback = self.pullback_names[id(operation)]
            self.reverse_user_call(operation, pullback, active_inputs, defined, out)
        elif kind == ATTRIBUTE:
            target = operation.targets[0]
            attribute = operation.statement.value.attr
            for _, variable in active_inputs:
                contribution = _runtime_call(
                    self.aliases, "attribute_adjoint",
                    name(self.namer.cotangent(target)), name(variable),
                    gast.Constant(value=attribute, kind=None))
                self.accumulate(variable, contribution, False, defined, out)
        elif kind == CHECKPOINT:
            call = operation.statement.value
            pullback = self.namer.fresh(f"{operation.targets[0]}_pullback")
            record = self.pullback_names[id(operation)]
            call = copy.deepcopy(call)
            wrt = gast.Tuple(elts=self.wrt_names(operation), ctx=gast.Load())
            recompute = _runtime_call(self.aliases, "recompute", call.func, wrt,
                                      name(record), *call.args)
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
        # A variable used twice, as in `x * x`, gets one summed contribution.
        by_variable: dict[str, list] = {}
        for role, variable in active_inputs:
            by_variable.setdefault(variable, []).append(role)
        for variable, roles in by_variable.items():
            contribution = None
            broadcasts = False
            for role in roles:
                param = role
                if isinstance(role, tuple):  # One element of a *name parameter.
                    param, position = role
                    bindings["index"] = gast.Constant(value=position, kind=None)
                term = rules.instantiate(rule.adjoints[param], bindings)
                contribution = term if contribution is None else self.sum_terms(
                    variable, contribution, term)
                broadcasts = broadcasts or (
                    rule.broadcasting and not self.scalars
                    and self.may_broadcast(operation, param))
            if broadcasts:
                contribution = _runtime_call(self.aliases, "unbroadcast",
                                             contribution, shape_name(variable))
            self.accumulate(variable, contribution, True, defined, out)

    def sum_terms(self, variable: str, left, right):
        """Return the sum of two contributions to `variable`'s cotangent.

        `+` adds numbers and arrays, but it concatenates the cotangents of a
        tuple or list, as in `f(*xs, *xs)`. So only a variable known to be a
        number or an array gets `+`, and any other gets `rt.add`.
        """
        if self.scalars or variable in self.numeric_variables:
            return gast.BinOp(left=left, op=gast.Add(), right=right)
        return _runtime_call(self.aliases, "add", left, right)

    @staticmethod
    def may_broadcast(operation: Operation, param: str) -> bool:
        """Return whether an operand may broadcast: unless all other arguments are literals."""
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
        # Copies: the pullback renames values it restores from a tape, and
        # must not rename the forward statement's own nodes.
        index = copy.deepcopy(operation.statement.value.slice)
        index_expression = gast.Subscript(
            value=gast.Attribute(value=self.aliases.numpy, attr="s_", ctx=gast.Load()),
            slice=index, ctx=gast.Load())
        for _, variable in active_inputs:
            item_cotangent = name(self.namer.cotangent(target))
            if variable in self.item_accumulators:
                cotangent = self.namer.cotangent(variable)
                # `np.s_[i]` is `i` itself, so a plain name needs no np.s_.
                position = index if isinstance(index, gast.Name) else index_expression
                add = _runtime_call(self.aliases, "accumulate_item", name(cotangent),
                                    position, item_cotangent)
                out.append(_assign(cotangent, add))
                continue
            contribution = _runtime_call(
                self.aliases, "subscript_adjoint", item_cotangent, name(variable),
                index_expression)
            self.accumulate(variable, contribution, False, defined, out, kind="item")

    def reverse_user_call(self, operation, pullback, active_inputs, defined, out) -> None:
        """`x_bar, w_bar = y_pullback(y_bar)`, one cotangent per active parameter.

        The cotangent of a `*name` parameter is a tuple, unpacked into one
        name per argument it took: `x_bar, (a_bar, b_bar) = y_pullback(y_bar)`.
        """
        target = operation.targets[0]
        positions = self.active_parameters(operation)
        elements = [None] * len(positions)
        followups = []
        for role, variable in active_inputs:
            self.record_contribution(variable)
            if variable not in defined:
                cotangent = self.namer.cotangent(variable)
                defined[variable] = False
            else:
                cotangent = self.namer.fresh(
                    f"{variable}_bar_from_{_callee_word(operation.callee)}")
                followups.append((variable, cotangent))
            slot = positions.index(_parameter_position(role))
            if isinstance(role, tuple):  # One argument of a *name parameter.
                if elements[slot] is None:
                    unused = self.namer.fresh("unused")
                    items = [name(unused, True)
                             for _ in range(operation.variadic_count)]
                    elements[slot] = gast.Tuple(elts=items, ctx=gast.Store())
                elements[slot].elts[role[1]] = name(cotangent, True)
            else:
                elements[slot] = name(cotangent, True)
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
        suffix = "_vjp_for_numbers" if self.scalars else "_vjp"
        function_name = self.namer.fresh(f"{_base_name(parsed)}{suffix}")
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
        for item in flatten(self.block):
            if result in item.targets:
                return item.kind == RULE
        return False


# Checkpointed functions whose VJP is being compiled, by (id, wrt): a
# function that checkpoints a call to itself compiles once.
_compiling_checkpointed: set[tuple] = set()


def _compile_checkpointed(callee, wrt: tuple[str, ...]) -> None:
    """Compile the VJP that recomputes `callee`, so its errors surface with the caller's.

    Without this, a checkpointed function that cannot be differentiated would
    run its forward pass and fail only when the pullback recomputes it.
    """
    target = markers.checkpointed_target(callee) or callee
    key = (id(getattr(target, "__func__", target)), wrt)
    if key in _compiling_checkpointed:
        return
    _compiling_checkpointed.add(key)
    try:
        registry.single_use_vjp_of(target, *wrt)
        registry.primal_of(target)
    finally:
        _compiling_checkpointed.discard(key)


def _augments_a_name(statement) -> bool:
    """Return whether `statement` is `x_1 = x op y`, normalized from `x op= y`."""
    value = getattr(statement, "value", None)
    return (isinstance(statement, gast.Assign) and getattr(value, "pb_augmented", False)
            and isinstance(value.left, gast.Name))


def is_arithmetic_only(block: list) -> bool:
    """Return whether every operation maps numbers to numbers, so none broadcasts.

    Such a function, given Python numbers, computes only numbers: its VJP for
    numbers drops every unbroadcast and adds cotangents with +.
    """
    for item in flatten(block):
        if item.kind == RULE:
            if not item.rule.arithmetic:
                return False
        elif item.kind == COPY:
            continue
        elif item.kind == "no derivative":
            # Comparisons, floor division and literals give numbers; calls
            # with no derivative (np.zeros, say) may give arrays.
            if not (item.stop_name == "comparison"
                    or item.stop_name.startswith("the operator")
                    or not item.reads):
                return False
        elif item.kind != "effect":
            return False
    return True


def flatten(block):
    for item in block:
        if isinstance(item, Branch):
            yield from flatten(item.body)
            yield from flatten(item.orelse)
        elif isinstance(item, Loop):
            yield from flatten(item.body)
        else:
            yield item


def _source(node) -> str:
    import ast

    return ast.unparse(gast.gast_to_ast(node))


def _parameter_position(role) -> int:
    """Return the callee's parameter position of a call input's role."""
    return role[0] if isinstance(role, tuple) else role


def _callee_word(callee) -> str:
    return getattr(callee, "__name__", "call").strip("<>") or "call"


def _base_name(parsed) -> str:
    # `__call__` names its VJP `call_vjp`, not `call___vjp`.
    return "lambda" if parsed.is_lambda else parsed.name.strip("_") or "function"


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
    vararg = [copied.vararg] if copied.vararg is not None else []
    for arg in copied.posonlyargs + copied.args + vararg + copied.kwonlyargs:
        arg.annotation = None
        arg.ctx = gast.Param()
    return copied
