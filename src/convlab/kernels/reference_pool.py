"""Slow loop versions of the pooling ops, straight from PyTorch's definitions, for tests only.

Each function visits every output position of every plane and scans its window element by
element in row-major order, as PyTorch's CPU loops do (``MaxPoolKernel.cpp``,
``AvgPoolKernel.cpp``, ``AdaptivePooling.h``). Inputs are batched or not: the last
``len(kernel)`` dimensions are spatial, any leading ones are independent planes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "avg_pool",
    "lp_pool",
    "max_pool",
    "max_unpool",
    "pool_output_size",
]


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode) -> int:
    """Pool.h ``pooling_output_shape_pad_lr``, transcribed."""
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _planes(x: np.ndarray, n: int):
    lead = x.shape[: x.ndim - n]
    return lead, list(itertools.product(*(range(s) for s in lead)))


def max_pool(x, kernel, stride, padding, dilation, ceil_mode=False):
    """Returns ``(out, indices)``: max over each window and its flat index in the plane."""
    n = len(kernel)
    spatial = x.shape[x.ndim - n :]
    out_spatial = tuple(
        pool_output_size(*args, ceil_mode)
        for args in zip(spatial, kernel, stride, padding, dilation)
    )
    lead, planes = _planes(x, n)
    out = np.empty(lead + out_spatial, x.dtype)
    indices = np.empty(lead + out_spatial, np.int64)
    for plane in planes:
        for pos in itertools.product(*(range(o) for o in out_spatial)):
            # Window start, stepped past the left padding by whole dilations (torch's loop).
            first = []
            for o, s, p, d in zip(pos, stride, padding, dilation):
                start = o * s - p
                while start < 0:
                    start += d
                first.append(start)
            best = -np.inf
            best_index = sum(f * math.prod(spatial[i + 1 :]) for i, f in enumerate(first))
            for k in itertools.product(*(range(kk) for kk in kernel)):
                at = tuple(
                    o * s - p + j * d for o, s, p, j, d in zip(pos, stride, padding, k, dilation)
                )
                if not all(0 <= a < size for a, size in zip(at, spatial)):
                    continue
                value = x[plane + at]
                if value > best or np.isnan(value):
                    best = value
                    best_index = sum(a * math.prod(spatial[i + 1 :]) for i, a in enumerate(at))
            out[plane + pos] = best
            indices[plane + pos] = best_index
    return out, indices


def avg_pool(
    x, kernel, stride, padding, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    """Mean over each window with PyTorch's divisor rule (AvgPoolKernel.cpp)."""
    n = len(kernel)
    spatial = x.shape[x.ndim - n :]
    out_spatial = tuple(
        pool_output_size(s, k, st, p, 1, ceil_mode)
        for s, k, st, p in zip(spatial, kernel, stride, padding)
    )
    lead, planes = _planes(x, n)
    out = np.empty(lead + out_spatial, x.dtype)
    for plane in planes:
        for pos in itertools.product(*(range(o) for o in out_spatial)):
            starts = [o * s - p for o, s, p in zip(pos, stride, padding)]
            ends = [
                min(st + k, size + p) for st, k, size, p in zip(starts, kernel, spatial, padding)
            ]
            pool_size = math.prod(e - s for s, e in zip(starts, ends))
            starts = [max(s, 0) for s in starts]
            ends = [min(e, size) for e, size in zip(ends, spatial)]
            total = 0.0
            for at in itertools.product(*(range(s, e) for s, e in zip(starts, ends))):
                total += x[plane + at]
            if divisor_override is not None:
                divide = divisor_override
            elif count_include_pad:
                divide = pool_size
            else:
                divide = math.prod(e - s for s, e in zip(starts, ends))
            out[plane + pos] = total / divide
    return out


def lp_pool(x, norm_type, kernel, stride, ceil_mode=False):
    """``(sum of x ** p over the window) ** (1 / p)``, with PyTorch's ceil-mode scaling: the
    mean over the clipped window times the full kernel size."""
    n = len(kernel)
    mean = avg_pool(np.power(x, norm_type), kernel, stride, (0,) * n, ceil_mode)
    return np.power(mean * math.prod(kernel), 1.0 / norm_type)


def _bins(size, out):
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def adaptive_avg_pool(x, output_size):
    """Mean over bin ``[floor(i * in / out), ceil((i + 1) * in / out))`` per dimension."""
    n = len(output_size)
    spatial = x.shape[x.ndim - n :]
    bins = [_bins(s, o) for s, o in zip(spatial, output_size)]
    lead, planes = _planes(x, n)
    out = np.empty(lead + tuple(output_size), x.dtype)
    for plane in planes:
        for pos in itertools.product(*(range(o) for o in output_size)):
            box = [bins[i][p] for i, p in enumerate(pos)]
            cells = list(itertools.product(*(range(s, e) for s, e in box)))
            out[plane + pos] = sum(x[plane + c] for c in cells) / len(cells)
    return out


def adaptive_max_pool(x, output_size):
    """Max over each adaptive bin and its flat plane index (first maximum, or last NaN)."""
    n = len(output_size)
    spatial = x.shape[x.ndim - n :]
    bins = [_bins(s, o) for s, o in zip(spatial, output_size)]
    lead, planes = _planes(x, n)
    out = np.empty(lead + tuple(output_size), x.dtype)
    indices = np.empty(lead + tuple(output_size), np.int64)
    for plane in planes:
        for pos in itertools.product(*(range(o) for o in output_size)):
            box = [bins[i][p] for i, p in enumerate(pos)]
            best = -np.inf
            best_at = tuple(s for s, _ in box)
            for at in itertools.product(*(range(s, e) for s, e in box)):
                value = x[plane + at]
                if value > best or np.isnan(value):
                    best, best_at = value, at
            out[plane + pos] = best
            indices[plane + pos] = sum(
                a * math.prod(spatial[i + 1 :]) for i, a in enumerate(best_at)
            )
    return out, indices


def max_unpool(x, indices, output_spatial):
    """Zero planes of ``output_spatial`` with each value written at its flat index."""
    n = len(output_spatial)
    lead, planes = _planes(x, n)
    out = np.zeros(lead + tuple(output_spatial), x.dtype)
    for plane in planes:
        for pos in itertools.product(*(range(s) for s in x.shape[x.ndim - n :])):
            at = np.unravel_index(int(indices[plane + pos]), output_spatial)
            out[plane + tuple(int(a) for a in at)] = x[plane + pos]
    return out
