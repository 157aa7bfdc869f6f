"""Recomputation in pullbacks (checkpointing), and the memory it saves.

A Python rendering of the checkpointing part of Swift for TensorFlow's
"Custom differentiation" tutorial:

1. `square` is `checkpointed`, so differentiating `square(cos(x))` runs it
   once in the forward pass and once more when the pullback runs, as the
   printed lines show. The gradient at 10.0 is -sin(20).
2. A chain of blocks on 1 MiB arrays is differentiated with and without
   checkpointing every block. Without it, the pullback keeps every block's
   intermediate arrays alive until it runs; with it, the forward pass keeps
   only each block's input. The peak memory of one gradient call is measured
   with `tracemalloc`.

Run it with `python samples/checkpointing.py`.
"""

import sys
import tracemalloc

import numpy as np

from pullback import checkpointed, gradient, value_and_pullback


@checkpointed
def square(x):
    print("  Computing square...")
    return x * x


def square_of_cosine(x):
    return square(np.cos(x))


def show_recomputation():
    print("Running original computation...")
    _, backpropagate = value_and_pullback(square_of_cosine, 10.0)
    print("Running backpropagation...")
    print(f"Gradient = {backpropagate(1.0)}")


# 131072 float64 elements are 1 MiB.
ELEMENTS = 131072
MEBIBYTE = 2**20


def block(x):
    a = np.sin(x)
    b = a * x
    c = np.tanh(b)
    return c + x


block_checkpointed = checkpointed(block)

# Each chain below calls its block this many times.
BLOCK_COUNT = 16


# The chains are written out because differentiated code has no loops yet.
def chain(x):
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    return np.sum(x)


def chain_checkpointed(x):
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    return np.sum(x)


def measure_gradient(function, x):
    """Return the gradient of `function` at `x` and the peak traced memory in MiB.

    The first call compiles the VJP outside the measurement. The input array
    exists before tracing starts, so it is not counted.
    """
    gradient_of_function = gradient(function)
    gradient_of_function(x)
    tracemalloc.start()
    try:
        x_bar = gradient_of_function(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return x_bar, peak / MEBIBYTE


def show_memory():
    x = np.random.default_rng(0).standard_normal(ELEMENTS)
    plain_gradient, plain_peak = measure_gradient(chain, x)
    checkpointed_gradient, checkpointed_peak = measure_gradient(chain_checkpointed, x)
    difference = np.max(np.abs(plain_gradient - checkpointed_gradient))

    print()
    megabytes = x.nbytes / MEBIBYTE
    print(f"Gradient of a chain of {BLOCK_COUNT} blocks on {megabytes:.1f} MiB arrays")
    print(f"  peak memory without checkpointing: {plain_peak:6.1f} MiB")
    print(f"  peak memory with checkpointing:    {checkpointed_peak:6.1f} MiB")
    print(f"  checkpointed / plain: {checkpointed_peak / plain_peak:.0%}")
    print(f"  largest difference between the gradients: {difference:.3g}")


def main() -> int:
    show_recomputation()
    show_memory()
    return 0


if __name__ == "__main__":
    sys.exit(main())
