"""The `pullback` command line, run in a subprocess as a user runs it."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SOURCES = {
    "model.py": """
        import numpy as np

        from helpers import square


        def f(x, y):
            return np.sum(np.sin(x) * y)


        def penalty(w):
            return square(w)


        ITERATIONS = 3


        class Model:
            def loss(self, w):
                return np.sum(w * w)


        if __name__ == "__main__":
            print("MAIN BLOCK RAN")
        """,
    "helpers.py": """
        import numpy as np


        def square(w):
            return np.sum(w * w)
        """,
    "guarded.py": """
        def safe_root(x):
            try:
                return x ** 0.5
            except ZeroDivisionError:
                return 0.0
        """,
    "decorated.py": """
        import numpy as np

        import pullback


        @pullback.differentiable
        def quiet_log(x):
            with np.errstate(divide="ignore"):
                return np.log(x)
        """,
    "broken.py": """
        def f(x):
            return x +
        """,
    "bad_import.py": """
        import module_that_does_not_exist
        """,
}


def run_pullback(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pullback", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path):
    for name, source in SOURCES.items():
        # Strip the first newline so line numbers match the source as written.
        (tmp_path / name).write_text(textwrap.dedent(source).lstrip("\n"))
    return tmp_path


def test_help_lists_commands(tmp_path):
    result = run_pullback("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("dump", "check", "demo"):
        assert command in result.stdout


def test_dump_help_explains_options(tmp_path):
    result = run_pullback("dump", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--wrt" in result.stdout
    assert "parameter names or 0-based indices" in result.stdout
    assert "FILE.py:NAME" in result.stdout


def test_no_command_is_usage_error(tmp_path):
    result = run_pullback(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_dump_prints_vjp_source(project):
    result = run_pullback("dump", "model.py:f", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "def f_vjp(x, y):" in result.stdout
    assert "return (x_bar, y_bar)" in result.stdout
    assert "# adjoint of line 7: return np.sum(np.sin(x) * y)" in result.stdout
    assert "Traceback" not in result.stderr
    compile(result.stdout, "dumped.py", "exec")


def test_dump_single_use(project):
    result = run_pullback("dump", "model.py:f", "--single-use", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# single-use VJP of f")
    assert "nonlocal" in result.stdout
    compile(result.stdout, "dumped.py", "exec")


def test_dump_skips_main_block(project):
    result = run_pullback("dump", "model.py:f", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "MAIN BLOCK RAN" not in result.stdout


def test_dump_wrt_by_name_and_index(project):
    by_name = run_pullback("dump", "model.py:f", "--wrt", "y", cwd=project)
    by_index = run_pullback("dump", "model.py:f", "--wrt", "1", cwd=project)
    assert by_name.returncode == 0, by_name.stderr
    assert by_index.returncode == 0, by_index.stderr
    assert "return (y_bar,)" in by_name.stdout
    assert "with respect to y" in by_name.stdout
    assert by_index.stdout == by_name.stdout


def test_dump_wrt_list(project):
    result = run_pullback("dump", "model.py:f", "--wrt", "y, 0", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "with respect to y, x" in result.stdout


def test_dump_dotted_method(project):
    result = run_pullback("dump", "model.py:Model.loss", "--wrt", "w", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "return (w_bar,)" in result.stdout


def test_dump_resolves_sibling_import(project):
    result = run_pullback("dump", "model.py:penalty", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "def penalty_vjp(w):" in result.stdout


def test_check_reports_ok(project):
    result = run_pullback("check", "model.py:f", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: f in model.py is differentiable")


def test_check_reports_try_statement(project):
    result = run_pullback("check", "guarded.py:safe_root", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("guarded.py:2:5: error: ")
    assert "try statement" in result.stderr
    assert "hint: " in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_check_reports_decorator_error(project):
    # @differentiable raises while the file loads, before the function is found.
    result = run_pullback("check", "decorated.py:quiet_log", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("decorated.py:8:5: error: a with statement")
    assert "Traceback" not in result.stderr


# (arguments, phrase expected on stderr)
ERROR_CASES = {
    "missing file": (["dump", "absent.py:f"], "file not found: absent.py"),
    "missing function": (
        ["dump", "model.py:g"],
        "model.py has no function or attribute 'g'; functions defined there:",
    ),
    "missing method": (
        ["dump", "model.py:Model.fit"],
        "has no function or attribute 'fit'",
    ),
    "not a function": (["dump", "model.py:np"], "is a module, not a function"),
    "int not a function": (["dump", "model.py:ITERATIONS"], "is an int, not a function"),
    "target without colon": (["dump", "model.py"], "expected FILE.py:NAME"),
    "file syntax error": (["dump", "broken.py:f"], "broken.py:2:"),
    "failing import": (["dump", "bad_import.py:f"], "ModuleNotFoundError"),
    "try statement": (
        ["dump", "guarded.py:safe_root"],
        "guarded.py:2:5: error: a try statement",
    ),
    "decorated with statement": (
        ["dump", "decorated.py:quiet_log"],
        "decorated.py:8:5: error:",
    ),
    "unknown wrt name": (["dump", "model.py:f", "--wrt", "z"], "no parameter 'z'"),
    "empty wrt item": (["dump", "model.py:f", "--wrt", "x,,y"], "invalid --wrt"),
    "check missing file": (["check", "absent.py:f"], "file not found"),
    "check unknown wrt": (["check", "model.py:f", "--wrt", "5"], "out of range"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES), ids=list(ERROR_CASES))
def test_error_exits_without_traceback(project, case):
    args, phrase = ERROR_CASES[case]
    result = run_pullback(*args, cwd=project)
    assert result.returncode == 2
    assert phrase in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_syntax_error_is_one_line(project):
    result = run_pullback("dump", "broken.py:f", cwd=project)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("broken.py:2:")


def test_demo_passes_gradient_check(tmp_path):
    result = run_pullback("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "def loss(weights, bias, inputs, targets):" in result.stdout
    assert "def loss_vjp(" in result.stdout
    assert "d loss / d weights" in result.stdout
    assert "max abs error" in result.stdout
    assert result.stdout.rstrip().endswith("PASS")
    assert "Traceback" not in result.stderr


def _console_script():
    """Return the `pullback` script installed next to this Python, or None."""
    scripts = Path(sys.executable).parent
    for name in ("pullback", "pullback.exe"):
        if (scripts / name).is_file():
            return scripts / name
    return None


@pytest.mark.skipif(_console_script() is None, reason="console script not installed")
def test_console_script_runs(project):
    script = _console_script()
    env = dict(os.environ, PATH=f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["pullback", "dump", "model.py:f"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "def f_vjp(x, y):" in result.stdout


def readme_block_after(marker: str) -> str:
    """Return the first fenced code block after `marker` in the README."""
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    after = text[text.index(marker):]
    start = after.index("```python\n") + len("```python\n")
    return after[start:after.index("```", start)]


def test_readme_dump_example_matches_output(tmp_path):
    model = readme_block_after("Given `model.py`:")
    (tmp_path / "model.py").write_text(model, encoding="utf-8")
    result = run_pullback("dump", "model.py:predict", "--wrt", "w", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = readme_block_after("`pullback dump model.py:predict --wrt w` prints:")
    assert result.stdout == expected
