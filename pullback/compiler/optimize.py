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


def _eliminate_dead(statements: list, live: set[str]) -> tuple[list, bool]:
    """Remove pure assignments whose targets no later statement reads."""
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
            and statement.targets[0].id not in live
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
    loop.body = body or [gast.Pass()]
    return changed


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


def release_dead_locals(pullback: gast.FunctionDef) -> None:
    """Delete each pullback local after its last use, in place.

    Every cotangent and recomputed pullback has a name of its own, so without
    this they would all stay alive until the pullback returns: a chain of
    checkpointed blocks would hold every block's recomputed intermediates at
    once. Only names bound on every path are deleted: those of plain
    assignments at the top level, and those that both branches of a
    top-level `if` bind.
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
            if read in last_use:
                last_use[read] = index
    releases: dict[int, list[str]] = {}
    for local in sorted(deletable - returned):
        releases.setdefault(last_use[local], []).append(local)
    released = []
    for index, statement in enumerate(body[:-1]):
        released.append(statement)
        names = releases.get(index)
        if names:
            targets = [gast.Name(id=n, ctx=gast.Del(), annotation=None, type_comment=None)
                       for n in names]
            released.append(gast.Delete(targets=targets))
    released.append(body[-1])
    pullback.body = released
