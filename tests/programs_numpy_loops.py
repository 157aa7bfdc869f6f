"""Loops in functions that import NumPy under its own name, with no `np` in scope.

pullback reads source from files, so these live in a module of their own.
"""

import numpy


def rows_through_tanh(w, x):
    total = 0.0
    for i in range(numpy.shape(x)[0]):
        total = total + numpy.sum(numpy.tanh(x[i] * w))
    return total


def grow_until_norm(x):
    while numpy.sum(x * x) < 30.0:
        x = x * 1.5 + numpy.sin(x)
    return numpy.sum(x)


def rows_of_array(x):
    total = 0.0
    for row in x:
        total = total + numpy.exp(numpy.sum(row) * 0.1)
    return total
