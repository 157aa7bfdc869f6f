"""Check gradients with respect to models against central finite differences.

A model's parameters are named by attribute paths such as
("layer1", "weight"). The check draws a random direction for each, moves
the parameters with plain `setattr` on deep copies of the model, and
compares the directional derivative with the inner product of the gradient
and the direction, all in float64.
"""

from __future__ import annotations

import copy

import numpy as np

import pullback


def get_path(value, path):
    for name in path:
        value = value[name] if isinstance(name, int) else getattr(value, name)
    return value


def set_path(value, path, new):
    owner = get_path(value, path[:-1])
    if isinstance(path[-1], int):
        owner[path[-1]] = new
    else:
        setattr(owner, path[-1], new)


def moved_copy(model, directions: dict, scale: float):
    """Return a deep copy of `model` with each path moved by `scale * direction`."""
    other = copy.deepcopy(model)
    for path, direction in directions.items():
        set_path(other, path, get_path(model, path) + scale * direction)
    return other


def random_directions(model, paths, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {path: rng.standard_normal(np.shape(get_path(model, path))) for path in paths}


def check_model_gradient(loss, model, *args, paths, eps=1e-6, rtol=1e-6, atol=1e-9, seed=0):
    """Assert that `pullback.gradient(loss, wrt=0)(model, *args)` matches
    central differences along a random direction in the parameters at `paths`.

    Returns the gradient.
    """
    gradient = pullback.gradient(loss, wrt=0)(model, *args)
    directions = random_directions(model, paths, seed)
    for path in paths:
        assert np.shape(get_path(gradient, path)) == np.shape(get_path(model, path)), (
            f"gradient at {path} has shape {np.shape(get_path(gradient, path))}"
        )
    plus = loss(moved_copy(model, directions, eps), *args)
    minus = loss(moved_copy(model, directions, -eps), *args)
    forward = (float(plus) - float(minus)) / (2 * eps)
    backward = sum(
        float(np.sum(np.asarray(get_path(gradient, path), dtype=np.float64) * direction))
        for path, direction in directions.items()
    )
    tolerance = atol + rtol * max(abs(forward), abs(backward))
    assert abs(forward - backward) <= tolerance, (
        f"<gradient, v> = {backward!r} but finite differences give {forward!r} "
        f"(difference {abs(forward - backward):.3g}, tolerance {tolerance:.3g})"
    )
    return gradient


def check_input_gradient(loss, model, x, *, eps=1e-6, rtol=1e-6, atol=1e-9, seed=1):
    """Assert that the gradient of `loss(model, x)` in `x` matches central differences."""
    x_bar = pullback.gradient(loss, wrt=1)(model, x)
    assert np.shape(x_bar) == np.shape(x)
    assert x_bar.dtype == x.dtype
    direction = np.random.default_rng(seed).standard_normal(x.shape)
    forward = (float(loss(model, x + eps * direction)) - float(loss(model, x - eps * direction))) / (2 * eps)
    backward = float(np.sum(x_bar * direction))
    tolerance = atol + rtol * max(abs(forward), abs(backward))
    assert abs(forward - backward) <= tolerance, (
        f"<x_bar, v> = {backward!r} but finite differences give {forward!r}"
    )
    return x_bar
