"""Optimizers that move a model along the negative gradient, in place."""

from __future__ import annotations

import math

import numpy as np

from pullback.runtime.objects import ObjectTangent
from pullback.runtime.tangents import differentiable_fields, move, scale


class SGD:
    """Stochastic gradient descent: `model -= learning_rate * gradient`.

    `model` is the model to optimize, as in Swift's `SGD(for: model)`;
    plain gradient descent keeps no state for it.
    """

    def __init__(self, model, learning_rate: float = 0.01):
        self.learning_rate = learning_rate

    def update(self, model, along) -> None:
        """Move `model` in place against the gradient `along`."""
        move(model, by=scale(along, -self.learning_rate))


class Adam:
    """Adam (Kingma and Ba, 2015, Algorithm 1), moving the model in place.

    At step t, for each parameter p with gradient g::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p -= learning_rate * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon)

    This is also the update of `torch.optim.Adam` without weight decay. The
    moments start at zero for every differentiable parameter of `model`.
    """

    def __init__(self, model, learning_rate: float = 1e-3, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8):
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.step = 0
        self.first_moments = {}
        self.second_moments = {}
        for path, parameter, _ in parameter_leaves(model):
            self.first_moments[path] = _zero_moment(parameter)
            self.second_moments[path] = _zero_moment(parameter)

    def update(self, model, along) -> None:
        """Move `model` in place by one Adam step along the gradient `along`."""
        self.step += 1
        step_size = -self.learning_rate / (1 - self.beta1**self.step)
        second_scale = 1 / math.sqrt(1 - self.beta2**self.step)
        steps = {}
        for path, parameter, gradient in parameter_leaves(model, along):
            first = self.first_moments.get(path)
            if first is None or np.shape(first) != np.shape(parameter):
                raise ValueError(
                    f"the parameter {_path_name(path)} of shape {np.shape(parameter)} "
                    "is not one this Adam optimizer was created for; create the "
                    "optimizer after the model is built"
                )
            second = self.second_moments[path]
            if gradient is None:
                gradient = 0.0
            if isinstance(first, np.ndarray):
                step = self._array_step(parameter, gradient, first, second, step_size,
                                        second_scale)
                if step is None:
                    continue
            else:
                first = self.beta1 * first + (1 - self.beta1) * gradient
                second = self.beta2 * second + (1 - self.beta2) * gradient * gradient
                self.first_moments[path] = first
                self.second_moments[path] = second
                step = step_size * first / (math.sqrt(second) * second_scale + self.epsilon)
            steps[path] = step
        if steps:
            move(model, by=tangent_from_leaves(model, steps))

    def _array_step(self, parameter, gradient, first, second, step_size, second_scale):
        """Update the moments of an array parameter in place and apply its step.

        Returns None once a writable parameter has moved in place, else the
        step for `move` to apply.
        """
        first *= self.beta1
        first += (1 - self.beta1) * gradient
        second *= self.beta2
        second += (1 - self.beta2) * np.square(gradient)
        step = np.sqrt(second)
        step *= second_scale
        step += self.epsilon
        np.divide(first, step, out=step)
        step *= step_size
        if isinstance(parameter, np.ndarray) and parameter.flags.writeable:
            np.add(parameter, step, out=parameter, casting="same_kind")
            return None
        return step


def _zero_moment(parameter):
    if isinstance(parameter, np.ndarray):
        return np.zeros_like(parameter)
    return parameter * 0


def parameter_leaves(model, gradient=None, path=()):
    """Yield (path, parameter, gradient) for each floating leaf of `model`.

    Leaves are floats and floating arrays, reached through attributes,
    tuples, lists and dicts. `path` is the tuple of attribute names, indices
    and keys that leads to one. The gradient leaf is None where `gradient`
    has no contribution (a symbolic zero).
    """
    if isinstance(model, np.ndarray | np.generic | float | complex) and not isinstance(
        model, bool
    ):
        if np.result_type(model).kind in "fc":
            yield path, model, gradient
        return
    if isinstance(model, tuple | list):
        for index, item in enumerate(model):
            part = None if gradient is None else gradient[index]
            yield from parameter_leaves(item, part, (*path, index))
        return
    if isinstance(model, dict):
        for key, item in model.items():
            part = None if gradient is None else gradient.get(key)
            yield from parameter_leaves(item, part, (*path, key))
        return
    if hasattr(type(model), "__tangent_move__"):
        raise TypeError(
            f"{type(model).__name__} defines its own tangent space, which this "
            "optimizer cannot update parameter by parameter; update it with "
            "pullback.move"
        )
    if gradient is not None and not isinstance(gradient, ObjectTangent):
        raise TypeError(
            f"the gradient of the {type(model).__name__} at {_path_name(path)} "
            f"is a {type(gradient).__name__}, not an ObjectTangent"
        )
    stored = {} if gradient is None else gradient.stored_fields()
    for name, item in differentiable_fields(model).items():
        yield from parameter_leaves(item, stored.get(name), (*path, name))


def tangent_from_leaves(model, leaves: dict, path=()):
    """Return a tangent of `model` holding `leaves[path]` at each leaf path, zero elsewhere."""
    if isinstance(model, np.ndarray | np.generic | float | complex):
        return leaves.get(path)
    if isinstance(model, tuple | list):
        parts = [tangent_from_leaves(item, leaves, (*path, index))
                 for index, item in enumerate(model)]
        return type(model)(parts) if isinstance(model, tuple) else parts
    if isinstance(model, dict):
        return {key: tangent_from_leaves(item, leaves, (*path, key))
                for key, item in model.items()}
    fields = {}
    for name, item in differentiable_fields(model).items():
        part = tangent_from_leaves(item, leaves, (*path, name))
        if part is not None:
            fields[name] = part
    return ObjectTangent.of(model, fields)


def _path_name(path) -> str:
    return "model" + "".join(f".{p}" if isinstance(p, str) else f"[{p!r}]" for p in path)
