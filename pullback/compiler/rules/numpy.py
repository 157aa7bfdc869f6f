"""Derivative rules for NumPy."""

import numpy as np

from pullback.compiler.rules.core import CONSTANT, defrule, nondifferentiable, ufunc

ufunc(np.sin,  x="g * np.cos(x)")
ufunc(np.cos,  x="-g * np.sin(x)")
ufunc(np.exp,  x="g * ans")
ufunc(np.log,  x="g / x")
ufunc(np.tanh, x="g * (1 - ans * ans)")
ufunc(np.add,      x1="g", x2="g")
ufunc(np.multiply, x1="g * x2", x2="g * x1")
ufunc(np.maximum,  x1="g * (x1 >= x2)", x2="g * (x1 < x2)")

defrule(np.sum, "a, axis=None, dtype=None, out=None, keepdims=False",
        a="rt.unreduce(g, a, axis, keepdims)")
defrule(np.mean, "a, axis=None, dtype=None, out=None, keepdims=False",
        a="rt.unreduce(g, a, axis, keepdims) / rt.reduced_count(a, axis)")

nondifferentiable(np.zeros_like, np.ones_like, np.shape, np.ndim, np.size,
                  kind=CONSTANT)
nondifferentiable(np.floor, np.ceil, np.sign, np.argmax, np.argmin)
