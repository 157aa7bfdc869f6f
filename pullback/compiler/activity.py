"""Activity analysis: which values need a cotangent.

A value is varied when it depends differentiably on a differentiation
argument, and useful when the result depends differentiably on it. Active
values are both, and only they get adjoint code. Single assignment makes one
forward sweep (varied) and one backward sweep (useful) exact for straight-line
code and branches.

The same sweeps find zero derivatives: a differentiation argument that is not
active. To tell why, the varied sweep runs again with operations that cut a
derivative (floor, comparisons, argmax) treated as if they passed it on.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools

from pullback.compiler import naming, rules
from pullback.compiler.classify import (
    CHECKPOINT,
    EXPLICIT,
    NO_DERIVATIVE,
    PACK,
    RULE,
    UNSUPPORTED,
    USER_CALL,
    USER_METHOD,
    Branch,
    Loop,
    Operation,
    display_name,
)
from pullback.compiler.normalize import hashable
from pullback.errors import DifferentiationError


@dataclasses.dataclass
class Activity:
    varied: set[str]
    useful: set[str]
    # Parameter -> places (line, what) where a derivative from it was cut by
    # an operation with zero derivative, on a path that reaches the result.
    implicit_cuts: dict[str, list[tuple[int, str]]]
    # Parameters whose every path to the result was cut by explicit stops.
    explicitly_stopped: set[str]
    # The varied and useful names when calls without a rule are taken to pass
    # a derivative on, so a chain of them, `next(iter(xs))`, is found as a
    # whole rather than each call looking constant to the other.
    varied_through_unsupported: set[str] = dataclasses.field(default_factory=set)
    useful_through_unsupported: set[str] = dataclasses.field(default_factory=set)

    def is_active(self, name: str) -> bool:
        return name in self.varied and name in self.useful


def _operations(block: list):
    for item in block:
        if isinstance(item, Branch):
            yield from _operations(item.body)
            yield from _operations(item.orelse)
        elif isinstance(item, Loop):
            yield from _operations(item.body)
        else:
            yield item


def _reversed_operations(block: list):
    for item in reversed(block):
        if isinstance(item, Branch):
            yield from _reversed_operations(item.orelse)
            yield from _reversed_operations(item.body)
        elif isinstance(item, Loop):
            yield from _reversed_operations(item.body)
        else:
            yield item


def _passes_derivative(operation: Operation, through: set[str]) -> bool:
    if operation.kind != NO_DERIVATIVE:
        return True
    return operation.stop_kind in through


def _flow_inputs(operation: Operation, through: set[str]) -> list[str]:
    """Names whose derivative reaches the operation's targets."""
    if operation.kind == NO_DERIVATIVE:
        if operation.stop_kind in through:
            return operation.reads
        return []
    inputs = [name for _, name in operation.inputs]
    if rules.CUT in through and operation.uncovered:
        # Arguments that a registered derivative leaves out are cuts too.
        inputs += operation.uncovered
    return inputs


def varied_names(block: list, seeds: set[str], through=frozenset()) -> set[str]:
    """Forward sweep: names that depend on `seeds`."""
    varied = set(seeds)
    # Loops carry values from one iteration to the next, so sweep until no
    # name is added; without loops the first sweep is already complete.
    while True:
        size = len(varied)
        for operation in _operations(block):
            if any(name in varied for name in _flow_inputs(operation, through)):
                varied.update(operation.targets)
        if len(varied) == size:
            return varied


def useful_names(block: list, result: str, through=frozenset()) -> set[str]:
    """Backward sweep: names the result depends on."""
    useful = {result}
    while True:
        size = len(useful)
        for operation in _reversed_operations(block):
            if any(target in useful for target in operation.targets):
                useful.update(_flow_inputs(operation, through))
        if len(useful) == size:
            return useful


def analyze(block: list, params: list[str], wrt: list[str], result: str) -> Activity:
    varied = varied_names(block, set(wrt))
    useful = useful_names(block, result)
    implicit_cuts = {}
    explicitly_stopped = set()
    for param in wrt:
        if param in useful:
            continue
        cuts = _implicit_cuts(block, param, result)
        if cuts:
            implicit_cuts[param] = cuts
        elif _reaches(block, param, result, {rules.CUT, EXPLICIT}):
            explicitly_stopped.add(param)
    through = frozenset({UNSUPPORTED})
    return Activity(varied, useful, implicit_cuts, explicitly_stopped,
                    varied_names(block, set(wrt), through),
                    useful_names(block, result, through))


def _reaches(block, param: str, result: str, through: set[str]) -> bool:
    return result in varied_names(block, {param}, frozenset(through))


def _implicit_cuts(block: list, param: str, result: str) -> list[tuple[int, str]]:
    """Return the cut places on paths from `param` to the result."""
    through = frozenset({rules.CUT})
    varied = varied_names(block, {param}, through)
    if result not in varied:
        return []
    useful = useful_names(block, result, through)
    strict_varied = varied_names(block, {param})
    places = []
    for operation in _operations(block):
        feeds_result = any(target in useful for target in operation.targets)
        if operation.uncovered:
            if feeds_result and any(n in strict_varied for n in operation.uncovered):
                places.append((operation.lineno, operation.uncovered_reason))
            continue
        if operation.kind != NO_DERIVATIVE or operation.stop_kind != rules.CUT:
            continue
        from_param = any(name in strict_varied for name in operation.reads)
        if feeds_result and from_param:
            places.append((operation.lineno, operation.stop_name))
    return places


def _check_escaping_closures(block: list, activity: Activity, parsed) -> None:
    """Raise when a lambda reading differentiated values is passed to a call.

    The callee differentiates with respect to its arguments, not the values a
    lambda closes over, so the derivative through those would be lost.
    """
    closures = {}
    for operation in _operations(block):
        if operation.kind == NO_DERIVATIVE and operation.stop_name == "lambda":
            varied = [n for n in operation.reads if n in activity.varied]
            if varied:
                closures[operation.targets[0]] = (operation, varied)
    if not closures:
        return
    for operation in _operations(block):
        if operation.kind not in (USER_CALL, USER_METHOD, CHECKPOINT):
            continue
        if not any(t in activity.useful for t in operation.targets):
            continue
        for _, variable in operation.inputs:
            if variable in closures:
                lambda_operation, varied = closures[variable]
                raise DifferentiationError(
                    f"a lambda that reads the differentiated value {varied[0]!r} "
                    "is passed to a function, and derivatives do not flow "
                    "through the values a lambda closes over",
                    parsed.location(lambda_operation.statement.value),
                    "hint: pass those values to the function as arguments, or "
                    "call the lambda where it is defined",
                )


# Rules whose results are lists or dicts whatever their inputs are.
_SEQUENCE_RULES = {
    "pullback.runtime.structure.appended",
    "pullback.runtime.structure.extended",
    "pullback.runtime.structure.dict_of",
}


def _check_sequence_arithmetic(block: list, activity: Activity, parsed) -> None:
    """Raise for + or * on a list or tuple display: concatenation or repetition."""
    sequences = {
        target for operation in _operations(block)
        if operation.kind == PACK
        or (operation.kind == RULE and operation.rule.name in _SEQUENCE_RULES)
        for target in operation.targets
    }
    for operation in _operations(block):
        if operation.kind != RULE or not operation.rule.arithmetic:
            continue
        for _, variable in operation.inputs:
            if variable in sequences and variable in activity.varied:
                raise DifferentiationError(
                    "an arithmetic operator is applied to a list or tuple, where + "
                    "concatenates and * repeats; differentiated code differentiates "
                    "them only on numbers and arrays",
                    parsed.location(operation.statement),
                    "hint: build the sequence with append or a comprehension, or "
                    "use np.concatenate and np.tile on arrays",
                )


def _described(names: list[str], parsed) -> str:
    """Name the variables among `names` that the user wrote.

    The others are temporaries of the normalized code, such as `x_pow_2`
    for `x ** 2`, which the user never wrote; the error's location points at
    the expression instead.
    """
    written = naming.names_in(parsed.node)
    user_names = [repr(n) for n in names if n in written]
    return ", ".join(user_names) if user_names else "the differentiated parameters"


def check_unsupported(block: list, activity: Activity, parsed) -> None:
    """Raise for a call without derivative whose result needs one."""
    _check_escaping_closures(block, activity, parsed)
    _check_sequence_arithmetic(block, activity, parsed)
    for operation in _operations(block):
        keyword_reads = getattr(operation, "keyword_reads", ())
        varied_keywords = [n for n in keyword_reads if n in activity.varied]
        if varied_keywords and any(t in activity.useful for t in operation.targets):
            raise DifferentiationError(
                f"the method .{operation.callee}() gets the differentiated value "
                f"{varied_keywords[0]!r} as a keyword argument, and derivatives "
                "flow only through positional arguments of methods",
                parsed.location(operation.statement.value),
                "hint: pass it positionally",
            )
        if operation.kind != NO_DERIVATIVE or operation.stop_kind != UNSUPPORTED:
            continue
        feeds_result = any(target in activity.useful_through_unsupported
                           for target in operation.targets)
        varied_reads = [n for n in operation.reads
                        if n in activity.varied_through_unsupported]
        if not (feeds_result and varied_reads):
            continue
        callee = operation.callee
        if hashable(callee) and callee in _BUILTIN_HINTS:
            raise DifferentiationError(
                f"{callee.__name__}() has no derivative rule, and its result depends "
                f"on {', '.join(repr(n) for n in varied_reads)}",
                parsed.location(operation.statement.value),
                f"hint: {_BUILTIN_HINTS[callee]}",
            )
        if isinstance(callee, functools.partial):
            inner = display_name(callee.func)
            raise DifferentiationError(
                f"functools.partial({inner}, ...) has no derivative in differentiated "
                f"code, and its result depends on {_described(varied_reads, parsed)}",
                parsed.location(operation.statement.value),
                f"hint: call {inner} directly with all its arguments, or define a "
                "Python function that does and call that",
            )
        name = callee if isinstance(callee, str) else display_name(callee)
        short = name.rsplit(".", 1)[-1].rstrip("()")
        if name.startswith(("numpy.", "math.")):
            # Library functions are named in full: `slogdet` alone is rarely
            # in scope where the derivative is registered.
            short = name.rstrip("()")
        raise DifferentiationError(
            f"{name} has no derivative rule, and its result depends on "
            f"{_described(varied_reads, parsed)}",
            parsed.location(operation.statement.value),
            "hint: register a derivative for it with "
            f"@pullback.derivative_of({short}), or wrap the arguments in "
            "pullback.no_derivative(...) if no derivative should flow",
        )


# Hints for builtins that make an iterator or a container from an iterable,
# which differentiated code does not differentiate through.
_BUILTIN_HINTS = {
    builtins.reversed: "index from the end, xs[::-1], or loop with "
                       "for v in reversed(xs)",
    builtins.iter: "index the sequence, xs[0], xs[1], instead of stepping an iterator",
    builtins.next: "index the sequence, xs[0], xs[1], instead of stepping an iterator",
    builtins.enumerate: "loop with for i, v in enumerate(xs), or index the sequence",
    builtins.zip: "loop with for a, b in zip(xs, ys), or index the sequences",
    builtins.map: "write a list comprehension, [f(v) for v in xs]",
    builtins.filter: "write a list comprehension, [v for v in xs if condition]",
    builtins.list: "write a list comprehension, [v for v in xs], or a display, [a, b]",
    builtins.tuple: "write a display, (a, b), or index the sequence",
    builtins.sorted: "sort an array with np.sort(xs), or a list you built with "
                     "items.sort()",
}

