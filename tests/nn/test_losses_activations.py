"""Activations and losses: values against direct formulas, gradients against
central finite differences in float64."""

import numpy as np
import pytest
from gradcheck import check_gradient

import pullback
from pullback import nn

rng = np.random.default_rng(3)


def normal(*shape):
    return rng.standard_normal(shape)


def weighted(activation):
    weights = normal(4, 5)

    def loss(x):
        return np.sum(activation(x) * weights)

    return loss


def weighted_along_last_axis(activation):
    weights = normal(4, 5)

    def loss(x):
        return np.sum(activation(x, -1) * weights)

    return loss


@pytest.mark.parametrize("activation", [nn.relu, nn.sigmoid, nn.tanh])
def test_activation_gradient(activation):
    check_gradient(weighted(activation), normal(4, 5))


@pytest.mark.parametrize("activation", [nn.softmax, nn.log_softmax])
def test_softmax_family_gradient(activation):
    check_gradient(weighted_along_last_axis(activation), normal(4, 5))


@pytest.mark.parametrize("activation", [nn.softmax, nn.log_softmax])
def test_softmax_family_default_axis_gradient(activation):
    check_gradient(weighted(activation), normal(4, 5))


def dense_output_loss(layer, x):
    return np.sum(layer(x) * np.arange(4.0))


def test_softmax_as_dense_activation_gradient():
    layer = nn.Dense(3, 4, nn.softmax, rng=0, dtype=np.float64)
    check_gradient(dense_output_loss, layer, normal(2, 3), wrt=1)


def test_activation_values():
    x = normal(3, 4)
    np.testing.assert_array_equal(nn.relu(x), np.where(x > 0, x, 0.0))
    np.testing.assert_allclose(nn.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    exp = np.exp(x)
    np.testing.assert_allclose(nn.softmax(x), exp / exp.sum(-1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(nn.log_softmax(x), np.log(exp / exp.sum(-1, keepdims=True)),
                               rtol=1e-13)


def test_softmax_along_first_axis():
    x = normal(3, 4)
    np.testing.assert_allclose(nn.softmax(x, 0).sum(0), np.ones(4), rtol=1e-14)

    def loss(x):
        return np.sum(nn.softmax(x, 0) * np.arange(12.0).reshape(3, 4))

    check_gradient(loss, x)


def test_stable_for_large_logits():
    x = np.array([[1000.0, 0.0, -1000.0]])
    assert np.all(np.isfinite(nn.log_softmax(x)))
    assert np.all(np.isfinite(nn.sigmoid(x)))
    np.testing.assert_allclose(nn.softmax(x), [[1.0, 0.0, 0.0]], atol=1e-300)


def test_relu_derivative_at_zero_is_zero():
    assert pullback.gradient(lambda x: np.sum(nn.relu(x)))(np.zeros(3)).tolist() == [0.0] * 3


def test_sigmoid_keeps_float32():
    x = normal(3).astype(np.float32)
    assert pullback.gradient(lambda x: np.sum(nn.sigmoid(x)))(x).dtype == np.float32


# Losses.


def test_mean_squared_error_value_and_gradient():
    predicted, expected = normal(4, 2), normal(4, 2)
    assert nn.mean_squared_error(predicted, expected) == pytest.approx(
        np.sum((predicted - expected) ** 2) / 8, rel=1e-14
    )
    check_gradient(nn.mean_squared_error, predicted, expected)


def test_mean_squared_error_rejects_broadcasting():
    with pytest.raises(ValueError, match=r"predicted has shape \(4, 1\)"):
        nn.mean_squared_error(np.zeros((4, 1)), np.zeros(4))


def test_softmax_cross_entropy_value():
    logits = normal(5, 3)
    labels = np.array([0, 2, 1, 1, 0])
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = -np.mean(np.log(probabilities[np.arange(5), labels]))
    assert nn.softmax_cross_entropy(logits, labels) == pytest.approx(expected, rel=1e-13)


def test_softmax_cross_entropy_gradient():
    labels = np.array([0, 2, 1, 1, 0])
    check_gradient(nn.softmax_cross_entropy, normal(5, 3), labels, wrt=0)


def test_softmax_cross_entropy_gradient_with_batch_axes():
    labels = np.array([[0, 3], [2, 1], [3, 3]])
    check_gradient(nn.softmax_cross_entropy, normal(3, 2, 4), labels, wrt=0)


def test_softmax_cross_entropy_labels_get_no_gradient():
    labels = np.array([1, 0])
    gradients = pullback.gradient(nn.softmax_cross_entropy)(normal(2, 3), labels)
    assert gradients[1] is None


def test_softmax_cross_entropy_keeps_float32():
    logits = normal(4, 3).astype(np.float32)
    labels = np.array([0, 1, 2, 0])
    value, logits_bar = pullback.value_and_gradient(nn.softmax_cross_entropy, wrt=0)(
        logits, labels
    )
    assert value.dtype == np.float32
    assert logits_bar.dtype == np.float32


def test_softmax_cross_entropy_rejects_float_labels():
    with pytest.raises(TypeError, match="integer class labels"):
        nn.softmax_cross_entropy(normal(2, 3), np.array([0.0, 1.0]))


def test_softmax_cross_entropy_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        nn.softmax_cross_entropy(normal(2, 3), np.array([0, 3]))


def test_softmax_cross_entropy_rejects_label_shape():
    with pytest.raises(ValueError, match=r"labels need shape \(2,\)"):
        nn.softmax_cross_entropy(normal(2, 3), np.array([0, 1, 2]))


@pytest.mark.parametrize("logits", [np.float64(1.0), np.zeros((2, 0))], ids=["scalar", "no_classes"])
def test_softmax_cross_entropy_rejects_logits_shape(logits):
    labels = np.zeros(np.shape(logits)[:-1], int)
    with pytest.raises(ValueError, match="needs logits of shape \\(\\.\\.\\., classes\\) with at"):
        nn.softmax_cross_entropy(logits, labels)
