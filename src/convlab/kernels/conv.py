"""N-d convolution and transposed convolution on ndarrays.

The reference algorithm here is im2col + batched GEMM (strided or "wide" columns, in chunks of
the batch). ``conv_forward`` / ``conv_backward_input`` / ``conv_backward_weight`` dispatch each
call to it or to Winograd (``winograd.py``, also for dilated 3x3 layers through their phases),
FFT (``fft.py``) or direct loops (``depthwise.py``), as ``convlab.kernels.select`` decides: by
the rules below, by measurement, or by the user's choice. All give the same numbers.

Every function takes batched arrays ``(N, C, *spatial)`` and canonical arguments: ``stride`` and
``dilation`` are tuples of ints, ``padding`` is a tuple of ``(low, high)`` pairs, one per spatial
dimension. Weights are PyTorch's ``(C_out, C_in / groups, *kernel)``. Checking arguments is the
caller's job (``convlab.nn.functional``); here only assertions guard internal invariants.

The transposed convolution is the adjoint of the convolution (``Y = C X``, ``X = C^T Y``): its
forward pass is the convolution's input-gradient, its input-gradient is a convolution, and both
share one weight-gradient with the roles of input and output swapped.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convlab import shapes
from convlab.kernels import _flat, _jit, depthwise, fft, parallel, select, winograd

Pads = tuple[tuple[int, int], ...]

__all__ = [
    "conv_forward",
    "conv_backward",
    "conv_backward_input",
    "conv_backward_weight",
    "conv_backward_bias",
    "conv_transpose_forward",
    "conv_transpose_backward",
    "conv_transpose_backward_input",
    "conv_transpose_backward_weight",
    "im2col",
    "col2im",
]


def _pad_zeros(x: np.ndarray, padding: Pads) -> np.ndarray:
    if not any(lo or hi for lo, hi in padding):
        return x
    out = np.zeros(
        x.shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], padding)), x.dtype
    )
    out[
        (slice(None), slice(None))
        + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], padding))
    ] = x
    return out


# Columns of one GEMM chunk stay under this size: they then stay in cache between being written
# by im2col and read by the matrix product (each thread its own chunks), and peak memory stays
# small. 2 MB against 8 MB: W4 15.9 -> 12.9 ms, W4-bwd 38 -> 34 ms, W3-bwd 8.0 -> 6.7 ms.
CHUNK_BYTES = 2 << 20
# Forward passes keep their columns for the weight-gradient when they are at most this big.
KEEP_COLS_BYTES = 16 << 20


def _windows(
    xp: np.ndarray,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out_spatial: tuple[int, ...],
) -> np.ndarray:
    """Read-only strided view ``(N, C, *kernel, *out)`` of an already padded input."""
    sn, sc, *ss = xp.strides
    return as_strided(
        xp,
        shape=(*xp.shape[:2], *kernel, *out_spatial),
        strides=(
            sn,
            sc,
            *(s * d for s, d in zip(ss, dilation)),
            *(s * t for s, t in zip(ss, stride)),
        ),
        writeable=False,
    )


def im2col(
    x: np.ndarray,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    out_spatial: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Unfold every receptive field into a column: ``(N, C, *S) -> (N, C, *kernel, *out)``.

    A strided view of the padded input is copied once; ``reshape(N, groups, C_in/groups *
    prod(kernel), prod(out))`` is then the right-hand side of one GEMM per sample and group
    (PyTorch's ``unfold`` layout). ``out_spatial`` limits the windows taken (the adjoint of a
    transposed convolution may need fewer than fit).
    """
    if out_spatial is None:
        out_spatial = _padded_out(x.shape[2:], kernel, stride, padding, dilation)
    xp = _pad_zeros(x, padding)
    return np.ascontiguousarray(_windows(xp, kernel, stride, dilation, tuple(out_spatial)))


def _overlap(size: int, low: int, start: int, step: int, count: int) -> tuple[int, int]:
    """Output positions ``m`` in ``[first, last)`` whose input ``m * step + start - low`` exists."""
    first = max(0, -((start - low) // step)) if start < low else 0
    last = min(count, (size - 1 + low - start) // step + 1) if size - 1 + low >= start else 0
    return first, max(first, last)


def col2im(
    cols: np.ndarray,
    input_shape: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: add each column back onto the input positions it came from.

    ``cols`` has shape ``(N, C, *kernel, *out)``. Loops over kernel offsets only (one strided
    slice-add per offset, straight into the unpadded result: padding positions are skipped
    rather than cropped); overlapping windows therefore accumulate. ``out``, if given, is a
    zeroed array of ``input_shape`` to accumulate into.
    """
    n, c, *spatial = input_shape
    out_spatial = cols.shape[2 + len(kernel) :]
    acc = np.zeros(input_shape, cols.dtype) if out is None else out
    for offset in itertools.product(*(range(k) for k in kernel)):
        source, target = [], []
        for size, (low, _), o, d, s, m in zip(
            spatial, padding, offset, dilation, stride, out_spatial
        ):
            first, last = _overlap(size, low, o * d, s, m)
            if first == last:
                break
            begin = first * s + o * d - low
            source.append(slice(first, last))
            target.append(slice(begin, begin + (last - first - 1) * s + 1, s))
        else:
            acc[(slice(None), slice(None), *target)] += cols[
                (slice(None), slice(None), *offset, *source)
            ]
    return acc


def _widen(g: np.ndarray, grid) -> np.ndarray:
    """``g`` ``(N, C, *out)`` in the corner of a zero ``(N, C, *grid)``, flattened to
    ``(N, C, prod(grid))``: outputs laid out on longer rows, as the wide layouts index them."""
    wide = np.zeros((*g.shape[:2], *grid), g.dtype)
    wide[(slice(None), slice(None)) + tuple(slice(0, m) for m in g.shape[2:])] = g
    return wide.reshape(*g.shape[:2], math.prod(grid))


def _hashable(spatial, kernel, stride, padding, dilation, out_spatial) -> tuple:
    """A convolution's geometry as tuples: the key of the layouts cached per shape."""
    return tuple(tuple(v) for v in (spatial, kernel, stride, padding, dilation, out_spatial))


class _Wide:
    """A stride-1 convolution on the flattened padded input: "wide" columns.

    With stride 1, output position ``p`` and kernel offset ``k`` read the padded input at
    ``p + k`` in flattened coordinates, if outputs are indexed on the padded grid (rows as long
    as padded rows; the extra positions at the end of each row are computed and dropped). Every
    kernel offset is then ONE contiguous run of the flattened input: im2col copies and col2im
    adds long rows instead of short strided ones, which is several times faster for small
    images. The price is the dropped positions: ``waste`` is their share of the GEMM.
    """

    def __init__(self, spatial, kernel, padding: Pads, dilation, out_spatial) -> None:
        self.spatial = tuple(spatial)
        self.padding = padding
        self.out = tuple(out_spatial)
        self.padded = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, padding))
        self.grid = (self.out[0], *self.padded[1:])  # outputs on the padded grid
        self.length = math.prod(self.grid)
        row = [math.prod(self.padded[i + 1 :]) for i in range(len(self.padded))]
        self.steps = tuple(d * r for d, r in zip(dilation, row))
        self.offsets = [
            sum(o * t for o, t in zip(offset, self.steps))
            for offset in itertools.product(*(range(k) for k in kernel))
        ]
        self.kernel = tuple(kernel)
        self.size = max(math.prod(self.padded), self.offsets[-1] + self.length)
        self.waste = self.length / max(1, math.prod(self.out))

    def flat_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` zero-padded and flattened: ``(N, C, size)``."""
        buf = np.zeros((*x.shape[:2], self.size), x.dtype)
        self._inside(buf)[...] = x
        return buf

    def _inside(self, buf: np.ndarray) -> np.ndarray:
        padded = buf[..., : math.prod(self.padded)].reshape(*buf.shape[:2], *self.padded)
        return padded[
            (slice(None), slice(None))
            + tuple(slice(lo, lo + s) for s, (lo, _) in zip(self.spatial, self.padding))
        ]

    def columns(self, buf: np.ndarray) -> np.ndarray:
        """Read-only view ``(N, C, *kernel, length)`` of a flat input."""
        sn, sc, item = buf.strides
        return as_strided(
            buf,
            shape=(*buf.shape[:2], *self.kernel, self.length),
            strides=(sn, sc, *(t * item for t in self.steps), item),
            writeable=False,
        )

    def narrow(
        self, y: np.ndarray, bias: np.ndarray | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """``(N, C, length)`` on the padded grid -> ``(N, C, *out)`` (+ bias), into ``out``.

        The bias is added in the same pass as the copy. A new array when ``out`` is None.
        """
        y = y.reshape(*y.shape[:2], *self.grid)
        y = y[(slice(None), slice(None)) + tuple(slice(0, m) for m in self.out)]
        if out is None:
            out = np.empty(y.shape, y.dtype if bias is None else np.result_type(y, bias))
        if bias is None:
            np.copyto(out, y)
            return out
        return np.add(y, bias.reshape((1, -1) + (1,) * len(self.out)), out=out)

    def widen(self, g: np.ndarray) -> np.ndarray:
        """``(N, C, *out)`` -> ``(N, C, length)``, zeros at the dropped positions."""
        return _widen(g, self.grid)

    def fold(self, cols: np.ndarray, out: np.ndarray) -> None:
        """Add wide columns ``(N, C, *kernel, length)`` onto ``out`` ``(N, C, *spatial)``."""
        acc = np.zeros((*cols.shape[:2], self.size), cols.dtype)
        flat = cols.reshape(*cols.shape[:2], len(self.offsets), self.length)
        for j, start in enumerate(self.offsets):
            acc[:, :, start : start + self.length] += flat[:, :, j]
        out += self._inside(acc)

    def input_grad(self, g_wide: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
        """Add the input-gradient of wide ``g_wide`` ``(N, C_out, length)`` onto ``out``.

        The last spatial dimension's kernel taps are applied by shifting ``g`` (``k`` shifted
        copies, cheap) so that the GEMM contracts over ``C_out * k`` instead of ``C_out``, and
        only the other dimensions' offsets remain to be folded: ``k`` times fewer passes over
        memory than folding every kernel offset. (groups == 1)
        """
        n, c_out, length = g_wide.shape
        c_in = weight.shape[1]
        last, step = self.kernel[-1], self.steps[-1]
        span = length + (last - 1) * step
        shifted = np.zeros((n, c_out, last, span), g_wide.dtype)
        for j in range(last):
            shifted[:, :, j, j * step : j * step + length] = g_wide
        rest = math.prod(self.kernel[:-1])
        # (rest, C_in) x (C_out, last): row (r, c) holds w[o, c, r, j] at column (o, j).
        w = weight.reshape(c_out, c_in, rest, last).transpose(2, 1, 0, 3)
        cols = np.matmul(w.reshape(rest * c_in, c_out * last), shifted.reshape(n, -1, span))
        cols = cols.reshape(n, rest, c_in, span)
        acc = np.zeros((n, c_in, self.size), cols.dtype)
        for r, start in enumerate(self.offsets[::last]):
            acc[:, :, start : start + span] += cols[:, r]
        out += self._inside(acc)

    def input_grad_numba(self, g: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
        """:meth:`input_grad` of the narrow ``g`` ``(N, C_out, *out)`` into ``out`` (which it
        overwrites) for 1-d and 2-d layers, the shifts and the fold each one numba pass: two
        calls where NumPy makes ~2k + 4 passes (LeNet conv2's input-gradient, one thread: 0.88 ->
        0.75 ms; W4-bwd 30.0 -> 27.9 ms)."""
        n, c_out = g.shape[:2]
        c_in = weight.shape[1]
        last, step = self.kernel[-1], self.steps[-1]
        span = self.length + (last - 1) * step
        row = self.padded[-1]
        g4 = g.reshape(n, c_out, -1, g.shape[-1])  # 1-d: one row
        shifted = np.empty((n, c_out, last, span), g.dtype)
        _nb_shift_gradient(np.ascontiguousarray(g4), shifted, row, step)
        rest = math.prod(self.kernel[:-1])
        w = weight.reshape(c_out, c_in, rest, last).transpose(2, 1, 0, 3)
        cols = np.matmul(w.reshape(rest * c_in, c_out * last), shifted.reshape(n, -1, span))
        starts = np.array(self.offsets[::last], np.int64)
        lows = [lo for lo, _ in self.padding]
        shape4 = (n, c_in, math.prod(out.shape[2:-1]), out.shape[-1])  # 1-d: one row
        contiguous = out.flags.c_contiguous  # then the reshape is a view of out
        target = out.reshape(shape4) if contiguous else np.empty(shape4, out.dtype)
        low_h = lows[0] if len(lows) == 2 else 0
        _nb_fold_rows(cols.reshape(n, rest, c_in, span), starts, target, row, low_h, lows[-1])
        if not contiguous:
            out[...] = target.reshape(out.shape)


@_jit.kernel()
def _nb_shift_gradient(g, shifted, row, step):  # pragma: no cover - numba
    """``shifted[n, o, j]``: ``g[n, o]`` (``(H, W)``) laid on rows ``row`` long from position
    ``j * step`` on, zeros elsewhere: the ``k`` shifted wide copies of :meth:`_Wide.input_grad`
    written in one pass from the narrow ``g`` (no widened copy). Loops written out, as in
    :func:`_nb_im2col_2d` (``_flat``'s calls: 0.12 -> 0.15 ms on LeNet's conv2)."""
    n, c, h, w = g.shape
    last, span = shifted.shape[2], shifted.shape[3]
    gf, sf = g.reshape(g.size), shifted.reshape(shifted.size)
    zero, one = sf.dtype.type(0), np.uint64(1)
    for plane in range(n * c):
        src0 = plane * h * w
        dst0 = np.uint64(plane * last * span)
        t = np.uint64(0)
        while t < np.uint64(span):
            sf[dst0 + t] = zero
            t += one
        for y in range(h):  # copy 0, row by row
            d = dst0 + np.uint64(y * row)
            src = np.uint64(src0 + y * w)
            t = np.uint64(0)
            while t < np.uint64(w):
                sf[d + t] = gf[src + t]
                t += one
        for j in range(1, last):  # copy j is copy 0 moved j * step along: one long run
            dj = dst0 + np.uint64(j * span)
            shift = np.uint64(j * step)
            t = np.uint64(0)
            while t < shift:
                sf[dj + t] = zero
                t += one
            m = np.uint64(span) - shift
            t = np.uint64(0)
            while t < m:
                sf[dj + shift + t] = sf[dst0 + t]
                t += one


@_jit.kernel()
def _nb_fold_rows(cols, starts, out, row, low_h, low_w):  # pragma: no cover - numba
    """``out[n, c]`` (``(H, W)``, overwritten) = the sum over kernel rows ``r`` of
    ``cols[n, r, c]`` placed at flat padded offset ``starts[r]``, read inside the padding
    (``low_h``, ``low_w``): :meth:`_Wide.input_grad`'s fold and crop. Each kernel row is one
    long run into an accumulator over the padded rows that ``out`` reads (LeNet's conv2: 144
    elements, where a run per output row had 14), then the rows are cropped into ``out``; the
    same additions in the same order as the NumPy passes (so the same numbers)."""
    n, rest, c, span = cols.shape
    h, w = out.shape[2], out.shape[3]
    cf, of = cols.reshape(cols.size), out.reshape(out.size)
    a0 = low_h * row + low_w  # the padded grid's positions that out reads: [a0, a1)
    a1 = (low_h + h - 1) * row + low_w + w
    acc = np.empty(max(1, a1 - a0), of.dtype)
    zero, one = of.dtype.type(0), of.dtype.type(1)
    for s in range(n):
        for ch in range(c):
            _flat.fill(acc, 0, a1 - a0, zero)
            for r in range(rest):
                col0 = ((s * rest + r) * c + ch) * span
                first = max(a0, starts[r])
                stop = min(a1, starts[r] + span)
                if first < stop:  # 1 * v is v: the same sums as NumPy's adds
                    _flat.axpy(acc, first - a0, cf, col0 + first - starts[r], stop - first, one)
            out0 = (s * c + ch) * h * w
            for y in range(h):
                _flat.copy(of, out0 + y * w, 1, acc, y * row, 1, w)


class _PhaseFold:
    """col2im of a strided convolution as stride-1 folds on the stride's phase grids.

    Padded input position ``s*o + d*k`` lies in phase ``(d*k) % s`` at index
    ``o + (d*k) // s``: within its phase every kernel tap is a plain shift. With the positions
    ``o`` laid out on the phase grid's rows ("wide", as :class:`_Wide`), each tap's columns are
    added to their phase as ONE contiguous run, where col2im adds short strided rows (W3, a
    4x4 stride-2 transposed convolution: 28-element rows at stride 2). The phases are then
    copied into place, ``s^n`` strided copies in all.
    """

    def __init__(self, spatial, kernel, stride, padding: Pads, dilation, out_spatial) -> None:
        self.spatial = tuple(spatial)
        self.out = tuple(out_spatial)
        self.stride = tuple(stride)
        padded = [n + lo + hi for n, (lo, hi) in zip(spatial, padding)]
        self.lows = tuple(lo for lo, _ in padding)
        self.grid = tuple(-(-p // st) for p, st in zip(padded, stride))  # rows of each phase
        self.wide = (self.out[0], *self.grid[1:])  # output positions on the phase rows
        self.length = math.prod(self.wide)
        rows = [math.prod(self.grid[i + 1 :]) for i in range(len(self.grid))]
        self.taps = []  # (phase, start) per kernel tap, taps in row-major order
        for tap in itertools.product(*(range(k) for k in kernel)):
            shifts = [d * k for d, k in zip(dilation, tap)]
            phase = tuple(v % st for v, st in zip(shifts, stride))
            start = sum((v // st) * r for v, st, r in zip(shifts, stride, rows))
            self.taps.append((phase, start))
        self.phases = sorted({phase for phase, _ in self.taps})
        self.size = max(math.prod(self.grid), max(s for _, s in self.taps) + self.length)
        self.waste = self.length / max(1, math.prod(self.out))

    def widen(self, g: np.ndarray) -> np.ndarray:
        """``(N, C, *out)`` -> ``(N, C, length)`` on the phase rows, zeros in the extra places."""
        return _widen(g, self.wide)

    def fold(self, cols: np.ndarray, out: np.ndarray) -> None:
        """Add wide columns ``(N, C, taps, length)`` onto ``out`` ``(N, C, *spatial)``."""
        n, c = cols.shape[:2]
        acc = {phase: np.zeros((n, c, self.size), cols.dtype) for phase in self.phases}
        for j, (phase, start) in enumerate(self.taps):
            acc[phase][:, :, start : start + self.length] += cols[:, :, j]
        grid_size = math.prod(self.grid)
        for phase, flat in acc.items():
            pairs = _phase_slices(phase, self.stride, self.lows, self.spatial)
            if pairs is not None:
                grid = flat[:, :, :grid_size].reshape(n, c, *self.grid)
                out[pairs[0]] += grid[pairs[1]]

    def fold_numba(self, cols: np.ndarray, out: np.ndarray) -> None:
        """:meth:`fold` for 1-d and 2-d layers in one numba pass that overwrites ``out``
        (contiguous): every element is the sum of its phase's taps, added in the same order
        as :meth:`fold` (so the same numbers). W3's fold: 3.0 -> 1.5 ms on one thread."""
        lift = 2 - len(self.spatial)  # 1-d as 2-d with one row
        grid = (1,) * lift + self.grid
        stride = (1,) * lift + self.stride
        lows = (0,) * lift + self.lows
        phases = [(0,) * lift + phase for phase, _ in self.taps]
        taps = np.full((stride[0] * stride[1], len(self.taps) + 1), -1, np.int64)
        for j, (ph, pw) in enumerate(phases):  # per phase, its taps in order
            row = taps[ph * stride[1] + pw]
            row[np.argmax(row < 0)] = j
        starts = np.array([start for _, start in self.taps], np.int64)
        n, c = out.shape[:2]
        assert out.flags.c_contiguous  # the reshape must be a view
        out4 = out.reshape(n, c, -1, out.shape[-1])
        geometry = np.array([*grid, *stride, *lows, self.length], np.int64)
        _nb_phase_fold(cols.reshape(n, c, len(self.taps), -1), taps, starts, out4, geometry)


@_jit.kernel()
def _nb_phase_fold(cols, taps, starts, out, geometry):  # pragma: no cover - numba
    """``out[n, c]`` (``(H, W)``, overwritten): on each stride phase, the sum of its taps'
    columns ``cols[n, c, j]`` shifted by ``starts[j]`` on the phase grid, added over the phase's
    rows that reach ``out`` as one long run per tap into an accumulator (the phase grid's rows
    laid end to end), then copied row by row to the phase's (strided) places in ``out``."""
    grid_h, grid_w, st_h, st_w, lo_h, lo_w, length = geometry
    n, c, n_taps, _ = cols.shape
    h, w = out.shape[2], out.shape[3]
    size = grid_h * grid_w
    for j in range(n_taps):
        size = max(size, starts[j] + length)
    acc = np.empty(size, out.dtype)
    zero, one = out.dtype.type(0), out.dtype.type(1)
    for s in range(n):
        for ch in range(c):
            src = cols[s, ch].reshape(cols.shape[2] * cols.shape[3])
            dst = out[s, ch].reshape(h * w)
            for rh in range(st_h):
                # Phase rows qh in [r_lo, r_hi) land on output rows qh * st_h + rh - lo_h.
                y0 = rh - lo_h
                r_lo = max(0, (st_h - 1 - y0) // st_h) if y0 < 0 else 0
                r_hi = min(grid_h, (h - 1 - y0) // st_h + 1) if h - 1 - y0 >= 0 else 0
                for rw in range(st_w):
                    phase_taps = taps[rh * st_w + rw]
                    x0 = rw - lo_w  # output column of phase column 0
                    q_lo = max(0, (st_w - 1 - x0) // st_w) if x0 < 0 else 0
                    q_hi = min(grid_w, (w - 1 - x0) // st_w + 1) if w - 1 - x0 >= 0 else 0
                    if r_hi <= r_lo or q_hi <= q_lo:
                        continue
                    a0, a1 = r_lo * grid_w, r_hi * grid_w
                    _flat.fill(acc, a0, a1 - a0, zero)
                    k = 0
                    while phase_taps[k] >= 0:
                        j = phase_taps[k]
                        first = max(a0, starts[j])  # acc positions this tap reaches
                        stop = min(a1, starts[j] + length)
                        if first < stop:
                            _flat.axpy(
                                acc, first, src, j * length + first - starts[j], stop - first, one
                            )
                        k += 1
                    for qh in range(r_lo, r_hi):
                        y = qh * st_h + y0
                        _flat.copy(
                            dst, y * w + q_lo * st_w + x0, st_w, acc, qh * grid_w + q_lo, 1,
                            q_hi - q_lo,
                        )  # fmt: skip


def _phase_slices(phase, steps, lows, sizes):
    """Where phase ``phase`` of a padded grid meets the unpadded array inside it.

    Per dimension, padded position ``P = q * step + r`` (phase ``r``, index ``q``) is unpadded
    position ``P - low``. Returns ``(array slices, phase slices)`` for ``(N, C, ...)`` arrays,
    or None when the phase holds no unpadded position.
    """
    target, source = [slice(None)] * 2, [slice(None)] * 2
    for r, step, low, size in zip(phase, steps, lows, sizes):
        first = (r - low) % step
        count = len(range(first, size, step))
        if count == 0:
            return None
        index = (first + low) // step
        target.append(slice(first, first + (count - 1) * step + 1, step))
        source.append(slice(index, index + count))
    return tuple(target), tuple(source)


@functools.lru_cache(maxsize=256)
def _phase_fold(spatial, kernel, stride, padding, dilation, out_spatial) -> _PhaseFold | None:
    """The phase fold of a strided convolution's input-gradient, where it wastes little."""
    if all(s == 1 for s in stride) or len(kernel) == 0:
        return None
    fold = _PhaseFold(spatial, kernel, stride, padding, dilation, out_spatial)
    return fold if fold.waste <= 1.5 else None


def _wide_geometry(spatial, kernel, stride, padding, dilation, out_spatial) -> _Wide | None:
    """The wide layout when it applies (stride 1) and wastes at most half the GEMM."""
    return _wide_layout(*_hashable(spatial, kernel, stride, padding, dilation, out_spatial))


@functools.lru_cache(maxsize=256)
def _wide_layout(spatial, kernel, stride, padding, dilation, out_spatial) -> _Wide | None:
    # Cached: every pass of every call of a layer asks for the same (read-only) geometry.
    if any(s != 1 for s in stride) or len(kernel) == 0:
        return None
    if math.prod(kernel) == 1 and not any(lo or hi for lo, hi in padding):
        return None  # pointwise: the input itself is the column matrix
    wide = _Wide(spatial, kernel, padding, dilation, out_spatial)
    return wide if wide.waste <= 1.5 else None


def _column_buffer(shape, dtype, pad_rows: bool = True) -> np.ndarray:
    """An empty array of ``shape`` ``(n, C, *kernel, *positions)`` for columns.

    With ``pad_rows`` (a single positions axis: wide or 1-d columns), rows a multiple of 4 KiB
    long are padded by 64 bytes: copying and multiplying rows that sit exactly 4 KiB apart
    makes loads and stores alias in the cache (W4, rows of 1024 floats: 28 ms instead of
    18 ms, depending on where the arrays land). The result is then a view with the logical
    shape whose rows are spaced wider; the BLAS takes it as is.
    """
    itemsize = np.dtype(dtype).itemsize
    if (shape[-1] * itemsize) % 4096 or not pad_rows:
        return np.empty(shape, dtype)
    pad = 64 // itemsize
    buffer = np.empty((*shape[:-1], shape[-1] + pad), dtype)
    return buffer[..., : shape[-1]]


def _chunk(n: int, bytes_per_sample: int) -> int:
    return max(1, min(n, CHUNK_BYTES // max(1, bytes_per_sample)))


def _padded_out(spatial, kernel, stride, padding: Pads, dilation) -> tuple[int, ...]:
    padded = [s + lo + hi for s, (lo, hi) in zip(spatial, padding)]
    return tuple(shapes.conv_output_shape(padded, kernel, stride, [0] * len(kernel), dilation))


# Below this share of wasted positions the wide layout beats the two copies of _row_shifted.
WIDE_MAX_WASTE = 1.1


def _row_shifted_applies(spatial, kernel, stride, padding, dilation, out_spatial) -> bool:
    """Whether forward columns are built by :func:`_row_shifted_columns` (2-d, stride 1)."""
    geometry = _hashable(spatial, kernel, stride, padding, dilation, out_spatial)
    return _row_shifted_rule(*geometry, WIDE_MAX_WASTE)


@functools.lru_cache(maxsize=256)
def _row_shifted_rule(spatial, kernel, stride, padding, dilation, out_spatial, max_waste) -> bool:
    if len(kernel) != 2 or any(s != 1 for s in stride) or math.prod(kernel) == 1:
        return False
    wide = _wide_layout(spatial, kernel, stride, padding, dilation, out_spatial)
    return wide is None or wide.waste >= max_waste


def _forward_wide(spatial, kernel, stride, padding, dilation, out_spatial) -> _Wide | None:
    """The wide layout of the forward's (and weight-gradient's) columns, if they use it."""
    if _row_shifted_applies(spatial, kernel, stride, padding, dilation, out_spatial):
        return None
    return _wide_geometry(spatial, kernel, stride, padding, dilation, out_spatial)


def _row_shifted_columns(x, kernel, padding, dilation, out_spatial) -> np.ndarray:
    """Read-only view ``(N, C, kh, kw, Ho * Wo)`` of exact stride-1 2-d columns.

    Two copies instead of a wide layout's wasted positions: first the ``kw`` column shifts of
    the padded input, each cut to the output width (``(N, C, kw, Hp, Wo)``, rows of ``Wo``);
    in that array every (row tap, column tap) is ONE contiguous run of ``Ho * Wo`` elements,
    which the caller copies. LeNet's layers: 17-20 % faster than wide columns, whose extra
    positions cost GEMM work and a narrowing copy.
    """
    xp = _pad_zeros(x, padding)
    n, c, hp, _ = xp.shape
    (kh, kw), (dh, dw) = kernel, dilation
    ho, wo = out_spatial
    sn, sc, sh, sw = xp.strides
    shifts = np.empty((n, c, kw, hp, wo), x.dtype)
    np.copyto(
        shifts,
        as_strided(xp, shape=shifts.shape, strides=(sn, sc, dw * sw, sh, sw), writeable=False),
    )
    item = x.itemsize
    return as_strided(
        shifts,
        shape=(n, c, kh, kw, ho * wo),
        strides=(*shifts.strides[:2], dh * wo * item, hp * wo * item, item),
        writeable=False,
    )


class _Columns:
    """Where a convolution's columns come from, and how a slice of the batch gets them.

    ``view(samples)`` is the strided column view ``(n, C, *kernel, *positions)`` of a slice of
    the batch, the one im2col copies. Views are made per slice so that each thread pads (and
    shifts) only its own samples: made once for the batch before the split, LeNet conv2's
    shifted rows were 40 % of its forward on two threads. With numba, exact 2-d columns are
    written by one compiled pass straight from x instead (:func:`_nb_im2col_2d`).
    """

    def __init__(self, x, wide, view, shape, positions, in_place=False, geometry=None):
        self.x, self.wide, self.view, self.shape = x, wide, view, shape
        self.positions = positions  # output positions per sample, as the GEMM computes them
        self.in_place = in_place  # the view is x itself (unpadded stride-1 pointwise)
        self.one_axis = len(shape) == 3 + (x.ndim - 2)  # a single positions axis
        self.geometry = geometry  # for the numba pass, else None
        self.bias_row = False

    def with_bias_row(self) -> None:
        """Columns of the numba pass get a row of ones after the taps, ``(n, C k + 1, P)``:
        a weight matrix with the bias as its last column then adds the bias in the GEMM
        (no pass over the output), and the weight-gradient's GEMM on the kept columns gives
        the bias-gradient as its last row (no pass over the gradient)."""
        assert self.geometry is not None
        n, taps = self.shape[0], math.prod(self.shape[1:-1])
        self.shape = (n, taps + 1, self.positions)
        self.one_axis, self.bias_row = True, True

    def build(self, samples: slice, out: np.ndarray | None = None) -> np.ndarray:
        """The columns of ``samples`` (a slice of the batch): x itself when in place, else
        written into ``out`` (or a new buffer)."""
        if self.in_place:
            return self.view(samples)
        shape = (samples.stop - samples.start, *self.shape[1:])
        if out is None:
            out = _column_buffer(shape, self.x.dtype, self.one_axis)
        if self.geometry is not None:
            _nb_im2col_2d(self.x, samples.start, out.reshape(shape[0], -1), self.geometry)
        else:
            np.copyto(out, self.view(samples))
        return out


def _numba_columns(x, kernel, positions) -> bool:
    """Whether :func:`_nb_im2col_2d` writes the columns: 2-d, numba, float32/64, contiguous x,
    and rows that need no padding (see :func:`_column_buffer`)."""
    if len(kernel) != 2 or not x.flags.c_contiguous or (positions * x.itemsize) % 4096 == 0:
        return False
    return _jit.compiled_for(x.dtype)


def _numba_geometry(x, kernel, stride, padding, dilation, out_spatial) -> np.ndarray | None:
    """The geometry :func:`_nb_im2col_2d` takes, where it writes x's columns (else None)."""
    if not _numba_columns(x, kernel, math.prod(out_spatial)):
        return None
    lows = (lo for lo, _ in padding)
    return np.array([*kernel, *stride, *lows, *dilation, *out_spatial], np.int64)


def _columns_source(x, kernel, stride, padding, dilation, out_spatial) -> _Columns:
    n, c = x.shape[:2]
    positions = math.prod(out_spatial)
    if _row_shifted_applies(x.shape[2:], kernel, stride, padding, dilation, out_spatial):
        geometry = _numba_geometry(x, kernel, stride, padding, dilation, out_spatial)
        return _Columns(
            x,
            None,
            lambda samples: _row_shifted_columns(
                x[samples], kernel, padding, dilation, out_spatial
            ),
            (n, c, *kernel, positions),
            positions,
            geometry=geometry,
        )
    wide = _wide_geometry(x.shape[2:], kernel, stride, padding, dilation, out_spatial)
    if wide is not None:
        return _Columns(
            x,
            wide,
            lambda samples: wide.columns(wide.flat_input(x[samples])),
            (n, c, *kernel, wide.length),
            wide.length,
        )
    pointwise = math.prod(kernel) == 1 and all(s == 1 for s in stride)
    in_place = pointwise and not any(lo or hi for lo, hi in padding) and x.flags.c_contiguous
    # Strided 2-d columns in one compiled pass too: 27-32 % faster than copying the window
    # view (W3's input-gradient 1.30 -> 0.96 ms, W1c 1.04 -> 0.71 ms, one thread).
    geometry = (
        None if in_place else _numba_geometry(x, kernel, stride, padding, dilation, out_spatial)
    )
    return _Columns(
        x,
        None,
        lambda samples: _windows(
            _pad_zeros(x[samples], padding), kernel, stride, dilation, out_spatial
        ),
        (n, c, *kernel, positions) if geometry is not None else (n, c, *kernel, *out_spatial),
        positions,
        in_place,
        geometry=geometry,
    )


@_jit.kernel()
def _nb_im2col_2d(x, first, cols, geometry):  # pragma: no cover - numba
    """Exact columns of samples ``first, first + 1, ...`` of x ``(N, C, H, W)`` into ``cols``
    ``(n, C * kh * kw * Ho * Wo)``: one pass from x, the padding written as zeros. When
    ``cols`` has one more row of ``Ho * Wo`` per sample, it is filled with ones (the bias row
    of :class:`_Columns`).

    Replaces padding x, copying its ``kw`` shifted rows and then the columns (three passes,
    two of short rows). Alone it is no faster (writing the columns bounds both: LeNet's conv1,
    5 MB, 249 us against 206), but in the training loop, where x is in cache and the other
    passes' arrays are not, LeNet's epoch is 4 % faster (0.319 against 0.332 s, medians of 15
    epochs each, alternated). The loops are written out (flat arrays, unsigned indices, see
    :mod:`convlab.kernels._flat`) rather than calling ``_flat``'s: per row of 10-28 elements
    the calls doubled the time.
    """
    kh, kw, sh, sw, ph, pw, dh, dw, ho, wo = geometry
    count, c, h, w = cols.shape[0], x.shape[1], x.shape[2], x.shape[3]
    xf = x.reshape(x.size)
    one, zero, one_value = np.uint64(1), cols.dtype.type(0), cols.dtype.type(1)
    positions = ho * wo
    # Stride 1 in height: kernel row i + 1 reads the rows that kernel row i reads dh output rows
    # further down, so its columns are row i's moved along by dh * wo, one long copy; only its
    # last dh output rows are read from x (LeNet's conv2: 14 short rows per (channel, column
    # tap) instead of 50).
    shift_rows = min(dh, ho) if sh == 1 else ho
    for s in range(count):
        dst = cols[s]
        for ch in range(c):
            src0 = ((first + s) * c + ch) * h * w
            for i in range(kh):
                for j in range(kw):
                    row0 = ((ch * kh + i) * kw + j) * positions
                    off = j * dw - pw  # input column of output column 0
                    lo = 0 if off >= 0 else min(wo, (sw - 1 - off) // sw)
                    hi = max(lo, min(wo, (w - 1 - off) // sw + 1)) if off <= w - 1 else lo
                    first_row = 0
                    if i > 0 and shift_rows < ho:
                        prev = np.uint64(row0 - kw * positions + shift_rows * wo)
                        d = np.uint64(row0)
                        t = np.uint64(0)
                        while t < np.uint64((ho - shift_rows) * wo):
                            dst[d + t] = dst[prev + t]
                            t += one
                        first_row = ho - shift_rows
                    for oh in range(first_row, ho):
                        r = oh * sh + i * dh - ph
                        d = np.uint64(row0 + oh * wo)
                        if r < 0 or r >= h:
                            t = np.uint64(0)
                            while t < np.uint64(wo):
                                dst[d + t] = zero
                                t += one
                            continue
                        t = np.uint64(0)
                        while t < np.uint64(lo):
                            dst[d + t] = zero
                            t += one
                        src = np.uint64(src0 + r * w + lo * sw + off)
                        m = np.uint64(hi - lo)
                        t = np.uint64(0)
                        if sw == 1:
                            while t < m:
                                dst[d + np.uint64(lo) + t] = xf[src + t]
                                t += one
                        else:
                            step = np.uint64(sw)
                            while t < m:
                                dst[d + np.uint64(lo) + t] = xf[src + t * step]
                                t += one
                        t = np.uint64(hi)
                        while t < np.uint64(wo):
                            dst[d + t] = zero
                            t += one
        # A row of ones after the taps, where the caller asked for one (the bias row).
        t = np.uint64(c * kh * kw * positions)
        while t < np.uint64(dst.size):
            dst[t] = one_value
            t += one


def _conv(
    x: np.ndarray,
    weight: np.ndarray,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    out_spatial: tuple[int, ...] | None = None,
    keep_cols: bool = False,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The convolution (+ bias) by im2col + GEMM, a chunk of samples at a time.

    Returns ``(y, cols)``; ``cols`` are all the columns when ``keep_cols`` and they are small
    enough to keep (see ``KEEP_COLS_BYTES``), else None. Columns with three axes
    ``(N, C k + 1, P)`` carry the bias row (:meth:`_Columns.with_bias_row`).
    """
    kernel = weight.shape[2:]
    if out_spatial is None:
        out_spatial = _padded_out(x.shape[2:], kernel, stride, padding, dilation)
    out_spatial = tuple(out_spatial)
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    w = weight.reshape(groups, c_out // groups, -1)
    source = _columns_source(x, kernel, stride, padding, dilation, out_spatial)
    wide, positions = source.wide, source.positions
    sample_bytes = c_in * math.prod(kernel) * positions * x.itemsize
    dtype = np.result_type(x, weight)
    if bias is not None and groups == 1 and source.geometry is not None:
        source.with_bias_row()
        w = np.concatenate([w, bias.astype(dtype).reshape(1, c_out, 1)], axis=2)
        bias = None  # added by the GEMM
    y = np.empty((n, groups, c_out // groups, positions), dtype)
    out = None
    if wide is not None:
        out = np.empty((n, c_out, *out_spatial), dtype if bias is None else np.result_type(y, bias))
    kept = None
    if keep_cols and n * sample_bytes <= KEEP_COLS_BYTES:
        # A pointwise convolution's columns are x itself: keep that, copy nothing.
        if source.in_place:
            kept = source.view(slice(None))
        else:
            kept = _column_buffer(source.shape, x.dtype, source.one_axis)

    def part(samples: slice) -> None:
        step = _chunk(samples.stop - samples.start, sample_bytes)
        for start in range(samples.start, samples.stop, step):
            rows = slice(start, min(start + step, samples.stop))
            cols = source.build(rows, None if kept is None or source.in_place else kept[rows])
            cols = cols.reshape(len(cols), groups, w.shape[2], positions)
            np.matmul(w, cols, out=y[rows])
        if wide is not None:
            wide.narrow(y[samples].reshape(-1, c_out, positions), bias, out[samples])
        elif bias is not None:
            _add_bias(y[samples].reshape(-1, c_out, *out_spatial), bias)

    flops = 2.0 * y.size * w.shape[2]
    parallel.run(part, n, parallel.parts(n, flops))
    if wide is not None:
        return out, kept
    return y.reshape(n, c_out, *out_spatial), kept


class _Plan(NamedTuple):
    """A kernel split over the batch: ``part(samples)`` for each slice (on convlab's threads),
    then ``finish(results)`` with the parts' results in order; ``flops``: the total work."""

    part: Callable[[slice], Any]
    finish: Callable[[list], np.ndarray]
    flops: float


def _run_plan(plan: _Plan, n: int) -> np.ndarray:
    return plan.finish(parallel.run(plan.part, n, parallel.parts(n, plan.flops)))


def _conv_input_grad(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    plan = _input_grad_plan(grad_out, weight, input_shape, stride, padding, dilation, groups, bias)
    return _run_plan(plan, grad_out.shape[0])


def _input_grad_plan(
    grad_out, weight, input_shape, stride, padding, dilation, groups, bias=None
) -> _Plan:
    """The input-gradient split over the batch; ``bias`` (the transposed convolution's) is
    added by each thread to its own samples while they are in its cache."""
    kernel = weight.shape[2:]
    n, c_out, *out_spatial = grad_out.shape
    c_in = input_shape[1]
    wide = _wide_geometry(input_shape[2:], kernel, stride, padding, dilation, out_spatial)
    phases = None
    if wide is None:
        geometry = (input_shape[2:], kernel, stride, padding, dilation, out_spatial)
        phases = _phase_fold(*_hashable(*geometry))
    layout = wide if wide is not None else phases
    positions = layout.length if layout is not None else math.prod(out_spatial)
    w_t = weight.reshape(groups, c_out // groups, -1).transpose(0, 2, 1)
    dtype = np.result_type(grad_out, weight)
    sample_bytes = c_in * math.prod(kernel) * positions * grad_out.itemsize
    # Shifted gradient (Wide.input_grad) when its k shifted copies of g move less memory than
    # the k-fold larger columns and their k extra fold passes: k C_out < 2 C_in rest (k - 1),
    # ``rest`` the taps of the other dimensions (LeNet conv2; W4: 17.1 -> 13.9 ms).
    last, rest = kernel[-1], math.prod(kernel[:-1])
    shifted = wide is not None and groups == 1 and last > 1
    shifted = shifted and last * c_out < 2 * c_in * rest * (last - 1)
    compiled = len(kernel) <= 2 and dtype == grad_out.dtype and _jit.compiled_for(dtype)
    numba = shifted and compiled
    phase_numba = phases is not None and compiled
    # The numba passes write every element; the NumPy ones add onto zeros.
    grad_x = (np.empty if numba or phase_numba else np.zeros)(input_shape, dtype)

    def part(samples: slice) -> None:
        g = grad_out[samples]
        if not numba:  # the numba pass reads the narrow g: no widened copy
            g = layout.widen(g) if layout is not None else g
            g = g.reshape(len(g), groups, c_out // groups, positions)
        step = _chunk(len(g), sample_bytes)
        for start in range(0, len(g), step):
            rows = slice(start, min(start + step, len(g)))
            target = grad_x[samples][rows]
            if numba:  # every element of grad_x is written
                wide.input_grad_numba(g[rows], weight, target)
            elif shifted:
                wide.input_grad(g[rows, 0], weight, target)
            else:
                cols = np.matmul(w_t, g[rows])  # (n, G, C_in/G * K, P)
                if wide is not None:
                    wide.fold(cols.reshape(len(cols), c_in, *kernel, positions), target)
                elif phase_numba:
                    phases.fold_numba(cols.reshape(len(cols), c_in, -1, positions), target)
                elif phases is not None:
                    phases.fold(cols.reshape(len(cols), c_in, -1, positions), target)
                else:
                    cols = cols.reshape(len(cols), c_in, *kernel, *out_spatial)
                    col2im(cols, target.shape, kernel, stride, padding, dilation, out=target)
        _add_bias(grad_x[samples], bias)

    flops = 2.0 * n * c_out * positions * math.prod(weight.shape[1:])
    return _Plan(part, lambda results: grad_x, flops)


def _conv_weight_grad(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    cols: np.ndarray | None = None,
    bias_sink: dict | None = None,
) -> np.ndarray:
    plan = _weight_grad_plan(
        x, grad_out, weight_shape, stride, padding, dilation, groups, cols, bias_sink
    )
    return _run_plan(plan, x.shape[0])


def _weight_grad_plan(
    x, grad_out, weight_shape, stride, padding, dilation, groups, cols=None, bias_sink=None
) -> _Plan:
    kernel = tuple(weight_shape[2:])
    n, c_out, *out_spatial = grad_out.shape
    out_spatial = tuple(out_spatial)
    if cols is not None:
        wide = _forward_wide(x.shape[2:], kernel, stride, padding, dilation, out_spatial)
        positions = wide.length if wide is not None else math.prod(out_spatial)
    else:
        source = _columns_source(x, kernel, stride, padding, dilation, out_spatial)
        wide, positions = source.wide, source.positions
        sample_bytes = x.shape[1] * math.prod(kernel) * positions * x.itemsize
    # Kept columns with the bias row give the bias-gradient too: stored in ``bias_sink``.
    bias_row = cols is not None and cols.ndim == 3
    taps = math.prod(weight_shape[1:]) + bias_row

    def part(samples: slice) -> np.ndarray:
        g = grad_out[samples]
        g = wide.widen(g) if wide is not None else g
        g = g.reshape(len(g), groups, c_out // groups, positions)
        # Accumulated transposed, (G, C_in/G * K, C_out/G): the BLAS runs cols @ g^T (long
        # side first) up to 1.8x faster than g @ cols^T on the same numbers (LeNet, W1b, W4),
        # and NumPy's stacked matmul up to 1.7x faster again when g^T is a contiguous copy
        # (LeNet conv2) - unless g^T's rows are too short to copy fast (conv1, 6 channels).
        g_t = g.transpose(0, 1, 3, 2)
        if c_out // groups >= 16:
            g_t = np.ascontiguousarray(g_t)
        grad_w_t = np.zeros((groups, taps, c_out // groups), g.dtype)
        step = max(1, len(g)) if cols is not None else _chunk(len(g), sample_bytes)
        for start in range(0, len(g), step):
            rows = slice(start, min(start + step, len(g)))
            if cols is not None:
                part_cols = cols[samples][rows]
            else:
                part_cols = source.build(slice(samples.start + start, samples.start + rows.stop))
            part_cols = part_cols.reshape(len(part_cols), groups, -1, positions)
            grad_w_t += np.matmul(part_cols, g_t[rows]).sum(axis=0)
        return grad_w_t

    def finish(partials: list) -> np.ndarray:
        grad_w_t = functools.reduce(np.add, partials)
        if bias_row:
            if bias_sink is not None:
                bias_sink["bias_grad"] = grad_w_t[0, -1].copy()
            grad_w_t = grad_w_t[:, :-1]
        return np.ascontiguousarray(grad_w_t.transpose(0, 2, 1)).reshape(weight_shape)

    return _Plan(part, finish, 2.0 * n * c_out * positions * taps)


def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        y += bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


# ---------------------------------------------------------------------------------------------
# The public passes: one algorithm per call, chosen by convlab.kernels.select
# ---------------------------------------------------------------------------------------------


def _key(pass_name: str, *arrays_and_args) -> tuple:
    return (pass_name,) + tuple(
        (a.shape, a.dtype.str) if isinstance(a, np.ndarray) else a for a in arrays_and_args
    )


def _is_depthwise(c_in: int, weight_shape, groups: int) -> bool:
    return groups > 1 and groups == c_in and weight_shape[1] == 1


def _direct_rule(pass_name: str, c_in: int, weight_shape, groups: int) -> bool:
    """Direct loops for depthwise convolutions: with numba in every pass (3-25x faster than
    im2col, measured); in NumPy only for the input-gradient (0.7-0.9x im2col's time)."""
    if not _is_depthwise(c_in, weight_shape, groups):
        return False
    return _jit.numba_available() or pass_name == "input"


class _Phases:
    """A stride-1 convolution with dilation ``d`` is ``prod(d)`` undilated ones on the phases.

    Output ``i = a d + r`` reads the padded input at ``i + d k = (a + k) d + r``: phase ``r`` of
    the padded input (every ``d``-th element from ``r``), convolved with the undilated kernel,
    gives outputs ``r, r + d, ...``. The phases are stacked along the batch, so one call of an
    undilated algorithm (Winograd) computes them all, and its weight-gradient sums them.
    """

    def __init__(self, spatial, padding: Pads, dilation, kernel) -> None:
        self.spatial, self.padding, self.d = tuple(spatial), padding, tuple(dilation)
        padded = [s + lo + hi for s, (lo, hi) in zip(spatial, padding)]
        self.out = tuple(p - d * (k - 1) for p, d, k in zip(padded, dilation, kernel))
        self.lengths = tuple(-(-p // d) for p, d in zip(padded, dilation))  # per phase
        self.phase_out = tuple(m - k + 1 for m, k in zip(self.lengths, kernel))

    def _split(self, a: np.ndarray, lengths, lows) -> np.ndarray:
        """``(N, C, *spatial)`` placed at ``lows`` in a zero grid -> its phases
        ``(prod(d) * N, C, *lengths)``: one strided copy per phase."""
        n, c = a.shape[:2]
        out = np.zeros((*self.d, n, c, *lengths), a.dtype)
        for phase in itertools.product(*(range(d) for d in self.d)):
            pairs = _phase_slices(phase, self.d, lows, a.shape[2:])
            if pairs is not None:
                out[phase][pairs[1]] = a[pairs[0]]
        return out.reshape(-1, c, *lengths)

    def _merge(self, a: np.ndarray, spatial, lows, out: np.ndarray) -> np.ndarray:
        """Phases ``(prod(d) * N, C, ...)`` of a padded grid -> its window ``(N, C, *spatial)``
        from ``lows`` on, in ``out``: one strided copy per phase, straight into the result."""
        phases = a.reshape(*self.d, len(out), *a.shape[1:])
        for phase in itertools.product(*(range(d) for d in self.d)):
            pairs = _phase_slices(phase, self.d, lows, spatial)
            if pairs is not None:
                out[pairs[0]] = phases[phase][pairs[1]]
        return out

    def split_input(self, x: np.ndarray) -> np.ndarray:
        return self._split(x, self.lengths, tuple(lo for lo, _ in self.padding))

    def split_output(self, g: np.ndarray) -> np.ndarray:
        return self._split(g, self.phase_out, (0,) * len(self.d))

    def merge_output(self, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return self._merge(y, self.out, (0,) * len(self.d), out)

    def input_rows(self) -> tuple[tuple[int, int], ...]:
        """Per dimension, the rows ``[first, stop)`` of the input's phases that hold input
        positions (the rest is padding, whose gradient no one needs)."""
        return tuple(
            (lo // d, -(-(lo + size) // d))
            for (lo, _), d, size in zip(self.padding, self.d, self.spatial)
        )

    def merge_input(self, gx: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``gx``: the phases' rows :meth:`input_rows` -> the input's gradient in ``out``."""
        lows = tuple(lo % d for (lo, _), d in zip(self.padding, self.d))
        return self._merge(gx, self.spatial, lows, out)


# Dilated layers run as plans over the batch: each thread splits and merges its own images'
# phases around its Winograd call, so the copies split too (W1f's two took 1.4 ms on one thread).
def _dilated_flops(n: int, weight_shape, spatial) -> float:
    return 2.0 * n * weight_shape[0] * math.prod(weight_shape[1:]) * math.prod(spatial)


_NO_PADDING = ((0, 0), (0, 0))


def _winograd_forward(x, weight, bias, padding, dilation, groups):
    if all(d == 1 for d in dilation):
        return winograd.winograd_conv2d_forward(
            x, weight, bias, padding, _winograd_tile(x.shape, padding), groups
        )
    phases = _Phases(x.shape[2:], padding, dilation, weight.shape[2:])
    n = x.shape[0]
    dtype = np.result_type(x, weight, *(() if bias is None else (bias,)))
    y = np.empty((n, weight.shape[0], *phases.out), dtype)

    def part(images: slice) -> None:
        parts = phases.split_input(x[images])
        tile = _winograd_tile(parts.shape, _NO_PADDING)
        yp = winograd.winograd_conv2d_forward(parts, weight, bias, _NO_PADDING, tile, groups)
        phases.merge_output(yp, y[images])

    return _run_plan(_Plan(part, lambda _: y, _dilated_flops(n, weight.shape, phases.out)), n)


def _winograd_input_grad(grad_out, weight, input_shape, padding, dilation, groups):
    if all(d == 1 for d in dilation):
        tile = _winograd_tile(input_shape, padding)
        return winograd.winograd_conv2d_backward_input(
            grad_out, weight, input_shape, padding, tile, groups
        )
    n = input_shape[0]
    phases = _Phases(input_shape[2:], padding, dilation, weight.shape[2:])
    grad_x = np.empty(input_shape, np.result_type(grad_out, weight))

    # Only the phases' rows that hold input positions: W1f's 30 x 30 phases need 28 x 28.
    rows = phases.input_rows()
    crop = tuple((first, length - stop) for (first, stop), length in zip(rows, phases.lengths))

    def part(images: slice) -> None:
        g = phases.split_output(grad_out[images])
        shape = (g.shape[0], input_shape[1], *(stop - first for first, stop in rows))
        tile = _winograd_tile(shape, crop)
        gx = winograd.winograd_conv2d_backward_input(g, weight, shape, crop, tile, groups)
        phases.merge_input(gx, grad_x[images])

    flops = _dilated_flops(n, weight.shape, phases.out)
    return _run_plan(_Plan(part, lambda _: grad_x, flops), n)


def _winograd_weight_grad(x, grad_out, padding, dilation, groups):
    if all(d == 1 for d in dilation):
        tile = _winograd_tile(x.shape, padding)
        return winograd.winograd_conv2d_backward_weight(x, grad_out, padding, tile, groups)
    phases = _Phases(x.shape[2:], padding, dilation, (3, 3))
    n = x.shape[0]

    def part(images: slice) -> np.ndarray:
        parts = phases.split_input(x[images])
        g = phases.split_output(grad_out[images])
        tile = _winograd_tile(parts.shape, _NO_PADDING)
        return winograd.winograd_conv2d_backward_weight(parts, g, _NO_PADDING, tile, groups)

    weight_shape = (grad_out.shape[1], x.shape[1] // groups, 3, 3)
    flops = _dilated_flops(n, weight_shape, phases.out)
    return _run_plan(_Plan(part, lambda partials: functools.reduce(np.add, partials), flops), n)


def _winograd_applies(x_shape, weight_shape, stride, padding, dilation, groups) -> bool:
    """Winograd's own cases, and dilated ones through :class:`_Phases`."""
    if len(x_shape) != 4 or any(s != 1 for s in stride):
        return False
    if all(d == 1 for d in dilation):
        return winograd.winograd_supported(x_shape, weight_shape, stride, padding, dilation, groups)
    phases = _Phases(x_shape[2:], padding, dilation, weight_shape[2:])
    if min(phases.out) < 1 or min(phases.phase_out) < 1:
        return False
    shape = (x_shape[0] * math.prod(dilation), x_shape[1], *phases.lengths)
    return winograd.winograd_supported(shape, weight_shape, stride, _NO_PADDING, (1, 1), groups)


# Direct loops for few input taps per output (C_in/groups * prod(kernel), as in first layers).
_DIRECT_MAX_TAPS = 27


def _small_channel_rule(pass_name, x_shape, weight_shape, stride, padding, dilation) -> bool:
    """numba's direct forward and weight-gradient for first layers (1-3 channels, few taps),
    from about 20,000 output positions per channel on planes of 256 or more, measured:

    - forward without a weight-gradient after it (``"inference"``): 1.3-1.9x faster than
      im2col (LeNet's conv1 at 64 images 0.24 against 0.34 ms, at 256 0.75 against 0.95;
      3x32x32 -> 16 or 32 channels 1.6-1.9x);
    - training (``"forward"`` then ``"weight"``; im2col would keep its columns for the
      weight-gradient): forward + weight- + bias-gradient 1.8-2.7x faster for 3-channel
      layers (3x32x32, 3x64x64, 3x224x224), 1.23x for LeNet's conv1 at 256 images; at 64
      images 0.90x alone but faster inside the training step, where the 5 MB of kept columns
      fall out of cache (0.58 against 0.69 ms a step, conv1's passes);
    - slower below: 8 LeNet images 0.90x, 14x14 planes 0.50-0.64x."""
    if pass_name not in ("forward", "inference", "weight") or not _jit.numba_available():
        return False
    out = math.prod(_padded_out(x_shape[2:], weight_shape[2:], stride, padding, dilation))
    return out >= 256 and x_shape[0] * out >= 20_000


def _winograd_rule(pass_name: str, x_shape, weight_shape, groups: int) -> bool:
    """Winograd for 3x3 stride-1 convolutions with 64+ channels each way, batch >= 2, when numba
    runs its transforms: 1.1-1.9x faster than im2col (W1b, 128 and 256 channels), measured.
    Without numba the NumPy transforms make it slower than im2col."""
    if not _jit.numba_available() or x_shape[0] < 2 or groups != 1:
        return False
    return x_shape[1] >= 64 and weight_shape[0] >= 64


def _winograd_tile(x_shape, padding) -> int:
    """F(4x4, 3x3) wastes up to 3 rows and columns of tiles: F(2x2) for small images."""
    width = x_shape[-1] + sum(padding[-1]) - 2
    return 4 if width >= 24 else 2


def _algorithms(pass_name, x_shape, weight_shape, stride, padding, dilation, groups) -> tuple:
    """Applicable algorithms, the shape rule's choice first (the same for every call of a layer,
    so it is worked out once per shape)."""
    return _rule_order(
        pass_name,
        tuple(x_shape),
        tuple(weight_shape),
        tuple(stride),
        tuple(padding),
        tuple(dilation),
        groups,
        _jit.numba_available(),
    )


@functools.lru_cache(maxsize=1024)
def _rule_order(pass_name, x_shape, weight_shape, stride, padding, dilation, groups, numba):
    # ``numba`` is only part of the key: the rules ask _jit themselves.
    names = ["gemm"]
    if _is_depthwise(x_shape[1], weight_shape, groups):
        names.append("direct")
        if _direct_rule(pass_name, x_shape[1], weight_shape, groups):
            names.reverse()
    elif math.prod(weight_shape[1:]) <= _DIRECT_MAX_TAPS:
        names.append("direct")
        if _small_channel_rule(pass_name, x_shape, weight_shape, stride, padding, dilation):
            names.reverse()
    if _winograd_applies(x_shape, weight_shape, stride, padding, dilation, groups):
        if names[0] == "gemm" and _winograd_rule(pass_name, x_shape, weight_shape, groups):
            names.insert(0, "winograd")
        else:
            names.append("winograd")
    if fft.fft_conv_supported(x_shape, weight_shape, stride, dilation, groups):
        # Large kernels: FFT's cost hardly grows with the kernel, im2col's grows as its size.
        if names[0] == "gemm" and fft.fft_conv_preferred(
            x_shape, weight_shape, stride, dilation, groups, padding
        ):
            names.insert(0, "fft")
        else:
            names.append("fft")
    return tuple(names)


def conv_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    workspace: dict | None = None,
) -> np.ndarray:
    """Cross-correlation: ``y[n, o, p] = b[o] + sum_{c, k} w[o, c, k] x_pad[n, c', s p + d k]``.

    ``c'`` runs over the input channels of output channel ``o``'s group. A ``workspace`` dict,
    if given, receives what :func:`conv_backward_weight` can reuse (the columns, when small).
    """

    def gemm():
        y, cols = _conv(
            x, weight, stride, padding, dilation, groups, None, workspace is not None, bias
        )
        if cols is not None:
            workspace["cols"] = cols
        return y

    candidates = {"gemm": gemm}
    # Without a workspace no weight-gradient will reuse the columns: the rule may differ.
    pass_name = "forward" if workspace is not None else "inference"
    names = _algorithms(pass_name, x.shape, weight.shape, stride, padding, dilation, groups)
    if "direct" in names:
        candidates["direct"] = lambda: depthwise.direct_conv_forward(
            x, weight, bias, stride, padding, dilation, groups
        )
    if "winograd" in names:
        candidates["winograd"] = lambda: _winograd_forward(
            x, weight, bias, padding, dilation, groups
        )
    if "fft" in names:
        candidates["fft"] = lambda: fft.fft_conv_forward(x, weight, bias, padding, groups, dilation)
    key = _key(pass_name, x, weight, stride, padding, dilation, groups)
    return select.run(key, candidates, names[0])


def conv_backward_input(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """Gradient of :func:`conv_forward` with respect to ``x`` (a transposed convolution)."""
    input_shape = tuple(input_shape)
    candidates = {
        "gemm": lambda: _conv_input_grad(
            grad_out, weight, input_shape, stride, padding, dilation, groups
        )
    }
    names = _algorithms("input", input_shape, weight.shape, stride, padding, dilation, groups)
    if "direct" in names:
        candidates["direct"] = lambda: depthwise.direct_conv_backward_input(
            grad_out, weight, input_shape, stride, padding, dilation, groups
        )
    if "winograd" in names:
        candidates["winograd"] = lambda: _winograd_input_grad(
            grad_out, weight, input_shape, padding, dilation, groups
        )
    if "fft" in names:
        candidates["fft"] = lambda: fft.fft_conv_backward_input(
            grad_out, weight, input_shape, padding, groups, dilation
        )
    key = _key("input", grad_out, weight, input_shape, stride, padding, dilation, groups)
    return select.run(key, candidates, names[0])


def conv_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    workspace: dict | None = None,
) -> np.ndarray:
    """Gradient of :func:`conv_forward` with respect to ``weight``.

    Takes (and frees) the columns a forward pass left in ``workspace``; columns that carry the
    bias row, and the direct kernels, leave the bias-gradient there for
    :func:`conv_backward_bias`.
    """
    weight_shape = tuple(weight_shape)
    cols = None if workspace is None else workspace.pop("cols", None)
    candidates = {
        "gemm": lambda: _conv_weight_grad(
            x, grad_out, weight_shape, stride, padding, dilation, groups, cols, workspace
        )
    }
    names = _algorithms("weight", x.shape, weight_shape, stride, padding, dilation, groups)
    if "direct" in names:

        def direct():
            grad_w, grad_b = depthwise.direct_conv_backward_weight_bias(
                x, grad_out, weight_shape, stride, padding, dilation, groups
            )
            if workspace is not None:
                workspace["bias_grad"] = grad_b
            return grad_w

        candidates["direct"] = direct
    if "winograd" in names:
        candidates["winograd"] = lambda: _winograd_weight_grad(
            x, grad_out, padding, dilation, groups
        )
    if "fft" in names:
        candidates["fft"] = lambda: fft.fft_conv_backward_weight(
            x, grad_out, weight_shape, padding, groups, dilation
        )
    key = _key("weight", x, grad_out, weight_shape, stride, padding, dilation, groups)
    return select.run(key, candidates, names[0])


def conv_backward(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight: np.ndarray,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    workspace: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_x, grad_w)``: :func:`conv_backward_input` and :func:`conv_backward_weight`.

    When im2col + GEMM computes both (by the rule, or the "gemm" policy), each thread does
    both for its samples in one split: one hand-off to the threads instead of two (~70 us
    each on the 2-core machine, LeNet's conv2). When the direct kernels compute both, they
    run as one pass that also leaves the bias-gradient in ``workspace``.
    """
    args = (stride, padding, dilation, groups)
    policy = select.get_conv_algorithm()
    if policy == "auto":
        input_rule = _algorithms("input", x.shape, weight.shape, *args)[0]
        weight_rule = _algorithms("weight", x.shape, weight.shape, *args)[0]
        merge = input_rule == weight_rule == "gemm"
        direct = input_rule == weight_rule == "direct"
    else:
        merge = policy == "gemm"
        direct = policy == "direct" and "direct" in _algorithms(
            "input", x.shape, weight.shape, *args
        )
    if direct:  # both gradients and the bias-gradient in one pass over grad_out
        grad_x, grad_w, grad_b = depthwise.direct_conv_backward(x, grad_out, weight, *args)
        if workspace is not None:
            workspace.pop("cols", None)
            workspace["bias_grad"] = grad_b
        return grad_x, grad_w
    if not merge:
        grad_w = conv_backward_weight(x, grad_out, weight.shape, *args, workspace)
        return conv_backward_input(grad_out, weight, x.shape, *args), grad_w
    cols = None if workspace is None else workspace.pop("cols", None)
    weights = _weight_grad_plan(x, grad_out, weight.shape, *args, cols, workspace)
    inputs = _input_grad_plan(grad_out, weight, x.shape, *args)
    n = x.shape[0]
    both = parallel.run(
        lambda samples: (weights.part(samples), inputs.part(samples)),
        n,
        parallel.parts(n, weights.flops + inputs.flops),
    )
    return inputs.finish([r[1] for r in both]), weights.finish([r[0] for r in both])


def conv_backward_bias(grad_out: np.ndarray, workspace: dict | None = None) -> np.ndarray:
    """Gradient of :func:`conv_forward` (or the transposed one) with respect to ``bias``.

    Taken from ``workspace`` when :func:`conv_backward_weight` left it there.
    """
    if workspace is not None and "bias_grad" in workspace:
        return workspace.pop("bias_grad")
    # einsum's reduction: 3x faster than ndarray.sum over the axes (0, 2, ...) (LeNet: 56 ->
    # 20 us), with float32 error 2e-7 relative to a float64 sum, as the BLAS would give.
    n, c = grad_out.shape[:2]
    if grad_out.size == 0:
        return np.zeros(c, grad_out.dtype)
    return np.einsum("ncp->c", grad_out.reshape(n, c, -1))


def _symmetric(padding: tuple[int, ...]) -> Pads:
    return tuple((p, p) for p in padding)


def conv_transpose_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """Transposed convolution: the input-gradient of the convolution with the same arguments.

    ``weight`` is ``(C_in, C_out / groups, *kernel)``; ``padding`` is symmetric (ints) and
    ``output_padding`` lengthens the output at the high end.
    """
    kernel = weight.shape[2:]
    out_spatial = shapes.conv_transpose_output_shape(
        x.shape[2:], kernel, stride, padding, dilation, output_padding
    )
    y_shape = (x.shape[0], weight.shape[1] * groups, *out_spatial)
    return _conv_input_grad(x, weight, y_shape, stride, _symmetric(padding), dilation, groups, bias)


def conv_transpose_backward_input(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """Gradient of :func:`conv_transpose_forward` with respect to ``x``: a convolution.

    Only the first ``input_shape`` windows are taken: with ``output_padding`` the convolution
    of the (longer) output could produce one more.
    """
    return _conv(
        grad_out, weight, stride, _symmetric(padding), dilation, groups, tuple(input_shape[2:])
    )[0]


def conv_transpose_backward(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight: np.ndarray,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_x, grad_w)``: :func:`conv_transpose_backward_input` and
    :func:`conv_transpose_backward_weight`, which both read the columns of ``grad_out``: the
    first keeps them (up to ``KEEP_COLS_BYTES``) and the second reads them instead of building
    them again (W3's backward: 12.8 MB of columns written once, not twice)."""
    pads = _symmetric(padding)
    grad_x, cols = _conv(
        grad_out, weight, stride, pads, dilation, groups, tuple(x.shape[2:]), keep_cols=True
    )
    grad_w = _conv_weight_grad(
        grad_out, x, tuple(weight.shape), stride, pads, dilation, groups, cols
    )
    return grad_x, grad_w


def conv_transpose_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """Gradient of :func:`conv_transpose_forward` with respect to ``weight``.

    The convolution's weight-gradient with input and output swapped.
    """
    return _conv_weight_grad(
        grad_out, x, tuple(weight_shape), stride, _symmetric(padding), dilation, groups
    )
