"""Slow loop versions of the resampling ops, straight from their definitions, for tests only.

Interpolation is evaluated point by point: for each output element, each spatial dimension
contributes a short list of ``(source index, weight)`` taps computed from the scalar formula,
and the output is the sum over every combination of taps of the product of the weights times
the input there. The backward pass scatters each output gradient along the same taps. Unfold and
fold visit every (block, channel, kernel offset) triple; pixel shuffle every output element.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "source_taps",
    "interpolate",
    "interpolate_backward",
    "pixel_shuffle",
    "pixel_unshuffle",
    "unfold",
    "fold",
]


def _keys(x: float, a: float) -> float:
    """Keys' cubic-convolution kernel W(x) with parameter ``a``."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def _filter(mode: str, x: float) -> float:
    x = abs(x)
    if mode == "linear":
        return max(0.0, 1.0 - x)
    if mode == "cubic":
        return _keys(x, -0.5)
    if x == 0:  # lanczos-3
        return 1.0
    return (
        3 * math.sin(math.pi * x) * math.sin(math.pi * x / 3) / (math.pi * x) ** 2 if x < 3 else 0.0
    )


def source_taps(
    mode: str,
    i: int,
    n_in: int,
    n_out: int,
    align_corners: bool = False,
    scale: float | None = None,
    antialias: bool = False,
    legacy_nearest: bool = False,
) -> list[tuple[int, float]]:
    """The input positions and weights that output position ``i`` of one dimension reads.

    ``scale`` is the user's scale factor (the mapping then uses ``1 / scale``), or None for
    ``n_in / n_out``. Modes: nearest, nearest-exact, linear, cubic, area, lanczos.
    """
    ratio = 1 / scale if scale is not None and scale > 0 else n_in / n_out
    if mode in ("nearest", "nearest-exact"):
        if legacy_nearest and mode == "nearest" and n_out in (n_in, 2 * n_in):
            return [(i if n_out == n_in else i // 2, 1.0)]
        src = ratio * (i + 0.5) if mode == "nearest-exact" else ratio * i
        return [(min(math.floor(np.float32(src)), n_in - 1), 1.0)]  # floorf, as PyTorch
    if mode == "area":
        start, end = math.floor(i * n_in / n_out), math.ceil((i + 1) * n_in / n_out)
        return [(j, 1.0 / (end - start)) for j in range(start, end)]
    if align_corners:
        ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    if antialias or mode == "lanczos":
        if n_in == n_out:
            return [(i, 1.0)]
        taps = {"linear": 2, "cubic": 4, "lanczos": 6}[mode]
        stretch = max(ratio, 1.0)
        support = taps / 2 * stretch
        center = ratio * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        weights = [(j, _filter(mode, (j - center + 0.5) / stretch)) for j in range(lo, hi)]
        total = sum(w for _, w in weights)
        return [(j, w / total) for j, w in weights] if total else weights
    if mode == "linear" and n_in == n_out:
        return [(i, 1.0)]
    src = ratio * i if align_corners else ratio * (i + 0.5) - 0.5
    if mode == "linear":
        src = max(src, 0.0)
        i0 = min(math.floor(src), n_in - 1)
        t = min(max(src - i0, 0.0), 1.0)
        return [(i0, 1 - t), (min(i0 + 1, n_in - 1), t)]
    i0 = min(math.floor(src), n_in - 1)  # cubic: no clamp of src; edge pixels repeat
    t = min(max(src - i0, 0.0), 1.0)
    return [(min(max(i0 + k, 0), n_in - 1), _keys(t - k, -0.75)) for k in (-1, 0, 1, 2)]


def _all_taps(out_spatial, in_spatial, mode, align_corners, scales, antialias, legacy):
    scales = scales or [None] * len(in_spatial)
    return [
        [
            source_taps(mode, i, n_in, n_out, align_corners, s, antialias, legacy)
            for i in range(n_out)
        ]
        for n_in, n_out, s in zip(in_spatial, out_spatial, scales)
    ]


def interpolate(
    x, out_size, mode, align_corners=False, scales=None, antialias=False, legacy_nearest=False
):
    """``y[n, c, p] = sum over tap combinations of prod(weights) * x[n, c, taps]``."""
    n, c, *in_spatial = x.shape
    taps = _all_taps(out_size, in_spatial, mode, align_corners, scales, antialias, legacy_nearest)
    y = np.zeros((n, c, *out_size), x.dtype)
    for b, ch in itertools.product(range(n), range(c)):
        for pos in itertools.product(*(range(o) for o in out_size)):
            total = 0.0
            for combo in itertools.product(*(taps[d][p] for d, p in enumerate(pos))):
                weight = math.prod(w for _, w in combo)
                total += weight * x[(b, ch) + tuple(j for j, _ in combo)]
            y[(b, ch) + pos] = total
    return y


def interpolate_backward(
    grad,
    input_shape,
    mode,
    align_corners=False,
    scales=None,
    antialias=False,
    legacy_nearest=False,
):
    """Scatter every output gradient back along the taps it was computed from."""
    n, c, *in_spatial = input_shape
    out_size = grad.shape[2:]
    taps = _all_taps(out_size, in_spatial, mode, align_corners, scales, antialias, legacy_nearest)
    gx = np.zeros(input_shape, grad.dtype)
    for b, ch in itertools.product(range(n), range(c)):
        for pos in itertools.product(*(range(o) for o in out_size)):
            for combo in itertools.product(*(taps[d][p] for d, p in enumerate(pos))):
                weight = math.prod(w for _, w in combo)
                gx[(b, ch) + tuple(j for j, _ in combo)] += weight * grad[(b, ch) + pos]
    return gx


def pixel_shuffle(x, r):
    """``y[..., c, h, w] = x[..., c r^2 + (h mod r) r + (w mod r), h // r, w // r]``."""
    *lead, channels, height, width = x.shape
    y = np.zeros((*lead, channels // (r * r), height * r, width * r), x.dtype)
    for index in itertools.product(*(range(s) for s in y.shape)):
        *pre, ch, h, w = index
        y[index] = x[(*pre, ch * r * r + (h % r) * r + w % r, h // r, w // r)]
    return y


def pixel_unshuffle(x, r):
    """``y[..., c r^2 + i r + j, h, w] = x[..., c, h r + i, w r + j]``."""
    *lead, channels, height, width = x.shape
    y = np.zeros((*lead, channels * r * r, height // r, width // r), x.dtype)
    for index in itertools.product(*(range(s) for s in y.shape)):
        *pre, ch, h, w = index
        c0, rest = divmod(ch, r * r)
        i, j = divmod(rest, r)
        y[index] = x[(*pre, c0, h * r + i, w * r + j)]
    return y


def _blocks(spatial, kernel, dilation, padding, stride):
    return [
        (s + 2 * p - d * (k - 1) - 1) // t + 1
        for s, k, d, p, t in zip(spatial, kernel, dilation, padding, stride)
    ]


def unfold(x, kernel, dilation, padding, stride):
    """``cols[n, c K + k, l] = x[n, c, block_l * stride + k * dilation - padding]``, 0 outside."""
    n, c, *spatial = x.shape
    blocks = _blocks(spatial, kernel, dilation, padding, stride)
    offsets = list(itertools.product(*(range(k) for k in kernel)))
    positions = list(itertools.product(*(range(b) for b in blocks)))
    cols = np.zeros((n, c * len(offsets), len(positions)), x.dtype)
    for b, ch in itertools.product(range(n), range(c)):
        for ki, off in enumerate(offsets):
            for li, pos in enumerate(positions):
                at = [
                    p * t + o * d - q for p, t, o, d, q in zip(pos, stride, off, dilation, padding)
                ]
                if all(0 <= a < s for a, s in zip(at, spatial)):
                    cols[b, ch * len(offsets) + ki, li] = x[(b, ch, *at)]
    return cols


def fold(cols, output_size, kernel, dilation, padding, stride):
    """Add ``cols[n, c * K + k, l]`` onto ``y[n, c, block_l * stride + k * dilation - padding]``."""
    n = cols.shape[0]
    k_total = math.prod(kernel)
    c = cols.shape[1] // k_total
    blocks = _blocks(output_size, kernel, dilation, padding, stride)
    offsets = list(itertools.product(*(range(k) for k in kernel)))
    positions = list(itertools.product(*(range(b) for b in blocks)))
    y = np.zeros((n, c, *output_size), cols.dtype)
    for b, ch in itertools.product(range(n), range(c)):
        for ki, off in enumerate(offsets):
            for li, pos in enumerate(positions):
                at = [
                    p * t + o * d - q for p, t, o, d, q in zip(pos, stride, off, dilation, padding)
                ]
                if all(0 <= a < s for a, s in zip(at, output_size)):
                    y[(b, ch, *at)] += cols[b, ch * k_total + ki, li]
    return y
