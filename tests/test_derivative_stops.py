"""Derivative stops (`no_derivative`), derivative surgery (`with_derivative`)
and the zero-derivative warning in both directions: it fires for every
implicit cut and unused parameter, and stays silent for explicit stops and
values without a derivative."""

import inspect
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from gradcheck import check_gradient

from pullback import (
    ZeroDerivativeWarning,
    derivative_of,
    gradient,
    no_derivative,
    value_and_gradient,
    value_and_pullback,
    with_derivative,
)
from pullback.errors import ArgumentTypeError, CotangentError, PullbackError


def line_containing(function, text: str) -> int:
    """Return the file line number of the first line of `function` containing `text`."""
    lines, first_line = inspect.getsourcelines(function)
    for offset, line in enumerate(lines):
        if text in line:
            return first_line + offset
    raise AssertionError(f"{text!r} is not in the source of {function.__name__}")


def definition_site(function) -> str:
    return f"{inspect.getsourcefile(function)}:{line_containing(function, 'def ')}"


def zero_derivative_messages(caught) -> list[str]:
    return [
        str(w.message) for w in caught if issubclass(w.category, ZeroDerivativeWarning)
    ]


def differences(function, x: float, eps: float = 1e-6) -> float:
    """Return the central finite difference of a scalar function at `x`."""
    return (function(x + eps) - function(x - eps)) / (2 * eps)


# no_derivative(x)


def swift_stop_example(x, y):
    stopped = no_derivative(math.cos(math.cos(math.cos(y))))
    return math.sin(math.sin(math.sin(x))) + stopped


def test_no_derivative_value():
    value, _ = value_and_gradient(swift_stop_example)(2.0, 3.0)
    expected = math.sin(math.sin(math.sin(2.0))) + math.cos(math.cos(math.cos(3.0)))
    assert value == expected


def test_no_derivative_gradient():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        x_bar, y_bar = gradient(swift_stop_example)(2.0, 3.0)
    expected = differences(lambda x: swift_stop_example(x, 3.0), 2.0)
    assert x_bar == pytest.approx(expected, rel=1e-7)
    assert y_bar == 0.0


def test_no_derivative_outside_differentiation():
    x = np.array([1.0, 2.0])
    assert no_derivative(x) is x
    assert no_derivative(3.5) == 3.5


def test_no_derivative_one_use_of_two():
    def product_with_constant(x):
        return np.sum(x * no_derivative(x))

    x = np.array([0.5, -2.0, 3.0])
    # Only the left factor carries a derivative: d/dx (x * c) = c = x.
    assert np.array_equal(gradient(product_with_constant)(x), x)


def test_no_derivative_array_zero():
    def stopped_sum(x, w):
        return np.sum(w * no_derivative(np.tanh(x)))

    x = np.array([0.5, -2.0])
    w = np.array([1.5, 2.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        x_bar, w_bar = gradient(stopped_sum)(x, w)
    assert np.array_equal(x_bar, np.zeros(2))
    assert np.array_equal(w_bar, np.tanh(x))


# @no_derivative functions


def test_no_derivative_function_value():
    @no_derivative
    def doubled(x):
        return 2.0 * x

    assert doubled(1.5) == 3.0


def test_no_derivative_function_gradient():
    @no_derivative
    def doubled(x):
        return 2.0 * x

    def caller(x, y):
        return doubled(x) * y

    # The decorator is an explicit stop, so no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x_bar, y_bar = gradient(caller)(2.0, 3.0)
    assert x_bar == 0.0
    assert y_bar == 4.0


def test_no_derivative_function_as_sole_path():
    @no_derivative
    def tripled(t):
        return t * 3.0

    def caller(x, y):
        return x * tripled(y)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x_bar, y_bar = gradient(caller)(0.5, 1.7)
    assert x_bar == pytest.approx(5.1)
    assert y_bar == 0.0


def test_no_derivative_function_left_out_of_warning():
    @no_derivative
    def doubled(x):
        return 2.0 * x

    def caller(x):
        return doubled(x) + np.floor(x)

    # The implicit cut by np.floor still warns, and the message names only it.
    with pytest.warns(ZeroDerivativeWarning) as caught:
        gradient(caller)(2.5)
    message = zero_derivative_messages(caught)[0]
    assert "numpy.floor" in message
    assert f"line {line_containing(caller, 'np.floor(x)')}:" in message
    assert "doubled" not in message


# with_derivative(x, hook)


def test_with_derivative_identity_outside():
    x = np.ones(2)
    assert with_derivative(x, print) is x


def test_with_derivative_rejects_non_callable():
    with pytest.raises(ArgumentTypeError) as info:
        with_derivative(1.0, 3.0)
    assert isinstance(info.value, PullbackError)
    assert isinstance(info.value, TypeError)
    assert "must be callable" in str(info.value)
    assert "3.0 of type float" in str(info.value)


@pytest.mark.parametrize("x", [2.0, np.ones(3)], ids=["scalar", "array"])
def test_with_derivative_hook_returning_string(x):
    def hooked(x):
        return np.sum(with_derivative(x, lambda g: "oops") * 2.0)

    with pytest.raises(CotangentError) as info:
        gradient(hooked)(x)
    message = str(info.value)
    assert "returned 'oops' of type str" in message
    assert f"for a cotangent of shape {np.shape(x)}" in message


def test_with_derivative_observe():
    seen = []

    def record(g):
        seen.append(g)

    def observed(x):
        y = with_derivative(np.sin(x), record)
        return y * y

    x_bar = check_gradient(observed, 0.4)
    assert len(seen) == 1
    assert seen[0] == pytest.approx(2.0 * math.sin(0.4), rel=1e-12)
    assert x_bar == pytest.approx(differences(observed, 0.4), rel=1e-7)


def test_with_derivative_bound_method_hook():
    seen = []

    def observed(x):
        return with_derivative(x * x, seen.append)

    assert gradient(observed)(3.0) == 6.0
    assert seen == [1.0]


def test_with_derivative_swift_surgery():
    seen = []

    def record(g):
        seen.append(g)

    def force_half(g):
        seen.append(g)
        return 0.5

    def surgery(x):
        a = with_derivative(math.sin(x), record)
        b = math.log(with_derivative(x, force_half))
        return a + b

    x_bar = gradient(surgery)(30.0)
    # The hook on x replaces the cotangent 1/x from log with 0.5.
    assert x_bar == pytest.approx(math.cos(30.0) + 0.5, rel=1e-12)
    assert seen[0] == pytest.approx(1.0 / 30.0, rel=1e-12)
    assert seen[1] == 1.0


def test_with_derivative_replace_array():
    def clipped(x):
        y = with_derivative(x * x, lambda g: np.clip(g, -0.5, 0.5))
        return np.sum(3.0 * y)

    x = np.array([1.0, -2.0])
    # The cotangent of y is 3, clipped to 0.5, then d(x*x)/dx = 2x.
    assert np.array_equal(gradient(clipped)(x), 2.0 * x * 0.5)


def test_with_derivative_mutate_in_place():
    def double_in_place(g):
        g *= 2.0

    def squared_sine(x):
        y = with_derivative(np.sin(x), double_in_place)
        return np.sum(y * y)

    def plain(x):
        return np.sum(np.sin(x) ** 2)

    x = np.array([0.3, 0.7, -1.1])
    expected = check_gradient(plain, x)
    assert np.allclose(gradient(squared_sine)(x), 2.0 * expected, rtol=1e-12)


def test_with_derivative_hook_order():
    order = []

    def chained(x):
        a = with_derivative(x * 2.0, lambda g: order.append(("a", g)))
        b = with_derivative(a * 3.0, lambda g: order.append(("b", g)))
        c = with_derivative(b * 5.0, lambda g: order.append(("c", g)))
        return c

    assert gradient(chained)(1.0) == 30.0
    assert order == [("c", 1.0), ("b", 5.0), ("a", 15.0)]


def test_with_derivative_two_uses_own_cotangent():
    seen = {}

    def first_hook(g):
        seen["first"] = g

    def second_hook(g):
        seen["second"] = g

    def weighted(x):
        first = with_derivative(x, first_hook)
        second = with_derivative(x, second_hook)
        return 3.0 * first + 5.0 * second

    assert gradient(weighted)(1.0) == 8.0
    assert seen == {"first": 3.0, "second": 5.0}


def test_with_derivative_sum_isolated_copies():
    seen = []

    def first_hook(g):
        seen.append(g.copy())

    def second_hook(g):
        # Runs first, because hooks run in reverse order of the forward pass.
        g *= 100.0

    def summed(x):
        return np.sum(with_derivative(x, first_hook) + with_derivative(x, second_hook))

    x = np.array([1.0, 2.0])
    x_bar = gradient(summed)(x)
    assert np.array_equal(seen[0], np.ones(2))
    assert np.array_equal(x_bar, np.full(2, 101.0))


def test_with_derivative_in_branches():
    seen = []

    def branched(x, flag):
        if flag:
            y = with_derivative(x * 2.0, lambda g: seen.append(("then", g)))
        else:
            y = with_derivative(x * 3.0, lambda g: seen.append(("else", g)))
        return y * y

    assert gradient(branched, wrt="x")(1.0, True) == 8.0
    assert seen == [("then", 4.0)]
    seen.clear()
    assert gradient(branched, wrt="x")(1.0, False) == 18.0
    assert seen == [("else", 6.0)]


def test_with_derivative_pullback_twice():
    seen = []

    def record(g):
        seen.append(g)

    def observed(x):
        return with_derivative(x * x, record)

    _, pullback_of_observed = value_and_pullback(observed, 3.0)
    assert pullback_of_observed(1.0) == 6.0
    assert pullback_of_observed(2.0) == 12.0
    assert seen == [1.0, 2.0]


# Zero-derivative warnings: when they fire.


def test_warning_unused_parameter():
    def ignores_y(x, y):
        return x * 2.0

    with pytest.warns(ZeroDerivativeWarning) as caught:
        x_bar, y_bar = gradient(ignores_y)(2.0, 3.0)
    assert x_bar == 2.0
    assert y_bar == 0.0
    messages = zero_derivative_messages(caught)
    assert len(messages) == 1
    assert "ignores_y" in messages[0]
    assert "'y'" in messages[0]
    assert "'x'" not in messages[0]
    assert definition_site(ignores_y) in messages[0]


def test_warning_points_at_definition():
    def ignores_y(x, y):
        return x * 2.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradient(ignores_y)(2.0, 3.0)
    assert len(caught) == 1
    assert caught[0].category is ZeroDerivativeWarning
    assert caught[0].filename == inspect.getsourcefile(ignores_y)
    assert caught[0].lineno == line_containing(ignores_y, "def ")


def test_warning_implicit_cuts_by_line():
    def cut_everywhere(x, y):
        a = int(x)
        b = round(y)
        c = x // 2.0
        d = np.floor(x)
        e = np.sign(y)
        f = x > y
        return a + b + c + d + e + f + 1.0

    with pytest.warns(ZeroDerivativeWarning) as caught:
        assert gradient(cut_everywhere)(2.5, 3.5) == (0.0, 0.0)
    messages = zero_derivative_messages(caught)
    assert len(messages) == 2
    x_message = next(m for m in messages if "'x'" in m)
    y_message = next(m for m in messages if "'y'" in m)
    for text in ("int(x)", "x // 2.0", "np.floor(x)", "x > y"):
        assert f"line {line_containing(cut_everywhere, text)}:" in x_message, text
    for text in ("round(y)", "np.sign(y)", "x > y"):
        assert f"line {line_containing(cut_everywhere, text)}:" in y_message, text
    for text in ("round(y)", "np.sign(y)"):
        assert f"line {line_containing(cut_everywhere, text)}:" not in x_message, text
    for text in ("int(x)", "x // 2.0", "np.floor(x)"):
        assert f"line {line_containing(cut_everywhere, text)}:" not in y_message, text


def test_warning_argmax_cut():
    def index_of_max(x):
        i = np.argmax(x)
        return float(i) + 1.0

    with pytest.warns(ZeroDerivativeWarning) as caught:
        x_bar = gradient(index_of_max)(np.array([1.0, 3.0, 2.0]))
    assert np.array_equal(x_bar, np.zeros(3))
    message = zero_derivative_messages(caught)[0]
    assert "argmax" in message
    assert f"line {line_containing(index_of_max, 'argmax')}:" in message


def test_warning_mixed_names_implicit_only():
    def mixed(x):
        a = no_derivative(x) * 2.0
        b = np.floor(x)
        return a + b

    with pytest.warns(ZeroDerivativeWarning) as caught:
        assert gradient(mixed)(2.5) == 0.0
    messages = zero_derivative_messages(caught)
    assert len(messages) == 1
    assert f"line {line_containing(mixed, 'np.floor')}:" in messages[0]
    assert f"line {line_containing(mixed, 'no_derivative(x)')}:" not in messages[0]


def test_warning_value_and_pullback():
    def ignores_y(x, y):
        return x * 2.0

    with pytest.warns(ZeroDerivativeWarning, match="'y'"):
        value_and_pullback(ignores_y, 2.0, 3.0)


def test_warning_once_per_function_and_wrt():
    def ignores_y(x, y):
        return x * 2.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradient(ignores_y)(2.0, 3.0)
        gradient(ignores_y)(2.0, 3.0)
        value_and_gradient(ignores_y)(4.0, 5.0)
        assert len(zero_derivative_messages(caught)) == 1
        gradient(ignores_y, wrt="y")(2.0, 3.0)
        assert len(zero_derivative_messages(caught)) == 2
        gradient(ignores_y, wrt="y")(2.0, 3.0)
        assert len(zero_derivative_messages(caught)) == 2


# Zero-derivative warnings: when they stay silent.


def test_silent_explicit_stop():
    def stopped(x, y):
        return x * no_derivative(y)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        assert gradient(stopped)(2.0, 3.0) == (3.0, 0.0)


def test_silent_explicit_stop_every_path():
    def stopped_twice(x, y):
        a = no_derivative(y) * x
        b = np.sin(no_derivative(y))
        return a + b

    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        x_bar, y_bar = gradient(stopped_twice)(2.0, 3.0)
    assert x_bar == 3.0
    assert y_bar == 0.0


def test_silent_int_bool_str_values():
    def with_options(x, n, flag, name):
        return x * 2.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradients = gradient(with_options)(2.5, 3, True, "label")
    assert zero_derivative_messages(caught) == []
    assert gradients == (2.0, None, None, None)


def test_silent_int_array_value():
    def with_indices(x, indices):
        return x * 2.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradient(with_indices)(2.5, np.array([1, 2]))
    assert zero_derivative_messages(caught) == []


def test_silent_int_annotation():
    def annotated(x, n: int):
        return x * 2.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A float passed for an int-annotated parameter still does not warn.
        assert gradient(annotated)(2.5, 3.0) == (2.0, 0.0)
    assert zero_derivative_messages(caught) == []


def test_silent_remainder():
    def fractional(x):
        return x % 1.0

    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        assert gradient(fractional)(2.25) == 1.0


def test_silent_when_used():
    def uses_both(x, y):
        return np.sin(x) * y

    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        check_gradient(uses_both, 0.3, 1.7)


# The -W command-line option, as a user runs it.

UNUSED_PARAMETER_SCRIPT = """\
import pullback

def ignores_y(x, y):
    return x * 2.0

print(pullback.gradient(ignores_y)(2.0, 3.0))
"""


def run_script(tmp_path, *python_options):
    script = tmp_path / "unused_parameter.py"
    script.write_text(textwrap.dedent(UNUSED_PARAMETER_SCRIPT))
    return subprocess.run(
        [sys.executable, *python_options, str(script)],
        capture_output=True, text=True, timeout=120,
    )


def test_command_line_default_warns(tmp_path):
    result = run_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ZeroDerivativeWarning" in result.stderr
    assert "(2.0, 0.0)" in result.stdout


def test_command_line_error_option(tmp_path):
    # CPython reads -W before pullback can be imported, so it prints an
    # "Invalid -W option ignored" notice; pullback applies the option anyway.
    result = run_script(tmp_path, "-W", "error::pullback.ZeroDerivativeWarning")
    assert result.returncode != 0
    assert "pullback.errors.ZeroDerivativeWarning" in result.stderr
    assert "(2.0, 0.0)" not in result.stdout


def test_command_line_ignore_option(tmp_path):
    result = run_script(tmp_path, "-W", "ignore::pullback.ZeroDerivativeWarning")
    assert result.returncode == 0
    assert "the derivative of" not in result.stderr
    assert "(2.0, 0.0)" in result.stdout


def test_command_line_error_base_category(tmp_path):
    # ZeroDerivativeWarning subclasses UserWarning, which -W can always name.
    result = run_script(tmp_path, "-W", "error::UserWarning")
    assert result.returncode != 0
    assert "ZeroDerivativeWarning" in result.stderr
    assert "(2.0, 0.0)" not in result.stdout


def product_for_partial_registration(x, y):
    return x * y


@derivative_of(product_for_partial_registration, wrt="y")
def product_for_partial_registration_vjp(x, y):
    return x * y, lambda g: g * x


def test_partial_registration_named_in_warning():
    def uses_partial_registration(x, y):
        return product_for_partial_registration(y=y, x=x)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grad_x, grad_y = gradient(uses_partial_registration)(2.0, 3.0)

    messages = zero_derivative_messages(caught)
    assert len(messages) == 1
    assert "covers only 'y'" in messages[0]
    assert "does not depend on" not in messages[0]
    assert grad_x == 0.0
    assert grad_y == 2.0
