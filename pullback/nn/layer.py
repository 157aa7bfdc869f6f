"""The `Layer` base class, activation discarding and `sequenced`."""

from __future__ import annotations

from pullback import checkpointed, value_and_pullback


class Layer:
    """Base class of layers and models differentiated through `__call__`.

    A model subclasses `Layer`, assigns its layers and parameters as
    attributes in its own `__init__` (no base initializer needs calling),
    and defines `__call__(self, x)`. pullback compiles `__call__` with
    `self` as a differentiable parameter, so the gradient of a loss with
    respect to the model is an `ObjectTangent` with one field per layer or
    parameter::

        class MLP(nn.Layer):
            def __init__(self, rng):
                self.hidden = nn.Dense(2, 10, nn.relu, rng=rng)
                self.output = nn.Dense(10, 1, rng=rng)

            def __call__(self, x):
                return self.output(self.hidden(x))

        def loss(model):
            return nn.mean_squared_error(model(x), y)

        gradient = pullback.gradient(loss)(model)   # gradient.hidden.weight, ...

    Dataclasses work as well: decorate the subclass with `@dataclass` and
    declare the layers as fields. Attributes listed in the class attribute
    `__no_derivative_fields__` have no derivative, like Swift's
    `@noDerivative`.
    """

    def applied_for_backpropagation(self, x):
        """Return `(self(x), pullback)`, where `pullback(y_bar)` returns
        `(model_tangent, x_bar)`."""
        return value_and_pullback(_apply, self, x)

    def discarding_activations(self) -> ActivationDiscarding:
        """Return this layer wrapped so that its pullback recomputes its activations.

        The wrapper keeps only its input in the forward pass and runs the
        layer again when the pullback runs, trading compute for memory. The
        layer must be deterministic for a given input: a recomputation that
        returns a different value raises `RecomputationError`.
        """
        return ActivationDiscarding(self)

    def set_training(self, training: bool) -> None:
        """Set the `training` flag of this layer and of every layer inside it.

        Layers such as `Dropout` behave differently when training.
        """
        for layer in _layers_within(self):
            if hasattr(layer, "training"):
                layer.training = training


def _apply(layer, x):
    return layer(x)


_apply_recomputed = checkpointed(_apply)


class ActivationDiscarding(Layer):
    """A layer whose activations are recomputed in the pullback, not kept.

    Made by `layer.discarding_activations()`; the layer is the `wrapped`
    attribute, so the tangent has a `wrapped` field holding the layer's
    tangent.
    """

    def __init__(self, wrapped):
        self.wrapped = wrapped

    def __call__(self, x):
        return _apply_recomputed(self.wrapped, x)

    def __repr__(self) -> str:
        return f"{self.wrapped!r}.discarding_activations()"


def _layers_within(root):
    """Yield `root` and every Layer reachable through attributes and containers."""
    seen = set()
    pending = [root]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, Layer):
            yield value
            pending.extend(vars(value).values() if hasattr(value, "__dict__") else ())


def sequenced(x, *layers):
    """Return `x` passed through the layers in order: `layers[1](layers[0](x))`, ...

    This is Swift's `sequenced(through:)` for any number of layers, at least
    one. The gradient with respect to the layers is a tuple with one
    tangent per layer::

        def __call__(self, x):
            return nn.sequenced(x, self.conv, self.pool, self.flatten, self.dense)
    """
    if not layers:
        raise ValueError(
            "sequenced needs at least one layer: pass them after the input, as "
            "in sequenced(x, dense1, dense2)"
        )
    # The first call sits outside the loop because a loop body is compiled
    # once for every iteration. Inside it, the first layer would compute the
    # cotangent of `x` even when the caller differentiates with respect to
    # the layers alone and never reads it, as for a model's input images.
    x = layers[0](x)
    for index in range(1, len(layers)):
        x = layers[index](x)
    return x
