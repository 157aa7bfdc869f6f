"""Gradients as `value_and_gradient` returns them for several parameters.

Distinct float arrays that own their memory are returned as the pullback
computed them. Every other case is finished one cotangent at a time: None
for a parameter without a derivative, a copy where two gradients share
memory, the parameter's float dtype.
"""

import numpy as np
import pytest
from gradcheck import check_gradient

import pullback
from pullback.errors import CotangentError, DifferentiationError

rng = np.random.default_rng(13)


def two_layer_loss(w1, b1, w2, b2, x, y):
    h = np.maximum(x @ w1 + b1, 0.0)
    out = h @ w2 + b2
    return np.mean((out - y) ** 2)


def mlp_arguments(dtype=np.float64):
    shapes = ((2, 10), (10,), (10, 1), (1,), (4, 2), (4, 1))
    return tuple(rng.standard_normal(shape).astype(dtype) for shape in shapes)


def test_mlp_gradient_float64():
    check_gradient(two_layer_loss, *mlp_arguments(), wrt=(0, 1, 2, 3))


def test_mlp_gradient_float32():
    arguments = mlp_arguments(np.float32)

    _, gradient = pullback.value_and_gradient(two_layer_loss, wrt=(0, 1, 2, 3))(*arguments)

    for grad, argument in zip(gradient, arguments, strict=False):
        assert grad.dtype == np.float32
        assert grad.shape == argument.shape


def test_mlp_gradients_are_distinct_arrays():
    _, gradient = pullback.value_and_gradient(two_layer_loss, wrt=(0, 1, 2, 3))(
        *mlp_arguments())

    for index, grad in enumerate(gradient):
        assert grad.base is None
        for other in gradient[index + 1:]:
            assert not np.shares_memory(grad, other)


def test_mlp_gradient_python_float_bias():
    w1, _, w2, _, x, y = mlp_arguments()

    _, gradient = pullback.value_and_gradient(two_layer_loss, wrt=(0, 1, 2, 3))(
        w1, 0.1, w2, -0.2, x, y)

    assert gradient[0].shape == w1.shape
    assert isinstance(gradient[1], float)
    assert isinstance(gradient[3], float)
    check_gradient(two_layer_loss, w1, 0.1, w2, -0.2, x, y, wrt=(0, 1, 2, 3))


def concatenated(x, y):
    return np.sum(np.concatenate([x, y]) ** 2)


def test_views_of_one_array_are_copied():
    # The adjoint of concatenate returns views of one cotangent array.
    x, y = rng.standard_normal(3), rng.standard_normal(2)

    grad_x, grad_y = pullback.gradient(concatenated)(x, y)

    assert not np.shares_memory(grad_x, grad_y)
    np.testing.assert_allclose(grad_x, 2 * x)
    np.testing.assert_allclose(grad_y, 2 * y)


def scaled_sum(x, n):
    return np.sum(x * n)


def test_integer_argument_gets_none():
    gradient = pullback.gradient(scaled_sum)(np.ones(3), np.arange(3))

    np.testing.assert_array_equal(gradient[0], [0.0, 1.0, 2.0])
    assert gradient[1] is None


def product(x, y):
    return x * y


def test_zero_dimensional_arguments():
    x, y = np.array(2.0), np.array(3.0)

    grad_x, grad_y = pullback.gradient(product)(x, y)

    assert np.shape(grad_x) == ()
    assert np.shape(grad_y) == ()
    np.testing.assert_allclose(grad_x, 3.0)
    np.testing.assert_allclose(grad_y, 2.0)



# The path for arguments that are all Python numbers.


def scaled_power(x, a, n):
    return a * x**n


def test_numbers_int_argument_gets_none():
    value, gradient = pullback.value_and_gradient(scaled_power)(2.0, 3.0, 2)
    assert value == 12.0
    assert gradient[0] == 12.0
    assert gradient[1] == 4.0
    assert gradient[2] is None


def test_numbers_float_arguments_tuple():
    value, gradient = pullback.value_and_gradient(scaled_power)(2.0, 3.0, 2.0)
    assert value == 12.0
    assert isinstance(gradient, tuple)
    assert gradient[0] == 12.0
    assert gradient[1] == 4.0
    # d/dn a x^n = a x^n log x.
    assert abs(gradient[2] - 12.0 * np.log(2.0)) < 1e-12


def test_numbers_single_parameter_bare():
    gradient = pullback.gradient(scaled_power, wrt="x")(np.float64(2.0), 3.0, 2)
    assert gradient == 12.0
    assert not isinstance(gradient, tuple)


def float32_scaled_sum(w, s):
    return np.sum(w * s) + s


def test_python_float_gradient_with_float32_array():
    w = np.array([0.5, -1.5, 2.0], dtype=np.float32)
    w_bar, s_bar = pullback.gradient(float32_scaled_sum)(w, 2.0)
    assert w_bar.dtype == np.float32
    assert type(s_bar) is float
    assert s_bar == float(np.sum(w)) + 1.0


def test_float64_scalar_gradient_with_float32_array():
    w = np.array([0.5, -1.5, 2.0], dtype=np.float32)
    _, s_bar = pullback.gradient(float32_scaled_sum)(w, np.float64(2.0))
    assert type(s_bar) is np.float64
    assert s_bar == float(np.sum(w)) + 1.0


def matrix_tanh(w, x):
    return np.sum(np.tanh(x @ w))


def matrix_product_ufunc(w, x):
    return np.sum(np.matmul(x, w))


def scalar_sine(x, y):
    return x * np.sin(y)


def test_matrix_product_has_no_numbers_vjp():
    # Python numbers support neither @ nor np.matmul.
    for function in (matrix_tanh, matrix_product_ufunc):
        assert "_vjp_for_numbers" not in pullback.adjoint_source(function)


def test_scalar_code_has_numbers_vjp():
    assert "def scalar_sine_vjp_for_numbers(x, y):" in pullback.adjoint_source(scalar_sine)


def pair_with_dict(x):
    return (2.0 * x, {"a": x * x})


def test_dict_cotangent_with_extra_key_rejected():
    _, pullback_of_f = pullback.value_and_pullback(pair_with_dict, 3.0)
    with pytest.raises(CotangentError) as info:
        pullback_of_f((1.0, {"a": 1.0, "b": 2.0}))
    message = str(info.value)
    assert "result[1]" in message
    assert "the keys 'a', like the result" in message
    assert "'a', 'b'" in message


def test_dict_cotangent_items():
    _, pullback_of_f = pullback.value_and_pullback(pair_with_dict, 3.0)
    assert pullback_of_f((1.0, {"a": 1.0})) == pytest.approx(8.0)
    assert pullback_of_f((0.0, {"a": None})) == pytest.approx(0.0)


def test_compiled_functions_are_freed_with_their_closures():
    import gc
    import weakref

    def make_loss():
        weights = np.ones(1000)
        return lambda x: np.sum(x * weights[:3])

    references = []
    for _ in range(5):
        loss = make_loss()
        pullback.gradient(loss)(np.ones(3))
        references.append(weakref.ref(loss))
        del loss
    gc.collect()
    assert all(reference() is None for reference in references)


def squared_modulus(z, y):
    return np.sum(np.abs(z + y) ** 2)


def modulus_of_product(y, c):
    return np.sum(np.abs(y * c) ** 2)


def modulus_of_rotation(y):
    return np.sum(np.abs(1j * y + 1.0))


@pytest.mark.parametrize("function, args, wrt", [
    (squared_modulus, (np.array([1.0 + 2.0j, -0.5 + 0.3j]), np.array([0.7, 0.2])), None),
    (modulus_of_product, (np.array([0.7, 0.2]), np.array([1.0 + 2.0j, 0.3j])), "y"),
    (modulus_of_rotation, (np.array([0.7, 0.2]),), None),
    (modulus_of_rotation, (0.5,), None),
])
def test_gradients_through_complex_values_are_rejected(function, args, wrt):
    with pytest.raises(DifferentiationError, match="does not differentiate complex numbers"):
        pullback.value_and_gradient(function, wrt=wrt)(*args)


def test_complex_constant_outside_the_gradient_is_allowed():
    c = np.array([3.0 + 4.0j, 1.0j])

    def scaled_sum(x):
        return np.sum(np.abs(c) * x)

    assert np.array_equal(pullback.gradient(scaled_sum)(np.ones(2)), np.abs(c))


def test_differentiated_function_state_pickles_empty():
    import copy
    import pickle

    def make_loss():
        weights = np.ones(3)
        return lambda x: np.sum(x * weights)

    loss = make_loss()
    evaluate = pullback.value_and_gradient(loss)
    for _ in range(3):
        evaluate(np.ones(3))
    # cloudpickle and copy carry a local function's __dict__ by value.
    assert all(len(cache) == 0 for cache in pickle.loads(pickle.dumps(vars(loss))).values())
    assert all(len(cache) == 0 for cache in copy.deepcopy(vars(loss)).values())
    assert np.array_equal(evaluate(np.ones(3))[1], np.ones(3))


def test_called_functions_are_freed_with_their_closures():
    import gc
    import weakref

    def make_loss():
        weights = np.ones(1000)

        def scale(x):
            return x * weights[:3]

        def loss(x):
            return np.sum(scale(x))

        return loss, weakref.ref(scale)

    references = []
    for _ in range(5):
        loss, reference = make_loss()
        pullback.gradient(loss)(np.ones(3))
        references.append(reference)
        del loss
    gc.collect()
    assert all(reference() is None for reference in references)


def test_functions_that_warned_are_freed():
    import gc
    import warnings
    import weakref

    references = []
    for _ in range(3):
        def ignores_y(x, y):
            return np.sum(x * 2.0)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pullback.ZeroDerivativeWarning)
            pullback.gradient(ignores_y)(np.ones(3), np.ones(3))
        references.append(weakref.ref(ignores_y))
        del ignores_y
    gc.collect()
    assert all(reference() is None for reference in references)


def test_copied_function_sees_later_registrations():
    import copy
    import types

    def sine_sum(x):
        return np.sum(np.sin(x))

    pullback.gradient(sine_sum)(np.zeros(2))
    twin = types.FunctionType(sine_sum.__code__, sine_sum.__globals__, "twin")
    twin.__dict__.update(copy.deepcopy(vars(sine_sum)))
    assert np.array_equal(pullback.gradient(twin)(np.zeros(2)), np.ones(2))

    @pullback.derivative_of(np.sin, replace=True)
    def scaled_sin_vjp(x):
        return np.sin(x), lambda g: 100.0 * g * np.cos(x)

    try:
        assert np.array_equal(pullback.gradient(twin)(np.zeros(2)), np.full(2, 100.0))
    finally:
        pullback.runtime.registry.unregister_custom(np.sin)
    assert np.array_equal(pullback.gradient(twin)(np.zeros(2)), np.ones(2))


C = 1.0 + 2.0j


def modulus_of_first(xs):
    return np.abs(xs[0] * C) ** 2


def modulus_of_entry(values):
    return np.abs(values["a"] * C) ** 2


class Scaled:
    def __init__(self, w):
        self.w = w


def modulus_of_field(model):
    return np.abs(model.w * C) ** 2


@pytest.mark.parametrize("function, argument", [
    (modulus_of_first, [2.0]),
    (modulus_of_entry, {"a": 2.0}),
    (modulus_of_field, Scaled(2.0)),
])
def test_complex_cotangents_inside_containers_are_rejected(function, argument):
    with pytest.raises(DifferentiationError, match="does not differentiate complex numbers"):
        pullback.gradient(function)(argument)


def test_complex_output_cotangent_for_a_list_is_rejected():
    def doubled(xs):
        return [xs[0] * 2.0]

    _, pullback_of_doubled = pullback.value_and_pullback(doubled, [2.0])
    with pytest.raises(DifferentiationError, match="does not differentiate complex numbers"):
        pullback_of_doubled([1j])


def test_zero_derivative_warning_not_repeated_after_registrations():
    import warnings

    def ignores_b(a, b):
        return a * 3.0

    with pytest.warns(pullback.ZeroDerivativeWarning):
        pullback.gradient(ignores_b)(1.0, 2.0)

    @pullback.derivative_of(np.sinc, replace=True)
    def sinc_vjp(x):
        return np.sinc(x), lambda g: 0.0 * g

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pullback.ZeroDerivativeWarning)
            pullback.gradient(ignores_b)(1.0, 2.0)
    finally:
        pullback.runtime.registry.unregister_custom(np.sinc)


def test_registration_during_a_compile_is_not_missed(monkeypatch):
    from pullback import api

    def sinc_sum(x):
        return np.sum(np.sinc(x))

    def scaled_sinc_vjp(x):
        return np.sinc(x), lambda g: 100.0 * g

    def sinh_vjp(x):
        return np.sinh(x), lambda g: g * np.cosh(x)

    evaluate = pullback.value_and_gradient(sinc_sum)
    x = np.zeros(1)
    assert evaluate(x)[1][0] == 0.0
    original = api._Compiled.compile
    registered = []

    def compile_then_register(self):
        compiled = original(self)
        if not registered:  # Another thread registers while this one compiles.
            registered.append(pullback.derivative_of(np.sinc, replace=True)(scaled_sinc_vjp))
        return compiled

    monkeypatch.setattr(api._Compiled, "compile", compile_then_register)
    try:
        pullback.derivative_of(np.sinh, replace=True)(sinh_vjp)  # Makes the next call compile.
        evaluate(x)
        assert registered
        assert evaluate(x)[1][0] == 100.0
    finally:
        pullback.runtime.registry.unregister_custom(np.sinc)
        pullback.runtime.registry.unregister_custom(np.sinh)
