"""Array helpers that generated adjoint code calls: broadcasting, reductions
and elementwise selections.

Each helper has a fast path for the common case, because generated code calls
them on every backward pass. Every helper returns a cotangent with the shape
of the primal it is for and, when that primal is floating, its dtype.
"""

from __future__ import annotations

import numpy as np


def _shape(value) -> tuple:
    shape = getattr(value, "shape", None)
    if shape is None:
        return np.shape(value) if isinstance(value, list | tuple) else ()
    return shape


def is_complex_value(value) -> bool:
    """Return whether `value` is a complex number, or a NumPy array or scalar of one."""
    if isinstance(value, np.ndarray | np.generic):
        return value.dtype.kind == "c"
    return isinstance(value, complex)


def contains_complex_value(value) -> bool:
    """Return whether `value`, or any item or field of it, is complex.

    Looks into tuples, lists, dicts and object tangents, which contain the
    cotangents of containers and of objects such as layers.
    """
    if is_complex_value(value):
        return True
    if isinstance(value, tuple | list):
        return any(contains_complex_value(item) for item in value)
    if isinstance(value, dict):
        return any(contains_complex_value(item) for item in value.values())
    fields = getattr(value, "_fields", None)
    if isinstance(fields, dict):  # An ObjectTangent.
        return any(contains_complex_value(item) for item in fields.values())
    return False


def complex_values_error():
    """Return the error for a gradient that flows through complex numbers.

    The derivative rules follow no convention for conjugating complex
    values: the product's adjoint does not conjugate and `abs`'s does. A
    gradient through complex values would be wrong, so it is an error.
    """
    from pullback.errors import DifferentiationError

    return DifferentiationError(
        "pullback does not differentiate complex numbers: a complex argument, or "
        "a complex value computed from a real one, reached the gradient, and the "
        "derivative rules follow no convention for conjugating complex values",
        hint="hint: carry the real and imaginary parts as separate real arrays",
    )


def cast_like(cotangent, primal):
    """Give `cotangent` the floating dtype of `primal` (float32 stays float32).

    Python numbers and non-floating primals leave the cotangent unchanged.
    """
    dtype = getattr(primal, "dtype", None)
    if dtype is None or getattr(cotangent, "dtype", None) == dtype:
        return cotangent
    if dtype.kind not in "fc":
        return cotangent
    if dtype.kind == "f" and is_complex_value(cotangent):
        raise complex_values_error()
    if isinstance(cotangent, np.ndarray):
        return cotangent.astype(dtype, copy=False)
    return dtype.type(cotangent)


# The name existing callers use.
_cast_like = cast_like


_SCALAR_TYPES = (float, np.float64)


class ShapeOf:
    """The shape and dtype of an array, kept in place of the array itself.

    A loop's tape saves this for a value its pullback reads only for its
    shape, such as the operand `rt.unbroadcast` sums a cotangent back to, so
    the array itself can be freed.
    """

    __slots__ = ("shape", "dtype", "ndim")

    def __init__(self, shape, dtype):
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)

    def __repr__(self) -> str:
        return f"ShapeOf({self.shape}, {self.dtype})"


def like(value):
    """Return what the pullback needs of `value` for shapes: arrays shrink."""
    if type(value) is np.ndarray:
        return ShapeOf(value.shape, value.dtype)
    return value


def like_when_large(value):
    """Return `like(value)` for an array of 64 KiB or more, else `value` itself.

    Straight-line code saves each value once, so keeping a small array costs
    less memory than describing it costs time. A loop saves one value per
    iteration and uses `like`.
    """
    if type(value) is np.ndarray and value.nbytes >= 1 << 16:
        return ShapeOf(value.shape, value.dtype)
    return value


def in_place_result(value, target):
    """Return what `target op= operand` leaves in `target`, given `value = target op operand`.

    NumPy computes an augmented assignment to an array in the array's memory,
    so the array keeps its shape and dtype. An operand that would broadcast
    it to a larger shape, or a result that cannot be cast back to its dtype
    (a float result for an integer array), raises. Differentiated code never
    writes into an array, so it computes `target op operand` and applies
    those rules here. Any other target, such as a number or a tuple, takes
    `value` as it is.
    """
    if (type(target) is np.ndarray and type(value) is np.ndarray
            and value.dtype is target.dtype and value.shape == target.shape):
        return value  # The common case: nothing to check further.
    if not isinstance(target, np.ndarray):
        return value
    # NumPy checks the cast before the shape, so a call failing both raises
    # the TypeError.
    # NOTE: operands that do not broadcast at all fail earlier, in `x op y`,
    # with ValueError, where NumPy's in-place call raises TypeError for a
    # cast it cannot make.
    dtype = target.dtype
    result_dtype = np.result_type(value)
    if not np.can_cast(result_dtype, dtype, "same_kind"):
        raise TypeError(
            f"an augmented assignment such as x += y to an array of dtype {dtype} "
            f"gives a result of dtype {result_dtype}, which NumPy cannot cast back "
            "to the array's dtype, so plain Python raises here too; write "
            "x = x + y to rebind x to the result"
        )
    shape = np.shape(value)
    if shape != target.shape:
        raise ValueError(
            f"an augmented assignment such as x += y to an array of shape "
            f"{target.shape} gives a result of the broadcast shape {shape}, which "
            "NumPy cannot write into the array, so plain Python raises here too; "
            "write x = x + y to rebind x to the broadcast result"
        )
    if result_dtype == dtype and isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.ndarray):
        return value.astype(dtype)
    return np.array(value, dtype=dtype)  # A 0-d array stays a 0-d array.


def unbroadcast(cotangent, primal):
    """Sum `cotangent` over the axes along which `primal` was broadcast.

    The result has the shape of `primal` and, when `primal` is a floating
    array or NumPy scalar, its dtype.
    """
    # The common cases, an operand of the result's shape and dtype or a bias
    # added to every row, return at once: generated code calls this for every
    # operand of a broadcasting op.
    primal_type = type(primal)
    if type(cotangent) is np.ndarray and (primal_type is np.ndarray or primal_type is ShapeOf):
        dtype = cotangent.dtype
        if dtype is primal.dtype or dtype == primal.dtype:
            shape = primal.shape
            cotangent_shape = cotangent.shape
            if cotangent_shape == shape:
                return cotangent
            if len(cotangent_shape) == len(shape) + 1 and cotangent_shape[1:] == shape:
                # The ufunc method that `sum(axis=0)` calls, without the two
                # Python-level calls in between.
                return np.add.reduce(cotangent, 0)
    elif primal_type is float and type(cotangent) in _SCALAR_TYPES:
        return cotangent
    if isinstance(primal, list | tuple):
        from pullback.errors import DifferentiationError

        raise DifferentiationError(
            f"an arithmetic operator was applied to a {type(primal).__name__}, "
            "where + concatenates and * repeats; differentiated code "
            "differentiates them only on numbers and arrays",
            hint="hint: build the sequence with append or a comprehension, or "
            "use np.concatenate and np.tile on arrays",
        )
    primal_shape = _shape(primal)
    cotangent_shape = _shape(cotangent)
    if cotangent_shape != primal_shape:
        extra = len(cotangent_shape) - len(primal_shape)
        if extra > 0:
            cotangent = cotangent.sum(axis=0 if extra == 1 else tuple(range(extra)))
        if 1 in primal_shape:
            stretched = tuple(
                axis
                for axis, size in enumerate(primal_shape)
                if size == 1 and cotangent.shape[axis] != 1
            )
            if stretched:
                cotangent = cotangent.sum(axis=stretched, keepdims=True)
        if not isinstance(primal, np.ndarray | ShapeOf) and isinstance(
            cotangent, np.ndarray
        ):
            cotangent = cotangent[()]
    return cast_like(cotangent, primal)


def normalize_axes(axis, ndim: int) -> tuple:
    """Return `axis` (None, an int or a sequence) as a tuple of axes in [0, ndim)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int | np.integer):
        axis = (axis,)
    return tuple(int(a) % ndim for a in axis) if ndim else ()


def expand_reduced(cotangent, primal, axis, keepdims: bool):
    """Reinsert the axes a reduction removed, so `cotangent` broadcasts on `primal`."""
    if keepdims:
        return cotangent
    ndim = len(_shape(primal))
    if axis is None:
        # A full reduction returns a scalar, which broadcasts as it is.
        return cotangent
    return np.expand_dims(cotangent, normalize_axes(axis, ndim))


# A full reduction of an array with fewer elements than this gets a filled
# cotangent array, which is several times faster to make than a broadcast
# view. From 512 KiB of float64 on, the view's saving of memory matters more.
_VIEW_MIN_ELEMENTS = 1 << 16


def unreduce(cotangent, primal, axis=None, keepdims=False):
    """Spread the cotangent of a sum over `axis` back to `primal`'s shape.

    The result is a read-only broadcast view when no cast is needed, except
    for a full reduction of a small array, which fills a new array.
    """
    if axis is None and not keepdims and type(primal) is np.ndarray:
        return _spread(cotangent, primal)
    expanded = expand_reduced(cotangent, primal, axis, keepdims)
    spread = np.broadcast_to(expanded, _shape(primal))
    return cast_like(spread, primal)


def mean_adjoint(cotangent, primal, axis=None, keepdims=False):
    """Spread the cotangent of a mean over `axis` back to `primal`'s shape."""
    if axis is None and not keepdims and type(primal) is np.ndarray:
        return _spread(cotangent / primal.size, primal)
    return unreduce(cotangent, primal, axis, keepdims) / reduced_count(primal, axis)


# Cotangents of a mean that `mean_adjoint_times` scales without an array.
_SCALAR_COTANGENT_TYPES = (float, np.float64, np.float32)


def mean_adjoint_times(cotangent, primal, other, factor=1):
    """Return `mean_adjoint(cotangent, primal) * factor * other`, for a full mean.

    The compiler emits this for the adjoint of `np.mean(d ** 2)`, where the
    mean's cotangent array is multiplied by 2 and by `d`. Every element of
    that array is the same number, so when `other` is a C-ordered array of
    `primal`'s shape and float dtype, one product of `other` and a scalar
    gives the result.
    The result is the same bit for bit, because IEEE multiplication is
    commutative and the scalar is rounded to `primal`'s dtype as the filled
    array is. C order keeps the layout, and with it the order of any later
    reduction's sums.
    """
    if (
        type(primal) is np.ndarray
        and type(other) is np.ndarray
        and type(cotangent) in _SCALAR_COTANGENT_TYPES
        and (type(factor) is int or type(factor) is float)
        and other.dtype is primal.dtype
        and primal.dtype.kind == "f"
        and other.shape == primal.shape
        and other.flags.c_contiguous
    ):
        scale = primal.dtype.type(cotangent / primal.size) * factor
        return np.multiply(other, scale)
    spread = mean_adjoint(cotangent, primal)
    return multiply_into(multiply_into(spread, factor), other)


def _spread(value, primal: np.ndarray) -> np.ndarray:
    """Return the scalar `value` at every element of `primal`, in its dtype.

    `value` must be a scalar or a 0-d array: a full reduction with keepdims
    gives a cotangent with one element per axis, which `fill` rejects.
    """
    if primal.size < _VIEW_MIN_ELEMENTS:
        # empty and fill cost half of np.full, which is written in Python.
        spread = np.empty(primal.shape, primal.dtype)
        spread.fill(value)
        return spread
    return np.broadcast_to(cast_like(np.asarray(value), primal), primal.shape)


def reduced_count(primal, axis=None) -> int:
    """Return how many elements of `primal` each reduced value combines."""
    shape = _shape(primal)
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    count = 1
    for a in normalize_axes(axis, len(shape)):
        count *= shape[a]
    return count


def extremum_adjoint(cotangent, result, primal, axis=None, keepdims=False):
    """Adjoint of a max or min reduction: tied extremes share the cotangent equally."""
    primal = np.asarray(primal)
    expanded_result = expand_reduced(result, primal, axis, keepdims)
    expanded_cotangent = expand_reduced(cotangent, primal, axis, keepdims)
    mask = primal == expanded_result
    dtype = primal.dtype if np.issubdtype(primal.dtype, np.inexact) else np.float64
    ties = np.sum(mask, axis=axis, keepdims=True, dtype=dtype)
    return cast_like(mask * (expanded_cotangent / ties), primal)


def _product_of_others(primal: np.ndarray, axis) -> np.ndarray:
    """For each element, the product of the other elements it is reduced with.

    Exclusive prefix and suffix products avoid dividing by zero.
    """
    axes = normalize_axes(axis, primal.ndim)
    if not axes:
        return np.ones_like(primal)
    kept = primal.ndim - len(axes)
    moved = np.moveaxis(primal, axes, range(kept, primal.ndim))
    flat = moved.reshape(moved.shape[:kept] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    before = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    after = np.flip(
        np.cumprod(np.concatenate([ones, np.flip(flat[..., 1:], -1)], axis=-1), -1), -1
    )
    others = (before * after).reshape(moved.shape)
    return np.moveaxis(others, range(kept, primal.ndim), axes)


def prod_adjoint(cotangent, result, primal, axis=None, keepdims=False):
    """Adjoint of a product reduction; zeros in `primal` are handled exactly."""
    primal = np.asarray(primal)
    expanded_cotangent = expand_reduced(cotangent, primal, axis, keepdims)
    if np.all(primal):
        expanded_result = expand_reduced(result, primal, axis, keepdims)
        return cast_like(expanded_cotangent * expanded_result / primal, primal)
    return cast_like(expanded_cotangent * _product_of_others(primal, axis), primal)


def var_adjoint(cotangent, primal, axis=None, ddof=0, keepdims=False):
    """Adjoint of a variance over `axis` with `ddof` delta degrees of freedom.

    The adjoint of `std` is this one applied to `cotangent / (2 * std)`.
    """
    primal = np.asarray(primal)
    mean = np.mean(primal, axis=axis, keepdims=True)
    scale = 2.0 / (reduced_count(primal, axis) - ddof)
    expanded_cotangent = expand_reduced(cotangent, primal, axis, keepdims)
    return cast_like(scale * expanded_cotangent * (primal - mean), primal)


def cumsum_adjoint(cotangent, primal, axis=None):
    """Adjoint of `cumsum`: a cumulative sum from the end of `axis`."""
    if axis is None:
        summed = np.cumsum(cotangent.ravel()[::-1])[::-1]
        return cast_like(summed.reshape(_shape(primal)), primal)
    summed = np.flip(np.cumsum(np.flip(cotangent, axis), axis), axis)
    return cast_like(summed, primal)


def maximum_share(cotangent, a, b, ignore_nan=False, overwrite=False):
    """Cotangent share of `a` in `maximum(a, b)`, at the broadcast shape.

    `a` gets all of the cotangent where it is larger and half where the two
    are equal. With `ignore_nan` (`fmax`), `a` also wins where only `b` is NaN.
    With `overwrite`, the share may be written into `cotangent`'s memory: the
    compiler passes it only for a cotangent array that nothing else reads.
    """
    if (type(b) is float or type(b) is int) and b == 0 and _is_small_array(a):
        constants = _HALF_AND_ZERO.get(a.dtype)
        if (
            constants is not None
            and type(cotangent) is np.ndarray
            and cotangent.dtype is a.dtype
            and cotangent.shape == a.shape
        ):
            # With b = 0, `ignore_nan` changes nothing: b is never NaN.
            return _relu_share(cotangent, a, *constants)
    wins = a > b
    if ignore_nan:
        wins = wins | (np.isnan(b) & ~np.isnan(a))
    return _share(cotangent, wins, a == b, overwrite)


# Per element, np.heaviside took about 25 times as long as a comparison
# (NumPy 2.4.6, the MLP benchmark's machine), so from about 400 elements on
# the comparisons of `_share` are faster.
_HEAVISIDE_MAX_ELEMENTS = 256


def _is_small_array(a) -> bool:
    return type(a) is np.ndarray and a.ndim > 0 and a.size < _HEAVISIDE_MAX_ELEMENTS


def _read_only_scalar(value, dtype) -> np.ndarray:
    constant = np.full((), value, dtype)
    constant.flags.writeable = False
    return constant


# 0.5 and 0 as 0-d arrays of each dtype `_relu_share` handles. A ufunc reads a
# 0-d array faster than a Python float, and one of the operand's own dtype
# keeps a float32 result float32.
_HALF_AND_ZERO = {
    np.dtype(dtype): (_read_only_scalar(0.5, dtype), _read_only_scalar(0.0, dtype))
    for dtype in (np.float32, np.float64)
}


def _relu_share(cotangent, a, half, zero):
    """Return `maximum_share(cotangent, a, 0.0)` for a small float array `a`.

    The cotangent's shape and dtype are `a`'s. np.heaviside gives the share
    exactly (1 above zero, 0.5 at zero, 0 below) in one ufunc, where `_share`
    needs four calls, but it gives NaN where `a` is NaN. np.fmax turns that
    NaN into 0, the share `a > b` and `a == b` give there.
    """
    share = np.heaviside(a, half)
    np.fmax(share, zero, out=share)
    if cotangent.strides != share.strides:
        # `cotangent * wins` in `_share` gets its memory layout from both
        # operands, and a later reduction's sums follow that layout.
        return np.multiply(cotangent, share)
    return np.multiply(cotangent, share, out=share)


def minimum_share(cotangent, a, b, ignore_nan=False, overwrite=False):
    """Cotangent share of `a` in `minimum(a, b)`; see `maximum_share`."""
    wins = a < b
    if ignore_nan:
        wins = wins | (np.isnan(b) & ~np.isnan(a))
    return _share(cotangent, wins, a == b, overwrite)


def _share(cotangent, wins, ties, overwrite: bool):
    """Return `cotangent` times 1 where `wins`, 1/2 where `ties`, 0 elsewhere."""
    # Ties are rare. np.count_nonzero of a bool array checks for them several
    # times faster than its any() method, which runs a logical_or reduction.
    has_ties = np.count_nonzero(ties) if type(ties) is np.ndarray else ties
    if not has_ties:
        return multiply_into(cotangent, wins) if overwrite else cotangent * wins
    # Tied elements get half the cotangent in place of the masked product.
    # A sum of the two products would be NaN wherever the cotangent is
    # infinite, because inf * 0 is NaN.
    shared = cotangent * wins
    half = 0.5 * cotangent
    if type(shared) is not np.ndarray:
        return half * ties if ties else shared
    if shared.dtype != np.result_type(half):
        # An integer cotangent, whose half is floating.
        return np.where(ties, half, shared)
    np.copyto(shared, half, where=ties)
    return shared


# Below this size a new array costs less than the checks and the `out=`
# call that reuse it; NumPy reuses temporaries only from the same size on.
_IN_PLACE_MIN_BYTES = 1 << 18


def _fits_into(cotangent, other) -> bool:
    """Return whether to compute `cotangent <op> other` in `cotangent`'s memory.

    It must be large enough to be worth it, writeable, and have the result's
    shape and dtype.
    """
    if (
        type(cotangent) is not np.ndarray
        or cotangent.nbytes < _IN_PLACE_MIN_BYTES
        or not cotangent.flags.writeable
    ):
        return False
    if type(other) is np.ndarray:
        return other.shape == cotangent.shape and (
            other.dtype == cotangent.dtype
            or np.can_cast(other.dtype, cotangent.dtype, "safe")
        )
    # A Python number takes the array's dtype in NumPy arithmetic; a NumPy
    # scalar may promote it, so it takes the general path.
    return type(other) in (float, int) and cotangent.dtype.kind in "fc"


def add_into(cotangent, other):
    """Return `cotangent + other`, in `cotangent`'s memory where it fits.

    Generated pullbacks call this and the three below only at the last read
    of a cotangent array that no other name, saved value or caller refers to.
    """
    if _fits_into(cotangent, other):
        return np.add(cotangent, other, out=cotangent)
    return cotangent + other


def subtract_into(cotangent, other):
    """Return `cotangent - other`, in `cotangent`'s memory where it fits."""
    if _fits_into(cotangent, other):
        return np.subtract(cotangent, other, out=cotangent)
    return cotangent - other


def multiply_into(cotangent, other):
    """Return `cotangent * other`, in `cotangent`'s memory where it fits."""
    if _fits_into(cotangent, other):
        return np.multiply(cotangent, other, out=cotangent)
    return cotangent * other


def divide_into(cotangent, other):
    """Return `cotangent / other`, in `cotangent`'s memory where it fits."""
    if _fits_into(cotangent, other):
        return np.divide(cotangent, other, out=cotangent)
    return cotangent / other


def tanh_adjoint(cotangent, result):
    """Cotangent of `x` in `result = tanh(x)`: `cotangent * (1 - result**2)`.

    For a cotangent of the result's shape and dtype the product is built in
    one new array. Written as an expression it takes three, because NumPy
    reuses the temporary of `result * result` for `... - 1` but not for
    `1 - ...`.
    """
    if (
        type(result) is np.ndarray
        and type(cotangent) is np.ndarray
        and cotangent.shape == result.shape
        and cotangent.dtype == result.dtype
    ):
        derivative = result * result
        np.subtract(1, derivative, out=derivative)
        return np.multiply(cotangent, derivative, out=derivative)
    return cotangent * (1 - result * result)


def exponent_adjoint(cotangent, result, base):
    """Cotangent of the exponent in `result = base ** exponent`.

    It is `cotangent * result * log(base)`, kept in `result`'s dtype: the log
    of a Python number base (`2 ** x`) is a float64 scalar, which would
    otherwise promote a float32 result.
    """
    return cast_like(cotangent * result * np.log(base), result)


def clip_bound_adjoint(cotangent, a, lower, upper, bound):
    """Cotangent of the `bound` ("lower" or "upper") of `np.clip(a, lower, upper)`,
    at the broadcast shape.

    NumPy computes `minimum(maximum(a, lower), upper)`, so the upper bound
    wins where it is below `a` or below `lower`, and the lower bound wins
    where it is above `a` and not above `upper`. Either bound may be None.
    """
    if bound == "upper":
        wins = upper < a
        if lower is not None:
            wins = wins | (upper < lower)
    else:
        wins = lower > a
        if upper is not None:
            wins = wins & (lower <= upper)
    return cotangent * wins


def sinc_derivative(x, result):
    """Derivative of `np.sinc` at `x`, given `result = np.sinc(x)`; 0 at x = 0."""
    x = np.asarray(x)
    zero = x == 0
    if not np.any(zero):
        return (np.cos(np.pi * x) - result) / x
    safe = np.where(zero, 1, x)
    return np.where(zero, 0, (np.cos(np.pi * x) - result) / safe)


def linspace_adjoint(cotangent, num=50, endpoint=True, axis=0, end=False):
    """Adjoint of `np.linspace` for `start` (end=False) or `stop` (end=True).

    Sample i is `start + (stop - start) * i / div`, so it depends on `stop`
    with weight `i / div` and on `start` with the rest.
    """
    cotangent = np.asarray(cotangent)
    div = num - 1 if endpoint else num
    weights = np.arange(num) / div if div > 0 else np.zeros(num)
    if np.issubdtype(cotangent.dtype, np.inexact):
        weights = weights.astype(cotangent.dtype)
    if not end:
        weights = 1 - weights
    shape = [1] * cotangent.ndim
    shape[axis] = num
    return np.sum(cotangent * weights.reshape(shape), axis=axis)
