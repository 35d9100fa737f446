"""N-d convolution and transposed convolution on ndarrays: im2col + one batched GEMM.

Every function takes batched arrays ``(N, C, *spatial)`` and canonical arguments: ``stride`` and
``dilation`` are tuples of ints, ``padding`` is a tuple of ``(low, high)`` pairs, one per spatial
dimension. Weights are PyTorch's ``(C_out, C_in / groups, *kernel)``. Checking arguments is the
caller's job (``convlab.nn.functional``); here only assertions guard internal invariants.

The transposed convolution is the adjoint of the convolution (``Y = C X``, ``X = C^T Y``): its
forward pass is the convolution's input-gradient, its input-gradient is a convolution, and both
share one weight-gradient with the roles of input and output swapped.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convlab import shapes

Pads = tuple[tuple[int, int], ...]

__all__ = [
    "conv_forward",
    "conv_backward_input",
    "conv_backward_weight",
    "conv_backward_bias",
    "conv_transpose_forward",
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


def im2col(
    x: np.ndarray,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    out_spatial: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Unfold every receptive field into a column: ``(N, C, *S) -> (C, *kernel, N, *out)``.

    A strided view of the padded input (no copy) is laid out with the channel and kernel
    offsets first, so that ``reshape(groups, C_in/groups * prod(kernel), N * prod(out))`` is the
    right-hand side of one GEMM per group. ``out_spatial`` limits the windows taken (the
    adjoint of a transposed convolution may need fewer than fit).
    """
    xp = _pad_zeros(x, padding)
    if out_spatial is None:
        out_spatial = shapes.conv_output_shape(
            xp.shape[2:], kernel, stride, [0] * len(kernel), dilation
        )
    n, c = xp.shape[:2]
    sn, sc, *ss = xp.strides
    view = as_strided(
        xp,
        shape=(c, *kernel, n, *out_spatial),
        strides=(
            sc,
            *(s * d for s, d in zip(ss, dilation)),
            sn,
            *(s * t for s, t in zip(ss, stride)),
        ),
        writeable=False,
    )
    return np.ascontiguousarray(view)


def col2im(
    cols: np.ndarray,
    input_shape: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
) -> np.ndarray:
    """Adjoint of :func:`im2col`: add each column back onto the input positions it came from.

    ``cols`` has shape ``(C, *kernel, N, *out)``. Loops over kernel offsets only (one strided
    slice-add per offset); overlapping windows therefore accumulate.
    """
    n, c, *spatial = input_shape
    out_spatial = cols.shape[2 + len(kernel) :]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, padding))
    acc = np.zeros((c, n, *padded), cols.dtype)
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = tuple(
            slice(o * d, o * d + (m - 1) * s + 1, s)
            for o, d, m, s in zip(offset, dilation, out_spatial, stride)
        )
        acc[(slice(None), slice(None)) + window] += cols[(slice(None),) + offset]
    crop = tuple(slice(lo, lo + s) for s, (lo, _) in zip(spatial, padding))
    return acc[(slice(None), slice(None)) + crop].transpose(1, 0, *range(2, 2 + len(spatial)))


def _conv(
    x: np.ndarray,
    weight: np.ndarray,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
    out_spatial: tuple[int, ...] | None = None,
) -> np.ndarray:
    kernel = weight.shape[2:]
    cols = im2col(x, kernel, stride, padding, dilation, out_spatial)
    n = x.shape[0]
    out_spatial = cols.shape[2 + len(kernel) :]
    c_out = weight.shape[0]
    w = weight.reshape(groups, c_out // groups, -1)
    y = np.matmul(w, cols.reshape(groups, w.shape[2], -1))  # (G, C_out/G, N * P)
    y = y.reshape(c_out, n, *out_spatial)
    return np.ascontiguousarray(np.moveaxis(y, 1, 0))


def _conv_input_grad(
    grad_out: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    kernel = weight.shape[2:]
    n, c_out, *out_spatial = grad_out.shape
    w = weight.reshape(groups, c_out // groups, -1)
    g = np.moveaxis(grad_out, 1, 0).reshape(groups, c_out // groups, -1)
    cols = np.matmul(w.transpose(0, 2, 1), g)  # (G, C_in/G * K, N * P)
    cols = cols.reshape(input_shape[1], *kernel, n, *out_spatial)
    return np.ascontiguousarray(col2im(cols, input_shape, kernel, stride, padding, dilation))


def _conv_weight_grad(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    kernel = tuple(weight_shape[2:])
    n, c_out, *out_spatial = grad_out.shape
    cols = im2col(x, kernel, stride, padding, dilation, tuple(out_spatial))
    cols = cols.reshape(groups, -1, n * math.prod(out_spatial))
    g = np.moveaxis(grad_out, 1, 0).reshape(groups, c_out // groups, -1)
    return np.matmul(g, cols.transpose(0, 2, 1)).reshape(weight_shape)


def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is not None:
        y += bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def conv_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """Cross-correlation: ``y[n, o, p] = b[o] + sum_{c, k} w[o, c, k] x_pad[n, c', s p + d k]``.

    ``c'`` runs over the input channels of output channel ``o``'s group.
    """
    return _add_bias(_conv(x, weight, stride, padding, dilation, groups), bias)


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
    return _conv_input_grad(grad_out, weight, tuple(input_shape), stride, padding, dilation, groups)


def conv_backward_weight(
    x: np.ndarray,
    grad_out: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: Pads,
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    """Gradient of :func:`conv_forward` with respect to ``weight``."""
    return _conv_weight_grad(x, grad_out, tuple(weight_shape), stride, padding, dilation, groups)


def conv_backward_bias(grad_out: np.ndarray) -> np.ndarray:
    """Gradient of :func:`conv_forward` (or the transposed one) with respect to ``bias``."""
    return grad_out.sum(axis=(0, *range(2, grad_out.ndim)))


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
    y = _conv_input_grad(x, weight, y_shape, stride, _symmetric(padding), dilation, groups)
    return _add_bias(y, bias)


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
    )


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
