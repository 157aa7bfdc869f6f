"""SGD and Adam updates against steps computed by hand."""

import copy

import numpy as np
import pytest

import pullback
from pullback import nn
from pullback.runtime.objects import ObjectTangent


class Inner:
    def __init__(self):
        self.weight = np.array([[1.0, -2.0], [0.5, 3.0]])


class Model:
    def __init__(self, dtype=np.float64):
        self.inner = Inner()
        self.bias = np.array([0.1, -0.1], dtype=dtype)
        self.gain = 2.0
        self.pair = (1.0, np.array([4.0]))
        self.name = "model"


def gradient_one():
    return ObjectTangent(
        inner=ObjectTangent(weight=np.array([[0.5, -1.0], [2.0, 0.0]])),
        bias=np.array([1.0, -3.0]),
        gain=-0.5,
        pair=(0.25, np.array([2.0])),
    )


def test_sgd_step():
    model = Model()
    nn.SGD(model, learning_rate=0.1).update(model, along=gradient_one())
    np.testing.assert_allclose(model.inner.weight, [[0.95, -1.9], [0.3, 3.0]], rtol=1e-15)
    np.testing.assert_allclose(model.bias, [0.0, 0.2], atol=1e-15)
    assert model.gain == pytest.approx(2.05, rel=1e-15)
    assert model.pair[0] == pytest.approx(0.975, rel=1e-15)
    np.testing.assert_allclose(model.pair[1], [3.8], rtol=1e-15)
    assert model.name == "model"


def test_sgd_leaves_unreached_fields():
    model = Model()
    weight = model.inner.weight.copy()
    nn.SGD(model, learning_rate=0.5).update(model, along=ObjectTangent(gain=1.0))
    assert model.gain == 1.5
    np.testing.assert_array_equal(model.inner.weight, weight)


def adam_by_hand(parameter, gradients, learning_rate, beta1, beta2, epsilon):
    """Return the parameter after one Adam step per gradient, by Algorithm 1."""
    first = np.zeros_like(parameter)
    second = np.zeros_like(parameter)
    for t, g in enumerate(gradients, start=1):
        first = beta1 * first + (1 - beta1) * g
        second = beta2 * second + (1 - beta2) * g**2
        first_hat = first / (1 - beta1**t)
        second_hat = second / (1 - beta2**t)
        parameter = parameter - learning_rate * first_hat / (np.sqrt(second_hat) + epsilon)
    return parameter


def test_adam_two_steps():
    model = Model()
    start_weight = model.inner.weight.copy()
    start_gain = model.gain
    optimizer = nn.Adam(model, learning_rate=0.01, beta1=0.8, beta2=0.95, epsilon=1e-3)
    first = gradient_one()
    second = ObjectTangent(inner=ObjectTangent(weight=np.array([[-1.0, 0.5], [1.0, 4.0]])),
                           gain=2.0)
    optimizer.update(model, along=first)
    optimizer.update(model, along=second)
    expected_weight = adam_by_hand(start_weight, [first.inner.weight, second.inner.weight],
                                   0.01, 0.8, 0.95, 1e-3)
    np.testing.assert_allclose(model.inner.weight, expected_weight, rtol=1e-13)
    expected_gain = adam_by_hand(np.array(start_gain), [-0.5, 2.0], 0.01, 0.8, 0.95, 1e-3)
    assert model.gain == pytest.approx(float(expected_gain), rel=1e-13)
    # The bias had a gradient only at the first step; its moment still moves it.
    expected_bias = adam_by_hand(np.array([0.1, -0.1]), [first.bias, np.zeros(2)],
                                 0.01, 0.8, 0.95, 1e-3)
    np.testing.assert_allclose(model.bias, expected_bias, rtol=1e-13)
    expected_pair = adam_by_hand(np.array(1.0), [0.25, 0.0], 0.01, 0.8, 0.95, 1e-3)
    assert model.pair[0] == pytest.approx(float(expected_pair), rel=1e-13)


def test_adam_defaults():
    optimizer = nn.Adam(Model())
    assert (optimizer.learning_rate, optimizer.beta1, optimizer.beta2, optimizer.epsilon) == (
        1e-3, 0.9, 0.999, 1e-8
    )


def test_adam_keeps_float32():
    model = Model(dtype=np.float32)
    bias = model.bias
    nn.Adam(model).update(model, along=ObjectTangent(bias=np.ones(2, np.float32)))
    assert model.bias is bias
    assert model.bias.dtype == np.float32
    np.testing.assert_allclose(model.bias, [0.1 - 1e-3, -0.1 - 1e-3], rtol=1e-5)


def test_adam_rejects_changed_parameter_shape():
    model = Model()
    optimizer = nn.Adam(model)
    model.bias = np.zeros(3)
    with pytest.raises(ValueError, match=r"model\.bias of shape \(3,\)"):
        optimizer.update(model, along=ObjectTangent(bias=np.ones(3)))


# Parameters reached through several paths.

x_tied = np.array([[0.3, -0.7], [1.0, 0.5]])


class Tied(nn.Layer):
    """One Dense layer applied twice, held by two attributes."""

    def __init__(self):
        shared = nn.Dense(2, 2, rng=0, dtype=np.float64)
        self.first = shared
        self.second = shared

    def __call__(self, x):
        return self.second(np.tanh(self.first(x)))


def tied_loss(model):
    return np.sum(model(x_tied) ** 2)


def tied_gradient_by_hand(weight, bias):
    """Return the total gradient of `tied_loss` in the shared weight and bias.

    With h = x W + b, a = tanh(h) and y = a W + b, the loss sum(y**2) has
    dW = a^T dy + x^T dh and db = sum(dy) + sum(dh), where dy = 2 y and
    dh = (dy W^T) (1 - a**2): one term for each use of the layer.
    """
    a = np.tanh(x_tied @ weight + bias)
    y_bar = 2 * (a @ weight + bias)
    h_bar = (y_bar @ weight.T) * (1 - a**2)
    weight_bar = a.T @ y_bar + x_tied.T @ h_bar
    bias_bar = y_bar.sum(axis=0) + h_bar.sum(axis=0)
    return weight_bar, bias_bar


def test_tied_gradient_by_hand_matches_sum_of_paths():
    model = Tied()
    gradient = pullback.gradient(tied_loss)(model)
    weight_bar, bias_bar = tied_gradient_by_hand(model.first.weight, model.first.bias)
    np.testing.assert_allclose(gradient.first.weight + gradient.second.weight, weight_bar,
                               rtol=1e-12)
    np.testing.assert_allclose(gradient.first.bias + gradient.second.bias, bias_bar,
                               rtol=1e-12)


def test_adam_first_step_on_tied_layer():
    model = Tied()
    start_weight = model.first.weight.copy()
    start_bias = model.first.bias.copy()
    weight_bar, bias_bar = tied_gradient_by_hand(start_weight, start_bias)
    optimizer = nn.Adam(model, learning_rate=0.01)
    optimizer.update(model, along=pullback.gradient(tied_loss)(model))
    # Adam's first step is -learning_rate * sign(gradient), up to epsilon.
    np.testing.assert_allclose(model.first.weight - start_weight, -0.01 * np.sign(weight_bar),
                               rtol=1e-6)
    np.testing.assert_allclose(model.first.bias - start_bias, -0.01 * np.sign(bias_bar),
                               rtol=1e-6)
    assert model.first is model.second
    assert len(optimizer.first_moments) == 2


def test_adam_three_steps_on_tied_layer():
    model = Tied()
    weight = model.first.weight.copy()
    bias = model.first.bias.copy()
    optimizer = nn.Adam(model, learning_rate=0.01, beta1=0.8, beta2=0.95, epsilon=1e-3)
    for _ in range(3):
        optimizer.update(model, along=pullback.gradient(tied_loss)(model))

    moments = {"weight": [np.zeros_like(weight), np.zeros_like(weight)],
               "bias": [np.zeros_like(bias), np.zeros_like(bias)]}
    for t in range(1, 4):
        gradients = dict(zip(("weight", "bias"), tied_gradient_by_hand(weight, bias),
                             strict=True))
        steps = {}
        for name, g in gradients.items():
            first, second = moments[name]
            first = 0.8 * first + 0.2 * g
            second = 0.95 * second + 0.05 * g**2
            moments[name] = [first, second]
            steps[name] = -0.01 * (first / (1 - 0.8**t)) / (
                np.sqrt(second / (1 - 0.95**t)) + 1e-3)
        weight = weight + steps["weight"]
        bias = bias + steps["bias"]

    np.testing.assert_allclose(model.first.weight, weight, rtol=1e-12)
    np.testing.assert_allclose(model.first.bias, bias, rtol=1e-12)


def test_sgd_step_on_tied_layer():
    model = Tied()
    weight_bar, bias_bar = tied_gradient_by_hand(model.first.weight, model.first.bias)
    expected_weight = model.first.weight - 0.1 * weight_bar
    expected_bias = model.first.bias - 0.1 * bias_bar
    nn.SGD(model, learning_rate=0.1).update(model, along=pullback.gradient(tied_loss)(model))
    np.testing.assert_allclose(model.first.weight, expected_weight, rtol=1e-12)
    np.testing.assert_allclose(model.first.bias, expected_bias, rtol=1e-12)


class Scaled:
    def __init__(self):
        self.gain = 2.0
        self.weight = np.array([1.0, 2.0])


class TwoPaths:
    def __init__(self, inner):
        self.a = inner
        self.b = inner


def two_path_gradient():
    return ObjectTangent(a=ObjectTangent(gain=1.0, weight=np.array([1.0, -3.0])),
                         b=ObjectTangent(gain=-3.0, weight=np.array([-2.0, 1.0])))


def test_adam_tied_float_moves_once():
    model = TwoPaths(Scaled())
    nn.Adam(model, learning_rate=0.1).update(model, along=two_path_gradient())
    # The total gradients are -2 for the gain and (-1, -2) for the weight.
    assert model.a.gain == pytest.approx(2.1, rel=1e-8)
    np.testing.assert_allclose(model.a.weight, [1.1, 2.1], rtol=1e-8)


def test_adam_tied_read_only_array_moves_once():
    inner = Scaled()
    inner.weight = np.broadcast_to(np.array([1.0, 2.0]), (2,))
    model = TwoPaths(inner)
    nn.Adam(model, learning_rate=0.1).update(model, along=two_path_gradient())
    np.testing.assert_allclose(model.a.weight, [1.1, 2.1], rtol=1e-8)
    assert model.b.weight is model.a.weight


def test_adam_array_shared_by_two_layers():
    model = TwoPaths(None)
    model.a = Scaled()
    model.b = Scaled()
    model.b.weight = model.a.weight
    nn.Adam(model, learning_rate=0.1).update(model, along=two_path_gradient())
    np.testing.assert_allclose(model.a.weight, [1.1, 2.1], rtol=1e-8)
    assert model.b.weight is model.a.weight
    # Each layer has its own float, so each gain moves by its own gradient.
    assert model.a.gain == pytest.approx(1.9, rel=1e-8)
    assert model.b.gain == pytest.approx(2.1, rel=1e-8)


def test_adam_continues_on_model_copy():
    model = Tied()
    optimizer = nn.Adam(model, learning_rate=0.01)
    copied = Tied()
    copied_optimizer = nn.Adam(copied, learning_rate=0.01)
    for _ in range(2):
        optimizer.update(model, along=pullback.gradient(tied_loss)(model))
    copied_optimizer.update(copied, along=pullback.gradient(tied_loss)(copied))
    restored = copy.deepcopy(copied)
    copied_optimizer.update(restored, along=pullback.gradient(tied_loss)(restored))
    np.testing.assert_array_equal(restored.first.weight, model.first.weight)
    assert restored.first is restored.second


# Gradients that do not belong to the model.


def dense_and_other_gradient():
    x = np.ones((1, 2))
    dense = nn.Dense(2, 2, rng=0, dtype=np.float64)
    other = nn.Dense(2, 2, rng=1, dtype=np.float64)
    return dense, pullback.gradient(lambda layer: np.sum(layer(x)))(other)


@pytest.mark.parametrize("optimizer_type", [nn.SGD, nn.Adam])
def test_optimizer_rejects_other_model_gradient(optimizer_type):
    dense, other_gradient = dense_and_other_gradient()
    weight = dense.weight.copy()
    optimizer = optimizer_type(dense)
    with pytest.raises(ValueError, match="computed for a different Dense object"):
        optimizer.update(dense, along=other_gradient)
    np.testing.assert_array_equal(dense.weight, weight)


def test_adam_rejected_update_takes_no_step():
    dense, other_gradient = dense_and_other_gradient()
    optimizer = nn.Adam(dense)
    with pytest.raises(ValueError):
        optimizer.update(dense, along=other_gradient)
    assert optimizer.step == 0


@pytest.mark.parametrize("optimizer_type", [nn.SGD, nn.Adam])
def test_optimizer_rejects_unknown_field(optimizer_type):
    model = Model()
    gradient = ObjectTangent(bias=np.ones(2), scale=np.ones(2))
    with pytest.raises(ValueError, match="has the field 'scale'"):
        optimizer_type(model).update(model, along=gradient)


@pytest.mark.parametrize("optimizer_type", [nn.SGD, nn.Adam])
def test_optimizer_rejects_gradient_shape(optimizer_type):
    model = Model()
    gradient = ObjectTangent(bias=np.ones(3))
    with pytest.raises(ValueError, match=r"model\.bias has shape \(3,\)"):
        optimizer_type(model).update(model, along=gradient)


@pytest.mark.parametrize("optimizer_type", [nn.SGD, nn.Adam])
def test_optimizer_rejects_gradient_length(optimizer_type):
    model = Model()
    gradient = ObjectTangent(pair=(1.0,))
    with pytest.raises(TypeError, match=r"model\.pair is a tuple of 1 item,"):
        optimizer_type(model).update(model, along=gradient)


def test_optimizer_rejects_array_for_object():
    model = Model()
    with pytest.raises(TypeError, match="not an ObjectTangent"):
        nn.Adam(model).update(model, along=np.zeros(2))


def test_adam_rejects_model_with_other_parameters():
    optimizer = nn.Adam(Model())
    tied = Tied()
    with pytest.raises(ValueError, match="not one this Adam optimizer was created for"):
        optimizer.update(tied, along=pullback.gradient(tied_loss)(tied))


def test_adam_rejects_model_missing_parameter():
    model = Model()
    optimizer = nn.Adam(model)
    model.gain = 2  # An int, so no longer a parameter.
    with pytest.raises(ValueError, match=r"parameter model\.gain, which the model"):
        optimizer.update(model, along=ObjectTangent(bias=np.ones(2)))
