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
