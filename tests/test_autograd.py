"""Tests of convlab.autograd: gradcheck of every op, parity with PyTorch 2.13, the engine,
dtype rules and error messages."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import convlab as cl
import convlab.autograd as ag
from convlab.autograd import Function, GradcheckError, Tensor

# --------------------------------------------------------------------------- the op table
# Each case is written once against a module ``m`` (convlab.autograd or torch), whose APIs agree,
# so the same expression drives gradcheck and the torch comparison.


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    values: str = "normal"  # "normal", "positive" (log, sqrt, pow) or "ties" (few distinct)
    gradcheck: bool = True  # False where the function is not differentiable at the inputs


def _first(out: Any) -> Any:
    return out.values if hasattr(out, "values") and not callable(out.values) else out


CASES = [
    # arithmetic, with broadcasting and Python scalars
    Case("add", lambda m, a, b: a + b, ((3, 4), (3, 4))),
    Case("add_broadcast", lambda m, a, b: a + b, ((2, 3, 4), (3, 1))),
    Case("add_scalar", lambda m, a: a + 2.5, ((3,),)),
    Case("radd_scalar", lambda m, a: 2.5 + a, ((2, 3),)),
    Case("sub_broadcast", lambda m, a, b: a - b, ((4, 1), (3,))),
    Case("rsub_scalar", lambda m, a: 1 - a, ((3,),)),
    Case("mul_broadcast", lambda m, a, b: a * b, ((2, 1, 4), (3, 1))),
    Case("mul_0d", lambda m, a, b: a * b, ((3, 2), ())),
    Case("rmul_scalar", lambda m, a: 3 * a, ((2, 2),)),
    Case("div_broadcast", lambda m, a, b: a / b, ((2, 3), (3,)), "positive"),
    Case("rdiv_scalar", lambda m, a: 1 / a, ((4,),), "positive"),
    Case("neg", lambda m, a: -a, ((2, 3),)),
    Case("pow_int", lambda m, a: a**3, ((2, 3),)),
    Case("pow_half", lambda m, a: a**0.5, ((5,),), "positive"),
    Case("pow_negative", lambda m, a: a**-2, ((5,),), "positive"),
    Case("pow_zero", lambda m, a: a**0, ((3,),)),
    Case("pow_tensor", lambda m, a, b: a**b, ((2, 3), (3,)), "positive"),
    Case("rpow_scalar", lambda m, a: 2.0**a, ((4,),)),
    # matmul in every rank combination torch.matmul accepts
    Case("matmul_dot", lambda m, a, b: a @ b, ((3,), (3,))),
    Case("matmul_mv", lambda m, a, b: a @ b, ((2, 3), (3,))),
    Case("matmul_vm", lambda m, a, b: a @ b, ((3,), (3, 4))),
    Case("matmul_mm", lambda m, a, b: a @ b, ((2, 3), (3, 4))),
    Case("matmul_bmm_broadcast", lambda m, a, b: a @ b, ((5, 2, 3), (3, 4))),
    Case("matmul_batch_broadcast", lambda m, a, b: a.matmul(b), ((2, 1, 2, 3), (3, 3, 2))),
    Case("matmul_v_batched", lambda m, a, b: a @ b, ((3,), (2, 3, 4))),
    Case("matmul_batched_v", lambda m, a, b: a @ b, ((2, 4, 3), (3,))),
    # shape ops
    Case("reshape", lambda m, a: a.reshape(4, -1), ((2, 3, 4),)),
    Case("view_tuple", lambda m, a: a.view((6, 4)), ((2, 3, 4),)),
    Case("permute", lambda m, a: a.permute(2, 0, 1), ((2, 3, 4),)),
    Case("transpose", lambda m, a: a.transpose(0, -1), ((2, 3, 4),)),
    Case("T", lambda m, a: a.T, ((2, 3),)),
    Case("flatten", lambda m, a: a.flatten(1), ((2, 3, 4),)),
    Case("flatten_middle", lambda m, a: a.flatten(1, 2), ((2, 3, 4, 2),)),
    Case("squeeze", lambda m, a: a.squeeze(), ((1, 3, 1, 2),)),
    Case("squeeze_dim", lambda m, a: a.squeeze(2), ((1, 3, 1, 2),)),
    Case("unsqueeze", lambda m, a: a.unsqueeze(-1), ((2, 3),)),
    Case("expand", lambda m, a: a.expand(2, 3, 4), ((3, 1),)),
    Case("expand_keep", lambda m, a: a.expand(4, -1, -1), ((2, 3),)),
    Case("cat", lambda m, a, b, c: m.cat([a, b, c], dim=1), ((2, 1), (2, 3), (2, 2))),
    Case("stack", lambda m, a, b: m.stack([a, b], dim=-1), ((2, 3), (2, 3))),
    # indexing
    Case("getitem_slices", lambda m, a: a[1:, ::2], ((3, 5),)),
    Case("getitem_int_neg", lambda m, a: a[-1, 2], ((3, 5),)),
    Case("getitem_none_ellipsis", lambda m, a: a[..., None, 1], ((2, 3, 4),)),
    Case("getitem_repeats", lambda m, a: a[m.tensor([0, 2, 0, 0])], ((3, 4),)),
    Case("getitem_pairs", lambda m, a: a[m.tensor([0, 1, 1]), m.tensor([2, 0, 2])], ((3, 4),)),
    Case("getitem_slice_and_array", lambda m, a: a[:, m.tensor([3, 3, 1])], ((2, 4),)),
    Case("getitem_list", lambda m, a: a[[1, 1, 0]], ((3, 2),)),
    Case("getitem_mask", lambda m, a: a[a > 0], ((3, 4),)),
    # reductions
    Case("sum_all", lambda m, a: a.sum(), ((3, 4),)),
    Case("sum_dim", lambda m, a: a.sum(dim=1), ((2, 3, 4),)),
    Case("sum_dims_keepdim", lambda m, a: a.sum(dim=(0, 2), keepdim=True), ((2, 3, 4),)),
    Case("mean_all", lambda m, a: a.mean(), ((3, 4),)),
    Case("mean_dim", lambda m, a: a.mean(-1), ((2, 3, 4),)),
    Case("mean_dims_keepdim", lambda m, a: a.mean((0, 1), keepdim=True), ((2, 3, 4),)),
    Case("max_all", lambda m, a: a.max(), ((3, 4),)),
    Case("min_all", lambda m, a: a.min(), ((3, 4),)),
    Case("max_dim", lambda m, a: a.max(dim=1).values, ((3, 4),)),
    Case("min_dim_keepdim", lambda m, a: a.min(0, keepdim=True)[0], ((3, 4),)),
    Case("amax_dims", lambda m, a: a.amax(dim=(0, 2)), ((2, 3, 4),)),
    Case("amin", lambda m, a: a.amin(1), ((3, 4),)),
    Case("max_all_ties", lambda m, a: a.max(), ((3, 4),), "ties", gradcheck=False),
    Case("min_all_ties", lambda m, a: a.min(), ((3, 4),), "ties", gradcheck=False),
    Case("max_dim_ties", lambda m, a: a.max(dim=1).values, ((3, 4),), "ties", gradcheck=False),
    Case("amax_ties", lambda m, a: a.amax(dim=0), ((4, 3),), "ties", gradcheck=False),
    Case("maximum", lambda m, a, b: m.maximum(a, b), ((2, 3), (3,))),
    Case("minimum_ties", lambda m, a, b: a.minimum(b), ((3, 3), (3,)), "ties", gradcheck=False),
    # elementwise functions
    Case("exp", lambda m, a: a.exp(), ((2, 3),)),
    Case("log", lambda m, a: a.log(), ((2, 3),), "positive"),
    Case("sqrt", lambda m, a: a.sqrt(), ((2, 3),), "positive"),
    Case("abs", lambda m, a: a.abs(), ((2, 3),)),
    Case("relu", lambda m, a: a.relu(), ((2, 3),)),
    Case("sigmoid", lambda m, a: a.sigmoid(), ((2, 3),)),
    Case("tanh", lambda m, a: a.tanh(), ((2, 3),)),
    Case("clamp", lambda m, a: a.clamp(-0.5, 0.5), ((3, 4),)),
    Case("clamp_min", lambda m, a: a.clamp(min=0.1), ((3, 4),)),
    Case("where", lambda m, a, b: m.where(a > b, a, b * 2), ((2, 3), (3,))),
    Case("clone", lambda m, a: a.clone(), ((2, 3),)),
    # compositions
    Case(
        "mlp_log_softmax",
        lambda m, x, w1, b1, w2, b2: _mlp(x, w1, b1, w2, b2),
        ((4, 3), (3, 5), (5,), (5, 2), (2,)),
    ),
    Case("shared_subexpression", lambda m, a: (a * a + (a * a).exp()).sum(0) * a[0], ((3, 2),)),
    Case(
        "normalize",
        lambda m, a: (
            (a - a.mean(1, keepdim=True))
            / ((a - a.mean(1, keepdim=True)) ** 2).mean(1, keepdim=True).sqrt()
        ),
        ((3, 4),),
    ),
]


def _mlp(x: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> Any:
    h = (x @ w1 + b1).relu()
    z = h @ w2 + b2
    return (z - z.exp().sum(1, keepdim=True).log()).mean()


def _values(shape: tuple[int, ...], kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "ties":
        return rng.integers(-1, 2, shape).astype(np.float64)
    return rng.standard_normal(shape)


def _inputs(case: Case, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_values(s, case.values, rng) for s in case.shapes]


@pytest.mark.parametrize("case", [c for c in CASES if c.gradcheck], ids=lambda c: c.name)
def test_gradcheck(case: Case) -> None:
    inputs = tuple(cl.tensor(x, requires_grad=True) for x in _inputs(case))
    assert cl.gradcheck(lambda *xs: _first(case.fn(ag, *xs)), inputs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matches_torch(case: Case, dtype: str, torch: Any) -> None:
    arrays = [x.astype(dtype) for x in _inputs(case, seed=1)]
    ours = [cl.tensor(x, requires_grad=True) for x in arrays]
    theirs = [torch.tensor(x, requires_grad=True) for x in arrays]
    out = _first(case.fn(ag, *ours))
    ref = _first(case.fn(torch, *theirs))
    assert out.dtype == np.dtype(dtype)
    assert out.shape == tuple(ref.shape)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **tol)

    upstream = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    ref.backward(torch.tensor(upstream))
    for i, (x, t) in enumerate(zip(ours, theirs, strict=True)):
        expected = t.grad.numpy() if t.grad is not None else np.zeros_like(arrays[i])
        assert x.grad is not None, f"input {i} got no gradient"
        assert x.grad.dtype == x.dtype
        np.testing.assert_allclose(x.grad.data, expected, **tol, err_msg=f"input {i}")


EDGE_CASES = [
    pytest.param(lambda m, a: a**0, [[0.0, 1.0, -2.0]], id="pow_zero_at_zero"),
    pytest.param(lambda m, a: a**2, [[0.0, 1.0, -2.0]], id="pow_at_zero"),
    pytest.param(lambda m, a, b: a**b, [[0.0, 0.0, 2.0], [0.0, 2.0, 1.0]], id="pow_tensor_at_zero"),
    pytest.param(lambda m, a: a.abs(), [[0.0, -1.0]], id="abs_at_zero"),
    pytest.param(lambda m, a: a.relu(), [[0.0, -1.0, 2.0]], id="relu_at_zero"),
    pytest.param(lambda m, a: a.clamp(0.0, 1.0), [[0.0, 1.0, 0.5, 2.0]], id="clamp_on_bounds"),
    pytest.param(lambda m, a: a.sqrt(), [[0.0, 4.0]], id="sqrt_at_zero"),
    pytest.param(lambda m, a: a.abs().sqrt(), [[0.0, -4.0]], id="sqrt_abs_at_zero"),
    pytest.param(lambda m, a: a.log(), [[0.0, 4.0]], id="log_at_zero"),
    pytest.param(lambda m, a, b: a / b, [[1.0, 0.0], [0.0, 0.0]], id="div_by_zero"),
    pytest.param(lambda m, a: a.exp(), [[1000.0]], id="exp_overflow"),
    pytest.param(lambda m, a: a.max(), [[1.0, np.nan, 3.0]], id="max_nan"),
    pytest.param(lambda m, a: a.amax(1), [[[1.0, np.nan], [2.0, 2.0]]], id="amax_nan"),
    pytest.param(lambda m, a: a.max(1)[0], [[[1.0, np.nan], [2.0, 2.0]]], id="max_dim_nan"),
    pytest.param(lambda m, a: a.mean(0), [np.ones((0, 3))], id="mean_empty"),
    pytest.param(lambda m, a: a.sum(dim=()), [np.ones((2, 3))], id="sum_empty_dim_list"),
    pytest.param(lambda m, a: a.max(0)[0], [3.0], id="max_dim_0d"),
]


@pytest.mark.parametrize(("fn", "arrays"), EDGE_CASES)
def test_edge_values_match_torch(fn: Callable[..., Any], arrays: list[Any], torch: Any) -> None:
    """Zeros, bounds, ties with nan and empty reductions: same values and gradients, and no
    NumPy floating-point warnings (torch gives inf/nan silently)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    ours = [cl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(ag, *ours)
        out.backward(np.ones(out.shape))
    ref = fn(torch, *theirs)
    ref.backward(torch.ones(ref.shape, dtype=torch.float64))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), equal_nan=True)
    for x, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), equal_nan=True)


# --------------------------------------------------------------------------- dtype rules


def _np_dtype(torch: Any, dt: Any) -> np.dtype:
    return torch.empty(0, dtype=dt).numpy().dtype


TENSOR_DATA = [
    pytest.param(lambda: 3.5, id="float"),
    pytest.param(lambda: 3, id="int"),
    pytest.param(lambda: True, id="bool"),
    pytest.param(lambda: [1.0, 2], id="float_int_list"),
    pytest.param(lambda: [[1, 2], [3, 4]], id="int_lists"),
    pytest.param(lambda: [True, False], id="bool_list"),
    pytest.param(lambda: [True, 2], id="bool_int_list"),
    pytest.param(lambda: [], id="empty_list"),
    pytest.param(lambda: np.ones(3), id="ndarray_float64"),
    pytest.param(lambda: np.ones(3, np.float32), id="ndarray_float32"),
    pytest.param(lambda: np.arange(3), id="ndarray_int64"),
    pytest.param(lambda: np.arange(3, dtype=np.int32), id="ndarray_int32"),
    pytest.param(lambda: np.array([True]), id="ndarray_bool"),
    pytest.param(lambda: np.float64(2.0), id="numpy_scalar"),
    pytest.param(lambda: [np.float64(1.0), 2.0], id="list_with_numpy_float64"),
    pytest.param(lambda: [np.int32(1), 2], id="list_with_numpy_int32"),
]


@pytest.mark.parametrize("make", TENSOR_DATA)
def test_tensor_dtype_inference_matches_torch(make: Callable[[], Any], torch: Any) -> None:
    ours = cl.tensor(make())
    ref = torch.tensor(make())
    assert ours.dtype == _np_dtype(torch, ref.dtype)
    np.testing.assert_array_equal(ours.data, ref.numpy())


def test_tensor_copies_and_dtype_overrides() -> None:
    source = np.zeros(3)
    t = cl.tensor(source, dtype=cl.float32)
    source[0] = 1
    assert t.dtype == cl.float32 and t.data[0] == 0
    assert cl.tensor([1, 2], dtype=cl.float64).dtype == cl.float64
    assert cl.tensor(cl.tensor([1.0])).data is not None
    wrapped = Tensor(source)
    assert wrapped.data is source  # Tensor(ndarray) is the cheap, sharing constructor


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda m: m.ones(2, dtype=m.float32) + 1.5, id="f32+float"),
        pytest.param(lambda m: m.ones(2, dtype=m.float32) * 2**40, id="f32*int"),
        pytest.param(lambda m: m.ones(2, dtype=m.int32) + 1, id="i32+int"),
        pytest.param(lambda m: m.ones(2, dtype=m.int32) * 2.5, id="i32*float"),
        pytest.param(lambda m: m.ones(2, dtype=m.int64) / 2, id="i64/int"),
        pytest.param(
            lambda m: m.ones(2, dtype=m.float32) + m.ones(2, dtype=m.float64), id="f32+f64"
        ),
        pytest.param(lambda m: m.ones(2) + m.tensor(1.0, dtype=m.float64), id="f32+f64_0d"),
        pytest.param(lambda m: m.tensor(1.0, dtype=m.float64) + m.tensor(1.0), id="f64_0d+f32_0d"),
        pytest.param(
            lambda m: m.ones(2, dtype=m.int32) + m.tensor(1.0, dtype=m.float64), id="i32+f64_0d"
        ),
        pytest.param(lambda m: m.ones(2, dtype=m.int32) + m.tensor(1), id="i32+i64_0d"),
        pytest.param(lambda m: m.tensor([True]) + m.tensor(1, dtype=m.int32), id="bool+i32_0d"),
        pytest.param(lambda m: m.tensor([True]) * 2, id="bool*int"),
        pytest.param(lambda m: m.tensor([True]) + True, id="bool+bool"),
        pytest.param(lambda m: m.ones(2, dtype=m.int64) ** 2, id="i64**int"),
        pytest.param(lambda m: m.ones(2, dtype=m.int64) ** 0.5, id="i64**float"),
        pytest.param(lambda m: 2 ** m.ones(2, dtype=m.float32), id="int**f32"),
        pytest.param(lambda m: m.tensor([1, 2]).exp(), id="exp_int"),
        pytest.param(lambda m: m.tensor([1, 2]).sum(), id="sum_int"),
        pytest.param(lambda m: m.tensor([True, True]).sum(), id="sum_bool"),
        pytest.param(lambda m: m.cat([m.ones(2), m.ones(2, dtype=m.float64)]), id="cat_promotes"),
        pytest.param(lambda m: m.ones(2) < 0.5, id="compare"),
        pytest.param(lambda m: m.tensor([1, 2]).argmax(), id="argmax"),
        pytest.param(lambda m: m.ones(2, 3).max(1)[1], id="max_indices"),
    ],
)
def test_type_promotion_matches_torch(make: Callable[[Any], Any], torch: Any) -> None:
    ours, ref = make(ag), make(torch)
    assert ours.dtype == _np_dtype(torch, ref.dtype)
    np.testing.assert_allclose(ours.data, ref.numpy())


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda m: m.zeros(2, 3), id="zeros"),
        pytest.param(lambda m: m.zeros((2, 3)), id="zeros_tuple"),
        pytest.param(lambda m: m.ones(4, dtype=m.float64), id="ones_f64"),
        pytest.param(lambda m: m.ones(()), id="ones_0d"),
        pytest.param(lambda m: m.zeros(2, dtype=m.int64), id="zeros_int64"),
        pytest.param(lambda m: m.arange(5), id="arange_int"),
        pytest.param(lambda m: m.arange(2, 11, 3), id="arange_step"),
        pytest.param(lambda m: m.arange(0, 1, 0.1), id="arange_float"),
        pytest.param(lambda m: m.arange(1, 2.5, 0.5), id="arange_float_end"),
        pytest.param(lambda m: m.arange(5, 0, -2), id="arange_negative_step"),
        pytest.param(lambda m: m.arange(4, dtype=m.float64), id="arange_dtype"),
        pytest.param(lambda m: m.full((2, 2), 3), id="full_int"),
        pytest.param(lambda m: m.full((2,), 1.5), id="full_float"),
        pytest.param(lambda m: m.full((2,), True), id="full_bool"),
    ],
)
def test_factories_match_torch(make: Callable[[Any], Any], torch: Any) -> None:
    ours, ref = make(ag), make(torch)
    assert ours.dtype == _np_dtype(torch, ref.dtype)
    assert ours.shape == tuple(ref.shape)
    np.testing.assert_allclose(ours.data, ref.numpy())


@pytest.mark.parametrize("factory", [cl.randn, cl.rand])
@pytest.mark.parametrize("dtype", [None, cl.float64])
def test_random_factories_are_seeded(factory: Callable[..., Tensor], dtype: Any) -> None:
    cl.manual_seed(7)
    a = factory(2, 3, dtype=dtype)
    generator = ag.default_generator()
    cl.manual_seed(7)
    b = factory((2, 3), dtype=dtype, requires_grad=True)
    assert generator is ag.default_generator()  # reseeded in place, references stay valid
    assert a.dtype == (dtype or cl.float32) and a.shape == (2, 3)
    np.testing.assert_array_equal(a.data, b.data)
    assert b.requires_grad and not a.requires_grad


def test_rand_range_and_randperm() -> None:
    cl.manual_seed(0)
    assert 0 <= cl.rand(1000).data.min() and cl.rand(1000).data.max() < 1
    perm = ag.randperm(10)
    assert perm.dtype == cl.int64 and sorted(perm.tolist()) == list(range(10))
    ints = ag.randint(3, 6, (50,))
    assert ints.dtype == cl.int64 and set(ints.tolist()) <= {3, 4, 5}
    assert set(ag.randint(2, (20,)).tolist()) <= {0, 1}


# --------------------------------------------------------------------------- the engine


def test_gradients_accumulate_across_backward_calls() -> None:
    x = cl.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    grad = x.grad
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 4 * x.data)
    assert x.grad is grad  # accumulated in place, as torch
    x.grad.zero_()
    x.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.ones(3))


def test_grad_has_leaf_dtype_and_non_leaf_grad_stays_none() -> None:
    x = cl.ones(2, requires_grad=True)
    y = x * cl.tensor(2.0, dtype=cl.float64)  # float32: a 0-d operand does not widen
    z = x.double() * 3
    (y.sum() + z.sum()).backward()
    assert y.dtype == cl.float32 and x.grad.dtype == cl.float32
    np.testing.assert_allclose(x.grad.data, [5.0, 5.0])
    assert y.grad is None and not y.is_leaf and x.is_leaf


def test_retain_grad_keeps_non_leaf_gradient() -> None:
    x = cl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.data, 2 * y.data)


def test_diamond_graph_sums_both_paths() -> None:
    x = cl.tensor(2.0, requires_grad=True)
    y = x * x
    z = y + y * y  # dz/dx = 2x + 4x^3
    z.backward()
    assert x.grad.item() == pytest.approx(4 + 32)


def test_deep_graph_does_not_recurse() -> None:
    x = cl.tensor(1.0, dtype=cl.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**5000)


def test_second_backward_needs_retain_graph() -> None:
    x = cl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 4 * x.data)
    with pytest.raises(
        RuntimeError, match="backward through the graph a second time.*retain_graph"
    ):
        y.backward()
    # A graph that saved nothing can be walked again, as in torch.
    s = (x + x).sum()
    s.backward()
    s.backward()


def test_backward_with_explicit_gradient() -> None:
    x = cl.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(cl.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.data, [3.0, 30.0])
    x.backward(np.array([1.0, 1.0], np.float32))  # a leaf accumulates directly
    np.testing.assert_allclose(x.grad.data, [4.0, 31.0])


@pytest.mark.parametrize(
    ("make", "gradient", "message"),
    [
        (lambda: cl.ones(2, requires_grad=True) * 2, None, "implicitly created only for scalar"),
        (lambda: cl.ones(2) * 2, None, "element 0 of tensors does not require grad"),
        (lambda: cl.ones(2, requires_grad=True) * 2, np.ones(3), r"Mismatch in shape.*\(3,\)"),
    ],
)
def test_backward_errors(make: Callable[[], Tensor], gradient: Any, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        make().backward(gradient)


def test_no_grad_and_enable_grad() -> None:
    x = cl.ones(2, requires_grad=True)
    with cl.no_grad():
        assert not cl.is_grad_enabled()
        y = x * 2
        with cl.enable_grad():
            z = x * 2
    assert cl.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None

    @cl.no_grad()
    def double(t: Tensor) -> Tensor:
        return t * 2

    assert not double(x).requires_grad and cl.is_grad_enabled()
    with ag.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert cl.is_grad_enabled()


def test_grad_mode_is_thread_local() -> None:
    seen = []
    with cl.no_grad():
        thread = threading.Thread(target=lambda: seen.append(cl.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_grad_function_leaves_dot_grad_alone() -> None:
    x = cl.tensor([1.0, 2.0], requires_grad=True)
    w = cl.tensor([3.0, 4.0], requires_grad=True)
    h = x * w
    gx, gh = ag.grad((h * h).sum(), [x, h])
    np.testing.assert_allclose(gx.data, 2 * h.data * w.data)
    np.testing.assert_allclose(gh.data, 2 * h.data)
    assert x.grad is None and w.grad is None
    unused = cl.ones(1, requires_grad=True)
    with pytest.raises(RuntimeError, match="not have been used"):
        ag.grad((x * 2).sum(), [unused])
    assert ag.grad((x * 2).sum(), [unused], allow_unused=True) == (None,)


def test_in_place_rules() -> None:
    w = cl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad.*in-place"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w[0] = 5.0
    with cl.no_grad():
        w.mul_(2).sub_(cl.ones(3), alpha=0.5)
        w[0] = 0.0
    np.testing.assert_allclose(w.data, [0.0, 1.5, 1.5])
    with pytest.raises(RuntimeError, match=r"output with shape \[3\].*broadcast shape \[2, 3\]"):
        cl.zeros(3).add_(cl.ones(2, 3))
    w.data = np.zeros(3, np.float32)  # .data is assignable, outside the graph
    assert w.requires_grad and w.data.sum() == 0


def test_requires_grad_rules() -> None:
    with pytest.raises(RuntimeError, match="floating point dtype can require gradients"):
        cl.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        cl.zeros(2, dtype=cl.int64, requires_grad=True)
    y = cl.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    assert cl.ones(2).requires_grad_().requires_grad


def test_numpy_interop() -> None:
    x = cl.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        x.numpy()
    assert x.detach().numpy() is x.data
    assert np.asarray(x).shape == (2, 2)
    mixed = np.full((2, 2), 3.0) * x  # NumPy defers to Tensor's reflected operator
    assert isinstance(mixed, Tensor) and mixed.requires_grad and mixed.dtype == cl.float64


def test_tensor_basics() -> None:
    x = cl.tensor([[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2 and len(x) == 2
    assert x.size() == (2, 3) and x.size(-1) == 3 and x.numel() == 6
    assert x.dtype == cl.float32 and x.float().dtype == cl.float32
    assert x.double().dtype == cl.float64 and x.long().dtype == cl.int64
    assert x.to(cl.float64).dtype == cl.float64 and x.to("cpu") is x
    assert x[0, 0].item() == 1.5 and isinstance(cl.tensor(3).item(), int)
    assert [row.shape for row in x] == [(3,), (3,)]
    expected = "tensor([[1.5000, 2.0000, 3.0000],\n        [4.0000, 5.0000, 6.0000]], "
    assert repr(x) == expected + "requires_grad=True)"
    assert repr(x * 2).endswith("grad_fn=<MulBackward>)")
    assert repr(cl.tensor([1.0, 2.0], dtype=cl.float64)) == "tensor([1., 2.], dtype=float64)"
    assert repr(cl.tensor([[1, 2]])) == "tensor([[1, 2]])"
    assert bool(cl.tensor([1.0])) and float(cl.tensor(2.5)) == 2.5
    assert {x: 1}[x] == 1  # hashable by identity, as torch


def test_max_with_dim_returns_values_and_indices() -> None:
    x = cl.tensor([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.dtype == cl.int64 and indices.tolist() == [1, 0]
    assert not indices.requires_grad
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 1, 0], [1, 0, 0]])
    assert x.argmax().item() == 3 and x.argmax(dim=0, keepdim=True).tolist() == [[1, 0, 1]]


def test_comparisons_give_bool_tensors_without_grad() -> None:
    x = cl.tensor([0.1, 0.5, 0.9], requires_grad=True)
    for result in (x > 0.5, x >= 0.5, x < 0.5, x <= 0.5, x == 0.5, x != 0.5):
        assert result.dtype == ag.bool_ and not result.requires_grad
    assert (x == 0.1).tolist() == [True, False, False]  # compared in float32, as torch
    assert ((x > 0.2) & (x < 0.8)).tolist() == [False, True, False]
    assert (~(x > 0.2)).tolist() == [True, False, False]


# --------------------------------------------------------------------------- Function API


class ScaledSum(Function):
    """A test op: ``scale * (x + w)`` summed over dim 0, with a non-Tensor middle argument."""

    @staticmethod
    def forward(ctx, x, mask, w, scale=1.0):
        ctx.save_for_backward(x, w)
        ctx.scale = scale
        ctx.seen_needs = ctx.needs_input_grad
        assert mask is None
        return (scale * (x + w)).sum(0)

    @staticmethod
    def backward(ctx, grad_output):
        x, _ = ctx.saved_tensors
        g = np.broadcast_to(ctx.scale * grad_output, x.shape)
        # w's gradient is left broadcast (x's shape): the engine sums it down to w's shape.
        return g, None, g


class SortWithIndices(Function):
    """A two-output op: values (differentiable) and positions marked non-differentiable."""

    @staticmethod
    def forward(ctx, x):
        order = np.argsort(x, kind="stable")
        positions = order.astype(np.float64)
        ctx.save_for_backward(order)
        ctx.mark_non_differentiable(positions)
        return x[order], positions

    @staticmethod
    def backward(ctx, grad_values, grad_positions):
        assert grad_positions is None
        (order,) = ctx.saved_tensors
        out = np.zeros_like(grad_values)
        out[order] = grad_values
        return out


def test_function_apply_unwraps_and_links() -> None:
    x = cl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w = cl.ones(3, dtype=cl.float64, requires_grad=True)
    y = ScaledSum.apply(x, None, w, scale=2.0)
    assert isinstance(y, Tensor) and y.grad_fn.name() == "ScaledSumBackward"
    assert y.grad_fn.seen_needs == (True, False, True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 2.0))
    np.testing.assert_allclose(w.grad.data, np.full(3, 4.0))
    plain = ScaledSum.apply(np.ones((2, 3)), None, np.ones(3))  # arrays in, Tensor out
    assert isinstance(plain, Tensor) and not plain.requires_grad


def test_function_multiple_outputs() -> None:
    x = cl.tensor([3.0, 1.0, 2.0], dtype=cl.float64, requires_grad=True)
    values, positions = SortWithIndices.apply(x)
    assert values.requires_grad and not positions.requires_grad
    (values * cl.tensor([1.0, 10.0, 100.0], dtype=cl.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.data, [100.0, 1.0, 10.0])
    assert cl.gradcheck(lambda t: SortWithIndices.apply(t), (x,))


def test_function_with_wrong_gradient_shape_is_reported() -> None:
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return np.ones(5)

    with pytest.raises(RuntimeError, match=r"BadBackward returned an invalid gradient.*\[5\]"):
        Bad.apply(cl.ones(2, requires_grad=True)).sum().backward()


# --------------------------------------------------------------------------- gradcheck itself


class WrongGrad(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g * a * 1.01  # the second gradient is 1% off


def test_gradcheck_reports_the_wrong_input() -> None:
    a = cl.randn(3, dtype=cl.float64, requires_grad=True)
    b = cl.randn(3, dtype=cl.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match=r"output 0 with respect to input 1.*numerical"):
        cl.gradcheck(WrongGrad.apply, (a, b))
    assert cl.gradcheck(WrongGrad.apply, (a, b), raise_exception=False) is False
    assert isinstance(GradcheckError("x"), RuntimeError)
    assert a.grad is None  # gradcheck leaves .grad alone


def test_gradcheck_warns_for_float32_and_handles_tuples() -> None:
    x = cl.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="not of double precision|not a double precision"):
        cl.gradcheck(lambda t: t * 2, (x,), atol=1e-2, rtol=1e-2, eps=1e-3)
    y = cl.randn(2, 2, dtype=cl.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cl.gradcheck(lambda t, k: (t * k, t.exp().sum()), (y, 3.0))


# --------------------------------------------------------------------------- error messages

ERRORS = [
    (
        lambda: cl.ones(2, 3) @ cl.ones(4, 5),
        RuntimeError,
        r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)",
    ),
    (lambda: cl.ones(3) @ cl.ones(4), RuntimeError, r"inconsistent tensor size.*\[3\].*\[4\]"),
    (lambda: cl.ones(2, 3) @ cl.ones(4), RuntimeError, r"size mismatch.*mat \(2x3\), vec \(4\)"),
    (lambda: cl.ones(()) @ cl.ones(4), RuntimeError, "at least 1D, but they are 0D and 1D"),
    (lambda: cl.ones(2, 3) @ cl.ones(3, 3, dtype=cl.float64), RuntimeError, "same dtype"),
    (
        lambda: cl.ones(2, 3) + cl.ones(2, 4),
        RuntimeError,
        r"size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton "
        "dimension 1",
    ),
    (
        lambda: cl.ones(5, 3) * cl.ones(2, 1, 4),
        RuntimeError,
        r"tensor a \(3\).*tensor b \(4\) at non-singleton dimension 2",
    ),
    (
        lambda: cl.ones(2, 3).reshape(4, 2),
        RuntimeError,
        r"shape '\[4, 2\]' is invalid for input of size 6",
    ),
    (lambda: cl.ones(2, 3).reshape(-1, -1), RuntimeError, "only one dimension can be inferred"),
    (
        lambda: cl.ones(2, 3).sum(2),
        IndexError,
        r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)",
    ),
    (lambda: cl.ones(2, 3).permute(0, 0), RuntimeError, "duplicate dims"),
    (
        lambda: cl.ones(2, 3).permute(1, 0, 2),
        RuntimeError,
        "input.dim\\(\\) = 2 is not equal to len\\(dims\\) = 3",
    ),
    (lambda: cl.ones(2, 3)[5], IndexError, "index 5 is out of bounds for dimension 0 with size 2"),
    (lambda: cl.ones(4)[::-1], ValueError, "step must be greater than zero"),
    (lambda: cl.ones(2)[cl.tensor([0.5])], IndexError, "tensors used as indices must be long"),
    (
        lambda: cl.cat([cl.ones(2, 3), cl.ones(2, 4)]),
        RuntimeError,
        "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 "
        "for tensor number 1",
    ),
    (lambda: cl.cat([]), ValueError, "expected a non-empty list of Tensors"),
    (lambda: cl.cat(cl.ones(2)), TypeError, "sequence of Tensors"),
    (
        lambda: cl.stack([cl.ones(2, 3), cl.ones(2, 4)]),
        RuntimeError,
        r"equal size, but got \[2, 3\] at entry 0 and \[2, 4\] at entry 1",
    ),
    (
        lambda: cl.ones(2, 3).expand(3, 3),
        RuntimeError,
        r"expanded size of the tensor \(3\) must match the existing size \(2\)",
    ),
    (
        lambda: cl.ones(2).item(),
        RuntimeError,
        "a Tensor with 2 elements cannot be converted to Scalar",
    ),
    (
        lambda: bool(cl.ones(2)),
        RuntimeError,
        "Boolean value of Tensor with more than one value is ambiguous",
    ),
    (lambda: cl.tensor([1, 2]).mean(), RuntimeError, "mean\\(\\): could not infer output dtype"),
    (lambda: cl.ones(0).max(), RuntimeError, "Specify the reduction dim"),
    (lambda: cl.zeros(-1, 2), RuntimeError, r"non-negative, but got size \[-1, 2\]"),
    (lambda: cl.zeros(2.5), TypeError, "sizes must be ints.*2.5"),
    (
        lambda: cl.randn(2, dtype=cl.int64),
        TypeError,
        "randn\\(\\): dtype must be a floating point dtype, but got int64",
    ),
    (lambda: cl.ones(2).flatten(1, 0), IndexError, "Dimension out of range"),
    (lambda: cl.ones(2, 3).flatten(1, 0), RuntimeError, "start_dim cannot come after end_dim"),
    (lambda: cl.tensor([1, 2]) ** -1, RuntimeError, "Integers to negative integer powers"),
    (lambda: cl.tensor([True]) - cl.tensor([True]), RuntimeError, "Subtraction.*bool tensors"),
    (lambda: cl.tensor("abc"), TypeError, "tensor\\(\\): data must be.*str"),
    (
        lambda: cl.tensor([1.0], dtype="complex128"),
        TypeError,
        "dtype must be a bool, integer or floating dtype, but got complex128",
    ),
    (lambda: cl.ones(2).to("cuda"), ValueError, "device='cuda'"),
    (lambda: cl.manual_seed(1.5), TypeError, "seed must be an int"),
    (lambda: cl.ones(2).clamp(), RuntimeError, "At least one of 'min' or 'max'"),
    (lambda: len(cl.tensor(1.0)), TypeError, "len\\(\\) of a 0-d tensor"),
    (lambda: cl.gradcheck(lambda t: t, (cl.ones(2),)), ValueError, "requires_grad=True"),
]


@pytest.mark.parametrize(("call", "error", "message"), ERRORS)
def test_error_messages(call: Callable[[], Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


# -- leaves take fresh gradients without a copy ------------------------------------------------


def test_leaf_takes_a_fresh_gradient_and_still_accumulates_right():
    import convlab.nn.functional as F

    rng = np.random.default_rng(31)
    x = cl.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = cl.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    g = rng.standard_normal((2, 4, 4, 4))
    y = F.conv2d(x, w)
    y.backward(cl.tensor(g), retain_graph=True)
    first = x.grad.data.copy()
    # The adopted array is x's alone: not the incoming gradient, nor anything saved.
    assert not np.shares_memory(x.grad.data, g)
    assert not np.shares_memory(x.grad.data, w.grad.data)
    assert not np.shares_memory(x.grad.data, x.data)
    y.backward(cl.tensor(g))  # accumulates into it in place
    np.testing.assert_allclose(x.grad.data, 2 * first, rtol=1e-12)
    # A leaf used twice: the second gradient adds onto the adopted first one.
    a = cl.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    k = cl.tensor(rng.standard_normal((2, 2, 2, 2)))
    (F.conv2d(a, k).sum() + F.max_pool2d(a, 2).sum()).backward()
    b = cl.tensor(a.data, requires_grad=True)
    F.conv2d(b, k).sum().backward()
    only_conv = b.grad.data.copy()
    b.grad = None
    F.max_pool2d(b, 2).sum().backward()
    np.testing.assert_allclose(a.grad.data, only_conv + b.grad.data, rtol=1e-12)


def test_leaf_copies_gradients_of_functions_that_may_share_them():
    x = cl.tensor(np.ones(3), requires_grad=True)
    g = np.arange(3.0)
    (x * 1.0).backward(cl.tensor(g))  # Mul's gradient may be the incoming one
    x.grad.data[0] = 99.0
    assert g[0] == 0.0
