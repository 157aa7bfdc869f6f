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
    value's fingerprint, which replaces the value so the caller need not
    keep it.
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
        raise RecomputationError(
            f"the checkpointed function {_describe(function)} returned a "
            "different value when the pullback recomputed it, so its gradient "
            "would be wrong. A "
            "checkpointed function must be pure: pass any NumPy Generator it "
            "draws from as an argument (pullback replays those), and avoid "
            "global random state and other side effects"
        )
    return pullback


def _describe(function) -> str:
    """Return `function`'s name and, for Python code, where it is defined."""
    name = getattr(function, "__qualname__", None) or repr(function)
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    if code is None:
        return name
    return f"{name} ({code.co_filename}:{code.co_firstlineno})"


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

    It keeps the shape, 64 evenly spaced elements, the sum, the sum of
    squares and a position-weighted sum, so the forward value itself can be
    freed as soon as the forward pass is done with it. A different draw of
    random numbers or a changed global changes the sums or the samples, and
    a reordering of elements changes the weighted sum. A change smaller than
    about 1e-9 of sqrt(size * sum of squares), a bound on the sum of the
    absolute values, may pass. For an array of a million elements near 1,
    that is a change of about 1e-3.
    """

    __slots__ = ("shape", "sample", "total", "energy", "weighted", "weight_norm")

    def __init__(self, array: np.ndarray):
        flat = array.ravel(order="K")  # A view, since the array is contiguous.
        self.shape = array.shape
        # Sampled in C order, so the same values in another layout match.
        self.sample = array.flat[::max(1, array.size // _SAMPLE_COUNT)]
        self.total = float(np.sum(flat))
        # Not np.dot: see _weighted_sum for why einsum.
        self.energy = float(np.einsum("i,i->", flat, flat))
        self.weighted, self.weight_norm = _weighted_sum(array)

    def is_finite(self) -> bool:
        """Return whether the sums are finite, so that comparing them detects changes."""
        return all(math.isfinite(s) for s in (self.total, self.energy, self.weighted))

    def matches(self, array) -> bool:
        if type(array) is not np.ndarray or array.dtype != np.float64:
            return False
        if array.shape != self.shape:
            return False
        other = Fingerprint(array if _contiguous(array) else array.copy(order="K"))
        if not _same_value(other.sample, self.sample):
            return False
        size = max(1, array.size)
        energy = max(self.energy, other.energy)
        # The sum of |x| is at most sqrt(size * energy), which scales the
        # tolerance of a sum that may cancel to near zero. The weighted sum
        # is scaled the same way by the norm of its weights.
        return (_close(other.total, self.total,
                       _RELATIVE_TOLERANCE * math.sqrt(size * energy))
                and _close(other.energy, self.energy, _RELATIVE_TOLERANCE * energy)
                and _close(other.weighted, self.weighted,
                           _RELATIVE_TOLERANCE * self.weight_norm * math.sqrt(energy)))


# Elements per block of the position-weighted sum. One block of weights is
# kept (512 KiB), and a block's weights are scaled by a factor of its own.
_BLOCK_SIZE = 1 << 16
_block_weights: np.ndarray | None = None

# The fractional part of k times this is spread evenly over [0, 1) and
# differs for every block index k.
_GOLDEN_RATIO_FRACTION = (math.sqrt(5.0) - 1.0) / 2.0


def _weighted_sum(array: np.ndarray) -> tuple[float, float]:
    """Return the sum of w_i * x_i over the array in C order, and the norm of w.

    The weights are fixed pseudo-random numbers, so moving an element to
    another position changes the sum, where it leaves the plain sums as they
    are. The array is read one block at a time, so no temporary is larger
    than a block. `einsum` computes each dot product without BLAS: on a
    loaded 2-core machine, OpenBLAS's threaded `np.dot` took 4 to 12 ms for
    a 1 MiB array against 0.2 ms for `einsum` (NumPy 2.4.6).
    """
    global _block_weights
    if _block_weights is None:
        _block_weights = np.random.default_rng(0x5EED).uniform(-1.0, 1.0, _BLOCK_SIZE)
    # Slices of `array.flat` are copies in C order, as the samples are.
    flat = array.reshape(-1) if array.flags.c_contiguous else array.flat
    total = 0.0
    weight_energy = 0.0
    for block, start in enumerate(range(0, array.size, _BLOCK_SIZE)):
        values = flat[start:start + _BLOCK_SIZE]
        weights = _block_weights[:values.size]
        scale = 1.0 + (block * _GOLDEN_RATIO_FRACTION) % 1.0
        total += scale * float(np.einsum("i,i->", values, weights))
        weight_energy += scale * scale * float(np.einsum("i,i->", weights, weights))
    return total, math.sqrt(weight_energy)


def fingerprint(value):
    """Return what a recomputation of `value` is checked against.

    A contiguous float64 array of 64 KiB or more gets a `Fingerprint`. A
    tuple, list or dict gets one of the same kind holding its items'
    fingerprints. Anything else is kept as it is. So is a large array with a
    NaN, an infinity or values whose squares overflow, because its sums are
    not finite, and two such sums compare equal whatever else changed.
    """
    if type(value) is tuple or type(value) is list:
        return type(value)(fingerprint(item) for item in value)
    if type(value) is dict:
        return {key: fingerprint(item) for key, item in value.items()}
    if (type(value) is np.ndarray and value.dtype == np.float64
            and value.nbytes >= _FINGERPRINT_MIN_BYTES and _contiguous(value)):
        summary = Fingerprint(value)
        if summary.is_finite():
            return summary
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
    if isinstance(b, dict):
        # Compared item by item: `==` on dicts of arrays raises ValueError.
        return (
            isinstance(a, dict)
            and a.keys() == b.keys()
            and all(_same_value(a[key], b[key]) for key in b)
        )
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
