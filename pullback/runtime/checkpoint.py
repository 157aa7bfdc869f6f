"""Recomputation in pullbacks: the runtime half of `checkpointed`."""

from __future__ import annotations

import math

import numpy as np

from pullback.errors import PullbackError
from pullback.runtime.markers import (
    checkpointed_target,
    generator_states,
    random_state,
    set_random_state,
)
from pullback.runtime.registry import primal_of, single_use_vjp_of


class RecomputationError(PullbackError, RuntimeError):
    """A checkpointed function returned a different value when recomputed."""


def run_checkpointed(function, *args, **kwargs):
    """Run a checkpointed call's forward pass; return its value and its record.

    The function runs compiled with respect to no parameter, so each local
    is freed after its last use, where the function as written keeps them
    all until it returns. The record is what `recompute` needs later: the
    state of each NumPy random generator the arguments reach, and the
    value's fingerprint, which stands in for the value so the caller need
    not keep it.
    """
    states = generator_states(*args, **kwargs)
    value, _ = primal_of(checkpointed_target(function) or function)(*args, **kwargs)
    return value, (states, fingerprint(value))


def recomputing_vjp(function, wrt: tuple):
    """Return a VJP of checkpointed `function` whose pullback recomputes it.

    Generated code checkpoints the calls it makes by name itself. This VJP
    does the same for calls it reaches only at run time, such as a layer's
    checkpointed `__call__`.
    """

    def vjp(*args, **kwargs):
        value, record = run_checkpointed(function, *args, **kwargs)

        def recomputing_pullback(cotangent):
            return recompute(function, wrt, record, *args, **kwargs)(cotangent)

        return value, recomputing_pullback

    return vjp


def recompute(function, wrt: tuple, record, *args, **kwargs):
    """Run `function`'s VJP with respect to `wrt` again and return its pullback.

    `record` is what `run_checkpointed` returned with the forward value. The
    pullback is single-use: generated code calls it once and drops it, so
    it deletes each recomputed value after its last use.

    The NumPy random generators that `generator_states` found in the
    arguments are rewound to their state before the forward call, so the
    recomputation draws the same numbers, and are left afterwards as the
    pullback found them. The recomputed value must match the forward value
    (its fingerprint, for a large array): otherwise the pullback would
    differentiate a different computation, so the mismatch raises.
    """
    states, forward_value = record
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


# Arrays of this many bytes or more are checked by fingerprint; smaller
# ones are kept whole, which costs less than a fingerprint's NumPy calls.
_FINGERPRINT_MIN_BYTES = 1 << 16

# Elements of a fingerprinted array kept as they are, evenly spaced.
_SAMPLE_COUNT = 64

# The relative difference a recomputation may show: last-bit differences
# of multithreaded BLAS reductions pass, a different computation does not.
_RELATIVE_TOLERANCE = 1e-9


class Fingerprint:
    """A summary of a large float64 array that a recomputation is checked against.

    It keeps the shape, 64 evenly spaced elements, the sum and the sum of
    squares, so the forward value itself can be freed as soon as the
    forward pass is done with it. A different draw of random numbers, a
    changed global or a permutation changes the sums or the samples; a
    change to a few elements smaller than about 1e-9 of the array's norm
    may pass.
    """

    __slots__ = ("shape", "sample", "total", "energy")

    def __init__(self, array: np.ndarray):
        flat = array.ravel(order="K")  # A view, since the array is contiguous.
        self.shape = array.shape
        # Sampled in C order, so the same values in another layout match.
        self.sample = array.flat[::max(1, array.size // _SAMPLE_COUNT)]
        self.total = float(np.sum(flat))
        self.energy = float(np.dot(flat, flat))

    def matches(self, array) -> bool:
        if type(array) is not np.ndarray or array.dtype != np.float64:
            return False
        if array.shape != self.shape:
            return False
        other = Fingerprint(array if _contiguous(array) else array.copy(order="K"))
        if not _same_value(other.sample, self.sample):
            return False
        size = max(1, array.size)
        # The sum of |x| is at most sqrt(size * energy), which scales the
        # tolerance of a sum that may cancel to near zero.
        scale = math.sqrt(size * max(self.energy, other.energy))
        return (_close(other.total, self.total, _RELATIVE_TOLERANCE * scale)
                and _close(other.energy, self.energy,
                           _RELATIVE_TOLERANCE * max(self.energy, other.energy)))


def fingerprint(value):
    """Return what a recomputation of `value` is checked against.

    A contiguous float64 array of 64 KiB or more gets a `Fingerprint`, and a
    tuple or list of values a tuple or list of theirs; anything else is
    kept as it is.
    """
    if type(value) is tuple or type(value) is list:
        return type(value)(fingerprint(item) for item in value)
    if (type(value) is np.ndarray and value.dtype == np.float64
            and value.nbytes >= _FINGERPRINT_MIN_BYTES and _contiguous(value)):
        return Fingerprint(value)
    return value


def _contiguous(array: np.ndarray) -> bool:
    return array.flags.c_contiguous or array.flags.f_contiguous


def _close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b) or math.isnan(tolerance):
        return a == b
    return abs(a - b) <= tolerance


def _same_value(a, b) -> bool:
    """Return whether recomputed `a` matches `b`, a forward value or its fingerprint."""
    if isinstance(b, Fingerprint):
        return b.matches(a)
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
        return bool(np.allclose(a, b, rtol=_RELATIVE_TOLERANCE, atol=0.0, equal_nan=True))
    except TypeError:
        return bool(a == b)
