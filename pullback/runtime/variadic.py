"""Calls whose positional arguments fill a `*name` parameter, or come from `*xs`.

A VJP's pullback returns one cotangent per parameter it differentiates, and
the cotangent of a `*name` parameter is a tuple with one item per extra
positional argument. These helpers translate between those parameters and
the positions of the arguments at a call.
"""

from __future__ import annotations

import ast

from pullback.runtime import markers, registry
from pullback.runtime.structure import like_sequence, require_sequence


def positional_layout(function) -> tuple[tuple[str, ...], str | None]:
    """Return the names of `function`'s positional parameters and of its `*name` one.

    A bound method leaves out its instance. A function with a registered
    derivative has the parameters of the registration.
    """
    return _layouts.get(function, _positional_layout)


# Function -> (positional parameter names, name of the *name parameter or None).
_layouts = registry.GenerationCache()


def _positional_layout(function) -> tuple[tuple[str, ...], str | None]:
    record = registry.custom_derivative(function)
    if record is not None:
        return (tuple(record.param_names), None)
    positional = []
    variadic = None
    for parameter in markers.call_signature(function).parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional.append(parameter.name)
        elif parameter.kind == parameter.VAR_POSITIONAL:
            variadic = parameter.name
    return (tuple(positional), variadic)


def wrt_for_positions(function, positions) -> tuple[tuple[str, ...], object]:
    """Return the parameters that receive the arguments at `positions`, and a spreader.

    Positions count the positional arguments of a call from 0. The spreader
    takes the pullback's cotangents, one per returned name, and returns one
    per position, taking items out of the `*name` parameter's tuple. When no
    position reaches that parameter the spreader is None: the cotangents are
    already one per position. A position beyond the parameters of a function
    without a `*name` parameter gets no name, and the call raises TypeError.
    """
    positional, variadic = positional_layout(function)
    count = len(positional)
    names = [positional[p] for p in positions if p < count]
    extra = [p for p in positions if p >= count]
    if not extra or variadic is None:
        return tuple(names), None
    names.append(variadic)

    def spread(cotangents):
        fixed = cotangents[:-1]
        items = cotangents[-1]
        return (*fixed, *(items[p - count] for p in extra))

    return tuple(names), spread


def starred_vjp(function, *keywords: str, arguments: bool = True, at=None):
    """Return the VJP of `function(*values, **kwargs)`, called as `vjp(values, **kwargs)`.

    Its pullback returns the cotangent of `values`, a sequence of the same
    kind (left out when `arguments` is false), then one cotangent per
    keyword argument named in `keywords`. `at` is the starred argument's
    site in the user's source, as `require_sequence` takes it.
    """

    def vjp(values, **kwargs):
        require_sequence(values, at)
        names, spread = (), None
        if arguments:
            names, spread = wrt_for_positions(function, range(len(values)))
        if kwargs and not set(names).isdisjoint(kwargs):
            # `f(*xs, b=v)` where an item of xs also fills b: Python's error,
            # not a `wrt` that names b twice.
            mismatch = _mismatch(function, values, kwargs, at)
            if mismatch is not None:
                raise mismatch
        if not names and not keywords:
            # No argument reaches a parameter: `f(*())`, or more arguments
            # than `f` takes. The plain call returns the value, or raises
            # Python's own TypeError for the call.
            value = function(*values, **kwargs)
            return value, lambda cotangent: (like_sequence([None] * len(values), values),)
        try:
            vjp_of_function = registry.vjp_of(function, *names, *keywords)
            value, pullback = vjp_of_function(*values, **kwargs)
        except TypeError:
            mismatch = _mismatch(function, values, kwargs, at)
            if mismatch is None:
                raise
            raise mismatch from None

        def starred_pullback(cotangent):
            cotangents = pullback(cotangent)
            if not arguments:
                return cotangents
            own = cotangents[: len(names)]
            per_position = spread(own) if spread is not None else own
            return (like_sequence(per_position, values), *cotangents[len(names) :])

        return value, starred_pullback

    return vjp


def _mismatch(function, values, kwargs: dict, site) -> TypeError | None:
    """Return Python's TypeError for `function(*values, **kwargs)`, or None when it binds.

    The VJP of `function` takes the same arguments, but its TypeError would
    name the generated function instead of the user's.
    """
    try:
        signature = markers.call_signature(function)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*values, **kwargs)
    except TypeError as error:
        reason = str(error)
    else:
        return None
    name = getattr(function, "__qualname__", repr(function))
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values()):
        takes = f"at least {required}"
    elif required == len(positional):
        takes = str(required)
    else:
        takes = f"from {required} to {len(positional)}"
    source, fills, passes = "a starred argument", "fills", "passes"
    advice = "pass a sequence with as many items"
    if site is not None:
        text, filename, line, column = site
        source = f"the starred argument {text} at {filename}:{line}:{column}"
        if len(ast.parse(f"f({text})", mode="eval").body.args) > 1:
            # A call such as f(*a, *b) is named by its whole argument list.
            source = f"the arguments {text} at {filename}:{line}:{column}"
            fills, passes = "fill", "pass"
            advice = "pass sequences with as many items in all"
    if "multiple values" in reason:
        return TypeError(
            f"{name}() got {reason}: {source} {fills} it by "
            "position and the call also passes it by keyword; pass it one way"
        )
    return TypeError(
        f"{name}() takes {takes} positional arguments, but {source} {passes} "
        f"{len(values)} ({reason}); {advice}"
    )
