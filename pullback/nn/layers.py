"""Layers: dense, convolution, pooling, flattening and dropout.

Each layer's parameters are float arrays held as attributes, which is what
the gradient with respect to a model reaches. Weights start from the Glorot
(Xavier) uniform distribution and biases at zero. Parameters default to
float32, like Swift for TensorFlow's `Dense<Float>` and PyTorch; pass
`dtype=np.float64` for checks by finite differences.
"""

from __future__ import annotations

import math

import numpy as np

from pullback import no_derivative
from pullback.nn.convolution import avg_pool2d, check_padding, conv2d, max_pool2d, pair
from pullback.nn.layer import Layer


def glorot_uniform(shape, fan_in: int, fan_out: int, rng, dtype=np.float32):
    """Draw an array from U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def _positive_int(value, name: str) -> int:
    """Return `value` as an int, or raise TypeError or ValueError unless it is a positive int."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _generator(rng) -> np.random.Generator:
    """Return `rng` as a Generator; an int is a seed and None takes fresh entropy."""
    if rng is None or isinstance(rng, int | np.integer | np.random.Generator):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be a numpy.random.Generator, an int seed or None, got {rng!r}"
    )


class Dense(Layer):
    """A fully connected layer: `activation(x @ weight + bias)`.

    `weight` has shape (input_size, output_size) and `bias` (output_size,).
    `rng` (a Generator or an int seed) draws the initial weights.
    """

    def __init__(self, input_size: int, output_size: int, activation=None, *,
                 rng=None, dtype=np.float32):
        input_size = _positive_int(input_size, "input_size")
        output_size = _positive_int(output_size, "output_size")
        rng = _generator(rng)
        self.weight = glorot_uniform((input_size, output_size), input_size,
                                     output_size, rng, dtype)
        self.bias = np.zeros(output_size, dtype=dtype)
        self.activation = activation

    def __call__(self, x):
        _check_dense_input(x, self.weight)
        y = x @ self.weight + self.bias
        if self.activation is not None:
            y = self.activation(y)
        return y

    def __repr__(self) -> str:
        return f"Dense({self.weight.shape[0]}, {self.weight.shape[1]})"


@no_derivative
def _check_dense_input(x, weight) -> None:
    input_size, output_size = np.shape(weight)
    shape = np.shape(x)
    if shape[-1:] != (input_size,):
        fix = "reshape the input"
        if shape:
            fix += f", or create the layer with input_size={shape[-1]}"
        raise ValueError(
            f"Dense({input_size}, {output_size}) needs an input of shape "
            f"(..., {input_size}), got an input of shape {shape}; {fix}"
        )


def _filter_shape(filter_shape) -> tuple[int, int, int, int]:
    """Return `filter_shape` as a tuple of four positive ints, or raise TypeError or ValueError."""
    expected = "filter_shape must be (height, width, in_channels, out_channels) of positive ints"
    if not hasattr(filter_shape, "__len__") or len(filter_shape) != 4:
        raise ValueError(f"{expected}, got {filter_shape!r}")
    for size in filter_shape:
        if isinstance(size, bool) or not isinstance(size, int | np.integer):
            raise TypeError(
                f"{expected}, got {filter_shape!r}, which contains the "
                f"{type(size).__name__} {size!r}"
            )
        if size < 1:
            raise ValueError(f"{expected}, got {filter_shape!r}, which contains {size!r}")
    return tuple(int(size) for size in filter_shape)


class Conv2D(Layer):
    """A 2-D convolution layer on NHWC input: `activation(conv2d(x, filter) + bias)`.

    `filter_shape` is (height, width, in_channels, out_channels); `filter`
    has that shape and `bias` has shape (out_channels,). `padding` is
    "valid" or "same", as in TensorFlow.
    """

    def __init__(self, filter_shape, strides=(1, 1), padding="valid", activation=None,
                 *, rng=None, dtype=np.float32):
        filter_shape = _filter_shape(filter_shape)
        height, width, in_channels, out_channels = filter_shape
        rng = _generator(rng)
        self.filter = glorot_uniform(filter_shape, height * width * in_channels,
                                     height * width * out_channels, rng, dtype)
        self.bias = np.zeros(out_channels, dtype=dtype)
        self.strides = pair(strides, "strides")
        self.padding = check_padding(padding)
        self.activation = activation

    def __call__(self, x):
        y = conv2d(x, self.filter, self.strides, self.padding, self.bias)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def __repr__(self) -> str:
        return f"Conv2D({self.filter.shape})"


class MaxPool2D(Layer):
    """Max pooling over `pool_size` windows moved by `strides` (default: `pool_size`)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid"):
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = check_padding(padding)

    def __call__(self, x):
        return max_pool2d(x, self.pool_size, self.strides, self.padding)


class AvgPool2D(Layer):
    """Average pooling over `pool_size` windows moved by `strides` (default: `pool_size`)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid"):
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = check_padding(padding)

    def __call__(self, x):
        return avg_pool2d(x, self.pool_size, self.strides, self.padding)


class Flatten(Layer):
    """Reshape (batch, ...) to (batch, features)."""

    def __call__(self, x):
        # The size is spelled out because -1 is ambiguous for an empty batch.
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))


@no_derivative
def _dropout_mask(rng, shape, rate, dtype):
    """Return `keep / (1 - rate)`, where `keep` is 1 with probability 1 - rate."""
    keep = rng.random(shape) >= rate
    return keep.astype(dtype) / np.asarray(1.0 - rate, dtype=dtype)


class Dropout(Layer):
    """Inverted dropout: while training, zero each element with probability
    `rate` and scale the rest by `1 / (1 - rate)`; otherwise the identity.

    `rng` is the NumPy Generator the masks are drawn from. `training`
    starts True; `model.set_training(False)` turns it off for evaluation.
    """

    __no_derivative_fields__ = ("rate",)

    def __init__(self, rate: float, rng: np.random.Generator, training: bool = True):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"the dropout rate must be in [0, 1), got {rate!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"Dropout needs a numpy.random.Generator to draw masks from, got {rng!r}"
            )
        self.rate = float(rate)
        self.rng = rng
        self.training = training

    def __call__(self, x):
        if not self.training:
            return x
        return x * _dropout_mask(self.rng, x.shape, self.rate, x.dtype)
