"""Derivative rules for Python's arithmetic operators.

Binary operators broadcast like NumPy, so their contributions are summed back
to each operand's shape.
"""

from pullback.compiler.rules.core import CUT, NON_DIFFERENTIABLE_OPERATORS, operator

operator("Add",     "x, y", x="g",                 y="g")
operator("Sub",     "x, y", x="g",                 y="-g")
operator("Mult",    "x, y", x="g * y",             y="g * x")
operator("Div",     "x, y", x="g / y",             y="-g * ans / y")
operator("Pow",     "x, y", x="g * y * x ** (y - 1)",
                            y="rt.exponent_adjoint(g, ans, x)")
operator("Mod",     "x, y", x="g",                 y="-g * np.floor_divide(x, y)")
# The matmul helpers unbroadcast stacked operands themselves.
operator("MatMult", "x, y", broadcasting=False, arithmetic=False,
                            x="rt.matmul_adjoint_lhs(g, x, y)",
                            y="rt.matmul_adjoint_rhs(g, x, y)")
operator("USub",    "x",    x="-g")
operator("UAdd",    "x",    x="g")

# Floor division is piecewise constant; the rest return booleans or integers.
for _name in ("FloorDiv", "Not", "Invert", "BitAnd", "BitOr", "BitXor",
              "LShift", "RShift", "Eq", "NotEq", "Lt", "LtE", "Gt", "GtE",
              "Is", "IsNot", "In", "NotIn"):
    NON_DIFFERENTIABLE_OPERATORS[_name] = CUT
