"""Control flow: branches, loops, early exits, calls and recursion.

Each corpus function uses one or more of `if`, `for`, `while`, `break`,
`continue`, loop `else`, `return` inside loops, user-function calls and
recursion. Its value must match the plain call and its gradient must match
central finite differences in float64. Trip counts that depend on the data
are chosen away from their thresholds, so a finite-difference step never
changes the path taken. A subset is also compared with HIPS autograd.
"""

# The corpus is written the way users write loops: unused loop variables,
# zip without strict=, closures over loop variables and if/else blocks.
# ruff: noqa: B007, B905, B023, SIM108

import ast
import math
import re
import types

import numpy as np
import programs_numpy_loops
import pytest
from gradcheck import check_gradient, is_floating

import pullback

rng = np.random.default_rng(20240917)


def normal(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return rng.uniform(0.5, 1.5, shape)


# for over range.


def range_accumulate(x):
    total = 0.0
    for i in range(5):
        total = total + x * i
    return total


def range_start_stop_step(x):
    total = 0.0
    for i in range(2, 11, 3):
        total = total + np.sin(x * i)
    return total


def range_negative_step(x):
    total = 0.0
    for i in range(10, 0, -3):
        total = total * 0.5 + x[i % 4] * i
    return total


def range_over_shape_attribute(x):
    total = 0.0
    for i in range(x.shape[0]):
        total = total + x[i] * x[i]
    return total


def range_over_np_shape(x):
    total = 0.0
    for j in range(np.shape(x)[1]):
        total = total + np.sum(np.sin(x[:, j]) * j)
    return total


def range_over_len(x):
    total = 1.0
    for i in range(len(x)):
        total = total * (1.0 + x[i] * 0.1)
    return total


def range_step_from_shape(x):
    total = 0.0
    for i in range(0, x.shape[0], 2):
        total = total + np.exp(x[i])
    return total


def range_stop_from_parameter(x, n):
    for i in range(n):
        x = x * 0.9 + 0.1 * np.sin(x)
    return np.sum(x)


def range_zero_trips(x, w):
    for i in range(0):
        x = x * w
    return np.sum(x * x)


def range_zero_trips_start_past_stop(x, w):
    total = np.sum(x)
    for i in range(5, 2):
        total = total + np.sum(w) * i
    return total


def range_variable_as_exponent(x):
    total = 0.0
    for k in range(1, 5):
        total = total + x**k / k
    return total


def range_adjacent_elements(x):
    total = 0.0
    for i in range(x.shape[0] - 1):
        total = total + x[i] * x[i + 1]
    return total


def range_accumulate_augmented(x):
    total = 0.0
    y = x + 0.0
    for i in range(4):
        total += np.sum(y**2) * (i + 1)
        y *= 0.9
    return total


def recurrence_math(x, a, b):
    for _ in range(20):
        x = math.sin(x) * a + b
    return x


def recurrence_numpy_scalar(x, a, b):
    for _ in range(20):
        x = np.sin(x) * a + b
    return x


def rnn_reassign_state(w, x):
    for t in range(4):
        x = np.tanh(w @ x)
    return np.sum(x)


def rnn_with_inputs(w, u, b, h, xs):
    for t in range(xs.shape[0]):
        h = np.tanh(w @ h + u @ xs[t] + b)
    return np.sum(h * h)


def gradient_descent_steps(w, target):
    for step in range(6):
        residual = w - target
        w = w - 0.2 * residual * np.cosh(residual)
    return np.sum(w * w)


def fan_out_in_loop(x):
    y = x
    for i in range(3):
        y = y * x + np.sin(y)
    return np.sum(y)


def loop_variable_after_loop(x):
    for i in range(4):
        x = x * 1.1
    return np.sum(x) * i


def parameter_rebound_by_loop_variable(x, ys):
    total = np.sum(x)
    for x in ys:
        total = total + np.sum(x * x)
    return total


def defined_only_inside_loop(x):
    for i in range(3):
        y = x * (i + 1.0)
    return np.sum(y * y)


def shrinking_array(x):
    while x.shape[0] > 1:
        x = x[1:] * x[:-1] + 0.5
    return x[0]


def tuple_state(a, b):
    state = (a, b)
    for i in range(4):
        first, second = state
        state = (second, np.sin(first) * second)
    first, second = state
    return np.sum(first + second)


# for over sequences.


def over_list_parameter(x, weights):
    for w in weights:
        x = np.tanh(x * w)
    return np.sum(x)


def over_tuple_literal(x):
    total = 0.0
    for c in (0.5, 1.5, -2.0):
        total = total + np.sum(np.cos(c * x))
    return total


def over_tuple_of_arrays(pair, x):
    total = 0.0
    for p in pair:
        total = total + np.sum(p * x)
    return total


def over_array_rows(x):
    total = 0.0
    for row in x:
        total = total + np.sum(row**3)
    return total


def over_vector_elements(x):
    total = 0.0
    for v in x:
        total = total + v * v * v
    return total


def over_arange(x):
    total = 0.0
    for t in np.arange(0.0, 1.0, 0.25):
        total = total + np.sum(np.sin(t * x))
    return total


def over_integer_arange(x):
    total = 0.0
    for k in np.arange(x.shape[0]):
        total = total + x[k] * k
    return total


def over_enumerate_list(x, weights):
    total = 0.0
    for i, w in enumerate(weights):
        total = total + i * w * np.sum(x)
    return total


def over_enumerate_rows_with_start(x):
    total = 0.0
    for i, row in enumerate(x, 1):
        total = total + np.sum(row) ** 2 / i
    return total


def over_zip_arrays(x, y):
    total = 0.0
    for a, b in zip(x, y):
        total = total + a * np.sin(b)
    return total


def over_zip_list_and_range(weights, x):
    for w, k in zip(weights, range(10)):
        x = x * w + k
    return np.sum(x)


def over_enumerate_zip(x, y):
    total = 0.0
    for i, (a, b) in enumerate(zip(x, y)):
        total = total + (a - b) ** 2 * (i + 1)
    return total


def over_layer_pairs(layers, x):
    for w, b in layers:
        x = np.tanh(w @ x + b)
    return np.sum(x)


def over_keys_of_dict(params, x):
    total = 0.0
    for key in ("w", "b"):
        total = total + np.sum(params[key] * x)
    return total


def horner(coefficients, x):
    y = 0.0
    for c in coefficients:
        y = y * x + c
    return y


def over_list_by_index(weights, x):
    for i in range(len(weights)):
        x = np.sin(x) * weights[i]
    return np.sum(x)


def over_list_of_floats_continue(x, values):
    total = 0.0
    for v in values:
        if v < 0.0:
            continue
        total = total + v * x
    return np.sum(total)


# while loops.


def while_data_dependent(x):
    while x < 10.0:
        x = x * 1.7 + 0.3
    return x


def while_counter(x, n):
    i = 0
    while i < n:
        x = np.sin(x) + x
        i = i + 1
    return np.sum(x)


def while_on_array_norm(x):
    while np.sum(x * x) < 50.0:
        x = x * 1.3 + 0.1
    return np.sum(np.tanh(x))


def while_else(x):
    i = 0
    while i < 3:
        x = x * x + 0.1
        i += 1
    else:
        x = x * 2.0
    return x


def while_break(x):
    i = 0
    while i < 10:
        x = x * 1.5
        if x > 5.0:
            break
        i += 1
    return x


def while_break_skips_else(x):
    while x < 100.0:
        x = x * 2.0
        if x > 3.0:
            break
    else:
        x = x * 10.0
    return x * x


def while_else_after_no_break(x):
    while x < 3.0:
        x = x * 2.0
        if x > 1000.0:
            break
    else:
        x = x * 10.0
    return x * x


def while_continue(x):
    i = 0
    total = 0.0
    while i < 6:
        i += 1
        if i % 2 == 0:
            continue
        total = total + x**i
    return total


def while_true_break(x):
    while True:
        x = np.sqrt(x) + 1.0
        if x > 2.5:
            break
    return x * 3.0


def newton_square_root(a):
    x = a
    while abs(x * x - a) > 1e-10:
        x = 0.5 * (x + a / x)
    return x


def while_return_inside(x):
    while x < 50.0:
        x = x * 3.0
        if x > 20.0:
            return x * 0.5
    return x


def while_zero_trips(x):
    while x > 100.0:
        x = x * 0.5
    return x * x


def while_two_states(a, b):
    i = 0
    while i < 5:
        a, b = b, 0.5 * a + 0.75 * b
        i += 1
    return a * b


# for with break, continue, else.


def for_break(x):
    total = 0.0
    for i in range(x.shape[0]):
        if x[i] > 1.0:
            break
        total = total + x[i] ** 2
    return total


def for_continue(x):
    total = 0.0
    for v in x:
        if v < 0.0:
            continue
        total = total + np.exp(v)
    return total


def for_else_no_break(x):
    total = 0.0
    for i in range(3):
        total = total + x * i
        if total > 1000.0:
            break
    else:
        total = total * x
    return total


def for_else_break_taken(x):
    total = 0.0
    for i in range(5):
        total = total + x * i
        if i == 2:
            break
    else:
        total = total * x
    return total * x


def for_else_return(x):
    for v in x:
        if v > 10.0:
            return v
    else:
        return np.sum(x * x)


def for_break_and_continue(x):
    total = 0.0
    for i, v in enumerate(x):
        if i == 1:
            continue
        if v > 2.0:
            break
        total = total + v * (i + 1)
    return total


def return_inside_for(x):
    for i in range(x.shape[0]):
        if x[i] > 0.5:
            return x[i] * np.sum(x)
    return np.sum(x)


def return_in_first_iteration(x):
    for i in range(5):
        return np.sum(x * (i + 2.0))
    return np.sum(x)


# if inside loops.


def running_maximum(x):
    best = x[0]
    for i in range(1, x.shape[0]):
        if x[i] > best:
            best = x[i]
    return best * best


def running_maximum_over_rows(x):
    best = x[0]
    for row in x:
        if np.sum(row) > np.sum(best):
            best = row
    return np.sum(best * x[-1])


def if_elif_else_in_loop(x):
    total = 0.0
    for v in x:
        if v > 0.5:
            total = total + v * v
        elif v > -0.5:
            total = total + np.sin(v)
        else:
            total = total - v * 3.0
    return total


def conditional_expression_in_loop(x):
    total = 0.0
    for v in x:
        total = total + (v if v > 0.0 else 0.1 * v)
    return total


def and_or_in_loop(x, y):
    total = 0.0
    for a, b in zip(x, y):
        if a > 0.0 and b > 0.0 or a < -1.0:
            total = total + a * b
        else:
            total = total + a - b
    return total


def branch_on_flag_in_loop(x, flags):
    for flag in flags:
        x = np.sin(x) if flag else np.cos(x)
    return np.sum(x)


def rebind_on_some_iterations(x):
    y = x
    for i in range(6):
        if i % 3 == 0:
            y = y * x
    return np.sum(y)


# Nested loops.


def nested_ranges(x, y):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            total = total + x[i] * y[j] * (i - j)
    return total


def nested_inner_from_outer(x):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(i, x.shape[0]):
            total = total + x[i] * x[j]
    return total


def nested_strictly_upper(x):
    total = 0.0
    n = x.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            total = total + (x[i] - x[j]) ** 2
    return total


def nested_matrix_vector(w, x):
    total = 0.0
    for i in range(w.shape[0]):
        row_sum = 0.0
        for j in range(w.shape[1]):
            row_sum = row_sum + w[i, j] * x[j]
        total = total + np.tanh(row_sum)
    return total


def nested_while_in_for(x):
    total = 0.0
    for v in x:
        y = v
        while y < 5.0:
            y = y * 2.0
        total = total + y
    return total


def nested_for_in_while(x):
    i = 0
    while i < 3:
        for j in range(2):
            x = np.sin(x) * 1.5 + j
        i += 1
    return np.sum(x)


def triple_nested(x):
    total = 0.0
    for i in range(2):
        for j in range(i, 3):
            for k in range(j):
                total = total + x[i] * x[j] * x[k]
    return total


def nested_break_inner_only(x):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if x[i, j] > 1.0:
                break
            total = total + x[i, j]
    return total


def nested_continue_outer(x):
    total = 0.0
    for row in x:
        if np.sum(row) < 0.0:
            continue
        for v in row:
            total = total + v * v
    return total


def return_inside_nested_loops(x):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if x[i, j] > 1.0:
                return x[i, j] * np.sum(x)
    return np.sum(x * x)


def return_after_nested_loops_finish(x):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            if x[i, j] > 100.0:
                return x[i, j]
    return np.sum(x * x)


def nested_else_clauses(x):
    total = 0.0
    for i in range(3):
        for j in range(2):
            total = total + x * (i + j)
        else:
            total = total * 0.5
    else:
        total = total + x
    return total


def nested_break_inner_rows(x):
    total = 0.0
    for i in range(x.shape[0]):
        row = x[i]
        for j in range(row.shape[0]):
            if row[j] > 1.0:
                break
            total = total + row[j]
    return total


def return_inside_nested_rows(x):
    for row in x:
        for v in row:
            if v > 1.0:
                return v * np.sum(x)
    return np.sum(x * x)


# Compound loop conditions and loops inside branches.


def while_and_condition(x, n):
    i = 0
    while i < n and x < 20.0:
        x = x * 2.5
        i += 1
    return x


def loop_inside_branch(x, flag):
    if flag:
        for i in range(3):
            x = np.sin(x) + x
    else:
        while np.sum(x) < 5.0:
            x = x + np.exp(x)
    return np.sum(x)


# Rebinding what a loop iterates over, and loop variables.


def reassign_loop_variable(x):
    total = 0.0
    for i in range(3):
        i = i * 2
        total = total + x * i
    return total


def rebind_iterated_list(x, ws):
    for w in ws:
        x = x * w
        ws = [0.0, 0.0, 0.0]
    return x


def rebind_iterated_array(x):
    total = 0.0
    for v in x:
        total = total + v * np.sum(x)
        x = x * 2.0
    return total


def rebind_range_bound(x, n):
    for i in range(n):
        n = n - 1
        x = x * 1.5
    return x


def rebind_enumerated(x):
    total = 0.0
    for i, v in enumerate(x):
        x = x + 1.0
        total = total + v * i
    return total


def rebind_zipped(x, y):
    total = 0.0
    for a, b in zip(x, y):
        y = y * 0.0
        total = total + a * b
    return total


def empty_list(x, ws):
    for w in ws:
        x = x * w
    return x * x


def inner_variable_after_inner_loop(x):
    total = 0.0
    for i in range(3):
        for j in range(i + 1):
            total = total + x * j
        total = total + x * j
    return total


def while_else_return(x):
    while x < 5.0:
        x = x * 2.0
        if x > 100.0:
            break
    else:
        return x * 3.0
    return x


def break_in_while_in_for(x):
    total = 0.0
    for k in range(3):
        y = x
        while True:
            y = y * 1.5
            if y > 2.0 + k:
                break
        total = total + y
    return total


def row_rebound(x):
    total = 0.0
    for row in x:
        row = row * 2.0
        total = total + np.sum(row * row)
    return total


# Calls to user functions.


def tanh_layer(x, w):
    return np.tanh(w * x)


def call_in_loop(x, w):
    for i in range(3):
        x = tanh_layer(x, w)
    return np.sum(x)


def loop_inside_callee(x):
    total = 0.0
    for i in range(3):
        total = total + x**i
    return total


def call_callee_with_loop(x):
    total = 0.0
    for v in x:
        total = total + loop_inside_callee(v)
    return total


def call_in_while(x):
    while x < 3.0:
        x = tanh_layer(x, 2.0) + x
    return x


def call_returning_tuple(x, y):
    return x * y, x + y


def call_with_tuple_result_in_loop(x, y):
    for i in range(3):
        x, y = call_returning_tuple(np.sin(x), y)
    return np.sum(x + y)


def power_by_recursion(x, n):
    if n == 0:
        return 1.0
    return x * power_by_recursion(x, n - 1)


def sum_by_halving(x):
    if x.shape[0] == 1:
        return x[0] * x[0]
    half = x.shape[0] // 2
    return sum_by_halving(x[:half]) + sum_by_halving(x[half:])


def recursion_with_loop(x, depth):
    if depth == 0:
        return np.sum(x)
    for i in range(2):
        x = np.sin(x) + x
    return recursion_with_loop(x * 0.5, depth - 1)


def recursion_in_loop(x):
    total = 0.0
    for n in range(4):
        total = total + power_by_recursion(x, n)
    return total


def is_even_depth(x, n):
    if n == 0:
        return x
    return is_odd_depth(x * 1.1, n - 1)


def is_odd_depth(x, n):
    if n == 0:
        return np.sin(x)
    return is_even_depth(x + 0.5, n - 1)


# Names that look like generated ones.


def parameter_named_d(d, x):
    for i in range(3):
        d = d * x + i
    return np.sum(d)


def names_like_cotangents(x, x_bar):
    for i in range(2):
        x_bar = x_bar * x + 1.0
    x_1 = x_bar * 2.0
    return np.sum(x_1 * x)


def name_like_tape(x):
    i_iterations = 0.0
    for i in range(3):
        i_iterations = i_iterations + x * i
    return np.sum(i_iterations)


def names_like_loop_flags(x):
    index = 0
    broke = x
    returned_value = x * 2.0
    while index < 3:
        broke = broke * returned_value
        index += 1
    return np.sum(broke)


def name_like_runtime_alias(x):
    _pb = x
    for i in range(2):
        _pb = np.sin(_pb)
    return np.sum(_pb)


def names_like_temporaries(x):
    result = 0.0
    comparison = x
    while_iterations = 1.0
    for sin_x_1 in range(3):
        result = result + comparison * sin_x_1
        while_iterations = while_iterations * x
    return np.sum(result + while_iterations)


def names_like_saved_values(x):
    x_1_saved = x
    x_2 = 0.0
    for i in range(3):
        x_2 = x_2 + x_1_saved * i
        x_1_saved = x_1_saved * x
    return np.sum(x_2)


def name_like_result_bar(result_bar):
    result = 0.0
    for i in range(3):
        result = result + result_bar * i
    return result


BRANCH_FLAGS = [True, False, True, True]

CASES = [
    # for over range.
    pytest.param(range_accumulate, (0.7,), id="range_accumulate"),
    pytest.param(range_start_stop_step, (0.4,), id="range_start_stop_step"),
    pytest.param(range_negative_step, (normal(4),), id="range_negative_step"),
    pytest.param(range_over_shape_attribute, (normal(5),), id="range_shape_attribute"),
    pytest.param(range_over_np_shape, (normal(3, 4),), id="range_np_shape"),
    pytest.param(range_over_len, (normal(4),), id="range_len"),
    pytest.param(range_step_from_shape, (normal(7),), id="range_step_from_shape"),
    pytest.param(range_stop_from_parameter, (normal(3), 4), id="range_stop_parameter"),
    pytest.param(
        range_stop_from_parameter, (normal(3), 0), id="range_stop_parameter_zero"
    ),
    pytest.param(range_zero_trips, (normal(3), normal(3)), id="range_zero_trips"),
    pytest.param(
        range_zero_trips_start_past_stop,
        (normal(3), normal(3)),
        id="range_start_past_stop",
    ),
    pytest.param(range_variable_as_exponent, (0.8,), id="range_variable_exponent"),
    pytest.param(range_adjacent_elements, (normal(5),), id="range_adjacent"),
    pytest.param(range_accumulate_augmented, (normal(3),), id="range_augmented"),
    pytest.param(recurrence_math, (0.3, 0.9, 0.2), id="recurrence_math"),
    pytest.param(
        recurrence_numpy_scalar,
        (np.float64(0.3), np.float64(0.9), np.float64(0.2)),
        id="recurrence_numpy_scalar",
    ),
    pytest.param(
        rnn_reassign_state, (0.5 * normal(4, 4), normal(4)), id="rnn_reassign"
    ),
    pytest.param(
        rnn_with_inputs,
        (0.5 * normal(3, 3), 0.5 * normal(3, 2), normal(3), normal(3), normal(5, 2)),
        id="rnn_with_inputs",
    ),
    pytest.param(gradient_descent_steps, (normal(3), normal(3)), id="gradient_descent"),
    pytest.param(fan_out_in_loop, (0.5 * normal(3),), id="fan_out_in_loop"),
    pytest.param(loop_variable_after_loop, (normal(3),), id="loop_variable_after_loop"),
    pytest.param(
        parameter_rebound_by_loop_variable,
        (normal(2), [normal(3), normal(2)]),
        id="parameter_rebound_by_loop",
    ),
    pytest.param(defined_only_inside_loop, (normal(3),), id="defined_inside_loop"),
    pytest.param(shrinking_array, (0.5 * normal(5),), id="shrinking_array"),
    pytest.param(tuple_state, (normal(3), normal(3)), id="tuple_state"),
    # for over sequences.
    pytest.param(over_list_parameter, (normal(3), [0.5, -1.2, 0.9]), id="over_list"),
    pytest.param(over_tuple_literal, (normal(3),), id="over_tuple_literal"),
    pytest.param(
        over_tuple_of_arrays, ((normal(3), normal(3)), normal(3)), id="over_tuple"
    ),
    pytest.param(over_array_rows, (normal(4, 3),), id="over_array_rows"),
    pytest.param(over_vector_elements, (normal(5),), id="over_vector_elements"),
    pytest.param(over_arange, (normal(3),), id="over_arange"),
    pytest.param(over_integer_arange, (normal(4),), id="over_integer_arange"),
    pytest.param(
        over_enumerate_list, (normal(3), [0.3, 1.1, -0.7]), id="over_enumerate"
    ),
    pytest.param(over_enumerate_rows_with_start, (normal(3, 2),), id="enumerate_start"),
    pytest.param(over_zip_arrays, (normal(4), normal(4)), id="over_zip_arrays"),
    pytest.param(
        over_zip_list_and_range, ([0.5, 1.5, -0.5], normal(2)), id="over_zip_list_range"
    ),
    pytest.param(over_enumerate_zip, (normal(4), normal(4)), id="over_enumerate_zip"),
    pytest.param(
        over_layer_pairs,
        ([(normal(3, 2), normal(3)), (normal(2, 3), normal(2))], normal(2)),
        id="over_layer_pairs",
    ),
    pytest.param(horner, ([1.0, -2.0, 0.5, 3.0], 0.7), id="horner"),
    pytest.param(
        over_list_by_index, ([0.9, 1.1, -0.8], normal(3)), id="over_list_by_index"
    ),
    pytest.param(
        over_list_of_floats_continue,
        (normal(2), [0.5, -1.0, 2.0]),
        id="over_floats_continue",
    ),
    # while loops.
    pytest.param(while_data_dependent, (0.45,), id="while_data_dependent"),
    pytest.param(while_data_dependent, (12.0,), id="while_data_dependent_zero_trips"),
    pytest.param(while_counter, (normal(3), 4), id="while_counter"),
    pytest.param(while_on_array_norm, (positive(3),), id="while_array_norm"),
    pytest.param(while_else, (0.6,), id="while_else"),
    pytest.param(while_break, (0.7,), id="while_break"),
    pytest.param(while_break_skips_else, (0.9,), id="while_break_skips_else"),
    pytest.param(while_else_after_no_break, (0.9,), id="while_else_no_break"),
    pytest.param(while_continue, (0.8,), id="while_continue"),
    pytest.param(while_true_break, (1.3,), id="while_true_break"),
    pytest.param(newton_square_root, (2.0,), id="newton_square_root"),
    pytest.param(while_return_inside, (0.9,), id="while_return_inside"),
    pytest.param(while_return_inside, (70.0,), id="while_return_after"),
    pytest.param(while_zero_trips, (3.0,), id="while_zero_trips"),
    pytest.param(while_two_states, (0.4, 1.3), id="while_two_states"),
    pytest.param(
        programs_numpy_loops.grow_until_norm, (positive(3),), id="numpy_while"
    ),
    # for with break, continue, else.
    pytest.param(for_break, (np.array([0.3, -0.5, 1.4, 0.2]),), id="for_break"),
    pytest.param(for_continue, (normal(6),), id="for_continue"),
    pytest.param(for_else_no_break, (0.7,), id="for_else_no_break"),
    pytest.param(for_else_break_taken, (0.7,), id="for_else_break_taken"),
    pytest.param(for_else_return, (normal(3),), id="for_else_return"),
    pytest.param(
        for_else_return, (np.array([0.5, 11.0, 0.2]),), id="for_return_not_else"
    ),
    pytest.param(
        for_break_and_continue,
        (np.array([0.4, 5.0, -1.0, 2.5, 0.1]),),
        id="for_break_and_continue",
    ),
    pytest.param(
        return_inside_for, (np.array([0.1, -0.2, 0.8, 0.9]),), id="return_in_for"
    ),
    pytest.param(
        return_inside_for, (np.array([0.1, -0.2, 0.3]),), id="return_after_for"
    ),
    pytest.param(return_in_first_iteration, (normal(2),), id="return_first_iteration"),
    # if inside loops.
    pytest.param(running_maximum, (normal(6),), id="running_maximum"),
    pytest.param(running_maximum_over_rows, (normal(4, 3),), id="running_maximum_rows"),
    pytest.param(
        if_elif_else_in_loop,
        (np.array([0.9, 0.1, -0.8, 1.4, -0.2, -2.0]),),
        id="if_elif_else_in_loop",
    ),
    pytest.param(conditional_expression_in_loop, (normal(5),), id="ifexp_in_loop"),
    pytest.param(and_or_in_loop, (normal(6), normal(6)), id="and_or_in_loop"),
    pytest.param(branch_on_flag_in_loop, (normal(3), BRANCH_FLAGS), id="flag_in_loop"),
    pytest.param(rebind_on_some_iterations, (normal(3),), id="rebind_some_iterations"),
    # Nested loops.
    pytest.param(nested_ranges, (normal(3), normal(4)), id="nested_ranges"),
    pytest.param(nested_inner_from_outer, (normal(4),), id="nested_inner_from_outer"),
    pytest.param(nested_strictly_upper, (normal(4),), id="nested_strictly_upper"),
    pytest.param(nested_matrix_vector, (normal(3, 4), normal(4)), id="nested_matvec"),
    pytest.param(nested_while_in_for, (positive(3),), id="nested_while_in_for"),
    pytest.param(nested_for_in_while, (normal(2),), id="nested_for_in_while"),
    pytest.param(triple_nested, (normal(3),), id="triple_nested"),
    pytest.param(
        nested_break_inner_only,
        (np.array([[0.2, 1.5, 0.3], [0.4, 0.6, -0.1], [2.0, 0.1, 0.1]]),),
        id="nested_break_inner",
    ),
    pytest.param(
        nested_continue_outer,
        (np.array([[0.2, 0.5], [-1.0, 0.3], [0.7, -0.1]]),),
        id="nested_continue_outer",
    ),
    pytest.param(
        return_inside_nested_loops,
        (np.array([[0.2, 0.5, -0.3], [0.1, 1.5, 0.3]]),),
        id="return_in_nested",
    ),
    pytest.param(
        return_after_nested_loops_finish, (normal(2, 3),), id="return_after_nested"
    ),
    pytest.param(nested_else_clauses, (0.6,), id="nested_else_clauses"),
    pytest.param(
        nested_break_inner_rows,
        (np.array([[0.2, 1.5, 0.3], [0.4, 0.6, -0.1], [2.0, 0.1, 0.1]]),),
        id="nested_break_inner_rows",
    ),
    pytest.param(
        return_inside_nested_rows,
        (np.array([[0.2, 0.5, -0.3], [0.1, 1.5, 0.3]]),),
        id="return_in_nested_rows",
    ),
    pytest.param(
        return_inside_nested_rows, (0.1 * normal(2, 3),), id="return_after_nested_rows"
    ),
    pytest.param(while_and_condition, (0.3, 2), id="while_and_counter_ends"),
    pytest.param(while_and_condition, (0.3, 10), id="while_and_value_ends"),
    pytest.param(loop_inside_branch, (normal(3), True), id="loop_in_if_branch"),
    pytest.param(
        loop_inside_branch, (0.1 * positive(3), False), id="loop_in_else_branch"
    ),
    # Rebinding what a loop iterates over, and loop variables.
    pytest.param(reassign_loop_variable, (0.7,), id="reassign_loop_variable"),
    pytest.param(
        rebind_iterated_list, (0.7, [1.5, 2.0, 3.0]), id="rebind_iterated_list"
    ),
    pytest.param(
        rebind_iterated_array, (np.array([0.5, 1.0, -0.3]),), id="rebind_iterated_array"
    ),
    pytest.param(rebind_range_bound, (0.7, 3), id="rebind_range_bound"),
    pytest.param(
        rebind_enumerated, (np.array([0.5, 1.0, -0.3]),), id="rebind_enumerated"
    ),
    pytest.param(
        rebind_zipped, (np.array([0.5, 1.0]), np.array([2.0, 3.0])), id="rebind_zipped"
    ),
    pytest.param(empty_list, (0.7, []), id="empty_list"),
    pytest.param(
        inner_variable_after_inner_loop, (0.7,), id="inner_variable_after_loop"
    ),
    pytest.param(while_else_return, (0.7,), id="while_else_return"),
    pytest.param(break_in_while_in_for, (0.7,), id="break_in_while_in_for"),
    pytest.param(row_rebound, (normal(2, 3),), id="row_rebound"),
    # Calls and recursion.
    pytest.param(call_in_loop, (normal(3), 0.8), id="call_in_loop"),
    pytest.param(call_callee_with_loop, (normal(3),), id="callee_with_loop"),
    pytest.param(call_in_while, (0.2,), id="call_in_while"),
    pytest.param(
        call_with_tuple_result_in_loop, (normal(2), normal(2)), id="call_tuple_loop"
    ),
    pytest.param(power_by_recursion, (1.3, 4), id="recursion_power"),
    pytest.param(power_by_recursion, (1.3, 0), id="recursion_base_case"),
    pytest.param(sum_by_halving, (normal(5),), id="recursion_halving"),
    pytest.param(recursion_with_loop, (normal(3), 2), id="recursion_with_loop"),
    pytest.param(is_even_depth, (0.4, 5), id="mutual_recursion"),
    pytest.param(recursion_in_loop, (1.2,), id="recursion_in_loop"),
    # Names that look like generated ones.
    pytest.param(parameter_named_d, (normal(3), normal(3)), id="parameter_d"),
    pytest.param(names_like_cotangents, (normal(3), normal(3)), id="names_like_bar"),
    pytest.param(name_like_tape, (normal(3),), id="name_like_tape"),
    pytest.param(names_like_loop_flags, (0.5 * normal(3),), id="names_like_flags"),
    pytest.param(name_like_runtime_alias, (normal(3),), id="name_like_pb"),
    pytest.param(names_like_temporaries, (normal(3),), id="names_like_temporaries"),
    pytest.param(names_like_saved_values, (normal(3),), id="names_like_saved"),
    pytest.param(name_like_result_bar, (0.7,), id="name_like_result_bar"),
    # NumPy imported as numpy.
    pytest.param(
        programs_numpy_loops.rows_through_tanh,
        (normal(3), normal(4, 3)),
        id="numpy_range",
    ),
    pytest.param(programs_numpy_loops.rows_of_array, (normal(3, 2),), id="numpy_rows"),
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
def test_control_flow_gradient(function, args):
    check_program(function, *args)


def test_corpus_size():
    assert len({case.values[0] for case in CASES}) >= 80


# A dict parameter read in a loop: check_gradient does not perturb dicts.


def test_dict_read_in_loop_gradient():
    params, x = {"w": normal(3), "b": normal(3)}, normal(3)
    params_bar, x_bar = pullback.gradient(over_keys_of_dict)(params, x)
    assert set(params_bar) == {"w", "b"}
    np.testing.assert_allclose(params_bar["w"], x, rtol=1e-14)
    np.testing.assert_allclose(params_bar["b"], x, rtol=1e-14)
    np.testing.assert_allclose(x_bar, params["w"] + params["b"], rtol=1e-14)


# Zero-trip loops: the gradient is exactly what the code without the loop gives.


def test_zero_trip_range_gradients():
    x, w = normal(3), normal(3)
    grad_x, grad_w = pullback.gradient(range_zero_trips)(x, w)
    np.testing.assert_allclose(grad_x, 2.0 * x, rtol=1e-14)
    assert grad_w is None or not np.any(grad_w)


def test_zero_trip_parameter_gradient():
    x = normal(3)
    grad_x, grad_n = pullback.gradient(range_stop_from_parameter)(x, 0)
    np.testing.assert_array_equal(grad_x, np.ones(3))
    assert grad_n is None


def test_zero_trip_while_gradient():
    assert pullback.gradient(while_zero_trips)(3.0) == 6.0


# Pullbacks called more than once.


@pytest.mark.parametrize(
    "function, args",
    [
        pytest.param(rnn_reassign_state, (0.5 * normal(4, 4), normal(4)), id="for"),
        pytest.param(while_on_array_norm, (positive(3),), id="while"),
        pytest.param(nested_inner_from_outer, (normal(4),), id="nested"),
        pytest.param(call_in_loop, (normal(3), 0.8), id="call_in_loop"),
    ],
)
def test_loop_pullback_called_twice(function, args):
    value, pullback_of_function = pullback.value_and_pullback(function, *args)
    first = pullback_of_function(1.0)
    second = pullback_of_function(1.0)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


# Hand-derived gradients.


def test_data_dependent_trip_count_gradient():
    # 0.45 -> 1.065 -> 2.1105 -> 3.888 -> 6.91 -> 12.05: five steps of x * 1.7 + 0.3.
    assert pullback.gradient(while_data_dependent)(0.45) == pytest.approx(
        1.7**5, rel=1e-14
    )


def test_running_maximum_gradient_picks_maximum():
    x = np.array([0.1, 2.0, -1.0, 1.5])
    np.testing.assert_allclose(
        pullback.gradient(running_maximum)(x), [0.0, 4.0, 0.0, 0.0]
    )


def test_break_stops_gradient_flow():
    x = np.array([0.3, -0.5, 1.4, 0.2])
    np.testing.assert_allclose(pullback.gradient(for_break)(x), [0.6, -1.0, 0.0, 0.0])


def test_return_inside_nested_loops_gradient():
    x = np.array([[0.2, 0.5, -0.3], [0.1, 1.5, 0.3]])
    expected = np.full_like(x, 1.5)
    expected[1, 1] += np.sum(x)
    np.testing.assert_allclose(
        pullback.gradient(return_inside_nested_loops)(x), expected
    )


def test_recursion_power_gradient():
    assert pullback.gradient(power_by_recursion, wrt="x")(1.3, 4) == pytest.approx(
        4 * 1.3**3
    )


def test_recursion_base_case_gradient():
    assert not pullback.gradient(power_by_recursion, wrt="x")(1.3, 0)


# User functions called in a loop.

CALLS = []


@pullback.no_derivative
def record_forward_call(x):
    CALLS.append("forward")
    return 0.0


def record_backward_call(cotangent):
    CALLS.append("backward")


def counted_layer(x, w):
    record_forward_call(x)
    y = np.tanh(w * x)
    return pullback.with_derivative(y, record_backward_call)


def counted_calls_in_loop(x, w, n):
    for i in range(n):
        x = counted_layer(x, w)
    return np.sum(x)


def counted_calls_in_while(x, w):
    while np.sum(x) < 4.0:
        x = counted_layer(x, w) + 1.0
    return np.sum(x)


def test_callee_runs_once_per_iteration():
    x, w = normal(3), 0.8
    CALLS.clear()
    value, pullback_of_function = pullback.value_and_pullback(
        counted_calls_in_loop, x, w, 4
    )
    assert CALLS == ["forward"] * 4
    pullback_of_function(1.0)
    assert CALLS == ["forward"] * 4 + ["backward"] * 4
    assert value == pytest.approx(counted_calls_in_loop(x, w, 4), rel=1e-14)


def test_callee_in_loop_gradient():
    check_gradient(counted_calls_in_loop, normal(3), 0.8, 4, wrt=(0, 1))


def test_callee_in_zero_trip_loop():
    CALLS.clear()
    x = normal(3)
    grad_x, grad_w = pullback.gradient(counted_calls_in_loop, wrt=(0, 1))(x, 0.8, 0)
    assert CALLS == []
    np.testing.assert_array_equal(grad_x, np.ones(3))
    assert not grad_w


def test_callee_runs_once_per_while_iteration():
    x = np.zeros(3)
    CALLS.clear()
    value, pullback_of_function = pullback.value_and_pullback(
        counted_calls_in_while, x, 0.5
    )
    # The sums after each step are 3.0 and 3 * tanh(0.5) + 3.0 = 4.39, so the
    # loop stops after two steps.
    assert CALLS == ["forward"] * 2
    pullback_of_function(1.0)
    assert CALLS == ["forward"] * 2 + ["backward"] * 2
    check_gradient(counted_calls_in_while, x + 0.05, 0.5)


# float32.


FLOAT32_CASES = [
    pytest.param(
        rnn_reassign_state, (0.5 * normal(4, 4), normal(4)), id="rnn_reassign"
    ),
    pytest.param(over_array_rows, (normal(4, 3),), id="over_array_rows"),
    pytest.param(nested_matrix_vector, (normal(3, 4), normal(4)), id="nested_matvec"),
    pytest.param(running_maximum, (normal(6),), id="running_maximum"),
    pytest.param(while_on_array_norm, (positive(3),), id="while_array_norm"),
    pytest.param(call_in_loop, (normal(3), 0.8), id="call_in_loop"),
]


def as_float32(value):
    if isinstance(value, np.ndarray):
        return value.astype(np.float32)
    return value


@pytest.mark.parametrize("function, args", FLOAT32_CASES)
def test_float32_loop_gradients(function, args):
    args32 = tuple(as_float32(a) for a in args)
    gradients32 = pullback.gradient(function)(*args32)
    gradients64 = pullback.gradient(function)(*args)
    if len(args) == 1:
        gradients32, gradients64 = (gradients32,), (gradients64,)
    for arg, g32, g64 in zip(args32, gradients32, gradients64, strict=True):
        if isinstance(arg, np.ndarray):
            assert g32.dtype == np.float32
            assert g32.shape == arg.shape
        np.testing.assert_allclose(g32, g64, rtol=2e-4, atol=2e-5)


def test_float32_scalar_recurrence():
    start = (np.float32(0.3), np.float32(0.9), np.float32(0.2))
    gradients32 = pullback.gradient(recurrence_numpy_scalar)(*start)
    gradients64 = pullback.gradient(recurrence_numpy_scalar)(
        *(np.float64(v) for v in start)
    )
    for g32, g64 in zip(gradients32, gradients64, strict=True):
        assert isinstance(g32, np.float32)
    # The derivative in x is a product of 20 factors near 0.6, about 4e-5,
    # so float32 rounding shows in its digits: compare it absolutely.
    assert gradients32[0] == pytest.approx(gradients64[0], abs=1e-6)
    assert gradients32[1] == pytest.approx(gradients64[1], rel=1e-3)
    assert gradients32[2] == pytest.approx(gradients64[2], rel=1e-3)


# Generated source.


# The pullback reads the tape from the end: by popping it, by indexing it,
# or by iterating over `reversed(...)`.
TAPE_READ = re.compile(
    r"\.pop\(\)|\w*iterations\w*\[\w+\]|reversed\(\w*iterations\w*\)"
)


def test_loop_source_uses_tape():
    source = pullback.adjoint_source(rnn_reassign_state)
    ast.parse(source)
    assert ".append(" in source
    assert TAPE_READ.search(source), source


def test_while_source_uses_tape():
    source = pullback.adjoint_source(while_data_dependent)
    ast.parse(source)
    assert ".append(" in source
    assert TAPE_READ.search(source), source


@pytest.mark.parametrize("function", [case.values[0] for case in CASES[::7]])
def test_loop_source_is_valid_python(function):
    compile(pullback.adjoint_source(function), "<adjoint>", "exec")


def test_loop_source_keeps_user_names():
    source = pullback.adjoint_source(names_like_loop_flags)
    compile(source, "<adjoint>", "exec")
    assert "returned_value" in source


# Autograd cross-checks. Each function's globals are copied with `np` bound
# to `autograd.numpy`, and every corpus function in them is rebuilt the same
# way, so calls and recursion also run through autograd.

AUTOGRAD_CASES = [
    pytest.param(range_over_np_shape, (normal(3, 4),), id="range_np_shape"),
    pytest.param(range_variable_as_exponent, (0.8,), id="range_variable_exponent"),
    pytest.param(
        recurrence_numpy_scalar, (0.3, 0.9, 0.2), id="recurrence_numpy_scalar"
    ),
    pytest.param(
        rnn_reassign_state, (0.5 * normal(4, 4), normal(4)), id="rnn_reassign"
    ),
    pytest.param(
        rnn_with_inputs,
        (0.5 * normal(3, 3), 0.5 * normal(3, 2), normal(3), normal(3), normal(5, 2)),
        id="rnn_with_inputs",
    ),
    pytest.param(over_array_rows, (normal(4, 3),), id="over_array_rows"),
    pytest.param(over_zip_arrays, (normal(4), normal(4)), id="over_zip_arrays"),
    pytest.param(while_on_array_norm, (positive(3),), id="while_array_norm"),
    pytest.param(while_break, (0.7,), id="while_break"),
    pytest.param(for_continue, (normal(6),), id="for_continue"),
    pytest.param(running_maximum, (normal(6),), id="running_maximum"),
    pytest.param(nested_inner_from_outer, (normal(4),), id="nested_inner_from_outer"),
    pytest.param(nested_matrix_vector, (normal(3, 4), normal(4)), id="nested_matvec"),
    pytest.param(
        return_inside_nested_loops,
        (np.array([[0.2, 0.5, -0.3], [0.1, 1.5, 0.3]]),),
        id="return_in_nested",
    ),
    pytest.param(call_in_loop, (normal(3), 0.8), id="call_in_loop"),
    pytest.param(sum_by_halving, (normal(5),), id="recursion_halving"),
]


def rebind_to_autograd(function, anp):
    """Return `function` rebuilt over a copy of its globals where `np` is
    `autograd.numpy`, with the module's other functions rebuilt alike."""
    namespace = dict(function.__globals__)
    namespace["np"] = anp
    for name, value in list(namespace.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == __name__:
            namespace[name] = types.FunctionType(
                value.__code__, namespace, value.__name__, value.__defaults__
            )
    return namespace[function.__name__]


@pytest.mark.parametrize("function, args", AUTOGRAD_CASES)
def test_matches_autograd(function, args):
    autograd = pytest.importorskip("autograd")
    anp = pytest.importorskip("autograd.numpy")
    reference = rebind_to_autograd(function, anp)
    positions = tuple(range(len(args)))
    expected = autograd.grad(reference, positions)(*args)
    actual = pullback.gradient(function)(*args)
    if len(args) == 1:
        actual = (actual,)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)



def maybe_sine_of_square(x, flag):
    y = x * x
    if flag:
        y = np.sin(y)
    return np.sum(y * y)


def test_branch_cotangent_deleted_after_last_use():
    # Both branches of the adjoint `if` bind the cotangent of `x * x`, so
    # the pullback frees it after its last use instead of at its return.
    source = pullback.adjoint_source(maybe_sine_of_square, wrt="x")
    pullback_source = source[source.index("def maybe_sine_of_square_pullback"):]
    branch_end = pullback_source.index("else:")
    assert re.search(r"^\s+del y_bar$", pullback_source[branch_end:], re.MULTILINE)
    check_gradient(maybe_sine_of_square, np.linspace(0.1, 0.9, 4), True, wrt="x")
    check_gradient(maybe_sine_of_square, np.linspace(0.1, 0.9, 4), False, wrt="x")
