"""Direct (depthwise and small-channel) convolution kernels against the references, float64.

Forward passes are compared with the slow loops of ``kernels.reference`` and with the im2col
kernels of ``kernels.conv``; the gradients with ``kernels.conv`` and, independently of it,
through the adjoint identity ``<A(x), g> == <x, A^T(g)>`` with the reference ``A``. Every check
runs for both implementations; the numba one skips without numba.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from convlab.kernels import _jit
from convlab.kernels import conv as K
from convlab.kernels import depthwise as DW
from convlab.kernels import reference as R

NUMBA = pytest.mark.skipif(
    not _jit.numba_available(), reason="numba not installed: pip install 'convlab[fast]'"
)
IMPLS = ["numpy", pytest.param("numba", marks=NUMBA)]


def fits(spatial, kernel, padding, dilation):
    return all(
        s + lo + hi >= d * (k - 1) + 1
        for s, k, (lo, hi), d in zip(spatial, kernel, padding, dilation)
    )


def make_cases(seed, kind):
    """(spatial, kernel, stride, padding, dilation, c_in, c_out, groups) over a seeded grid."""
    rng = np.random.default_rng(seed)
    cases = []
    for n_spatial in (1, 2, 3):
        # Sizes from below the kernel's reach (valid with padding) to a few windows.
        sizes = {1: [2, 5, 9], 2: [2, 5, 7], 3: [3, 4]}[n_spatial]
        grid = itertools.product([1, 2], [1, 2], ["none", "sym", "asym"], [1, 2])
        for stride, dilation, pad_kind, mult in grid:
            if n_spatial == 3 and rng.random() < 0.5:
                continue  # keep the slow 3-d reference loops few
            spatial = tuple(int(rng.choice(sizes)) for _ in range(n_spatial))
            kernel = tuple(int(rng.integers(1, 4)) for _ in range(n_spatial))
            if pad_kind == "none":
                padding = ((0, 0),) * n_spatial
            elif pad_kind == "sym":
                padding = tuple((int(p), int(p)) for p in rng.integers(1, 3, n_spatial))
            else:
                padding = tuple((int(a), int(a) + 1) for a in rng.integers(0, 2, n_spatial))
            args = ((stride,) * n_spatial, padding, (dilation,) * n_spatial)
            if not fits(spatial, kernel, padding, args[2]):
                continue
            if kind == "depthwise":
                c_in = int(rng.integers(1, 4))
                cases.append((spatial, kernel, *args, c_in, c_in * mult, c_in))
            else:  # groups = 1 with few channels, or a small grouped case
                c_in, groups = (int(rng.integers(1, 4)), 1) if mult == 1 else (4, 2)
                cases.append(
                    (spatial, kernel, *args, c_in, int(rng.integers(1, 4)) * groups, groups)
                )
    return cases


DEPTHWISE = make_cases(6, "depthwise")
GROUPED = make_cases(7, "grouped")


def rel_err(got, expected):
    scale = np.abs(expected).max() if expected.size else 1.0
    return np.abs(got - expected).max() / scale if got.size else 0.0


def case_arrays(case, dtype=np.float64, n=2, seed=0):
    spatial, kernel, stride, padding, dilation, c_in, c_out, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, *spatial)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w, b


def check_against_references(case, impl, forward, backward_input, backward_weight):
    spatial, kernel, stride, padding, dilation, c_in, c_out, groups = case
    x, w, b = case_arrays(case)
    args = (stride, padding, dilation)
    conv_args = (*args, groups)

    y = forward(x, w, b, *args, impl=impl)
    expected = R.conv(x, w, b, *conv_args)
    assert y.shape == expected.shape and y.dtype == np.float64
    assert rel_err(y, expected) < 1e-12
    assert rel_err(y, K.conv_forward(x, w, b, *conv_args)) < 1e-12

    g = np.random.default_rng(1).standard_normal(y.shape)
    gx = backward_input(g, w, x.shape, *args, impl=impl)
    gw = backward_weight(x, g, w.shape, *args, impl=impl)
    assert gx.shape == x.shape and gw.shape == w.shape
    assert rel_err(gx, K.conv_backward_input(g, w, x.shape, *conv_args)) < 1e-12
    assert rel_err(gw, K.conv_backward_weight(x, g, w.shape, *conv_args)) < 1e-12
    y_nobias = R.conv(x, w, None, *conv_args)
    np.testing.assert_allclose(np.vdot(x, gx), np.vdot(y_nobias, g), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(w, gw), np.vdot(y_nobias, g), rtol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", DEPTHWISE)
def test_depthwise_matches_references(case, impl):
    check_against_references(
        case,
        impl,
        DW.depthwise_conv_forward,
        DW.depthwise_conv_backward_input,
        DW.depthwise_conv_backward_weight,
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", GROUPED)
def test_direct_grouped_matches_references(case, impl):
    groups = case[-1]

    def fix_groups(fn):
        return lambda *args, impl: fn(*args, groups, impl=impl)

    check_against_references(
        case,
        impl,
        fix_groups(DW.direct_conv_forward),
        fix_groups(DW.direct_conv_backward_input),
        fix_groups(DW.direct_conv_backward_weight),
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_direct_with_groups_one_for_a_first_layer(impl):
    case = ((9, 8), (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1, 6, 1)
    x, w, b = case_arrays(case)
    args = case[2:5]
    y = DW.direct_conv_forward(x, w, b, *args, 1, impl=impl)
    assert rel_err(y, R.conv(x, w, b, *args)) < 1e-12
    g = np.random.default_rng(2).standard_normal(y.shape)
    gx = DW.direct_conv_backward_input(g, w, x.shape, *args, 1, impl=impl)
    gw = DW.direct_conv_backward_weight(x, g, w.shape, *args, 1, impl=impl)
    assert rel_err(gx, K.conv_backward_input(g, w, x.shape, *args, 1)) < 1e-12
    assert rel_err(gw, K.conv_backward_weight(x, g, w.shape, *args, 1)) < 1e-12


MERGED_CASES = [
    DEPTHWISE[i] for i in np.random.default_rng(10).choice(len(DEPTHWISE), 10, replace=False)
] + [GROUPED[i] for i in np.random.default_rng(11).choice(len(GROUPED), 6, replace=False)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", MERGED_CASES)
def test_merged_backward_equals_the_separate_passes(case, impl):
    """direct_conv_backward: both gradients in one pass, and the bias-gradient beside them."""
    *_, groups = case
    args = (*case[2:5], groups)
    x, w, _ = case_arrays(case, n=3)
    g = np.random.default_rng(12).standard_normal(R.conv(x, w, None, *args).shape)
    gx, gw, gb = DW.direct_conv_backward(x, g, w, *args, impl=impl)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (w.shape[0],)
    assert rel_err(gx, DW.direct_conv_backward_input(g, w, x.shape, *args, impl=impl)) < 1e-12
    assert rel_err(gw, DW.direct_conv_backward_weight(x, g, w.shape, *args, impl=impl)) < 1e-12
    assert rel_err(gw, K.conv_backward_weight(x, g, w.shape, *args)) < 1e-12
    assert rel_err(gb, g.sum(axis=(0, *range(2, g.ndim)))) < 1e-12  # y's bias term is b[o]


@NUMBA
@pytest.mark.parametrize("case", MERGED_CASES)
def test_numba_backward_writes_every_element_of_grad_x(case):
    """grad_x is allocated uninitialised: the kernels must write (or zero) every element, also
    the input positions no output reads (the end of a strided row)."""
    *_, groups = case
    args = (*case[2:5], groups)
    x, w, _ = case_arrays(case, n=2)
    x = np.pad(x, ((0, 0), (0, 0)) + ((0, 1),) * (x.ndim - 2))  # a trailing row/column
    g = np.random.default_rng(15).standard_normal(R.conv(x, w, None, *args).shape)
    kernel, out = w.shape[2:], g.shape[2:]
    plan = DW._nb_plan(kernel, out, *case[2:5])
    x5, g5 = x.reshape(DW._to3d(x.shape)), g.reshape(DW._to3d(g.shape))
    w3 = w.reshape(w.shape[0], w.shape[1], -1)
    expected = K.conv_backward_input(g, w, x.shape, *args)
    for kernel_call in (
        lambda gx5: DW._nb_backward_input(g5, w3, gx5, *plan),
        lambda gx5: DW._nb_backward(
            x5, g5, w3, gx5, np.empty(w3.shape), np.empty(w.shape[0]), *plan
        ),
    ):
        gx = np.full(x.shape, np.nan)
        kernel_call(gx.reshape(x5.shape))
        assert rel_err(gx, expected) < 1e-12


@pytest.mark.parametrize("impl", IMPLS)
def test_merged_backward_of_empty_inputs(impl):
    args = ((1,), ((2, 2),), (1,), 2)
    w = np.ones((4, 1, 1))
    # No input positions but padded outputs: grad_w is zero, grad_b is still g's sum.
    x = np.zeros((2, 2, 0))
    g = np.random.default_rng(13).standard_normal((2, 4, 4))
    gx, gw, gb = DW.direct_conv_backward(x, g, w, *args, impl=impl)
    assert gx.shape == x.shape and not gw.any()
    np.testing.assert_allclose(gb, g.sum((0, 2)), rtol=1e-12)
    gx, gw, gb = DW.direct_conv_backward(
        np.zeros((0, 2, 5)), np.zeros((0, 4, 5)), w, *args, impl=impl
    )
    assert gx.shape == (0, 2, 5) and gw.shape == w.shape and not gw.any() and not gb.any()


@NUMBA
def test_conv_backward_runs_the_merged_direct_pass_and_keeps_the_bias_gradient():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    g = rng.standard_normal((3, 8, 9, 8)).astype(np.float32)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 4)
    assert K._algorithms("input", x.shape, w.shape, *args)[0] == "direct"
    assert K._algorithms("weight", x.shape, w.shape, *args)[0] == "direct"
    workspace = {}
    gx, gw = K.conv_backward(x, g, w, *args, workspace)
    expected_gb = g.astype(np.float64).sum((0, 2, 3))
    np.testing.assert_allclose(K.conv_backward_bias(g, workspace), expected_gb, rtol=1e-5)
    assert "bias_grad" not in workspace  # taken
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    assert rel_err(gx, K.conv_backward_input(g64, w64, x.shape, *args)) < 1e-5
    assert rel_err(gw, K.conv_backward_weight(x64, g64, w.shape, *args)) < 1e-5


FLOAT32_CASES = [
    DEPTHWISE[i] for i in np.random.default_rng(8).choice(len(DEPTHWISE), 8, replace=False)
] + [GROUPED[i] for i in np.random.default_rng(9).choice(len(GROUPED), 4, replace=False)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", FLOAT32_CASES)
def test_float32_close_to_float64(case, impl):
    *_, groups = case
    args = (*case[2:5], groups)
    x, w, b = case_arrays(case, n=3)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    y = DW.direct_conv_forward(x32, w32, b32, *args, impl=impl)
    assert y.dtype == np.float32
    assert rel_err(y, DW.direct_conv_forward(x, w, b, *args, impl="numpy")) < 1e-5
    g = np.random.default_rng(3).standard_normal(y.shape)
    g32 = g.astype(np.float32)
    gx = DW.direct_conv_backward_input(g32, w32, x.shape, *args, impl=impl)
    gw = DW.direct_conv_backward_weight(x32, g32, w.shape, *args, impl=impl)
    assert gx.dtype == np.float32 and gw.dtype == np.float32
    assert rel_err(gx, DW.direct_conv_backward_input(g, w, x.shape, *args, impl="numpy")) < 1e-5
    assert rel_err(gw, DW.direct_conv_backward_weight(x, g, w.shape, *args, impl="numpy")) < 1e-5


@pytest.mark.parametrize("impl", IMPLS)
def test_realistic_float32_shape(impl):
    """A W1d-like shape (fewer channels): long sums stay within 1e-5 in float32."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 8, 30, 30))
    w = rng.standard_normal((16, 1, 3, 3))
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1))
    y = DW.depthwise_conv_forward(x, w, None, *args, impl="numpy")
    g = rng.standard_normal(y.shape)
    x32, w32, g32 = (a.astype(np.float32) for a in (x, w, g))
    assert rel_err(DW.depthwise_conv_forward(x32, w32, None, *args, impl=impl), y) < 1e-5
    gw = DW.depthwise_conv_backward_weight(x, g, w.shape, *args, impl="numpy")
    gw32 = DW.depthwise_conv_backward_weight(x32, g32, w.shape, *args, impl=impl)
    assert rel_err(gw32, gw) < 1e-5


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_batch_and_non_contiguous_input(impl):
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1))
    w = np.ones((4, 1, 3, 3))
    y = DW.depthwise_conv_forward(np.zeros((0, 2, 5, 5)), w, np.ones(4), *args, impl=impl)
    assert y.shape == (0, 4, 5, 5)
    gw = DW.depthwise_conv_backward_weight(
        np.zeros((0, 2, 5, 5)), np.zeros((0, 4, 5, 5)), w.shape, *args, impl=impl
    )
    assert gw.shape == w.shape and not gw.any()
    x = np.random.default_rng(5).standard_normal((2, 5, 5, 4)).transpose(0, 3, 1, 2)[:, ::2]
    expected = K.conv_forward(x, w, None, *args, 2)
    assert rel_err(DW.depthwise_conv_forward(x, w, None, *args, impl=impl), expected) < 1e-12


@NUMBA
def test_numba_result_does_not_depend_on_thread_count():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 11, 9)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    args = ((2, 1), ((1, 1), (2, 0)), (1, 2))
    g = rng.standard_normal((3, 8, 6, 7)).astype(np.float32)
    numba = _jit.require_numba()
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            _jit.set_jit_threads(threads)
            results.append(
                (
                    DW.depthwise_conv_forward(x, w, None, *args, impl="numba"),
                    DW.depthwise_conv_backward_input(g, w, x.shape, *args, impl="numba"),
                    DW.depthwise_conv_backward_weight(x, g, w.shape, *args, impl="numba"),
                )
            )
    finally:
        _jit.set_jit_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_bad_impl_is_rejected():
    x, w = np.ones((1, 2, 4, 4)), np.ones((2, 1, 3, 3))
    with pytest.raises(ValueError, match=r"impl must be one of .*'fortran'"):
        DW.depthwise_conv_forward(x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), impl="fortran")


def test_auto_uses_numba_when_available():
    assert DW._resolve("auto") == ("numba" if _jit.numba_available() else "numpy")


def test_importing_the_kernels_does_not_import_numba():
    code = (
        "import sys, convlab, convlab.kernels.depthwise, convlab.kernels._jit; "
        "assert 'numba' not in sys.modules, 'numba imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
