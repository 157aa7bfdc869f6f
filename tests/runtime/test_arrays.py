"""Fast paths of the array helpers that generated pullbacks call.

Each fast path must return exactly what the general path returns. These
tests compare the two bit for bit, including ties, NaN and the sign of zero.
They also check that the cases a fast path does not handle still get the
right cotangent.
"""

import numpy as np
import pytest
from gradcheck import check_gradient

import pullback
from pullback import runtime as rt

rng = np.random.default_rng(11)

# Values where the derivative of maximum(a, 0) needs care: both zeros, NaN
# and infinities, next to ordinary numbers of both signs.
SPECIAL = np.array([-1.5, -0.0, 0.0, 2.0, np.nan, np.inf, -np.inf, 1e-310, -1e-310])


def share_by_formula(cotangent, a):
    """Return the share of `a` in maximum(a, 0): 1 above, 1/2 at a tie, 0 else."""
    return np.where(a > 0, cotangent, np.where(a == 0, 0.5 * cotangent, cotangent * 0.0))


def assert_same_bits(actual, expected):
    assert type(actual) is type(expected)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_share_special_values(dtype):
    a = np.tile(SPECIAL, (3, 1)).astype(dtype)
    cotangent = rng.standard_normal(a.shape).astype(dtype)

    share = rt.maximum_share(cotangent, a, 0.0)

    assert_same_bits(share, share_by_formula(cotangent, a))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_share_matches_array_zero(dtype):
    # An array b takes the general path, which must agree with the fast one.
    a = np.concatenate([SPECIAL, rng.standard_normal(30)]).astype(dtype)
    cotangent = rng.standard_normal(a.shape).astype(dtype)

    fast = rt.maximum_share(cotangent, a, 0.0)
    general = rt.maximum_share(cotangent, a, np.zeros_like(a))

    assert_same_bits(fast, general)


def test_relu_share_zero_forms():
    a = np.array([[-1.0, 0.0, 3.0]])
    cotangent = np.array([[2.0, 2.0, 2.0]])
    for zero in (0.0, -0.0, 0):
        share = rt.maximum_share(cotangent, a, zero)
        np.testing.assert_array_equal(share, [[0.0, 1.0, 2.0]])


def test_relu_share_ignore_nan():
    a = np.array([np.nan, -1.0, 0.0, 1.0])
    cotangent = np.full(4, 4.0)

    share = rt.maximum_share(cotangent, a, 0.0, ignore_nan=True)

    np.testing.assert_array_equal(share, [0.0, 0.0, 2.0, 4.0])


def test_relu_share_leaves_cotangent():
    a = rng.standard_normal((4, 10))
    cotangent = rng.standard_normal((4, 10))
    original = cotangent.copy()

    share = rt.maximum_share(cotangent, a, 0.0, overwrite=True)

    assert share is not cotangent
    np.testing.assert_array_equal(cotangent, original)


def test_relu_share_non_contiguous():
    base = np.concatenate([SPECIAL, rng.standard_normal(11)]).reshape(4, 5)
    a = base.T
    cotangent = rng.standard_normal((4, 10))[:, ::2].T

    share = rt.maximum_share(cotangent, a, 0.0)

    assert_same_bits(share, share_by_formula(cotangent, a))


@pytest.mark.parametrize(
    "case, cotangent, a, b",
    [
        ("nonzero b", np.arange(6.0) - 2, np.arange(6.0) - 3, 0.5),
        ("array b", np.ones(3), np.array([-1.0, 0.0, 1.0]), np.zeros(3)),
        ("0-d a", np.array(3.0), np.array(0.0), 0.0),
        ("float16", np.ones(3, np.float16), np.array([-1, 0, 1], np.float16), 0.0),
        ("int a", np.ones(3), np.array([-1, 0, 1]), 0.0),
        ("mixed dtypes", np.ones(3), np.array([-1, 0, 1], np.float32), 0.0),
        ("bool b", np.ones(3), np.array([-1.0, 0.0, 1.0]), False),
        ("broadcast cotangent", np.ones((2, 3)), np.array([[-1.0, 0.0, 1.0]]), 0.0),
        ("large", np.ones(1024), np.linspace(-1.0, 1.0, 1024), 0.0),
    ],
)
def test_maximum_share_general_cases(case, cotangent, a, b):
    share = rt.maximum_share(cotangent, a, b)

    expected = cotangent * (a > b) + 0.5 * cotangent * (a == b)
    np.testing.assert_array_equal(share, expected, err_msg=case)
    assert np.result_type(share) == np.result_type(expected), case


@pytest.mark.parametrize("size", [3, 300])
def test_relu_share_infinite_cotangent(size):
    # With a tie present, an infinite cotangent must still pass through where
    # `a` wins and be halved where it ties. Only where `a` loses is it inf * 0.
    a = np.tile([1.0, 0.0, -1.0], size // 3)
    cotangent = np.full(a.shape, np.inf)

    with np.errstate(invalid="ignore"):
        share = rt.maximum_share(cotangent, a, 0.0)
        general = rt.maximum_share(cotangent, a, np.zeros_like(a))
        smaller = rt.minimum_share(cotangent, -a, 0.0)

    np.testing.assert_array_equal(share[:3], [np.inf, np.inf, np.nan])
    assert_same_bits(share, general)
    assert_same_bits(smaller, share)


def test_relu_share_integer_cotangent_at_ties():
    share = rt.maximum_share(np.array([2, 2, 2]), np.array([-1.0, 0.0, 1.0]), 0.0)

    assert share.dtype == np.float64
    np.testing.assert_array_equal(share, [0.0, 1.0, 2.0])


def test_relu_share_scalar_at_tie():
    share = rt.maximum_share(np.float32(2.0), np.float32(0.0), 0.0)

    assert type(share) is np.float32
    assert share == 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_share_layout_matches_general(dtype):
    # A Fortran-ordered `a` with a C-ordered cotangent: the share must have
    # the general path's layout, so that summing it over rows adds the same
    # numbers in the same order.
    a = np.asfortranarray(rng.standard_normal((20, 12))).astype(dtype, order="F")
    a[0, :3] = 0.0
    cotangent = rng.standard_normal((20, 12)).astype(dtype)

    fast = rt.maximum_share(cotangent, a, 0.0)
    general = rt.maximum_share(cotangent, a, np.zeros_like(a))

    assert fast.strides == general.strides
    assert_same_bits(np.add.reduce(fast, 0), np.add.reduce(general, 0))


def relu_layer_transposed(x, b, y):
    return np.sum(np.maximum(x.T + b, 0.0) * y)


def test_relu_layer_transposed_bias_bits():
    # x.T + b is Fortran-ordered and has 240 elements, so the ReLU takes the
    # heaviside path. The bias gradient must have the bits of the comparison
    # path's share summed over rows.
    x, b, y = rng.standard_normal((12, 20)), rng.standard_normal(12), rng.standard_normal((20, 12))

    _, b_bar, _ = pullback.gradient(relu_layer_transposed)(x, b, y)
    z = x.T + b
    general = rt.maximum_share(y, z, np.zeros_like(z))

    assert_same_bits(b_bar, np.add.reduce(general, 0))
    check_gradient(relu_layer_transposed, x, b, y)


def small_relu_layer(w, b, x):
    return np.sum(np.maximum(x @ w + b, 0.0) ** 2)


def test_small_relu_layer_gradient():
    w, b, x = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal((4, 3))

    check_gradient(small_relu_layer, w, b, x, wrt=("w", "b"))


def relu_sum(x):
    return np.sum(np.maximum(x, 0.0))


def test_relu_gradient_at_ties_and_nan():
    x = np.array([np.nan, -2.0, 0.0, -0.0, 3.0])

    gradient = pullback.gradient(relu_sum)(x)

    np.testing.assert_array_equal(gradient, [0.0, 0.0, 0.5, 0.5, 1.0])


def test_relu_gradient_float32_at_ties():
    x = np.array([[-1.0, 0.0, 2.0]], np.float32)

    gradient = pullback.gradient(relu_sum)(x)

    assert gradient.dtype == np.float32
    np.testing.assert_array_equal(gradient, [[0.0, 0.5, 1.0]])


# unbroadcast: an operand of the cotangent's shape and a bias added to every
# row return at once. The other cases take the general path.


def test_unbroadcast_same_shape_returns_cotangent():
    cotangent = rng.standard_normal((4, 10))

    assert rt.unbroadcast(cotangent, np.empty((4, 10))) is cotangent
    assert rt.unbroadcast(cotangent, rt.like(np.empty((4, 10)))) is cotangent


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unbroadcast_bias_sums_rows(dtype):
    cotangent = rng.standard_normal((4, 10)).astype(dtype)

    summed = rt.unbroadcast(cotangent, np.empty(10, dtype))

    assert summed.dtype == dtype
    assert summed.shape == (10,)
    np.testing.assert_array_equal(summed, cotangent.sum(axis=0))


def test_unbroadcast_bias_non_contiguous():
    cotangent = rng.standard_normal((10, 8))[::2, ::2]

    summed = rt.unbroadcast(cotangent, np.empty(4))

    np.testing.assert_array_equal(summed, cotangent.sum(axis=0))


@pytest.mark.parametrize(
    "case, cotangent_shape, primal, expected_shape",
    [
        ("keepdims bias", (4, 10), np.empty((1, 10)), (1, 10)),
        ("column", (4, 10), np.empty((4, 1)), (4, 1)),
        ("two leading axes", (2, 4, 10), np.empty(10), (10,)),
        ("0-d array", (4, 10), np.array(1.0), ()),
        ("python float", (4, 10), 1.0, ()),
        ("float32 primal", (4, 10), np.empty(10, np.float32), (10,)),
        ("float32 same shape", (4, 10), np.empty((4, 10), np.float32), (4, 10)),
    ],
)
def test_unbroadcast_general_cases(case, cotangent_shape, primal, expected_shape):
    cotangent = rng.standard_normal(cotangent_shape)

    summed = rt.unbroadcast(cotangent, primal)

    assert np.shape(summed) == expected_shape, case
    assert np.isclose(np.sum(summed), cotangent.sum(), rtol=1e-5), case
    if isinstance(primal, np.ndarray):
        assert summed.dtype == primal.dtype, case
    else:
        assert not isinstance(summed, np.ndarray), case


def biased_layer(w, b, x):
    return np.sum(np.tanh(x @ w + b) ** 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_biased_layer_gradient_dtype(dtype):
    w = rng.standard_normal((3, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    x = rng.standard_normal((4, 3)).astype(dtype)

    grad_w, grad_b = pullback.gradient(biased_layer, wrt=("w", "b"))(w, b, x)

    assert grad_w.dtype == dtype
    assert grad_b.dtype == dtype
    assert grad_b.shape == (5,)


def test_biased_layer_gradient_float64():
    w, b, x = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal((4, 3))

    check_gradient(biased_layer, w, b, x, wrt=("w", "b", "x"))


def test_scalar_bias_gradient():
    w, x = rng.standard_normal((3, 5)), rng.standard_normal((4, 3))

    gradient = check_gradient(biased_layer, w, 0.3, x, wrt="b")

    assert type(gradient) is np.float64


# mean_adjoint_times: one scaled product where `other` matches the mean's
# operand, and otherwise the filled array and two products it replaces.


def mean_adjoint_then_products(cotangent, primal, other, factor=1):
    spread = rt.mean_adjoint(cotangent, primal, None, False)
    return spread * factor * other


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [1.0, np.float64(0.7), np.float32(1.3)])
@pytest.mark.parametrize("factor", [2, 3, 0.1, 1])
def test_mean_adjoint_times_same_bits(dtype, seed, factor):
    other = np.concatenate([SPECIAL, rng.standard_normal(31)]).reshape(8, 5).astype(dtype)
    primal = other**2

    product = rt.mean_adjoint_times(seed, primal, other, factor)

    assert_same_bits(product, mean_adjoint_then_products(seed, primal, other, factor))


def test_mean_adjoint_times_large_array():
    other = rng.standard_normal((256, 300))
    primal = other**2

    product = rt.mean_adjoint_times(np.float64(1.0), primal, other, 2)

    assert_same_bits(product, mean_adjoint_then_products(np.float64(1.0), primal, other, 2))


@pytest.mark.parametrize(
    "case, seed, primal, other",
    [
        ("row other", 1.0, np.ones((4, 3)), rng.standard_normal(3)),
        ("Fortran order", 1.0, np.ones((4, 3)), np.asfortranarray(rng.standard_normal((4, 3)))),
        ("strided", 1.0, np.ones((4, 3)), rng.standard_normal((4, 6))[:, ::2]),
        ("0-d seed", np.array(2.0), np.ones((4, 3)), rng.standard_normal((4, 3))),
        ("float32 other", 1.0, np.ones((4, 3)), rng.standard_normal((4, 3)).astype(np.float32)),
        ("int primal", 1.0, np.ones((4, 3), int), rng.standard_normal((4, 3))),
        ("0-d primal", 1.0, np.array(4.0), np.array(3.0)),
    ],
)
def test_mean_adjoint_times_general_cases(case, seed, primal, other):
    product = rt.mean_adjoint_times(seed, primal, other, 2)

    expected = mean_adjoint_then_products(seed, primal, other, 2)
    assert type(product) is type(expected), case
    assert np.result_type(product) == np.result_type(expected), case
    np.testing.assert_array_equal(product, expected, err_msg=case)


# A full reduction with keepdims=True gives a cotangent with one element per
# axis, which the filled-array path of small arrays cannot take.


def sum_kept(d):
    return np.sum(np.sum(d ** 2, keepdims=True))


def mean_kept(d):
    return np.sum(d.mean(axis=None, keepdims=True) * 3.0)


@pytest.mark.parametrize("function", [sum_kept, mean_kept])
@pytest.mark.parametrize("shape", [(3, 4), (5,)])
def test_full_reduction_keepdims_gradient(function, shape):
    check_gradient(function, rng.standard_normal(shape))


def test_full_mean_keepdims_pullback():
    value, pullback_of_mean = pullback.value_and_pullback(
        lambda d: np.mean(d, keepdims=True), np.ones((2, 3)))

    gradient = pullback_of_mean(np.full((1, 1), 6.0))

    assert value.shape == (1, 1)
    np.testing.assert_array_equal(gradient, np.ones((2, 3)))
