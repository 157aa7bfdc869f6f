"""Gradients compared with HIPS autograd, an independent reverse-mode system.

Each program is written twice, side by side: once with NumPy for pullback and
once with `autograd.numpy` for autograd. Both must give the same value and the
same gradient with respect to every argument.
"""

import numpy as np
import pytest

import pullback

autograd = pytest.importorskip("autograd")
anp = pytest.importorskip("autograd.numpy")

rng = np.random.default_rng(7)


def normal(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape)


def ufunc_chain(x):
    return np.sum(np.tanh(np.exp(np.sin(x)) * np.cos(x)) + np.log(1.0 + x * x))


def ufunc_chain_ag(x):
    return anp.sum(anp.tanh(anp.exp(anp.sin(x)) * anp.cos(x)) + anp.log(1.0 + x * x))


def broadcasting(w, b, s, column):
    return np.sum(np.sin(s * (w + b) * column))


def broadcasting_ag(w, b, s, column):
    return anp.sum(anp.sin(s * (w + b) * column))


def reductions(x):
    rows = np.sum(x, axis=1, keepdims=True)
    columns = np.mean(x, axis=0)
    return np.sum(rows * x) + np.sum(columns**2) + np.max(x) + np.sum(np.min(x, axis=0))


def reductions_ag(x):
    rows = anp.sum(x, axis=1, keepdims=True)
    columns = anp.mean(x, axis=0)
    return anp.sum(rows * x) + anp.sum(columns**2) + anp.max(x) + anp.sum(anp.min(x, axis=0))


def statistics(x):
    return np.var(x) + np.std(x, axis=0).sum() + np.prod(x[0]) + np.sum(np.cumsum(x, axis=1) ** 2)


def statistics_ag(x):
    return anp.var(x) + anp.std(x, axis=0).sum() + anp.prod(x[0]) + anp.sum(anp.cumsum(x, axis=1) ** 2)


def products(a, b, v):
    ab = a @ b
    return np.sum((ab @ v) ** 2) + np.dot(v, v) + a.dot(b).sum() + np.sum(np.outer(v, v) * (ab.T @ ab))


def products_ag(a, b, v):
    ab = a @ b
    return anp.sum((ab @ v) ** 2) + anp.dot(v, v) + anp.dot(a, b).sum() + anp.sum(anp.outer(v, v) * (ab.T @ ab))


def shapes(x):
    y = x.reshape(2, 6)
    z = np.transpose(x)[..., None] * np.expand_dims(x, 0)
    return np.sum(np.sin(y)) + np.sum(z**2) + np.sum(np.squeeze(x[:, :1]) * np.ravel(x)[:3])


def shapes_ag(x):
    y = x.reshape(2, 6)
    z = anp.transpose(x)[..., None] * anp.expand_dims(x, 0)
    return anp.sum(anp.sin(y)) + anp.sum(z**2) + anp.sum(anp.squeeze(x[:, :1]) * anp.ravel(x)[:3])


def indexing(x):
    return np.sum(x[1] * x[-1]) + np.sum(x[:, 0] ** 2) + x[1, 2] * x[0, -1] + np.sum(x[1:, ::2])


def indexing_ag(x):
    return anp.sum(x[1] * x[-1]) + anp.sum(x[:, 0] ** 2) + x[1, 2] * x[0, -1] + anp.sum(x[1:, ::2])


def fancy_indexing(x):
    return np.sum(x[[0, 0, 2]] ** 2) + np.sum(x[x > 0])


def fancy_indexing_ag(x):
    return anp.sum(x[[0, 0, 2]] ** 2) + anp.sum(x[x > 0])


def joining(x, y):
    stacked = np.stack([x, y * 2.0])
    joined = np.concatenate([x, np.sin(y)])
    return np.sum(stacked**2) + np.sum(joined * np.arange(6.0)) + np.sum(np.vstack([x, y]) ** 3)


def joining_ag(x, y):
    stacked = anp.stack([x, y * 2.0])
    joined = anp.concatenate([x, anp.sin(y)])
    return anp.sum(stacked**2) + anp.sum(joined * anp.arange(6.0)) + anp.sum(anp.vstack([x, y]) ** 3)


def piecewise(x):
    return np.sum(np.where(x > 0, x**2, -x)) + np.sum(np.maximum(x, 0.1) * np.clip(x, -0.5, 0.5))


def piecewise_ag(x):
    return anp.sum(anp.where(x > 0, x**2, -x)) + anp.sum(anp.maximum(x, 0.1) * anp.clip(x, -0.5, 0.5))


def elementary(x):
    return np.sum(np.sqrt(x) + np.log1p(x) + np.expm1(-x) + np.abs(x - 1.0) + 1.0 / x + x**0.5 + np.square(x))


def elementary_ag(x):
    return anp.sum(anp.sqrt(x) + anp.log1p(x) + anp.expm1(-x) + anp.abs(x - 1.0) + 1.0 / x + x**0.5 + anp.square(x))


def powers(x, y):
    return np.sum(x**y + np.power(y, 2) + x ** (-1.5))


def powers_ag(x, y):
    return anp.sum(x**y + anp.power(y, 2) + x ** (-1.5))


def einsum_contractions(a, b):
    pairs = np.einsum("ij,ij->i", a, b.T)
    return np.einsum("ij,jk->", a, b) + np.sum(np.einsum("ij,jk->ik", a, b) ** 2) + np.sum(pairs**2)


def einsum_contractions_ag(a, b):
    pairs = anp.einsum("ij,ij->i", a, b.T)
    return anp.einsum("ij,jk->", a, b) + anp.sum(anp.einsum("ij,jk->ik", a, b) ** 2) + anp.sum(pairs**2)


def linear_algebra(a, v):
    square = a @ a.T + 3.0 * np.eye(3)
    return np.linalg.det(square) + np.sum(np.linalg.inv(square)) + np.sum(np.linalg.solve(square, v)) + np.linalg.norm(v)


def linear_algebra_ag(a, v):
    square = a @ a.T + 3.0 * anp.eye(3)
    return anp.linalg.det(square) + anp.sum(anp.linalg.inv(square)) + anp.sum(anp.linalg.solve(square, v)) + anp.linalg.norm(v)


def control_flow(x, mode):
    s = np.sum(x)
    if mode == 0:
        y = np.sin(x) * s
    elif mode == 1:
        y = x**2 if s > 0 else x**3
    else:
        return s * s
    return np.sum(y)


def control_flow_ag(x, mode):
    s = anp.sum(x)
    if mode == 0:
        y = anp.sin(x) * s
    elif mode == 1:
        y = x**2 if s > 0 else x**3
    else:
        return s * s
    return anp.sum(y)


def names_and_tuples(x, y):
    a, b = x * 2.0, np.cos(y)
    a += b
    a *= 3.0
    old = x
    x = x * a
    return np.sum(old * x + b)


def names_and_tuples_ag(x, y):
    a, b = x * 2.0, anp.cos(y)
    a = a + b
    a = a * 3.0
    old = x
    x = x * a
    return anp.sum(old * x + b)


def inner_layer(x, w, b):
    return np.tanh(x @ w + b)


def inner_layer_ag(x, w, b):
    return anp.tanh(x @ w + b)


def two_layers(x, w1, b1, w2, b2):
    return np.sum(inner_layer(inner_layer(x, w1, b1), w2, b2) ** 2)


def two_layers_ag(x, w1, b1, w2, b2):
    return anp.sum(inner_layer_ag(inner_layer_ag(x, w1, b1), w2, b2) ** 2)


def logsumexp(x):
    top = np.max(x)
    return top + np.log(np.sum(np.exp(x - top)))


def logsumexp_ag(x):
    top = anp.max(x)
    return top + anp.log(anp.sum(anp.exp(x - top)))


def mlp_loss(w1, b1, w2, b2, x, y):
    hidden = np.tanh(x @ w1 + b1)
    output = hidden @ w2 + b2
    return np.mean((output - y) ** 2)


def mlp_loss_ag(w1, b1, w2, b2, x, y):
    hidden = anp.tanh(x @ w1 + b1)
    output = hidden @ w2 + b2
    return anp.mean((output - y) ** 2)


def softmax_cross_entropy(w, x, labels):
    logits = x @ w
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(labels * log_probs, axis=1))


def softmax_cross_entropy_ag(w, x, labels):
    logits = x @ w
    shifted = logits - anp.max(logits, axis=1, keepdims=True)
    log_probs = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
    return -anp.mean(anp.sum(labels * log_probs, axis=1))


def scalar_math(x, y):
    return np.sin(x) * np.exp(y) + np.cos(x * y) + np.log(y) / x


def scalar_math_ag(x, y):
    return anp.sin(x) * anp.exp(y) + anp.cos(x * y) + anp.log(y) / x


CASES = [
    pytest.param(ufunc_chain, ufunc_chain_ag, (normal(5),), id="ufunc_chain"),
    pytest.param(
        broadcasting, broadcasting_ag, (normal(3, 4), normal(4), 1.3, normal(3, 1)),
        id="broadcasting",
    ),
    pytest.param(reductions, reductions_ag, (normal(3, 4),), id="reductions"),
    pytest.param(statistics, statistics_ag, (positive(3, 4),), id="statistics"),
    pytest.param(products, products_ag, (normal(3, 4), normal(4, 2), normal(2)), id="products"),
    pytest.param(shapes, shapes_ag, (normal(3, 4),), id="shapes"),
    pytest.param(indexing, indexing_ag, (normal(3, 4),), id="indexing"),
    pytest.param(fancy_indexing, fancy_indexing_ag, (np.array([-1.0, 0.5, 2.0, -0.3]),), id="fancy"),
    pytest.param(joining, joining_ag, (normal(3), normal(3)), id="joining"),
    pytest.param(piecewise, piecewise_ag, (np.array([-1.2, -0.2, 0.3, 0.7, 1.5]),), id="piecewise"),
    pytest.param(elementary, elementary_ag, (positive(4),), id="elementary"),
    pytest.param(powers, powers_ag, (positive(4), normal(4)), id="powers"),
    pytest.param(einsum_contractions, einsum_contractions_ag, (normal(3, 4), normal(4, 3)), id="einsum"),
    pytest.param(linear_algebra, linear_algebra_ag, (normal(3, 3), normal(3)), id="linear_algebra"),
    pytest.param(control_flow, control_flow_ag, (normal(4), 0), id="control_flow_if"),
    pytest.param(control_flow, control_flow_ag, (positive(4), 1), id="control_flow_elif_true"),
    pytest.param(control_flow, control_flow_ag, (-positive(4), 1), id="control_flow_elif_false"),
    pytest.param(control_flow, control_flow_ag, (normal(4), 2), id="control_flow_else"),
    pytest.param(names_and_tuples, names_and_tuples_ag, (normal(3), normal(3)), id="names_and_tuples"),
    pytest.param(
        two_layers, two_layers_ag,
        (normal(5, 3), normal(3, 4), normal(4), normal(4, 2), normal(2)),
        id="two_layers",
    ),
    pytest.param(logsumexp, logsumexp_ag, (normal(6),), id="logsumexp"),
    pytest.param(
        mlp_loss, mlp_loss_ag,
        (normal(4, 5), normal(5), normal(5, 2), normal(2), normal(6, 4), normal(6, 2)),
        id="mlp_loss",
    ),
    pytest.param(
        softmax_cross_entropy, softmax_cross_entropy_ag,
        (normal(4, 3), normal(5, 4), np.eye(3)[[0, 2, 1, 1, 0]]),
        id="softmax_cross_entropy",
    ),
    pytest.param(scalar_math, scalar_math_ag, (0.7, 1.3), id="scalar_math"),
]


def float_positions(args) -> list[int]:
    return [
        i for i, arg in enumerate(args)
        if isinstance(arg, float) or (isinstance(arg, np.ndarray) and arg.dtype.kind == "f")
    ]


@pytest.mark.parametrize("function, reference, args", CASES)
def test_matches_autograd(function, reference, args):
    positions = float_positions(args)
    value, gradients = pullback.value_and_gradient(function, wrt=tuple(positions))(*args)
    if len(positions) == 1:
        gradients = (gradients,)

    np.testing.assert_allclose(value, reference(*args), rtol=1e-12)
    for position, gradient_of_arg in zip(positions, gradients, strict=True):
        expected = autograd.grad(reference, position)(*args)
        assert np.shape(gradient_of_arg) == np.shape(args[position])
        np.testing.assert_allclose(
            gradient_of_arg, expected, rtol=1e-10, atol=1e-12,
            err_msg=f"gradient with respect to argument {position}",
        )


def two_outputs(x, y):
    return np.sin(x) * y, np.sum(x**2) * y


def test_vector_jacobian_product_matches_autograd():
    from autograd import make_vjp

    x, y = normal(4), normal(4)
    cotangent = (normal(4), normal(4))
    _, pullback_of_f = pullback.value_and_pullback(two_outputs, x, y)
    grad_x, grad_y = pullback_of_f(cotangent)

    def stacked(x, y):
        first = anp.sin(x) * y
        second = anp.sum(x**2) * y
        return anp.concatenate([first, second])

    flat = np.concatenate(cotangent)
    expected_x = make_vjp(stacked, 0)(x, y)[0](flat)
    expected_y = make_vjp(stacked, 1)(x, y)[0](flat)
    np.testing.assert_allclose(grad_x, expected_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_y, expected_y, rtol=1e-10, atol=1e-12)
