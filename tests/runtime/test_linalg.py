"""The matmul adjoint helpers: the fast path for two 2-D arrays and the rest."""

import numpy as np
import pytest

from pullback import runtime as rt

rng = np.random.default_rng(12)


@pytest.mark.parametrize(
    "a_dtype, b_dtype", [(np.float64, np.float64), (np.float32, np.float32),
                         (np.float32, np.float64), (np.float64, np.float32)]
)
def test_matmul_adjoints_2d_dtypes(a_dtype, b_dtype):
    a = rng.standard_normal((4, 3)).astype(a_dtype)
    b = rng.standard_normal((3, 5)).astype(b_dtype)
    cotangent = rng.standard_normal((4, 5)).astype(np.result_type(a, b))

    a_bar = rt.matmul_adjoint_lhs(cotangent, a, b)
    b_bar = rt.matmul_adjoint_rhs(cotangent, a, b)

    assert a_bar.dtype == a_dtype
    assert b_bar.dtype == b_dtype
    np.testing.assert_array_equal(a_bar, (cotangent @ b.T).astype(a_dtype))
    np.testing.assert_array_equal(b_bar, (a.T @ cotangent).astype(b_dtype))


def test_matmul_adjoints_non_contiguous():
    a = rng.standard_normal((3, 8))[:, ::2].T
    b = rng.standard_normal((5, 3)).T
    cotangent = rng.standard_normal((4, 5))

    np.testing.assert_allclose(rt.matmul_adjoint_lhs(cotangent, a, b), cotangent @ b.T)
    np.testing.assert_allclose(rt.matmul_adjoint_rhs(cotangent, a, b), a.T @ cotangent)


@pytest.mark.parametrize(
    "case, a_shape, b_shape",
    [
        ("matrix vector", (4, 3), (3,)),
        ("vector matrix", (3,), (3, 5)),
        ("vector vector", (3,), (3,)),
        ("stacked", (2, 4, 3), (3, 5)),
        ("broadcast stack", (4, 3), (2, 3, 5)),
    ],
)
def test_matmul_adjoints_other_ranks(case, a_shape, b_shape):
    # <a_bar, da> + <b_bar, db> must equal <cotangent, d(a @ b)>. The product
    # is bilinear, so d(a @ b) = da @ b + a @ db is exact, with no finite differences.
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    da, db = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    cotangent = rng.standard_normal(np.shape(a @ b))

    a_bar = rt.matmul_adjoint_lhs(cotangent, a, b)
    b_bar = rt.matmul_adjoint_rhs(cotangent, a, b)

    assert np.shape(a_bar) == a_shape, case
    assert np.shape(b_bar) == b_shape, case
    expected = np.sum(cotangent * (da @ b + a @ db))
    np.testing.assert_allclose(np.sum(a_bar * da) + np.sum(b_bar * db), expected, err_msg=case)

