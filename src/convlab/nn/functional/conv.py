"""Convolution, transposed convolution and padding: argument checks and autograd Functions.

Each function normalises and checks its arguments once, then calls one autograd ``Function``
whose forward and backward are kernels from ``convlab.kernels``. Inputs may be ``Tensor`` or
NumPy arrays; results are ``Tensor``. Conventions are PyTorch's: inputs ``(N, C, *spatial)``
(or unbatched ``(C, *spatial)``), weights ``(C_out, C_in / groups, *kernel)``, ``dilation=1``
meaning no dilation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from convlab import shapes
from convlab.autograd import Function, Tensor
from convlab.kernels import conv as conv_kernels
from convlab.kernels import pad as pad_kernels
from convlab.nn.functional._args import as_array as _array

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "pad",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_DTYPE_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


# ---------------------------------------------------------------------------------------------
# Argument checking shared by the convolution family
# ---------------------------------------------------------------------------------------------


def _check_float(arrays: dict[str, np.ndarray | None], op: str) -> None:
    """PyTorch's CPU convolutions run in float32 and float64, and all operands must agree."""
    first_name, first = next(iter(arrays.items()))
    for name, array in arrays.items():
        if array is None:
            continue
        if array.dtype not in _FLOAT_DTYPES:
            raise RuntimeError(
                f"{op}(): {name} must be float32 or float64, but got {array.dtype} "
                f"(convert with .float() or .double())"
            )
        if array.dtype != first.dtype:
            raise RuntimeError(
                f"{op}(): {first_name} type ({_DTYPE_NAMES[first.dtype]}) and {name} type "
                f"({_DTYPE_NAMES[array.dtype]}) should be the same"
            )


def _conv_tuple(value, n: int, name: str) -> tuple[int, ...]:
    """Normalise stride/padding/dilation as ``F.convNd`` does, with its error messages."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            if len(items) == 1:
                return (int(items[0]),) * n
            if len(items) == n:
                return tuple(int(v) for v in items)
            raise RuntimeError(
                f"expected {name} to be a single integer value or a list of {n} values to "
                f"match the convolution dimensions, but got {name}={list(items)}"
            )
    raise TypeError(f"{name} must be an int or a tuple of {n} ints, but got {name}={value!r}")


def _check_rank(x: np.ndarray, n: int, op: str) -> None:
    if x.ndim not in (n + 1, n + 2):
        raise RuntimeError(
            f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {op}, "
            f"but got input of size: {list(x.shape)}"
        )


def _check_weight(weight: np.ndarray, n: int, op: str) -> None:
    if weight.ndim != n + 2:
        raise RuntimeError(
            f"{op}(): weight must have {n + 2} dimensions (out_channels, in_channels / groups, "
            f"*kernel_size), but got weight of size {list(weight.shape)}"
        )


def _check_positive(values: tuple[int, ...], name: str) -> None:
    if any(v <= 0 for v in values):
        if name == "dilation":
            raise RuntimeError(f"dilation should be greater than zero, but got {list(values)}")
        raise RuntimeError(f"non-positive {name} is not supported, but got {name}={list(values)}")


def _check_groups(groups, weight: np.ndarray) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups must be an int, but got groups={groups!r}")
    if groups <= 0:
        raise RuntimeError(f"non-positive groups is not supported, but got groups={groups}")
    if weight.shape[0] % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {list(weight.shape)} instead"
        )
    return int(groups)


def _check_bias(bias: np.ndarray | None, weight: np.ndarray, channels: int) -> None:
    if bias is not None and bias.shape != (channels,):
        raise RuntimeError(
            f"Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional "
            f"with {channels} elements, but got bias of size {list(bias.shape)} instead"
        )


def _sizes(values: Sequence[int]) -> str:
    return " x ".join(str(v) for v in values)


def _same_padding(kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    if any(s != 1 for s in stride):
        raise ValueError("padding='same' is not supported for strided convolutions")
    pads = tuple(shapes.same_padding(k, d) for k, d in zip(kernel, dilation))
    if any(lo != hi for lo, hi in pads):
        warnings.warn(
            "Using padding='same' with even kernel lengths and odd dilation may require a "
            "zero-padded copy of the input be created",
            UserWarning,
            stacklevel=4,
        )
    return pads


def _conv_padding(padding, n, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            return _same_padding(kernel, stride, dilation)
        raise ValueError(
            f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}"
        )
    pads = _conv_tuple(padding, n, "padding")
    if any(p < 0 for p in pads):
        raise RuntimeError(f"negative padding is not supported, but got padding={list(pads)}")
    return tuple((p, p) for p in pads)


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------


class ConvFunction(Function):
    """y = conv(x, w) + b, for batched or unbatched x of any spatial rank."""

    fresh_gradients = True  # every kernel returns new arrays

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        unbatched = x.ndim == weight.ndim - 1
        xb = x[None] if unbatched else x
        ctx.save_for_backward(xb, weight)
        ctx.args = (stride, padding, dilation, groups)
        ctx.unbatched = unbatched
        ctx.has_bias = bias is not None
        # Room for what the weight-gradient can reuse from the forward pass (the columns).
        ctx.workspace = {} if ctx.needs_input_grad[1] else None
        y = conv_kernels.conv_forward(
            xb, weight, bias, stride, padding, dilation, groups, ctx.workspace
        )
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, grad_output):
        xb, weight = ctx.saved_tensors
        g = grad_output[None] if ctx.unbatched else grad_output
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0] and ctx.needs_input_grad[1]:
            grad_x, grad_w = conv_kernels.conv_backward(xb, g, weight, *ctx.args, ctx.workspace)
        elif ctx.needs_input_grad[1]:
            grad_w = conv_kernels.conv_backward_weight(
                xb, g, weight.shape, *ctx.args, ctx.workspace
            )
        elif ctx.needs_input_grad[0]:
            grad_x = conv_kernels.conv_backward_input(g, weight, xb.shape, *ctx.args)
        if grad_x is not None and ctx.unbatched:
            grad_x = grad_x[0]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = conv_kernels.conv_backward_bias(g, ctx.workspace)
        return grad_x, grad_w, grad_b


def _convnd(n: int, input, weight, bias, stride, padding, dilation, groups) -> Tensor:
    op = f"conv{n}d"
    x = _array(input, "input", op)
    w = _array(weight, "weight", op)
    b = None if bias is None else _array(bias, "bias", op)
    _check_float({"input": x, "weight": w, "bias": b}, op)
    _check_rank(x, n, op)
    _check_weight(w, n, op)
    stride = _conv_tuple(stride, n, "stride")
    dilation = _conv_tuple(dilation, n, "dilation")
    _check_positive(stride, "stride")
    _check_positive(dilation, "dilation")
    groups = _check_groups(groups, w)
    kernel = w.shape[2:]
    pads = _conv_padding(padding, n, kernel, stride, dilation)
    channels = x.shape[-n - 1]
    if channels != w.shape[1] * groups:
        batched = x.shape if x.ndim == n + 2 else (1, *x.shape)
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(w.shape)}, expected "
            f"input{list(batched)} to have {w.shape[1] * groups} channels, but got "
            f"{channels} channels instead"
        )
    _check_bias(b, w, w.shape[0])
    padded = [s + lo + hi for s, (lo, hi) in zip(x.shape[-n:], pads)]
    effective = [shapes.effective_kernel(k, d) for k, d in zip(kernel, dilation)]
    if any(p < e for p, e in zip(padded, effective)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({_sizes(padded)}). Kernel size: "
            f"({_sizes(effective)}). Kernel size can't be greater than actual input size"
        )
    return ConvFunction.apply(input, weight, bias, stride, pads, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D cross-correlation over ``(N, C_in, L)`` or ``(C_in, L)``.

    Shape: ``L_out = floor((L + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)``.
    ``padding`` may be an int, a 1-tuple, ``'valid'`` or ``'same'`` (stride 1 only).
    See https://pytorch.org/docs/stable/generated/torch.nn.functional.conv1d.html
    """
    return _convnd(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation over ``(N, C_in, H, W)`` or ``(C_in, H, W)``.

    Shape: per spatial dim,
    ``out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride + 1)``.

    >>> x, w = randn(1, 3, 8, 8), randn(4, 3, 3, 3)
    >>> conv2d(x, w, padding=1).shape      # (1, 4, 8, 8)
    """
    return _convnd(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """3-D cross-correlation over ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``."""
    return _convnd(3, input, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------------------------------------
# Transposed convolution
# ---------------------------------------------------------------------------------------------


class ConvTransposeFunction(Function):
    """y = conv(x, w)^T + b: the adjoint of the convolution with the same arguments."""

    fresh_gradients = True

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation, groups):
        unbatched = x.ndim == weight.ndim - 1
        xb = x[None] if unbatched else x
        ctx.save_for_backward(xb, weight)
        ctx.args = (stride, padding, dilation, groups)
        ctx.unbatched = unbatched
        ctx.has_bias = bias is not None
        y = conv_kernels.conv_transpose_forward(
            xb, weight, bias, stride, padding, output_padding, dilation, groups
        )
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, grad_output):
        xb, weight = ctx.saved_tensors
        g = grad_output[None] if ctx.unbatched else grad_output
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0] and ctx.needs_input_grad[1]:
            grad_x, grad_w = conv_kernels.conv_transpose_backward(xb, g, weight, *ctx.args)
        elif ctx.needs_input_grad[0]:
            grad_x = conv_kernels.conv_transpose_backward_input(g, weight, xb.shape, *ctx.args)
        elif ctx.needs_input_grad[1]:
            grad_w = conv_kernels.conv_transpose_backward_weight(xb, g, weight.shape, *ctx.args)
        if grad_x is not None and ctx.unbatched:
            grad_x = grad_x[0]
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = conv_kernels.conv_backward_bias(g)
        return grad_x, grad_w, grad_b


def _conv_transposend(
    n: int, input, weight, bias, stride, padding, output_padding, groups, dilation
) -> Tensor:
    op = f"conv_transpose{n}d"
    x = _array(input, "input", op)
    w = _array(weight, "weight", op)
    b = None if bias is None else _array(bias, "bias", op)
    _check_float({"input": x, "weight": w, "bias": b}, op)
    _check_rank(x, n, op)
    _check_weight(w, n, op)
    if isinstance(padding, str):
        raise TypeError(
            f"{op}(): padding must be an int or a tuple of {n} ints; the strings 'same' and "
            f"'valid' exist only for convolutions, but got padding={padding!r}"
        )
    stride = _conv_tuple(stride, n, "stride")
    dilation = _conv_tuple(dilation, n, "dilation")
    pads = _conv_tuple(padding, n, "padding")
    output_padding = _conv_tuple(output_padding, n, "output_padding")
    _check_positive(stride, "stride")
    _check_positive(dilation, "dilation")
    if any(p < 0 for p in pads):
        raise RuntimeError(f"negative padding is not supported, but got padding={list(pads)}")
    if any(p < 0 for p in output_padding):
        raise RuntimeError(
            f"negative output_padding is not supported, but got output_padding="
            f"{list(output_padding)}"
        )
    check_output_padding(output_padding, stride, dilation)
    groups = _check_groups(groups, w)
    channels = x.shape[-n - 1]
    if channels != w.shape[0]:
        batched = x.shape if x.ndim == n + 2 else (1, *x.shape)
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(w.shape)}, expected input"
            f"{list(batched)} to have {w.shape[0]} channels, but got {channels} channels instead"
        )
    _check_bias(b, w, w.shape[1] * groups)
    out = shapes.conv_transpose_output_shape(
        x.shape[-n:], w.shape[2:], stride, pads, dilation, output_padding
    )
    if any(o <= 0 for o in out):
        raise RuntimeError(
            f"Given input size per channel: ({_sizes(x.shape[-n:])}). Calculated output size "
            f"per channel: ({_sizes(out)}). Output size is too small"
        )
    return ConvTransposeFunction.apply(
        input, weight, bias, stride, pads, output_padding, dilation, groups
    )


_AXIS_NAMES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def check_output_padding(output_padding, stride, dilation) -> None:
    """``output_padding`` must be smaller than the stride or the dilation, per dimension."""
    if all(p < s or p < d for p, s, d in zip(output_padding, stride, dilation)):
        return
    n = len(stride)
    # PyTorch reports 1-d transposed convolutions through its 2-d kernel ("height: 0").
    names = _AXIS_NAMES.get(n, tuple(f"dim{i}" for i in range(n)))
    padded = (0, *output_padding) if n == 1 else output_padding
    strides = (1, *stride) if n == 1 else stride
    dilations = (1, *dilation) if n == 1 else dilation
    names = ("height", "width") if n == 1 else names
    parts = [f"output_padding_{a}: {v}" for a, v in zip(names, padded)]
    parts += [f"stride_{a}: {v}" for a, v in zip(names, strides)]
    parts += [f"dilation_{a}: {v}" for a, v in zip(names, dilations)]
    raise RuntimeError(
        "output padding must be smaller than either stride or dilation, but got " + " ".join(parts)
    )


def conv_transpose1d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    """1-D transposed convolution over ``(N, C_in, L)``; weight ``(C_in, C_out / groups, k)``.

    Shape: ``L_out = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
    """
    return _conv_transposend(
        1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    """2-D transposed convolution (the adjoint of ``conv2d``); note ``dilation`` comes last.

    Shape: per spatial dim,
    ``out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
    """
    return _conv_transposend(
        2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    """3-D transposed convolution over ``(N, C_in, D, H, W)``."""
    return _conv_transposend(
        3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


# ---------------------------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


class PadFunction(Function):
    """Pad the trailing dimensions; backward crops (constant) or folds the border back."""

    @staticmethod
    def forward(ctx, x, padding, mode, value):
        ctx.input_shape = x.shape
        ctx.padding = padding
        ctx.mode = mode
        return pad_kernels.pad_forward(x, padding, mode, value)

    @staticmethod
    def backward(ctx, grad_output):
        return (pad_kernels.pad_backward(grad_output, ctx.input_shape, ctx.padding, ctx.mode),)


def pad(input, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dimensions, PyTorch order: last dimension first.

    ``pad = (left, right)`` pads the last dim; ``(left, right, top, bottom)`` the last two; and
    so on. Modes: ``'constant'`` (negative amounts crop), ``'reflect'`` (mirror without repeating
    the edge; amounts < size), ``'replicate'`` (repeat the edge), ``'circular'`` (wrap around;
    amounts <= size).

    >>> pad(x, (1, 1), mode='reflect')   # [1, 2, 3] -> [2, 1, 2, 3, 2]
    """
    x = _array(input, "input", "pad")
    if isinstance(pad, str) or not isinstance(pad, Sequence):
        raise TypeError(f"pad(): pad must be a sequence of ints, but got {pad!r}")
    amounts = tuple(pad)
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in amounts):
        raise TypeError(f"pad(): pad must contain only ints, but got {pad!r}")
    if len(amounts) % 2:
        raise RuntimeError(f"Padding length must be divisible by 2, but got pad={list(amounts)}")
    n = len(amounts) // 2
    if n > x.ndim:
        raise RuntimeError(
            "Padding length should be less than or equal to two times the input dimension but "
            f"got padding length {len(amounts)} and input of dimension {x.ndim}"
        )
    if mode not in _PAD_MODES:
        raise NotImplementedError(
            f"Unrecognised padding mode {mode!r}: pad() supports {', '.join(_PAD_MODES)}"
        )
    # F.pad lists the last dimension first; the kernel wants natural order.
    padding = tuple((int(amounts[2 * i]), int(amounts[2 * i + 1])) for i in reversed(range(n)))
    if mode == "constant":
        sizes = [s + lo + hi for s, (lo, hi) in zip(x.shape[x.ndim - n :], padding)]
        if any(s < 0 for s in sizes):
            raise RuntimeError(
                f"pad(): negative padding {list(amounts)} removes more than the input "
                f"{list(x.shape)} has"
            )
        return PadFunction.apply(input, padding, mode, 0.0 if value is None else float(value))
    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if x.ndim not in (n + 1, n + 2) or n > 3:
        raise NotImplementedError(
            f"Padding size {len(amounts)} is not supported for {x.ndim}D input tensor: "
            f"mode {mode!r} pads the last 1, 2 or 3 dimensions of an input with one or two "
            "more (batch, channel) dimensions"
        )
    # Last dimension first, like the pad list (and PyTorch's error messages).
    for axis, (lo, hi) in reversed(list(enumerate(padding, start=x.ndim - n))):
        size = x.shape[axis]
        if size == 0:
            raise RuntimeError(
                f"pad(): mode {mode!r} needs non-empty dimensions, but dimension {axis} of "
                f"input {list(x.shape)} is empty"
            )
        if mode == "reflect" and (lo >= size or hi >= size):
            raise RuntimeError(
                "Padding size should be less than the corresponding input dimension, but got: "
                f"padding ({lo}, {hi}) at dimension {axis} of input {list(x.shape)}"
            )
        if mode == "circular" and (lo > size or hi > size):
            raise RuntimeError(
                f"Padding value causes wrapping around more than once: padding ({lo}, {hi}) "
                f"at dimension {axis} of input {list(x.shape)} must be at most {size}"
            )
    return PadFunction.apply(input, padding, mode, 0.0)
