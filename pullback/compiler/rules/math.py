"""Derivative rules for the standard library's `math` module.

Primals are Python floats here, so templates use `math` and produce floats.
Like `math` itself, a derivative that is infinite at a point raises there
(`math.sqrt` at 0 raises ZeroDivisionError in the pullback).
"""

import math

from pullback.compiler.rules.core import CUT, defrule, nondifferentiable

defrule(math.sin,      "x, /", x="g * math.cos(x)")
defrule(math.cos,      "x, /", x="-g * math.sin(x)")
defrule(math.tan,      "x, /", x="g * (1 + ans * ans)")
defrule(math.asin,     "x, /", x="g / math.sqrt(1 - x * x)")
defrule(math.acos,     "x, /", x="-g / math.sqrt(1 - x * x)")
defrule(math.atan,     "x, /", x="g / (1 + x * x)")
defrule(math.sinh,     "x, /", x="g * math.cosh(x)")
defrule(math.cosh,     "x, /", x="g * math.sinh(x)")
defrule(math.tanh,     "x, /", x="g * (1 - ans * ans)")
defrule(math.asinh,    "x, /", x="g / math.sqrt(x * x + 1)")
defrule(math.acosh,    "x, /", x="g / math.sqrt(x * x - 1)")
defrule(math.atanh,    "x, /", x="g / (1 - x * x)")
defrule(math.exp,      "x, /", x="g * ans")
defrule(math.expm1,    "x, /", x="g * (ans + 1)")
defrule(math.log,      "x, base=None, /",
        x="g / x if base is None else g / (x * math.log(base))",
        base="-g * ans / (base * math.log(base))")
defrule(math.log2,     "x, /", x="g / (x * math.log(2))")
defrule(math.log10,    "x, /", x="g / (x * math.log(10))")
defrule(math.log1p,    "x, /", x="g / (x + 1)")
defrule(math.sqrt,     "x, /", x="g / (2 * ans)")
defrule(math.pow,      "x, y, /", x="g * y * math.pow(x, y - 1)",
                                  y="g * ans * math.log(x)")
defrule(math.fabs,     "x, /", x="g * math.copysign(1, x) if x else 0 * g")
defrule(math.erf,      "x, /", x="g * (2 / math.sqrt(math.pi)) * math.exp(-x * x)")
defrule(math.erfc,     "x, /", x="-g * (2 / math.sqrt(math.pi)) * math.exp(-x * x)")
defrule(math.gamma,    "x, /", x="g * ans * rt.digamma(x)")
defrule(math.lgamma,   "x, /", x="g * rt.digamma(x)")
defrule(math.degrees,  "x, /", x="g * (180 / math.pi)")
defrule(math.radians,  "x, /", x="g * (math.pi / 180)")
defrule(math.atan2,    "y, x, /", y="g * x / (x * x + y * y)",
                                  x="-g * y / (x * x + y * y)")
defrule(math.hypot,    "*coordinates", coordinates="g * coordinates[index] / ans")
defrule(math.copysign, "x, y, /", x="g * math.copysign(1, x) * math.copysign(1, y)")
# Both are x - n * y for an integer n, which (x - ans) / y recovers.
defrule(math.fmod,     "x, y, /", x="g", y="-g * (x - ans) / y")
defrule(math.remainder, "x, y, /", x="g", y="-g * (x - ans) / y")
defrule(math.ldexp,    "x, i, /", x="math.ldexp(g, i)")
defrule(math.dist,     "p, q, /", p="rt.dist_adjoint(g, ans, p, q)",
                                  q="rt.dist_adjoint(g, ans, q, p)")
defrule(math.fsum,     "seq, /", seq="rt.sum_adjoint(g, seq)")
defrule(math.prod,     "iterable, /, *, start=1",
        iterable="rt.sequence_prod_adjoint(g, iterable, start)",
        start="g * math.prod(iterable)")

# Python 3.11 added these two.
if hasattr(math, "cbrt"):
    defrule(math.cbrt, "x, /", x="g / (3 * ans * ans)")
if hasattr(math, "exp2"):
    defrule(math.exp2, "x, /", x="g * ans * math.log(2)")

nondifferentiable(
    math.ceil, math.floor, math.trunc, math.isfinite, math.isinf, math.isnan,
    math.isclose, math.isqrt, math.ulp, math.factorial, math.comb, math.perm,
    math.gcd, math.lcm,
    kind=CUT,
)
