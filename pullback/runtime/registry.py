"""Dispatch from a called function to its VJP.

Generated code calls another user function through `call_vjp`, so the VJP is
looked up when the call runs: a custom derivative registered after the caller
was compiled still takes effect. The runtime never compiles: the API installs a
compiler hook that builds the VJP of a plain Python function on first use.
"""

from __future__ import annotations

from collections.abc import Callable

# Compiled VJPs of plain Python functions, all parameters differentiated.
_compiled: dict[object, Callable] = {}

# Custom VJPs registered by `derivative_of`, which win over compiled ones.
_custom: dict[object, Callable] = {}

_compiler_hook: Callable | None = None


def set_compiler_hook(hook: Callable) -> None:
    """Install the function that compiles a VJP for a plain Python function."""
    global _compiler_hook
    _compiler_hook = hook


def register_compiled(function, vjp: Callable) -> None:
    _compiled[function] = vjp


def register_custom(function, vjp: Callable) -> None:
    _custom[function] = vjp


def unregister_custom(function) -> None:
    _custom.pop(function, None)


def custom_vjp(function):
    return _custom.get(function)


def lookup_vjp(function) -> Callable:
    """Return the VJP of `function`: custom first, then compiled, then compile."""
    vjp = _custom.get(function)
    if vjp is not None:
        return vjp
    vjp = _compiled.get(function)
    if vjp is not None:
        return vjp
    if _compiler_hook is None:
        from pullback.errors import PullbackError

        raise PullbackError(
            f"no VJP is available for {function!r} and no compiler is installed; "
            "import pullback (not only pullback.runtime) before running "
            "generated code"
        )
    vjp = _compiler_hook(function)
    _compiled[function] = vjp
    return vjp


def call_vjp(function, *args, **kwargs):
    """Call `function`'s VJP: return its value and its pullback."""
    return lookup_vjp(function)(*args, **kwargs)
