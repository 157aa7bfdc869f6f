"""What generated code and users call while a derivative runs.

Generated code reaches this package through one reserved alias. It never
imports the compiler, so a generated module runs without it.
"""

import math

import numpy as np

from pullback.runtime.arrays import (
    expand_reduced,
    extremum_adjoint,
    matmul_adjoint_lhs,
    matmul_adjoint_rhs,
    reduced_count,
    unbroadcast,
    unreduce,
)
from pullback.runtime.registry import call_vjp, lookup_vjp
from pullback.runtime.structure import subscript_adjoint, unpack_adjoint
from pullback.runtime.tangents import add, is_differentiable_value, scale, zeros_like

__all__ = [
    "add",
    "call_vjp",
    "expand_reduced",
    "extremum_adjoint",
    "is_differentiable_value",
    "lookup_vjp",
    "math",
    "matmul_adjoint_lhs",
    "matmul_adjoint_rhs",
    "np",
    "reduced_count",
    "scale",
    "subscript_adjoint",
    "unbroadcast",
    "unpack_adjoint",
    "unreduce",
    "zeros_like",
]
