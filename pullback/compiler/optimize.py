"""Simplify generated pullbacks until nothing changes.

Templates are written for the general case, so `x ** 2` first becomes
`g * 2 * x ** (2 - 1)`; folding turns that into `g * 2 * x`. Dead code
elimination drops cotangents that no statement reads. The forward pass is the user's own
code and is left alone.
"""

from __future__ import annotations

import operator

import gast

_FOLDABLE = {
    gast.Add: operator.add,
    gast.Sub: operator.sub,
    gast.Mult: operator.mul,
    gast.Div: operator.truediv,
    gast.Pow: operator.pow,
}


def _number(node):
    if isinstance(node, gast.Constant) and type(node.value) in (int, float):
        return node.value
    if (
        isinstance(node, gast.UnaryOp)
        and isinstance(node.op, gast.USub)
        and isinstance(node.operand, gast.Constant)
        and type(node.operand.value) in (int, float)
    ):
        return -node.operand.value
    return None


def _constant(value):
    if value < 0:
        return gast.UnaryOp(op=gast.USub(), operand=gast.Constant(value=-value, kind=None))
    return gast.Constant(value=value, kind=None)


class _Fold(gast.NodeTransformer):
    """Fold arithmetic on number literals and drop identities such as `x ** 1`."""

    def __init__(self):
        self.changed = False

    def visit_BinOp(self, node):
        self.generic_visit(node)
        left, right = _number(node.left), _number(node.right)
        op = type(node.op)
        if left is not None and right is not None and op in _FOLDABLE:
            try:
                value = _FOLDABLE[op](left, right)
            except (ArithmeticError, ValueError):
                return node
            if isinstance(value, int | float) and abs(value) < 1e15:
                self.changed = True
                return _constant(value)
        if op is gast.Pow and right == 1:
            self.changed = True
            return node.left
        if op is gast.Mult and right == 1:
            self.changed = True
            return node.left
        if op is gast.Mult and left == 1:
            self.changed = True
            return node.right
        if op is gast.Div and right == 1:
            self.changed = True
            return node.left
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if (
            isinstance(node.op, gast.USub)
            and isinstance(node.operand, gast.UnaryOp)
            and isinstance(node.operand.op, gast.USub)
        ):
            self.changed = True
            return node.operand.operand
        return node


def _reads(node) -> set[str]:
    return {
        n.id
        for n in gast.walk(node)
        if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)
    }


# Runtime helpers that run user code: hooks, recomputation, called VJPs.
_EFFECTFUL_HELPERS = {"apply_hook", "recompute", "vjp_of"}


def _is_pure(value) -> bool:
    """Return whether evaluating `value` has no effect besides its result."""
    for node in gast.walk(value):
        if isinstance(node, gast.Call):
            func = node.func
            # Calls to the runtime and to NumPy are pure; pullbacks of called
            # functions and user hooks may have effects and are kept.
            if not isinstance(func, gast.Attribute) or func.attr in _EFFECTFUL_HELPERS:
                return False
    return True


def _is_self_copy(statement) -> bool:
    """Return whether `statement` is `x = x`, which a loop's renaming can leave."""
    value = statement.value
    return isinstance(value, gast.Name) and value.id == statement.targets[0].id


def _eliminate_dead(statements: list, live: set[str]) -> tuple[list, bool]:
    """Remove pure assignments whose targets no later statement reads, and `x = x`."""
    changed = False
    kept = []
    for statement in reversed(statements):
        if isinstance(statement, gast.While | gast.For):
            changed = _eliminate_dead_in_loop(statement, live) or changed
            live |= _reads(statement)
            kept.append(statement)
            continue
        if isinstance(statement, gast.If):
            body, body_changed = _eliminate_dead(statement.body, set(live))
            orelse, else_changed = _eliminate_dead(statement.orelse, set(live))
            changed = changed or body_changed or else_changed
            statement.body = body or [gast.Pass()]
            statement.orelse = orelse
            live |= _reads(statement)
            kept.append(statement)
            continue
        if (
            isinstance(statement, gast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], gast.Name)
            and (statement.targets[0].id not in live or _is_self_copy(statement))
            and _is_pure(statement.value)
        ):
            changed = True
            continue
        live |= _reads(statement)
        kept.append(statement)
    kept.reverse()
    return kept, changed


def _stores(statements: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for statement in statements:
        for node in gast.walk(statement):
            if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Store):
                counts[node.id] = counts.get(node.id, 0) + 1
    return counts


class _Rename(gast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old = old
        self.new = new

    def visit_Name(self, node):
        if node.id == self.old and isinstance(node.ctx, gast.Load):
            node.id = self.new
        return node


def _last_read(statements: list, name: str) -> int:
    last = -1
    for index, statement in enumerate(statements):
        if name in _reads(statement):
            last = index
    return last


def _propagate_copies(statements: list, function_stores: dict,
                      outside_reads: set[str]) -> bool:
    """Replace `a_bar = b_bar` by using `b_bar`, where that reads the same value.

    The copy's name must be bound once in the whole pullback and read only in
    this block, and the source must not be rebound before the copy's last
    read. Loop and branch bodies are handled the same way, inside out.
    """
    changed = False
    for index, statement in enumerate(statements):
        if isinstance(statement, gast.While | gast.For | gast.If):
            inner_outside = outside_reads | _reads_except(statements, index)
            for body in (statement.body, getattr(statement, "orelse", [])):
                changed = _propagate_copies(body, function_stores,
                                            inner_outside | _reads_of_other(statement, body)) \
                    or changed
    index = 0
    while index < len(statements):
        statement = statements[index]
        if (
            isinstance(statement, gast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], gast.Name)
            and isinstance(statement.value, gast.Name)
        ):
            copy_name = statement.targets[0].id
            source_name = statement.value.id
            rest = statements[index + 1 :]
            last = _last_read(rest, copy_name)
            between = rest[:last] if last >= 0 else []
            rebinds_source = source_name in _stores(between) or (
                last >= 0 and not isinstance(rest[last], gast.Assign)
                and source_name in _stores([rest[last]])
            )
            if (function_stores.get(copy_name) == 1 and copy_name not in outside_reads
                    and not rebinds_source):
                rename = _Rename(copy_name, source_name)
                statements[index + 1 :] = [rename.visit(s) for s in rest]
                del statements[index]
                changed = True
                continue
        index += 1
    return changed


def _reads_except(statements: list, skipped: int) -> set[str]:
    reads = set()
    for index, statement in enumerate(statements):
        if index != skipped:
            reads |= _reads(statement)
    return reads


def _reads_of_other(statement, body: list) -> set[str]:
    """Reads of a compound statement outside one of its bodies."""
    reads = set()
    for field in ("test", "iter", "target"):
        node = getattr(statement, field, None)
        if node is not None:
            reads |= _reads(node)
    for other in (statement.body, getattr(statement, "orelse", [])):
        if other is not body:
            for child in other:
                reads |= _reads(child)
    if isinstance(statement, gast.While | gast.For):
        # A loop body runs again: what it reads at the top of an iteration
        # is read after the end of the previous one.
        pass
    return reads


def optimize_pullback(pullback: gast.FunctionDef) -> None:
    """Fold constants, propagate copies and remove dead code, in place."""
    while True:
        folder = _Fold()
        pullback.body = [folder.visit(s) for s in pullback.body]
        copied = _propagate_copies(pullback.body, _stores(pullback.body), set())
        body, removed = _eliminate_dead(pullback.body, set())
        pullback.body = body
        if not (folder.changed or copied or removed):
            return


def _eliminate_dead_in_loop(loop, live: set[str]) -> bool:
    """Remove dead code in a loop body; what a later iteration reads stays live."""
    inside = live | _reads(loop)
    body, changed = _eliminate_dead(loop.body, inside)
    if not any(not _is_comment(statement) for statement in body):
        body.append(gast.Pass())  # A body of comments alone is no body.
    loop.body = body
    return changed


def _is_comment(statement) -> bool:
    return (isinstance(statement, gast.Expr) and isinstance(statement.value, gast.Constant)
            and isinstance(statement.value.value, str))


def _top_level_stores(statement) -> set[str]:
    """Return the names that `statement` binds on every path through it.

    These are the targets of a plain assignment, and the names that both
    branches of an `if` bind this way.
    """
    if isinstance(statement, gast.If):
        if not statement.orelse:
            return set()
        return _stores_on_every_path(statement.body) & _stores_on_every_path(statement.orelse)
    if not isinstance(statement, gast.Assign):
        return set()
    return {
        n.id
        for target in statement.targets
        for n in gast.walk(target)
        if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)
    }


def _stores_on_every_path(statements: list) -> set[str]:
    stores = set()
    for statement in statements:
        stores |= _top_level_stores(statement)
    return stores


def release_dead_locals(pullback: gast.FunctionDef, captured: set[str] = frozenset()) -> None:
    """Delete each pullback local after its last use, in place.

    Every cotangent and recomputed pullback has a name of its own, so without
    this they would all stay alive until the pullback returns: a chain of
    checkpointed blocks would hold every block's recomputed intermediates at
    once. Only names bound on every path are deleted: those of plain
    assignments at the top level, and those that both branches of a
    top-level `if` bind.

    `captured` names forward values that the pullback may delete as well,
    through `nonlocal`. That makes the pullback single-use, so only a caller
    that runs it once passes them.
    """
    body = pullback.body
    if not body or not isinstance(body[-1], gast.Return):
        return
    returned = _reads(body[-1])
    last_use: dict[str, int] = {arg.id: 0 for arg in pullback.args.args}
    deletable = set(last_use)
    for index, statement in enumerate(body[:-1]):
        for stored in _top_level_stores(statement):
            deletable.add(stored)
            last_use.setdefault(stored, index)
        for read in _reads(statement):
            if read in captured:
                deletable.add(read)
                last_use[read] = index
            elif read in last_use:
                last_use[read] = index
    released = _delete_after_last_use(body[:-1], deletable - returned, last_use)
    released.append(body[-1])
    outer = sorted((deletable - returned) & captured, key=_natural_order)
    # One declaration per few names keeps each line short: a chain of
    # checkpointed blocks captures dozens.
    declarations = [gast.Nonlocal(names=outer[start:start + _NAMES_PER_NONLOCAL])
                    for start in range(0, len(outer), _NAMES_PER_NONLOCAL)]
    pullback.body = declarations + released


_NAMES_PER_NONLOCAL = 6


def _natural_order(name: str) -> tuple:
    """Sort key that puts x_2 before x_10: numeric parts compare as numbers."""
    # A number sorts before a word in the same place, so no two parts of
    # different types are ever compared.
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in name.split("_"))


def forward_names(vjp: gast.FunctionDef) -> set[str]:
    """Names the VJP binds on every path before its pullback.

    These are its parameters and the forward locals that `_top_level_stores`
    finds. A name bound only in one branch, such as `t` in `if flag: t = ...`,
    may be unbound when the pullback runs, so it is left out.
    """
    arguments = vjp.args
    names = {a.id for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
    if arguments.vararg is not None:
        names.add(arguments.vararg.id)
    for statement in vjp.body:
        if isinstance(statement, gast.FunctionDef):
            break
        names |= _top_level_stores(statement)
    return names


def _nested_reads(statements: list) -> set[str]:
    """Names that lambdas and nested functions read: their cells must stay."""
    reads = set()
    for statement in statements:
        for node in gast.walk(statement):
            if isinstance(node, gast.Lambda | gast.FunctionDef):
                body = node.body if isinstance(node.body, list) else [node.body]
                for part in body:
                    reads |= _reads(part)
    return reads


def release_dead_forward_locals(vjp: gast.FunctionDef) -> None:
    """Delete each forward local after its last use, unless the pullback reads it.

    A value computed only to compute the next one, such as `b` in
    `c = np.tanh(a * x)` normalized to `b = a * x; c = np.tanh(b)`, would
    otherwise stay alive until the VJP returns, next to every value the
    pullback keeps. Only names that plain assignments at the top level bind
    are deleted, and never a name that the pullback, a nested function or
    the returned value reads.
    """
    body = vjp.body
    split = next((i for i, s in enumerate(body) if isinstance(s, gast.FunctionDef)), None)
    if split is None or not isinstance(body[-1], gast.Return):
        return
    forward = body[:split]
    still_read = _nested_reads(forward) | _reads(body[-1])
    for statement in body[split:-1]:
        still_read |= _reads(statement)
    last_use: dict[str, int] = {}
    deletable: set[str] = set()
    for index, statement in enumerate(forward):
        for stored in _top_level_stores(statement):
            deletable.add(stored)
            last_use.setdefault(stored, index)
        for read in _reads(statement):
            if read in last_use:
                last_use[read] = index
    vjp.body = _delete_after_last_use(forward, deletable - still_read, last_use) + body[split:]


def _delete_after_last_use(statements: list, names: set[str],
                           last_use: dict[str, int]) -> list:
    """Return `statements` with a `del` of each name after the statement that last reads it."""
    releases: dict[int, list[str]] = {}
    for local in sorted(names):
        releases.setdefault(last_use[local], []).append(local)
    released = []
    for index, statement in enumerate(statements):
        released.append(statement)
        deleted = releases.get(index)
        if deleted:
            targets = [gast.Name(id=n, ctx=gast.Del(), annotation=None, type_comment=None)
                       for n in deleted]
            released.append(gast.Delete(targets=targets))
    return released


# Runtime helpers whose array result never shares memory with an argument, a
# saved primal or another cotangent: a pullback that reads such a result once
# may let the runtime write into it.
_FRESH_RESULT_HELPERS = frozenset({
    "matmul_adjoint_lhs", "matmul_adjoint_rhs", "mean_adjoint", "mean_adjoint_times",
    "maximum_share", "minimum_share", "tanh_adjoint",
    "add_into", "subtract_into", "multiply_into", "divide_into",
})

# Runtime helpers that can compute their result in the memory of their first
# argument, the incoming cotangent, when passed `overwrite=True`.
_OVERWRITING_HELPERS = frozenset({"maximum_share", "minimum_share"})


def _runtime_helper(value, runtime_alias: str) -> str | None:
    """Return the helper's name if `value` is a call `runtime_alias.helper(...)`."""
    if not isinstance(value, gast.Call):
        return None
    func = value.func
    if (
        isinstance(func, gast.Attribute)
        and isinstance(func.value, gast.Name)
        and func.value.id == runtime_alias
    ):
        return func.attr
    return None


def _load_counts(node) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in gast.walk(node):
        if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
            counts[n.id] = counts.get(n.id, 0) + 1
    return counts


def overwrite_dead_cotangents(pullback: gast.FunctionDef, runtime_alias: str) -> None:
    """Let a helper write into its incoming cotangent where nothing else can see it.

    The ReLU adjoint `maximum_share(h_bar, z, 0.0)` masks `h_bar`. When
    `h_bar` is the fresh result of a helper in `_FRESH_RESULT_HELPERS` and
    the pullback reads it nowhere else, no other name, saved value or caller
    refers to that array, so masking it in place is safe. That saves an array the
    size of the layer on every backward pass, and with it the page faults of
    touching new memory. Only top-level statements are rewritten, where each
    name has the one binding the single-assignment form gives it.
    """
    params = {arg.id for arg in pullback.args.args}
    loads = _load_counts(pullback)
    stores = _stores(pullback.body)
    fresh = {
        statement.targets[0].id
        for statement in pullback.body
        if isinstance(statement, gast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], gast.Name)
        and _runtime_helper(statement.value, runtime_alias) in _FRESH_RESULT_HELPERS
    }
    for statement in pullback.body:
        if not isinstance(statement, gast.Assign):
            continue
        call = statement.value
        if _runtime_helper(call, runtime_alias) not in _OVERWRITING_HELPERS:
            continue
        first = call.args[0] if call.args else None
        if (
            isinstance(first, gast.Name)
            and first.id in fresh
            and first.id not in params
            and stores.get(first.id) == 1
            and loads.get(first.id) == 1
        ):
            call.keywords.append(gast.keyword(arg="overwrite", value=gast.Constant(True, None)))


# Arithmetic on a dead cotangent that the runtime can write into its memory.
_INTO_HELPERS = {
    gast.Add: "add_into", gast.Sub: "subtract_into",
    gast.Mult: "multiply_into", gast.Div: "divide_into",
}
_COMMUTATIVE = (gast.Add, gast.Mult)

# Operators whose result is a new value and keeps no reference to an operand.
_ARITHMETIC = (gast.Add, gast.Sub, gast.Mult, gast.Div, gast.Pow)


def _fresh_names(pullback: gast.FunctionDef, runtime_alias: str) -> set[str]:
    """Top-level names bound once, to a new array that nothing else refers to.

    That is the result of a helper in `_FRESH_RESULT_HELPERS` or of
    arithmetic, which NumPy computes into a new array.
    """
    params = {arg.id for arg in pullback.args.args}
    stores = _stores(pullback.body)
    fresh = set()
    for statement in pullback.body:
        if not (
            isinstance(statement, gast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], gast.Name)
        ):
            continue
        target = statement.targets[0].id
        value = statement.value
        is_fresh = _runtime_helper(value, runtime_alias) in _FRESH_RESULT_HELPERS or (
            isinstance(value, gast.BinOp) and isinstance(value.op, _ARITHMETIC)
        )
        if is_fresh and target not in params and stores.get(target) == 1:
            fresh.add(target)
    return fresh


def _uses(statement, name: str) -> list[tuple]:
    """Return `(parent, node)` for each read of `name` in `statement`."""
    found = []
    for parent in gast.walk(statement):
        for child in gast.iter_child_nodes(parent):
            if (
                isinstance(child, gast.Name)
                and child.id == name
                and isinstance(child.ctx, gast.Load)
            ):
                found.append((parent, child))
    return found


def _runtime_attribute(runtime_alias: str, helper: str):
    return gast.Attribute(
        value=gast.Name(id=runtime_alias, ctx=gast.Load(), annotation=None, type_comment=None),
        attr=helper, ctx=gast.Load(),
    )


def _into_call(operation: gast.BinOp, target, runtime_alias: str):
    """Return the call writing `operation` into the array `target` computes, or None.

    `target` is the left operand, or either operand of `+` and `*`, whose
    IEEE results do not depend on the operand order.
    """
    helper = _INTO_HELPERS.get(type(operation.op))
    if helper is None:
        return None
    if operation.left is target:
        other = operation.right
    elif operation.right is target and isinstance(operation.op, _COMMUTATIVE):
        other = operation.left
    else:
        return None
    return gast.Call(func=_runtime_attribute(runtime_alias, helper), args=[target, other],
                     keywords=[])


def _parents(statement) -> dict[int, gast.AST]:
    return {
        id(child): parent
        for parent in gast.walk(statement)
        for child in gast.iter_child_nodes(parent)
    }


def _write_into(statement, name_node, runtime_alias: str):
    """Rewrite the arithmetic around `name_node` to reuse its array; return the statement.

    The array stays reusable up the expression: through `unbroadcast`, which
    returns its argument or a new sum, and through each rewritten operation,
    which returns the array it wrote into. So `x_bar + unbroadcast(b_bar * a,
    x)` becomes `add_into(unbroadcast(multiply_into(b_bar, a), x), x_bar)`.
    """
    parents = _parents(statement)
    target = name_node
    while True:
        parent = parents.get(id(target))
        if (
            isinstance(parent, gast.Call)
            and _runtime_helper(parent, runtime_alias) == "unbroadcast"
            and parent.args
            and parent.args[0] is target
        ):
            target = parent
            continue
        if not isinstance(parent, gast.BinOp):
            return statement
        replacement = _into_call(parent, target, runtime_alias)
        if replacement is None:
            return statement
        statement = _ReplaceNode(parent, replacement).visit(statement)
        parents = _parents(statement)
        target = replacement


class _ReplaceNode(gast.NodeTransformer):
    def __init__(self, old, new):
        self.old = old
        self.new = new

    def visit(self, node):
        if node is self.old:
            return self.new
        return super().visit(node)


def write_arithmetic_into_dead_cotangents(pullback: gast.FunctionDef,
                                          runtime_alias: str) -> None:
    """Compute the last arithmetic on a fresh cotangent in that cotangent's memory.

    In the adjoint of `b = a * x`, `a_bar = b_bar * x` and then
    `x_bar = x_bar + b_bar * a` read `b_bar` for the last time. When `b_bar`
    is fresh (see `_fresh_names`) and every read of it is an operand of
    arithmetic, which keeps no reference, then nothing else refers to the
    array at its last read. So `b_bar * a` may be written into it:
    `_pb.multiply_into(b_bar, a)`. The runtime falls back to a new array
    where the result's shape or dtype differs from `b_bar`'s.
    """
    fresh = _fresh_names(pullback, runtime_alias)
    body = pullback.body
    for name in sorted(fresh):
        reading = [index for index, s in enumerate(body) if name in _reads(s)]
        if not reading:
            continue
        if any(isinstance(body[i], gast.For | gast.While | gast.If) for i in reading):
            continue
        uses = [use for index in reading for use in _uses(body[index], name)]
        if not all(isinstance(parent, gast.BinOp) and isinstance(parent.op, _ARITHMETIC)
                   for parent, _ in uses):
            continue
        last = _uses(body[reading[-1]], name)
        if len(last) == 1:
            body[reading[-1]] = _write_into(body[reading[-1]], last[0][1], runtime_alias)


def _full_mean_adjoint(statement, runtime_alias: str):
    """Return the call if `statement` is `name = mean_adjoint(g, a, None, False)`."""
    if not (
        isinstance(statement, gast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], gast.Name)
        and _runtime_helper(statement.value, runtime_alias) == "mean_adjoint"
    ):
        return None
    call = statement.value
    if call.keywords or len(call.args) != 4:
        return None
    axis, keepdims = call.args[2:]
    if not (
        isinstance(axis, gast.Constant) and axis.value is None
        and isinstance(keepdims, gast.Constant) and keepdims.value is False
    ):
        return None
    return call


def _is_number(node) -> bool:
    return isinstance(node, gast.Constant) and type(node.value) in (int, float)


def _product_with(statement, name: str):
    """Return `(other, factor)` if `statement` assigns `name * factor * other`.

    `factor` is a number literal or None for `name * other`, and `other` is
    a name, so moving its read into a call changes no evaluation order.
    """
    if not (
        isinstance(statement, gast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], gast.Name)
    ):
        return None
    product = statement.value
    if not (
        isinstance(product, gast.BinOp)
        and isinstance(product.op, gast.Mult)
        and isinstance(product.right, gast.Name)
    ):
        return None
    left = product.left
    if isinstance(left, gast.Name) and left.id == name:
        return product.right, None
    if (
        isinstance(left, gast.BinOp)
        and isinstance(left.op, gast.Mult)
        and isinstance(left.left, gast.Name)
        and left.left.id == name
        and _is_number(left.right)
    ):
        return product.right, left.right
    return None


def fold_mean_adjoints_into_products(pullback: gast.FunctionDef, runtime_alias: str) -> None:
    """Fold a full mean's adjoint into the product that reads it next.

    The adjoint of `np.mean(d ** 2)` fills an array with `g / d.size`, then
    multiplies it by 2 and by `d`. `_pb.mean_adjoint_times(g, d_pow_2, d, 2)`
    computes the same numbers, with one product where the shapes allow
    (see the runtime helper). The folded statement must come right after
    the mean's and be its only reader, so `g` and the mean's operand still
    hold the same values there.
    """
    body = pullback.body
    loads = _load_counts(pullback)
    stores = _stores(body)
    folded = []
    for index in range(len(body) - 1):
        call = _full_mean_adjoint(body[index], runtime_alias)
        if call is None:
            continue
        name = body[index].targets[0].id
        if loads.get(name) != 1 or stores.get(name) != 1:
            continue
        following = body[index + 1]
        product = _product_with(following, name)
        if product is None:
            continue
        other, factor = product
        args = call.args[:2] + [other] + ([factor] if factor is not None else [])
        following.value = gast.Call(
            func=_runtime_attribute(runtime_alias, "mean_adjoint_times"),
            args=args, keywords=[])
        folded.append(index)
    for index in reversed(folded):
        del body[index]


def save_shapes_only(vjp: gast.FunctionDef, pullback: gast.FunctionDef,
                     runtime_alias: str) -> None:
    """Keep only the shape and dtype of a forward value the pullback reads for them.

    `unbroadcast(g, x_matmul_w1)` needs only the shape and dtype of
    `x_matmul_w1`. Saving `_pb.like_when_large(x_matmul_w1)` right after the
    value is computed lets `release_dead_forward_locals` free the array itself once
    the forward pass is done with it, instead of keeping it for the pullback.
    Only names bound once, by a top-level assignment of the forward pass,
    are saved this way, and only when every read in the pullback is marked
    `pb_shape_only`.
    """
    split = next((i for i, s in enumerate(vjp.body) if s is pullback), None)
    if split is None:
        return
    forward = vjp.body[:split]
    stores = _stores(vjp.body)
    used_names = {n.id for n in gast.walk(vjp) if isinstance(n, gast.Name)}
    reads_by_name: dict[str, list] = {}
    for node in gast.walk(pullback):
        if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Load):
            reads_by_name.setdefault(node.id, []).append(node)
    saved_after: dict[int, list] = {}
    for index, statement in enumerate(forward):
        for stored in _top_level_stores(statement):
            reads = reads_by_name.get(stored)
            if (
                not reads
                or stores.get(stored) != 1
                or not all(getattr(node, "pb_shape_only", False) for node in reads)
            ):
                continue
            like_name = f"{stored}_like"
            while like_name in used_names:
                like_name += "_"
            used_names.add(like_name)
            for node in reads:
                node.id = like_name
            call = gast.Call(
                func=gast.Attribute(
                    value=gast.Name(id=runtime_alias, ctx=gast.Load(), annotation=None,
                                    type_comment=None),
                    attr="like_when_large", ctx=gast.Load()),
                args=[gast.Name(id=stored, ctx=gast.Load(), annotation=None,
                                type_comment=None)],
                keywords=[])
            saved_after.setdefault(index, []).append(gast.Assign(
                targets=[gast.Name(id=like_name, ctx=gast.Store(), annotation=None,
                                   type_comment=None)],
                value=call))
    if not saved_after:
        return
    rebuilt = []
    for index, statement in enumerate(forward):
        rebuilt.append(statement)
        rebuilt.extend(saved_after.get(index, ()))
    vjp.body = rebuilt + vjp.body[split:]
