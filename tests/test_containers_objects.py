"""Containers, objects, in-place updates and nested functions.

The corpus covers:
- list `append` and `extend`, list and dict comprehensions;
- dict literals and item writes;
- attribute reads and method calls on user objects;
- in-place array updates: `y[i] = v`, and `y += z` on an array that another
  name also refers to;
- nested `def` and `lambda` called inside differentiated code.
Each function's value must match the plain call and its gradient must match
central finite differences in float64.

Objects are not perturbed by `check_gradient`, so gradients with respect to
an object are checked attribute by attribute with `check_object_gradient`.
"""

# The corpus is written the way users write loops: unused loop variables,
# zip without strict=, closures over loop variables and if/else blocks.
# ruff: noqa: B007, B905, B023, SIM108

import copy
import dataclasses

import numpy as np
import pytest
from gradcheck import check_gradient, check_vjp, inner, random_like

import pullback
from pullback import nn
from pullback.errors import DifferentiationError

rng = np.random.default_rng(20240918)


def normal(*shape):
    return rng.standard_normal(shape)


# Lists built by append and extend.


def append_in_loop(x):
    values = []
    for i in range(3):
        values.append(np.sin(x) * i)
    total = 0.0
    for v in values:
        total = total + np.sum(v * v)
    return total


def append_then_index(x, y):
    values = [x]
    values.append(y * 2.0)
    values.append(x * y)
    return np.sum(values[-1] + values[1] * values[0])


def extend_list(x):
    values = [x]
    values.extend([x * 2.0, np.exp(x)])
    return np.sum(values[0] * values[1] * values[2])


def append_then_stack(x):
    rows = []
    for i in range(x.shape[0]):
        rows.append(x[i] * (i + 1.0))
    return np.sum(np.tanh(np.stack(rows)))


def append_states_of_rnn(w, h):
    states = []
    for t in range(3):
        h = np.tanh(w @ h)
        states.append(h)
    total = 0.0
    for state in states:
        total = total + np.sum(state)
    return total


# Comprehensions.


def list_comprehension(x):
    values = [np.sin(v) * v for v in x]
    total = 0.0
    for v in values:
        total = total + v
    return total


def list_comprehension_with_condition(x):
    values = [v * v for v in x if v > 0.0]
    return np.sum(np.array(values))


def list_comprehension_over_range(x):
    powers = [x**k for k in range(1, 4)]
    return np.sum(powers[0] + powers[1] + powers[2])


def builtin_sum_of_comprehension(x, y):
    return sum([np.sum(a * b) for a, b in zip(x, y)])


def nested_comprehension(x):
    products = [[x[i] * x[j] for j in range(i, x.shape[0])] for i in range(x.shape[0])]
    total = 0.0
    for row in products:
        for v in row:
            total = total + v
    return total


def dict_comprehension(x):
    scaled = {k: x * k for k in (1.0, 2.0, 3.0)}
    return np.sum(scaled[1.0] * scaled[3.0])


# Dict literals and writes.


def dict_literal(x, y):
    params = {"a": x, "b": np.sin(y)}
    return np.sum(params["a"] * params["b"])


def dict_write(x):
    cache = {}
    cache["square"] = x * x
    cache["cube"] = cache["square"] * x
    return np.sum(cache["cube"] - cache["square"])


def dict_write_in_loop(x):
    cache = {0: x}
    for i in range(1, 4):
        cache[i] = np.sin(cache[i - 1]) + x
    return np.sum(cache[3])


def dict_overwrite_key(x):
    state = {"h": x}
    for i in range(3):
        state["h"] = np.tanh(state["h"] * 1.5)
    return np.sum(state["h"])


# Attribute reads and method calls on user objects.


@dataclasses.dataclass
class Linear:
    w: np.ndarray
    b: np.ndarray

    def apply(self, x):
        return self.w @ x + self.b

    def __call__(self, x):
        return np.tanh(self.apply(x))


class Scale:
    def __init__(self, factor):
        self.factor = factor

    def times(self, x):
        return x * self.factor


def attribute_read(layer, x):
    return np.sum(np.tanh(layer.w @ x + layer.b))


def method_call(layer, x):
    return np.sum(layer.apply(x) ** 2)


def call_object(layer, x):
    return np.sum(layer(x))


def method_in_loop(layer, x):
    for i in range(3):
        x = layer(x)
    return np.sum(x)


def plain_object_method(scale, x):
    return np.sum(np.sin(scale.times(x)))


def construct_object(w, b, x):
    layer = Linear(w, b)
    return np.sum(layer(x))


def attribute_of_list_items(layers, x):
    for layer in layers:
        x = np.tanh(layer.w @ x + layer.b)
    return np.sum(x)


# In-place array updates.


def item_write_in_loop(x):
    y = np.zeros_like(x)
    for i in range(x.shape[0]):
        y[i] = x[i] ** 2
    return np.sum(y * x)


def slice_write(x, v):
    y = x * 1.0
    y[1:3] = v * 2.0
    return np.sum(y * y)


def column_write(x, v):
    y = np.ones_like(x)
    y[:, 0] = np.sin(v)
    return np.sum(y * x)


def overwrite_read_value(x):
    y = x * 1.0
    first = y[0]
    y[0] = 5.0
    return first * np.sum(y)


def augmented_add_alias(x):
    y = x * 1.0
    z = y
    y += np.sin(x)
    return np.sum(z * z)


def augmented_multiply_slice(x):
    y = x * 1.0
    y[:2] *= x[:2]
    return np.sum(y)


def prefix_sums_in_place(x):
    y = x * 1.0
    for i in range(1, y.shape[0]):
        y[i] = y[i] + y[i - 1]
    return np.sum(y * y)


# Nested def and lambda.


def nested_def_closure(x, y):
    def scaled(v):
        return np.sin(v) * y

    return np.sum(scaled(x) + scaled(2.0 * x))


def lambda_call(x):
    square = lambda v: v * v  # noqa: E731
    return np.sum(square(np.sin(x)))


def nested_def_in_loop(x, w):
    def step(v):
        return np.tanh(v * w)

    for i in range(3):
        x = step(x)
    return np.sum(x)


def apply_function(f, x):
    return f(x)


def lambda_passed_to_function(x, y):
    return np.sum(apply_function(lambda v: v * y, x))


def closure_over_loop_value(x):
    total = 0.0
    for k in range(1, 3):

        def power(v):
            return v**k

        total = total + np.sum(power(x))
    return total


CASES = [
    # Lists.
    pytest.param(append_in_loop, (normal(3),), id="append_in_loop"),
    pytest.param(append_then_index, (normal(3), normal(3)), id="append_then_index"),
    pytest.param(extend_list, (normal(3),), id="extend"),
    pytest.param(append_then_stack, (normal(3, 2),), id="append_then_stack"),
    pytest.param(
        append_states_of_rnn, (0.5 * normal(3, 3), normal(3)), id="append_states"
    ),
    # Comprehensions.
    pytest.param(list_comprehension, (normal(4),), id="list_comprehension"),
    pytest.param(
        list_comprehension_with_condition, (normal(5),), id="comprehension_if"
    ),
    pytest.param(list_comprehension_over_range, (normal(3),), id="comprehension_range"),
    pytest.param(
        builtin_sum_of_comprehension,
        (normal(3, 2), normal(3, 2)),
        id="sum_comprehension",
    ),
    pytest.param(nested_comprehension, (normal(3),), id="nested_comprehension"),
    pytest.param(dict_comprehension, (normal(3),), id="dict_comprehension"),
    # Dicts.
    pytest.param(dict_literal, (normal(3), normal(3)), id="dict_literal"),
    pytest.param(dict_write, (normal(3),), id="dict_write"),
    pytest.param(dict_write_in_loop, (normal(3),), id="dict_write_in_loop"),
    pytest.param(dict_overwrite_key, (normal(3),), id="dict_overwrite_key"),
    # Objects, differentiated with respect to the arrays only.
    # In-place array updates.
    pytest.param(item_write_in_loop, (normal(4),), id="item_write_in_loop"),
    pytest.param(slice_write, (normal(4), normal(2)), id="slice_write"),
    pytest.param(column_write, (normal(3, 2), normal(3)), id="column_write"),
    pytest.param(overwrite_read_value, (normal(3),), id="overwrite_read_value"),
    pytest.param(augmented_multiply_slice, (normal(4),), id="augmented_multiply_slice"),
    pytest.param(prefix_sums_in_place, (normal(4),), id="prefix_sums_in_place"),
    # Nested def and lambda.
    pytest.param(nested_def_closure, (normal(3), normal(3)), id="nested_def_closure"),
    pytest.param(lambda_call, (normal(3),), id="lambda_call"),
    pytest.param(nested_def_in_loop, (normal(3), 0.7), id="nested_def_in_loop"),
    pytest.param(closure_over_loop_value, (normal(3),), id="closure_over_loop_value"),
]


def check_program(function, *args):
    """Check a program's value and its gradient along three random directions.

    Every argument is copied before each call, so a function that writes
    into an array it was given cannot change the next call's inputs.
    """
    expected_value = function(*copy.deepcopy(args))
    value, gradients = pullback.value_and_gradient(function)(*copy.deepcopy(args))
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=0)
    for seed in range(3):
        check_gradient(function, *copy.deepcopy(args), seed=seed)


@pytest.mark.parametrize("function, args", CASES)
def test_container_gradient(function, args):
    check_program(function, *args)


# Objects as arguments.


def check_object_gradient(function, obj, *rest, attributes, eps=1e-6, rtol=1e-5):
    """Check the gradient with respect to `obj`, an object whose `attributes`
    are float arrays, against central finite differences along a random
    direction, and the gradients with respect to `rest` with `check_gradient`.
    """
    gradient_of_obj = pullback.gradient(function, wrt=0)(obj, *rest)
    directions = {name: random_like(getattr(obj, name), rng) for name in attributes}

    def moved(scale):
        other = copy.copy(obj)
        for name, direction in directions.items():
            setattr(other, name, getattr(obj, name) + scale * direction)
        return other

    forward = (function(moved(eps), *rest) - function(moved(-eps), *rest)) / (2 * eps)
    backward = sum(
        inner(getattr(gradient_of_obj, name), direction)
        for name, direction in directions.items()
    )
    assert abs(forward - backward) <= 1e-8 + rtol * max(abs(forward), abs(backward)), (
        f"<gradient, v> = {backward!r} but finite differences give {forward!r}"
    )
    for name in attributes:
        assert np.shape(getattr(gradient_of_obj, name)) == np.shape(getattr(obj, name))
    wrt = tuple(range(1, 1 + len(rest)))
    check_gradient(function, obj, *rest, wrt=wrt)


OBJECT_CASES = [
    pytest.param(attribute_read, id="attribute_read"),
    pytest.param(method_call, id="method_call"),
    pytest.param(call_object, id="call_object"),
]


@pytest.mark.parametrize("function", OBJECT_CASES)
def test_object_gradient(function):
    layer = Linear(normal(2, 3), normal(2))
    check_object_gradient(function, layer, normal(3), attributes=("w", "b"))


def test_method_in_loop_gradient():
    layer = Linear(0.5 * normal(3, 3), normal(3))
    check_object_gradient(method_in_loop, layer, normal(3), attributes=("w", "b"))


def test_plain_object_method_gradient():
    scale = Scale(normal(3))
    check_object_gradient(plain_object_method, scale, normal(3), attributes=("factor",))


def test_attributes_of_list_items_gradient():
    layers = [Linear(normal(3, 2), normal(3)), Linear(normal(2, 3), normal(2))]
    check_gradient(attribute_of_list_items, layers, normal(2), wrt=1)


def test_corpus_size():
    functions = {case.values[0] for case in CASES} | {
        case.values[0] for case in OBJECT_CASES
    }
    functions |= {method_in_loop, plain_object_method, attribute_of_list_items}
    assert len(functions) >= 25


# Methods of objects the compiler resolves: globals, closure cells and their
# attributes. The instance is a constant of the call, like any global value,
# so only the arguments get cotangents.


class Weighted:
    def __init__(self, weights):
        self.weights = weights

    def total(self, *xs):
        result = 0.0
        for x in xs:
            result = result + np.sum(self.weights * x * x)
        return result

    def pair(self, a, b):
        return np.sum(self.weights * a * b)

    @classmethod
    def doubled(cls, x):
        return x * 2.0


class Config:
    def __init__(self, model):
        self.model = model


global_model = Weighted(np.array([0.5, 2.0]))
global_config = Config(Weighted(np.array([1.5, -1.0])))


def calls_global_variadic_method(a, b):
    return global_model.total(a, b)


def calls_global_method(a, b):
    return global_model.pair(a, b)


def calls_method_of_global_attribute(a, b):
    return global_config.model.total(a, b, a)


def calls_global_method_in_loop(a, b):
    total = 0.0
    for _ in range(3):
        total = total + global_model.pair(a, b)
        a = a * 0.5
    return total


def calls_classmethod(a, b):
    return np.sum(Weighted.doubled(a) * b)


def closure_calling_method(weights):
    model = Weighted(weights)

    def loss(a, b):
        return model.total(a, b) + model.pair(b, a)

    return loss


class Holder:
    def __init__(self, function):
        self.function = function


def calls_stored_bound_method(holder, a, b):
    return holder.function(a, b)


RESOLVED_METHOD_CASES = [
    pytest.param(calls_global_variadic_method, id="global variadic method"),
    pytest.param(calls_global_method, id="global method"),
    pytest.param(calls_method_of_global_attribute, id="method of global attribute"),
    pytest.param(calls_global_method_in_loop, id="global method in loop"),
    pytest.param(calls_classmethod, id="classmethod"),
    pytest.param(closure_calling_method(np.array([0.3, -0.8])), id="closure cell"),
]


@pytest.mark.parametrize("function", RESOLVED_METHOD_CASES)
def test_method_of_resolved_object(function):
    a, b = normal(2), normal(2)
    value, _ = pullback.value_and_gradient(function)(a, b)
    assert value == pytest.approx(function(a, b), rel=1e-12)
    check_gradient(function, a, b)


def test_global_method_with_floats():
    # sum(w * a * a) + sum(w * b * b) with w = [0.5, 2.0] and scalar a, b.
    value, gradient = pullback.value_and_gradient(calls_global_variadic_method)(3.0, 4.0)
    assert value == pytest.approx(2.5 * 25.0)
    assert gradient[0] == pytest.approx(2.5 * 6.0)
    assert gradient[1] == pytest.approx(2.5 * 8.0)


def test_global_method_pullback_wrt_one_argument():
    a, b = normal(2), normal(2)
    value, pullback_of_loss = pullback.value_and_pullback(
        calls_global_variadic_method, a, b, wrt="a")
    assert value == pytest.approx(calls_global_variadic_method(a, b), rel=1e-12)
    check_vjp(lambda a: calls_global_variadic_method(a, b), pullback_of_loss, (a,))


def test_stored_bound_method_of_another_object():
    holder = Holder(Weighted(normal(2)).total)
    a, b = normal(2), normal(2)
    check_gradient(calls_stored_bound_method, holder, a, b, wrt=(1, 2))


@pytest.mark.parametrize("method_name", ["pair", "total"])
def test_gradient_of_bound_method(method_name):
    method = getattr(Weighted(normal(2)), method_name)
    a, b = normal(2), normal(2)
    value, (a_bar, b_bar) = pullback.value_and_gradient(method)(a, b)
    assert value == pytest.approx(method(a, b), rel=1e-12)
    check_vjp(method, lambda u: (u * a_bar, u * b_bar), (a, b), cotangent=1.0)


def test_bound_method_wrt_index_leaves_instance_out():
    method = Weighted(normal(2)).total
    a, b = normal(2), normal(2)
    b_bar = pullback.gradient(method, wrt=1)(a, b)
    np.testing.assert_allclose(b_bar, 2.0 * method.__self__.weights * b, rtol=1e-12)
    with pytest.raises(pullback.errors.WrtError) as info:
        pullback.gradient(method, wrt="self")
    assert "no parameter 'self'" in str(info.value)


class ArgsOnly:
    def scaled(*args):
        return args[1] * 2.0


args_only = ArgsOnly()


def calls_method_without_instance_parameter(x):
    return args_only.scaled(x)  # error: instance in args


def test_method_without_instance_parameter_rejected():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(calls_method_without_instance_parameter)(1.0)
    lineno = calls_method_without_instance_parameter.__code__.co_firstlineno + 1
    assert info.value.location.lineno == lineno
    assert "no named parameter for its instance" in str(info.value)
    assert "def method(self, *args)" in str(info.value)


# Library functions passed as values: a ufunc is differentiated by its rule
# when the call runs; another library function is rejected by name.


class Activation:
    def __init__(self, function):
        self.function = function

    def __call__(self, x):
        return self.function(x)


def calls_stored_activation(activation, x):
    return np.sum(activation(x) * x)


def calls_passed_binary(function, a, b):
    return np.sum(function(a, b) ** 2)


def calls_sequenced_ufunc(x):
    return np.sum(nn.sequenced(x, nn.relu, np.tanh, np.exp))


@pytest.mark.parametrize("ufunc", [np.tanh, np.sin, np.exp, np.square])
def test_ufunc_stored_in_attribute(ufunc):
    check_gradient(calls_stored_activation, Activation(ufunc), normal(3), wrt=1)


@pytest.mark.parametrize("ufunc", [np.multiply, np.hypot, np.maximum])
def test_binary_ufunc_passed_as_argument(ufunc):
    check_gradient(calls_passed_binary, ufunc, normal(3), normal(3), wrt=(1, 2))


def test_ufunc_in_sequenced():
    check_gradient(calls_sequenced_ufunc, np.array([0.4, -0.3, 1.1]))


def test_library_function_as_value_rejected_by_name():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(calls_stored_activation, wrt=1)(Activation(np.cumsum), normal(3))
    message = str(info.value)
    assert "numpy.cumsum is differentiated here as a value" in message
    assert "wrap it in a Python function" in message
    assert "no derivative in differentiated code" not in message


# In-place semantics: the generated code must see the same values as Python.


# What differentiated code rejects, because plain Python would compute
# something else or the derivative could not flow.


def test_augmented_add_to_alias_rejected():
    # On arrays `y += v` also changes z, which differentiated code, rebinding
    # y alone, would not.
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(augmented_add_alias)(normal(3))
    assert info.value.location.lineno == augmented_add_alias.__code__.co_firstlineno + 3
    assert "names the same value" in str(info.value)
    assert "copy" in str(info.value)


def item_write_to_alias(x):
    y = x * 2.0
    w = y
    y[0] = 5.0
    return np.sum(w * x)


def append_to_alias(x):
    items = [x]
    kept = items
    items.append(x * 2.0)
    return np.sum(kept[0]) + len(kept)


def item_write_after_copy(x):
    y = x * 2.0
    w = y.copy()
    y[0] = 5.0
    return np.sum(w * x) + np.sum(y * x)


@pytest.mark.parametrize("function, write", [
    (item_write_to_alias, "y[...] = ..."),
    (append_to_alias, "items.append(...)"),
])
def test_write_into_alias_rejected(function, write):
    # Plain Python's write changes the object both names hold; differentiated
    # code would make a new value for one name only.
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(normal(3))
    assert info.value.location.lineno == function.__code__.co_firstlineno + 3
    message = str(info.value)
    assert f"{write} changes" in message
    assert "names the same value" in message
    assert ".copy()" in message


def item_write_to_unpacked_alias(x):
    y = x * 2.0
    w, scale = y, 3.0
    y[0] = 5.0
    return np.sum(w * x) * scale


def append_to_alias_from_branch(x):
    items = [x]
    kept = [x * 3.0]
    if np.sum(x) > 0.0:
        kept = items
    items.append(x * 2.0)
    return np.sum(kept[-1])


def test_write_into_unpacked_alias_rejected():
    function = item_write_to_unpacked_alias
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(normal(3))
    assert info.value.location.lineno == function.__code__.co_firstlineno + 3
    assert "y[...] = ... changes" in str(info.value)
    assert "w names the same value" in str(info.value)


def test_write_into_alias_from_branch_rejected():
    # The alias holds on one path only, which is enough to change the result.
    function = append_to_alias_from_branch
    for sign in (1.0, -1.0):
        with pytest.raises(DifferentiationError) as info:
            pullback.gradient(function)(sign * np.abs(normal(3)))
        assert info.value.location.lineno == function.__code__.co_firstlineno + 5
        assert "kept names the same value" in str(info.value)


def swap_lists_then_append(x):
    first, second = [x], [x * 2.0]
    first, second = second, first
    first.append(x * 5.0)
    return np.sum(first[-1] * x) + np.sum(second[0])


def test_swapped_lists_are_not_aliases():
    check_gradient(swap_lists_then_append, normal(3))


def test_item_write_after_copy_differences():
    check_gradient(item_write_after_copy, normal(3))


def test_constructing_object_rejected():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(construct_object)(normal(2, 3), normal(2), normal(3))
    assert info.value.location.lineno == construct_object.__code__.co_firstlineno + 1
    assert "Linear" in str(info.value)
    assert "derivative_of" in str(info.value)


def test_lambda_closing_over_argument_rejected():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(lambda_passed_to_function)(normal(3), normal(3))
    assert info.value.location.lineno == lambda_passed_to_function.__code__.co_firstlineno + 1
    assert "closes over" in str(info.value)


class Scaled:
    """An object whose own `sum` shares its name with the array method."""

    def __init__(self):
        self.w = 2.0

    def sum(self, x):
        return x * self.w


def own_sum_method(model, x):
    return model.sum(x)


def own_sum_method_from_variable(model, x):
    method = model.sum
    return method(x)


def test_method_named_like_array_method_rejected():
    # Differentiating model.sum as ndarray.sum would give a wrong gradient.
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(own_sum_method)(Scaled(), 3.0)
    assert "Scaled.sum" in str(info.value)
    assert "rename" in str(info.value)


def test_array_sum_method_still_differentiated():
    def total(x):
        return x.sum() * 2.0

    assert np.allclose(pullback.gradient(total)(np.ones(3)), 2.0)


def test_bound_method_from_variable_rejected():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(own_sum_method_from_variable)(Scaled(), 3.0)
    assert "Scaled.sum" in str(info.value)
    assert "call it on its object" in str(info.value)


def repeated_index_add(x, v):
    y = x * 1.0
    y[[1, 1]] += v
    return np.sum(y * y)


def list_repetition(x):
    copies = [x] * 3
    return copies[0] + copies[2]


def list_concatenation(x):
    parts = [x] + [x * 2.0]
    return parts[0] + parts[1]


def alias_updated_in_loop(x):
    y = x * 1.0
    saved = y
    for _ in range(2):
        y += x
    return np.sum(saved * x)


activation = np.sin


def calls_global_activation(x):
    return activation(x)


def test_repeated_index_write_rejected():
    # NumPy keeps only the last write to a repeated index.
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(repeated_index_add)(normal(3), 0.7)
    assert "more than once" in str(info.value)


@pytest.mark.parametrize("function", [list_repetition, list_concatenation])
def test_sequence_arithmetic_rejected(function):
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(1.3)
    assert info.value.location.lineno == function.__code__.co_firstlineno + 1
    assert "list or tuple" in str(info.value)


def test_alias_updated_in_loop_rejected():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(alias_updated_in_loop)(normal(3))
    assert "saved names the same value" in str(info.value)


def test_rebound_global_function_recompiles():
    global activation
    gradient_of = pullback.gradient(calls_global_activation)
    assert gradient_of(0.5) == pytest.approx(np.cos(0.5), rel=1e-12)
    try:
        activation = np.cos
        assert gradient_of(0.5) == pytest.approx(-np.sin(0.5), rel=1e-12)
        assert pullback.gradient(lambda x: calls_global_activation(x) * 2.0)(
            0.5
        ) == pytest.approx(-2.0 * np.sin(0.5), rel=1e-12)
    finally:
        activation = np.sin


def test_hook_of_wrong_shape_rejected():
    def hooked(x):
        y = pullback.with_derivative(x * 2.0, lambda g: g[:1])
        return np.sum(y)

    with pytest.raises(pullback.errors.CotangentError) as info:
        pullback.gradient(hooked)(np.ones(3))
    assert "(1,)" in str(info.value)
    assert "(3,)" in str(info.value)


def dict_items_loop(table):
    total = 0.0
    for _, value in table.items():
        total = total + value * 2.0
    return total


def test_builtin_container_method_rejected():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(dict_items_loop)({"a": 1.0})
    assert ".items()" in str(info.value)
    assert "for k in d" in str(info.value)


# A method of an argument without a tangent space, such as a Generator.


def noisy_product(x, rng):
    return x * rng.normal(size=x.shape)


def sum_of_noisy_squares(x, rng):
    return np.sum(noisy_product(x, rng) ** 2)


def test_generator_argument_gets_no_cotangent():
    x = np.array([1.0, 2.0, 3.0])
    noise = np.random.default_rng(1).normal(size=3)

    grad_x, grad_rng = pullback.gradient(sum_of_noisy_squares)(x, np.random.default_rng(1))

    np.testing.assert_allclose(grad_x, 2 * x * noise**2, rtol=1e-12)
    assert grad_rng is None


class ScaledSine:
    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x):
        return np.sum(np.sin(x) * self.scale)


def test_callable_object_differentiated_directly():
    model = ScaledSine(np.array([1.0, 2.0, 3.0]))

    check_gradient(model, np.array([0.3, -0.4, 1.1]))


class Rounder:
    def __call__(self, x):
        return np.round(x)


@pullback.derivative_of(Rounder.__call__)
def rounder_call_vjp(self, x):
    # Straight-through: the rounding passes its cotangent on unchanged.
    return np.round(x), lambda g: (None, g)


class Doubler:
    def __call__(self, x):
        return 2.0 * x


class CheckpointedTanh:
    def __init__(self, w):
        self.w = w

    @pullback.checkpointed
    def __call__(self, x):
        return np.tanh(x * self.w)


def test_callable_object_uses_registered_call():
    x = np.array([0.2, 1.7, -0.6])

    _, pullback_of_f = pullback.value_and_pullback(Rounder(), x)

    np.testing.assert_array_equal(pullback_of_f(np.ones(3)), np.ones(3))


def test_callable_object_ignores_instance_call_attribute():
    doubler = Doubler()
    doubler.__call__ = lambda x: 7.0 * x  # Python's call syntax ignores it.

    assert doubler(1.0) == 2.0
    assert pullback.gradient(doubler)(1.0) == pytest.approx(2.0)


def test_checkpointed_call_of_object_given_directly():
    w = np.array([1.0, 2.0])
    x = np.array([0.5, -1.0])

    _, pullback_of_f = pullback.value_and_pullback(CheckpointedTanh(w), x)

    expected = (1.0 - np.tanh(x * w) ** 2) * w
    np.testing.assert_allclose(pullback_of_f(np.ones(2)), expected, rtol=1e-12)


# Callable objects whose __call__ is a staticmethod or a classmethod.


class StaticScale:
    @staticmethod
    def __call__(x):
        return np.sin(x) * 2.0


class ClassScale:
    factor = 3.0

    @classmethod
    def __call__(cls, x):
        return cls.factor * np.tanh(x)


static_scale = StaticScale()
class_scale = ClassScale()


def calls_static_scale(x):
    return np.sum(static_scale(x) ** 2)


def calls_class_scale(x):
    return np.sum(class_scale(x) ** 2)


def test_static_call_of_global_object():
    check_gradient(calls_static_scale, normal(3))


def test_class_call_of_global_object():
    check_gradient(calls_class_scale, normal(3))


def test_static_call_object_given_directly():
    x = normal(3)
    _, pullback_of_f = pullback.value_and_pullback(StaticScale(), x)
    np.testing.assert_allclose(pullback_of_f(np.ones(3)), 2.0 * np.cos(x), rtol=1e-12)


def test_class_call_object_given_directly():
    assert pullback.gradient(ClassScale())(0.5) == pytest.approx(3.0 / np.cosh(0.5) ** 2)


class CastingActivation:
    def __init__(self, function, dtype):
        self.function = function
        self.dtype = dtype

    def __call__(self, x):
        return self.function(x, dtype=self.dtype)


def calls_casting_activation(activation, x):
    return np.sum(activation(x) * x)


@pytest.mark.parametrize("ufunc", [np.exp, np.tanh])
def test_ufunc_value_with_dtype_keyword(ufunc):
    check_gradient(calls_casting_activation, CastingActivation(ufunc, np.float64),
                   normal(3), wrt=1)


def test_ufunc_value_with_float32_dtype():
    x = normal(3)
    activation = CastingActivation(np.exp, np.float32)
    x_bar = pullback.gradient(calls_casting_activation, wrt=1)(activation, x)
    assert x_bar.dtype == np.float64
    np.testing.assert_allclose(x_bar, np.exp(x) * (1.0 + x), rtol=1e-6)
