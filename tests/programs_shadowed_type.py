"""Programs in a module whose globals shadow or lose names generated code uses."""

import numpy as np

type = "relu"


def scaled_sum(x):
    return np.sum(x * x * 2.0)


def bilinear(w, b, x, u, v):
    return u @ (x @ w + b) @ v
