"""Adjoint helpers for products, contractions and linear algebra.

The two-dimensional case of each product comes first, since it is the common
one; every helper casts its result to its primal's floating dtype.
"""

from __future__ import annotations

import numpy as np

from pullback.errors import PullbackError
from pullback.runtime.arrays import (
    cast_like,
    expand_reduced,
    normalize_axes,
    unbroadcast,
)


def _mT(array):
    return np.swapaxes(array, -1, -2)


def matmul_adjoint_lhs(cotangent, a, b):
    """Cotangent of `a` in `a @ b`, for 1-D and stacked operands too."""
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2:
        grad = cotangent @ b.T
        return grad if grad.dtype is a.dtype else cast_like(grad, a)
    a_ndim = np.ndim(a)
    b_ndim = np.ndim(b)
    if b_ndim == 1:
        if a_ndim == 1:
            return cast_like(cotangent * b, a)
        return unbroadcast(np.expand_dims(cotangent, -1) * b, a)
    if a_ndim == 1:
        grad = (b @ np.expand_dims(cotangent, -1))[..., 0]
        if grad.ndim > 1:
            grad = grad.reshape(-1, a.shape[0]).sum(axis=0)
        return cast_like(grad, a)
    return unbroadcast(cotangent @ _mT(b), a)


def matmul_adjoint_rhs(cotangent, a, b):
    """Cotangent of `b` in `a @ b`, for 1-D and stacked operands too."""
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2:
        grad = a.T @ cotangent
        return grad if grad.dtype is b.dtype else cast_like(grad, b)
    a_ndim = np.ndim(a)
    b_ndim = np.ndim(b)
    if a_ndim == 1:
        if b_ndim == 1:
            return cast_like(cotangent * a, b)
        return unbroadcast(np.expand_dims(a, -1) * np.expand_dims(cotangent, -2), b)
    if b_ndim == 1:
        grad = _mT(a) @ np.expand_dims(cotangent, -1)
        grad = grad[..., 0].reshape(-1, b.shape[0]).sum(axis=0)
        return cast_like(grad, b)
    return unbroadcast(_mT(a) @ cotangent, b)


def dot_adjoint_lhs(cotangent, a, b):
    """Cotangent of `a` in `np.dot(a, b)`, for every rank `np.dot` accepts."""
    a_ndim = a.ndim if type(a) is np.ndarray else np.ndim(a)
    b_ndim = b.ndim if type(b) is np.ndarray else np.ndim(b)
    if a_ndim == 2 and b_ndim == 2:
        grad = cotangent @ b.T
        return grad if grad.dtype == a.dtype else cast_like(grad, a)
    if a_ndim == 0 or b_ndim == 0:
        return unbroadcast(cotangent * b, a)
    if b_ndim == 1:
        return cast_like(np.multiply.outer(cotangent, b), a)
    # dot(a, b)[i..., j..., m] = sum_k a[i..., k] * b[j..., k, m].
    free_b = list(range(b_ndim - 2)) + [b_ndim - 1]
    free_in_cotangent = list(range(a_ndim - 1, np.ndim(cotangent)))
    return cast_like(np.tensordot(cotangent, b, (free_in_cotangent, free_b)), a)


def dot_adjoint_rhs(cotangent, a, b):
    """Cotangent of `b` in `np.dot(a, b)`, for every rank `np.dot` accepts."""
    a_ndim = a.ndim if type(a) is np.ndarray else np.ndim(a)
    b_ndim = b.ndim if type(b) is np.ndarray else np.ndim(b)
    if a_ndim == 2 and b_ndim == 2:
        grad = a.T @ cotangent
        return grad if grad.dtype == b.dtype else cast_like(grad, b)
    if a_ndim == 0 or b_ndim == 0:
        return unbroadcast(cotangent * a, b)
    lead = list(range(a_ndim - 1))
    grad = np.tensordot(a, cotangent, (lead, lead))
    if b_ndim > 1:
        grad = np.moveaxis(grad, 0, -2)
    return cast_like(grad, b)


def inner_adjoint(cotangent, a, b, lhs=True):
    """Cotangent of `a` (lhs=True) or `b` in `np.inner(a, b)`.

    `inner` contracts the last axes of both operands, and its result has the
    other axes of `a` followed by those of `b`.
    """
    a_ndim = np.ndim(a)
    b_ndim = np.ndim(b)
    if a_ndim == 0 or b_ndim == 0:
        return unbroadcast(cotangent * (b if lhs else a), a if lhs else b)
    cotangent_ndim = np.ndim(cotangent)
    if lhs:
        axes = (list(range(a_ndim - 1, cotangent_ndim)), list(range(b_ndim - 1)))
        return cast_like(np.tensordot(cotangent, b, axes), a)
    axes = (list(range(a_ndim - 1)), list(range(a_ndim - 1)))
    return cast_like(np.moveaxis(np.tensordot(a, cotangent, axes), 0, -1), b)


def outer_adjoint(cotangent, a, b):
    """Cotangent of `a` in `np.outer(a, b)`; pass `cotangent.T, b, a` for `b`."""
    return cast_like(np.reshape(cotangent @ np.ravel(b), np.shape(a)), a)


def _tensordot_axes(axes, a_ndim: int, b_ndim: int) -> tuple[list, list]:
    if isinstance(axes, int | np.integer):
        return list(range(a_ndim - axes, a_ndim)), list(range(axes))
    a_axes, b_axes = axes
    if isinstance(a_axes, int | np.integer):
        a_axes = [a_axes]
    if isinstance(b_axes, int | np.integer):
        b_axes = [b_axes]
    return [int(x) % a_ndim for x in a_axes], [int(x) % b_ndim for x in b_axes]


def tensordot_adjoint_lhs(cotangent, a, b, axes=2):
    """Cotangent of `a` in `np.tensordot(a, b, axes)`."""
    a_ndim, b_ndim = np.ndim(a), np.ndim(b)
    a_axes, b_axes = _tensordot_axes(axes, a_ndim, b_ndim)
    a_free = [axis for axis in range(a_ndim) if axis not in a_axes]
    b_free = [axis for axis in range(b_ndim) if axis not in b_axes]
    grad = np.tensordot(
        cotangent, b, (list(range(len(a_free), np.ndim(cotangent))), b_free)
    )
    # The contracted axes come out in b's axis order; map them to a's axes.
    order = a_free + [a_axes[b_axes.index(axis)] for axis in sorted(b_axes)]
    return cast_like(np.transpose(grad, np.argsort(order)), a)


def tensordot_adjoint_rhs(cotangent, a, b, axes=2):
    """Cotangent of `b` in `np.tensordot(a, b, axes)`."""
    a_ndim, b_ndim = np.ndim(a), np.ndim(b)
    a_axes, b_axes = _tensordot_axes(axes, a_ndim, b_ndim)
    a_free = [axis for axis in range(a_ndim) if axis not in a_axes]
    b_free = [axis for axis in range(b_ndim) if axis not in b_axes]
    grad = np.tensordot(a, cotangent, (a_free, list(range(len(a_free)))))
    order = [b_axes[a_axes.index(axis)] for axis in sorted(a_axes)] + b_free
    return cast_like(np.transpose(grad, np.argsort(order)), b)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse_einsum(subscripts: str, operands) -> tuple[list[str], str]:
    """Return explicit subscripts per operand and for the output, ellipses expanded."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        inputs_text, output = subscripts.split("->")
    else:
        inputs_text, output = subscripts, None
    inputs = inputs_text.split(",")
    if len(inputs) != len(operands):
        raise PullbackError(
            f"einsum subscripts {subscripts!r} name {len(inputs)} operands, "
            f"but {len(operands)} were given"
        )
    used = set(inputs_text.replace(".", ""))
    spare = [letter for letter in _LETTERS if letter not in used]
    ellipsis_ndim = 0
    for text, operand in zip(inputs, operands, strict=True):
        if "..." in text:
            ellipsis_ndim = max(ellipsis_ndim, np.ndim(operand) - len(text) + 3)
    broadcast_letters = "".join(spare[:ellipsis_ndim])
    expanded = []
    for text, operand in zip(inputs, operands, strict=True):
        if "..." in text:
            count = np.ndim(operand) - len(text) + 3
            own = broadcast_letters[ellipsis_ndim - count :] if count else ""
            text = text.replace("...", own)
        expanded.append(text)
    if output is None:
        counts = {}
        for text in expanded:
            for letter in text:
                counts[letter] = counts.get(letter, 0) + 1
        named = sorted(
            (
                letter
                for letter, n in counts.items()
                if n == 1 and letter not in broadcast_letters
            ),
            key=_LETTERS.index,
        )
        output = broadcast_letters + "".join(named)
    else:
        output = output.replace("...", broadcast_letters)
    return expanded, output


def einsum_adjoint(cotangent, subscripts, operands, index):
    """Cotangent of `operands[index]` in `np.einsum(subscripts, *operands)`.

    It is the einsum of the cotangent with the other operands. Indices that
    only this operand has are broadcast back, repeated indices (a diagonal)
    are written onto a zero array's diagonal, and axes of length 1 that
    broadcast against other operands are summed.
    """
    if not isinstance(subscripts, str):
        raise PullbackError(
            "the derivative of np.einsum needs the subscripts as a string, as in "
            "np.einsum('ij,jk->ik', a, b); rewrite the call from the "
            "operand-sublist form"
        )
    inputs, output = _parse_einsum(subscripts, operands)
    target = operands[index]
    own = inputs[index]
    others = [text for i, text in enumerate(inputs) if i != index]
    other_operands = [op for i, op in enumerate(operands) if i != index]
    reachable = set(output).union(*others)
    distinct = "".join(dict.fromkeys(own))
    computed = "".join(letter for letter in distinct if letter in reachable)
    expression = ",".join([output] + others) + "->" + computed
    grad = np.einsum(
        expression, cotangent, *other_operands, optimize=len(other_operands) > 1
    )
    shape = np.shape(target)
    # Axes of length 1 in this operand that broadcast against other operands.
    stretched = tuple(
        i
        for i, letter in enumerate(computed)
        if shape[own.index(letter)] == 1 and grad.shape[i] != 1
    )
    if stretched:
        grad = np.sum(grad, axis=stretched, keepdims=True)
    if computed != distinct:
        # Indices summed inside this operand alone: the cotangent is constant
        # along them.
        sizes = {letter: shape[own.index(letter)] for letter in distinct}
        grad = np.reshape(grad, [sizes[x] if x in computed else 1 for x in distinct])
        grad = np.broadcast_to(grad, [sizes[x] for x in distinct])
    if len(distinct) != len(own):
        out = np.zeros(shape, dtype=np.result_type(grad))
        # einsum returns a writeable view for a pure diagonal selection.
        np.einsum(own + "->" + distinct, out)[...] = grad
        grad = out
    return cast_like(grad, target)


def _vector_norm_adjoint(cotangent, result, x, ord, axis):
    """Cotangent of a vector norm along one `axis`; `cotangent` and `result`
    already have that axis restored with length 1."""
    if ord is None or ord == 2:
        return cotangent * x / result
    if ord == 1:
        return cotangent * np.sign(x)
    if ord == 0:
        return np.zeros_like(x * cotangent)
    magnitude = np.abs(x)
    if ord in (np.inf, -np.inf):
        mask = magnitude == result
        ties = np.sum(mask, axis=axis, keepdims=True)
        return cotangent * np.sign(x) * mask / ties
    ord = float(ord)
    return cotangent * np.sign(x) * (magnitude / result) ** (ord - 1)


def _matrix_norm_adjoint(cotangent, result, x, ord):
    """Cotangent of a matrix norm over the last two axes of `x`; `cotangent`
    and `result` have shape `x.shape[:-2] + (1, 1)`."""
    if ord is None or ord == "fro":
        return cotangent * x / result
    if ord in ("nuc", 2, -2):
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        if ord == "nuc":
            return cotangent * (u @ vh)
        # Singular values come in descending order: 2 takes the first, -2 the last.
        pick = slice(0, 1) if ord == 2 else slice(-1, None)
        return cotangent * (u[..., :, pick] @ vh[..., pick, :])
    if ord in (1, -1, np.inf, -np.inf):
        # 1 and -1 take the max or min column sum of |x|, inf and -inf the row sum.
        summed_axis = -2 if ord in (1, -1) else -1
        sums = np.sum(np.abs(x), axis=summed_axis, keepdims=True)
        mask = sums == result
        ties = np.sum(mask, axis=-1 if summed_axis == -2 else -2, keepdims=True)
        return cotangent * np.sign(x) * mask / ties
    raise PullbackError(
        f"np.linalg.norm with ord={ord!r} for matrices has no derivative rule; "
        "use ord=None, 'fro', 'nuc', 1, -1, 2, -2, inf or -inf"
    )


def norm_adjoint(cotangent, result, x, ord=None, axis=None, keepdims=False):
    """Cotangent of `x` in `np.linalg.norm(x, ord, axis, keepdims)`.

    Vector norms take any `ord`; matrix norms take None, "fro", "nuc", 1,
    -1, 2, -2, inf and -inf. Like the norm itself, the 2-norm's derivative is
    undefined at zero, where this returns NaN.
    """
    x = np.asarray(x)
    ndim = x.ndim
    if axis is None:
        if ord is None:
            return cast_like(cotangent * x / result, x)
        axis = tuple(range(ndim))
    axes = normalize_axes(axis, ndim)
    expanded_cotangent = expand_reduced(cotangent, x, axes, keepdims)
    expanded_result = expand_reduced(result, x, axes, keepdims)
    if len(axes) == 1:
        if ord is None and ndim == 1:
            return cast_like(expanded_cotangent * x / expanded_result, x)
        grad = _vector_norm_adjoint(
            expanded_cotangent, expanded_result, x, ord, axes[0]
        )
        return cast_like(grad, x)
    if len(axes) == 2:
        destination = (ndim - 2, ndim - 1)
        moved = np.moveaxis(x, axes, destination)
        grad = _matrix_norm_adjoint(
            np.moveaxis(expanded_cotangent, axes, destination),
            np.moveaxis(expanded_result, axes, destination),
            moved,
            ord,
        )
        return cast_like(np.moveaxis(grad, destination, axes), x)
    raise PullbackError(f"np.linalg.norm over axes {axis!r} has no derivative rule")


def _solves_vector(result, a) -> bool:
    # NumPy 2 treats a 1-D `b` as one vector; then the result has a's rank - 1.
    return np.ndim(result) == np.ndim(a) - 1


def solve_adjoint_b(cotangent, a, b):
    """Cotangent of `b` in `x = np.linalg.solve(a, b)`: solve(a^T, cotangent)."""
    if np.ndim(b) == 1 and np.ndim(a) == 2:
        return cast_like(np.linalg.solve(a.T, cotangent), b)
    if np.ndim(b) == 1:
        grad = np.linalg.solve(_mT(a), cotangent[..., None])[..., 0]
        return unbroadcast(grad, b)
    return unbroadcast(np.linalg.solve(_mT(a), cotangent), b)


def solve_adjoint_a(cotangent, result, a, b):
    """Cotangent of `a` in `x = np.linalg.solve(a, b)`: -solve(a^T, cotangent) x^T."""
    if _solves_vector(result, a):
        b_bar = np.linalg.solve(_mT(a), cotangent[..., None])
        grad = -b_bar * np.expand_dims(result, -2)
    else:
        grad = -np.linalg.solve(_mT(a), cotangent) @ _mT(result)
    return unbroadcast(grad, a)
