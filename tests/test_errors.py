"""Errors and warnings: each has its type, the user's line where one applies,
and a message that names the problem and the next step."""

import ctypes
import ctypes.util
import functools
import linecache
import traceback
import warnings

import numpy as np
import pytest
from gradcheck import check_gradient, check_vjp

import pullback
from pullback import PullbackError, ZeroDerivativeWarning
from pullback.errors import (
    CotangentError,
    DifferentiationError,
    InternalError,
    NonScalarOutputError,
    NoSourceError,
    UnsupportedSyntaxError,
    WrtError,
)

with open(__file__, encoding="utf-8") as _file:
    THIS_FILE_LINES = _file.read().splitlines()


def line_marked(marker: str) -> tuple[int, str]:
    """Return the 1-based number and text of the one line ending in `marker`."""
    found = [
        (number, text)
        for number, text in enumerate(THIS_FILE_LINES, start=1)
        if text.endswith(marker)
    ]
    assert len(found) == 1, f"marker {marker!r} is on {len(found)} lines"
    return found[0]


# Functions outside the differentiable subset. Defining them is fine, but
# compiling them must fail. Each offending line ends in a unique marker.


def uses_try_in_while(x):
    while x > 1.0:
        try:  # rejected: try in while loop
            x = x / 2.0
        except ZeroDivisionError:
            break
    return x


def uses_with_in_for(x):
    total = 0.0
    for item in x:
        with np.errstate(all="ignore"):  # rejected: with in for loop
            total = total + np.log(item)
    return total


def uses_try(x):
    try:  # rejected: try
        y = np.sin(x)
    except ValueError:
        y = x
    return y


def uses_yield(x):
    yield x * 2.0  # rejected: yield


GLOBAL_TARGET = 0.0


def uses_global(x):
    global GLOBAL_TARGET  # rejected: global
    GLOBAL_TARGET = x
    return x * 2.0


def make_uses_nonlocal():
    total = 0.0

    def uses_nonlocal(x):
        nonlocal total  # rejected: nonlocal
        total = x
        return x * 2.0

    return uses_nonlocal


def uses_item_of_expression_assignment(x):
    (x * 2.0)[0] = 1.0  # rejected: item of an expression
    return np.sum(x)


def uses_attribute_assignment(x, state):
    state.value = x  # rejected: attribute assignment
    return x * 2.0


def uses_decorated_nested_def(x):
    @staticmethod  # rejected: decorated nested def
    def inner(y):
        return y * y

    return inner(x)


def uses_lambda(x):
    square = lambda y: y * y  # noqa: E731
    return square(x)


def uses_set_comprehension(x):
    parts = {v for v in x}  # rejected: set comprehension
    return np.sum(list(parts))


def uses_with(x):
    with np.errstate(all="ignore"):  # rejected: with
        y = np.log(x)
    return np.sum(y)


def uses_del(x):
    y = x * 2.0
    del y  # rejected: del
    return x


def uses_import(x):
    import math  # rejected: import

    return math.sin(x)


def uses_import_from(x):
    from math import sin  # rejected: from import

    return sin(x)


def uses_walrus(x):
    return (y := x * 2.0) * y  # rejected: walrus


async def uses_async_def(x):  # rejected: async def
    return x * 2.0


async def doubled_later(x):
    return x * 2.0


async def yields_later(x):
    yield x * 2.0


def calls_async_function(x):
    return doubled_later(x) * 3.0  # rejected: async call


def calls_async_function_on_constant(x):
    pending = doubled_later(1.0)  # rejected: async call on constant
    return x * 3.0 + pending


def calls_async_generator(x):
    values = yields_later(x)  # rejected: async generator call
    return x * values


def uses_star_kwargs(x, **options):  # rejected: star kwargs
    return x * options["scale"]


def uses_only_star_kwargs(**xs):  # rejected: only star kwargs
    return xs["a"] * 2.0


def uses_starred_display(x, rest):
    items = [x, *rest]  # rejected: starred display
    return items[0]


def uses_starred_target(values):
    first, *others = values  # rejected: starred target
    return first


def uses_set_literal(x):
    members = {x, 2.0 * x}  # rejected: set literal
    return sum(members)


def uses_generator_expression(x):
    return sum(v * v for v in x)  # rejected: generator expression


def uses_class(x):
    class Box:  # rejected: class
        value = 1.0

    return x * Box.value


# (function, marker, token the column points at, phrase of the message)
UNSUPPORTED_SYNTAX = [
    (uses_try_in_while, "# rejected: try in while loop", "try", "try statement"),
    (uses_with_in_for, "# rejected: with in for loop", "with", "with statement"),
    (uses_try, "# rejected: try", "try", "try statement"),
    (uses_yield, "# rejected: yield", "yield", "yield"),
    (uses_global, "# rejected: global", "global", "global"),
    (make_uses_nonlocal(), "# rejected: nonlocal", "nonlocal", "nonlocal"),
    (uses_item_of_expression_assignment, "# rejected: item of an expression", "(x",
     "item of an expression"),
    (uses_attribute_assignment, "# rejected: attribute assignment", "state", "attribute"),
    (uses_decorated_nested_def, "# rejected: decorated nested def", "staticmethod",
     "decorated local function"),
    (uses_set_comprehension, "# rejected: set comprehension", "{", "set comprehension"),
    (uses_with, "# rejected: with", "with", "with statement"),
    (uses_del, "# rejected: del", "del", "del"),
    (uses_import, "# rejected: import", "import", "import"),
    (uses_import_from, "# rejected: from import", "from", "import"),
    (uses_walrus, "# rejected: walrus", "y :=", ":="),
    (uses_star_kwargs, "# rejected: star kwargs", "options", "**options"),
    (uses_starred_display, "# rejected: starred display", "*rest",
     "starred expression outside a call"),
    (uses_starred_target, "# rejected: starred target", "*others",
     "starred assignment target"),
    (uses_set_literal, "# rejected: set literal", "{", "set literal"),
    (uses_generator_expression, "# rejected: generator expression", "(v", "generator"),
    (uses_class, "# rejected: class", "class", "class"),
    (uses_async_def, "# rejected: async def", "async", "async function"),
    (calls_async_function, "# rejected: async call", "doubled_later",
     "async function"),
    (calls_async_function_on_constant, "# rejected: async call on constant",
     "doubled_later", "async function"),
    (calls_async_generator, "# rejected: async generator call", "yields_later",
     "async function"),
]


def assert_points_at(error: SyntaxError, marker: str, token: str) -> None:
    lineno, text = line_marked(marker)
    assert error.filename == __file__
    assert error.lineno == lineno
    assert error.offset == text.index(token) + 1
    assert error.text is not None
    assert error.text.strip() == text.strip()


@pytest.mark.parametrize(
    "function, marker, token, phrase",
    UNSUPPORTED_SYNTAX,
    ids=[case[1].removeprefix("# rejected: ") for case in UNSUPPORTED_SYNTAX],
)
def test_unsupported_syntax(function, marker, token, phrase):
    with pytest.raises(UnsupportedSyntaxError) as info:
        pullback.differentiable(function)
    error = info.value
    assert isinstance(error, PullbackError)
    assert isinstance(error, SyntaxError)
    assert_points_at(error, marker, token)
    message = str(error)
    assert phrase in message
    assert "not supported" in message
    assert "hint:" in message


def test_only_star_kwargs_is_syntax_error():
    with pytest.raises(UnsupportedSyntaxError) as info:
        pullback.differentiable(uses_only_star_kwargs)
    assert_points_at(info.value, "# rejected: only star kwargs", "xs")
    assert "**xs" in str(info.value)


def test_calling_local_lambda_inlines_it():
    # A lambda assigned inside differentiated code is inlined where called.
    assert pullback.gradient(uses_lambda)(3.0) == pytest.approx(6.0)


def test_unsupported_syntax_at_decorator():
    with pytest.raises(SyntaxError) as info:

        @pullback.differentiable
        def halve_or_keep(x):
            try:  # rejected at decoration
                y = x / 2.0
            except ZeroDivisionError:
                y = x
            return y

    assert isinstance(info.value, PullbackError)
    assert_points_at(info.value, "# rejected at decoration", "try")


def test_unsupported_syntax_at_decorator_with_wrt():
    with pytest.raises(SyntaxError) as info:

        @pullback.differentiable(wrt="x")
        def store_first(x, y):
            global_value = y  # noqa: F841
            with np.errstate(all="ignore"):  # rejected at decoration with wrt
                return np.sum(x)

    assert isinstance(info.value, PullbackError)
    assert_points_at(info.value, "# rejected at decoration with wrt", "with")


def test_unsupported_syntax_from_gradient():
    with pytest.raises(UnsupportedSyntaxError) as info:
        pullback.gradient(uses_try)
    assert_points_at(info.value, "# rejected: try", "try")


def test_unsupported_syntax_from_adjoint_source():
    with pytest.raises(UnsupportedSyntaxError) as info:
        pullback.adjoint_source(uses_with)
    assert_points_at(info.value, "# rejected: with", "with")


def calls_function_with_try(x):
    return uses_try_in_while(x) * 2.0


def test_unsupported_syntax_in_callee():
    with pytest.raises(UnsupportedSyntaxError) as info:
        pullback.gradient(calls_function_with_try)(3.0)
    assert_points_at(info.value, "# rejected: try in while loop", "try")


# Loops are in the differentiable subset. The checker accepts them and still
# rejects unsupported syntax inside their bodies (the cases above).


def shrinks_while_large(x):
    while x > 1.0:
        x = np.sqrt(x) * 0.9
    return x


def sums_weighted_sines(x):
    total = 0.0
    for item in x:
        total = total + np.sin(item) * item
    return total


@pytest.mark.parametrize(
    "function, argument",
    [
        (shrinks_while_large, 0.5),  # no iterations
        (shrinks_while_large, 3.0),  # three iterations
        (shrinks_while_large, 20.0),  # four iterations
        (sums_weighted_sines, np.array([0.3, -1.2, 2.0, 0.7])),
    ],
    ids=["while-0", "while-3", "while-4", "for-over-array"],
)
def test_loop_gradient_matches_finite_differences(function, argument):
    pullback.differentiable(function)
    check_gradient(function, argument)


def test_unsupported_syntax_formats_like_syntax_error():
    with pytest.raises(UnsupportedSyntaxError) as info:
        pullback.differentiable(uses_del)
    lineno, _ = line_marked("# rejected: del")
    formatted = "".join(traceback.format_exception_only(type(info.value), info.value))
    assert f'File "{__file__}", line {lineno}' in formatted
    assert "del y" in formatted


# Functions without Python source.


def exec_built_function():
    namespace = {}
    exec("def built_by_exec(x):\n    return x * 2.0\n", namespace)
    return namespace["built_by_exec"]


def times(x, factor):
    return x * factor


def libm_sin():
    path = ctypes.util.find_library("m")
    if path is None:
        pytest.skip("libm not found")
    library = ctypes.CDLL(path)
    function = library.sin
    function.restype = ctypes.c_double
    function.argtypes = [ctypes.c_double]
    return function


@pytest.mark.parametrize(
    "make_function, name",
    [
        (lambda: len, "len"),
        (lambda: np.nextafter, "nextafter"),
        (libm_sin, "sin"),
        (exec_built_function, "built_by_exec"),
        (lambda: functools.partial(times, factor=2.0), "times"),
    ],
    ids=["builtin", "ufunc without rule", "ctypes", "exec", "partial"],
)
def test_no_source(make_function, name):
    function = make_function()
    with pytest.raises(NoSourceError) as info:
        pullback.gradient(function)
    message = str(info.value)
    assert isinstance(info.value, PullbackError)
    assert name in message
    assert "object at 0x" not in message, "the message shows a repr, not the name"
    assert "derivative_of" in message


def test_ufunc_with_rule_differentiated_directly():
    x = np.array([0.3, -1.2])
    value, pullback_of_sin = pullback.value_and_pullback(np.sin, x)
    np.testing.assert_array_equal(value, np.sin(x))
    check_vjp(np.sin, pullback_of_sin, (x,))


def test_library_function_with_rule_as_value_rejected():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(np.linalg.norm)
    message = str(info.value)
    assert "numpy.linalg.norm is differentiated here as a value" in message
    assert "call numpy.linalg.norm by name" in message


def test_no_source_at_decoration():
    with pytest.raises(NoSourceError) as info:
        pullback.differentiable(exec_built_function())
    assert "derivative_of" in str(info.value)


def calls_exec_built(x):
    return CALLED_EXEC_BUILT(x) + 1.0


CALLED_EXEC_BUILT = exec_built_function()


def test_no_source_in_callee():
    with pytest.raises(NoSourceError) as info:
        pullback.gradient(calls_exec_built)(1.0)
    message = str(info.value)
    assert "built_by_exec" in message
    assert "derivative_of" in message


# NumPy functions without a derivative rule.


def svd_of_input(x):
    s = np.linalg.svd(x, compute_uv=False)  # no rule: svd
    return np.sum(s)


def fft_of_input(x):
    spectrum = np.abs(np.fft.fft(x))  # no rule: fft
    return np.sum(spectrum)


def svd_after_other_work(x):
    y = np.sin(x) * 2.0
    z = np.linalg.svd(y @ y.T, compute_uv=False)[0]  # no rule: svd later
    return z


SVD_INPUT = np.array([[2.0, 1.0], [1.0, 3.0]])
FFT_INPUT = np.array([1.0, 2.0, 0.5, -1.0])


def svd_of_constant(x):
    s = np.linalg.svd(SVD_INPUT, compute_uv=False)
    return np.sum(x * s)


def fft_of_constant(x):
    spectrum = np.abs(np.fft.fft(FFT_INPUT))
    return np.sum(x * spectrum)


@pytest.mark.parametrize(
    "function, marker, name",
    [
        (svd_of_input, "# no rule: svd", "svd"),
        (fft_of_input, "# no rule: fft", "fft"),
        (svd_after_other_work, "# no rule: svd later", "svd"),
    ],
    ids=["svd", "fft", "svd_later"],
)
def test_function_without_rule(function, marker, name):
    lineno, _ = line_marked(marker)
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)
    message = str(info.value)
    assert isinstance(info.value, PullbackError)
    assert name in message
    assert "derivative_of" in message
    assert f"{__file__}:{lineno}" in message


def test_function_without_rule_at_decoration():
    with pytest.raises(DifferentiationError):
        pullback.differentiable(svd_of_input)


@pytest.mark.parametrize("function, constant", [
    (svd_of_constant, np.linalg.svd(SVD_INPUT, compute_uv=False)),
    (fft_of_constant, np.abs(np.fft.fft(FFT_INPUT))),
], ids=["svd", "fft"])
def test_function_without_rule_on_constants(function, constant):
    x = np.ones_like(constant)
    np.testing.assert_allclose(pullback.gradient(function)(x), constant)


# Non-scalar results.


def elementwise_sin(x):
    return np.sin(x)


def pair_of_sums(x):
    return np.sum(x), np.sum(x * x)


def total(x):
    return np.sum(x)


def one_element_vector(x):
    return np.sum(x, keepdims=True)


@pytest.mark.parametrize(
    "function, shape_text",
    [
        (elementwise_sin, "(3,)"),
        (pair_of_sums, "tuple"),
        (one_element_vector, "(1,)"),
    ],
    ids=["array", "tuple", "keepdims"],
)
def test_gradient_of_non_scalar(function, shape_text):
    with pytest.raises(NonScalarOutputError) as info:
        pullback.gradient(function)(np.ones(3))
    message = str(info.value)
    assert isinstance(info.value, PullbackError)
    assert "value_and_pullback" in message
    assert shape_text in message
    assert function.__name__ in message


def test_value_and_gradient_of_non_scalar():
    with pytest.raises(NonScalarOutputError, match="value_and_pullback"):
        pullback.value_and_gradient(elementwise_sin)(np.ones(3))


# wrt arguments.


def two_parameters(x, y):
    return np.sum(x * y)


@pytest.mark.parametrize(
    "wrt, phrase",
    [
        ("z", "'z'"),
        (2, "out of range"),
        (-3, "out of range"),
        (("x", "x"), "twice"),
        (("x", 0), "twice"),
        ((1, -1), "twice"),
        (1.5, "1.5"),
        (("x", None), "None"),
        (True, "True"),
        (b"x", "b'x'"),
        ((), "wrt"),
    ],
    ids=[
        "unknown_name", "index_too_large", "index_too_small", "duplicate_name",
        "duplicate_mixed", "duplicate_negative", "float", "none_item", "bool",
        "bytes", "empty",
    ],
)
def test_bad_wrt(wrt, phrase):
    with pytest.raises(WrtError) as info:
        pullback.gradient(two_parameters, wrt=wrt)
    message = str(info.value)
    assert isinstance(info.value, PullbackError)
    assert phrase in message


def test_bad_wrt_names_parameters():
    with pytest.raises(WrtError) as info:
        pullback.gradient(two_parameters, wrt="z")
    message = str(info.value)
    assert "'x'" in message
    assert "'y'" in message


@pytest.mark.parametrize(
    "entry",
    [
        lambda wrt: pullback.differentiable(two_parameters, wrt=wrt),
        lambda wrt: pullback.differentiable(wrt=wrt)(two_parameters),
        lambda wrt: pullback.value_and_gradient(two_parameters, wrt=wrt),
        lambda wrt: pullback.value_and_pullback(two_parameters, 1.0, 2.0, wrt=wrt),
        lambda wrt: pullback.pullback(two_parameters, 1.0, 2.0, wrt=wrt),
        lambda wrt: pullback.adjoint_source(two_parameters, wrt=wrt),
    ],
    ids=[
        "differentiable", "differentiable_decorator", "value_and_gradient",
        "value_and_pullback", "pullback", "adjoint_source",
    ],
)
def test_bad_wrt_in_every_entry(entry):
    with pytest.raises(WrtError):
        entry("missing")


def no_parameters():
    return 1.0


def test_no_parameters_to_differentiate():
    with pytest.raises(WrtError, match="no parameters"):
        pullback.gradient(no_parameters)


def one_parameter(x):
    return x * 2.0


def test_bad_wrt_index_counts_one_parameter():
    with pytest.raises(WrtError) as info:
        pullback.gradient(one_parameter, wrt=3)
    message = str(info.value)
    assert "has 1 parameter ('x',)" in message
    assert "1 parameters" not in message


# Cotangents of the wrong shape.


@pytest.mark.parametrize(
    "function, cotangent, phrase",
    [
        (elementwise_sin, np.ones(4), "(3,)"),
        (elementwise_sin, np.ones((3, 1)), "(3, 1)"),
        (elementwise_sin, 1.0, "()"),
        (pair_of_sums, np.ones(3), "tuple"),
        (pair_of_sums, (1.0, 1.0, 1.0), "2"),
        (pair_of_sums, (1.0, np.ones(2)), "(2,)"),
        (total, np.ones(2), "(2,)"),
    ],
    ids=[
        "longer", "extra_axis", "scalar_for_array", "array_for_tuple",
        "tuple_too_long", "tuple_item_shape", "array_for_scalar",
    ],
)
def test_cotangent_of_wrong_shape(function, cotangent, phrase):
    _, pullback_of_f = pullback.value_and_pullback(function, np.ones(3))
    with pytest.raises(CotangentError) as info:
        pullback_of_f(cotangent)
    message = str(info.value)
    assert isinstance(info.value, PullbackError)
    assert phrase in message
    assert "cotangent" in message


def test_cotangent_tuple_too_short_counts_items():
    _, pullback_of_f = pullback.value_and_pullback(pair_of_sums, np.ones(3))
    with pytest.raises(CotangentError) as info:
        pullback_of_f((1.0,))
    message = str(info.value)
    assert "must be a tuple of 2 items" in message
    assert "got a tuple of 1 item" in message
    assert "1 items" not in message


# Zero-derivative warnings. Each test uses its own function, because the
# warning goes out once per compiled function and wrt.


def ignores_y(x, y):
    return np.sum(np.sin(x))


def ignores_count(x, count):
    return np.sum(np.sin(x))


def uses_both(x, y):
    return np.sum(np.sin(x) * y)


def uses_y_in_branch_only(x, y):
    if np.sum(x) > 0:
        return np.sum(x * y)
    return np.sum(x)


def floors_y(x, y):
    return np.sum(x) * np.floor(y)  # cut: floor


def ignores_y_once(x, y):
    return np.sum(x * 2.0)


def ignores_y_located(x, y):
    return np.sum(x * 3.0)


def test_zero_derivative_warning_names_parameter():
    with pytest.warns(ZeroDerivativeWarning) as record:
        gradients = pullback.gradient(ignores_y)(np.ones(3), 2.0)
    messages = [str(w.message) for w in record if w.category is ZeroDerivativeWarning]
    assert len(messages) == 1
    assert "'y'" in messages[0]
    assert "'x'" not in messages[0]
    assert gradients[1] == 0.0 or gradients[1] is None


def test_zero_derivative_warning_location():
    with pytest.warns(ZeroDerivativeWarning) as record:
        pullback.gradient(ignores_y_located)(np.ones(3), np.ones(2))
    warning = next(w for w in record if w.category is ZeroDerivativeWarning)
    assert warning.filename == __file__
    assert warning.lineno == ignores_y_located.__code__.co_firstlineno


def test_zero_derivative_warning_once():
    with pytest.warns(ZeroDerivativeWarning, match="'y'"):
        pullback.gradient(ignores_y_once)(np.ones(3), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        pullback.gradient(ignores_y_once)(np.ones(3), 1.0)


def test_zero_derivative_silent_for_int_parameter():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        grad_x, grad_count = pullback.gradient(ignores_count)(np.ones(3), 4)
    assert grad_count is None
    np.testing.assert_allclose(grad_x, np.cos(np.ones(3)))


def test_zero_derivative_silent_for_used_parameters():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        pullback.gradient(uses_both)(np.ones(3), 2.0)
        pullback.gradient(uses_y_in_branch_only)(-np.ones(3), 2.0)


def test_zero_derivative_silent_outside_wrt():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroDerivativeWarning)
        pullback.gradient(ignores_y, wrt="x")(np.ones(3), 2.0)


def test_zero_derivative_names_implicit_cut():
    lineno, _ = line_marked("# cut: floor")
    with pytest.warns(ZeroDerivativeWarning) as record:
        pullback.gradient(floors_y)(np.ones(3), 2.5)
    message = str(next(w for w in record if w.category is ZeroDerivativeWarning).message)
    assert "'y'" in message
    assert f"line {lineno}" in message
    assert "floor" in message


# Tracebacks through generated code.


def divides(x, y):
    return x / y


def logs_negative_sum(x):
    total = np.sum(x)
    return np.log(total) + x[10]


def test_traceback_shows_generated_lines():
    with pytest.raises(ZeroDivisionError) as info:
        pullback.gradient(divides)(1.0, 0.0)
    frames = traceback.extract_tb(info.value.__traceback__)
    generated = [frame for frame in frames if frame.name.startswith("divides_vjp")]
    assert len(generated) == 1
    frame = generated[0]
    assert frame.filename != __file__
    lines = linecache.getlines(frame.filename)
    assert lines, f"linecache has no lines for {frame.filename}"
    assert frame.line
    assert frame.line == lines[frame.lineno - 1].strip()
    assert "/" in frame.line
    assert any("def divides_vjp" in line for line in lines)


def test_traceback_source_matches_adjoint_source():
    with pytest.raises(IndexError) as info:
        pullback.gradient(logs_negative_sum)(np.ones(3))
    frames = traceback.extract_tb(info.value.__traceback__)
    frame = next(frame for frame in frames if frame.name == "logs_negative_sum_vjp")
    generated_lines = {line.strip() for line in linecache.getlines(frame.filename)}
    # Without a checkpointed call, gradient runs the plain VJP.
    source = pullback.adjoint_source(logs_negative_sum)
    assert source.startswith("# VJP of logs_negative_sum")
    for line in source.splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.strip() in generated_lines
    assert "[10]" in frame.line


@pullback.checkpointed
def checkpointed_log(x):
    return np.log(x)


def logs_checkpointed_sum(x):
    total = checkpointed_log(np.sum(x))
    return total + x[10]


def test_checkpointing_traceback_matches_single_use_source():
    with pytest.raises(IndexError) as info:
        pullback.gradient(logs_checkpointed_sum)(np.ones(3))
    frames = traceback.extract_tb(info.value.__traceback__)
    frame = next(frame for frame in frames if frame.name == "logs_checkpointed_sum_vjp")
    generated_lines = {line.strip() for line in linecache.getlines(frame.filename)}
    # A function that checkpoints a call gets gradient's single-use VJP.
    source = pullback.adjoint_source(logs_checkpointed_sum, single_use=True)
    assert source.startswith("# single-use VJP of logs_checkpointed_sum")
    for line in source.splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.strip() in generated_lines


def test_value_and_pullback_traceback_matches_adjoint_source():
    with pytest.raises(IndexError) as info:
        pullback.value_and_pullback(logs_negative_sum, np.ones(3))
    frames = traceback.extract_tb(info.value.__traceback__)
    frame = next(frame for frame in frames if frame.name == "logs_negative_sum_vjp")
    generated = [line.strip() for line in linecache.getlines(frame.filename)]
    # value_and_pullback's pullback may run many times: it is the plain VJP.
    source = pullback.adjoint_source(logs_negative_sum)
    assert source.startswith("# VJP of logs_negative_sum")
    expected = [line.strip() for line in source.splitlines()]
    start = generated.index(expected[0])
    assert generated[start:start + len(expected)] == expected


def test_internal_error_is_bug_report():
    error = InternalError("an invariant broke")
    assert isinstance(error, PullbackError)
    assert "bug in pullback" in str(error)


# Writes to a list or array that is not a local variable.

LOGGED_CALLS = []
SHARED_BUFFER = np.zeros(3)


def appends_to_global(x):
    LOGGED_CALLS.append(1)  # rejected: global append
    return x * 2.0


def writes_global_item(x):
    SHARED_BUFFER[0] = x  # rejected: global item write
    return x * 2.0


@pytest.mark.parametrize("function, marker, token", [
    (appends_to_global, "# rejected: global append", "LOGGED_CALLS"),
    (writes_global_item, "# rejected: global item write", "SHARED_BUFFER"),
])
def test_write_to_nonlocal_container(function, marker, token):
    with pytest.raises(DifferentiationError) as info:
        pullback.differentiable(function)

    lineno, text = line_marked(marker)
    location = info.value.location
    assert location.filename == __file__
    assert location.lineno == lineno
    assert location.col == text.index(token) + 1
    assert "is not a local variable" in str(info.value)
    assert "copy it into a local first" in str(info.value)


def floor_through(rounding, x):
    return np.sum(rounding(x) * x)


def test_zero_derivative_ufunc_as_value():
    x = np.array([0.5, 1.5, -2.5])

    grad = pullback.gradient(floor_through, wrt="x")(np.floor, x)

    np.testing.assert_array_equal(grad, np.floor(x))


TRIPLE = functools.partial(np.multiply, 3.0)


def calls_partial(x):
    return np.sum(TRIPLE(x))  # rejected: partial


def test_partial_call_names_wrapped_function():
    with pytest.raises(DifferentiationError) as info:
        pullback.differentiable(calls_partial)

    lineno, _ = line_marked("# rejected: partial")
    assert info.value.location.lineno == lineno
    assert "functools.partial(numpy.multiply, ...)" in str(info.value)
    assert "call numpy.multiply directly" in str(info.value)


def unique_of_square(x):
    return np.sum(np.unique(x**2))  # error: unique of square


def unique_of_local(x):
    doubled = x * 2.0
    return np.sum(np.unique(doubled))


def test_missing_rule_names_no_temporary():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(unique_of_square)(np.ones(3))
    message = str(info.value)
    assert info.value.location.lineno == unique_of_square.__code__.co_firstlineno + 1
    assert "numpy.unique has no derivative rule" in message
    assert "depends on the differentiated parameters" in message
    assert "x_pow_2" not in message
    assert "derivative_of(numpy.unique)" in message


def test_missing_rule_names_user_variable():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(unique_of_local)(np.ones(3))
    assert "depends on 'doubled'" in str(info.value)


def extends_with_plus(x, y):
    xs = [x]
    xs += [y]  # rejected: list concatenation
    return xs[0] * xs[1]


def concatenates_after_a_statement(x, y):
    xs = [x]; xs += [y]  # noqa: E702 - rejected: second statement
    return xs[0] * xs[1]


def concatenates_in_a_branch(x, y):
    a = 1.0; b = 2.0 if x > 0 else [x] + [y]  # noqa: E702 - rejected: in a branch
    return a * b


@pytest.mark.parametrize("function, marker, token", [
    (extends_with_plus, "# rejected: list concatenation", "xs +="),
    (concatenates_after_a_statement, "# noqa: E702 - rejected: second statement", "xs +="),
    (concatenates_in_a_branch, "# noqa: E702 - rejected: in a branch", "b = 2.0"),
])
def test_concatenation_error_column(function, marker, token):
    with pytest.raises(DifferentiationError) as info:
        pullback.differentiable(function)

    lineno, text = line_marked(marker)
    location = info.value.location
    assert location.lineno == lineno
    assert location.col == text.index(token) + 1
    assert "concatenates" in str(info.value)
