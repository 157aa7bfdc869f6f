"""Derivative rules for pullback's own markers.

`no_derivative`, `@no_derivative` functions and `checkpointed` calls are
recognized by the classifier; only `with_derivative` has an adjoint template.
"""

from pullback.compiler.rules.core import defrule
from pullback.runtime.markers import with_derivative

defrule(with_derivative, "x, hook", x="rt.apply_hook(hook, g)")
