"""Derivative rules for NumPy.

Templates keep float32 float32: constants are Python numbers or `math`
constants, never NumPy float64 scalars, which would promote the result.
Signatures list only the parameters a rule handles, so a call that uses
another one (`where=`, `initial=` of `max`) is rejected at compile time.
"""

import numpy as np

from pullback.compiler.rules.core import (
    CONSTANT,
    CUT,
    NON_DIFFERENTIABLE_ATTRIBUTES,
    NON_DIFFERENTIABLE_METHODS,
    attribute,
    defrule,
    method,
    nondifferentiable,
    ufunc,
)

# Elementwise functions of one argument.
ufunc(np.negative,   x="-g")
ufunc(np.positive,   x="g")
ufunc(np.absolute,   x="g * np.sign(x)")
ufunc(np.fabs,       x="g * np.sign(x)")
ufunc(np.conjugate,  x="np.conjugate(g)")
ufunc(np.square,     x="2 * g * x")
ufunc(np.sqrt,       x="g / (2 * ans)")
ufunc(np.cbrt,       x="g / (3 * ans * ans)")
ufunc(np.reciprocal, x="-g * ans * ans")
ufunc(np.exp,        x="g * ans")
ufunc(np.exp2,       x="g * ans * math.log(2)")
ufunc(np.expm1,      x="g * (ans + 1)")
ufunc(np.log,        x="g / x")
ufunc(np.log2,       x="g / (x * math.log(2))")
ufunc(np.log10,      x="g / (x * math.log(10))")
ufunc(np.log1p,      x="g / (x + 1)")
ufunc(np.sin,        x="g * np.cos(x)")
ufunc(np.cos,        x="-g * np.sin(x)")
ufunc(np.tan,        x="g * (1 + ans * ans)")
ufunc(np.arcsin,     x="g / np.sqrt(1 - x * x)")
ufunc(np.arccos,     x="-g / np.sqrt(1 - x * x)")
ufunc(np.arctan,     x="g / (1 + x * x)")
ufunc(np.sinh,       x="g * np.cosh(x)")
ufunc(np.cosh,       x="g * np.sinh(x)")
ufunc(np.tanh,       x="rt.tanh_adjoint(g, ans)")
ufunc(np.arcsinh,    x="g / np.sqrt(x * x + 1)")
ufunc(np.arccosh,    x="g / np.sqrt(x * x - 1)")
ufunc(np.arctanh,    x="g / (1 - x * x)")
ufunc(np.deg2rad,    x="g * (math.pi / 180)")
ufunc(np.radians,    x="g * (math.pi / 180)")
ufunc(np.rad2deg,    x="g * (180 / math.pi)")
ufunc(np.degrees,    x="g * (180 / math.pi)")

# Elementwise functions of two arguments; each contribution is summed back to
# its operand's shape. Ties in maximum and minimum split the cotangent equally.
ufunc(np.add,         x1="g",                 x2="g")
ufunc(np.subtract,    x1="g",                 x2="-g")
ufunc(np.multiply,    x1="g * x2",            x2="g * x1")
ufunc(np.divide,      x1="g / x2",            x2="-g * ans / x2")
ufunc(np.power,       x1="g * x2 * x1 ** (x2 - 1)",
                      x2="rt.exponent_adjoint(g, ans, x1)")
# float_power computes in float64; the cast keeps a float32 base float32 even
# when the exponent is a literal and nothing unbroadcasts.
ufunc(np.float_power, x1="rt.cast_like(g * x2 * np.float_power(x1, x2 - 1), x1)",
                      x2="rt.exponent_adjoint(g, ans, x1)")
ufunc(np.arctan2,     x1="g * x2 / (x1 * x1 + x2 * x2)",
                      x2="-g * x1 / (x1 * x1 + x2 * x2)")
ufunc(np.hypot,       x1="g * x1 / ans",      x2="g * x2 / ans")
ufunc(np.logaddexp,   x1="g * np.exp(x1 - ans)",  x2="g * np.exp(x2 - ans)")
ufunc(np.logaddexp2,  x1="g * np.exp2(x1 - ans)", x2="g * np.exp2(x2 - ans)")
ufunc(np.maximum,     x1="rt.maximum_share(g, x1, x2)",
                      x2="rt.maximum_share(g, x2, x1)")
ufunc(np.minimum,     x1="rt.minimum_share(g, x1, x2)",
                      x2="rt.minimum_share(g, x2, x1)")
ufunc(np.fmax,        x1="rt.maximum_share(g, x1, x2, ignore_nan=True)",
                      x2="rt.maximum_share(g, x2, x1, ignore_nan=True)")
ufunc(np.fmin,        x1="rt.minimum_share(g, x1, x2, ignore_nan=True)",
                      x2="rt.minimum_share(g, x2, x1, ignore_nan=True)")
# The sign of x1 * x2 is the product of the signs, also for zeros and infinities.
ufunc(np.copysign,    x1="g * np.copysign(1, x1 * x2)")
ufunc(np.remainder,   x1="g",                 x2="-g * np.floor_divide(x1, x2)")
# fmod is x1 - n * x2 with the quotient n truncated; (x1 - ans) / x2 recovers n.
ufunc(np.fmod,        x1="g",                 x2="-g * (x1 - ans) / x2")
ufunc(np.ldexp,       x1="np.ldexp(g, x2)")

defrule(np.sinc, "x", x="g * rt.sinc_derivative(x, ans)")
if hasattr(np, "vecdot"):  # NumPy 2.0 and later
    defrule(np.vecdot, "x1, x2, /, *, axis=-1", broadcasting=True,
            x1="np.expand_dims(g, axis) * x2", x2="np.expand_dims(g, axis) * x1")

# Piecewise constant elementwise functions, comparisons and bit operations.
nondifferentiable(
    np.sign, np.floor, np.ceil, np.rint, np.trunc, np.fix, np.round, np.around,
    np.spacing, np.signbit, np.heaviside, np.floor_divide,
    np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
    np.isnan, np.isinf, np.isfinite, np.isnat, np.isclose, np.allclose,
    np.array_equal, np.array_equiv,
    np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift,
    np.right_shift, np.gcd, np.lcm,
    kind=CUT,
)
if hasattr(np, "bitwise_count"):  # NumPy 2.0 and later
    nondifferentiable(np.bitwise_count, kind=CUT)

# Reductions. `initial` only offsets a sum, so it gets the summed cotangent.
defrule(np.sum, "a, axis=None, dtype=None, out=None, keepdims=False, initial=0",
        a="rt.unreduce(g, a, axis, keepdims)", initial="np.sum(g)")
defrule(np.mean, "a, axis=None, dtype=None, out=None, keepdims=False",
        a="rt.mean_adjoint(g, a, axis, keepdims)")
defrule(np.prod, "a, axis=None, dtype=None, out=None, keepdims=False",
        a="rt.prod_adjoint(g, ans, a, axis, keepdims)")
for _extremum in (np.max, np.amax, np.min, np.amin):
    defrule(_extremum, "a, axis=None, out=None, keepdims=False",
            a="rt.extremum_adjoint(g, ans, a, axis, keepdims)")
defrule(np.var, "a, axis=None, dtype=None, out=None, ddof=0, keepdims=False",
        a="rt.var_adjoint(g, a, axis, ddof, keepdims)")
defrule(np.std, "a, axis=None, dtype=None, out=None, ddof=0, keepdims=False",
        a="rt.var_adjoint(g / (2 * ans), a, axis, ddof, keepdims)")
defrule(np.cumsum, "a, axis=None, dtype=None, out=None",
        a="rt.cumsum_adjoint(g, a, axis)")
defrule(np.trace, "a, offset=0, axis1=0, axis2=1, dtype=None, out=None",
        a="rt.trace_adjoint(g, a, offset, axis1, axis2)")

# Products and contractions.
defrule(np.matmul, "x1, x2, /, out=None, *, dtype=None",
        x1="rt.matmul_adjoint_lhs(g, x1, x2)", x2="rt.matmul_adjoint_rhs(g, x1, x2)")
defrule(np.dot, "a, b, out=None",
        a="rt.dot_adjoint_lhs(g, a, b)", b="rt.dot_adjoint_rhs(g, a, b)")
defrule(np.vdot, "a, b, /",
        a="np.reshape(g * b, np.shape(a))", b="np.reshape(g * a, np.shape(b))")
defrule(np.inner, "a, b, /",
        a="rt.inner_adjoint(g, a, b)", b="rt.inner_adjoint(g, a, b, lhs=False)")
defrule(np.outer, "a, b, out=None",
        a="rt.outer_adjoint(g, a, b)", b="rt.outer_adjoint(g.T, b, a)")
defrule(np.tensordot, "a, b, axes=2",
        a="rt.tensordot_adjoint_lhs(g, a, b, axes)",
        b="rt.tensordot_adjoint_rhs(g, a, b, axes)")
# `subscripts` has a template only so that the operand-sublist form, which
# binds the first operand to it, raises a clear error instead of losing it.
defrule(np.einsum, "subscripts, /, *operands, dtype=None, order='K', "
                   "casting='safe', optimize=False",
        subscripts="rt.einsum_adjoint(g, subscripts, operands, -1)",
        operands="rt.einsum_adjoint(g, subscripts, operands, index)")

# Linear algebra.
defrule(np.linalg.norm, "x, ord=None, axis=None, keepdims=False",
        x="rt.norm_adjoint(g, ans, x, ord, axis, keepdims)")
defrule(np.linalg.inv, "a",
        a="-np.swapaxes(ans, -1, -2) @ g @ np.swapaxes(ans, -1, -2)")
defrule(np.linalg.det, "a",
        a="np.expand_dims(g * ans, (-2, -1)) * np.swapaxes(np.linalg.inv(a), -1, -2)")
defrule(np.linalg.solve, "a, b",
        a="rt.solve_adjoint_a(g, ans, a, b)", b="rt.solve_adjoint_b(g, a, b)")

# Shapes and axes.
defrule(np.reshape, "a, /, shape=None, order='C', *, newshape=None, copy=None",
        a="rt.reshape_adjoint(g, a, order)")
defrule(np.ravel, "a, order='C'", a="rt.reshape_adjoint(g, a, order)")
defrule(np.transpose, "a, axes=None", a="rt.transpose_adjoint(g, axes)")
defrule(np.swapaxes, "a, axis1, axis2", a="np.swapaxes(g, axis1, axis2)")
if hasattr(np, "matrix_transpose"):  # NumPy 2.0 and later
    defrule(np.matrix_transpose, "x, /", x="np.swapaxes(g, -1, -2)")
    defrule(np.linalg.matrix_transpose, "x, /", x="np.swapaxes(g, -1, -2)")
defrule(np.moveaxis, "a, source, destination", a="np.moveaxis(g, destination, source)")
defrule(np.expand_dims, "a, axis", a="np.reshape(g, np.shape(a))")
defrule(np.squeeze, "a, axis=None", a="np.reshape(g, np.shape(a))")
defrule(np.broadcast_to, "array, shape, subok=False", array="rt.unbroadcast(g, array)")
defrule(np.tile, "A, reps", A="rt.tile_adjoint(g, A, reps)")
defrule(np.repeat, "a, repeats, axis=None", a="rt.repeat_adjoint(g, a, repeats, axis)")
defrule(np.flip, "m, axis=None", m="np.flip(g, axis)")
defrule(np.fliplr, "m", m="np.fliplr(g)")
defrule(np.flipud, "m", m="np.flipud(g)")
defrule(np.rot90, "m, k=1, axes=(0, 1)", m="np.rot90(g, -k, axes)")
defrule(np.roll, "a, shift, axis=None", a="np.roll(g, np.negative(shift), axis)")
defrule(np.sort, "a, axis=-1, kind=None", a="rt.sort_adjoint(g, a, axis)")
defrule(np.diag, "v, k=0", v="rt.diag_adjoint(g, v, k)")
defrule(np.diagonal, "a, offset=0, axis1=0, axis2=1",
        a="rt.diagonal_adjoint(g, a, offset, axis1, axis2)")
defrule(np.take, "a, indices, axis=None, out=None",
        a="rt.take_adjoint(g, a, indices, axis)")
defrule(np.triu, "m, k=0", m="np.triu(g, k)")
defrule(np.tril, "m, k=0", m="np.tril(g, k)")

# Joining: the sequence's cotangent is one piece of g per array.
defrule(np.concatenate,
        "arrays, /, axis=0, out=None, *, dtype=None, casting='same_kind'",
        arrays="rt.concatenate_adjoint(g, arrays, axis)")
defrule(np.stack, "arrays, axis=0, out=None, *, dtype=None, casting='same_kind'",
        arrays="rt.stack_adjoint(g, arrays, axis)")
defrule(np.hstack, "tup, *, dtype=None, casting='same_kind'",
        tup="rt.hstack_adjoint(g, tup)")
defrule(np.vstack, "tup, *, dtype=None, casting='same_kind'",
        tup="rt.vstack_adjoint(g, tup)")
defrule(np.dstack, "tup", tup="rt.dstack_adjoint(g, tup)")
defrule(np.column_stack, "tup", tup="rt.column_stack_adjoint(g, tup)")

# Selection. The rules unbroadcast themselves because the condition, which
# has no cotangent, can broadcast the result too.
defrule(np.where, "condition, x=None, y=None, /",
        x="rt.unbroadcast(np.where(condition, g, 0), x)",
        y="rt.unbroadcast(np.where(condition, 0, g), y)")
# Where a bound equals the input, the input gets the cotangent. The bounds
# go through one helper, which also handles a lower bound above the upper.
defrule(np.clip, "a, a_min=None, a_max=None, out=None, *, min=None, max=None",
        broadcasting=True,
        a="g * (ans == a)",
        a_min="rt.clip_bound_adjoint(g, a, a_min, a_max, 'lower')",
        a_max="rt.clip_bound_adjoint(g, a, a_min, a_max, 'upper')",
        min="rt.clip_bound_adjoint(g, a, min, max, 'lower')",
        max="rt.clip_bound_adjoint(g, a, min, max, 'upper')")

# Construction. Only the values that fill an array are differentiable.
defrule(np.array, "object, dtype=None, *, copy=True, order='K', subok=False, ndmin=0",
        object="rt.array_adjoint(g, object)")
defrule(np.asarray, "a, dtype=None, order=None, *, copy=None",
        a="rt.array_adjoint(g, a)")
defrule(np.copy, "a, order='K', subok=False", a="g")
defrule(np.ascontiguousarray, "a, dtype=None", a="rt.cast_like(g, a)")
defrule(np.asfortranarray, "a, dtype=None", a="rt.cast_like(g, a)")
defrule(np.full_like, "a, fill_value, dtype=None, order='K', subok=True, shape=None",
        fill_value="rt.unbroadcast(g, fill_value)")
defrule(np.full, "shape, fill_value, dtype=None, order='C'",
        fill_value="rt.unbroadcast(g, fill_value)")
defrule(np.linspace, "start, stop, num=50, endpoint=True, *, dtype=None, axis=0",
        broadcasting=True,
        start="rt.linspace_adjoint(g, num, endpoint, axis, end=False)",
        stop="rt.linspace_adjoint(g, num, endpoint, axis, end=True)")

# NOTE: np.arange(start, stop, step) does vary with a float `start` or `step`;
# like the other constructors it is treated as constant in its arguments.
nondifferentiable(
    np.zeros_like, np.ones_like, np.empty_like, np.zeros, np.ones, np.empty,
    np.eye, np.identity, np.tri, np.arange, np.indices,
    np.shape, np.ndim, np.size, np.result_type, np.can_cast, np.isscalar,
    np.iscomplexobj, np.isrealobj, np.broadcast_shapes, np.iterable, np.isfortran,
    np.issubdtype, np.promote_types, np.min_scalar_type, np.may_share_memory,
    np.shares_memory, np.tril_indices, np.triu_indices, np.tril_indices_from,
    np.triu_indices_from, np.diag_indices, np.diag_indices_from, np.mask_indices,
    np.ravel_multi_index, np.unravel_index,
    kind=CONSTANT,
)
nondifferentiable(
    np.argmax, np.argmin, np.argsort, np.nonzero, np.flatnonzero, np.argwhere,
    np.searchsorted, np.digitize, np.count_nonzero, np.all, np.any,
    np.iscomplex, np.isreal, np.isneginf, np.isposinf, np.isin, np.lexsort,
    np.argpartition, np.nanargmax, np.nanargmin, np.linalg.matrix_rank,
    kind=CUT,
)

# Array methods: the same rules with the array as `self`.
method("sum", "self, axis=None, dtype=None, out=None, keepdims=False, initial=0",
       self="rt.unreduce(g, self, axis, keepdims)", initial="np.sum(g)")
method("mean", "self, axis=None, dtype=None, out=None, keepdims=False",
       self="rt.mean_adjoint(g, self, axis, keepdims)")
method("prod", "self, axis=None, dtype=None, out=None, keepdims=False",
       self="rt.prod_adjoint(g, ans, self, axis, keepdims)")
method("max", "self, axis=None, out=None, keepdims=False",
       self="rt.extremum_adjoint(g, ans, self, axis, keepdims)")
method("min", "self, axis=None, out=None, keepdims=False",
       self="rt.extremum_adjoint(g, ans, self, axis, keepdims)")
method("var", "self, axis=None, dtype=None, out=None, ddof=0, keepdims=False",
       self="rt.var_adjoint(g, self, axis, ddof, keepdims)")
method("std", "self, axis=None, dtype=None, out=None, ddof=0, keepdims=False",
       self="rt.var_adjoint(g / (2 * ans), self, axis, ddof, keepdims)")
method("cumsum", "self, axis=None, dtype=None, out=None",
       self="rt.cumsum_adjoint(g, self, axis)")
method("trace", "self, offset=0, axis1=0, axis2=1, dtype=None, out=None",
       self="rt.trace_adjoint(g, self, offset, axis1, axis2)")
method("diagonal", "self, offset=0, axis1=0, axis2=1",
       self="rt.diagonal_adjoint(g, self, offset, axis1, axis2)")
method("dot", "self, b, out=None",
       self="rt.dot_adjoint_lhs(g, self, b)", b="rt.dot_adjoint_rhs(g, self, b)")
method("reshape", "self, *shape, order='C', copy=None",
       self="rt.reshape_adjoint(g, self, order)")
method("ravel", "self, order='C'", self="rt.reshape_adjoint(g, self, order)")
method("flatten", "self, order='C'", self="rt.reshape_adjoint(g, self, order)")
method("transpose", "self, *axes", self="rt.transpose_adjoint(g, axes)")
method("swapaxes", "self, axis1, axis2", self="np.swapaxes(g, axis1, axis2)")
method("squeeze", "self, axis=None", self="np.reshape(g, np.shape(self))")
method("repeat", "self, repeats, axis=None",
       self="rt.repeat_adjoint(g, self, repeats, axis)")
method("clip", "self, min=None, max=None, out=None", broadcasting=True,
       self="g * (ans == self)",
       min="rt.clip_bound_adjoint(g, self, min, max, 'lower')",
       max="rt.clip_bound_adjoint(g, self, min, max, 'upper')")
method("copy", "self, order='C'", self="g")
method("astype", "self, dtype, order='K', casting='unsafe', subok=True, copy=True",
       self="rt.cast_like(g, self)")
method("item", "self, *args", self="rt.item_adjoint(g, self, args)")
method("conj", "self", self="np.conjugate(g)")
method("conjugate", "self", self="np.conjugate(g)")

attribute("T", self="g.T")
attribute("mT", self="np.swapaxes(g, -1, -2)")

for _name in ("argmax", "argmin", "argsort", "nonzero", "searchsorted", "any", "all",
              "round"):
    NON_DIFFERENTIABLE_METHODS[_name] = CUT
for _name in ("shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides",
              "flags"):
    NON_DIFFERENTIABLE_ATTRIBUTES[_name] = CONSTANT
