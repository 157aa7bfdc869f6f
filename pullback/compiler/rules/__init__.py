"""Derivative rules, one module per wrapped library.

Importing this package fills the tables in `core`.
"""

from pullback.compiler.rules import builtins, markers, math, numpy, operators  # noqa: F401
from pullback.compiler.rules.core import (
    ATTRIBUTE_RULES,
    CONSTANT,
    CUT,
    FUNCTION_RULES,
    METHOD_RULES,
    NON_DIFFERENTIABLE_ATTRIBUTES,
    NON_DIFFERENTIABLE_FUNCTIONS,
    NON_DIFFERENTIABLE_METHODS,
    NON_DIFFERENTIABLE_OPERATORS,
    OPERATOR_RULES,
    Rule,
    instantiate,
    template_names,
)
from pullback.compiler.rules.unsupported import (
    is_library_callable,
    unsupported_callables,
)

__all__ = [
    "ATTRIBUTE_RULES",
    "CONSTANT",
    "CUT",
    "FUNCTION_RULES",
    "METHOD_RULES",
    "NON_DIFFERENTIABLE_ATTRIBUTES",
    "NON_DIFFERENTIABLE_FUNCTIONS",
    "NON_DIFFERENTIABLE_METHODS",
    "NON_DIFFERENTIABLE_OPERATORS",
    "OPERATOR_RULES",
    "Rule",
    "instantiate",
    "is_library_callable",
    "template_names",
    "unsupported_callables",
]
