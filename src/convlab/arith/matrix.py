"""The convolution as a matrix: ``y = C x``, and the transposed convolution as ``x' = C^T y``.

A convolution is linear in its input, so for fixed weights it is a matrix ``C`` with one row per
output element and one column per input element; each row holds the kernel's weights at the
input positions its window covers, zeros elsewhere (Dumoulin & Visin, arXiv 1603.07285, §4.1).
The transposed convolution with the same arguments is multiplication by ``C^T``: that is where
its name comes from, and why it is a convolution's backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from convlab import shapes

__all__ = ["conv_matrix", "transpose_output_padding"]

# Above this many entries a dense C is refused (about 400 MB in float64): use sparse=True.
MAX_DENSE_ENTRIES = 50_000_000


def _weight_array(weight) -> np.ndarray:
    from convlab.autograd import Tensor

    array = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"weight must hold integers or floats, but got dtype {array.dtype}")
    return array


def _padding(padding, kernel, stride, dilation, n: int) -> tuple[tuple[int, int], ...]:
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            return tuple(shapes.same_padding(k, d) for k, d in zip(kernel, dilation))
        raise ValueError(
            f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}"
        )
    pads = shapes.ntuple(padding, n, "padding")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding must be >= 0, but got padding={list(pads)}")
    return tuple((p, p) for p in pads)


def conv_matrix(
    input_shape: Sequence[int],
    weight,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    sparse: bool = False,
):
    """The matrix ``C`` of a convolution, so that ``C @ x.ravel() == conv(x, weight).ravel()``.

    Works for any number of spatial dimensions, stride, padding (int, tuple, ``'same'``,
    ``'valid'``), dilation and groups, with PyTorch's conventions (cross-correlation, no bias).

    Args:
        input_shape: one unbatched input, ``(C_in, *spatial)``. For a batch ``X`` of shape
            ``(N, C_in, *spatial)`` use ``X.reshape(N, -1) @ C.T``.
        weight: ``(C_out, C_in / groups, *kernel)``, a Tensor or an array of ints or floats;
            ``C`` has the weight's dtype (an integer kernel gives an integer matrix).
        stride, padding, dilation, groups: as in ``torch.nn.functional.conv2d``.
        sparse: return a ``scipy.sparse.csr_array`` instead of a dense ndarray (needs SciPy:
            ``pip install 'convlab[sparse]'``).

    Shape:
        ``C`` is ``(C_out * prod(out), C_in * prod(spatial))`` with, per spatial dimension,
        ``out = floor((in + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1``. Rows
        and columns follow ``ravel`` (row-major) order of ``(C_out, *out)`` and ``(C_in,
        *spatial)``.

    The transposed convolution with the same weight, stride, padding, dilation and groups, and
    ``output_padding = transpose_output_padding(...)`` (which makes its output the input's
    size), is ``C.T``: ``C.T @ y.ravel() == conv_transpose(y, weight, ...).ravel()``. That holds
    for integer (symmetric) padding; PyTorch's transposed convolution has no ``'same'``.

    >>> C = conv_matrix((1, 4, 4), np.ones((1, 1, 3, 3)))
    >>> C.shape, int(C.sum())
    ((4, 16), 36)

    See Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", §4.1.
    """
    w = _weight_array(weight)
    n = w.ndim - 2
    if n < 1:
        raise ValueError(
            f"weight must be (C_out, C_in / groups, *kernel) with at least one spatial "
            f"dimension, but got weight of shape {list(w.shape)}"
        )
    input_shape = shapes.ntuple(tuple(input_shape), len(tuple(input_shape)), "input_shape")
    if len(input_shape) != n + 1:
        raise ValueError(
            f"input_shape must be (C_in, *spatial) with {n} spatial dimensions to match a "
            f"weight of shape {list(w.shape)}, but got input_shape={list(input_shape)} "
            f"(for a batch, build C for one sample)"
        )
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, but got groups={groups!r}")
    c_out, c_in_group, *kernel = w.shape
    c_in, *spatial = input_shape
    if c_out % groups or c_in != c_in_group * groups:
        raise ValueError(
            f"with groups={groups} a weight of shape {list(w.shape)} needs C_out divisible by "
            f"{groups} and {c_in_group * groups} input channels, but input_shape has {c_in}"
        )
    stride = shapes.ntuple(stride, n, "stride")
    dilation = shapes.ntuple(dilation, n, "dilation")
    if any(v < 1 for v in stride + dilation):
        raise ValueError(f"stride and dilation must be >= 1, but got {stride} and {dilation}")
    pads = _padding(padding, kernel, stride, dilation, n)
    out = shapes.conv_output_shape(spatial, kernel, stride, pads, dilation)
    if any(o < 1 for o in out) or any(s < 1 for s in spatial):
        raise ValueError(
            f"the kernel does not fit: input {list(spatial)} with padding {list(pads)} gives "
            f"output {list(out)}"
        )

    # Every (output channel, input channel of its group, kernel offset, output position) names
    # one weight and, where the tap lands inside the input, one entry of C.
    grid_shape = (c_out, c_in_group, *kernel, *out)
    ndim = len(grid_shape)

    def axis(values, position: int) -> np.ndarray:
        shape = [1] * ndim
        shape[position] = len(values)
        return np.asarray(values, dtype=np.intp).reshape(shape)

    o = axis(range(c_out), 0)
    c = axis(range(c_in_group), 1)
    taps = [axis(range(kernel[a]), 2 + a) for a in range(n)]
    where = [axis(range(out[a]), 2 + n + a) for a in range(n)]
    at = [p * stride[a] + t * dilation[a] - pads[a][0] for a, (t, p) in enumerate(zip(taps, where))]
    inside = np.ones((1,) * ndim, dtype=bool)
    for a in range(n):
        inside = inside & (at[a] >= 0) & (at[a] < spatial[a])
    inside = np.broadcast_to(inside, grid_shape)
    rows = np.ravel_multi_index(
        [np.broadcast_to(v, grid_shape)[inside] for v in (o, *where)], (c_out, *out)
    )
    channel = (o // (c_out // groups)) * c_in_group + c
    cols = np.ravel_multi_index(
        [np.broadcast_to(v, grid_shape)[inside] for v in (channel, *at)], (c_in, *spatial)
    )
    values = np.broadcast_to(w.reshape(w.shape + (1,) * n), grid_shape)[inside]
    size = (c_out * math.prod(out), c_in * math.prod(spatial))

    if sparse:
        try:
            import scipy.sparse
        except ImportError:
            raise ImportError(
                "conv_matrix(sparse=True) needs SciPy: pip install 'convlab[sparse]' "
                "(or pip install scipy), or leave sparse=False for a dense matrix"
            ) from None
        return scipy.sparse.csr_array((values, (rows, cols)), shape=size)
    if size[0] * size[1] > MAX_DENSE_ENTRIES:
        raise ValueError(
            f"a dense C would be {size[0]} x {size[1]} = {size[0] * size[1]} entries (limit "
            f"{MAX_DENSE_ENTRIES}); pass sparse=True"
        )
    matrix = np.zeros(size, dtype=w.dtype)
    matrix[rows, cols] = values  # each (row, col) pair occurs once: taps never collide
    return matrix


def transpose_output_padding(
    input_size: Sequence[int],
    kernel: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
) -> tuple[int, ...]:
    """The ``output_padding`` that makes the transposed convolution give back ``input_size``.

    The convolution maps every input length in ``[min, min + stride - 1]`` to the same output
    length; the transposed convolution returns ``min + output_padding``, so ``C^T`` of a
    particular input size needs this value (Dumoulin & Visin's relationship 14: ``a = (i + 2p -
    k) mod s``, with the dilated kernel).

    >>> transpose_output_padding((5,), (3,), 2, 1), transpose_output_padding((6,), (3,), 2, 1)
    ((0,), (1,))
    """
    n = len(tuple(input_size))
    kernel = shapes.ntuple(kernel, n, "kernel")
    stride = shapes.ntuple(stride, n, "stride")
    padding = shapes.ntuple(padding, n, "padding")
    dilation = shapes.ntuple(dilation, n, "dilation")
    result = []
    for size, k, s, p, d in zip(input_size, kernel, stride, padding, dilation):
        out = shapes.conv_output_size(size, k, s, p, d)
        result.append(shapes.output_padding_for_size(size, out, k, s, p, d))
    return tuple(result)
