"""Derivative rules for pullback's own markers.

`no_derivative`, `@no_derivative` functions and `checkpointed` calls are
recognized by the classifier; `with_derivative` and the runtime's `sequence`
have adjoint templates.
"""

from pullback.compiler.rules.core import defrule
from pullback.runtime import structure
from pullback.runtime.markers import with_derivative

defrule(with_derivative, "x, hook", x="rt.apply_hook(hook, g)")

# Loops over an iterable index `rt.sequence(iterable)`, the iterable itself
# when it is an array, list or tuple.
defrule(structure.sequence, "iterable", iterable="g", structured=True)

# `f(a, *xs)` joins its positional arguments into one tuple before the call.
# `at` gives each part's place in the user's source, for errors.
defrule(structure.joined, "*parts, at=None", structured=True,
        parts="rt.joined_part_cotangent(g, parts, index)")

# Writes and list growth, which normalization turns into new values.
defrule(structure.with_item, "container, index, value", structured=True,
        container="rt.without_item(g, index, shape_of(container))",
        value="rt.item_cotangent(g, index, value, shape_of(container))")
defrule(structure.appended, "items, value", structured=True,
        items="g[:-1]", value="g[-1]")
defrule(structure.extended, "items, values", structured=True,
        items="rt.extended_head(g, items)", values="rt.extended_tail(g, items, values)")
defrule(structure.reversed_list, "items", structured=True, items="g[::-1]")
defrule(structure.sorted_copy, "value, key=None, reverse=False", structured=True,
        value="rt.sorted_copy_adjoint(g, value, key, reverse)")
defrule(structure.dict_of, "keys, values", structured=True,
        values="rt.dict_values_cotangent(g, keys, values)")
