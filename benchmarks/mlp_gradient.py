"""Time the gradient of a two-layer ReLU MLP: pullback, hand-written NumPy, autograd.

The loss is the mean squared error of `relu(x @ w1 + b1) @ w2 + b2` against
`y`, differentiated with respect to (w1, b1, w2, b2) in float64. Three
implementations compute the value and the gradient:
- hand-written: the adjoint written out in NumPy, reusing the forward
  intermediates;
- pullback: `pullback.value_and_gradient(loss, wrt=(0, 1, 2, 3))`, which
  runs code specialized to the arguments' shapes and dtypes from the second
  call with them on, so the timed calls run that code;
- autograd: `autograd.value_and_grad` on the same loss written with
  `autograd.numpy`, skipped when autograd is not installed.

The script first checks that all three agree with `np.allclose`, so it never
times a wrong result, then times each one with `timeit`: several repeats, the
implementations taking turns in a rotating order to spread drift evenly. It
prints the minimum and median time per call, each one's ratio to the
hand-written time, and the minor page faults per call. The target is met when
pullback's ratio of minimums is at most TARGET_RATIO.

Run it with `python benchmarks/mlp_gradient.py [--quick] [--breakdown]`.
`--quick` makes a short smoke run whose times are not meant to be read.
`--breakdown` also times, at each size, each runtime helper of the general
pullback against the NumPy operation it wraps, and the whole call through
the API, the specialized function and the general VJP.
"""

import argparse
import os
import platform
import statistics
import sys
import timeit

import numpy as np

try:
    import resource
except ImportError:  # Not on Windows, where no page-fault count is printed.
    resource = None

import pullback
from pullback import runtime as pullback_runtime
from pullback.compiler import compile_vjp

# (batch, inputs, hidden, outputs)
SIZES = ((4, 2, 10, 1), (128, 784, 256, 10))
TARGET_RATIO = 1.15
WRT = (0, 1, 2, 3)
PARAMETERS = ("w1", "b1", "w2", "b2")


def loss(w1, b1, w2, b2, x, y):
    h = np.maximum(x @ w1 + b1, 0.0)
    out = h @ w2 + b2
    return np.mean((out - y) ** 2)


def hand_written_value_and_gradient(w1, b1, w2, b2, x, y):
    """Return the loss and its gradient in (w1, b1, w2, b2), derived by hand.

    The ReLU mask `z > 0` gives 0 where z is exactly 0, and pullback's
    derivative of `np.maximum` gives half the cotangent there. For random
    float inputs such ties have probability zero, and `check_agreement`
    verifies that none occurs.
    """
    z = x @ w1 + b1
    h = np.maximum(z, 0.0)
    out = h @ w2 + b2
    d = out - y
    value = np.mean(d**2)

    out_bar = 2 * d / d.size
    w2_bar = h.T @ out_bar
    b2_bar = out_bar.sum(0)
    z_bar = (out_bar @ w2.T) * (z > 0)
    w1_bar = x.T @ z_bar
    b1_bar = z_bar.sum(0)
    return value, (w1_bar, b1_bar, w2_bar, b2_bar)


def autograd_value_and_gradient():
    """Return autograd's value-and-gradient of the loss, or None without autograd."""
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None

    def autograd_loss(w1, b1, w2, b2, x, y):
        h = anp.maximum(x @ w1 + b1, 0.0)
        out = h @ w2 + b2
        return anp.mean((out - y) ** 2)

    return autograd.value_and_grad(autograd_loss, argnum=WRT)


def implementations() -> dict:
    """Return the implementations by name, the reference (hand-written) first."""
    found = {
        "hand-written": hand_written_value_and_gradient,
        "pullback": pullback.value_and_gradient(loss, wrt=WRT),
    }
    autograd_version = autograd_value_and_gradient()
    if autograd_version is not None:
        found["autograd"] = autograd_version
    return found


def make_inputs(size, seed=0) -> tuple:
    """Return (w1, b1, w2, b2, x, y) of `size`; weights are scaled by 1/sqrt(fan-in)."""
    batch, inputs, hidden, outputs = size
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((inputs, hidden)) / np.sqrt(inputs)
    b1 = 0.1 * rng.standard_normal(hidden)
    w2 = rng.standard_normal((hidden, outputs)) / np.sqrt(hidden)
    b2 = 0.1 * rng.standard_normal(outputs)
    x = rng.standard_normal((batch, inputs))
    y = rng.standard_normal((batch, outputs))
    return w1, b1, w2, b2, x, y


def size_label(size) -> str:
    batch, inputs, hidden, outputs = size
    return f"{batch}x{inputs}-{hidden}-{outputs}"


def check_agreement(found: dict, args: tuple, label: str) -> None:
    """Exit with an error unless every implementation matches the hand-written one."""
    w1, b1, _, _, x, _ = args
    if np.any(x @ w1 + b1 == 0):
        sys.exit(
            f"mlp_gradient.py: an exact ReLU tie at size {label}, where the "
            "hand-written mask and np.maximum's derivative differ; change the seed"
        )
    reference_value, reference_gradient = hand_written_value_and_gradient(*args)
    for name, value_and_gradient in found.items():
        value, gradient = value_and_gradient(*args)
        if not np.allclose(value, reference_value):
            sys.exit(
                f"mlp_gradient.py: {name} computes the loss {value!r} at size "
                f"{label}, but the hand-written code computes {reference_value!r}"
            )
        for parameter, computed, expected in zip(
            PARAMETERS, gradient, reference_gradient, strict=True
        ):
            if np.shape(computed) != np.shape(expected) or not np.allclose(computed, expected):
                sys.exit(
                    f"mlp_gradient.py: {name}'s gradient in {parameter} at size "
                    f"{label} differs from the hand-written one (shape "
                    f"{np.shape(computed)}, expected {np.shape(expected)})"
                )


def calls_per_repeat(timer: timeit.Timer, seconds: float) -> int:
    """Return how many calls take about `seconds`, after a calibration run."""
    calls = 1
    while True:
        elapsed = timer.timeit(calls)
        if elapsed >= 0.02 or calls >= 10**6:
            break
        calls *= 4
    return max(1, round(calls * seconds / elapsed))


def minor_page_faults() -> int | None:
    """Return this process's minor page faults so far, or None where unknown."""
    if resource is None:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_per_call(found: dict, args: tuple, repeats: int, seconds: float) -> tuple:
    """Return each implementation's seconds per call and page faults per call.

    The first dict has one time per repeat. The implementations take turns,
    and the order rotates at each repeat so that none always runs first or
    last. The second dict has the minor page faults per call over all
    repeats, or None where the platform does not count them. Many faults
    mean that memory freed by one call went back to the operating system
    and the next call faulted it in again.
    """
    timers = {
        name: timeit.Timer("function(*args)", globals={"function": f, "args": args})
        for name, f in found.items()
    }
    calls = {name: calls_per_repeat(timer, seconds) for name, timer in timers.items()}
    names = list(timers)
    samples = {name: [] for name in names}
    faults = dict.fromkeys(names, 0)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            faults_before = minor_page_faults()
            samples[name].append(timers[name].timeit(calls[name]) / calls[name])
            if faults_before is not None:
                faults[name] += minor_page_faults() - faults_before
    if minor_page_faults() is None:
        return samples, dict.fromkeys(names)
    faults_per_call = {name: faults[name] / (repeats * calls[name]) for name in names}
    return samples, faults_per_call


def print_machine() -> None:
    print(f"Python {platform.python_version()}, NumPy {np.__version__}")
    print(platform.platform())
    try:
        import threadpoolctl
    except ImportError:
        print("BLAS: unknown (install threadpoolctl to see it)")
    else:
        for pool in threadpoolctl.threadpool_info():
            print(
                f"{pool['user_api']}: {pool['internal_api']} {pool['version']}, "
                f"kernel {pool.get('architecture')}, {pool['num_threads']} threads"
            )
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if variable in os.environ:
            print(f"{variable}={os.environ[variable]}")


def print_table(results: list) -> None:
    """Print one row per size and implementation, with ratios to hand-written."""
    header = (
        f"{'size':<16}{'implementation':<16}{'min µs':>10}{'median µs':>11}"
        f"{'min ratio':>11}{'median ratio':>14}{'faults/call':>13}"
    )
    print(header)
    print("-" * len(header))
    for label, samples, faults in results:
        reference_min = min(samples["hand-written"])
        reference_median = statistics.median(samples["hand-written"])
        for name, times in samples.items():
            low = min(times)
            middle = statistics.median(times)
            fault_text = "n/a" if faults[name] is None else f"{faults[name]:.0f}"
            print(
                f"{label:<16}{name:<16}{low * 1e6:>10.1f}{middle * 1e6:>11.1f}"
                f"{low / reference_min:>11.2f}{middle / reference_median:>14.2f}"
                f"{fault_text:>13}"
            )


def print_targets(results: list) -> None:
    print(f"\ntarget: pullback / hand-written <= {TARGET_RATIO} (ratio of minimums)")
    for label, samples, _ in results:
        ratio = min(samples["pullback"]) / min(samples["hand-written"])
        verdict = "met" if ratio <= TARGET_RATIO else "not met"
        print(f"  {label}: {ratio:.2f}, {verdict}")


def time_min(function, *args, repeats=7, seconds=0.05) -> float:
    """Return the minimum seconds per call of `function(*args)` over `repeats`."""
    timer = timeit.Timer("function(*args)", globals={"function": function, "args": args})
    calls = calls_per_repeat(timer, seconds)
    return min(timer.repeat(repeats, calls)) / calls


def backward_steps(size) -> list:
    """Return the backward steps at `size` as (name, helper call, hand call).

    Each call is a tuple (function, *arguments). The hand call is the NumPy
    the hand-written adjoint runs for that step, or None where it runs
    nothing. The intermediates are recomputed here with the names of the
    generated code, which `pullback.adjoint_source(loss, wrt=(0, 1, 2, 3))`
    prints.
    """
    w1, b1, w2, b2, x, y = make_inputs(size)
    x_matmul_w1 = x @ w1
    x_matmul_w1_plus_b1 = x_matmul_w1 + b1
    h = np.maximum(x_matmul_w1_plus_b1, 0.0)
    h_matmul_w2 = h @ w2
    out = h_matmul_w2 + b2
    out_minus_y = out - y
    out_minus_y_pow_2 = out_minus_y**2
    result_bar = np.float64(1.0)
    out_bar = 2 * out_minus_y / out_minus_y.size
    h_bar = out_bar @ w2.T
    z_bar = h_bar * (x_matmul_w1_plus_b1 > 0)
    pb = pullback_runtime

    def hand_scale(d):
        return 2 * d / d.size

    def sum_rows(g):
        return g.sum(0)

    def times_transpose(g, b):
        return g @ b.T

    def transpose_times(a, g):
        return a.T @ g

    def relu_mask(g, z):
        return g * (z > 0)

    return [
        (
            "mean_adjoint_times",
            (pb.mean_adjoint_times, result_bar, out_minus_y_pow_2, out_minus_y, 2),
            (hand_scale, out_minus_y),
        ),
        ("unbroadcast(out_bar, out)", (pb.unbroadcast, out_bar, out), None),
        ("unbroadcast(out_bar, h@w2)", (pb.unbroadcast, out_bar, h_matmul_w2), None),
        (
            "unbroadcast(out_bar, b2)",
            (pb.unbroadcast, out_bar, b2),
            (sum_rows, out_bar),
        ),
        (
            "matmul_adjoint_lhs",
            (pb.matmul_adjoint_lhs, out_bar, h, w2),
            (times_transpose, out_bar, w2),
        ),
        (
            "matmul_adjoint_rhs (w2)",
            (pb.matmul_adjoint_rhs, out_bar, h, w2),
            (transpose_times, h, out_bar),
        ),
        (
            "maximum_share",
            (pb.maximum_share, h_bar, x_matmul_w1_plus_b1, 0.0),
            (relu_mask, h_bar, x_matmul_w1_plus_b1),
        ),
        ("unbroadcast(z_bar, x@w1)", (pb.unbroadcast, z_bar, x_matmul_w1), None),
        ("unbroadcast(z_bar, b1)", (pb.unbroadcast, z_bar, b1), (sum_rows, z_bar)),
        (
            "matmul_adjoint_rhs (w1)",
            (pb.matmul_adjoint_rhs, z_bar, x, w1),
            (transpose_times, x, z_bar),
        ),
    ]


def print_step_breakdown(size, repeats: int, seconds: float) -> None:
    """Print the time of each step of the general pullback and of the hand-written code."""
    print(f"\nbreakdown at {size_label(size)}: minimum µs per call")
    print(f"{'backward step':<28}{'pullback':>10}{'hand':>8}{'extra':>8}")
    total_pullback = total_hand = 0.0
    for step, helper_call, hand_call in backward_steps(size):
        helper = time_min(*helper_call, repeats=repeats, seconds=seconds)
        hand = 0.0
        if hand_call is not None:
            hand = time_min(*hand_call, repeats=repeats, seconds=seconds)
        total_pullback += helper
        total_hand += hand
        print(f"{step:<28}{helper * 1e6:>10.2f}{hand * 1e6:>8.2f}{(helper - hand) * 1e6:>8.2f}")
    print(
        f"{'total':<28}{total_pullback * 1e6:>10.2f}"
        f"{total_hand * 1e6:>8.2f}{(total_pullback - total_hand) * 1e6:>8.2f}"
    )


def print_call_breakdown(size, repeats: int, seconds: float) -> None:
    """Print the time of a whole gradient through the API, the bare VJP and by hand."""
    args = make_inputs(size)
    compiled = compile_vjp(loss, WRT)
    vjp = compiled.vjp
    seed = np.float64(1.0)

    def vjp_then_pullback(*args):
        value, pullback_of_loss = vjp(*args)
        return value, pullback_of_loss(seed)

    evaluate = pullback.value_and_gradient(loss, wrt=WRT)
    evaluate(*args)
    evaluate(*args)  # The second call with these shapes specializes.
    specialized = next(f for f in compiled.specializer.functions if f(*args) is not None)
    calls = [
        ("value_and_gradient", evaluate),
        ("specialized function", specialized),
        ("compiled vjp + pullback", vjp_then_pullback),
        ("compiled vjp (forward)", vjp),
        ("loss (forward)", loss),
        ("hand-written", hand_written_value_and_gradient),
    ]
    print(f"\n{'whole call':<28}{'µs':>10}")
    for name, function in calls:
        seconds_per_call = time_min(function, *args, repeats=repeats, seconds=seconds)
        print(f"{name:<28}{seconds_per_call * 1e6:>10.2f}")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run of 3 repeats of about 5 ms; its times mean little",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repeats per implementation (default 25)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time each pullback runtime helper and the API overhead, per size",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    options = parse_arguments(argv)
    repeats = options.repeats or (3 if options.quick else 25)
    seconds = 0.005 if options.quick else 0.1

    print_machine()
    found = implementations()
    if "autograd" not in found:
        print("autograd is not installed, so it is left out")

    results = []
    for size in SIZES:
        args = make_inputs(size)
        label = size_label(size)
        check_agreement(found, args, label)
        samples, faults = time_per_call(found, args, repeats, seconds)
        results.append((label, samples, faults))
    print(f"gradients agree with the hand-written ones (np.allclose); {repeats} repeats")
    print()
    print_table(results)
    print_targets(results)

    if options.breakdown:
        breakdown_repeats = 3 if options.quick else 7
        for size in SIZES:
            print_step_breakdown(size, breakdown_repeats, seconds / 2)
            print_call_breakdown(size, breakdown_repeats, seconds / 2)


if __name__ == "__main__":
    main()
