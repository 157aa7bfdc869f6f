"""Functions with a `*name` parameter, calls to them, and calls with `f(*xs)`.

The cotangent of a `*rest` parameter is a tuple with one item per extra
positional argument. Every gradient here is checked against central finite
differences in float64, along a random direction in all positional
arguments at once, and some against HIPS autograd.
"""

import functools

import numpy as np
import pytest
from gradcheck import check_gradient, check_vjp

import pullback
from pullback import nn
from pullback.errors import (
    DifferentiationError,
    PullbackError,
    UnsupportedSyntaxError,
    WrtError,
)
from pullback.runtime.objects import ObjectTangent

with open(__file__, encoding="utf-8") as _file:
    THIS_FILE_LINES = _file.read().splitlines()

rng = np.random.default_rng(11)


def normal(*shape):
    return rng.standard_normal(shape)


def line_of(marker: str) -> int:
    """Return the 1-based number of the one line ending in `marker`."""
    found = [number for number, text in enumerate(THIS_FILE_LINES, start=1)
             if text.endswith(marker)]
    assert len(found) == 1, f"marker {marker!r} is on {len(found)} lines"
    return found[0]


def flatten(gradient, fixed: int):
    """Return the gradient as one cotangent per positional argument.

    `gradient` is what `pullback.gradient` returns with the default wrt for a
    function with `fixed` named positional parameters and then `*rest`.
    """
    return (*gradient[:fixed], *gradient[fixed])


def check_positional(function, args, flat_gradient, rtol=1e-6):
    """Check cotangents of every positional argument of a scalar function."""
    check_vjp(function, lambda u: tuple(u * c for c in flat_gradient), args,
              cotangent=1.0, rtol=rtol)


# Functions with a *name parameter, differentiated directly.


def product_of(x, *rest):
    total = x
    for factor in rest:
        total = total * factor
    return np.sum(np.sin(total))


def weighted(x, *weights, scale=2.0):
    return scale * np.sum(x * weights[0]) + np.sum(weights[1] ** 2)


def with_default(x, y=1.5, *rest):
    total = np.sum(x * y)
    for item in rest:
        total = total + np.sum(item * x)
    return total


def only_rest(*values):
    return np.sum(values[0] * values[-1]) + len(values)


def count_and_scale(x, *rest):
    return np.sum(x ** 2) * rest[0] + rest[1] * 0.0


def test_gradient_default_wrt():
    args = (normal(3), normal(3), normal(3), normal(3))
    gradient = pullback.gradient(product_of)(*args)
    assert isinstance(gradient, tuple)
    assert len(gradient) == 2
    assert isinstance(gradient[1], tuple)
    assert len(gradient[1]) == 3
    check_positional(product_of, args, flatten(gradient, 1))


def test_gradient_wrt_rest_name():
    args = (normal(3), normal(3), normal(3))
    rest_gradient = pullback.gradient(product_of, wrt="rest")(*args)
    full = pullback.gradient(product_of)(*args)
    assert isinstance(rest_gradient, tuple)
    assert len(rest_gradient) == 2
    for item, expected in zip(rest_gradient, full[1], strict=True):
        np.testing.assert_allclose(item, expected, rtol=1e-12)
    check_positional(product_of, args, (full[0], *rest_gradient))


@pytest.mark.parametrize("wrt, positions", [
    (0, (0,)),
    (2, (2,)),
    ((0, 3), (0, 3)),
    (("x", 1), (0, 1)),
    ((3, 1), (3, 1)),
])
def test_gradient_wrt_index_counts_arguments(wrt, positions):
    args = (normal(2), normal(2), normal(2), normal(2))
    gradient = pullback.gradient(product_of, wrt=wrt)(*args)
    listed = gradient if isinstance(gradient, tuple) else (gradient,)
    assert len(listed) == len(positions)
    check_vjp(product_of, lambda u: tuple(u * c for c in listed), args,
              wrt=positions, cotangent=1.0)


def test_zero_extra_arguments():
    x = normal(4)
    gradient = pullback.gradient(product_of)(x)
    assert gradient[1] == ()
    np.testing.assert_allclose(gradient[0], np.cos(x), rtol=1e-12)
    check_positional(product_of, (x,), flatten(gradient, 1))


def test_keyword_only_after_rest():
    x, a, b = normal(3), normal(3), normal(3)
    gradient = pullback.gradient(weighted)(x, a, b, scale=3.0)
    assert len(gradient) == 3
    x_bar, (a_bar, b_bar), scale_bar = gradient

    def with_scale(x, a, b, scale):
        return weighted(x, a, b, scale=scale)

    check_positional(with_scale, (x, a, b, 3.0), (x_bar, a_bar, b_bar, scale_bar))


def test_keyword_only_by_name():
    x, a, b = normal(3), normal(3), normal(3)
    scale_bar = pullback.gradient(weighted, wrt="scale")(x, a, b)
    np.testing.assert_allclose(scale_bar, np.sum(x * a), rtol=1e-12)


def test_default_before_rest():
    x, y, a, b = normal(3), 0.7, normal(3), normal(3)
    gradient = pullback.gradient(with_default)(x, y, a, b)
    check_positional(with_default, (x, y, a, b), flatten(gradient, 2))
    x_bar, y_bar, rest_bar = pullback.gradient(with_default)(x)
    assert rest_bar == ()
    np.testing.assert_allclose(x_bar, np.full(3, 1.5), rtol=1e-12)
    assert y_bar == pytest.approx(np.sum(x))


def test_only_rest_parameter():
    args = (normal(2), normal(2), normal(2))
    gradient = pullback.gradient(only_rest)(*args)
    assert isinstance(gradient, tuple)
    assert len(gradient) == 3
    check_positional(only_rest, args, gradient)


def test_int_item_gets_none():
    x = normal(3)
    x_bar, rest_bar = pullback.gradient(count_and_scale)(x, 2.5, 4)
    assert rest_bar[1] is None
    assert rest_bar[0] == pytest.approx(np.sum(x ** 2))
    np.testing.assert_allclose(x_bar, 5.0 * x, rtol=1e-12)


def test_value_and_pullback_of_array_result():
    def stacked(x, *rest):
        return x * np.sin(rest[0]) + rest[1] ** 2

    args = (normal(2, 3), normal(2, 3), normal(3))
    value, pullback_of_stacked = pullback.value_and_pullback(stacked, *args)
    np.testing.assert_allclose(value, stacked(*args))
    check_vjp(stacked, lambda u: flatten(pullback_of_stacked(u), 1), args)


def test_value_and_pullback_wrt_index():
    args = (normal(3), normal(3), normal(3))
    value, pullback_of_product = pullback.value_and_pullback(product_of, *args, wrt=2)
    assert value == pytest.approx(product_of(*args))
    full = pullback.gradient(product_of)(*args)
    np.testing.assert_allclose(pullback_of_product(1.0), full[1][1], rtol=1e-12)


def test_pullback_runs_twice():
    args = (normal(3), normal(3), normal(3))
    _, pullback_of_product = pullback.value_and_pullback(product_of, *args)
    first = pullback_of_product(1.0)
    second = pullback_of_product(2.0)
    for one, two in zip(flatten(first, 1), flatten(second, 1), strict=True):
        np.testing.assert_allclose(2.0 * one, two, rtol=1e-12)


def test_float32_arguments_keep_dtype():
    args = tuple(a.astype(np.float32) for a in (normal(3), normal(3), normal(3)))
    x_bar, rest_bar = pullback.gradient(product_of)(*args)
    assert x_bar.dtype == np.float32
    assert all(item.dtype == np.float32 for item in rest_bar)


def test_differentiable_decorator_with_rest():
    decorated = pullback.differentiable(product_of, wrt="rest")
    assert decorated is product_of


# Compiled callers of functions with a *name parameter.


def scaled_sum(x, *terms):
    total = 0.0
    for term in terms:
        total = total + np.sum(term * x)
    return total


def calls_with_several_counts(x, a, b):
    return scaled_sum(x) + scaled_sum(x, a) + scaled_sum(x, a, b, a) + scaled_sum(a, b)


def calls_with_constant_among_terms(x, a):
    return scaled_sum(x, a, 2.0, np.ones(3))


def nested_variadic(x, *rest):
    return scaled_sum(x, *rest) + product_of(x, *rest)


def calls_nested(x, a, b):
    return nested_variadic(x, a, b) * nested_variadic(a, x)


def calls_keyword_only(x, a, b, s):
    return weighted(x, a, b, scale=s) + weighted(a, b, x)


def test_caller_with_several_counts():
    args = (normal(3), normal(3), normal(3))
    gradient = pullback.gradient(calls_with_several_counts)(*args)
    check_positional(calls_with_several_counts, args, gradient)


def test_caller_with_constant_among_terms():
    args = (normal(3), normal(3))
    gradient = pullback.gradient(calls_with_constant_among_terms)(*args)
    check_positional(calls_with_constant_among_terms, args, gradient)
    source = pullback.adjoint_source(calls_with_constant_among_terms)
    assert "(a_bar, unused, unused)" in source


def test_caller_of_nested_variadic_functions():
    args = (normal(3), normal(3), normal(3))
    gradient = pullback.gradient(calls_nested)(*args)
    check_positional(calls_nested, args, gradient)


def test_caller_passes_keyword_only():
    args = (normal(3), normal(3), normal(3), 1.7)
    gradient = pullback.gradient(calls_keyword_only)(*args)
    check_positional(calls_keyword_only, args, gradient)


def test_caller_unpacks_rest_cotangent_by_name():
    source = pullback.adjoint_source(calls_with_several_counts)
    assert "vjp_of(scaled_sum, 'x', 'terms')(x, a, b, a)" in source
    # The cotangent of `terms` unpacks into one name per argument.
    assert ", (a_bar" in source


# Calls with a starred argument.


def two_parameters(a, b):
    return np.sum(a * np.exp(b))


def starred_tuple(x, pair):
    return two_parameters(*pair) * np.sum(x)


def starred_after_plain(x, ys):
    return scaled_sum(x, *ys)


def starred_between(x, a, ys):
    return product_of(x, a, *ys, a)


def starred_with_keyword(x, ws, s):
    return weighted(x, *ws, scale=s)


def starred_keyword_only_active(x, ws, s):
    return weighted(*ws, scale=s)


def forwards_rest(x, *rest):
    return product_of(x, *rest)


def calls_forwarder(x, a, b):
    return forwards_rest(x, a, b) + forwards_rest(b)


@pytest.mark.parametrize("pair", [
    lambda: (normal(3), normal(3)),
    lambda: [normal(3), normal(3)],
    lambda: normal(2, 3),
], ids=["tuple", "list", "array rows"])
def test_starred_call_to_fixed_parameters(pair):
    pair = pair()
    x = normal(2)
    x_bar, pair_bar = pullback.gradient(starred_tuple)(x, pair)
    assert type(pair_bar) is type(pair)
    check_vjp(lambda x, a, b: starred_tuple(x, (a, b)),
              lambda u: (u * x_bar, u * pair_bar[0], u * pair_bar[1]),
              (x, pair[0], pair[1]), cotangent=1.0)


def test_starred_call_into_rest():
    x, ys = normal(3), [normal(3), normal(3)]
    x_bar, ys_bar = pullback.gradient(starred_after_plain)(x, ys)
    assert isinstance(ys_bar, list)
    check_vjp(lambda x, a, b: starred_after_plain(x, [a, b]),
              lambda u: (u * x_bar, u * ys_bar[0], u * ys_bar[1]),
              (x, *ys), cotangent=1.0)


def test_starred_call_between_plain_arguments():
    x, a, ys = normal(3), normal(3), (normal(3), normal(3))
    x_bar, a_bar, ys_bar = pullback.gradient(starred_between)(x, a, ys)
    assert isinstance(ys_bar, tuple)
    check_vjp(lambda x, a, c, d: starred_between(x, a, (c, d)),
              lambda u: (u * x_bar, u * a_bar, u * ys_bar[0], u * ys_bar[1]),
              (x, a, *ys), cotangent=1.0)


def test_starred_call_with_keyword():
    x, ws, s = normal(3), (normal(3), normal(3), normal(3)), 0.8
    x_bar, ws_bar, s_bar = pullback.gradient(starred_with_keyword)(x, ws, s)
    check_vjp(lambda x, a, b, c, s: starred_with_keyword(x, (a, b, c), s),
              lambda u: (u * x_bar, *(u * w for w in ws_bar), u * s_bar),
              (x, *ws, s), cotangent=1.0)


def test_starred_call_with_only_keyword_active():
    x, ws, s = normal(3), (normal(3), normal(3), normal(3)), 0.8
    s_bar = pullback.gradient(starred_keyword_only_active, wrt="s")(x, ws, s)
    assert s_bar == pytest.approx(np.sum(ws[0] * ws[1]))
    source = pullback.adjoint_source(starred_keyword_only_active, wrt="s")
    assert "starred_vjp(weighted, 'scale', arguments=False, at=('*ws', " in source
    assert ")(ws, scale=s)" in source


def test_starred_forwarding_of_rest():
    args = (normal(3), normal(3), normal(3))
    gradient = pullback.gradient(calls_forwarder)(*args)
    check_positional(calls_forwarder, args, gradient)
    x_bar, rest_bar = pullback.gradient(forwards_rest)(args[0])
    assert rest_bar == ()
    np.testing.assert_allclose(x_bar, np.cos(args[0]), rtol=1e-12)


def test_starred_call_generated_code_reads_like_source():
    source = pullback.adjoint_source(starred_between)
    assert "product_of_arguments = _pb.joined(" in source
    assert "_pb.starred_vjp(product_of, at=('x, a, *ys, a', " in source
    assert ")(product_of_arguments)" in source


# A sequence passed starred more than once: its cotangents add item by item.


def sum_of_squares(*values):
    total = 0.0
    for value in values:
        total = total + np.sum(value * value)
    return total


def sequence_twice(xs):
    return sum_of_squares(*xs, *xs)


def sequence_around_another(xs, ys):
    return sum_of_squares(*xs, *ys, *xs)


def plain_and_sequence_twice(x, xs):
    return sum_of_squares(x, *xs, x, *xs)


def sequence_extended_by_itself(xs):
    ys = [xs[0], xs[1]]
    ys.extend(ys)
    return ys[0] * ys[3] + ys[1]


@pytest.mark.parametrize("xs", [
    lambda: [1.0, 2.0],
    lambda: (1.0, 2.0),
    lambda: normal(2),
    lambda: [normal(3), normal(3)],
    lambda: (normal(2, 2), 0.5),
], ids=["list", "tuple", "array", "list of arrays", "tuple of array and float"])
def test_sequence_starred_twice(xs):
    xs = xs()
    gradient = check_gradient(sequence_twice, xs)
    assert type(gradient) is type(xs)
    assert len(gradient) == len(xs)


def test_sequence_starred_twice_matches_closed_form():
    # d/dx of 2 * sum(x * x) is 4 * x, item by item.
    assert pullback.gradient(sequence_twice)([1.0, 2.0]) == [4.0, 8.0]
    assert pullback.gradient(sequence_twice)((1.0, 2.0)) == (4.0, 8.0)


def test_sequences_of_different_kinds_starred():
    xs, ys = [normal(2), 1.5], (normal(2),)
    xs_bar, ys_bar = check_gradient(sequence_around_another, xs, ys)
    assert isinstance(xs_bar, list) and len(xs_bar) == 2
    assert isinstance(ys_bar, tuple) and len(ys_bar) == 1


def test_plain_and_starred_sequence_twice():
    x_bar, xs_bar = check_gradient(plain_and_sequence_twice, 0.7, (normal(3), 2.0))
    assert isinstance(xs_bar, tuple) and len(xs_bar) == 2
    source = pullback.adjoint_source(plain_and_sequence_twice)
    assert "xs_bar = _pb.add(_pb.joined_part_cotangent(" in source


def test_list_extended_by_itself():
    gradient = check_gradient(sequence_extended_by_itself, [0.4, -1.3])
    assert isinstance(gradient, list) and len(gradient) == 2


def einsum_of_one_array_twice(x):
    return np.sum(np.einsum("i,i->i", x, x))


def sine_times_itself(x):
    return np.sum(np.sin(x) * x)


def test_einsum_of_one_array_twice():
    check_gradient(einsum_of_one_array_twice, normal(3))


def test_arithmetic_cotangents_add_with_plus():
    check_gradient(sine_times_itself, normal(3))
    source = pullback.adjoint_source(sine_times_itself)
    assert "x_bar = x_bar + sin_x_bar * np.cos(x)" in source
    assert "_pb.add(" not in source


# Objects as extra arguments: layers and models.


def apply_layers(x, *layers):
    for layer in layers:
        x = layer(x)
    return x


def layers_loss(x, first, second, third):
    return np.sum(apply_layers(x, first, second, third) ** 2)


def dense(inputs, outputs, seed, activation=None):
    return nn.Dense(inputs, outputs, activation, rng=seed, dtype=np.float64)


def directional(value, direction) -> float:
    return float(np.sum(value * direction))


def test_objects_as_rest_arguments():
    x = normal(4, 3)
    first, second, third = dense(3, 4, 0, nn.tanh), dense(4, 4, 1, nn.relu), dense(4, 2, 2)
    x_bar, first_bar, second_bar, third_bar = pullback.gradient(layers_loss)(
        x, first, second, third)
    assert isinstance(first_bar, ObjectTangent)
    layers = (first, second, third)
    tangents = (first_bar, second_bar, third_bar)
    directions = [{"weight": normal(*layer.weight.shape), "bias": normal(*layer.bias.shape)}
                  for layer in layers]
    eps = 1e-6

    def moved(scale):
        copies = []
        for layer, direction in zip(layers, directions, strict=True):
            copy = dense(layer.weight.shape[0], layer.weight.shape[1], 0, layer.activation)
            copy.weight = layer.weight + scale * direction["weight"]
            copy.bias = layer.bias + scale * direction["bias"]
            copies.append(copy)
        return layers_loss(x, *copies)

    forward = (moved(eps) - moved(-eps)) / (2 * eps)
    backward = sum(directional(tangent.weight, direction["weight"])
                   + directional(tangent.bias, direction["bias"])
                   for tangent, direction in zip(tangents, directions, strict=True))
    assert backward == pytest.approx(forward, rel=1e-6)
    check_vjp(lambda x: layers_loss(x, first, second, third), lambda u: (u * x_bar,), (x,),
              cotangent=1.0)


def test_same_layer_twice_adds_its_tangents():
    x = normal(2, 3)
    layer = dense(3, 3, 4, nn.tanh)

    def twice(layer):
        return np.sum(apply_layers(x, layer, layer))

    tangent = pullback.gradient(twice)(layer)
    direction = normal(3, 3)
    eps = 1e-6
    plus, minus = dense(3, 3, 4, nn.tanh), dense(3, 3, 4, nn.tanh)
    plus.weight = layer.weight + eps * direction
    minus.weight = layer.weight - eps * direction
    forward = (twice(plus) - twice(minus)) / (2 * eps)
    assert directional(tangent.weight, direction) == pytest.approx(forward, rel=1e-6)


class Concatenating(nn.Layer):
    """A layer whose `__call__` takes any number of inputs."""

    def __init__(self):
        self.weight = np.linspace(0.5, 1.5, 3)

    def __call__(self, *inputs):
        total = 0.0
        for item in inputs:
            total = total + item * self.weight
        return total


class TwoInputModel(nn.Layer):
    def __init__(self):
        self.merge = Concatenating()

    def __call__(self, a, b):
        return self.merge(a, b, a)


def test_method_with_rest_parameter():
    model = TwoInputModel()
    a, b = normal(2, 3), normal(2, 3)

    def loss(model, a, b):
        return np.sum(np.sin(model(a, b)))

    model_bar, a_bar, b_bar = pullback.gradient(loss)(model, a, b)
    check_vjp(lambda a, b: loss(model, a, b), lambda u: (u * a_bar, u * b_bar), (a, b),
              cotangent=1.0)
    direction = normal(3)
    eps = 1e-6
    plus, minus = TwoInputModel(), TwoInputModel()
    plus.merge.weight = model.merge.weight + eps * direction
    minus.merge.weight = model.merge.weight - eps * direction
    forward = (loss(plus, a, b) - loss(minus, a, b)) / (2 * eps)
    assert directional(model_bar.merge.weight, direction) == pytest.approx(forward, rel=1e-6)


# Local functions and lambdas with a *name parameter are inlined.


def local_rest(x, a):
    def total(first, *others):
        result = first
        for other in others:
            result = result * other
        return result

    return np.sum(total(x, a, a) + total(a))


def lambda_rest(x, a):
    last = lambda *values: values[-1] * values[0]  # noqa: E731
    return np.sum(last(x, a) + last(a))


@pytest.mark.parametrize("function", [local_rest, lambda_rest])
def test_local_function_with_rest(function):
    args = (normal(3), normal(3))
    gradient = pullback.gradient(function)(*args)
    check_positional(function, args, gradient)


# Loops over a sequence add each item's cotangent in place.


def loop_over_list(x, xs):
    total = 0.0
    for item in xs:
        total = total + np.sum(np.tanh(item * x))
    return total


def loop_over_rows(x, rows):
    total = 0.0
    for row in rows:
        total = total + np.sum(np.sin(row) * x)
    return total


def loop_with_repeated_fancy_index(x):
    total = 0.0
    for i in range(3):
        total = total + np.sum(x[[0, 0, i]] ** 2)
    return total


def loop_over_slices(xs):
    total = 0.0
    for i in range(len(xs) - 1):
        total = total + np.sum(sum(xs[i:i + 2]) ** 2)
    return total


def loop_over_dict(weights, keys):
    total = 0.0
    for key in keys:
        total = total + np.sum(weights[key] ** 2)
    return total


def loop_also_using_whole_list(xs):
    total = 0.0
    for item in xs:
        total = total + np.sum(item * np.stack(xs))
    return total


def list_used_after_loop(xs):
    total = 0.0
    for item in xs:
        total = total + np.sum(item ** 3)
    return total + np.sum(xs[0])


def test_loop_over_list_gradient():
    x, xs = normal(3), [normal(3), normal(3), normal(3)]
    x_bar, xs_bar = pullback.gradient(loop_over_list)(x, xs)
    assert isinstance(xs_bar, list)
    check_vjp(lambda x, a, b, c: loop_over_list(x, [a, b, c]),
              lambda u: (u * x_bar, *(u * item for item in xs_bar)), (x, *xs), cotangent=1.0)


def test_loop_over_list_accumulates_in_place():
    source = pullback.adjoint_source(loop_over_list)
    assert "xs_items_bar = _pb.item_accumulator(xs_items)" in source
    assert "xs_items_bar = _pb.accumulate_item(xs_items_bar" in source
    assert "subscript_adjoint" not in source


def test_loop_over_rest_accumulates_in_place():
    source = pullback.adjoint_source(product_of)
    assert "rest_bar = _pb.item_accumulator(rest)" in source
    assert "sequence(rest)" not in source
    assert "subscript_adjoint" not in source


def test_loop_over_array_rows():
    x, rows = normal(3), normal(4, 3)
    x_bar, rows_bar = pullback.gradient(loop_over_rows)(x, rows)
    check_vjp(loop_over_rows, lambda u: (u * x_bar, u * rows_bar), (x, rows), cotangent=1.0)


def test_loop_with_repeated_fancy_index():
    x = normal(4)
    x_bar = pullback.gradient(loop_with_repeated_fancy_index)(x)
    check_vjp(loop_with_repeated_fancy_index, lambda u: (u * x_bar,), (x,), cotangent=1.0)


def test_loop_over_slices_of_a_list():
    xs = [normal(2), normal(2), normal(2), normal(2)]
    xs_bar = pullback.gradient(loop_over_slices)(xs)
    check_vjp(lambda *items: loop_over_slices(list(items)), lambda u: tuple(
        u * item for item in xs_bar), xs, cotangent=1.0)


def test_loop_over_dict_items():
    weights = {"a": normal(3), "b": normal(2), "c": normal(2)}
    weights_bar = pullback.gradient(loop_over_dict, wrt=0)(weights, ["a", "b", "a"])
    np.testing.assert_allclose(weights_bar["a"], 4.0 * weights["a"], rtol=1e-12)
    np.testing.assert_allclose(weights_bar["b"], 2.0 * weights["b"], rtol=1e-12)
    np.testing.assert_array_equal(weights_bar["c"], np.zeros(2))


@pytest.mark.parametrize("function", [loop_also_using_whole_list, list_used_after_loop])
def test_loop_with_other_uses_of_the_list(function):
    xs = [normal(3), normal(3)]
    xs_bar = pullback.gradient(function)(xs)
    check_vjp(lambda a, b: function([a, b]), lambda u: tuple(u * item for item in xs_bar),
              xs, cotangent=1.0)


# Against HIPS autograd.


def test_rest_against_autograd():
    autograd = pytest.importorskip("autograd")
    anp = pytest.importorskip("autograd.numpy")

    def product_of_ag(x, *rest):
        total = x
        for factor in rest:
            total = total * factor
        return anp.sum(anp.sin(total))

    args = (normal(3), normal(3), normal(3))
    reference = autograd.grad(product_of_ag, argnum=(0, 1, 2))(*args)
    ours = flatten(pullback.gradient(product_of)(*args), 1)
    for mine, theirs in zip(ours, reference, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    for index in range(3):
        mine = pullback.gradient(product_of, wrt=index)(*args)
        np.testing.assert_allclose(mine, autograd.grad(product_of_ag, index)(*args),
                                   rtol=1e-12)


# Errors.


def starred_numpy_call(xs):
    return np.sum(np.add(*xs))  # error: starred numpy


def starred_method_call(model, xs):
    return np.sum(model.merge(*xs))  # error: starred method


def starred_local_call(x, xs):
    def double(a, b):
        return a + b

    return np.sum(double(*xs))  # error: starred local


def local_with_star_kwargs(x):
    def scaled(value, **options):  # error: local kwargs
        return value * 2.0

    return np.sum(scaled(x))


def starred_unknown_keyword(x, ws):
    return weighted(x, *ws, factor=2.0)  # error: unknown keyword


@pytest.mark.parametrize("function, args, marker, phrase", [
    (starred_numpy_call, ((normal(2), normal(2)),), "# error: starred numpy",
     "starred argument in a call to numpy.add"),
    (starred_method_call, (TwoInputModel(), (normal(3), normal(3))),
     "# error: starred method", "starred argument in a call to model.merge"),
    (starred_local_call, (normal(2), (normal(2), normal(2))), "# error: starred local",
     "has a starred argument"),
    (starred_unknown_keyword, (normal(2), (normal(2), normal(2))),
     "# error: unknown keyword", "no keyword parameter 'factor'"),
], ids=["numpy", "method", "local", "unknown keyword"])
def test_starred_errors_point_at_the_call(function, args, marker, phrase):
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(*args)
    message = str(info.value)
    assert info.value.location is not None
    assert info.value.location.lineno == line_of(marker)
    assert f"{__file__}:{line_of(marker)}:" in message
    assert phrase in message
    assert "hint:" in message


def test_local_star_kwargs_is_syntax_error():
    with pytest.raises(UnsupportedSyntaxError) as info:
        pullback.gradient(local_with_star_kwargs)
    error = info.value
    assert error.lineno == line_of("# error: local kwargs")
    assert error.offset == THIS_FILE_LINES[error.lineno - 1].index("options") + 1
    assert "**options parameter is not supported" in str(error)
    assert "hint:" in str(error)


def test_starred_argument_that_is_not_a_sequence():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(starred_after_plain)(normal(2), {1.0, 2.0})
    message = str(info.value)
    assert "tuple, list or array" in message
    assert "hint:" in message


def test_negative_index_is_ambiguous():
    with pytest.raises(WrtError) as info:
        pullback.gradient(product_of, wrt=-1)
    assert isinstance(info.value, PullbackError)
    assert "ambiguous" in str(info.value)
    assert "'rest'" in str(info.value)


def test_index_past_the_arguments_passed():
    gradient = pullback.gradient(product_of, wrt=3)
    with pytest.raises(WrtError) as info:
        gradient(normal(2), normal(2))
    message = str(info.value)
    assert "the 3rd item of *rest" in message
    assert "rest[2]" not in message
    assert "passes 2 positional arguments" in message


def test_rest_name_and_index_together():
    with pytest.raises(WrtError) as info:
        pullback.gradient(product_of, wrt=("rest", 1))
    assert "both the parameter 'rest'" in str(info.value)


def test_same_item_twice():
    with pytest.raises(WrtError) as info:
        pullback.gradient(product_of, wrt=(1, 1))
    assert "twice" in str(info.value)


def test_same_rest_item_twice_in_user_terms():
    with pytest.raises(WrtError) as info:
        pullback.gradient(product_of, wrt=(2, 2))
    message = str(info.value)
    assert "index 2 twice" in message
    assert "the 2nd item of *rest" in message
    assert "rest[1]" not in message


def test_parameter_by_index_and_name():
    with pytest.raises(WrtError) as info:
        pullback.gradient(product_of, wrt=(0, "x"))
    assert "the parameter 'x' twice, as index 0 and as 'x'" in str(info.value)


def starred_scalar(v):
    return product_of(*v)  # error: starred scalar


def starred_dict(d):
    return scaled_sum(*d)  # error: starred dict


def starred_scalar_after_plain(x, v):
    return scaled_sum(x, 1.0, *v)  # error: starred scalar after plain


@pytest.mark.parametrize("function, args, marker, phrases", [
    (starred_scalar, (2.0,), "# error: starred scalar",
     ("the starred argument *v", "v is a float", "drop the star")),
    (starred_dict, ({"a": 1.0, "b": 2.0},), "# error: starred dict",
     ("the starred argument *d", "d is a dict", "[d[k] for k in d]")),
    (starred_scalar_after_plain, (normal(2), 2.0), "# error: starred scalar after plain",
     ("the starred argument *v", "v is a float")),
], ids=["float", "dict", "float after plain arguments"])
def test_starred_non_sequence_names_the_argument(function, args, marker, phrases):
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(*args)
    error = info.value
    line = line_of(marker)
    assert error.location.lineno == line
    assert error.location.col == THIS_FILE_LINES[line - 1].index("*") + 1
    assert f"{__file__}:{line}:" in str(error)
    for phrase in phrases:
        assert phrase in str(error)


def starred_pair(xs):
    return two_parameters(*xs)  # error: starred pair


def starred_into_product(xs):
    return product_of(*xs)


def starred_into_rest_only(x, xs):
    return sum_of_squares(*xs) + np.sum(x)


@pytest.mark.parametrize("count, phrase", [(3, "too many"), (1, "missing")])
def test_starred_call_with_wrong_count_names_user_function(count, phrase):
    xs = tuple(normal(2) for _ in range(count))
    with pytest.raises(TypeError) as info:
        pullback.gradient(starred_pair)(xs)
    message = str(info.value)
    assert "two_parameters() takes 2 positional arguments" in message
    assert f"passes {count}" in message
    assert f"{__file__}:{line_of('# error: starred pair')}:" in message
    assert phrase in message
    assert "_vjp" not in message


def two_starred_pairs(xs, ys):
    return two_parameters(*xs, *ys)  # error: two starred


def test_two_starred_call_with_wrong_count_names_site():
    with pytest.raises(TypeError) as info:
        pullback.gradient(two_starred_pairs)((normal(2),), (normal(2), normal(2)))
    message = str(info.value)
    assert "two_parameters() takes 2 positional arguments" in message
    assert "the arguments *xs, *ys at" in message
    assert f"{__file__}:{line_of('# error: two starred')}:" in message
    assert "pass 3" in message
    assert "_vjp" not in message


def test_empty_starred_call_raises_python_type_error():
    with pytest.raises(TypeError) as info:
        pullback.gradient(starred_into_product)(())
    assert not isinstance(info.value, WrtError)
    assert "product_of() missing 1 required positional argument: 'x'" in str(info.value)


def test_empty_starred_call_into_rest():
    x = normal(2)
    value, (x_bar, xs_bar) = pullback.value_and_gradient(starred_into_rest_only)(x, ())
    assert value == pytest.approx(np.sum(x))
    np.testing.assert_array_equal(x_bar, np.ones(2))
    assert xs_bar is None  # An empty tuple has no tangent space.


def test_dump_shows_rest_parameter():
    source = pullback.adjoint_source(product_of)
    assert "def product_of_vjp(x, *rest):" in source
    assert "return (total_1_bar, rest_bar)" in source


def summed(*values):
    return sum(values)


def test_registering_derivative_for_rest_is_rejected():
    with pytest.raises(pullback.errors.DerivativeRegistrationError) as info:
        @pullback.derivative_of(summed)
        def summed_vjp(*values):
            return sum(values), lambda g: tuple(g for _ in values)

    message = str(info.value)
    assert "takes *values" in message
    assert "named parameters" in message


def test_checkpointed_function_with_rest():
    checkpointed_sum = pullback.checkpointed(scaled_sum)

    def uses_checkpoint(x, a, b):
        return checkpointed_sum(x, a, b, a) * 2.0

    args = (normal(3), normal(3), normal(3))
    gradient = pullback.gradient(uses_checkpoint)(*args)
    check_positional(uses_checkpoint, args, gradient)
    assert "recompute(checkpointed_sum, ('x', 'terms')" in pullback.adjoint_source(
        uses_checkpoint)


def three_factors(a, b, c):
    return a * b * b * c


def starred_and_same_keyword(x, ys):
    return three_factors(*ys, b=x)


def test_starred_call_keyword_filled_twice():
    with pytest.raises(TypeError, match="got multiple values for argument 'b'") as info:
        pullback.gradient(starred_and_same_keyword)(2.0, [3.0, 5.0])

    assert "*ys" in str(info.value)
    assert "pass it one way" in str(info.value)


# Wrappers made with functools.wraps. inspect.signature reports the wrapped
# function's parameters, while pullback differentiates the wrapper's code.


def doubled(function):
    @functools.wraps(function)
    def wrapper(*args):
        return function(*args) * 2.0

    return wrapper


@doubled
def doubled_square(x):
    return x * x


@doubled
def doubled_weighted_sum(x, weights):
    return np.sum(x * weights)


def scaled_by_default(function):
    @functools.wraps(function)
    def wrapper(a, scale=10.0):
        return function(a) * scale

    return wrapper


@scaled_by_default
def scaled_square(x):
    return x * x


def plain_scaled_square(a, scale=10.0):
    return a * a * scale


def test_wraps_wrapper_one_parameter():
    # The wrapper takes no keyword arguments, so check_vjp calls it by position.
    gradient = pullback.gradient(doubled_square)(2.0)
    assert gradient == pytest.approx(8.0)
    check_vjp(doubled_square, lambda u: u * gradient, (2.0,), cotangent=1.0)


def test_wraps_wrapper_several_parameters():
    x, weights = normal(3), normal(3)
    grad_x, grad_weights = pullback.gradient(doubled_weighted_sum)(x, weights)
    check_vjp(doubled_weighted_sum, lambda u: (u * grad_x, u * grad_weights),
              (x, weights), cotangent=1.0)
    np.testing.assert_allclose(grad_x, 2.0 * weights)
    np.testing.assert_allclose(grad_weights, 2.0 * x)


def test_wraps_wrapper_wrt_by_wrapped_name():
    x, weights = normal(3), normal(3)
    by_name = pullback.gradient(doubled_weighted_sum, wrt="weights")(x, weights)
    by_index = pullback.gradient(doubled_weighted_sum, wrt=1)(x, weights)
    np.testing.assert_allclose(by_name, 2.0 * x)
    np.testing.assert_allclose(by_index, 2.0 * x)


def test_wraps_wrapper_value_and_pullback():
    value, pullback_of_f = pullback.value_and_pullback(doubled_square, 3.0)
    assert value == pytest.approx(18.0)
    assert pullback_of_f(1.0) == pytest.approx(12.0)


def test_wraps_wrapper_with_default_like_plain():
    # The wrapper's own parameters count, as for the plain function, so the
    # defaulted `scale` gets its gradient.
    for args in [(2.0,), (2.0, 3.0)]:
        wrapped = pullback.gradient(scaled_square)(*args)
        plain = pullback.gradient(plain_scaled_square)(*args)
        assert wrapped == pytest.approx(plain)
    grad_x, grad_scale = pullback.gradient(scaled_square)(2.0, 3.0)
    check_vjp(scaled_square, lambda u: (u * grad_x, u * grad_scale), (2.0, 3.0),
              cotangent=1.0)
    assert pullback.gradient(scaled_square, wrt="scale")(2.0) == pytest.approx(4.0)


def calls_scaled_square(x, scale):
    return scaled_square(x, scale=scale) + scaled_square(x)


def calls_scaled_square_starred(x, scale):
    pair = (x, scale)
    return scaled_square(*pair)


class FunctionHolder:
    def __init__(self, function):
        self.function = function


def calls_stored_function(x, scale, holder):
    return holder.function(x, scale)


@pytest.mark.parametrize("function", [calls_scaled_square, calls_scaled_square_starred])
def test_call_of_wraps_wrapper_binds_own_parameters(function):
    check_gradient(function, 2.0, 3.0)


def test_stored_wraps_wrapper_binds_own_parameters():
    grad_x, grad_scale = check_gradient(calls_stored_function, 2.0, 3.0,
                                        FunctionHolder(scaled_square), wrt=(0, 1))
    assert grad_x == pytest.approx(12.0)
    assert grad_scale == pytest.approx(4.0)
