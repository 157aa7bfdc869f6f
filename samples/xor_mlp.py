"""A two-layer network learns XOR while printing cotangents from inside it.

A Python rendering of the neural-network part of Swift for TensorFlow's
"Custom differentiation" tutorial: a 2-10-1 ReLU network on the four XOR
points, trained for 10 steps of SGD at learning rate 0.02. Two
`with_derivative` hooks print cotangents during each backward pass: one on
the network's output, inside the loss, and one on the first layer's output,
inside the model's `__call__`. Each step prints the loss, then dL/dyhat
(4x1), then dL/dlayer1 (4x10), in the order the forward and backward passes
reach them.

The tutorial's labels have shape [4] against predictions of shape [4, 1],
so its `(yhat - y).squared().mean()` broadcasts to a 4x4 difference. Here
the labels have shape (4, 1), so each prediction is compared with its own
label. The initial weights come from a fixed seed, so the numbers repeat
from run to run, but they differ from the tutorial's.

Run it with `python samples/xor_mlp.py`.
"""

import sys

import numpy as np

import pullback
from pullback import nn

SEED = 0
STEPS = 10
LEARNING_RATE = 0.02

x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def print_layer1_cotangent(cotangent):
    print("dL/dlayer1 =", cotangent)


def print_output_cotangent(cotangent):
    print("dL/dyhat =", cotangent)


class MLP(nn.Layer):
    def __init__(self, rng):
        self.layer1 = nn.Dense(2, 10, nn.relu, rng=rng)
        self.layer2 = nn.Dense(10, 1, nn.relu, rng=rng)

    def __call__(self, inputs):
        h0 = pullback.with_derivative(self.layer1(inputs), print_layer1_cotangent)
        return self.layer2(h0)


def loss(classifier):
    y_hat = pullback.with_derivative(classifier(x), print_output_cotangent)
    value = nn.mean_squared_error(y_hat, y)
    print(f"Loss: {value!s}")
    return value


def main() -> int:
    np.set_printoptions(precision=8, linewidth=110)
    classifier = MLP(np.random.default_rng(SEED))
    optimizer = nn.SGD(classifier, learning_rate=LEARNING_RATE)
    gradient_of_loss = pullback.gradient(loss)
    for _ in range(STEPS):
        model_gradient = gradient_of_loss(classifier)
        optimizer.update(classifier, along=model_gradient)
    return 0


if __name__ == "__main__":
    sys.exit(main())
