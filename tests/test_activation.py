"""Activations: against the loops in kernels/reference_activation_loss.py, finite differences,
PyTorch 2.13 (random configurations, kink points, NaN and infinities), errors and modules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn
import convlab.nn.functional as F
from convlab.kernels import reference_activation_loss as ref
from convlab.nn.functional.activation import erf, erf32

TOL64 = dict(rtol=1e-10, atol=1e-12)
TOL32 = dict(rtol=1e-4, atol=1e-5)  # float32 eps x term sizes up to ~100
REF_TOL = dict(rtol=1e-12, atol=1e-12)
ELEMENTWISE = [
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "gelu_tanh", "sigmoid", "tanh",
    "softplus", "silu", "mish", "hardtanh", "hardsigmoid", "hardswish",
]  # fmt: skip


def draw_params(name: str, rng: np.random.Generator) -> dict:
    """Random arguments for an activation, or {} for one without any."""
    if name == "leaky_relu":
        return {"negative_slope": float(rng.choice([0.01, rng.uniform(-0.5, 1.5)]))}
    if name in ("elu", "celu"):
        return {"alpha": float(rng.uniform(0.1, 3.0))}
    if name == "softplus":
        return {"beta": float(rng.uniform(0.2, 3.0)), "threshold": float(rng.uniform(1.0, 25.0))}
    if name == "hardtanh":
        lo = float(rng.uniform(-3.0, 0.5))
        return {"min_val": lo, "max_val": lo + float(rng.uniform(0.1, 4.0))}
    return {}


def kinks(name: str, params: dict) -> list[float]:
    """The points where the activation's formula changes, which torch assigns a side."""
    if name in ("relu", "leaky_relu", "elu", "selu", "celu"):
        return [0.0, -0.0]
    if name == "relu6":
        return [0.0, 6.0]
    if name == "hardtanh":
        return [params["min_val"], params["max_val"]]
    if name in ("hardsigmoid", "hardswish"):
        return [-3.0, 3.0]
    if name == "softplus":
        return [params["threshold"] / params["beta"]]
    return [0.0]


def ours(name: str, x, **params):
    if name == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    return getattr(F, name)(x, **params)


# ---------------------------------------------------------------------------------------------
# 1. Reference loops (float64)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("seed", range(3))
def test_matches_reference_with_derivative(name, seed):
    rng = np.random.default_rng(seed)
    params = draw_params(name, rng)
    x = np.concatenate([rng.normal(0, 3, 40), kinks(name, params), [25.0, -25.0]])
    expected = ref.elementwise(ref.ACTIVATIONS[name], x, **params)
    expected_grad = ref.elementwise(ref.ACTIVATION_GRADS[name], x, **params)
    xt = cl.tensor(x, requires_grad=True)
    y = ours(name, xt, **params)
    y.sum().backward()
    np.testing.assert_allclose(y.data, expected, **REF_TOL)
    np.testing.assert_allclose(xt.grad.data, expected_grad, **REF_TOL)


def test_erf_matches_math_erf():
    import math

    z = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 1e-2, 50)])
    expected = np.array([math.erf(v) for v in z])
    np.testing.assert_allclose(erf(z), expected, rtol=1e-14, atol=5e-15)
    assert np.isnan(erf(np.array([np.nan]))).all()
    np.testing.assert_array_equal(erf(np.array([np.inf, -np.inf, 0.0])), [1.0, -1.0, 0.0])
    # The float32 path: within a few float32 ulps of 1, as torch's own float32 erf.
    np.testing.assert_allclose(erf32(z.astype(np.float32)), expected, rtol=0, atol=5e-7)
    assert np.isnan(erf32(np.array([np.nan], np.float32))).all()


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_matches_reference(log, dim):
    x = np.random.default_rng(3).normal(0, 5, (3, 4, 5))
    x[0, 0, 0] = 800.0  # would overflow exp() without the max subtracted
    fn = F.log_softmax if log else F.softmax
    np.testing.assert_allclose(fn(x, dim).data, ref.softmax(x, dim, log), **REF_TOL)
    np.testing.assert_allclose(F.softmin(x, dim).data, ref.softmax(-x, dim, False), **REF_TOL)


@pytest.mark.parametrize("shape,num", [((5,), 1), ((2, 3), 3), ((2, 3, 4, 2), 3), ((2, 3, 4), 1)])
def test_prelu_matches_reference(shape, num):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape)
    x.flat[0] = 0.0
    w = rng.uniform(-0.5, 1.0, num)
    g = rng.normal(size=shape)
    xt, wt = cl.tensor(x, requires_grad=True), cl.tensor(w, requires_grad=True)
    y = F.prelu(xt, wt)
    y.backward(cl.tensor(g))
    grad_x, grad_w = ref.prelu_grads(x, w, g)
    np.testing.assert_allclose(y.data, ref.prelu(x, w), **REF_TOL)
    np.testing.assert_allclose(xt.grad.data, grad_x, **REF_TOL)
    np.testing.assert_allclose(wt.grad.data, grad_w, **REF_TOL)


# ---------------------------------------------------------------------------------------------
# 2. Finite differences (float64), away from the kinks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_gradcheck(name):
    rng = np.random.default_rng(5)
    params = draw_params(name, rng)
    x = rng.normal(0, 3, (3, 4))
    for k in kinks(name, params):
        x[np.abs(x - k) < 1e-3] += 0.01
    xt = cl.tensor(x, requires_grad=True)
    assert cl.gradcheck(lambda t: ours(name, t, **params), (xt,))


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax, F.softmin])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_gradcheck_softmax_family(fn, dim):
    x = cl.tensor(np.random.default_rng(6).normal(size=(2, 3, 4)), requires_grad=True)
    assert cl.gradcheck(lambda t: fn(t, dim), (x,))


@pytest.mark.parametrize("shape,num", [((2, 3, 4), 3), ((2, 3), 1), ((4,), 1)])
def test_gradcheck_prelu(shape, num):
    rng = np.random.default_rng(7)
    x = rng.normal(size=shape)
    x[np.abs(x) < 1e-3] = 0.5
    xt = cl.tensor(x, requires_grad=True)
    wt = cl.tensor(rng.uniform(0.0, 0.5, num), requires_grad=True)
    assert cl.gradcheck(F.prelu, (xt, wt))


# ---------------------------------------------------------------------------------------------
# 3. PyTorch 2.13
# ---------------------------------------------------------------------------------------------


def _draw_elementwise(count: int) -> list[dict]:
    rng = np.random.default_rng(2024)
    configs = []
    for i in range(count):
        name = ELEMENTWISE[i % len(ELEMENTWISE)]
        ndim = int(rng.integers(0, 5))
        configs.append(
            {
                "name": name,
                "params": draw_params(name, rng),
                "shape": tuple(int(s) for s in rng.integers(1, 5, ndim)),
                "scale": float(rng.choice([1.0, 4.0, 30.0])),
                "seed": int(rng.integers(2**31)),
            }
        )
    return configs


ELEMENTWISE_CONFIGS = _draw_elementwise(160)


def theirs(torch, name: str, x, **params):
    if name == "gelu_tanh":
        return torch.nn.functional.gelu(x, approximate="tanh")
    if name in ("sigmoid", "tanh"):
        return getattr(torch, name)(x)
    return getattr(torch.nn.functional, name)(x, **params)


def _compare(torch, ours_out, theirs_out, dtype, mask=None):
    tol = TOL64 if dtype == np.float64 else TOL32
    a = ours_out.data
    b = theirs_out.detach().numpy()
    assert a.dtype == b.dtype and a.shape == b.shape
    if mask is not None:
        a, b = a[mask], b[mask]
    np.testing.assert_allclose(a, b, equal_nan=True, **tol)


@pytest.mark.parametrize(
    "config", ELEMENTWISE_CONFIGS, ids=lambda c: f"{c['name']}-{c['shape']}-{c['seed'] % 1000}"
)
def test_elementwise_matches_torch(torch, config):
    name, params = config["name"], config["params"]
    rng = np.random.default_rng(config["seed"])
    special = kinks(name, params) + [np.nan, np.inf, -np.inf, 50.0, -50.0, 800.0, -800.0]
    for dtype in (np.float64, np.float32):
        x = (rng.normal(size=config["shape"]) * config["scale"]).astype(dtype)
        x = np.concatenate([np.atleast_1d(x).ravel(), np.array(special, dtype)])
        g = rng.normal(size=x.shape).astype(dtype)
        tx = torch.tensor(x, requires_grad=True)
        cx = cl.tensor(x, requires_grad=True)
        ty, cy = theirs(torch, name, tx, **params), ours(name, cx, **params)
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        mask = None
        if name == "gelu" and dtype == np.float32:
            mask = np.isfinite(x)  # torch's float32 erf gives gelu(+-inf) = nan; float64 inf
        _compare(torch, cy, ty, dtype, mask)
        # torch's gradient at NaN differs between its own scalar and vectorised kernels.
        _compare(torch, cx.grad, tx.grad, dtype, ~np.isnan(x))


def _draw_softmax(count: int) -> list[dict]:
    rng = np.random.default_rng(99)
    configs = []
    for i in range(count):
        ndim = int(rng.integers(0, 5))
        configs.append(
            {
                "fn": ("softmax", "log_softmax", "softmin")[i % 3],
                "shape": tuple(int(s) for s in rng.integers(1, 6, ndim)),
                "dim": int(rng.integers(-max(ndim, 1), max(ndim, 1))),
                "scale": float(rng.choice([1.0, 10.0, 300.0])),
                "neg_inf": bool(rng.random() < 0.3),
                "seed": int(rng.integers(2**31)),
            }
        )
    return configs


@pytest.mark.parametrize("config", _draw_softmax(60), ids=lambda c: f"{c['fn']}-{c['shape']}")
def test_softmax_family_matches_torch(torch, config):
    rng = np.random.default_rng(config["seed"])
    for dtype in (np.float64, np.float32):
        x = (rng.normal(size=config["shape"]) * config["scale"]).astype(dtype)
        if config["neg_inf"] and x.ndim and x.shape[config["dim"]] > 1:
            x[(0,) * x.ndim] = -np.inf  # one masked entry, as in attention masks
        g = rng.normal(size=x.shape).astype(dtype)
        tx, cx = torch.tensor(x, requires_grad=True), cl.tensor(x, requires_grad=True)
        ty = getattr(torch.nn.functional, config["fn"])(tx, config["dim"])
        cy = getattr(F, config["fn"])(cx, config["dim"])
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        _compare(torch, cy, ty, dtype)
        _compare(torch, cx.grad, tx.grad, dtype)


def test_softmax_special_values_match_torch(torch):
    x = np.array([[np.inf, 1.0], [-np.inf, -np.inf], [np.nan, 0.0], [1000.0, -1000.0]])
    for name in ("softmax", "log_softmax", "softmin"):
        expected = getattr(torch.nn.functional, name)(torch.tensor(x), 1).numpy()
        np.testing.assert_allclose(getattr(F, name)(x, 1).data, expected, equal_nan=True)


@pytest.mark.parametrize("seed", range(12))
def test_prelu_matches_torch(torch, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(1, 5))))
    channels = shape[1] if len(shape) >= 2 else 1
    num = int(rng.choice([1, channels]))
    for dtype in (np.float64, np.float32):
        x = rng.normal(size=shape).astype(dtype)
        x.flat[0] = 0.0
        w = rng.uniform(-0.5, 1.0, num).astype(dtype)
        g = rng.normal(size=shape).astype(dtype)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        cx, cw = cl.tensor(x, requires_grad=True), cl.tensor(w, requires_grad=True)
        ty, cy = torch.nn.functional.prelu(tx, tw), F.prelu(cx, cw)
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        _compare(torch, cy, ty, dtype)
        _compare(torch, cx.grad, tx.grad, dtype)
        _compare(torch, cw.grad, tw.grad, dtype)


MODULES = [
    ("ReLU", (), {}), ("ReLU", (True,), {}), ("ReLU6", (), {}), ("ReLU6", (True,), {}),
    ("LeakyReLU", (), {}), ("LeakyReLU", (0.2, True), {}), ("ELU", (), {}),
    ("ELU", (0.5, True), {}), ("SELU", (), {}), ("SELU", (True,), {}), ("CELU", (), {}),
    ("CELU", (0.5,), {}), ("GELU", (), {}), ("GELU", ("tanh",), {}), ("Sigmoid", (), {}),
    ("Tanh", (), {}), ("Softplus", (), {}), ("Softplus", (2, 10), {}), ("SiLU", (True,), {}),
    ("Mish", (), {}), ("Hardtanh", (), {}), ("Hardtanh", (-2, 3, True), {}),
    ("Hardsigmoid", (True,), {}), ("Hardswish", (), {}), ("PReLU", (), {}),
    ("PReLU", (3, 0.1), {}), ("Softmax", (1,), {}), ("LogSoftmax", (), {"dim": -1}),
    ("Softmin", (), {}),
]  # fmt: skip


@pytest.mark.parametrize("name,args,kwargs", MODULES)
def test_module_repr_and_output_match_torch(torch, name, args, kwargs):
    theirs_module = getattr(torch.nn, name)(*args, **kwargs).double()
    ours_module = getattr(nn, name)(*args, **kwargs).double()
    assert repr(ours_module) == repr(theirs_module)
    x = np.random.default_rng(8).normal(size=(2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Softmin(dim=None)
        expected = theirs_module(torch.tensor(x)).detach().numpy()
        got = ours_module(cl.tensor(x.copy())).data
    np.testing.assert_allclose(got, expected, **TOL64)


# ---------------------------------------------------------------------------------------------
# Behaviour without torch: modules, in place, dtypes, legacy dim
# ---------------------------------------------------------------------------------------------


def test_prelu_module_parameters_learn():
    m = nn.PReLU(3, init=0.1)
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert m.weight.shape == (3,) and m.weight.dtype == np.float32
    np.testing.assert_array_equal(m.weight.data, np.full(3, 0.1, np.float32))
    x = cl.tensor(-np.ones((2, 3, 2), np.float32))
    m(x).sum().backward()
    np.testing.assert_allclose(m.weight.grad.data, [-4.0, -4.0, -4.0])
    assert nn.PReLU(dtype=np.float64).weight.dtype == np.float64


@pytest.mark.parametrize(
    "fn", [F.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.silu, F.mish, F.hardtanh,
           F.hardsigmoid, F.hardswish],
)  # fmt: skip
def test_inplace_overwrites_input(fn):
    x = cl.tensor([-4.0, -1.0, 0.5, 7.0])
    expected = fn(x).data
    out = fn(x, inplace=True)
    assert out is x
    np.testing.assert_array_equal(x.data, expected)


def test_inplace_on_graph_tensor_keeps_gradients():
    a = cl.tensor([-1.0, 2.0], requires_grad=True)
    h = a * 3
    y = F.relu(h, inplace=True)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [0.0, 6.0])
    np.testing.assert_array_equal(a.grad.data, [0.0, 3.0])


def test_inplace_on_leaf_requiring_grad_raises():
    x = cl.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.relu(x, inplace=True)
    with cl.no_grad():
        F.relu(x, inplace=True)
    np.testing.assert_array_equal(x.data, [1.0, 0.0])


def test_dtypes_kept_and_integers_where_torch_allows():
    for dtype in (np.float32, np.float64):
        x = np.array([-1.0, 2.0], dtype)
        for name in ELEMENTWISE:
            assert ours(name, x).dtype == dtype
    ints = np.array([-2, 3, 9])
    assert F.relu(ints).dtype == np.int64 and F.relu(ints).tolist() == [0, 3, 9]
    assert F.relu6(ints).tolist() == [0, 3, 6]
    assert F.sigmoid(ints).dtype == np.float32
    np.testing.assert_allclose(F.tanh(ints).data, np.tanh([-2.0, 3.0, 9.0]), rtol=1e-6)


def test_nan_propagates_through_forward_and_backward():
    x = np.array([np.nan, 1.0, -1.0])
    for name in ELEMENTWISE:
        xt = cl.tensor(x, requires_grad=True)
        y = ours(name, xt)
        assert np.isnan(y.data[0])
        y.sum().backward()
        assert np.isfinite(xt.grad.data[1:]).all()
    y = F.softmax(cl.tensor([[np.nan, 0.0], [1.0, 2.0]]), 1)
    assert np.isnan(y.data[0]).all() and np.isfinite(y.data[1]).all()


@pytest.mark.parametrize("ndim,dim", [(0, 0), (1, 0), (2, 1), (3, 0), (4, 1)])
def test_softmax_without_dim_warns_and_picks_torch_dim(ndim, dim):
    x = np.random.default_rng(9).normal(size=(2,) * ndim)
    for fn in (F.softmax, F.log_softmax, F.softmin):
        with pytest.warns(UserWarning, match="Implicit dimension choice") as record:
            got = fn(x)
        assert record[0].filename == __file__
        np.testing.assert_allclose(got.data, fn(x, dim).data)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        nn.Softmax()(cl.tensor(x))


def test_softmax_dtype_argument_and_empty_input():
    x = cl.tensor(np.array([[1.0, 2.0]], np.float32), requires_grad=True)
    y = F.softmax(x, 1, dtype=np.float64)
    assert y.dtype == np.float64
    y[0, 0].backward()
    assert x.grad.dtype == np.float32
    assert F.log_softmax(np.zeros((0, 3)), 1).shape == (0, 3)
    assert F.softmax(np.zeros((2, 0)), 1).shape == (2, 0)


# ---------------------------------------------------------------------------------------------
# 4. Errors, with torch's exception types and messages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,kernel",
    [("leaky_relu", "leaky_relu_cpu"), ("elu", "elu_cpu"), ("selu", "elu_cpu"),
     ("celu", "elu_cpu"), ("gelu", "GeluKernelImpl"), ("softplus", "softplus_cpu"),
     ("silu", "silu_cpu"), ("mish", "mish_cpu"), ("hardsigmoid", "hardsigmoid_cpu"),
     ("hardswish", "hardswish_cpu")],
)  # fmt: skip
def test_integer_input_not_implemented(name, kernel):
    with pytest.raises(NotImplementedError, match=f"\"{kernel}\" not implemented for 'Long'"):
        getattr(F, name)(np.array([1, -2]))


def test_softmax_integer_input_not_implemented():
    with pytest.raises(NotImplementedError, match="softmax_lastdim_kernel_impl.*'Int'"):
        F.softmax(np.array([1, 2], np.int32), 0)
    with pytest.raises(NotImplementedError, match="log_softmax_kernel_impl.*'Long'"):
        F.log_softmax(np.ones((2, 2), np.int64), 0)


def test_argument_errors():
    x = np.ones(3)
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(x, approximate="exact")
    with pytest.raises(RuntimeError, match="alpha cannot be 0 for CELU"):
        F.celu(x, alpha=0.0)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match=r"max_val \(1.0\) must be greater than min_val \(1.0\)"):
        nn.Hardtanh(1.0, 1.0)
    with pytest.raises(TypeError, match="argument 'negative_slope' must be Number, not str"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(TypeError, match="argument 'input' must be a Tensor or numpy.ndarray"):
        F.relu([1.0, 2.0])
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of"):
        F.softmax(np.ones((2, 3)), 2)


def test_prelu_errors():
    with pytest.raises(RuntimeError, match="Expected `weight` to be a scalar or 1D tensor"):
        F.prelu(np.ones((2, 3)), np.ones((3, 1)))
    with pytest.raises(RuntimeError, match="Not allow zero-dim input tensor"):
        F.prelu(np.array(1.0), np.ones(3))
    with pytest.raises(RuntimeError, match="parameter numbers = 3 and channel size = 4"):
        F.prelu(np.ones((2, 4)), np.ones(3))
    with pytest.raises(RuntimeError, match="parameter numbers = 3 and channel size = 1"):
        F.prelu(np.ones(3), np.ones(3))
    with pytest.raises(RuntimeError, match="Type promoting not supported. Got Float and Double"):
        F.prelu(np.ones((2, 3), np.float32), np.ones(1))
    assert F.prelu(np.array(-2.0), np.array([0.5])).item() == -1.0


ERROR_CASES = [
    lambda f, t: f.gelu(t([1.0]), approximate="x"),
    lambda f, t: f.hardtanh(t([1.0]), 2.0, 1.0),
    lambda f, t: f.prelu(t([[1.0]]), t([[1.0]])),
    lambda f, t: f.prelu(t([[1.0, 2.0]]), t([1.0, 2.0, 3.0])),
    lambda f, t: f.prelu(t(1.0), t([1.0, 2.0])),
    lambda f, t: f.prelu(t([[1.0, 2.0]]), t([1.0], np.float64)),
    lambda f, t: f.leaky_relu(t([1], np.int64), 0.1),
    lambda f, t: f.hardswish(t([1], np.int32)),
    lambda f, t: f.celu(t([1.0]), 0.0),
]


@pytest.mark.parametrize("case", range(len(ERROR_CASES)))
def test_error_messages_match_torch(torch, case):
    """Where torch's message is a fixed text, ours is the same text and exception type."""

    def torch_tensor(values, dtype=np.float32):
        return torch.tensor(np.array(values, dtype))

    def our_tensor(values, dtype=np.float32):
        return cl.tensor(np.array(values, dtype))

    with pytest.raises(Exception) as theirs_error:
        ERROR_CASES[case](torch.nn.functional, torch_tensor)
    with pytest.raises(type(theirs_error.value)) as ours_error:
        ERROR_CASES[case](F, our_tensor)
    assert str(ours_error.value) == str(theirs_error.value)
