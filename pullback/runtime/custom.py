"""Custom derivatives registered with `derivative_of`, checked as they run.

A registered VJP follows the user-facing convention: its pullback returns a
bare cotangent for one differentiated parameter and a tuple for several.
Compiled callers need one cotangent per parameter, so a `CustomDerivative`
adapts the one to the other and checks what the user's pullback returned.
"""

from __future__ import annotations

import numpy as np

from pullback.errors import DerivativeRegistrationError


def _describe(value) -> str:
    if value is None:
        return "None"
    shape = np.shape(value) if _is_numeric(value) else None
    if shape is not None:
        return f"{type(value).__name__} of shape {shape}"
    return type(value).__name__


def _is_numeric(value) -> bool:
    return isinstance(value, int | float | complex | np.ndarray | np.generic)


class CustomDerivative:
    """A registered VJP for `function`, with its parameters and `wrt`."""

    def __init__(self, function, vjp, param_names: tuple[str, ...],
                 wrt: tuple[int, ...], site: str, takes_wrt: bool = False):
        self.function = function
        self.vjp = vjp
        self.param_names = param_names
        self.wrt = wrt
        self.site = site
        # Whether `vjp` takes the requested parameter names as `wrt=`.
        self.takes_wrt = takes_wrt
        self.name = getattr(function, "__qualname__", None) or getattr(
            function, "__name__", repr(function)
        )

    def error(self, message: str) -> DerivativeRegistrationError:
        return DerivativeRegistrationError(
            f"the derivative registered for {self.name} at {self.site} {message}"
        )

    def _arguments(self, args: tuple, kwargs: dict) -> list:
        values = list(args[: len(self.param_names)])
        values += [None] * (len(self.param_names) - len(values))
        for key, value in kwargs.items():
            if key in self.param_names:
                values[self.param_names.index(key)] = value
        return values

    def _primal_layouts(self, args: tuple, kwargs: dict) -> list:
        """Return, by parameter, the layout of each differentiated argument.

        The pullback keeps these layouts instead of the arguments, so an
        argument the VJP itself does not keep is freed after the forward pass.
        """
        arguments = self._arguments(args, kwargs)
        layouts = [None] * len(arguments)
        for index in self.wrt:
            layouts[index] = _layout(arguments[index])
        return layouts

    def vjp_for(self, wrt: tuple[str, ...]):
        """Return a VJP whose pullback returns one cotangent per name in `wrt`."""
        positions = [self.param_names.index(name) for name in wrt]
        requested = tuple(wrt)

        def registered_vjp(*args, **kwargs):
            if self.takes_wrt:
                result = self.vjp(*args, wrt=requested, **kwargs)
            else:
                result = self.vjp(*args, **kwargs)
            if not (isinstance(result, tuple) and len(result) == 2
                    and callable(result[1])):
                raise self.error(
                    "must return (value, pullback) with a callable pullback, but "
                    f"returned {_describe(result)}"
                )
            value, user_pullback = result
            layouts = self._primal_layouts(args, kwargs)

            def registered_pullback(cotangent):
                cotangents = self.spread(user_pullback(cotangent), layouts)
                return tuple(cotangents[p] for p in positions)

            return value, registered_pullback

        return registered_vjp

    def bound_vjp_for(self, instance, wrt: tuple[str, ...]):
        """Return `vjp_for(wrt)` of a method, bound to `instance`."""
        vjp = self.vjp_for(wrt)
        return lambda *args, **kwargs: vjp(instance, *args, **kwargs)

    def spread(self, returned, layouts: list) -> list:
        """Check the user's cotangents against the primal `layouts` and place
        them by parameter."""
        if len(self.wrt) == 1:
            pieces = (returned,)
        else:
            if not isinstance(returned, tuple) or len(returned) != len(self.wrt):
                names = ", ".join(self.param_names[i] for i in self.wrt)
                got = (f"a tuple of {len(returned)}" if isinstance(returned, tuple)
                       else _describe(returned))
                raise self.error(
                    f"has a pullback that must return a tuple of {len(self.wrt)} "
                    f"cotangents (for {names}), but it returned {got}; return "
                    "None for a cotangent that is zero or was not requested"
                )
            pieces = returned
        cotangents = [None] * len(self.param_names)
        for index, piece in zip(self.wrt, pieces, strict=True):
            name = self.param_names[index]
            cotangents[index] = self._checked(piece, layouts[index], repr(name))
        return cotangents

    def _checked(self, cotangent, layout, where: str):
        """Return `cotangent` checked against the primal's `layout`, in its dtype."""
        if cotangent is None or layout is None:
            return cotangent
        kind = layout[0]
        if kind == "leaf":
            return self._checked_leaf(cotangent, layout, where)
        if kind == "object":
            return self._checked_object(cotangent, layout, where)
        if kind == "dict":
            items = layout[1]
            if not isinstance(cotangent, dict) or not set(cotangent) <= set(items):
                raise self.error(
                    f"returned a {_describe(cotangent)} as the cotangent of {where}, "
                    f"which is a dict with keys {sorted(items, key=repr)}; return a "
                    "dict with those keys (leave out the ones whose cotangent is zero)"
                )
            return {key: self._checked(value, items[key], f"{where}[{key!r}]")
                    for key, value in cotangent.items()}
        return self._checked_sequence(cotangent, layout, where)

    def _checked_sequence(self, cotangent, layout, where: str):
        _, sequence_type, items = layout
        kind = sequence_type.__name__
        if not isinstance(cotangent, tuple | list) or len(cotangent) != len(items):
            hint = ""
            if isinstance(cotangent, tuple) and len(cotangent) == 1 and len(self.wrt) == 1:
                hint = (" (a pullback for one parameter returns its cotangent "
                        "itself, not a tuple of one)")
            raise self.error(
                f"returned a {_describe(cotangent)} as the cotangent of {where}, "
                f"which is a {kind} of {len(items)} items; return a {kind} of "
                f"{len(items)} cotangents, with None for a zero one{hint}"
            )
        checked = [self._checked(value, item, f"{where}[{index}]")
                   for index, (value, item) in enumerate(zip(cotangent, items, strict=True))]
        # The cotangent takes the argument's own sequence type, as in compiled
        # code, so a tuple returned for a list adds to the list's other parts.
        if hasattr(sequence_type, "_fields"):  # A namedtuple.
            return sequence_type(*checked)
        return tuple(checked) if issubclass(sequence_type, tuple) else list(checked)

    def _checked_object(self, cotangent, layout, where: str):
        from pullback.runtime.objects import ObjectTangent

        _, type_name, fields = layout
        if not isinstance(cotangent, ObjectTangent):
            raise self.error(
                f"returned a {_describe(cotangent)} as the cotangent of {where}, "
                f"which is a {type_name} object; return a pullback.ObjectTangent "
                "with a field for each attribute that has a cotangent, or None"
            )
        checked = {}
        for name, value in cotangent.stored_fields().items():
            if name not in fields:
                known = ", ".join(sorted(fields)) or "none"
                raise self.error(
                    f"returned an ObjectTangent with a field {name!r} as the "
                    f"cotangent of {where}, but that {type_name} object has no "
                    f"differentiable attribute {name!r} (it has: {known})"
                )
            checked[name] = self._checked(value, fields[name], f"{where}.{name}")
        return ObjectTangent.of(cotangent._primal, checked)

    def _checked_leaf(self, cotangent, layout, where: str):
        _, shape, dtype = layout
        if not _is_numeric(cotangent):
            raise self.error(
                f"returned a {_describe(cotangent)} as the cotangent of {where}, "
                f"which is a number or array of shape {shape}; return an array or "
                "number of the same shape"
            )
        if np.shape(cotangent) != shape:
            raise self.error(
                f"returned a cotangent of shape {np.shape(cotangent)} for {where}, "
                f"but {where} has shape {shape}; return one of the "
                "parameter's shape"
            )
        if dtype is None:
            return cotangent
        if dtype.kind == "f" and np.iscomplexobj(cotangent):
            raise self.error(
                f"returned a complex cotangent for {where}, which is real "
                f"({dtype}); return a real one, for example with np.real"
            )
        if type(cotangent) is float:
            return cotangent
        if getattr(cotangent, "dtype", None) != dtype:
            # A float32 primal gets a float32 cotangent, as in compiled code.
            if isinstance(cotangent, np.ndarray):
                return cotangent.astype(dtype)
            return dtype.type(cotangent)
        return cotangent


# The dtype a Python float argument's cotangent is checked and cast against.
_PYTHON_FLOAT = np.dtype(np.float64)


def _layout(value, visiting: tuple = ()):
    """Return what checking a cotangent of `value` needs, or None to skip it.

    The layouts are:
    - a number or array: ("leaf", shape, floating dtype or None);
    - a tuple or list: ("sequence", its type, item layouts);
    - a dict: ("dict", layouts by key);
    - another object: ("object", its type name, layouts of its
      differentiable attributes).

    Strings, bools, None and values of a class with a tangent space of its
    own have no layout: their cotangents are not
    checked.
    """
    if isinstance(value, bool | str | bytes) or value is None:
        return None
    if _is_numeric(value):
        dtype = getattr(value, "dtype", None)
        if type(value) is float:
            dtype = _PYTHON_FLOAT
        elif dtype is not None and dtype.kind not in "fc":
            dtype = None
        return ("leaf", np.shape(value), dtype)
    if id(value) in visiting:
        return None  # A cycle: the object is checked where it first appears.
    visiting = (*visiting, id(value))
    if isinstance(value, tuple | list):
        return ("sequence", type(value), [_layout(item, visiting) for item in value])
    if isinstance(value, dict):
        return ("dict", {key: _layout(item, visiting) for key, item in value.items()})
    if hasattr(type(value), "__tangent_zero__"):
        return None  # A tangent space of the user's own, which may be anything.
    from pullback.runtime import tangents

    fields = {name: _layout(item, visiting)
              for name, item in tangents.differentiable_fields(value).items()}
    return ("object", type(value).__name__, fields)
