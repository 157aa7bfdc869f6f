"""Peak memory of the gradient of a loop over arrays: pullback against hand-written.

Two loop bodies run for N steps on float64 arrays of 10,000 elements
(80,000 bytes each):
- tanh: `x = np.tanh(x * w)`, differentiated with respect to (x, w);
- affine sine: `x = np.sin(x) * w + b`, with respect to (x, w, b).
Each returns `np.sum(x)`.

The hand-written gradients store exactly what their backward loops read.
For tanh that is each step's output, which is also the next step's input,
so one array per step. For affine sine it is each step's input and its
sine, two arrays per step. Their backward loops pop what they stored, as
pullback's generated pullbacks do.

For each body, implementation and N in STEP_COUNTS, the script measures the
`tracemalloc` peak of one gradient call. The inputs exist before tracing
starts and every function has run once, so neither inputs nor compilation
are counted. It reports the peak, the bytes per step (the slope of the peak
between consecutive N) and the ratios of consecutive peaks. It then reports
two targets. pullback's peak must grow linearly, with its two slopes within
LINEARITY_TOLERANCE of each other. It must also be at most
PEAK_RATIO_TARGET times the hand-written peak at every N.

Run it with `python benchmarks/loop_memory.py [--quick]`. `--quick` uses
shorter loops for a smoke run.
"""

import argparse
import os
import platform
import sys
import tracemalloc

import numpy as np
from machine import cpu_model

import pullback

ELEMENTS = 10_000
STEP_COUNTS = (250, 500, 1000)
QUICK_STEP_COUNTS = (10, 20, 40)
PEAK_RATIO_TARGET = 1.10
LINEARITY_TOLERANCE = 0.05


def tanh_chain(x, w, n):
    for _ in range(n):
        x = np.tanh(x * w)
    return np.sum(x)


def tanh_chain_by_hand(x, w, n):
    """Return the gradient of `tanh_chain` in (x, w), keeping one array per step."""
    states = [x]
    for _ in range(n):
        x = np.tanh(x * w)
        states.append(x)

    x_bar = np.ones_like(x)
    w_bar = np.zeros_like(w)
    for _ in range(n):
        y = states.pop()
        z_bar = x_bar * (1 - y * y)
        w_bar = w_bar + z_bar * states[-1]
        x_bar = z_bar * w
    return x_bar, w_bar


def affine_sine_chain(x, w, b, n):
    for _ in range(n):
        x = np.sin(x) * w + b
    return np.sum(x)


def affine_sine_chain_by_hand(x, w, b, n):
    """Return the gradient of `affine_sine_chain` in (x, w, b), keeping each
    step's input and its sine."""
    inputs = []
    sines = []
    for _ in range(n):
        sine = np.sin(x)
        inputs.append(x)
        sines.append(sine)
        x = sine * w + b

    x_bar = np.ones_like(x)
    w_bar = np.zeros_like(w)
    b_bar = np.zeros_like(b)
    for _ in range(n):
        sine = sines.pop()
        previous = inputs.pop()
        b_bar = b_bar + x_bar
        w_bar = w_bar + x_bar * sine
        x_bar = x_bar * w * np.cos(previous)
    return x_bar, w_bar, b_bar


def make_inputs(count: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(ELEMENTS)
    w = rng.uniform(0.5, 1.0, ELEMENTS)
    b = 0.1 * rng.standard_normal(ELEMENTS)
    return [x, w, b][:count]


# name: (function, hand-written gradient, number of array arguments)
WORKLOADS = {
    "tanh": (tanh_chain, tanh_chain_by_hand, 2),
    "affine sine": (affine_sine_chain, affine_sine_chain_by_hand, 3),
}


def implementations(name: str) -> dict:
    function, by_hand, count = WORKLOADS[name]
    return {
        "hand-written": by_hand,
        "pullback": pullback.gradient(function, wrt=tuple(range(count))),
    }


def check_agreement(name: str, steps: int) -> None:
    """Exit with an error unless pullback's gradient matches the hand-written one."""
    found = implementations(name)
    arrays = make_inputs(WORKLOADS[name][2])
    expected = found["hand-written"](*arrays, steps)
    computed = found["pullback"](*arrays, steps)
    for position, (c, e) in enumerate(zip(computed, expected, strict=True)):
        if not np.allclose(c, e, rtol=1e-12, atol=1e-300):
            sys.exit(
                f"loop_memory.py: pullback's gradient of {name} in argument "
                f"{position} differs from the hand-written one at {steps} steps"
            )


def peak_bytes(gradient_function, arrays: list, steps: int) -> int:
    """Return the tracemalloc peak of one call, after an untraced warm-up call."""
    gradient_function(*arrays, steps)
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = gradient_function(*arrays, steps)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak


def measure(name: str, step_counts: tuple) -> dict:
    """Return {implementation: [peak bytes at each step count]}."""
    found = implementations(name)
    arrays = make_inputs(WORKLOADS[name][2])
    return {
        implementation: [peak_bytes(function, arrays, steps) for steps in step_counts]
        for implementation, function in found.items()
    }




def print_machine() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}")


def slopes(peaks: list, step_counts: tuple) -> list:
    """Return the bytes per step between consecutive step counts."""
    return [
        (high - low) / (n_high - n_low)
        for low, high, n_low, n_high in zip(
            peaks, peaks[1:], step_counts, step_counts[1:], strict=False
        )
    ]


def print_workload(name: str, peaks: dict, step_counts: tuple) -> list:
    """Print one workload's table and return its target verdicts."""
    print(f"\n{name}: {ELEMENTS * 8:,} bytes per array")
    header = (
        f"{'implementation':<16}{'steps':>7}{'peak MB':>10}"
        f"{'bytes/step':>12}{'peak ratio':>12}"
    )
    print(header)
    print("-" * len(header))
    for implementation, values in peaks.items():
        per_step = [None, *slopes(values, step_counts)]
        for i, (steps, peak) in enumerate(zip(step_counts, values, strict=True)):
            slope = "" if per_step[i] is None else f"{per_step[i]:,.0f}"
            ratio = "" if i == 0 else f"{peak / values[i - 1]:.3f}"
            print(
                f"{implementation:<16}{steps:>7}{peak / 1e6:>10.2f}"
                f"{slope:>12}{ratio:>12}"
            )

    verdicts = []
    pullback_slopes = slopes(peaks["pullback"], step_counts)
    spread = (max(pullback_slopes) - min(pullback_slopes)) / max(pullback_slopes)
    linear = spread <= LINEARITY_TOLERANCE
    verdicts.append(linear)
    print(
        f"pullback bytes per step vary by {spread:.1%} between step counts "
        f"(linear growth within {LINEARITY_TOLERANCE:.0%}): "
        f"{'met' if linear else 'not met'}"
    )
    for steps, mine, theirs in zip(
        step_counts, peaks["pullback"], peaks["hand-written"], strict=True
    ):
        ratio = mine / theirs
        within = ratio <= PEAK_RATIO_TARGET
        verdicts.append(within)
        print(
            f"pullback / hand-written peak at {steps} steps: {ratio:.3f} "
            f"(target <= {PEAK_RATIO_TARGET}): {'met' if within else 'not met'}"
        )
    return verdicts


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run with {', '.join(map(str, QUICK_STEP_COUNTS))} steps",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    options = parse_arguments(argv)
    step_counts = QUICK_STEP_COUNTS if options.quick else STEP_COUNTS

    print_machine()
    for name in WORKLOADS:
        check_agreement(name, step_counts[0])
    print("gradients agree with the hand-written ones (np.allclose)")

    verdicts = []
    for name in WORKLOADS:
        verdicts += print_workload(name, measure(name, step_counts), step_counts)
    print(f"\nall targets met: {'yes' if all(verdicts) else 'no'}")


if __name__ == "__main__":
    main()
