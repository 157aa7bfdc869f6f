"""Exceptions raised by pullback.

Every error the library raises on purpose derives from `PullbackError`. Errors
about the user's source carry its file, line, column and source line, and
their message ends with what to do next.
"""

from __future__ import annotations

import warnings


class PullbackError(Exception):
    """Base class of every error pullback raises on purpose."""


class SourceLocation:
    """A position in the user's source: file, 1-based line, 1-based column."""

    __slots__ = ("filename", "lineno", "col", "text")

    def __init__(self, filename: str, lineno: int, col: int, text: str = ""):
        self.filename = filename
        self.lineno = lineno
        self.col = col
        self.text = text

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}:{self.col}"


def _format_located(message: str, location: SourceLocation | None, hint: str) -> str:
    parts = []
    if location is not None:
        parts.append(f"{location}: {message}")
        if location.text:
            stripped = location.text.rstrip("\n")
            indent = len(stripped) - len(stripped.lstrip())
            parts.append("    " + stripped.strip())
            caret = max(location.col - 1 - indent, 0)
            parts.append("    " + " " * caret + "^")
    else:
        parts.append(message)
    if hint:
        parts.append(hint)
    return "\n".join(parts)


class UnsupportedSyntaxError(PullbackError, SyntaxError):
    """The differentiated function uses syntax outside the differentiable subset.

    It is a `SyntaxError` too, so tools that report syntax errors with a file
    and line show it the same way.
    """

    def __init__(self, message: str, location: SourceLocation, hint: str = ""):
        self.message = message
        self.hint = hint
        self.location = location
        SyntaxError.__init__(
            self,
            _format_located(message, location, hint),
            (location.filename, location.lineno, location.col, location.text),
        )

    def __str__(self) -> str:
        return self.args[0]


class DifferentiationError(PullbackError, TypeError):
    """A call or operation in the differentiated function has no derivative."""

    def __init__(
        self, message: str, location: SourceLocation | None = None, hint: str = ""
    ):
        self.message = message
        self.hint = hint
        self.location = location
        super().__init__(_format_located(message, location, hint))


class NoSourceError(PullbackError, TypeError):
    """A function to differentiate has no Python source to read."""


class NonScalarOutputError(PullbackError, ValueError):
    """`gradient` was asked for a function whose result is not a scalar."""


class CotangentError(PullbackError, ValueError):
    """A cotangent passed to a pullback does not match the primal result."""


class WrtError(PullbackError, ValueError):
    """A `wrt` argument names no parameter of the function."""


class ArgumentTypeError(PullbackError, TypeError):
    """An argument of the wrong type to a pullback function, such as a hook
    that is not callable."""


class DerivativeRegistrationError(PullbackError, ValueError):
    """A custom derivative is registered twice or returns the wrong cotangents."""


class InternalError(PullbackError, AssertionError):
    """An invariant of pullback itself broke: a bug to report."""

    def __init__(self, message: str):
        super().__init__(
            f"internal error in pullback: {message}. This is a bug in pullback, "
            "not in your code; please report it with the function you "
            "differentiated."
        )


class ZeroDerivativeWarning(UserWarning):
    """A differentiation argument's derivative is statically zero."""


def warn_zero_derivative(message: str, filename: str, lineno: int) -> None:
    """Issue a `ZeroDerivativeWarning` attributed to the user's definition."""
    warnings.warn_explicit(
        message, ZeroDerivativeWarning, filename, lineno, module="pullback"
    )


_WARNING_NAMES = ("pullback.ZeroDerivativeWarning", "pullback.errors.ZeroDerivativeWarning")


def apply_command_line_filters() -> None:
    """Apply `-W` options that name pullback's warnings.

    Python reads `-W` options before it can import a third-party module, so
    it ignores `-W error::pullback.ZeroDerivativeWarning` with an "invalid
    module name" message. pullback applies such options itself on import.
    """
    import sys

    actions = {"error", "ignore", "always", "default", "module", "once"}
    for option in sys.warnoptions:
        parts = [part.strip() for part in option.split(":")]
        parts += [""] * (5 - len(parts))
        action, message, category, module, lineno = parts[:5]
        if category not in _WARNING_NAMES:
            continue
        matches = [name for name in actions if name.startswith(action)] if action else ["default"]
        if len(matches) != 1:
            continue
        try:
            line = int(lineno) if lineno else 0
        except ValueError:
            continue
        warnings.filterwarnings(matches[0], message, ZeroDerivativeWarning, module, line)
