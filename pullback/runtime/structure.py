"""Adjoints of reading parts of a value: subscripts and unpacking."""

from __future__ import annotations

import inspect
import types

import numpy as np

from pullback.errors import DifferentiationError
from pullback.runtime.tangents import add, zeros_like


def _is_basic_index(index) -> bool:
    """Return whether `index` is basic (ints, slices, None, Ellipsis): no element twice."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if part is None or part is Ellipsis or isinstance(part, slice):
            continue
        if isinstance(part, int | np.integer) and not isinstance(part, bool):
            continue
        return False
    return True


def subscript_adjoint(cotangent, primal, index):
    """Cotangent of `primal` from the cotangent of `primal[index]`."""
    if isinstance(primal, np.ndarray):
        result = np.zeros_like(primal)
        if cotangent is None:
            return result
        if _is_basic_index(index):
            result[index] = cotangent
        else:
            # Fancy and boolean indices may select an element more than once,
            # and each selection contributes.
            np.add.at(result, index, cotangent)
        return result
    if isinstance(primal, tuple | list):
        parts = [None] * len(primal)
        if isinstance(index, slice):
            for position, piece in zip(
                range(*index.indices(len(primal))), cotangent, strict=True
            ):
                parts[position] = add(parts[position], piece)
        else:
            parts[index] = cotangent
        parts = [zeros_like(p) if c is None else c for p, c in zip(primal, parts, strict=True)]
        return type(primal)(parts)
    if isinstance(primal, dict):
        return {
            key: cotangent if key == index else zeros_like(value)
            for key, value in primal.items()
        }
    raise TypeError(
        f"cannot differentiate a subscript of a {type(primal).__name__}; "
        "differentiated code indexes arrays, tuples and lists"
    )


class ItemAccumulator:
    """Cotangents of a sequence's items, added to one item at a time.

    A loop's pullback that reads `xs[i]` once per iteration adds each item's
    cotangent here in place, in constant time, and `accumulated` then makes
    the cotangent of xs. The accumulator belongs to that one pullback run,
    so changing it in place is safe.
    """

    __slots__ = ("primal", "items")

    def __init__(self, primal):
        self.primal = primal
        self.items = dict.fromkeys(primal) if isinstance(primal, dict) else (
            [None] * len(primal))


def item_accumulator(primal):
    """Return an empty accumulator for the cotangents of `primal`'s items.

    For an array it is a zero array, which `accumulate_item` adds into.
    """
    if isinstance(primal, np.ndarray):
        return np.zeros(primal.shape, primal.dtype if primal.dtype.kind in "fc" else float)
    if isinstance(primal, tuple | list | dict):
        return ItemAccumulator(primal)
    raise TypeError(
        f"cannot differentiate a subscript of a {type(primal).__name__}, because "
        "differentiated code indexes only arrays, tuples, lists and dicts"
    )


def accumulate_item(accumulator, index, cotangent):
    """Add the cotangent of `primal[index]` into `accumulator`, in place, and return it."""
    if cotangent is None:
        return accumulator
    if type(index) is int and type(accumulator) is ItemAccumulator:
        # The common case, once per iteration of `for x in xs`.
        items = accumulator.items
        current = items[index]
        items[index] = cotangent if current is None else add(current, cotangent)
        return accumulator
    if isinstance(accumulator, np.ndarray):
        if _is_basic_index(index):
            accumulator[index] += cotangent
        else:
            np.add.at(accumulator, index, cotangent)
        return accumulator
    items = accumulator.items
    if isinstance(index, slice):
        for position, piece in zip(range(*index.indices(len(items))), cotangent,
                                   strict=True):
            items[position] = add(items[position], piece)
    else:
        items[index] = add(items[index], cotangent)
    return accumulator


def accumulated(accumulator):
    """Return the cotangent of the primal that `accumulator` collected item cotangents of."""
    if not isinstance(accumulator, ItemAccumulator):
        return accumulator
    primal = accumulator.primal
    if isinstance(primal, dict):
        return {key: zeros_like(value) if accumulator.items[key] is None
                else accumulator.items[key] for key, value in primal.items()}
    return like_sequence(accumulator.items, primal)


def unpack_adjoint(primal, cotangents: tuple):
    """Cotangent of `primal` from the cotangents of the names it unpacked into."""
    parts = [
        zeros_like(item) if cotangent is None else cotangent
        for item, cotangent in zip(primal, cotangents, strict=True)
    ]
    if isinstance(primal, np.ndarray):
        return np.stack([np.asarray(p, dtype=primal.dtype) for p in parts])
    if isinstance(primal, list):
        return parts
    return tuple(parts)


def sequence(iterable):
    """Return `iterable` as a sequence that a loop can index and measure.

    Arrays, lists and tuples are returned as they are; other iterables are
    read into a list once.
    """
    if isinstance(iterable, np.ndarray | list | tuple | range):
        return iterable
    return list(iterable)


def joined(*parts, at=None) -> tuple:
    """Return the items of the parts as one tuple: the arguments of `f(a, *xs)`.

    Differentiated code joins `(a,)` and `xs` this way before the call.
    `at` contains one site per part, as `require_sequence` takes it, or None.
    """
    items = []
    for index, part in enumerate(parts):
        require_sequence(part, at[index] if at is not None else None)
        items.extend(part)
    return tuple(items)


def joined_part_cotangent(cotangent, parts: tuple, index: int):
    """Cotangent of `parts[index]` from the cotangent of `joined(*parts)`."""
    start = sum(len(part) for part in parts[:index])
    part = parts[index]
    return like_sequence(cotangent[start : start + len(part)], part)


def require_sequence(value, site=None) -> None:
    """Raise unless `value` can be passed as `*value` in differentiated code.

    `site` is `(source, filename, line, column)` of the starred argument in
    the user's code, such as `("*xs", "model.py", 12, 20)`, or None.
    """
    if not isinstance(value, tuple | list | np.ndarray | range):
        raise _not_a_sequence(value, site)


def _not_a_sequence(value, site):
    import linecache

    from pullback.errors import DifferentiationError, SourceLocation

    kind = type(value).__name__
    if site is None:
        source, location = "*xs", None
    else:
        source, filename, line, column = site
        location = SourceLocation(filename, line, column, linecache.getline(filename, line))
    expression = source[1:]
    if isinstance(value, dict):
        hint = (f"hint: Python would pass the dict's keys. To pass its values, build a "
                f"list first, as in [{expression}[k] for k in {expression}]")
    elif isinstance(value, int | float | complex | np.generic):
        hint = (f"hint: to pass one value, drop the star ({expression} instead of "
                f"{source}); to pass several, put them in a tuple or list")
    else:
        hint = "hint: build a tuple or list of the values before the call"
    return DifferentiationError(
        f"the starred argument {source} must be a tuple, list or array in "
        f"differentiated code, but {expression} is a {kind}",
        location, hint,
    )


def like_sequence(cotangents, primal):
    """Return one cotangent per item of `primal` as a cotangent of `primal` itself.

    A tuple or list gets the same kind of sequence and an array the stacked
    cotangents. A None item, which no derivative reached, becomes the zero of
    its primal item.
    """
    parts = [zeros_like(item) if cotangent is None else cotangent
             for item, cotangent in zip(primal, cotangents, strict=True)]
    if isinstance(primal, np.ndarray):
        if not parts:
            return np.zeros_like(primal)
        return np.stack([np.asarray(part, dtype=primal.dtype) for part in parts])
    if isinstance(primal, list):
        return parts
    return tuple(parts)


class _Index:
    """`rt.index[1:-1, 0]` is `(slice(1, -1), 0)`: an index as a value."""

    def __getitem__(self, index):
        return index


index = _Index()


def with_item(container, index, value):
    """Return `container` with `container[index] = value`, leaving it unchanged.

    Differentiated code treats a subscript write as making a new value, so
    the pullback can still read the old one and arrays passed in are never
    changed.
    """
    if isinstance(container, np.ndarray):
        _reject_repeated_positions(container, index)
        updated = container.copy()
    elif isinstance(container, list | dict):
        updated = container.copy()
    else:
        raise TypeError(
            f"cannot assign to an item of a {type(container).__name__} in "
            "differentiated code; it assigns items of arrays, lists and dicts"
        )
    updated[index] = value
    return updated


def _reject_repeated_positions(array: np.ndarray, index) -> None:
    """Raise when a fancy index writes one element more than once.

    NumPy keeps only the last of such writes, so the earlier values have no
    derivative, which the item's cotangent cannot express.
    """
    if _is_basic_index(index):
        return
    positions = np.arange(array.size).reshape(array.shape)[index]
    if np.unique(positions).size != np.size(positions):
        from pullback.errors import DifferentiationError

        raise DifferentiationError(
            f"an item write with the index {index!r} writes one element more "
            "than once; NumPy keeps only the last value, and differentiated code "
            "does not support such writes",
            hint="hint: make the indices unique, or add with np.add.at semantics "
            "by building the update with np.bincount",
        )


def without_item(cotangent, index, container=None):
    """Cotangent of the container before `with_item`: the overwritten part is zero.

    For a list the zero takes the structure of `container[index]`, the item
    before the write, because the stored value may be a list of another length.
    """
    if isinstance(cotangent, np.ndarray):
        cleared = cotangent.copy()
        cleared[index] = 0
        return cleared
    if isinstance(cotangent, list):
        span = _list_slice_span(container, index, cotangent)
        if span is not None:
            start, old_stop, new_stop = span
            return [*cotangent[:start], *zeros_like(container[start:old_stop]),
                    *cotangent[new_stop:]]
        cleared = list(cotangent)
        before = container if isinstance(container, list) else cleared
        cleared[index] = zeros_like(before[index])
        return cleared
    if isinstance(cotangent, dict):
        cleared = dict(cotangent)
        cleared.pop(index, None)
        return cleared
    return cotangent


def item_cotangent(cotangent, index, value, container=None):
    """Cotangent of the value `with_item` stored at `index` of `container`.

    A value stored into an integer or boolean array is converted to that
    dtype, which has no derivative, so its cotangent is zero.
    """
    from pullback.runtime.arrays import unbroadcast

    # `container` is the array or its `rt.like` (a ShapeOf), for its dtype.
    dtype = getattr(container, "dtype", None)
    if dtype is not None and dtype.kind not in "fc":
        return zeros_like(value)
    if isinstance(cotangent, int | float) and cotangent == 0:
        return zeros_like(value)  # The zero cotangent of the whole container.
    if isinstance(cotangent, np.ndarray):
        return unbroadcast(cotangent[index], value)
    if isinstance(cotangent, dict):
        found = cotangent.get(index)
        return zeros_like(value) if found is None else found
    if isinstance(cotangent, list):
        span = _list_slice_span(container, index, cotangent)
        if span is not None:
            start, _old_stop, new_stop = span
            part = cotangent[start:new_stop]
            if isinstance(value, np.ndarray):
                return np.asarray(part, dtype=value.dtype).reshape(value.shape)
            return tuple(part) if isinstance(value, tuple) else part
    return cotangent[index]


def _list_slice_span(container, index, cotangent):
    """Return where `container[index] = value` put the value, or None.

    A contiguous slice write to a list may change its length, so the value
    takes `new[start:new_stop]` of the new list, and `old[start:old_stop]` is
    what it replaced. None for any other write, whose positions do not shift.
    """
    if not (isinstance(container, list) and isinstance(index, slice)
            and index.step in (None, 1)):
        return None
    start, old_stop, _step = index.indices(len(container))
    old_stop = max(old_stop, start)
    new_stop = old_stop + len(cotangent) - len(container)
    return start, old_stop, new_stop


def appended(items: list, value) -> list:
    """Return `items + [value]`: `items.append(value)` as a new list."""
    return [*items, value]


def extended(items: list, values) -> list:
    """Return `items + list(values)`: `items.extend(values)` as a new list."""
    return [*items, *values]


def reversed_list(items: list) -> list:
    """Return `items` in reverse order: `items.reverse()` as a new list."""
    if not isinstance(items, list):
        raise DifferentiationError(
            f"differentiated code turns .reverse() into a new list, but the value "
            f"is a {type(items).__name__}, not a list",
            hint="hint: rename the method if it is your own")
    return items[::-1]


def sorted_copy(value, key=None, reverse=False):
    """Return what `value.sort(key=key, reverse=reverse)` leaves in `value`.

    This is `value.sort()` as a new value: a list sorts stably by `key`, in
    descending order when `reverse` is true, and an array sorts along its last
    axis, as `ndarray.sort()` does by default.
    """
    if isinstance(value, np.ndarray):
        if key is not None or reverse:
            raise DifferentiationError(
                "ndarray.sort() takes no key or reverse argument",
                hint="hint: sort with np.sort(value), and reverse with [::-1]")
        return np.sort(value)
    if isinstance(value, list):
        return sorted(value, key=key, reverse=reverse)
    raise DifferentiationError(
        f"differentiated code turns .sort() into a new list or array, but the "
        f"value is a {type(value).__name__}",
        hint="hint: rename the method if it is your own")


def sorted_copy_adjoint(cotangent, value, key=None, reverse=False):
    """Cotangent of `value` from that of `sorted_copy(value, key, reverse)`."""
    if isinstance(value, np.ndarray):
        from pullback.runtime.shapes import sort_adjoint

        return sort_adjoint(cotangent, value, axis=-1)
    # sorted() is stable, also with reverse=True, so sorting the positions by
    # the same key gives the position each sorted item came from.
    rank = key or (lambda item: item)
    order = sorted(range(len(value)), key=lambda i: rank(value[i]), reverse=reverse)
    result = [None] * len(value)
    for position, source in enumerate(order):
        result[source] = cotangent[position]
    return result


def extended_head(cotangent: list, items: list) -> list:
    """Cotangent of the list `extended` grew: its first `len(items)` entries."""
    return cotangent[: len(items)]


def extended_tail(cotangent: list, items: list, values):
    """Cotangent of the values `extended` added, as the same kind of sequence."""
    tail = cotangent[len(items) :]
    if isinstance(values, np.ndarray):
        return np.stack(tail) if tail else np.zeros_like(values)
    return type(values)(tail) if isinstance(values, tuple) else tail


def dict_of(keys: tuple, values: tuple) -> dict:
    """Build `{keys[0]: values[0], ...}`, the value of a dict display."""
    return dict(zip(keys, values, strict=True))


def dict_values_cotangent(cotangent: dict, keys: tuple, values: tuple) -> tuple:
    """Cotangents of a dict display's values, zero where none reached a key."""
    parts = []
    for key, value in zip(keys, values, strict=True):
        found = cotangent.get(key) if cotangent is not None else None
        parts.append(zeros_like(value) if found is None else found)
    return tuple(parts)


def require_array_member(value, member: str) -> None:
    """Raise when `value.member` is the user's own method, not NumPy's.

    Differentiated code takes `x.sum()`, `x.T` and their like for the NumPy
    members of that name. On an object whose class defines one in Python the
    derivative would be that of the wrong function.
    """
    defined = inspect.getattr_static(type(value), member, None)
    if isinstance(defined, types.FunctionType | property):
        from pullback.errors import DifferentiationError

        owner = type(value).__qualname__
        raise DifferentiationError(
            f"{owner}.{member} is defined by your class, but differentiated code "
            f"compiles .{member} as the NumPy array member of that name",
            hint=f"hint: rename the method, so .{member} means one thing",
        )
