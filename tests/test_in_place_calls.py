"""Calls that change a value in place, and iterator builtins.

Differentiated code turns changes into new values, so `xs.reverse()` and
`xs.sort()` statements are rebound to new values and differentiated. Other
calls that change a list, dict or array in place are rejected at compile
time, as are `out=` in a call statement and builtins that make iterators
outside a for loop. Each rejection must point at the line of the call.
"""

# The corpus uses zip without strict= as users write it.
# ruff: noqa: B007, B905

import logging
import operator
import random

import numpy as np
import pytest
from gradcheck import check_gradient

import pullback
from pullback.errors import DifferentiationError

logger = logging.getLogger(__name__)


def normal(*shape):
    return np.random.default_rng(7).standard_normal(shape)


# Supported: the statement is rebound to a new value.


def reverse_list(x):
    items = [x, 2.0 * x, x * x]
    items.reverse()
    return np.sum(items[0] * 3.0 + items[1] * items[2])


def sort_array(x):
    y = x * np.array([1.0, -2.0, 3.0])
    y.sort()
    return y[0] + 2.0 * y[2]


def sort_matrix_rows(x):
    y = x * 1.0
    y.sort()
    return np.sum(y * np.arange(12.0).reshape(3, 4))


def sort_list(x, y):
    items = [x * 1.0, y * 1.0]
    items.sort()
    return items[0] * 10.0 + items[1]


def sort_list_key_reverse(x, y, z):
    items = [x, y, z]
    items.sort(key=abs, reverse=True)
    return items[0] * 100.0 + items[1] * 10.0 + items[2]


def reverse_in_loop(x):
    items = [x, 2.0 * x]
    total = 0.0
    for step in range(3):
        items.reverse()
        total = total * 2.0 + items[0]
    return np.sum(total)


def loop_over_reversed(x):
    total = 0.0
    for value in reversed([x, 2.0 * x, x * x]):
        total = total * 3.0 + value
    return np.sum(total)


@pytest.mark.parametrize("function, args", [
    (reverse_list, (normal(3),)),
    (sort_array, (normal(3),)),
    (sort_matrix_rows, (normal(3, 4),)),
    (sort_list, (0.5, 0.3)),
    (sort_list, (0.3, 0.5)),
    (sort_list_key_reverse, (0.5, -0.9, 0.2)),
    (reverse_in_loop, (normal(2),)),
    (loop_over_reversed, (normal(3),)),
])
def test_rebound_statement_differences(function, args):
    value, _ = pullback.value_and_gradient(function)(*args)
    assert np.allclose(value, function(*args))
    check_gradient(function, *args)


def test_sort_list_gradient_follows_order():
    # The smaller item gets the weight 10, whichever parameter contains it.
    assert pullback.gradient(sort_list)(0.5, 0.3) == (1.0, 10.0)
    assert pullback.gradient(sort_list)(0.3, 0.5) == (10.0, 1.0)


def test_sort_of_alias_rejected():
    def sort_alias(x):
        y = x * 1.0
        kept = y
        y.sort()
        return np.sum(kept * x)

    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(sort_alias)(normal(3))
    assert info.value.location.lineno == sort_alias.__code__.co_firstlineno + 3
    assert "y.sort() changes y in place" in str(info.value)


# Rejected: calls that change a value in place.


def add_out(x):
    y = np.zeros(3)
    np.add(x, x, out=y)
    return np.sum(y)


def exp_out_self(x):
    y = x * 2.0
    np.exp(y, out=y)
    return np.sum(y)


def sum_method_out(x):
    y = np.zeros(())
    x.sum(out=y)
    return y * 1.0


def sort_along_axis(x):
    y = x * 1.0
    y.sort(axis=0)
    return np.sum(y[0])


def copy_into(x):
    y = np.zeros(3)
    np.copyto(y, x)
    return np.sum(y)


def fill_array(x):
    y = np.zeros(3)
    y.fill(x[0])
    return np.sum(y)


def add_at(x):
    y = np.zeros(3)
    np.add.at(y, np.array([0, 0, 2]), x)
    return np.sum(y * y)


def insert_item(x):
    items = [x]
    items.insert(0, 2.0 * x)
    return np.sum(items[0])


def update_dict(x):
    d = {"a": x}
    d.update({"a": 2.0 * x})
    return np.sum(d["a"])


def setdefault_dict(x):
    d = {}
    d.setdefault("a", x)
    return np.sum(d["a"])


def pop_assigned(x):
    items = [x, 2.0 * x]
    last = items.pop()
    return np.sum(last + items[-1])


def shuffle_list(x):
    items = [x, 2.0 * x]
    random.shuffle(items)
    return np.sum(items[0])


def append_to_list_item(x):
    rows = [[x], [2.0 * x]]
    rows[0].append(x * 3.0)
    return np.sum(rows[0][-1])


def sort_dict_item(x):
    values = {"y": x * 1.0}
    values["y"].sort()
    return values["y"][0]


def sort_list_unbound(x):
    items = [x[0], x[1]]
    list.sort(items)
    return items[0] + 10.0 * items[1]


def sort_array_unbound(x):
    y = x * 1.0
    np.ndarray.sort(y)
    return y[0] + 10.0 * y[1]


def set_item_method(x):
    y = x * 1.0
    y.__setitem__(0, 5.0 * x[1])
    return y[0] + 10.0 * y[1]


def set_item_operator(x):
    y = x * 1.0
    operator.setitem(y, 0, 5.0 * x[1])
    return y[0] + 10.0 * y[1]


def add_in_place_operator(x):
    items = [x[0]]
    operator.iadd(items, [x[1]])
    return items[0] + 10.0 * items[-1]


def add_in_place_method(x):
    y = x * 1.0
    y.__iadd__(x)
    return np.sum(y)


def shuffle_with_generator(x):
    y = x * 1.0
    rng = np.random.default_rng(0)
    rng.shuffle(y)
    return y[0] + 10.0 * y[1]


def multiply_out_positional(x):
    y = x * 1.0
    np.multiply(y, 2.0, y)
    return np.sum(y * x)


@pytest.mark.parametrize("function, line, phrase", [
    (sort_list_unbound, 2, "list.sort(items, ...) sorts items in place"),
    (sort_array_unbound, 2, "np.ndarray.sort(y, ...) sorts y in place"),
    (set_item_method, 2, "y.__setitem__(...) writes an item of y"),
    (set_item_operator, 2, "operator.setitem(y, ...) writes an item of y"),
    (add_in_place_operator, 2, "operator.iadd(items, ...) changes items in place"),
    (add_in_place_method, 2, "y.__iadd__(...) changes y in place"),
    (shuffle_with_generator, 3, "rng.shuffle(...) shuffles its argument in place"),
    (multiply_out_positional, 2, "np.multiply(..., out=y) writes into an existing array"),
])
def test_indirect_in_place_call_rejected(function, line, phrase):
    # `line` counts from the def line to the call that changes a value.
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(normal(3))
    assert info.value.location.lineno == function.__code__.co_firstlineno + line
    message = str(info.value)
    assert phrase in message
    assert "hint:" in message


@pytest.mark.parametrize("function, phrase", [
    (append_to_list_item, "rows[0].append(...) changes rows[0] in place"),
    (sort_dict_item, "values['y'].sort(...) changes values['y'] in place"),
    (add_out, "np.add(..., out=y) writes into an existing array"),
    (exp_out_self, "np.exp(..., out=y) writes into an existing array"),
    (sum_method_out, "x.sum(..., out=y) writes into an existing array"),
    (sort_along_axis, "y.sort(...) sorts y in place"),
    (copy_into, "np.copyto(y, ...) copies values into y"),
    (fill_array, "y.fill(...) fills y in place"),
    (add_at, "np.add.at(y, ...) changes y in place"),
    (insert_item, "items.insert(...) inserts an item into items"),
    (update_dict, "d.update(...) writes keys of d"),
    (setdefault_dict, "d.setdefault(...) may write a key of d"),
    (pop_assigned, "items.pop(...) removes an item from items"),
    (shuffle_list, "random.shuffle(items, ...) shuffles items in place"),
])
def test_in_place_call_rejected(function, phrase):
    message = rejection_at(function, normal(3), line=2)
    assert phrase in message
    assert "hint:" in message


def rejection_at(function, x, line: int) -> str:
    """Return the message of the error that rejects `function`, raised at its `line`."""
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(x)
    assert info.value.location.lineno == function.__code__.co_firstlineno + line
    return str(info.value)


def append_through_item_variable(x):
    rows = [[x], [2.0 * x]]
    row = rows[0]
    row.append(x * 3.0)
    rows[0] = row
    return np.sum(rows[0][-1] * x) + np.sum(rows[1][0])


def store_shorter_list_item(x):
    rows = [[x, 2.0 * x], [x * x]]
    rows[0] = [x * 5.0]
    return np.sum(rows[0][0] * x) + np.sum(rows[1][0])


def store_longer_slice(x):
    items = [x, 2.0 * x]
    items[0:1] = [x * x, 3.0 * x]
    return np.sum(items[0] + 10.0 * items[1] + 100.0 * items[2])


def store_shorter_slice(x):
    items = [x, 2.0 * x, x * x]
    items[:2] = (4.0 * x,)
    return np.sum(items[0] * x + 10.0 * items[1])


@pytest.mark.parametrize("function", [
    append_through_item_variable,
    store_shorter_list_item,
    store_longer_slice,
    store_shorter_slice,
])
def test_list_item_of_new_length_differences(function):
    # The stored value has another length than the item or slice it replaces.
    value, _ = pullback.value_and_gradient(function)(normal(3))
    assert np.allclose(value, function(normal(3)))
    check_gradient(function, normal(3))


def test_in_place_rejection_names_the_fix():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(fill_array)(normal(3))
    assert "y = np.full_like(y, value)" in str(info.value)


# Still supported: calls kept for their effect alone.


class Counter:
    def __init__(self):
        self.calls = 0

    def update(self, value):
        self.calls += 1


counter = Counter()


def record(value):
    counter.update(value)


def effects_kept(x):
    seen = set()
    seen.add(1)
    logger.debug("x has shape %s", np.shape(x))
    record(x)
    counter.update(x)
    print(end="")
    assert len(seen) == 1
    return np.sum(x * x)


def test_effect_statements_still_run():
    before = counter.calls
    check_gradient(effects_kept, normal(3))
    assert counter.calls > before


# Iterator builtins outside a for loop.


def first_of_reversed(x):
    return next(reversed([x, x * 2.0])) * 1.0


def list_of_reversed(x):
    items = list(reversed([x, 2.0 * x]))
    return items[0] * 10.0 + items[1]


def next_of_iter(x):
    it = iter([x, x * 3.0])
    return next(it) * next(it)


def list_of_enumerate(x):
    pairs = list(enumerate([x, 2.0 * x]))
    return pairs[1][1] * 1.0


def list_of_zip(x):
    pairs = list(zip([x, x], [1.0, 2.0]))
    return pairs[1][0] * pairs[1][1]


@pytest.mark.parametrize("function, builtin, hint", [
    (first_of_reversed, "reversed", "xs[::-1]"),
    (list_of_reversed, "reversed", "xs[::-1]"),
    (next_of_iter, "iter", "index the sequence"),
    (list_of_enumerate, "enumerate", "for i, v in enumerate(xs)"),
    (list_of_zip, "zip", "for a, b in zip(xs, ys)"),
])
def test_iterator_builtin_rejected(function, builtin, hint):
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(function)(0.5)
    assert info.value.location.lineno == function.__code__.co_firstlineno + 1
    message = str(info.value)
    assert f"{builtin}() has no derivative rule" in message
    assert hint in message


# A loop variable is an item of its sequence: writing into it would change
# the sequence in plain Python.


def write_into_row(x):
    rows = x.reshape(2, 2) * 1.0
    for row in rows:
        row[0] = row[0] * 3.0
    return np.sum(rows * rows)


def append_to_item(x):
    groups = [[x[0]], [x[1]]]
    for index, group in enumerate(groups):
        group.append(x[2] * index)
    return groups[0][0] + groups[1][-1]


def add_into_row(x):
    rows = x.reshape(2, 2) * 1.0
    for row in rows:
        row += 1.0
    return np.sum(rows * rows)


@pytest.mark.parametrize("function, phrase", [
    (write_into_row, "row[...] = ... changes row, an item of rows, in place"),
    (append_to_item, "group.append(...) changes group, an item of enumerate(groups)"),
    (add_into_row, "row += ... changes row, an item of rows, in place"),
])
def test_write_into_loop_item_rejected(function, phrase):
    message = rejection_at(function, normal(4), line=3)
    assert phrase in message
    assert ".copy()" in message


def write_into_copied_row(x):
    rows = x.reshape(2, 2) * 1.0
    total = 0.0
    for row in rows:
        row = row.copy()
        row[0] = row[0] * 3.0
        total = total + np.sum(row * row)
    return total


def test_write_into_copied_loop_item_differences():
    check_gradient(write_into_copied_row, normal(4))


class Deck:
    def __init__(self, values):
        self.values = values

    def reverse(self):
        self.values = self.values[::-1]


def reverse_own_object(deck, x):
    deck.reverse()
    return np.sum(x * 2.0)


def test_reverse_of_own_object_raises():
    with pytest.raises(DifferentiationError) as info:
        pullback.gradient(reverse_own_object, wrt=1)(Deck([1.0, 2.0]), normal(2))
    message = str(info.value)
    assert "the value is a Deck, not a list" in message
    assert "rename the method" in message
