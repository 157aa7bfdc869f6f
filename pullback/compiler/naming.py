"""Every name that generated code introduces.

Cotangent of `x` is `x_bar`; temporaries are named after what they hold
(`sin_x`, `x_times_w`). A `Namer` records every name the user's function and its
globals use, so a generated name never shadows one of them: a clash gets a
numeric suffix (`x_bar_2`).
"""

from __future__ import annotations

import re

import gast

_MAX_TEMPORARY_LENGTH = 24

_OPERATOR_WORDS = {
    "Add": "plus",
    "Sub": "minus",
    "Mult": "times",
    "Div": "over",
    "FloorDiv": "floordiv",
    "Mod": "mod",
    "Pow": "pow",
    "MatMult": "matmul",
}
_OPERATOR_NOUNS = {
    "Add": "sum",
    "Sub": "difference",
    "Mult": "product",
    "Div": "quotient",
    "FloorDiv": "floor_quotient",
    "Mod": "remainder",
    "Pow": "power",
    "MatMult": "matmul",
    "USub": "negative",
    "UAdd": "positive",
    "Not": "negation",
    "Invert": "inverted",
}


class Namer:
    """Hands out fresh names that avoid every name already in use."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)
        self._cotangents: dict[str, str] = {}

    def reserve(self, name: str) -> None:
        self.taken.add(name)

    def fresh(self, base: str) -> str:
        base = _identifier(base)
        if base not in self.taken:
            self.taken.add(base)
            return base
        index = 2
        while f"{base}_{index}" in self.taken:
            index += 1
        name = f"{base}_{index}"
        self.taken.add(name)
        return name

    def cotangent(self, primal: str) -> str:
        """Return the cotangent variable of `primal`: `x_bar`, always the same."""
        name = self._cotangents.get(primal)
        if name is None:
            name = self.fresh(f"{primal}_bar")
            self._cotangents[primal] = name
        return name

    def version(self, name: str) -> str:
        """Return a new SSA version of a user variable: `x_1`, `x_2`."""
        index = 1
        while f"{name}_{index}" in self.taken:
            index += 1
        version = f"{name}_{index}"
        self.taken.add(version)
        return version

    def temporary(self, node) -> str:
        """Return a fresh name for the temporary that stores `node`'s value."""
        return self.fresh(describe(node))


def _identifier(text: str) -> str:
    text = re.sub(r"\W+", "_", text).strip("_") or "tmp"
    if text[0].isdigit():
        text = "v" + text
    return text


def _short(node) -> str | None:
    """Return a short word for a simple operand, or None."""
    if isinstance(node, gast.Name):
        return node.id
    if isinstance(node, gast.Constant) and isinstance(node.value, int | float):
        return str(node.value).replace(".", "_").replace("-", "neg")
    if isinstance(node, gast.Attribute):
        inner = _short(node.value)
        return f"{inner}_{node.attr}" if inner else node.attr
    return None


def describe(node) -> str:
    """Return a readable identifier for the value an expression computes."""
    name = _describe(node)
    if len(name) > _MAX_TEMPORARY_LENGTH:
        name = _fallback(node)
    return _identifier(name)


def _describe(node) -> str:
    if isinstance(node, gast.Call):
        callee = node.func
        function = callee.attr if isinstance(callee, gast.Attribute) else _short(callee)
        if isinstance(callee, gast.Attribute) and not _is_module_path(callee.value):
            owner = _short(callee.value)
            return f"{owner}_{function}" if owner else function or "call"
        first = _short(node.args[0]) if node.args else None
        return f"{function}_{first}" if first else function or "call"
    if isinstance(node, gast.BinOp):
        op = type(node.op).__name__
        left, right = _short(node.left), _short(node.right)
        if left and right:
            return f"{left}_{_OPERATOR_WORDS.get(op, op.lower())}_{right}"
        return _OPERATOR_NOUNS.get(op, "value")
    if isinstance(node, gast.UnaryOp):
        operand = _short(node.operand)
        noun = _OPERATOR_NOUNS.get(type(node.op).__name__, "value")
        if isinstance(node.op, gast.USub) and operand:
            return f"neg_{operand}"
        return noun
    if isinstance(node, gast.Attribute):
        return _short(node) or node.attr
    if isinstance(node, gast.Subscript):
        owner = _short(node.value)
        return f"{owner}_item" if owner else "item"
    if isinstance(node, gast.Compare):
        return "comparison"
    if isinstance(node, gast.IfExp):
        return "choice"
    if isinstance(node, gast.Tuple):
        return "packed"
    if isinstance(node, gast.List):
        return "items"
    if isinstance(node, gast.Lambda):
        return "function"
    return "value"


def _fallback(node) -> str:
    if isinstance(node, gast.BinOp | gast.UnaryOp):
        return _OPERATOR_NOUNS.get(type(node.op).__name__, "value")
    if isinstance(node, gast.Call):
        callee = node.func
        if isinstance(callee, gast.Attribute):
            return callee.attr
        return callee.id if isinstance(callee, gast.Name) else "call"
    return "value"


def _is_module_path(node) -> bool:
    """Guess whether an attribute owner like `np` or `np.linalg` is a module."""
    # The owner of a method call is a value and the owner of `np.sin` a module.
    # Classification resolves which is which, so here a readable word is enough.
    while isinstance(node, gast.Attribute):
        node = node.value
    return isinstance(node, gast.Name) and node.id in _MODULE_ALIASES


_MODULE_ALIASES = {"np", "numpy", "math", "jnp", "onp", "linalg", "scipy"}


def names_in(node) -> set[str]:
    """Return every identifier that appears in a syntax tree."""
    found = set()
    for child in gast.walk(node):
        if isinstance(child, gast.Name):
            found.add(child.id)
        elif isinstance(child, gast.FunctionDef | gast.ClassDef):
            found.add(child.name)
        elif isinstance(child, gast.alias):
            found.add((child.asname or child.name).split(".")[0])
    return found


def runtime_alias(taken: set[str]) -> str:
    """Return the one reserved name through which generated code reaches the runtime."""
    alias = "_pb"
    index = 2
    while alias in taken:
        alias = f"_pb{index}"
        index += 1
    return alias


def assigned_names(function_node) -> set[str]:
    """Return the parameters and every name the function assigns: its locals."""
    found = set()
    for child in gast.walk(function_node):
        if isinstance(child, gast.Name) and isinstance(child.ctx, gast.Store | gast.Param):
            found.add(child.id)
    return found
