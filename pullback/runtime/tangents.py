"""Tangent algebra: zero, add, scale for the values differentiated code sees.

Cotangents are plain values of the same structure as their primals: floats
and NumPy floating scalars and arrays (dtype kept), and tuples, lists and
dicts of those. `None` is the symbolic zero: a cotangent nobody contributed
to, never allocated.
"""

from __future__ import annotations

import numbers
import types

import numpy as np


def is_differentiable_value(value) -> bool:
    """Return whether `value` has a tangent space (floating or complex)."""
    if isinstance(value, np.ndarray | np.generic):
        return value.dtype.kind in "fc"
    if isinstance(value, bool):
        return False
    if isinstance(value, float | complex):
        return True
    if isinstance(value, tuple | list):
        return any(is_differentiable_value(item) for item in value)
    if isinstance(value, dict):
        return any(is_differentiable_value(item) for item in value.values())
    return _has_differentiable_fields(value)


def _has_differentiable_fields(value) -> bool:
    """Whether a plain object or dataclass holds differentiable attributes."""
    fields = getattr(value, "__dict__", None)
    if fields is None or isinstance(value, type | types.ModuleType | types.FunctionType):
        return False
    return any(is_differentiable_value(item) for item in fields.values())


def zeros_like(value):
    """Return the zero tangent of `value`, or None where it has no tangent."""
    from pullback.runtime.arrays import ShapeOf

    if isinstance(value, ShapeOf):
        return np.zeros(value.shape, value.dtype)
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.inexact):
            return np.zeros_like(value)
        return None
    if isinstance(value, np.generic):
        if np.issubdtype(value.dtype, np.inexact):
            return value.dtype.type(0)
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float | complex):
        return type(value)(0)
    if isinstance(value, numbers.Integral):
        return None
    if isinstance(value, tuple):
        return tuple(zeros_like(item) for item in value)
    if isinstance(value, list):
        return [zeros_like(item) for item in value]
    if isinstance(value, dict):
        return {key: zeros_like(item) for key, item in value.items()}
    if _has_differentiable_fields(value):
        from pullback.runtime.objects import ObjectTangent

        return ObjectTangent()
    return None


def add(a, b):
    """Add two cotangents of the same primal; None is the symbolic zero."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple):
        return tuple(add(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, list) and isinstance(b, list):
        return [add(x, y) for x, y in zip(a, b, strict=True)]
    if isinstance(a, dict) and isinstance(b, dict):
        merged = dict(a)
        for key, value in b.items():
            merged[key] = add(merged.get(key), value)
        return merged
    return a + b


def scale(a, factor):
    """Multiply a cotangent by a scalar, keeping its structure."""
    if a is None:
        return None
    if isinstance(a, tuple):
        return tuple(scale(item, factor) for item in a)
    if isinstance(a, list):
        return [scale(item, factor) for item in a]
    if isinstance(a, dict):
        return {key: scale(item, factor) for key, item in a.items()}
    return a * factor
