"""N-d pooling on ndarrays: max, average, power-average, adaptive, and max-unpooling.

Every function takes arrays ``(*lead, *spatial)``: the last ``len(kernel)`` (or
``len(output_size)``) dimensions are pooled and any leading ones (batch, channels, or only
channels for unbatched input) are carried along. Arguments are canonical tuples of ints, one per
spatial dimension; checking them is the caller's job (``convlab.nn.functional``).

Semantics are PyTorch's CPU kernels (``aten/src/ATen/native/cpu/{MaxPool,AvgPool}Kernel.cpp``,
``AdaptivePooling.h``): windows start at ``o * stride - padding``; max pooling pads with -inf,
keeps the first maximum in row-major window order and lets a NaN win (the last one seen); the
average divides by the window clipped to the padded extent (or to the input without
``count_include_pad``); adaptive bins are ``[floor(i * in / out), ceil((i + 1) * in / out))``.

Windows are strided views, one per kernel offset: loops run over kernel offsets (or offsets
within an adaptive bin), never over positions. Max pooling records, per output, which kernel
offset won (``arg``, row-major over the kernel); its backward adds the gradient back through the
same views, and the flat plane indices that ``return_indices`` gives are computed from ``arg``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from convlab import shapes
from convlab.kernels import _jit, parallel

Ints = tuple[int, ...]

__all__ = [
    "adaptive_avg_pool_backward",
    "adaptive_avg_pool_forward",
    "adaptive_bins",
    "adaptive_max_pool_backward",
    "adaptive_max_pool_forward",
    "avg_pool_backward",
    "avg_pool_forward",
    "lp_pool_backward",
    "lp_pool_forward",
    "max_pool_backward",
    "max_pool_forward",
    "max_pool_indices",
    "max_pool_tiles",
    "max_pool_tiles_backward",
    "max_pool_tiles_forward",
    "max_unpool_backward",
    "max_unpool_forward",
    "scatter_plane_indices",
]


# ---------------------------------------------------------------------------------------------
# Window geometry shared by max and average pooling
# ---------------------------------------------------------------------------------------------


def _right_pad(size: int, kernel: int, stride: int, pad: int, dilation: int, out: int) -> int:
    """Padding on the high side that the last window reaches (ceil mode may pass ``pad``)."""
    return max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - pad - size)


def _padded(x: np.ndarray, n: int, lows: Ints, highs: Ints, value: float) -> np.ndarray:
    if not any(lows) and not any(highs):
        return x
    lead = x.shape[: x.ndim - n]
    spatial = x.shape[x.ndim - n :]
    out = np.full(
        lead + tuple(s + lo + hi for s, lo, hi in zip(spatial, lows, highs)), value, x.dtype
    )
    out[(Ellipsis, *(slice(lo, lo + s) for s, lo in zip(spatial, lows)))] = x
    return out


def _crop(xp: np.ndarray, n: int, lows: Ints, spatial: Ints) -> np.ndarray:
    return xp[(Ellipsis, *(slice(lo, lo + s) for s, lo in zip(spatial, lows)))]


def _offset_view(offset: Ints, out: Ints, stride: Ints, dilation: Ints) -> tuple:
    """Index selecting, for one kernel offset, the element of every window (padded frame)."""
    return (
        Ellipsis,
        *(
            slice(j * d, j * d + (o - 1) * s + 1, s)
            for j, o, s, d in zip(offset, out, stride, dilation)
        ),
    )


def _along(axis_from_end: int, n: int, values: np.ndarray) -> np.ndarray:
    """Reshape a 1-d array to broadcast along spatial dimension ``axis_from_end`` of ``n``."""
    shape = [1] * n
    shape[axis_from_end] = values.size
    return values.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------


def _arg_dtype(count: int) -> np.dtype:
    return np.dtype(np.uint8 if count <= 256 else np.int32)


def max_pool_forward(
    x: np.ndarray,
    kernel: Ints,
    stride: Ints,
    padding: Ints,
    dilation: Ints,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window; returns ``(out, arg)``, ``arg`` the winning kernel offset.

    ``arg`` numbers the kernel offsets in row-major order. Ties keep the first offset, a NaN
    wins over numbers (the last NaN, as PyTorch's loop ``val > max || isnan(val)``), and a window
    whose every element is padding keeps the first offset that is not left padding.
    """
    n = len(kernel)
    spatial = x.shape[x.ndim - n :]
    out_spatial = shapes.pool_output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
    if _numba_tiles(x, kernel, stride, padding, dilation, out_spatial):
        out = np.empty((*x.shape[:-2], *out_spatial), x.dtype)
        arg = np.empty(out.shape, _arg_dtype(math.prod(kernel)))
        planes = np.ascontiguousarray(x).reshape(-1, *spatial)
        flat_out = out.reshape(-1, *out_spatial)
        _nb_tiles_argmax_2d(planes, flat_out, arg.reshape(-1, *out_spatial), *kernel)
        return out, arg
    highs = tuple(
        _right_pad(*args) for args in zip(spatial, kernel, stride, padding, dilation, out_spatial)
    )
    xp = _padded(x, n, padding, highs, -np.inf)
    offsets = list(itertools.product(*(range(k) for k in kernel)))
    views = [_offset_view(offset, out_spatial, stride, dilation) for offset in offsets]
    out_shape = x.shape[: x.ndim - n] + out_spatial
    arg_dtype = _arg_dtype(len(offsets))

    def run(nan_aware: bool) -> tuple[np.ndarray, np.ndarray]:
        if not any(padding):
            # Every window starts inside the input: offset 0 is a real element.
            cur = np.array(xp[views[0]], copy=True)
            arg = np.zeros(out_shape, arg_dtype)
            first = 1
        else:
            cur = np.full(out_shape, -np.inf, x.dtype)
            arg = np.array(
                np.broadcast_to(
                    _first_inside(kernel, stride, padding, dilation, out_spatial), out_shape
                ),
                dtype=arg_dtype,
            )
            first = 0
        better = np.empty(out_shape, bool)
        winner = np.empty(out_shape, arg_dtype)
        for k in range(first, len(offsets)):
            v = xp[views[k]]
            np.greater(v, cur, out=better)
            if nan_aware:
                better |= np.isnan(v)
                np.copyto(cur, v, where=better)
            else:
                np.maximum(cur, v, out=cur)
            # Offsets come in increasing order and none before the start offset can win (they
            # are left padding), so the last winner is the largest k that won: a max, which is
            # much faster than a masked copy.
            np.multiply(better, arg_dtype.type(k), out=winner)
            np.maximum(arg, winner, out=arg)
        return cur, arg

    out, arg = run(nan_aware=False)
    if np.isnan(out).any():
        # np.maximum lets the first NaN win; PyTorch keeps the last one: redo, NaN-aware.
        out, arg = run(nan_aware=True)
    return out, arg


def max_pool_tiles(kernel: Ints, stride: Ints, padding: Ints, dilation: Ints) -> bool:
    """Whether the windows tile the input (stride = kernel, no padding, no dilation).

    Such pools need no argmax in the forward pass: see :func:`max_pool_tiles_forward`.
    """
    return tuple(stride) == tuple(kernel) and not any(padding) and all(d == 1 for d in dilation)


def _tile_views(x: np.ndarray, kernel: Ints, out_spatial: Ints) -> list[np.ndarray]:
    return [
        x[_offset_view(offset, out_spatial, kernel, (1,) * len(kernel))]
        for offset in itertools.product(*(range(k) for k in kernel))
    ]


def max_pool_tiles_forward(x: np.ndarray, kernel: Ints) -> np.ndarray:
    """Max over windows that tile ``x`` (floor mode): a running maximum of strided views.

    NaN propagates (any NaN in a window gives NaN); the backward pass below does not handle
    NaN windows, the general :func:`max_pool_forward` does.
    """
    n = len(kernel)
    out_spatial = tuple(s // k for s, k in zip(x.shape[x.ndim - n :], kernel))
    views = _tile_views(x, kernel, out_spatial)
    if len(views) == 1:
        return views[0].copy()
    out = np.maximum(views[0], views[1])
    for view in views[2:]:
        np.maximum(out, view, out=out)
    return out


# With numba, 2-d pools whose windows tile the input take one compiled pass each way: the
# forward finds each window's maximum and its offset (a byte), the backward sends the gradient
# to that offset and zeros to the rest of the window, reading neither x nor the output again.
# LeNet's pools, forward + backward: 57 + 67 and 107 + 135 us, against 32 + 120 and 55 + 220
# for a forward without the offsets and a backward that compares x with the maximum again
# (NumPy's tiling passes: 89 + 218 and 167 + 420). The backward runs on slices of the planes
# on convlab's threads from a million elements (W5: 2.3 ms against 4.1 on one thread; numba's
# own workqueue cost ~0.1 ms to start); the forward is memory-bound, one thread was as fast at
# every size up to W5's.
NUMBA_MIN_SIZE = 1 << 14
NUMBA_PARALLEL_MIN_SIZE = 1 << 20


def _numba_tiles(a, kernel, stride, padding, dilation, out_spatial, spatial=None) -> bool:
    """Whether the numba tiling kernels run for ``a`` (the input, or with ``spatial`` the
    output gradient): 2-d windows that tile the input, float32/64, large enough."""
    if len(kernel) != 2 or a.ndim < 3 or not max_pool_tiles(kernel, stride, padding, dilation):
        return False
    if spatial is None:
        spatial = a.shape[-2:]
    if tuple(out_spatial) != tuple(s // k for s, k in zip(spatial, kernel)):
        return False  # ceil mode's extra window
    size = math.prod(a.shape[:-2]) * math.prod(spatial)
    return size >= NUMBA_MIN_SIZE and math.prod(kernel) <= 256 and _jit.compiled_for(a.dtype)


def max_pool_numba_tiles(x: np.ndarray, kernel: Ints) -> bool:
    """Whether :func:`max_pool_forward` of ``x`` with stride = kernel (no padding, dilation or
    ceil mode) runs numba's one pass, argmax included."""
    out_spatial = tuple(s // k for s, k in zip(x.shape[x.ndim - len(kernel) :], kernel))
    ones, zeros = (1,) * len(kernel), (0,) * len(kernel)
    return _numba_tiles(x, kernel, kernel, zeros, ones, out_spatial)


@_jit.kernel()
def _nb_tiles_argmax_2d(x, out, arg, kh, kw):  # pragma: no cover - numba
    """Each window's maximum and its offset (row-major). Branch-free: a later element wins
    when greater or NaN (``v > best | v != v``), so ties keep the first and the last NaN wins,
    as in :func:`max_pool_forward` and PyTorch."""
    planes, rows, cols = out.shape
    if kh == 2 and kw == 2:  # the common pool, unrolled: 4x faster than the loop below
        for p in range(planes):
            for i in range(rows):
                for j in range(cols):
                    best, k = x[p, 2 * i, 2 * j], 0
                    v = x[p, 2 * i, 2 * j + 1]
                    take = (v > best) | (v != v)
                    best, k = (v, 1) if take else (best, k)
                    v = x[p, 2 * i + 1, 2 * j]
                    take = (v > best) | (v != v)
                    best, k = (v, 2) if take else (best, k)
                    v = x[p, 2 * i + 1, 2 * j + 1]
                    take = (v > best) | (v != v)
                    best, k = (v, 3) if take else (best, k)
                    out[p, i, j] = best
                    arg[p, i, j] = k
        return
    for p in range(planes):
        for i in range(rows):
            for j in range(cols):
                best, k = x[p, i * kh, j * kw], 0
                for a in range(kh):
                    for b in range(kw):
                        v = x[p, i * kh + a, j * kw + b]
                        take = (v > best) | (v != v)
                        best, k = (v, a * kw + b) if take else (best, k)
                out[p, i, j] = best
                arg[p, i, j] = k


@_jit.kernel()
def _nb_tiles_scatter_2d(g, arg, grad, kh, kw):  # pragma: no cover - numba
    """``grad`` of each window: ``g`` at its offset ``arg``, zeros elsewhere (selects, not
    branches: a branchy loop mispredicts on random data, 4x slower on W5)."""
    planes, rows, cols = g.shape
    zero = g.dtype.type(0)
    if kh == 2 and kw == 2:
        for p in range(planes):
            for i in range(rows):
                for j in range(cols):
                    gv, k = g[p, i, j], arg[p, i, j]
                    grad[p, 2 * i, 2 * j] = gv if k == 0 else zero
                    grad[p, 2 * i, 2 * j + 1] = gv if k == 1 else zero
                    grad[p, 2 * i + 1, 2 * j] = gv if k == 2 else zero
                    grad[p, 2 * i + 1, 2 * j + 1] = gv if k == 3 else zero
        return
    for p in range(planes):
        for i in range(rows):
            for j in range(cols):
                gv, k = g[p, i, j], arg[p, i, j]
                for a in range(kh):
                    for b in range(kw):
                        grad[p, i * kh + a, j * kw + b] = gv if k == a * kw + b else zero


def _tiles_scatter(grad_out: np.ndarray, arg: np.ndarray, spatial: Ints, kernel: Ints):
    out_spatial = grad_out.shape[-2:]
    covered = all(s == o * k for s, o, k in zip(spatial, out_spatial, kernel))
    grad = (np.empty if covered else np.zeros)((*grad_out.shape[:-2], *spatial), grad_out.dtype)
    gp = np.ascontiguousarray(grad_out).reshape(-1, *out_spatial)
    argp = np.ascontiguousarray(arg).reshape(-1, *out_spatial)
    gradp = grad.reshape(-1, *spatial)

    def part(rows: slice) -> None:
        _nb_tiles_scatter_2d(gp[rows], argp[rows], gradp[rows], *kernel)

    count = len(gp)
    large = grad.size >= NUMBA_PARALLEL_MIN_SIZE
    parallel.run(part, count, parallel.parts(count, math.inf) if large else 1)
    return grad


def max_pool_tiles_backward(
    grad_out: np.ndarray, x: np.ndarray, out: np.ndarray, kernel: Ints
) -> np.ndarray:
    """Gradient of :func:`max_pool_tiles_forward` (no NaN in ``out``): the first maximum wins.

    The winners are found again by comparing each view with the maximum, offsets in row-major
    order, which is the tie rule of :func:`max_pool_forward` and of PyTorch.
    """
    n = len(kernel)
    out_spatial = out.shape[out.ndim - n :]
    covered = all(s == o * k for s, o, k in zip(x.shape[x.ndim - n :], out_spatial, kernel))
    # Every element that some window covers is written: no zeroing pass then.
    grad = (np.empty if covered else np.zeros)(x.shape, grad_out.dtype)
    views = _tile_views(x, kernel, out_spatial)
    targets = _tile_views(grad, kernel, out_spatial)
    taken = np.zeros(out.shape, bool)
    mask = np.empty(out.shape, bool)
    finite = bool(np.isfinite(grad_out).all())
    for k, (view, target) in enumerate(zip(views, targets)):
        np.equal(view, out, out=mask)
        if k:
            mask &= ~taken
        if k < len(views) - 1:
            taken |= mask
        if finite:
            np.multiply(grad_out, mask, out=target)
        else:  # 0 * inf would be NaN
            target[...] = np.where(mask, grad_out, 0)
    return grad


def _first_inside(kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, out: Ints):
    """Per output position, the first kernel offset that is not in the left padding."""
    n = len(kernel)
    total = np.zeros((1,) * n, np.int64)
    for i in range(n):
        starts = np.arange(out[i]) * stride[i] - padding[i]
        first = (np.maximum(-starts, 0) + dilation[i] - 1) // dilation[i]
        total = total + _along(i, n, first) * math.prod(kernel[i + 1 :])
    return total


def max_pool_indices(
    arg: np.ndarray,
    spatial: Ints,
    kernel: Ints,
    stride: Ints,
    padding: Ints,
    dilation: Ints,
) -> np.ndarray:
    """Flat index, within each input plane, of the element ``arg`` points at (int64).

    This is what ``return_indices=True`` gives: ``sum(position_i * prod(spatial[i+1:]))``.
    """
    n = len(kernel)
    out_spatial = arg.shape[arg.ndim - n :]
    table = np.unravel_index(np.arange(math.prod(kernel)), kernel)
    flat = np.zeros(arg.shape, np.int64)
    for i in range(n):
        starts = np.arange(out_spatial[i], dtype=np.int64) * stride[i] - padding[i]
        position = _along(i, n, starts) + table[i].astype(np.int64)[arg] * dilation[i]
        flat += position * math.prod(spatial[i + 1 :])
    return flat


def max_pool_backward(
    grad_out: np.ndarray,
    arg: np.ndarray,
    spatial: Ints,
    kernel: Ints,
    stride: Ints,
    padding: Ints,
    dilation: Ints,
) -> np.ndarray:
    """Send each output gradient to the element its window's maximum came from."""
    n = len(kernel)
    out_spatial = grad_out.shape[grad_out.ndim - n :]
    if _numba_tiles(grad_out, kernel, stride, padding, dilation, out_spatial, spatial):
        return _tiles_scatter(grad_out, arg, spatial, kernel)
    highs = tuple(
        _right_pad(*args) for args in zip(spatial, kernel, stride, padding, dilation, out_spatial)
    )
    lead = grad_out.shape[: grad_out.ndim - n]
    padded = tuple(s + lo + hi for s, lo, hi in zip(spatial, padding, highs))
    grad = np.zeros(lead + padded, grad_out.dtype)
    mask = np.empty(arg.shape, bool)
    part = np.empty(grad_out.shape, grad_out.dtype)
    # mask * grad is the fast way to zero the losers, but 0 * inf is NaN: use where() then.
    finite = bool(np.isfinite(grad_out).all())
    # One offset never hits the same element twice, so adding one view per offset is exact
    # even when windows overlap.
    for k, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
        np.equal(arg, k, out=mask)
        if finite:
            np.multiply(grad_out, mask, out=part)
        else:
            part[...] = np.where(mask, grad_out, 0)
        grad[_offset_view(offset, out_spatial, stride, dilation)] += part
    return _crop(grad, n, padding, spatial)


# ---------------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------------


def _avg_divisor(
    spatial: Ints,
    kernel: Ints,
    stride: Ints,
    padding: Ints,
    out_spatial: Ints,
    count_include_pad: bool,
    divisor_override: int | None,
    dtype: np.dtype,
) -> np.ndarray | float:
    if divisor_override is not None:
        return float(divisor_override)
    n = len(kernel)
    divisor = np.ones((1,) * n, dtype)
    for i in range(n):
        start = np.arange(out_spatial[i]) * stride[i] - padding[i]
        # The window clipped to the padded extent (ceil mode may hang past it)...
        end = np.minimum(start + kernel[i], spatial[i] + padding[i])
        if not count_include_pad:
            # ...or to the real input.
            start = np.maximum(start, 0)
            end = np.minimum(end, spatial[i])
        divisor = divisor * _along(i, n, (end - start).astype(dtype))
    return divisor


def avg_pool_forward(
    x: np.ndarray,
    kernel: Ints,
    stride: Ints,
    padding: Ints,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Mean over each window, PyTorch's divisor: a separable window sum, then one division."""
    n = len(kernel)
    spatial = x.shape[x.ndim - n :]
    ones = (1,) * n
    out_spatial = shapes.pool_output_shape(spatial, kernel, stride, padding, ones, ceil_mode)
    highs = tuple(
        _right_pad(*args) for args in zip(spatial, kernel, stride, padding, ones, out_spatial)
    )
    total = _padded(x, n, padding, highs, 0.0)
    # A box sum is separable: sum the k offsets along one dimension at a time.
    for i in range(n):
        axis = total.ndim - n + i
        index = [slice(None)] * total.ndim
        acc = None
        for j in range(kernel[i]):
            index[axis] = slice(j, j + (out_spatial[i] - 1) * stride[i] + 1, stride[i])
            part = total[tuple(index)]
            acc = np.array(part, copy=True) if acc is None else np.add(acc, part, out=acc)
        total = acc
    divisor = _avg_divisor(
        spatial, kernel, stride, padding, out_spatial, count_include_pad, divisor_override, x.dtype
    )
    return (total / divisor).astype(x.dtype, copy=False)


def avg_pool_backward(
    grad_out: np.ndarray,
    spatial: Ints,
    kernel: Ints,
    stride: Ints,
    padding: Ints,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Adjoint of :func:`avg_pool_forward`: spread ``grad / divisor`` over each window."""
    n = len(kernel)
    out_spatial = grad_out.shape[grad_out.ndim - n :]
    ones = (1,) * n
    highs = tuple(
        _right_pad(*args) for args in zip(spatial, kernel, stride, padding, ones, out_spatial)
    )
    divisor = _avg_divisor(
        spatial,
        kernel,
        stride,
        padding,
        out_spatial,
        count_include_pad,
        divisor_override,
        grad_out.dtype,
    )
    grad = (grad_out / divisor).astype(grad_out.dtype, copy=False)
    for i in range(n):
        axis = grad.ndim - n + i
        shape = list(grad.shape)
        shape[axis] = spatial[i] + padding[i] + highs[i]
        spread = np.zeros(shape, grad.dtype)
        index = [slice(None)] * grad.ndim
        for j in range(kernel[i]):
            index[axis] = slice(j, j + (out_spatial[i] - 1) * stride[i] + 1, stride[i])
            spread[tuple(index)] += grad
        index[axis] = slice(padding[i], padding[i] + spatial[i])
        grad = spread[tuple(index)]
    return np.ascontiguousarray(grad)


# ---------------------------------------------------------------------------------------------
# Power-average (LP) pooling
# ---------------------------------------------------------------------------------------------


def lp_pool_forward(
    x: np.ndarray, norm_type: float, kernel: Ints, stride: Ints, ceil_mode: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's formula: ``(sign(a) * relu(|a|) * prod(kernel)) ** (1 / p)``, ``a`` the mean of
    ``x ** p`` over the window (no padding). Returns ``(out, a)``; ``a`` is kept for backward.

    A negative window sum therefore gives NaN for a fractional ``1 / p``, as in PyTorch.
    """
    n = len(kernel)
    mean = avg_pool_forward(np.power(x, norm_type), kernel, stride, (0,) * n, ceil_mode)
    scaled = np.sign(mean) * np.maximum(np.abs(mean), 0) * math.prod(kernel)
    return np.power(scaled, 1.0 / norm_type).astype(x.dtype, copy=False), mean


def lp_pool_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    mean: np.ndarray,
    norm_type: float,
    kernel: Ints,
    stride: Ints,
    ceil_mode: bool = False,
) -> np.ndarray:
    """The chain rule through PyTorch's formula, step by step, so NaN/inf appear where torch's
    do: ``pow``'s derivative ``e * u ** (e - 1)``, relu's mask ``|a| > 0`` (NaN passes), sign's
    zero derivative, and ``abs``'s ``sign``."""
    n = len(kernel)
    count = math.prod(kernel)
    abs_mean = np.abs(mean)
    sign = np.sign(mean)
    scaled = sign * np.maximum(abs_mean, 0) * count
    exponent = 1.0 / norm_type
    g = grad_out * (exponent * np.power(scaled, exponent - 1)) * count
    g = np.where(abs_mean <= 0, 0, g * sign) * sign
    g = avg_pool_backward(
        g.astype(x.dtype, copy=False), x.shape[x.ndim - n :], kernel, stride, (0,) * n, ceil_mode
    )
    return (g * (norm_type * np.power(x, norm_type - 1))).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Adaptive pooling
# ---------------------------------------------------------------------------------------------


def adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin ``i`` covers ``[floor(i * size / out), ceil((i + 1) * size / out))`` (int64 arrays).

    >>> adaptive_bins(10, 4)
    (array([0, 2, 5, 7]), array([ 3,  5,  8, 10]))
    """
    i = np.arange(out, dtype=np.int64)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _bin_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """``(out, size)`` averaging matrix: row ``i`` holds ``1 / len`` over bin ``i``."""
    start, end = adaptive_bins(size, out)
    cols = np.arange(size)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return inside / (end - start)[:, None].astype(dtype)


def _apply_along(x: np.ndarray, axis: int, matrix: np.ndarray) -> np.ndarray:
    moved = np.moveaxis(x, axis, -1)
    return np.moveaxis(moved @ matrix.T.astype(x.dtype, copy=False), -1, axis)


def adaptive_avg_pool_forward(x: np.ndarray, output_size: Ints) -> np.ndarray:
    """Mean over each adaptive bin: one small averaging matrix per spatial dimension."""
    n = len(output_size)
    for i, out in enumerate(output_size):
        axis = x.ndim - n + i
        x = _apply_along(x, axis, _bin_matrix(x.shape[axis], out, x.dtype))
    return np.ascontiguousarray(x)


def adaptive_avg_pool_backward(grad_out: np.ndarray, spatial: Ints) -> np.ndarray:
    """Adjoint of :func:`adaptive_avg_pool_forward` (the transposed matrices)."""
    n = len(spatial)
    g = grad_out
    for i, size in enumerate(spatial):
        axis = g.ndim - n + i
        g = _apply_along(g, axis, _bin_matrix(size, g.shape[axis], g.dtype).T)
    return np.ascontiguousarray(g)


def adaptive_max_pool_forward(x: np.ndarray, output_size: Ints) -> tuple[np.ndarray, np.ndarray]:
    """Max over each adaptive bin and its flat plane index (int64), PyTorch's tie rules.

    Separable: reduce the last dimension first, then the one before, each time comparing in
    order with ``v > best or isnan(v)``. That keeps the first maximum in row-major order, or the
    last NaN, exactly as one row-major scan over the whole bin does.
    """
    n = len(output_size)
    spatial = x.shape[x.ndim - n :]
    values = x
    positions: list[np.ndarray] = []  # per reduced dimension, the winning coordinate
    for i in reversed(range(n)):
        axis = values.ndim - n + i
        start, end = adaptive_bins(spatial[i], output_size[i])
        # The first element of each bin starts the scan; PyTorch's -inf start is equivalent.
        best = np.take(values, start, axis=axis)
        coord = np.array(np.broadcast_to(_along(i, n, start), best.shape))
        kept = [np.take(p, start, axis=axis) for p in positions]
        better = np.empty(best.shape, bool)
        longest = int((end - start).max()) if output_size[i] else 0
        for j in range(1, longest):
            at = np.minimum(start + j, end - 1)
            v = np.take(values, at, axis=axis)
            np.greater(v, best, out=better)
            better |= np.isnan(v)
            better &= _along(i, n, start + j < end)
            np.copyto(best, v, where=better)
            np.copyto(coord, _along(i, n, at), where=better)
            for dst, src in zip(kept, positions):
                np.copyto(dst, np.take(src, at, axis=axis), where=better)
        values = best
        positions = [coord, *kept]
    flat = np.zeros(values.shape, np.int64)
    for i, position in enumerate(positions):
        flat += position * math.prod(spatial[i + 1 :])
    return values, flat


def scatter_plane_indices(values: np.ndarray, indices: np.ndarray, plane: Ints) -> np.ndarray:
    """Sum ``values`` into zero planes of shape ``plane`` at the flat ``indices``.

    ``values`` and ``indices`` have the same shape ``(*lead, *anything)`` with
    ``len(anything) == len(plane)``; each leading position has its own plane. Repeated indices
    add up (accumulated in float64, then cast back).
    """
    lead = values.shape[: values.ndim - len(plane)]
    size = math.prod(plane)
    planes = math.prod(lead)
    offsets = (np.arange(planes, dtype=np.int64) * size).reshape(lead + (1,) * len(plane))
    total = np.bincount(
        (indices + offsets).ravel(), weights=values.ravel(), minlength=planes * size
    )
    return total.astype(values.dtype, copy=False).reshape(lead + tuple(plane))


def adaptive_max_pool_backward(
    grad_out: np.ndarray, indices: np.ndarray, spatial: Ints
) -> np.ndarray:
    """Send each output gradient to its bin's maximum (bins may overlap: gradients add)."""
    return scatter_plane_indices(grad_out, indices, spatial)


# ---------------------------------------------------------------------------------------------
# Max unpooling
# ---------------------------------------------------------------------------------------------


def max_unpool_forward(x: np.ndarray, indices: np.ndarray, output_spatial: Ints) -> np.ndarray:
    """Zero planes of ``output_spatial`` with ``x`` written at its flat ``indices``.

    ``indices`` must lie in ``[0, prod(output_spatial))`` (the caller checks). When an index
    repeats, one of the values is kept (PyTorch leaves the choice unspecified).
    """
    n = len(output_spatial)
    lead = x.shape[: x.ndim - n]
    size = math.prod(output_spatial)
    out = np.zeros(lead + (size,), x.dtype)
    flat_x = x.reshape(lead + (-1,))
    flat_i = indices.reshape(lead + (-1,))
    np.put_along_axis(out, flat_i, flat_x, axis=-1)
    return out.reshape(lead + tuple(output_spatial))


def max_unpool_backward(grad_out: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    """Adjoint of :func:`max_unpool_forward` over ``n`` spatial dims: gather at ``indices``."""
    lead = grad_out.shape[: grad_out.ndim - n]
    flat_g = grad_out.reshape(lead + (-1,))
    flat_i = indices.reshape(lead + (-1,))
    return np.take_along_axis(flat_g, flat_i, axis=-1).reshape(indices.shape)
