"""Time the gradient of a 50-step scalar recurrence: pullback against peers.

The function is `for _ in range(50): x = sin(x) * a + b`, returning x, and
the gradient is taken with respect to (x, a, b) in float64. Two variants
differ only in the sine and the argument type:
- math: `math.sin` on Python floats;
- numpy: `np.sin` on NumPy float64 scalars.

Implementations of the math variant:
- hand-written: a forward loop storing each x and sin(x), and a backward
  loop reading them in reverse;
- pullback: `pullback.value_and_gradient`;
- autograd: `autograd.value_and_grad` with `autograd.numpy.sin`;
- torch: PyTorch eager, float64 0-d tensors, `torch.autograd.grad`;
- jax: `jax.value_and_grad` run eagerly, with 64-bit floats enabled;
- jax-jit: the same function under `jax.jit`, compiled before timing, with
  `block_until_ready` on every result.
The numpy variant has a hand-written version with `np.sin` and `np.cos` and
the pullback version.

Peers that fail to import are listed as unavailable. Every implementation
must agree with its hand-written reference before anything is timed. The
implementations take turns, in an order that rotates at each repeat. The
script prints the minimum and median microseconds per call and each one's
ratios to the hand-written time of its variant. It then reports two targets:
pullback at most TARGET_RATIO times the hand-written time (ratio of
minimums), and pullback faster than every peer.

Run it with `python benchmarks/loop_recurrence.py [--quick] [--breakdown]`.
`--quick` makes a short smoke run whose times mean little. `--breakdown`
also times the generated code with its scalar runtime helper calls removed.
"""

import argparse
import ast
import importlib.metadata
import math
import os
import platform
import statistics
import sys
import timeit

import numpy as np
from machine import cpu_model

import pullback
from pullback import runtime as pullback_runtime

STEPS = 50
TARGET_RATIO = 1.3
START = (0.3, 0.9, 0.2)  # (x, a, b)


def recurrence(x, a, b):
    for _ in range(STEPS):
        x = math.sin(x) * a + b
    return x


def recurrence_numpy(x, a, b):
    for _ in range(STEPS):
        x = np.sin(x) * a + b
    return x


def hand_written(x, a, b):
    """Return the recurrence's value and its gradient in (x, a, b), by hand."""
    xs = []
    sines = []
    for _ in range(STEPS):
        sine = math.sin(x)
        xs.append(x)
        sines.append(sine)
        x = sine * a + b
    value = x

    x_bar, a_bar, b_bar = 1.0, 0.0, 0.0
    for i in range(STEPS - 1, -1, -1):
        a_bar += x_bar * sines[i]
        b_bar += x_bar
        x_bar = x_bar * a * math.cos(xs[i])
    return value, (x_bar, a_bar, b_bar)


def hand_written_numpy(x, a, b):
    """Compute `hand_written` with `np.sin` and `np.cos`, for NumPy scalars."""
    xs = []
    sines = []
    for _ in range(STEPS):
        sine = np.sin(x)
        xs.append(x)
        sines.append(sine)
        x = sine * a + b
    value = x

    x_bar, a_bar, b_bar = np.float64(1.0), np.float64(0.0), np.float64(0.0)
    for i in range(STEPS - 1, -1, -1):
        a_bar += x_bar * sines[i]
        b_bar += x_bar
        x_bar = x_bar * a * np.cos(xs[i])
    return value, (x_bar, a_bar, b_bar)


def autograd_implementation():
    import autograd
    import autograd.numpy as anp

    def function(x, a, b):
        for _ in range(STEPS):
            x = anp.sin(x) * a + b
        return x

    return autograd.value_and_grad(function, argnum=(0, 1, 2))


def torch_implementation():
    import torch

    def value_and_gradient(x, a, b):
        x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        a = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        y = x
        for _ in range(STEPS):
            y = torch.sin(y) * a + b
        return y, torch.autograd.grad(y, (x, a, b))

    return value_and_gradient


def jax_function():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def function(x, a, b):
        for _ in range(STEPS):
            x = jnp.sin(x) * a + b
        return x

    return jax, jax.value_and_grad(function, argnums=(0, 1, 2))


def jax_implementation():
    jax, value_and_gradient = jax_function()

    def blocked(x, a, b):
        return jax.block_until_ready(value_and_gradient(x, a, b))

    return blocked


def jax_jit_implementation():
    jax, value_and_gradient = jax_function()
    compiled = jax.jit(value_and_gradient)

    def blocked(x, a, b):
        return jax.block_until_ready(compiled(x, a, b))

    blocked(*START)  # Compile before timing.
    return blocked


PEERS = {
    "autograd": autograd_implementation,
    "torch": torch_implementation,
    "jax": jax_implementation,
    "jax-jit": jax_jit_implementation,
}


def implementations() -> tuple[dict, dict]:
    """Return the implementations as {name: (function, args, reference name)}
    and the peers that failed to import as {name: error}."""
    numpy_start = tuple(np.float64(v) for v in START)
    found = {
        "hand-written": (hand_written, START, "hand-written"),
        "pullback": (pullback.value_and_gradient(recurrence), START, "hand-written"),
        "hand-written np": (hand_written_numpy, numpy_start, "hand-written np"),
        "pullback np": (
            pullback.value_and_gradient(recurrence_numpy),
            numpy_start,
            "hand-written np",
        ),
    }
    unavailable = {}
    for name, make in PEERS.items():
        try:
            found[name] = (make(), START, "hand-written")
        except ImportError as error:
            unavailable[name] = str(error)
    return found, unavailable


def as_float(value) -> float:
    """Return a float, a NumPy scalar, a tensor or a JAX array as a float."""
    if hasattr(value, "detach"):
        value = value.detach()
    return float(value)


def check_agreement(found: dict) -> None:
    """Exit with an error unless every implementation matches its reference."""
    for name, (function, args, reference) in found.items():
        reference_function, reference_args, _ = found[reference]
        expected_value, expected_gradient = reference_function(*reference_args)
        value, gradient = function(*args)
        value, expected_value = as_float(value), as_float(expected_value)
        gradient = [as_float(g) for g in gradient]
        if not np.allclose(value, expected_value, rtol=1e-10, atol=0):
            sys.exit(
                f"loop_recurrence.py: {name} computes the value {value!r}, "
                f"but {reference} computes {expected_value!r}"
            )
        for parameter, computed, expected in zip(
            ("x", "a", "b"), gradient, expected_gradient, strict=True
        ):
            if not np.allclose(computed, expected, rtol=1e-9, atol=1e-15):
                sys.exit(
                    f"loop_recurrence.py: {name}'s derivative in {parameter} is "
                    f"{computed!r}, but {reference} gives {expected!r}"
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


def time_per_call(found: dict, repeats: int, seconds: float) -> dict:
    """Return each implementation's seconds per call, one value per repeat."""
    timers = {
        name: timeit.Timer("function(*args)", globals={"function": f, "args": args})
        for name, (f, args, _) in found.items()
    }
    calls = {name: calls_per_repeat(timer, seconds) for name, timer in timers.items()}
    names = list(timers)
    samples = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timers[name].timeit(calls[name]) / calls[name])
    return samples




def print_machine() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}")
    for distribution in ("torch", "jax", "jaxlib", "autograd"):
        try:
            print(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            print(f"{distribution}: not installed")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if variable in os.environ:
            print(f"{variable}={os.environ[variable]}")


def print_table(found: dict, samples: dict) -> None:
    header = (
        f"{'implementation':<26}{'min µs':>10}{'median µs':>11}"
        f"{'min ratio':>11}{'median ratio':>14}  reference"
    )
    print(header)
    print("-" * len(header))
    for name, times in samples.items():
        reference = found[name][2]
        reference_min = min(samples[reference])
        reference_median = statistics.median(samples[reference])
        low, middle = min(times), statistics.median(times)
        print(
            f"{name:<26}{low * 1e6:>10.1f}{middle * 1e6:>11.1f}"
            f"{low / reference_min:>11.2f}{middle / reference_median:>14.2f}"
            f"  {reference}"
        )


def print_targets(samples: dict) -> None:
    print(f"\ntarget: pullback / hand-written <= {TARGET_RATIO} (ratio of minimums)")
    for name, reference in (
        ("pullback", "hand-written"),
        ("pullback np", "hand-written np"),
    ):
        ratio = min(samples[name]) / min(samples[reference])
        verdict = "met" if ratio <= TARGET_RATIO else "not met"
        print(f"  {name}: {ratio:.2f}, {verdict}")
    print("target: pullback faster than every peer (minimums)")
    for peer in PEERS:
        if peer not in samples:
            continue
        ratio = min(samples["pullback"]) / min(samples[peer])
        verdict = "met" if ratio < 1.0 else "not met"
        print(f"  pullback / {peer}: {ratio:.3f}, {verdict}")


class DropScalarHelpers(ast.NodeTransformer):
    """Rewrite `_pb.unbroadcast(c, p)` to `c` and `_pb.add(a, b)` to `a + b`.

    Both rewrites are exact when every value is a Python float or a NumPy
    float64 scalar, as in both variants here.
    """

    def visit_Call(self, node):
        self.generic_visit(node)
        function = node.func
        if (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == "_pb"
        ):
            if function.attr == "unbroadcast":
                return node.args[0]
            if function.attr == "add":
                return ast.BinOp(node.args[0], ast.Add(), node.args[1])
        return node


def generated_vjps(function, transformer=None) -> dict:
    """Compile `function`'s `adjoint_source` and return its VJPs by name.

    The source contains the general VJP, `<name>_vjp`, and may contain
    variants such as one for Python numbers. `transformer`, if given, rewrites the
    syntax tree first.
    """
    tree = ast.parse(pullback.adjoint_source(function))
    if transformer is not None:
        tree = ast.fix_missing_locations(transformer.visit(tree))
    namespace = dict(function.__globals__, _pb=pullback_runtime)
    exec(compile(tree, f"<generated vjp of {function.__name__}>", "exec"), namespace)
    names = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith(f"{function.__name__}_vjp")
    ]
    return {name: namespace[name] for name in names}


def with_pullback(vjp, seed):
    """Return a function calling `vjp` and then its pullback at `seed`."""

    def call(x, a, b):
        value, pullback_of_function = vjp(x, a, b)
        return value, pullback_of_function(seed)

    return call


def forward_of(vjp):
    """Return a function running only the forward pass of `vjp`."""

    def call(x, a, b):
        return vjp(x, a, b)[0]

    return call


def print_breakdown(repeats: int, seconds: float) -> None:
    """Print where each variant's time goes.

    Each VJP in the generated source is timed as it is, without its scalar
    helper calls, and its forward pass alone. The API call, the hand-written
    gradient and the function alone are timed beside them.
    """
    variants = (
        ("math", recurrence, hand_written, START, 1.0),
        (
            "numpy",
            recurrence_numpy,
            hand_written_numpy,
            tuple(np.float64(v) for v in START),
            np.float64(1.0),
        ),
    )
    for variant, function, by_hand, args, seed in variants:
        vjps = generated_vjps(function)
        vjps_without_helpers = generated_vjps(function, DropScalarHelpers())
        _, expected = by_hand(*args)
        found = {
            "hand-written": (by_hand, args, "hand-written"),
            "value_and_gradient": (
                pullback.value_and_gradient(function),
                args,
                "hand-written",
            ),
        }
        for name, vjp in vjps.items():
            label = name.removeprefix(f"{function.__name__}_")
            without_helpers = with_pullback(vjps_without_helpers[name], seed)
            _, gradient = without_helpers(*args)
            if not np.allclose(gradient, expected, rtol=1e-12, atol=0):
                sys.exit(
                    f"loop_recurrence.py: {name} without scalar helpers "
                    "gives another gradient"
                )
            found[label] = (with_pullback(vjp, seed), args, "hand-written")
            found[f"{label}, no helpers"] = (without_helpers, args, "hand-written")
            found[f"{label} forward"] = (forward_of(vjp), args, "hand-written")
        found["function alone"] = (function, args, "hand-written")
        print(f"\nbreakdown of the {variant} variant")
        print_table(found, time_per_call(found, repeats, seconds))


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run of 3 repeats of about 5 ms each; its times mean little",
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
        help="also time the generated VJP with its scalar runtime helper calls removed",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    options = parse_arguments(argv)
    repeats = options.repeats or (3 if options.quick else 25)
    seconds = 0.005 if options.quick else 0.1

    print_machine()
    found, unavailable = implementations()
    for name, error in unavailable.items():
        print(f"{name}: unavailable ({error})")
    check_agreement(found)
    print(
        f"gradients agree with the hand-written ones; "
        f"{STEPS} steps, {repeats} repeats\n"
    )

    samples = time_per_call(found, repeats, seconds)
    print_table(found, samples)
    print_targets(samples)
    if options.breakdown:
        print_breakdown(repeats, seconds)


if __name__ == "__main__":
    main()
