"""Derivatives registered with `derivative_of`: C functions, builtins, NumPy
functions without a rule and Python functions, checked against central
finite differences in float64."""

import ctypes
import ctypes.util
import inspect
import math
import operator

import numpy as np
import pytest
from gradcheck import check_gradient, check_vjp

import pullback
from pullback import derivative_of, gradient, value_and_gradient
from pullback.compiler.pipeline import clear_cache
from pullback.compiler.rules.unsupported import unsupported_callables
from pullback.errors import (
    DerivativeRegistrationError,
    DifferentiationError,
    UnsupportedSyntaxError,
    WrtError,
)
from pullback.runtime import registry


@pytest.fixture
def unregister():
    """Collect library functions whose registration must not leak into other tests."""
    registered = []
    yield registered.append
    for function in registered:
        registry.unregister_custom(function)
    clear_cache()


def registration_site(vjp) -> str:
    """Return `file:line` of a decorated VJP's first decorator line."""
    lines, first_line = inspect.getsourcelines(vjp)
    return f"{inspect.getsourcefile(vjp)}:{first_line}"


def load_libm_exp():
    """Return a fresh ctypes handle to the C library's `exp`, or None."""
    candidates = [ctypes.util.find_library("m"), "libm.so.6", "libm.dylib"]
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            c_exp = ctypes.CDLL(candidate).exp
        except (OSError, AttributeError):
            continue
        c_exp.restype = ctypes.c_double
        c_exp.argtypes = [ctypes.c_double]
        return c_exp
    return None


# A C function through ctypes.


def test_ctypes_exp_gradient(unregister):
    c_exp = load_libm_exp()
    if c_exp is None:
        pytest.skip("the C math library cannot be loaded with ctypes")

    @derivative_of(c_exp)
    def c_exp_vjp(x):
        y = c_exp(x)
        return y, lambda g: g * y

    unregister(c_exp)

    def exp_times_sin(x):
        return c_exp(x) * math.sin(x)

    check_gradient(exp_times_sin, 0.7)
    assert gradient(c_exp)(1.0) == pytest.approx(math.e, rel=1e-12)


# A builtin without a rule: operator.mul is a C function with a signature.


def test_builtin_unregistered_rejected():
    def product_plus(x, y):
        return operator.mul(x, y) + x

    with pytest.raises(DifferentiationError) as raised:
        gradient(product_plus)(2.0, 3.0)
    assert "mul" in str(raised.value)
    assert "derivative_of" in str(raised.value)


def test_builtin_mul_gradient(unregister):
    @derivative_of(operator.mul)
    def mul_vjp(a, b):
        return a * b, lambda g: (g * b, g * a)

    unregister(operator.mul)

    def product_plus(x, y):
        return operator.mul(x, y) + x

    check_gradient(product_plus, 2.0, 3.0)
    x_bar, y_bar = gradient(product_plus)(2.0, 3.0)
    assert x_bar == 4.0
    assert y_bar == 2.0


# A NumPy function without a rule.


def polyval_vjp(p, x):
    y = np.polyval(p, x)

    def polyval_pullback(g):
        degree = len(p) - 1
        powers = np.stack([x ** (degree - i) for i in range(degree + 1)])
        p_bar = np.sum(powers * g, axis=tuple(range(1, powers.ndim)))
        x_bar = g * np.polyval(np.polyder(p), x)
        return p_bar, x_bar

    return y, polyval_pullback


def test_polyval_has_no_rule():
    # The tests below rely on np.polyval having no built-in rule.
    assert "numpy.polyval" in unsupported_callables()


def test_polyval_vjp_matches_differences():
    p = np.array([1.5, -2.0, 0.5, 3.0])
    x = np.array([0.3, -1.2, 2.0])
    value, polyval_pullback = polyval_vjp(p, x)
    check_vjp(np.polyval, polyval_pullback, (p, x))
    assert np.array_equal(value, np.polyval(p, x))


def test_polyval_registered_gradient(unregister):
    derivative_of(np.polyval)(polyval_vjp)
    unregister(np.polyval)

    def squared_fit(p, x):
        return np.sum(np.polyval(p, x) ** 2)

    p = np.array([1.5, -2.0, 0.5, 3.0])
    x = np.array([0.3, -1.2, 2.0])
    check_gradient(squared_fit, p, x)
    check_gradient(squared_fit, p, x, wrt="x")


# Python functions: the registered derivative replaces compilation.


def test_override_replaces_compilation():
    def cube(x):
        return x * x * x

    def cube_plus(x):
        return cube(x) + x

    assert gradient(cube_plus)(2.0) == 13.0

    # A deliberately wrong derivative shows which one runs.
    @derivative_of(cube)
    def cube_vjp(x):
        return cube(x), lambda g: 100.0 * g

    assert gradient(cube_plus)(2.0) == 101.0


def test_override_uncompilable_function():
    def cube_by_loop(x):
        result = 1.0
        try:  # A try statement is outside the differentiable subset.
            for _ in range(3):
                result = result * x
        finally:
            pass
        return result

    def caller(x):
        return cube_by_loop(x) * 2.0

    with pytest.raises(UnsupportedSyntaxError):
        gradient(caller)(1.3)

    @derivative_of(cube_by_loop)
    def cube_by_loop_vjp(x):
        return cube_by_loop(x), lambda g: 3.0 * x * x * g

    check_gradient(caller, 1.3)


def test_override_vjp_call_count():
    vjp_calls = []

    def cube(x):
        return x * x * x

    @derivative_of(cube)
    def cube_vjp(x):
        vjp_calls.append(x)
        return cube(x), lambda g: 3.0 * x * x * g

    def caller(x):
        return cube(x) + cube(2.0 * x)

    gradient_of_caller = gradient(caller)
    gradient_of_caller(1.0)
    assert len(vjp_calls) == 2
    gradient_of_caller(1.0)
    assert len(vjp_calls) == 4


def test_registered_function_gradient_direct():
    vjp_calls = []

    def cube(x):
        return x * x * x

    @derivative_of(cube)
    def cube_vjp(x):
        vjp_calls.append(x)
        return cube(x), lambda g: 3.0 * x * x * g

    assert gradient(cube)(2.0) == 12.0
    assert vjp_calls == [2.0]
    assert "registered derivative" in pullback.adjoint_source(cube)


def test_side_effects_once_per_evaluation():
    effects = []

    def noisy_square(x):
        effects.append(x)
        return x * x

    @derivative_of(noisy_square)
    def noisy_square_vjp(x):
        y = noisy_square(x)
        return y, lambda g: 2.0 * x * g

    def caller(x):
        return noisy_square(x) + 1.0

    evaluate = value_and_gradient(caller)
    value, x_bar = evaluate(3.0)
    assert value == 10.0
    assert x_bar == 6.0
    assert effects == [3.0]
    evaluate(4.0)
    assert effects == [3.0, 4.0]


# wrt restriction.


def test_wrt_restriction_by_name():
    def scaled(a, b):
        return a * b

    @derivative_of(scaled, wrt="a")
    def scaled_vjp(a, b):
        return a * b, lambda g: g * b  # One bare cotangent, for a.

    def caller(x, y):
        return scaled(x, y) + x

    with pytest.warns(pullback.ZeroDerivativeWarning, match="'y'"):
        x_bar, y_bar = gradient(caller)(2.0, 3.0)
    assert x_bar == 4.0
    assert y_bar == 0.0


def test_wrt_restriction_by_index():
    def scaled(a, b):
        return a * b

    @derivative_of(scaled, wrt=1)
    def scaled_vjp(a, b):
        return a * b, lambda g: g * a

    def caller(x, y):
        return scaled(x, y)

    assert gradient(caller, wrt="y")(2.0, 3.0) == 2.0


def test_wrt_restriction_invalid_name():
    def scaled(a, b):
        return a * b

    with pytest.raises(WrtError, match="'c'"):
        derivative_of(scaled, wrt="c")(lambda a, b: (a * b, lambda g: g))


# Registration: twice, replacement, late registration.


def test_double_registration_error():
    def square(x):
        return x * x

    @derivative_of(square)
    def first_vjp(x):
        return x * x, lambda g: 2.0 * x * g

    with pytest.raises(DerivativeRegistrationError) as raised:

        @derivative_of(square)
        def second_vjp(x):
            return x * x, lambda g: 2.0 * x * g

    message = str(raised.value)
    assert "square" in message
    assert registration_site(first_vjp) in message
    assert "replace=True" in message


def test_replace_registration():
    def square(x):
        return x * x

    def caller(x):
        return square(x)

    @derivative_of(square)
    def first_vjp(x):
        return x * x, lambda g: 2.0 * x * g

    gradient_of_caller = gradient(caller)
    assert gradient_of_caller(3.0) == 6.0

    @derivative_of(square, replace=True)
    def second_vjp(x):
        return x * x, lambda g: -1.0 * g

    assert gradient_of_caller(3.0) == -1.0


def test_registration_after_caller_compiled():
    def square(x):
        return x * x

    @pullback.differentiable
    def caller(x):
        return square(x) + x

    gradient_of_caller = gradient(caller)
    assert gradient_of_caller(3.0) == 7.0

    @derivative_of(square)
    def square_vjp(x):
        return x * x, lambda g: 10.0 * g

    assert gradient_of_caller(3.0) == 11.0
    assert gradient(caller)(3.0) == 11.0


# Errors from a registered pullback.


def test_wrong_count_error():
    def product(x, y):
        return x * y

    @derivative_of(product)
    def product_vjp(x, y):
        return x * y, lambda g: g * y  # Should be a pair.

    def caller(x, y):
        return product(x, y) + 1.0

    with pytest.raises(DerivativeRegistrationError) as raised:
        gradient(caller)(2.0, 3.0)
    message = str(raised.value)
    assert "product" in message
    assert registration_site(product_vjp) in message
    assert "tuple of 2 cotangents" in message
    assert "float" in message


def test_wrong_count_tuple_error():
    def product(x, y):
        return x * y

    @derivative_of(product)
    def product_vjp(x, y):
        return x * y, lambda g: (g * y, g * x, g)

    def caller(x, y):
        return product(x, y)

    with pytest.raises(DerivativeRegistrationError) as raised:
        gradient(caller)(2.0, 3.0)
    message = str(raised.value)
    assert "product" in message
    assert registration_site(product_vjp) in message
    assert "tuple of 2 cotangents" in message
    assert "tuple of 3" in message


def test_wrong_shape_error():
    def doubled(x):
        return 2.0 * x

    @derivative_of(doubled)
    def doubled_vjp(x):
        return 2.0 * x, lambda g: np.ones(3)

    def caller(x):
        return np.sum(doubled(x))

    with pytest.raises(DerivativeRegistrationError) as raised:
        gradient(caller)(np.ones(4))
    message = str(raised.value)
    assert "doubled" in message
    assert registration_site(doubled_vjp) in message
    assert "(3,)" in message
    assert "(4,)" in message


def test_vjp_not_pair_error():
    def doubled(x):
        return 2.0 * x

    @derivative_of(doubled)
    def doubled_vjp(x):
        return 2.0 * x

    def caller(x):
        return doubled(x)

    with pytest.raises(DerivativeRegistrationError) as raised:
        gradient(caller)(1.0)
    message = str(raised.value)
    assert "doubled" in message
    assert "(value, pullback)" in message


def test_vjp_parameter_mismatch_error():
    def product(x, y):
        return x * y

    with pytest.raises(DerivativeRegistrationError) as raised:

        @derivative_of(product)
        def product_vjp(x):
            return x, lambda g: g

    message = str(raised.value)
    assert "product" in message
    assert "product_vjp" in message


# Methods registered on the class.


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def apply(self, x):
        return self.factor * x


@derivative_of(Scaler.apply, wrt="x")
def scaler_apply_vjp(self, x):
    return self.factor * x, lambda g: self.factor * g


scale_by_three = Scaler(3.0).apply


def test_method_registration_bound_name():
    def caller(x):
        return scale_by_three(x) + x

    check_gradient(caller, 0.5)


def test_method_registration_gradient_direct():
    assert gradient(scale_by_three)(0.5) == 3.0


# Finite-difference checks of registered derivatives through callers.


def test_registered_vjp_array_caller():
    def smooth_abs(x):
        return np.sqrt(x * x + 1.0)

    @derivative_of(smooth_abs)
    def smooth_abs_vjp(x):
        y = np.sqrt(x * x + 1.0)
        return y, lambda g: g * x / y

    def loss(x, w):
        return np.sum(w * smooth_abs(x * w))

    rng = np.random.default_rng(7)
    x = rng.standard_normal(5)
    w = rng.standard_normal(5)
    check_gradient(loss, x, w)
    check_gradient(loss, x, w, wrt="w")


def test_registered_vjp_receives_requested_wrt():
    def scaled(x, factor):
        return x * factor

    requests = []

    @derivative_of(scaled)
    def scaled_vjp(x, factor, *, wrt=("x", "factor")):
        requests.append(wrt)

        def scaled_pullback(g):
            x_bar = g * factor if "x" in wrt else None
            factor_bar = np.sum(g * x) if "factor" in wrt else None
            return x_bar, factor_bar

        return x * factor, scaled_pullback

    def loss(x, factor):
        return np.sum(np.sin(scaled(x, factor)))

    rng = np.random.default_rng(3)
    x = rng.standard_normal(4)
    check_gradient(loss, x, 0.7)
    check_gradient(loss, x, 0.7, wrt="factor")
    check_gradient(loss, x, 0.7, wrt="x")
    assert ("x", "factor") in requests
    assert ("factor",) in requests
    assert ("x",) in requests


def test_registered_vjp_wrt_is_not_a_parameter():
    def doubled(x):
        return 2.0 * x

    @derivative_of(doubled)
    def doubled_vjp(x, *, wrt=("x",)):
        return 2.0 * x, lambda g: 2.0 * g

    record = registry.custom_derivative(doubled)
    assert record.param_names == ("x",)
    assert record.takes_wrt
    assert gradient(lambda x: doubled(x) ** 2)(1.5) == 12.0


# Cotangents of container and object arguments, dtypes and defaults.


def weighted_pair(parts):
    return parts[0] + 2.0 * parts[1]


def weighted_pair_loss(a, b):
    return np.sum(weighted_pair([a, b]) * np.array([1.0, 10.0]))


class Holder:
    def __init__(self, w):
        self.w = w


def held_times_three(holder):
    return holder.w * 3.0


def held_loss(holder):
    return np.sum(held_times_three(holder))


def keyed_times_three(d):
    return d["w"] * 3.0


def keyed_loss(w):
    return keyed_times_three({"w": w, "n": 2})


def doubled(x):
    return 2.0 * x


def doubled_loss(x):
    return np.sum(doubled(x))


def power_of(x, p=3.0):
    return x**p


def test_list_argument_cotangent_checked(unregister):
    @derivative_of(weighted_pair)
    def weighted_pair_vjp(parts):
        return weighted_pair(parts), lambda g: g  # One array for a list of two.

    unregister(weighted_pair)
    a, b = np.ones(2), np.full(2, 2.0)

    with pytest.raises(DerivativeRegistrationError, match="list of 2 items"):
        gradient(weighted_pair_loss)(a, b)


def test_list_item_shape_checked(unregister):
    @derivative_of(weighted_pair)
    def weighted_pair_vjp(parts):
        return weighted_pair(parts), lambda g: [np.sum(g), 2.0 * g]

    unregister(weighted_pair)
    a, b = np.ones(2), np.full(2, 2.0)

    with pytest.raises(DerivativeRegistrationError, match=r"'parts'\[0\] has shape \(2,\)"):
        gradient(weighted_pair_loss)(a, b)


def test_list_argument_gradient_differences(unregister):
    @derivative_of(weighted_pair)
    def weighted_pair_vjp(parts):
        return weighted_pair(parts), lambda g: [g, 2.0 * g]

    unregister(weighted_pair)

    check_gradient(weighted_pair_loss, np.ones(2), np.full(2, 2.0))


def test_object_argument_given_array_rejected(unregister):
    @derivative_of(held_times_three)
    def held_times_three_vjp(holder):
        return holder.w * 3.0, lambda g: np.array([3.0 * g, 1.0])

    unregister(held_times_three)

    with pytest.raises(DerivativeRegistrationError, match="Holder object"):
        gradient(held_loss)(Holder(2.0))


def test_dict_argument_extra_key_rejected(unregister):
    @derivative_of(keyed_times_three)
    def keyed_times_three_vjp(d):
        return d["w"] * 3.0, lambda g: {"w": 3.0 * g, "extra": 1.0}

    unregister(keyed_times_three)

    with pytest.raises(DerivativeRegistrationError, match="dict with keys"):
        gradient(keyed_loss)(2.0)


def test_registered_cotangent_keeps_float32(unregister):
    @derivative_of(doubled)
    def doubled_vjp(x):
        # np.full promotes to float64, which the wrapper casts back.
        return 2.0 * x, lambda g: np.full(np.shape(x), 2.0) * g

    unregister(doubled)

    grad = gradient(doubled_loss)(np.ones(3, dtype=np.float32))

    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, np.full(3, 2.0, dtype=np.float32))


def test_vjp_default_must_match():
    with pytest.raises(DerivativeRegistrationError, match="defaults it to 3.0"):
        @derivative_of(power_of)
        def power_of_vjp(x, p=2.0):
            return x**p, lambda g: (g * p * x ** (p - 1), None)


def test_vjp_parameter_name_must_match():
    with pytest.raises(DerivativeRegistrationError, match="name it 'p'"):
        @derivative_of(power_of)
        def power_of_vjp(x, q=3.0):
            return x**q, lambda g: (g * q * x ** (q - 1), None)


def test_ufunc_registered_with_operands_only(unregister):
    @derivative_of(np.hypot)
    def hypot_vjp(a, b):
        r = np.hypot(a, b)
        return r, lambda g: (g * a / r, g * b / r)

    unregister(np.hypot)

    assert registry.custom_derivative(np.hypot).param_names == ("x1", "x2")


class Weights:
    def __init__(self, w, b):
        self.w = w
        self.b = b


def weighted_total(weights):
    return np.sum(weights.w) * 2.0 + weights.b


def weighted_total_loss(weights):
    return weighted_total(weights)


def pair_sum(parts):
    return parts[0] * 3.0 + parts[1]


def pair_sum_loss(a, b):
    parts = [a, b]
    return pair_sum(parts) + parts[0]


def test_object_tangent_unknown_field_rejected(unregister):
    @derivative_of(weighted_total)
    def weighted_total_vjp(weights):
        def weighted_total_pullback(g):
            return pullback.ObjectTangent(wieght=2.0 * g * np.ones(2), b=g)

        return weighted_total(weights), weighted_total_pullback

    unregister(weighted_total)

    with pytest.raises(DerivativeRegistrationError, match="no differentiable attribute 'wieght'"):
        gradient(weighted_total_loss)(Weights(np.ones(2), 1.0))


def test_object_tangent_field_shape_checked(unregister):
    @derivative_of(weighted_total)
    def weighted_total_vjp(weights):
        def weighted_total_pullback(g):
            return pullback.ObjectTangent(w=2.0 * g * np.ones(5), b=g)

        return weighted_total(weights), weighted_total_pullback

    unregister(weighted_total)

    with pytest.raises(DerivativeRegistrationError, match=r"'weights'.w has shape \(2,\)"):
        gradient(weighted_total_loss)(Weights(np.ones(2), 1.0))


def test_object_tangent_gradient_matches(unregister):
    @derivative_of(weighted_total)
    def weighted_total_vjp(weights):
        def weighted_total_pullback(g):
            return pullback.ObjectTangent(w=2.0 * g * np.ones_like(weights.w), b=g)

        return weighted_total(weights), weighted_total_pullback

    unregister(weighted_total)

    grad = gradient(weighted_total_loss)(Weights(np.array([0.5, -1.0]), 1.0))

    np.testing.assert_array_equal(grad.w, [2.0, 2.0])
    assert grad.b == 1.0


def test_tuple_cotangent_for_list_becomes_list(unregister):
    @derivative_of(pair_sum)
    def pair_sum_vjp(parts):
        return pair_sum(parts), lambda g: (3.0 * g, g)

    unregister(pair_sum)

    grad_a, grad_b = gradient(pair_sum_loss)(1.0, 2.0)

    assert grad_a == pytest.approx(4.0)
    assert grad_b == pytest.approx(1.0)


def test_complex_cotangent_for_real_rejected(unregister):
    @derivative_of(doubled)
    def doubled_vjp(x):
        return 2.0 * x, lambda g: (2.0 + 0.0j) * g * np.ones_like(x)

    unregister(doubled)

    with pytest.raises(DerivativeRegistrationError, match="complex cotangent"):
        gradient(doubled_loss)(np.ones(3, dtype=np.float32))


def scaled_by(x, k=1.0):
    return x * k


def scaled_by_nan(x, k=float("nan")):
    return x * k


def test_vjp_keyword_only_for_positional_rejected():
    with pytest.raises(DerivativeRegistrationError, match="by keyword only"):
        @derivative_of(scaled_by)
        def scaled_by_vjp(x, *, k=1.0):
            return x * k, lambda g: (g * k, g * x)


@pytest.mark.parametrize("default", [1, np.float64(1.0)])
def test_vjp_equal_numeric_default_accepted(default, unregister):
    def scaled_by_vjp(x, k=default):
        return x * k, lambda g: (g * k, g * x)

    derivative_of(scaled_by)(scaled_by_vjp)
    unregister(scaled_by)

    assert registry.custom_derivative(scaled_by) is not None


def test_vjp_nan_default_accepted(unregister):
    @derivative_of(scaled_by_nan)
    def scaled_by_nan_vjp(x, k=float("nan")):
        return x * k, lambda g: (g * k, g * x)

    unregister(scaled_by_nan)

    assert registry.custom_derivative(scaled_by_nan) is not None


def squared(x):
    return x * x


def offset_by(x, k=0.0):
    return x + k


def test_complex_cotangent_for_python_float_rejected(unregister):
    @derivative_of(squared)
    def squared_vjp(x):
        return x * x, lambda g: (2.0 + 1.0j) * g * x

    unregister(squared)

    with pytest.raises(DerivativeRegistrationError, match="complex cotangent"):
        gradient(squared)(3.0)


def test_integer_cotangent_for_python_float_cast(unregister):
    @derivative_of(squared)
    def squared_vjp(x):
        return x * x, lambda g: np.int64(6)

    unregister(squared)

    grad = gradient(lambda x: squared(x) + 0.0)(3.0)

    assert isinstance(grad, float)
    assert grad == 6.0


def test_signed_zero_default_must_match():
    with pytest.raises(DerivativeRegistrationError, match="defaults it to 0.0"):
        @derivative_of(offset_by)
        def offset_by_vjp(x, k=-0.0):
            return x + k, lambda g: (g, g)
