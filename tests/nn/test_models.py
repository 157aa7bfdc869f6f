"""Gradients with respect to whole models: `Layer` subclasses, dataclasses,
lists of layers, hooks inside `__call__`, activation discarding and
`sequenced`, all against central finite differences in float64."""

import dataclasses

import numpy as np
import pytest
from model_check import check_input_gradient, check_model_gradient, get_path

import pullback
from pullback import nn

rng = np.random.default_rng(5)
x_data = rng.standard_normal((6, 3))
y_data = rng.standard_normal((6, 2))


class TwoLayer(nn.Layer):
    def __init__(self, seed=0):
        self.hidden = nn.Dense(3, 4, nn.tanh, rng=seed, dtype=np.float64)
        self.output = nn.Dense(4, 2, rng=seed + 1, dtype=np.float64)
        self.temperature = 1.3
        self.unused = nn.Dense(2, 2, rng=seed + 2, dtype=np.float64)
        self.depth = 2

    def __call__(self, x):
        return self.output(self.hidden(x)) * self.temperature


@dataclasses.dataclass
class DataclassModel(nn.Layer):
    hidden: nn.Dense
    output: nn.Dense
    shift: np.ndarray

    def __call__(self, x):
        return self.output(nn.relu(self.hidden(x) + self.shift))


class Stack(nn.Layer):
    def __init__(self):
        self.layers = [nn.Dense(3, 5, nn.sigmoid, rng=1, dtype=np.float64),
                       nn.Dense(5, 5, nn.tanh, rng=2, dtype=np.float64),
                       nn.Dense(5, 2, rng=3, dtype=np.float64)]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Sequenced(nn.Layer):
    def __init__(self, discard=False):
        conv = nn.Conv2D((3, 3, 2, 3), padding="same", activation=nn.relu, rng=4,
                         dtype=np.float64)
        self.conv = conv.discarding_activations() if discard else conv
        self.pool = nn.MaxPool2D(2, 2)
        self.flatten = nn.Flatten()
        self.dense = nn.Dense(2 * 2 * 3, 2, rng=5, dtype=np.float64)

    def __call__(self, x):
        return nn.sequenced(x, self.conv, self.pool, self.flatten, self.dense)


def squared_error(model):
    return nn.mean_squared_error(model(x_data), y_data)


def dense_paths(*prefix):
    return [(*prefix, "weight"), (*prefix, "bias")]


def test_layer_model_gradient():
    model = TwoLayer()
    model.hidden.bias = rng.standard_normal(4)
    gradient = check_model_gradient(
        squared_error, model,
        paths=[*dense_paths("hidden"), *dense_paths("output"), ("temperature",)],
    )
    assert isinstance(gradient.temperature, float)


def test_unread_fields_have_zero_gradient():
    gradient = pullback.gradient(squared_error)(TwoLayer())
    assert sorted(gradient) == ["hidden", "output", "temperature", "unused"]
    assert gradient.unused.weight.shape == (2, 2)
    assert not gradient.unused.weight.any()
    assert not gradient.unused.bias.any()


def test_dataclass_model_gradient():
    model = DataclassModel(nn.Dense(3, 4, rng=0, dtype=np.float64),
                           nn.Dense(4, 2, rng=1, dtype=np.float64),
                           shift=rng.standard_normal(4))
    gradient = check_model_gradient(
        squared_error, model, paths=[*dense_paths("hidden"), *dense_paths("output"), ("shift",)]
    )
    assert sorted(gradient) == ["hidden", "output", "shift"]


def test_list_of_layers_gradient():
    model = Stack()
    paths = [path for i in range(3) for path in dense_paths("layers", i)]
    check_model_gradient(squared_error, model, paths=paths)


def model_and_input_loss(model, x):
    return np.sum(np.sin(model(x)))


def test_gradient_in_model_and_input():
    model = TwoLayer()
    model_bar, x_bar = pullback.gradient(model_and_input_loss)(model, x_data)
    assert x_bar.shape == x_data.shape
    direction = rng.standard_normal(x_data.shape)
    eps = 1e-6
    forward = (model_and_input_loss(model, x_data + eps * direction)
               - model_and_input_loss(model, x_data - eps * direction)) / (2 * eps)
    assert np.sum(x_bar * direction) == pytest.approx(forward, rel=1e-6)
    check_model_gradient(model_and_input_loss, model, x_data, paths=dense_paths("output"))


# Hooks inside __call__.

observed = []


def record_cotangent(cotangent):
    observed.append(np.array(cotangent))


def zero_cotangent(cotangent):
    return np.zeros_like(cotangent)


class Hooked(nn.Layer):
    def __init__(self, hook):
        self.hidden = nn.Dense(3, 4, nn.tanh, rng=0, dtype=np.float64)
        self.output = nn.Dense(4, 2, rng=1, dtype=np.float64)
        self.hook = hook

    def __call__(self, x):
        h = pullback.with_derivative(self.hidden(x), self.hook)
        return self.output(h)


def loss_after_hidden(h, model):
    return nn.mean_squared_error(model.output(h), y_data)


def test_hook_in_call_sees_hidden_cotangent():
    model = Hooked(record_cotangent)
    observed.clear()
    pullback.gradient(squared_error)(model)
    assert len(observed) == 1
    h = model.hidden(x_data)
    direction = rng.standard_normal(h.shape)
    eps = 1e-6
    forward = (loss_after_hidden(h + eps * direction, model)
               - loss_after_hidden(h - eps * direction, model)) / (2 * eps)
    assert np.sum(observed[0] * direction) == pytest.approx(forward, rel=1e-6)


def test_hook_in_call_replaces_cotangent():
    gradient = pullback.gradient(squared_error)(Hooked(zero_cotangent))
    assert not gradient.hidden.weight.any()
    assert not gradient.hidden.bias.any()
    assert gradient.output.weight.any()
    check_model_gradient(squared_error, Hooked(record_cotangent), paths=dense_paths("output"))


# Activation discarding, backpropagation functions and sequenced.

applications = []


@pullback.no_derivative
def count_application(layer):
    applications.append(type(layer).__name__)


class Counted(nn.Layer):
    def __init__(self, wrapped):
        self.wrapped = wrapped

    def __call__(self, x):
        count_application(self.wrapped)
        return self.wrapped(x)


images = rng.standard_normal((3, 4, 4, 2))
image_targets = rng.standard_normal((3, 2))


def image_loss(model):
    return nn.mean_squared_error(model(images), image_targets)


def conv_paths(conv):
    return [(*conv, "filter"), (*conv, "bias"), *dense_paths("dense")]


def test_sequenced_gradient():
    check_model_gradient(image_loss, Sequenced(), paths=conv_paths(("conv",)))


def test_sequenced_matches_nested_calls():
    model = Sequenced()
    nested = model.dense(model.flatten(model.pool(model.conv(images))))
    np.testing.assert_array_equal(model(images), nested)


def test_discarding_activations_gradient():
    model = Sequenced(discard=True)
    assert isinstance(model.conv, nn.ActivationDiscarding)
    check_model_gradient(image_loss, model, paths=conv_paths(("conv", "wrapped")))


def test_discarding_activations_recomputes_once():
    model = Sequenced(discard=True)
    model.conv.wrapped = Counted(model.conv.wrapped)
    applications.clear()
    gradient = pullback.gradient(image_loss)(model)
    assert applications == ["Conv2D", "Conv2D"]
    plain = Sequenced()
    plain_gradient = pullback.gradient(image_loss)(plain)
    np.testing.assert_allclose(gradient.conv.wrapped.wrapped.filter,
                               plain_gradient.conv.filter, rtol=1e-12)


def test_applied_for_backpropagation():
    model = TwoLayer()
    value, backprop = model.applied_for_backpropagation(x_data)
    np.testing.assert_array_equal(value, model(x_data))
    cotangent = rng.standard_normal(value.shape)
    model_bar, x_bar = backprop(cotangent)
    direction = rng.standard_normal(x_data.shape)
    weight_direction = rng.standard_normal(model.hidden.weight.shape)
    eps = 1e-6

    def probe(scale):
        other = TwoLayer()
        other.hidden.weight = model.hidden.weight + scale * weight_direction
        return np.sum(other(x_data + scale * direction) * cotangent)

    forward = (probe(eps) - probe(-eps)) / (2 * eps)
    backward = np.sum(x_bar * direction) + np.sum(model_bar.hidden.weight * weight_direction)
    assert backward == pytest.approx(forward, rel=1e-6)


def test_set_training_reaches_nested_layers():
    class WithDropout(nn.Layer):
        def __init__(self):
            self.blocks = [nn.Dropout(0.5, np.random.default_rng(0))]
            self.dense = nn.Dense(2, 2, rng=0)

    model = WithDropout()
    model.set_training(False)
    assert model.blocks[0].training is False
    model.set_training(True)
    assert model.blocks[0].training is True


def test_sgd_on_model_reduces_loss():
    model = TwoLayer()
    optimizer = nn.SGD(model, learning_rate=0.1)
    first = squared_error(model)
    for _ in range(20):
        optimizer.update(model, along=pullback.gradient(squared_error)(model))
    assert squared_error(model) < 0.9 * first


def test_adam_on_model_moves_every_parameter():
    model = TwoLayer()
    optimizer = nn.Adam(model, learning_rate=0.01)
    unused = model.unused.weight.copy()
    hidden = model.hidden.weight.copy()
    optimizer.update(model, along=pullback.gradient(squared_error)(model))
    assert not np.array_equal(model.hidden.weight, hidden)
    # A parameter whose gradient is zero does not move.
    np.testing.assert_array_equal(model.unused.weight, unused)


global_model = TwoLayer()


def global_model_loss(x):
    return np.sum(global_model(x))


def test_model_held_in_global_variable():
    x_bar = pullback.gradient(global_model_loss)(x_data)
    assert x_bar.shape == x_data.shape


def test_path_helper_reads_tangents():
    gradient = pullback.gradient(squared_error)(TwoLayer())
    assert get_path(gradient, ("hidden", "weight")).shape == (3, 4)


class NamedLikeArrayMethods(nn.Layer):
    def __init__(self):
        self.dense = nn.Dense(4 * 4 * 2, 2, rng=0, dtype=np.float64)
        self.flatten = nn.Flatten()

    def __call__(self, x):
        return self.dense(self.flatten(x))


def test_layer_attribute_named_like_array_method():
    assert NamedLikeArrayMethods()(images).shape == (3, 2)
    check_model_gradient(image_loss, NamedLikeArrayMethods(), paths=dense_paths("dense"))


class OneLayerSequence(nn.Layer):
    def __init__(self):
        self.dense = nn.Dense(3, 2, rng=0, dtype=np.float64)

    def __call__(self, x):
        return nn.sequenced(x, self.dense)


def test_sequenced_with_one_layer():
    check_model_gradient(squared_error, OneLayerSequence(), paths=dense_paths("dense"))


class TwoLayerSequence(nn.Layer):
    def __init__(self):
        self.hidden = nn.Dense(3, 4, nn.tanh, rng=0, dtype=np.float64)
        self.output = nn.Dense(4, 2, rng=1, dtype=np.float64)

    def __call__(self, x):
        return nn.sequenced(x, self.hidden, self.output)


def test_sequenced_with_two_layers():
    check_model_gradient(squared_error, TwoLayerSequence(),
                         paths=[*dense_paths("hidden"), *dense_paths("output")])


class DeepSequence(nn.Layer):
    """Eleven layers through one `sequenced` call, more than any fixed limit."""

    def __init__(self):
        activations = [nn.tanh, nn.sigmoid, nn.relu]
        self.first = nn.Dense(3, 4, nn.tanh, rng=0, dtype=np.float64)
        self.middle = [nn.Dense(4, 4, activations[i % 3], rng=i + 1, dtype=np.float64)
                       for i in range(9)]
        self.last = nn.Dense(4, 2, rng=10, dtype=np.float64)

    def __call__(self, x):
        m = self.middle
        return nn.sequenced(x, self.first, m[0], m[1], m[2], m[3], m[4], m[5], m[6],
                            m[7], m[8], self.last)


def test_sequenced_with_eleven_layers():
    model = DeepSequence()
    paths = [*dense_paths("first"), *dense_paths("last"),
             *(path for i in range(9) for path in dense_paths("middle", i))]
    check_model_gradient(squared_error, model, paths=paths)
    nested = x_data
    for layer in [model.first, *model.middle, model.last]:
        nested = layer(nested)
    np.testing.assert_array_equal(model(x_data), nested)


requested_cotangents = []


def shifted(x, shift):
    return x + shift


@pullback.derivative_of(shifted, wrt=("x", "shift"))
def _shifted_vjp(x, shift, *, wrt=("x", "shift")):
    requested_cotangents.append(wrt)

    def shifted_pullback(y_bar):
        x_bar = y_bar if "x" in wrt else None
        return x_bar, np.sum(y_bar, axis=0)

    return x + shift, shifted_pullback


class Shift(nn.Layer):
    def __init__(self, size, seed):
        self.shift = np.random.default_rng(seed).standard_normal(size)

    def __call__(self, x):
        return shifted(x, self.shift)


class ShiftedSequence(nn.Layer):
    def __init__(self):
        self.first = Shift(3, seed=1)
        self.dense = nn.Dense(3, 2, nn.tanh, rng=0, dtype=np.float64)
        self.last = Shift(2, seed=2)

    def __call__(self, x):
        return nn.sequenced(x, self.first, self.dense, self.last)


def test_sequenced_skips_unrequested_input_cotangent():
    requested_cotangents.clear()
    check_model_gradient(squared_error, ShiftedSequence(),
                         paths=[("first", "shift"), *dense_paths("dense"), ("last", "shift")])
    # The gradient with respect to the model alone never reads the cotangent
    # of the input data, so the first layer is not asked for it.
    assert requested_cotangents == [("shift",), ("x", "shift")]


def test_sequenced_input_cotangent_when_requested():
    model = ShiftedSequence()

    def loss(model, x):
        return np.sum(model(x) ** 2)

    requested_cotangents.clear()
    check_input_gradient(loss, model, x_data)
    assert requested_cotangents == [("x",), ("x",)]


def test_sequenced_layers_gradient_is_a_tuple():
    layers = [nn.Dense(3, 4, nn.tanh, rng=0, dtype=np.float64),
              nn.Dense(4, 2, rng=1, dtype=np.float64)]

    def loss(x, *layers):
        return np.sum(nn.sequenced(x, *layers) ** 2)

    x_bar, layers_bar = pullback.gradient(loss)(x_data, *layers)
    assert x_bar.shape == x_data.shape
    assert len(layers_bar) == 2
    for layer, tangent in zip(layers, layers_bar, strict=True):
        assert tangent.weight.shape == layer.weight.shape


def test_sequenced_without_layers_raises():
    with pytest.raises(ValueError, match="at least one layer"):
        nn.sequenced(x_data)

    def loss(x):
        return np.sum(nn.sequenced(x))

    with pytest.raises(ValueError, match="at least one layer"):
        pullback.gradient(loss)(x_data)


def test_float32_model_gradient_keeps_dtype():
    class Small(nn.Layer):
        def __init__(self):
            self.conv = nn.Conv2D((3, 3, 2, 3), padding="same", activation=nn.relu, rng=0)
            self.flat = nn.Flatten()
            self.dense = nn.Dense(4 * 4 * 3, 2, rng=1)

        def __call__(self, x):
            return nn.sequenced(x, self.conv, self.flat, self.dense)

    def loss(model, x):
        return np.sum(model(x) ** 2)

    gradient = pullback.gradient(loss, wrt=0)(Small(), images.astype(np.float32))
    for path in [("conv", "filter"), ("conv", "bias"), ("dense", "weight"), ("dense", "bias")]:
        assert get_path(gradient, path).dtype == np.float32, path


def test_dropout_inside_discarding_activations_replays():
    class Noisy(nn.Layer):
        def __init__(self):
            self.dense = nn.Dense(3, 2, rng=0, dtype=np.float64)
            self.dropout = nn.Dropout(0.5, np.random.default_rng(0)).discarding_activations()

        def __call__(self, x):
            return self.dropout(self.dense(x))

    def loss_at(weight):
        # A fresh model per evaluation draws the same dropout mask.
        model = Noisy()
        model.dense.weight = weight
        return squared_error(model)

    gradient = pullback.gradient(squared_error)(Noisy())

    weight = Noisy().dense.weight
    eps = 1e-6
    expected = np.zeros_like(weight)
    for index in np.ndindex(weight.shape):
        step = np.zeros_like(weight)
        step[index] = eps
        expected[index] = (loss_at(weight + step) - loss_at(weight - step)) / (2 * eps)
    np.testing.assert_allclose(gradient.dense.weight, expected, rtol=1e-6, atol=1e-9)
