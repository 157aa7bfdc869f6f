"""Rewrite loop exits as flags, before normalization.

After this pass a loop body has no `break`, `continue` or `return`: each path
through an iteration runs to the end of the body. A `break` sets a flag that
the loop tests after the iteration. A `return` stores its value, sets a
second flag and breaks, and the statement after the loop returns it. Every
iteration that starts then also finishes, which is what lets the pullback
replay whole iterations in reverse.

A `while test:` loop becomes `while True:` whose body first evaluates the
test, so the test's computations belong to the iteration like any other.
"""

from __future__ import annotations

import gast

from pullback.compiler.naming import Namer

_EXITS = (gast.Break, gast.Continue, gast.Return)


def _name(identifier: str, store: bool = False):
    context = gast.Store() if store else gast.Load()
    return gast.Name(id=identifier, ctx=context, annotation=None, type_comment=None)


def _set(flag: str, value, like):
    statement = gast.Assign(targets=[_name(flag, True)],
                            value=value if not isinstance(value, bool)
                            else gast.Constant(value=value, kind=None))
    return gast.copy_location(statement, like)


def _exits_in(statements: list) -> set[type]:
    """Exit statements of this loop level (not of loops nested inside)."""
    found = set()
    for statement in statements:
        if isinstance(statement, _EXITS):
            found.add(type(statement))
        elif isinstance(statement, gast.If):
            found |= _exits_in(statement.body) | _exits_in(statement.orelse)
    return found


def _may_exit(statements: list) -> bool:
    return bool(_exits_in(statements))


def move_code_after_exits(statements: list) -> list:
    """Move what follows an if with an exiting branch into both branches."""
    result = []
    for index, statement in enumerate(statements):
        if isinstance(statement, _EXITS):
            result.append(statement)
            break  # Anything after an exit never runs.
        if not isinstance(statement, gast.If):
            result.append(statement)
            continue
        rest = statements[index + 1 :]
        body, orelse = statement.body, statement.orelse
        if rest and (_may_exit(body) or _may_exit(orelse)):
            body, orelse = body + rest, orelse + rest
            rest = []
        moved = gast.If(test=statement.test, body=move_code_after_exits(body),
                        orelse=move_code_after_exits(orelse))
        result.append(gast.copy_location(moved, statement))
        if not rest:
            break
    return result


class _Flags:
    def __init__(self, namer: Namer):
        self.broke = namer.fresh("broke")
        self.returned = namer.fresh("returned")
        self.value = namer.fresh("returned_value")


def _replace_exits(statements: list, flags: _Flags) -> list:
    out = []
    for statement in statements:
        if isinstance(statement, gast.Continue):
            continue
        if isinstance(statement, gast.Break):
            out.append(_set(flags.broke, True, statement))
        elif isinstance(statement, gast.Return):
            value = statement.value or gast.Constant(value=None, kind=None)
            out.append(_set(flags.value, value, statement))
            out.append(_set(flags.returned, True, statement))
            out.append(_set(flags.broke, True, statement))
        elif isinstance(statement, gast.If):
            statement.body = _replace_exits(statement.body, flags) or [gast.Pass()]
            statement.orelse = _replace_exits(statement.orelse, flags)
            out.append(statement)
        else:
            out.append(statement)
    return out


def _loop(loop, namer: Namer) -> list:
    flags = _Flags(namer)
    before, after = [], []
    body = loop.body
    finished = None
    if isinstance(loop, gast.While):
        # `while test:` runs its else clause when the test fails, not on break.
        finished = namer.fresh("finished") if loop.orelse else None
        on_false = [gast.copy_location(gast.Break(), loop)]
        if finished:
            on_false.insert(0, _set(finished, True, loop))
            before.append(_set(finished, False, loop))
        body = [gast.copy_location(gast.If(test=loop.test, body=body, orelse=on_false),
                                   loop)]
        loop.test = gast.Constant(value=True, kind=None)

    exits = _exits_in(body)
    body = _replace_exits(move_code_after_exits(body), flags) or [gast.Pass()]
    loop.body = body
    if gast.Break in exits or gast.Return in exits:
        before.append(_set(flags.broke, False, loop))
        loop.pb_exit_flag = flags.broke
    if gast.Return in exits:
        before.append(_set(flags.returned, False, loop))
        returned = gast.If(test=_name(flags.returned),
                           body=[gast.copy_location(gast.Return(value=_name(flags.value)),
                                                    loop)],
                           orelse=[])
        after.append(gast.copy_location(returned, loop))

    if loop.orelse:
        if finished:
            condition = _name(finished)
        elif getattr(loop, "pb_exit_flag", None):
            condition = gast.UnaryOp(op=gast.Not(), operand=_name(flags.broke))
        else:
            condition = None
        if condition is None:
            after = loop.orelse + after
        else:
            after.insert(0, gast.copy_location(
                gast.If(test=condition, body=loop.orelse, orelse=[]), loop))
        loop.orelse = []
    return before + [loop] + after


def desugar_loop_exits(statements: list, namer: Namer) -> list:
    """Rewrite every loop in `statements`, inner loops first."""
    out = []
    for statement in statements:
        if isinstance(statement, gast.If):
            statement.body = desugar_loop_exits(statement.body, namer) or [gast.Pass()]
            statement.orelse = desugar_loop_exits(statement.orelse, namer)
            out.append(statement)
        elif isinstance(statement, gast.For | gast.While):
            statement.body = desugar_loop_exits(statement.body, namer)
            statement.orelse = desugar_loop_exits(statement.orelse, namer)
            out.extend(_loop(statement, namer))
        else:
            out.append(statement)
    return out
