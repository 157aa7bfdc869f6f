"""Property tests: random straight-line programs differentiate correctly.

Hypothesis builds programs from a small grammar of smooth operations on one to
three float64 inputs whose shapes broadcast together. pullback reads source
from files, so each program is written to a module in a temporary folder and
imported. Every program must compile without an internal error and have
gradients that match central finite differences.
"""

import importlib.util
import itertools
import tempfile
import warnings
from pathlib import Path

import numpy as np
from gradcheck import check_gradient
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import pullback
from pullback.errors import InternalError

# Inputs are drawn from this interval, and a program is discarded when an
# intermediate value leaves [-LIMIT, LIMIT]. Bounded values keep the error of
# finite differences with a step of 1e-6 well below the check's tolerance.
INPUT_BOUND = 1.5
LIMIT = 1e3

# Shapes of the inputs: each broadcasts against the others.
SHAPE_FAMILIES = [
    [(3,), (3,), ()],
    [(2, 3), (3,), (2, 1), ()],
    [(4,), ()],
]

# Statement templates: (template, what it needs of `{a}`, result shape).
# `{a}` and `{b}` are earlier variables. The requirement "any" accepts every
# value, "array" needs at least one axis, and "numpy" needs a NumPy value
# rather than a Python float.
ELEMENTWISE = "elementwise"
UNARY = [
    ("np.sin({a})", "any", ELEMENTWISE),
    ("np.cos({a})", "any", ELEMENTWISE),
    ("np.tanh({a})", "any", ELEMENTWISE),
    ("np.exp(np.tanh({a}))", "any", ELEMENTWISE),
    ("np.exp(np.sin({a}))", "any", ELEMENTWISE),
    ("{a} ** 2", "any", ELEMENTWISE),
    ("-{a}", "any", ELEMENTWISE),
    ("{a} * 0.5", "any", ELEMENTWISE),
    ("{a} + 1.0", "any", ELEMENTWISE),
    ("np.sum({a})", "any", ()),
    ("np.mean({a})", "any", ()),
    ("np.sum({a}, axis=-1, keepdims=True)", "array", "keepdims"),
    ("{a}.sum()", "numpy", ()),
]
BINARY = [
    "{a} + {b}",
    "{a} - {b}",
    "{a} * {b}",
    "np.sin({a}) * {b}",
    "{a} * np.cos({b}) + {b}",
]


def accepts(requirement: str, shape: tuple, is_python_float: bool) -> bool:
    if requirement == "array":
        return len(shape) > 0
    if requirement == "numpy":
        return not is_python_float
    return True


def result_shape(kind, shape: tuple) -> tuple:
    if kind == ELEMENTWISE:
        return shape
    if kind == "keepdims":
        return shape[:-1] + (1,)
    return kind


_folder = Path(tempfile.mkdtemp(prefix="pullback-properties-"))
_module_numbers = itertools.count()


@st.composite
def programs(draw):
    """Draw `(source, shapes)`: a module defining `program` and its input shapes."""
    family = draw(st.sampled_from(SHAPE_FAMILIES))
    count = draw(st.integers(1, 3))
    shapes = [draw(st.sampled_from(family)) for _ in range(count)]
    names = [f"x{i}" for i in range(count)]

    lines = []
    variables = list(names)
    shape_of = dict(zip(names, shapes, strict=True))
    python_floats = {name for name, shape in shape_of.items() if shape == ()}
    for index in range(draw(st.integers(1, 6))):
        target = f"v{index}"
        a = draw(st.sampled_from(variables))
        if len(variables) > 1 and draw(st.booleans()):
            b = draw(st.sampled_from(variables))
            expression = draw(st.sampled_from(BINARY)).format(a=a, b=b)
            shape_of[target] = np.broadcast_shapes(shape_of[a], shape_of[b])
            if a in python_floats and b in python_floats:
                python_floats.add(target)
        else:
            choices = [
                (template, kind)
                for template, requirement, kind in UNARY
                if accepts(requirement, shape_of[a], a in python_floats)
            ]
            template, kind = draw(st.sampled_from(choices))
            expression = template.format(a=a)
            shape_of[target] = result_shape(kind, shape_of[a])
            if kind == ELEMENTWISE and a in python_floats:
                python_floats.add(target)
        lines.append(f"    {target} = {expression}")
        variables.append(target)

    returned = draw(st.lists(st.sampled_from(variables), min_size=1, max_size=3, unique=True))
    result = " + ".join(f"np.sum({name})" for name in returned)
    parameters = ", ".join(names)
    source = "\n".join([
        "import numpy as np",
        "",
        "",
        f"def program({parameters}):",
        *lines,
        f"    return {result}",
        "",
        "",
        f"def intermediate_values({parameters}):",
        *lines,
        f"    return ({', '.join(variables)},)",
        "",
    ])
    return source, shapes


def load_program(source: str):
    """Write `source` to a new module file and import it."""
    name = f"generated_program_{next(_module_numbers)}"
    path = _folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stays_bounded(module, args) -> bool:
    """Return whether every value the program computes is finite and small."""
    with np.errstate(all="ignore"):
        values = module.intermediate_values(*args)
    return all(
        np.all(np.isfinite(value)) and np.max(np.abs(value)) < LIMIT for value in values
    )


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(programs(), st.integers(0, 2**32 - 1))
def test_generated_program_gradient(drawn, seed):
    source, shapes = drawn
    note(source)
    rng = np.random.default_rng(seed)
    args = [
        rng.uniform(-INPUT_BOUND, INPUT_BOUND, shape) if shape else float(rng.uniform(-1, 1))
        for shape in shapes
    ]
    module = load_program(source)
    assume(stays_bounded(module, args))

    try:
        with warnings.catch_warnings():
            # A program may ignore an input, and test_errors checks that warning.
            warnings.simplefilter("ignore", pullback.ZeroDerivativeWarning)
            check_gradient(module.program, *args, seed=seed)
    except InternalError as error:
        raise AssertionError(f"internal error for this program:\n{source}") from error
