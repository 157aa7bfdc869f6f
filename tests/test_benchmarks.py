"""The benchmark scripts, run in a subprocess as a user runs them.

Only the smoke runs are tested: they must finish and print their tables.
Times depend on the machine, so no test checks them.
"""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_benchmark(name, *args):
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        cwd=BENCHMARKS.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mlp_gradient_quick_run():
    result = run_benchmark("mlp_gradient.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "gradients agree" in result.stdout
    for size in ("4x2-10-1", "128x784-256-10"):
        assert f"{size}  " in result.stdout, f"no row for size {size}"
        assert f"{size}: " in result.stdout, f"no target line for size {size}"
    assert "pullback" in result.stdout
    assert "hand-written" in result.stdout


def test_mlp_gradient_quick_breakdown():
    result = run_benchmark("mlp_gradient.py", "--quick", "--breakdown")
    assert result.returncode == 0, result.stderr
    assert "maximum_share" in result.stdout
    assert "value_and_gradient" in result.stdout


def test_loop_recurrence_quick_run():
    result = run_benchmark("loop_recurrence.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "gradients agree" in result.stdout
    for name in ("hand-written ", "pullback ", "hand-written np ", "pullback np "):
        assert f"\n{name}" in result.stdout, f"no row for {name.strip()}"
    assert "target: pullback / hand-written" in result.stdout
    assert "target: pullback faster than every peer" in result.stdout


def test_loop_recurrence_quick_breakdown():
    result = run_benchmark("loop_recurrence.py", "--quick", "--breakdown")
    assert result.returncode == 0, result.stderr
    assert "breakdown of the math variant" in result.stdout
    assert "breakdown of the numpy variant" in result.stdout
    assert "vjp, no helpers" in result.stdout
    assert "vjp forward" in result.stdout


def test_loop_memory_quick_run():
    result = run_benchmark("loop_memory.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "gradients agree" in result.stdout
    for workload in ("tanh", "affine sine"):
        assert f"\n{workload}: " in result.stdout, f"no table for {workload}"
    assert result.stdout.count("pullback / hand-written peak at") == 6
    assert "all targets met: " in result.stdout


def test_cnn_step_quick_run():
    result = run_benchmark("cnn_step.py", "--quick")
    assert result.returncode == 0, result.stderr
    assert "\npullback " in result.stdout
    assert "target: pullback / torch" in result.stdout
    if "torch: unavailable" not in result.stdout:
        assert "losses and gradients agree with PyTorch" in result.stdout
        assert "\ntorch " in result.stdout


def test_cnn_step_quick_breakdown():
    result = run_benchmark("cnn_step.py", "--quick", "--breakdown")
    assert result.returncode == 0, result.stderr
    assert "breakdown of a pullback step" in result.stdout
    for part in ("conv2d pullback", "max_pool2d forward", "rest of the gradient", "Adam update"):
        assert part in result.stdout, f"no row for {part}"
