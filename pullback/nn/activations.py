"""Activation functions, each with a registered VJP.

The VJPs are written out because the compiled ones would differ where it
matters: `relu`'s derivative at 0 is 0 (the compiled `np.maximum` rule
splits the cotangent there), `sigmoid` and the softmax family are evaluated
in the numerically stable form, and each pullback reuses the forward result.
`tanh` is compiled from `np.tanh`, whose rule is already `g * (1 - y**2)`.
"""

from __future__ import annotations

import numpy as np

from pullback import derivative_of


def relu(x):
    """Return `max(x, 0)` elementwise. The derivative at 0 is 0."""
    return np.maximum(x, 0)


@derivative_of(relu)
def _relu_vjp(x):
    y = np.maximum(x, 0)
    # A mask of bools, a quarter of a float32 `y`, is all the pullback keeps,
    # so neither x nor y outlives the forward pass unless a caller keeps it.
    positive = y > 0

    def relu_pullback(y_bar):
        return y_bar * positive

    return y, relu_pullback


def sigmoid(x):
    """Return the logistic function `1 / (1 + exp(-x))` elementwise."""
    # The tanh form never overflows, unlike exp(-x) for large negative x.
    return 0.5 + 0.5 * np.tanh(0.5 * x)


@derivative_of(sigmoid)
def _sigmoid_vjp(x):
    y = sigmoid(x)

    def sigmoid_pullback(y_bar):
        return y_bar * y * (1 - y)

    return y, sigmoid_pullback


def tanh(x):
    """Return the hyperbolic tangent elementwise."""
    return np.tanh(x)


def softmax(x, axis=-1):
    """Return `exp(x) / sum(exp(x))` along `axis`."""
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


@derivative_of(softmax, wrt="x")
def _softmax_vjp(x, axis=-1):
    y = softmax(x, axis)

    def softmax_pullback(y_bar):
        return y * (y_bar - np.sum(y_bar * y, axis=axis, keepdims=True))

    return y, softmax_pullback


def log_softmax(x, axis=-1):
    """Return `log(softmax(x))` along `axis`, computed without overflow."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@derivative_of(log_softmax, wrt="x")
def _log_softmax_vjp(x, axis=-1):
    y = log_softmax(x, axis)

    def log_softmax_pullback(y_bar):
        return y_bar - np.exp(y) * np.sum(y_bar, axis=axis, keepdims=True)

    return y, log_softmax_pullback
