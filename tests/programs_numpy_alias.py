"""Functions that import NumPy as `xp` while `np` names a float.

Generated code that assumed `np` is NumPy would multiply by 2.0 or fail, so
these check that pullback reaches NumPy through the user's own alias or its
runtime, never through a guessed name.
"""

import math as m

import numpy as xp

np = 2.0
math = "not the math module"


def tanh_of_cos(x):
    return xp.sum(xp.tanh(xp.cos(x)) * np)


def scalar_math(x):
    return m.sin(x) * m.exp(x) + m.cos(x)
