"""Memory of recomputation: single-use pullbacks, dead forward locals, and
pullbacks that leave the caller's arrays alone.

Memory is measured with `tracemalloc` and stated in arrays of the input's
size, so the checks do not depend on the machine.
"""

import tracemalloc

import numpy as np
import pytest
from gradcheck import check_gradient, check_pullback

from pullback import adjoint_source, checkpointed, gradient, value_and_pullback
from pullback.runtime.registry import single_use_vjp_of, vjp_of

# 512 KiB of float64. NumPy reuses the temporaries of an expression only for
# large arrays: at 128 KiB the measured peaks are one array higher.
ELEMENTS = 65536


def block(x):
    a = np.sin(x)
    b = a * x
    c = np.tanh(b)
    return c + x


block_checkpointed = checkpointed(block)


def chain_checkpointed(x):
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    return np.sum(x)


def chain_plain(x):
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    return np.sum(x)


def input_array(seed=0):
    return np.random.default_rng(seed).standard_normal(ELEMENTS)


def peak_in_arrays(call, x) -> float:
    """Run `call()` once to compile, then return its traced peak in arrays of x's size."""
    call()
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / x.nbytes


# Gradients against finite differences.


def test_chain_checkpointed_differences():
    check_gradient(chain_checkpointed, input_array()[:64])


def test_chain_checkpointed_matches_plain():
    x = input_array()
    np.testing.assert_allclose(gradient(chain_checkpointed)(x), gradient(chain_plain)(x),
                               rtol=1e-12, atol=0.0)


def test_single_use_pullback_differences():
    x = input_array()[:32]
    value, pullback = single_use_vjp_of(block, "x")(x)
    np.testing.assert_array_equal(value, block(x))
    direction = np.random.default_rng(1).standard_normal(x.shape)
    cotangent = np.random.default_rng(2).standard_normal(x.shape)
    (x_bar,) = pullback(cotangent)
    step = 1e-6
    difference = (block(x + step * direction) - block(x - step * direction)) / (2 * step)
    assert np.vdot(x_bar, direction) == pytest.approx(np.vdot(cotangent, difference),
                                                      rel=1e-7)


# Single-use and reusable pullbacks.


def test_single_use_pullback_runs_once():
    x = input_array()[:8]
    _, pullback = single_use_vjp_of(block, "x")(x)
    pullback(np.ones_like(x))
    # The first call deleted the recomputed values it read.
    with pytest.raises(NameError):
        pullback(np.ones_like(x))


def test_single_use_matches_reusable():
    x = input_array()[:8]
    cotangent = np.linspace(-1.0, 1.0, x.size)
    _, reusable = vjp_of(block, "x")(x)
    _, single_use = single_use_vjp_of(block, "x")(x)
    np.testing.assert_array_equal(single_use(cotangent)[0], reusable(cotangent)[0])


def test_reusable_pullback_twice_same():
    x = input_array()[:8]
    cotangent = np.linspace(-1.0, 1.0, x.size)
    _, pullback = value_and_pullback(chain_checkpointed_array, x)
    first = pullback(cotangent)
    second = pullback(cotangent)
    np.testing.assert_array_equal(first, second)


def test_adjoint_source_reusable():
    source = adjoint_source(block)
    assert "nonlocal" not in source


# Pullbacks leave the caller's arrays alone.


def chain_checkpointed_array(x):
    y = block_checkpointed(x)
    return block_checkpointed(y)


def test_user_cotangent_unchanged():
    x = input_array()[:8]
    cotangent = np.linspace(-1.0, 1.0, x.size)
    original = cotangent.copy()
    _, pullback = value_and_pullback(chain_checkpointed_array, x)
    pullback(cotangent)
    np.testing.assert_array_equal(cotangent, original)


def test_user_input_unchanged():
    x = input_array()[:8]
    original = x.copy()
    gradient(chain_checkpointed)(x)
    np.testing.assert_array_equal(x, original)


def test_forward_value_unchanged():
    x = input_array()[:8]
    value, pullback = value_and_pullback(chain_checkpointed_array, x)
    original = value.copy()
    pullback(np.ones_like(value))
    np.testing.assert_array_equal(value, original)


def fan_out(x):
    y = block_checkpointed(x)
    return block_checkpointed(y) * y + y


def test_fan_out_differences():
    check_pullback(fan_out, input_array()[:16])


def test_fan_out_pullback_twice_same():
    x = input_array()[:16]
    cotangent = np.cos(np.arange(x.size, dtype=float))
    _, pullback = value_and_pullback(fan_out, x)
    first = pullback(cotangent)
    second = pullback(cotangent)
    np.testing.assert_array_equal(first, second)


# Memory, in arrays of the input's size.


def test_forward_deletes_dead_intermediate():
    source = adjoint_source(block)
    assert "del b" in source
    x = input_array()
    # sin(x), a * x, tanh and the sum: with `b` deleted after tanh reads it,
    # at most three arrays of the forward pass are alive at once.
    peak = peak_in_arrays(lambda: value_and_pullback(block, x), x)
    assert peak < 3.5


def test_checkpointed_forward_peak():
    x = input_array()
    blocks = 8
    peak = peak_in_arrays(lambda: value_and_pullback(chain_checkpointed, x), x)
    # The outputs of blocks 1 to 7 are kept for the recomputations. Block 8
    # runs compiled, which frees sin(x) and a * x after their last use, so
    # at most two of its arrays are alive at once.
    assert peak < blocks + 1.5


def test_checkpointed_gradient_peak():
    x = input_array()
    blocks = 8
    peak = peak_in_arrays(lambda: gradient(chain_checkpointed)(x), x)
    # gradient's pullback runs once, so it frees each block's output after
    # the recomputation that reads it last. Recomputing block 8 needs the
    # outputs of blocks 1 to 7 and adds sin(x), tanh(...) and its result;
    # the fingerprint replaces its forward value.
    assert peak < blocks + 2.5


def test_checkpointed_peak_below_plain():
    x = input_array()
    saved = peak_in_arrays(lambda: gradient(chain_checkpointed)(x), x)
    plain = peak_in_arrays(lambda: gradient(chain_plain)(x), x)
    assert saved < 0.4 * plain


def test_plain_gradient_peak():
    x = input_array()
    # The plain chain's pullback keeps three arrays per block, and the last
    # block's adjoint adds at most four to them.
    peak = peak_in_arrays(lambda: gradient(chain_plain)(x), x)
    assert peak < 3 * 8 + 4.5


def test_single_use_source_declares_names_in_short_lines():
    source = adjoint_source(chain_checkpointed, single_use=True)
    declarations = [line.strip() for line in source.splitlines()
                    if line.strip().startswith("nonlocal ")]
    assert len(declarations) > 1
    assert all(len(line) <= 80 for line in declarations)
    names = [name for line in declarations for name in line[len("nonlocal "):].split(", ")]
    # Numbered versions in numeric order: x_2 before x_8.
    assert names.index("x_2") < names.index("x_8")
