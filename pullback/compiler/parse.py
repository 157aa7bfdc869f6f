"""Find a function's source, parse it with gast, and resolve its free names.

The source is read from the whole file the code object points to, so a lambda
or a nested function is found by its position. That is the code object's first
line and, when several lambdas share that line, its parameters and constants.
Lambdas that match on all of those compile to the same code, so either is
right. Parsing the whole file keeps every
line and column the user sees in error messages exact.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import inspect
import linecache
import types

import gast

from pullback.errors import NoSourceError, SourceLocation


@dataclasses.dataclass
class ParsedFunction:
    """A user function with its syntax tree and the values of its free names."""

    function: types.FunctionType
    node: gast.FunctionDef | gast.Lambda
    filename: str
    lines: list[str]
    # Free name -> the object it refers to now (globals, closure cells, builtins).
    free_values: dict[str, object]
    # Free names that are closure cells of the function.
    closure_names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def is_lambda(self) -> bool:
        return isinstance(self.node, gast.Lambda)

    def location(self, node) -> SourceLocation:
        """Return the user's file, line and column of a node of this function."""
        lineno = (getattr(node, "lineno", None) or getattr(node, "pb_lineno", None)
                  or self.node.lineno)
        text = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        col_offset = getattr(node, "col_offset", None)
        if col_offset is None:
            # A statement that normalization wrote points at the source
            # statement it came from, or else at the line's first statement.
            col_offset = getattr(node, "pb_col_offset", None)
        if col_offset is None:
            col_offset = len(text) - len(text.lstrip())
        return SourceLocation(self.filename, lineno, col_offset + 1, text)

    def source_line(self, lineno: int) -> str:
        if 0 < lineno <= len(self.lines):
            return self.lines[lineno - 1].strip()
        return ""


def _no_source(function, reason: str) -> NoSourceError:
    name = (getattr(function, "__qualname__", None)
            or getattr(function, "__name__", None) or repr(function))
    short = getattr(function, "__name__", None) or "the_function"
    return NoSourceError(
        f"cannot differentiate {name}: {reason}. pullback compiles a function "
        "from its Python source; register a derivative for it with "
        f"@pullback.derivative_of({short}) instead"
    )


def unwrap_function(function) -> types.FunctionType:
    """Return the plain Python function behind `function`, or raise NoSourceError."""
    if isinstance(function, types.MethodType):
        function = function.__func__
    if not isinstance(function, types.FunctionType):
        raise _no_source(
            function,
            f"it is a {type(function).__name__}, not a Python function "
            "(builtins, C functions and NumPy ufuncs have no Python source)",
        )
    return function


@functools.lru_cache(maxsize=64)
def _parse_file(filename: str, text: str):
    return gast.parse(text)


def _file_lines(function: types.FunctionType) -> tuple[str, list[str]]:
    code = function.__code__
    filename = code.co_filename
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, function.__globals__)
    if not lines:
        raise _no_source(
            function,
            f"its source file {filename!r} cannot be read (code typed at an "
            "interactive prompt or built with exec has no file); put it in a "
            "module",
        )
    return filename, lines


def _candidates(tree, code: types.CodeType):
    is_lambda = code.co_name == "<lambda>"
    for node in gast.walk(tree):
        if is_lambda:
            if isinstance(node, gast.Lambda) and node.lineno == code.co_firstlineno:
                yield node
        elif isinstance(node, gast.FunctionDef | gast.AsyncFunctionDef):
            if node.name != code.co_name:
                continue
            first = node.decorator_list[0].lineno if node.decorator_list else None
            if code.co_firstlineno in (node.lineno, first):
                yield node


def _lambda_arguments(node) -> tuple:
    args = node.args
    return tuple(a.id for a in args.posonlyargs + args.args + args.kwonlyargs)


def _pick_lambda(candidates: list, code: types.CodeType, function):
    """Choose among lambdas on one line by parameter names, then by compiling."""
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    matching = [node for node in candidates if _lambda_arguments(node) == names]
    if len(matching) == 1:
        return matching[0]
    # Identical lambdas on one line compile to the same code: any is right.
    for node in matching or candidates:
        if _lambda_matches_code(node, code):
            return node
    raise _no_source(
        function,
        f"several lambdas on line {code.co_firstlineno} match it; put the "
        "lambda on a line of its own or use a def",
    )


def _lambda_matches_code(node, code: types.CodeType) -> bool:
    import ast

    source = ast.unparse(gast.gast_to_ast(node))
    try:
        compiled = compile(source, "<lambda>", "eval")
    except SyntaxError:
        return False
    inner = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    return inner.co_consts == code.co_consts and _operations(inner) == _operations(code)


def _operations(code: types.CodeType) -> list[str]:
    """Return a code object's instructions, with every kind of name load alike.

    Recompiled alone, a lambda may load a name as a global where the original
    loads a closure cell, or an attribute as a method, so every load of a name
    or attribute compares as one kind of instruction with its name.
    """
    import dis

    operations = []
    for instruction in dis.get_instructions(code):
        opname = instruction.opname
        if opname.startswith("LOAD_") and opname != "LOAD_CONST":
            opname = "LOAD_NAME"
        if opname in ("COPY_FREE_VARS", "MAKE_CELL", "RESUME", "NOP"):
            continue
        if opname == "LOAD_NAME":
            operations.append((opname, instruction.argval))
        else:
            operations.append((opname, instruction.argrepr))
    return operations


def find_definition(function: types.FunctionType):
    """Return the file name, lines and gast node defining `function`."""
    filename, lines = _file_lines(function)
    try:
        tree = _parse_file(filename, "".join(lines))
    except SyntaxError as error:
        raise _no_source(
            function, f"its file {filename} does not parse: {error}"
        ) from None

    code = function.__code__
    candidates = list(_candidates(tree, code))
    if not candidates:
        raise _no_source(
            function,
            f"no definition of {code.co_name} starts at {filename}:"
            f"{code.co_firstlineno}; the file may have changed since it was "
            "imported",
        )
    if len(candidates) == 1:
        return filename, lines, candidates[0]
    if code.co_name == "<lambda>":
        return filename, lines, _pick_lambda(candidates, code, function)
    return filename, lines, candidates[-1]


def resolve_free_names(function: types.FunctionType) -> tuple[dict, tuple]:
    """Map each free name of `function` to the object it refers to now."""
    code = function.__code__
    values = {}
    closure_names = code.co_freevars
    cells = function.__closure__ or ()
    for name, cell in zip(closure_names, cells, strict=True):
        # A cell not assigned yet, such as a later local function, is skipped.
        with contextlib.suppress(ValueError):
            values[name] = cell.cell_contents
    namespace = function.__globals__
    builtin_namespace = namespace.get("__builtins__", builtins)
    if isinstance(builtin_namespace, types.ModuleType):
        builtin_namespace = vars(builtin_namespace)
    for name in _global_names(code):
        if name in values:
            continue
        if name in namespace:
            values[name] = namespace[name]
        elif name in builtin_namespace:
            values[name] = builtin_namespace[name]
    return values, closure_names


def _global_names(code: types.CodeType):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def parse_function(function) -> ParsedFunction:
    """Read, parse and resolve `function`."""
    function = unwrap_function(function)
    filename, lines, node = find_definition(function)
    free_values, closure_names = resolve_free_names(function)
    return ParsedFunction(function, node, filename, lines, free_values, closure_names)


def signature_of(function) -> inspect.Signature:
    return inspect.signature(function)
