"""Optimizers that move a model along the negative gradient, in place."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import NamedTuple

import numpy as np

from pullback.runtime.objects import ObjectTangent, primal_of
from pullback.runtime.tangents import (
    add,
    differentiable_fields,
    move,
    no_derivative_fields,
    scale,
)


class SGD:
    """Stochastic gradient descent: `model -= learning_rate * gradient`.

    `model` is the model to optimize, as in Swift's `SGD(for: model)`;
    plain gradient descent keeps no state for it.
    """

    def __init__(self, model, learning_rate: float = 0.01):
        self.learning_rate = learning_rate

    def update(self, model, along) -> None:
        """Move `model` in place against the gradient `along`.

        A parameter reached through several paths moves by the sum of its
        gradients. Raises ValueError or TypeError when `along` is not a
        gradient of `model`.
        """
        check_gradient(model, along)
        move(model, by=scale(along, -self.learning_rate))


class Adam:
    """Adam (Kingma and Ba, 2015, Algorithm 1), moving the model in place.

    At step t, for each parameter p with gradient g::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p -= learning_rate * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + epsilon)

    This is also the update of `torch.optim.Adam` without weight decay. The
    moments start at zero for every differentiable parameter of `model`.

    A parameter reached through several paths, such as a layer assigned to
    two attributes or an array shared by two layers, is one parameter. It
    gets one pair of moments and one step per update, along the sum of its
    gradients over every path, as in `torch.optim.Adam`. Moments are keyed
    by the first path that reaches each parameter, so `update` accepts a
    copy of the model with the same structure and rejects any other.
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
        for parameter in distinct_parameters(model):
            self.first_moments[parameter.path] = _zero_moment(parameter.value)
            self.second_moments[parameter.path] = _zero_moment(parameter.value)

    def update(self, model, along) -> None:
        """Move `model` in place by one Adam step along the gradient `along`.

        Raises ValueError or TypeError when `along` is not a gradient of
        `model`, or `model` does not have the parameters this optimizer was
        created for.
        """
        parameters = distinct_parameters(model, along)
        self._check_parameters(parameters)
        self.step += 1
        step_size = -self.learning_rate / (1 - self.beta1**self.step)
        second_scale = 1 / math.sqrt(1 - self.beta2**self.step)
        steps = {}
        for parameter in parameters:
            first = self.first_moments[parameter.path]
            second = self.second_moments[parameter.path]
            gradient = 0.0 if parameter.gradient is None else parameter.gradient
            if isinstance(first, np.ndarray):
                step = self._array_step(parameter.value, gradient, first, second, step_size,
                                        second_scale)
                if step is None:
                    continue
            else:
                first = self.beta1 * first + (1 - self.beta1) * gradient
                second = self.beta2 * second + (1 - self.beta2) * gradient * gradient
                self.first_moments[parameter.path] = first
                self.second_moments[parameter.path] = second
                step = step_size * first / (math.sqrt(second) * second_scale + self.epsilon)
            # A value that cannot change in place is replaced once in each
            # attribute, item or key that contains it.
            for path in parameter.places.values():
                steps[path] = step
        if steps:
            move(model, by=tangent_from_leaves(model, steps))

    def _check_parameters(self, parameters) -> None:
        """Raise ValueError unless `parameters` are the ones this optimizer has moments for."""
        for parameter in parameters:
            first = self.first_moments.get(parameter.path)
            if first is None or np.shape(first) != np.shape(parameter.value):
                raise ValueError(
                    f"the parameter {_path_name(parameter.path)} of shape "
                    f"{np.shape(parameter.value)} is not one this Adam optimizer was "
                    "created for; update the model the optimizer was created for, and "
                    "create the optimizer after the model is built"
                )
        paths = {parameter.path for parameter in parameters}
        for path in self.first_moments:
            if path not in paths:
                raise ValueError(
                    f"this Adam optimizer was created for a model with the parameter "
                    f"{_path_name(path)}, which the model to update does not have; "
                    "update the model the optimizer was created for, or create a new "
                    "optimizer for this model"
                )

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


@dataclasses.dataclass
class Parameter:
    """A parameter of a model and its gradient summed over every path that reaches it."""

    value: object
    # The first path that reaches the parameter, which keys optimizer state.
    path: tuple
    # None where no path has a gradient (a symbolic zero).
    gradient: object
    # One path per attribute, item or key that contains the parameter, by place.
    places: dict


def distinct_parameters(model, gradient=None) -> list[Parameter]:
    """Return each parameter of `model` once, with its total gradient in `gradient`.

    Arrays are compared by identity, so an array shared by two layers is
    one parameter. A float is one parameter per attribute, item or key that
    contains it, so a float attribute of a layer reached through two paths
    is one parameter too.

    NOTE: two different arrays that view one buffer are two parameters,
    and each moves the shared memory.
    """
    parameters = {}
    for leaf in parameter_leaves(model, gradient):
        if leaf.identity is None:
            raise TypeError(
                f"{type(leaf.parameter).__name__} defines its own tangent space, which "
                "this optimizer cannot update parameter by parameter; update it with "
                "pullback.move"
            )
        parameter = parameters.get(leaf.identity)
        if parameter is None:
            parameters[leaf.identity] = Parameter(leaf.parameter, leaf.path, leaf.gradient,
                                                  {leaf.place: leaf.path})
        else:
            parameter.gradient = add(parameter.gradient, leaf.gradient)
            parameter.places.setdefault(leaf.place, leaf.path)
    return list(parameters.values())


class Leaf(NamedTuple):
    """A floating leaf of a model, reached through one path."""

    # The attribute names, indices and keys that lead to the leaf.
    path: tuple
    parameter: object
    # The gradient's part at `path`; None is a symbolic zero.
    gradient: object
    # Equal for every path to one parameter: the array's id, or else the
    # place. None for an object with its own tangent space.
    identity: object
    # The id of the nearest object, list or dict that contains the leaf,
    # followed by the path from there: two paths with one place reach one
    # attribute, item or key.
    place: tuple


def parameter_leaves(model, gradient=None, path=(), place=(None,)):
    """Yield a `Leaf` for each floating leaf of `model`, reached through each path.

    Leaves are floats and floating arrays, reached through attributes,
    tuples, lists and dicts. An object whose class defines its own tangent
    space is yielded whole, with identity None. A leaf reached through
    several paths is yielded once per path.

    Raises TypeError or ValueError where `gradient` is not a gradient of
    `model`: a part of another type or shape than its parameter, a field
    the model does not have, or a tangent made for another object.
    """
    if isinstance(model, np.ndarray | np.generic | float | complex) and not isinstance(
        model, bool
    ):
        if np.result_type(model).kind in "fc":
            _check_leaf_gradient(model, gradient, path)
            identity = id(model) if isinstance(model, np.ndarray) else place
            yield Leaf(path, model, gradient, identity, place)
        return
    if isinstance(model, tuple | list):
        _check_sequence_gradient(model, gradient, path)
        for index, item in enumerate(model):
            part = None if gradient is None else gradient[index]
            # A tuple cannot change, so its items are replaced through its holder.
            inner = (*place, index) if isinstance(model, tuple) else (id(model), index)
            yield from parameter_leaves(item, part, (*path, index), inner)
        return
    if isinstance(model, dict):
        _check_dict_gradient(model, gradient, path)
        for key, item in model.items():
            part = None if gradient is None else gradient.get(key)
            yield from parameter_leaves(item, part, (*path, key), (id(model), key))
        return
    if hasattr(type(model), "__tangent_move__"):
        yield Leaf(path, model, gradient, None, place)
        return
    fields = differentiable_fields(model)
    if not fields:
        return
    stored = _check_object_gradient(model, fields.__contains__, gradient, path)
    for name, item in fields.items():
        yield from parameter_leaves(item, stored.get(name), (*path, name), (id(model), name))


def check_gradient(model, gradient, path=()) -> None:
    """Raise TypeError or ValueError where `gradient` is not a gradient of `model`.

    Checks the same as `parameter_leaves`, but visits only the parts that
    `gradient` stores, so a sparse gradient costs little.
    """
    if gradient is None:
        return
    if isinstance(model, np.ndarray | np.generic | float | complex) and not isinstance(
        model, bool
    ):
        if np.result_type(model).kind in "fc":
            _check_leaf_gradient(model, gradient, path)
        return
    if isinstance(model, tuple | list):
        _check_sequence_gradient(model, gradient, path)
        for index, (item, part) in enumerate(zip(model, gradient, strict=True)):
            check_gradient(item, part, (*path, index))
        return
    if isinstance(model, dict):
        _check_dict_gradient(model, gradient, path)
        for key, part in gradient.items():
            if part is not None:
                check_gradient(model[key], part, (*path, key))
        return
    if hasattr(type(model), "__tangent_move__"):
        return
    skipped = no_derivative_fields(type(model))
    stored = _check_object_gradient(
        model, lambda name: hasattr(model, name) and name not in skipped, gradient, path)
    for name, part in stored.items():
        check_gradient(getattr(model, name), part, (*path, name))


def _check_leaf_gradient(parameter, gradient, path) -> None:
    if gradient is None:
        return
    if not isinstance(gradient, numbers.Number | np.ndarray | np.generic):
        raise TypeError(
            f"the gradient at {_path_name(path)} is a {type(gradient).__name__}, but "
            f"the parameter there is {_describe(parameter)}; pass the gradient of "
            "the model being updated"
        )
    if np.shape(gradient) != np.shape(parameter):
        raise ValueError(
            f"the gradient at {_path_name(path)} has shape {np.shape(gradient)}, but "
            f"the parameter there has shape {np.shape(parameter)}; pass the gradient "
            "of the model being updated"
        )


def _check_sequence_gradient(model, gradient, path) -> None:
    if gradient is None:
        return
    if not isinstance(gradient, tuple | list) or len(gradient) != len(model):
        raise TypeError(
            f"the gradient at {_path_name(path)} is {_describe(gradient)}, but the "
            f"{type(model).__name__} there has {_items(len(model))}, so its gradient "
            f"is a sequence of {_items(len(model))}"
        )


def _check_dict_gradient(model, gradient, path) -> None:
    if gradient is None:
        return
    if not isinstance(gradient, dict):
        raise TypeError(
            f"the gradient at {_path_name(path)} is {_describe(gradient)}, but the "
            "value there is a dict, so its gradient is a dict"
        )
    unknown = [key for key, part in gradient.items() if part is not None and key not in model]
    if unknown:
        raise ValueError(
            f"the gradient at {_path_name(path)} has the key {unknown[0]!r}, which "
            f"the dict there does not have; its keys are {list(model)}"
        )


def _check_object_gradient(model, is_field, gradient, path) -> dict:
    """Return the stored fields of `gradient`, the tangent of the object `model`.

    `is_field(name)` returns whether `name` is a differentiable attribute of `model`.
    """
    if gradient is None:
        return {}
    kind = type(model).__name__
    if not isinstance(gradient, ObjectTangent):
        raise TypeError(
            f"the gradient of the {kind} at {_path_name(path)} is "
            f"{_describe(gradient)}, not an ObjectTangent; pass the gradient of "
            "the model being updated, such as pullback.gradient(loss)(model)"
        )
    primal = primal_of(gradient)
    if primal is not None and primal is not model:
        raise ValueError(
            f"the gradient at {_path_name(path)} was computed for a different "
            f"{type(primal).__name__} object than the {kind} being updated there; "
            "pass the gradient of the model being updated, or use pullback.move to "
            "move one model along another model's gradient"
        )
    stored = gradient.stored_fields()
    unknown = [name for name, part in stored.items() if part is not None and not is_field(name)]
    if unknown:
        fields = sorted(differentiable_fields(model))
        raise ValueError(
            f"the gradient at {_path_name(path)} has the field {unknown[0]!r}, which "
            f"is not a differentiable attribute of the {kind} there; its "
            f"differentiable attributes are {fields}"
        )
    return stored


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {_items(len(value))}"
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


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
