"""Slow loop versions straight from the definitions, for tests only.

Nothing here is fast or clever: each function slides the kernel over the input, multiplies
element-wise and sums, exactly as a textbook writes it. The fast kernels are checked against
these in float64.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["conv", "conv_transpose", "pad"]


def pad(x: np.ndarray, padding, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """Pad the trailing dims; ``padding`` is ``((lo, hi), ...)``, one pair per padded dim.

    Written per output element: find the input element each output position copies.
    """
    lead = x.ndim - len(padding)
    out_shape = x.shape[:lead] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[lead:], padding))
    out = np.empty(out_shape, x.dtype)
    for index in itertools.product(*(range(s) for s in out_shape)):
        source = list(index[:lead])
        inside = True
        for axis, (lo, _) in enumerate(padding):
            size = x.shape[lead + axis]
            i = index[lead + axis] - lo
            if mode == "constant":
                inside &= 0 <= i < size
            elif mode == "reflect":
                while i < 0 or i >= size:
                    i = -i if i < 0 else 2 * (size - 1) - i
            elif mode == "replicate":
                i = min(max(i, 0), size - 1)
            elif mode == "circular":
                i %= size
            source.append(i)
        out[index] = x[tuple(source)] if inside else value
    return out


def conv(x, weight, bias=None, stride=None, padding=None, dilation=None, groups=1):
    """N-d cross-correlation of batched ``x`` (N, C_in, *S) with ``weight`` (C_out, C_in/g, *k).

    ``padding`` is ``((lo, hi), ...)`` zero padding; ``stride``/``dilation`` tuples (default 1).
    """
    n_spatial = x.ndim - 2
    stride = stride or (1,) * n_spatial
    dilation = dilation or (1,) * n_spatial
    padding = padding or ((0, 0),) * n_spatial
    xp = pad(x, padding)
    c_out, c_in_group = weight.shape[:2]
    kernel = weight.shape[2:]
    out_spatial = tuple(
        (xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(n_spatial)
    )
    out = np.zeros((x.shape[0], c_out, *out_spatial), dtype=x.dtype)
    out_per_group = c_out // groups
    for n in range(x.shape[0]):
        for o in range(c_out):
            g = o // out_per_group
            for pos in itertools.product(*(range(s) for s in out_spatial)):
                total = 0.0 if bias is None else bias[o]
                for c in range(c_in_group):
                    for k in itertools.product(*(range(s) for s in kernel)):
                        at = tuple(p * s + kk * d for p, s, kk, d in zip(pos, stride, k, dilation))
                        total += weight[(o, c) + k] * xp[(n, g * c_in_group + c) + at]
                out[(n, o) + pos] = total
    return out


def conv_transpose(
    x, weight, bias=None, stride=None, padding=None, output_padding=None, dilation=None, groups=1
):
    """N-d transposed convolution, written as the scatter that defines it.

    Each input element adds ``x * weight`` onto the output at ``i * stride + k * dilation``;
    the result is then cropped by ``padding`` on both sides and extended by ``output_padding``
    at the high end. ``weight`` is ``(C_in, C_out/g, *k)``.
    """
    n_spatial = x.ndim - 2
    stride = stride or (1,) * n_spatial
    dilation = dilation or (1,) * n_spatial
    padding = padding or (0,) * n_spatial
    output_padding = output_padding or (0,) * n_spatial
    c_in, c_out_group = weight.shape[:2]
    kernel = weight.shape[2:]
    full = tuple(
        (x.shape[2 + i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 + output_padding[i]
        for i in range(n_spatial)
    )
    acc = np.zeros((x.shape[0], c_out_group * groups, *full), dtype=x.dtype)
    in_per_group = c_in // groups
    for n in range(x.shape[0]):
        for c in range(c_in):
            g = c // in_per_group
            for pos in itertools.product(*(range(s) for s in x.shape[2:])):
                for o in range(c_out_group):
                    for k in itertools.product(*(range(s) for s in kernel)):
                        at = tuple(p * s + kk * d for p, s, kk, d in zip(pos, stride, k, dilation))
                        acc[(n, g * c_out_group + o) + at] += x[(n, c) + pos] * weight[(c, o) + k]
    crop = tuple(slice(p, s - p) for p, s in zip(padding, full))
    out = acc[(slice(None), slice(None)) + crop]
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * n_spatial)
    return out
