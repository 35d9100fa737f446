"""The im2col + GEMM kernel's internal paths, each against the reference loops (float64).

The wide stride-1 layout, the general strided layout, chunking over the batch and the columns a
forward pass keeps for the weight-gradient must all give the reference's numbers; the tiling
max-pool and the ReLU backward fast paths must keep PyTorch's tie and non-finite rules.
"""

import itertools
import math

import numpy as np
import pytest

import convlab as cl
from convlab.kernels import _jit, parallel
from convlab.kernels import conv as K
from convlab.kernels import pool as P
from convlab.kernels import reference as R


def stride1_cases():
    rng = np.random.default_rng(7)
    cases = []
    for n_spatial, dilation, pad_kind in itertools.product((1, 2, 3), (1, 2), ("none", "asym")):
        spatial = tuple(int(v) for v in rng.integers(5, 9, n_spatial))
        kernel = tuple(int(v) for v in rng.integers(1, 4, n_spatial))
        if pad_kind == "none":
            padding = ((0, 0),) * n_spatial
        else:
            padding = tuple((int(a), int(a) + 1) for a in rng.integers(0, 3, n_spatial))
        cases.append((spatial, kernel, padding, (dilation,) * n_spatial))
    return cases


def _check_against_reference(spatial, kernel, padding, dilation, groups=1, n=3):
    rng = np.random.default_rng(0)
    c_in, c_out = 2 * groups, 3 * groups
    x = rng.standard_normal((n, c_in, *spatial))
    w = rng.standard_normal((c_out, c_in // groups, *kernel))
    stride = (1,) * len(spatial)
    args = (stride, padding, dilation, groups)
    y = R.conv(x, w, None, *args)
    np.testing.assert_allclose(K.conv_forward(x, w, None, *args), y, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    grad_x = K.conv_backward_input(g, w, x.shape, *args)
    grad_w = K.conv_backward_weight(x, g, w.shape, *args)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, grad_x), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(w, grad_w), rtol=1e-10)
    return K.conv_forward(x, w, None, *args), grad_x, grad_w


@pytest.mark.parametrize("spatial,kernel,padding,dilation", stride1_cases())
def test_wide_and_strided_layouts_agree(spatial, kernel, padding, dilation, monkeypatch):
    wide = K._wide_geometry(
        spatial,
        kernel,
        (1,) * len(spatial),
        padding,
        dilation,
        K._padded_out(spatial, kernel, (1,) * len(spatial), padding, dilation),
    )
    with_wide = _check_against_reference(spatial, kernel, padding, dilation)
    monkeypatch.setattr(K, "_wide_geometry", lambda *args: None)
    without = _check_against_reference(spatial, kernel, padding, dilation)
    for a, b in zip(with_wide, without):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    if wide is not None:
        assert wide.waste <= 1.5


def test_wide_layout_is_taken_for_lenet_and_skipped_when_wasteful():
    lenet2 = K._wide_geometry((14, 14), (5, 5), (1, 1), ((0, 0),) * 2, (1, 1), (10, 10))
    assert lenet2 is not None and lenet2.length == 10 * 14
    # 3x3 outputs on a 9x9 padded grid: 3x the work, the strided layout is used.
    assert K._wide_geometry((9, 9), (7, 7), (1, 1), ((0, 0),) * 2, (1, 1), (3, 3)) is None
    assert K._wide_geometry((9, 9), (3, 3), (2, 2), ((0, 0),) * 2, (1, 1), (4, 4)) is None


def test_row_shifted_columns_are_taken_where_the_wide_layout_wastes_work():
    none = ((0, 0),) * 2
    # LeNet's layers: 32/28 and 14/10 of the wide positions are waste.
    assert K._row_shifted_applies((28, 28), (5, 5), (1, 1), ((2, 2),) * 2, (1, 1), (28, 28))
    assert K._row_shifted_applies((14, 14), (5, 5), (1, 1), none, (1, 1), (10, 10))
    assert not K._row_shifted_applies((56, 56), (3, 3), (1, 1), ((1, 1),) * 2, (1, 1), (56, 56))
    assert not K._row_shifted_applies((14, 14), (5, 5), (2, 2), none, (1, 1), (5, 5))
    assert not K._row_shifted_applies((14,), (5,), (1,), ((0, 0),), (1,), (10,))
    assert not K._row_shifted_applies((14, 14), (1, 1), (1, 1), none, (1, 1), (14, 14))


@pytest.mark.parametrize("numba", [True, False])  # exact columns by numba's pass or NumPy's
@pytest.mark.parametrize("max_waste", [1.0, np.inf])  # row-shifted columns always / never
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize(
    "spatial,kernel,padding,dilation,groups",
    [
        ((9, 8), (3, 2), ((1, 2), (0, 1)), (1, 1), 1),
        ((10, 9), (3, 3), ((2, 2), (2, 2)), (2, 3), 1),
        ((7, 11), (2, 4), ((0, 0), (1, 0)), (1, 1), 2),
        ((6, 6), (5, 5), ((2, 2), (2, 2)), (1, 1), 1),
    ],
)
def test_forward_columns_both_ways_match_the_reference(
    spatial, kernel, padding, dilation, groups, keep, max_waste, numba, monkeypatch
):
    if numba and not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    monkeypatch.setattr(_jit, "numba_available", lambda: numba)
    monkeypatch.setattr(K, "WIDE_MAX_WASTE", max_waste)
    out = K._padded_out(spatial, kernel, (1, 1), padding, dilation)
    rows = K._row_shifted_applies(spatial, kernel, (1, 1), padding, dilation, out)
    wide = K._wide_geometry(spatial, kernel, (1, 1), padding, dilation, out)
    assert rows == (max_waste == 1.0 or wide is None)
    rng = np.random.default_rng(sum(spatial))
    x = rng.standard_normal((3, 2 * groups, *spatial))
    w = rng.standard_normal((3 * groups, 2, *kernel))
    b = rng.standard_normal(3 * groups)
    args = ((1, 1), padding, dilation, groups)
    y_ref = R.conv(x, w, b, *args)
    g = rng.standard_normal(y_ref.shape)
    workspace = {} if keep else None
    with cl.conv_algorithm("gemm"):
        y = K.conv_forward(x, w, b, *args, workspace)
        grad_w = K.conv_backward_weight(x, g, w.shape, *args, workspace)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    y0 = R.conv(x, w, None, *args)
    np.testing.assert_allclose(np.vdot(y0, g), np.vdot(w, grad_w), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "spatial,kernel,stride,padding,dilation",
    [
        ((9, 8), (3, 2), (1, 1), ((1, 2), (0, 1)), (1, 1)),
        ((10, 9), (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 3)),
        ((28, 28), (5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1)),  # LeNet's conv1
        ((11, 13), (3, 4), (2, 3), ((1, 1), (3, 2)), (2, 1)),  # strides: the strided copy
        ((5, 6), (2, 5), (1, 1), ((4, 4), (6, 6)), (1, 3)),  # rows and columns all padding
    ],
)
def test_numba_columns_match_the_strided_view(spatial, kernel, stride, padding, dilation, dtype):
    if not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    rng = np.random.default_rng(sum(spatial) + sum(stride))
    x = rng.standard_normal((5, 3, *spatial)).astype(dtype)
    out = K._padded_out(spatial, kernel, stride, padding, dilation)
    view = K._windows(K._pad_zeros(x, padding), kernel, stride, dilation, out)
    geometry = np.array([*kernel, *stride, *(lo for lo, _ in padding), *dilation, *out], np.int64)
    cols = np.full((3, 3 * math.prod(kernel) * math.prod(out)), np.nan, dtype)
    K._nb_im2col_2d(x, 2, cols, geometry)  # samples 2, 3 and 4
    np.testing.assert_array_equal(cols.reshape(3, -1), view[2:].reshape(3, -1))


@pytest.mark.parametrize("groups", [1, 2])  # the bias row is for groups == 1 only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "stride,padding,dilation",
    [
        ((1, 1), ((2, 2), (2, 2)), (1, 1)),  # row-shifted columns (LeNet's conv1)
        ((2, 1), ((1, 2), (0, 1)), (1, 2)),  # strided window columns
    ],
)
def test_bias_row_adds_the_bias_and_gives_its_gradient(
    groups, dtype, stride, padding, dilation, monkeypatch
):
    if not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 0)  # partial sums from two threads
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 2 * groups, 12, 12)).astype(dtype)
    w = rng.standard_normal((3 * groups, 2, 5, 5)).astype(dtype)
    b = rng.standard_normal(3 * groups).astype(dtype)
    args = (stride, padding, dilation, groups)
    out = K._padded_out((12, 12), (5, 5), stride, padding, dilation)
    # numba writes these columns (and their row of ones) in one pass
    assert K._columns_source(x, (5, 5), stride, padding, dilation, out).geometry is not None
    workspace = {}
    with cl.conv_algorithm("gemm"):
        y = K.conv_forward(x, w, b, *args, workspace)
        assert (workspace["cols"].ndim == 3) == (groups == 1)  # (N, C k + 1, P): the ones row
        g = rng.standard_normal(y.shape).astype(dtype)
        grad_w = K.conv_backward_weight(x, g, w.shape, *args, workspace)
        assert ("bias_grad" in workspace) == (groups == 1)
        grad_b = K.conv_backward_bias(g, workspace)
    assert workspace == {}  # everything taken
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, R.conv(x64, w64, b.astype(np.float64), *args), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad_b, g64.sum(axis=(0, 2, 3)), rtol=tol, atol=tol)
    assert grad_b.dtype == dtype and grad_b.shape == b.shape
    y0 = R.conv(x64, w64, None, *args)
    np.testing.assert_allclose(np.vdot(y0, g64), np.vdot(w64, grad_w), rtol=tol)
    with cl.conv_algorithm("gemm"):  # without a workspace: no bias row kept, same gradients
        np.testing.assert_allclose(K.conv_backward_weight(x, g, w.shape, *args), grad_w, rtol=tol)


@pytest.mark.parametrize("policy", ["auto", "gemm", "benchmark"])
@pytest.mark.parametrize(
    "x_shape,w_shape,stride,padding,groups",
    [
        ((6, 6, 14, 14), (16, 6, 5, 5), (1, 1), ((0, 0), (0, 0)), 1),  # LeNet conv2: merged
        ((5, 4, 9, 8), (6, 2, 3, 3), (2, 1), ((1, 1), (0, 2)), 2),
        ((3, 8, 12, 12), (8, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), 8),  # depthwise: not gemm
        ((4, 3, 30), (5, 3, 7), (1,), ((3, 3),), 1),
    ],
)
def test_both_gradients_in_one_split_equal_the_separate_passes(
    x_shape, w_shape, stride, padding, groups, policy, monkeypatch
):
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 0)  # split even these small layers
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    dilation = (1,) * len(stride)
    args = (stride, padding, dilation, groups)
    with cl.conv_algorithm(policy):
        kept, fresh = {}, {}
        y = K.conv_forward(x, w, b, *args, kept)
        K.conv_forward(x, w, b, *args, fresh)
        g = rng.standard_normal(y.shape)
        grad_x, grad_w = K.conv_backward(x, g, w, *args, kept)
        grad_b = K.conv_backward_bias(g, kept)
        separate_w = K.conv_backward_weight(x, g, w.shape, *args, fresh)
        separate_x = K.conv_backward_input(g, w, x.shape, *args)
        separate_b = K.conv_backward_bias(g, fresh)
    np.testing.assert_allclose(grad_x, separate_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_w, separate_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_b, separate_b, rtol=1e-12, atol=1e-12)
    y0 = R.conv(x, w, None, *args)
    np.testing.assert_allclose(np.vdot(y0, g), np.vdot(x, grad_x), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y0, g), np.vdot(w, grad_w), rtol=1e-10)
    assert kept == {} and fresh == {}


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_chunks_over_the_batch_with_a_ragged_last_chunk(groups, stride, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 2 * groups, 9, 8))
    w = rng.standard_normal((3 * groups, 2, 3, 3))
    args = ((stride, stride), ((1, 1), (0, 2)), (1, 1), groups)
    y = R.conv(x, w, None, *args)
    g = rng.standard_normal(y.shape)
    whole = (
        K.conv_forward(x, w, None, *args),
        K.conv_backward_input(g, w, x.shape, *args),
        K.conv_backward_weight(x, g, w.shape, *args),
    )
    # One sample's columns are 2*groups*9*~72*8 bytes: 3 samples per chunk, the last has 1.
    monkeypatch.setattr(K, "CHUNK_BYTES", 3 * 2 * groups * 9 * 72 * 8)
    chunked = (
        K.conv_forward(x, w, None, *args),
        K.conv_backward_input(g, w, x.shape, *args),
        K.conv_backward_weight(x, g, w.shape, *args),
    )
    np.testing.assert_allclose(chunked[0], y, rtol=1e-12, atol=1e-12)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
def test_forward_keeps_columns_for_the_weight_gradient(stride, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 10, 10))
    w = rng.standard_normal((5, 3, 3, 3))
    args = ((stride, stride), ((1, 1), (1, 1)), (1, 1), 1)
    workspace = {}
    y = K.conv_forward(x, w, None, *args, workspace)
    assert "cols" in workspace
    g = rng.standard_normal(y.shape)
    kept = K.conv_backward_weight(x, g, w.shape, *args, workspace)
    assert workspace == {}  # taken and freed
    np.testing.assert_allclose(kept, K.conv_backward_weight(x, g, w.shape, *args), rtol=1e-12)
    # Too big to keep: nothing is kept, the gradient recomputes the columns.
    monkeypatch.setattr(K, "KEEP_COLS_BYTES", 8)
    workspace = {}
    K.conv_forward(x, w, None, *args, workspace)
    assert workspace == {}


# ---------------------------------------------------------------------------------------------
# Max pooling over tiling windows
# ---------------------------------------------------------------------------------------------


def _pool_path(numba, monkeypatch) -> None:
    """numba's tiling kernels ("parallel": split over threads, "serial") or NumPy's passes."""
    if numba and not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    monkeypatch.setattr(_jit, "numba_available", lambda: bool(numba))
    monkeypatch.setattr(P, "NUMBA_MIN_SIZE", 0)
    monkeypatch.setattr(P, "NUMBA_PARALLEL_MIN_SIZE", 0 if numba == "parallel" else 1 << 40)
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 0)


def _general_max_pool(x, kernel, g):
    """The NumPy general kernel's out, arg and gradient (numba off)."""
    zeros, ones = (0,) * len(kernel), (1,) * len(kernel)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_jit, "numba_available", lambda: False)
        out, arg = P.max_pool_forward(x, kernel, kernel, zeros, ones)
        grad = P.max_pool_backward(g, arg, x.shape[2:], kernel, kernel, zeros, ones)
    return out, arg, grad


@pytest.mark.parametrize("numba", ["parallel", "serial", False])
@pytest.mark.parametrize("kernel", [(2,), (2, 2), (3, 2), (2, 2, 2), (1, 1)])
@pytest.mark.parametrize("extra,finite", [(1, False), (1, True), (0, True), (0, False), (3, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiling_max_pool_matches_the_general_kernel_with_ties(
    kernel, numba, extra, finite, dtype, monkeypatch
):
    rng = np.random.default_rng(5)
    # extra > 0: floor mode drops the last rows/columns, which must get a zero gradient
    spatial = tuple(4 * k + extra for k in kernel)
    # Small integers: many ties, which must go to the first offset, as in PyTorch.
    x = rng.integers(-2, 3, (2, 3, *spatial)).astype(dtype)
    out_spatial = tuple(s // k for s, k in zip(spatial, kernel))
    g = rng.standard_normal((2, 3, *out_spatial)).astype(dtype)
    if not finite:
        g.flat[::5] = np.inf  # non-finite gradients must not leak NaN into the losers
    out, arg, grad = _general_max_pool(x, kernel, g)
    _pool_path(numba, monkeypatch)
    zeros, ones = (0,) * len(kernel), (1,) * len(kernel)
    # the general kernel's numba pass (2-d), argmax included
    fast_out, fast_arg = P.max_pool_forward(x, kernel, kernel, zeros, ones)
    np.testing.assert_array_equal(fast_out, out)
    np.testing.assert_array_equal(fast_arg, arg)
    fast_grad = P.max_pool_backward(g, arg, spatial, kernel, kernel, zeros, ones)
    np.testing.assert_array_equal(fast_grad, grad)
    # the NumPy tiling passes, which find the argmax again in the backward
    np.testing.assert_array_equal(P.max_pool_tiles_forward(x, kernel), out)
    np.testing.assert_array_equal(P.max_pool_tiles_backward(g, x, out, kernel), grad)


@pytest.mark.parametrize("numba", ["parallel", "serial"])
@pytest.mark.parametrize("kernel", [(2, 2), (3, 2)])
def test_numba_tiling_max_pool_keeps_the_last_nan_like_the_general_kernel(
    kernel, numba, monkeypatch
):
    rng = np.random.default_rng(8)
    x = rng.integers(-2, 3, (2, 3, 4 * kernel[0] + 1, 4 * kernel[1])).astype(np.float32)
    x.flat[::3] = np.nan  # windows with one NaN, several, or none
    x.flat[1::7] = np.inf
    g = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    out, arg, grad = _general_max_pool(x, kernel, g)
    _pool_path(numba, monkeypatch)
    zeros, ones = (0, 0), (1, 1)
    fast_out, fast_arg = P.max_pool_forward(x, kernel, kernel, zeros, ones)
    np.testing.assert_array_equal(fast_out, out)  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(fast_arg, arg)
    fast_grad = P.max_pool_backward(g, arg, x.shape[2:], kernel, kernel, zeros, ones)
    np.testing.assert_array_equal(fast_grad, grad)


def test_tiling_rule():
    assert P.max_pool_tiles((2, 2), (2, 2), (0, 0), (1, 1))
    assert not P.max_pool_tiles((2, 2), (1, 1), (0, 0), (1, 1))
    assert not P.max_pool_tiles((2, 2), (2, 2), (1, 0), (1, 1))
    assert not P.max_pool_tiles((2, 2), (2, 2), (0, 0), (2, 1))


@pytest.mark.parametrize("numba", ["parallel", "serial", False])
def test_max_pool_fast_path_matches_torch_with_ties_and_nan(torch, numba, monkeypatch):
    import convlab as cl
    import convlab.nn.functional as F

    _pool_path(numba, monkeypatch)
    rng = np.random.default_rng(6)
    x = np.maximum(rng.standard_normal((4, 3, 8, 8)), 0).astype(np.float32)  # ReLU'd: ties at 0
    x[0, 0, 0, 0] = np.nan  # a NaN input takes the general path for the whole call
    for data in (x[1:], x):
        ours = cl.tensor(data, requires_grad=True)
        theirs = torch.tensor(data, requires_grad=True)
        y = F.max_pool2d(ours, 2)
        yt = torch.nn.functional.max_pool2d(theirs, 2)
        np.testing.assert_array_equal(y.data, yt.detach().numpy())
        g = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(cl.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())


def test_relu_backward_with_non_finite_gradients_matches_torch(torch):
    import convlab as cl
    import convlab.nn.functional as F

    x = np.array([-1.0, 0.0, 2.0, -3.0, 4.0], np.float32)
    g = np.array([np.inf, np.nan, 1.0, -np.inf, np.nan], np.float32)
    ours = cl.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    F.relu(ours).backward(cl.tensor(g))
    torch.relu(theirs).backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())
    assert ours.grad.data[0] == 0 and ours.grad.data[1] == 0  # not NaN


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_at_nan_inputs_passes_the_gradient_as_torch(torch, dtype):
    import convlab as cl
    import convlab.nn.functional as F

    x = np.array([np.nan, -0.0, 0.0, 2.0, -3.0, np.inf, -np.inf], dtype)
    g = np.arange(1, 8).astype(dtype)  # finite: the multiply path
    ours = cl.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    F.relu(ours).backward(cl.tensor(g))
    torch.relu(theirs).backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())
    assert ours.grad.data[0] == 1  # NaN <= 0 is false: the gradient passes


@pytest.mark.parametrize("c_out", [3, 33])  # shifted-gradient input-gradient, and plain fold
@pytest.mark.parametrize("n_spatial", [1, 2, 3])
def test_wide_input_gradient_both_ways(c_out, n_spatial):
    rng = np.random.default_rng(8)
    spatial = (6, 5, 4)[:n_spatial]
    kernel = (3, 2, 3)[:n_spatial]
    x = rng.standard_normal((2, 3, *spatial))
    w = rng.standard_normal((c_out, 3, *kernel))
    args = ((1,) * n_spatial, ((1, 2),) * n_spatial, (2,) + (1,) * (n_spatial - 1), 1)
    y = R.conv(x, w, None, *args)
    g = rng.standard_normal(y.shape)
    grad_x = K.conv_backward_input(g, w, x.shape, *args)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, grad_x), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "spatial,kernel,padding,dilation",
    [
        ((14, 14), (5, 5), ((0, 0), (0, 0)), (1, 1)),  # LeNet conv2
        ((12, 11), (3, 4), ((2, 1), (0, 3)), (2, 1)),
        ((30,), (7,), ((3, 3),), (1,)),  # conv1d (W4)
        ((17,), (4,), ((0, 5),), (3,)),
    ],
)
def test_shifted_input_gradient_by_numba_equals_numpy_passes(
    spatial, kernel, padding, dilation, dtype, monkeypatch
):
    if not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    rng = np.random.default_rng(sum(spatial) + len(kernel))
    n, c_in, c_out = 7, 6, 4  # 4 output channels: the shifted gradient is chosen
    x = rng.standard_normal((n, c_in, *spatial)).astype(dtype)
    w = rng.standard_normal((c_out, c_in, *kernel)).astype(dtype)
    stride = (1,) * len(kernel)
    args = (stride, padding, dilation, 1)
    y = R.conv(x.astype(np.float64), w.astype(np.float64), None, *args)
    g = rng.standard_normal(y.shape).astype(dtype)
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 0)  # split over threads too
    monkeypatch.setattr(K, "CHUNK_BYTES", 1)  # one sample per chunk
    by_numba = K._conv_input_grad(g, w, x.shape, *args)
    with monkeypatch.context() as patch:
        patch.setattr(_jit, "numba_available", lambda: False)
        by_numpy = K._conv_input_grad(g, w, x.shape, *args)
    np.testing.assert_array_equal(by_numba, by_numpy)  # the same sums in the same order
    with monkeypatch.context() as patch:  # im2col's col2im, in float64: no wide layout at all
        patch.setattr(K, "_wide_geometry", lambda *args: None)
        exact = K._conv_input_grad(g.astype(np.float64), w.astype(np.float64), x.shape, *args)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(by_numba, exact, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, by_numba), rtol=tol)
    # into a target that is not contiguous (a reshape would copy): written back in place
    out_spatial = y.shape[2:]
    wide = K._wide_geometry(spatial, kernel, stride, padding, dilation, out_spatial)
    assert wide is not None  # the layout the shifted gradient needs
    target = np.full((n, 2 * c_in, *spatial), np.nan, dtype)[:, ::2]
    wide.input_grad_numba(g, w, target)
    np.testing.assert_array_equal(target, by_numpy)


@pytest.mark.parametrize("keep", [True, False])
def test_columns_whose_rows_are_4kib_long_are_padded_and_still_right(keep):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 514))  # 512 outputs of 8 bytes: 4 KiB rows
    w = rng.standard_normal((4, 3, 3))
    args = ((1,), ((0, 0),), (1,), 1)
    windows = K._Wide((514,), (3,), ((0, 0),), (1,), (512,)).columns(
        K._Wide((514,), (3,), ((0, 0),), (1,), (512,)).flat_input(x)
    )
    padded = K._column_buffer(windows.shape, windows.dtype)
    np.copyto(padded, windows)
    assert padded.strides[-2] == (512 + 8) * 8  # rows spaced 64 bytes wider
    np.testing.assert_array_equal(padded, windows)
    workspace = {} if keep else None
    y = K.conv_forward(x, w, None, *args, workspace)
    np.testing.assert_allclose(y, R.conv(x, w, None, *args), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    grad_w = K.conv_backward_weight(x, g, w.shape, *args, workspace)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(w, grad_w), rtol=1e-10)


def _relu_path(numba: bool, monkeypatch) -> None:
    """Force the numba kernels (every size) or NumPy's calls in ``pointwise``."""
    from convlab.kernels import pointwise

    if numba and not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    monkeypatch.setattr(_jit, "numba_available", lambda: numba)
    monkeypatch.setattr(pointwise, "NUMBA_MIN_SIZE", 0)


def _special_values(size: int, dtype, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(size).astype(dtype)
    x[:: max(1, size // 7)] = np.nan
    x[1::11] = -np.inf
    x[2::13] = np.inf
    x[3::17] = -0.0
    x[4::19] = 0.0
    return x


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 1000, (1 << 16) + 3, 3 * (1 << 16)])
def test_relu_kernel_in_blocks_matches_maximum(dtype, size, numba, monkeypatch):
    from convlab.kernels import pointwise

    _relu_path(numba, monkeypatch)
    x = _special_values(size, dtype, size)
    got = pointwise.relu(x.reshape(1, -1))
    want = np.maximum(x, dtype(0)).reshape(1, -1)
    assert got.dtype == x.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN stays NaN; -0.0 == 0.0
    strided = pointwise.relu(x[::2])  # not contiguous: NumPy's own call
    np.testing.assert_array_equal(strided, np.maximum(x[::2], dtype(0)))


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 1000, 5000])
def test_relu_backward_passes_gradient_where_result_is_not_zero(dtype, size, numba, monkeypatch):
    from convlab.kernels import pointwise

    _relu_path(numba, monkeypatch)
    out = pointwise.relu(_special_values(size, dtype, size + 1))
    g = _special_values(size, dtype, size + 2)  # NaN and inf in the gradient too
    got = pointwise.relu_backward(g, out)
    # From the definition, element by element (PyTorch's threshold_backward: out <= 0 ? 0 : g).
    want = np.array([0 if o <= 0 else v for o, v in zip(out.tolist(), g.tolist())], dtype)
    assert got.dtype == g.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("kernel", [(2, 2), (3, 2)])
def test_tiling_max_pool_forward_propagates_nan_as_maximum(kernel, numba, monkeypatch):
    if numba and not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    monkeypatch.setattr(_jit, "numba_available", lambda: numba)
    monkeypatch.setattr(P, "NUMBA_MIN_SIZE", 0)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    x.flat[::7] = np.nan
    x.flat[3::11] = np.inf
    x.flat[5::13] = -np.inf
    out = P.max_pool_tiles_forward(x, kernel)
    ho, wo = 7 // kernel[0], 9 // kernel[1]
    windows = x[..., : ho * kernel[0], : wo * kernel[1]].reshape(2, 3, ho, kernel[0], wo, kernel[1])
    expected = np.max(windows, axis=(3, 5))  # np.max propagates NaN too
    np.testing.assert_array_equal(out, expected)


STRIDED_CASES = [
    # (input spatial, kernel, stride, padding, dilation, groups)
    ((12, 11), (4, 4), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),  # W3's transposed convolution
    ((13, 9), (3, 2), (2, 3), ((1, 0), (2, 1)), (1, 2), 2),
    ((10, 10), (1, 1), (3, 3), ((0, 0), (0, 0)), (1, 1), 1),  # taps in one phase only
    ((17,), (5,), (3,), ((2, 1),), (2,), 1),
    ((7, 12, 16), (2, 3, 2), (2, 1, 2), ((0, 1), (1, 1), (0, 0)), (1, 1, 2), 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "spatial,kernel,stride,padding,dilation,groups",
    [case for case in STRIDED_CASES if len(case[0]) <= 2]
    + [((9, 7), (2, 2), (3, 3), ((0, 0), (0, 0)), (1, 1), 1)],  # phases no tap reaches
)
def test_phase_fold_by_numba_equals_numpy_passes(
    spatial, kernel, stride, padding, dilation, groups, dtype
):
    if not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    out_spatial = K._padded_out(spatial, kernel, stride, padding, dilation)
    fold = K._PhaseFold(spatial, kernel, stride, padding, dilation, out_spatial)
    rng = np.random.default_rng(sum(spatial) + sum(stride))
    cols = rng.standard_normal((3, 4, math.prod(kernel), fold.length)).astype(dtype)
    by_numpy = np.zeros((3, 4, *spatial), dtype)
    fold.fold(cols, by_numpy)
    by_numba = np.full((3, 4, *spatial), np.nan, dtype)  # every element is written
    fold.fold_numba(cols, by_numba)
    np.testing.assert_array_equal(by_numba, by_numpy)  # the same sums in the same order


@pytest.mark.parametrize("spatial,kernel,stride,padding,dilation,groups", STRIDED_CASES)
def test_strided_input_gradient_by_phases_matches_col2im(
    spatial, kernel, stride, padding, dilation, groups, monkeypatch
):
    out = K._padded_out(spatial, kernel, stride, padding, dilation)
    assert K._phase_fold(spatial, kernel, stride, padding, dilation, out) is not None
    rng = np.random.default_rng(len(spatial) + sum(stride))
    x = rng.standard_normal((3, 2 * groups, *spatial))
    w = rng.standard_normal((3 * groups, 2, *kernel))
    args = (stride, padding, dilation, groups)
    y = R.conv(x, w, None, *args)
    g = rng.standard_normal(y.shape)
    with cl.conv_algorithm("gemm"):
        by_phases = K.conv_backward_input(g, w, x.shape, *args)
        monkeypatch.setattr(K, "_phase_fold", lambda *args: None)
        by_col2im = K.conv_backward_input(g, w, x.shape, *args)
    np.testing.assert_allclose(by_phases, by_col2im, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, by_phases), rtol=1e-10)


@pytest.mark.parametrize("keep_limit", [K.KEEP_COLS_BYTES, 0])  # kept, or built twice
@pytest.mark.parametrize(
    "x_shape,w_shape,stride,padding,dilation,groups",
    [
        ((4, 6, 7, 7), (6, 3, 4, 4), (2, 2), (1, 1), (1, 1), 1),  # W3's geometry, small
        ((3, 4, 5, 6), (4, 3, 3, 3), (1, 1), (1, 0), (1, 1), 2),  # stride 1: wide columns
        ((3, 4, 5, 6), (4, 3, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # pointwise: g is its columns
        ((2, 3, 9), (3, 2, 5), (3,), (2,), (2,), 1),
        ((2, 2, 3, 4, 3), (2, 2, 2, 3, 2), (2, 1, 1), (0, 1, 0), (1, 1, 2), 1),
    ],
)
def test_transposed_gradients_from_one_set_of_columns_equal_the_separate_passes(
    x_shape, w_shape, stride, padding, dilation, groups, keep_limit, monkeypatch
):
    monkeypatch.setattr(K, "KEEP_COLS_BYTES", keep_limit)
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 0)
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    y = K.conv_transpose_forward(x, w, None, stride, padding, (0,) * len(stride), dilation, groups)
    g = rng.standard_normal(y.shape)
    args = (stride, padding, dilation, groups)
    grad_x, grad_w = K.conv_transpose_backward(x, g, w, *args)
    separate_x = K.conv_transpose_backward_input(g, w, x.shape, *args)
    separate_w = K.conv_transpose_backward_weight(x, g, w.shape, *args)
    np.testing.assert_allclose(grad_x, separate_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_w, separate_w, rtol=1e-12, atol=1e-12)
    # the adjoint identities: <y, g> = <x, grad_x> = <w, grad_w> (y is linear in x and in w)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, grad_x), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(w, grad_w), rtol=1e-10)
