"""Value-and-gradient code specialized to the shapes and dtypes of a call's arrays.

`value_and_gradient` specializes a function of arrays at the second call with
the same argument shapes and dtypes. Each specialized value and gradient here
is compared bit for bit with the general VJP's, on the same arguments, and
checked against central finite differences.
"""

import linecache
import threading
import types

import numpy as np
import programs_shadowed_type
import pytest
from gradcheck import check_vjp
from hypothesis import given, settings
from hypothesis import strategies as st

import pullback
from pullback.compiler import compile_vjp


def mlp_loss(w1, b1, w2, b2, x, y):
    h = np.maximum(x @ w1 + b1, 0.0)
    out = h @ w2 + b2
    return np.mean((out - y) ** 2)


def tanh_layer(w, b, x):
    z = np.tanh(x @ w + b)
    return np.sum(z * z) / 2.0


def broadcast_product(a, b):
    return np.sum(a * b + np.exp(-a))


def mlp_inputs(rng, batch=4, inputs=3, hidden=5, outputs=2, dtype=np.float64):
    shapes = ((inputs, hidden), (hidden,), (hidden, outputs), (outputs,),
              (batch, inputs), (batch, outputs))
    return tuple(rng.standard_normal(shape).astype(dtype) for shape in shapes)


def general_answer(function, wrt, args):
    """Return (value, gradient tuple) from the general VJP, not the API."""
    compiled = compile_vjp(function, wrt)
    value, pullback_of_f = compiled.vjp(*args)
    seed = np.asarray(1.0, dtype=np.result_type(value)).item()
    seed = type(value)(seed) if isinstance(value, np.generic) else seed
    gradient = pullback_of_f(seed)
    return value, gradient


def specializer_of(function, wrt):
    return compile_vjp(function, wrt).specializer


def fresh(function):
    """Return a new function object with `function`'s code, compiled and specialized anew."""
    copied = types.FunctionType(function.__code__, function.__globals__, function.__name__,
                                function.__defaults__, function.__closure__)
    copied.__qualname__ = function.__qualname__
    return copied


def api_answer(function, wrt, args):
    """Return `value_and_gradient`'s result at the third call with `args`."""
    evaluate = pullback.value_and_gradient(function, wrt=wrt)
    for _ in range(3):
        answer = evaluate(*args)
    return answer


def specialized_answer(function, wrt, args):
    """Return `value_and_gradient`'s result from specialized code at `args`."""
    answer = api_answer(function, wrt, args)
    specializer = specializer_of(function, wrt)
    assert any(f(*args) is not None for f in specializer.functions), (
        "no specialized function accepts these arguments"
    )
    return answer


def assert_same_bits(specialized, general):
    """Assert equal values, gradients, types, dtypes and shapes, bit for bit."""
    value, gradient = specialized
    general_value, general_gradient = general
    assert type(value) is type(general_value)
    assert np.asarray(value).tobytes() == np.asarray(general_value).tobytes()
    gradient = gradient if isinstance(gradient, tuple) else (gradient,)
    assert len(gradient) == len(general_gradient)
    for ours, theirs in zip(gradient, general_gradient, strict=True):
        assert type(ours) is np.ndarray
        assert ours.dtype == theirs.dtype
        assert ours.shape == theirs.shape
        assert ours.tobytes() == np.ascontiguousarray(theirs).tobytes()


def check_against_differences(function, wrt, args, gradient):
    gradient = gradient if isinstance(gradient, tuple) else (gradient,)
    check_vjp(function, lambda u: tuple(u * g for g in gradient), args,
              wrt=wrt, cotangent=1.0)


def test_mlp_is_specialized_and_matches_the_general_vjp():
    args = mlp_inputs(np.random.default_rng(0))
    wrt = (0, 1, 2, 3)
    answer = specialized_answer(mlp_loss, wrt, args)
    assert_same_bits(answer, general_answer(mlp_loss, wrt, args))
    check_against_differences(mlp_loss, wrt, args, answer[1])


def test_specialized_source_is_plain_numpy():
    args = mlp_inputs(np.random.default_rng(1))
    specialized_answer(mlp_loss, (0, 1, 2, 3), args)
    function = specializer_of(mlp_loss, (0, 1, 2, 3)).functions[0]
    source = "".join(linecache.getlines(function.__code__.co_filename))
    assert "specialized to these argument types, dtypes and shapes" in source
    assert "w1.shape != (3, 5)" in source
    assert "unbroadcast" not in source
    assert "like_when_large" not in source
    assert "matmul_adjoint" not in source
    assert "w1_bar = x.T @ x_matmul_w1_bar" in source
    assert "b1_bar = np.add.reduce(x_matmul_w1_plus_b1_bar, 0)" in source
    assert "# adjoint of line" in source


def test_new_shapes_get_their_own_code():
    rng = np.random.default_rng(2)
    wrt = (0, 1, 2, 3)
    loss = fresh(mlp_loss)
    small = mlp_inputs(rng)
    specialized_answer(loss, wrt, small)
    larger = mlp_inputs(rng, batch=7, inputs=2, hidden=6, outputs=1)
    function = specializer_of(loss, wrt).functions[0]
    assert function(*larger) is None
    evaluate = pullback.value_and_gradient(loss, wrt=wrt)
    for _ in range(3):
        answer = evaluate(*larger)
        assert_same_bits(answer, general_answer(loss, wrt, larger))
    assert len(specializer_of(loss, wrt).functions) == 2
    assert_same_bits(evaluate(*small), general_answer(loss, wrt, small))
    check_against_differences(loss, wrt, larger, answer[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept(dtype):
    args = mlp_inputs(np.random.default_rng(3), dtype=dtype)
    answer = specialized_answer(mlp_loss, (0, 1, 2, 3), args)
    assert type(answer[0]) is dtype
    assert all(g.dtype == dtype for g in answer[1])
    assert_same_bits(answer, general_answer(mlp_loss, (0, 1, 2, 3), args))


def test_mixed_dtypes_match_the_general_vjp():
    rng = np.random.default_rng(4)
    w, b, x = (rng.standard_normal((3, 4)).astype(np.float32),
               rng.standard_normal(4), rng.standard_normal((5, 3)).astype(np.float32))
    answer = api_answer(tanh_layer, (0, 1), (w, b, x))
    assert answer[1][0].dtype == np.float32
    assert answer[1][1].dtype == np.float64
    assert_same_bits(answer, general_answer(tanh_layer, (0, 1), (w, b, x)))


def test_byte_swapped_arrays_keep_their_dtype():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 4)).astype(">f8")
    b = rng.standard_normal(4)
    x = rng.standard_normal((5, 3))
    evaluate = pullback.value_and_gradient(tanh_layer, wrt=(0, 1))
    for _ in range(3):
        value, (w_bar, b_bar) = evaluate(w, b, x)
        assert w_bar.dtype == w.dtype
    assert_same_bits((value, (w_bar, b_bar)), general_answer(tanh_layer, (0, 1), (w, b, x)))
    check_against_differences(tanh_layer, (0, 1), (w, b, x), (w_bar, b_bar))


def test_other_memory_layouts_give_same_bits():
    rng = np.random.default_rng(6)
    args = mlp_inputs(rng, batch=6, inputs=4, hidden=8, outputs=3)
    specialized_answer(mlp_loss, (0, 1, 2, 3), args)
    reordered = tuple(np.asfortranarray(a) for a in args[:4]) + (
        np.ascontiguousarray(args[4].T).T, args[5][::-1][::-1])
    evaluate = pullback.value_and_gradient(mlp_loss, wrt=(0, 1, 2, 3))
    answer = evaluate(*reordered)
    assert_same_bits(answer, general_answer(mlp_loss, (0, 1, 2, 3), reordered))
    check_against_differences(mlp_loss, (0, 1, 2, 3), reordered, answer[1])


def test_one_array_passed_twice():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 3))
    answer = specialized_answer(broadcast_product, (0, 1), (a, a))
    assert answer[1][0] is not answer[1][1]
    assert_same_bits(answer, general_answer(broadcast_product, (0, 1), (a, a)))


def test_returned_gradients_are_owned_by_the_caller():
    args = mlp_inputs(np.random.default_rng(8))
    evaluate = pullback.value_and_gradient(mlp_loss, wrt=(0, 1, 2, 3))
    first = specialized_answer(mlp_loss, (0, 1, 2, 3), args)[1]
    kept = [g.copy() for g in first]
    for g in first:
        g *= 100.0  # The caller may update its gradients in place.
    second = evaluate(*args)[1]
    assert len({id(g) for g in first + second}) == 8
    for before, after in zip(kept, second, strict=True):
        assert np.array_equal(before, after)
        assert after.flags.writeable and after.base is None


def test_broadcast_operand_sums_its_cotangent():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((4, 1, 3))
    b = rng.standard_normal((5, 1))
    answer = api_answer(broadcast_product, (0, 1), (a, b))
    assert answer[1][0].shape == a.shape
    assert answer[1][1].shape == b.shape
    assert_same_bits(answer, general_answer(broadcast_product, (0, 1), (a, b)))
    check_against_differences(broadcast_product, (0, 1), (a, b), answer[1])


def test_one_parameter_gets_a_bare_gradient():
    args = mlp_inputs(np.random.default_rng(10))
    answer = specialized_answer(mlp_loss, "w2", args)
    assert isinstance(answer[1], np.ndarray) and answer[1].shape == args[2].shape
    assert_same_bits(answer, general_answer(mlp_loss, "w2", args))


def test_gradient_runs_specialized_code_too():
    args = mlp_inputs(np.random.default_rng(11))
    expected = specialized_answer(mlp_loss, (0, 1, 2, 3), args)[1]
    found = pullback.gradient(mlp_loss, wrt=(0, 1, 2, 3))(*args)
    for ours, theirs in zip(found, expected, strict=True):
        assert np.array_equal(ours, theirs)


W = np.ones((3, 2))


def uses_a_global_array(x):
    return np.sum(x @ W)


def branches(x):
    if x.sum() > 0:
        return np.sum(x * x)
    return np.sum(-x)


def helper(x):
    return x * 2.0


def calls_a_user_function(x):
    return np.sum(helper(x))


def indexes(x):
    return np.sum(x[x > 0])


@pytest.mark.parametrize(
    "function", [uses_a_global_array, branches, calls_a_user_function, indexes])
def test_value_dependent_programs_not_specialized(function):
    assert specializer_of(function, 0) is None
    x = np.random.default_rng(12).standard_normal((4, 3))
    evaluate = pullback.value_and_gradient(function)
    for _ in range(3):
        value, gradient = evaluate(x)
    check_against_differences(function, (0,), (x,), gradient)


def test_rebound_global_array_is_read():
    global W
    x = np.random.default_rng(13).standard_normal((4, 3))
    evaluate = pullback.value_and_gradient(uses_a_global_array)
    evaluate(x)
    evaluate(x)
    saved = W
    try:
        W = np.ones((3, 1))
        gradient = evaluate(x)[1]
        assert np.array_equal(gradient, np.ones((4, 3)))
    finally:
        W = saved


def test_numbers_and_integer_arrays_take_the_general_vjp():
    product = fresh(broadcast_product)
    evaluate = pullback.value_and_gradient(product)
    for _ in range(3):
        value, (a_bar, b_bar) = evaluate(1.5, np.arange(3.0))
    assert isinstance(a_bar, float)
    check_against_differences(broadcast_product, (0, 1), (1.5, np.arange(3.0)), (a_bar, b_bar))
    for _ in range(3):
        value, (a_bar, b_bar) = evaluate(np.arange(3), np.arange(3.0))
    assert a_bar is None
    assert specializer_of(product, None).functions == ()


def test_shape_error_raised_every_call():
    rng = np.random.default_rng(14)
    w, b, x = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((5, 2))
    layer = fresh(tanh_layer)
    evaluate = pullback.value_and_gradient(layer, wrt=(0, 1))
    for _ in range(3):
        with pytest.raises(ValueError, match="matmul"):
            evaluate(w, b, x)
    assert specializer_of(layer, (0, 1)).functions == ()


def test_at_most_four_signatures_are_specialized():
    def square_sum(x):
        return np.sum(x * x)

    evaluate = pullback.value_and_gradient(square_sum)
    for size in range(1, 8):
        x = np.arange(float(size))
        for _ in range(3):
            value, gradient = evaluate(x)
        assert np.array_equal(gradient, 2 * x)
    assert len(specializer_of(square_sum, None).functions) == 4


def test_concurrent_calls_agree():
    args = mlp_inputs(np.random.default_rng(15))
    loss = fresh(mlp_loss)
    expected = general_answer(loss, (0, 1, 2, 3), args)
    evaluate = pullback.value_and_gradient(loss, wrt=(0, 1, 2, 3))
    failures = []

    def work():
        for _ in range(20):
            try:
                assert_same_bits(evaluate(*args), expected)
            except AssertionError as error:
                failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(specializer_of(loss, (0, 1, 2, 3)).functions) == 1


activation = np.tanh


def activated_sum(x):
    return np.sum(activation(x))


def test_rebound_global_function_recompiles():
    global activation
    x = np.random.default_rng(16).standard_normal(5)
    evaluate = pullback.value_and_gradient(activated_sum)
    for _ in range(3):
        gradient = evaluate(x)[1]
    assert np.allclose(gradient, 1 - np.tanh(x) ** 2)
    try:
        activation = np.sin
        for _ in range(3):
            gradient = evaluate(x)[1]
        assert np.allclose(gradient, np.cos(x))
    finally:
        activation = np.tanh


# Broadcast-compatible shapes for the operand pairs below.
shapes = st.sampled_from([
    ((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (1, 4)), ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 4)), ((4,), (2, 3, 4)), ((1,), (3,)), ((5,), (5,)),
])


@settings(max_examples=40, deadline=None)
@given(shapes=shapes, dtypes=st.sampled_from([(np.float64, np.float64),
                                              (np.float32, np.float32),
                                              (np.float32, np.float64)]),
       seed=st.integers(0, 2**16))
def test_broadcasting_programs_match_the_general_vjp(shapes, dtypes, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes[0]).astype(dtypes[0])
    b = rng.standard_normal(shapes[1]).astype(dtypes[1])
    for function in map(fresh, (broadcast_product, quotient, shifted_square)):
        evaluate = pullback.value_and_gradient(function)
        for _ in range(3):
            answer = evaluate(a, b)
        assert_same_bits(answer, general_answer(function, None, (a, b)))
        if dtypes == (np.float64, np.float64):
            check_against_differences(function, (0, 1), (a, b), answer[1])


def quotient(a, b):
    return np.mean(a / (1.0 + b * b))


def shifted_square(a, b):
    d = a - b
    return np.mean(d**2)


@settings(max_examples=25, deadline=None)
@given(size=st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 6),
                      st.integers(1, 3)),
       seed=st.integers(0, 2**16))
def test_mlps_of_any_size_match_the_general_vjp(size, seed):
    batch, inputs, hidden, outputs = size
    args = mlp_inputs(np.random.default_rng(seed), batch, inputs, hidden, outputs)
    loss = fresh(mlp_loss)
    answer = specialized_answer(loss, (0, 1, 2, 3), args)
    assert_same_bits(answer, general_answer(loss, (0, 1, 2, 3), args))
    check_against_differences(loss, (0, 1, 2, 3), args, answer[1])


def uses_type_as_a_local(x):
    type = x * 2.0
    return np.sum(type * x)


def uses_type_as_a_parameter(type, x):
    return np.sum(type * x)


def copies_values(x, b):
    y = x
    z = y
    w = z * b
    return np.sum(w * w)


@pytest.mark.parametrize("function", [uses_type_as_a_local, uses_type_as_a_parameter,
                                      programs_shadowed_type.scaled_sum])
def test_names_shadowing_type_keep_the_guard_working(function):
    rng = np.random.default_rng(17)
    args = tuple(rng.standard_normal(3) for _ in range(function.__code__.co_argcount))
    answer = specialized_answer(function, None, args)
    assert_same_bits(answer, general_answer(function, None, args))
    check_against_differences(function, tuple(range(len(args))), args, answer[1])


def test_forward_copies_stay_under_their_comments():
    rng = np.random.default_rng(18)
    args = (rng.standard_normal(3), rng.standard_normal(3))
    specialized_answer(copies_values, None, args)
    function = specializer_of(copies_values, None).functions[0]
    lines = [line.strip() for line in linecache.getlines(function.__code__.co_filename)]
    for comment, statement in (("# line", "y = x"), ("# line", "z = y"), ("# line", "w = z * b")):
        position = lines.index(statement)
        assert lines[position - 1].startswith(comment)
        assert lines[position - 1].endswith(statement)


def test_often_called_shape_specialized_after_many_one_offs():
    def cubes(x):
        return np.sum(x * x * x)

    evaluate = pullback.value_and_gradient(cubes)
    for size in range(1, 100):
        evaluate(np.ones(size))
    x = np.arange(5.0) + 100.0
    for _ in range(3):
        value, gradient = evaluate(x)
    assert np.array_equal(gradient, 3 * x * x)
    assert len(specializer_of(cubes, None).functions) == 1


def test_rebound_numpy_global_recompiles_specialized_code():
    rng = np.random.default_rng(19)
    shapes = ((4, 3), (3,), (5, 4), (5,), (3,))
    args = tuple(rng.standard_normal(shape) for shape in shapes)
    function = programs_shadowed_type.bilinear
    expected = specialized_answer(function, (0, 1), args)
    saved = programs_shadowed_type.np
    try:
        programs_shadowed_type.np = None  # The function itself never reads np.
        answer = pullback.value_and_gradient(function, wrt=(0, 1))(*args)
    finally:
        programs_shadowed_type.np = saved
    assert_same_bits(answer, (expected[0], expected[1]))


def test_deleted_numpy_global_recompiles_specialized_code():
    rng = np.random.default_rng(20)
    shapes = ((4, 3), (3,), (5, 4), (5,), (3,))
    args = tuple(rng.standard_normal(shape) for shape in shapes)
    function = fresh(programs_shadowed_type.bilinear)
    expected = specialized_answer(function, (0, 1), args)
    saved = programs_shadowed_type.np
    try:
        del programs_shadowed_type.np
        answer = pullback.value_and_gradient(function, wrt=(0, 1))(*args)
    finally:
        programs_shadowed_type.np = saved
    assert_same_bits(answer, (expected[0], expected[1]))


def tanh_energy(w, b):
    return np.sum(np.tanh(w * 2.0 + b) ** 2)


def test_hopeless_specializer_is_dropped():
    energy = fresh(tanh_energy)
    args = (np.linspace(-1.0, 1.0, 10), np.full(10, 0.1))
    evaluate = pullback.value_and_gradient(energy)
    for _ in range(3):
        value, gradient = evaluate(*args)
    assert compile_vjp(energy, None).specializer is None
    check_against_differences(energy, (0, 1), args, gradient)
