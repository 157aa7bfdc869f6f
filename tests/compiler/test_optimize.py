"""Rewrites of the generated pullback that save NumPy calls.

Each rewrite is checked in the generated source, and the gradients of the
rewritten code against central finite differences in float64.
"""

import numpy as np
import pytest
from gradcheck import check_gradient

import pullback

rng = np.random.default_rng(14)


def mean_squared_error(x, y):
    return np.mean((x - y) ** 2)


def mean_of_square(x):
    return np.mean(x**2)


def mean_of_product(x, w):
    return np.mean(x * w)


def mean_of_transposed_square(x):
    return np.mean(x.T**2)


def mean_over_rows(x):
    return np.sum(np.mean(x**2, axis=0))


def mean_read_twice(x):
    return np.mean(x * x)


def mean_of_cube(x):
    return np.mean(x**3)


def test_mean_of_square_folds():
    source = pullback.adjoint_source(mean_of_square)

    assert "_pb.mean_adjoint_times(result_bar, x_pow_2, x, 2)" in source
    assert "_pb.mean_adjoint(" not in source


def test_mean_of_transposed_square_folds():
    # The transpose is Fortran-ordered, so the runtime takes the general path.
    assert "mean_adjoint_times" in pullback.adjoint_source(mean_of_transposed_square)


@pytest.mark.parametrize("function", [mean_over_rows, mean_read_twice, mean_of_cube])
def test_mean_not_folded(function):
    source = pullback.adjoint_source(function)

    assert "mean_adjoint_times" not in source
    assert "mean_adjoint(" in source


@pytest.mark.parametrize(
    "case, x, y",
    [
        ("same shape", rng.standard_normal((4, 3)), rng.standard_normal((4, 3))),
        ("broadcast y", rng.standard_normal((4, 3)), rng.standard_normal(3)),
        ("broadcast x", rng.standard_normal(3), rng.standard_normal((4, 3))),
        ("Fortran x", np.asfortranarray(rng.standard_normal((4, 3))), rng.standard_normal((4, 3))),
        ("python float y", rng.standard_normal(5), 0.5),
        ("0-d", np.array(1.5), np.array(0.5)),
    ],
)
def test_mean_squared_error_gradient(case, x, y):
    check_gradient(mean_squared_error, x, y)


@pytest.mark.parametrize(
    "case, x, w",
    [
        ("same shape", rng.standard_normal((4, 3)), rng.standard_normal((4, 3))),
        ("row w", rng.standard_normal((4, 3)), rng.standard_normal(3)),
        ("python float w", rng.standard_normal((4, 3)), 0.5),
    ],
)
def test_mean_of_product_gradient(case, x, w):
    check_gradient(mean_of_product, x, w)


@pytest.mark.parametrize(
    "function", [mean_of_transposed_square, mean_over_rows, mean_read_twice, mean_of_cube]
)
def test_other_mean_gradients(function):
    check_gradient(function, rng.standard_normal((4, 3)))


def test_mean_squared_error_float32():
    x = rng.standard_normal((4, 3)).astype(np.float32)
    y = rng.standard_normal((4, 3)).astype(np.float32)

    grad_x, grad_y = pullback.gradient(mean_squared_error)(x, y)

    assert grad_x.dtype == np.float32
    assert grad_y.dtype == np.float32
    np.testing.assert_allclose(grad_x, 2 * (x - y) / x.size, rtol=1e-6)
    np.testing.assert_allclose(grad_y, -2 * (x - y) / x.size, rtol=1e-6)


def test_mean_squared_error_pullback_seed():
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    _, pullback_of_f = pullback.value_and_pullback(mean_squared_error, x, y)

    for seed in (3.0, np.float64(3.0), np.array(3.0)):
        grad_x, _ = pullback_of_f(seed)
        np.testing.assert_allclose(grad_x, 6 * (x - y) / x.size, rtol=1e-12)


def shifted_in_loop(x, steps):
    z = x * 0.5
    for _ in range(steps):
        z += 0.1
    return np.sum(np.tanh(z))


def test_loop_copy_to_itself_removed():
    source = pullback.adjoint_source(shifted_in_loop, wrt="x")
    lines = [line.strip() for line in source.splitlines()]

    assert not any(line.split(" = ")[0] == line.partition(" = ")[2] for line in lines
                   if " = " in line)
    assert "pass" in lines
    check_gradient(shifted_in_loop, rng.standard_normal(4), 3, wrt=0)
