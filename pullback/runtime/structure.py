"""Adjoints of reading parts of a value: subscripts and unpacking."""

from __future__ import annotations

import numpy as np

from pullback.runtime.tangents import add, zeros_like


def _is_basic_index(index) -> bool:
    """Whether `index` selects each element at most once (no fancy indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if part is None or part is Ellipsis or isinstance(part, slice):
            continue
        if isinstance(part, int | np.integer) and not isinstance(part, bool):
            continue
        return False
    return True


def subscript_adjoint(cotangent, primal, index):
    """Cotangent of `primal` from the cotangent of `primal[index]`."""
    if isinstance(primal, np.ndarray):
        result = np.zeros_like(primal)
        if cotangent is None:
            return result
        if _is_basic_index(index):
            result[index] = cotangent
        else:
            # Fancy and boolean indices may select an element more than once,
            # and each selection contributes.
            np.add.at(result, index, cotangent)
        return result
    if isinstance(primal, tuple | list):
        parts = [None] * len(primal)
        if isinstance(index, slice):
            for position, piece in zip(
                range(*index.indices(len(primal))), cotangent, strict=True
            ):
                parts[position] = add(parts[position], piece)
        else:
            parts[index] = cotangent
        parts = [zeros_like(p) if c is None else c for p, c in zip(primal, parts, strict=True)]
        return type(primal)(parts)
    if isinstance(primal, dict):
        return {
            key: cotangent if key == index else zeros_like(value)
            for key, value in primal.items()
        }
    raise TypeError(
        f"cannot differentiate a subscript of a {type(primal).__name__}; "
        "differentiated code indexes arrays, tuples and lists"
    )


def unpack_adjoint(primal, cotangents: tuple):
    """Cotangent of `primal` from the cotangents of the names it unpacked into."""
    parts = [
        zeros_like(item) if cotangent is None else cotangent
        for item, cotangent in zip(primal, cotangents, strict=True)
    ]
    if isinstance(primal, np.ndarray):
        return np.stack([np.asarray(p, dtype=primal.dtype) for p in parts])
    if isinstance(primal, list):
        return parts
    return tuple(parts)


def sequence(iterable):
    """Return `iterable` as a sequence that a loop can index and measure.

    Arrays, lists and tuples are returned as they are; other iterables are
    read into a list once.
    """
    if isinstance(iterable, np.ndarray | list | tuple | range):
        return iterable
    return list(iterable)
