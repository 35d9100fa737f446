"""Pooling: max, average, power-average, adaptive and max-unpooling, in 1, 2 and 3 dimensions.

Each function checks its arguments once, with PyTorch's rules and wording, then calls one
autograd ``Function`` whose forward and backward are the N-d kernels of
``convlab.kernels.pool``. Inputs are ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``,
float32 or float64, as a ``Tensor`` or a NumPy array; results are ``Tensor``.

Shape of every windowed pool, per spatial dimension (``dilation`` is 1 for average pooling)::

    out = floor_or_ceil((in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1

with ceil mode dropping a last window that would start in the right padding
(``convlab.shapes.pool_output_size``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from convlab import shapes
from convlab.autograd import Function, Tensor
from convlab.kernels import pool as kernels
from convlab.nn.functional._args import as_array as _array

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
]

Array = Tensor | np.ndarray
Size = int | Sequence[int]
OptSize = int | None | Sequence[int | None]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_NUMBERS = {1: "one", 2: "two", 3: "three"}


# ---------------------------------------------------------------------------------------------
# Argument checking shared by the pooling family
# ---------------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _ints(value, n: int, name: str, op: str) -> tuple[int, ...]:
    """An int or a sequence of 1 or ``n`` ints, as ``torch.nn.functional`` accepts them."""
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if not all(_is_int(v) for v in items):
            raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, but got {value!r}")
        if len(items) == 1:
            return (int(items[0]),) * n
        if len(items) == n:
            return tuple(int(v) for v in items)
        raise RuntimeError(
            f"{op}(): {name} must either be a single int, or a tuple of {_NUMBERS[n]} ints, but "
            f"got {name}={value!r}"
        )
    raise TypeError(
        f"{op}(): argument '{name}' must be tuple of ints, not {type(value).__name__} "
        f"(got {name}={value!r})"
    )


def _stride(stride, kernel: tuple[int, ...], n: int, op: str) -> tuple[int, ...]:
    # ``stride=None`` (or an empty list, as torch allows) means "the kernel size".
    if stride is None or (isinstance(stride, Sequence) and len(stride) == 0):
        return kernel
    return _ints(stride, n, "stride", op)


def _check_float(x: np.ndarray, op: str) -> None:
    if x.dtype not in _FLOAT_DTYPES:
        raise RuntimeError(
            f"{op}(): input must be float32 or float64, but got {x.dtype} "
            f"(convert with .float() or .double())"
        )


def _check_pool_input(x: np.ndarray, n: int, op: str) -> None:
    """Pool.h: ``(C, *spatial)`` or ``(N, C, *spatial)``; only the batch may be empty."""
    if x.ndim not in (n + 1, n + 2) or any(s == 0 for s in x.shape[x.ndim - n - 1 :]):
        raise RuntimeError(
            f"{op}(): Expected {n + 1}D or {n + 2}D (batch mode) tensor with optional 0 dim batch "
            f"size for input, but got: {list(x.shape)}"
        )


def _check_positive(values: tuple[int, ...], name: str, op: str) -> None:
    if any(v <= 0 for v in values):
        raise RuntimeError(f"{op}(): {name} should be greater than zero, but got {name}={values}")


def _check_window(op, kernel, stride, padding, dilation, raw_kernel_rule: bool) -> None:
    """Pool.h's checks, in its order: positive sizes, then the padding limits."""
    _check_positive(kernel, "kernel_size", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    if any(p < 0 for p in padding):
        raise RuntimeError(f"{op}(): pad must be non-negative, but got padding={padding}")
    for p, k, d in zip(padding, kernel, dilation):
        if p > shapes.effective_kernel(k, d) // 2:
            raise RuntimeError(
                f"{op}(): pad should be at most half of effective kernel size, but got pad={p}, "
                f"kernel_size={k} and dilation={d}"
            )
    # PyTorch 2.13 also compares max-pool padding with the raw kernel, dilation ignored.
    if raw_kernel_rule and any(p > k // 2 for p, k in zip(padding, kernel)):
        raise RuntimeError(
            f"{op}(): pad should be smaller than or equal to half of kernel size, but got "
            f"padding={padding} and kernel_size={kernel}"
        )


def _check_avg3d_kernel_fits(x: np.ndarray, kernel: tuple[int, ...], op: str) -> None:
    # PyTorch's avg_pool3d (and lp_pool3d through it) wants the raw input, padding and ceil mode
    # ignored, at least as large as the kernel; avg_pool1d/2d have no such rule.
    spatial = x.shape[-3:]
    if any(s < k for s, k in zip(spatial, kernel)):
        t, h, w = spatial
        kt, kh, kw = kernel
        raise RuntimeError(
            f"{op}(): input image (T: {t} H: {h} W: {w}) smaller than kernel size "
            f"(kT: {kt} kH: {kh} kW: {kw})"
        )


def _sizes(values) -> str:
    return "x".join(str(v) for v in values)


def _check_output(x: np.ndarray, n: int, out: tuple[int, ...], op: str) -> None:
    if any(o < 1 for o in out):
        channels = x.shape[x.ndim - n - 1]
        raise RuntimeError(
            f"{op}(): Given input size: ({_sizes((channels, *x.shape[x.ndim - n :]))}). "
            f"Calculated output size: ({_sizes((channels, *out))}). Output size is too small"
        )


# ---------------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------------


class MaxPoolFunction(Function):
    """Max over sliding windows (-inf padding); the gradient goes to each window's argmax."""

    fresh_gradients = True  # the backward kernels return new arrays

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode, return_indices):
        spatial = x.shape[x.ndim - len(kernel) :]
        ctx.args = (spatial, kernel, stride, padding, dilation)
        ctx.tiles = False
        exact = all(s % k == 0 for s, k in zip(spatial, kernel))
        if (
            not return_indices
            and kernels.max_pool_tiles(kernel, stride, padding, dilation)
            and (exact or not ceil_mode)
            and not kernels.max_pool_numba_tiles(x, kernel)
        ):
            # Windows that tile the input, without numba: no argmax now (NumPy would pay a
            # pass per offset for it), the backward pass finds it again.
            out = kernels.max_pool_tiles_forward(x, kernel)
            if not np.isnan(out).any():
                ctx.tiles = True
                ctx.save_for_backward(x, out)
                return out
        out, arg = kernels.max_pool_forward(x, kernel, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(arg)
        if return_indices:
            return out, kernels.max_pool_indices(arg, spatial, kernel, stride, padding, dilation)
        return out

    @staticmethod
    def backward(ctx, grad_output, *_):
        if ctx.tiles:
            x, out = ctx.saved_tensors
            return (kernels.max_pool_tiles_backward(grad_output, x, out, ctx.args[1]),)
        (arg,) = ctx.saved_tensors
        return (kernels.max_pool_backward(grad_output, arg, *ctx.args),)


def _max_poolnd(n, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    op = f"max_pool{n}d"
    x = _array(input, "input", op)
    kernel = _ints(kernel_size, n, "kernel_size", op)
    stride = _stride(stride, kernel, n, op)
    padding = _ints(padding, n, "padding", op)
    dilation = _ints(dilation, n, "dilation", op)
    _check_float(x, op)
    _check_window(op, kernel, stride, padding, dilation, raw_kernel_rule=True)
    _check_pool_input(x, n, op)
    ceil_mode = bool(ceil_mode)
    out = shapes.pool_output_shape(x.shape[-n:], kernel, stride, padding, dilation, ceil_mode)
    _check_output(x, n, out, op)
    return MaxPoolFunction.apply(
        input, kernel, stride, padding, dilation, ceil_mode, bool(return_indices)
    )


def max_pool1d(
    input: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)``; see :func:`max_pool2d`.

    Shape: ``L_out = floor((L + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``
    (ceil with ``ceil_mode``).
    See https://pytorch.org/docs/stable/generated/torch.nn.functional.max_pool1d.html
    """
    return _max_poolnd(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(
    input: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)``.

    Args:
        kernel_size, stride (default: ``kernel_size``), padding, dilation: an int or a tuple per
            spatial dim. The input is implicitly padded with -inf; ``padding`` may be at most
            half the kernel size.
        ceil_mode: round the output size up; a window that would start in the right padding
            is dropped.
        return_indices: also return, per output, the flat index of the maximum within its
            ``H * W`` plane (int64), as ``max_unpool2d`` wants them.
    Shape: per spatial dim,
        ``out = floor((in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``.
    Ties go to the first element in row-major order, and a NaN propagates.

    >>> max_pool2d(randn(64, 6, 28, 28), 2).shape                 # (64, 6, 14, 14)
    >>> out, indices = max_pool2d(x, 3, stride=2, padding=1, return_indices=True)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.max_pool2d.html
    """
    return _max_poolnd(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(
    input: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """3-D max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; see :func:`max_pool2d`.

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.max_pool3d.html
    """
    return _max_poolnd(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ---------------------------------------------------------------------------------------------
# Max unpooling
# ---------------------------------------------------------------------------------------------


class MaxUnpoolFunction(Function):
    """Write each value at its index in a zero plane; the gradient gathers at the indices."""

    @staticmethod
    def forward(ctx, x, indices, output_spatial):
        ctx.save_for_backward(indices)
        ctx.n = len(output_spatial)
        return kernels.max_unpool_forward(x, indices, output_spatial)

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        return kernels.max_unpool_backward(grad_output, indices, ctx.n), None


def _unpool_output_size(spatial, kernel, stride, padding, output_size) -> tuple[int, ...]:
    """``torch.nn.functional._unpool_output_size``: the default, or a checked request."""
    n = len(kernel)
    default = [(s - 1) * st + k - 2 * p for s, k, st, p in zip(spatial, kernel, stride, padding)]
    if output_size is None:
        result = default
    else:
        if isinstance(output_size, Tensor):
            output_size = output_size.data.tolist()
        if _is_int(output_size) or not isinstance(output_size, Sequence):
            raise TypeError(
                f"output_size should be a sequence of {n} or {n + 2} ints, but got {output_size!r}"
            )
        output_size = list(output_size)
        if len(output_size) == n + 2:
            output_size = output_size[2:]
        if len(output_size) != n:
            raise ValueError(
                f"output_size should be a sequence containing {n} or {n + 2} elements, but it "
                f"has a length of '{len(output_size)}'"
            )
        if not all(_is_int(v) for v in output_size):
            raise TypeError(f"output_size must contain only ints, but got {output_size!r}")
        output_size = [int(v) for v in output_size]
        for d in range(n):
            low, high = default[d] - stride[d], default[d] + stride[d]
            if not low < output_size[d] < high:
                raise ValueError(
                    f'invalid output_size "{output_size}" (dim {d} must be between {low} and '
                    f"{high})"
                )
        result = output_size
    for d in range(n):
        if result[d] < 0:
            raise ValueError(
                "max_unpooling: output_size must contain non-negative spatial dimensions, but "
                f"got output_size[{d}]={result[d]}"
            )
    return tuple(result)


def _max_unpoolnd(n, input, indices, kernel_size, stride, padding, output_size) -> Tensor:
    op = f"max_unpool{n}d"
    x = _array(input, "input", op)
    idx = _array(indices, "indices", op)
    kernel = _ints(kernel_size, n, "kernel_size", op)
    stride = _stride(stride, kernel, n, op)
    padding = _ints(padding, n, "padding", op)
    _check_float(x, op)
    if x.ndim not in (n + 1, n + 2):
        raise RuntimeError(
            f"Input to max_unpooling{n}d should be a {n + 1}d or {n + 2}d Tensor, but got a "
            f"tensor with {x.ndim} dimensions."
        )
    # PyTorch checks only the 3-d strides (1-d and 2-d silently give empty or wrong planes).
    _check_positive(kernel, "kernel_size", op)
    _check_positive(stride, "stride", op)
    out = _unpool_output_size(x.shape[-n:], kernel, stride, padding, output_size)
    if idx.dtype != np.int64:
        raise RuntimeError(f"{op}(): elements in indices should be type int64 but got: {idx.dtype}")
    if idx.shape != x.shape:
        raise RuntimeError(
            f"{op}(): Expected shape of indices to be same as that of the input tensor "
            f"({list(x.shape)}) but got indices tensor with shape: {list(idx.shape)}"
        )
    non_batch = x.shape[x.ndim - n - 1 :]
    if any(s == 0 for s in non_batch):
        raise RuntimeError(
            f"{op}(): Expected input to have non-zero size for non-batch dimensions, but got "
            f"{list(x.shape)} with dimension {x.ndim - n - 1 + non_batch.index(0)} being empty."
        )
    size = math.prod(out)
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        raise RuntimeError(
            f"{op}(): Found an invalid max index: {int(idx[bad].flat[0])} (output volumes are of "
            f"size {_sizes(out)})"
        )
    return MaxUnpoolFunction.apply(input, idx, out)


def max_unpool1d(
    input: Array,
    indices: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """Partial inverse of :func:`max_pool1d`: zeros except each value at its index.

    Shape: ``L_out = (L - 1) * stride - 2 * padding + kernel_size``, or ``output_size``
    (``L_out`` or ``(N, C, L_out)``) within ``stride - 1`` of that.
    See https://pytorch.org/docs/stable/generated/torch.nn.functional.max_unpool1d.html
    """
    return _max_unpoolnd(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(
    input: Array,
    indices: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """Partial inverse of :func:`max_pool2d`, given the indices it returned.

    Args:
        indices: int64, the shape of ``input``: flat positions within each output plane.
        kernel_size, stride (default: ``kernel_size``), padding: those of the max pooling.
        output_size: the spatial size wanted (``(H, W)`` or ``(N, C, H, W)``); each entry
            must be strictly within ``stride`` of the default, which disambiguates the sizes
            that pool to the same shape.
    Shape: per spatial dim, ``out = (in - 1) * stride - 2 * padding + kernel_size``.

    >>> y, i = max_pool2d(x, 2, return_indices=True)     # x: (1, 1, 5, 4)
    >>> max_unpool2d(y, i, 2, output_size=x.shape).shape  # (1, 1, 5, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.MaxUnpool2d.html
    """
    return _max_unpoolnd(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(
    input: Array,
    indices: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """Partial inverse of :func:`max_pool3d`; see :func:`max_unpool2d`."""
    return _max_unpoolnd(3, input, indices, kernel_size, stride, padding, output_size)


# ---------------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------------


class AvgPoolFunction(Function):
    """Mean over sliding windows (zero padding, PyTorch's divisor)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        ctx.spatial = x.shape[x.ndim - len(kernel) :]
        ctx.args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return kernels.avg_pool_forward(x, *ctx.args)

    @staticmethod
    def backward(ctx, grad_output):
        return (kernels.avg_pool_backward(grad_output, ctx.spatial, *ctx.args),)


def _check_divisor(divisor_override, op: str) -> int | None:
    if divisor_override is None:
        return None
    if not _is_int(divisor_override):
        raise TypeError(
            f"{op}(): argument 'divisor_override' must be int, not "
            f"{type(divisor_override).__name__}"
        )
    if divisor_override == 0:
        raise RuntimeError(f"{op}(): divisor must be not zero, but got divisor_override=0")
    return int(divisor_override)


def _avg_poolnd(
    n, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
) -> Tensor:
    op = f"avg_pool{n}d"
    x = _array(input, "input", op)
    kernel = _ints(kernel_size, n, "kernel_size", op)
    stride = _stride(stride, kernel, n, op)
    padding = _ints(padding, n, "padding", op)
    divisor_override = _check_divisor(divisor_override, op)
    _check_float(x, op)
    _check_window(op, kernel, stride, padding, (1,) * n, raw_kernel_rule=False)
    _check_pool_input(x, n, op)
    if n == 3:
        _check_avg3d_kernel_fits(x, kernel, op)
    ceil_mode = bool(ceil_mode)
    out = shapes.pool_output_shape(x.shape[-n:], kernel, stride, padding, (1,) * n, ceil_mode)
    _check_output(x, n, out, op)
    return AvgPoolFunction.apply(
        input, kernel, stride, padding, ceil_mode, bool(count_include_pad), divisor_override
    )


def avg_pool1d(
    input: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-D average pooling over ``(N, C, L)`` or ``(C, L)``; see :func:`avg_pool2d`.

    Shape: ``L_out = floor((L + 2 * padding - kernel_size) / stride + 1)`` (ceil with
    ``ceil_mode``).
    See https://pytorch.org/docs/stable/generated/torch.nn.functional.avg_pool1d.html
    """
    return _avg_poolnd(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)``, zero padding.

    Args:
        kernel_size, stride (default: ``kernel_size``), padding (at most half the kernel).
        ceil_mode: round the output size up (a window may hang past the right padding).
        count_include_pad: divide by the window clipped to the padded input (True) or to the
            input itself (False). A ceil-mode window is clipped to the padded extent either way.
        divisor_override: a non-zero int used as the divisor instead.
    Shape: per spatial dim, ``out = floor((in + 2 * padding - kernel_size) / stride + 1)``.

    >>> avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.avg_pool2d.html
    """
    return _avg_poolnd(
        2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool3d(
    input: Array,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """3-D average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; see :func:`avg_pool2d`.

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.avg_pool3d.html
    """
    return _avg_poolnd(
        3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


# ---------------------------------------------------------------------------------------------
# Power-average (LP) pooling
# ---------------------------------------------------------------------------------------------


class LPPoolFunction(Function):
    """``(sign(a) * relu(|a|) * prod(kernel)) ** (1 / p)``, ``a = avg_pool(x ** p)``."""

    @staticmethod
    def forward(ctx, x, norm_type, kernel, stride, ceil_mode):
        out, mean = kernels.lp_pool_forward(x, norm_type, kernel, stride, ceil_mode)
        ctx.save_for_backward(x, mean)
        ctx.args = (norm_type, kernel, stride, ceil_mode)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        x, mean = ctx.saved_tensors
        return (kernels.lp_pool_backward(grad_output, x, mean, *ctx.args),)


def _lp_poolnd(n, input, norm_type, kernel_size, stride, ceil_mode) -> Tensor:
    op = f"lp_pool{n}d"
    x = _array(input, "input", op)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(
            f"{op}(): norm_type must be a real number, but got {type(norm_type).__name__} "
            f"(norm_type={norm_type!r})"
        )
    norm_type = float(norm_type)
    if norm_type == 0:
        raise ZeroDivisionError(
            f"{op}(): norm_type must be non-zero (the result is raised to 1 / norm_type), but "
            "got norm_type=0"
        )
    if isinstance(kernel_size, Sequence) and len(kernel_size) != n:
        # torch unpacks ``kw, kh = _pair(kernel_size)``, hence a ValueError.
        raise ValueError(
            f"{op}(): kernel_size must be an int or a tuple of {n} ints, but got "
            f"kernel_size={kernel_size!r}"
        )
    kernel = _ints(kernel_size, n, "kernel_size", op)
    stride = _stride(stride, kernel, n, op)
    if math.isinf(norm_type):
        # PyTorch: max pooling of |x| (p = inf), or minus that of -|x| (p = -inf).
        t = input if isinstance(input, Tensor) else Tensor(x)
        if norm_type > 0:
            return _max_poolnd(n, t.abs(), kernel, stride, 0, 1, ceil_mode, False)
        return -_max_poolnd(n, -t.abs(), kernel, stride, 0, 1, ceil_mode, False)
    _check_float(x, op)
    _check_window(op, kernel, stride, (0,) * n, (1,) * n, raw_kernel_rule=False)
    _check_pool_input(x, n, op)
    if n == 3:
        _check_avg3d_kernel_fits(x, kernel, op)
    ceil_mode = bool(ceil_mode)
    out = shapes.pool_output_shape(x.shape[-n:], kernel, stride, (0,) * n, (1,) * n, ceil_mode)
    _check_output(x, n, out, op)
    return LPPoolFunction.apply(input, norm_type, kernel, stride, ceil_mode)


def lp_pool1d(
    input: Array,
    norm_type: float,
    kernel_size: Size,
    stride: Size | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """1-D power-average pooling over ``(N, C, L)`` or ``(C, L)``; see :func:`lp_pool2d`.

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.lp_pool1d.html
    """
    return _lp_poolnd(1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(
    input: Array,
    norm_type: float,
    kernel_size: Size,
    stride: Size | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """2-D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``.

    Computed as PyTorch does, ``(sign(a) * relu(|a|) * kH * kW) ** (1 / p)`` with ``a`` the
    ``avg_pool2d`` of ``x ** p``; so a negative window sum gives NaN for fractional ``1 / p``,
    a ceil-mode partial window is its mean times the full kernel size, ``p = inf`` is max
    pooling of ``|x|``, and a zero sum has zero gradient. There is no padding.
    Shape: per spatial dim, ``out = floor((in - kernel_size) / stride + 1)``.

    >>> lp_pool2d(x, 2, 3, stride=2)     # Euclidean norm of each 3x3 window

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.lp_pool2d.html
    """
    return _lp_poolnd(2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(
    input: Array,
    norm_type: float,
    kernel_size: Size,
    stride: Size | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """3-D power-average pooling over ``(N, C, D, H, W)``; see :func:`lp_pool2d`.

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.lp_pool3d.html
    """
    return _lp_poolnd(3, input, norm_type, kernel_size, stride, ceil_mode)


# ---------------------------------------------------------------------------------------------
# Adaptive pooling
# ---------------------------------------------------------------------------------------------


def _adaptive_size(output_size, x: np.ndarray, n: int, op: str) -> tuple[int, ...]:
    """An int, or ``n`` entries each an int or None ("as the input"); None only for 2-d/3-d."""
    if _is_int(output_size):
        sizes = [int(output_size)] * n
    elif isinstance(output_size, Sequence) and not isinstance(output_size, str):
        sizes = list(output_size)
        if len(sizes) != n:
            raise RuntimeError(
                f"{op}(): output_size must have {n} element{'s' if n > 1 else ''}, but got "
                f"output_size={output_size!r}"
            )
        allowed = "an int" if n == 1 else "an int or None"
        for v in sizes:
            if not (_is_int(v) or (v is None and n > 1)):
                raise TypeError(
                    f"{op}(): each element of output_size must be {allowed}, but got "
                    f"output_size={output_size!r}"
                )
    else:
        kind = "an int or a tuple of ints" if n == 1 else "an int or a tuple of ints or None"
        raise TypeError(f"{op}(): output_size must be {kind}, but got {output_size!r}")
    if x.ndim in (n + 1, n + 2):
        sizes = [x.shape[x.ndim - n + i] if v is None else int(v) for i, v in enumerate(sizes)]
    if any(v is not None and v < 0 for v in sizes):
        raise RuntimeError(
            f"{op}(): elements of output_size must be greater than or equal to 0 but received "
            f"output_size={tuple(sizes)}"
        )
    return tuple(sizes)


def _check_adaptive_input(x: np.ndarray, n: int, op: str, allow_empty_channels: bool) -> None:
    if x.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"{op}(): Expected {n + 1}D or {n + 2}D tensor, but got {list(x.shape)}")
    first = x.ndim - (n if allow_empty_channels else n + 1)
    for d in range(first, x.ndim):
        if x.shape[d] == 0:
            raise RuntimeError(
                f"{op}(): Expected input to have non-zero size for non-batch dimensions, but "
                f"input has sizes {list(x.shape)} with dimension {d} being empty"
            )


class AdaptiveAvgPoolFunction(Function):
    """Mean over adaptive bins ``[floor(i * in / out), ceil((i + 1) * in / out))``."""

    @staticmethod
    def forward(ctx, x, output_size):
        ctx.spatial = x.shape[x.ndim - len(output_size) :]
        return kernels.adaptive_avg_pool_forward(x, output_size)

    @staticmethod
    def backward(ctx, grad_output):
        return (kernels.adaptive_avg_pool_backward(grad_output, ctx.spatial),)


class AdaptiveMaxPoolFunction(Function):
    """Max over adaptive bins; the gradient goes to each bin's argmax."""

    @staticmethod
    def forward(ctx, x, output_size, return_indices):
        out, indices = kernels.adaptive_max_pool_forward(x, output_size)
        ctx.save_for_backward(indices)
        ctx.spatial = x.shape[x.ndim - len(output_size) :]
        return (out, indices) if return_indices else out

    @staticmethod
    def backward(ctx, grad_output, *_):
        (indices,) = ctx.saved_tensors
        return (kernels.adaptive_max_pool_backward(grad_output, indices, ctx.spatial),)


def _adaptive_avg_poolnd(n, input, output_size) -> Tensor:
    op = f"adaptive_avg_pool{n}d"
    x = _array(input, "input", op)
    sizes = _adaptive_size(output_size, x, n, op)
    _check_float(x, op)
    # PyTorch's 1-d and 2-d kernels accept an empty channel dimension; its 3-d one does not.
    _check_adaptive_input(x, n, op, allow_empty_channels=n < 3)
    return AdaptiveAvgPoolFunction.apply(input, sizes)


def _adaptive_max_poolnd(n, input, output_size, return_indices) -> Tensor:
    op = f"adaptive_max_pool{n}d"
    x = _array(input, "input", op)
    sizes = _adaptive_size(output_size, x, n, op)
    _check_float(x, op)
    _check_adaptive_input(x, n, op, allow_empty_channels=False)
    return AdaptiveMaxPoolFunction.apply(input, sizes, bool(return_indices))


def adaptive_avg_pool1d(input: Array, output_size: Size) -> Tensor:
    """1-D adaptive average pooling to ``output_size`` (an int) over ``(N, C, L)``/``(C, L)``.

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_avg_pool1d.html
    """
    return _adaptive_avg_poolnd(1, input, output_size)


def adaptive_avg_pool2d(input: Array, output_size: OptSize) -> Tensor:
    """2-D adaptive average pooling: the output is ``output_size`` whatever the input size.

    Args:
        output_size: an int, or ``(H_out, W_out)`` where None keeps that input dimension.
    Bin ``i`` of a dimension averages input ``[floor(i * in / out), ceil((i + 1) * in / out))``;
    bins overlap when ``out`` does not divide ``in``.

    >>> adaptive_avg_pool2d(randn(8, 512, 7, 7), 1).shape       # (8, 512, 1, 1)

    See https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool2d.html
    """
    return _adaptive_avg_poolnd(2, input, output_size)


def adaptive_avg_pool3d(input: Array, output_size: OptSize) -> Tensor:
    """3-D adaptive average pooling; see :func:`adaptive_avg_pool2d`.

    See https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool3d.html
    """
    return _adaptive_avg_poolnd(3, input, output_size)


def adaptive_max_pool1d(
    input: Array, output_size: Size, return_indices: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """1-D adaptive max pooling; see :func:`adaptive_max_pool2d`.

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.adaptive_max_pool1d.html
    """
    return _adaptive_max_poolnd(1, input, output_size, return_indices)


def adaptive_max_pool2d(
    input: Array, output_size: OptSize, return_indices: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """2-D adaptive max pooling over the bins of :func:`adaptive_avg_pool2d`.

    With ``return_indices`` also returns the flat index of each maximum within its plane
    (int64). Ties go to the first element in row-major order; a NaN propagates.

    >>> out, idx = adaptive_max_pool2d(x, (3, None), return_indices=True)

    See https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveMaxPool2d.html
    """
    return _adaptive_max_poolnd(2, input, output_size, return_indices)


def adaptive_max_pool3d(
    input: Array, output_size: OptSize, return_indices: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """3-D adaptive max pooling; see :func:`adaptive_max_pool2d`.

    See https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveMaxPool3d.html
    """
    return _adaptive_max_poolnd(3, input, output_size, return_indices)
