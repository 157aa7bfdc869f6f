"""Each derivative rule on its own, independent of the rest of the compiler.

A case calls one library function, method, operator or attribute. The test
binds the call's arguments to the rule's parameters as the compiler does:
defaults as their source, extra positional arguments as a tuple. It
instantiates each adjoint template with `core.instantiate` and runs the code
that `ast.unparse` prints for it. A broadcasting rule's contribution is then
summed back with `rt.unbroadcast`, unless every other argument is a constant.

The result must pass `check_vjp`: central finite differences in float64
along a random direction, which is also the inner-product identity, plus
each cotangent's shape and dtype. Every case runs again in float32, where
only shapes and dtypes are checked.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import math
import operator

import gast
import numpy as np
import pytest
from gradcheck import check_structure, check_vjp, is_floating, random_like

import pullback.runtime as rt
from pullback.compiler import rules
from pullback.compiler.rules import core
from pullback.errors import PullbackError
from pullback.runtime import structure
from pullback.runtime.markers import with_derivative
from pullback.runtime.structure import sequence

rng = np.random.default_rng(20240607)


# Input domains.


def normal(*shape):
    return rng.standard_normal(shape)


def uniform(low, high, *shape):
    return rng.uniform(low, high, shape)


def positive(*shape):
    return uniform(0.5, 2.0, *shape)


def unit(*shape):
    """Inside (-1, 1), for arcsin, arccos and arctanh."""
    return uniform(-0.9, 0.9, *shape)


def away(*shape):
    """Values with magnitude in [0.3, 2]: away from the kink of abs and sign."""
    return rng.choice([-1.0, 1.0], shape) * uniform(0.3, 2.0, *shape)


def scalar(low=-2.0, high=2.0) -> float:
    return float(rng.uniform(low, high))


def well_conditioned(*shape):
    """Square matrices with a dominant diagonal, for inv, det and solve."""
    return normal(*shape) + 3 * np.eye(shape[-1])


@dataclasses.dataclass(frozen=True)
class Lit:
    """An argument written as a literal in source: held fixed, and, like other
    constants, it cannot broadcast the other operands."""

    value: object


@dataclasses.dataclass(frozen=True)
class Fixed:
    """A floating argument held fixed, as an inactive variable would be."""

    value: object


def _unwrap(value):
    return value.value if isinstance(value, Lit | Fixed) else value


# Cases.


@dataclasses.dataclass
class Case:
    id: str
    kind: str  # "function", "method", "operator" or "attribute"
    target: object  # callable, method or attribute name, or gast operator name
    args: tuple
    kwargs: dict
    rtol: float = 1e-5
    atol: float = 1e-8
    float32: bool = True
    # Finite-difference step; cases whose primal rounds to float32 need a
    # larger one, which is exact for their linear primals.
    eps: float = 1e-6

    @property
    def rule(self) -> core.Rule:
        table = {
            "function": rules.FUNCTION_RULES,
            "method": rules.METHOD_RULES,
            "operator": rules.OPERATOR_RULES,
            "attribute": rules.ATTRIBUTE_RULES,
        }[self.kind]
        return table[self.target]

    def primal(self, *args, **kwargs):
        if self.kind == "function":
            return self.target(*args, **kwargs)
        if self.kind == "method":
            self_value, *rest = args
            return getattr(self_value, self.target)(*rest, **kwargs)
        if self.kind == "attribute":
            return getattr(args[0], self.target)
        return OPERATORS[self.target](*args)


OPERATORS = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mult": operator.mul,
    "Div": operator.truediv,
    "Pow": operator.pow,
    "Mod": operator.mod,
    "MatMult": operator.matmul,
    "USub": operator.neg,
    "UAdd": operator.pos,
}


def _display(target) -> str:
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    if isinstance(target, np.ufunc) or module.startswith("numpy"):
        prefix = "np.linalg." if "linalg" in module else "np."
        return prefix + name
    if module == "math":
        return "math." + name
    return name


def fn(
    target, *args, case_id="", rtol=1e-5, atol=1e-8, float32=True, eps=1e-6, **kwargs
):
    name = _display(target) + (f"-{case_id}" if case_id else "")
    return Case(name, "function", target, args, kwargs, rtol, atol, float32, eps)


def meth(
    name, *args, case_id="", rtol=1e-5, atol=1e-8, float32=True, eps=1e-6, **kwargs
):
    label = f"ndarray.{name}" + (f"-{case_id}" if case_id else "")
    return Case(label, "method", name, args, kwargs, rtol, atol, float32, eps)


def op(name, *args, case_id="", float32=True):
    label = f"operator.{name}" + (f"-{case_id}" if case_id else "")
    return Case(label, "operator", name, args, {}, float32=float32)


def attr(name, value, case_id=""):
    label = f"ndarray.{name}" + (f"-{case_id}" if case_id else "")
    return Case(label, "attribute", name, (value,), {})


UNARY_UFUNCS = [
    (np.negative, normal),
    (np.positive, normal),
    (np.absolute, away),
    (np.fabs, away),
    (np.conjugate, normal),
    (np.square, normal),
    (np.sqrt, positive),
    (np.cbrt, away),
    (np.reciprocal, away),
    (np.exp, normal),
    (np.exp2, normal),
    (np.expm1, normal),
    (np.log, positive),
    (np.log2, positive),
    (np.log10, positive),
    (np.log1p, lambda *s: uniform(-0.5, 2.0, *s)),
    (np.sin, normal),
    (np.cos, normal),
    (np.tan, lambda *s: uniform(-1.2, 1.2, *s)),
    (np.arcsin, unit),
    (np.arccos, unit),
    (np.arctan, normal),
    (np.sinh, normal),
    (np.cosh, normal),
    (np.tanh, normal),
    (np.arcsinh, normal),
    (np.arccosh, lambda *s: uniform(1.2, 3.0, *s)),
    (np.arctanh, unit),
    (np.deg2rad, normal),
    (np.radians, normal),
    (np.rad2deg, normal),
    (np.degrees, normal),
]

BINARY_UFUNCS = [
    (np.add, normal, normal),
    (np.subtract, normal, normal),
    (np.multiply, normal, normal),
    (np.divide, normal, away),
    (np.power, positive, normal),
    (np.float_power, positive, normal),
    (np.arctan2, normal, normal),
    (np.hypot, normal, normal),
    (np.logaddexp, normal, normal),
    (np.logaddexp2, normal, normal),
    (np.maximum, normal, normal),
    (np.minimum, normal, normal),
    (np.fmax, normal, normal),
    (np.fmin, normal, normal),
    (np.copysign, away, away),
    (np.remainder, normal, positive),
    (np.fmod, normal, positive),
]

ELEMENTWISE = (
    [fn(u, domain(3, 4)) for u, domain in UNARY_UFUNCS]
    + [fn(np.sin, scalar(), case_id="float"), fn(np.exp, np.array(0.3), case_id="0d")]
    + [fn(u, d1(3, 4), d2(3, 4)) for u, d1, d2 in BINARY_UFUNCS]
    + [fn(u, d1(3, 1), d2(4), case_id="broadcast") for u, d1, d2 in BINARY_UFUNCS]
    + [fn(u, d1(), d2(2, 3), case_id="0d-array") for u, d1, d2 in BINARY_UFUNCS]
    + [
        fn(np.multiply, scalar(), normal(3), case_id="float-array"),
        fn(np.divide, normal(2, 3), scalar(0.5, 2.0), case_id="array-float"),
        fn(np.power, normal(3, 4), Lit(2), case_id="negative-base-literal"),
        fn(np.power, normal(3, 4), Lit(3.0), case_id="float-literal"),
        fn(np.power, Lit(2.0), normal(3), case_id="literal-base"),
        fn(np.maximum, normal(3, 4), Lit(0.0), case_id="relu"),
        fn(np.minimum, Lit(1.0), normal(3, 4), case_id="literal-first"),
        fn(np.arctan2, normal(4), Lit(1.5), case_id="literal"),
        fn(
            np.add,
            normal(2, 3),
            Fixed(normal(4, 2, 3)),
            case_id="stretched-by-inactive",
        ),
        fn(np.ldexp, normal(3, 4), np.array([[1], [0], [-2]]), case_id="int-exponent"),
        fn(np.sinc, away(3, 4)),
        fn(np.vecdot, normal(3, 4), normal(3, 4)),
        fn(np.vecdot, normal(4, 3), normal(2, 4, 3), case_id="broadcast"),
        fn(np.vecdot, normal(4, 3), normal(4, 3), axis=0, case_id="axis0"),
    ]
)


def _with_zero(shape, zeros):
    array = positive(*shape)
    for index in zeros:
        array[index] = 0.0
    return array


REDUCTIONS = [
    fn(np.sum, normal(3, 4)),
    fn(np.sum, normal(3, 4, 2), axis=(0, 2), case_id="axes"),
    fn(np.sum, normal(3, 4), axis=-1, keepdims=True, case_id="keepdims"),
    fn(np.sum, normal(3, 4), 0, case_id="positional-axis"),
    fn(np.sum, normal(3), initial=scalar(), case_id="initial"),
    fn(np.mean, normal(3, 4)),
    fn(np.mean, normal(3, 4, 2), axis=(1, 2), keepdims=True, case_id="axes-keepdims"),
    fn(np.mean, normal(5), axis=0, case_id="axis"),
    fn(np.prod, positive(3, 4)),
    fn(np.prod, normal(3, 4), axis=1, case_id="axis"),
    fn(np.prod, _with_zero((3, 4), [(1, 2)]), axis=1, case_id="one-zero"),
    fn(np.prod, _with_zero((3, 4), [(1, 2), (1, 0)]), axis=1, case_id="two-zeros"),
    fn(
        np.prod,
        _with_zero((2, 3, 2), [(0, 1, 1)]),
        axis=(0, 2),
        keepdims=True,
        case_id="zero-axes",
    ),
    fn(np.prod, _with_zero((5,), [(3,)]), case_id="zero-all"),
    fn(np.max, normal(3, 4)),
    fn(np.max, normal(3, 4), axis=0, case_id="axis"),
    fn(np.amax, normal(3, 4, 2), axis=(0, 2), keepdims=True),
    fn(np.min, normal(3, 4), axis=-1),
    fn(np.amin, normal(3, 4)),
    fn(np.var, normal(3, 4)),
    fn(np.var, normal(3, 4), axis=0, ddof=1, case_id="ddof"),
    fn(np.var, normal(3, 4, 2), axis=(0, 2), keepdims=True, case_id="keepdims"),
    fn(np.std, normal(3, 4)),
    fn(np.std, normal(3, 4), axis=1, ddof=1, keepdims=True, case_id="ddof"),
    fn(np.cumsum, normal(3, 4)),
    fn(np.cumsum, normal(3, 4), axis=1, case_id="axis"),
    fn(np.cumsum, normal(3, 4, 2), axis=-2, case_id="negative-axis"),
    fn(np.trace, normal(3, 3)),
    fn(np.trace, normal(3, 4), 1, case_id="offset"),
    fn(np.trace, normal(2, 3, 4), offset=-1, axis1=1, axis2=2, case_id="stacked"),
]

PRODUCTS = [
    fn(np.matmul, normal(3, 4), normal(4, 5)),
    fn(np.matmul, normal(4), normal(4, 5), case_id="vector-matrix"),
    fn(np.matmul, normal(3, 4), normal(4), case_id="matrix-vector"),
    fn(np.matmul, normal(4), normal(4), case_id="vector-vector"),
    fn(np.matmul, normal(2, 3, 4), normal(4, 5), case_id="stacked"),
    fn(np.matmul, normal(3, 4), normal(2, 4, 5), case_id="stacked-rhs"),
    fn(np.matmul, normal(2, 1, 3, 4), normal(5, 4, 2), case_id="broadcast"),
    fn(np.matmul, normal(4), normal(2, 4, 5), case_id="vector-stacked"),
    fn(np.matmul, normal(2, 3, 4), normal(4), case_id="stacked-vector"),
    fn(np.dot, normal(3, 4), normal(4, 5)),
    fn(np.dot, normal(4), normal(4), case_id="vectors"),
    fn(np.dot, normal(3, 4), normal(4), case_id="matrix-vector"),
    fn(np.dot, normal(4), normal(4, 3), case_id="vector-matrix"),
    fn(np.dot, normal(2, 3, 4), normal(4, 5), case_id="3d-2d"),
    fn(np.dot, normal(2, 3, 4), normal(5, 4, 6), case_id="3d-3d"),
    fn(np.dot, normal(2, 3, 4), normal(4), case_id="3d-vector"),
    fn(np.dot, scalar(), normal(3, 2), case_id="scalar"),
    fn(np.dot, normal(2, 3), np.array(1.5), case_id="0d"),
    fn(np.vdot, normal(2, 3), normal(6)),
    fn(np.inner, normal(4), normal(4)),
    fn(np.inner, normal(2, 4), normal(3, 4), case_id="matrices"),
    fn(np.inner, normal(2, 3, 4), normal(4), case_id="3d-vector"),
    fn(np.inner, scalar(), normal(3), case_id="scalar"),
    fn(np.outer, normal(3), normal(4)),
    fn(np.outer, normal(2, 3), normal(4), case_id="raveled"),
    fn(np.tensordot, normal(2, 3, 4), normal(3, 4, 5)),
    fn(np.tensordot, normal(2, 3), normal(3, 4), 1, case_id="axes1"),
    fn(
        np.tensordot,
        normal(3, 4, 5),
        normal(4, 3, 2),
        axes=([1, 0], [0, 1]),
        case_id="pairs",
    ),
    fn(
        np.tensordot,
        normal(3, 4, 5),
        normal(5, 2),
        axes=([-1], [0]),
        case_id="negative",
    ),
    fn(np.tensordot, normal(2, 3), normal(4), axes=0, case_id="outer"),
    fn(np.tensordot, normal(3, 4), normal(4, 3), axes=(1, 0), case_id="int-pair"),
]

EINSUMS = [
    fn(np.einsum, "ij,jk->ik", normal(3, 4), normal(4, 5), case_id="matmul"),
    fn(np.einsum, "ij,jk", normal(3, 4), normal(4, 5), case_id="implicit"),
    fn(np.einsum, "i,i", normal(4), normal(4), case_id="implicit-scalar"),
    fn(np.einsum, "ii->i", normal(3, 3), case_id="diagonal"),
    fn(np.einsum, "ii", normal(3, 3), case_id="trace"),
    fn(np.einsum, "ij->", normal(3, 4), case_id="sum"),
    fn(np.einsum, "ij->ji", normal(3, 4), case_id="transpose"),
    fn(np.einsum, "bij,bjk->bik", normal(2, 3, 4), normal(2, 4, 5), case_id="batched"),
    fn(
        np.einsum,
        "...ij,...jk->...ik",
        normal(2, 3, 4),
        normal(4, 5),
        case_id="ellipsis",
    ),
    fn(
        np.einsum,
        "...i,...i",
        normal(2, 3, 4),
        normal(3, 4),
        case_id="ellipsis-implicit",
    ),
    fn(np.einsum, "ij,j->i", normal(3, 4), normal(4), case_id="matvec"),
    fn(np.einsum, "i,j->ij", normal(3), normal(4), case_id="outer"),
    fn(
        np.einsum,
        "ij,jk,kl->il",
        normal(2, 3),
        normal(3, 4),
        normal(4, 2),
        case_id="chain",
    ),
    fn(np.einsum, "ij,ik->j", normal(3, 4), normal(3, 5), case_id="summed-alone"),
    fn(np.einsum, "iij,j->i", normal(3, 3, 2), normal(2), case_id="diagonal-operand"),
    fn(np.einsum, "ij,ij->ij", normal(3, 1), normal(3, 4), case_id="size1-broadcast"),
    fn(np.einsum, "i j , j k -> i k", normal(2, 3), normal(3, 2), case_id="spaces"),
]

LINALG = [
    fn(np.linalg.norm, normal(5)),
    fn(np.linalg.norm, normal(5), 1, case_id="ord1"),
    fn(np.linalg.norm, normal(5), 2, case_id="ord2"),
    fn(np.linalg.norm, normal(5), np.inf, case_id="inf"),
    fn(np.linalg.norm, normal(5), -np.inf, case_id="minus-inf"),
    fn(np.linalg.norm, normal(5), 3, case_id="ord3"),
    fn(np.linalg.norm, away(5), 0.5, case_id="ord-half"),
    fn(np.linalg.norm, normal(5), 0, case_id="ord0"),
    fn(np.linalg.norm, normal(3, 4), axis=1, case_id="rows"),
    fn(np.linalg.norm, normal(3, 4), axis=0, keepdims=True, case_id="keepdims"),
    fn(np.linalg.norm, normal(3, 4), 1, -1, case_id="rows-ord1"),
    fn(np.linalg.norm, normal(3, 4), case_id="frobenius"),
    fn(np.linalg.norm, normal(3, 4), "fro", case_id="fro"),
    fn(np.linalg.norm, normal(3, 4), "nuc", case_id="nuclear"),
    fn(np.linalg.norm, normal(3, 4), 2, case_id="spectral"),
    fn(np.linalg.norm, normal(3, 4), -2, case_id="smallest-singular"),
    fn(np.linalg.norm, normal(3, 4), 1, case_id="matrix-ord1"),
    fn(np.linalg.norm, normal(3, 4), -1, case_id="matrix-ord-minus1"),
    fn(np.linalg.norm, normal(3, 4), np.inf, case_id="matrix-inf"),
    fn(np.linalg.norm, normal(3, 4), -np.inf, case_id="matrix-minus-inf"),
    fn(np.linalg.norm, normal(2, 3, 4), axis=(1, 2), case_id="stacked-fro"),
    fn(
        np.linalg.norm,
        normal(3, 2, 4),
        "nuc",
        (2, 0),
        keepdims=True,
        case_id="axes-20-keepdims",
    ),
    fn(np.linalg.inv, well_conditioned(3, 3)),
    fn(np.linalg.inv, well_conditioned(2, 3, 3), case_id="stacked"),
    fn(np.linalg.det, well_conditioned(3, 3)),
    fn(np.linalg.det, well_conditioned(2, 3, 3), case_id="stacked"),
    fn(np.linalg.solve, well_conditioned(3, 3), normal(3)),
    fn(np.linalg.solve, well_conditioned(3, 3), normal(3, 2), case_id="matrix"),
    fn(np.linalg.solve, well_conditioned(2, 3, 3), normal(2, 3, 2), case_id="stacked"),
    fn(np.linalg.solve, well_conditioned(2, 3, 3), normal(3), case_id="stacked-vector"),
    fn(np.linalg.solve, well_conditioned(3, 3), normal(2, 3, 4), case_id="broadcast-b"),
]

SHAPES = [
    fn(np.reshape, normal(3, 4), (2, 6)),
    fn(np.reshape, normal(3, 4), (4, -1), order="F", case_id="fortran"),
    fn(np.reshape, np.asfortranarray(normal(3, 4)), (2, 6), order="A", case_id="any"),
    fn(np.ravel, normal(3, 4)),
    fn(np.ravel, normal(3, 4), "F", case_id="fortran"),
    fn(np.ravel, normal(4, 3).T, order="K", case_id="keep-transposed"),
    fn(
        np.ravel, normal(2, 3, 4).transpose(1, 0, 2), order="K", case_id="keep-permuted"
    ),
    fn(np.transpose, normal(3, 4)),
    fn(np.transpose, normal(2, 3, 4), (1, 2, 0), case_id="axes"),
    fn(np.transpose, normal(2, 3, 4), axes=(-1, 0, 1), case_id="negative"),
    fn(np.swapaxes, normal(2, 3, 4), 0, 2),
    fn(np.transpose, normal(3), (0,), case_id="vector-axes"),
    fn(np.moveaxis, normal(2, 3, 4), 0, -1),
    fn(np.moveaxis, normal(2, 3, 4), [0, 1], [2, 0], case_id="several"),
    fn(np.expand_dims, normal(3, 4), 1),
    fn(np.expand_dims, normal(3), (0, 2), case_id="several"),
    fn(np.squeeze, normal(1, 3, 1)),
    fn(np.squeeze, normal(1, 3, 1), axis=0, case_id="axis"),
    fn(np.broadcast_to, normal(3, 1), (2, 3, 4)),
    fn(np.broadcast_to, scalar(), (3,), case_id="float"),
    fn(np.tile, normal(2, 3), 2),
    fn(np.tile, normal(2, 3), (2, 1), case_id="pair"),
    fn(np.tile, normal(2, 3), (2, 1, 3), case_id="more-reps"),
    fn(np.tile, normal(2, 3, 2), (2, 1), case_id="fewer-reps"),
    fn(np.repeat, normal(2, 3), 2),
    fn(np.repeat, normal(2, 3), 3, axis=1, case_id="axis"),
    fn(np.repeat, normal(3, 2), [1, 0, 2], axis=0, case_id="counts"),
    fn(np.repeat, normal(2, 2), np.array([2, 1, 0, 3]), case_id="counts-flat"),
    fn(np.flip, normal(3, 4)),
    fn(np.flip, normal(3, 4), 1, case_id="axis"),
    fn(np.fliplr, normal(3, 4)),
    fn(np.flipud, normal(3, 4)),
    fn(np.rot90, normal(3, 4)),
    fn(np.rot90, normal(2, 3, 4), 3, (1, 2), case_id="axes"),
    fn(np.roll, normal(3, 4), 2),
    fn(np.roll, normal(3, 4), (1, -1), axis=(0, 1), case_id="axes"),
    fn(np.roll, normal(3, 4), -1, 1, case_id="axis"),
    fn(np.sort, normal(3, 4)),
    fn(np.sort, normal(3, 4), axis=0, case_id="axis0"),
    fn(np.sort, normal(3, 4), None, case_id="flat"),
    fn(np.diag, normal(4)),
    fn(np.diag, normal(3), 1, case_id="offset"),
    fn(np.diag, normal(3, 3), case_id="extract"),
    fn(np.diag, normal(3, 4), -1, case_id="extract-offset"),
    fn(np.diagonal, normal(3, 4)),
    fn(np.diagonal, normal(3, 4), 1, case_id="offset"),
    fn(np.diagonal, normal(2, 3, 4), 0, 2, 1, case_id="axes"),
    fn(
        np.diagonal,
        normal(2, 3, 4),
        offset=-1,
        axis1=2,
        axis2=0,
        case_id="axes-reversed",
    ),
    fn(np.take, normal(3, 4), [2, 0, 2]),
    fn(
        np.take,
        normal(3, 4, 2),
        np.array([[0, 3], [3, 3]]),
        axis=1,
        case_id="axis-repeated",
    ),
    fn(np.take, normal(3, 4), 1, axis=-1, case_id="scalar-index"),
    fn(np.triu, normal(3, 4)),
    fn(np.triu, normal(3, 4), 1, case_id="offset"),
    fn(np.tril, normal(3, 4)),
    fn(np.tril, normal(2, 3, 3), -1, case_id="stacked"),
]

JOINS = [
    fn(np.concatenate, [normal(2, 3), normal(4, 3)]),
    fn(np.concatenate, (normal(2, 3), normal(2, 1)), axis=1, case_id="tuple-axis1"),
    fn(np.concatenate, [normal(2, 3), normal(4)], axis=None, case_id="flat"),
    fn(np.concatenate, [normal(2), np.arange(3)], case_id="with-int"),
    fn(np.stack, [normal(2, 3), normal(2, 3), normal(2, 3)]),
    fn(np.stack, (normal(3), normal(3)), axis=-1, case_id="tuple-last"),
    fn(np.stack, [scalar(), scalar()], case_id="floats"),
    fn(np.hstack, [normal(3), normal(2)]),
    fn(np.hstack, [normal(2, 3), normal(2, 1)], case_id="2d"),
    fn(np.hstack, [scalar(), normal(2)], case_id="float"),
    fn(np.vstack, [normal(3), normal(3)]),
    fn(np.vstack, [normal(2, 3), normal(1, 3), normal(3)], case_id="mixed"),
    fn(np.dstack, [normal(3), normal(3)]),
    fn(np.dstack, [normal(2, 3), normal(2, 3, 2)], case_id="mixed"),
    fn(np.column_stack, [normal(3), normal(3, 2)]),
]

SELECTIONS = [
    fn(np.where, normal(3, 4) > 0, normal(3, 4), normal(3, 4)),
    fn(np.where, normal(3, 4) > 0, normal(4), Lit(0.0), case_id="condition-broadcasts"),
    fn(np.where, normal(3, 1) > 0, scalar(), normal(4), case_id="float-branch"),
    fn(np.clip, normal(3, 4), Lit(-0.5), Lit(0.5)),
    fn(
        np.clip,
        normal(3, 4),
        normal(4) - 0.5,
        scalar(0.3, 1.0),
        case_id="active-bounds",
    ),
    fn(np.clip, normal(3, 4), None, normal(3, 1), case_id="upper-only"),
    fn(
        np.clip,
        normal(3, 4),
        min=normal(4) - 0.5,
        max=scalar(0.3, 1.0),
        case_id="keywords",
    ),
]

CONSTRUCTORS = [
    fn(np.array, [scalar(), scalar(), scalar()]),
    fn(np.array, [[scalar(), scalar()], [scalar(), scalar()]], case_id="nested"),
    fn(np.array, [normal(3), normal(3)], case_id="arrays"),
    fn(np.array, (scalar(), 3, scalar()), case_id="tuple-with-int"),
    fn(np.array, normal(3), ndmin=3, case_id="ndmin"),
    fn(
        np.array,
        normal(3),
        np.float32,
        case_id="dtype",
        float32=False,
        eps=1e-2,
        rtol=1e-4,
    ),
    fn(np.array, [1.5, 2], case_id="float-and-int"),
    fn(np.asarray, normal(3, 2)),
    fn(np.asarray, [scalar(), scalar()], case_id="list"),
    fn(np.copy, normal(3, 4)),
    fn(np.ascontiguousarray, normal(4, 3).T),
    fn(np.asfortranarray, normal(3, 4)),
    fn(np.full_like, normal(3, 4), scalar()),
    fn(np.full_like, normal(3, 4), normal(4), case_id="array-fill"),
    fn(np.full, (3, 4), scalar()),
    fn(np.full, (2, 3), normal(2, 1), case_id="array-fill"),
    fn(np.linspace, scalar(), scalar(), 5),
    fn(np.linspace, normal(2), normal(2), 4, axis=1, case_id="arrays-axis1"),
    fn(np.linspace, normal(3), scalar(), 4, endpoint=False, case_id="open"),
    fn(np.linspace, scalar(), Lit(1.0), 1, case_id="one-sample"),
]

METHODS = [
    meth("sum", normal(3, 4)),
    meth("sum", normal(3, 4), axis=1, keepdims=True, case_id="keepdims"),
    meth("sum", normal(3), initial=scalar(), case_id="initial"),
    meth("mean", normal(3, 4), 0),
    meth("prod", positive(3, 4), axis=1),
    meth("prod", _with_zero((2, 3), [(0, 1)]), case_id="zero"),
    meth("max", normal(3, 4), axis=1),
    meth("min", normal(3, 4)),
    meth("var", normal(3, 4), ddof=1),
    meth("std", normal(3, 4), axis=0),
    meth("cumsum", normal(3, 4), axis=0),
    meth("cumsum", normal(3, 4), case_id="flat"),
    meth("trace", normal(3, 4)),
    meth("diagonal", normal(3, 4), 1),
    meth("dot", normal(3, 4), normal(4, 2)),
    meth("dot", normal(3, 4), normal(4), case_id="vector"),
    meth("reshape", normal(3, 4), 2, 6),
    meth("reshape", normal(3, 4), (6, 2), case_id="tuple"),
    meth("reshape", normal(3, 4), -1, order="F", case_id="fortran"),
    meth("ravel", normal(3, 4)),
    meth("ravel", normal(4, 3).T, "K", case_id="keep"),
    meth("flatten", normal(3, 4), "F"),
    meth("transpose", normal(3, 4)),
    meth("transpose", normal(2, 3, 4), 1, 0, 2, case_id="variadic"),
    meth("transpose", normal(2, 3, 4), (2, 0, 1), case_id="tuple"),
    meth("transpose", normal(2, 3, 4), None, case_id="none"),
    meth("swapaxes", normal(2, 3, 4), 1, 2),
    meth("squeeze", normal(3, 1)),
    meth("repeat", normal(2, 3), 2, axis=0),
    meth("clip", normal(3, 4), Lit(-0.5), Lit(0.5)),
    meth(
        "clip", normal(3, 4), normal(4) - 0.5, scalar(0.3, 1.0), case_id="active-bounds"
    ),
    meth("clip", normal(3, 4), max=normal(3, 1), case_id="max-only"),
    meth("copy", normal(3, 4)),
    meth(
        "astype",
        normal(3, 4),
        np.float32,
        case_id="to-float32",
        float32=False,
        eps=1e-2,
        rtol=1e-4,
    ),
    meth(
        "astype",
        normal(3, 4).astype(np.float32),
        np.float64,
        case_id="to-float64",
        eps=1e-2,
        rtol=1e-4,
    ),
    meth("item", normal(1, 1)),
    meth("item", normal(2, 3), 4, case_id="flat-index"),
    meth("item", normal(2, 3), 1, 2, case_id="index"),
    meth("item", normal(2, 3), (0, 1), case_id="tuple-index"),
    meth("conj", normal(3)),
    meth("conjugate", normal(3)),
    attr("T", normal(3, 4)),
    attr("T", normal(2, 3, 4), case_id="3d"),
    attr("mT", normal(2, 3, 4)),
]

OPERATOR_CASES = [
    op("Add", normal(3, 4), normal(4), case_id="broadcast"),
    op("Add", scalar(), scalar(), case_id="floats"),
    op("Sub", normal(3, 1), normal(3, 4)),
    op("Mult", normal(3, 4), scalar()),
    op("Mult", normal(2, 1, 3), normal(4, 1), case_id="both-broadcast"),
    op("Div", normal(3, 4), away(3, 1)),
    op("Div", scalar(), scalar(0.5, 2.0), case_id="floats"),
    op("Pow", positive(3, 4), normal(4)),
    op("Pow", normal(3, 4), Lit(2), case_id="negative-base"),
    op("Pow", normal(3), Lit(3), case_id="cube"),
    op("Pow", positive(3), Lit(0.5), case_id="sqrt"),
    op("Pow", Lit(2.0), normal(3), case_id="exponential"),
    op("Pow", scalar(0.5, 2.0), scalar(), case_id="floats"),
    op("Mod", normal(3, 4), positive(4)),
    op("Mod", scalar(), scalar(0.5, 2.0), case_id="floats"),
    op("MatMult", normal(3, 4), normal(4, 2)),
    op("MatMult", normal(2, 3, 4), normal(4), case_id="stacked-vector"),
    op("USub", normal(3)),
    op("USub", scalar(), case_id="float"),
    op("UAdd", normal(3)),
]

BUILTINS = [
    fn(builtins.abs, away(3, 4), case_id="array"),
    fn(builtins.abs, -1.5, case_id="float"),
    fn(builtins.float, np.float64(0.7), case_id="numpy-scalar"),
    fn(builtins.float, np.array(0.4), case_id="0d"),
    fn(builtins.float, 0.3, case_id="float"),
    fn(builtins.pow, scalar(0.5, 2.0), scalar()),
    fn(builtins.pow, positive(3), normal(2, 1), case_id="arrays"),
    fn(builtins.pow, normal(3), Lit(2), case_id="square"),
    fn(builtins.sum, [scalar(), scalar(), scalar()]),
    fn(builtins.sum, [normal(3), normal(2, 3), scalar()], case_id="broadcast"),
    fn(builtins.sum, (normal(3), normal(3)), normal(2, 1), case_id="tuple-start"),
    fn(builtins.max, scalar(), scalar() + 5, case_id="two"),
    fn(builtins.max, scalar(), scalar(), scalar() + 5, case_id="three"),
    fn(builtins.max, [scalar(), scalar() + 5, scalar()], case_id="iterable"),
    fn(builtins.min, scalar(), scalar() + 5, case_id="two"),
    fn(builtins.min, (scalar(), scalar() - 5), case_id="iterable"),
]

MARKERS = [
    fn(with_derivative, normal(3), lambda cotangent: None, case_id="observing-hook"),
    fn(
        with_derivative,
        normal(2, 3),
        lambda cotangent: cotangent,
        case_id="identity-hook",
    ),
    # A normalized for loop indexes `sequence(iterable)`. These cases iterate
    # over a list of arrays and over an array's rows.
    fn(sequence, [normal(3), normal(2, 3), normal(1)], case_id="list-of-arrays"),
    fn(sequence, normal(4, 3), case_id="array-rows"),
    # Item writes and list growth, as normalization rewrites them.
    fn(structure.with_item, normal(4, 3), Lit(1), normal(3), case_id="row"),
    fn(structure.with_item, normal(4, 3), Lit((slice(None), 0)), scalar(),
       case_id="column-from-scalar"),
    fn(structure.with_item, [normal(2), normal(3)], Lit(0), normal(2), case_id="list"),
    fn(structure.appended, [normal(2), normal(3)], normal(4)),
    fn(structure.extended, [normal(2)], [normal(3), normal(1)]),
    fn(structure.extended, [normal(2)], (normal(3), normal(1)), case_id="tuple"),
    fn(structure.dict_of, Lit(("a", "b")), (normal(2), scalar())),
    # `xs.reverse()` and `xs.sort()` statements, as normalization rewrites them.
    fn(structure.reversed_list, [normal(2), scalar(), normal(3)]),
    fn(structure.sorted_copy, [scalar(), scalar() + 5, scalar() - 5], case_id="list"),
    fn(structure.sorted_copy, [scalar(), scalar() + 5, scalar() - 5], Lit(abs),
       Lit(True), case_id="list-key-reverse"),
    fn(structure.sorted_copy, normal(3, 4), case_id="array-rows"),
    # `f(a, *xs)` joins its positional arguments from a tuple display and the
    # starred sequence, which may be a list or an array's rows.
    fn(structure.joined, (normal(2), scalar()), [normal(3)], normal(2, 3),
       case_id="tuple-list-array"),
]

MATH = [
    fn(math.sin, scalar()),
    fn(math.cos, scalar()),
    fn(math.tan, scalar(-1.2, 1.2)),
    fn(math.asin, scalar(-0.9, 0.9)),
    fn(math.acos, scalar(-0.9, 0.9)),
    fn(math.atan, scalar()),
    fn(math.sinh, scalar()),
    fn(math.cosh, scalar()),
    fn(math.tanh, scalar()),
    fn(math.asinh, scalar()),
    fn(math.acosh, scalar(1.2, 3.0)),
    fn(math.atanh, scalar(-0.9, 0.9)),
    fn(math.exp, scalar()),
    fn(math.expm1, scalar()),
    fn(math.log, scalar(0.5, 3.0)),
    fn(math.log, scalar(0.5, 3.0), scalar(1.5, 3.0), case_id="base"),
    fn(math.log2, scalar(0.5, 3.0)),
    fn(math.log10, scalar(0.5, 3.0)),
    fn(math.log1p, scalar(-0.5, 2.0)),
    fn(math.sqrt, scalar(0.5, 3.0)),
    fn(math.pow, scalar(0.5, 2.0), scalar()),
    fn(math.pow, -1.3, Lit(3.0), case_id="negative-base"),
    fn(math.fabs, -0.8),
    fn(math.fabs, 1.1, case_id="positive"),
    fn(math.erf, scalar()),
    fn(math.erfc, scalar()),
    fn(math.gamma, scalar(0.5, 4.0)),
    fn(math.gamma, -1.5, case_id="negative"),
    fn(math.gamma, 7.3, case_id="large"),
    fn(math.lgamma, scalar(0.5, 4.0)),
    fn(math.lgamma, -2.5, case_id="negative"),
    fn(math.lgamma, 0.01, case_id="small"),
    fn(math.degrees, scalar()),
    fn(math.radians, scalar()),
    fn(math.atan2, scalar(), scalar()),
    fn(math.hypot, scalar(), scalar()),
    fn(math.hypot, scalar(), scalar(), scalar(), case_id="three"),
    fn(math.copysign, scalar(), -0.7),
    fn(math.copysign, -1.2, 0.4, case_id="flip"),
    fn(math.fmod, 5.3, 1.7),
    fn(math.fmod, -5.3, 1.7, case_id="negative"),
    fn(math.remainder, 5.3, 1.7),
    fn(math.remainder, 4.6, 1.7, case_id="round-up"),
    fn(math.ldexp, scalar(), 3),
    fn(math.dist, [scalar(), scalar()], [scalar(), scalar()]),
    fn(
        math.dist,
        (scalar(), scalar(), scalar()),
        (scalar(), scalar(), scalar()),
        case_id="tuples",
    ),
    fn(math.fsum, [scalar(), scalar(), scalar()]),
    fn(math.prod, [scalar(), scalar(), scalar()]),
    fn(math.prod, [scalar(), 0.0, scalar()], start=scalar(), case_id="zero-start"),
    fn(math.prod, (scalar(), scalar()), start=scalar(), case_id="start"),
]
if hasattr(math, "cbrt"):
    MATH += [fn(math.cbrt, -2.3), fn(math.exp2, scalar())]

if hasattr(np, "matrix_transpose"):
    SHAPES += [
        fn(np.matrix_transpose, normal(2, 3, 4)),
        fn(np.linalg.matrix_transpose, normal(3, 4)),
    ]

CASES = (
    ELEMENTWISE
    + REDUCTIONS
    + PRODUCTS
    + EINSUMS
    + LINALG
    + SHAPES
    + JOINS
    + SELECTIONS
    + CONSTRUCTORS
    + METHODS
    + OPERATOR_CASES
    + BUILTINS
    + MARKERS
    + MATH
)


# Evaluating a rule the way the compiler instantiates it.


def _name(identifier: str):
    return gast.Name(id=identifier, ctx=gast.Load(), annotation=None, type_comment=None)


@dataclasses.dataclass
class Binding:
    """Rule parameter -> its value and where it came from in the flat argument list."""

    values: dict
    # Parameter -> index into the flat argument list; a variadic parameter
    # maps to the index of its first element.
    positions: dict
    literals: set
    defaulted: set


def bind(rule: core.Rule, args: tuple, kwargs: dict) -> Binding:
    """Bind arguments to a rule's parameters; the flat argument list is the
    positional arguments followed by the keyword values, in order."""
    positional = [p for p in rule.params if not p.keyword_only and not p.variadic]
    variadic = next((p for p in rule.params if p.variadic), None)
    values, positions, literals = {}, {}, set()
    for index, (param, arg) in enumerate(zip(positional, args, strict=False)):
        values[param.name] = arg
        positions[param.name] = index
    surplus = args[len(positional) :]
    if surplus:
        assert variadic is not None, f"{rule.name} takes no extra positional arguments"
        values[variadic.name] = tuple(surplus)
        positions[variadic.name] = len(positional)
    for offset, (key, value) in enumerate(kwargs.items()):
        assert key in {p.name for p in rule.params}, (
            f"{rule.name} has no parameter {key}"
        )
        values[key] = value
        positions[key] = len(args) + offset
    defaulted = set()
    for param in rule.params:
        if param.name not in values:
            assert param.default is not None, f"{rule.name} needs {param.name}"
            defaulted.add(param.name)
    for key, value in values.items():
        if isinstance(value, Lit):
            literals.add(key)
    for key in defaulted:
        default = core.parse_template(
            next(p.default for p in rule.params if p.name == key)
        )
        if isinstance(default, gast.Constant) and isinstance(
            default.value, int | float
        ):
            literals.add(key)
    return Binding(values, positions, literals, defaulted)


def _is_constant(value) -> bool:
    """Whether the argument would be a constant in source: a `Lit`, or a
    non-floating Python value such as an axis, a shape or None."""
    if isinstance(value, Lit):
        return True
    if isinstance(value, Fixed | np.ndarray | np.generic | float | list):
        return False
    if isinstance(value, tuple):
        return all(_is_constant(item) for item in value)
    return True


def _may_broadcast(rule: core.Rule, binding: Binding, role: str) -> bool:
    """Whether another argument can broadcast `role`'s operand: any argument
    that is not a constant, differentiable or not (a condition, an integer
    exponent array)."""
    for other, value in binding.values.items():
        if other != role and not _is_constant(value):
            return True
    return False


def evaluate_template(rule, binding: Binding, role: str, g, ans, index=None):
    """Instantiate `role`'s template as the compiler does and evaluate it."""
    namespace = {"_g": g, "_ans": ans, "_np": np, "_math": math, "_rt": rt}
    nodes = {
        "g": _name("_g"),
        "ans": _name("_ans"),
        "np": _name("_np"),
        "math": _name("_math"),
        "rt": _name("_rt"),
    }
    for param in rule.params:
        if param.name in binding.defaulted:
            nodes[param.name] = core.parse_template(param.default)
            continue
        value = binding.values[param.name]
        if isinstance(value, tuple):
            value = tuple(_unwrap(v) for v in value)
        namespace[f"_arg_{param.name}"] = _unwrap(value)
        nodes[param.name] = _name(f"_arg_{param.name}")
    if index is not None:
        nodes["index"] = gast.Constant(value=index, kind=None)
    expression = core.instantiate(rule.adjoints[role], nodes)
    source = ast.unparse(gast.gast_to_ast(expression))
    contribution = eval(
        compile(source, f"<rule {rule.name} {role}>", "eval"), namespace
    )
    if rule.broadcasting and _may_broadcast(rule, binding, role):
        contribution = rt.unbroadcast(contribution, _unwrap(binding.values[role]))
    return contribution


def active_positions(case: Case) -> dict:
    """Flat argument index -> (parameter, variadic index or None) for every
    floating argument a differentiable parameter receives."""
    rule = case.rule
    binding = bind(rule, case.args, case.kwargs)
    flat = list(case.args) + list(case.kwargs.values())
    found = {}
    for role in rule.adjoints:
        if role not in binding.positions:
            continue
        start = binding.positions[role]
        if any(p.variadic and p.name == role for p in rule.params):
            for offset in range(len(binding.values[role])):
                if is_floating(flat[start + offset]):
                    found[start + offset] = (role, offset)
        elif is_floating(flat[start]):
            found[start] = (role, None)
    return found


def _as_float32(value):
    if isinstance(value, Lit | Fixed):
        return type(value)(_as_float32(value.value))
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, np.float64):
        return np.float32(value)
    if isinstance(value, list | tuple) and any(
        isinstance(v, np.ndarray) for v in value
    ):
        return type(value)(_as_float32(v) for v in value)
    return value


def run_case(case: Case, args, kwargs, g_seed: int = 1):
    """Return (flat args, active positions, primal function, pullback) for a case."""
    rule = case.rule
    binding = bind(rule, args, kwargs)
    flat = list(args) + list(kwargs.values())
    keys = list(kwargs)
    count = len(args)
    active = active_positions(dataclasses.replace(case, args=args, kwargs=kwargs))

    def function(*values):
        plain = [_unwrap(v) for v in values]
        return case.primal(
            *plain[:count], **dict(zip(keys, plain[count:], strict=True))
        )

    ans = function(*flat)

    def pullback(g):
        cotangents = []
        for role, index in active.values():
            cotangents.append(evaluate_template(rule, binding, role, g, ans, index))
        return tuple(cotangents)

    return flat, active, function, pullback


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rule_matches_finite_differences(case):
    flat, active, function, pullback = run_case(case, case.args, case.kwargs)
    assert active, f"{case.id} has no floating argument for a differentiable parameter"
    check_vjp(
        function,
        pullback,
        flat,
        wrt=tuple(active),
        eps=case.eps,
        rtol=case.rtol,
        atol=case.atol,
    )


FLOAT32_CASES = [
    case
    for case in CASES
    if case.float32
    and any(
        isinstance(_unwrap(v), np.ndarray) and _unwrap(v).dtype == np.float64
        for v in list(case.args)
        + list(case.kwargs.values())
        + [x for v in case.args if isinstance(v, list | tuple) for x in v]
    )
]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=[case.id for case in FLOAT32_CASES])
def test_rule_keeps_float32(case):
    args = tuple(_as_float32(a) for a in case.args)
    kwargs = {key: _as_float32(value) for key, value in case.kwargs.items()}
    flat, active, function, pullback = run_case(case, args, kwargs)
    ans = function(*flat)
    if isinstance(ans, list | tuple):
        # A list of arrays of different shapes has no single shape or dtype.
        g = random_like(ans, np.random.default_rng(3))
    elif isinstance(ans, dict):
        keys = list(ans)
        values = random_like([ans[key] for key in keys], np.random.default_rng(3))
        g = dict(zip(keys, values, strict=True))
    else:
        g = (
            np.random.default_rng(3)
            .standard_normal(np.shape(ans))
            .astype(np.result_type(ans))
        )
        if not isinstance(ans, np.ndarray):
            g = np.result_type(ans).type(g) if np.ndim(ans) == 0 else g
    for (position, _), cotangent in zip(active.items(), pullback(g), strict=True):
        check_structure(
            cotangent, _unwrap(flat[position]), f"{case.id} argument {position}"
        )


# The table covers every rule.


def _exercised() -> set:
    covered = set()
    for case in CASES:
        for role, _ in active_positions(case).values():
            covered.add((case.rule.name, role))
    return covered


def _all_rules():
    return (
        list(rules.FUNCTION_RULES.values())
        + list(rules.METHOD_RULES.values())
        + list(rules.OPERATOR_RULES.values())
        + list(rules.ATTRIBUTE_RULES.values())
    )


def test_every_rule_parameter_has_a_case():
    covered = _exercised()
    # The subscripts template exists to reject the sublist form; see below.
    covered.add((rules.FUNCTION_RULES[np.einsum].name, "subscripts"))
    missing = sorted(
        f"{rule.name}({role})"
        for rule in _all_rules()
        for role in rule.adjoints
        if (rule.name, role) not in covered
    )
    assert not missing, f"rules without a test case: {missing}"


def test_every_function_rule_has_a_case():
    tested = {case.target for case in CASES if case.kind == "function"}
    untested = [
        rule.name for key, rule in rules.FUNCTION_RULES.items() if key not in tested
    ]
    assert not untested, f"function rules without a test case: {untested}"


def test_templates_read_only_known_names():
    for rule in _all_rules():
        variadic = {p.name for p in rule.params if p.variadic}
        for role, template in rule.adjoints.items():
            allowed = set(rule.param_names()) | {"g", "ans", "np", "math", "rt"}
            if role in variadic:
                allowed.add("index")
            assert core.template_names(template) <= allowed, f"{rule.name}: {template}"


def _literal_identity_tests(expression) -> list[str]:
    """Return each `is` or `is not` comparison in `expression` with a literal operand."""
    found = []
    for node in ast.walk(expression):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Is | ast.IsNot) for op in node.ops):
            continue
        # Python folds `-2.0` to a constant before it checks for `is`.
        operands = [
            operand.operand if isinstance(operand, ast.UnaryOp) else operand
            for operand in [node.left, *node.comparators]
        ]
        constants = [operand for operand in operands if isinstance(operand, ast.Constant)]
        if len(constants) > 1 or any(c.value is not None for c in constants):
            found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("literal", ["2", "-2.0", "None"])
def test_templates_compare_no_literal_with_is(literal):
    # The compiler binds a literal argument into a template as it is, and
    # Python warns at `2 is None` (and raises under -W error), so no template
    # may emit one. Each parameter in turn is bound to the literal.
    for rule in _all_rules():
        for literal_param in rule.param_names():
            bindings = {literal_param: core.parse_template(literal)}
            for role, template in rule.adjoints.items():
                expression = gast.gast_to_ast(core.instantiate(template, bindings))
                found = _literal_identity_tests(expression)
                assert not found, f"{rule.name}({role}) with {literal_param}={literal}"


# The unsupported set and the non-differentiable marks.


def test_unsupported_set_is_computed():
    unsupported = rules.unsupported_callables()
    assert "numpy.linalg.svd" in unsupported
    assert "numpy.linalg.eig" in unsupported
    assert "numpy.fft.fft" in unsupported
    assert "numpy.sin" not in unsupported
    assert "numpy.linalg.det" not in unsupported
    assert "math.erf" not in unsupported


def test_rules_and_marks_do_not_overlap():
    overlap = set(rules.FUNCTION_RULES) & set(rules.NON_DIFFERENTIABLE_FUNCTIONS)
    assert not overlap
    assert not set(rules.METHOD_RULES) & set(rules.NON_DIFFERENTIABLE_METHODS)
    assert not set(rules.ATTRIBUTE_RULES) & set(rules.NON_DIFFERENTIABLE_ATTRIBUTES)


@pytest.mark.parametrize(
    "function, kind",
    [
        (np.floor, rules.CUT),
        (np.sign, rules.CUT),
        (np.argmax, rules.CUT),
        (np.round, rules.CUT),
        (np.greater, rules.CUT),
        (np.heaviside, rules.CUT),
        (math.floor, rules.CUT),
        (math.factorial, rules.CUT),
        (builtins.round, rules.CUT),
        (np.zeros_like, rules.CONSTANT),
        (np.shape, rules.CONSTANT),
        (np.eye, rules.CONSTANT),
        (builtins.len, rules.CONSTANT),
    ],
)
def test_non_differentiable_kind(function, kind):
    assert rules.NON_DIFFERENTIABLE_FUNCTIONS[function] == kind


def test_array_metadata_is_constant():
    for name in ("shape", "ndim", "size", "dtype"):
        assert rules.NON_DIFFERENTIABLE_ATTRIBUTES[name] == rules.CONSTANT
    assert rules.NON_DIFFERENTIABLE_METHODS["argmax"] == rules.CUT


# Points where finite differences do not apply: ties, kinks, bad input.


def _pullback_at(function, *args, **kwargs):
    case = fn(function, *args, **kwargs)
    _, active, _, pullback = run_case(case, case.args, case.kwargs)
    return pullback


def test_max_ties_share_cotangent():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    (grad,) = _pullback_at(np.max, x, axis=1)(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(grad, [[0.0, 0.5, 0.5], [5.0, 0.0, 5.0]])


def test_min_full_reduction_ties():
    x = np.array([1.0, -2.0, -2.0, -2.0])
    (grad,) = _pullback_at(np.min, x)(3.0)
    np.testing.assert_allclose(grad, [0.0, 1.0, 1.0, 1.0])


def test_maximum_ties_split_between_operands():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 5.0, 0.0])
    grad_x, grad_y = _pullback_at(np.maximum, x, y)(np.ones(3))
    np.testing.assert_array_equal(grad_x, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(grad_y, [0.5, 1.0, 0.0])


def test_builtin_max_ties_share_cotangent():
    grads = _pullback_at(builtins.max, 2.0, 2.0, 1.0)(1.0)
    assert grads == (0.5, 0.5, 0.0)
    (grad_list,) = _pullback_at(builtins.max, [2.0, 1.0, 2.0])(4.0)
    assert grad_list == [2.0, 0.0, 2.0]


def test_prod_two_zeros_in_slice():
    x = np.array([[0.0, 2.0, 0.0], [1.0, 2.0, 3.0]])
    (grad,) = _pullback_at(np.prod, x, axis=1)(np.ones(2))
    np.testing.assert_array_equal(grad, [[0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])


def test_prod_single_zero():
    x = np.array([2.0, 0.0, 5.0])
    (grad,) = _pullback_at(np.prod, x)(1.0)
    np.testing.assert_array_equal(grad, [0.0, 10.0, 0.0])


def test_abs_at_zero_is_zero():
    (grad,) = _pullback_at(np.absolute, np.array([0.0, -1.0]))(np.ones(2))
    np.testing.assert_array_equal(grad, [0.0, -1.0])


def test_square_of_negative_power_operator():
    case = op("Pow", np.array([-2.0, 3.0]), Lit(2))
    _, _, _, pullback = run_case(case, case.args, case.kwargs)
    (grad,) = pullback(np.ones(2))
    np.testing.assert_array_equal(grad, [-4.0, 6.0])


def test_einsum_sublist_form_is_rejected():
    a, b = normal(2, 3), normal(3, 2)
    with pytest.raises(PullbackError, match="subscripts as a string"):
        rt.einsum_adjoint(np.ones((2, 2)), a, ([0, 1], b, [1, 2]), 1)


def test_norm_unsupported_matrix_order_is_rejected():
    x = normal(3, 3)
    with pytest.raises(PullbackError, match="ord=3"):
        rt.norm_adjoint(1.0, np.linalg.norm(x, "fro"), x, 3, (0, 1))


def test_digamma_matches_finite_differences_of_lgamma():
    for x in (0.1, 0.5, 1.0, 2.5, 5.9, 6.1, 30.0, -0.5, -3.7):
        eps = 1e-6
        expected = (math.lgamma(x + eps) - math.lgamma(x - eps)) / (2 * eps)
        assert rt.digamma(x) == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert math.isnan(rt.digamma(-2.0))


# An independent reference: autograd's own derivatives.


@pytest.fixture(scope="module")
def autograd():
    return pytest.importorskip("autograd")


AUTOGRAD_CASES = [
    (
        "det",
        lambda anp: anp.linalg.det,
        np.linalg.det,
        (well_conditioned(2, 3, 3),),
        {},
    ),
    ("inv", lambda anp: anp.linalg.inv, np.linalg.inv, (well_conditioned(3, 3),), {}),
    (
        "solve",
        lambda anp: anp.linalg.solve,
        np.linalg.solve,
        (well_conditioned(3, 3), normal(3, 2)),
        {},
    ),
    (
        "norm-rows",
        lambda anp: anp.linalg.norm,
        np.linalg.norm,
        (normal(3, 4),),
        {"axis": 1},
    ),
    ("norm-fro", lambda anp: anp.linalg.norm, np.linalg.norm, (normal(3, 4),), {}),
    ("std-ddof", lambda anp: anp.std, np.std, (normal(3, 4),), {"axis": 0, "ddof": 1}),
    # autograd divides by the input, so zeros are left to the exact tests above.
    ("prod", lambda anp: anp.prod, np.prod, (positive(3, 4),), {"axis": 0}),
    ("max-axis", lambda anp: anp.max, np.max, (normal(3, 4),), {"axis": 1}),
    (
        "einsum",
        lambda anp: anp.einsum,
        np.einsum,
        ("ij,jk->ik", normal(3, 4), normal(4, 5)),
        {},
    ),
    (
        "tensordot",
        lambda anp: anp.tensordot,
        np.tensordot,
        (normal(3, 4, 5), normal(4, 3, 2)),
        {"axes": ([1, 0], [0, 1])},
    ),
    ("cumsum", lambda anp: anp.cumsum, np.cumsum, (normal(3, 4),), {"axis": 1}),
    (
        "logaddexp",
        lambda anp: anp.logaddexp,
        np.logaddexp,
        (normal(3, 1), normal(4)),
        {},
    ),
    ("arctan2", lambda anp: anp.arctan2, np.arctan2, (normal(3, 4), normal(4)), {}),
]


@pytest.mark.parametrize(
    "reference, ours, args, kwargs",
    [case[1:] for case in AUTOGRAD_CASES],
    ids=[case[0] for case in AUTOGRAD_CASES],
)
def test_rule_matches_autograd(autograd, reference, ours, args, kwargs):
    import autograd.numpy as anp

    case = fn(ours, *args, **kwargs)
    flat, active, function, pullback = run_case(case, case.args, case.kwargs)
    ans = function(*flat)
    g = np.random.default_rng(5).standard_normal(np.shape(ans))
    for (position, _), cotangent in zip(active.items(), pullback(g), strict=True):

        def partial(value, position=position):
            values = list(flat)
            values[position] = value
            return reference(anp)(*values[: len(args)], **kwargs)

        expected = autograd.make_vjp(partial)(flat[position])[0](g)
        np.testing.assert_allclose(cotangent, expected, rtol=1e-9, atol=1e-12)
