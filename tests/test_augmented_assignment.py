"""Augmented assignments to array names keep NumPy's in-place rules.

`x += y` on an array computes in the array's memory in plain Python, so `x`
keeps its shape and dtype, and a result of another shape or of a dtype that
cannot be cast back raises. Differentiated code rebinds `x` instead, and
must give the same values and errors.
"""

import numpy as np
import pytest
from gradcheck import check_gradient

import pullback


def add_in_place(t, b):
    t += b
    return np.sum(t * t)


def scale_in_place(t, s):
    t *= s
    t -= 1.0
    return np.sum(t**2)


def divide_in_place(t, b):
    t /= b
    return np.sum(t)


def accumulate_in_loop(t, rows):
    for i in range(rows.shape[0]):
        t += rows[i] * rows[i]
    return np.sum(t)


def plain(function, *args):
    """Run `function` as Python does, on copies, so the arguments stay as they were."""
    return function(*(np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                      for a in args))


@pytest.mark.parametrize("function, shapes", [
    (add_in_place, ((4,), (4,))),
    (add_in_place, ((3, 4), (4,))),
    (scale_in_place, ((3, 4), (3, 1))),
    (divide_in_place, ((2, 3), (3,))),
    (accumulate_in_loop, ((4,), (3, 4))),
])
def test_float64_gradient_matches_differences(function, shapes):
    rng = np.random.default_rng(0)
    args = tuple(rng.uniform(0.5, 1.5, shape) for shape in shapes)
    check_gradient(function, *args)
    value = pullback.value_and_gradient(function)(*args)[0]
    assert value == plain(function, *args)


@pytest.mark.parametrize("function", [add_in_place, scale_in_place, divide_in_place])
def test_float32_target_stays_float32(function):
    rng = np.random.default_rng(1)
    t = rng.uniform(0.5, 1.5, (3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 1.5, 4)  # float64, which t's dtype absorbs.
    value, (t_bar, b_bar) = pullback.value_and_gradient(function)(t, b)
    expected = plain(function, t, b)
    assert type(value) is type(expected)
    assert value == expected
    assert t_bar.dtype == np.float32
    assert b_bar.dtype == np.float64


def test_zero_dimensional_target_stays_an_array():
    def grow(t, b):
        t += b
        return t

    t = np.array(2.0)
    value, pullback_of_grow = pullback.value_and_pullback(grow, t, 3.0)
    assert type(value) is np.ndarray
    assert value.shape == ()
    assert value == 5.0
    assert pullback_of_grow(np.array(1.0)) == (1.0, 1.0)


def test_broadcast_to_larger_shape_raises():
    t, b = np.ones(4), np.ones((3, 4))
    with pytest.raises(ValueError, match="non-broadcastable"):
        plain(add_in_place, t, b)
    with pytest.raises(ValueError, match=r"shape \(4,\).*broadcast shape \(3, 4\)"):
        pullback.value_and_gradient(add_in_place)(t, b)


def test_float_result_for_integer_array_raises():
    t, b = np.arange(4), np.full(4, 0.5)
    with pytest.raises(TypeError):
        plain(add_in_place, t, b)
    with pytest.raises(TypeError, match="cannot cast back"):
        pullback.value_and_gradient(add_in_place, wrt="b")(t, b)


def test_number_targets_rebind():
    value, gradient = pullback.value_and_gradient(add_in_place)(1.5, 2.0)
    assert value == 12.25
    assert gradient == (7.0, 7.0)
    assert "in_place_result" in pullback.adjoint_source(add_in_place)


def floor_halve(t, y):
    t //= y
    return np.sum(t * t)


def shifted_weights(x, k):
    n = np.full(3, 100, dtype=np.int8)
    n <<= k
    return np.sum(x * n)


def masked_sum(x, a, b):
    mask = a > 0.0
    mask |= b > 0.0
    return np.sum(x * mask)


def test_operators_without_derivative_keep_the_dtype():
    t = np.array([3.5, 7.25], dtype=np.float32)
    with pytest.warns(pullback.ZeroDerivativeWarning, match="the operator //"):
        value = pullback.value_and_gradient(floor_halve, wrt="y")(t, np.array(2.0))[0]
    expected = plain(floor_halve, t, np.array(2.0))
    assert type(value) is type(expected)
    assert value == expected


def test_integer_shift_wraps_as_numpy_does():
    x = np.array([1.0, 2.0, 3.0])
    value, gradient = pullback.value_and_gradient(shifted_weights, wrt="x")(x, np.int64(1))
    assert value == plain(shifted_weights, x, np.int64(1))
    assert np.array_equal(gradient, np.full(3, -56.0))


@pytest.mark.parametrize("function, args", [
    (floor_halve, (np.array([3.5, 7.25]), np.full((3, 2), 2.0))),
    (masked_sum, (np.ones(3), np.array([1.0, -1.0, 1.0]), np.ones((2, 3)))),
])
def test_operators_without_derivative_keep_the_shape(function, args):
    with pytest.raises(ValueError, match="non-broadcastable"):
        plain(function, *args)
    with pytest.raises(ValueError, match="broadcast shape"):
        pullback.value_and_gradient(function, wrt=0)(*args)


def test_failed_cast_is_reported_before_the_shape():
    t, y = np.arange(3), np.full((2, 3), 0.5)
    with pytest.raises(TypeError):
        plain(add_in_place, t, y)
    with pytest.raises(TypeError, match="cannot cast back"):
        pullback.value_and_gradient(add_in_place, wrt="b")(t, y)


def offsets(w, c, d):
    for _ in range(2):
        c += d  # The loop does not involve w, so the VJP writes it as is.
    return w * c


def test_loop_without_derivative_keeps_in_place_rules():
    c, d = np.zeros(2, np.float32), np.full(2, 0.1)
    value = pullback.value_and_pullback(offsets, 1.0, c, d, wrt="w")[0]
    expected = plain(offsets, 1.0, c, d)
    assert value.dtype == np.float32
    assert np.array_equal(value, expected)
    with pytest.raises(ValueError, match="broadcast shape"):
        pullback.value_and_pullback(offsets, 1.0, np.zeros(2), np.ones((3, 2)), wrt="w")
