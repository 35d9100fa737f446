"""Loops over flat arrays with unsigned offsets, shared by the numba kernels.

numba wraps a negative signed index around (``a[-1]``), and that per-element select stops LLVM
from vectorising a loop; an unsigned index cannot be negative, so these loops vectorise. Each is
compiled on first use (:mod:`convlab.kernels._jit`) and inlined into the kernels that call it.
"""

from __future__ import annotations

import numpy as np

from convlab.kernels import _jit

__all__ = ["axpy", "copy", "fill"]


@_jit.kernel()
def copy(dst, d0, d_step, src, s0, s_step, count):  # pragma: no cover - numba
    """``dst[d0 + t*d_step] = src[s0 + t*s_step]`` for ``t < count``."""
    d, s, t, m, one = np.uint64(d0), np.uint64(s0), np.uint64(0), np.uint64(count), np.uint64(1)
    if d_step == 1 and s_step == 1:
        while t < m:
            dst[d + t] = src[s + t]
            t += one
    else:
        ds, ss = np.uint64(d_step), np.uint64(s_step)
        while t < m:
            dst[d + t * ds] = src[s + t * ss]
            t += one


@_jit.kernel()
def fill(dst, d0, count, value):  # pragma: no cover - numba
    """``dst[d0 + t] = value`` for ``t < count``."""
    d, t, m, one = np.uint64(d0), np.uint64(0), np.uint64(count), np.uint64(1)
    while t < m:
        dst[d + t] = value
        t += one


@_jit.kernel()
def axpy(dst, d0, src, s0, count, alpha):  # pragma: no cover - numba
    """``dst[d0 + t] += alpha * src[s0 + t]`` for ``t < count``."""
    d, s, t, m, one = np.uint64(d0), np.uint64(s0), np.uint64(0), np.uint64(count), np.uint64(1)
    while t < m:
        dst[d + t] += alpha * src[s + t]
        t += one
