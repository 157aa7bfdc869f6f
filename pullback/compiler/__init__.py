"""Source in, Python source out: the pullback compiler.

`compile_vjp` runs the passes in order: parse, check, normalize, activity,
reverse, optimize, emit. It does no numerical work.
"""

from pullback.compiler.pipeline import CompiledVJP, compile_vjp

__all__ = ["CompiledVJP", "compile_vjp"]
