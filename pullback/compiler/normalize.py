"""A-normal form with single assignment.

After this pass every statement does one operation on names and constants, and
every assignment binds a fresh name: a user variable assigned twice becomes
`x` and then `x_1`. The pullback is a closure over the forward pass's locals,
so single assignment is what lets it read each value as it was when used,
without copying anything.

Normalized statements:
- `t = <operation>`, where every operand is a name or a constant and the
  operation is a binary or unary operator, a comparison, a call, an attribute,
  a subscript, a tuple or list display, or a plain name or constant;
- `a, b = t`, unpacking a name into names;
- `if t: ... else: ...`, whose branches end by binding the same names (the
  join of single assignment);
- `assert`, `raise`, and one final `return t`.

Conditional expressions and `and`/`or` become if statements, so only the
chosen operand is evaluated. A `return` inside a branch moves the statements
that follow the if into the other branch, so that every path ends at the one
final return.
"""

from __future__ import annotations

import builtins
import copy
import dataclasses
import operator
import random

import gast
import numpy as np

from pullback.compiler.exits import desugar_loop_exits
from pullback.compiler.naming import Namer
from pullback.compiler.parse import ParsedFunction
from pullback.compiler.rules.unsupported import is_library_callable
from pullback.errors import DifferentiationError, InternalError

RETURN_KEY = "$return"


@dataclasses.dataclass
class NormalizedFunction:
    parsed: ParsedFunction
    params: list[str]
    body: list
    result: str
    namer: Namer
    # User variable -> every SSA name given to it, for readable diagnostics.
    versions: dict[str, list[str]]
    runtime_alias: str = "_pb"


def source_line_of(node) -> int | None:
    return getattr(node, "pb_lineno", None)


def _mark(node, lineno: int):
    node.pb_lineno = lineno
    return node


def _name(identifier: str, ctx=None):
    """Return a Name for an SSA name: already renamed, so never looked up again."""
    node = gast.Name(
        id=identifier, ctx=ctx or gast.Load(), annotation=None, type_comment=None
    )
    node.pb_normalized = True
    return node


def _is_normalized(node) -> bool:
    return getattr(node, "pb_normalized", False)


def _assign(target: str, value, lineno: int):
    statement = gast.Assign(targets=[_name(target, gast.Store())], value=value)
    return _mark(statement, lineno)


def is_atom(node) -> bool:
    if isinstance(node, gast.Name | gast.Constant):
        return True
    return (
        isinstance(node, gast.UnaryOp)
        and isinstance(node.op, gast.USub | gast.UAdd)
        and isinstance(node.operand, gast.Constant)
    )


class _Normalizer:
    def __init__(self, parsed: ParsedFunction, namer: Namer, local_names: set[str],
                 runtime_alias: str):
        self.parsed = parsed
        self.namer = namer
        self.runtime_alias = runtime_alias
        self.local_names = local_names
        # Free names whose items the function writes without binding them.
        self.written_only: set[str] = set()
        self.versions: dict[str, list[str]] = {}
        self.lineno = parsed.node.lineno
        # Functions defined inside the differentiated one, inlined where called.
        self.local_functions: dict[str, object] = {}
        self.lambda_versions: set[str] = set()
        self.inlining: list = []
        # SSA name -> a group of names bound to one value by plain copies.
        self.alias_groups: dict[str, str] = {}
        # Version of a for-loop variable -> the source of the sequence whose
        # item it is, until the body rebinds the variable.
        self.loop_items: dict[str, str] = {}
        # SSA names that hold a tuple for sure: the *name parameter.
        self.tuples: set[str] = set()

    # Names and versions.

    def bind(self, env: dict, user_name: str) -> str:
        """Return a fresh SSA name for an assignment to `user_name`."""
        if user_name == RETURN_KEY:
            version = self.namer.fresh("result")
        elif user_name not in env and user_name not in self.versions:
            version = user_name
            self.namer.reserve(version)
        else:
            version = self.namer.version(user_name)
        env[user_name] = version
        self.versions.setdefault(user_name, []).append(version)
        return version

    def read(self, env: dict, node):
        if _is_normalized(node):
            return node
        if node.id in self.local_functions and node.id not in env:
            raise DifferentiationError(
                f"the local function {node.id} is used as a value",
                self.parsed.location(node),
                "hint: call it where it is defined, or define it at module level "
                "to pass it around",
            )
        if node.id in env:
            return _name(env[node.id])
        if node.id in self.written_only:
            raise DifferentiationError(
                f"{node.id!r} is not a local variable of the differentiated function, "
                "but this line changes it. Differentiated code turns item "
                "writes, append and extend into a new local value, so the object "
                "outside the function would not change",
                self.parsed.location(node),
                f"hint: copy it into a local first (`{node.id} = list({node.id})` or "
                f"`{node.id} = {node.id}.copy()`), or make the change outside the "
                "differentiated function",
            )
        if node.id in self.local_names:
            raise DifferentiationError(
                f"local variable {node.id!r} is read before it is assigned",
                self.parsed.location(node),
                "hint: assign it on every path before this line",
            )
        return _name(node.id)

    # Expressions.

    def atom(self, node, env: dict, out: list):
        """Return a name or constant holding `node`'s value, emitting steps."""
        if isinstance(node, gast.Name):
            return self.read(env, node)
        if is_atom(node):
            return node
        value = self.operation(node, env, out)
        if isinstance(value, gast.Name):
            return value
        temporary = self.namer.temporary(value)
        out.append(_assign(temporary, value, self.lineno))
        return _name(temporary)

    def operation(self, node, env: dict, out: list):
        """Return one operation on atoms computing `node`, emitting its operands."""
        if isinstance(node, gast.Name):
            return self.read(env, node)
        if is_atom(node):
            return node
        if isinstance(node, gast.BinOp):
            left = self.atom(node.left, env, out)
            right = self.atom(node.right, env, out)
            operation = gast.BinOp(left=left, op=node.op, right=right)
            operation.pb_augmented = getattr(node, "pb_augmented", False)
            return operation
        if isinstance(node, gast.UnaryOp):
            return gast.UnaryOp(op=node.op, operand=self.atom(node.operand, env, out))
        if isinstance(node, gast.Compare):
            left = self.atom(node.left, env, out)
            comparators = [self.atom(c, env, out) for c in node.comparators]
            return gast.Compare(left=left, ops=node.ops, comparators=comparators)
        if isinstance(node, gast.Call):
            return self.call(node, env, out)
        if isinstance(node, gast.Attribute):
            if self.is_static_path(node, env):
                return node
            owner = self.atom(node.value, env, out)
            return gast.Attribute(value=owner, attr=node.attr, ctx=gast.Load())
        if isinstance(node, gast.Subscript):
            owner = self.atom(node.value, env, out)
            index = self.index(node.slice, env, out)
            return gast.Subscript(value=owner, slice=index, ctx=gast.Load())
        if isinstance(node, gast.Tuple | gast.List):
            elements = [self.atom(e, env, out) for e in node.elts]
            return type(node)(elts=elements, ctx=gast.Load())
        if isinstance(node, gast.IfExp):
            return self.conditional(node.test, node.body, node.orelse, env, out)
        if isinstance(node, gast.BoolOp):
            return self.boolean(node, env, out)
        if isinstance(node, gast.JoinedStr):
            return self.rename_only(node, env)
        if isinstance(node, gast.Lambda):
            return self.lambda_value(node, env)
        if isinstance(node, gast.ListComp | gast.DictComp):
            return self.comprehension(node, env, out)
        if isinstance(node, gast.Dict):
            return self.dict_display(node, env, out)
        raise InternalError(
            f"normalize met {type(node).__name__} at line "
            f"{getattr(node, 'lineno', '?')}, which check should have rejected"
        )

    def index(self, node, env: dict, out: list):
        if isinstance(node, gast.Slice):
            parts = {
                field: None if part is None else self.atom(part, env, out)
                for field, part in (
                    ("lower", node.lower),
                    ("upper", node.upper),
                    ("step", node.step),
                )
            }
            return gast.Slice(**parts)
        if isinstance(node, gast.Tuple):
            elements = [self.index(e, env, out) for e in node.elts]
            return gast.Tuple(elts=elements, ctx=gast.Load())
        if isinstance(node, gast.Constant):
            return node
        return self.atom(node, env, out)

    def call(self, node, env: dict, out: list):
        callee = node.func
        self.check_not_in_place(node, env)
        local = self.local_function(callee, env)
        if local is not None:
            return self.inline(local, node, env, out)
        if not self.is_static_path(callee, env):
            if isinstance(callee, gast.Attribute):
                owner = self.atom(callee.value, env, out)
                callee = gast.Attribute(value=owner, attr=callee.attr, ctx=gast.Load())
            else:
                callee = self.atom(callee, env, out)
        if any(isinstance(a, gast.Starred) for a in node.args):
            args = [self.starred_arguments(node, env, out)]
        else:
            args = [self.atom(a, env, out) for a in node.args]
        keywords = [
            gast.keyword(arg=k.arg, value=self.atom(k.value, env, out))
            for k in node.keywords
        ]
        call = gast.Call(func=callee, args=args, keywords=keywords)
        gast.copy_location(call, node)
        return call

    def starred_arguments(self, node, env: dict, out: list):
        """Return `*arguments`, one starred name holding all positional arguments.

        `f(*xs)` keeps xs. `f(a, *xs, b)` first joins the parts into one
        tuple, `f_arguments = rt.joined((a,), xs, (b,))`, whose adjoint
        splits the cotangent back into the parts.
        """
        if len(node.args) == 1:
            value = self.atom(node.args[0].value, env, out)
            site = self.starred_site(node.args[0])
        else:
            parts = []
            sites = []
            plain = []
            for argument in node.args + [None]:
                if argument is not None and not isinstance(argument, gast.Starred):
                    plain.append(self.atom(argument, env, out))
                    continue
                if plain:
                    display = gast.Tuple(elts=plain, ctx=gast.Load())
                    parts.append(self.atom(display, env, out))
                    sites.append(gast.Constant(value=None, kind=None))
                    plain = []
                if argument is not None:
                    parts.append(self.atom(argument.value, env, out))
                    sites.append(self.starred_site(argument))
            at = gast.keyword(arg="at", value=gast.Tuple(elts=sites, ctx=gast.Load()))
            joined = gast.Call(func=self.runtime("joined"), args=parts, keywords=[at])
            label = _callee_label(node.func)
            temporary = self.namer.fresh(f"{label}_arguments")
            out.append(_assign(temporary, joined, self.lineno))
            value = _name(temporary)
            # The whole argument list, located at its first starred argument.
            first = next(a for a in node.args if isinstance(a, gast.Starred))
            text = ", ".join(_source(argument) for argument in node.args)
            site = self.starred_site(first, text)
        starred = gast.Starred(value=value, ctx=gast.Load())
        # Read by the reverse pass, which passes it to rt.starred_vjp.
        starred.pb_site = site
        return gast.copy_location(starred, node.args[0])

    def starred_site(self, argument, text: str | None = None):
        """Return `(source, filename, line, column)` of a `*xs` argument, as a constant.

        The runtime names it when xs turns out not to be a sequence. `text`
        replaces the argument's source, for a call with several arguments.
        """
        location = self.parsed.location(argument)
        text = _source(argument) if text is None else text
        fields = (text, location.filename, location.lineno, location.col)
        return gast.Tuple(elts=[gast.Constant(value=f, kind=None) for f in fields],
                          ctx=gast.Load())

    def local_function(self, callee, env: dict):
        """Return the def or lambda a called name refers to, if it is local."""
        if not isinstance(callee, gast.Name) or _is_normalized(callee):
            return None
        function = self.local_functions.get(callee.id)
        if function is None:
            return None
        if isinstance(function, gast.Lambda):
            # A lambda assigned to a name is inlined while that name still refers to it.
            return function if env.get(callee.id) in self.lambda_versions else None
        return function if callee.id not in env else None

    def is_static_path(self, node, env: dict) -> bool:
        """Return whether `node` is a free name or an attribute path on one."""
        while isinstance(node, gast.Attribute):
            node = node.value
        return (
            isinstance(node, gast.Name)
            and not _is_normalized(node)
            and node.id not in env
            and node.id not in self.local_names
        )

    def rename_only(self, node, env: dict):
        class Rename(gast.NodeTransformer):
            def visit_Name(inner, name):  # noqa: N805
                if name.id in env:
                    return _name(env[name.id])
                return name

        return Rename().visit(node)

    def lambda_value(self, node, env: dict):
        """Keep a lambda as a value, its free names read as they are now."""
        params = {a.id for a in _parameters(node.args)}
        visible = {key: value for key, value in env.items() if key not in params}
        return self.rename_only(node, visible)

    def conditional(self, test, body, orelse, env: dict, out: list):
        """Turn `body if test else orelse` into an if statement."""
        condition = self.atom(test, env, out)
        then_env, else_env = dict(env), dict(env)
        then_body, else_body = [], []
        then_value = self.atom(body, then_env, then_body)
        else_value = self.atom(orelse, else_env, else_body)
        result = self.namer.fresh("choice")
        then_body.append(_assign(result, then_value, self.lineno))
        else_body.append(_assign(result, else_value, self.lineno))
        statement = gast.If(test=condition, body=then_body, orelse=else_body)
        out.append(_mark(statement, self.lineno))
        return _name(result)

    def boolean(self, node, env: dict, out: list):
        """`a and b` is `b if a else a`; `a or b` is `a if a else b`."""
        value = node.values[0]
        for right in node.values[1:]:
            left = self.atom(value, env, out)
            if isinstance(node.op, gast.And):
                value = self.conditional(left, right, left, env, out)
            else:
                value = self.conditional(left, left, right, env, out)
        return value

    # Statements.

    def block(self, statements: list, env: dict, out=None) -> tuple[list, str | None]:
        """Normalize a statement list; return it and how it ended.

        The ending is "return", "raise", or None when control falls through.
        """
        out = [] if out is None else out
        for statement in statements:
            # Statements the loop rewriting made may lack a line of their own.
            self.lineno = getattr(statement, "lineno", None) or self.lineno
            start = len(out)
            ending = self.statement(statement, env, out)
            column = getattr(statement, "col_offset", None)
            if column is not None:
                # Errors about a statement written here point at its source
                # statement, also on a line with several statements.
                for written in out[start:]:
                    for node in gast.walk(written):  # Branches of `a if c else b` too.
                        if (isinstance(node, gast.stmt)
                                and getattr(node, "pb_col_offset", None) is None):
                            node.pb_col_offset = column
            if ending:
                return out, ending
        return out, None

    def statement(self, node, env: dict, out: list) -> str | None:
        if isinstance(node, gast.Assign):
            value = node.value
            if len(node.targets) > 1:
                value = self.atom(value, env, out)
            for target in node.targets:
                self.assign(target, value, env, out)
        elif isinstance(node, gast.AnnAssign):
            if node.value is not None:
                self.assign(node.target, node.value, env, out)
        elif isinstance(node, gast.AugAssign):
            if isinstance(node.target, gast.Name):
                self.check_no_alias(node, env)
            current = copy.deepcopy(node.target)
            for part in gast.walk(current):
                if hasattr(part, "ctx"):
                    part.ctx = gast.Load()
            expanded = gast.BinOp(left=current, op=node.op, right=node.value)
            gast.copy_location(expanded, node)
            # An array name keeps its shape and dtype through `x += y`: the
            # VJP applies NumPy's in-place rules to `x + y` (`in_place_result`).
            expanded.pb_augmented = isinstance(node.target, gast.Name)
            self.assign(node.target, expanded, env, out)
        elif isinstance(node, gast.FunctionDef):
            self.local_functions[node.name] = node
            env.pop(node.name, None)
        elif isinstance(node, gast.Expr):
            if isinstance(node.value, gast.Constant):
                return None  # A docstring or a bare constant.
            if isinstance(node.value, gast.Call):
                if self.grow_list(node.value, env, out):
                    return None
                if self.reorder_list(node.value, env, out):
                    return None
                self.check_no_out_argument(node.value, env)
            value = self.operation(node.value, env, out)
            out.append(_mark(gast.Expr(value=value), self.lineno))
        elif isinstance(node, gast.Return):
            value = node.value or gast.Constant(value=None, kind=None)
            self.assign_key(RETURN_KEY, value, env, out)
            return "return"
        elif isinstance(node, gast.If):
            return self.if_statement(node, env, out)
        elif isinstance(node, gast.For | gast.While):
            self.loop_statement(node, env, out)
        elif isinstance(node, gast.Assert | gast.Raise):
            out.append(_mark(self.rename_only(node, env), self.lineno))
            return "raise" if isinstance(node, gast.Raise) else None
        elif isinstance(node, gast.Pass):
            pass
        else:
            raise InternalError(f"normalize met a {type(node).__name__} statement")
        return None

    # Loops.

    def builtin(self, name: str):
        """Return an expression for a builtin, bypassing any user name for it."""
        value = self.parsed.free_values.get(name, getattr(builtins, name))
        if name not in self.local_names and value is getattr(builtins, name):
            return _name(name)
        return gast.Attribute(value=_name(self.runtime_alias), attr=name, ctx=gast.Load())

    def iteration(self, node, env: dict, out: list):
        """Return (range arguments, per-iteration element assignments).

        Loops over `range(...)` bind their target directly. Loops over
        sequences, `enumerate` and `zip` become indexed loops over
        `range(len(...))` whose body first reads the elements.
        """
        iterable = node.iter
        kind = None
        if isinstance(iterable, gast.Call) and isinstance(iterable.func, gast.Name):
            callee = self.parsed.free_values.get(iterable.func.id)
            if iterable.func.id not in self.local_names and not iterable.keywords:
                kind = {builtins.range: "range", builtins.enumerate: "enumerate",
                        builtins.zip: "zip", builtins.reversed: "reversed",
                        }.get(callee) if hashable(callee) else None
        if kind == "range" and isinstance(node.target, gast.Name):
            arguments = [self.atom(a, env, out) for a in iterable.args]
            return arguments, None, []
        if kind == "enumerate" and len(iterable.args) in (1, 2) and isinstance(
            node.target, gast.Tuple
        ) and len(node.target.elts) == 2:
            start = self.atom(iterable.args[1], env, out) if len(iterable.args) == 2 else None
            counter, element = node.target.elts
            inner = iterable.args[0]
            if (isinstance(inner, gast.Call) and isinstance(inner.func, gast.Name)
                    and self.parsed.free_values.get(inner.func.id) is builtins.zip
                    and inner.func.id not in self.local_names and not inner.keywords
                    and isinstance(element, gast.Tuple)
                    and len(element.elts) == len(inner.args)):
                # enumerate(zip(a, b)): one index walks every sequence.
                sequences = [self.sequence(a, env, out) for a in inner.args]
                return self.indexed(sequences, element.elts, env, out, counter, start)
            sequence = self.sequence(inner, env, out)
            return self.indexed([sequence], [element], env, out, counter, start)
        if kind == "zip" and isinstance(node.target, gast.Tuple) and len(
            node.target.elts
        ) == len(iterable.args):
            sequences = [self.sequence(a, env, out) for a in iterable.args]
            return self.indexed(sequences, node.target.elts, env, out)
        if kind == "reversed" and len(iterable.args) == 1:
            # reversed(xs) walks the sequence xs[::-1], which has a derivative.
            sequence = self.sequence(iterable.args[0], env, out)
            backwards = gast.Slice(lower=None, upper=None,
                                   step=gast.Constant(value=-1, kind=None))
            read = gast.Subscript(value=sequence, slice=backwards, ctx=gast.Load())
            reversed_name = self.namer.fresh(f"{sequence.id}_reversed")
            out.append(_assign(reversed_name, read, self.lineno))
            return self.indexed([_name(reversed_name)], [node.target], env, out)
        sequence = self.sequence(iterable, env, out)
        return self.indexed([sequence], [node.target], env, out)

    def sequence(self, node, env: dict, out: list):
        """Hold an iterable as a sequence that supports len() and indexing."""
        value = self.atom(node, env, out)
        if isinstance(value, gast.Name) and value.id in self.tuples:
            return value
        as_sequence = gast.Attribute(value=_name(self.runtime_alias), attr="sequence",
                                     ctx=gast.Load())
        call = gast.Call(func=as_sequence, args=[value], keywords=[])
        temporary = self.namer.fresh(f"{value.id}_items" if isinstance(value, gast.Name)
                                     else "items")
        out.append(_assign(temporary, call, self.lineno))
        return _name(temporary)

    def indexed(self, sequences, targets, env, out, counter=None, start=None):
        lengths = []
        for sequence in sequences:
            length = self.namer.fresh(f"{sequence.id}_count")
            call = gast.Call(func=self.builtin("len"), args=[sequence], keywords=[])
            out.append(_assign(length, call, self.lineno))
            lengths.append(_name(length))
        if len(lengths) == 1:
            stop = lengths[0]
        else:
            stop_name = self.namer.fresh("shortest")
            call = gast.Call(func=self.builtin("min"), args=lengths, keywords=[])
            out.append(_assign(stop_name, call, self.lineno))
            stop = _name(stop_name)
        index = self.namer.fresh("index")
        elements = []
        for sequence, target in zip(sequences, targets, strict=True):
            read = gast.Subscript(value=sequence, slice=_name(index), ctx=gast.Load())
            elements.append((target, read))
        if counter is not None:
            value = _name(index)
            if start is not None:
                value = gast.BinOp(left=_name(index), op=gast.Add(), right=start)
            elements.insert(0, (counter, value))
        return [stop], index, elements

    def loop_statement(self, node, env: dict, out: list) -> None:
        """Normalize a loop: entry copies, body, back-edge copies, exit test.

        Each variable the body assigns gets a header name for its value at the
        start of an iteration: bound before the loop (an entry copy)
        when the variable exists there, and again at the end of every
        iteration (a back-edge copy).
        """
        lineno = node.lineno
        is_for = isinstance(node, gast.For)
        if is_for:
            range_arguments, index, elements = self.iteration(node, env, out)
        self.lineno = lineno
        assigned = sorted(_assigned_names(node.body + ([node.target] if is_for else [])))
        headers = {}
        for user_name in assigned:
            previous = env.get(user_name)
            header = self.bind(env, user_name)
            headers[user_name] = header
            if previous is not None:
                out.append(_assign(header, _name(previous), lineno))
                if previous in self.alias_groups:
                    self.alias_groups[header] = self.alias_groups[previous]
            elif not (is_for and user_name == getattr(node.target, "id", None)):
                # First bound inside the loop. Binding None keeps every copy
                # between versions well defined. The only change from Python is
                # that reading it before the loop binds it gives None, not an
                # UnboundLocalError.
                none = gast.Constant(value=None, kind=None)
                out.append(_assign(header, none, lineno))
        body_env = dict(env)
        body = []
        if is_for:
            if index is None:  # `for i in range(...)`: the loop binds i itself.
                index = headers[node.target.id]
            for target, value in elements:
                self.assign(target, value, body_env, body)
                self.note_loop_items(target, node.iter, body_env)
        statements, _ending = self.block(node.body, body_env)
        body.extend(statements)
        self.lineno = lineno
        for user_name, header in headers.items():
            current = body_env.get(user_name)
            if current is None or current == header:
                continue
            copy = _assign(header, _name(current), lineno)
            copy.pb_back_edge = True
            body.append(copy)
        flag = getattr(node, "pb_exit_flag", None)
        if flag is not None:
            check = gast.If(test=_name(headers[flag]), body=[gast.Break()], orelse=[])
            check.pb_exit_check = True
            body.append(_mark(check, lineno))
        if is_for:
            call = gast.Call(func=self.builtin("range"), args=range_arguments, keywords=[])
            loop = gast.For(target=_name(index, gast.Store()), iter=call, body=body,
                            orelse=[], type_comment=None)
        else:
            loop = gast.While(test=gast.Constant(value=True, kind=None), body=body,
                              orelse=[])
        loop.pb_headers = {header for name, header in headers.items()
                           if not (is_for and name == getattr(node.target, "id", None)
                                   and header == index)}
        out.append(_mark(loop, lineno))

    def runtime(self, helper: str):
        return gast.Attribute(value=_name(self.runtime_alias), attr=helper,
                              ctx=gast.Load())

    def assign(self, target, value, env: dict, out: list) -> None:
        if isinstance(target, gast.Name):
            self.assign_key(target.id, value, env, out)
            return
        if isinstance(target, gast.Subscript):
            self.assign_item(target, value, env, out)
            return
        elements = target.elts
        if isinstance(value, gast.Tuple | gast.List) and len(value.elts) == len(
            elements
        ):
            # `a, b = b, a`: evaluate every right side before binding any name.
            atoms = [self.atom(v, env, out) for v in value.elts]
            for element, atom, part in zip(elements, atoms, value.elts, strict=True):
                self.assign(element, atom, env, out)
                if (isinstance(element, gast.Name) and isinstance(part, gast.Name)
                        and not _is_normalized(part)):
                    # `w, z = y, v` makes w name y's value, as `w = y` does.
                    self.join_alias_groups(atom.id, env[element.id])
            return
        source = self.atom(value, env, out)
        names = []
        nested = []
        for element in elements:
            if isinstance(element, gast.Name):
                names.append(element.id)
            else:
                temporary = self.namer.fresh("unpacked")
                names.append(temporary)
                nested.append((element, temporary))
        stores = []
        for name in names:
            is_temporary = any(temporary == name for _, temporary in nested)
            version = name if is_temporary else self.bind(env, name)
            stores.append(_name(version, gast.Store()))
        unpack = gast.Assign(targets=[gast.Tuple(elts=stores, ctx=gast.Store())],
                             value=source)
        out.append(_mark(unpack, self.lineno))
        for element, temporary in nested:
            self.assign(element, _name(temporary), env, out)

    def assign_item(self, target, value, env: dict, out: list) -> None:
        """`y[i] = v` binds a new version of y: `y_1 = rt.with_item(y, i, v)`."""
        # NOTE: a view, list or object that shares y's array does not see this
        # write, though it would in plain Python. Only aliases made by binding
        # a name to a name (`z = y`, `z, w = y, v`, also in a branch) and
        # for-loop variables, which are items of their sequence, are checked.
        if not isinstance(target.value, gast.Name):
            raise DifferentiationError(
                "only items of a plain variable can be assigned in differentiated "
                "code",
                self.parsed.location(target),
                "hint: read the container into a variable, assign its item, "
                "and store it back",
            )
        name = target.value.id
        self.check_no_alias_write(name, f"{name}[...] = ...", target, env)
        stored = self.atom(value, env, out)
        container = self.read(env, target.value)
        index = self.index(target.slice, env, out)
        index_value = gast.Subscript(value=self.runtime("index"), slice=index,
                                     ctx=gast.Load())
        call = gast.Call(func=self.runtime("with_item"),
                         args=[container, index_value, stored], keywords=[])
        version = self.bind(env, target.value.id)
        out.append(_assign(version, call, self.lineno))

    def grow_list(self, call, env: dict, out: list) -> bool:
        """Rebind `xs` for `xs.append(v)` and `xs.extend(ys)`; False if not one."""
        callee = call.func
        if not (isinstance(callee, gast.Attribute)
                and callee.attr in ("append", "extend")
                and isinstance(callee.value, gast.Name)
                and callee.value.id in env
                and len(call.args) == 1 and not call.keywords):
            return False
        name = callee.value.id
        self.check_no_alias_write(name, f"{name}.{callee.attr}(...)", call, env)
        items = self.read(env, callee.value)
        value = self.atom(call.args[0], env, out)
        helper = "appended" if callee.attr == "append" else "extended"
        grown = gast.Call(func=self.runtime(helper), args=[items, value], keywords=[])
        version = self.bind(env, callee.value.id)
        out.append(_assign(version, grown, self.lineno))
        return True

    def reorder_list(self, call, env: dict, out: list) -> bool:
        """Rebind `xs` for `xs.reverse()` and `xs.sort(...)`; False if not one.

        `xs.sort()` is taken for the list or array method: with no positional
        argument and at most `key=` and `reverse=`, the two agree.
        """
        callee = call.func
        if not (isinstance(callee, gast.Attribute)
                and callee.attr in ("reverse", "sort")
                and isinstance(callee.value, gast.Name)
                and callee.value.id in env
                and not self.is_method_instance(callee.value.id)
                and not call.args):
            return False
        keywords = {k.arg for k in call.keywords}
        if callee.attr == "reverse" and keywords:
            return False
        if callee.attr == "sort" and not keywords <= {"key", "reverse"}:
            return False
        name = callee.value.id
        self.check_no_alias_write(name, f"{name}.{callee.attr}()", call, env)
        items = self.read(env, callee.value)
        helper = "reversed_list" if callee.attr == "reverse" else "sorted_copy"
        keyword_values = [gast.keyword(arg=k.arg, value=self.atom(k.value, env, out))
                          for k in call.keywords]
        reordered = gast.Call(func=self.runtime(helper), args=[items],
                              keywords=keyword_values)
        gast.copy_location(reordered, call)
        version = self.bind(env, name)
        out.append(_assign(version, reordered, self.lineno))
        return True

    def is_method_instance(self, name: str) -> bool:
        """Return whether `name` is the instance parameter of a method, its `self`."""
        parts = self.parsed.function.__qualname__.split(".")
        if len(parts) < 2 or parts[-2] == "<locals>" or self.inlining:
            return False
        params = _parameters(self.parsed.node.args)
        return bool(params) and params[0].id == name

    def static_value(self, node, env: dict):
        """Return the object a free name or attribute path refers to, or None."""
        if not self.is_static_path(node, env):
            return None
        path = []
        while isinstance(node, gast.Attribute):
            path.append(node.attr)
            node = node.value
        value = self.parsed.free_values.get(node.id, getattr(builtins, node.id, None))
        for attribute in reversed(path):
            value = getattr(value, attribute, None)
        return value

    def check_not_in_place(self, call, env: dict) -> None:
        """Reject a call that changes one of its arguments or its owner in place.

        Differentiated code turns changes into new values, so it would go on
        with the old value, and the values and the gradient would differ from
        plain Python's. `xs.append`, `xs.extend`, `xs.reverse()` and
        `xs.sort()` statements are rebound before this check.
        """
        callee = call.func
        self.check_not_in_place_item(call, env)
        if (isinstance(callee, gast.Attribute) and isinstance(callee.value, gast.Name)
                and callee.value.id in env and callee.attr in _IN_PLACE_METHODS
                and not self.is_method_instance(callee.value.id)):
            name = callee.value.id
            change, fix = _IN_PLACE_METHODS[callee.attr]
            raise self.in_place_error(
                call, f"{name}.{callee.attr}(...) {change.format(name=name)}",
                f"{fix.format(name=name)}. If {name} is an object of your own "
                "class, rename the method")
        function = self.static_value(callee, env)
        if function is None or not call.args:
            return
        target = _source(call.args[0])
        if isinstance(callee, gast.Attribute) and callee.attr == "at" and isinstance(
            getattr(function, "__self__", None), np.ufunc
        ):
            ufunc = _source(callee.value)
            raise self.in_place_error(
                call, f"{ufunc}.at({target}, ...) changes {target} in place",
                f"when the indices are distinct, write {target}[indices] = "
                f"{ufunc}({target}[indices], values); otherwise loop over them")
        found = _IN_PLACE_FUNCTIONS.get(function) if hashable(function) else None
        if found is not None:
            change, fix = found
            raise self.in_place_error(
                call, f"{_source(callee)}({target}, ...) {change.format(name=target)}",
                fix.format(name=target))

    def in_place_error(self, call, change: str, fix: str) -> DifferentiationError:
        """Return the error for a call that `change` says changes a value in place."""
        return DifferentiationError(
            f"{change}, which differentiated code does not follow because it "
            "turns changes into new values",
            self.parsed.location(call),
            f"hint: {fix}",
        )

    def check_not_in_place_item(self, call, env: dict) -> None:
        """Reject an in-place method call on an item or attribute of a local.

        `outer[0].append(v)` or `outer[1].sort()` changes the object stored in
        `outer`, but differentiated code rebinds only plain variables, so the
        pullback would miss the change.
        """
        callee = call.func
        if not (isinstance(callee, gast.Attribute)
                and isinstance(callee.value, gast.Subscript | gast.Attribute)
                and (callee.attr in _IN_PLACE_METHODS
                     or callee.attr in ("append", "extend"))):
            return
        root = callee.value
        while isinstance(root, gast.Subscript | gast.Attribute):
            root = root.value
        if not (isinstance(root, gast.Name) and root.id in env):
            return
        owner = _source(callee.value)
        raise DifferentiationError(
            f"{owner}.{callee.attr}(...) changes {owner} in place, which "
            "differentiated code does not follow because it turns changes into "
            "new values only for plain variables",
            self.parsed.location(call),
            f"hint: read it into a variable first, as in `item = {owner}`, change "
            f"item, and store it back with `{owner} = item`. If it is an object of "
            "your own class, rename the method",
        )

    def check_no_out_argument(self, call, env: dict) -> None:
        """Reject `out=` in a call statement to NumPy, math or an array method.

        Calls whose result is assigned have `out=` rejected with their rule.
        """
        callee = call.func
        function = self.static_value(callee, env)
        out = next((k.value for k in call.keywords if k.arg == "out"), None)
        if (out is None and isinstance(function, np.ufunc)
                and len(call.args) > function.nin):
            # A ufunc takes `out` positionally after its operands.
            out = call.args[function.nin]
        if out is None:
            return
        is_library = isinstance(function, np.ufunc) or is_library_callable(function)
        is_local_method = (isinstance(callee, gast.Attribute)
                           and not self.is_static_path(callee, env))
        if not (is_library or is_local_method):
            return
        written = _source(out)
        raise DifferentiationError(
            f"{_source(callee)}(..., out={written}) writes into an existing "
            "array, which differentiated code does not support",
            self.parsed.location(call),
            f"hint: drop out= and assign the returned value, {written} = "
            f"{_source(callee)}(...)",
        )

    def comprehension(self, node, env: dict, out: list):
        """`[f(x) for x in xs if c]` becomes a loop that appends to a new list."""
        result = self.namer.fresh("comprehension")
        # The loop variables are local to the comprehension: rename them.
        renames = {}
        for generator in node.generators:
            for target in gast.walk(generator.target):
                if isinstance(target, gast.Name):
                    renames[target.id] = self.namer.fresh(target.id)
        rename = _RenameNames(renames)
        holder = gast.Name(id=result, ctx=gast.Load(), annotation=None, type_comment=None)
        if isinstance(node, gast.DictComp):
            # `{k: v for ...}` stores each item: `d[k] = v`.
            key = rename.visit(copy.deepcopy(node.key))
            item = gast.Subscript(value=holder, slice=key, ctx=gast.Store())
            statement = gast.Assign(targets=[item],
                                    value=rename.visit(copy.deepcopy(node.value)))
            empty = gast.Dict(keys=[], values=[])
        else:
            element = rename.visit(copy.deepcopy(node.elt))
            statement = gast.Expr(value=gast.Call(
                func=gast.Attribute(value=holder, attr="append", ctx=gast.Load()),
                args=[element], keywords=[]))
            empty = gast.List(elts=[], ctx=gast.Load())
        body = [gast.copy_location(statement, node)]
        for generator in reversed(node.generators):
            for condition in reversed(generator.ifs):
                body = [gast.copy_location(
                    gast.If(test=rename.visit(copy.deepcopy(condition)), body=body,
                            orelse=[]), node)]
            loop = gast.For(target=rename.visit(copy.deepcopy(generator.target)),
                            iter=rename.visit(copy.deepcopy(generator.iter))
                            if generator is not node.generators[0]
                            else copy.deepcopy(generator.iter),
                            body=body, orelse=[], type_comment=None)
            body = [gast.copy_location(loop, node)]
        start = gast.Assign(targets=[gast.Name(id=result, ctx=gast.Store(),
                                               annotation=None, type_comment=None)],
                            value=empty)
        self.local_names.add(result)
        self.local_names.update(renames.values())
        statements = [gast.copy_location(start, node)] + body
        for statement in statements:
            self.statement(statement, env, out)
        return self.read(env, gast.Name(id=result, ctx=gast.Load(), annotation=None,
                                        type_comment=None))

    def dict_display(self, node, env: dict, out: list):
        """`{k: v}` becomes `rt.dict_of((k,), (v,))`."""
        if any(key is None for key in node.keys):
            raise DifferentiationError(
                "a ** entry in a dict display is not supported in differentiated code",
                self.parsed.location(node),
                "hint: list each key and value explicitly",
            )
        keys = [self.atom(k, env, out) for k in node.keys]
        values = [self.atom(v, env, out) for v in node.values]
        key_tuple = self.atom(gast.Tuple(elts=keys, ctx=gast.Load()), env, out)
        value_tuple = self.atom(gast.Tuple(elts=values, ctx=gast.Load()), env, out)
        return gast.Call(func=self.runtime("dict_of"), args=[key_tuple, value_tuple],
                         keywords=[])

    def inline(self, function_node, call, env: dict, out: list):
        """Inline a call to a function defined inside the differentiated one.

        The body reads the enclosing variables as they are at the call, as a
        closure does, and its own variables stay local to the call.
        """
        label = getattr(function_node, "name", "lambda")
        if any(node is function_node for node in self.inlining):
            raise DifferentiationError(
                f"the local function {label} calls itself",
                self.parsed.location(call),
                "hint: define recursive functions at module level",
            )
        arguments = function_node.args
        if arguments.kwarg:
            raise DifferentiationError(
                f"the local function {label} takes **{arguments.kwarg.id}",
                self.parsed.location(call),
                "hint: give each keyword input a named parameter",
            )
        starred = next((a for a in call.args if isinstance(a, gast.Starred)), None)
        if starred is not None:
            raise DifferentiationError(
                f"the call to the local function {label} has a starred argument, "
                "and a local function is inlined where it is called, which needs "
                "the number of arguments at compile time",
                self.parsed.location(starred),
                "hint: pass each argument explicitly, or define the function at "
                "module level",
            )
        params = arguments.posonlyargs + arguments.args
        if len(call.args) > len(params) and arguments.vararg is None:
            raise DifferentiationError(
                f"the local function {label} takes {len(params)} positional "
                f"arguments but {len(call.args)} were given",
                self.parsed.location(call), "hint: check the call")
        values = {}
        for param, argument in zip(params, call.args, strict=False):
            values[param.id] = self.atom(argument, env, out)
        if arguments.vararg is not None:
            # The extra positional arguments, as the tuple a call would bind.
            extra = [self.atom(a, env, out) for a in call.args[len(params):]]
            values[arguments.vararg.id] = gast.Tuple(elts=extra, ctx=gast.Load())
        for keyword in call.keywords:
            values[keyword.arg] = self.atom(keyword.value, env, out)
        defaults = dict(zip([p.id for p in params[len(params) - len(arguments.defaults):]],
                            arguments.defaults, strict=True))
        for param, default in zip(arguments.kwonlyargs, arguments.kw_defaults,
                                  strict=True):
            if default is not None:
                defaults[param.id] = default
        inner = {key: value for key, value in env.items() if key != RETURN_KEY}
        vararg = [arguments.vararg] if arguments.vararg is not None else []
        for param in params + vararg + arguments.kwonlyargs:
            if param.id in values:
                value = values[param.id]
            elif param.id in defaults:
                value = self.atom(copy.deepcopy(defaults[param.id]), env, out)
            else:
                raise DifferentiationError(
                    f"the call to local function {label} is missing the argument "
                    f"{param.id!r}", self.parsed.location(call),
                    "hint: check the call")
            self.local_names.add(param.id)
            inner.pop(param.id, None)
            self.assign_key(param.id, value, inner, out)
        if isinstance(function_node, gast.Lambda):
            return self.atom(function_node.body, inner, out)
        self.inlining.append(function_node)
        body = desugar_loop_exits(copy.deepcopy(function_node.body), self.namer)
        body = move_code_after_returns(body)
        self.local_names.update(_assigned_names(body))
        _statements, ending = self.block(body, inner, out)
        self.inlining.pop()
        if RETURN_KEY not in inner or ending is None:
            raise DifferentiationError(
                f"the local function {label} does not return a value on every path",
                self.parsed.location(function_node),
                "hint: end it with a return statement",
            )
        return _name(inner[RETURN_KEY])

    def check_no_alias(self, node, env: dict) -> None:
        """Reject `y += v` where another variable names the same value as y.

        On arrays `+=` writes in place, so after `z = y; y += v` plain Python
        changes z too, while differentiated code rebinds y alone: the values,
        and so the gradient, would differ.
        """
        target = node.target.id
        symbol = _AUGMENTED_SYMBOLS.get(type(node.op).__name__, "op=")
        self.check_not_loop_item(target, f"{target} {symbol} ...", node, env)
        other = self.alias_of(target, env)
        if other is None:
            return
        raise DifferentiationError(
            f"{target} {symbol} ... changes {target} in place, and {other} names "
            "the same value, which an array would change too",
            self.parsed.location(node),
            f"hint: write {target} = {target} {symbol[:-1]} ... to rebind "
            f"{target} alone, or copy it first with {target} = {other}.copy()",
        )

    def check_no_alias_write(self, target: str, write: str, node, env: dict) -> None:
        """Reject a write into y's items where another variable names y's value.

        After `z = y`, plain Python's `y[i] = v` or `y.append(v)` changes
        the object z names too, while differentiated code makes a new value
        for y alone: the values, and so the gradient, would differ.
        """
        self.check_not_loop_item(target, write, node, env)
        other = self.alias_of(target, env)
        if other is None:
            return
        raise DifferentiationError(
            f"{write} changes {target} in place, and {other} names the same "
            "value, which plain Python would change too",
            self.parsed.location(node),
            f"hint: copy it first with {target} = {other}.copy(), so the two "
            "names hold separate values",
        )

    def note_loop_items(self, target, iterable, env: dict) -> None:
        """Record that the loop variables in `target` are items of `iterable`.

        An item of a list, or a row of an array, is shared with the sequence:
        in plain Python, `r[0] = v` in `for r in rows:` changes rows too.
        """
        for node in gast.walk(target):
            if isinstance(node, gast.Name) and node.id in env:
                self.loop_items[env[node.id]] = _source(iterable)

    def check_not_loop_item(self, target: str, write: str, node, env: dict) -> None:
        """Reject a write into a loop variable that is an item of the sequence."""
        sequence = self.loop_items.get(env.get(target))
        if sequence is None:
            return
        raise DifferentiationError(
            f"{write} changes {target}, an item of {sequence}, in place, which plain "
            f"Python would change in {sequence} too, while differentiated code "
            "would change only a new value",
            self.parsed.location(node),
            f"hint: loop over indices, `for i in range(len({sequence})):`, and "
            f"write into {sequence}[i] itself, or copy the item first with "
            f"{target} = {target}.copy()",
        )

    def alias_of(self, target: str, env: dict) -> str | None:
        """Return another variable that names the same value as `target`, or None."""
        group = self.alias_groups.get(env.get(target))
        if group is None:
            return None
        for other, other_version in env.items():
            if other != target and self.alias_groups.get(other_version) == group:
                return other
        return None

    def join_alias_groups(self, first: str, second: str) -> None:
        """Record that two versions may name the same value."""
        group = self.alias_groups.setdefault(first, first)
        other = self.alias_groups.get(second)
        if other is not None and other != group:
            for version, version_group in self.alias_groups.items():
                if version_group == other:
                    self.alias_groups[version] = group
        self.alias_groups[second] = group

    def assign_key(self, key: str, value, env: dict, out: list) -> None:
        operation = self.operation(value, env, out)
        source = env.get(value.id) if (isinstance(value, gast.Name)
                                       and not _is_normalized(value)) else None
        version = self.bind(env, key)
        out.append(_assign(version, operation, self.lineno))
        if source is not None:
            # `key = name`: both name one value, as far as in-place writes go.
            self.join_alias_groups(source, version)
        if isinstance(value, gast.Lambda):
            self.local_functions[key] = value
            self.lambda_versions.add(version)

    def if_statement(self, node, env: dict, out: list) -> str | None:
        condition = self.atom(node.test, env, out)
        then_env, else_env = dict(env), dict(env)
        then_body, then_ending = self.block(node.body, then_env)
        else_body, else_ending = self.block(node.orelse, else_env)
        self.lineno = node.lineno
        # A branch that raises never reaches the join: the other one decides.
        if then_ending == "raise":
            env.clear()
            env.update(else_env)
        elif else_ending == "raise":
            env.clear()
            env.update(then_env)
        else:
            self.join(env, then_env, else_env, then_body, else_body, node)
        statement = gast.If(test=condition, body=then_body or [gast.Pass()],
                            orelse=else_body)
        out.append(_mark(statement, node.lineno))
        if then_ending and else_ending:
            return "raise" if then_ending == else_ending == "raise" else "return"
        return None

    def join(self, env, then_env, else_env, then_body, else_body, node) -> None:
        """Bind each variable the branches assign differently to one new name."""
        keys = set(then_env) | set(else_env)
        for key in sorted(keys):
            then_version = then_env.get(key)
            else_version = else_env.get(key)
            if then_version == else_version:
                env[key] = then_version
                continue
            if then_version is None or else_version is None:
                if key == RETURN_KEY:
                    raise DifferentiationError(
                        "not every path through this if statement returns a value",
                        self.parsed.location(node),
                        "hint: return a value on every path; a path that "
                        "returns None cannot be differentiated",
                    )
                env.pop(key, None)  # Unbound after the if, as in Python.
                continue
            joined = self.bind(env, key)
            then_body.append(_assign(joined, _name(then_version), node.lineno))
            else_body.append(_assign(joined, _name(else_version), node.lineno))
            # After the if, the joined name may alias what either branch's did.
            for version in (then_version, else_version):
                if version in self.alias_groups:
                    self.join_alias_groups(version, joined)


def _returns_always(statements: list) -> bool:
    for statement in statements:
        if isinstance(statement, gast.Return | gast.Raise):
            return True
        if isinstance(statement, gast.If) and _returns_always(
            statement.body
        ) and _returns_always(statement.orelse):
            return True
    return False


def _may_return(statements: list) -> bool:
    return any(
        isinstance(node, gast.Return) for statement in statements
        for node in gast.walk(statement)
    )


def move_code_after_returns(statements: list) -> list:
    """Move statements that follow an if with a returning branch into the other."""
    result = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, gast.If):
            result.append(statement)
            if isinstance(statement, gast.Return | gast.Raise):
                break
            continue
        rest = statements[index + 1 :]
        body, orelse = statement.body, statement.orelse
        if rest and (_may_return(body) or _may_return(orelse)):
            # Either branch may leave the function, so the statements after
            # the if run only on the paths that fall through: copy them there.
            body, orelse = body + rest, orelse + rest
            rest = []
        body = move_code_after_returns(body)
        orelse = move_code_after_returns(orelse)
        moved = gast.If(test=statement.test, body=body, orelse=orelse)
        gast.copy_location(moved, statement)
        result.append(moved)
        if not rest:
            break
    return result


def normalize_function(parsed: ParsedFunction, namer: Namer,
                       runtime_alias: str) -> NormalizedFunction:
    """Return the function's body in A-normal form with single assignment."""
    node = parsed.node
    params = [a.id for a in _parameters(node.args)]
    if parsed.is_lambda:
        statement = gast.Return(value=node.body)
        gast.copy_location(statement, node.body)
        statements = [statement]
    else:
        statements = desugar_loop_exits(copy.deepcopy(node.body), namer)
        if not _returns_always(statements):
            # Python returns None from a path that falls off the end. A path
            # that cannot really be taken (after a for-else, say) then costs
            # nothing, and one that is taken returns None as it would.
            implicit = gast.Return(value=gast.Constant(value=None, kind=None))
            statements.append(gast.copy_location(implicit, statements[-1]))
        statements = move_code_after_returns(statements)
    local_names = _assigned_names(statements) | set(params)
    normalizer = _Normalizer(parsed, namer, local_names, runtime_alias)
    normalizer.written_only = local_names - _assigned_names(statements, writes=False) - set(params)
    if node.args.vararg is not None:
        normalizer.tuples.add(node.args.vararg.id)
    env = {}
    for param in params:
        env[param] = param
        namer.reserve(param)
        normalizer.versions[param] = [param]
    body, ending = normalizer.block(statements, env)
    if RETURN_KEY not in env:
        raise DifferentiationError(
            f"{parsed.name} does not return a value",
            parsed.location(node),
            "hint: return the value to differentiate",
        )
    if ending is None:
        raise DifferentiationError(
            f"not every path through {parsed.name} returns a value",
            parsed.location(node),
            "hint: end the function with a return statement",
        )
    return NormalizedFunction(
        parsed, params, body, env[RETURN_KEY], namer, normalizer.versions, runtime_alias
    )


_AUGMENTED_SYMBOLS = {
    "Add": "+=", "Sub": "-=", "Mult": "*=", "Div": "/=", "FloorDiv": "//=",
    "Mod": "%=", "Pow": "**=", "MatMult": "@=",
}


# Methods of lists, dicts and arrays that change their object in place: what
# the call does and what to write instead. Set methods are left out because a
# set contains hashable values, never arrays, so no derivative flows through it.
# NOTE: a method of the same name on a user's local object is rejected too.
_IN_PLACE_METHODS = {
    "insert": ("inserts an item into {name}",
               "build a new list, as in `new = {name}[:i]; new.append(value); "
               "new.extend({name}[i:])`"),
    "pop": ("removes an item from {name}",
            "read the item and rebind {name} without it, as in "
            "`last = {name}[-1]; {name} = {name}[:-1]`"),
    "remove": ("removes an item from {name}",
               "rebind {name} to a new list without the item, built from slices "
               "with extend"),
    "clear": ("empties {name}", "rebind it to a new empty value, {name} = []"),
    "popitem": ("removes an item from {name}",
                "build a new dict without that key from a display"),
    "update": ("writes keys of {name}", "assign each key instead, {name}[key] = value"),
    "setdefault": ("may write a key of {name}",
                   "test and assign instead, as in `if key not in {name}: "
                   "{name}[key] = value`"),
    "sort": ("sorts {name} in place",
             "write {name} = np.sort({name}, axis) for an array. A list's "
             "{name}.sort(key=..., reverse=...) is supported"),
    "reverse": ("reverses {name} in place", "write {name} = {name}[::-1]"),
    "fill": ("fills {name} in place", "write {name} = np.full_like({name}, value)"),
    "put": ("writes items of {name} in place",
            "assign the items instead, {name}[index] = value"),
    "itemset": ("writes an item of {name} in place",
                "assign the item instead, {name}[index] = value"),
    "partition": ("partitions {name} in place",
                  "write {name} = np.sort({name}), which is also partitioned"),
    "resize": ("resizes {name} in place",
               "build the array of the new size and assign it to {name}"),
    "shuffle": ("shuffles its argument in place",
                "index the array with a permutation, as in "
                "`x = x[{name}.permutation(len(x))]`"),
    "__setitem__": ("writes an item of {name}", "write {name}[index] = value"),
    "__delitem__": ("deletes an item of {name}", "rebind {name} without the item"),
}
# The augmented-assignment methods, such as __iadd__, change their owner.
_IN_PLACE_METHODS.update({
    f"__i{operation}__": ("changes {name} in place",
                          f"write {{name}} = {{name}} {symbol} value")
    for operation, symbol in (("add", "+"), ("sub", "-"), ("mul", "*"),
                              ("truediv", "/"), ("floordiv", "//"), ("pow", "**"),
                              ("matmul", "@"), ("mod", "%"), ("and", "&"),
                              ("or", "|"), ("xor", "^"))
})

# Library functions that change their first argument in place, with the same
# two parts.
_IN_PLACE_FUNCTIONS = {
    np.copyto: ("copies values into {name}", "assign the items instead, {name}[...] = values"),
    np.put: ("writes items of {name}", "assign the items instead, {name}[index] = values"),
    np.place: ("writes items of {name}", "write {name} = np.where(mask, values, {name})"),
    np.putmask: ("writes items of {name}", "write {name} = np.where(mask, values, {name})"),
    np.put_along_axis: ("writes items of {name}",
                        "assign the items instead, {name}[index] = values"),
    np.fill_diagonal: ("writes the diagonal of {name}",
                       "assign the diagonal items instead, {name}[i, i] = value"),
    np.random.shuffle: ("shuffles {name} in place",
                        "index it with a permutation, {name} = "
                        "{name}[np.random.permutation(len({name}))]"),
    random.shuffle: ("shuffles {name} in place",
                     "index it with a permutation, {name} = "
                     "[{name}[i] for i in np.random.permutation(len({name}))]"),
    operator.setitem: ("writes an item of {name}", "write {name}[index] = value"),
    operator.delitem: ("deletes an item of {name}", "rebind {name} without the item"),
}
# The unbound forms of the in-place methods, np.ndarray.sort(y) or
# list.reverse(items), and the in-place operator functions.
for _owner in (np.ndarray, list, dict):
    for _method, _parts in _IN_PLACE_METHODS.items():
        if hasattr(_owner, _method):
            _IN_PLACE_FUNCTIONS[getattr(_owner, _method)] = _parts
for _method, _parts in _IN_PLACE_METHODS.items():
    if _method.startswith("__i") and hasattr(operator, _method.strip("_")):
        _IN_PLACE_FUNCTIONS[getattr(operator, _method.strip("_"))] = _parts


def _parameters(arguments) -> list:
    """Return the parameters in signature order, a *name parameter included."""
    vararg = [arguments.vararg] if arguments.vararg is not None else []
    return arguments.posonlyargs + arguments.args + vararg + arguments.kwonlyargs


def _callee_label(callee) -> str:
    if isinstance(callee, gast.Attribute):
        return callee.attr
    return callee.id if isinstance(callee, gast.Name) else "call"


class _RenameNames(gast.NodeTransformer):
    def __init__(self, mapping: dict):
        self.mapping = mapping

    def visit_Name(self, node):
        if node.id in self.mapping:
            node.id = self.mapping[node.id]
        return node


def hashable(value) -> bool:
    """Return whether `value` can key a dict, as the rule tables need."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _assigned_names(statements: list, writes: bool = True) -> set[str]:
    """Names the statements bind, not counting those of functions inside them.

    With `writes`, the names whose items `y[i] = v`, `xs.append(v)`,
    `xs.extend(ys)`, `xs.reverse()` or `xs.sort()` write count too, because
    each such write binds a new value.
    """
    names = set()
    pending = list(statements)
    while pending:
        node = pending.pop()
        if isinstance(node, gast.FunctionDef | gast.Lambda | gast.ListComp | gast.DictComp):
            continue  # Their names are local to them.
        if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Store):
            names.add(node.id)
        elif (writes and isinstance(node, gast.Subscript) and isinstance(node.ctx, gast.Store)
              and isinstance(node.value, gast.Name)):
            names.add(node.value.id)  # `y[i] = v` binds a new y.
        elif (writes and isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
              and node.func.attr in ("append", "extend", "reverse", "sort")
              and isinstance(node.func.value, gast.Name)
              # The method form: `list.sort(items)` writes items, not list.
              and len(node.args) == (node.func.attr in ("append", "extend"))):
            names.add(node.func.value.id)  # So do `xs.append(v)` and `xs.sort()`.
        pending.extend(gast.iter_child_nodes(node))
    return names


def _source(node) -> str:
    import ast

    return ast.unparse(gast.gast_to_ast(node))
