"""Custom derivatives, derivative stops and derivative surgery.

A Python rendering of the first part of Swift for TensorFlow's "Custom
differentiation" tutorial:

1. a C function, `exp` from the C math library loaded with ctypes, made
   differentiable by registering its derivative;
2. `no_derivative` stopping a derivative without a zero-derivative warning;
3. `with_derivative` hooks that observe one cotangent and rewrite another.

Run it with `python samples/custom_derivatives.py`.
"""

import ctypes
import ctypes.util
import math
import sys
import warnings

import pullback
from pullback import derivative_of, gradient, no_derivative, with_derivative


def load_c_exp():
    """Return `exp` from the C math library, or None where it cannot be loaded."""
    library_name = ctypes.util.find_library("m")
    candidates = [library_name] if library_name else []
    candidates += ["libm.so.6", "libm.dylib", "msvcrt"]
    for candidate in candidates:
        try:
            library = ctypes.CDLL(candidate)
            c_exp = library.exp
        except (OSError, AttributeError):
            continue
        c_exp.restype = ctypes.c_double
        c_exp.argtypes = [ctypes.c_double]
        return c_exp
    return None


c_exp = load_c_exp() or math.exp


def silly_exp(x):
    e = math.e
    print(f"Taking e({e}) to the power of {x}!")
    return c_exp(x)


# silly_exp calls a C function, which has no Python source to differentiate,
# so it gets a registered derivative: d/dx exp(x) = exp(x).
@derivative_of(silly_exp)
def silly_derivative(x):
    y = silly_exp(x)
    return y, lambda v: v * y


def stopped(x, y):
    return math.sin(math.sin(math.sin(x))) + no_derivative(math.cos(math.cos(math.cos(y))))


def surgery(x):
    # Print the cotangent with respect to the result of sin(x).
    a = with_derivative(math.sin(x), lambda g: print(f"d+/dsin = {g}"))
    # Force the cotangent with respect to x, in log(x), to be 0.5.
    b = math.log(with_derivative(x, rewrite_log_cotangent))
    return a + b


def rewrite_log_cotangent(g):
    print(f"dlog/dx = {g}, but rewritten to 0.5")
    return 0.5


def main() -> int:
    print("exp(3) =", silly_exp(3.0))
    print("grad exp(3) =", gradient(silly_exp)(3.0))

    with warnings.catch_warnings():
        # A derivative stopped on purpose is no mistake: no warning fires.
        warnings.simplefilter("error", pullback.ZeroDerivativeWarning)
        print(gradient(stopped)(2.0, 3.0))

    print(gradient(surgery)(30.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
