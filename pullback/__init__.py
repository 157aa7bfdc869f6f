"""pullback: source-to-source reverse-mode automatic differentiation for NumPy."""

from pullback.api import (
    adjoint_source,
    derivative_of,
    differentiable,
    differentiable_function,
    gradient,
    pullback,
    value_and_gradient,
    value_and_pullback,
)
from pullback.errors import PullbackError, ZeroDerivativeWarning, apply_command_line_filters
from pullback.runtime.markers import checkpointed, no_derivative, with_derivative
from pullback.runtime.objects import ObjectTangent
from pullback.runtime.tangents import move

__all__ = [
    "ObjectTangent",
    "PullbackError",
    "ZeroDerivativeWarning",
    "adjoint_source",
    "checkpointed",
    "derivative_of",
    "differentiable",
    "differentiable_function",
    "gradient",
    "move",
    "no_derivative",
    "pullback",
    "value_and_gradient",
    "value_and_pullback",
    "with_derivative",
]
__version__ = "0.1.0"

apply_command_line_filters()
