"""SGD and Adam updates against steps computed by hand."""

import numpy as np
import pytest

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
