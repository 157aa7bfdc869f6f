"""Time one training step of the digits CNN: pullback against PyTorch eager.

The model is `DigitsCNN` from samples/digits_cnn.py: two 3x3 "same"
convolutions with ReLU (16 and 32 channels), each followed by 2x2 max
pooling, then a dense layer to 10 classes, in float32. One step on a batch
of 64 images of 8x8x1 is the forward pass, the gradient of the softmax
cross-entropy with respect to every parameter, and an Adam update
(learning rate 3e-3). The implementations:
- pullback: `pullback.value_and_gradient(loss, wrt="model")` and
  `nn.Adam.update`;
- torch: the same network in PyTorch eager (NCHW), `loss.backward()` and
  `torch.optim.Adam` with its defaults, skipped when torch is not installed.

Both start from the same weights. Before timing, the script checks that
their losses and gradients agree, so it never times a wrong result. The
images are uniform random numbers in [0, 1) and the labels are random
digits, because the values do not change the time of a step.

Each implementation is timed in a fresh Python process that imports only
its own library, because importing PyTorch changes how glibc's malloc
returns memory to the kernel, and so how many page faults a pullback step
takes. The processes take turns, in an order that rotates each round. The
script prints the minimum and median milliseconds per step over all
repeats, the ratio to PyTorch, and the minor page faults per step. The
target is met when the ratio of minimum times is at most TARGET_RATIO.

Run it with `python benchmarks/cnn_step.py [--quick] [--threads N]
[--breakdown]`. `--quick` makes a short smoke run whose times are not meant
to be read. `--threads N` (default 1) sets the BLAS and OpenMP thread count
of both NumPy and PyTorch. `--breakdown` also splits pullback's step, in a
process of its own, into the time spent inside each registered VJP and
pullback of `pullback.nn`, the rest of the gradient (generated code, the
runtime and the API) and the Adam update.
"""

import argparse
import collections
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

from machine import cpu_model

TARGET_RATIO = 1.5
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
SEED = 0
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="run a short smoke test; its times are not meant to be read")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS and OpenMP threads for NumPy and PyTorch (default: 1)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timing processes per implementation (default: 5, or 1 with --quick)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also split pullback's step into its parts")
    parser.add_argument("--worker", choices=("pullback", "torch", "breakdown"), default=None,
                        help=argparse.SUPPRESS)  # Time one implementation and print JSON.
    options = parser.parse_args(argv)
    if options.threads < 1:
        parser.error(f"--threads must be at least 1, got {options.threads}")
    return options


# The thread counts must be in the environment before NumPy loads OpenBLAS,
# so the arguments are read before NumPy is imported.
OPTIONS = parse_arguments()
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = str(OPTIONS.threads)

import numpy as np  # noqa: E402

try:
    import resource
except ImportError:  # Not on Windows, where no page-fault count is printed.
    resource = None

import pullback  # noqa: E402
from pullback import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "samples"))
from digits_cnn import DigitsCNN, loss  # noqa: E402


def make_batch():
    rng = np.random.default_rng(SEED)
    images = rng.random((BATCH_SIZE, 8, 8, 1), dtype=np.float32)
    labels = rng.integers(0, 10, BATCH_SIZE)
    return images, labels


def pullback_step_function(model, images, labels):
    """Return a function running one pullback training step, and the loss-and-gradient."""
    optimizer = nn.Adam(model, learning_rate=LEARNING_RATE)
    loss_and_gradient = pullback.value_and_gradient(loss, wrt="model")

    def pullback_step():
        value, gradient = loss_and_gradient(model, images, labels)
        optimizer.update(model, along=gradient)
        return value

    return pullback_step, loss_and_gradient


def torch_network(model):
    """Return the PyTorch network with `model`'s weights, or raise ImportError."""
    import torch

    class TorchDigitsCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
            self.dense = torch.nn.Linear(2 * 2 * 32, 10)

        def forward(self, images):
            x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(images)), 2)
            x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.dense(torch.flatten(x, 1))

    network = TorchDigitsCNN()
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            conv = getattr(model, name)
            # HWIO to OIHW.
            getattr(network, name).weight.copy_(torch.from_numpy(conv.filter.transpose(3, 2, 0, 1)))
            getattr(network, name).bias.copy_(torch.from_numpy(conv.bias))
        # pullback flattens (h, w, c) and PyTorch (c, h, w): reorder the rows.
        weight = model.dense.weight.reshape(2, 2, 32, 10).transpose(2, 0, 1, 3).reshape(128, 10)
        network.dense.weight.copy_(torch.from_numpy(weight.T.copy()))
        network.dense.bias.copy_(torch.from_numpy(model.dense.bias))
    return network


def torch_step_function(network, images, labels):
    import torch

    optimizer = torch.optim.Adam(network.parameters(), lr=LEARNING_RATE)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(labels)

    def torch_step():
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(network(x), y)
        value.backward()
        optimizer.step()
        return value

    return torch_step, x, y


def check_agreement(model, network, loss_and_gradient, images, labels, x, y) -> None:
    """Exit with an error unless both compute the same loss and gradients."""
    import torch

    value, gradient = loss_and_gradient(model, images, labels)
    network.zero_grad()
    torch_value = torch.nn.functional.cross_entropy(network(x), y)
    torch_value.backward()
    if not np.isclose(value, torch_value.item(), rtol=1e-5):
        sys.exit(f"cnn_step.py: pullback's loss is {value} but PyTorch's is {torch_value.item()}")
    dense_weight = gradient.dense.weight.reshape(2, 2, 32, 10).transpose(2, 0, 1, 3)
    pairs = {
        "conv1 filter": (gradient.conv1.filter.transpose(3, 2, 0, 1), network.conv1.weight),
        "conv1 bias": (gradient.conv1.bias, network.conv1.bias),
        "conv2 filter": (gradient.conv2.filter.transpose(3, 2, 0, 1), network.conv2.weight),
        "conv2 bias": (gradient.conv2.bias, network.conv2.bias),
        "dense weight": (dense_weight.reshape(128, 10).T, network.dense.weight),
        "dense bias": (gradient.dense.bias, network.dense.bias),
    }
    for name, (ours, parameter) in pairs.items():
        theirs = parameter.grad.numpy()
        if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-3, atol=1e-6):
            sys.exit(
                f"cnn_step.py: the gradients of the {name} differ between pullback and PyTorch"
            )


def calls_per_repeat(timer: timeit.Timer, seconds: float) -> int:
    """Return how many calls take about `seconds`, after a calibration run."""
    calls = 1
    while True:
        elapsed = timer.timeit(calls)
        if elapsed >= 0.02 or calls >= 10**5:
            break
        calls *= 4
    return max(1, round(calls * seconds / elapsed))


def minor_page_faults():
    if resource is None:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_step(step, repeats: int, seconds: float):
    """Return the seconds per call of each repeat and the page faults per call."""
    timer = timeit.Timer(step)
    calls = calls_per_repeat(timer, seconds)
    before = minor_page_faults()
    samples = [timer.timeit(calls) / calls for _ in range(repeats)]
    faults = None if before is None else (minor_page_faults() - before) / (repeats * calls)
    return samples, faults


def run_worker(name: str, repeats: int, seconds: float) -> None:
    """Time one implementation in this process and print the result as JSON."""
    images, labels = make_batch()
    model = DigitsCNN(np.random.default_rng(SEED))
    if name == "pullback":
        step, _ = pullback_step_function(model, images, labels)
    else:
        import torch

        torch.set_num_threads(OPTIONS.threads)
        step, _, _ = torch_step_function(torch_network(model), images, labels)
    samples, faults = time_step(step, repeats, seconds)
    print(json.dumps({"samples": samples, "faults": faults}))


def timed_registered_derivatives(functions, totals: dict) -> None:
    """Make the registered VJPs of `functions` add their time to `totals`.

    Each VJP's forward time goes under "name forward" and its pullback's
    time under "name pullback". This replaces the VJP kept in the runtime's
    registry record, so it is for this diagnostic process only.
    """
    from pullback.runtime import registry

    for function in functions:
        record = registry.custom_derivative(function)
        name = function.__name__
        original_vjp = record.vjp

        def timed_vjp(*args, _original=original_vjp, _name=name, **kwargs):
            started = time.perf_counter()
            value, original_pullback = _original(*args, **kwargs)
            totals[f"{_name} forward"] += time.perf_counter() - started

            def timed_pullback(cotangent):
                started = time.perf_counter()
                cotangents = original_pullback(cotangent)
                totals[f"{_name} pullback"] += time.perf_counter() - started
                return cotangents

            return value, timed_pullback

        record.vjp = timed_vjp


def run_breakdown(steps: int) -> None:
    """Print where one pullback training step spends its time, in microseconds."""
    images, labels = make_batch()
    model = DigitsCNN(np.random.default_rng(SEED))
    optimizer = nn.Adam(model, learning_rate=LEARNING_RATE)
    loss_and_gradient = pullback.value_and_gradient(loss, wrt="model")
    totals = collections.defaultdict(float)
    timed_registered_derivatives(
        (nn.conv2d, nn.max_pool2d, nn.relu, nn.softmax_cross_entropy), totals
    )
    for _ in range(10):
        optimizer.update(model, along=loss_and_gradient(model, images, labels)[1])
    totals.clear()
    gradient_time = update_time = 0.0
    for _ in range(steps):
        started = time.perf_counter()
        gradient = loss_and_gradient(model, images, labels)[1]
        middle = time.perf_counter()
        optimizer.update(model, along=gradient)
        gradient_time += middle - started
        update_time += time.perf_counter() - middle
    print(f"\nbreakdown of a pullback step (µs per step, mean of {steps} steps):")
    for name, seconds in sorted(totals.items()):
        print(f"  {name:<34}{seconds / steps * 1e6:>8.0f}")
    rest = gradient_time - sum(totals.values())
    print(f"  {'rest of the gradient':<34}{rest / steps * 1e6:>8.0f}")
    print(f"  {'gradient in all':<34}{gradient_time / steps * 1e6:>8.0f}")
    print(f"  {'Adam update':<34}{update_time / steps * 1e6:>8.0f}")


def time_in_processes(names, rounds: int, repeats: int, seconds: float):
    """Time each implementation in fresh processes, taking turns each round."""
    samples = {name: [] for name in names}
    faults = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            command = [sys.executable, __file__, "--worker", name,
                       "--threads", str(OPTIONS.threads), "--rounds", str(repeats)]
            if OPTIONS.quick:
                command.append("--quick")
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                sys.exit(f"cnn_step.py: timing {name} failed:\n{result.stderr}")
            measured = json.loads(result.stdout.splitlines()[-1])
            samples[name] += measured["samples"]
            faults[name].append(measured["faults"])
    return samples, {
        name: None if None in values else statistics.mean(values)
        for name, values in faults.items()
    }




def print_machine(threads: int) -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}")
    try:
        print(f"torch {importlib.metadata.version('torch')}")
    except importlib.metadata.PackageNotFoundError:
        print("torch: not installed")
    print(f"threads: {threads} (BLAS and OpenMP, both libraries)")
    tunables = os.environ.get("GLIBC_TUNABLES")
    print(f"GLIBC_TUNABLES={tunables}" if tunables else "GLIBC_TUNABLES not set")


def print_table(samples: dict, faults: dict) -> None:
    header = (f"{'implementation':<14}{'min ms':>9}{'median ms':>11}{'min ratio':>11}"
              f"{'median ratio':>14}{'page faults':>13}")
    print(header)
    print("-" * len(header))
    reference = samples.get("torch")
    for name, times in samples.items():
        low, middle = min(times), statistics.median(times)
        if reference is None:
            ratios = f"{'-':>11}{'-':>14}"
        else:
            ratios = (f"{low / min(reference):>11.2f}"
                      f"{middle / statistics.median(reference):>14.2f}")
        fault_text = "-" if faults[name] is None else f"{faults[name]:.0f}"
        print(f"{name:<14}{low * 1e3:>9.3f}{middle * 1e3:>11.3f}{ratios}{fault_text:>13}")


def main() -> None:
    options = OPTIONS
    seconds = 0.02 if options.quick else 0.3
    if options.worker == "breakdown":
        run_breakdown(50 if options.quick else 500)
        return
    if options.worker is not None:
        # In a worker, --rounds is the number of timing repeats.
        run_worker(options.worker, options.rounds or 5, seconds)
        return
    rounds = options.rounds or (1 if options.quick else 5)
    repeats = 2 if options.quick else 5
    print_machine(options.threads)

    names = ["pullback"]
    if importlib.util.find_spec("torch") is None:
        print("torch: unavailable (not installed)")
    else:
        import torch

        torch.set_num_threads(options.threads)
        images, labels = make_batch()
        model = DigitsCNN(np.random.default_rng(SEED))
        network = torch_network(model)
        _, loss_and_gradient = pullback_step_function(model, images, labels)
        _, x, y = torch_step_function(network, images, labels)
        check_agreement(model, network, loss_and_gradient, images, labels, x, y)
        print("losses and gradients agree with PyTorch")
        names.append("torch")
    print(f"one training step: batch {BATCH_SIZE}, 8x8x1 float32 images, Adam; "
          f"{rounds} processes of {repeats} repeats each\n")

    samples, faults = time_in_processes(names, rounds, repeats, seconds)
    print_table(samples, faults)
    if "torch" in samples:
        ratio = min(samples["pullback"]) / min(samples["torch"])
        verdict = "met" if ratio <= TARGET_RATIO else "not met"
        print(f"\ntarget: pullback / torch <= {TARGET_RATIO} (ratio of minimums): "
              f"{ratio:.2f}, {verdict}")
    else:
        print("\ntarget: pullback / torch: not measured, torch is unavailable")
    if options.breakdown:
        command = [sys.executable, __file__, "--worker", "breakdown",
                   "--threads", str(options.threads)]
        if options.quick:
            command.append("--quick")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"cnn_step.py: the breakdown failed:\n{result.stderr}")
        print(result.stdout, end="")


if __name__ == "__main__":
    main()
