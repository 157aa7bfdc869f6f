"""Derivative rules for the standard library's `math` module."""

import math

from pullback.compiler.rules.core import defrule

defrule(math.sin, "x, /", x="g * math.cos(x)")
defrule(math.cos, "x, /", x="-g * math.sin(x)")
defrule(math.exp, "x, /", x="g * ans")
defrule(math.log, "x, base=math.e, /", x="g / (x * math.log(base))")
