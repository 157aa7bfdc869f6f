"""A program in a module whose global `type` shadows the builtin, as a setting may."""

import numpy as np

type = "relu"


def scaled_sum(x):
    return np.sum(x * x * 2.0)
