"""Resampling family: interpolate / Upsample, pixel (un)shuffle, unfold / fold.

Every op is checked three ways: against the point-by-point loops of
``convlab.kernels.reference_resample`` (float64, to 1e-12), by ``gradcheck`` (float64), and
against PyTorch 2.13 on random configurations drawn with a fixed seed (forward and input
gradient, float64 and float32). Each argument rule PyTorch enforces is checked for the exception
type and the message; where torch is installed, the same calls are made on torch to confirm that
the expected messages are its own.

Where PyTorch 2.13 contradicts itself (its backward is not the adjoint of its forward, or its
forward has a bug), convlab keeps the forward and returns the true gradient; those cases are left
out of the random parity set and tested on their own at the end of this file.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn
import convlab.nn.functional as F
from convlab.kernels import reference_resample as R
from convlab.kernels import resample as K

TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=1e-5)}
REF_TOL = dict(rtol=1e-12, atol=1e-12)
KERNEL_MODE = {
    "nearest": "nearest",
    "nearest-exact": "nearest-exact",
    "area": "area",
    "linear": "linear",
    "bilinear": "linear",
    "trilinear": "linear",
    "bicubic": "cubic",
    "lanczos": "lanczos",
}


def t64(rng, *shape):
    return cl.tensor(rng.standard_normal(shape), requires_grad=True)


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------


def _out_size(spatial, size, scale):
    if size is not None:
        return [size] * len(spatial) if isinstance(size, int) else list(size)
    scales = [scale] * len(spatial) if isinstance(scale, (int, float)) else list(scale)
    return [int(s * f) for s, f in zip(spatial, scales)]


def _scales(config):
    """The per-dimension scale factors that reach the kernel (None: mapping uses in / out)."""
    scale = config["scale_factor"]
    if scale is None or config["recompute_scale_factor"] or config["mode"] == "area":
        return None
    n = len(config["spatial"])
    return [float(scale)] * n if isinstance(scale, (int, float)) else [float(s) for s in scale]


def draw_interp_configs(count: int, seed: int = 20240613) -> list[dict]:
    rng = np.random.default_rng(seed)
    modes = {
        1: ["nearest", "nearest-exact", "area", "linear"],
        2: ["nearest", "nearest-exact", "area", "bilinear", "bicubic", "bilinear", "bicubic"],
        3: ["nearest", "nearest-exact", "area", "trilinear"],
    }
    configs = []
    while len(configs) < count:
        dim = int(rng.integers(1, 4))
        mode = str(rng.choice(modes[dim]))
        spatial = [int(v) for v in rng.integers(1, 9 if dim < 3 else 6, dim)]
        antialias = mode in ("bilinear", "bicubic") and rng.random() < 0.5
        if mode == "bicubic" and rng.random() < 0.1:
            mode, antialias = "lanczos", True
        size = scale = recompute = None
        if rng.random() < 0.5:
            sizes = [int(v) for v in rng.integers(1, 13 if dim < 3 else 7, dim)]
            size = sizes[0] if rng.random() < 0.2 else tuple(sizes)
        else:
            factors = [
                float(np.round(rng.uniform(0.3, 3.2), int(rng.integers(0, 3)))) for _ in range(dim)
            ]
            scale = factors[0] if rng.random() < 0.3 else tuple(factors)
            if isinstance(scale, float) and scale == int(scale) and rng.random() < 0.5:
                scale = int(scale)
            recompute = [None, None, True, False][int(rng.integers(0, 4))]
        if mode in ("nearest", "nearest-exact", "area"):
            align = None
        elif mode == "lanczos" or antialias:
            align = [None, False][int(rng.integers(0, 2))]
        else:
            align = [None, False, True][int(rng.integers(0, 3))]
        out = _out_size(spatial, size, scale)
        if min(out) < 1:
            continue
        if antialias and out[-1] == 1:
            continue  # PyTorch bug with an output width of 1: see test_torch_aa_width_one_bug
        configs.append(
            dict(
                mode=mode,
                spatial=spatial,
                size=size,
                scale_factor=scale,
                align_corners=align,
                recompute_scale_factor=recompute,
                antialias=antialias,
                batch=int(rng.integers(1, 3)),
                channels=int(rng.integers(1, 4)),
                out=out,
                seed=int(rng.integers(0, 2**31)),
            )
        )
    return configs


def interp_kwargs(config):
    kwargs = dict(mode=config["mode"], align_corners=config["align_corners"])
    for key in ("size", "scale_factor", "recompute_scale_factor"):
        if config[key] is not None:
            kwargs[key] = config[key]
    if config["antialias"]:
        kwargs["antialias"] = True
    return kwargs


def config_id(config):
    extra = "-aa" if config["antialias"] else ""
    how = f"size{config['size']}" if config["size"] is not None else f"x{config['scale_factor']}"
    return f"{config['mode']}{extra}-{config['spatial']}-{how}".replace(" ", "")


def _torch_nearest_backward_index(mode, n_in, n_out, scale):
    """PyTorch's backward index rule (``nearest_idx`` / ``nearest_exact_idx``, UpSample.h).

    Its forward uses another rule (float64 coordinates for float64 data; the out == in and
    out == 2 in shortcuts only in 2-D), so the two can disagree.
    """
    step = np.float32(1 / scale) if scale else np.float32(n_in) / np.float32(n_out)
    i = np.arange(n_out)
    if mode == "nearest":
        if n_out == n_in:
            return i
        if n_out == 2 * n_in:
            return i >> 1
        src = i.astype(np.float32) * step
    else:
        src = ((i + 0.5) * np.float64(step)).astype(np.float32)
    return np.minimum(np.floor(src).astype(np.int64), n_in - 1)


def _axis(config, d):
    scales = _scales(config)
    return config["spatial"][d], config["out"][d], None if scales is None else scales[d]


def torch_is_consistent(config, dtype) -> bool:
    """Whether PyTorch's gradient is the adjoint of its own forward pass for ``config``."""
    dim = len(config["spatial"])
    if config["antialias"] and _scales(config) is not None:
        # Its separable forward skips a dimension whose size is unchanged; its backward does not.
        if any(i == o for i, o in zip(config["spatial"], config["out"])):
            return False
    if config["mode"] not in ("nearest", "nearest-exact"):
        return True
    for d in range(dim):
        n_in, n_out, scale = _axis(config, d)
        forward = K.axis_map(
            config["mode"], n_in, n_out, scale=scale, dtype=dtype, legacy_nearest=dim == 2
        ).cols
        backward = _torch_nearest_backward_index(config["mode"], n_in, n_out, scale)
        if not np.array_equal(forward, backward):
            return False
    return True


def torch_forward_is_defined(config, dtype) -> bool:
    """PyTorch's 2-D nearest forward on float64 rounds coordinates either in float32 or in float64
    depending on the output shape; where the two differ, its pixel choice is not a function of
    the arguments alone and no fixed rule can match it."""
    if dtype != np.float64 or len(config["spatial"]) != 2:
        return True
    if config["mode"] not in ("nearest", "nearest-exact"):
        return True
    for d in range(2):
        n_in, n_out, scale = _axis(config, d)
        ours = K.axis_map(config["mode"], n_in, n_out, scale=scale, dtype=np.float64).cols
        single = K.axis_map(config["mode"], n_in, n_out, scale=scale, dtype=np.float32).cols
        if not np.array_equal(ours, single):
            return False
    return True


INTERP_CONFIGS = draw_interp_configs(320)


def test_parity_set_is_large_and_varied():
    full = [c for c in INTERP_CONFIGS if torch_is_consistent(c, np.float64)]
    assert len(full) >= 250
    assert {c["mode"] for c in full} == set(KERNEL_MODE)
    assert sum(c["antialias"] for c in full) >= 15
    assert sum(c["align_corners"] is True for c in full) >= 15
    assert sum(c["recompute_scale_factor"] is True for c in full) >= 15


# ---------------------------------------------------------------------------------------------
# 1. Against the reference loops (float64)
# ---------------------------------------------------------------------------------------------


def _reference_args(config):
    dim = len(config["spatial"])
    return dict(
        mode=KERNEL_MODE[config["mode"]],
        align_corners=bool(config["align_corners"]),
        scales=_scales(config),
        antialias=config["antialias"] or config["mode"] == "lanczos",
        legacy_nearest=dim == 2,
    )


REF_CONFIGS = INTERP_CONFIGS[::4]


@pytest.mark.parametrize("config", REF_CONFIGS, ids=config_id)
def test_interpolate_matches_reference(config):
    rng = np.random.default_rng(config["seed"])
    x = rng.standard_normal((config["batch"], config["channels"], *config["spatial"]))
    cx = cl.tensor(x, requires_grad=True)
    y = F.interpolate(cx, **interp_kwargs(config))
    args = _reference_args(config)
    np.testing.assert_allclose(
        y.detach().numpy(), R.interpolate(x, config["out"], **args), **REF_TOL
    )
    g = rng.standard_normal(y.shape)
    y.backward(cl.tensor(g))
    expected = R.interpolate_backward(g, x.shape, **args)
    np.testing.assert_allclose(cx.grad.numpy(), expected, **REF_TOL)


def test_reference_taps_from_the_formulas():
    # Independent spot checks of the reference itself, worked by hand.
    assert R.source_taps("nearest", 5, 4, 10, scale=None) == [(2, 1.0)]  # floor(5 * 0.4)
    assert R.source_taps("nearest-exact", 5, 4, 10) == [(2, 1.0)]  # floor(5.5 * 0.4)
    (i0, w0), (i1, w1) = R.source_taps("linear", 1, 2, 4)  # src = 0.5 * 1.5 - 0.5 = 0.25
    assert (i0, i1) == (0, 1) and math.isclose(w0, 0.75) and math.isclose(w1, 0.25)
    (i0, w0), (i1, w1) = R.source_taps("linear", 1, 3, 5, align_corners=True)  # src = 0.5
    assert (i0, i1, w0, w1) == (0, 1, 0.5, 0.5)
    assert R.source_taps("area", 1, 10, 4) == [(2, 1 / 3), (3, 1 / 3), (4, 1 / 3)]
    taps = R.source_taps("cubic", 0, 4, 8)  # src = -0.25: i0 = -1, t = 0.75, taps clamped
    assert [j for j, _ in taps] == [0, 0, 0, 1]
    assert math.isclose(sum(w for _, w in taps), 1.0)


def test_adaptive_bins_match_the_documented_examples():
    start, end = K.adaptive_bins(10, 4)
    assert list(zip(start, end)) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    start, end = K.adaptive_bins(5, 3)
    assert list(zip(start, end)) == [(0, 2), (1, 4), (3, 5)]


def test_bilinear_of_a_ramp_is_exact():
    # Linear interpolation with align_corners=True reproduces a linear function exactly.
    x = np.arange(4.0)[None, None, :] * 3 + 1
    y = F.interpolate(x, size=7, mode="linear", align_corners=True).numpy()
    np.testing.assert_allclose(y[0, 0], 1 + 3 * np.linspace(0, 3, 7), rtol=0, atol=1e-12)


PIXEL_CASES = [((2, 8, 3, 2), 2), ((3, 9, 2, 2), 3), ((2, 1, 4, 2, 2), 1), ((4, 2, 3), 2)]


@pytest.mark.parametrize("shape,r", PIXEL_CASES)
def test_pixel_shuffle_matches_reference(shape, r):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    y = F.pixel_shuffle(x, r).numpy()
    np.testing.assert_array_equal(y, R.pixel_shuffle(x, r))
    np.testing.assert_array_equal(F.pixel_unshuffle(y, r).numpy(), R.pixel_unshuffle(y, r))
    np.testing.assert_array_equal(F.pixel_unshuffle(y, r).numpy(), x)
    assert not np.shares_memory(F.pixel_shuffle(x, 1).numpy(), x)


FOLD_CASES = [
    # (input shape, kernel, dilation, padding, stride)
    ((2, 3, 5, 6), (2, 3), (1, 1), (0, 1), (1, 2)),
    ((1, 2, 6, 5), (3, 2), (2, 1), (1, 0), (2, 1)),
    ((2, 2, 7), (3,), (2,), (1,), (2,)),  # 1-D
    ((1, 2, 4, 5, 3), (2, 2, 2), (1, 2, 1), (1, 0, 1), (1, 2, 1)),  # 3-D
    ((3, 4, 4), (2, 2), (1, 1), (1, 1), (1, 1)),  # unbatched 2-D
    ((2, 1, 3, 3, 2, 2), (2, 1, 2, 1), (1, 1, 1, 1), (0, 1, 0, 0), (1, 1, 1, 2)),  # 4-D
]


@pytest.mark.parametrize("shape,kernel,dilation,padding,stride", FOLD_CASES)
def test_unfold_fold_match_reference(shape, kernel, dilation, padding, stride):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    unbatched = len(shape) == len(kernel) + 1
    xb = x[None] if unbatched else x
    cols = F.unfold(x, kernel, dilation, padding, stride).numpy()
    expected = R.unfold(xb, kernel, dilation, padding, stride)
    np.testing.assert_allclose(cols, expected[0] if unbatched else expected, **REF_TOL)
    c = rng.standard_normal(cols.shape)
    folded = F.fold(c, xb.shape[2:], kernel, dilation, padding, stride).numpy()
    expected = R.fold(c[None] if unbatched else c, xb.shape[2:], kernel, dilation, padding, stride)
    np.testing.assert_allclose(folded, expected[0] if unbatched else expected, **REF_TOL)


def test_fold_of_unfold_counts_the_blocks():
    x = np.ones((1, 1, 4, 4))
    y = F.fold(F.unfold(x, 2), (4, 4), 2).numpy()[0, 0]
    np.testing.assert_array_equal(y, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_empty_batch():
    assert F.unfold(np.zeros((0, 3, 5, 6)), 2).shape == (0, 12, 20)
    assert F.fold(np.zeros((0, 12, 20)), (5, 6), 2).shape == (0, 3, 5, 6)
    assert F.interpolate(np.zeros((0, 3, 4, 4)), size=3, mode="bilinear").shape == (0, 3, 3, 3)
    assert F.interpolate(np.zeros((2, 0, 3, 3)), size=3, mode="area").shape == (2, 0, 3, 3)
    assert F.interpolate(np.zeros((2, 3, 4)), size=0, mode="area").shape == (2, 3, 0)


def test_uint8_nearest_is_a_gather():
    x = np.arange(12, dtype=np.uint8).reshape(1, 1, 3, 4)
    y = F.interpolate(x, scale_factor=2)
    assert y.dtype == np.uint8 and not y.requires_grad
    np.testing.assert_array_equal(y.numpy()[0, 0, ::2, ::2], x[0, 0])


# ---------------------------------------------------------------------------------------------
# 2. Finite differences (float64)
# ---------------------------------------------------------------------------------------------

GRAD_CASES = [
    ((2, 2, 5), dict(scale_factor=1.7, mode="nearest")),
    ((1, 2, 3, 4), dict(size=(5, 3), mode="nearest-exact")),
    ((1, 2, 4), dict(size=7, mode="linear", align_corners=True)),
    ((2, 1, 6), dict(scale_factor=0.6, mode="linear")),
    ((1, 2, 3, 5), dict(scale_factor=(2.5, 0.5), mode="bilinear")),
    ((1, 1, 4, 5), dict(size=(7, 3), mode="bicubic")),
    ((1, 1, 4, 4), dict(size=(6, 6), mode="bicubic", align_corners=True)),
    ((1, 1, 3, 2, 4), dict(size=(4, 3, 3), mode="trilinear")),
    ((1, 2, 5, 7), dict(size=(3, 4), mode="area")),
    ((1, 1, 3, 4, 5), dict(scale_factor=0.7, mode="area")),
    ((1, 1, 8, 7), dict(size=(3, 4), mode="bilinear", antialias=True)),
    ((1, 1, 7, 8), dict(size=(3, 10), mode="bicubic", antialias=True)),
    ((1, 1, 9, 6), dict(size=(4, 5), mode="lanczos", antialias=True)),
]


@pytest.mark.parametrize("shape,kwargs", GRAD_CASES)
def test_gradcheck_interpolate(shape, kwargs):
    x = t64(np.random.default_rng(3), *shape)
    assert cl.gradcheck(lambda t: F.interpolate(t, **kwargs), (x,))


def test_gradcheck_pixel_shuffle_unfold_fold():
    rng = np.random.default_rng(4)
    assert cl.gradcheck(lambda t: F.pixel_shuffle(t, 2), (t64(rng, 2, 8, 2, 3),))
    assert cl.gradcheck(lambda t: F.pixel_unshuffle(t, 2), (t64(rng, 3, 4, 2),))
    assert cl.gradcheck(lambda t: F.unfold(t, (2, 3), 1, 1, (2, 1)), (t64(rng, 1, 2, 4, 5),))
    assert cl.gradcheck(lambda t: F.unfold(t, (2,), 2, 1, 1), (t64(rng, 2, 6),))
    assert cl.gradcheck(lambda t: F.unfold(t, (2, 2, 2), stride=2), (t64(rng, 1, 1, 4, 3, 4),))
    cols = t64(rng, 2, 8, 6)
    assert cl.gradcheck(lambda t: F.fold(t, (3, 4), 2, padding=(1, 0), stride=(2, 1)), (cols,))
    assert cl.gradcheck(lambda t: F.fold(t, (4, 3, 3), (2, 1, 2), stride=2), (t64(rng, 4, 4),))


# ---------------------------------------------------------------------------------------------
# 3. Against PyTorch 2.13
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", INTERP_CONFIGS, ids=config_id)
def test_interpolate_matches_torch(config, torch):
    rng = np.random.default_rng(config["seed"])
    shape = (config["batch"], config["channels"], *config["spatial"])
    x64 = rng.standard_normal(shape)
    for dtype in (np.float64, np.float32):
        x = x64.astype(dtype)
        tx = torch.tensor(x, requires_grad=True)
        cx = cl.tensor(x, requires_grad=True)
        ty = torch.nn.functional.interpolate(tx, **interp_kwargs(config))
        cy = F.interpolate(cx, **interp_kwargs(config))
        assert cy.shape == tuple(ty.shape) and cy.dtype == dtype
        if torch_forward_is_defined(config, dtype):
            np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), **TOL[dtype])
        g = rng.standard_normal(cy.shape).astype(dtype)
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        if torch_is_consistent(config, dtype):
            np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), **TOL[dtype])


def _draw_fold_configs(count: int, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        k, d, s = (tuple(int(v) for v in rng.integers(1, hi, 2)) for hi in (4, 3, 4))
        p = tuple(int(v) for v in rng.integers(0, 3, 2))
        spatial = tuple(int(v) for v in rng.integers(1, 9, 2))
        blocks = [
            (a + 2 * q - e * (m - 1) - 1) // t + 1 for a, m, e, q, t in zip(spatial, k, d, p, s)
        ]
        if min(blocks) < 1:
            continue
        as_int = rng.random() < 0.3 and len(set(k)) == 1
        configs.append(
            dict(
                kernel=k[0] if as_int else k,
                dilation=d,
                padding=p,
                stride=s,
                spatial=spatial,
                batch=int(rng.integers(0, 3)),  # 0: unbatched
                channels=int(rng.integers(1, 4)),
            )
        )
    return configs


FOLD_CONFIGS = _draw_fold_configs(60)


@pytest.mark.parametrize("config", FOLD_CONFIGS, ids=lambda c: f"k{c['kernel']}-s{c['stride']}")
def test_unfold_fold_match_torch(config, torch):
    rng = np.random.default_rng(hash(str(config)) % 2**32)
    lead = (config["batch"],) if config["batch"] else ()
    args = (config["kernel"], config["dilation"], config["padding"], config["stride"])
    for dtype in (np.float64, np.float32):
        x = rng.standard_normal(lead + (config["channels"], *config["spatial"])).astype(dtype)
        tx, cx = torch.tensor(x, requires_grad=True), cl.tensor(x, requires_grad=True)
        ty, cy = torch.nn.functional.unfold(tx, *args), F.unfold(cx, *args)
        np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), **TOL[dtype])
        g = rng.standard_normal(cy.shape).astype(dtype)
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), **TOL[dtype])

        c = rng.standard_normal(cy.shape).astype(dtype)
        tc, cc = torch.tensor(c, requires_grad=True), cl.tensor(c, requires_grad=True)
        tf = torch.nn.functional.fold(tc, config["spatial"], *args)
        cf = F.fold(cc, config["spatial"], *args)
        np.testing.assert_allclose(cf.detach().numpy(), tf.detach().numpy(), **TOL[dtype])
        g = rng.standard_normal(cf.shape).astype(dtype)
        tf.backward(torch.tensor(g))
        cf.backward(cl.tensor(g))
        np.testing.assert_allclose(cc.grad.numpy(), tc.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("shape,r", [((2, 8, 3, 2), 2), ((3, 2, 18, 2, 1), 3), ((4, 2, 2), 1)])
def test_pixel_shuffle_matches_torch(shape, r, torch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    tx, cx = torch.tensor(x, requires_grad=True), cl.tensor(x, requires_grad=True)
    ty, cy = torch.nn.functional.pixel_shuffle(tx, r), F.pixel_shuffle(cx, r)
    np.testing.assert_array_equal(cy.detach().numpy(), ty.detach().numpy())
    g = rng.standard_normal(cy.shape)
    ty.backward(torch.tensor(g))
    cy.backward(cl.tensor(g))
    np.testing.assert_array_equal(cx.grad.numpy(), tx.grad.numpy())
    back = F.pixel_unshuffle(cy, r).detach().numpy()
    np.testing.assert_array_equal(back, torch.nn.functional.pixel_unshuffle(ty, r).detach().numpy())


# Cases the small random configurations rarely reach: PyTorch's rounding of source coordinates
# (float32 for float32 data with a fused multiply-add; float64 rounded to float32 before the
# floor for float64 data) and the 2-D nearest shortcuts for out == in and out == 2 in.
PRECISION_CASES = [
    ((1, 1, 723), dict(size=1912, mode="linear"), np.float32),
    ((1, 1, 2341), dict(scale_factor=2.145, mode="linear"), np.float32),
    ((1, 1, 900), dict(size=2000, mode="linear", align_corners=True), np.float32),
    ((1, 1, 3, 600), dict(size=(5, 1500), mode="bicubic"), np.float32),
    ((1, 1, 31), dict(scale_factor=2.7, mode="nearest"), np.float64),
    ((1, 1, 2556), dict(scale_factor=2.7, mode="nearest"), np.float64),
    ((1, 1, 1576), dict(size=464, mode="nearest"), np.float64),
    ((1, 1, 430), dict(scale_factor=0.668, mode="nearest-exact"), np.float64),
    ((1, 1, 4, 4), dict(scale_factor=2.1, mode="nearest"), np.float64),
    ((1, 1, 3, 5), dict(scale_factor=(1.27, 1.1), mode="nearest"), np.float32),
]


@pytest.mark.parametrize("shape,kwargs,dtype", PRECISION_CASES)
def test_coordinate_rounding_matches_torch(shape, kwargs, dtype, torch):
    x = np.random.default_rng(11).standard_normal(shape).astype(dtype)
    ours = F.interpolate(x, **kwargs).numpy()
    theirs = torch.nn.functional.interpolate(torch.tensor(x), **kwargs).numpy()
    np.testing.assert_allclose(ours, theirs, **TOL[dtype])


MODULE_CASES = [
    ("Upsample", dict(scale_factor=2, mode="nearest"), (1, 2, 3, 4)),
    ("Upsample", dict(size=(5, 3, 4), mode="trilinear", align_corners=True), (1, 1, 2, 3, 2)),
    ("Upsample", dict(scale_factor=(1.5, 0.5), mode="bicubic"), (2, 1, 4, 6)),
    ("Upsample", dict(scale_factor=1.7, mode="linear", recompute_scale_factor=True), (1, 2, 5)),
    ("UpsamplingNearest2d", dict(scale_factor=3), (1, 1, 2, 3)),
    ("UpsamplingBilinear2d", dict(size=(5, 7)), (1, 2, 3, 4)),
    ("PixelShuffle", dict(upscale_factor=2), (1, 8, 2, 3)),
    ("PixelUnshuffle", dict(downscale_factor=2), (1, 2, 4, 6)),
    ("Unfold", dict(kernel_size=(2, 3), padding=1, stride=2), (2, 3, 5, 5)),
    ("Fold", dict(output_size=(4, 5), kernel_size=2, dilation=(1, 2)), (2, 8, 9)),
]


@pytest.mark.parametrize("name,kwargs,shape", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_modules_match_torch(name, kwargs, shape, torch):
    rng = np.random.default_rng(6)
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    x = rng.standard_normal(shape)
    tx, cx = torch.tensor(x, requires_grad=True), cl.tensor(x, requires_grad=True)
    ty, cy = theirs(tx), ours(cx)
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), **TOL[np.float64])
    g = rng.standard_normal(cy.shape)
    ty.backward(torch.tensor(g))
    cy.backward(cl.tensor(g))
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), **TOL[np.float64])


def test_upsample_module_attributes():
    up = nn.Upsample(scale_factor=(2, 3))
    assert (
        up.scale_factor == (2.0, 3.0)
        and repr(up) == "Upsample(scale_factor=(2.0, 3.0), mode='nearest')"
    )
    assert nn.Upsample(size=4, scale_factor=0).scale_factor is None
    assert nn.UpsamplingBilinear2d(scale_factor=2).align_corners is True
    assert list(nn.Unfold(2).parameters()) == []


# ---------------------------------------------------------------------------------------------
# 4. Bad input
# ---------------------------------------------------------------------------------------------


def _x(*shape, dtype=np.float64):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


ALIGN_MSG = (
    "align_corners option can only be set with the interpolating modes: "
    "linear | bilinear | bicubic | trilinear"
)
INPUT_ERROR = (
    "Input Error: Only 3D, 4D and 5D input Tensors supported (got {}D) for the modes: nearest | "
    "linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {})"
)

# (name, function name, args, kwargs, exception, message: exact text or a regex prefixed "re:")
ERROR_CASES = [
    (
        "no size",
        "interpolate",
        (_x(2, 3, 5, 6),),
        {},
        ValueError,
        "either size or scale_factor should be defined",
    ),
    (
        "size and scale",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=3, scale_factor=2),
        ValueError,
        "only one of size or scale_factor should be defined",
    ),
    (
        "align nearest",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=3, align_corners=True),
        ValueError,
        ALIGN_MSG,
    ),
    (
        "align area",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=3, mode="area", align_corners=False),
        ValueError,
        ALIGN_MSG,
    ),
    (
        "linear on 4D",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=3, mode="linear"),
        NotImplementedError,
        "Got 4D input, but linear mode needs 3D input",
    ),
    (
        "bilinear on 3D",
        "interpolate",
        (_x(2, 3, 4),),
        dict(size=3, mode="bilinear"),
        NotImplementedError,
        "Got 3D input, but bilinear mode needs 4D input",
    ),
    (
        "trilinear on 4D",
        "interpolate",
        (_x(2, 3, 4, 4),),
        dict(size=3, mode="trilinear"),
        NotImplementedError,
        "Got 4D input, but trilinear mode needs 5D input",
    ),
    (
        "bilinear on 5D",
        "interpolate",
        (_x(1, 1, 2, 2, 2),),
        dict(size=3, mode="bilinear"),
        NotImplementedError,
        "Got 5D input, but bilinear mode needs 4D input",
    ),
    (
        "bicubic on 3D",
        "interpolate",
        (_x(2, 3, 4),),
        dict(size=3, mode="bicubic"),
        NotImplementedError,
        INPUT_ERROR.format(3, "bicubic"),
    ),
    (
        "2D input",
        "interpolate",
        (_x(3, 4),),
        dict(size=3),
        NotImplementedError,
        INPUT_ERROR.format(2, "nearest"),
    ),
    (
        "unknown mode",
        "interpolate",
        (_x(2, 3, 4, 4),),
        dict(size=3, mode="foo"),
        NotImplementedError,
        INPUT_ERROR.format(4, "foo"),
    ),
    (
        "size length",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=(3, 4, 5)),
        ValueError,
        "Input and output must have the same number of spatial dimensions, but got input with "
        "spatial dimensions of [5, 6] and output size of (3, 4, 5). Please provide input tensor in "
        "(N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format.",
    ),
    (
        "scale length",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(scale_factor=(3, 4, 5)),
        ValueError,
        "re:Input and scale_factor must have the same number of spatial dimensions, but got input "
        r"with spatial dimensions of \[5, 6\] and scale_factor of shape \(3, 4, 5\)",
    ),
    (
        "size zero",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=(3, 0)),
        RuntimeError,
        "Input and output sizes should be greater than 0, but got input (H: 5, W: 6) output "
        "(H: 3, W: 0)",
    ),
    (
        "size zero 1d",
        "interpolate",
        (_x(2, 3, 5),),
        dict(size=0),
        RuntimeError,
        "Input and output sizes should be greater than 0, but got input (W: 5) and output (W: 0)",
    ),
    (
        "size negative 3d",
        "interpolate",
        (_x(2, 3, 5, 5, 5),),
        dict(size=(1, -1, 2), mode="trilinear"),
        RuntimeError,
        "Input and output sizes should be greater than 0, but got "
        "input (D: 5, H: 5, W: 5) output (D: 1, H: -1, W: 2)",
    ),
    (
        "scale too small",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(scale_factor=0.1, mode="bicubic"),
        RuntimeError,
        "Input and output sizes should be greater than 0, but got input (H: 5, W: 6) "
        "output (H: 0, W: 0)",
    ),
    (
        "empty input",
        "interpolate",
        (_x(0, 3, 0, 3),),
        dict(size=3),
        RuntimeError,
        "Input and output sizes should be greater than 0, but got input (H: 0, W: 3) output "
        "(H: 3, W: 3)",
    ),
    (
        "no channels",
        "interpolate",
        (_x(2, 0, 4, 4),),
        dict(size=3, mode="bilinear"),
        RuntimeError,
        "Non-empty 4D data tensor expected but got a tensor with sizes [2, 0, 4, 4]",
    ),
    (
        "area negative",
        "interpolate",
        (_x(2, 3, 4, 4),),
        dict(size=(-1, 2), mode="area"),
        RuntimeError,
        "adaptive_avg_pool2d: elements of output_size must be greater than or equal "
        "to 0 but received {-1, 2}",
    ),
    (
        "area negative 1d",
        "interpolate",
        (_x(2, 3, 4),),
        dict(size=-1, mode="area"),
        RuntimeError,
        "adaptive_avg_pool2d: elements of output_size must be greater than or equal "
        "to 0 but received {1, -1}",
    ),
    (
        "area empty",
        "interpolate",
        (_x(2, 3, 4, 0, 4),),
        dict(size=2, mode="area"),
        RuntimeError,
        "adaptive_avg_pool3d(): Expected input to have non-zero size for non-batch dimensions, but "
        "input has sizes [2, 3, 4, 0, 4] with dimension 3 being empty",
    ),
    (
        "float size",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=(3.0, 2)),
        TypeError,
        "expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, int], "
        "but got size with types [<class 'float'>, <class 'int'>]",
    ),
    (
        "recompute with size",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=3, recompute_scale_factor=True),
        ValueError,
        "recompute_scale_factor is not meaningful with an explicit size.",
    ),
    (
        "antialias nearest",
        "interpolate",
        (_x(2, 3, 5, 6),),
        dict(size=3, antialias=True),
        ValueError,
        "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
        "requires a 4-D tensor as input",
    ),
    (
        "lanczos no aa",
        "interpolate",
        (_x(2, 3, 4, 4),),
        dict(size=3, mode="lanczos"),
        ValueError,
        "Lanczos mode requires antialias=True",
    ),
    (
        "lanczos align",
        "interpolate",
        (_x(2, 3, 4, 4),),
        dict(size=3, mode="lanczos", antialias=True, align_corners=True),
        ValueError,
        "Lanczos mode does not support align_corners=True",
    ),
    (
        "nan scale",
        "interpolate",
        (_x(2, 3, 4, 4),),
        dict(scale_factor=float("nan")),
        RuntimeError,
        "value cannot be converted to type int64_t without overflow",
    ),
    (
        "nan scale area",
        "interpolate",
        (_x(2, 3, 4, 4),),
        dict(scale_factor=float("nan"), mode="area"),
        ValueError,
        "cannot convert float NaN to integer",
    ),
    (
        "int64 input",
        "interpolate",
        (np.ones((2, 3, 4), np.int64),),
        dict(size=3),
        NotImplementedError,
        "\"compute_indices_weights_nearest\" not implemented for 'Long'",
    ),
    (
        "shuffle factor 0",
        "pixel_shuffle",
        (_x(2, 8, 3, 3), 0),
        {},
        RuntimeError,
        "pixel_shuffle expects a positive upscale_factor, but got 0",
    ),
    (
        "shuffle float factor",
        "pixel_shuffle",
        (_x(2, 8, 3, 3), 2.0),
        {},
        TypeError,
        "re:pixel_shuffle\\(\\): argument 'upscale_factor' \\(position 2\\) must be int, not float",
    ),
    (
        "shuffle 2D",
        "pixel_shuffle",
        (_x(9, 3), 2),
        {},
        RuntimeError,
        "pixel_shuffle expects input to have at least 3 dimensions, but got input with 2 "
        "dimension(s)",
    ),
    (
        "shuffle channels",
        "pixel_shuffle",
        (_x(2, 9, 3, 3), 2),
        {},
        RuntimeError,
        "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
        "upscale_factor, but input.size(-3)=9 is not divisible by 4",
    ),
    (
        "unshuffle height",
        "pixel_unshuffle",
        (_x(2, 2, 5, 6), 2),
        {},
        RuntimeError,
        "pixel_unshuffle expects height to be divisible by downscale_factor, but input.size(-2)=5 "
        "is not divisible by 2",
    ),
    (
        "unshuffle width",
        "pixel_unshuffle",
        (_x(2, 2, 4, 5), 2),
        {},
        RuntimeError,
        "pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)=5 "
        "is not divisible by 2",
    ),
    (
        "unshuffle factor",
        "pixel_unshuffle",
        (_x(2, 2, 4, 6), -1),
        {},
        RuntimeError,
        "pixel_unshuffle expects a positive downscale_factor, but got -1",
    ),
    (
        "unfold 5D",
        "unfold",
        (_x(1, 2, 3, 5, 6), 2),
        {},
        RuntimeError,
        "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero "
        "dimensions for input, but got: [1, 2, 3, 5, 6]",
    ),
    (
        "unfold no channels",
        "unfold",
        (_x(2, 0, 5, 6), 2),
        {},
        RuntimeError,
        "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero "
        "dimensions for input, but got: [2, 0, 5, 6]",
    ),
    (
        "unfold too big",
        "unfold",
        (_x(2, 3, 5, 6), 7),
        {},
        RuntimeError,
        "Given input with spatial size (5, 6), kernel_size=(7, 7), dilation=(1, 1), "
        "padding=(0, 0), calculated shape of the array of sliding blocks as (-1, 0), but its "
        "components must be at least one.",
    ),
    (
        "unfold kernel 0",
        "unfold",
        (_x(2, 3, 5, 6), (2, 0)),
        {},
        RuntimeError,
        "kernel size should be greater than zero, but got kernel_height: 2 kernel_width: 0",
    ),
    (
        "unfold stride 0",
        "unfold",
        (_x(2, 3, 5, 6), 2),
        dict(stride=(0, 2)),
        RuntimeError,
        "stride should be greater than zero, but got stride_height: 0 stride_width: 2",
    ),
    (
        "unfold dilation 0",
        "unfold",
        (_x(2, 3, 5, 6), 2),
        dict(dilation=0),
        RuntimeError,
        "dilation should be greater than zero, but got dilation_height: 0 dilation_width: 0",
    ),
    (
        "unfold padding",
        "unfold",
        (_x(2, 3, 5, 6), 2),
        dict(padding=(1, -1)),
        RuntimeError,
        "padding should be non-negative, but got pad_height: 1 pad_width: -1",
    ),
    (
        "unfold stride length",
        "unfold",
        (_x(2, 3, 4, 4), (2, 2)),
        dict(stride=(1, 1, 1)),
        RuntimeError,
        "It is expected stride equals to 2, but got size 3",
    ),
    (
        "unfold float kernel",
        "unfold",
        (_x(2, 3, 4, 4), (2.5, 2)),
        {},
        TypeError,
        "re:im2col\\(\\): argument 'kernel_size' .*must be tuple of ints, but found element of "
        "type float at pos 0",
    ),
    (
        "unfold int input",
        "unfold",
        (np.ones((2, 3, 4, 4), np.int64), 2),
        {},
        NotImplementedError,
        "\"im2col_out_cpu\" not implemented for 'Long'",
    ),
    (
        "fold 4D",
        "fold",
        (_x(2, 12, 20, 1), (5, 6), 2),
        {},
        RuntimeError,
        "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero "
        "dimensions for input, but got: [2, 12, 20, 1]",
    ),
    (
        "fold empty L",
        "fold",
        (_x(2, 12, 0), (4, 4), 2),
        {},
        RuntimeError,
        "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero "
        "dimensions for input, but got: [2, 12, 0]",
    ),
    (
        "fold divisible",
        "fold",
        (_x(2, 13, 20), (5, 6), 2),
        {},
        RuntimeError,
        "Expected size of input's dimension 1 to be divisible by the product of kernel_size, but "
        "got input.size(1)=13 and kernel_size=(2, 2).",
    ),
    (
        "fold blocks",
        "fold",
        (_x(2, 12, 19), (5, 6), 2),
        {},
        RuntimeError,
        "Given output_size=(5, 6), kernel_size=(2, 2), dilation=(1, 1), padding=(0, 0), "
        "stride=(1, 1), expected size of input's dimension 2 to match the calculated number of "
        "sliding blocks 4 * 5 = 20, but got input.size(2)=19.",
    ),
    (
        "fold small output",
        "fold",
        (_x(2, 12, 20), (0, 6), 2),
        {},
        RuntimeError,
        "Given output_size=(0, 6), kernel_size=(2, 2), dilation=(1, 1), padding=(0, 0), "
        "stride=(1, 1), expected size of input's dimension 2 to match the calculated number of "
        "sliding blocks -1 * 5 = -5, but got input.size(2)=20.",
    ),
    (
        "fold output length",
        "fold",
        (_x(2, 12, 20), (5, 6, 7), (2, 2)),
        {},
        RuntimeError,
        "It is expected output_size equals to 2, but got size 3",
    ),
    (
        "fold kernel 0",
        "fold",
        (_x(2, 12, 20), (5, 6), 0),
        {},
        RuntimeError,
        "kernel size should be greater than zero, but got kernel_height: 0 kernel_width: 0",
    ),
    (
        "fold int input",
        "fold",
        (np.ones((2, 12, 9), np.int32), (4, 4), 2),
        {},
        NotImplementedError,
        "\"col2im_out_cpu\" not implemented for 'Int'",
    ),
]


def _check_message(excinfo, message):
    text = str(excinfo.value)
    if message.startswith("re:"):
        assert re.search(message[3:], text), text
    else:
        assert text == message


@pytest.mark.parametrize(
    "name,fn,args,kwargs,error,message", ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_errors(name, fn, args, kwargs, error, message):
    with pytest.raises(error) as excinfo:
        getattr(F, fn)(*args, **kwargs)
    _check_message(excinfo, message)


@pytest.mark.parametrize(
    "name,fn,args,kwargs,error,message", ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_errors_are_torchs(name, fn, args, kwargs, error, message, torch):
    """The expected messages above are PyTorch's own: the same call on torch raises them."""
    targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    with pytest.raises(error) as excinfo:
        getattr(torch.nn.functional, fn)(*targs, **kwargs)
    _check_message(excinfo, message)


def test_non_array_input():
    with pytest.raises(TypeError, match="argument 'input' must be a Tensor or numpy.ndarray"):
        F.interpolate([[1.0, 2.0]], size=3)


# ---------------------------------------------------------------------------------------------
# N-d unfold/fold and the places where PyTorch contradicts itself
# ---------------------------------------------------------------------------------------------


def test_unfold_nd_is_the_2d_op_on_a_slice(torch):
    """A 3-D unfold with kernel depth 1 equals torch's 2-D unfold on each depth slice."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 1, 5, 6))
    ours = F.unfold(x, (1, 2, 3), padding=(0, 1, 0), stride=(1, 2, 1)).numpy()
    theirs = torch.nn.functional.unfold(
        torch.tensor(x[:, :, 0]), (2, 3), padding=(1, 0), stride=(2, 1)
    ).numpy()
    np.testing.assert_allclose(ours, theirs, **REF_TOL)


def test_torch_nearest_1d_backward_is_not_its_adjoint(torch):
    # size 4 with scale_factor 1.2 -> out 4: torch's forward reads floor(i / 1.2) = [0, 0, 1, 2],
    # its backward uses the "out == in: copy" shortcut. Ours is the forward's adjoint.
    x = np.arange(4.0).reshape(1, 1, 4)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, scale_factor=1.2)
    np.testing.assert_array_equal(ty.detach().numpy()[0, 0], [0, 0, 1, 2])
    ty.sum().backward()
    np.testing.assert_array_equal(tx.grad.numpy()[0, 0], [1, 1, 1, 1])  # torch: not the adjoint
    cx = cl.tensor(x, requires_grad=True)
    cy = F.interpolate(cx, scale_factor=1.2)
    np.testing.assert_array_equal(cy.detach().numpy(), ty.detach().numpy())
    cy.sum().backward()
    np.testing.assert_array_equal(cx.grad.numpy()[0, 0], [2, 1, 1, 0])


def test_torch_aa_backward_is_not_its_adjoint(torch):
    # Antialiased resize with an unchanged height but an explicit scale factor: torch's forward
    # skips the height pass, its backward does not. Ours is the adjoint of torch's forward.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 1, 3, 5))
    kwargs = dict(scale_factor=(1.18, 2.5), mode="bilinear", antialias=True)
    ty = torch.nn.functional.interpolate(torch.tensor(x), **kwargs)
    cy = F.interpolate(x, **kwargs)
    np.testing.assert_allclose(cy.detach().numpy(), ty.numpy(), **TOL[np.float64])
    # The adjoint of torch's forward, column by column.
    eye = torch.eye(15, dtype=torch.float64).reshape(15, 1, 3, 5)
    matrix = torch.nn.functional.interpolate(eye, **kwargs).reshape(15, -1).numpy()
    g = rng.standard_normal(cy.shape)
    cx = cl.tensor(x, requires_grad=True)
    F.interpolate(cx, **kwargs).backward(cl.tensor(g))
    np.testing.assert_allclose(cx.grad.numpy().reshape(-1), matrix @ g.reshape(-1), **REF_TOL)


def test_torch_aa_width_one_bug(torch):
    # torch copies the first output row into every row when the output width is 1 with
    # antialias; resizing the height first (width kept) and then the width gives the right
    # answer, which is ours.
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 2, 6, 5))
    kwargs = dict(mode="bilinear", antialias=True)
    buggy = torch.nn.functional.interpolate(torch.tensor(x), size=(4, 1), **kwargs).numpy()
    assert np.all(buggy == buggy[:, :, :1])
    two_pass = torch.nn.functional.interpolate(
        torch.nn.functional.interpolate(torch.tensor(x), size=(4, 5), **kwargs),
        size=(4, 1),
        **kwargs,
    ).numpy()
    ours = F.interpolate(x, size=(4, 1), **kwargs).numpy()
    np.testing.assert_allclose(ours, two_pass, **TOL[np.float64])
