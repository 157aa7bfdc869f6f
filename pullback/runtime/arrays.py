"""Array helpers that generated adjoint code calls.

Each helper has a fast path for the common case in which it is the identity,
because generated code calls them on every backward pass.
"""

from __future__ import annotations

import numpy as np


def _shape(value) -> tuple:
    shape = getattr(value, "shape", None)
    if shape is None:
        return ()
    return shape


def _cast_like(cotangent, primal):
    """Give `cotangent` the floating dtype of `primal` (float32 stays float32)."""
    dtype = getattr(primal, "dtype", None)
    if dtype is None or not np.issubdtype(dtype, np.inexact):
        return cotangent
    if getattr(cotangent, "dtype", None) == dtype:
        return cotangent
    if isinstance(cotangent, np.ndarray):
        return cotangent.astype(dtype, copy=False)
    return dtype.type(cotangent)


def unbroadcast(cotangent, primal):
    """Sum `cotangent` over the axes along which `primal` was broadcast.

    The result has the shape of `primal` and, when `primal` is a floating
    array or NumPy scalar, its dtype.
    """
    primal_shape = _shape(primal)
    cotangent_shape = _shape(cotangent)
    if cotangent_shape != primal_shape:
        extra = len(cotangent_shape) - len(primal_shape)
        if extra > 0:
            cotangent = np.sum(cotangent, axis=tuple(range(extra)))
        stretched = tuple(
            axis
            for axis, size in enumerate(primal_shape)
            if size == 1 and cotangent.shape[axis] != 1
        )
        if stretched:
            cotangent = np.sum(cotangent, axis=stretched, keepdims=True)
        if not isinstance(primal, np.ndarray) and isinstance(cotangent, np.ndarray):
            cotangent = cotangent[()]
    return _cast_like(cotangent, primal)


def _normalize_axes(axis, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int | np.integer):
        axis = (axis,)
    return tuple(int(a) % ndim for a in axis) if ndim else ()


def expand_reduced(cotangent, primal, axis, keepdims: bool):
    """Reinsert the axes a reduction removed, so `cotangent` broadcasts on `primal`."""
    if keepdims or axis is None:
        return cotangent
    shape = _shape(primal)
    axes = _normalize_axes(axis, len(shape))
    return np.expand_dims(cotangent, axes)


def unreduce(cotangent, primal, axis=None, keepdims=False):
    """Spread the cotangent of a sum over `axis` back to `primal`'s shape."""
    expanded = expand_reduced(cotangent, primal, axis, keepdims)
    spread = np.broadcast_to(expanded, _shape(primal))
    return _cast_like(spread, primal)


def reduced_count(primal, axis=None) -> int:
    """Return how many elements of `primal` each reduced value combines."""
    shape = _shape(primal)
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    count = 1
    for a in _normalize_axes(axis, len(shape)):
        count *= shape[a]
    return count


def extremum_adjoint(cotangent, result, primal, axis=None, keepdims=False):
    """Adjoint of max or min reductions: ties share the cotangent equally."""
    expanded_result = expand_reduced(result, primal, axis, keepdims)
    expanded_cotangent = expand_reduced(cotangent, primal, axis, keepdims)
    mask = primal == expanded_result
    ties = np.sum(mask, axis=axis, keepdims=True)
    return _cast_like(mask * (expanded_cotangent / ties), primal)


def matmul_adjoint_lhs(cotangent, a, b):
    """Cotangent of `a` in `a @ b`, for 1-D and stacked operands too."""
    a_ndim = np.ndim(a)
    b_ndim = np.ndim(b)
    if a_ndim == 2 and b_ndim == 2:
        return _cast_like(cotangent @ b.T, a)
    if b_ndim == 1:
        if a_ndim == 1:
            return _cast_like(cotangent * b, a)
        return unbroadcast(np.expand_dims(cotangent, -1) * b, a)
    if a_ndim == 1:
        grad = (b @ np.expand_dims(cotangent, -1))[..., 0]
        if grad.ndim > 1:
            grad = grad.reshape(-1, a.shape[0]).sum(axis=0)
        return _cast_like(grad, a)
    return unbroadcast(cotangent @ np.swapaxes(b, -1, -2), a)


def matmul_adjoint_rhs(cotangent, a, b):
    """Cotangent of `b` in `a @ b`, for 1-D and stacked operands too."""
    a_ndim = np.ndim(a)
    b_ndim = np.ndim(b)
    if a_ndim == 2 and b_ndim == 2:
        return _cast_like(a.T @ cotangent, b)
    if a_ndim == 1:
        if b_ndim == 1:
            return _cast_like(cotangent * a, b)
        return unbroadcast(np.expand_dims(a, -1) * np.expand_dims(cotangent, -2), b)
    if b_ndim == 1:
        grad = np.swapaxes(a, -1, -2) @ np.expand_dims(cotangent, -1)
        grad = grad[..., 0].reshape(-1, b.shape[0]).sum(axis=0)
        return _cast_like(grad, b)
    return unbroadcast(np.swapaxes(a, -1, -2) @ cotangent, b)
