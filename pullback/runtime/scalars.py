"""Adjoint helpers for Python builtins and the `math` module.

A sequence argument (the list passed to `sum` or `math.prod`) gets a sequence
of the same type with one cotangent per element.
"""

from __future__ import annotations

import math

from pullback.runtime.arrays import unbroadcast


def _like_sequence(cotangents: list, primal):
    return tuple(cotangents) if isinstance(primal, tuple) else cotangents


def sum_adjoint(cotangent, items):
    """Adjoint of builtin `sum(items)` or `math.fsum(items)`: the cotangent for
    every item, summed back over the axes along which the item broadcast."""
    return _like_sequence([unbroadcast(cotangent, item) for item in items], items)


def extremum_share(cotangent, result, args, index):
    """Adjoint of builtin `max(*args)` or `min(*args)` for `args[index]`.

    With one argument it is an iterable, and the adjoint is a sequence of
    cotangents for its elements. The elements equal to the result share the
    cotangent equally; the others get zero.
    """
    if len(args) == 1:
        items = args[0]
        ties = sum(1 for item in items if item == result)
        shares = [
            cotangent / ties if item == result else 0.0 * cotangent for item in items
        ]
        return _like_sequence(shares, items)
    if args[index] != result:
        return 0.0 * cotangent
    return cotangent / sum(1 for item in args if item == result)


def sequence_prod_adjoint(cotangent, items, start=1):
    """Adjoint of `math.prod(items, start=start)` for the items.

    Each item gets the cotangent times the product of the other factors,
    computed from prefix and suffix products so zeros need no division.
    """
    items = list(items) if not isinstance(items, list | tuple) else items
    before = [start]
    for item in items[:-1]:
        before.append(before[-1] * item)
    after = [1]
    for item in reversed(items[1:]):
        after.append(after[-1] * item)
    after.reverse()
    return _like_sequence(
        [cotangent * left * right for left, right in zip(before, after, strict=True)],
        items,
    )


def dist_adjoint(cotangent, result, p, q):
    """Adjoint of `math.dist(p, q)` for `p`; swap `p` and `q` for `q`."""
    return _like_sequence(
        [cotangent * (a - b) / result for a, b in zip(p, q, strict=True)], p
    )


def digamma(x: float) -> float:
    """The digamma function, the derivative of `math.lgamma`, for a real `x`.

    Uses the reflection formula below 1/2, the recurrence up to 6, and the
    asymptotic series there; the absolute error is below about 1e-12. Poles
    (0, -1, -2, ...) return NaN.
    """
    x = float(x)
    if x <= 0 and x == math.floor(x):
        return math.nan
    if x < 0.5:
        return digamma(1 - x) - math.pi / math.tan(math.pi * x)
    shift = 0.0
    while x < 6:
        shift -= 1 / x
        x += 1
    f = 1 / (x * x)
    # psi(x) ~ ln x - 1/(2x) - sum_k B_2k / (2k x^2k), Bernoulli numbers B_2..B_10.
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))
    return shift + math.log(x) - 0.5 / x - series
