"""The computed set of library callables that have no derivative rule.

Unsupported functions are not listed by hand: every public callable of NumPy and
`math` that is neither given a rule nor marked non-differentiable is
unsupported, and calling one on a differentiated value is a compile error that
suggests `derivative_of`.
"""

from __future__ import annotations

import functools
import math
import types

import numpy as np

from pullback.compiler.rules.core import FUNCTION_RULES, NON_DIFFERENTIABLE_FUNCTIONS

# Namespaces whose callables must each have a rule or a non-differentiable mark.
_NAMESPACES = {
    "math": math,
    "numpy": np,
    "numpy.linalg": np.linalg,
    "numpy.fft": np.fft,
    "numpy.random": np.random,
}


def _public_callables(module) -> dict[str, object]:
    found = {}
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name, None)
        if isinstance(value, types.ModuleType | type):
            continue
        if callable(value):
            found[name] = value
    return found


@functools.cache
def _library_objects() -> dict[int, str]:
    objects = {}
    for prefix, module in _NAMESPACES.items():
        for name, value in _public_callables(module).items():
            objects.setdefault(id(value), f"{prefix}.{name}")
    return objects


def is_library_callable(value) -> bool:
    """Return whether `value` is a public callable of NumPy or math."""
    return id(value) in _library_objects()


def library_name(value) -> str | None:
    return _library_objects().get(id(value))


def unsupported_callables() -> list[str]:
    """Return the names of NumPy and math callables with neither rule nor mark."""
    names = []
    for prefix, module in _NAMESPACES.items():
        for name, value in _public_callables(module).items():
            if value in FUNCTION_RULES or value in NON_DIFFERENTIABLE_FUNCTIONS:
                continue
            names.append(f"{prefix}.{name}")
    return sorted(set(names))
