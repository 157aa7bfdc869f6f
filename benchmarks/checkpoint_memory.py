"""Peak memory and time of a gradient with and without checkpointing.

The function is a chain of 32 blocks, each four elementwise operations on a
1 MiB float64 array (131072 elements). The plain variant calls the blocks
directly, so its pullback keeps every block's intermediates alive. The
checkpointed variant calls `checkpointed(block)`: its forward pass keeps only
each block's input, and its pullback recomputes the block's VJP.

For each variant the script reports
- retained after forward: traced memory still allocated after
  `value_and_pullback` returns, which is what the pullback keeps alive;
- gradient peak: the peak traced memory of one `gradient` call;
- time: the median wall time of one `gradient` call, measured without
  tracing, with the two variants taking turns.

Memory is measured with `tracemalloc`, which traces NumPy's data buffers. The
input array exists before tracing starts and is not counted. Every call is
made once before measuring, so compilation is not counted either.

Run it with `python benchmarks/checkpoint_memory.py [--repeats N]`.
"""

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np
from machine import cpu_model

from pullback import checkpointed, gradient, value_and_pullback

ELEMENTS = 131072  # 1 MiB of float64.
BLOCK_COUNT = 32
MEBIBYTE = 2**20

# Targets: the checkpointed peak at most this fraction of the plain peak,
# for at most this factor of the plain time.
PEAK_RATIO_TARGET = 0.35
TIME_RATIO_TARGET = 1.6


def block(x):
    a = np.sin(x)
    b = a * x
    c = np.tanh(b)
    return c + x


block_checkpointed = checkpointed(block)


# The chains are written out because differentiated code has no loops yet.
def chain(x):
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    x = block(x)
    return np.sum(x)


def chain_checkpointed(x):
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    x = block_checkpointed(x)
    return np.sum(x)


def retained_after_forward(function, x) -> float:
    """Return the MiB still allocated once the forward pass has returned."""
    value_and_pullback(function, x)
    tracemalloc.start()
    try:
        result = value_and_pullback(function, x)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return current / MEBIBYTE


def gradient_peak(function, x) -> float:
    """Return the peak MiB traced during one gradient call."""
    gradient_of_function = gradient(function)
    gradient_of_function(x)
    tracemalloc.start()
    try:
        gradient_of_function(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MEBIBYTE


def gradient_milliseconds(functions: dict, x, repeats: int) -> dict:
    """Return the median wall time of one gradient call of each function, in ms.

    The variants take turns, so a slow spell of a shared machine affects
    both alike.
    """
    gradients = {name: gradient(function) for name, function in functions.items()}
    times = {name: [] for name in functions}
    for gradient_of_function in gradients.values():
        gradient_of_function(x)
    for _ in range(repeats):
        for name, gradient_of_function in gradients.items():
            started = time.perf_counter()
            gradient_of_function(x)
            times[name].append(time.perf_counter() - started)
    return {
        name: statistics.median(samples) * 1000.0 for name, samples in times.items()
    }




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20,
                        help="timed gradient calls per variant (default: 20)")
    options = parser.parse_args()
    if options.repeats < 1:
        parser.error("--repeats must be at least 1")

    x = np.random.default_rng(0).standard_normal(ELEMENTS)
    difference = np.max(np.abs(gradient(chain)(x) - gradient(chain_checkpointed)(x)))

    variants = {"plain": chain, "checkpointed": chain_checkpointed}
    milliseconds = gradient_milliseconds(variants, x, options.repeats)
    rows = {
        name: (retained_after_forward(function, x), gradient_peak(function, x),
               milliseconds[name])
        for name, function in variants.items()
    }
    plain, saved = rows["plain"], rows["checkpointed"]
    peak_ratio = saved[1] / plain[1]
    time_ratio = saved[2] / plain[2]

    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}")
    megabytes = x.nbytes / MEBIBYTE
    print(f"{BLOCK_COUNT} blocks of 4 elementwise operations on {megabytes:.0f} MiB "
          f"float64 arrays, median of {options.repeats} timed calls")
    print(f"Largest difference between the two gradients: {difference:.3g}")
    print()
    print("| variant | retained after forward (MiB) | gradient peak (MiB) "
          "| time (ms) |")
    print("| --- | ---: | ---: | ---: |")
    for name, (retained, peak, time_ms) in rows.items():
        print(f"| {name} | {retained:.1f} | {peak:.1f} | {time_ms:.1f} |")
    print(f"| checkpointed / plain | {saved[0] / plain[0]:.3f} | {peak_ratio:.3f} "
          f"| {time_ratio:.2f} |")
    print()
    peak_met = "met" if peak_ratio <= PEAK_RATIO_TARGET else "NOT met"
    time_met = "met" if time_ratio <= TIME_RATIO_TARGET else "NOT met"
    print(f"Peak target (checkpointed <= {PEAK_RATIO_TARGET:.0%} of plain): {peak_met}")
    print(f"Time target (checkpointed <= {TIME_RATIO_TARGET}x plain): {time_met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
