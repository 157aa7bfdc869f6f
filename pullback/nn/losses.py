"""Loss functions: a scalar from predictions and expected values."""

from __future__ import annotations

import numpy as np

from pullback import derivative_of, no_derivative
from pullback.nn.activations import log_softmax


@no_derivative
def _check_same_shape(predicted, expected) -> None:
    if np.shape(predicted) != np.shape(expected):
        raise ValueError(
            f"mean_squared_error needs predicted and expected values of one "
            f"shape, but predicted has shape {np.shape(predicted)} and expected "
            f"has shape {np.shape(expected)}; reshape one of them, for example "
            "expected.reshape(predicted.shape), so that they do not broadcast"
        )


def mean_squared_error(predicted, expected):
    """Return the mean of `(predicted - expected) ** 2` over all elements.

    Both must have one shape: broadcasting a (4, 1) prediction against (4,)
    labels would silently compare every prediction with every label, so it
    raises ValueError instead.
    """
    _check_same_shape(predicted, expected)
    return np.mean((predicted - expected) ** 2)


@no_derivative
def _check_labels(logits, labels) -> None:
    if np.ndim(logits) == 0 or np.shape(logits)[-1] == 0:
        raise ValueError(
            "softmax_cross_entropy needs logits of shape (..., classes) with at "
            f"least one class, got logits of shape {np.shape(logits)}; pass one row "
            "of class scores per example, such as an array of shape (batch, classes)"
        )
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            "softmax_cross_entropy needs integer class labels, but the labels "
            f"have dtype {labels.dtype}; pass class indices such as "
            "np.array([0, 3, 1])"
        )
    if np.shape(logits)[:-1] != labels.shape:
        raise ValueError(
            f"softmax_cross_entropy needs one label per row of logits: logits "
            f"have shape {np.shape(logits)}, so labels need shape "
            f"{np.shape(logits)[:-1]}, but they have shape {labels.shape}"
        )
    classes = np.shape(logits)[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"softmax_cross_entropy got labels from {labels.min()} to "
            f"{labels.max()}, but the logits have {classes} classes, so labels "
            f"must lie in 0..{classes - 1}"
        )


def softmax_cross_entropy(logits, labels):
    """Return the mean cross-entropy between `softmax(logits)` and integer `labels`.

    `logits` has shape (..., classes) and `labels` the leading shape (...),
    with values in `0..classes - 1`. Only `logits` is differentiable.
    """
    _check_labels(logits, labels)
    log_probabilities = log_softmax(logits)
    picked = np.take_along_axis(log_probabilities, np.expand_dims(labels, -1), axis=-1)
    return -np.mean(picked)


@derivative_of(softmax_cross_entropy, wrt="logits")
def _softmax_cross_entropy_vjp(logits, labels):
    _check_labels(logits, labels)
    log_probabilities = log_softmax(logits)
    label_positions = np.expand_dims(labels, -1)
    picked = np.take_along_axis(log_probabilities, label_positions, axis=-1)
    loss = -np.mean(picked)

    def softmax_cross_entropy_pullback(loss_bar):
        # d loss / d logits = (softmax(logits) - one_hot(labels)) / count.
        logits_bar = np.exp(log_probabilities)
        np.put_along_axis(
            logits_bar,
            label_positions,
            np.take_along_axis(logits_bar, label_positions, axis=-1) - 1,
            axis=-1,
        )
        logits_bar *= loss_bar / picked.size
        return logits_bar

    return loss, softmax_cross_entropy_pullback
