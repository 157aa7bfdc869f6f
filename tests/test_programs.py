"""Whole programs: each function combines language features, and its gradient
is checked against central finite differences in float64."""

import math
import warnings

import numpy as np
import programs_numpy_alias
import programs_numpy_plain
import pytest
from gradcheck import check_gradient, check_pullback, is_floating

import pullback

rng = np.random.default_rng(20240601)


def normal(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape)


# Chains of ufuncs.


def ufunc_chain(x):
    return np.sum(np.tanh(np.exp(np.sin(x)) * np.cos(x)))


def log_of_positive(x):
    return np.sum(np.log(x * x + 1.0))


def division_and_power(x, y):
    return np.sum(x / (1.0 + y**2) + y**3)


def power_with_array_exponent(x, y):
    return np.sum(x**y)


def reflected_operators(x):
    return np.sum(2.0 - x) + np.sum(1.0 / x) + np.sum(3.0 * -x)


def fan_out(x):
    y = np.sin(x)
    return np.sum(y * y * x + y)


def relu_weighted(x, w):
    return np.sum(np.maximum(x, 0.0) * w)


def comparison_mask(x):
    return np.sum(x * (x > 0))


def scalar_math(x, y):
    return math.sin(x) * math.exp(y) + math.cos(x * y) + math.log(y)


def builtin_abs(x):
    return abs(x) * 3.0 + float(x) * 2.0


def builtin_max_min(x, y):
    return max(x, y) * 2.0 + min(x, y)


def math_hypot(x, y):
    return math.hypot(x, y, 2.0) * x


def einsum_contraction(a, b):
    return np.einsum("ij,jk->", a, b) + np.sum(np.einsum("ij,jk->ik", a, b) ** 2)


# Broadcasting.


def bias_add(w, b):
    return np.sum(np.tanh(w + b))


def outer_broadcast(a, b):
    return np.sum(np.sin(a * b))


def scalar_times_array(s, x):
    return np.sum(s * x**2) + s


def column_minus_row(a, b):
    return np.sum((a - b) ** 2)


# Reductions.


def sum_keepdims(x):
    return np.sum(np.sum(x, axis=1, keepdims=True) * x)


def mean_axis(x):
    return np.sum(np.mean(x, axis=0) ** 2)


def sum_negative_axis(x):
    return np.sum(np.sin(np.sum(x, axis=-1)))


def sum_tuple_axis(x):
    return np.sum(np.sum(x, axis=(0, 2)) ** 2)


def sum_positional_axis(x):
    return np.sum(np.sum(x, 0) * np.sum(x, 1)[0])


# Matrix products and array methods.


def matmul_tanh(a, b):
    return np.sum(np.tanh(a @ b))


def matrix_vector_vector(a, v, w):
    return (a @ v) @ w


def gram_transpose(x, y):
    return np.sum((x.T @ x) * y)


def method_sum_axis(x):
    return np.sum(x.sum(axis=0) ** 2)


def reshape_then_matmul(x, y):
    return np.sum(np.sin(x.reshape(2, 6) @ y))


def method_mean(x):
    return x.mean() * 3.0 + x.sum()


def method_dot(x, y):
    return x.dot(y) + np.sum(np.sin(x))


def method_on_expression(x):
    return (x * 2.0).sum() + np.sin(x).mean()


# Subscripts and slices, read only.


def index_rows(x):
    return np.sum(x[1] * x[-1])


def index_columns(x):
    return np.sum(x[:, 0] * x[:, 2])


def index_new_axis(x, y):
    return np.sum(x[..., None] * y)


def slice_differences(x):
    return np.sum((x[1:-1] - x[:-2]) ** 2) + np.sum(x[2:] * x[1:-1])


def index_scalars(x):
    return x[-1, -1] * x[0, 0] + x[-2, 1] + x[1][2]


def index_repeated(x):
    return np.sum(x[0] * x[0]) + np.sum(x[0:2])


# Tuples and names.


def tuple_unpacking(x, y):
    a, b = x * 2.0, np.sin(y)
    b, a = a, b
    return np.sum(a * b)


def split_pair(x):
    return x[0], x[1] * 2.0


def unpack_call_result(x):
    first, second = split_pair(x)
    return np.sum(first * second)


def tuple_subscript(x, y):
    pair = (x, y * 3.0)
    return np.sum(pair[0] * pair[1])


def list_subscript(x):
    parts = [x, np.cos(x)]
    return np.sum(parts[1] * parts[0])


def augmented_names(x):
    y = x * 1.0
    y += x
    y *= 2.0
    y -= np.sin(x)
    y /= 3.0
    y **= 2
    return np.sum(y)


def reassign_old_and_new(x):
    old = x
    x = x * 2.0
    x = np.sin(x) + old
    return np.sum(old * x)


def annotated(x: np.ndarray) -> float:
    """A docstring, annotations, pass and assert are all allowed."""
    y: np.ndarray = x * 2.0
    pass
    assert y.shape == x.shape
    return np.sum(y * x)


# Control flow.


def conditional_expression(x):
    s = np.sum(x)
    return s * s if s > 0 else -s


def conditional_on_flag(x, flag):
    return np.sum(x * x) if flag else np.sum(np.sin(x))


def branches_with_returns(x, mode):
    if mode == 0:
        a = np.sin(x)
        return np.sum(a)
    elif mode == 1:
        b = x * x
        c = b + 1.0
    else:
        c = np.exp(x)
    return np.sum(c * x)


def if_without_else(x):
    y = x
    if np.sum(x) > 0:
        y = y * 3.0
    return np.sum(y * x)


def nested_branches(x, y):
    s = np.sum(x)
    if s > 0:
        if np.sum(y) > 0:
            z = x * y
        else:
            z = x - y
    else:
        z = np.sin(x) * y
    return np.sum(z)


def chained_comparison(x):
    s = np.sum(x * x)
    if 0.0 < s < 100.0:
        return s * 2.0
    return s


def and_or(x, y):
    a = x and y
    b = x or y
    return a * b


def and_or_with_flag(x, flag):
    first = flag and x
    second = (not flag) or x * 2.0
    return first * second + x


# Calls to other user functions.


def inner_square(x):
    return x * x


def middle(x, scale=1.0):
    return np.sin(inner_square(x)) * scale


def outer_call_chain(x):
    return np.sum(middle(x, scale=3.0) + middle(x))


def scaled(x, scale=2.0, shift=0.0):
    return scale * x + shift


def keyword_call(x, y):
    return np.sum(scaled(x, shift=y, scale=3.0) * scaled(y))


def called_twice(x, y):
    return np.sum(inner_square(x) + inner_square(y) + inner_square(inner_square(x)))


def keyword_only(x, *, scale=2.0):
    return np.sum(np.sin(x) * scale)


def with_default(x, power=2.0):
    return np.sum(x**power)


# Free variables from globals.

SCALE = 3.0
WEIGHTS = np.linspace(-1.0, 1.0, 5)


def uses_globals(x):
    return np.sum(SCALE * x * WEIGHTS)


# Names that look generated.


def generated_looking_names(d, x_bar):
    _pb = d * 2.0
    result = np.sin(x_bar)
    sin_x = np.sin(d)
    x = sin_x * _pb
    result_bar = x + result
    return np.sum(result_bar * x_bar)


def single_letter_names(d, g):
    ans = d * g
    rt = ans + 1.0
    return np.sum(rt * np.cos(d))


def parameter_and_its_bar(x, x_bar):
    return np.sum(x * x_bar + np.sin(x))


def temporary_looking_names(x):
    comparison = x * 2.0
    x_pow_2 = x**2
    if np.sum(x) > 0:
        w = comparison
    else:
        w = x_pow_2
    w_1 = w * 3.0
    sin_x = np.sin(x)
    return np.sum(w_1 + x_pow_2 + sin_x)


named_like_pullback_pullback = 5.0
named_like_pullback_vjp = 7.0


def named_like_pullback(x):
    return np.sum(x * named_like_pullback_pullback + named_like_pullback_vjp * x)


def local_named_np(x, y):
    np = 2.0
    return x**y * np


# More tuples, indexes and calls.


def swap_parameters(x, y):
    x, y = y, x
    return x * 2.0 + y


def parallel_assignment(x, y):
    x, y = y * 2.0, x * 3.0
    return x * y + x


def multiple_targets(x):
    a = b = x * 2.0
    return np.sum(a * b + a)


def nested_unpacking(x, y, z):
    (a, b), c = (x, y), z
    return np.sum(a * b * c)


def unpack_array_rows(x):
    a, b = x
    return np.sum(a * np.cos(b))


def fancy_index_repeats(x):
    return np.sum(x[[0, 0, 2]] * np.array([1.0, 2.0, 3.0]))


def boolean_mask(x):
    return np.sum(x[x > 0] ** 2)


def variable_index(x, i, j):
    return np.sum(x[i] * x[i:j])


def call_then_index(x):
    return np.sum(split_pair(x)[1])


def times_count(x, count):
    return x * count


def calls_with_int(x):
    return np.sum(times_count(x, 3))


def recursive_power(x, k):
    if k == 0:
        return 1.0
    return x * recursive_power(x, k - 1)


def calls_other_module(x):
    return programs_numpy_alias.tanh_of_cos(x) * 2.0


def else_returns_after_elif(x, k):
    if k == 0:
        y = x
    elif k == 1:
        y = x * 2.0
    else:
        return x * 3.0
    return y * x


def nested_else_returns(x, k):
    if k == 0:
        y = x
    else:
        if k == 1:
            y = x * 2.0
        else:
            return x * 3.0
    return y * x


# Models.


def logsumexp(x):
    top = np.max(x)
    return top + np.log(np.sum(np.exp(x - top)))


def logsumexp_of_affine(w, x):
    return logsumexp(x @ w) * 2.0


def mlp_loss(w1, b1, w2, b2, x, y):
    hidden = np.tanh(x @ w1 + b1)
    output = hidden @ w2 + b2
    return np.mean((output - y) ** 2)


def softmax_cross_entropy(w, x, labels):
    logits = x @ w
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(labels * log_probs, axis=1))


ONE_HOT = np.eye(3)[[0, 2, 1, 1, 0]]

CASES = [
    # Chains of ufuncs.
    pytest.param(ufunc_chain, (normal(5),), id="ufunc_chain"),
    pytest.param(log_of_positive, (normal(3, 2),), id="log_of_positive"),
    pytest.param(division_and_power, (normal(4), normal(4)), id="division_and_power"),
    pytest.param(power_with_array_exponent, (positive(4), normal(4)), id="power_array"),
    pytest.param(reflected_operators, (positive(3),), id="reflected_operators"),
    pytest.param(fan_out, (normal(4),), id="fan_out"),
    pytest.param(relu_weighted, (np.array([-1.5, -0.3, 0.4, 2.0]), normal(4)), id="relu"),
    pytest.param(comparison_mask, (np.array([-1.0, 0.5, 2.0]),), id="comparison_mask"),
    pytest.param(scalar_math, (0.7, 1.3), id="scalar_math"),
    pytest.param(builtin_abs, (-1.25,), id="builtin_abs"),
    pytest.param(builtin_max_min, (1.0, 2.0), id="builtin_max_min"),
    pytest.param(math_hypot, (1.5, -0.5), id="math_hypot"),
    pytest.param(einsum_contraction, (normal(2, 3), normal(3, 2)), id="einsum"),
    # Broadcasting.
    pytest.param(bias_add, (normal(3, 4), normal(4)), id="bias_add"),
    pytest.param(outer_broadcast, (normal(3, 1), normal(1, 4)), id="outer_broadcast"),
    pytest.param(scalar_times_array, (1.5, normal(2, 3)), id="scalar_times_array"),
    pytest.param(column_minus_row, (normal(3, 1), normal(4)), id="column_minus_row"),
    # Reductions.
    pytest.param(sum_keepdims, (normal(3, 4),), id="sum_keepdims"),
    pytest.param(mean_axis, (normal(3, 4),), id="mean_axis"),
    pytest.param(sum_negative_axis, (normal(3, 4),), id="sum_negative_axis"),
    pytest.param(sum_tuple_axis, (normal(2, 3, 4),), id="sum_tuple_axis"),
    pytest.param(sum_positional_axis, (normal(3, 4),), id="sum_positional_axis"),
    # Matrix products and array methods.
    pytest.param(matmul_tanh, (normal(3, 4), normal(4, 2)), id="matmul_tanh"),
    pytest.param(matrix_vector_vector, (normal(3, 4), normal(4), normal(3)), id="matvec"),
    pytest.param(gram_transpose, (normal(3, 4), normal(4, 4)), id="gram_transpose"),
    pytest.param(method_sum_axis, (normal(3, 4),), id="method_sum_axis"),
    pytest.param(reshape_then_matmul, (normal(3, 4), normal(6, 2)), id="reshape"),
    pytest.param(method_mean, (normal(3, 4),), id="method_mean"),
    pytest.param(method_dot, (normal(5), normal(5)), id="method_dot"),
    pytest.param(method_on_expression, (normal(4),), id="method_on_expression"),
    # Subscripts and slices.
    pytest.param(index_rows, (normal(3, 4),), id="index_rows"),
    pytest.param(index_columns, (normal(3, 4),), id="index_columns"),
    pytest.param(index_new_axis, (normal(3), normal(3, 4)), id="index_new_axis"),
    pytest.param(slice_differences, (normal(6),), id="slice_differences"),
    pytest.param(index_scalars, (normal(3, 4),), id="index_scalars"),
    pytest.param(index_repeated, (normal(3, 4),), id="index_repeated"),
    # Tuples and names.
    pytest.param(tuple_unpacking, (normal(4), normal(4)), id="tuple_unpacking"),
    pytest.param(unpack_call_result, (normal(2, 3),), id="unpack_call_result"),
    pytest.param(tuple_subscript, (normal(3), normal(3)), id="tuple_subscript"),
    pytest.param(list_subscript, (normal(3),), id="list_subscript"),
    pytest.param(augmented_names, (normal(4),), id="augmented_names"),
    pytest.param(reassign_old_and_new, (normal(4),), id="reassign_old_and_new"),
    pytest.param(annotated, (normal(3),), id="annotated"),
    # Control flow.
    pytest.param(conditional_expression, (positive(3),), id="conditional_true"),
    pytest.param(conditional_expression, (-positive(3),), id="conditional_false"),
    pytest.param(conditional_on_flag, (normal(3), True), id="flag_true"),
    pytest.param(conditional_on_flag, (normal(3), False), id="flag_false"),
    pytest.param(branches_with_returns, (normal(3), 0), id="branch_return_if"),
    pytest.param(branches_with_returns, (normal(3), 1), id="branch_elif"),
    pytest.param(branches_with_returns, (normal(3), 2), id="branch_else"),
    pytest.param(if_without_else, (positive(3),), id="if_taken"),
    pytest.param(if_without_else, (-positive(3),), id="if_skipped"),
    pytest.param(nested_branches, (positive(3), positive(3)), id="nested_true_true"),
    pytest.param(nested_branches, (positive(3), -positive(3)), id="nested_true_false"),
    pytest.param(nested_branches, (-positive(3), positive(3)), id="nested_false"),
    pytest.param(chained_comparison, (normal(3),), id="chained_comparison"),
    pytest.param(and_or, (1.5, 2.5), id="and_or"),
    pytest.param(and_or_with_flag, (1.5, True), id="and_or_flag_true"),
    pytest.param(and_or_with_flag, (1.5, False), id="and_or_flag_false"),
    # Calls to other user functions.
    pytest.param(outer_call_chain, (normal(4),), id="call_chain"),
    pytest.param(keyword_call, (normal(4), normal(4)), id="keyword_call"),
    pytest.param(called_twice, (normal(3), normal(3)), id="called_twice"),
    pytest.param(logsumexp_of_affine, (normal(3), normal(5, 3)), id="logsumexp_call"),
    # Free variables and names.
    pytest.param(uses_globals, (normal(5),), id="uses_globals"),
    pytest.param(generated_looking_names, (normal(3), normal(3)), id="generated_names"),
    pytest.param(single_letter_names, (normal(3), normal(3)), id="template_names"),
    pytest.param(parameter_and_its_bar, (normal(3), normal(3)), id="parameter_and_its_bar"),
    pytest.param(temporary_looking_names, (positive(3),), id="temporary_names_if"),
    pytest.param(temporary_looking_names, (-positive(3),), id="temporary_names_else"),
    pytest.param(named_like_pullback, (normal(3),), id="global_named_like_vjp"),
    pytest.param(local_named_np, (1.3, 0.7), id="local_named_np"),
    # More tuples, indexes and calls.
    pytest.param(swap_parameters, (1.0, 10.0), id="swap_parameters"),
    pytest.param(parallel_assignment, (1.5, 2.5), id="parallel_assignment"),
    pytest.param(multiple_targets, (normal(3),), id="multiple_targets"),
    pytest.param(nested_unpacking, (normal(3), normal(3), normal(3)), id="nested_unpacking"),
    pytest.param(unpack_array_rows, (normal(2, 3),), id="unpack_array_rows"),
    pytest.param(fancy_index_repeats, (normal(4),), id="fancy_index_repeats"),
    pytest.param(boolean_mask, (np.array([-1.0, 0.5, 2.0]),), id="boolean_mask"),
    pytest.param(variable_index, (normal(5, 3), 1, 3), id="variable_index"),
    pytest.param(call_then_index, (normal(2, 3),), id="call_then_index"),
    pytest.param(calls_with_int, (normal(3),), id="calls_with_int"),
    pytest.param(recursive_power, (1.3, 3), id="recursive_power"),
    pytest.param(calls_other_module, (normal(4),), id="calls_other_module"),
    pytest.param(else_returns_after_elif, (1.5, 0), id="elif_else_returns_if"),
    pytest.param(else_returns_after_elif, (1.5, 1), id="elif_else_returns_elif"),
    pytest.param(else_returns_after_elif, (1.5, 2), id="elif_else_returns_else"),
    pytest.param(nested_else_returns, (1.5, 0), id="nested_else_returns_if"),
    pytest.param(nested_else_returns, (1.5, 1), id="nested_else_returns_inner_if"),
    pytest.param(nested_else_returns, (1.5, 2), id="nested_else_returns_inner_else"),
    # Models.
    pytest.param(logsumexp, (normal(6),), id="logsumexp"),
    pytest.param(
        mlp_loss,
        (normal(4, 5), normal(5), normal(5, 2), normal(2), normal(6, 4), normal(6, 2)),
        id="mlp_loss",
    ),
    pytest.param(softmax_cross_entropy, (normal(4, 3), normal(5, 4), ONE_HOT), id="softmax_xent"),
    # NumPy under other names.
    pytest.param(programs_numpy_plain.sin_times_exp, (normal(4),), id="import_numpy"),
    pytest.param(programs_numpy_plain.row_norms, (normal(3, 2),), id="import_numpy_axis"),
    pytest.param(programs_numpy_alias.tanh_of_cos, (normal(4),), id="numpy_as_xp"),
    pytest.param(programs_numpy_alias.scalar_math, (0.4,), id="math_as_m"),
]


def check_program(function, *args):
    """Check a program's value, its gradient along three random directions,
    and that exactly its floating parameters get gradients."""
    expected_value = function(*args)
    value, gradients = pullback.value_and_gradient(function)(*args)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=0)
    if len(args) == 1:
        gradients = (gradients,)
    for arg, gradient_of_arg in zip(args, gradients, strict=True):
        if is_floating(arg):
            assert gradient_of_arg is not None
        else:
            assert gradient_of_arg is None
    for seed in range(3):
        check_gradient(function, *args, seed=seed)


@pytest.mark.parametrize("function, args", CASES)
def test_program_gradient(function, args):
    check_program(function, *args)


def test_corpus_size():
    assert len({case.values[0] for case in CASES}) >= 40


# Keyword arguments, defaults and wrt.


def test_keyword_arguments_at_call():
    x, y = normal(4), normal(4)
    check_gradient(division_and_power, x, y=y)
    check_gradient(division_and_power, y=y, x=x)


def test_keyword_only_parameter():
    x = normal(4)
    check_gradient(keyword_only, x)
    check_gradient(keyword_only, x, scale=0.5)


def test_default_parameter_gets_gradient():
    x = positive(3)
    grad_x, grad_power = check_gradient(with_default, x)
    expected = np.sum(x**2.0 * np.log(x))
    assert np.isclose(grad_power, expected)


def log_base_two(x):
    return math.log(x, 2)


def log_base_parameter(x, base):
    return math.log(x, base)


def test_log_with_literal_base_no_warning():
    # A rule template tests `base is None`, and Python warns (or raises,
    # under -W error) where the compiled code compares a literal with `is`.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient = check_gradient(log_base_two, 3.0)
        check_gradient(log_base_parameter, 3.0, 2.0)
    assert gradient == pytest.approx(1.0 / (3.0 * math.log(2.0)))
    assert " is None" not in pullback.adjoint_source(log_base_two)


def test_default_parameter_overridden():
    x = positive(3)
    check_gradient(with_default, x, 3.0)
    check_gradient(with_default, x, power=0.5)


def wrt_three(x, y, z):
    return np.sum(x * np.sin(y)) * z


@pytest.mark.parametrize(
    "wrt, expected_names",
    [
        ("y", ("y",)),
        (1, ("y",)),
        (-1, ("z",)),
        (("x", 2), ("x", "z")),
        ((2, "x"), ("z", "x")),
        (("z", "y", "x"), ("z", "y", "x")),
        ([0, 1], ("x", "y")),
    ],
)
def test_wrt_forms(wrt, expected_names):
    args = {"x": normal(3), "y": normal(3), "z": 1.7}
    gradients = check_gradient(wrt_three, args["x"], args["y"], args["z"], wrt=wrt)
    if len(expected_names) == 1:
        gradients = (gradients,)
    assert len(gradients) == len(expected_names)
    for name, gradient_of_name in zip(expected_names, gradients, strict=True):
        assert np.shape(gradient_of_name) == np.shape(args[name])


def test_wrt_order_follows_request():
    x, y, z = normal(3), normal(3), 1.7
    grad_z, grad_x = pullback.gradient(wrt_three, wrt=("z", "x"))(x, y, z)
    expected_x, _, expected_z = pullback.gradient(wrt_three)(x, y, z)
    np.testing.assert_allclose(grad_x, expected_x)
    np.testing.assert_allclose(grad_z, expected_z)


def integer_and_bool_parameters(x, n, flag, label):
    y = x * n
    if flag:
        y = y + 1.0
    return np.sum(y * y)


def test_int_and_bool_parameters_get_none():
    x = normal(3)
    gradients = check_gradient(integer_and_bool_parameters, x, 3, True, "label")
    grad_x, grad_n, grad_flag, grad_label = gradients
    assert grad_n is None
    assert grad_flag is None
    assert grad_label is None
    np.testing.assert_allclose(grad_x, 2 * (3 * x + 1.0) * 3)


def weighted_by_counts(x, counts):
    return np.sum(np.sin(x) * counts)


def test_integer_array_parameter_gets_none():
    x = normal(3)
    counts = np.array([1, 2, 3])
    grad_x, grad_counts = check_gradient(weighted_by_counts, x, counts)
    assert grad_counts is None
    np.testing.assert_allclose(grad_x, np.cos(x) * counts)


def scaled_by_indexed_counts(x, counts):
    return x * 0.5 * counts[0] + x * counts[1]


def summed_with_sliced_counts(x, counts):
    return np.sum(x * counts[:2])


def test_indexed_integer_array_gets_none():
    # The adjoint of indexing an integer array is built in its dtype; it must
    # still come back as None, never as truncated integers.
    counts = np.array([2, 5, 7])

    grad_x, grad_counts = check_gradient(scaled_by_indexed_counts, 3.0, counts)
    assert grad_counts is None
    assert grad_x == pytest.approx(6.0)

    grad_x, grad_counts = check_gradient(summed_with_sliced_counts, normal(2), counts)
    assert grad_counts is None
    np.testing.assert_allclose(grad_x, counts[:2])


def test_integer_value_in_float_position():
    grad_s, grad_x = check_gradient(scalar_times_array, 2, normal(3))
    assert grad_s is None


# Tuple results.


def two_outputs(x, y):
    return np.sin(x) * y, np.sum(x**2)


def nested_outputs(x):
    return (x * 2.0, (np.cos(x), np.sum(x)))


def test_tuple_result_pullback():
    x, y = normal(3), normal(3)
    check_pullback(two_outputs, x, y)
    check_pullback(two_outputs, x, y, wrt="y")


def test_tuple_result_pullback_values():
    x, y = normal(3), normal(3)
    value, pullback_of_f = pullback.value_and_pullback(two_outputs, x, y)
    first_bar = normal(3)
    second_bar = 2.0
    grad_x, grad_y = pullback_of_f((first_bar, second_bar))
    np.testing.assert_allclose(grad_x, first_bar * y * np.cos(x) + second_bar * 2 * x)
    np.testing.assert_allclose(grad_y, first_bar * np.sin(x))


def test_nested_tuple_result_pullback():
    check_pullback(nested_outputs, normal(4))


def test_array_result_pullback():
    check_pullback(ufunc_chain_elementwise, normal(2, 3))


def ufunc_chain_elementwise(x):
    return np.tanh(np.exp(np.sin(x)) * np.cos(x))


def test_pullback_alone():
    x = normal(3)
    pullback_of_f = pullback.pullback(ufunc_chain_elementwise, x)
    cotangent = normal(3)
    value, pullback_again = pullback.value_and_pullback(ufunc_chain_elementwise, x)
    np.testing.assert_allclose(pullback_of_f(cotangent), pullback_again(cotangent))


def test_pullback_called_twice():
    x = normal(3)
    value, pullback_of_f = pullback.value_and_pullback(ufunc_chain_elementwise, x)
    first = pullback_of_f(np.ones(3))
    second = pullback_of_f(np.ones(3))
    np.testing.assert_allclose(first, second)
    doubled = pullback_of_f(2.0 * np.ones(3))
    np.testing.assert_allclose(doubled, 2.0 * first)


# Free variables that change after compiling.


def make_adjustable_closure():
    factor = 2.0

    def scaled_square(x):
        return np.sum(factor * x**2)

    def set_factor(value):
        nonlocal factor
        factor = value

    return scaled_square, set_factor


def test_closure_variable():
    scaled_square, _ = make_adjustable_closure()
    x = normal(3)
    np.testing.assert_allclose(check_gradient(scaled_square, x), 4.0 * x)


def test_closure_cell_changed_after_compile():
    scaled_square, set_factor = make_adjustable_closure()
    x = normal(3)
    pullback.differentiable(scaled_square)
    gradient_of_f = pullback.gradient(scaled_square)
    np.testing.assert_allclose(gradient_of_f(x), 4.0 * x)

    set_factor(5.0)
    np.testing.assert_allclose(gradient_of_f(x), 10.0 * x)
    np.testing.assert_allclose(pullback.value_and_gradient(scaled_square)(x)[0], 5.0 * np.sum(x**2))
    check_gradient(scaled_square, x)


def make_closure_over_array(weights):
    def weighted(x):
        return np.sum(np.sin(x) * weights)

    return weighted


def test_closure_over_array():
    weights = normal(4)
    weighted = make_closure_over_array(weights)
    x = normal(4)
    np.testing.assert_allclose(check_gradient(weighted, x), np.cos(x) * weights)


def test_closures_from_one_factory_stay_apart():
    first = make_closure_over_array(np.ones(3))
    second = make_closure_over_array(3.0 * np.ones(3))
    x = normal(3)
    np.testing.assert_allclose(pullback.gradient(first)(x), np.cos(x))
    np.testing.assert_allclose(pullback.gradient(second)(x), 3.0 * np.cos(x))


ADJUSTABLE_SCALE = 2.0


def uses_adjustable_global(x):
    return np.sum(ADJUSTABLE_SCALE * x * x)


def test_global_changed_after_compile():
    global ADJUSTABLE_SCALE
    x = normal(3)
    gradient_of_f = pullback.gradient(uses_adjustable_global)
    np.testing.assert_allclose(gradient_of_f(x), 4.0 * x)
    try:
        ADJUSTABLE_SCALE = 7.0
        np.testing.assert_allclose(gradient_of_f(x), 14.0 * x)
    finally:
        ADJUSTABLE_SCALE = 2.0


def uses_called_global(x):
    return np.sum(helper_that_changes(x))


def helper_that_changes(x):
    return x * x


def test_called_global_function_replaced():
    x = normal(3)
    gradient_of_f = pullback.gradient(uses_called_global)
    np.testing.assert_allclose(gradient_of_f(x), 2.0 * x)
    global helper_that_changes
    original = helper_that_changes

    def cube(x):
        return x * x * x

    try:
        helper_that_changes = cube
        np.testing.assert_allclose(gradient_of_f(x), 3.0 * x * x)
    finally:
        helper_that_changes = original


# Lambdas.

square_sum = lambda x: np.sum(x * x)  # noqa: E731
sin_sum, cos_sum = (lambda x: np.sum(np.sin(x))), (lambda x: np.sum(np.cos(x)))  # noqa: E731
double, triple = lambda x: x * 2.0, lambda x: x * 3.0  # noqa: E731
by_x, by_y = lambda x: np.sum(x**2), lambda y: np.sum(y**3)  # noqa: E731


def test_lambda():
    x = normal(3)
    np.testing.assert_allclose(check_gradient(square_sum, x), 2 * x)


def test_two_lambdas_on_one_line():
    x = normal(3)
    np.testing.assert_allclose(check_gradient(sin_sum, x), np.cos(x))
    np.testing.assert_allclose(check_gradient(cos_sum, x), -np.sin(x))


def test_two_lambdas_differing_in_constants():
    assert check_gradient(double, 1.5) == pytest.approx(2.0)
    assert check_gradient(triple, 1.5) == pytest.approx(3.0)


def test_two_lambdas_differing_in_parameters():
    x = normal(3)
    np.testing.assert_allclose(check_gradient(by_x, x), 2 * x)
    np.testing.assert_allclose(check_gradient(by_y, x), 3 * x**2)


def calls_lambda(x):
    return square_sum(np.sin(x)) + triple(np.sum(x))


plus_one, minus_one = lambda x: x + 1.0, lambda x: x - 1.0  # noqa: E731


def test_two_lambdas_differing_in_operator():
    assert pullback.value_and_gradient(plus_one)(1.5) == (2.5, 1.0)
    assert pullback.value_and_gradient(minus_one)(1.5) == (0.5, 1.0)
    check_gradient(minus_one, 1.5)


def test_function_calling_lambdas():
    x = normal(3)
    np.testing.assert_allclose(check_gradient(calls_lambda, x), 2 * np.sin(x) * np.cos(x) + 3.0)


def make_closure_calling_closure():
    scale = 1.0

    def outer(x):
        return np.sum(inner(x) * scale)

    def inner(x):
        return x * scale

    def set_scale(value):
        nonlocal scale
        scale = value

    return outer, set_scale


def test_closure_calling_closure_after_change():
    outer, set_scale = make_closure_calling_closure()
    x = normal(3)
    np.testing.assert_allclose(pullback.gradient(outer)(x), np.ones(3))
    set_scale(2.0)
    np.testing.assert_allclose(pullback.gradient(outer)(x), 4.0 * np.ones(3))


# Containers as parameters.


def unpack_tuple_parameter(pair):
    a, b = pair
    return np.sum(a * b)


def index_list_parameter(items):
    return np.sum(items[0] * np.sin(items[1]))


def index_dict_parameter(params):
    return np.sum(params["w"] * params["b"])


def test_tuple_parameter():
    a, b = normal(3), normal(3)
    grad_a, grad_b = check_gradient(unpack_tuple_parameter, (a, b))
    np.testing.assert_allclose(grad_a, b)
    np.testing.assert_allclose(grad_b, a)


def test_list_parameter():
    a, b = normal(3), normal(3)
    grad_a, grad_b = check_gradient(index_list_parameter, [a, b])
    np.testing.assert_allclose(grad_a, np.sin(b))
    np.testing.assert_allclose(grad_b, a * np.cos(b))


def test_dict_parameter():
    w, b = normal(3), normal(3)
    gradients = pullback.gradient(index_dict_parameter)({"w": w, "b": b})
    assert set(gradients) == {"w", "b"}
    np.testing.assert_allclose(gradients["w"], b)
    np.testing.assert_allclose(gradients["b"], w)


# Dtypes.


def test_float32_gives_float32_gradients():
    x64, y64 = normal(3, 4), normal(4, 2)
    x32, y32 = x64.astype(np.float32), y64.astype(np.float32)
    grad_x32, grad_y32 = pullback.gradient(matmul_tanh)(x32, y32)
    assert grad_x32.dtype == np.float32
    assert grad_y32.dtype == np.float32
    grad_x64, grad_y64 = pullback.gradient(matmul_tanh)(x64, y64)
    np.testing.assert_allclose(grad_x32, grad_x64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad_y32, grad_y64, rtol=1e-4, atol=1e-5)


def test_float32_broadcast_gradients():
    w = normal(3, 4).astype(np.float32)
    b = normal(4).astype(np.float32)
    grad_w, grad_b = pullback.gradient(bias_add)(w, b)
    assert grad_w.dtype == np.float32
    assert grad_b.dtype == np.float32
    assert grad_b.shape == (4,)


def test_float32_with_python_float_scalar():
    x = normal(2, 3).astype(np.float32)
    grad_s, grad_x = pullback.gradient(scalar_times_array)(1.5, x)
    assert grad_x.dtype == np.float32
    assert np.shape(grad_s) == ()
    assert grad_s == pytest.approx(float(np.sum(x.astype(np.float64) ** 2)) + 1.0, rel=1e-5)


def test_float32_mlp():
    args = (normal(4, 5), normal(5), normal(5, 2), normal(2), normal(6, 4), normal(6, 2))
    args32 = tuple(a.astype(np.float32) for a in args)
    for gradient_of_arg in pullback.gradient(mlp_loss, wrt=(0, 1, 2, 3))(*args32):
        assert gradient_of_arg.dtype == np.float32


def test_numpy_float64_scalar_argument():
    x = np.float64(0.3)
    gradient_of_x = check_gradient(scalar_math, x, np.float64(1.1), wrt=0)
    assert isinstance(gradient_of_x, np.float64)


# Generated source.


def test_adjoint_source_is_valid_python():
    source = pullback.adjoint_source(mlp_loss)
    compile(source, "<adjoint>", "exec")
    assert "_bar" in source


def test_user_names_survive_in_source():
    source = pullback.adjoint_source(generated_looking_names)
    compile(source, "<adjoint>", "exec")
    assert "def " in source


GLOBAL_WEIGHTS = np.array([1.0, 2.0, 3.0])
GLOBAL_SCALE = 2.0


def scaled_by_global_array(x):
    return (x * GLOBAL_WEIGHTS) @ GLOBAL_WEIGHTS


def scaled_by_global_number(x):
    return x * GLOBAL_SCALE * x


def test_number_argument_with_global_array():
    # x is a Python float, but the function computes arrays from a global:
    # the gradient is W @ W, a number.
    grad = pullback.gradient(scaled_by_global_array)(2.0)

    assert np.ndim(grad) == 0
    assert grad == pytest.approx(14.0)
    check_gradient(scaled_by_global_array, 2.0)


def test_number_argument_with_global_rebound_to_array():
    global GLOBAL_SCALE
    assert pullback.gradient(scaled_by_global_number)(1.5) == pytest.approx(6.0)

    GLOBAL_SCALE = np.array([1.0, 2.0])
    try:
        _, pullback_of_f = pullback.value_and_pullback(scaled_by_global_number, 1.5)
        cotangent = pullback_of_f(np.ones(2))
    finally:
        GLOBAL_SCALE = 2.0

    assert cotangent == pytest.approx(2 * 1.5 * (1.0 + 2.0))


def write_into_integer_array(x):
    y = np.zeros(x.shape[0], dtype=np.int64)
    y[0] = x[0] * 10.0  # Truncated to an integer: no derivative flows here.
    return np.sum(y * x)


def write_into_integer_array_then_branch(x):
    y = np.zeros(x.shape[0], dtype=np.int64)
    y[0] = x[0] * 10.0
    if x[1] > -100.0:
        z = x * 2.0
    else:
        z = y * x
    return np.sum(z * x)


def test_value_written_into_integer_array_has_no_derivative():
    x = np.array([0.37, 0.5, 0.25])

    grad = check_gradient(write_into_integer_array, x)

    np.testing.assert_allclose(grad, [3.0, 0.0, 0.0])


def test_integer_array_write_before_branch():
    check_gradient(write_into_integer_array_then_branch, np.array([0.37, 0.5, 0.25]))


GLOBAL_MATRIX = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def global_matrix_method(x):
    return np.sum(GLOBAL_MATRIX.dot(x) ** 2) + GLOBAL_MATRIX.sum() * np.sum(x)


def test_method_of_global_array():
    check_gradient(global_matrix_method, np.array([0.5, -1.0]))
