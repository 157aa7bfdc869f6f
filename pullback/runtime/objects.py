"""Tangents of objects whose attributes hold differentiable values.

Reading `obj.w` in differentiated code gives `obj` a cotangent with a `w`
field. `ObjectTangent` stores those fields by name and is the tangent type of
plain objects and dataclasses: it adds, subtracts and scales field by field,
and `pullback.move` moves its object along it.
"""

from __future__ import annotations

import numbers
import types

import numpy as np

from pullback.runtime import markers, tangents
from pullback.runtime.registry import GenerationCache, vjp_of
from pullback.runtime.variadic import wrt_for_positions


class ObjectTangent:
    """The tangent of an object: one tangent per differentiable attribute.

    Fields are read as attributes (`t.weight`), listed by `fields()`, and
    iterating over a tangent gives the field names. Tangents support `+`,
    `-`, multiplication and division by a scalar, and `zero()`.

    A tangent made by differentiation remembers its object (its primal).
    It stores only the fields that some derivative reached; every other
    differentiable attribute of the primal reads as zero, allocated when
    it is first read. So the gradient of a model has a field for every
    parameter, including the ones the loss never read.

    >>> t = ObjectTangent(w=np.ones(2), b=0.5)
    >>> (t + t).w
    array([2., 2.])
    >>> (t * 3.0).b
    1.5

    A field whose name is also a method of this class (`fields`, `zero`,
    `of`, `stored_fields`) is read with `t.fields()[name]`.
    """

    __slots__ = ("_fields", "_primal")

    # Make NumPy defer to this class in `np.float32(2) * t` instead of
    # building an object array.
    __array_ufunc__ = None

    def __init__(self, **fields):
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_primal", None)

    @classmethod
    def of(cls, primal, fields: dict | None = None) -> ObjectTangent:
        """Return the tangent of `primal` that stores `fields`; its other
        differentiable attributes are zero."""
        tangent = cls.__new__(cls)
        object.__setattr__(tangent, "_fields", {} if fields is None else fields)
        object.__setattr__(tangent, "_primal", primal)
        return tangent

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        fields = self._fields
        if name in fields:
            return fields[name]
        primal = self._primal
        if primal is not None:
            differentiable = tangents.differentiable_fields(primal)
            if name in differentiable:
                zero = tangents.zeros_like(differentiable[name])
                fields[name] = zero
                return zero
        names = sorted(self.fields())
        raise AttributeError(
            f"this tangent has no field {name!r}; its fields are {names}"
        )

    def __setattr__(self, name, value):
        self._fields[name] = value

    def fields(self) -> dict:
        """Return every field by name, as a new dict, zeros included."""
        primal = self._primal
        if primal is not None:
            for name, value in tangents.differentiable_fields(primal).items():
                if name not in self._fields:
                    self._fields[name] = tangents.zeros_like(value)
        return dict(self._fields)

    def stored_fields(self) -> dict:
        """Return the fields some derivative reached, as a new dict.

        The primal's other differentiable attributes have zero tangents.
        """
        return dict(self._fields)

    def __iter__(self):
        return iter(self.fields())

    def zero(self) -> ObjectTangent:
        """Return the zero tangent of the same object and fields."""
        zeros = {name: tangents.zeros_like(value) for name, value in self._fields.items()}
        return ObjectTangent.of(self._primal, zeros)

    def __add__(self, other):
        if other is None or (isinstance(other, numbers.Number) and other == 0):
            return self  # None is the symbolic zero; 0 starts `sum(tangents)`.
        if not isinstance(other, ObjectTangent):
            return NotImplemented
        merged = dict(self._fields)
        for name, value in other._fields.items():
            merged[name] = tangents.add(merged.get(name), value)
        primal = self._primal if self._primal is not None else other._primal
        return ObjectTangent.of(primal, merged)

    __radd__ = __add__

    def __sub__(self, other):
        if other is None or (isinstance(other, numbers.Number) and other == 0):
            return self
        if not isinstance(other, ObjectTangent):
            return NotImplemented
        return self + other * -1.0

    def __rsub__(self, other):
        return self * -1.0 + other

    def __mul__(self, factor):
        if isinstance(factor, ObjectTangent):
            return NotImplemented
        scaled = {name: tangents.scale(value, factor) for name, value in self._fields.items()}
        return ObjectTangent.of(self._primal, scaled)

    __rmul__ = __mul__

    def __truediv__(self, divisor):
        if isinstance(divisor, ObjectTangent):
            return NotImplemented
        return self * (1.0 / divisor)

    def __neg__(self):
        return self * -1.0

    def __pos__(self):
        return self

    def __eq__(self, other):
        if not isinstance(other, ObjectTangent):
            return NotImplemented
        mine, theirs = self.fields(), other.fields()
        if mine.keys() != theirs.keys():
            return False
        return all(_equal(mine[name], theirs[name]) for name in mine)

    __hash__ = None

    def __reduce__(self):
        return (ObjectTangent.of, (self._primal, dict(self._fields)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(self.fields().items()))
        return f"ObjectTangent({inner})"


def primal_of(tangent: ObjectTangent):
    """Return the object `tangent` was made for, or None for a tangent built by hand."""
    return tangent._primal


def _equal(a, b) -> bool:
    if isinstance(a, tuple | list):
        return (isinstance(b, tuple | list) and len(a) == len(b)
                and all(_equal(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(a[key], b[key]) for key in a))
    if isinstance(a, ObjectTangent) or isinstance(b, ObjectTangent):
        return a == b
    if a is None or b is None:
        return a is b
    return bool(np.array_equal(a, b))


def attribute_adjoint(cotangent, owner, name: str):
    """Cotangent of `owner` from the cotangent of `owner.name`.

    Modules and fields the class declares in `__no_derivative_fields__` get
    none.
    """
    if cotangent is None or isinstance(owner, types.ModuleType):
        return None
    if name in tangents.no_derivative_fields(type(owner)):
        return None
    return ObjectTangent.of(owner, {name: cotangent})


def _constant_method_vjp(method):
    """Return a VJP of `method` whose pullback gives its owner no cotangent."""

    def constant_vjp(*args, **kwargs):
        value = method(*args, **kwargs)

        def constant_pullback(cotangent):
            return (None,)

        return value, constant_pullback

    return constant_vjp


def method_vjp(owner, name: str, positions: tuple[int, ...]):
    """Return the VJP of `owner.name(...)` with respect to argument positions.

    Position 0 is `owner` itself and 1, 2, ... the call's arguments. A method
    is differentiated as its function with `owner` as the first argument. A
    callable object stored in an attribute (`self.dense(x)`) is
    differentiated through its class's `__call__`, and `owner` gets the
    object's cotangent as the field `name`. Any other callable stored in an
    attribute (an activation, say) is called as it is, and `owner` gets no
    cotangent through the call.
    """
    attribute = getattr(owner, name)
    if positions == (0,) and not tangents.is_differentiable_value(owner):
        # Only the owner is active, and it has no tangent space (a NumPy
        # Generator, say), so no derivative flows through the call.
        return _constant_method_vjp(attribute)
    if name == "__call__" and isinstance(owner, types.MethodType):
        # The derivative with respect to the bound instance would be lost.
        from pullback.errors import DifferentiationError

        raise DifferentiationError(
            f"a bound method, {owner.__qualname__}, is called from a variable; "
            "differentiated code follows the derivative through its instance only "
            "when the method is called on it",
            hint="hint: call it on its object, as in obj.method(x)",
        )
    if name == "__call__" and not isinstance(attribute, types.MethodType):
        attribute = owner  # A function value, called as itself.
    if isinstance(attribute, types.MethodType) and attribute.__self__ is owner:
        function = attribute.__func__
        names = _parameter_names(function)
        if positions and positions[-1] >= len(names) or "*" in names:
            return _spread_vjp(function, positions, owner)
        vjp = vjp_of(function, *(names[p] for p in positions))

        def bound_vjp(*args, **kwargs):
            return vjp(owner, *args, **kwargs)

        return bound_vjp
    if _is_callable_object(attribute):
        return _stored_object_vjp(owner, name, attribute, positions)
    if (getattr(attribute, "__self__", None) is owner and owner is not attribute
            and not isinstance(attribute, types.MethodType)
            and custom_derivative_of(attribute) is None):
        # A method of a builtin type, such as dict.items or list.pop. Other
        # callables, such as a ufunc stored as an activation, go to `vjp_of`,
        # which differentiates a ufunc by its rule or names the function.
        from pullback.errors import DifferentiationError

        raise DifferentiationError(
            f"the method .{name}() of a {type(owner).__name__} has no derivative "
            "in differentiated code",
            hint="hint: index the container instead (for a dict, `for k in d:` "
            "then `d[k]`), or compute the value outside the differentiated function",
        )
    if (not isinstance(attribute, types.FunctionType | types.MethodType | np.ufunc)
            and custom_derivative_of(attribute) is None):
        # A builtin or C function without Python source: the compiler raises
        # an error naming it, before its signature is read.
        vjp_of(attribute)
    names = _parameter_names(attribute)
    inner = [p - 1 for p in positions if p > 0]
    if inner and inner[-1] >= len(names) or "*" in names:
        vjp = _spread_vjp(attribute, inner)
    else:
        vjp = vjp_of(attribute, *(names[p] for p in inner))

    def stored_vjp(*args, **kwargs):
        value, pullback = vjp(*args, **kwargs)

        def stored_pullback(cotangent):
            cotangents = iter(pullback(cotangent))
            return tuple(None if p == 0 else next(cotangents) for p in positions)

        return value, stored_pullback

    return stored_vjp


def _spread_vjp(function, positions, owner=None):
    """Return a VJP of `function` whose pullback returns one cotangent per position.

    A function with a `*name` parameter has a pullback that returns that
    parameter's cotangent as one tuple, which this VJP spreads out. `owner`,
    when given, is passed as the first argument, which is position 0.
    """
    names, spread = wrt_for_positions(function, positions)
    vjp = vjp_of(function, *names)
    prefix = () if owner is None else (owner,)

    def spread_vjp(*args, **kwargs):
        value, pullback = vjp(*prefix, *args, **kwargs)
        if spread is None:
            return value, pullback
        return value, lambda cotangent: spread(pullback(cotangent))

    return spread_vjp


def _is_callable_object(value) -> bool:
    """Return whether `value` is an instance of a class whose `__call__` is Python code."""
    # The class attribute, not callable(value): a function object is
    # callable too, but its type's __call__ is not Python code.
    call = getattr(type(value), "__call__", None)  # noqa: B004
    return isinstance(call, types.FunctionType)


def _stored_object_vjp(owner, name: str, stored, positions: tuple[int, ...]):
    """VJP of `owner.name(...)` where `owner.name` is a callable object."""
    call_vjp = method_vjp(stored, "__call__", positions)
    if 0 not in positions:
        return call_vjp

    def stored_object_vjp(*args, **kwargs):
        value, pullback = call_vjp(*args, **kwargs)

        def stored_object_pullback(cotangent):
            cotangents = pullback(cotangent)
            return tuple(
                attribute_adjoint(c, owner, name) if p == 0 else c
                for p, c in zip(positions, cotangents, strict=True)
            )

        return value, stored_object_pullback

    return stored_object_vjp


def custom_derivative_of(function):
    from pullback.runtime import registry

    return registry.custom_derivative(function)


def _parameter_names(function) -> tuple[str, ...]:
    return _parameter_names_cache.get(function, _read_parameter_names)


# Parameter names by function, because `inspect.signature` costs more than a
# small layer's arithmetic.
_parameter_names_cache = GenerationCache()


def _read_parameter_names(function) -> tuple[str, ...]:
    from pullback.runtime import registry

    record = registry.custom_derivative(function)
    if record is not None:
        return record.param_names
    if isinstance(function, np.ufunc):
        # NumPy's names for ufunc operands, read without inspect.signature.
        return ("x",) if function.nin == 1 else tuple(
            f"x{i + 1}" for i in range(function.nin))
    # A *name parameter reads as "*", so callers find it without another lookup.
    return tuple(
        "*" if parameter.kind == parameter.VAR_POSITIONAL else name
        for name, parameter in markers.call_signature(function).parameters.items()
    )
