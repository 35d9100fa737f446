"""Pooling: max, average, LP, adaptive and max-unpooling in 1, 2 and 3 dimensions.

Shown correct three ways, as every op in convlab:
1. against the slow loops of ``convlab.kernels.reference_pool`` (float64, exact to 1e-12),
   including indices, NaN/tie rules and the ceil-mode divisor;
2. ``convlab.gradcheck`` (float64 finite differences) for every op;
3. against PyTorch 2.13 on random configurations drawn from a fixed seed: forward, indices and
   the input gradient, in float64 and float32.
Bad arguments raise the exception type PyTorch raises, with a message naming the argument.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn
import convlab.nn.functional as F
from convlab import shapes
from convlab.kernels import pool as kernels
from convlab.kernels import reference_pool as reference

TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=1e-5)}
EXACT = dict(rtol=1e-12, atol=1e-12)
KINDS = ("max", "avg", "lp", "adaptive_avg", "adaptive_max", "unpool")


# ---------------------------------------------------------------------------------------------
# Random configurations (fixed seed), shared by the reference and the PyTorch tests
# ---------------------------------------------------------------------------------------------


def _maybe_tuple(rng, values: tuple[int, ...]):
    """An int when all entries agree and a coin says so; else the tuple."""
    if len(set(values)) == 1 and rng.random() < 0.5:
        return values[0]
    return values


def _has_real_element(size, kernel, stride, pad, dilation, out) -> bool:
    """Every window holds at least one element of the input (not only padding)."""
    for o in range(out):
        start = o * stride - pad
        if not any(0 <= start + j * dilation < size for j in range(kernel)):
            return False
    return True


def _window_config(rng, kind: str, n: int, spatial) -> dict | None:
    max_k = {1: 5, 2: 4, 3: 3}[n]
    kernel = tuple(int(k) for k in rng.integers(1, max_k + 1, n))
    stride = tuple(int(s) for s in rng.integers(1, 4, n))
    use_dilation = kind == "max" and rng.random() < 0.4
    dilation = tuple(int(d) for d in rng.integers(1, 3, n)) if use_dilation else (1,) * n
    padding = (0,) * n
    if kind in ("max", "avg") and rng.random() < 0.6:
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    ceil_mode = bool(rng.random() < 0.4)
    out = shapes.pool_output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
    if any(o < 1 for o in out):
        return None
    if n == 3 and kind in ("avg", "lp") and any(s < k for s, k in zip(spatial, kernel)):
        return None  # PyTorch's avg_pool3d refuses an input smaller than the kernel
    if not all(
        _has_real_element(*args) for args in zip(spatial, kernel, stride, padding, dilation, out)
    ):
        return None
    # lp_pool1d takes an int kernel_size only (PyTorch multiplies by it).
    args = dict(kernel_size=kernel[0] if kind == "lp" and n == 1 else _maybe_tuple(rng, kernel))
    if rng.random() < 0.7:
        args["stride"] = _maybe_tuple(rng, stride)
    else:
        stride = kernel  # the default
        out = shapes.pool_output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
        if any(o < 1 for o in out) or not all(
            _has_real_element(*a) for a in zip(spatial, kernel, stride, padding, dilation, out)
        ):
            return None
    if any(padding):
        args["padding"] = _maybe_tuple(rng, padding)
    if use_dilation:
        args["dilation"] = _maybe_tuple(rng, dilation)
    args["ceil_mode"] = ceil_mode
    if kind == "max":
        args["return_indices"] = bool(rng.random() < 0.5)
    if kind == "avg":
        args["count_include_pad"] = bool(rng.random() < 0.5)
        if n > 1 and rng.random() < 0.25:
            args["divisor_override"] = int(rng.choice([-3, -1, 1, 2, 5]))
    if kind == "lp":
        args["norm_type"] = float(rng.choice([1.0, 2.0, 3.0, 1.5, 0.5, math.inf]))
    return args


def _unpool_config(rng, n: int, spatial) -> dict | None:
    kernel = tuple(int(k) for k in rng.integers(1, 4, n))
    stride = tuple(int(s) for s in rng.integers(1, 4, n))
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    default = [(s - 1) * st + k - 2 * p for s, st, k, p in zip(spatial, stride, kernel, padding)]
    args = dict(kernel_size=_maybe_tuple(rng, kernel), stride=_maybe_tuple(rng, stride))
    if any(padding):
        args["padding"] = _maybe_tuple(rng, padding)
    out = default
    if rng.random() < 0.5:
        out = [int(rng.integers(max(0, d - s + 1), d + s)) for d, s in zip(default, stride)]
        args["output_size"] = tuple(out)
    if math.prod(out) < math.prod(spatial) or min(out) < 1:
        return None  # too few output cells for distinct indices
    return args


def _draw_config(rng) -> dict | None:
    kind = str(rng.choice(KINDS, p=[0.3, 0.22, 0.12, 0.12, 0.12, 0.12]))
    n = int(rng.integers(1, 4))
    low, high = {1: (1, 13), 2: (1, 9), 3: (1, 6)}[n]
    spatial = tuple(int(s) for s in rng.integers(low, high, n))
    if kind in ("max", "avg", "lp"):
        args = _window_config(rng, kind, n, spatial)
    elif kind == "unpool":
        args = _unpool_config(rng, n, spatial)
    else:
        sizes = [int(rng.integers(1, s + 4)) for s in spatial]
        if n > 1 and rng.random() < 0.25:
            sizes[int(rng.integers(0, n))] = None
        args = dict(output_size=_maybe_tuple(rng, tuple(sizes)) if n > 1 else sizes[0])
        if kind == "adaptive_max":
            args["return_indices"] = bool(rng.random() < 0.5)
    if args is None:
        return None
    return dict(
        kind=kind,
        n=n,
        batch=int(rng.integers(0, 3)),  # 0: unbatched (C, *spatial)
        channels=int(rng.integers(1, 4)),
        spatial=spatial,
        args=args,
        module=bool(rng.random() < 0.3),
    )


def draw_configs(count: int, seed: int = 2024) -> list[dict]:
    rng = np.random.default_rng(seed)
    configs: list[dict] = []
    while len(configs) < count:
        config = _draw_config(rng)
        if config is not None:
            configs.append(config)
    return configs


CONFIGS = draw_configs(320)


def config_id(config) -> str:
    args = config["args"]
    core = args.get("kernel_size", args.get("output_size"))
    return f"{config['kind']}{config['n']}d-{config['spatial']}-{core}".replace(" ", "")


def make_input(config, rng, dtype=np.float64) -> np.ndarray:
    batch = (config["batch"],) if config["batch"] else ()
    shape = batch + (config["channels"], *config["spatial"])
    x = rng.standard_normal(shape)
    if config["kind"] == "lp" and config["args"]["norm_type"] not in (1.0, 2.0, math.inf):
        x = np.abs(x) + 0.1  # fractional powers of negative numbers are NaN
    return x.astype(dtype)


def make_indices(config, x: np.ndarray, rng) -> np.ndarray:
    """Distinct random flat indices into each output plane of a max-unpooling."""
    n = config["n"]
    args = config["args"]
    if "output_size" in args:
        out = args["output_size"]
    else:
        k = shapes.ntuple(args["kernel_size"], n, "k")
        s = shapes.ntuple(args["stride"], n, "s")
        p = shapes.ntuple(args.get("padding", 0), n, "p")
        out = [(i - 1) * st + kk - 2 * pp for i, st, kk, pp in zip(x.shape[-n:], s, k, p)]
    lead = x.shape[: x.ndim - n]
    count = math.prod(x.shape[x.ndim - n :])
    planes = math.prod(lead)
    order = np.argsort(rng.random((planes, math.prod(out))), axis=1)[:, :count]
    return order.reshape(x.shape).astype(np.int64)


_FUNCTIONS = {
    "max": "max_pool{n}d",
    "avg": "avg_pool{n}d",
    "lp": "lp_pool{n}d",
    "adaptive_avg": "adaptive_avg_pool{n}d",
    "adaptive_max": "adaptive_max_pool{n}d",
    "unpool": "max_unpool{n}d",
}
_MODULES = {
    "max": "MaxPool{n}d",
    "avg": "AvgPool{n}d",
    "lp": "LPPool{n}d",
    "adaptive_avg": "AdaptiveAvgPool{n}d",
    "adaptive_max": "AdaptiveMaxPool{n}d",
    "unpool": "MaxUnpool{n}d",
}


def run(lib_f, lib_nn, config, x, indices=None, use_module=False):
    """Call the op of ``config`` from either library (the signatures are the same)."""
    n, kind, args = config["n"], config["kind"], dict(config["args"])
    if use_module:
        if kind == "unpool":
            output_size = args.pop("output_size", None)
            return getattr(lib_nn, _MODULES[kind].format(n=n))(**args)(x, indices, output_size)
        return getattr(lib_nn, _MODULES[kind].format(n=n))(**args)(x)
    fn = getattr(lib_f, _FUNCTIONS[kind].format(n=n))
    if kind == "unpool":
        return fn(x, indices, **args)
    if kind == "lp":
        p = args.pop("norm_type")
        return fn(x, p, **args)
    return fn(x, **args)


def arr(tensor) -> np.ndarray:
    """The values of a convlab or torch tensor, as an ndarray."""
    return tensor.detach().numpy()


def split(result):
    """(values, indices or None)."""
    return result if isinstance(result, tuple) else (result, None)


# ---------------------------------------------------------------------------------------------
# 1. Against the reference loops (float64)
# ---------------------------------------------------------------------------------------------


def reference_result(config, x, indices=None):
    n, kind, args = config["n"], config["kind"], config["args"]
    spatial = x.shape[x.ndim - n :]
    if kind in ("max", "avg", "lp"):
        kernel = shapes.ntuple(args["kernel_size"], n, "k")
        stride = shapes.ntuple(args.get("stride", kernel), n, "s")
        padding = shapes.ntuple(args.get("padding", 0), n, "p")
        dilation = shapes.ntuple(args.get("dilation", 1), n, "d")
        ceil = args["ceil_mode"]
        if kind == "max":
            return reference.max_pool(x, kernel, stride, padding, dilation, ceil)
        if kind == "avg":
            return reference.avg_pool(
                x,
                kernel,
                stride,
                padding,
                ceil,
                args["count_include_pad"],
                args.get("divisor_override"),
            ), None
        p = args["norm_type"]
        if math.isinf(p):
            return reference.max_pool(np.abs(x), kernel, stride, (0,) * n, (1,) * n, ceil)[0], None
        return reference.lp_pool(x, p, kernel, stride, ceil), None
    if kind == "unpool":
        out = args.get("output_size")
        if out is None:
            k = shapes.ntuple(args["kernel_size"], n, "k")
            s = shapes.ntuple(args["stride"], n, "s")
            p = shapes.ntuple(args.get("padding", 0), n, "p")
            out = [(i - 1) * st + kk - 2 * pp for i, st, kk, pp in zip(spatial, s, k, p)]
        return reference.max_unpool(x, indices, tuple(out)), None
    size = args["output_size"]
    size = (size,) * n if isinstance(size, int) else size
    size = tuple(s if v is None else v for v, s in zip(size, spatial))
    if kind == "adaptive_avg":
        return reference.adaptive_avg_pool(x, size), None
    return reference.adaptive_max_pool(x, size)


REFERENCE_CONFIGS = [c for c in CONFIGS if c["batch"] <= 2][:90]


@pytest.mark.parametrize("config", REFERENCE_CONFIGS, ids=config_id)
def test_matches_reference_loops(config):
    rng = np.random.default_rng(zlib.crc32(config_id(config).encode()))
    x = make_input(config, rng)
    indices = make_indices(config, x, rng) if config["kind"] == "unpool" else None
    values, idx = split(run(F, nn, config, x, indices))
    expected, expected_idx = reference_result(config, x, indices)
    assert values.dtype == np.float64
    np.testing.assert_allclose(arr(values), expected, **EXACT)
    if idx is not None:
        np.testing.assert_array_equal(arr(idx), expected_idx)


def _scatter_reference(grad, indices, x_shape, n):
    """The definition of the max gradient: each output gradient added at its argmax."""
    grad_x = np.zeros(x_shape)
    lead = x_shape[: len(x_shape) - n]
    planes = grad_x.reshape((-1, math.prod(x_shape[len(lead) :])))
    for plane, (g, i) in enumerate(
        zip(grad.reshape(len(planes), -1), indices.reshape(len(planes), -1))
    ):
        np.add.at(planes[plane], i, g)
    return grad_x


@pytest.mark.parametrize(
    "config", [c for c in REFERENCE_CONFIGS if c["kind"] in ("max", "adaptive_max")], ids=config_id
)
def test_max_gradient_goes_to_reference_argmax(config):
    rng = np.random.default_rng(zlib.crc32(config_id(config).encode()))
    x = make_input(config, rng)
    args = dict(config["args"], return_indices=True)
    cx = cl.tensor(x, requires_grad=True)
    out, _ = run(F, nn, dict(config, args=args), cx)
    g = rng.standard_normal(out.shape)
    out.backward(cl.tensor(g))
    _, expected_idx = reference_result(config, x)
    expected = _scatter_reference(g, expected_idx, x.shape, config["n"])
    np.testing.assert_allclose(arr(cx.grad), expected, **EXACT)


def test_avg_pool_divisor_rule_by_hand():
    # L=5, k=3, s=2, p=1, ceil: windows [-1,2), [1,4), [3,6) clipped to the padded end 6, and
    # the real input [0,5): include-pad divisors 3, 3, 3; exclude-pad 2, 3, 2.
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    inc = arr(F.avg_pool1d(x, 3, 2, 1, ceil_mode=True)).ravel()
    exc = arr(F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)).ravel()
    np.testing.assert_allclose(inc, [3 / 3, 9 / 3, 9 / 3])
    np.testing.assert_allclose(exc, [3 / 2, 9 / 3, 9 / 2])
    # L=6, k=3, s=2, p=1, ceil: the last window [5, 8) hangs past the padded end 7: divisor 2.
    x = np.ones((1, 1, 6))
    np.testing.assert_allclose(
        arr(F.avg_pool1d(x, 3, 2, 1, ceil_mode=True)).ravel(), [2 / 3, 1, 1, 1 / 2]
    )
    np.testing.assert_allclose(
        arr(F.avg_pool2d(np.ones((1, 4, 4)), 2, divisor_override=3)), np.full((1, 2, 2), 4 / 3)
    )


def test_ceil_mode_output_sizes_from_reported_cases():
    # pytorch/pytorch#45357 and #57178, tracel-ai/burn#5791 (reference/pytorch-semantics.md).
    assert F.max_pool1d(np.zeros((1, 6)), 1, 2, ceil_mode=True).shape == (1, 3)
    assert F.max_pool1d(np.zeros((1, 32)), 1, 2, ceil_mode=True).shape == (1, 16)
    assert F.max_pool1d(np.zeros((1, 5)), 2, 2, 1, ceil_mode=True).shape == (1, 3)


def test_adaptive_bins_overlap_as_documented():
    start, end = kernels.adaptive_bins(10, 4)
    assert list(zip(start, end)) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    start, end = kernels.adaptive_bins(5, 3)
    assert list(zip(start, end)) == [(0, 2), (1, 4), (3, 5)]


def test_max_pool_ties_nan_and_inf_follow_the_scan_order():
    nan, inf = np.nan, np.inf
    x = np.array([[1.0, nan, 3.0, nan, 0.0, 2.0, 2.0, -inf, -inf, -inf]])
    for n in (1, 2, 3):
        xn = x.reshape((1,) * n + (10,)) if n > 1 else x
        kernel = (1,) * (n - 1) + (5,)
        out, idx = getattr(F, f"max_pool{n}d")(xn, kernel, return_indices=True)
        # first window: the last NaN wins; second: the first of the tied 2s
        np.testing.assert_array_equal(arr(idx).ravel(), [3, 5])
        assert np.isnan(arr(out).ravel()[0])
        ref_out, ref_idx = reference.max_pool(xn, kernel, kernel, (0,) * n, (1,) * n)
        np.testing.assert_array_equal(arr(idx), ref_idx)
        out, idx = getattr(F, f"adaptive_max_pool{n}d")(xn, (1,) * (n - 1) + (2,), True)
        np.testing.assert_array_equal(arr(idx).ravel(), [3, 5])
    # an all -inf window keeps its first real element
    out, idx = F.max_pool1d(np.full((1, 4), -inf), 2, 1, 1, return_indices=True)
    np.testing.assert_array_equal(arr(idx), [[0, 0, 1, 2, 3]])
    np.testing.assert_array_equal(arr(out), np.full((1, 5), -inf))


def test_max_pool_gradient_ties_go_to_first_occurrence():
    x = cl.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, 2, 1, 1).sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [[[[4.0, 2.0], [2.0, 1.0]]]])


def test_lp_pool_formula_negative_sums_and_zero_windows():
    x = cl.tensor(
        np.array([[0.0, 0.0, 1.0, 2.0, -1.0, -2.0, -1.0, 1.0, 0.0, 3.0]]), requires_grad=True
    )
    y = F.lp_pool1d(x, 1, 2)
    np.testing.assert_allclose(arr(y), [[0.0, 3.0, -3.0, 0.0, 3.0]])  # p=1 keeps the sign
    y = F.lp_pool1d(x, 3, 2)
    assert np.isnan(arr(y)[0, 2])  # (-9) ** (1/3) is NaN, as in PyTorch
    y = F.lp_pool1d(x, 2, 2)
    y.sum().backward()
    assert arr(x.grad)[0, 0] == 0 and arr(x.grad)[0, 1] == 0  # zero sum: zero gradient


def test_max_pool_unpadded_and_padded_paths_agree():
    # padding=1 pads with -inf inside the kernel; the same input padded by hand takes the
    # unpadded path (offset 0 always real). Both must give the same maxima.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 12, 10))
    by_hand = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    for args in [((2, 2), (2, 2)), ((3, 2), (2, 1)), ((3, 3), (3, 2))]:
        padded, _ = kernels.max_pool_forward(x, *args, (1, 1), (1, 1), ceil_mode=True)
        plain, _ = kernels.max_pool_forward(by_hand, *args, (0, 0), (1, 1), ceil_mode=True)
        cut = tuple(slice(0, s) for s in padded.shape)
        np.testing.assert_array_equal(padded, plain[cut])


def test_empty_batch_and_zero_adaptive_output():
    x = cl.tensor(np.zeros((0, 2, 6, 6)), requires_grad=True)
    for y in (
        F.max_pool2d(x, 2),
        F.avg_pool2d(x, 2),
        F.adaptive_avg_pool2d(x, 3),
        F.adaptive_max_pool2d(x, 3),
        F.lp_pool2d(x, 2, 2),
    ):
        assert y.shape[0] == 0
        y.sum().backward()
    x = cl.tensor(np.ones((1, 2, 5)), requires_grad=True)
    y = F.adaptive_avg_pool1d(x, 0)
    assert y.shape == (1, 2, 0)
    y.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), np.zeros((1, 2, 5)))


# ---------------------------------------------------------------------------------------------
# 2. gradcheck (float64 finite differences)
# ---------------------------------------------------------------------------------------------


def _distinct(shape, seed=0):
    """Values 0.1 apart in random order: no ties within finite-difference reach."""
    rng = np.random.default_rng(seed)
    return cl.tensor(
        rng.permutation(math.prod(shape)).reshape(shape) * 0.1 - 1.0, requires_grad=True
    )


GRADCHECK_CASES = [
    ("max_pool{n}d", dict(kernel_size=2)),
    ("max_pool{n}d", dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)),
    ("max_pool{n}d", dict(kernel_size=2, stride=1, padding=1, dilation=2)),
    ("avg_pool{n}d", dict(kernel_size=2)),
    ("avg_pool{n}d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool{n}d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("adaptive_avg_pool{n}d", dict(output_size=3)),
    ("adaptive_max_pool{n}d", dict(output_size=3)),
    ("adaptive_max_pool{n}d", dict(output_size=7)),
]


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("name,args", GRADCHECK_CASES, ids=lambda v: str(v))
def test_gradcheck(name, args, n):
    shape = (2, 2) + (5,) * n if n < 3 else (1, 2, 5, 4, 5)
    x = _distinct(shape, seed=n)
    fn = getattr(F, name.format(n=n))
    assert cl.gradcheck(lambda t: fn(t, **args), (x,))


@pytest.mark.parametrize("n", [2, 3])  # avg_pool1d has no divisor_override, as in PyTorch
def test_gradcheck_avg_divisor_override(n):
    x = _distinct((1, 2) + (4,) * n, seed=3)
    fn = getattr(F, f"avg_pool{n}d")
    assert cl.gradcheck(lambda t: fn(t, 2, 1, 1, True, True, -3), (x,))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 1.5, math.inf])
def test_gradcheck_lp_pool(n, p):
    rng = np.random.default_rng(5)
    x = cl.tensor(rng.random((1, 2) + (5,) * n) + 0.5, requires_grad=True)
    if math.isinf(p):
        x = _distinct((1, 2) + (5,) * n, seed=5)
    fn = getattr(F, f"lp_pool{n}d")
    assert cl.gradcheck(lambda t: fn(t, p, 2, 2, ceil_mode=True), (x,))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_gradcheck_max_unpool(n):
    x = _distinct((2, 2) + (3,) * n, seed=9)
    pooled, indices = getattr(F, f"max_pool{n}d")(
        cl.tensor(np.random.default_rng(1).standard_normal((2, 2) + (6,) * n)),
        2,
        return_indices=True,
    )
    fn = getattr(F, f"max_unpool{n}d")
    assert cl.gradcheck(lambda t: fn(t, indices, 2), (x,))


# ---------------------------------------------------------------------------------------------
# 3. Against PyTorch 2.13
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_matches_torch(config, torch):
    rng = np.random.default_rng(zlib.crc32(config_id(config).encode()))
    x64 = make_input(config, rng)
    indices = make_indices(config, x64, rng) if config["kind"] == "unpool" else None
    g64 = None
    for dtype in (np.float64, np.float32):
        x = x64.astype(dtype)
        tx = torch.tensor(x, requires_grad=True)
        cx = cl.tensor(x, requires_grad=True)
        t_idx = None if indices is None else torch.tensor(indices)
        theirs, t_indices = split(
            run(torch.nn.functional, torch.nn, config, tx, t_idx, config["module"])
        )
        ours, c_indices = split(run(F, nn, config, cx, indices, config["module"]))
        assert ours.shape == tuple(theirs.shape)
        assert ours.dtype == dtype
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(arr(ours), arr(theirs), **tol)
        assert (c_indices is None) == (t_indices is None)
        if c_indices is not None:
            assert c_indices.dtype == np.int64 and not c_indices.requires_grad
            np.testing.assert_array_equal(arr(c_indices), arr(t_indices))
        if g64 is None:
            g64 = rng.standard_normal(tuple(theirs.shape))
        g = g64.astype(dtype)
        theirs.backward(torch.tensor(g))
        ours.backward(cl.tensor(g))
        np.testing.assert_allclose(arr(cx.grad), arr(tx.grad), **tol)


def test_enough_torch_configurations():
    counts = {kind: sum(c["kind"] == kind for c in CONFIGS) for kind in KINDS}
    assert len(CONFIGS) >= 200 and min(counts.values()) >= 20, counts
    assert {c["n"] for c in CONFIGS} == {1, 2, 3}


def test_all_padding_window_matches_torch(torch):
    # dilation lets a window see only padding: value -inf and PyTorch's index (past the end).
    x = np.array([[[1.0, 2.0]]])
    for n in (1, 2, 3):
        xn = np.ones((1, 1) + (2,) * n) if n > 1 else x
        ours, oi = getattr(F, f"max_pool{n}d")(xn, 2, 1, 1, 3, return_indices=True)
        theirs, ti = getattr(torch.nn.functional, f"max_pool{n}d")(
            torch.tensor(xn), 2, 1, 1, 3, return_indices=True
        )
        np.testing.assert_array_equal(arr(ours), arr(theirs))
        np.testing.assert_array_equal(arr(oi), arr(ti))


def test_nan_inputs_match_torch(torch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.05] = -np.inf
    t = torch.tensor(x)
    for args in [(2,), (3, 2, 1), (3, 1, 1, 2, True)]:
        ours, oi = F.max_pool2d(x, *args, return_indices=True)
        theirs, ti = torch.nn.functional.max_pool2d(t, *args, return_indices=True)
        np.testing.assert_array_equal(arr(ours), arr(theirs))
        np.testing.assert_array_equal(arr(oi), arr(ti))
    for size in [(4, 3), (1, 1), (9, 11)]:
        ours, oi = F.adaptive_max_pool2d(x, size, return_indices=True)
        theirs, ti = torch.nn.functional.adaptive_max_pool2d(t, size, return_indices=True)
        np.testing.assert_array_equal(arr(ours), arr(theirs))
        np.testing.assert_array_equal(arr(oi), arr(ti))


def test_lp_pool_nan_and_zero_gradients_match_torch(torch):
    x = np.array([[[0.0, 0.0, 1.0, 2.0, -1.0, -2.0, -1.0, 1.0, 0.0, 3.0]]])
    for p in (1, 2, 3, 1.5, 0.5, -1, math.inf, -math.inf):
        cx, tx = cl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours, theirs = F.lp_pool1d(cx, p, 2), torch.nn.functional.lp_pool1d(tx, p, 2)
        np.testing.assert_allclose(arr(ours), arr(theirs), rtol=1e-12)
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_allclose(arr(cx.grad), arr(tx.grad), rtol=1e-12)


def test_modules_match_torch_attributes_and_repr(torch):
    pairs = [
        ("MaxPool2d", (3,), dict(stride=None, padding=1)),
        ("MaxPool1d", ((2,),), dict(dilation=2, ceil_mode=True)),
        ("AvgPool1d", (3,), dict(stride=2)),
        ("AvgPool2d", ((2, 3),), dict(divisor_override=2)),
        ("AvgPool3d", (2,), {}),
        ("LPPool2d", (2, 3), dict(stride=2)),
        ("LPPool3d", (1.5, 2), {}),
        ("MaxUnpool2d", (2,), {}),
        ("MaxUnpool3d", ((2, 1, 2),), dict(stride=1)),
        ("MaxUnpool1d", (3,), dict(padding=1)),
        ("AdaptiveAvgPool2d", ((3, None),), {}),
        ("AdaptiveMaxPool3d", (2,), dict(return_indices=True)),
    ]
    for name, args, kwargs in pairs:
        ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        for attr in ("kernel_size", "stride", "padding", "output_size", "return_indices"):
            if hasattr(theirs, attr):
                assert getattr(ours, attr) == getattr(theirs, attr), (name, attr)


def test_maxpool_unpool_roundtrip_with_output_size():
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 4))
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    y, i = pool(x)
    restored = unpool(y, i, output_size=x.shape)
    assert restored.shape == (1, 1, 5, 4)
    kept = arr(restored) != 0
    np.testing.assert_array_equal(arr(restored)[kept], x[kept])
    assert kept.sum() == 4


# ---------------------------------------------------------------------------------------------
# 4. Bad input: PyTorch's exception types, messages naming the argument
# ---------------------------------------------------------------------------------------------

X1, X2, X3 = (1, 3, 8), (1, 3, 8, 8), (1, 3, 6, 6, 6)


def _pooled(n):
    shape = {1: (1, 3, 4), 2: (1, 3, 4, 4), 3: (1, 3, 3, 3, 3)}[n]
    return np.zeros(shape), np.zeros(shape, np.int64)


ERRORS = []
for _n, _x in ((1, X1), (2, X2), (3, X3)):
    _mp, _ap = f"max_pool{_n}d", f"avg_pool{_n}d"
    ERRORS += [
        (_mp, _x, (0,), {}, RuntimeError, "kernel_size should be greater than zero"),
        (_mp, _x, (2, 0), {}, RuntimeError, "stride should be greater than zero"),
        (_mp, _x, (2, -1), {}, RuntimeError, "stride should be greater than zero.*-1"),
        (_mp, _x, (2, 1, 0, 0), {}, RuntimeError, "dilation should be greater than zero"),
        (_mp, _x, (2, 1, -1), {}, RuntimeError, "pad must be non-negative.*padding="),
        (_mp, _x, (3, 1, 2), {}, RuntimeError, "half of effective kernel size.*pad=2"),
        (_mp, _x, (3, 1, 2, 2), {}, RuntimeError, "half of kernel size.*padding=.*kernel_size="),
        (_mp, _x, (9,), {}, RuntimeError, r"Given input size: \(3x.*Output size is too small"),
        (_mp, _x[2:], (2,), {}, RuntimeError, r"Expected .*D or .*D \(batch mode\)"),
        (_mp, (1, 0) + _x[2:], (2,), {}, RuntimeError, r"Expected .*D .*but got: \[1, 0"),
        (_mp, _x, ((2,) * 4,), {}, RuntimeError, "kernel_size must either be a single int"),
        (_mp, _x, (2.5,), {}, TypeError, "kernel_size"),
        (_mp, _x, ("a",), {}, TypeError, "kernel_size"),
        (_ap, _x, (0, 1), {}, RuntimeError, "kernel_size should be greater than zero"),
        (_ap, _x, (3, 1, 2), {}, RuntimeError, "half of effective kernel size.*pad=2"),
        (_ap, _x, (9,), {}, RuntimeError, "Output size is too small|smaller than kernel size"),
        (_ap, _x, (2, (1,) * 4), {}, RuntimeError, "stride must either be a single int"),
        (f"lp_pool{_n}d", _x, (0, 2), {}, ZeroDivisionError, "norm_type"),
        (f"lp_pool{_n}d", _x, ("a", 2), {}, TypeError, "norm_type"),
        (f"lp_pool{_n}d", _x, (2, 9), {}, RuntimeError, "too small|smaller than kernel size"),
        (f"adaptive_avg_pool{_n}d", _x, (-1,), {}, RuntimeError, "output_size must be greater"),
        (f"adaptive_avg_pool{_n}d", _x, ((2,) * (_n + 1),), {}, RuntimeError, "output_size"),
        (f"adaptive_avg_pool{_n}d", _x, (2.5,), {}, TypeError, "output_size"),
        (f"adaptive_avg_pool{_n}d", _x[2:], (2,), {}, RuntimeError, r"Expected .*D.* got"),
        (f"adaptive_avg_pool{_n}d", _x[:-1] + (0,), (2,), {}, RuntimeError, "non-zero size"),
        (f"adaptive_max_pool{_n}d", _x, (-1,), {}, RuntimeError, "output_size must be greater"),
        (f"adaptive_max_pool{_n}d", (1, 0) + _x[2:], (2,), {}, RuntimeError, "non-zero size"),
        (f"adaptive_max_pool{_n}d", _x, (None,), {}, TypeError, "output_size"),
    ]
    if _n > 1:
        ERRORS += [
            (_ap, _x, (2,), dict(divisor_override=0), RuntimeError, "divisor must be not zero"),
            (_ap, _x, (2,), dict(divisor_override=1.5), TypeError, "divisor_override"),
            (f"lp_pool{_n}d", _x, (2, (2,) * (_n + 1)), {}, ValueError, "kernel_size"),
        ]
ERRORS += [
    ("adaptive_avg_pool1d", X1, ((None,),), {}, TypeError, "output_size"),
    ("max_pool2d", [[1.0]], (2,), {}, TypeError, "input"),
]


def _call(lib, name, shape, args, kwargs):
    fn = getattr(lib, name)
    if isinstance(shape, list):
        return fn(shape, *args, **kwargs)
    x = np.zeros(shape)
    if lib is not F:
        import torch

        x = torch.tensor(x)
    return fn(x, *args, **kwargs)


def _error_id(case):
    return f"{case[0]}-{case[2]}-{case[4].__name__}"


@pytest.mark.parametrize("case", ERRORS, ids=_error_id)
def test_bad_arguments_raise(case):
    name, shape, args, kwargs, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        _call(F, name, shape, args, kwargs)


@pytest.mark.parametrize("case", ERRORS, ids=_error_id)
def test_bad_arguments_raise_what_torch_raises(case, torch):
    name, shape, args, kwargs, exc, _ = case
    with pytest.raises(exc):
        _call(torch.nn.functional, name, shape, args, kwargs)


UNPOOL_ERRORS = [
    (dict(output_size=(1, 2, 3, 4, 5, 6)), ValueError, "containing .* elements, but it has"),
    (dict(output_size=(30, 30, 30)), ValueError, r"invalid output_size .*must be between"),
    (dict(padding=5), ValueError, "non-negative spatial dimensions"),
    (dict(indices_dtype=np.int32), RuntimeError, "indices should be type int64"),
    (dict(indices_shape=True), RuntimeError, "Expected shape of indices"),
    (dict(index=1000), RuntimeError, "Found an invalid max index: 1000"),
    (dict(index=-1), RuntimeError, "Found an invalid max index: -1"),
    (dict(rank=True), RuntimeError, "Input to max_unpooling.d should be a"),
]


def _unpool_case(n: int, change: dict):
    x, idx = _pooled(n)
    kwargs = dict(kernel_size=2)
    if "output_size" in change:
        size = change["output_size"]
        kwargs["output_size"] = size[:n] if len(size) == 3 else size
    if "padding" in change:
        # (1 - 1) * 2 + 2 - 2 * 5 < 0: the default output size is negative.
        x, idx = np.zeros((1, 1) + (1,) * n), np.zeros((1, 1) + (1,) * n, np.int64)
        kwargs["padding"] = change["padding"]
    if "indices_dtype" in change:
        idx = idx.astype(change["indices_dtype"])
    if "indices_shape" in change:
        idx = idx[..., :1]
    if "index" in change:
        idx = idx.copy()
        idx.flat[5] = change["index"]
    if "rank" in change:
        x, idx = x[0, 0], idx[0, 0]
    return x, idx, kwargs


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("change,exc,pattern", UNPOOL_ERRORS, ids=lambda v: str(v)[:30])
def test_bad_unpool_arguments(n, change, exc, pattern):
    x, idx, kwargs = _unpool_case(n, change)
    with pytest.raises(exc, match=pattern):
        getattr(F, f"max_unpool{n}d")(x, idx, **kwargs)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("change,exc,pattern", UNPOOL_ERRORS, ids=lambda v: str(v)[:30])
def test_bad_unpool_arguments_raise_what_torch_raises(n, change, exc, pattern, torch):
    x, idx, kwargs = _unpool_case(n, change)
    with pytest.raises(exc):
        getattr(torch.nn.functional, f"max_unpool{n}d")(
            torch.tensor(x), torch.tensor(idx), **kwargs
        )


def test_integer_input_is_refused_with_a_clear_message():
    # Deviation: PyTorch also pools integer tensors; convlab pools float32/float64 only.
    with pytest.raises(RuntimeError, match="input must be float32 or float64, but got int64"):
        F.max_pool2d(np.zeros((1, 4, 4), np.int64), 2)
