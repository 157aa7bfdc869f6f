"""First gradients: a few scalar functions, each checked by finite differences.

Run it with `python samples/first_gradient.py`. For every function it prints
the value, the gradient from pullback and a central finite-difference
estimate, then the generated VJP source of the first function.
"""

import inspect

import numpy as np

import pullback

# Step of the central differences, whose error is O(STEP**2) in float64.
STEP = 1e-6


def nested_sines(x):
    return np.sin(np.sin(np.sin(x)))


def cubic(x):
    return 2.0 * x**3 - 4.0 * x**2 + x - 7.0


def decaying(x):
    return x * np.exp(-x)


def product_with_log(x, y):
    return x * y + np.log(x) * y**2


def central_difference(function, args, index):
    """Estimate the partial derivative of `function` in `args[index]`."""
    above = list(args)
    below = list(args)
    above[index] += STEP
    below[index] -= STEP
    return (function(*above) - function(*below)) / (2 * STEP)


def show(function, *args):
    """Print `function`'s value and gradient at `args` next to finite differences."""
    value, gradient = pullback.value_and_gradient(function)(*args)
    # One parameter gives a bare gradient and several give a tuple.
    gradients = gradient if isinstance(gradient, tuple) else (gradient,)
    estimates = [central_difference(function, args, i) for i in range(len(args))]

    names = list(inspect.signature(function).parameters)
    arguments = ", ".join(
        f"{name}={arg!r}" for name, arg in zip(names, args, strict=True)
    )
    print(f"{function.__name__}({arguments}) = {value:.10f}")
    for name, exact, estimate in zip(names, gradients, estimates, strict=True):
        error = abs(exact - estimate)
        print(
            f"  d/d{name}: pullback {exact:+.10f}   "
            f"finite differences {estimate:+.10f}   difference {error:.1e}"
        )


def main():
    print("Gradients from pullback.value_and_gradient, checked against")
    print(f"central finite differences with step {STEP:g}.\n")
    show(nested_sines, 1.0)
    show(cubic, 1.5)
    show(decaying, 0.5)
    show(product_with_log, 2.0, 3.0)

    print("\nThe generated VJP of nested_sines, from pullback.adjoint_source:\n")
    print(pullback.adjoint_source(nested_sines))


if __name__ == "__main__":
    main()
