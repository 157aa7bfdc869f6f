"""Reject syntax outside the differentiable subset, at compile time.

Each rejection is an `UnsupportedSyntaxError` (a `SyntaxError` too) that names
the construct, points at the user's file, line and column, and suggests what to
write instead. Nothing unsupported is left to fail in the backward pass.
"""

from __future__ import annotations

import gast

from pullback.compiler.parse import ParsedFunction
from pullback.errors import UnsupportedSyntaxError

# Statement and expression kinds the subset excludes: (what, what to do).
_REJECTED = {
    gast.AsyncFor: ("an async for loop", "iterate with a plain for loop"),
    gast.Try: (
        "a try statement",
        "handle errors outside the differentiated function; the pullback "
        "cannot replay an exception",
    ),
    gast.With: (
        "a with statement",
        "enter the context outside the differentiated function",
    ),
    gast.AsyncWith: ("an async with statement", "differentiate a plain function"),
    gast.Global: (
        "a global declaration",
        "return the value instead of assigning a global; the pullback cannot "
        "undo writes to module state",
    ),
    gast.Nonlocal: (
        "a nonlocal declaration",
        "return the value instead of assigning an enclosing function's "
        "variable",
    ),
    gast.Delete: ("a del statement", "remove the del; unused values are dropped"),
    gast.Import: ("an import statement", "import at module level"),
    gast.ImportFrom: ("an import statement", "import at module level"),
    gast.ClassDef: ("a class definition", "define the class at module level"),
    gast.AsyncFunctionDef: ("an async function", "differentiate a plain function"),
    gast.Match: ("a match statement", "use if/elif/else"),
    gast.Yield: ("yield", "return a value; generators cannot be differentiated"),
    gast.YieldFrom: ("yield from", "return a value; generators cannot be differentiated"),
    gast.Await: ("await", "coroutines cannot be differentiated"),
    gast.SetComp: ("a set comprehension", "sets are not differentiable"),
    gast.GeneratorExp: (
        "a generator expression",
        "build the values with vectorized NumPy operations",
    ),
    gast.NamedExpr: ("an assignment expression (:=)", "assign in a statement of its own"),
    gast.Set: ("a set literal", "sets are not differentiable"),
    gast.Starred: (
        "a starred expression outside a call's arguments",
        "unpack into a fixed number of names, or pass the values on with "
        "f(*values)",
    ),
}


def check_function(parsed: ParsedFunction) -> None:
    """Raise UnsupportedSyntaxError at the first construct outside the subset."""
    node = parsed.node
    if isinstance(node, gast.AsyncFunctionDef):
        # Calling an async function returns a coroutine, not its result, so
        # the gradient of its body would describe a value no caller gets.
        _reject(parsed, node, "an async function",
                "differentiate a plain function: define it with def instead "
                "of async def")
    _check_parameters(parsed, node.args)
    body = [gast.Return(value=node.body)] if parsed.is_lambda else node.body
    if parsed.is_lambda:
        gast.copy_location(body[0], node.body)
    for statement in body:
        _check_statement(parsed, statement)


def _reject(parsed: ParsedFunction, node, what: str, hint: str):
    raise UnsupportedSyntaxError(
        f"{what} is not supported in differentiated code",
        parsed.location(node),
        f"hint: {hint}",
    )


def _check_parameters(parsed: ParsedFunction, arguments) -> None:
    # A *name parameter is a tuple of the extra positional arguments, and its
    # cotangent a tuple of theirs. Keyword arguments collected in a dict have
    # no such fixed order to differentiate along.
    if arguments.kwarg is not None:
        _reject(
            parsed,
            arguments.kwarg,
            f"a **{arguments.kwarg.id} parameter",
            "give each keyword input a named parameter, or collect extra "
            "positional inputs with a *name parameter",
        )


def _check_statement(parsed: ParsedFunction, statement) -> None:
    if type(statement) in _REJECTED:
        _reject(parsed, statement, *_REJECTED[type(statement)])
    if isinstance(statement, gast.Assign):
        for target in statement.targets:
            _check_target(parsed, target)
    elif isinstance(statement, gast.AugAssign):
        _check_aug_target(parsed, statement.target)
    elif isinstance(statement, gast.AnnAssign):
        if statement.value is None:
            return
        _check_target(parsed, statement.target)
    elif isinstance(statement, gast.FunctionDef):
        _check_parameters(parsed, statement.args)
        if statement.decorator_list:
            _reject(parsed, statement.decorator_list[0], "a decorated local function",
                    "define it at module level")
        for child in statement.body:
            _check_statement(parsed, child)
        return
    elif isinstance(statement, gast.If | gast.While):
        _check_expression(parsed, statement.test)
        for child in statement.body + statement.orelse:
            _check_statement(parsed, child)
        return
    elif isinstance(statement, gast.For):
        _check_target(parsed, statement.target)
        _check_expression(parsed, statement.iter)
        for child in statement.body + statement.orelse:
            _check_statement(parsed, child)
        return
    elif not isinstance(
        statement,
        gast.Return | gast.Expr | gast.Pass | gast.Assert | gast.Raise
        | gast.Break | gast.Continue,
    ):
        _reject(
            parsed,
            statement,
            f"a {type(statement).__name__} statement",
            "use assignments, calls, if statements and return",
        )
    for child in gast.iter_child_nodes(statement):
        if isinstance(child, gast.expr):
            _check_expression(parsed, child)


def _check_target(parsed: ParsedFunction, target) -> None:
    if isinstance(target, gast.Name):
        return
    if isinstance(target, gast.Tuple | gast.List):
        for element in target.elts:
            _check_target(parsed, element)
        return
    if isinstance(target, gast.Starred):
        _reject(parsed, target, "a starred assignment target",
                "unpack into a fixed number of names, or index and slice the "
                "sequence")
    if isinstance(target, gast.Subscript):
        if isinstance(target.value, gast.Name):
            return
        _reject(
            parsed,
            target,
            "assignment to an item of an expression",
            "assign items of a plain variable: read the container into a "
            "variable first",
        )
    if isinstance(target, gast.Attribute):
        _reject(
            parsed,
            target,
            "assignment to an attribute",
            "return the new value instead of storing it on an object",
        )
    _reject(parsed, target, "this assignment target", "assign to a plain name")


def _check_aug_target(parsed: ParsedFunction, target) -> None:
    if not isinstance(target, gast.Name):
        _check_target(parsed, target)


def _check_expression(parsed: ParsedFunction, expression) -> None:
    # `f(x, *xs)` passes the items of xs as positional arguments, which the
    # classifier supports for calls to Python functions. Anywhere else a
    # starred expression is rejected.
    call_arguments = {
        id(argument) for node in gast.walk(expression) if isinstance(node, gast.Call)
        for argument in node.args if isinstance(argument, gast.Starred)
    }
    for node in gast.walk(expression):
        if type(node) in _REJECTED and id(node) not in call_arguments:
            _reject(parsed, node, *_REJECTED[type(node)])
        if isinstance(node, gast.Call):
            for keyword in node.keywords:
                if keyword.arg is None:
                    _reject(
                        parsed,
                        keyword.value,
                        "a **mapping argument",
                        "pass each keyword argument by name",
                    )
