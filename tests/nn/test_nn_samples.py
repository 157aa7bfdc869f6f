"""The neural-network samples, run in a subprocess as a user runs them."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

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


def load_sample(name):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), SAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numbers_after(label, text):
    """Return the numbers of the array printed after `label`, up to the next label."""
    match = re.search(re.escape(label) + r"(.*?)(?=\n[A-Za-z]|\Z)", text, re.S)
    assert match is not None, f"no {label!r} in the output"
    return np.array([float(v) for v in re.findall(r"-?\d+\.\d*(?:e[-+]\d+)?", match.group(1))])


def test_xor_prints_loss_and_cotangents_each_step():
    result = run_sample("xor_mlp.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    labels = [line.split(" ")[0] for line in lines if line[:1].isalpha()]
    assert labels == ["Loss:", "dL/dyhat", "dL/dlayer1"] * 10
    losses = [float(v) for v in re.findall(r"^Loss: (\S+)", result.stdout, re.M)]
    assert losses[-1] < losses[0]


def test_xor_first_output_cotangent():
    # dL/dyhat of the mean squared error is 2 (yhat - y) / 4, computed here
    # from a plain forward pass of the sample's network at its seed.
    sample = load_sample("xor_mlp.py")
    classifier = sample.MLP(np.random.default_rng(sample.SEED))
    hidden = np.maximum(sample.x @ classifier.layer1.weight + classifier.layer1.bias, 0)
    y_hat = np.maximum(hidden @ classifier.layer2.weight + classifier.layer2.bias, 0)
    expected = 2 * (y_hat - sample.y) / 4

    result = run_sample("xor_mlp.py")
    first_step = result.stdout.split("Loss:")[1]
    printed = numbers_after("dL/dyhat =", first_step)
    np.testing.assert_allclose(printed, expected.ravel(), rtol=1e-6, atol=1e-7)
    layer1 = numbers_after("dL/dlayer1 =", first_step)
    assert layer1.shape == (40,)


def test_checkpointed_cnn_applies_conv_twice_per_step():
    result = run_sample("checkpointed_cnn.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 30
    for step in range(5):
        block = lines[6 * step : 6 * step + 6]
        assert block[0] == f"Starting training step {step + 1}"
        assert block[1] == "  Running original computation..."
        assert block[2] == "    Applying Conv2D layer..."
        assert block[3].startswith("  Loss: ")
        assert block[4] == "  Running backpropagation..."
        assert block[5] == "    Applying Conv2D layer..."
    losses = [float(line.split()[-1]) for line in lines if line.startswith("  Loss: ")]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:], strict=False))


def _epoch_lines(output):
    return re.findall(r"^epoch +(\d+)  loss (\S+)  held-out accuracy (\S+)", output, re.M)


def _held_out_accuracy(output):
    match = re.search(r"held-out accuracy: (\d+\.\d+)", output)
    return None if match is None else float(match.group(1))


@requires_sklearn
def test_digits_cnn_short_run():
    result = run_sample("digits_cnn.py", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    epochs = _epoch_lines(result.stdout)
    assert [int(number) for number, _, _ in epochs] == [1, 2]
    assert float(epochs[1][1]) < float(epochs[0][1])
    accuracy = _held_out_accuracy(result.stdout)
    assert accuracy is not None
    assert 0.0 <= accuracy <= 1.0


@requires_sklearn
def test_digits_cnn_rejects_zero_epochs():
    result = run_sample("digits_cnn.py", "--epochs", "0")
    assert result.returncode == 2
    assert "--epochs must be at least 1" in result.stderr


@requires_sklearn
def test_digits_cnn_default_run_reaches_accuracy():
    result = run_sample("digits_cnn.py")
    assert result.returncode == 0, result.stderr
    assert len(_epoch_lines(result.stdout)) == 20
    accuracy = _held_out_accuracy(result.stdout)
    assert accuracy is not None
    assert accuracy >= 0.97
