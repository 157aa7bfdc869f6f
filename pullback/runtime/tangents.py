"""Tangent algebra: zero, add, scale and move for every differentiable type.

Tangents and cotangents are plain values of the same structure as their
primals: floats and NumPy floating scalars and arrays (dtype kept), and
tuples, lists and dicts of those. `None` is the symbolic zero: a cotangent
that no operation contributed to, never allocated. An object whose attributes hold
differentiable values (a plain object or a dataclass, such as a layer) has
an `ObjectTangent` with one field per differentiable attribute.

A class can define its own tangent space with this protocol:

- `__tangent_zero__(self)` returns the zero tangent of `self`. Its presence
  also makes the class differentiable.
- `__tangent_move__(self, tangent)` moves `self` in place along `tangent`.
- `__no_derivative_fields__`, a class attribute, names attributes that have
  no derivative even when they hold floats (hyperparameters such as a
  dropout rate). Names listed by base classes count too.

Tangent values add with `+` and scale with `*` by a Python float, so a
tangent class defines `__add__`, `__mul__` and `__rmul__`.
"""

from __future__ import annotations

import dataclasses
import numbers
import types

import numpy as np

from pullback.runtime.arrays import ShapeOf

# The cotangent 1 of a scalar result of each of these types, which seeds a
# gradient. A result of another type is checked before its seed is made.
SCALAR_SEEDS = {float: 1.0, np.float64: np.float64(1.0), np.float32: np.float32(1.0)}

# Attributes of these types are never differentiable fields of an object.
_OPAQUE_TYPES = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    str,
    bytes,
    range,
    np.random.Generator,
    np.random.RandomState,
)

# Exact types that `_is_differentiable` checks before its isinstance chain,
# whose abstract-class check costs about a microsecond per value. Layers hold
# many ints, strings and functions (strides, padding, activations), and an
# optimizer step walks them all.
_EXACT_NOT_DIFFERENTIABLE = frozenset(
    {type(None), bool, int, str, bytes, range, types.FunctionType,
     types.BuiltinFunctionType, types.MethodType}
)

_NOT_DIFFERENTIABLE_TYPES = (numbers.Integral, *_OPAQUE_TYPES)

_no_derivative_fields_by_type: dict[type, frozenset] = {}


def no_derivative_fields(cls: type) -> frozenset:
    """Return the attribute names that `cls` and its bases declare without derivative."""
    names = _no_derivative_fields_by_type.get(cls)
    if names is None:
        collected = set()
        for base in cls.__mro__:
            declared = base.__dict__.get("__no_derivative_fields__", ())
            if isinstance(declared, str):
                declared = (declared,)
            collected.update(declared)
        names = frozenset(collected)
        _no_derivative_fields_by_type[cls] = names
    return names


_slot_names_by_type: dict[type, tuple] = {}


def _slot_names(cls: type) -> tuple:
    """Return the names of the slots `cls` and its bases declare."""
    names = _slot_names_by_type.get(cls)
    if names is None:
        collected = []
        for base in cls.__mro__:
            slots = base.__dict__.get("__slots__", ())
            if isinstance(slots, str):
                slots = (slots,)
            collected += [s for s in slots if s not in ("__dict__", "__weakref__")]
        names = tuple(collected)
        _slot_names_by_type[cls] = names
    return names


def _attribute_items(value):
    """Return an object's (name, value) attribute pairs: `__dict__` and set slots."""
    fields = getattr(value, "__dict__", None)
    slots = _slot_names(type(value))
    if not slots:
        return fields.items() if fields else ()
    items = dict(fields or {})
    for slot in slots:
        if slot not in items:
            try:
                items[slot] = getattr(value, slot)
            except AttributeError:  # An unset slot.
                continue
    return items.items()


def differentiable_fields(value, _visiting: tuple = ()) -> dict:
    """Return the attributes of an object that have a tangent, by name.

    Attributes named in the class's `__no_derivative_fields__` are left out.
    An object reached again through its own attributes (a reference cycle)
    counts as having no tangent there.
    """
    if isinstance(value, _OPAQUE_TYPES):
        return {}
    skipped = no_derivative_fields(type(value))
    visiting = (*_visiting, id(value))
    return {
        name: item
        for name, item in _attribute_items(value)
        if name not in skipped and _is_differentiable(item, visiting)
    }


def is_differentiable_value(value) -> bool:
    """Return whether `value` has a tangent space.

    Floating and complex numbers and arrays have one. Tuples, lists, dicts
    and objects have one when an element or attribute does, and so does an
    object whose class defines `__tangent_zero__`.
    """
    return _is_differentiable(value, ())


def _is_differentiable(value, visiting: tuple) -> bool:
    kind = type(value)
    if kind in _EXACT_NOT_DIFFERENTIABLE:
        return False
    if kind is np.ndarray:
        return value.dtype.kind in "fc"
    if kind is float:
        return True
    if kind is not tuple and kind is not list:
        if isinstance(value, np.ndarray | np.generic):
            return value.dtype.kind in "fc"
        if isinstance(value, bool):
            return False
        if isinstance(value, float | complex):
            return True
        if value is None or isinstance(value, _NOT_DIFFERENTIABLE_TYPES):
            return False
    if isinstance(value, tuple | list):
        return _any_differentiable(value, visiting)
    if isinstance(value, dict):
        return _any_differentiable(value.values(), visiting)
    if id(value) in visiting:
        return False
    if hasattr(kind, "__tangent_zero__"):
        return True
    # Stops at the first differentiable attribute.
    skipped = no_derivative_fields(kind)
    visiting = (*visiting, id(value))
    for name, item in _attribute_items(value):
        if name not in skipped and _is_differentiable(item, visiting):
            return True
    return False


def _any_differentiable(items, visiting: tuple) -> bool:
    # A plain loop: `any()` over a generator costs a frame per call.
    for item in items:  # noqa: SIM110
        if _is_differentiable(item, visiting):
            return True
    return False


def zeros_like(value):
    """Return the zero tangent of `value`, or None where it has no tangent.

    The zero tangent of an object is an `ObjectTangent` that allocates its
    fields' zeros only when they are read.
    """
    if isinstance(value, ShapeOf):  # A loop saved only the shape of an array.
        return np.zeros(value.shape, value.dtype)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            return np.zeros_like(value)
        return None
    if isinstance(value, np.generic):
        if value.dtype.kind in "fc":
            return value.dtype.type(0)
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float | complex):
        return type(value)(0)
    if value is None or isinstance(value, numbers.Integral):
        return None
    if isinstance(value, tuple):
        return tuple(zeros_like(item) for item in value)
    if isinstance(value, list):
        return [zeros_like(item) for item in value]
    if isinstance(value, dict):
        return {key: zeros_like(item) for key, item in value.items()}

    from pullback.runtime.objects import ObjectTangent

    if isinstance(value, ObjectTangent):
        return value.zero()
    zero = getattr(type(value), "__tangent_zero__", None)
    if zero is not None:
        return zero(value)
    if is_differentiable_value(value):
        return ObjectTangent.of(value)
    return None


def add(a, b):
    """Add two tangents of the same primal; None is the symbolic zero."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, tuple) and isinstance(b, tuple):
        return tuple(add(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, list) and isinstance(b, list):
        return [add(x, y) for x, y in zip(a, b, strict=True)]
    if isinstance(a, dict) and isinstance(b, dict):
        merged = dict(a)
        for key, value in b.items():
            merged[key] = add(merged.get(key), value)
        return merged
    return a + b


def subtract(a, b):
    """Return `a - b` for two tangents of the same primal; None is zero."""
    return add(a, scale(b, -1.0))


def scale(a, factor):
    """Multiply a tangent by a scalar, keeping its structure and dtype.

    A Python float `factor` keeps a float32 array float32, as in NumPy's
    promotion rules.
    """
    if a is None:
        return None
    if isinstance(a, tuple):
        return tuple(scale(item, factor) for item in a)
    if isinstance(a, list):
        return [scale(item, factor) for item in a]
    if isinstance(a, dict):
        return {key: scale(item, factor) for key, item in a.items()}
    return a * factor


def move(value, by):
    """Move `value` along the tangent `by` and return the moved value.

    This is Swift's `move(by:)`: adding a tangent to its primal. Mutable
    values are updated in place: writable arrays, lists, dicts, and objects,
    whose attributes are moved one by one (arrays in place, other values
    reassigned on the object). Immutable values (floats, NumPy scalars,
    tuples) cannot change, so the moved value is returned and the caller
    rebinds it; `x = move(x, by=t)` works for every type. Dtypes are kept:
    a float32 array stays float32. `by=None` is the zero tangent.

    >>> import numpy as np
    >>> w = np.ones(2, dtype=np.float32)
    >>> _ = move(w, by=np.array([0.5, -1.0]))
    >>> w
    array([ 1.5,  0. ], dtype=float32)
    >>> move(1.0, by=0.25)
    1.25
    """
    if by is None:
        return value
    if isinstance(value, np.ndarray):
        return _move_array(value, by)
    if isinstance(value, np.generic):
        if value.dtype.kind not in "fc":
            return value
        return value.dtype.type(value + by)
    if isinstance(value, bool) or value is None or isinstance(value, numbers.Integral):
        return value
    if isinstance(value, float | complex):
        return type(value)(value + by)
    if isinstance(value, tuple):
        _check_length(value, by)
        return type(value)(move(item, t) for item, t in zip(value, by, strict=True))
    if isinstance(value, list):
        _check_length(value, by)
        for position, (item, t) in enumerate(zip(value, by, strict=True)):
            moved = move(item, t)
            if moved is not item:
                value[position] = moved
        return value
    if isinstance(value, dict):
        for key, t in by.items():
            item = value[key]
            moved = move(item, t)
            if moved is not item:
                value[key] = moved
        return value
    custom_move = getattr(type(value), "__tangent_move__", None)
    if custom_move is not None:
        custom_move(value, by)
        return value
    return _move_object(value, by)


def _move_array(value: np.ndarray, by):
    if value.dtype.kind not in "fc":
        return value
    if value.flags.writeable:
        np.add(value, by, out=value, casting="same_kind")
        return value
    # A read-only array (a broadcast view, say) is replaced, not written.
    return np.add(value, by).astype(value.dtype, copy=False)


def _check_length(value, by) -> None:
    if not isinstance(by, tuple | list) or len(by) != len(value):
        raise TypeError(
            f"cannot move a {type(value).__name__} of {len(value)} items along "
            f"{_describe(by)}; its tangent is a sequence of {len(value)} items"
        )


def _move_object(value, by) -> object:
    from pullback.runtime.objects import ObjectTangent

    if not isinstance(by, ObjectTangent):
        raise TypeError(
            f"cannot move a {type(value).__name__} along {_describe(by)}; the "
            "tangent of an object is an ObjectTangent, unless its class defines "
            "__tangent_move__"
        )
    for name, t in by.stored_fields().items():
        item = getattr(value, name)
        moved = move(item, t)
        if moved is item:
            continue
        try:
            setattr(value, name, moved)
        except (AttributeError, dataclasses.FrozenInstanceError) as error:
            raise TypeError(
                f"cannot move the field {name!r} of a {type(value).__name__}: "
                f"assigning it failed ({error}). Hold it in a NumPy array, which "
                "moves in place, or define __tangent_move__ on the class"
            ) from error
    return value


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def zero_cotangent(value):
    """Return a zero to accumulate `value`'s cotangent into: 0.0 for an int."""
    zero = zeros_like(value)
    return 0.0 if zero is None else zero
