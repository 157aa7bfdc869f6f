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

    def _primal_shapes(self, args: tuple, kwargs: dict) -> list:
        """Return, by parameter, the shape of each differentiated numeric
        argument, or None where the pullback's cotangent is not checked.

        The pullback keeps these shapes instead of the arguments, so an
        argument the VJP itself does not keep is freed after the forward pass.
        """
        arguments = self._arguments(args, kwargs)
        shapes = [None] * len(arguments)
        for index in self.wrt:
            if _is_numeric(arguments[index]):
                shapes[index] = np.shape(arguments[index])
        return shapes

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
            shapes = self._primal_shapes(args, kwargs)

            def registered_pullback(cotangent):
                cotangents = self.spread(user_pullback(cotangent), shapes)
                return tuple(cotangents[p] for p in positions)

            return value, registered_pullback

        return registered_vjp

    def bound_vjp_for(self, instance, wrt: tuple[str, ...]):
        """Return `vjp_for(wrt)` of a method, bound to `instance`."""
        vjp = self.vjp_for(wrt)
        return lambda *args, **kwargs: vjp(instance, *args, **kwargs)

    def spread(self, returned, shapes: list) -> list:
        """Check the user's cotangents against the primal `shapes` and place
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
                    f"cotangents (for {names}), but it returned {got}"
                )
            pieces = returned
        cotangents = [None] * len(self.param_names)
        for index, piece in zip(self.wrt, pieces, strict=True):
            self._check_shape(piece, shapes[index], self.param_names[index])
            cotangents[index] = piece
        return cotangents

    def _check_shape(self, cotangent, shape, name: str) -> None:
        if cotangent is None or shape is None:
            return
        if not _is_numeric(cotangent):
            raise self.error(
                f"returned a {_describe(cotangent)} as the cotangent of {name!r}, "
                f"which is a number or array of shape {shape}; return an array or "
                "number of the same shape"
            )
        if np.shape(cotangent) != shape:
            raise self.error(
                f"returned a cotangent of shape {np.shape(cotangent)} for {name!r}, "
                f"but {name!r} has shape {shape}; return one of the "
                "parameter's shape"
            )
