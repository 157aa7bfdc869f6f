"""Each layer's gradient in its parameters and its input, against central
finite differences in float64, and its forward value against a direct
loop-based computation."""

import numpy as np
import pytest
from model_check import check_input_gradient, check_model_gradient

import pullback
from pullback import nn

rng = np.random.default_rng(7)


def normal(*shape):
    return rng.standard_normal(shape)


def wavy_sum(layer, x):
    """A scalar whose cotangent at the layer output varies element by element."""
    return np.sum(np.sin(1.3 * layer(x) + 0.2))


def conv2d_by_loops(x, filter, strides, padding):
    """Direct NHWC cross-correlation, one output pixel at a time."""
    batch, height, width, _ = x.shape
    kernel_h, kernel_w, _, out_channels = filter.shape
    stride_h, stride_w = strides
    if padding == "same":
        out_h, out_w = -(-height // stride_h), -(-width // stride_w)
        pad_h = max((out_h - 1) * stride_h + kernel_h - height, 0)
        pad_w = max((out_w - 1) * stride_w + kernel_w - width, 0)
        x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2),
                       (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    else:
        out_h = (height - kernel_h) // stride_h + 1
        out_w = (width - kernel_w) // stride_w + 1
    y = np.zeros((batch, out_h, out_w, out_channels))
    for n in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                patch = x[n, i * stride_h : i * stride_h + kernel_h,
                          j * stride_w : j * stride_w + kernel_w]
                y[n, i, j] = np.tensordot(patch, filter, axes=3)
    return y


def pool_by_loops(x, pool_size, strides, padding, reduce):
    """Direct pooling; "same" padding leaves the padding out of each window."""
    batch, height, width, channels = x.shape
    pool_h, pool_w = pool_size
    stride_h, stride_w = strides
    top = left = 0
    if padding == "same":
        out_h, out_w = -(-height // stride_h), -(-width // stride_w)
        top = max((out_h - 1) * stride_h + pool_h - height, 0) // 2
        left = max((out_w - 1) * stride_w + pool_w - width, 0) // 2
    else:
        out_h = (height - pool_h) // stride_h + 1
        out_w = (width - pool_w) // stride_w + 1
    y = np.zeros((batch, out_h, out_w, channels))
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(max(i * stride_h - top, 0), i * stride_h - top + pool_h)
            cols = slice(max(j * stride_w - left, 0), j * stride_w - left + pool_w)
            y[:, i, j] = reduce(x[:, rows, cols], axis=(1, 2))
    return y


# Dense.


# NumPy ufuncs as activations are differentiated by their rules.
@pytest.mark.parametrize("activation", [None, nn.relu, nn.sigmoid, nn.tanh, nn.softmax,
                                        np.tanh, np.sin])
def test_dense_gradients(activation):
    layer = nn.Dense(4, 3, activation, rng=1, dtype=np.float64)
    layer.bias = normal(3)
    x = normal(5, 4)
    check_model_gradient(wavy_sum, layer, x, paths=[("weight",), ("bias",)])
    check_input_gradient(wavy_sum, layer, x)


def test_dense_shapes_and_dtype():
    layer = nn.Dense(4, 3, rng=0)
    assert layer.weight.shape == (4, 3)
    assert layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32
    assert layer(np.ones((2, 4), np.float32)).dtype == np.float32


def test_dense_glorot_bound_and_seed():
    layer = nn.Dense(30, 20, rng=3)
    limit = np.sqrt(6 / 50)
    assert np.abs(layer.weight).max() <= limit
    assert np.abs(layer.weight).max() > 0.8 * limit
    np.testing.assert_array_equal(layer.weight, nn.Dense(30, 20, rng=3).weight)
    assert not np.array_equal(layer.weight, nn.Dense(30, 20, rng=4).weight)
    assert np.all(layer.bias == 0)


# Conv2D.

CONV_CASES = [
    pytest.param((3, 3, 2, 4), (1, 1), "valid", (2, 7, 6, 2), id="valid"),
    pytest.param((3, 3, 2, 4), (2, 2), "valid", (2, 8, 7, 2), id="strided_valid"),
    pytest.param((3, 3, 2, 3), (1, 1), "same", (2, 6, 5, 2), id="same"),
    pytest.param((4, 2, 1, 3), (2, 3), "same", (2, 7, 8, 1), id="strided_same_uneven"),
    pytest.param((2, 3, 3, 2), (3, 1), "valid", (1, 9, 6, 3), id="uneven_strides"),
    pytest.param((5, 5, 3, 6), (1, 1), "valid", (2, 9, 9, 3), id="tutorial_filter"),
    # A window no larger than an output pixel goes through an im2col matrix.
    pytest.param((3, 3, 1, 9), (2, 1), "same", (2, 5, 6, 1), id="im2col_strided_same"),
    pytest.param((2, 2, 2, 8), (1, 1), "valid", (2, 4, 5, 2), id="im2col_valid"),
]


@pytest.mark.parametrize("filter_shape, strides, padding, input_shape", CONV_CASES)
def test_conv2d_matches_loops(filter_shape, strides, padding, input_shape):
    x = normal(*input_shape)
    filter = normal(*filter_shape)
    expected = conv2d_by_loops(x, filter, strides, padding)
    np.testing.assert_allclose(nn.conv2d(x, filter, strides, padding), expected,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("filter_shape, strides, padding, input_shape", CONV_CASES)
def test_conv2d_layer_gradients(filter_shape, strides, padding, input_shape):
    layer = nn.Conv2D(filter_shape, strides, padding, rng=2, dtype=np.float64)
    layer.bias = normal(filter_shape[3])
    x = normal(*input_shape)
    check_model_gradient(wavy_sum, layer, x, paths=[("filter",), ("bias",)])
    check_input_gradient(wavy_sum, layer, x)


def test_conv2d_with_activation_gradients():
    layer = nn.Conv2D((3, 3, 2, 3), padding="same", activation=nn.tanh, rng=5,
                      dtype=np.float64)
    x = normal(2, 5, 5, 2)
    check_model_gradient(wavy_sum, layer, x, paths=[("filter",), ("bias",)])
    check_input_gradient(wavy_sum, layer, x)


def test_conv2d_keeps_float32():
    layer = nn.Conv2D((3, 3, 1, 2), rng=0)
    x = np.ones((1, 4, 4, 1), np.float32)
    value, backprop = layer.applied_for_backpropagation(x)
    assert value.dtype == np.float32
    layer_bar, x_bar = backprop(np.ones_like(value))
    assert layer_bar.filter.dtype == np.float32
    assert x_bar.dtype == np.float32


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="3 channels but the filter expects 2"):
        nn.conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 2, 1)))


def test_conv2d_rejects_unknown_padding():
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        nn.Conv2D((3, 3, 1, 1), padding="full")


# Pooling.

POOL_CASES = [
    pytest.param((2, 2), (2, 2), "valid", (2, 6, 6, 3), id="tiled"),
    pytest.param((2, 2), (2, 2), "valid", (2, 7, 5, 2), id="tiled_leftover"),
    pytest.param((3, 3), (2, 2), "valid", (2, 7, 7, 2), id="overlapping"),
    pytest.param((3, 2), (1, 2), "valid", (1, 6, 6, 2), id="uneven"),
    pytest.param((3, 3), (2, 2), "same", (2, 6, 5, 2), id="same"),
    pytest.param((2, 2), (1, 1), "same", (1, 4, 4, 2), id="same_stride_one"),
]


@pytest.mark.parametrize("pool_size, strides, padding, input_shape", POOL_CASES)
def test_max_pool_matches_loops(pool_size, strides, padding, input_shape):
    x = normal(*input_shape)
    expected = pool_by_loops(x, pool_size, strides, padding, np.max)
    np.testing.assert_array_equal(nn.max_pool2d(x, pool_size, strides, padding), expected)


@pytest.mark.parametrize("pool_size, strides, padding, input_shape", POOL_CASES)
def test_avg_pool_matches_loops(pool_size, strides, padding, input_shape):
    x = normal(*input_shape)
    expected = pool_by_loops(x, pool_size, strides, padding, np.mean)
    np.testing.assert_allclose(nn.avg_pool2d(x, pool_size, strides, padding), expected,
                               rtol=1e-12)


@pytest.mark.parametrize("pool_size, strides, padding, input_shape", POOL_CASES)
def test_max_pool_input_gradient(pool_size, strides, padding, input_shape):
    # Distinct values a finite step apart, so no window has a tie and no
    # step of size eps changes which element is the maximum.
    size = int(np.prod(input_shape))
    x = rng.permutation(size).reshape(input_shape) * 0.01
    layer = nn.MaxPool2D(pool_size, strides, padding)
    check_input_gradient(wavy_sum, layer, x)


@pytest.mark.parametrize("pool_size, strides, padding, input_shape", POOL_CASES)
def test_avg_pool_input_gradient(pool_size, strides, padding, input_shape):
    layer = nn.AvgPool2D(pool_size, strides, padding)
    check_input_gradient(wavy_sum, layer, normal(*input_shape))


def test_max_pool_sends_cotangent_to_maximum():
    x = np.array([1.0, 4.0, 2.0, 3.0]).reshape(1, 2, 2, 1)
    value, backprop = nn.MaxPool2D(2).applied_for_backpropagation(x)
    assert value.item() == 4.0
    _, x_bar = backprop(np.full((1, 1, 1, 1), 5.0))
    np.testing.assert_array_equal(x_bar.ravel(), [0.0, 5.0, 0.0, 0.0])


def test_pool_layers_have_no_tangent():
    layer = nn.MaxPool2D(2, 2)
    value, backprop = layer.applied_for_backpropagation(normal(1, 4, 4, 1))
    layer_bar, _ = backprop(np.ones_like(value))
    assert layer_bar is None


# Flatten and Dropout.


def test_flatten_input_gradient():
    layer = nn.Flatten()
    x = normal(3, 2, 4, 2)
    assert layer(x).shape == (3, 16)
    check_input_gradient(wavy_sum, layer, x)


def dropped_sum(layer, x):
    return np.sum(np.sin(layer(x)))


def test_dropout_training_gradient_uses_mask():
    x = normal(4, 6)
    layer = nn.Dropout(0.25, np.random.default_rng(11))
    value, backprop = layer.applied_for_backpropagation(x)
    _, x_bar = backprop(np.ones_like(value))
    keep = np.random.default_rng(11).random(x.shape) >= 0.25
    np.testing.assert_allclose(value, np.where(keep, x / 0.75, 0.0), rtol=1e-15)
    np.testing.assert_allclose(x_bar, np.where(keep, 1 / 0.75, 0.0), rtol=1e-15)


def test_dropout_keeps_about_one_minus_rate():
    layer = nn.Dropout(0.3, np.random.default_rng(0))
    kept = np.mean(layer(np.ones((200, 200))) != 0)
    assert abs(kept - 0.7) < 0.01


def test_dropout_is_identity_when_not_training():
    layer = nn.Dropout(0.5, np.random.default_rng(0))
    layer.set_training(False)
    x = normal(3, 3)
    np.testing.assert_array_equal(layer(x), x)
    check_input_gradient(dropped_sum, layer, x)


def test_dropout_rate_has_no_derivative():
    layer = nn.Dropout(0.5, np.random.default_rng(0))
    value, backprop = layer.applied_for_backpropagation(normal(2, 2))
    layer_bar, _ = backprop(np.ones_like(value))
    assert layer_bar is None


def test_dropout_rejects_rate_of_one():
    with pytest.raises(ValueError, match="dropout rate must be in"):
        nn.Dropout(1.0, np.random.default_rng(0))


def test_max_pool_tie_goes_to_first_maximum():
    x = np.array([3.0, 3.0, 1.0, 3.0]).reshape(1, 2, 2, 1)
    value, backprop = nn.MaxPool2D(2).applied_for_backpropagation(x)
    _, x_bar = backprop(np.full((1, 1, 1, 1), 2.0))
    np.testing.assert_array_equal(x_bar.ravel(), [2.0, 0.0, 0.0, 0.0])


def test_max_pool_nan_sends_cotangent_to_last_nan():
    # The left window has NaNs at offsets 0 and 2, the right one none.
    x = np.array([np.nan, 3.0, 1.0, 2.0, np.nan, 5.0, 4.0, 0.0]).reshape(1, 2, 4, 1)
    value, backprop = nn.MaxPool2D(2).applied_for_backpropagation(x)
    assert np.isnan(value[0, 0, 0, 0])
    assert value[0, 0, 1, 0] == 4.0
    _, x_bar = backprop(np.array([2.0, 3.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(x_bar.ravel(), [0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 3.0, 0.0])


def conv_of_constant_input(filter, bias):
    return np.sum(np.sin(nn.conv2d(CONSTANT_IMAGES, filter, (1, 1), "same", bias)))


CONSTANT_IMAGES = rng.standard_normal((2, 5, 4, 3))


@pytest.mark.parametrize("filter_shape", [(3, 3, 3, 2), (2, 2, 3, 12)], ids=["offsets", "im2col"])
def test_conv2d_gradient_without_input_cotangent(filter_shape):
    from gradcheck import check_gradient

    check_gradient(conv_of_constant_input, normal(*filter_shape), normal(filter_shape[3]))


def test_conv2d_pullback_skips_unrequested_input():
    from pullback.runtime import registry

    vjp = registry.vjp_of(nn.conv2d, "filter", "bias")
    x, filter, bias = normal(2, 4, 4, 3), normal(3, 3, 3, 2), normal(2)
    y, backprop = vjp(x, filter, (1, 1), "same", bias)
    filter_bar, bias_bar = backprop(np.ones_like(y))
    assert filter_bar.shape == filter.shape
    np.testing.assert_allclose(bias_bar, [y[..., 0].size, y[..., 1].size])
    _, full_backprop = nn.convolution._conv2d_vjp(x, filter, (1, 1), "same", bias)
    assert full_backprop(np.ones_like(y))[0].shape == x.shape
    assert nn.convolution._conv2d_vjp(
        x, filter, (1, 1), "same", bias, wrt=("filter",))[1](np.ones_like(y))[0] is None


def test_overlapping_max_pool_ties_keep_total():
    # Every window of this constant input ties; each window's cotangent must
    # reach exactly one element, so the cotangents sum to the windows' total.
    x = np.ones((1, 5, 5, 2))
    layer = nn.MaxPool2D(3, 2)
    value, backprop = layer.applied_for_backpropagation(x)
    y_bar = np.arange(1.0, 1.0 + value.size).reshape(value.shape)
    _, x_bar = backprop(y_bar)
    assert x_bar.sum() == y_bar.sum()
    # The first element of each window is its top-left corner.
    np.testing.assert_array_equal(x_bar[0, ::2, ::2][:2, :2], y_bar[0])


def conv_with_bias_sum(x, filter, bias):
    return np.sum(np.sin(nn.conv2d(x, filter, (2, 1), "same", bias)))


def test_conv2d_function_gradient_with_bias():
    from gradcheck import check_gradient

    check_gradient(conv_with_bias_sum, normal(2, 5, 4, 2), normal(3, 2, 2, 3), normal(3))


def test_conv2d_without_bias_matches_layer_without_bias_term():
    x, filter, bias = normal(1, 4, 4, 2), normal(3, 3, 2, 2), normal(2)
    np.testing.assert_allclose(nn.conv2d(x, filter, bias=bias), nn.conv2d(x, filter) + bias,
                               rtol=1e-14)


# Empty batches.

EMPTY_BATCH_FILTERS = [pytest.param((3, 3, 2, 3), id="offsets"),
                       pytest.param((2, 2, 2, 12), id="im2col")]


def conv_of_empty_and_full_batch(x, filter, bias):
    """A loss that adds the empty batch `x` to a full one, so its gradient is not all zero."""
    empty = np.sum(np.sin(nn.conv2d(x, filter, (2, 1), "same", bias)))
    full = np.sum(np.sin(nn.conv2d(CONSTANT_IMAGES[..., :2], filter, (2, 1), "same", bias)))
    return empty + full


@pytest.mark.parametrize("filter_shape", EMPTY_BATCH_FILTERS)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_empty_batch_shape(filter_shape, padding):
    x = np.zeros((0, 5, 4, 2), np.float32)
    y = nn.conv2d(x, normal(*filter_shape).astype(np.float32), (2, 1), padding,
                  np.ones(filter_shape[3], np.float32))
    expected_rows = 2 if padding == "valid" else 3
    expected_columns = 4 - filter_shape[1] + 1 if padding == "valid" else 4
    assert y.shape == (0, expected_rows, expected_columns, filter_shape[3])
    assert y.dtype == np.float32


@pytest.mark.parametrize("filter_shape", EMPTY_BATCH_FILTERS)
def test_conv2d_empty_batch_gradient(filter_shape):
    from gradcheck import check_gradient

    check_gradient(conv_of_empty_and_full_batch, np.zeros((0, 5, 4, 2)),
                   normal(*filter_shape), normal(filter_shape[3]))


@pytest.mark.parametrize("filter_shape", EMPTY_BATCH_FILTERS)
def test_conv2d_empty_batch_cotangents(filter_shape):
    layer = nn.Conv2D(filter_shape, padding="same", rng=0)
    x = np.zeros((0, 5, 4, 2), np.float32)
    value, backprop = layer.applied_for_backpropagation(x)
    layer_bar, x_bar = backprop(np.ones_like(value))
    assert x_bar.shape == x.shape
    assert x_bar.dtype == np.float32
    assert layer_bar.filter.shape == filter_shape
    assert layer_bar.filter.dtype == np.float32
    assert not layer_bar.filter.any()
    assert layer_bar.bias.shape == (filter_shape[3],)
    assert not layer_bar.bias.any()


def test_flatten_empty_batch():
    x = np.zeros((0, 3, 2, 4))
    value, backprop = nn.Flatten().applied_for_backpropagation(x)
    assert value.shape == (0, 24)
    _, x_bar = backprop(np.ones_like(value))
    assert x_bar.shape == x.shape


def test_pools_empty_batch():
    x = np.zeros((0, 4, 4, 2))
    for layer in (nn.MaxPool2D(2), nn.AvgPool2D(2, padding="same")):
        value, backprop = layer.applied_for_backpropagation(x)
        assert value.shape == (0, 2, 2, 2)
        assert backprop(np.ones_like(value))[1].shape == x.shape


# Input dtypes of pooling.

BOOL_IMAGES = rng.random((2, 5, 5, 3)) > 0.7


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_max_pool_bool_is_logical_or(padding):
    y = nn.max_pool2d(BOOL_IMAGES, 2, padding=padding)
    expected = pool_by_loops(BOOL_IMAGES.astype(float), (2, 2), (2, 2), padding, np.max)
    assert y.dtype == np.bool_
    np.testing.assert_array_equal(y, expected.astype(bool))


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_avg_pool_bool_gives_float64(padding):
    y = nn.avg_pool2d(BOOL_IMAGES, 2, padding=padding)
    expected = pool_by_loops(BOOL_IMAGES.astype(float), (2, 2), (2, 2), padding, np.mean)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=1e-15)


def test_max_pool_rejects_complex():
    with pytest.raises(TypeError, match="max_pool2d needs an array of real numbers"):
        nn.max_pool2d(np.ones((1, 4, 4, 1), complex))


@pytest.mark.parametrize("pool", [nn.max_pool2d, nn.avg_pool2d])
def test_pools_reject_strings(pool):
    with pytest.raises(TypeError, match=r"got dtype <U1; convert it first"):
        pool(np.full((1, 4, 4, 1), "a"))


# Invalid sizes and inputs.


@pytest.mark.parametrize("filter_shape, error, phrase", [
    ((0, 3, 2, 4), ValueError, r"got \(0, 3, 2, 4\), which contains 0"),
    ((3.0, 3, 2, 4), TypeError, r"which contains the float 3\.0"),
    ((3, True, 2, 4), TypeError, "which contains the bool True"),
    (3, ValueError, "of positive ints, got 3"),
], ids=["zero", "float", "bool", "int"])
def test_conv2d_layer_rejects_filter_shape(filter_shape, error, phrase):
    with pytest.raises(error, match=phrase):
        nn.Conv2D(filter_shape)


def test_conv2d_layer_accepts_numpy_sizes():
    layer = nn.Conv2D(tuple(np.array([3, 3, 2, 4])), rng=0)
    assert layer.filter.shape == (3, 3, 2, 4)


def test_conv2d_rejects_empty_filter():
    with pytest.raises(ValueError, match="every size at least 1"):
        nn.conv2d(np.ones((1, 4, 4, 1)), np.ones((2, 2, 1, 0)))


@pytest.mark.parametrize("size, error", [(-1, ValueError), (0, ValueError),
                                         (2.5, TypeError), (True, TypeError)])
def test_dense_rejects_size(size, error):
    with pytest.raises(error, match="input_size must be a positive int"):
        nn.Dense(size, 2)
    with pytest.raises(error, match="output_size must be a positive int"):
        nn.Dense(2, size)


def test_dense_rejects_input_size():
    layer = nn.Dense(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"Dense\(3, 2\) needs an input of shape \(\.\.\., 3\), "
                                         r"got an input of shape \(4, 5\)"):
        layer(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"got an input of shape \(\); reshape the input$"):
        layer(np.float32(1.0))


def test_dense_input_check_in_gradient():
    layer = nn.Dense(3, 2, rng=0, dtype=np.float64)
    with pytest.raises(ValueError, match="create the layer with input_size=5"):
        pullback.gradient(wavy_sum)(layer, np.zeros((4, 5)))
