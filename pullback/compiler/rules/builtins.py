"""Derivative rules for Python builtins."""

import builtins

from pullback.compiler.rules.core import CONSTANT, CUT, defrule, nondifferentiable

defrule(builtins.abs,   "x, /", x="g * np.sign(x)")
defrule(builtins.float, "x=0.0, /", x="rt.item_adjoint(g, x)")
defrule(builtins.pow,   "base, exp, mod=None", broadcasting=True,
        base="g * exp * base ** (exp - 1)", exp="rt.exponent_adjoint(g, ans, base)")
# `start` may be a scalar under a sum of arrays, so both unbroadcast.
defrule(builtins.sum,   "iterable, /, start=0",
        iterable="rt.sum_adjoint(g, iterable)", start="rt.unbroadcast(g, start)")
# One argument is an iterable; two or more are the candidates themselves.
# Tied candidates share the cotangent equally. `key=` and `default=` are not
# in the signature, so calls that use them are rejected.
defrule(builtins.max,   "*args", args="rt.extremum_share(g, ans, args, index)")
defrule(builtins.min,   "*args", args="rt.extremum_share(g, ans, args, index)")

nondifferentiable(builtins.len, builtins.range, builtins.isinstance, builtins.print,
                  builtins.type, builtins.id, builtins.hash, builtins.str,
                  builtins.repr, builtins.callable, builtins.hasattr,
                  builtins.issubclass, kind=CONSTANT)
nondifferentiable(builtins.int, builtins.round, builtins.bool, builtins.any,
                  builtins.all, kind=CUT)
