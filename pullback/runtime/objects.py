"""Cotangents of objects whose attributes hold differentiable values.

Reading `obj.w` in differentiated code gives `obj` a cotangent with a `w`
field. `ObjectTangent` holds those fields by name, and adds field by field.
"""

from __future__ import annotations

import types

import numpy as np

from pullback.runtime.registry import vjp_of


class ObjectTangent:
    """The cotangent of an object: one cotangent per attribute that was read.

    >>> t = ObjectTangent(w=np.ones(2))
    >>> (t + t).w
    array([2., 2.])
    """

    __slots__ = ("_fields",)

    def __init__(self, **fields):
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name):
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        raise AttributeError(
            f"this tangent has no field {name!r}: no derivative reached that "
            f"attribute; its fields are {sorted(fields)}"
        )

    def __setattr__(self, name, value):
        self._fields[name] = value

    def fields(self) -> dict:
        """Return the fields by name, as a new dict."""
        return dict(self._fields)

    def __add__(self, other):
        if other is None or other == 0:
            return self
        if not isinstance(other, ObjectTangent):
            return NotImplemented
        from pullback.runtime.tangents import add

        merged = dict(self._fields)
        for name, value in other._fields.items():
            merged[name] = add(merged.get(name), value)
        return ObjectTangent(**merged)

    __radd__ = __add__

    def __sub__(self, other):
        return self + other * -1.0

    def __mul__(self, factor):
        from pullback.runtime.tangents import scale

        return ObjectTangent(**{k: scale(v, factor) for k, v in self._fields.items()})

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __eq__(self, other):
        if not isinstance(other, ObjectTangent):
            return NotImplemented
        if self._fields.keys() != other._fields.keys():
            return False
        return all(np.array_equal(self._fields[k], other._fields[k]) for k in self._fields)

    __hash__ = None

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(self._fields.items()))
        return f"ObjectTangent({inner})"


def attribute_adjoint(cotangent, owner, name: str):
    """Cotangent of `owner` from the cotangent of `owner.name`."""
    if isinstance(owner, types.ModuleType):
        return None
    return ObjectTangent(**{name: cotangent})


def method_vjp(owner, name: str, positions: tuple[int, ...]):
    """Return the VJP of `owner.name(...)` with respect to argument positions.

    Position 0 is `owner` itself and 1, 2, ... the call's arguments. A method
    is differentiated as its function with `owner` as the first argument; a
    callable stored in an attribute (an activation, say) is called as it is,
    and `owner` gets no cotangent through the call.
    """
    attribute = getattr(owner, name)
    if name == "__call__" and not isinstance(attribute, types.MethodType):
        attribute = owner  # A function value, called as itself.
    if isinstance(attribute, types.MethodType) and attribute.__self__ is owner:
        function = attribute.__func__
        names = _parameter_names(function)
        vjp = vjp_of(function, *(names[p] for p in positions))

        def bound_vjp(*args, **kwargs):
            return vjp(owner, *args, **kwargs)

        return bound_vjp
    names = _parameter_names(attribute)
    inner = [p - 1 for p in positions if p > 0]
    vjp = vjp_of(attribute, *(names[p] for p in inner))

    def stored_vjp(*args, **kwargs):
        value, pullback = vjp(*args, **kwargs)

        def stored_pullback(cotangent):
            cotangents = iter(pullback(cotangent))
            return tuple(None if p == 0 else next(cotangents) for p in positions)

        return value, stored_pullback

    return stored_vjp


def _parameter_names(function) -> tuple[str, ...]:
    import inspect

    from pullback.runtime.registry import custom_derivative

    record = custom_derivative(function)
    if record is not None:
        return record.param_names
    return tuple(inspect.signature(function).parameters)
