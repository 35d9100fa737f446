"""Direct convolution without im2col: depthwise and small-channel convolutions.

A depthwise convolution (``groups == C_in``, weight ``(multiplier * C_in, 1, *k)``) does
``prod(k)`` multiply-adds per output element: im2col + GEMM turns that into ``C_in`` tiny
matrix products and a copy of the input ``prod(k)`` times larger, which costs far more than the
arithmetic. Here the kernel slides directly over the input instead, with two implementations
behind ``impl``:

- ``"numpy"``: one strided-slice multiply-add per kernel offset (and per input channel of a
  group), over the whole batch at once, into preallocated buffers; padding is never built, an
  offset near the border just reaches fewer outputs. Single-threaded and memory-bound.
- ``"numba"``: compiled loops (the optional ``fast`` extra), parallel over (batch item, group)
  tasks; each task copies its padded input planes into a small buffer split by stride phase, so
  that every kernel tap is one contiguous, vectorised multiply-add over a whole flattened plane.
- ``"auto"``: numba when it can be imported, else NumPy.

The NumPy path is N-d; the numba one is written for 3 spatial dimensions and 1-d and 2-d inputs
get singleton ones. The general functions ``direct_conv_*`` take any ``groups``; they are fast
for depthwise layers (``depthwise_conv_*``, groups = C_in) and for first layers with few input
channels (groups = 1, such as LeNet's first layer). Arguments are
canonical as in :mod:`convlab.kernels.conv`: ``stride``/``dilation`` tuples, ``padding``
``((low, high), ...)``.

>>> x, w = np.ones((1, 2, 5, 5)), np.ones((4, 1, 3, 3))
>>> depthwise_conv_forward(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))[0, 0, 0]
array([4., 6., 6., 6., 4.])
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from convlab.kernels import _flat, _jit, parallel

Pads = tuple[tuple[int, int], ...]

__all__ = [
    "depthwise_conv_forward",
    "depthwise_conv_backward_input",
    "depthwise_conv_backward_weight",
    "direct_conv_forward",
    "direct_conv_backward",
    "direct_conv_backward_input",
    "direct_conv_backward_weight",
    "direct_conv_backward_weight_bias",
]

IMPLS = ("auto", "numpy", "numba")


def _resolve(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, but got impl={impl!r}")
    if impl == "auto":
        return "numba" if _jit.numba_available() else "numpy"
    return impl


def _out_spatial(spatial, kernel, stride, padding, dilation) -> tuple[int, ...]:
    return tuple(
        (s + lo + hi - d * (k - 1) - 1) // st + 1
        for s, k, st, (lo, hi), d in zip(spatial, kernel, stride, padding, dilation)
    )


def _overlap(off: int, step: int, size: int, out: int) -> tuple[int, int]:
    """Outputs ``[first, stop)`` whose input ``o * step + off`` falls inside ``[0, size)``."""
    first = max(0, (-off + step - 1) // step)
    stop = min(out, (size - 1 - off) // step + 1)
    return first, max(first, stop)


def _windows(kernel, stride, padding, dilation, spatial, out_spatial):
    """Per kernel offset: the output slices it reaches and the input slices that feed them.

    Padding is never materialised: an offset near the border simply reaches fewer outputs.
    Offsets that reach no output (possible when the input is smaller than the kernel's reach)
    are skipped.
    """
    for offset in itertools.product(*(range(k) for k in kernel)):
        out_sl, in_sl = [], []
        for k, st, (lo, _), d, s, o in zip(offset, stride, padding, dilation, spatial, out_spatial):
            off = k * d - lo
            first, stop = _overlap(off, st, s, o)
            if first == stop:
                break
            out_sl.append(slice(first, stop))
            start = first * st + off
            in_sl.append(slice(start, start + (stop - first - 1) * st + 1, st))
        else:
            yield offset, tuple(out_sl), tuple(in_sl)


def _bias_grad(grad_out: np.ndarray, dtype) -> np.ndarray:
    """``grad_out`` summed over all but the channels (in float64), as ``dtype``."""
    return grad_out.sum(axis=(0, *range(2, grad_out.ndim)), dtype=np.float64).astype(dtype)


def _common_dtype(*arrays):
    return np.result_type(*(a.dtype for a in arrays if a is not None))


# ---------------------------------------------------------------------------------------------
# NumPy: loops over kernel offsets (and channels within a group) only.
#
# Arrays are viewed with the group split out: x (N, G, Cin/G, *S), y (N, G, Cout/G, *O),
# w (G, Cout/G, Cin/G, *k). Each step multiplies a strided slice of the whole batch by one weight
# per (group, output channel) into a scratch buffer and adds it to the output slice in place.


def _np_forward(x, weight, bias, stride, padding, dilation, groups, dtype):
    n, c_in, *spatial = x.shape
    c_out, cig, *kernel = weight.shape
    cog = c_out // groups
    out_spatial = _out_spatial(spatial, kernel, stride, padding, dilation)
    trail = (1,) * len(spatial)
    xg = x.reshape(n, groups, cig, *spatial)
    wg = weight.astype(dtype, copy=False).reshape(groups, cog, cig, *kernel)
    y = np.empty((n, groups, cog, *out_spatial), dtype)
    if bias is None:
        y.fill(0)
    else:
        y[...] = bias.astype(dtype, copy=False).reshape(groups, cog, *trail)
    scratch = np.empty_like(y)
    for offset, out_sl, in_sl in _windows(kernel, stride, padding, dilation, spatial, out_spatial):
        ys = y[(slice(None),) * 3 + out_sl]
        tmp = scratch[(slice(None),) * 3 + tuple(slice(0, s.stop - s.start) for s in out_sl)]
        for ci in range(cig):
            w = wg[(slice(None), slice(None), ci) + offset].reshape(groups, cog, *trail)
            np.multiply(xg[(slice(None), slice(None), slice(ci, ci + 1)) + in_sl], w, out=tmp)
            ys += tmp
    return y.reshape(n, c_out, *out_spatial)


def _np_backward_input(grad_out, weight, input_shape, stride, padding, dilation, groups, dtype):
    n, c_in, *spatial = input_shape
    c_out, cig, *kernel = weight.shape
    cog = c_out // groups
    out_spatial = grad_out.shape[2:]
    trail = (1,) * len(spatial)
    gg = grad_out.reshape(n, groups, cog, *out_spatial)
    wg = weight.astype(dtype, copy=False).reshape(groups, cog, cig, *kernel)
    gx = np.zeros((n, groups, cig, *spatial), dtype)
    scratch = np.empty_like(gx)
    for offset, out_sl, in_sl in _windows(kernel, stride, padding, dilation, spatial, out_spatial):
        # One offset sends distinct outputs to distinct inputs, so the slice-add never collides.
        gs = gx[(slice(None),) * 3 + in_sl]
        tmp = scratch[(slice(None),) * 3 + tuple(slice(0, s.stop - s.start) for s in out_sl)]
        for co in range(cog):
            w = wg[(slice(None), co, slice(None)) + offset].reshape(groups, cig, *trail)
            np.multiply(gg[(slice(None), slice(None), slice(co, co + 1)) + out_sl], w, out=tmp)
            gs += tmp
    return gx.reshape(input_shape)


def _np_backward_weight(x, grad_out, weight_shape, stride, padding, dilation, groups, dtype):
    n, c_in, *spatial = x.shape
    c_out, cig, *kernel = weight_shape
    cog = c_out // groups
    out_spatial = grad_out.shape[2:]
    xg = x.reshape(n, groups, cig, *spatial)
    gg = grad_out.reshape(n, groups, cog, *out_spatial)
    gw = np.zeros((groups, cog, cig, *kernel), dtype)
    scratch = np.empty_like(gg)
    axes = (0, *range(3, 3 + len(spatial)))
    for offset, out_sl, in_sl in _windows(kernel, stride, padding, dilation, spatial, out_spatial):
        gs = gg[(slice(None),) * 3 + out_sl]
        tmp = scratch[(slice(None),) * 3 + tuple(slice(0, s.stop - s.start) for s in out_sl)]
        for ci in range(cig):
            np.multiply(gs, xg[(slice(None), slice(None), slice(ci, ci + 1)) + in_sl], out=tmp)
            gw[(slice(None), slice(None), ci) + offset] = tmp.sum(axis=axes)
    return gw.reshape(weight_shape)


# ---------------------------------------------------------------------------------------------
# numba: written for 3 spatial dimensions (D, H, W); parallel over (batch item, group) tasks, each
# owning its output planes, so there are no races and results do not depend on the thread count.
#
# Polyphase, flattened planes. Each task first copies its input planes, zero-padded, into a
# scratch buffer split by stride phase: xq[ci, phase, u, v, r] = x_pad[s*u + pd, s*v + ph, s*r + pw]
# (a plain padded copy when stride is 1). A kernel tap (a, b, e) then reads phase
# (a*dil % s, ...) at a constant offset (a*dil // s, ...), so a whole (H_out, Wq) slab, rows
# flattened, is ONE contiguous multiply-add ``acc[p] += w * xq[start + p]`` that LLVM vectorises
# (the forward and input-gradient keep fastmath off: same rounding as NumPy). The weight-gradient
# is a dot product per tap, reassociated into vector accumulators. The Wq - W_out extra columns
# per row are computed and dropped. Hot loops index flat arrays with unsigned offsets (see
# convlab.kernels._flat).


@_jit.kernel()
def _nb_taps(dst, d0, src, offs, wts, n_taps, count):  # pragma: no cover - numba
    """``dst[d0 + t] += wts[j] * src[offs[j] + t]`` for ``j < n_taps`` in order, ``t < count``.

    Up to five taps per pass over ``dst``, added one after the other exactly as separate passes
    would (fastmath off), but loading and storing ``dst`` a fifth as often.
    """
    d, m, one = np.uint64(d0), np.uint64(count), np.uint64(1)
    j = 0
    while j < n_taps:
        r = min(5, n_taps - j)
        if n_taps - j == 6 or n_taps - j == 7:
            r = 3 if n_taps - j == 6 else 4  # two balanced passes rather than 5 + 1 or 5 + 2
        a, w0 = np.uint64(offs[j]), wts[j]
        t = np.uint64(0)
        if r == 5:
            b, c, e = np.uint64(offs[j + 1]), np.uint64(offs[j + 2]), np.uint64(offs[j + 3])
            f = np.uint64(offs[j + 4])
            w1, w2, w3, w4 = wts[j + 1], wts[j + 2], wts[j + 3], wts[j + 4]
            while t < m:
                v = dst[d + t] + w0 * src[a + t]
                v = v + w1 * src[b + t]
                v = v + w2 * src[c + t]
                v = v + w3 * src[e + t]
                dst[d + t] = v + w4 * src[f + t]
                t += one
        elif r == 4:
            b, c, e = np.uint64(offs[j + 1]), np.uint64(offs[j + 2]), np.uint64(offs[j + 3])
            w1, w2, w3 = wts[j + 1], wts[j + 2], wts[j + 3]
            while t < m:
                v = dst[d + t] + w0 * src[a + t]
                v = v + w1 * src[b + t]
                v = v + w2 * src[c + t]
                dst[d + t] = v + w3 * src[e + t]
                t += one
        elif r == 3:
            b, c = np.uint64(offs[j + 1]), np.uint64(offs[j + 2])
            w1, w2 = wts[j + 1], wts[j + 2]
            while t < m:
                v = dst[d + t] + w0 * src[a + t]
                v = v + w1 * src[b + t]
                dst[d + t] = v + w2 * src[c + t]
                t += one
        elif r == 2:
            b, w1 = np.uint64(offs[j + 1]), wts[j + 1]
            while t < m:
                v = dst[d + t] + w0 * src[a + t]
                dst[d + t] = v + w1 * src[b + t]
                t += one
        else:
            while t < m:
                dst[d + t] += w0 * src[a + t]
                t += one
        j += r


@_jit.kernel()
def _nb_taps2(dst, d0, d1, src, offs, wts, w1_at, n_taps, count):  # pragma: no cover - numba
    """:func:`_nb_taps` for two outputs at once: ``dst[d0 + t] += wts[j] * src[offs[j] + t]``
    and ``dst[d1 + t] += wts[w1_at + j] * src[offs[j] + t]``, each element of ``src`` loaded
    once for both; each output gets the same additions in the same order as from _nb_taps."""
    p, q, m, one = np.uint64(d0), np.uint64(d1), np.uint64(count), np.uint64(1)
    j = 0
    while j + 5 <= n_taps:
        a, b, c = np.uint64(offs[j]), np.uint64(offs[j + 1]), np.uint64(offs[j + 2])
        e, f = np.uint64(offs[j + 3]), np.uint64(offs[j + 4])
        u0, u1, u2, u3, u4 = wts[j], wts[j + 1], wts[j + 2], wts[j + 3], wts[j + 4]
        k = w1_at + j
        v0, v1, v2, v3, v4 = wts[k], wts[k + 1], wts[k + 2], wts[k + 3], wts[k + 4]
        t = np.uint64(0)
        while t < m:
            sa, sb, sc, se, sf = src[a + t], src[b + t], src[c + t], src[e + t], src[f + t]
            r = dst[p + t] + u0 * sa
            r = r + u1 * sb
            r = r + u2 * sc
            r = r + u3 * se
            dst[p + t] = r + u4 * sf
            z = dst[q + t] + v0 * sa
            z = z + v1 * sb
            z = z + v2 * sc
            z = z + v3 * se
            dst[q + t] = z + v4 * sf
            t += one
        j += 5
    while j < n_taps:
        a, u0, v0 = np.uint64(offs[j]), wts[j], wts[w1_at + j]
        t = np.uint64(0)
        while t < m:
            sa = src[a + t]
            dst[p + t] += u0 * sa
            dst[q + t] += v0 * sa
            t += one
        j += 1


@_jit.kernel(reduction=True)
def _nb_dot(a, a0, b, b0, count):  # pragma: no cover - numba
    """``sum_t a[a0 + t] * b[b0 + t]`` for ``t < count``, in several vector accumulators."""
    i, j, t, m, one = np.uint64(a0), np.uint64(b0), np.uint64(0), np.uint64(count), np.uint64(1)
    total = a.dtype.type(0)
    while t < m:
        total += a[i + t] * b[j + t]
        t += one
    return total


@_jit.kernel(reduction=True)
def _nb_dot5(a, a0, b, offs, j, count):  # pragma: no cover - numba
    """:func:`_nb_dot` of ``a`` with five windows of ``b`` (offsets ``offs[j:j + 5]``)."""
    i, t, m, one = np.uint64(a0), np.uint64(0), np.uint64(count), np.uint64(1)
    k0, k1, k2 = np.uint64(offs[j]), np.uint64(offs[j + 1]), np.uint64(offs[j + 2])
    k3, k4 = np.uint64(offs[j + 3]), np.uint64(offs[j + 4])
    s0 = a.dtype.type(0)
    s1 = s0
    s2 = s0
    s3 = s0
    s4 = s0
    while t < m:
        v = a[i + t]
        s0 += v * b[k0 + t]
        s1 += v * b[k1 + t]
        s2 += v * b[k2 + t]
        s3 += v * b[k3 + t]
        s4 += v * b[k4 + t]
        t += one
    return s0, s1, s2, s3, s4


@_jit.kernel(reduction=True)
def _nb_sum(a, count):  # pragma: no cover - numba
    """``sum_t a[t]`` for ``t < count``, in several vector accumulators."""
    t, m, one = np.uint64(0), np.uint64(count), np.uint64(1)
    total = a.dtype.type(0)
    while t < m:
        total += a[t]
        t += one
    return total


@_jit.kernel(reduction=True)
def _nb_dot3(a, a0, b, offs, j, count):  # pragma: no cover - numba
    """:func:`_nb_dot` of ``a`` with three windows of ``b`` (offsets ``offs[j:j + 3]``),
    loading each element of ``a`` once for the three."""
    i, t, m, one = np.uint64(a0), np.uint64(0), np.uint64(count), np.uint64(1)
    k0, k1, k2 = np.uint64(offs[j]), np.uint64(offs[j + 1]), np.uint64(offs[j + 2])
    s0 = a.dtype.type(0)
    s1 = s0
    s2 = s0
    while t < m:
        v = a[i + t]
        s0 += v * b[k0 + t]
        s1 += v * b[k1 + t]
        s2 += v * b[k2 + t]
        t += one
    return s0, s1, s2


@_jit.kernel()
def _nb_phases(x, n, c, xq, q0, geo, to_phases):  # pragma: no cover - numba
    """Copy channel ``c`` of item ``n`` between x (N, C, D, H, W) and its phase planes at xq[q0:].

    ``to_phases``: x -> xq, padding with zeros; else the adjoint, xq -> x (positions no phase
    row holds stay as they are, the caller zeroes them first).
    """
    size_d, size_h, size_w = x.shape[2], x.shape[3], x.shape[4]
    s_d, s_h, s_w, lo_d, lo_h, lo_w, dq, hq, wq = geo
    xf = x.reshape(x.size)
    plane = (n * x.shape[1] + c) * size_d * size_h * size_w
    row = q0
    for pd in range(s_d):
        for ph in range(s_h):
            for pw in range(s_w):
                # Columns [r0, r1) of these phase rows hold input columns first, first + s_w, ...
                r0 = min(wq, max(0, (lo_w - pw + s_w - 1) // s_w))
                r1 = max(r0, min(wq, (size_w - 1 + lo_w - pw) // s_w + 1))
                first = s_w * r0 + pw - lo_w
                for u in range(dq):
                    zd = s_d * u + pd - lo_d
                    for v in range(hq):
                        zh = s_h * v + ph - lo_h
                        inside = 0 <= zd < size_d and 0 <= zh < size_h and r1 > r0
                        if to_phases and not inside:
                            _flat.fill(xq, row, wq, 0)
                        elif to_phases:
                            _flat.fill(xq, row, r0, 0)
                            src = plane + (zd * size_h + zh) * size_w + first
                            _flat.copy(xq, row + r0, 1, xf, src, s_w, r1 - r0)
                            _flat.fill(xq, row + r1, wq - r1, 0)
                        elif inside:
                            dst = plane + (zd * size_h + zh) * size_w + first
                            _flat.copy(xf, dst, s_w, xq, row + r0, 1, r1 - r0)
                        row += wq


@_jit.kernel()
def _nb_widen(g, n, o, gq, q0, wq, stride):  # pragma: no cover - numba
    """Plane ``o`` of item ``n`` -> rows of length wq (zero beyond W_out), depth slab ``i`` at
    gq[q0 + i * stride:]."""
    out_d, out_h, out_w = g.shape[2], g.shape[3], g.shape[4]
    gf = g.reshape(g.size)
    src = (n * g.shape[1] + o) * out_d * out_h * out_w
    for i in range(out_d):
        row = q0 + i * stride
        for _ in range(out_h):
            _flat.copy(gq, row, 1, gf, src, 1, out_w)
            _flat.fill(gq, row + out_w, wq - out_w, 0)
            row += wq
            src += out_w


# Flat positions per block: the accumulator block and the input rows it reads stay in L1.
_BLOCK = 2048


@_jit.kernel()
def _nb_unwiden(yf, y0, acc, p0, count, wq, out_w):  # pragma: no cover - numba
    """Copy wide positions ``p0 .. p0 + count`` (rows of wq, held in acc[0:count]) into the plane
    at yf[y0:] (rows of out_w), dropping the columns >= out_w."""
    p = p0
    end = p0 + count
    while p < end:
        j = p // wq
        q = p - j * wq
        seg = min(wq - q, end - p)
        if q < out_w:
            _flat.copy(yf, y0 + j * out_w + q, 1, acc, p - p0, 1, min(seg, out_w - q))
        p += seg


@_jit.kernel()
def _tap_offset(tap_phase, tap_d, tap_shift, t, ci, i, p0, n_phase, dq, slab):  # pragma: no cover
    """Where tap ``t`` of input channel ``ci`` reads the phases (``xq``) for output plane ``i``
    and the block starting at output position ``p0``."""
    return ((ci * n_phase + tap_phase[t]) * dq + i + tap_d[t]) * slab + tap_shift[t] + p0


@_jit.kernel()
def _nb_backward_input_task(g, w, gx, geo, tap_phase, tap_d, tap_shift, task):  # pragma: no cover
    # Gather form of the transposed convolution: phase plane element z of input slab u collects
    # w[t] * g[u - d_t, z - shift_t] over the taps t of its phase. The widened g sits in slabs
    # ``stride`` apart with ``margin`` zeros around each, so every read is in bounds and the
    # positions outside the output read zeros.
    c_in = gx.shape[1]
    c_out, cig, n_taps = w.shape
    out_d = g.shape[2]
    n_phase = geo[0] * geo[1] * geo[2]
    dq, hq, wq = geo[6], geo[7], geo[8]
    groups = c_in // cig
    cog = c_out // groups
    slab = hq * wq
    margin = 0
    for t in range(n_taps):
        margin = max(margin, tap_shift[t])
    stride = slab + margin
    gxf = gx.reshape(gx.size)
    plane = gx.shape[2] * gx.shape[3] * gx.shape[4]
    n = task // groups
    grp = task - n * groups
    gq = np.zeros(margin + cog * out_d * stride, g.dtype)
    for co in range(cog):
        _nb_widen(g, n, grp * cog + co, gq, margin + co * out_d * stride, wq, stride)
    gxq = np.empty(n_phase * dq * slab, gx.dtype)
    offs = np.empty(n_taps, np.int64)
    wts = np.empty(n_taps, gx.dtype)
    for ci in range(cig):
        for ph in range(n_phase):
            for u in range(dq):
                z0 = (ph * dq + u) * slab
                for p0 in range(0, slab, _BLOCK):
                    count = min(_BLOCK, slab - p0)
                    _flat.fill(gxq, z0 + p0, count, 0)
                    for co in range(cog):
                        used = 0
                        for t in range(n_taps):
                            i = u - tap_d[t]
                            if tap_phase[t] != ph or i < 0 or i >= out_d:
                                continue
                            offs[used] = margin + (co * out_d + i) * stride + p0 - tap_shift[t]
                            wts[used] = w[grp * cog + co, ci, t]
                            used += 1
                        _nb_taps(gxq, z0 + p0, gq, offs, wts, used, count)
        c = grp * cig + ci
        _flat.fill(gxf, (n * c_in + c) * plane, plane, 0)
        _nb_phases(gx, n, c, gxq, 0, geo, False)


@_jit.kernel()
def _nb_backward_weight_tasks(
    x, g, gw, gb, geo, tap_phase, tap_d, tap_shift, first, stop
):  # pragma: no cover
    """For each task in ``[first, stop)``, adds batch item ``task // groups``'s products to
    gw[o, ci, t] and its gradient's sums to gb[o] (both float64) for the output channels ``o``
    of group ``task % groups``. Called directly, not from a loop kernel: one level less for
    LLVM to optimise again, about 0.5 s less compiling.

    Each sum over an item's positions is one dot product (per input channel and tap) of the
    widened gradient's plane with the phases, in the input dtype; the zero columns of the
    widened gradient cancel the dropped outputs' products.
    """
    c_in = x.shape[1]
    c_out, cig, n_taps = gw.shape
    out_d, out_h = g.shape[2], g.shape[3]
    n_phase = geo[0] * geo[1] * geo[2]
    dq, hq, wq = geo[6], geo[7], geo[8]
    groups = c_in // cig
    cog = c_out // groups
    slab = hq * wq
    length = out_h * wq
    xq = np.empty(cig * n_phase * dq * slab, x.dtype)
    gq = np.empty(out_d * length, g.dtype)
    offs = np.empty(n_taps, np.int64)
    for task in range(first, stop):
        n = task // groups
        grp = task - n * groups
        for ci in range(cig):
            _nb_phases(x, n, grp * cig + ci, xq, ci * n_phase * dq * slab, geo, True)
        for co in range(cog):
            o = grp * cog + co
            _nb_widen(g, n, o, gq, 0, wq, length)
            gb[o] += _nb_sum(gq, out_d * length)
            for ci in range(cig):
                for i in range(out_d):
                    for t in range(n_taps):
                        offs[t] = _tap_offset(
                            tap_phase, tap_d, tap_shift, t, ci, i, 0, n_phase, dq, slab
                        )
                    t = 0
                    while t < n_taps:
                        left = n_taps - t
                        # Passes of five or three taps (gq's plane loaded once for them): 25 taps
                        # in five passes, 9 in three.
                        if left >= 10 or left == 5 or left == 8:
                            d0, d1, d2, d3, d4 = _nb_dot5(gq, i * length, xq, offs, t, length)
                            gw[o, ci, t] += d0
                            gw[o, ci, t + 1] += d1
                            gw[o, ci, t + 2] += d2
                            gw[o, ci, t + 3] += d3
                            gw[o, ci, t + 4] += d4
                            t += 5
                        elif left >= 3:
                            d0, d1, d2 = _nb_dot3(gq, i * length, xq, offs, t, length)
                            gw[o, ci, t] += d0
                            gw[o, ci, t + 1] += d1
                            gw[o, ci, t + 2] += d2
                            t += 3
                        else:
                            gw[o, ci, t] += _nb_dot(gq, i * length, xq, offs[t], length)
                            t += 1


@_jit.kernel()
def _nb_forward(x, w, b, y, geo, tap_phase, tap_d, tap_shift):  # pragma: no cover - numba
    """Output planes of each (batch item, group) task in turn; convlab splits the batch over its
    threads. (The task's loop is written in here rather than calling a task kernel: one level
    less for LLVM to optimise again when it inlines, about 0.7 s less compiling.)"""
    c_in = x.shape[1]
    c_out, cig, n_taps = w.shape
    out_d, out_h, out_w = y.shape[2], y.shape[3], y.shape[4]
    n_phase = geo[0] * geo[1] * geo[2]
    dq, hq, wq = geo[6], geo[7], geo[8]
    groups = c_in // cig
    cog = c_out // groups
    slab = hq * wq
    length = out_h * wq
    yf = y.reshape(y.size)
    xq = np.empty(cig * n_phase * dq * slab, x.dtype)
    block = min(length, _BLOCK)
    acc = np.empty(2 * block, y.dtype)
    offs = np.empty(cig * n_taps, np.int64)
    wts = np.empty(2 * cig * n_taps, y.dtype)
    for task in range(x.shape[0] * groups):
        n = task // groups
        grp = task - n * groups
        for ci in range(cig):
            _nb_phases(x, n, grp * cig + ci, xq, ci * n_phase * dq * slab, geo, True)
        for co in range(0, cog, 2):
            pair = co + 1 < cog  # two output channels a pass, reading the phases once for both
            for i in range(out_d):
                for p0 in range(0, length, _BLOCK):
                    count = min(_BLOCK, length - p0)
                    for c in range(2 if pair else 1):
                        o = grp * cog + co + c
                        _flat.fill(acc, c * block, count, b[o])
                        for ci in range(cig):
                            for t in range(n_taps):
                                wts[c * cig * n_taps + ci * n_taps + t] = w[o, ci, t]
                    for ci in range(cig):
                        for t in range(n_taps):
                            offs[ci * n_taps + t] = _tap_offset(
                                tap_phase, tap_d, tap_shift, t, ci, i, p0, n_phase, dq, slab
                            )
                    if pair:
                        _nb_taps2(acc, 0, block, xq, offs, wts, cig * n_taps, cig * n_taps, count)
                    else:
                        _nb_taps(acc, 0, xq, offs, wts, cig * n_taps, count)
                    for c in range(2 if pair else 1):
                        o = grp * cog + co + c
                        y0 = ((n * c_out + o) * out_d + i) * out_h * out_w
                        _nb_unwiden(yf, y0, acc[c * block :], p0, count, wq, out_w)


@_jit.kernel()
def _nb_backward_input(g, w, gx, geo, tap_phase, tap_d, tap_shift):  # pragma: no cover - numba
    groups = gx.shape[1] // w.shape[1]
    for task in range(gx.shape[0] * groups):
        _nb_backward_input_task(g, w, gx, geo, tap_phase, tap_d, tap_shift, task)


@_jit.kernel()
def _nb_backward(x, g, w, gx, gw, gb, geo, tap_phase, tap_d, tap_shift):  # pragma: no cover
    # Both gradients task by task (gw and gb, float64, zeroed by the caller): the second pass
    # finds the item's gradient planes in cache.
    groups = x.shape[1] // w.shape[1]
    for task in range(x.shape[0] * groups):
        _nb_backward_input_task(g, w, gx, geo, tap_phase, tap_d, tap_shift, task)
        _nb_backward_weight_tasks(x, g, gw, gb, geo, tap_phase, tap_d, tap_shift, task, task + 1)


def _to3d(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(N, C, *S)`` with 1 or 2 spatial dims -> ``(N, C, 1.., *S)`` with 3."""
    return tuple(shape[:2]) + (1,) * (5 - len(shape)) + tuple(shape[2:])


def _nb_plan(kernel, out_spatial, stride, padding, dilation):
    """The phase-buffer geometry and, per kernel tap, its phase, depth offset and flat shift.

    Worked out once per geometry (about 30 us for 25 taps, as much as a small layer's work);
    the kernels only read the arrays.
    """
    return _cached_plan(
        tuple(kernel),
        tuple(out_spatial),
        tuple(stride),
        tuple(tuple(p) for p in padding),
        tuple(dilation),
    )


@functools.lru_cache(maxsize=256)
def _cached_plan(kernel, out_spatial, stride, padding, dilation):
    lead = 3 - len(kernel)
    k = (1,) * lead + tuple(kernel)
    out = (1,) * lead + tuple(out_spatial)
    s = (1,) * lead + tuple(int(v) for v in stride)
    lo = (0,) * lead + tuple(int(v) for v, _ in padding)
    d = (1,) * lead + tuple(int(v) for v in dilation)
    reach = [((kk - 1) * dd) // ss for kk, dd, ss in zip(k, d, s)]
    # One spare row: the last flattened row reads up to reach_w elements past its end.
    dq, hq, wq = out[0] + reach[0], out[1] + reach[1] + 1, out[2] + reach[2]
    taps = []
    for a, bb, e in itertools.product(*(range(kk) for kk in k)):
        (ad, pd), (ah, ph), (aw, pw) = (divmod(t * dd, ss) for t, dd, ss in zip((a, bb, e), d, s))
        taps.append(((pd * s[1] + ph) * s[2] + pw, ad, ah * wq + aw))
    taps = np.array(taps, np.int64).T.copy()
    return (*s, *lo, dq, hq, wq), taps[0], taps[1], taps[2]


def _on_convlab_threads(part, n: int, products: int) -> list:
    """Run a numba kernel on slices of the batch, on convlab's threads (the kernels release the
    GIL); the parts' results, in order. numba's own workqueue threads (prange) were slower to
    start and now and then one of them late: W1d took 2.1 or 4.4 ms from call to call."""
    return parallel.run(part, n, parallel.parts(n, 2.0 * products))


def _nb_forward_call(x, weight, bias, stride, padding, dilation, groups, dtype):
    n, c_in, *spatial = x.shape
    c_out, cig, *kernel = weight.shape
    out_spatial = _out_spatial(spatial, kernel, stride, padding, dilation)
    y = np.empty((n, c_out, *out_spatial), dtype)
    if y.size == 0:
        return y
    if x.size == 0 or cig == 0:
        y[...] = 0 if bias is None else bias.astype(dtype).reshape((-1,) + (1,) * len(spatial))
        return y
    x5 = np.ascontiguousarray(x, dtype).reshape(_to3d(x.shape))
    w3 = np.ascontiguousarray(weight, dtype).reshape(c_out, cig, -1)
    b = np.zeros(c_out, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    plan = _nb_plan(kernel, out_spatial, stride, padding, dilation)
    y5 = y.reshape(_to3d(y.shape))
    _on_convlab_threads(
        lambda items: _nb_forward(x5[items], w3, b, y5[items], *plan),
        n,
        y.size * w3.shape[1] * w3.shape[2],
    )
    return y


def _nb_backward_input_call(
    grad_out, weight, input_shape, stride, padding, dilation, groups, dtype
):
    c_out, cig, *kernel = weight.shape
    if grad_out.size == 0 or math.prod(input_shape) == 0:
        return np.zeros(input_shape, dtype)
    gx = np.empty(input_shape, dtype)  # the kernel writes every plane
    g5 = np.ascontiguousarray(grad_out, dtype).reshape(_to3d(grad_out.shape))
    w3 = np.ascontiguousarray(weight, dtype).reshape(c_out, cig, -1)
    plan = _nb_plan(kernel, grad_out.shape[2:], stride, padding, dilation)
    gx5 = gx.reshape(_to3d(gx.shape))
    _on_convlab_threads(
        lambda items: _nb_backward_input(g5[items], w3, gx5[items], *plan),
        input_shape[0],
        grad_out.size * w3.shape[1] * w3.shape[2],
    )
    return gx


def _nb_backward_call(x, grad_out, weight, weight_shape, stride, padding, dilation, dtype):
    """``(grad_x, grad_w, grad_b)``; grad_x only when ``weight`` is given (else None)."""
    c_out, cig, *kernel = weight_shape
    want_x = weight is not None
    if grad_out.size == 0 or x.size == 0:  # (x.size is 0 when cig is)
        gx = np.zeros(x.shape, dtype) if want_x else None
        return gx, np.zeros(weight_shape, dtype), _bias_grad(grad_out, dtype)
    x5 = np.ascontiguousarray(x, dtype).reshape(_to3d(x.shape))
    g5 = np.ascontiguousarray(grad_out, dtype).reshape(_to3d(grad_out.shape))
    plan = _nb_plan(kernel, grad_out.shape[2:], stride, padding, dilation)
    n_taps = math.prod(kernel)
    if want_x:
        w3 = np.ascontiguousarray(weight, dtype).reshape(c_out, cig, -1)
        gx = np.empty(x.shape, dtype)  # the kernel writes every plane
        gx5 = gx.reshape(x5.shape)

    def part(items: slice) -> tuple[np.ndarray, np.ndarray]:  # this slice's sums, in float64
        gw = np.zeros((c_out, cig, n_taps), np.float64)
        gb = np.zeros(c_out, np.float64)
        if want_x:
            _nb_backward(x5[items], g5[items], w3, gx5[items], gw, gb, *plan)
        else:
            tasks = (items.stop - items.start) * (x.shape[1] // cig)
            _nb_backward_weight_tasks(x5[items], g5[items], gw, gb, *plan, 0, tasks)
        return gw, gb

    products = grad_out.size * cig * n_taps * (2 if want_x else 1)
    partials = _on_convlab_threads(part, x.shape[0], products)
    gw = functools.reduce(np.add, [p[0] for p in partials])
    gb = functools.reduce(np.add, [p[1] for p in partials])
    gw = gw.astype(dtype, copy=False).reshape(weight_shape)
    return (gx if want_x else None), gw, gb.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Public functions.


def direct_conv_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    impl: str = "auto",
) -> np.ndarray:
    """Grouped cross-correlation computed directly, without im2col.

    Same result as :func:`convlab.kernels.conv.conv_forward`:
    ``y[n, o, p] = b[o] + sum_{c, k} w[o, c, k] x_pad[n, g(o) * C_in/G + c, stride * p + dil * k]``.
    Fast when ``C_in / groups * prod(kernel)`` is small (depthwise, or few input channels).

    Shape:
        x ``(N, C_in, *S)``, weight ``(C_out, C_in / groups, *k)`` (1 to 3 spatial dims),
        y ``(N, C_out, *O)`` with ``O = (S + lo + hi - dil * (k - 1) - 1) // stride + 1``.
    """
    dtype = _common_dtype(x, weight, bias)
    if _resolve(impl) == "numba":
        return _nb_forward_call(x, weight, bias, stride, padding, dilation, groups, dtype)
    return _np_forward(x, weight, bias, stride, padding, dilation, groups, dtype)


def direct_conv_backward_input(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    impl: str = "auto",
) -> np.ndarray:
    """Gradient of :func:`direct_conv_forward` with respect to ``x``, shape ``input_shape``."""
    dtype = _common_dtype(grad_out, weight)
    input_shape = tuple(input_shape)
    args = (stride, padding, dilation, groups, dtype)
    if _resolve(impl) == "numba":
        return _nb_backward_input_call(grad_out, weight, input_shape, *args)
    return _np_backward_input(grad_out, weight, input_shape, *args)


def direct_conv_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    impl: str = "auto",
) -> np.ndarray:
    """Gradient of :func:`direct_conv_forward` with respect to ``weight``, shape ``weight_shape``.

    The numba path sums each item's products per tap in vector accumulators of the input dtype
    (reassociated) and adds those sums in float64.
    """
    args = (stride, padding, dilation, groups, impl)
    return direct_conv_backward_weight_bias(x, grad_out, weight_shape, *args)[0]


def direct_conv_backward_weight_bias(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    impl: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_w, grad_b)``: :func:`direct_conv_backward_weight` and the bias-gradient, which
    the numba path sums from the same gradient planes (``grad_out`` summed over all but the
    channels)."""
    dtype = _common_dtype(x, grad_out)
    weight_shape = tuple(weight_shape)
    if _resolve(impl) == "numba":
        _, grad_w, grad_b = _nb_backward_call(
            x, grad_out, None, weight_shape, stride, padding, dilation, dtype
        )
        return grad_w, grad_b
    args = (stride, padding, dilation, groups, dtype)
    return _np_backward_weight(x, grad_out, weight_shape, *args), _bias_grad(grad_out, dtype)


def direct_conv_backward(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight: np.ndarray,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    impl: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(grad_x, grad_w, grad_b)`` of :func:`direct_conv_forward`, in one pass where it can.

    The numba path computes the three task by task in one split over the threads, reading each
    gradient plane from memory once; grad_b is ``grad_out`` summed over all but the channels.
    """
    dtype = _common_dtype(x, grad_out, weight)
    args = (stride, padding, dilation, groups, dtype)
    if _resolve(impl) == "numba":
        return _nb_backward_call(
            x, grad_out, weight, weight.shape, stride, padding, dilation, dtype
        )
    return (
        _np_backward_input(grad_out, weight, tuple(x.shape), *args),
        _np_backward_weight(x, grad_out, tuple(weight.shape), *args),
        _bias_grad(grad_out, dtype),
    )


def depthwise_conv_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    impl: str = "auto",
) -> np.ndarray:
    """Depthwise convolution: ``conv_forward(..., groups=C_in)`` with weight ``(M * C_in, 1, *k)``.

    Output channel ``o`` reads input channel ``o // M`` (``M``, the channel multiplier, is
    ``C_out / C_in``).

    Shape:
        x ``(N, C_in, *S)``, weight ``(M * C_in, 1, *k)``, y ``(N, M * C_in, *O)``.

    See https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html (groups == in_channels).
    """
    assert weight.shape[1] == 1 and weight.shape[0] % x.shape[1] == 0
    return direct_conv_forward(x, weight, bias, stride, padding, dilation, x.shape[1], impl)


def depthwise_conv_backward_input(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    impl: str = "auto",
) -> np.ndarray:
    """Gradient of :func:`depthwise_conv_forward` with respect to ``x``."""
    return direct_conv_backward_input(
        grad_out, weight, input_shape, stride, padding, dilation, input_shape[1], impl
    )


def depthwise_conv_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    impl: str = "auto",
) -> np.ndarray:
    """Gradient of :func:`depthwise_conv_forward` with respect to ``weight``."""
    return direct_conv_backward_weight(
        x, grad_out, weight_shape, stride, padding, dilation, x.shape[1], impl
    )
