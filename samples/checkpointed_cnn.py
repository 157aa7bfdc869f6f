"""A small CNN whose convolution recomputes its activations in the pullback.

A Python rendering of the checkpointing part of Swift for TensorFlow's
"Custom differentiation" tutorial. The model is a 5x5x3x6 convolution
wrapped with `discarding_activations()`, a 2x2 max pool, a flattening and a
dense layer from 216 features to 10 classes. It trains for 5 SGD steps on
random input of shape [10, 16, 16, 3] with labels 0..9.

Each step runs the model with `applied_for_backpropagation`, takes the
gradient of the softmax cross-entropy at the logits, and pulls it back
through the model. The convolution announces itself each time it runs:
once in the forward pass and once more when the pullback recomputes its
activations, so "Applying Conv2D layer..." appears twice per step.

The input and the initial weights come from a fixed seed, so the losses
repeat from run to run, but they differ from the tutorial's.

Run it with `python samples/checkpointed_cnn.py`.
"""

import sys

import numpy as np

import pullback
from pullback import nn

SEED = 0
STEPS = 5


@pullback.no_derivative
def announce(layer):
    print(f"    Applying {type(layer).__name__} layer...")


class Announced(nn.Layer):
    """Runs `wrapped` and prints a line each time it does."""

    def __init__(self, wrapped):
        self.wrapped = wrapped

    def __call__(self, x):
        announce(self.wrapped)
        return self.wrapped(x)


class Model(nn.Layer):
    def __init__(self, rng):
        conv = Announced(nn.Conv2D((5, 5, 3, 6), rng=rng))
        self.conv = conv.discarding_activations()
        self.max_pool = nn.MaxPool2D(pool_size=(2, 2), strides=(2, 2))
        self.flatten = nn.Flatten()
        self.dense = nn.Dense(36 * 6, 10, rng=rng)

    def __call__(self, x):
        return nn.sequenced(x, self.conv, self.max_pool, self.flatten, self.dense)


def main() -> int:
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((10, 16, 16, 3)).astype(np.float32)
    y = np.arange(10)

    def cross_entropy(logits):
        return nn.softmax_cross_entropy(logits, y)

    model = Model(rng)
    optimizer = nn.SGD(model)
    loss_and_gradient = pullback.value_and_gradient(cross_entropy)
    for step in range(1, STEPS + 1):
        print(f"Starting training step {step}")
        print("  Running original computation...")
        logits, backprop = model.applied_for_backpropagation(x)
        loss, logits_bar = loss_and_gradient(logits)
        print(f"  Loss: {loss!s}")
        print("  Running backpropagation...")
        model_gradient, _ = backprop(logits_bar)
        optimizer.update(model, along=model_gradient)
    return 0


if __name__ == "__main__":
    sys.exit(main())
