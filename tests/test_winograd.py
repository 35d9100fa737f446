"""Winograd F(2x2, 3x3) and F(4x4, 3x3) kernels against the slow reference, float64 and float32.

The forward pass is compared element by element with ``kernels.reference.conv``; the two
gradients through the definition of the adjoint (``<conv(x, w), g> == <x, dX(g)> == <w, dW(x,
g)>`` with the reference ``conv``) and against the im2col kernels. Every check runs for both tile
sizes and both implementations (NumPy, and numba when it is installed).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from convlab.kernels import _jit
from convlab.kernels import conv as K
from convlab.kernels import reference as R
from convlab.kernels import winograd as WG

IMPLS = [
    "numpy",
    pytest.param(
        "numba",
        marks=pytest.mark.skipif(
            not _jit.numba_available(),
            reason="numba not installed: pip install 'convlab[fast]'",
        ),
    ),
]
TILES = [2, 4]
ONE = (1, 1)


def _cases():
    """(N, C_in, C_out, H, W, padding, groups), seeded: odd/even sizes, sizes below one tile,
    asymmetric padding 0..2, 1..8 channels, 1..3 images, a few with groups."""
    rng = np.random.default_rng(20261127)
    cases = [
        (1, 1, 1, 3, 3, ((0, 0), (0, 0)), 1),  # one output pixel
        (1, 2, 3, 1, 1, ((1, 1), (1, 1)), 1),  # a single input pixel
        (2, 3, 2, 4, 9, ((1, 0), (2, 1)), 1),
        (1, 4, 6, 8, 8, ((1, 1), (1, 1)), 2),
        (2, 6, 3, 5, 7, ((2, 2), (0, 1)), 3),
    ]
    while len(cases) < 24:
        n, c_in, c_out = (int(v) for v in rng.integers(1, (4, 9, 9)))
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        pads = tuple((int(lo), int(hi)) for lo, hi in rng.integers(0, 3, (2, 2)))
        if h + sum(pads[0]) >= 3 and w + sum(pads[1]) >= 3:
            cases.append((n, c_in, c_out, h, w, pads, 1))
    return cases


CASES = _cases()


@functools.cache
def _data(index: int):
    """Inputs and the reference output of case ``index``, float64 (computed once)."""
    n, c_in, c_out, h, w, pads, groups = CASES[index]
    rng = np.random.default_rng(index)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in // groups, 3, 3))
    bias = rng.standard_normal(c_out)
    y = R.conv(x, weight, bias, ONE, pads, ONE, groups)
    g = rng.standard_normal(y.shape)
    return x, weight, bias, y, g


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("index", range(len(CASES)))
def test_forward_matches_reference(index, tile, impl):
    x, weight, bias, y, _ = _data(index)
    pads, groups = CASES[index][5], CASES[index][6]
    out = WG.winograd_conv2d_forward(x, weight, bias, pads, tile, groups, impl)
    assert out.shape == y.shape and out.dtype == np.float64
    assert _rel(out, y) < 1e-12
    no_bias = WG.winograd_conv2d_forward(x, weight, None, pads, tile, groups, impl)
    assert _rel(no_bias, y - bias.reshape(1, -1, 1, 1)) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("index", range(len(CASES)))
def test_backward_input_is_the_adjoint(index, tile, impl):
    x, weight, bias, y, g = _data(index)
    pads, groups = CASES[index][5], CASES[index][6]
    gx = WG.winograd_conv2d_backward_input(g, weight, x.shape, pads, tile, groups, impl)
    assert gx.shape == x.shape
    lhs = np.vdot(y - bias.reshape(1, -1, 1, 1), g)
    assert abs(lhs - np.vdot(x, gx)) <= 1e-12 * max(1.0, abs(lhs)) * x.size
    expected = K.conv_backward_input(g, weight, x.shape, ONE, pads, ONE, groups)
    assert _rel(gx, expected) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("index", range(len(CASES)))
def test_backward_weight_is_the_adjoint(index, tile, impl):
    x, weight, bias, y, g = _data(index)
    pads, groups = CASES[index][5], CASES[index][6]
    gw = WG.winograd_conv2d_backward_weight(x, g, pads, tile, groups, impl)
    assert gw.shape == weight.shape
    lhs = np.vdot(y - bias.reshape(1, -1, 1, 1), g)
    assert abs(lhs - np.vdot(weight, gw)) <= 1e-12 * max(1.0, abs(lhs)) * weight.size
    expected = K.conv_backward_weight(x, g, weight.shape, ONE, pads, ONE, groups)
    assert _rel(gw, expected) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tile", TILES)
def test_padding_beyond_the_kernel(tile, impl):
    """Padding > 2 (allowed in PyTorch) makes the input gradient crop: padding 2 - low < 0."""
    rng = np.random.default_rng(7)
    x, weight = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 3))
    pads = ((3, 4), (0, 5))
    y = WG.winograd_conv2d_forward(x, weight, None, pads, tile, impl=impl)
    assert _rel(y, R.conv(x, weight, None, ONE, pads, ONE)) < 1e-12
    g = rng.standard_normal(y.shape)
    gx = WG.winograd_conv2d_backward_input(g, weight, x.shape, pads, tile, impl=impl)
    assert _rel(gx, K.conv_backward_input(g, weight, x.shape, ONE, pads, ONE, 1)) < 1e-12
    gw = WG.winograd_conv2d_backward_weight(x, g, pads, tile, impl=impl)
    assert _rel(gw, K.conv_backward_weight(x, g, weight.shape, ONE, pads, ONE, 1)) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("per_chunk", [1, 2])
def test_many_images_are_processed_in_chunks(per_chunk, tile, impl, monkeypatch):
    """Chunks of one or two images (the last one shorter): the same result as one chunk."""
    rng = np.random.default_rng(8)
    x, weight = rng.standard_normal((5, 3, 7, 6)), rng.standard_normal((2, 3, 3, 3))
    pads = ((1, 1), (1, 2))
    tiles = math.ceil(7 / tile) ** 2  # per image: the output is 7 x 7
    monkeypatch.setattr(WG, "CHUNK_TILES", per_chunk * tiles)
    y = K.conv_forward(x, weight, None, ONE, pads, ONE, 1)
    assert _rel(WG.winograd_conv2d_forward(x, weight, None, pads, tile, impl=impl), y) < 1e-12
    g = rng.standard_normal(y.shape)
    gw = WG.winograd_conv2d_backward_weight(x, g, pads, tile, impl=impl)
    assert _rel(gw, K.conv_backward_weight(x, g, weight.shape, ONE, pads, ONE, 1)) < 1e-12
    monkeypatch.setattr(WG, "CHUNK_BYTES", 1)  # the byte budget wins: one image per chunk
    assert _rel(WG.winograd_conv2d_forward(x, weight, None, pads, tile, impl=impl), y) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tile", TILES)
def test_wide_images_split_into_blocks(tile, impl):
    """Rows of many tiles: the numba path gives each task fewer images (blocks of 2 and 1)."""
    rng = np.random.default_rng(10)
    x, weight = rng.standard_normal((3, 2, 4, 100 * tile)), rng.standard_normal((3, 2, 3, 3))
    pads = ((1, 1), (1, 1))
    y = K.conv_forward(x, weight, None, ONE, pads, ONE, 1)
    assert _rel(WG.winograd_conv2d_forward(x, weight, None, pads, tile, impl=impl), y) < 1e-12
    g = rng.standard_normal(y.shape)
    gw = WG.winograd_conv2d_backward_weight(x, g, pads, tile, impl=impl)
    assert _rel(gw, K.conv_backward_weight(x, g, weight.shape, ONE, pads, ONE, 1)) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("scale", ["standard", "kaiming"])
def test_float32_error_within_1e_4(scale, tile, impl):
    """W1b-like (C 64, 3x3, padding 1) with fewer images and pixels: float32 stays within 1e-4
    of the float64 result (max |diff| / max |ref|), forward and both gradients."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 64, 20, 20)).astype(np.float32)
    weight = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    if scale == "kaiming":
        weight *= np.float32(np.sqrt(2 / (64 * 9)))
    x64, w64 = x.astype(np.float64), weight.astype(np.float64)
    pads = ((1, 1), (1, 1))
    y = WG.winograd_conv2d_forward(x, weight, None, pads, tile, impl=impl)
    y64 = K.conv_forward(x64, w64, None, ONE, pads, ONE, 1)
    assert y.dtype == np.float32 and _rel(y, y64) <= 1e-4
    g = rng.standard_normal(y.shape).astype(np.float32)
    g64 = g.astype(np.float64)
    gx = WG.winograd_conv2d_backward_input(g, weight, x.shape, pads, tile, impl=impl)
    gx64 = K.conv_backward_input(g64, w64, x.shape, ONE, pads, ONE, 1)
    assert gx.dtype == np.float32 and _rel(gx, gx64) <= 1e-4
    gw = WG.winograd_conv2d_backward_weight(x, g, pads, tile, impl=impl)
    gw64 = K.conv_backward_weight(x64, g64, weight.shape, ONE, pads, ONE, 1)
    assert gw.dtype == np.float32 and _rel(gw, gw64) <= 1e-4


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (3, 2), (3, 4)])
def test_matrices_compute_a_correlation(m, r):
    """1-d F(m, r): ``A^T [(G g) * (B^T d)]`` is ``y_i = sum_k g_k d_{i+k}``; B^T is integral."""
    bt, g, at = WG.winograd_matrices(m, r)
    a = m + r - 1
    assert bt.shape == (a, a) and g.shape == (a, r) and at.shape == (m, a)
    assert np.array_equal(bt, np.round(bt))
    rng = np.random.default_rng(m * 10 + r)
    d, k = rng.standard_normal(a), rng.standard_normal(r)
    expected = [np.dot(k, d[i : i + r]) for i in range(m)]
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), expected, rtol=1e-13, atol=1e-13)


def test_supported_rules():
    ok = dict(
        x_shape=(8, 64, 56, 56),
        weight_shape=(64, 64, 3, 3),
        stride=ONE,
        padding=((1, 1), (1, 1)),
        dilation=ONE,
        groups=1,
    )
    assert WG.winograd_supported(**ok)
    assert WG.winograd_supported(**{**ok, "padding": ((0, 2), (3, 0))})
    assert WG.winograd_supported(**{**ok, "weight_shape": (64, 32, 3, 3), "groups": 2})
    assert WG.winograd_supported(**{**ok, "x_shape": (1, 64, 1, 1)})  # padding makes it 3x3
    rejected = [
        {"stride": (2, 2)},
        {"stride": (1, 2)},
        {"dilation": (2, 2)},
        {"weight_shape": (64, 64, 5, 5)},
        {"weight_shape": (64, 64, 3, 1)},
        {"x_shape": (8, 64, 56), "weight_shape": (64, 64, 3), "padding": ((1, 1),)},
        {"x_shape": (8, 64, 4, 4, 4), "weight_shape": (64, 64, 3, 3, 3)},
        {"x_shape": (1, 64, 1, 1), "padding": ((0, 0), (0, 0))},  # empty output
        {"weight_shape": (64, 32, 3, 3)},  # channels do not match groups = 1
        {"weight_shape": (63, 32, 3, 3), "groups": 2},
    ]
    for change in rejected:
        assert not WG.winograd_supported(**{**ok, **change}), change


def test_bad_tile_and_impl():
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"tile must be one of \(2, 4\), but got tile=3"):
        WG.winograd_conv2d_forward(x, w, None, ((0, 0), (0, 0)), tile=3)
    with pytest.raises(ValueError, match="impl must be one of .* but got impl='cuda'"):
        WG.winograd_conv2d_forward(x, w, None, ((0, 0), (0, 0)), impl="cuda")
