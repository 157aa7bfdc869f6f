"""Check pullbacks and gradients against central finite differences.

Each check draws a random direction `v` for the floating arguments and a
random cotangent `u` for the result, and asserts

    <pullback(u), v>  ==  <u, (f(args + eps v) - f(args - eps v)) / (2 eps)>

within tolerance. The right side is the Jacobian-vector product `<u, J v>`
by central differences, whose error is second order in `eps`. The left side
is `<J^T u, v>`, so the check is also the inner-product identity. One random
direction tests every column of the Jacobian at once, as HIPS autograd's
checker does. Each cotangent must also have its primal's shape and floating
dtype.

- `check_vjp(function, pullback, args)` checks a pullback you already have,
  for example one built from a rule table.
- `check_gradient(function, *args, wrt=None, **kwargs)` runs
  `pullback.gradient` on a scalar-valued function and checks its result.
- `check_pullback(function, *args, wrt=None)` runs
  `pullback.value_and_pullback` and checks the pullback.

Arguments that are floats, floating NumPy scalars or arrays, or lists and
tuples of those are perturbed; anything else (ints, bools, strings) is held
fixed and its cotangent is not checked.
"""

from __future__ import annotations

import inspect

import numpy as np


def is_floating(value) -> bool:
    """Return whether `value` is a float, a floating NumPy value, or a list or
    tuple containing one."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return True
    if isinstance(value, np.ndarray | np.generic):
        return np.issubdtype(value.dtype, np.floating)
    if isinstance(value, list | tuple):
        return any(is_floating(item) for item in value)
    return False


def random_like(value, rng):
    """Return a random tangent with `value`'s structure, shape and dtype, or
    None where `value` is not floating."""
    if isinstance(value, list | tuple):
        return type(value)(random_like(item, rng) for item in value)
    if not is_floating(value):
        return None
    if isinstance(value, float):
        return float(rng.standard_normal())
    sample = rng.standard_normal(np.shape(value)).astype(value.dtype)
    return sample if isinstance(value, np.ndarray) else value.dtype.type(sample)


def step(value, direction, scale: float):
    """Return `value + scale * direction`, keeping structure and dtype."""
    if direction is None:
        return value
    if isinstance(value, list | tuple):
        return type(value)(
            step(item, d, scale) for item, d in zip(value, direction, strict=True)
        )
    if isinstance(value, np.ndarray):
        # Keep the memory layout: ravel(order="K") and friends depend on it.
        moved = np.empty_like(value)
        np.copyto(moved, value + scale * direction, casting="unsafe")
        return moved
    if isinstance(value, np.generic):
        return value.dtype.type(value + scale * direction)
    return float(value + scale * direction)


def difference(plus, minus, eps: float):
    """Return `(plus - minus) / (2 eps)` in float64, through tuples and lists."""
    if isinstance(plus, list | tuple):
        return [difference(p, m, eps) for p, m in zip(plus, minus, strict=True)]
    if not is_floating(plus) and not isinstance(plus, int | np.integer):
        return None
    high = np.asarray(plus, dtype=np.float64)
    low = np.asarray(minus, dtype=np.float64)
    return (high - low) / (2 * eps)


def inner(a, b) -> float:
    """Return the sum of elementwise products of two matching structures;
    None on either side counts as zero."""
    if a is None or b is None:
        return 0.0
    if isinstance(a, list | tuple):
        return sum(inner(x, y) for x, y in zip(a, b, strict=True))
    return float(
        np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64))
    )


def check_structure(cotangent, primal, where: str) -> None:
    """Assert that `cotangent` has `primal`'s structure, shape and floating dtype.

    None is accepted as the symbolic zero. A Python float is weakly typed, as
    in NumPy's promotion rules, so its cotangent may be a scalar of any
    floating dtype: the cotangent of `s` in `s * x32` is float32.
    """
    if cotangent is None or not is_floating(primal):
        return
    if isinstance(primal, list | tuple):
        assert isinstance(cotangent, list | tuple), (
            f"{where}: the cotangent of a {type(primal).__name__} is a "
            f"{type(cotangent).__name__}"
        )
        assert len(cotangent) == len(primal), (
            f"{where}: {len(cotangent)} cotangents for {len(primal)} elements"
        )
        for i, (c, p) in enumerate(zip(cotangent, primal, strict=True)):
            check_structure(c, p, f"{where}[{i}]")
        return
    assert np.shape(cotangent) == np.shape(primal), (
        f"{where}: cotangent shape {np.shape(cotangent)} != primal shape "
        f"{np.shape(primal)}"
    )
    actual = np.result_type(cotangent)
    if isinstance(primal, float):
        assert np.issubdtype(actual, np.floating), (
            f"{where}: cotangent dtype {actual} for a float is not floating"
        )
        return
    expected = np.result_type(primal)
    assert actual == expected, (
        f"{where}: cotangent dtype {actual} != primal dtype {expected}"
    )


def _compare(call, args, positions, cotangents, cotangent, directions, eps, rtol, atol):
    plus = call([step(a, d, eps) for a, d in zip(args, directions, strict=True)])
    minus = call([step(a, d, -eps) for a, d in zip(args, directions, strict=True)])
    forward = inner(cotangent, difference(plus, minus, eps))
    backward = sum(
        inner(c, directions[position])
        for position, c in zip(positions, cotangents, strict=True)
    )
    tolerance = atol + rtol * max(abs(forward), abs(backward))
    assert abs(forward - backward) <= tolerance, (
        f"<pullback(u), v> = {backward!r} but finite differences give "
        f"<u, J v> = {forward!r} (difference {abs(forward - backward):.3g}, "
        f"tolerance {tolerance:.3g})"
    )
    return forward


def check_vjp(
    function,
    pullback,
    args,
    *,
    wrt=None,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    seed: int = 0,
    cotangent=None,
    check_dtypes: bool = True,
) -> float:
    """Assert that `pullback` is the vector-Jacobian product of `function` at `args`.

    `function(*args)` returns the value. `pullback(u)` returns the cotangents
    of the arguments at the indices in `wrt` (default: all), as a tuple, or
    bare when `wrt` has one entry. A cotangent of None is a symbolic zero.
    `cotangent` fixes `u` instead of drawing it.

    Returns the directional derivative `<u, J v>`. Raises AssertionError
    with both sides of the identity on a mismatch.

    Example::

        check_vjp(np.sin, lambda u: (u * np.cos(x),), (x,))
    """
    rng = np.random.default_rng(seed)
    args = list(args)
    positions = tuple(range(len(args))) if wrt is None else tuple(wrt)
    value = function(*args)
    if cotangent is None:
        cotangent = random_like(value, rng)
    directions = [
        random_like(a, rng) if i in positions else None for i, a in enumerate(args)
    ]
    cotangents = pullback(cotangent)
    if len(positions) == 1 and not (
        isinstance(cotangents, tuple) and len(cotangents) == 1
    ):
        cotangents = (cotangents,)
    assert len(cotangents) == len(positions), (
        f"the pullback returned {len(cotangents)} cotangents "
        f"for {len(positions)} arguments"
    )
    if check_dtypes:
        for position, c in zip(positions, cotangents, strict=True):
            check_structure(c, args[position], f"argument {position}")
    return _compare(
        lambda values: function(*values),
        args,
        positions,
        cotangents,
        cotangent,
        directions,
        eps,
        rtol,
        atol,
    )


def _bind(function, args, kwargs):
    """Bind a call to `function`'s named parameters, defaults included."""
    signature = inspect.signature(function)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    names = [
        name
        for name, parameter in signature.parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    values = [bound.arguments[name] for name in names]

    def call(new_values):
        arguments = dict(zip(names, new_values, strict=True))
        positional = [
            arguments.pop(name)
            for name, parameter in signature.parameters.items()
            if parameter.kind == parameter.POSITIONAL_ONLY
        ]
        return function(*positional, **arguments)

    return names, values, call


def _wrt_positions(wrt, names) -> tuple[tuple[int, ...], bool]:
    """Return the parameter positions `wrt` selects and whether the result is bare."""
    if wrt is None:
        return tuple(range(len(names))), len(names) == 1
    single = isinstance(wrt, str | int)
    items = [wrt] if single else list(wrt)
    positions = tuple(
        names.index(w) if isinstance(w, str) else w % len(names) for w in items
    )
    return positions, single or len(positions) == 1


def check_gradient(
    function, *args, wrt=None, eps=1e-6, rtol=1e-5, atol=1e-8, seed=0, **kwargs
):
    """Run `pullback.gradient(function, wrt)` on the arguments and check it.

    Keyword arguments other than the tolerances go to `function`. Returns
    the gradient as `pullback.gradient` does: bare for one parameter, a tuple
    for several.
    """
    import pullback as library

    names, values, call = _bind(function, args, kwargs)
    positions, bare = _wrt_positions(wrt, names)
    gradients = library.gradient(function, wrt=wrt)(*args, **kwargs)
    listed = (gradients,) if bare else tuple(gradients)
    assert len(listed) == len(positions), (
        f"pullback.gradient returned {len(listed)} gradients "
        f"for {len(positions)} parameters"
    )
    for position, gradient_of_arg in zip(positions, listed, strict=True):
        check_structure(
            gradient_of_arg, values[position], f"parameter {names[position]!r}"
        )
    rng = np.random.default_rng(seed)
    directions = [
        random_like(v, rng) if i in positions else None for i, v in enumerate(values)
    ]
    _compare(call, values, positions, listed, 1.0, directions, eps, rtol, atol)
    return gradients


def check_pullback(
    function, *args, wrt=None, eps=1e-6, rtol=1e-5, atol=1e-8, seed=0, **kwargs
):
    """Run `pullback.value_and_pullback(function, *args, wrt=wrt)` and check the
    pullback at a random cotangent. Returns `(value, cotangents)`."""
    import pullback as library

    names, values, call = _bind(function, args, kwargs)
    positions, bare = _wrt_positions(wrt, names)
    value, pullback_of_function = library.value_and_pullback(
        function, *args, wrt=wrt, **kwargs
    )
    rng = np.random.default_rng(seed)
    cotangent = random_like(value, rng)
    cotangents = pullback_of_function(cotangent)
    listed = (cotangents,) if bare else tuple(cotangents)
    assert len(listed) == len(positions), (
        f"the pullback returned {len(listed)} cotangents "
        f"for {len(positions)} parameters"
    )
    for position, c in zip(positions, listed, strict=True):
        check_structure(c, values[position], f"parameter {names[position]!r}")
    directions = [
        random_like(v, rng) if i in positions else None for i, v in enumerate(values)
    ]
    _compare(call, values, positions, listed, cotangent, directions, eps, rtol, atol)
    return value, cotangents
