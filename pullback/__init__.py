"""pullback: source-to-source reverse-mode automatic differentiation for NumPy."""

from pullback.api import (
    adjoint_source,
    differentiable,
    gradient,
    pullback,
    value_and_gradient,
    value_and_pullback,
)
from pullback.errors import PullbackError, ZeroDerivativeWarning

__all__ = [
    "PullbackError",
    "ZeroDerivativeWarning",
    "adjoint_source",
    "differentiable",
    "gradient",
    "pullback",
    "value_and_gradient",
    "value_and_pullback",
]
__version__ = "0.1.0"
