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
