"""Recomputation in pullbacks: the runtime half of `checkpointed`."""

from __future__ import annotations

import numpy as np

from pullback.errors import PullbackError
from pullback.runtime.markers import checkpointed_target, random_state, set_random_state
from pullback.runtime.registry import single_use_vjp_of


class RecomputationError(PullbackError, RuntimeError):
    """A checkpointed function returned a different value when recomputed."""


def recompute(function, wrt: tuple, states, forward_value, *args, **kwargs):
    """Run `function`'s VJP with respect to `wrt` again and return its pullback.

    The pullback is single-use: generated code calls it once and drops it, so
    it deletes each recomputed value after its last use.

    The NumPy random generators that `generator_states` found in the
    arguments are rewound to their state before the forward call, so the
    recomputation draws the same numbers, and are left afterwards as the
    pullback found them. The recomputed value must
    match the forward value: otherwise the pullback would differentiate a
    different computation, so the mismatch raises.
    """
    function = checkpointed_target(function) or function
    resumed = None
    if states:
        resumed = [(generator, random_state(generator)) for generator, _ in states]
        for generator, state in states:
            set_random_state(generator, state)
    try:
        value, pullback = single_use_vjp_of(function, *wrt)(*args, **kwargs)
    finally:
        if resumed:
            for generator, state in resumed:
                set_random_state(generator, state)
    if not _same_value(value, forward_value):
        name = getattr(function, "__qualname__", repr(function))
        raise RecomputationError(
            f"the checkpointed function {name} returned a different value when "
            "the pullback recomputed it, so its gradient would be wrong. A "
            "checkpointed function must be pure: pass any NumPy Generator it "
            "draws from as an argument (pullback replays those), and avoid "
            "global random state and other side effects"
        )
    return pullback


def _same_value(a, b) -> bool:
    if isinstance(a, tuple | list):
        return (
            isinstance(b, tuple | list)
            and len(a) == len(b)
            and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if a is b:
        return True
    try:
        if np.shape(a) != np.shape(b):
            return False
        # A pure function recomputes the same bits, which the plain
        # comparison confirms with one boolean temporary. The NaN-aware and
        # tolerant comparisons copy both arrays, so they run only when the
        # bits differ.
        if np.array_equal(a, b):
            return True
        if np.array_equal(a, b, equal_nan=True):
            return True
        return bool(np.allclose(a, b, rtol=1e-9, atol=0.0, equal_nan=True))
    except TypeError:
        return bool(a == b)
