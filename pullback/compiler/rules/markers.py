"""Derivative rules for pullback's own markers.

`no_derivative`, `@no_derivative` functions and `checkpointed` calls are
recognized by the classifier; `with_derivative` and the runtime's `sequence`
have adjoint templates.
"""

from pullback.compiler.rules.core import defrule
from pullback.runtime.markers import with_derivative
from pullback.runtime.structure import sequence

defrule(with_derivative, "x, hook", x="rt.apply_hook(hook, g)")

# Loops over an iterable index `rt.sequence(iterable)`, the iterable itself
# when it is an array, list or tuple.
defrule(sequence, "iterable", iterable="g")
