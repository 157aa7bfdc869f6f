"""The sample programs, run in a subprocess as a user runs them."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

requires_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason="the digits sample needs scikit-learn",
)


def run_sample(name, *args):
    return subprocess.run(
        [sys.executable, str(SAMPLES / name), *args],
        cwd=SAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_first_gradient_matches_differences():
    result = run_sample("first_gradient.py")
    assert result.returncode == 0, result.stderr
    for name in ("nested_sines", "cubic", "decaying", "product_with_log"):
        assert f"{name}(" in result.stdout
    assert "def nested_sines_vjp(x):" in result.stdout

    differences = [float(d) for d in re.findall(r"difference (\S+)", result.stdout)]
    # One line per partial derivative: three one-argument functions and one
    # two-argument function.
    assert len(differences) == 5
    assert max(differences) < 1e-6


def _losses(output):
    return [float(value) for value in re.findall(r"loss (\d+\.\d+)", output)]


def _held_out_accuracy(output):
    match = re.search(r"held-out accuracy: (\d+\.\d+)", output)
    return None if match is None else float(match.group(1))


@requires_sklearn
def test_digits_short_run_decreases_loss():
    result = run_sample("digits_logistic_regression.py", "--steps", "20")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    losses = _losses(result.stdout)
    assert len(losses) >= 2
    assert losses[-1] < losses[0]
    accuracy = _held_out_accuracy(result.stdout)
    assert accuracy is not None
    assert 0.0 <= accuracy <= 1.0


@requires_sklearn
def test_digits_rejects_zero_steps():
    result = run_sample("digits_logistic_regression.py", "--steps", "0")
    assert result.returncode == 2
    assert "--steps must be at least 1" in result.stderr


@requires_sklearn
def test_digits_default_run_reaches_accuracy():
    result = run_sample("digits_logistic_regression.py")
    assert result.returncode == 0, result.stderr
    accuracy = _held_out_accuracy(result.stdout)
    assert accuracy is not None
    assert accuracy >= 0.95


def _mebibytes(output, label):
    match = re.search(rf"peak memory {label} checkpointing:\s+(\d+\.\d+) MiB", output)
    return None if match is None else float(match.group(1))


def test_checkpointing_recomputes_square():
    result = run_sample("checkpointing.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "Running original computation...",
        "  Computing square...",
        "Running backpropagation...",
        "  Computing square...",
    ]
    assert lines[4].startswith("Gradient = -0.9129452")


def test_checkpointing_saves_memory():
    result = run_sample("checkpointing.py")
    assert result.returncode == 0, result.stderr
    plain = _mebibytes(result.stdout, "without")
    checkpointed = _mebibytes(result.stdout, "with")
    assert plain is not None
    assert checkpointed is not None
    # Without checkpointing the pullback keeps three arrays per block (the
    # input, the sine and the tanh); with it, only the input. So
    # checkpointing should at least halve the peak.
    assert checkpointed < 0.5 * plain
    difference = re.search(
        r"largest difference between the gradients: (\S+)", result.stdout
    )
    assert difference is not None
    assert float(difference.group(1)) < 1e-12
