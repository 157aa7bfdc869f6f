"""Neural networks on pullback: layers, activations, losses and optimizers.

Models are plain Python objects: subclass `Layer`, hold layers and arrays as
attributes, and define `__call__`. Gradients with respect to a model are
`ObjectTangent`s with the model's field names, and the optimizers move the
model along them in place.
"""

from pullback.nn.activations import log_softmax, relu, sigmoid, softmax, tanh
from pullback.nn.convolution import avg_pool2d, conv2d, max_pool2d
from pullback.nn.layer import ActivationDiscarding, Layer, sequenced
from pullback.nn.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    glorot_uniform,
)
from pullback.nn.losses import mean_squared_error, softmax_cross_entropy
from pullback.nn.optimizers import SGD, Adam

__all__ = [
    "ActivationDiscarding",
    "Adam",
    "AvgPool2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "SGD",
    "avg_pool2d",
    "conv2d",
    "glorot_uniform",
    "log_softmax",
    "max_pool2d",
    "mean_squared_error",
    "relu",
    "sequenced",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "tanh",
]
