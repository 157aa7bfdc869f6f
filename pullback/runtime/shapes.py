"""Adjoint helpers for operations that move, join, split or select elements.

Each returns a cotangent with the shape of its primal and, for floating
primals, the same dtype. A sequence primal (the list passed to
`np.concatenate`) gets a sequence of the same type with one cotangent per
element, and None for elements that are not floating.
"""

from __future__ import annotations

import numpy as np

from pullback.runtime.arrays import cast_like, normalize_axes


def _is_floating(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float | complex):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and np.issubdtype(dtype, np.inexact)


def _like_sequence(cotangents: list, primal):
    return tuple(cotangents) if isinstance(primal, tuple) else cotangents


def _element_cotangent(piece, primal):
    if not _is_floating(primal):
        return None
    if not isinstance(primal, np.ndarray) and isinstance(piece, np.ndarray):
        return cast_like(piece[()] if piece.ndim == 0 else piece, primal)
    return cast_like(piece, primal)


def reshape_adjoint(cotangent, primal, order="C"):
    """Adjoint of `reshape`, `ravel` or `flatten` in the given index order.

    Orders "A" and "K" are resolved against `primal`'s memory layout, the way
    the forward call resolved them.
    """
    shape = np.shape(primal)
    if order == "C" or order is None:
        return np.reshape(cotangent, shape)
    if order == "A":
        order = "F" if _is_fortran(primal) else "C"
    if order == "K":
        if not isinstance(primal, np.ndarray) or primal.flags.c_contiguous:
            return np.reshape(cotangent, shape)
        if primal.flags.f_contiguous:
            return np.reshape(cotangent, shape, order="F")
        # Memory order: axes by decreasing stride, as ravel("K") reads them.
        permutation = np.argsort([-abs(s) for s in primal.strides], kind="stable")
        permuted_shape = tuple(shape[axis] for axis in permutation)
        unpermuted = np.reshape(cotangent, permuted_shape)
        return np.transpose(unpermuted, np.argsort(permutation))
    return np.reshape(cotangent, shape, order=order)


def _is_fortran(primal) -> bool:
    return (
        isinstance(primal, np.ndarray)
        and primal.flags.f_contiguous
        and not primal.flags.c_contiguous
    )


def transpose_adjoint(cotangent, axes=None):
    """Adjoint of `np.transpose(a, axes)` and of `a.transpose(*axes)`.

    `axes` is None, a permutation, or the method's tuple of arguments: `()`,
    `(None,)`, `((1, 0),)` or `(1, 0)`.
    """
    if (
        isinstance(axes, tuple)
        and len(axes) == 1
        and not isinstance(axes[0], int | np.integer)
    ):
        axes = axes[0]
    if axes is None or (isinstance(axes, tuple) and not axes):
        return np.transpose(cotangent)
    ndim = np.ndim(cotangent)
    normalized = [int(axis) % ndim for axis in axes]
    return np.transpose(cotangent, np.argsort(normalized))


def _split(cotangent, sizes: list, axis: int) -> list:
    boundaries = np.cumsum(sizes)[:-1]
    return np.split(cotangent, boundaries, axis=axis)


def concatenate_adjoint(cotangent, arrays, axis=0):
    """Adjoint of `np.concatenate(arrays, axis)`: the cotangent cut into pieces."""
    if axis is None:
        pieces = _split(np.ravel(cotangent), [np.size(a) for a in arrays], 0)
        pieces = [
            np.reshape(p, np.shape(a)) for p, a in zip(pieces, arrays, strict=True)
        ]
    else:
        pieces = _split(cotangent, [np.shape(a)[axis] for a in arrays], axis)
    return _like_sequence(
        [_element_cotangent(p, a) for p, a in zip(pieces, arrays, strict=True)], arrays
    )


def stack_adjoint(cotangent, arrays, axis=0):
    """Adjoint of `np.stack(arrays, axis)`: one slice of the cotangent per array."""
    slices = np.moveaxis(cotangent, axis, 0)
    return _like_sequence(
        [_element_cotangent(s, a) for s, a in zip(slices, arrays, strict=True)], arrays
    )


def _joined_adjoint(cotangent, arrays, promoted: list, axis: int):
    """Split the cotangent of a join of `promoted`, the arrays after
    `atleast_Nd`, and undo the promotion."""
    pieces = _split(cotangent, [p.shape[axis] for p in promoted], axis)
    cotangents = [
        _element_cotangent(np.reshape(piece, np.shape(a)), a)
        for piece, a in zip(pieces, arrays, strict=True)
    ]
    return _like_sequence(cotangents, arrays)


def hstack_adjoint(cotangent, arrays):
    """Adjoint of `np.hstack`: 1-D inputs join on axis 0, others on axis 1."""
    promoted = [np.atleast_1d(a) for a in arrays]
    axis = 0 if promoted[0].ndim == 1 else 1
    return _joined_adjoint(cotangent, arrays, promoted, axis)


def vstack_adjoint(cotangent, arrays):
    """Adjoint of `np.vstack`: inputs promoted to 2-D join on axis 0."""
    return _joined_adjoint(cotangent, arrays, [np.atleast_2d(a) for a in arrays], 0)


def dstack_adjoint(cotangent, arrays):
    """Adjoint of `np.dstack`: inputs promoted to 3-D join on axis 2."""
    return _joined_adjoint(cotangent, arrays, [np.atleast_3d(a) for a in arrays], 2)


def column_stack_adjoint(cotangent, arrays):
    """Adjoint of `np.column_stack`: 1-D inputs become columns, join on axis 1."""
    promoted = [
        np.asarray(a).reshape(-1, 1) if np.ndim(a) < 2 else np.asarray(a)
        for a in arrays
    ]
    return _joined_adjoint(cotangent, arrays, promoted, 1)


def tile_adjoint(cotangent, primal, reps):
    """Adjoint of `np.tile(primal, reps)`: the tiles summed onto one."""
    shape = np.shape(primal)
    reps = tuple(reps) if np.ndim(reps) else (int(reps),)
    ndim = max(len(shape), len(reps))
    padded_shape = (1,) * (ndim - len(shape)) + tuple(shape)
    padded_reps = (1,) * (ndim - len(reps)) + reps
    interleaved = []
    for count, size in zip(padded_reps, padded_shape, strict=True):
        interleaved += [count, size]
    tiles = np.reshape(cotangent, interleaved)
    summed = np.sum(tiles, axis=tuple(range(0, 2 * ndim, 2)))
    return _element_cotangent(np.reshape(summed, shape), primal)


def repeat_adjoint(cotangent, primal, repeats, axis=None):
    """Adjoint of `np.repeat(primal, repeats, axis)`: each run of copies summed."""
    shape = np.shape(primal)
    if axis is None:
        source_shape = (int(np.prod(shape, dtype=np.int64)),)
        axis = 0
    else:
        source_shape = shape
        axis = normalize_axes(axis, len(shape))[0]
    moved = np.moveaxis(cotangent, axis, 0)
    length = source_shape[axis]
    if np.size(repeats) == 1:
        count = int(np.ravel(repeats)[0])
        summed = moved.reshape((length, count) + moved.shape[1:]).sum(axis=1)
    else:
        owners = np.repeat(np.arange(length), repeats)
        summed = np.zeros((length,) + moved.shape[1:], dtype=moved.dtype)
        np.add.at(summed, owners, moved)
    summed = np.moveaxis(summed, 0, axis)
    return _element_cotangent(np.reshape(summed, shape), primal)


def take_adjoint(cotangent, primal, indices, axis=None):
    """Adjoint of `np.take(primal, indices, axis)`: the cotangent added back at
    the indices, repeated indices accumulating."""
    shape = np.shape(primal)
    dtype = primal.dtype if _is_floating(primal) else np.result_type(cotangent)
    if axis is None:
        out = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
        np.add.at(out, np.ravel(indices), np.ravel(cotangent))
        return out.reshape(shape)
    axis = normalize_axes(axis, len(shape))[0]
    out = np.zeros(shape, dtype=dtype)
    # The cotangent has primal's axes before `axis`, then the axes of
    # `indices`, then primal's axes after `axis`; flatten the middle ones.
    flat = np.reshape(cotangent, shape[:axis] + (-1,) + shape[axis + 1 :])
    np.add.at(np.moveaxis(out, axis, 0), np.ravel(indices), np.moveaxis(flat, axis, 0))
    return out


def _diagonal_length(shape, offset, axis1, axis2) -> int:
    rows = shape[axis1] - max(-offset, 0)
    columns = shape[axis2] - max(offset, 0)
    return max(0, min(rows, columns))


def diagonal_adjoint(cotangent, primal, offset=0, axis1=0, axis2=1):
    """Adjoint of `np.diagonal`: the cotangent written onto a zero array's diagonal.

    As `np.diagonal` returns it, the cotangent has the diagonal as its last axis.
    """
    shape = np.shape(primal)
    dtype = primal.dtype if _is_floating(primal) else np.result_type(cotangent)
    out = np.zeros(shape, dtype=dtype)
    axis1, axis2 = normalize_axes((axis1, axis2), len(shape))
    view = np.moveaxis(out, (axis1, axis2), (-2, -1))
    steps = np.arange(_diagonal_length(shape, offset, axis1, axis2))
    view[..., steps + max(-offset, 0), steps + max(offset, 0)] = cotangent
    return out


def trace_adjoint(cotangent, primal, offset=0, axis1=0, axis2=1):
    """Adjoint of `np.trace`: the cotangent on every element of the diagonal."""
    shape = np.shape(primal)
    if len(shape) == 2:
        eye = np.eye(shape[0], shape[1], k=offset, dtype=np.result_type(cotangent))
        return cast_like(cotangent * eye, primal)
    axis1, axis2 = normalize_axes((axis1, axis2), len(shape))
    length = _diagonal_length(shape, offset, axis1, axis2)
    expanded = np.expand_dims(cotangent, -1)
    spread = np.broadcast_to(expanded, np.shape(expanded)[:-1] + (length,))
    return diagonal_adjoint(spread, primal, offset, axis1, axis2)


def diag_adjoint(cotangent, v, k=0):
    """Adjoint of `np.diag(v, k)`, which builds a matrix from a 1-D `v` and
    extracts a diagonal from a 2-D one."""
    if np.ndim(v) == 1:
        return cast_like(np.diagonal(cotangent, k), v)
    return diagonal_adjoint(cotangent, v, k, 0, 1)


def sort_adjoint(cotangent, primal, axis=-1):
    """Adjoint of `np.sort`: each cotangent entry goes back to its source position.

    Tied elements may receive each other's entries, which is one valid
    subgradient at such a point.
    """
    primal = np.asarray(primal)
    if axis is None:
        order = np.argsort(primal, axis=None, kind="stable")
        out = np.empty(primal.size, dtype=np.result_type(cotangent))
        out[order] = cotangent
        return cast_like(out.reshape(primal.shape), primal)
    order = np.argsort(primal, axis=axis, kind="stable")
    out = np.empty(primal.shape, dtype=np.result_type(cotangent))
    np.put_along_axis(out, order, cotangent, axis)
    return cast_like(out, primal)


def array_adjoint(cotangent, primal):
    """Adjoint of `np.array(primal)` and `np.asarray(primal)`.

    A nested list or tuple of numbers and arrays gets a nested list or tuple
    of cotangents, with None for elements that are not floating.
    """
    if isinstance(primal, np.ndarray):
        return cast_like(np.reshape(cotangent, primal.shape), primal)
    if isinstance(primal, list | tuple):
        # `ndmin` may have added leading axes of size 1.
        reshaped = np.reshape(cotangent, np.shape(primal))
        return _like_sequence(
            [array_adjoint(reshaped[i], item) for i, item in enumerate(primal)], primal
        )
    if not _is_floating(primal):
        return None
    if isinstance(cotangent, np.ndarray):
        cotangent = cotangent.reshape(())[()]
    return cast_like(cotangent, primal)


def item_adjoint(cotangent, primal, index=()):
    """Adjoint of `primal.item(*index)` and of `float(primal)`.

    An array gets zeros with the cotangent at the read position; a number
    gets the cotangent itself.
    """
    if not isinstance(primal, np.ndarray):
        return cast_like(cotangent, primal)
    out = np.zeros(primal.shape, dtype=primal.dtype)
    if len(index) == 1 and isinstance(index[0], tuple):
        index = index[0]
    if not index:
        out.reshape(-1)[0] = cotangent
    elif len(index) == 1:
        out.reshape(-1)[index[0]] = cotangent
    else:
        out[index] = cotangent
    return out
