"""Stride-1 convolution by the convolution theorem: real FFTs, one batched complex matmul, inverse.

Same calling convention and results as :mod:`convlab.kernels.conv` with ``stride = 1``: arrays
``(N, C, *spatial)`` with 1 to 3 spatial dims, weights ``(C_out, C_in / groups, *kernel)``,
``padding`` a tuple of ``(low, high)`` zero-padding pairs, and an optional ``dilation``. The cost
of a convolution by FFT hardly depends on the kernel size, so it beats im2col + GEMM (whose cost
grows as ``prod(kernel)``) for large kernels.

With ``x`` zero outside ``[0, size)`` and ``d`` the dilation, the three ops are::

    forward           y[p]  = sum_k      w[k] x[p + d k - lo]     p in [0, out)
    input gradient    dx[i] = sum_{p, k} g[p] w[k] [p + d k - lo = i]
    weight gradient   dw[k] = sum_p      g[p] x[p + d k - lo]

All three are circular convolutions of length ``L`` per dim (:func:`fft_shape`) once the kernel
tap ``k`` is placed at position ``(lo - d k) mod L`` (forward) or ``(d k - lo) mod L`` (the two
gradients): ``L >= size + max(lo, hi)`` keeps every wrapped-around index on the zeros, so the
values read, all starting at index 0, are exact. The data (``x``, ``grad_out``, ``y``, ``dx``) go
through NumPy's real FFTs; the kernel side is small (``k`` taps, not ``L``), so its transform --
a DFT evaluated only at the taps' positions -- is a few complex matrix products, which also put
it straight into the layout of the contraction. The channel contraction happens per frequency
``f``, as one batched matmul ``(F, G, N, C_in/G) @ (F, G, C_in/G, C_out/G)``, or as a broadcast
product when ``C_in / groups == 1`` (depthwise).

float32 works in complex64, float64 in complex128. The data transforms use ``norm="forward"``
and the inverses the default ``norm``: NumPy then hands pocketfft a scale factor of the array's
own precision, whereas the default forward one (the int 1) makes NumPy 2.x run complex64
transforms through its complex128 loop, two to four times slower. The factors of ``prod(L)``
that this moves are folded into the kernel-side DFT matrices.

Large inputs against comparatively small kernels are cut into overlap-save tiles (a cost model
picks the tile, see ``_best``): the tiles become a longer batch over a shorter FFT, which keeps
the kernel spectrum (``C_in/G * C_out`` values per frequency) small. Problems whose spectra
exceed :data:`CHUNK_BYTES` are cut into chunks of the batch and of the output channels, and the
batch chunks run on :data:`FFT_THREADS` threads (NumPy's FFTs and matmuls release the GIL).

When it wins (float32, one core, against ``kernels.conv``): from 5x5 kernels for 32-64 input
channels on 32x32 to 64x64 images (1.1-1.8x; 1.5-3.5x at 7x7, 2-21x at 11x11 to 15x15), from
15x15 for 3 input channels on 224x224 (1.2-1.7x), from about 21 taps for a 1-d signal of 4096
(1.5-3x). :func:`fft_conv_preferred` encodes this.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from convlab import threads

Pads = tuple[tuple[int, int], ...]

__all__ = [
    "CHUNK_BYTES",
    "FFT_MARGIN",
    "FFT_THREADS",
    "fft_conv_backward_input",
    "fft_conv_backward_weight",
    "fft_conv_forward",
    "fft_conv_preferred",
    "fft_conv_supported",
    "fft_shape",
    "fft_size",
]

#: Bytes of complex spectra that one chunk may hold (the kernel spectrum of a chunk of output
#: channels; the input and output spectra of a chunk of the batch, each with its transposed copy).
CHUNK_BYTES = 64 * 2**20

#: Threads for the batch chunks (None: ``convlab.set_num_threads``'s count). The kernel-side
#: matmuls use NumPy's BLAS threads as they are.
FFT_THREADS: int | None = None


@functools.cache
def fft_size(n: int) -> int:
    """Smallest ``2**a * 3**b * 5**c >= n``: the lengths pocketfft transforms fastest.

    >>> fft_size(37), fft_size(97), fft_size(4097)
    (40, 100, 4320)
    """
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def fft_shape(spatial: tuple[int, ...], kernel: tuple[int, ...], padding: Pads) -> tuple[int, ...]:
    """FFT length per spatial dim: ``fft_size(max(size + max(lo, hi), out))``.

    ``kernel`` is the effective (dilated) extent. Wrapped-around indices land on zeros, and the
    output and gradients fit; the kernel itself need not fit (its taps wrap around).

    >>> fft_shape((32, 32), (15, 15), ((7, 7), (7, 7)))
    (40, 40)
    """
    return tuple(
        fft_size(max(s + max(lo, hi), s + lo + hi - k + 1))
        for s, k, (lo, hi) in zip(spatial, kernel, padding)
    )


@functools.lru_cache(maxsize=256)
def _dft(
    length: int, positions: tuple[int, ...], half: bool, scale: float, inverse: bool, dtype: str
) -> np.ndarray:
    """DFT matrix of a length-``length`` axis at the given sample positions, times ``scale``.

    Forward: ``(F, K)``, ``exp(-2 pi i f pos / length)``. Inverse: ``(K, F)``, the conjugate; on
    the ``half`` (real-FFT) axis each frequency is weighted as ``irfft`` counts it (1 for 0 and
    ``length / 2``, 2 for the others: their mirror images are not stored), to take the real part
    of. Phases are reduced modulo ``length`` in integers, so even long axes stay exact.
    """
    freqs = np.arange(length // 2 + 1 if half else length)
    turns = np.outer(freqs, np.asarray(positions) % length) % length
    m = scale * np.exp((2j if inverse else -2j) * np.pi / length * turns)
    if inverse:
        if half:
            weights = np.full(len(freqs), 2.0)
            weights[0] = 1.0
            if length % 2 == 0:
                weights[-1] = 1.0
            m *= weights[:, None]
        m = m.T
    m = np.ascontiguousarray(m, dtype=dtype)
    m.flags.writeable = False
    return m


def _kernel_spectrum(
    w: np.ndarray, fft_len: tuple[int, ...], positions, scale: float, cplx, order: str
) -> np.ndarray:
    """Kernel taps ``(G, ob, cig, *K)`` to the spectrum ``(F, G, cig, ob)`` or ``(F, G, ob, cig)``.

    One DFT matrix per axis (taps at ``positions``), last axis first: each step is one GEMM
    ``(F_a, K_a) @ (K_a, rest)`` that puts its frequencies in front of those already done.
    """
    nd = len(fft_len)
    lanes = (0, 2, 1) if order == "co" else (0, 1, 2)
    a = w.transpose(*range(3, 3 + nd), *lanes).astype(cplx)  # (*K, G, ., .)
    tail = a.shape[nd:]
    for axis in reversed(range(nd)):
        d = _dft(
            fft_len[axis],
            positions[axis],
            axis == nd - 1,
            scale if axis == 0 else 1.0,
            False,
            np.dtype(cplx).str,
        )
        a = np.tensordot(d, a, axes=(1, nd - 1))  # (F_axis, ..., F_last, K_0.., tail)
    return a.reshape(-1, *tail)


def _kernel_taps(
    spec: np.ndarray, fft_len: tuple[int, ...], freq_shape, positions, scale: float
) -> np.ndarray:
    """Inverse of :func:`_kernel_spectrum` at the taps: ``(F, *rest) -> (K_last, .., K_0, *rest)``.

    First axis first (each GEMM shrinks the array), the real-FFT axis last, then the real part.
    """
    nd = len(fft_len)
    a = spec.reshape(*freq_shape, *spec.shape[1:])
    for axis in range(nd):
        e = _dft(
            fft_len[axis],
            positions[axis],
            axis == nd - 1,
            scale if axis == 0 else 1.0,
            True,
            spec.dtype.str,
        )
        a = np.tensordot(e, a, axes=(1, axis))  # (K_axis, .., K_0, F_axis+1, .., rest)
    return a.real


def _steps(count: int, item_bytes: int, pieces: int = 1) -> list[slice]:
    """Cut ``range(count)`` into chunks whose spectra fit in :data:`CHUNK_BYTES`, and into at
    least ``pieces`` chunks (one per thread) when there are that many items."""
    step = max(1, min(count, CHUNK_BYTES // max(1, item_bytes), -(-count // pieces)))
    return [slice(i, min(i + step, count)) for i in range(0, count, step)]


_pool: ThreadPoolExecutor | None = None


def _threads() -> int:
    if FFT_THREADS is not None:
        return max(1, FFT_THREADS)
    # convlab.set_num_threads's count (the BLAS's), so that one setting governs every kernel.
    count = threads.get_num_threads()
    if count is not None:
        return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run(fn, items: list) -> list:
    """``[fn(item) for item in items]``, on :data:`FFT_THREADS` threads when there are several.

    NumPy's FFTs, matmuls and copies release the GIL, and each chunk writes its own rows.
    """
    global _pool
    workers = min(_threads(), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    if _pool is None or _pool._max_workers < workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convlab-fft")
    return list(_pool.map(fn, items))


class _Geometry:
    """Sizes shared by the three ops, from the input and kernel shapes and the padding."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        weight_shape: tuple[int, ...],
        padding: Pads,
        groups: int,
        dilation: tuple[int, ...] | None,
        dtypes: tuple[np.dtype, ...],
    ) -> None:
        self.n, self.c_in, *spatial = input_shape
        self.c_out, self.cig, *kernel = weight_shape
        nd = len(spatial)
        self.spatial, self.kernel = tuple(spatial), tuple(kernel)
        self.dilation = tuple(dilation) if dilation is not None else (1,) * nd
        self.padding = tuple((int(lo), int(hi)) for lo, hi in padding)
        assert 1 <= nd <= 3 and len(self.padding) == nd == len(self.dilation)
        assert all(lo >= 0 and hi >= 0 for lo, hi in self.padding), "padding must be >= 0"
        assert self.c_in == self.cig * groups and self.c_out % groups == 0
        self.groups, self.og = groups, self.c_out // groups
        extent = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))
        self.out = tuple(
            s + lo + hi - e + 1 for s, e, (lo, hi) in zip(self.spatial, extent, self.padding)
        )
        assert all(o >= 1 for o in self.out), "kernel larger than the padded input"
        self.fft_len = fft_shape(self.spatial, extent, self.padding)
        self.freq_shape = self.fft_len[:-1] + (self.fft_len[-1] // 2 + 1,)
        self.freqs = math.prod(self.freq_shape)
        self.size = float(math.prod(self.fft_len))
        # float32 (and narrower) in complex64, float64 in complex128.
        self.real = np.result_type(*dtypes, np.float32)
        self.cplx = np.result_type(self.real, np.complex64)
        self.out_dtype = np.result_type(*dtypes)
        self.broadcast = self.cig == 1
        itemsize = self.cplx.itemsize
        self.o_chunks = _steps(self.og, groups * self.cig * self.freqs * itemsize)
        ob = self.o_chunks[0].stop
        self.n_chunks = _steps(
            self.n, 2 * (self.c_in + groups * ob) * self.freqs * itemsize, _threads()
        )

    def taps(self, sign: int) -> tuple[tuple[int, ...], ...]:
        """Circular position of each kernel tap: ``sign * (d k - lo)`` per spatial dim."""
        return tuple(
            tuple(sign * (d * k - lo) for k in range(kk))
            for kk, d, (lo, _) in zip(self.kernel, self.dilation, self.padding)
        )

    def kernel_spectrum(self, w: np.ndarray, o: slice, sign: int, order: str) -> np.ndarray:
        """Spectrum of output channels ``o`` of every group: ``(F, G, cig, ob)`` for ``"co"``."""
        w = w.reshape(self.groups, self.og, self.cig, *self.kernel)[:, o]
        return _kernel_spectrum(w, self.fft_len, self.taps(sign), self.size, self.cplx, order)

    def spectrum(self, a: np.ndarray, rows: slice, chans: slice | None = None) -> np.ndarray:
        """Spectrum of samples ``rows`` and channels ``chans`` of each group: ``(nb, G, cb, F)``."""
        a = a[rows].astype(self.real, copy=False)
        if chans is not None:
            a = a.reshape(a.shape[0], self.groups, -1, *a.shape[2:])[:, :, chans]
            a = a.reshape(a.shape[0], -1, *a.shape[3:])
        axes = tuple(range(2, a.ndim))
        spec = np.fft.rfftn(a, s=self.fft_len, axes=axes, norm="forward")
        return spec.reshape(spec.shape[0], self.groups, -1, self.freqs)

    def spatial_of(self, spec: np.ndarray, lengths: tuple[int, ...]) -> np.ndarray:
        """Inverse transform of ``(b, G, c, F)`` spectra, first ``lengths``: ``(b, G, c, *len)``."""
        b, g, c, _ = spec.shape
        a = np.fft.irfftn(
            spec.reshape(b, g * c, *self.freq_shape),
            s=self.fft_len,
            axes=tuple(range(2, 2 + len(lengths))),
        )
        a = a[(slice(None), slice(None)) + tuple(slice(0, n) for n in lengths)]
        return a.reshape(b, g, c, *lengths)


def _freq_major(spec: np.ndarray, conj: bool = False, swap: bool = False) -> np.ndarray:
    """``(a, G, b, F) -> (F, G, a, b)`` (``(F, G, b, a)`` with ``swap``), contiguous."""
    view = spec.transpose(3, 1, 2, 0) if swap else spec.transpose(3, 1, 0, 2)
    if conj:
        return np.conjugate(view, out=np.empty(view.shape, spec.dtype))
    return np.ascontiguousarray(view)


def _from_freq_major(spec: np.ndarray) -> np.ndarray:
    """``(F, G, a, b) -> (a, G, b, F)``, contiguous: the layout of the inverse FFT."""
    return np.ascontiguousarray(spec.transpose(2, 1, 3, 0))


def _forward(x, weight, padding, groups, dilation) -> np.ndarray:
    """The forward pass in one piece (no tiles): circular convolutions of length ``fft_len``."""
    geo = _Geometry(x.shape, weight.shape, padding, groups, dilation, (x.dtype, weight.dtype))
    y = np.empty((geo.n, groups, geo.og, *geo.out), geo.out_dtype)

    def kernel_spec(o: slice) -> np.ndarray:
        spec = geo.kernel_spectrum(weight, o, -1, "co")  # (F, G, cig, ob)
        if geo.broadcast:  # (G, ob, F)
            return np.ascontiguousarray(spec[:, :, 0].transpose(1, 2, 0))
        return spec

    cached = kernel_spec(geo.o_chunks[0]) if len(geo.o_chunks) == 1 else None

    def rows_of(rows: slice) -> None:
        xs = geo.spectrum(x, rows)  # (nb, G, cig, F)
        if not geo.broadcast:
            xs = _freq_major(xs)  # (F, G, nb, cig)
        for o in geo.o_chunks:
            ws = cached if cached is not None else kernel_spec(o)
            if geo.broadcast:
                ys = xs * ws  # (nb, G, 1, F) * (G, ob, F)
            else:
                ys = _from_freq_major(np.matmul(xs, ws))  # (nb, G, ob, F)
            y[rows, :, o] = geo.spatial_of(ys, geo.out)

    _run(rows_of, geo.n_chunks)
    return y.reshape(geo.n, geo.c_out, *geo.out)


def _backward_input(grad_out, weight, input_shape, padding, groups, dilation) -> np.ndarray:
    """The input gradient in one piece (no tiles)."""
    geo = _Geometry(
        tuple(input_shape), weight.shape, padding, groups, dilation, (grad_out.dtype, weight.dtype)
    )
    assert grad_out.shape == (geo.n, geo.c_out, *geo.out), "grad_out has the wrong shape"
    dx = np.empty((geo.n, groups, geo.cig, *geo.spatial), geo.out_dtype)

    def kernel_spec(o: slice) -> np.ndarray:
        spec = geo.kernel_spectrum(weight, o, 1, "oc")  # (F, G, ob, cig)
        if geo.broadcast:  # (G, ob, F)
            return np.ascontiguousarray(spec[..., 0].transpose(1, 2, 0))
        return spec

    whole = len(geo.o_chunks) == 1
    cached = kernel_spec(geo.o_chunks[0]) if whole else None

    def rows_of(rows: slice) -> None:
        acc = None
        for o in geo.o_chunks:
            gs = geo.spectrum(grad_out, rows, None if whole else o)  # (nb, G, ob, F)
            ws = cached if cached is not None else kernel_spec(o)
            if geo.broadcast:  # sum over ob of (nb, G, ob, F) * (G, ob, F)
                part = np.einsum("ngof,gof->ngf", gs, ws)[:, :, None]
            else:  # (F, G, nb, ob) @ (F, G, ob, cig)
                part = np.matmul(_freq_major(gs), ws)
            acc = part if acc is None else acc.__iadd__(part)
        if not geo.broadcast:
            acc = _from_freq_major(acc)  # (nb, G, cig, F)
        dx[rows] = geo.spatial_of(acc, geo.spatial)

    _run(rows_of, geo.n_chunks)
    return dx.reshape(input_shape)


def _backward_weight(x, grad_out, weight_shape, padding, groups, dilation) -> np.ndarray:
    """The weight gradient in one piece (no tiles)."""
    geo = _Geometry(
        x.shape, tuple(weight_shape), padding, groups, dilation, (x.dtype, grad_out.dtype)
    )
    assert grad_out.shape == (geo.n, geo.c_out, *geo.out), "grad_out has the wrong shape"
    nd = len(geo.spatial)
    if geo.n == 0:
        return np.zeros(weight_shape, geo.out_dtype)
    dw = np.empty((groups, geo.og, geo.cig, *geo.kernel), geo.out_dtype)

    def input_spec(rows: slice) -> np.ndarray:
        spec = geo.spectrum(x, rows)  # (nb, G, cig, F)
        return spec if geo.broadcast else _freq_major(spec, swap=True)  # (F, G, cig, nb)

    def partial(o: slice, rows: slice, xs: np.ndarray | None = None) -> np.ndarray:
        xs = input_spec(rows) if xs is None else xs
        gs = geo.spectrum(grad_out, rows, o)  # (nb, G, ob, F)
        if geo.broadcast:  # sum over the batch of conj(x) g, conjugated below
            return np.einsum("ngf,ngof->gof", np.conjugate(xs[:, :, 0]), gs)
        return np.matmul(xs, _freq_major(gs, conj=True))  # (F, G, cig, nb) @ (F, G, nb, ob)

    # One chunk of output channels (the usual case): batch chunks on threads, summed. Several:
    # loop, keeping the input spectrum when the batch is one chunk.
    cached = None
    if len(geo.o_chunks) > 1 and len(geo.n_chunks) == 1:
        cached = input_spec(geo.n_chunks[0])
    for o in geo.o_chunks:
        if len(geo.o_chunks) == 1:
            parts = _run(functools.partial(partial, o), geo.n_chunks)
        else:
            parts = [partial(o, rows, cached) for rows in geo.n_chunks]
        acc = functools.reduce(np.add, parts)
        if geo.broadcast:  # (G, ob, F) -> (F, G, 1, ob)
            acc = np.conjugate(acc.transpose(2, 0, 1))[:, :, None]
        taps = _kernel_taps(acc, geo.fft_len, geo.freq_shape, geo.taps(1), geo.size)
        # (K_last, .., K_0, G, cig, ob) -> (G, ob, cig, K_0, .., K_last)
        dw[:, o] = taps.transpose(nd, nd + 2, nd + 1, *reversed(range(nd)))
    return dw.reshape(weight_shape)


# Overlap-save tiling. A large input against a small kernel gives a kernel spectrum
# (C_in/G * C_out * F values) far larger than the data; cutting the output into tiles of T
# (inputs of T + extent - 1, overlapping) makes the tiles a longer batch over a short FFT. The
# choice minimises this cost model, in ns of one core: a least-squares fit to 70 timed forward
# passes (14 shapes, each in one piece and in 1 to 8 tile sizes) on the project's machine.
# It picks a plan within 15 % of the fastest measured one for 13 of the 14 shapes. Timings
# include the page faults of fresh arrays, as a default glibc malloc gives them.
_NS_DATA = 6.7  # per real sample of a channel (forward and inverse transforms, copies)
_NS_SPECTRUM = 3.2  # per complex value of the kernel spectrum (written, then read by the matmul)
_NS_TAP = 0.12  # ... plus this per tap of the longest kernel axis (its DFT matmul)
_NS_MAC = 0.026  # per complex multiply-add of the contraction
_MAX_TILE_CANDIDATES = 12  # tile FFT lengths tried, from 2 * extent up
# im2col + GEMM (``kernels.conv``) in the same units, fitted to the same shapes.
_NS_IM2COL_MAC = 0.027  # per real multiply-add of the GEMM
_NS_IM2COL_COLUMN = 0.49  # per element of the column matrix (written, then read by the GEMM)
#: :func:`fft_conv_preferred` wants the FFT estimated at least this many times faster.
FFT_MARGIN = 1.25


@functools.cache
def _smooth_sizes(limit: int = 1 << 16) -> tuple[int, ...]:
    """Every ``2**a * 3**b * 5**c <= limit``, ascending."""
    sizes = [1]
    for p in (2, 3, 5):
        sizes = [m * p**e for m in sizes for e in range(limit.bit_length()) if m * p**e <= limit]
    return tuple(sorted(set(sizes)))


def _cost(batch: int, c_in: int, c_out: int, cig: int, fft_len, extent) -> float:
    lt = math.prod(fft_len)
    freqs = lt // fft_len[-1] * (fft_len[-1] // 2 + 1)
    return (
        _NS_DATA * batch * (c_in + c_out) * lt
        + cig * c_out * freqs * (_NS_SPECTRUM + _NS_TAP * max(extent))
        + _NS_MAC * batch * cig * c_out * freqs
    )


@functools.lru_cache(maxsize=1024)
def _best(
    n: int, c_in: int, c_out: int, cig: int, spatial, extent, padding
) -> tuple[tuple[int, ...] | None, float]:
    """(output tile per spatial dim or None for one piece, estimated ns) of the cheapest plan."""
    out = [s + lo + hi - e + 1 for s, e, (lo, hi) in zip(spatial, extent, padding)]
    best = _cost(n, c_in, c_out, cig, fft_shape(spatial, extent, padding), extent)
    plan = None
    # One FFT length for every tiled dim (mixed lengths measured slower than the model says);
    # a dim whose output fits in one tile of that length stays whole.
    sizes = [size for size in _smooth_sizes() if size >= 2 * max(extent)]
    for size in sizes[:_MAX_TILE_CANDIDATES]:
        tiles = tuple(size - e + 1 if size - e + 1 < o else o for o, e in zip(out, extent))
        counts = [-(-o // t) for o, t in zip(out, tiles)]
        if math.prod(counts) == 1:
            break
        fft_len = tuple(fft_size(t + e - 1) for t, e in zip(tiles, extent))
        cost = _cost(n * math.prod(counts), c_in, c_out, cig, fft_len, extent)
        if cost < best:
            best, plan = cost, tiles
    return plan, best


def _plan(n: int, c_in: int, c_out: int, cig: int, spatial, extent, padding):
    """Output tile per spatial dim, or None when one piece (no tiles) is estimated cheapest."""
    return _best(n, c_in, c_out, cig, spatial, extent, padding)[0]


def _extent(kernel, dilation) -> tuple[int, ...]:
    dilation = dilation or (1,) * len(kernel)
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def _tiles_of(
    x_shape: tuple[int, ...], weight_shape: tuple[int, ...], padding: Pads, groups: int, dilation
) -> tuple[int, ...] | None:
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    return _plan(
        x_shape[0],
        x_shape[1],
        weight_shape[0],
        weight_shape[1],
        tuple(x_shape[2:]),
        _extent(weight_shape[2:], dilation),
        padding,
    )


def _embed(a: np.ndarray, size: tuple[int, ...], offsets: tuple[int, ...]) -> np.ndarray:
    """``a`` placed at ``offsets`` (negative ones crop) in zeros of spatial ``size``.

    ``np.empty`` and zeroed borders rather than ``np.zeros``: a fresh calloc'd block costs a page
    fault per 4 KiB on first touch, a measurable part of these kernels.
    """
    out = np.empty(a.shape[:2] + tuple(size), a.dtype)
    src, dst = [], []
    for axis, (s, offset, total) in enumerate(zip(a.shape[2:], offsets, size)):
        start_src, start_dst = max(-offset, 0), max(offset, 0)
        length = max(0, min(s - start_src, total - start_dst))
        src.append(slice(start_src, start_src + length))
        dst.append(slice(start_dst, start_dst + length))
        lead = (slice(None),) * (2 + axis)
        out[(*lead, slice(0, start_dst))] = 0
        out[(*lead, slice(start_dst + length, None))] = 0
    out[(slice(None), slice(None), *dst)] = a[(slice(None), slice(None), *src)]
    return out


def _tile_input(
    x: np.ndarray, padding: Pads, tiles: tuple[int, ...], extent: tuple[int, ...]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Overlapping input tiles ``(N * prod(counts), C, *(tiles + extent - 1))`` and the counts.

    Padding may be negative here (it crops): the input gradient pads ``extent - 1 - lo``.
    """
    n, c, *spatial = x.shape
    out = [s + lo + hi - e + 1 for s, e, (lo, hi) in zip(spatial, extent, padding)]
    counts = tuple(-(-o // t) for o, t in zip(out, tiles))
    total = tuple(k * t + e - 1 for k, t, e in zip(counts, tiles, extent))
    xp = _embed(x, total, tuple(lo for lo, _ in padding))
    sn, sc, *ss = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, *counts, c, *(t + e - 1 for t, e in zip(tiles, extent))),
        strides=(sn, *(t * s for t, s in zip(tiles, ss)), sc, *ss),
        writeable=False,
    )
    return view.reshape(n * math.prod(counts), c, *view.shape[2 + len(tiles) :]), counts


def _tile_output(g: np.ndarray, tiles: tuple[int, ...], counts: tuple[int, ...]) -> np.ndarray:
    """Non-overlapping tiles of ``grad_out``, zero-filled at the end: ``(N * prod, C, *tiles)``."""
    n, c, *out = g.shape
    nd = len(out)
    gp = _embed(g, tuple(k * t for k, t in zip(counts, tiles)), (0,) * nd)
    gp = gp.reshape(n, c, *itertools.chain(*zip(counts, tiles)))
    gp = gp.transpose(0, *range(2, 2 + 2 * nd, 2), 1, *range(3, 3 + 2 * nd, 2))
    return gp.reshape(n * math.prod(counts), c, *tiles)


def _untile(yt: np.ndarray, n: int, counts: tuple[int, ...], out: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_tile_output`, cropped to ``out``: ``(N, C, *out)``."""
    nd = len(out)
    c, *tiles = yt.shape[1:]
    y = yt.reshape(n, *counts, c, *tiles)
    y = y.transpose(0, nd + 1, *itertools.chain(*zip(range(1, nd + 1), range(nd + 2, 2 * nd + 2))))
    y = y.reshape(n, c, *(k * t for k, t in zip(counts, tiles)))
    return np.ascontiguousarray(y[(slice(None), slice(None), *(slice(0, o) for o in out))])


def _tiled_forward(x, weight, padding, groups, dilation, tiles) -> np.ndarray:
    extent = _extent(weight.shape[2:], dilation)
    xt, counts = _tile_input(x, padding, tiles, extent)
    yt = _forward(xt, weight, ((0, 0),) * len(tiles), groups, dilation)
    out = tuple(s + lo + hi - e + 1 for s, e, (lo, hi) in zip(x.shape[2:], extent, padding))
    return _untile(yt, x.shape[0], counts, out)


def fft_conv_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    padding: Pads,
    groups: int,
    dilation: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Stride-1 cross-correlation by FFT, equal to ``conv.conv_forward`` with stride 1.

    Args:
        x: input ``(N, C_in, *S)``, 1 to 3 spatial dims.
        weight: ``(C_out, C_in / groups, *K)``.
        bias: ``(C_out,)`` or None.
        padding: ``((lo, hi), ...)`` zero padding per spatial dim, all >= 0.
        groups: number of channel groups.
        dilation: kernel dilation per spatial dim (default 1).

    Shape:
        output ``(N, C_out, *O)`` with ``O = S + lo + hi - dilation * (K - 1)``.

    >>> x, w = np.ones((1, 1, 8)), np.ones((1, 1, 5))
    >>> fft_conv_forward(x, w, None, ((2, 2),), 1).round(6).tolist()
    [[[3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 4.0, 3.0]]]
    """
    tiles = _tiles_of(x.shape, weight.shape, padding, groups, dilation)
    if tiles is None:
        y = _forward(x, weight, padding, groups, dilation)
    else:
        y = _tiled_forward(x, weight, padding, groups, dilation, tiles)
    if bias is not None:
        y += bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def fft_conv_backward_input(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    padding: Pads,
    groups: int,
    dilation: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Gradient of :func:`fft_conv_forward` with respect to ``x``, shape ``input_shape``.

    Equal to ``conv.conv_backward_input`` with stride 1: the full convolution of ``grad_out``
    with the kernel, cropped to the unpadded input. Tiled, it is computed as the forward pass of
    ``grad_out`` with the flipped, transposed kernel and padding ``extent - 1 - lo``.
    """
    input_shape = tuple(input_shape)
    tiles = _tiles_of(input_shape, weight.shape, padding, groups, dilation)
    if tiles is None:
        return _backward_input(grad_out, weight, input_shape, padding, groups, dilation)
    nd = len(tiles)
    extent = _extent(weight.shape[2:], dilation)
    c_out, cig, *kernel = weight.shape
    flipped = np.flip(weight, axis=tuple(range(2, 2 + nd)))
    flipped = flipped.reshape(groups, c_out // groups, cig, *kernel).swapaxes(1, 2)
    flipped = flipped.reshape(groups * cig, c_out // groups, *kernel)
    pads = tuple((e - 1 - lo, e - 1 - hi) for e, (lo, hi) in zip(extent, padding))
    return _tiled_forward(grad_out, flipped, pads, groups, dilation, tiles)


def fft_conv_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    padding: Pads,
    groups: int,
    dilation: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Gradient of :func:`fft_conv_forward` with respect to ``weight``, shape ``weight_shape``.

    Equal to ``conv.conv_backward_weight`` with stride 1: the correlation of the input with
    ``grad_out``, summed over the batch, evaluated at the kernel taps only.
    """
    weight_shape = tuple(weight_shape)
    tiles = _tiles_of(x.shape, weight_shape, padding, groups, dilation)
    if tiles is None:
        return _backward_weight(x, grad_out, weight_shape, padding, groups, dilation)
    xt, counts = _tile_input(x, padding, tiles, _extent(weight_shape[2:], dilation))
    gt = _tile_output(grad_out, tiles, counts)
    return _backward_weight(xt, gt, weight_shape, ((0, 0),) * len(tiles), groups, dilation)


def fft_conv_supported(
    x_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> bool:
    """Whether the FFT kernels compute this convolution: stride 1 and 1 to 3 spatial dims."""
    nd = len(x_shape) - 2
    return (
        1 <= nd <= 3
        and len(weight_shape) == nd + 2
        and len(stride) == len(dilation) == nd
        and all(s == 1 for s in stride)
        and all(d >= 1 for d in dilation)
        and groups >= 1
        and x_shape[1] == weight_shape[1] * groups
        and weight_shape[0] % groups == 0
    )


def fft_conv_preferred(
    x_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
    padding: Pads | None = None,
) -> bool:
    """Whether the FFT kernels are expected to beat im2col + GEMM (``kernels.conv``) clearly.

    Compares two cost models fitted to single-core timings on the project's machine: the FFT's
    (its best tiling, see the notes above ``_NS_DATA``) against im2col's (``_NS_IM2COL_MAC`` per
    multiply-add, ``_NS_IM2COL_COLUMN`` per column element), and wants the FFT
    :data:`FFT_MARGIN` times cheaper. ``padding`` defaults to 'same'. One answer serves the
    forward pass and both gradients: measured, every shape it prefers runs all three faster by
    FFT, except the input gradient of N8 C32 64x64 k5 (0.74-0.9x: im2col's is fast there).

    >>> fft_conv_preferred((8, 64, 32, 32), (64, 64, 7, 7), (1, 1), (1, 1), 1)
    True
    >>> fft_conv_preferred((8, 64, 32, 32), (64, 64, 3, 3), (1, 1), (1, 1), 1)
    False
    """
    if not fft_conv_supported(x_shape, weight_shape, stride, dilation, groups):
        return False
    n, c_in, *spatial = x_shape
    c_out, cig, *kernel = weight_shape
    extent = _extent(tuple(kernel), tuple(dilation))
    if padding is None:
        padding = tuple(((e - 1) // 2, e - 1 - (e - 1) // 2) for e in extent)
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    out = math.prod(s + lo + hi - e + 1 for s, e, (lo, hi) in zip(spatial, extent, padding))
    if out <= 0:
        return False
    _, fft_ns = _best(n, c_in, c_out, cig, tuple(spatial), extent, padding)
    columns = n * out * c_in * math.prod(kernel)
    im2col_ns = columns * (_NS_IM2COL_COLUMN + _NS_IM2COL_MAC * (c_out // groups))
    return fft_ns * FFT_MARGIN < im2col_ns
