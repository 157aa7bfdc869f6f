"""What generated code and users call while a derivative runs.

Generated code reaches this package through one reserved alias. It never
imports the compiler, so a generated module runs without it.
"""

import builtins
import math

import numpy as np

from pullback.runtime.arrays import (
    cast_like,
    clip_bound_adjoint,
    cumsum_adjoint,
    expand_reduced,
    exponent_adjoint,
    extremum_adjoint,
    like,
    linspace_adjoint,
    maximum_share,
    mean_adjoint,
    minimum_share,
    normalize_axes,
    prod_adjoint,
    reduced_count,
    sinc_derivative,
    unbroadcast,
    unreduce,
    var_adjoint,
)
from pullback.runtime.checkpoint import recompute
from pullback.runtime.linalg import (
    dot_adjoint_lhs,
    dot_adjoint_rhs,
    einsum_adjoint,
    inner_adjoint,
    matmul_adjoint_lhs,
    matmul_adjoint_rhs,
    norm_adjoint,
    outer_adjoint,
    solve_adjoint_a,
    solve_adjoint_b,
    tensordot_adjoint_lhs,
    tensordot_adjoint_rhs,
)
from pullback.runtime.markers import apply_hook, generator_states
from pullback.runtime.objects import ObjectTangent, attribute_adjoint, method_vjp
from pullback.runtime.registry import vjp_of
from pullback.runtime.scalars import (
    digamma,
    dist_adjoint,
    extremum_share,
    sequence_prod_adjoint,
    sum_adjoint,
)
from pullback.runtime.shapes import (
    array_adjoint,
    column_stack_adjoint,
    concatenate_adjoint,
    diag_adjoint,
    diagonal_adjoint,
    dstack_adjoint,
    hstack_adjoint,
    item_adjoint,
    repeat_adjoint,
    reshape_adjoint,
    sort_adjoint,
    stack_adjoint,
    take_adjoint,
    tile_adjoint,
    trace_adjoint,
    transpose_adjoint,
    vstack_adjoint,
)
from pullback.runtime.structure import (
    appended,
    dict_of,
    dict_values_cotangent,
    extended,
    extended_head,
    extended_tail,
    index,
    item_cotangent,
    sequence,
    subscript_adjoint,
    unpack_adjoint,
    with_item,
    without_item,
)
from pullback.runtime.tangents import add, is_differentiable_value, scale, zeros_like

__all__ = [
    "like",
    "method_vjp",
    "attribute_adjoint",
    "ObjectTangent",
    "extended_head",
    "extended_tail",
    "without_item",
    "with_item",
    "item_cotangent",
    "index",
    "extended",
    "dict_values_cotangent",
    "dict_of",
    "appended",
    "add",
    "apply_hook",
    "array_adjoint",
    "cast_like",
    "clip_bound_adjoint",
    "column_stack_adjoint",
    "concatenate_adjoint",
    "cumsum_adjoint",
    "diag_adjoint",
    "diagonal_adjoint",
    "digamma",
    "dist_adjoint",
    "dot_adjoint_lhs",
    "dot_adjoint_rhs",
    "dstack_adjoint",
    "einsum_adjoint",
    "expand_reduced",
    "exponent_adjoint",
    "extremum_adjoint",
    "extremum_share",
    "generator_states",
    "hstack_adjoint",
    "inner_adjoint",
    "is_differentiable_value",
    "item_adjoint",
    "linspace_adjoint",
    "math",
    "matmul_adjoint_lhs",
    "matmul_adjoint_rhs",
    "maximum_share",
    "mean_adjoint",
    "minimum_share",
    "norm_adjoint",
    "normalize_axes",
    "np",
    "outer_adjoint",
    "prod_adjoint",
    "recompute",
    "reduced_count",
    "repeat_adjoint",
    "reshape_adjoint",
    "scale",
    "sequence",
    "sequence_prod_adjoint",
    "sinc_derivative",
    "solve_adjoint_a",
    "solve_adjoint_b",
    "sort_adjoint",
    "stack_adjoint",
    "subscript_adjoint",
    "sum_adjoint",
    "take_adjoint",
    "tensordot_adjoint_lhs",
    "tensordot_adjoint_rhs",
    "tile_adjoint",
    "trace_adjoint",
    "transpose_adjoint",
    "unbroadcast",
    "unpack_adjoint",
    "unreduce",
    "var_adjoint",
    "vjp_of",
    "vstack_adjoint",
    "zeros_like",
]

# Builtins that generated loops call, for functions that rebind their names.
len = builtins.len
range = builtins.range
min = builtins.min

