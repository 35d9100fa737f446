"""Resampling kernels on ndarrays: interpolation, pixel shuffle, unfold and fold.

Interpolation is separable: along each spatial dimension the output is a fixed linear map of
the input, ``y[..., i, ...] = sum_j W[i, j] x[..., j, ...]``. Every mode (nearest, linear,
cubic, area, and the antialiased filters) is just a different sparse matrix ``W`` per dimension,
built here as coordinate lists ``(rows, cols, vals)`` from PyTorch's index formulas
(``aten/src/ATen/native/UpSample.h``). The forward pass applies ``W`` along each dimension; the
backward pass applies ``W^T``, its adjoint, with the same routine.

The index arithmetic mirrors PyTorch's, including its precision: source coordinates are
computed in the input's precision (float32 for float32 and float16, with the fused multiply-add
PyTorch's build uses), and rounded to float32 before being floored (``floorf``). Arguments are
canonical (checked by ``convlab.nn.functional``); only assertions guard internal invariants.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from convlab.kernels.conv import col2im, im2col

__all__ = [
    "AxisMap",
    "axis_map",
    "interpolate_forward",
    "interpolate_backward",
    "adaptive_bins",
    "pixel_shuffle",
    "pixel_unshuffle",
    "unfold",
    "fold",
]

CUBIC_A = -0.75  # Keys' cubic-convolution parameter used by PyTorch (and OpenCV)
CUBIC_AA_A = -0.5  # the antialiased bicubic filter uses Keys' own value (as PIL does)
MODES = ("nearest", "nearest-exact", "linear", "cubic", "area", "lanczos")


class AxisMap(NamedTuple):
    """The sparse matrix ``W`` (out_size x in_size) of one dimension, in coordinate form.

    ``rows`` is sorted (non-decreasing); ``vals`` is None when every entry is 1 (nearest).
    """

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray | None
    out_size: int
    in_size: int


def _opmath(dtype: np.dtype) -> type:
    """The precision PyTorch computes coordinates and weights in for ``dtype``."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


# ---------------------------------------------------------------------------------------------
# Scales and source coordinates (UpSample.h)
# ---------------------------------------------------------------------------------------------


def _scales_value(in_size: int, out_size: int, scale: float | None, ft: type):
    """``compute_scales_value``: ``1 / scale_factor`` when one was given, else ``in / out``."""
    if scale is not None and scale > 0:
        return ft(1.0 / scale)
    return ft(in_size) / ft(out_size)


def _area_pixel_scale(in_size: int, out_size: int, align_corners: bool, scale, ft: type):
    """``area_pixel_compute_scale``: the step between source coordinates of neighbours."""
    if align_corners:
        return ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
    return _scales_value(in_size, out_size, scale, ft)


def _source_coords(in_size, out_size, align_corners, scale, ft, cubic: bool) -> np.ndarray:
    """``area_pixel_compute_source_index`` for every output index, in precision ``ft``."""
    step = _area_pixel_scale(in_size, out_size, align_corners, scale, ft)
    dst = np.arange(out_size, dtype=ft)
    if align_corners:
        return step * dst
    if ft is np.float32:
        # PyTorch's build contracts ``scale * (dst + 0.5) - 0.5`` into one fused multiply-add:
        # exact in float64 here (24-bit operands), then rounded once to float32.
        src = (np.float64(step) * (dst + ft(0.5)) - 0.5).astype(ft)
    else:
        src = step * (dst + ft(0.5)) - ft(0.5)
    # Half-pixel centres can fall left of pixel 0: linear modes clamp, cubic extrapolates.
    return src if cubic else np.maximum(src, ft(0))


def _floor_index(src: np.ndarray, in_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``guard_index_and_lambda``: the left neighbour and the fraction past it, clamped."""
    # PyTorch floors with floorf, i.e. after rounding to float32, even for float64 inputs.
    index = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)
    frac = np.clip(src - index.astype(src.dtype), 0, 1).astype(src.dtype)
    return index, frac


# ---------------------------------------------------------------------------------------------
# One AxisMap per mode
# ---------------------------------------------------------------------------------------------


def _dense_rows(index: np.ndarray, weights: np.ndarray | None, in_size: int) -> AxisMap:
    """Coordinate form of a matrix given as ``taps`` entries per row: ``index[i, t]``."""
    out_size, taps = index.shape
    rows = np.repeat(np.arange(out_size), taps)
    vals = None if weights is None else weights.reshape(-1)
    return AxisMap(rows, index.reshape(-1), vals, out_size, in_size)


def _nearest(in_size: int, out_size: int, scale, exact: bool, legacy: bool, ft) -> AxisMap:
    dst = np.arange(out_size)
    step = _scales_value(in_size, out_size, scale, ft)
    # Coordinates in the data's precision (float32 for float32), floored after rounding to
    # float32 (floorf), as HelperInterpNearest does.
    src = step * (dst.astype(ft) + ft(0.5)) if exact else step * dst.astype(ft)
    index = np.floor(src.astype(np.float32)).astype(np.int64)
    if legacy and not exact and out_size == in_size:  # nearest_idx ignores the scale here
        index = dst
    elif legacy and not exact and out_size == 2 * in_size:
        index = dst >> 1
    index = np.minimum(index, in_size - 1)
    return _dense_rows(index[:, None], None, in_size)


def _linear(in_size, out_size, align_corners, scale, ft) -> AxisMap:
    if out_size == in_size:  # PyTorch copies, whatever the scale factor
        return _dense_rows(np.arange(out_size)[:, None], np.ones((out_size, 1), ft), in_size)
    src = _source_coords(in_size, out_size, align_corners, scale, ft, cubic=False)
    i0, lam1 = _floor_index(src, in_size)
    i1 = i0 + (i0 < in_size - 1)
    lam0 = ft(1) - lam1
    return _dense_rows(np.stack([i0, i1], 1), np.stack([lam0, lam1], 1), in_size)


def _cubic_coefficients(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic-convolution weights of the 4 taps at offsets -1, 0, 1, 2 from ``floor``."""
    ft = t.dtype.type
    a = ft(a)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    one = ft(1)
    return np.stack([far(t + one), near(t), near(one - t), far(one - t + one)], 1)


def _cubic(in_size, out_size, align_corners, scale, ft) -> AxisMap:
    src = _source_coords(in_size, out_size, align_corners, scale, ft, cubic=True)
    i0, t = _floor_index(src, in_size)
    # Taps beyond the border repeat the edge pixel (upsample_get_value_bounded).
    index = np.clip(i0[:, None] + np.arange(-1, 3), 0, in_size - 1)
    return _dense_rows(index, _cubic_coefficients(t, CUBIC_A), in_size)


def adaptive_bins(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive pooling bins ``[floor(i*in/out), ceil((i+1)*in/out))`` for every output ``i``.

    Bins overlap when ``in`` is not a multiple of ``out``: 10 -> 4 gives [0,3), [2,5), [5,8),
    [7,10).
    """
    i = np.arange(out_size)
    start = (i * in_size) // out_size
    end = -((-(i + 1) * in_size) // out_size)
    return start, end


def _area(in_size: int, out_size: int, ft) -> AxisMap:
    start, end = adaptive_bins(in_size, out_size)
    length = end - start
    rows = np.repeat(np.arange(out_size), length)
    first = np.repeat(np.cumsum(length) - length, length)
    cols = np.repeat(start, length) + np.arange(rows.size) - first
    vals = (ft(1) / length.astype(ft))[rows]
    return AxisMap(rows, cols, vals, out_size, in_size)


def _aa_filter(mode: str, x: np.ndarray) -> np.ndarray:
    ft = x.dtype.type
    x = np.abs(x)
    if mode == "linear":
        return np.maximum(ft(1) - x, ft(0))
    if mode == "cubic":
        a = ft(CUBIC_AA_A)
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x < 1, near, np.where(x < 2, far, ft(0))).astype(ft)
    # Lanczos-3: sinc(x) sinc(x / 3) on |x| < 3.
    with np.errstate(invalid="ignore", divide="ignore"):
        px = ft(math.pi) * x
        value = ft(3) * np.sin(px) * np.sin(px / ft(3)) / (px * px)
    return np.where(x < 3, np.where(x == 0, ft(1), value), ft(0)).astype(ft)


_AA_TAPS = {"linear": 2, "cubic": 4, "lanczos": 6}


def _antialiased(mode, in_size, out_size, align_corners, scale, ft) -> AxisMap:
    """Filter weights widened by the downsampling factor and normalised to sum to one.

    PyTorch's ``_compute_indices_min_size_weights_aa`` (PIL's resampling filters).
    """
    taps = _AA_TAPS[mode]
    step = _area_pixel_scale(in_size, out_size, align_corners, scale, ft)
    support = ft(taps * 0.5) * step if step >= 1 else ft(taps * 0.5)
    width = int(math.ceil(support)) * 2 + 1
    invscale = ft(1) / step if step >= 1 else ft(1)
    center = step * (np.arange(out_size, dtype=ft) + ft(0.5))
    # C++ adds the double literal 0.5, so these sums are in float64; int() truncates.
    lo = (center - support).astype(np.float64) + 0.5
    hi = (center + support).astype(np.float64) + 0.5
    xmin = np.maximum(lo.astype(np.int64), 0)
    xsize = np.minimum(hi.astype(np.int64), in_size) - xmin
    xsize = np.clip(xsize, 0, width)
    j = np.arange(width)
    index = xmin[:, None] + j
    weights = _aa_filter(mode, (index - center[:, None] + ft(0.5)).astype(ft) * invscale)
    weights = np.where(j < xsize[:, None], weights, ft(0)).astype(ft)
    total = weights.sum(axis=1, keepdims=True, dtype=ft)
    weights = np.where(total != 0, weights / np.where(total != 0, total, ft(1)), weights)
    keep = (j < xsize[:, None]).reshape(-1)
    full = _dense_rows(np.minimum(index, in_size - 1), weights.astype(ft), in_size)
    return AxisMap(full.rows[keep], full.cols[keep], full.vals[keep], out_size, in_size)


def axis_map(
    mode: str,
    in_size: int,
    out_size: int,
    align_corners: bool = False,
    scale: float | None = None,
    antialias: bool = False,
    dtype=np.float64,
    legacy_nearest: bool = False,
) -> AxisMap:
    """The interpolation matrix of one dimension, in PyTorch's arithmetic for ``dtype``.

    Args:
        mode: ``'nearest'``, ``'nearest-exact'``, ``'linear'``, ``'cubic'``, ``'area'`` or
            ``'lanczos'`` (the last antialiased only).
        in_size, out_size: lengths of the dimension before and after.
        align_corners: map the corner pixel centres onto each other (linear and cubic).
        scale: the user's ``scale_factor`` for this dimension, or None; when given, the mapping
            uses ``1 / scale`` instead of ``in / out``.
        antialias: widen the linear/cubic filter by the downsampling factor.
        dtype: the data's dtype, which fixes the precision of the coordinates.
        legacy_nearest: apply ``nearest_idx``'s special cases, which copy when ``out == in``
            and take ``dst // 2`` when ``out == 2 in`` whatever the scale factor. PyTorch's 2-D
            nearest forward does; its 1-D and 3-D forwards do not.
    """
    assert mode in MODES, mode
    ft = _opmath(dtype)
    if mode in ("nearest", "nearest-exact"):
        return _nearest(in_size, out_size, scale, mode == "nearest-exact", legacy_nearest, ft)
    if mode == "area":
        return _area(in_size, out_size, ft)
    if (antialias or mode == "lanczos") and in_size == out_size:
        # The separable antialiased kernel skips a dimension whose size does not change.
        return _dense_rows(np.arange(out_size)[:, None], np.ones((out_size, 1), ft), in_size)
    if antialias or mode == "lanczos":
        return _antialiased(mode, in_size, out_size, align_corners, scale, ft)
    if mode == "linear":
        return _linear(in_size, out_size, align_corners, scale, ft)
    return _cubic(in_size, out_size, align_corners, scale, ft)


# ---------------------------------------------------------------------------------------------
# Applying the per-dimension matrices
# ---------------------------------------------------------------------------------------------


def _apply(x: np.ndarray, axis: int, rows, cols, vals, out_size: int) -> np.ndarray:
    """``y[..., r, ...] = sum over entries (r, c, v) of v * x[..., c, ...]``; rows sorted."""
    shape = list(x.shape)
    shape[axis] = out_size
    if rows.size == 0 or x.size == 0:
        return np.zeros(shape, x.dtype)
    taps = rows.size // out_size
    if taps * out_size == rows.size and np.array_equal(rows, np.repeat(np.arange(out_size), taps)):
        return _apply_taps(x, axis, cols.reshape(out_size, taps), vals, taps)
    gathered = np.take(x, cols, axis=axis)
    if vals is not None:
        bshape = [1] * x.ndim
        bshape[axis] = vals.size
        gathered *= vals.astype(x.dtype, copy=False).reshape(bshape)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    if starts.size == rows.size and starts.size == out_size:
        return gathered  # one entry per row, every row present: a permutation-free gather
    summed = np.add.reduceat(gathered, starts, axis=axis)
    if starts.size == out_size:
        return summed
    out = np.zeros(shape, x.dtype)
    index = [slice(None)] * x.ndim
    index[axis] = rows[starts]
    out[tuple(index)] = summed
    return out


def _apply_taps(x: np.ndarray, axis: int, index: np.ndarray, vals, taps: int) -> np.ndarray:
    """The same product when every row has ``taps`` entries: one gather per tap, no scatter."""
    bshape = [1] * x.ndim
    bshape[axis] = index.shape[0]
    weights = None if vals is None else vals.astype(x.dtype, copy=False).reshape(-1, taps)
    out = None
    for t in range(taps):
        term = np.take(x, index[:, t], axis=axis)
        if weights is not None:
            term *= weights[:, t].reshape(bshape)
        if out is None:
            out = term
        else:
            out += term
    return out


def _order(maps: list[AxisMap]) -> list[int]:
    # Shrinking dimensions first keeps the intermediate arrays small.
    return sorted(range(len(maps)), key=lambda d: maps[d].out_size / max(maps[d].in_size, 1))


def interpolate_forward(x: np.ndarray, maps: list[AxisMap]) -> np.ndarray:
    """Apply one :class:`AxisMap` per spatial dimension of ``x`` ``(N, C, *spatial)``."""
    assert len(maps) == x.ndim - 2
    y = x
    for d in _order(maps):
        m = maps[d]
        y = _apply(y, 2 + d, m.rows, m.cols, m.vals, m.out_size)
    return y if y is not x else x.copy()


def interpolate_backward(grad_out: np.ndarray, maps: list[AxisMap]) -> np.ndarray:
    """The adjoint of :func:`interpolate_forward`: apply each ``W^T``."""
    g = grad_out
    for d in reversed(_order(maps)):
        m = maps[d]
        order = np.argsort(m.cols, kind="stable")
        vals = None if m.vals is None else m.vals[order]
        g = _apply(g, 2 + d, m.cols[order], m.rows[order], vals, m.in_size)
    return g if g is not grad_out else grad_out.copy()


# ---------------------------------------------------------------------------------------------
# Pixel shuffle
# ---------------------------------------------------------------------------------------------


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """``(*, C r^2, H, W) -> (*, C, H r, W r)``.

    ``y[..., c, h r + i, w r + j] = x[..., c r^2 + i r + j, h, w]``.
    """
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2).copy()  # never a view of x
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    """``(*, C, H r, W r) -> (*, C r^2, H, W)``, the inverse (and adjoint) of pixel_shuffle."""
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3).copy()
    return y.reshape(*lead, c * r * r, h // r, w // r)


# ---------------------------------------------------------------------------------------------
# Unfold / fold (im2col / col2im in PyTorch's layout)
# ---------------------------------------------------------------------------------------------


def unfold(
    x: np.ndarray,
    kernel: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: tuple[int, ...],
    stride: tuple[int, ...],
) -> np.ndarray:
    """Sliding blocks as columns: ``(N, C, *S) -> (N, C * prod(kernel), L)``.

    Column ``l`` (block positions in row-major order) holds the block's values ordered by
    channel, then kernel offset.
    """
    n, c = x.shape[:2]
    cols = im2col(x, kernel, stride, tuple((p, p) for p in padding), dilation)
    return cols.reshape(n, c * math.prod(kernel), math.prod(cols.shape[2 + len(kernel) :]))


def fold(
    cols: np.ndarray,
    output_size: tuple[int, ...],
    kernel: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: tuple[int, ...],
    stride: tuple[int, ...],
    blocks: tuple[int, ...],
) -> np.ndarray:
    """The adjoint of :func:`unfold`: ``(N, C * prod(kernel), L) -> (N, C, *output_size)``.

    Each column is added back onto the positions it was taken from, so overlaps sum.
    ``blocks`` is the number of block positions per dimension (``L = prod(blocks)``).
    """
    n = cols.shape[0]
    c = cols.shape[1] // math.prod(kernel)
    grid = cols.reshape(n, c, *kernel, *blocks)
    return col2im(
        grid, (n, c, *output_size), kernel, stride, tuple((p, p) for p in padding), dilation
    )
