"""Recomputation in pullbacks: `checkpointed` functions run once forward and
once more when the pullback runs, give the same gradients as plain calls, and
replay NumPy Generator draws."""

import collections
import math

import numpy as np
import pytest
from gradcheck import check_gradient, check_pullback

import pullback
from pullback import (
    adjoint_source,
    checkpointed,
    differentiable_function,
    gradient,
    nn,
    value_and_pullback,
)
from pullback.errors import (
    ArgumentTypeError,
    DifferentiationError,
    PullbackError,
    UnsupportedSyntaxError,
)
from pullback.runtime.checkpoint import RecomputationError

calls = collections.Counter()


def count(name):
    calls[name] += 1


@pytest.fixture(autouse=True)
def reset_calls():
    calls.clear()


# The square(cos(x)) example of Swift's checkpointing tutorial.


@checkpointed
def counted_square(x):
    count("square")
    return x * x


def square_of_cosine(x):
    return counted_square(np.cos(x))


def test_square_cosine_forward_once():
    value, _ = value_and_pullback(square_of_cosine, 10.0)
    assert value == pytest.approx(math.cos(10.0) ** 2, rel=1e-15)
    assert calls["square"] == 1


def test_square_cosine_pullback_recomputes_once():
    _, pullback_of_square = value_and_pullback(square_of_cosine, 10.0)
    pullback_of_square(1.0)
    assert calls["square"] == 2


def test_square_cosine_gradient():
    x_bar = gradient(square_of_cosine)(10.0)
    assert x_bar == pytest.approx(-math.sin(20.0), rel=1e-12)
    assert x_bar == pytest.approx(-0.9129452507276277, rel=1e-12)


def test_square_cosine_differences():
    check_gradient(square_of_cosine, 10.0)


def test_square_cosine_output(capsys):
    @checkpointed
    def square(x):
        print("  Computing square...")
        return x * x

    def f(x):
        return square(np.cos(x))

    print("Running original computation...")
    _, backpropagate = value_and_pullback(f, 10.0)
    print("Running backpropagation...")
    x_bar = backpropagate(1.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "Running original computation...",
        "  Computing square...",
        "Running backpropagation...",
        "  Computing square...",
    ]
    assert x_bar == pytest.approx(-math.sin(20.0), rel=1e-12)


def test_checkpointed_plain_call():
    assert counted_square(3.0) == 9.0
    assert calls["square"] == 1


def test_checkpointed_idempotent():
    assert checkpointed(counted_square) is counted_square


# Same gradients with and without checkpointing.


def block(x, w):
    a = np.sin(x * w)
    b = np.tanh(a + x)
    return b * w + np.exp(-x * x)


block_checkpointed = checkpointed(block)


def plain_model(x, w):
    h = block(x, w)
    h = block(h, w)
    return np.sum(h * h)


def checkpointed_model(x, w):
    h = block_checkpointed(x, w)
    h = block_checkpointed(h, w)
    return np.sum(h * h)


def test_model_gradients_equal():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(6)
    w = rng.standard_normal(6)
    plain_x_bar, plain_w_bar = gradient(plain_model)(x, w)
    x_bar, w_bar = gradient(checkpointed_model)(x, w)
    assert np.allclose(x_bar, plain_x_bar, rtol=1e-13, atol=0.0)
    assert np.allclose(w_bar, plain_w_bar, rtol=1e-13, atol=0.0)


def test_model_differences():
    rng = np.random.default_rng(4)
    check_gradient(checkpointed_model, rng.standard_normal(6), rng.standard_normal(6))


def test_model_wrt_subset():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(6)
    w = rng.standard_normal(6)
    w_bar = check_gradient(checkpointed_model, x, w, wrt="w")
    plain_w_bar = gradient(plain_model, wrt="w")(x, w)
    assert np.allclose(w_bar, plain_w_bar, rtol=1e-13, atol=0.0)


def test_model_pullback_array_result():
    def checkpointed_features(x, w):
        return block_checkpointed(x, w) * 2.0

    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 4))
    check_pullback(checkpointed_features, x, w)


# Functions of two and three arguments.


@checkpointed
def weighted_product(a, b):
    count("binary")
    return np.sin(a) * b


@checkpointed
def three_way(a, b, c):
    count("ternary")
    return a * np.sin(b) + c * c * a


def test_binary_differences():
    def caller(a, b):
        return weighted_product(a, b) * a

    check_gradient(caller, 0.3, 0.7)
    check_gradient(caller, 0.3, 0.7, wrt="b")


def test_binary_counts():
    def caller(a, b):
        return weighted_product(a, b) * a

    gradient(caller)(0.3, 0.7)
    assert calls["binary"] == 2


def test_ternary_differences():
    def caller(a, b, c):
        return three_way(a, b, c) * c

    check_gradient(caller, 0.3, 0.7, 1.1)
    check_gradient(caller, 0.3, 0.7, 1.1, wrt=("a", "c"))


def test_ternary_arrays_differences():
    def caller(a, b, c):
        return np.sum(three_way(a, b, c))

    rng = np.random.default_rng(8)
    check_gradient(caller, *rng.standard_normal((3, 5)))


def test_ternary_counts():
    def caller(a, b, c):
        return three_way(a, b, c) * c

    gradient(caller)(0.3, 0.7, 1.1)
    assert calls["ternary"] == 2


# Nested checkpoints: a checkpointed function that calls another.


@checkpointed
def inner(a, b):
    count("inner")
    return np.sin(a) * b


@checkpointed
def outer(a, b):
    count("outer")
    return inner(a, b) * a


def nested(a, b):
    return outer(a, b) + a


def nested_plain(a, b):
    return np.sin(a) * b * a + a


def test_nested_differences():
    check_gradient(nested, 0.3, 0.7)


def test_nested_matches_plain():
    a_bar, b_bar = gradient(nested)(0.3, 0.7)
    plain_a_bar, plain_b_bar = gradient(nested_plain)(0.3, 0.7)
    assert a_bar == pytest.approx(plain_a_bar, rel=1e-14)
    assert b_bar == pytest.approx(plain_b_bar, rel=1e-14)


def test_nested_counts():
    _, pullback_of_nested = value_and_pullback(nested, 0.3, 0.7)
    assert calls["outer"] == 1
    assert calls["inner"] == 1
    pullback_of_nested(1.0)
    # The pullback recomputes outer's VJP, which calls inner plainly, and
    # then recomputes inner's VJP for outer's pullback.
    assert calls["outer"] == 2
    assert calls["inner"] == 3


# The generated source.


def test_source_shows_recompute():
    source = adjoint_source(square_of_cosine)
    assert "recompute" in source
    assert "counted_square" in source


def test_source_nested_recompute():
    assert "recompute" in adjoint_source(nested)


def test_checkpointed_gradient_direct():
    assert gradient(counted_square)(3.0) == 6.0


def test_checkpointed_source_direct():
    assert "counted_square" in adjoint_source(counted_square)


# NumPy Generators are replayed; global random state is rejected.


def noisy_scale(x, rng):
    return x * rng.standard_normal(np.shape(x))


noisy_scale_checkpointed = checkpointed(noisy_scale)


def noisy_plain(x, rng):
    return np.sum(noisy_scale(x, rng) * x)


def noisy_checkpointed(x, rng):
    return np.sum(noisy_scale_checkpointed(x, rng) * x)


def test_generator_gradient_matches_plain():
    x = np.array([0.5, -1.0, 2.0])
    plain = gradient(noisy_plain, wrt="x")(x, np.random.default_rng(11))
    replayed = gradient(noisy_checkpointed, wrt="x")(x, np.random.default_rng(11))
    assert np.array_equal(replayed, plain)


def test_generator_gradient_values():
    x = np.array([0.5, -1.0, 2.0])
    noise = np.random.default_rng(11).standard_normal(3)
    x_bar = gradient(noisy_checkpointed, wrt="x")(x, np.random.default_rng(11))
    assert np.allclose(x_bar, 2.0 * noise * x, rtol=1e-15, atol=0.0)


def test_generator_state_after_pullback():
    x = np.array([0.5, -1.0, 2.0])
    rng = np.random.default_rng(12)
    gradient(noisy_checkpointed, wrt="x")(x, rng)
    reference = np.random.default_rng(12)
    reference.standard_normal(3)
    # The recomputation must not advance the generator past the forward draws.
    assert rng.standard_normal() == reference.standard_normal()


@checkpointed
def global_noise(x):
    return x * np.random.standard_normal()


def test_global_random_raises():
    def caller(x):
        return global_noise(x) * x

    with pytest.raises(RecomputationError) as raised:
        gradient(caller)(2.0)
    assert "global_noise" in str(raised.value)
    assert isinstance(raised.value, pullback.PullbackError)


# differentiable_function: a differentiable callable from a VJP.


def square_vjp(x):
    count("square_vjp")
    return x * x, lambda v: 2.0 * x * v


square_from_vjp = differentiable_function(square_vjp)


def test_differentiable_function_value():
    assert square_from_vjp(3.0) == 9.0


def test_differentiable_function_rejects_non_callable():
    with pytest.raises(ArgumentTypeError) as info:
        differentiable_function(3.0)
    assert isinstance(info.value, PullbackError)
    assert isinstance(info.value, TypeError)
    assert "needs a callable VJP, got 3.0" in str(info.value)


def test_differentiable_function_caller():
    def caller(x):
        return square_from_vjp(np.sin(x))

    check_gradient(caller, 0.4)


def test_differentiable_function_direct():
    assert gradient(square_from_vjp)(3.0) == 6.0
    assert calls["square_vjp"] == 1


def test_differentiable_function_recomputed():
    # Swift's makeRecomputedInGradient: the pullback differentiates the
    # original function again instead of keeping its intermediates.
    def original(x):
        return np.cos(x) * np.cos(x)

    def recomputed_vjp(x):
        return original(x), lambda v: pullback.pullback(original, x)(v)

    recomputed = differentiable_function(recomputed_vjp)

    def caller(x):
        return recomputed(x) * 3.0

    check_gradient(caller, 10.0)
    assert gradient(caller)(10.0) == pytest.approx(-3.0 * math.sin(20.0), rel=1e-12)


# Names that the checkpointed function binds on only some paths.


@checkpointed
def branch_local(x, flag):
    if flag:
        t = np.sin(x)
        y = t * x
    else:
        y = x * 2.0
    return y


@checkpointed
def early_return(x, c):
    if c > 0:
        s = np.sin(x)
        return s * x
    q = np.cos(x)
    return q * x


@checkpointed
def without_else(x, c):
    y = x * 1.0
    if c > 0:
        s = np.exp(x)
        y = y * s
    return y


def sum_through_branch_local(x, flag):
    return np.sum(branch_local(x, flag) ** 2)


def sum_through_early_return(x, c):
    return np.sum(early_return(x, c) ** 2)


def sum_through_without_else(x, c):
    return np.sum(without_else(x, c) ** 2)


@pytest.mark.parametrize("flag", [True, False])
def test_branch_local_name_differences(flag):
    check_gradient(sum_through_branch_local, np.array([0.3, -0.7]), flag, wrt="x")


@pytest.mark.parametrize("c", [1, 0])
def test_early_return_differences(c):
    check_gradient(sum_through_early_return, np.array([0.3, -0.7]), c, wrt="x")


@pytest.mark.parametrize("c", [1, 0])
def test_branch_without_else_differences(c):
    check_gradient(sum_through_without_else, np.array([0.3, -0.7]), c, wrt="x")


# Errors in a checkpointed function surface before its forward pass runs.


@checkpointed
def uses_try(x):
    try:
        y = np.sin(x)
    except ValueError:
        y = x
    return y


@checkpointed
def uses_fft(x):
    y = np.fft.fft(x).real
    return y * x


def calls_uses_try(x):
    return np.sum(uses_try(x))


def calls_uses_fft(x):
    return np.sum(uses_fft(x))


@checkpointed
def checkpointed_power(x, n):
    if n == 0:
        return x * 1.0
    return checkpointed_power(x, n - 1) * x


def sum_of_power(x, n):
    return np.sum(checkpointed_power(x, n))


def test_checkpointed_syntax_error_before_forward():
    with pytest.raises(UnsupportedSyntaxError) as caught:
        pullback.value_and_pullback(calls_uses_try, np.ones(3))

    assert caught.value.lineno == uses_try.__wrapped__.__code__.co_firstlineno + 2
    assert "try statement" in str(caught.value)


def test_checkpointed_missing_rule_before_forward():
    with pytest.raises(DifferentiationError) as caught:
        pullback.value_and_pullback(calls_uses_fft, np.ones(3))

    assert "numpy.fft.fft has no derivative rule" in str(caught.value)


def test_recursive_checkpoint_differences():
    check_gradient(sum_of_power, np.array([0.5, -1.2]), 3, wrt="x")


# Random generators that the recomputation finds and replays.


@checkpointed
def noisy_from_list(x, generators):
    return x * generators[0].normal(size=x.shape)


def sum_of_noisy_from_list(x, generators):
    return np.sum(noisy_from_list(x, generators) ** 2)


@checkpointed
def noisy_from_random_state(x, state):
    return x * state.normal(size=x.shape)


def sum_of_noisy_from_random_state(x, state):
    return np.sum(noisy_from_random_state(x, state) ** 2)


def sum_of_squares_of_layer(layer, x):
    return np.sum(layer(x) ** 2)


def test_generator_in_list_is_replayed():
    x = np.array([1.0, 2.0, 3.0])
    noise = np.random.default_rng(1).normal(size=3)

    grad = pullback.gradient(sum_of_noisy_from_list, wrt="x")(x, [np.random.default_rng(1)])

    np.testing.assert_allclose(grad, 2 * x * noise**2, rtol=1e-12)


def test_random_state_is_replayed():
    x = np.array([1.0, 2.0, 3.0])
    noise = np.random.RandomState(1).normal(size=3)

    grad = pullback.gradient(sum_of_noisy_from_random_state, wrt="x")(
        x, np.random.RandomState(1))

    np.testing.assert_allclose(grad, 2 * x * noise**2, rtol=1e-12)


def test_dropout_generator_attribute_is_replayed():
    x = np.array([0.5, -1.0, 2.0, 1.5, -0.3, 0.7])

    def loss_with_fresh_layer(values):
        layer = nn.Dropout(0.5, rng=np.random.default_rng(3))
        return sum_of_squares_of_layer(layer, values)

    layer = nn.Dropout(0.5, rng=np.random.default_rng(3)).discarding_activations()
    grad = pullback.gradient(sum_of_squares_of_layer, wrt="x")(layer, x)

    eps = 1e-6
    expected = np.array([
        (loss_with_fresh_layer(x + eps * e) - loss_with_fresh_layer(x - eps * e)) / (2 * eps)
        for e in np.eye(x.size)
    ])
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


# Checkpointed methods, called on an object the function reads as a global
# or receives as an argument.


class Scaler:
    def __init__(self, w):
        self.w = w

    @checkpointed
    def apply(self, x):
        count("apply")
        return np.sin(x * self.w)

    @checkpointed
    def __call__(self, x):
        return np.tanh(x * self.w)


scaler = Scaler(np.array([0.5, -1.5, 2.0]))


def applies_global_scaler(x):
    return np.sum(scaler.apply(x) ** 2)


def applies_scaler_argument(layer, x):
    return np.sum(layer.apply(layer.apply(x)) * x)


def test_checkpointed_method_of_global_differences():
    check_gradient(applies_global_scaler, np.array([0.3, 0.9, -0.4]))


def test_checkpointed_method_of_argument_differences():
    check_gradient(applies_scaler_argument, Scaler(np.array([1.2, -0.7])),
                   np.array([0.4, -1.1]), wrt=1)


def test_checkpointed_method_recomputed_once():
    gradient(applies_global_scaler)(np.array([0.3, 0.9, -0.4]))
    # Once forward, once more in the pullback.
    assert calls["apply"] == 2
    assert "recompute scaler.apply(x)" in adjoint_source(applies_global_scaler)


# The forward pass of a checkpointed call runs the function compiled.


def test_forward_runs_compiled_function():
    source = adjoint_source(square_of_cosine)
    assert "_pb.run_checkpointed(counted_square, " in source
    code = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
    # The function as written keeps every local until it returns.
    assert not any("counted_square(" in line for line in code)


def test_primal_matches_function():
    from pullback.runtime.registry import primal_of

    x = np.array([0.2, -0.8, 1.5])
    value, pullback_of_primal = primal_of(block)(x, x[::-1].copy())
    np.testing.assert_array_equal(value, block(x, x[::-1].copy()))
    assert pullback_of_primal(np.ones(3)) == ()


def test_primal_source_frees_locals():
    from pullback.compiler.pipeline import compile_primal

    source = compile_primal(block).source
    assert source.startswith("# forward pass of block")
    assert "del a" in source


# Large recomputed values are checked against a fingerprint.


def large(seed=0, size=20000):
    return np.random.default_rng(seed).standard_normal(size)


def test_fingerprint_matches_same_values():
    from pullback.runtime.checkpoint import Fingerprint, fingerprint

    x = large()
    summary = fingerprint(x)
    assert isinstance(summary, Fingerprint)
    assert summary.matches(x.copy())
    # Last-bit differences, as multithreaded BLAS reductions may give, pass.
    assert summary.matches(x * (1.0 + 1e-15))


@pytest.mark.parametrize("change", [
    lambda x: x + 1e-6,
    lambda x: np.roll(x, 1),
    lambda x: x[::-1].copy(),
    lambda x: np.where(np.arange(x.size) == 7, x + 1.0, x),
    lambda x: x.astype(np.float32),
    lambda x: x[:-1].copy(),
    lambda x: list(x),
])
def test_fingerprint_rejects_different_values(change):
    from pullback.runtime.checkpoint import fingerprint

    x = large()
    assert not fingerprint(x).matches(change(x))


def test_fingerprint_other_layout():
    from pullback.runtime.checkpoint import fingerprint

    x = large().reshape(100, 200)
    fortran = np.asfortranarray(x)
    assert fingerprint(fortran).matches(x)
    assert fingerprint(x).matches(fortran)
    assert fingerprint(x).matches(fortran[:, ::1].T.T)


def test_fingerprint_keeps_nan_and_infinity_whole():
    from pullback.runtime.checkpoint import _same_value, fingerprint

    # A NaN or infinity makes the sums compare equal whatever else changed,
    # so such an array is kept and compared whole.
    x = large()
    x[3] = np.nan
    x[50] = np.inf
    assert fingerprint(x) is x
    assert _same_value(x.copy(), fingerprint(x))
    other = x.copy()
    other[3] = 0.0
    assert not _same_value(other, fingerprint(x))
    other = x.copy()
    other[5] += 1.0
    assert not _same_value(other, fingerprint(x))


@pytest.mark.parametrize("layout", ["C", "F"])
def test_fingerprint_rejects_swapped_elements(layout):
    from pullback.runtime.checkpoint import fingerprint

    # Indices 1 and 2 are not sampled, and a swap keeps both plain sums.
    x = np.asarray(large().reshape(100, 200), order=layout)
    swapped = x.copy(order=layout)
    swapped[0, [1, 2]] = x[0, [2, 1]]
    assert not fingerprint(x).matches(swapped)
    # Elements a whole block of the weighted sum apart.
    y = large(size=3 * 65536)
    moved = y.copy()
    moved[[1, 65537]] = y[[65537, 1]]
    assert not fingerprint(y).matches(moved)
    assert fingerprint(y).matches(y.copy())


def test_fingerprint_keeps_small_and_other_values():
    from pullback.runtime.checkpoint import Fingerprint, fingerprint

    small = np.ones(100)
    assert fingerprint(small) is small
    single = large().astype(np.float32)
    assert fingerprint(single) is single
    strided = large()[::2]
    assert fingerprint(strided) is strided
    pair = fingerprint((large(), 2.0))
    assert isinstance(pair, tuple) and isinstance(pair[0], Fingerprint)
    assert pair[1] == 2.0


shift = [0.0]


@checkpointed
def shifted(x):
    return np.sin(x) + shift[0]


def sum_of_squares_of_shifted(x):
    return np.sum(shifted(x) ** 2)


def test_large_changed_global_raises():
    x = large()
    value, pullback_of_f = value_and_pullback(sum_of_squares_of_shifted, x)
    shift[0] = 1e-3
    try:
        with pytest.raises(RecomputationError) as raised:
            pullback_of_f(1.0)
    finally:
        shift[0] = 0.0
    assert "shifted" in str(raised.value)


def test_large_unchanged_global_differences():
    x = large(size=10000)
    gradient_value = gradient(sum_of_squares_of_shifted)(x)
    np.testing.assert_allclose(gradient_value, 2.0 * np.sin(x) * np.cos(x), rtol=1e-12)


@checkpointed
def global_noise_large(x):
    return x * np.random.standard_normal(x.shape)


index_order = np.arange(20000)


@checkpointed
def reordered(x):
    return x[index_order]


def weighted_sum_of_reordered(x):
    return np.sum(reordered(x) * np.arange(20000.0))


def test_large_reordered_global_raises():
    x = large()
    value, pullback_of_f = value_and_pullback(weighted_sum_of_reordered, x)
    index_order[[1, 2]] = index_order[[2, 1]]
    try:
        with pytest.raises(RecomputationError) as raised:
            pullback_of_f(1.0)
    finally:
        index_order[[1, 2]] = index_order[[2, 1]]
    assert "reordered (" in str(raised.value)
    assert "test_checkpointing.py:" in str(raised.value)


offsets = np.zeros(20000)


@checkpointed
def offset(x):
    return x + offsets


def sum_of_finite_offset(x):
    y = offset(x)
    return np.sum(np.where(np.isnan(y), 0.0, y) ** 2)


def test_large_changed_global_with_nan_raises():
    x = large()
    x[1] = np.nan  # Not sampled, and it makes the plain sums NaN.
    value, pullback_of_f = value_and_pullback(sum_of_finite_offset, x)
    offsets[5] = 1.0  # Not sampled either.
    try:
        with pytest.raises(RecomputationError):
            pullback_of_f(1.0)
    finally:
        offsets[5] = 0.0


@checkpointed
def sine_and_square(x):
    return {"sine": np.sin(x), "square": x * x}


def product_of_dict_items(x):
    items = sine_and_square(x)
    return np.sum(items["sine"] * items["square"])


@pytest.mark.parametrize("size", [5, 20000])
def test_checkpointed_dict_result_differences(size):
    x = np.linspace(0.1, 1.0, size)
    gradient_value = gradient(product_of_dict_items)(x)
    expected = np.cos(x) * x * x + 2.0 * x * np.sin(x)
    np.testing.assert_allclose(gradient_value, expected, rtol=1e-12)
    if size == 5:
        check_gradient(product_of_dict_items, x)


def test_large_global_random_raises():
    def caller(x):
        return np.sum(global_noise_large(x) * x)

    with pytest.raises(RecomputationError):
        gradient(caller)(large())


class CountedTanh:
    def __init__(self, w):
        self.w = w

    @checkpointed
    def __call__(self, x):
        count("layer")
        return np.tanh(x * self.w)


counted_layer = CountedTanh(np.array([0.8, -1.3, 0.4]))


def calls_global_layer(x):
    return np.sum(counted_layer(x) ** 2)


def calls_layer_argument(layer, x):
    return np.sum(layer(x) * x)


def test_checkpointed_call_of_global_layer_recomputed():
    x = np.array([0.3, -0.6, 1.2])
    check_gradient(calls_global_layer, x)
    calls.clear()
    gradient(calls_global_layer)(x)
    assert calls["layer"] == 2


def test_checkpointed_call_of_layer_argument_recomputed():
    layer = CountedTanh(np.array([0.8, -1.3]))
    x = np.array([0.3, -0.6])
    check_gradient(calls_layer_argument, layer, x, wrt=1)
    calls.clear()
    w_bar, x_bar = gradient(calls_layer_argument)(layer, x)
    assert calls["layer"] == 2
    # d/dw sum(tanh(x w) x) = (1 - tanh(x w)^2) x^2.
    expected = (1.0 - np.tanh(x * layer.w) ** 2) * x * x
    np.testing.assert_allclose(w_bar.w, expected, rtol=1e-12)


sine_checkpointed = checkpointed(np.sin)
cumsum_checkpointed = checkpointed(np.cumsum)


def squares_of_checkpointed_sine(x):
    return np.sum(sine_checkpointed(x) ** 2)


def squares_of_checkpointed_cumsum(x):
    return np.sum(cumsum_checkpointed(x) ** 2)


def test_checkpointed_ufunc_differences():
    check_gradient(squares_of_checkpointed_sine, np.array([0.2, -1.1, 0.7]))


def test_checkpointed_library_function_rejected():
    with pytest.raises(DifferentiationError) as raised:
        gradient(squares_of_checkpointed_cumsum)(np.array([0.2, -1.1, 0.7]))
    assert "numpy.cumsum is differentiated here as a value" in str(raised.value)
