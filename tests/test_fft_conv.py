"""FFT convolution kernels against the loop reference and the im2col kernels.

Every case runs three ways: in one piece (the circular convolutions of ``fft_shape``), cut into
overlap-save tiles of random sizes, and cut into the smallest batch / output-channel chunks on
one and on two threads. float64 results must agree to 1e-10 relative (max |diff| / max |ref|);
float32 ones to 1e-4 of the float64 reference.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from convlab.kernels import conv as K
from convlab.kernels import fft as F
from convlab.kernels import reference as R


def rel_err(got: np.ndarray, expected: np.ndarray) -> float:
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-300))


def grid():
    """(n, spatial, kernel, padding, dilation, groups, c_in/g, c_out/g) over a seeded grid."""
    rng = np.random.default_rng(2024)
    cases = []
    for nd, kernel_kind, pad_kind, group_kind in itertools.product(
        (1, 2, 3), ("odd", "even", "large"), ("none", "sym", "asym"), ("1", "2", "depthwise")
    ):
        top = {1: 9, 2: 7, 3: 5}[nd]
        spatial = tuple(int(s) for s in rng.integers(3, top + 1, nd))
        if kernel_kind == "odd":
            kernel = tuple(int(k) for k in rng.choice([1, 3, 5], nd))
        elif kernel_kind == "even":
            kernel = tuple(int(k) for k in rng.choice([2, 4], nd))
        else:  # larger than the input: needs padding to fit
            kernel = tuple(s + int(rng.integers(1, 3)) for s in spatial)
        if pad_kind == "none":
            padding = ((0, 0),) * nd
        elif pad_kind == "sym":
            padding = tuple((int(p), int(p)) for p in rng.integers(1, 4, nd))
        else:
            padding = tuple(
                (int(lo), int(lo) + int(rng.integers(1, 3))) for lo in rng.integers(0, 3, nd)
            )
        dilation = tuple(int(d) for d in rng.choice([1, 1, 2], nd))
        extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        if pad_kind == "none":  # make the (dilated) kernel fit
            spatial = tuple(max(s, e) for s, e in zip(spatial, extent))
        else:  # pad just enough at the high end that it fits
            padding = tuple(
                (lo, max(hi, e - s - lo)) for (lo, hi), e, s in zip(padding, extent, spatial)
            )
        groups, cig, og = {
            "1": (1, int(rng.integers(1, 4)), int(rng.integers(1, 4))),
            "2": (2, int(rng.integers(1, 3)), int(rng.integers(1, 3))),
            "depthwise": (3, 1, int(rng.integers(1, 3))),
        }[group_kind]
        n = int(rng.integers(1, 4))
        cases.append((n, spatial, kernel, padding, dilation, groups, cig, og))
    return cases


CASES = grid()


def make_case(case, dtype=np.float64, seed=0):
    n, spatial, kernel, padding, dilation, groups, cig, og = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cig * groups, *spatial)).astype(dtype)
    w = rng.standard_normal((og * groups, cig, *kernel)).astype(dtype)
    b = rng.standard_normal(og * groups).astype(dtype)
    nd = len(spatial)
    out = K.conv_forward(x, w, None, (1,) * nd, padding, dilation, groups)
    g = rng.standard_normal(out.shape).astype(dtype)
    return x, w, b, g


def im2col_results(x, w, b, g, padding, dilation, groups):
    one = (1,) * (x.ndim - 2)
    return (
        K.conv_forward(x, w, b, one, padding, dilation, groups),
        K.conv_backward_input(g, w, x.shape, one, padding, dilation, groups),
        K.conv_backward_weight(x, g, w.shape, one, padding, dilation, groups),
    )


def fft_results(x, w, b, g, padding, dilation, groups):
    return (
        F.fft_conv_forward(x, w, b, padding, groups, dilation),
        F.fft_conv_backward_input(g, w, x.shape, padding, groups, dilation),
        F.fft_conv_backward_weight(x, g, w.shape, padding, groups, dilation),
    )


@pytest.fixture(params=["whole", "tiles", "chunks-1-thread", "chunks-2-threads"])
def path(request, monkeypatch):
    """How the kernels cut the work: forced through :func:`fft._plan` and the module settings."""
    rng = np.random.default_rng(7)
    if request.param == "whole":
        monkeypatch.setattr(F, "_plan", lambda *args: None)
    elif request.param == "tiles":

        def random_tiles(n, c_in, c_out, cig, spatial, extent, padding):
            out = [s + lo + hi - e + 1 for s, e, (lo, hi) in zip(spatial, extent, padding)]
            return tuple(int(rng.integers(1, o + 1)) for o in out)

        monkeypatch.setattr(F, "_plan", random_tiles)
    else:
        monkeypatch.setattr(F, "_plan", lambda *args: None)
        monkeypatch.setattr(F, "CHUNK_BYTES", 1)
        monkeypatch.setattr(F, "FFT_THREADS", 1 if "1-thread" in request.param else 2)
    return request.param


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{len(c[1])}d-k{c[2]}-p{c[3]}-d{c[4]}-g{c[5]}"
)
def test_matches_im2col_float64(case, path):
    x, w, b, g = make_case(case)
    padding, dilation, groups = case[3], case[4], case[5]
    expected = im2col_results(x, w, b, g, padding, dilation, groups)
    got = fft_results(x, w, b, g, padding, dilation, groups)
    for name, e, r in zip(("forward", "grad input", "grad weight"), expected, got):
        assert r.dtype == np.float64
        assert rel_err(r, e) < 1e-10, name


@pytest.mark.parametrize("case", [c for c in CASES if len(c[1]) < 3 or c[0] == 1][::2])
def test_matches_loop_reference(case):
    # The forward against the loops written from the definition; both gradients through the
    # definition of the adjoint of a linear map: <A(x), g> == <x, A^T(g)> with the reference A.
    x, w, b, g = make_case(case, seed=1)
    padding, dilation, groups = case[3], case[4], case[5]
    nd = len(case[1])
    ref = R.conv(x, w, b, (1,) * nd, padding, dilation, groups)
    y, dx, dw = fft_results(x, w, b, g, padding, dilation, groups)
    assert rel_err(y, ref) < 1e-10
    linear = ref - b.reshape((1, -1) + (1,) * nd)
    np.testing.assert_allclose(np.vdot(x, dx), np.vdot(linear, g), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(w, dw), np.vdot(linear, g), rtol=1e-10)


@pytest.mark.parametrize("k", [7, 15])
def test_float32_error_within_1e_4(k):
    # A larger case in float32 (complex64 spectra) against the float64 im2col result.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 64, 24, 24))
    w = rng.standard_normal((32, 64, k, k)) / k
    padding = ((k // 2, k // 2),) * 2
    y = K.conv_forward(x, w, None, (1, 1), padding, (1, 1), 1)
    g = rng.standard_normal(y.shape)
    expected = im2col_results(x, w, None, g, padding, (1, 1), 1)
    f32 = [a.astype(np.float32) for a in (x, w, g)]
    got = fft_results(f32[0], f32[1], None, f32[2], padding, (1, 1), 1)
    for name, e, r in zip(("forward", "grad input", "grad weight"), expected, got):
        assert r.dtype == np.float32
        assert rel_err(r.astype(np.float64), e) < 1e-4, name


def test_long_1d_signal_float32():
    # The 1-d workload shape (long signal, k31), auto plan, float32 against float64.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 8, 4096))
    w = rng.standard_normal((8, 8, 31))
    padding = ((15, 15),)
    y = K.conv_forward(x, w, None, (1,), padding, (1,), 1)
    got = F.fft_conv_forward(x.astype(np.float32), w.astype(np.float32), None, padding, 1)
    assert rel_err(got.astype(np.float64), y) < 1e-4


def test_fft_size_is_the_next_5_smooth_length():
    def smooth(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in range(1, 400):
        size = F.fft_size(n)
        assert size >= n and smooth(size)
        assert not any(smooth(m) for m in range(n, size))


def test_fft_shape_covers_wraparound():
    # size + max(lo, hi), or the output when the padding exceeds the kernel.
    assert F.fft_shape((32,), (15,), ((7, 7),)) == (40,)
    assert F.fft_shape((10,), (3,), ((0, 4),)) == (15,)
    assert F.fft_shape((4,), (1,), ((5, 5),)) == (15,)


def test_plan_tiles_a_long_signal_and_not_a_small_image():
    assert F._plan(8, 32, 32, 32, (4096,), (31,), ((15, 15),)) is not None
    assert F._plan(8, 64, 64, 64, (32, 32), (15, 15), ((7, 7), (7, 7))) is None


def test_supported_and_preferred():
    assert F.fft_conv_supported((8, 32, 64, 64), (32, 32, 15, 15), (1, 1), (1, 1), 1)
    assert not F.fft_conv_supported((8, 32, 64, 64), (32, 32, 15, 15), (2, 2), (1, 1), 1)
    assert not F.fft_conv_supported(
        (8, 32, 4, 4, 4, 4), (32, 32, 3, 3, 3, 3), (1,) * 4, (1,) * 4, 1
    )
    assert not F.fft_conv_supported((8, 32, 64), (32, 16, 15), (1,), (1,), 1)
    assert F.fft_conv_preferred((8, 64, 32, 32), (64, 64, 15, 15), (1, 1), (1, 1), 1)
    assert not F.fft_conv_preferred((8, 64, 32, 32), (64, 64, 3, 3), (1, 1), (1, 1), 1)
    assert not F.fft_conv_preferred((8, 64, 32, 32), (64, 64, 15, 15), (2, 2), (1, 1), 1)


def test_empty_batch():
    x = np.zeros((0, 4, 9, 9))
    w = np.ones((6, 2, 3, 3))
    padding = ((1, 1), (1, 1))
    y = F.fft_conv_forward(x, w, None, padding, 2)
    assert y.shape == (0, 6, 9, 9)
    assert F.fft_conv_backward_input(y, w, x.shape, padding, 2).shape == x.shape
    np.testing.assert_array_equal(F.fft_conv_backward_weight(x, y, w.shape, padding, 2), 0 * w)
