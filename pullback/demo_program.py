"""The program that `pullback demo` differentiates.

It is an ordinary module so that the compiler can read its source: a one-layer
tanh model with a mean-squared-error loss and an L2 penalty on the weights.
"""

import numpy as np


def loss(weights, bias, inputs, targets):
    """Return the mean squared error of a tanh layer plus an L2 penalty."""
    predictions = np.tanh(inputs @ weights + bias)
    errors = predictions - targets
    penalty = 0.01 * np.sum(weights * weights)
    return np.mean(errors * errors) + penalty


def example_arguments():
    """Return fixed `(weights, bias, inputs, targets)` for `loss`, in float64.

    Four samples with three features each, mapped to two outputs.
    """
    rng = np.random.default_rng(0)
    weights = rng.normal(scale=0.5, size=(3, 2))
    bias = np.array([0.1, -0.2])
    inputs = rng.normal(size=(4, 3))
    targets = rng.uniform(-1.0, 1.0, size=(4, 2))
    return weights, bias, inputs, targets
