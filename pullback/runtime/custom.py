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
                 wrt: tuple[int, ...], site: str):
        self.function = function
        self.vjp = vjp
        self.param_names = param_names
        self.wrt = wrt
        self.site = site
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

    def vjp_for(self, wrt: tuple[str, ...]):
        """Return a VJP whose pullback returns one cotangent per name in `wrt`."""
        positions = [self.param_names.index(name) for name in wrt]

        def registered_vjp(*args, **kwargs):
            result = self.vjp(*args, **kwargs)
            if not (isinstance(result, tuple) and len(result) == 2
                    and callable(result[1])):
                raise self.error(
                    "must return (value, pullback) with a callable pullback, but "
                    f"returned {_describe(result)}"
                )
            value, user_pullback = result
            arguments = self._arguments(args, kwargs)

            def registered_pullback(cotangent):
                cotangents = self.spread(user_pullback(cotangent), arguments)
                return tuple(cotangents[p] for p in positions)

            return value, registered_pullback

        return registered_vjp

    def bound_vjp_for(self, instance, wrt: tuple[str, ...]):
        """Return `vjp_for(wrt)` of a method, bound to `instance`."""
        vjp = self.vjp_for(wrt)
        return lambda *args, **kwargs: vjp(instance, *args, **kwargs)

    def spread(self, returned, arguments: list) -> list:
        """Check the user's cotangents and place them by parameter."""
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
            self._check_shape(piece, arguments[index], self.param_names[index])
            cotangents[index] = piece
        return cotangents

    def _check_shape(self, cotangent, primal, name: str) -> None:
        if cotangent is None or not _is_numeric(primal):
            return
        if not _is_numeric(cotangent):
            raise self.error(
                f"returned a {_describe(cotangent)} as the cotangent of {name!r}, "
                f"which is a {_describe(primal)}; return an array or number of "
                "the same shape"
            )
        if np.shape(cotangent) != np.shape(primal):
            raise self.error(
                f"returned a cotangent of shape {np.shape(cotangent)} for {name!r}, "
                f"but {name!r} has shape {np.shape(primal)}; return one of the "
                "parameter's shape"
            )
