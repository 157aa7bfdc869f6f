"""Cotangents that the pullback overwrites in place.

Where the ReLU adjoint's incoming cotangent is a fresh array that nothing
else reads, the generated pullback passes `overwrite=True` and the mask is
applied in that array's memory. Arithmetic at the last read of a fresh
cotangent is written into it with `add_into`, `multiply_into` and the like.
These tests check where the compiler does and does not allow it, and that no
caller-visible array ever changes.
"""

import math

import numpy as np
from gradcheck import check_gradient, check_pullback

import pullback

rng = np.random.default_rng(7)


def relu_layer(w, x, v):
    return np.sum(np.maximum(x @ w, 0.0) @ v)


def relu_layer_seeded(w, x):
    return np.maximum(x @ w, 0.0)


def relu_of_input(x):
    return np.maximum(x, 0.0)


def relu_read_twice(w, x):
    z = x @ w
    h = np.maximum(z, 0.0)
    return np.sum(h * h) + np.sum(h)


def maximum_of_two(w, v, x):
    return np.sum(np.maximum(x @ w, x @ v))


def minimum_after_matmul(w, x, v):
    return np.mean((np.minimum(x @ w, 0.5) @ v) ** 2)


def relu_mse(w1, b1, w2, x, y):
    h = np.maximum(x @ w1 + b1, 0.0)
    return np.mean((h @ w2 - y) ** 2)


def test_relu_after_matmul_overwrites():
    source = pullback.adjoint_source(relu_mse)

    assert "maximum_share(h_bar, x_matmul_w1_plus_b1, 0.0, overwrite=True)" in source


def test_relu_after_matmul_gradient():
    w1, b1, w2 = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal((5, 2))
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))

    check_gradient(relu_mse, w1, b1, w2, x, y, wrt=(0, 1, 2))


def test_seed_cotangent_not_overwritten():
    w, x = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    seed = rng.standard_normal((5, 4))
    original = seed.copy()

    _, pullback_of_f = pullback.value_and_pullback(relu_of_input, x @ w)
    pullback_of_f(seed)

    assert "overwrite=True" not in pullback.adjoint_source(relu_of_input)
    np.testing.assert_array_equal(seed, original)


def test_seed_through_matmul_not_overwritten():
    w, x = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    seed = rng.standard_normal((5, 4))
    original = seed.copy()

    _, pullback_of_f = pullback.value_and_pullback(relu_layer_seeded, w, x)
    pullback_of_f(seed)

    np.testing.assert_array_equal(seed, original)


def test_cotangent_read_twice_not_overwritten():
    w, x = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))

    source = pullback.adjoint_source(relu_read_twice)

    assert "overwrite=True" not in source
    check_gradient(relu_read_twice, w, x)


def test_cotangent_shared_by_both_operands_not_overwritten():
    w, v, x = (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)),
               rng.standard_normal((5, 3)))

    source = pullback.adjoint_source(maximum_of_two)

    assert "overwrite=True" not in source
    check_gradient(maximum_of_two, w, v, x)


def test_minimum_overwrites_and_matches_differences():
    w, x, v = (rng.standard_normal((3, 4)), rng.standard_normal((5, 3)),
               rng.standard_normal((4, 2)))

    assert "overwrite=True" in pullback.adjoint_source(minimum_after_matmul)
    check_gradient(minimum_after_matmul, w, x, v)


def test_pullback_called_twice_gives_same_result():
    w, x = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    seed = rng.standard_normal((5, 4))

    _, pullback_of_f = pullback.value_and_pullback(relu_layer_seeded, w, x)
    first = pullback_of_f(seed)
    second = pullback_of_f(seed)

    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_overwritten_ties_get_half():
    # The first column of w is zero, so x @ w is exactly 0 in its first
    # column: the ReLU is at its kink there and gets half the cotangent. The
    # 256x128 float64 cotangent is large enough to be overwritten.
    w = rng.standard_normal((2, 128))
    w[:, 0] = 0.0
    x = rng.standard_normal((256, 2))
    v = rng.standard_normal((128, 1))
    z = x @ w

    grad_w = pullback.gradient(relu_layer, wrt="w")(w, x, v)

    assert "overwrite=True" in pullback.adjoint_source(relu_layer, wrt="w")
    share = np.where(z > 0, 1.0, np.where(z == 0, 0.5, 0.0))
    np.testing.assert_allclose(grad_w, x.T @ (share * v.T), rtol=1e-12, atol=1e-12)


def test_overwritten_cotangent_keeps_float32():
    w = rng.standard_normal((3, 256)).astype(np.float32)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    v = rng.standard_normal((256, 2)).astype(np.float32)
    w[:, 0] = 0.0  # A tie in every row of the first column.

    grad_w = pullback.gradient(relu_layer, wrt="w")(w, x, v)

    assert grad_w.dtype == np.float32
    share = np.where(x @ w > 0, 1.0, np.where(x @ w == 0, 0.5, 0.0))
    expected = x.T @ (share * v.sum(axis=1))
    np.testing.assert_allclose(grad_w, expected, rtol=1e-4, atol=1e-3)


def test_overwrite_pullback_twice_same_result():
    w, x, v = (rng.standard_normal((3, 256)), rng.standard_normal((256, 3)),
               rng.standard_normal((256, 2)))

    _, pullback_of_f = pullback.value_and_pullback(relu_layer, w, x, v)
    first = pullback_of_f(1.0)
    second = pullback_of_f(1.0)

    for once, again in zip(first, second, strict=True):
        np.testing.assert_array_equal(once, again)


def test_maximum_share_overwrites_large_array():
    cotangent = rng.standard_normal(1 << 16)
    a = rng.standard_normal(1 << 16)
    expected = cotangent * (a > 0.0)

    share = pullback.runtime.maximum_share(cotangent, a, 0.0, overwrite=True)

    assert share is cotangent
    np.testing.assert_array_equal(share, expected)


def test_maximum_share_small_array_not_overwritten():
    cotangent = rng.standard_normal(16)
    original = cotangent.copy()
    a = rng.standard_normal(16)

    share = pullback.runtime.maximum_share(cotangent, a, 0.0, overwrite=True)

    assert share is not cotangent
    np.testing.assert_array_equal(cotangent, original)


def test_overwrite_with_relu_pullback_checks():
    w, x = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))

    check_pullback(relu_layer_seeded, w, x)


# Arithmetic written into a dead cotangent.


def sin_times_tanh(x):
    a = np.sin(x)
    b = a * x
    c = np.tanh(b)
    return c + x


def sin_times_tanh_sum(x):
    return np.sum(sin_times_tanh(x))


def scaled_by_row(a, w):
    b = np.tanh(a) * w
    return np.sum(np.tanh(b) * a)


def scaled_by_numpy_scalar(x):
    b = np.tanh(x) * np.float32(3.0)
    return np.sum(np.tanh(b) * x)


def cotangent_passed_on(x, w):
    b = np.tanh(x * w)
    c = np.tanh(b)
    return np.sum(c * w + b)


def test_block_adjoint_writes_into_dead_cotangent():
    source = pullback.adjoint_source(sin_times_tanh)

    assert "_pb.multiply_into(b_bar, a)" in source
    assert "_pb.add_into(" in source


def test_block_adjoint_matches_differences():
    x = rng.standard_normal(7)

    check_pullback(sin_times_tanh, x)
    check_gradient(sin_times_tanh_sum, x)


def test_block_adjoint_keeps_seed_and_repeats():
    # Arrays of 256 KiB, large enough for the in-place writes.
    x = rng.standard_normal((256, 128))
    seed = rng.standard_normal((256, 128))
    original = seed.copy()

    _, pullback_of_f = pullback.value_and_pullback(sin_times_tanh, x)
    first = pullback_of_f(seed)
    second = pullback_of_f(seed)

    np.testing.assert_array_equal(seed, original)
    np.testing.assert_array_equal(first, second)


def test_broadcast_operand_falls_back():
    a, w = rng.standard_normal((4, 3)), rng.standard_normal(3)

    check_gradient(scaled_by_row, a, w)


def test_float32_cotangent_stays_float32():
    a = rng.standard_normal((4, 3)).astype(np.float32)
    w = rng.standard_normal(3).astype(np.float32)

    grad_a, grad_w = pullback.gradient(scaled_by_row)(a, w)

    assert grad_a.dtype == np.float32
    assert grad_w.dtype == np.float32


def test_numpy_scalar_operand_matches_differences():
    check_gradient(scaled_by_numpy_scalar, rng.standard_normal(5))


def test_fanned_out_cotangent_matches_differences():
    x, w = rng.standard_normal(6), rng.standard_normal(6)

    check_gradient(cotangent_passed_on, x, w)


def test_into_helpers_write_in_place():
    cotangent = rng.standard_normal(1 << 16)
    other = rng.uniform(1.0, 2.0, 1 << 16)
    helpers = (
        (pullback.runtime.add_into, np.add),
        (pullback.runtime.subtract_into, np.subtract),
        (pullback.runtime.multiply_into, np.multiply),
        (pullback.runtime.divide_into, np.divide),
    )
    for helper, operation in helpers:
        target = cotangent.copy()
        expected = operation(target, other)

        result = helper(target, other)

        assert result is target
        np.testing.assert_array_equal(result, expected)


def test_into_helpers_fall_back_without_room():
    size = 1 << 16
    float32 = np.ones(size, dtype=np.float32)
    read_only = np.broadcast_to(np.float64(2.0), (size,))
    cases = (
        (np.ones(16), np.ones(16)),                 # Too small to be worth it.
        (np.ones(size), np.ones((2, size))),       # The result is larger.
        (float32, np.ones(size)),                  # float64 promotes the result.
        (float32, np.float64(2.0)),                # So does a NumPy float64 scalar.
        (read_only, np.ones(size)),                # A broadcast view is read-only.
    )
    for cotangent, other in cases:
        before = np.array(cotangent)

        result = pullback.runtime.multiply_into(cotangent, other)

        assert result is not cotangent
        np.testing.assert_array_equal(result, before * other)
        np.testing.assert_array_equal(cotangent, before)


def product_of_numbers(x, y):
    a = math.sin(x)
    b = a * y
    return b * x + a


def test_numbers_vjp_calls_no_into_helper():
    source = pullback.adjoint_source(product_of_numbers)
    numbers_part = source.split("def product_of_numbers_vjp_for_numbers")[1]

    assert "_into(" not in numbers_part
    check_gradient(product_of_numbers, 0.7, -1.3)


# Forward values that the pullback reads only for their shape.


def biased_layer(w, b, x):
    return np.sum(np.tanh(x @ w + b))


def test_shape_only_value_saved_as_like():
    source = pullback.adjoint_source(biased_layer)

    assert "x_matmul_w_like = _pb.like_when_large(x_matmul_w)" in source
    assert "del x_matmul_w\n" in source


def test_shape_only_value_gradient_small_and_large():
    small = (rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((5, 3)))
    # x @ w of 256x64 float64 is 128 KiB, which is saved as its shape.
    large = (rng.standard_normal((8, 64)), rng.standard_normal(64),
             rng.standard_normal((256, 8)))

    check_gradient(biased_layer, *small)
    check_gradient(biased_layer, *large)


def test_shape_only_value_keeps_float32():
    w = rng.standard_normal((8, 64)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    x = rng.standard_normal((256, 8)).astype(np.float32)

    grad_w, grad_b, grad_x = pullback.gradient(biased_layer)(w, b, x)

    assert grad_w.dtype == np.float32
    assert grad_b.dtype == np.float32
    assert grad_x.dtype == np.float32


def test_shape_only_value_freed_after_forward():
    import tracemalloc

    w = rng.standard_normal((8, 256))
    b = rng.standard_normal(256)
    x = rng.standard_normal((512, 8))  # x @ w is 1 MiB.
    pullback.value_and_pullback(biased_layer, w, b, x)

    tracemalloc.start()
    try:
        kept = pullback.value_and_pullback(biased_layer, w, b, x)
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del kept

    # The pullback needs tanh(x @ w + b) and nothing else of that size. With
    # x @ w as well, it would keep 2 MiB.
    assert retained < 1.5 * 2**20


# Returned gradients are arrays the caller owns.


def summed_pair(x, y):
    return np.sum(x + y)


def added_pair(x, y):
    return x + y


def test_gradients_do_not_share_memory():
    grad_x, grad_y = pullback.gradient(summed_pair)(np.ones(3), np.ones(3))

    assert not np.shares_memory(grad_x, grad_y)
    grad_x *= 0.1
    np.testing.assert_array_equal(grad_y, np.ones(3))


def test_pullback_does_not_return_seed():
    seed = np.arange(3.0)
    _, pullback_of_f = pullback.value_and_pullback(added_pair, np.ones(3), np.ones(3))

    grad_x, grad_y = pullback_of_f(seed)

    assert not np.shares_memory(grad_x, seed)
    assert not np.shares_memory(grad_y, seed)
    assert not np.shares_memory(grad_x, grad_y)
    np.testing.assert_array_equal(grad_x, seed)
    np.testing.assert_array_equal(grad_y, seed)


def doubled_array(x):
    return x * 2.0


def test_list_seed_for_array_result():
    _, pullback_of_f = pullback.value_and_pullback(doubled_array, np.ones(3))

    np.testing.assert_array_equal(pullback_of_f([1.0, 2.0, 3.0]), [2.0, 4.0, 6.0])
