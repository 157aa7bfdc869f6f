"""Functions that import NumPy as `xp` and math as `m`, while `np` names a
float and `math` a string.

Generated code that assumed `np` is NumPy or `math` is the math module would
compute the wrong value or fail, so these check that pullback reaches both
modules through the user's own aliases or its runtime, never through a guessed
name.
"""

import math as m

import numpy as xp

np = 2.0
math = "not the math module"


def tanh_of_cos(x):
    return xp.sum(xp.tanh(xp.cos(x)) * np)


def scalar_math(x):
    return m.sin(x) * m.exp(x) + m.cos(x)
