"""Derivative rules for Python builtins."""

import builtins

from pullback.compiler.rules.core import CONSTANT, CUT, defrule, nondifferentiable

defrule(builtins.abs, "x, /", x="g * np.sign(x)")
defrule(builtins.float, "x=0.0, /", x="g")

nondifferentiable(builtins.len, builtins.range, builtins.isinstance, builtins.print,
                  kind=CONSTANT)
nondifferentiable(builtins.int, builtins.round, builtins.bool, kind=CUT)
