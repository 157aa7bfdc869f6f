"""The `pullback` command line: `dump`, `check` and `demo`.

The exit status is 0 on success. It is 1 when `check` finds a compile error
or the `demo` gradient check fails. It is 2 for usage errors, for files that
cannot be loaded or functions that cannot be found, and for compile errors in
`dump`. An error prints on stderr as one line, followed by a hint line for
compile errors, and without a traceback.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import inspect
import sys
from pathlib import Path

import numpy as np

import pullback
from pullback.errors import PullbackError, WrtError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# The demo's central-difference step and the largest accepted absolute error.
# Central differences err by O(step**2) plus rounding of O(eps / step). In
# float64 the measured error for the demo program is about 4e-11.
DEMO_STEP = 1e-6
DEMO_TOLERANCE = 1e-6


class CommandError(Exception):
    """An error the command line reports as one message and exit status 2.

    `location` is `file:line:col` for errors at a place in a file.
    """

    def __init__(self, message: str, location: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        prefix = "pullback" if self.location is None else self.location
        return f"{prefix}: error: {self.message}"


# Loading the user's function.


def parse_target(target: str) -> tuple[Path, str]:
    """Split `FILE.py:NAME` into the file's path and the dotted name."""
    path_text, colon, name = target.rpartition(":")
    if not colon or not path_text or not name:
        raise CommandError(
            f"invalid target {target!r}: expected FILE.py:NAME, "
            "for example model.py:loss"
        )
    return Path(path_text), name


def load_module(path: Path):
    """Execute the file at `path` as a module named after it and return the module.

    The module's `__name__` is the file's stem, never `"__main__"`, so code
    under `if __name__ == "__main__":` does not run. The file's directory goes
    first on `sys.path`, as when Python runs the file, so sibling imports work.
    """
    if not path.exists():
        raise CommandError(f"file not found: {path}")
    if not path.is_file():
        raise CommandError(f"not a file: {path}")

    module_name = path.stem
    loader = importlib.machinery.SourceFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_loader(module_name, loader)
    module = importlib.util.module_from_spec(spec)

    sys.path.insert(0, str(path.resolve().parent))
    # Register the module so dataclasses and pickling can find it, unless the
    # name is taken (a file called numpy.py must not replace NumPy).
    registered = module_name not in sys.modules
    if registered:
        sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except PullbackError:
        # A compile error raised by @differentiable while the file loads goes
        # up, so the caller reports it like any other compile error.
        if registered:
            del sys.modules[module_name]
        raise
    except SyntaxError as error:
        if registered:
            del sys.modules[module_name]
        raise _syntax_error_to_command_error(error, path) from None
    except (Exception, SystemExit) as error:
        if registered:
            del sys.modules[module_name]
        raise CommandError(
            f"loading {path} failed: {type(error).__name__}: {error}"
        ) from None
    return module


def _syntax_error_to_command_error(error: SyntaxError, path: Path) -> CommandError:
    filename = error.filename or str(path)
    if error.lineno is None:
        return CommandError(f"{type(error).__name__}: {error.msg}", filename)
    location = f"{filename}:{error.lineno}:{error.offset or 1}"
    return CommandError(f"{type(error).__name__}: {error.msg}", location)


def find_function(module, dotted_name: str, path: Path):
    """Return the callable that `dotted_name`, such as `Model.loss`, names."""
    value = module
    owner = str(path)
    for part in dotted_name.split("."):
        if not hasattr(value, part):
            raise CommandError(_describe_missing(module, owner, part))
        value = getattr(value, part)
        owner = f"{owner}:{part}" if owner == str(path) else f"{owner}.{part}"
    if not callable(value):
        raise CommandError(
            f"{dotted_name} in {path} is {_with_article(type(value).__name__)}, "
            "not a function"
        )
    return value


def _with_article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _describe_missing(module, owner: str, name: str) -> str:
    message = f"{owner} has no function or attribute {name!r}"
    if owner != module.__file__:
        return message
    defined = sorted(
        key
        for key, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__
    )
    if defined:
        return f"{message}; functions defined there: {', '.join(defined)}"
    return f"{message}; the file defines no functions"


def parse_wrt(text: str | None):
    """Turn `--wrt x,1` into what `wrt=` accepts: a name, an index or a tuple."""
    if text is None:
        return None
    items = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise CommandError(
                f"invalid --wrt {text!r}: expected comma-separated parameter "
                "names or indices, such as x,y or 0,2"
            )
        is_index = item.lstrip("-").isdigit()
        items.append(int(item) if is_index else item)
    return items[0] if len(items) == 1 else tuple(items)


def load_function(target: str):
    path, name = parse_target(target)
    module = load_module(path)
    return path, find_function(module, name, path)


# Reporting.


def describe_pullback_error(error: PullbackError) -> str:
    """Format a compile error as `file:line:col: error: message` plus its hint."""
    location = getattr(error, "location", None)
    message = getattr(error, "message", None)
    if location is None or message is None:
        return f"pullback: error: {error}"
    lines = [f"{location}: error: {message}"]
    hint = getattr(error, "hint", "")
    if hint:
        lines.append(hint if hint.startswith("hint:") else f"hint: {hint}")
    return "\n".join(lines)


def _print_error(message: str) -> None:
    print(message, file=sys.stderr)


def _print_heading(title: str) -> None:
    print(f"== {title} ==")


# Subcommands.


def run_dump(args: argparse.Namespace) -> int:
    wrt = parse_wrt(args.wrt)
    try:
        _, function = load_function(args.target)
        source = pullback.adjoint_source(function, wrt=wrt, single_use=args.single_use)
    except PullbackError as error:
        _print_error(describe_pullback_error(error))
        return EXIT_USAGE
    print(source, end="" if source.endswith("\n") else "\n")
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    wrt = parse_wrt(args.wrt)
    try:
        path, function = load_function(args.target)
        pullback.adjoint_source(function, wrt=wrt)
    except WrtError as error:
        _print_error(describe_pullback_error(error))
        return EXIT_USAGE
    except PullbackError as error:
        _print_error(describe_pullback_error(error))
        return EXIT_FAILED
    name = getattr(function, "__qualname__", args.target)
    with_respect_to = f" with respect to {args.wrt}" if args.wrt else ""
    print(f"ok: {name} in {path} is differentiable{with_respect_to}")
    return EXIT_OK


def central_differences(function, args: tuple, index: int, step: float) -> np.ndarray:
    """Estimate the gradient of `function` in `args[index]` by central differences."""
    point = np.array(args[index], dtype=np.float64)
    estimate = np.zeros_like(point)
    for position in np.ndindex(point.shape):
        shifted = list(args)
        plus, minus = point.copy(), point.copy()
        plus[position] += step
        minus[position] -= step
        shifted[index] = plus
        above = function(*shifted)
        shifted[index] = minus
        below = function(*shifted)
        estimate[position] = (above - below) / (2 * step)
    return estimate


def run_demo(args: argparse.Namespace) -> int:
    from pullback import demo_program

    wrt = ("weights", "bias")
    arguments = demo_program.example_arguments()

    _print_heading(f"The program ({demo_program.__file__})")
    print(inspect.getsource(demo_program.loss))

    _print_heading(f"Its VJP: pullback.adjoint_source(loss, wrt={wrt})")
    print(pullback.adjoint_source(demo_program.loss, wrt=wrt))

    _print_heading("The value and gradient at fixed float64 inputs")
    value, gradients = pullback.value_and_gradient(demo_program.loss, wrt=wrt)(
        *arguments
    )
    print(f"loss = {value:.10f}")
    with np.printoptions(precision=8, suppress=True):
        for name, gradient in zip(wrt, gradients, strict=True):
            print(f"d loss / d {name} =\n{gradient}")

    _print_heading(f"Check against central finite differences (step {DEMO_STEP:g})")
    max_error = 0.0
    for index, (name, gradient) in enumerate(zip(wrt, gradients, strict=True)):
        estimate = central_differences(demo_program.loss, arguments, index, DEMO_STEP)
        error = float(np.max(np.abs(gradient - estimate)))
        print(f"{name}: max abs error {error:.2e}")
        max_error = max(max_error, error)
    passed = max_error <= DEMO_TOLERANCE
    verdict = "PASS" if passed else "FAIL"
    print(f"max abs error {max_error:.2e} (tolerance {DEMO_TOLERANCE:g}): {verdict}")
    return EXIT_OK if passed else EXIT_FAILED


# Argument parsing.

_TARGET_HELP = (
    "the function, as FILE.py:NAME; NAME may be dotted, such as Model.loss. "
    "The file is imported as a module, so its __main__ block does not run"
)
_WRT_HELP = (
    "comma-separated parameter names or 0-based indices to differentiate "
    "with respect to (default: every parameter)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pullback",
        description="Source-to-source reverse-mode automatic differentiation "
        "for Python and NumPy.",
    )
    parser.add_argument(
        "--version", action="version", version=f"pullback {pullback.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dump = commands.add_parser(
        "dump",
        help="print the generated VJP source of a function",
        description="Compile a function and print the Python source of its VJP. "
        "Exit status 2 if the file, the function or the compilation fails.",
    )
    dump.add_argument("target", metavar="FILE.py:NAME", help=_TARGET_HELP)
    dump.add_argument("--wrt", metavar="NAMES", help=_WRT_HELP)
    dump.add_argument(
        "--single-use", action="store_true",
        help="print the single-use VJP, which gradient() runs for a function "
        "that checkpoints a call: its pullback deletes each forward value after "
        "its last use and so runs only once",
    )
    dump.set_defaults(run=run_dump)

    check = commands.add_parser(
        "check",
        help="report whether a function compiles to a VJP",
        description="Compile a function and print 'ok', or print the compile "
        "error with its file, line and column. Exit status 1 on a compile "
        "error, 2 if the file or the function cannot be loaded.",
    )
    check.add_argument("target", metavar="FILE.py:NAME", help=_TARGET_HELP)
    check.add_argument("--wrt", metavar="NAMES", help=_WRT_HELP)
    check.set_defaults(run=run_check)

    demo = commands.add_parser(
        "demo",
        help="differentiate a built-in program and check it",
        description="Print a small NumPy program, its generated VJP, its "
        "gradient at fixed inputs and a central finite-difference check of "
        "that gradient. Exit status 1 if the check fails.",
    )
    demo.set_defaults(run=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` (default: `sys.argv[1:]`).

    Returns the exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        _print_error(str(error))
        return EXIT_USAGE
