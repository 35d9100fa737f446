"""Winograd minimal-filtering convolution F(m x m, 3 x 3), m = 2 or 4, for 2-d 3x3 stride-1 convs.

A 3x3 correlation producing an ``m x m`` output tile from an ``a x a`` input tile (``a = m + 2``)
costs ``9 m^2`` multiplications directly; Winograd's algorithm (Lavin & Gray, "Fast Algorithms
for Convolutional Neural Networks", arXiv 1509.09308) does it with ``a^2``::

    Y = A^T [ (G g G^T) * (B^T d B) ] A

and, summed over input channels, the elementwise product becomes one matrix product per
transform point ``t`` (``a^2 = 16`` or ``36`` of them)::

    M[t] = U[t] @ V[t],   U[t]: (C_out, C_in) transformed weights,
                          V[t]: (C_in, tiles) transformed input tiles

so a call is: transform the weights once, then per chunk of about 1600 tiles of the batch,
transform the input tiles, ONE batched ``np.matmul``, transform back; convlab's threads each take
a slice of the batch through all three steps. F(2x2) does 2.25x fewer
multiplications than direct convolution, F(4x4) 4x; the transforms are memory-bound passes over
the data, done here either by

- ``"numba"``: compiled loops (the optional ``fast`` extra) over (channel, block of images)
  tasks, with separable 1-d transforms whose loops run along long contiguous rows (LLVM
  vectorises them) and the bias added in the output pass; or
- ``"numpy"``: one strided copy of the overlapping tiles and one Kronecker-product GEMM
  ``(a^2, a^2) @ (a^2, C * tiles)`` (and the same on the way back);
- ``"auto"``: numba when it can be imported, else NumPy.

Extra memory: the transformed tiles and the products of one chunk, ``a^2 / m^2`` (2.25 for
F(4x4), 4 for F(2x2)) times the input and the output of that chunk.

The input gradient is again a 3x3 stride-1 convolution (of ``grad_out`` with the kernel rotated
by 180 degrees and its in/out channels swapped, padding ``2 - low, 2 - high``), so it reuses the
forward. The weight gradient is Winograd F(3 x 3, m x m): the ``m x m`` tiles of ``grad_out`` play
the filter, the ``(m + 2)^2`` tiles of the input (the same transform as the forward's) the data,
and the sum over tiles and the batch is the K dimension of one batched GEMM.

Transform matrices come from the Cook-Toom construction with interpolation points ``0, 1, -1``
(F(2)) and ``0, 1, -1, 2, -1/2`` (F(4)) plus infinity, in exact rational arithmetic; the input
transform ``B^T`` has small integer entries. Ragged edges (output sizes not a multiple of ``m``)
are handled by padding the input further with zeros and cropping the output. float32 error
(max |y32 - y64| / max |y64|, standard normal data, C_in 64..1024): about 5e-7 for F(2), like
im2col, and 2e-6..5e-6 for F(4), growing slowly with C_in.

Arguments are canonical as in :mod:`convlab.kernels.conv`: ``padding`` is ``((low, high),
(low, high))``; checking them is the caller's job (:func:`winograd_supported` says whether these
kernels apply).

>>> x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
>>> winograd_conv2d_forward(x, w, None, ((1, 1), (1, 1)), tile=2)[0, 0, 0].round(9)
array([4., 6., 6., 4.])
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convlab.kernels import _jit, parallel

Pads = tuple[tuple[int, int], ...]

__all__ = [
    "IMPLS",
    "TILES",
    "winograd_conv2d_backward_input",
    "winograd_conv2d_backward_weight",
    "winograd_conv2d_forward",
    "winograd_matrices",
    "winograd_supported",
]

IMPLS = ("auto", "numpy", "numba")
TILES = (2, 4)
# Finite interpolation points of F(m, r) for m + r - 2 = 3 (F(2, 3), F(3, 2)) and 5 (F(4, 3),
# F(3, 4)); infinity is the last point of every one. For F(4, 3), 2 and -1/2 in place of the
# textbook 2 and -2 (the pair p, -1/p balances the magnitudes in A^T and G) cut the float32
# error about 3x, with B^T still integral (measured on C_in = 64..512, standard normal data).
_POINTS = {3: (0, 1, -1), 5: (0, 1, -1, 2, Fraction(-1, 2))}
# The batch is processed in chunks of about CHUNK_TILES tiles: enough columns for the GEMMs to
# run near their best rate (they lose 10-30% at a few hundred), few enough that the transformed
# tiles are still cached when the GEMM reads them (F(2x2) on W1b: 1.4x slower with the whole
# batch in one chunk). The transformed tiles of a chunk also stay under CHUNK_BYTES, which
# bounds the extra memory.
CHUNK_TILES = 1600
CHUNK_BYTES = 32 << 20


def _resolve(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, but got impl={impl!r}")
    if impl == "auto":
        return "numba" if _jit.numba_available() else "numpy"
    return impl


def _check_tile(tile: int) -> int:
    if tile not in TILES:
        raise ValueError(f"tile must be one of {TILES}, but got tile={tile!r}")
    return tile


def _inverse(rows: list[list[Fraction]]) -> list[list[Fraction]]:
    """Gauss-Jordan inverse in exact rational arithmetic."""
    n = len(rows)
    aug = [list(r) + [Fraction(int(i == j)) for j in range(n)] for i, r in enumerate(rows)]
    for col in range(n):
        piv = next(r for r in range(col, n) if aug[r][col] != 0)
        aug[col], aug[piv] = aug[piv], aug[col]
        p = aug[col][col]
        aug[col] = [v / p for v in aug[col]]
        for r in range(n):
            if r != col and aug[r][col] != 0:
                f = aug[r][col]
                aug[r] = [a - f * b for a, b in zip(aug[r], aug[col])]
    return [row[n:] for row in aug]


@functools.cache
def winograd_matrices(m: int, r: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transform matrices ``(B^T, G, A^T)`` of Winograd F(m, r), as float64 arrays.

    F(m, r) computes ``m`` outputs of an ``r``-tap correlation, ``y_i = sum_k g_k d_{i+k}``, as
    ``y = A^T [(G g) * (B^T d)]`` from ``a = m + r - 1`` inputs with ``a`` multiplications.

    Args:
        m: outputs per tile (2, 3 or 4 with ``r`` such that ``m + r - 1`` is 4 or 6).
        r: filter taps.

    Shape:
        ``B^T``: ``(a, a)``, ``G``: ``(a, r)``, ``A^T``: ``(m, a)`` with ``a = m + r - 1``.

    >>> bt, g, at = winograd_matrices(2)
    >>> d, k = np.arange(4.0), np.array([1.0, 2.0, 3.0])
    >>> (at @ ((g @ k) * (bt @ d))).round(9)
    array([ 8., 14.])
    """
    a = m + r - 1
    points = [Fraction(p) for p in _POINTS[a - 1]]
    # Evaluation of a polynomial of degree a - 1 at the points and at infinity (its leading
    # coefficient); B^T is the transposed interpolation, i.e. inverse evaluation.
    vander = [[p**k for k in range(a)] for p in points] + [[Fraction(0)] * (a - 1) + [Fraction(1)]]
    inv = _inverse(vander)
    bt = [[inv[k][j] for k in range(a)] for j in range(a)]
    g = [[p**k for k in range(r)] for p in points] + [[Fraction(0)] * (r - 1) + [Fraction(1)]]
    at = [[p**i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    # Scale each row of B^T to coprime integers; G's row takes the inverse factor.
    for j in range(a):
        den = math.lcm(*(v.denominator for v in bt[j]))
        num = math.gcd(*(v.numerator for v in bt[j]))
        bt[j] = [v * den / num for v in bt[j]]
        g[j] = [v * num / den for v in g[j]]
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in (bt, g, at))


def winograd_supported(
    x_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> bool:
    """Whether the Winograd kernels compute this convolution.

    They do 2-d convolutions with a 3x3 kernel, stride 1 and dilation 1, any zero padding, any
    ``groups`` (one transform and GEMM per group), whose output is not empty.

    >>> winograd_supported((8, 64, 56, 56), (64, 64, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    True
    """
    if len(x_shape) != 4 or len(weight_shape) != 4 or len(padding) != 2:
        return False
    if tuple(weight_shape[2:]) != (3, 3) or tuple(stride) != (1, 1) or tuple(dilation) != (1, 1):
        return False
    n, c_in, h, w = x_shape
    c_out, cig = weight_shape[:2]
    if groups < 1 or c_in != cig * groups or c_out % groups or min(n, c_in, c_out) < 1:
        return False
    (hl, hh), (wl, wh) = padding
    return h + hl + hh - 2 >= 1 and w + wl + wh - 2 >= 1


def _grid(size: int, lo: int, hi: int, m: int) -> tuple[int, int]:
    """Output size and number of ``m``-wide tiles along one dimension."""
    out = size + lo + hi - 2
    return out, -(-out // m)


def _images_per_chunk(n: int, tiles: int, per_image: int) -> int:
    """Images per chunk: ``tiles`` tiles and ``per_image`` bytes of transformed tiles each."""
    by_tiles = -(-CHUNK_TILES // tiles)
    return max(1, min(n, by_tiles, CHUNK_BYTES // max(per_image, 1)))


# ---------------------------------------------------------------------------------------------
# Tile transforms: ``(N, C, H, W) -> (a * a, C, tiles)``, the right-hand side of the batched GEMM
# as it is, and back. The NumPy path numbers the tiles of a chunk (n, i, j) (image, tile row,
# tile column), the numba path (i, n, j) within each block of images; each path's output
# transform reads its own order.


def _np_tiles(x, mat, step, lo_h, lo_w, th, tw):
    """``out[k a + l, c, (n th + i) tw + j] = sum mat[k, r] mat[l, s] xz[n, c, i m + r, j m + s]``.

    ``m`` is ``step``; ``xz`` is ``x`` shifted by ``(lo_h, lo_w)`` inside zeros (a negative shift
    crops it).
    """
    n, c, h, w = x.shape
    a, win = mat.shape
    hq, wq = step * (th - 1) + win, step * (tw - 1) + win
    xz = np.zeros((n, c, hq, wq), x.dtype)
    r0, r1 = max(lo_h, 0), min(hq, lo_h + h)
    c0, c1 = max(lo_w, 0), min(wq, lo_w + w)
    if r0 < r1 and c0 < c1:
        xz[:, :, r0:r1, c0:c1] = x[:, :, r0 - lo_h : r1 - lo_h, c0 - lo_w : c1 - lo_w]
    sn, sc, sh, sw = xz.strides
    # One copy of the (overlapping) tiles, then one GEMM with the transposed copy as the
    # right-hand side: BLAS reads it as a column-major (win^2, C * tiles) matrix.
    tiles = as_strided(xz, (c, n, th, tw, win, win), (sc, sn, step * sh, step * sw, sh, sw))
    d = tiles.reshape(-1, win * win)
    kron = np.kron(mat, mat).astype(x.dtype)
    return np.matmul(kron, d.T).reshape(a * a, c, n * th * tw)


def _np_untile(mm, at, n, th, tw, out, bias):
    """``out[n, o, i m + u, j m + v] = bias[o] + sum at[u, k] at[v, l] mm[k a + l, o, tile]``."""
    m, a = at.shape
    co = mm.shape[1]
    ho, wo = out.shape[2:]
    kron = np.kron(at, at).astype(mm.dtype)
    # (a^2, C_out * tiles)^T @ kron^T: each tile's m x m outputs land contiguous.
    y = np.matmul(mm.reshape(a * a, -1).T, kron.T).reshape(co, n, th, tw, m, m)
    y = y.transpose(1, 0, 2, 4, 3, 5)  # (n, C_out, th, m, tw, m)
    if (ho, wo) == (th * m, tw * m):
        np.copyto(out.reshape(y.shape), y)
    else:
        np.copyto(out, y.reshape(n, co, th * m, tw * m)[:, :, :ho, :wo])
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)


# numba (the optional ``fast`` extra). Work is split into tasks of (one channel, a block of
# images), run one after the other on the calling thread. Within a task the block's images sit
# side by side in one zero-padded scratch buffer, so every loop runs along a long contiguous
# row, or along a row read or written with a constant stride equal to the tile step, which LLVM
# vectorises; the 1-d transforms are done one output row at a time with the matrix entries held
# in scalars. Loops index views by the loop variable alone, so that numba drops its
# negative-index checks (which stop LLVM from vectorising). Tiles of a block are numbered
# (i, n, j) (tile row, image, tile column): the input transform writes them in that order, the
# output transform reads them in that order with the same blocking.


@_jit.kernel()
def _nb_lin(mat, o, src, r0, rs, ch, off, n, dst):  # pragma: no cover - compiled by numba
    """``dst[q] = sum_i mat[o, i] src[r0 + i rs, ch, off + q]`` for ``q < n``, ``i < mat.shape[1]``.

    ``src`` is 3-d and C-contiguous, so each row read is a contiguous run; ``mat.shape[1]`` is
    6, 4 or 2 and its entries are held in scalars.
    """
    w = mat.shape[1]
    if w == 6:
        c0, c1, c2, c3, c4, c5 = mat[o, 0], mat[o, 1], mat[o, 2], mat[o, 3], mat[o, 4], mat[o, 5]
        s0 = src[r0, ch, off : off + n]
        s1 = src[r0 + rs, ch, off : off + n]
        s2 = src[r0 + 2 * rs, ch, off : off + n]
        s3 = src[r0 + 3 * rs, ch, off : off + n]
        s4 = src[r0 + 4 * rs, ch, off : off + n]
        s5 = src[r0 + 5 * rs, ch, off : off + n]
        for q in range(n):
            dst[q] = c0 * s0[q] + c1 * s1[q] + c2 * s2[q] + c3 * s3[q] + c4 * s4[q] + c5 * s5[q]
    elif w == 4:
        c0, c1, c2, c3 = mat[o, 0], mat[o, 1], mat[o, 2], mat[o, 3]
        s0 = src[r0, ch, off : off + n]
        s1 = src[r0 + rs, ch, off : off + n]
        s2 = src[r0 + 2 * rs, ch, off : off + n]
        s3 = src[r0 + 3 * rs, ch, off : off + n]
        for q in range(n):
            dst[q] = c0 * s0[q] + c1 * s1[q] + c2 * s2[q] + c3 * s3[q]
    else:
        c0, c1 = mat[o, 0], mat[o, 1]
        s0 = src[r0, ch, off : off + n]
        s1 = src[r0 + rs, ch, off : off + n]
        for q in range(n):
            dst[q] = c0 * s0[q] + c1 * s1[q]


@_jit.kernel()
def _nb_split(row, step, n, d, off):  # pragma: no cover - compiled by numba
    """``d[s, 0, off + J] = row[J * step + s]`` for ``s < step`` (4 or 2), ``J < n``."""
    if step == 4:
        d0, d1 = d[0, 0, off : off + n], d[1, 0, off : off + n]
        d2, d3 = d[2, 0, off : off + n], d[3, 0, off : off + n]
        for j in range(n):
            d0[j] = row[4 * j]
            d1[j] = row[4 * j + 1]
            d2[j] = row[4 * j + 2]
            d3[j] = row[4 * j + 3]
    else:
        d0, d1 = d[0, 0, off : off + n], d[1, 0, off : off + n]
        for j in range(n):
            d0[j] = row[2 * j]
            d1[j] = row[2 * j + 1]


@_jit.kernel()
def _nb_merge(acc, off, n, b, row):  # pragma: no cover - compiled by numba
    """``row[J * m + v] = acc[v, off + J] + b`` for ``v < m`` (4 or 2), ``J < n``."""
    if acc.shape[0] == 4:
        a0, a1 = acc[0, off : off + n], acc[1, off : off + n]
        a2, a3 = acc[2, off : off + n], acc[3, off : off + n]
        for j in range(n):
            row[4 * j] = a0[j] + b
            row[4 * j + 1] = a1[j] + b
            row[4 * j + 2] = a2[j] + b
            row[4 * j + 3] = a3[j] + b
    else:
        a0, a1 = acc[0, off : off + n], acc[1, off : off + n]
        for j in range(n):
            row[2 * j] = a0[j] + b
            row[2 * j + 1] = a1[j] + b


@_jit.kernel()
def _nb_tiles(x, mat, step, lo_h, lo_w, th, tw, nbi, out):  # pragma: no cover - compiled by numba
    """``out[k a + l, c, tile] = sum_{r, s} mat[k, r] mat[l, s] xz[n, c, i step + r, j step + s]``.

    ``mat`` is ``(a, win)``; ``xz`` is ``x`` shifted by ``(lo_h, lo_w)`` inside zeros; the tiles
    of the block of images ``n0 <= n < n0 + nb`` are numbered ``n0 th tw + (i nb + n - n0) tw + j``.

    The block's images sit side by side in the scratch rows, ``step * tw`` columns each, so that
    tile ``J = (n - n0) tw + j`` starts at column ``J step``; the ``win - step`` columns that the
    last tile of an image reads beyond its own go to the end of the row. Window column
    ``s >= step`` of tile ``J`` is column ``s - step`` of tile ``J + 1``, except for last tiles.
    """
    n_img, chans, size_h, size_w = x.shape
    a, win = mat.shape
    extra = win - step
    hq = step * (th - 1) + win
    wm = step * tw  # columns of one image in the scratch rows, before the extra ones
    r0, r1 = max(lo_h, 0), min(hq, lo_h + size_h)
    c0, c1 = max(lo_w, 0), min(wm + extra, lo_w + size_w)
    cm = max(c0, min(c1, wm))  # columns [c0, cm) are an image's own, [cm, c1) extra ones
    nblk = (n_img + nbi - 1) // nbi
    per = th * tw
    for task in range(chans * nblk):
        c = task // nblk
        n0 = (task - c * nblk) * nbi
        nb = min(nbi, n_img - n0)
        nj = nb * tw  # tiles in a row of tiles
        ln = th * nj
        width = nb * (wm + extra)
        buf = np.zeros((hq, 1, width), x.dtype)
        for n in range(nb):
            for r in range(r0, r1):
                src = x[n0 + n, c, r - lo_h]
                dst = buf[r, 0]
                # Element loops over views: the transform ~20% faster than with slice assignment
                # of these short rows (numba's array copy checks shapes and overlap each call).
                own_dst = dst[n * wm + c0 : n * wm + cm]
                own_src = src[c0 - lo_w : cm - lo_w]
                for q in range(own_dst.shape[0]):
                    own_dst[q] = own_src[q]
                e0 = nb * wm + n * extra - wm
                extra_dst = dst[e0 + cm : e0 + c1]
                extra_src = src[cm - lo_w : c1 - lo_w]
                for q in range(extra_dst.shape[0]):
                    extra_dst[q] = extra_src[q]
        rows = np.empty(width, x.dtype)
        d = np.empty((win, 1, ln), x.dtype)
        base = n0 * per
        for k in range(a):
            for i in range(th):
                # Along H over a whole scratch row, then split it into the tiles' columns.
                _nb_lin(mat, k, buf, i * step, 1, 0, 0, width, rows)
                off = i * nj
                _nb_split(rows, step, nj, d, off)
                for e in range(extra):
                    dst = d[step + e, 0]
                    dst[off : off + nj - 1] = d[e, 0, off + 1 : off + nj]
                    for n in range(nb):
                        dst[off + n * tw + tw - 1] = rows[nb * wm + n * extra + e]
            # Along W, for every tile of the block at once, straight into the result.
            for ll in range(a):
                _nb_lin(mat, ll, d, 0, 1, 0, 0, ln, out[k * a + ll, c, base : base + ln])


@_jit.kernel()
def _nb_untile(mm, at, th, tw, nbi, bias, out):  # pragma: no cover - compiled by numba
    """``out[n, c, i m + u, j m + v] = bias[c] + sum_{k,l} at[u, k] at[v, l] mm[k a + l, c, t]``.

    Tiles numbered as by :func:`_nb_tiles` with the same ``nbi``; outputs beyond ``out``'s size
    (ragged edges) are dropped.
    """
    m, a = at.shape
    n_img, co, ho, wo = out.shape
    nblk = (n_img + nbi - 1) // nbi
    per = th * tw
    for task in range(co * nblk):
        o = task // nblk
        n0 = (task - o * nblk) * nbi
        nb = min(nbi, n_img - n0)
        ln = nb * per
        base = n0 * per
        b = bias[o]
        # Along H straight from the GEMM result: part[u a + l] = sum_k at[u, k] mm[k a + l].
        part = np.empty((m * a, 1, ln), mm.dtype)
        for ll in range(a):
            for u in range(m):
                _nb_lin(at, u, mm, ll, a, o, base, ln, part[u * a + ll, 0])
        acc = np.empty((m, ln), mm.dtype)
        row_len = nb * tw
        line = np.empty(row_len * m, mm.dtype)
        for u in range(m):
            # Along W, then interleave the tiles' columns into whole output rows.
            for v in range(m):
                _nb_lin(at, v, part, u * a, 1, 0, 0, ln, acc[v])
            for i in range(min(th, (ho - u + m - 1) // m)):
                _nb_merge(acc, i * row_len, row_len, b, line)
                for n in range(nb):
                    out[n0 + n, o, i * m + u] = line[n * m * tw : n * m * tw + wo]


def _block(n: int, tw: int) -> int:
    """Images per numba task: rows of at least about 128 tiles, blocks of even size."""
    want = min(n, max(1, -(-128 // tw)))
    blocks = -(-n // want)
    return -(-n // blocks)


def _buffer(buf: np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` on the front of the flat ``buf`` (a new one if None)."""
    if buf is None:
        return np.empty(shape, dtype)
    return buf[: math.prod(shape)].reshape(shape)


def _tiles(x, mat, step, lo_h, lo_w, th, tw, impl, buf=None):
    """Transformed tiles ``(a^2, C, N th tw)`` (on the front of ``buf``, the numba path only)."""
    if impl == "numpy":
        return _np_tiles(x, mat, step, lo_h, lo_w, th, tw)
    out = _buffer(buf, (mat.shape[0] ** 2, x.shape[1], x.shape[0] * th * tw), x.dtype)
    nbi = _block(x.shape[0], tw)
    _nb_tiles(np.ascontiguousarray(x), mat.astype(x.dtype), step, lo_h, lo_w, th, tw, nbi, out)
    return out


def _untile(mm, at, n, th, tw, out, bias, impl):
    if impl == "numpy":
        _np_untile(mm, at, n, th, tw, out, bias)
        return
    b = np.zeros(out.shape[1], out.dtype) if bias is None else bias.astype(out.dtype)
    _nb_untile(mm, at.astype(mm.dtype), th, tw, _block(n, tw), b, out)


# ---------------------------------------------------------------------------------------------
# Convolution


def _weights(weight: np.ndarray, g: np.ndarray, dtype) -> np.ndarray:
    """``U[k a + l, o, c] = sum_{r, s} g[k, r] g[l, s] weight[o, c, r, s]``, in float64."""
    co, ci = weight.shape[:2]
    w = weight.reshape(co * ci, 9).astype(np.float64)
    return np.matmul(np.kron(g, g), w.T).astype(dtype).reshape(-1, co, ci)


def _conv(x, weight, bias, padding, m, impl, out):
    """One group: ``out[...] = conv(x, weight) + bias`` by F(m x m, 3 x 3).

    Each of convlab's threads takes a slice of the batch and runs the whole pipeline on it, a
    chunk of images at a time: input transform, products, output transform. The transformed
    tiles of a chunk are still in the cache when the product reads them, and the three steps
    need no hand-off between threads. With each step split on its own (numba's threads for
    the transforms, ours for the products) W1b took 7.1-10.3 ms from run to run and W2
    17-19.5 ms; this way 7.2-7.5 and 16.1-16.2 ms (alternated runs).
    """
    bt, g, at = winograd_matrices(m)
    a = m + 2
    n, c_in, h, w = x.shape
    c_out = weight.shape[0]
    (hl, hh), (wl, wh) = padding
    ho, th = _grid(h, hl, hh, m)
    wo, tw = _grid(w, wl, wh, m)
    u = _weights(weight, g, x.dtype)
    x = np.ascontiguousarray(x)
    step = _images_per_chunk(n, th * tw, a * a * th * tw * max(c_in, c_out) * x.itemsize)

    def part(images: slice) -> None:
        chunk = min(step, images.stop - images.start)
        # One buffer each for the tiles and the products, reused by every chunk of the slice.
        v_buf = np.empty(a * a * c_in * chunk * th * tw, x.dtype) if impl == "numba" else None
        mm_buf = np.empty(a * a * c_out * chunk * th * tw, x.dtype)
        for n0 in range(images.start, images.stop, chunk):
            n1 = min(images.stop, n0 + chunk)
            v = _tiles(x[n0:n1], bt, m, hl, wl, th, tw, impl, v_buf)
            mm = np.matmul(u, v, out=_buffer(mm_buf, (a * a, c_out, v.shape[2]), x.dtype))
            _untile(mm, at, n1 - n0, th, tw, out[n0:n1], bias, impl)

    flops = 2.0 * a * a * c_out * c_in * n * th * tw
    parallel.run(part, n, parallel.parts(n, flops))


def _dtype(*arrays) -> np.dtype:
    return np.result_type(*(a.dtype for a in arrays if a is not None))


def winograd_conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    padding: Pads,
    tile: int = 4,
    groups: int = 1,
    impl: str = "auto",
) -> np.ndarray:
    """3x3 stride-1 cross-correlation by Winograd F(tile x tile, 3 x 3).

    The same result as ``conv_forward(x, weight, bias, (1, 1), padding, (1, 1), groups)``.

    Args:
        x: input ``(N, C_in, H, W)``.
        weight: ``(C_out, C_in / groups, 3, 3)``.
        bias: ``(C_out,)`` or None.
        padding: zero padding ``((top, bottom), (left, right))``; negative values crop.
        tile: output tile size ``m``, 2 or 4.
        groups: channel groups; each one is a separate Winograd convolution.
        impl: ``"auto"``, ``"numpy"`` or ``"numba"``.

    Shape:
        ``y``: ``(N, C_out, H + top + bottom - 2, W + left + right - 2)``.

    >>> y = winograd_conv2d_forward(np.ones((2, 3, 5, 5)), np.ones((4, 3, 3, 3)), None,
    ...                             ((1, 1), (1, 1)))
    >>> y.shape, round(float(y[0, 0, 2, 2]), 9)
    ((2, 4, 5, 5), 27.0)
    """
    impl = _resolve(impl)
    m = _check_tile(tile)
    dtype = _dtype(x, weight, bias)
    x = x.astype(dtype, copy=False)
    n, c_in, h, w = x.shape
    c_out = weight.shape[0]
    (hl, hh), (wl, wh) = padding
    y = np.empty((n, c_out, h + hl + hh - 2, w + wl + wh - 2), dtype)
    if groups == 1:
        _conv(x, weight, bias, padding, m, impl, y)
        return y
    cig, cog = c_in // groups, c_out // groups
    for gi in range(groups):
        yg = np.empty((n, cog) + y.shape[2:], dtype)
        bg = None if bias is None else bias[gi * cog : (gi + 1) * cog]
        xg = x[:, gi * cig : (gi + 1) * cig]
        _conv(xg, weight[gi * cog : (gi + 1) * cog], bg, padding, m, impl, yg)
        y[:, gi * cog : (gi + 1) * cog] = yg
    return y


def _flipped(weight: np.ndarray, groups: int) -> np.ndarray:
    """The kernel of the input gradient: rotated by 180 degrees, in/out swapped per group."""
    c_out, cig = weight.shape[:2]
    cog = c_out // groups
    w = weight[:, :, ::-1, ::-1].reshape(groups, cog, cig, 3, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(w).reshape(groups * cig, cog, 3, 3)


def winograd_conv2d_backward_input(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    padding: Pads,
    tile: int = 4,
    groups: int = 1,
    impl: str = "auto",
) -> np.ndarray:
    """Gradient of :func:`winograd_conv2d_forward` with respect to ``x``.

    A full correlation of ``grad_out`` with the rotated, in/out-swapped kernel: a 3x3 stride-1
    convolution with padding ``(2 - low, 2 - high)`` per dimension, computed by the forward.

    Shape:
        ``grad_out``: ``(N, C_out, H_out, W_out)``; result: ``input_shape`` ``(N, C_in, H, W)``.

    >>> g = winograd_conv2d_backward_input(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)),
    ...                                    (1, 1, 4, 4), ((0, 0), (0, 0)))
    >>> g[0, 0, 0].round(9)
    array([1., 2., 2., 1.])
    """
    (hl, hh), (wl, wh) = padding
    pads = ((2 - hl, 2 - hh), (2 - wl, 2 - wh))
    gx = winograd_conv2d_forward(grad_out, _flipped(weight, groups), None, pads, tile, groups, impl)
    assert gx.shape == tuple(input_shape), (gx.shape, input_shape)
    return gx


def _weight_grad(x, grad_out, padding, m, impl):
    """One group: ``dW[o, c, r, s] = sum_{n, p, q} g[n, o, p, q] xz[n, c, p + r, q + s]``.

    Winograd F(3, m): ``m x m`` tiles of ``grad_out`` are the filter, ``(m + 2)^2`` tiles of the
    padded input the data; the sum over tiles and images is the K dimension of the GEMM. Each
    of convlab's threads sums its slice of the batch (transforms and products, as the forward);
    the slices' sums are added at the end.
    """
    bt, g, at = winograd_matrices(3, m)
    a = m + 2
    n, c_in = x.shape[:2]
    c_out, ho, wo = grad_out.shape[1:]
    th, tw = -(-ho // m), -(-wo // m)
    (hl, _), (wl, _) = padding
    x, grad_out = np.ascontiguousarray(x), np.ascontiguousarray(grad_out)
    step = _images_per_chunk(n, th * tw, a * a * th * tw * max(c_in, c_out) * x.itemsize)

    def part(images: slice) -> np.ndarray:
        chunk = min(step, images.stop - images.start)
        bufs = (None, None)
        if impl == "numba":
            bufs = tuple(np.empty(a * a * c * chunk * th * tw, x.dtype) for c in (c_in, c_out))
        acc = np.zeros((a * a, c_out, c_in), x.dtype)
        product = np.empty_like(acc)
        for n0 in range(images.start, images.stop, chunk):
            n1 = min(images.stop, n0 + chunk)
            v = _tiles(x[n0:n1], bt, m, hl, wl, th, tw, impl, bufs[0])  # (a^2, C_in, tiles)
            ug = _tiles(grad_out[n0:n1], g, m, 0, 0, th, tw, impl, bufs[1])  # (a^2, C_out, tiles)
            acc += np.matmul(ug, v.transpose(0, 2, 1), out=product)
        return acc

    flops = 2.0 * a * a * c_out * c_in * n * th * tw
    acc = functools.reduce(np.add, parallel.run(part, n, parallel.parts(n, flops)))
    kron = np.kron(at, at).astype(x.dtype)  # (9, a^2)
    return np.matmul(acc.reshape(a * a, -1).T, kron.T).reshape(c_out, c_in, 3, 3)


def winograd_conv2d_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    padding: Pads,
    tile: int = 4,
    groups: int = 1,
    impl: str = "auto",
) -> np.ndarray:
    """Gradient of :func:`winograd_conv2d_forward` with respect to ``weight``, by F(3x3, m x m).

    ``tile`` is the size ``m`` of the ``grad_out`` tiles (2 or 4).

    Shape:
        ``x``: ``(N, C_in, H, W)``, ``grad_out``: ``(N, C_out, H_out, W_out)``; result
        ``(C_out, C_in / groups, 3, 3)``.

    >>> gw = winograd_conv2d_backward_weight(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)),
    ...                                      ((0, 0), (0, 0)))
    >>> gw[0, 0].round(9)
    array([[4., 4., 4.],
           [4., 4., 4.],
           [4., 4., 4.]])
    """
    impl = _resolve(impl)
    m = _check_tile(tile)
    dtype = _dtype(x, grad_out)
    x, grad_out = x.astype(dtype, copy=False), grad_out.astype(dtype, copy=False)
    c_in, c_out = x.shape[1], grad_out.shape[1]
    cig, cog = c_in // groups, c_out // groups
    parts = [
        _weight_grad(
            x[:, gi * cig : (gi + 1) * cig],
            grad_out[:, gi * cog : (gi + 1) * cog],
            padding,
            m,
            impl,
        )
        for gi in range(groups)
    ]
    return parts[0] if groups == 1 else np.concatenate(parts, axis=0)
