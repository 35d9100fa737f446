"""Convolution layers: one N-d class each for convolution and transposed convolution.

``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d`` only fix the number of spatial dimensions; the
arguments, checks and initialisation are PyTorch's (``torch/nn/modules/conv.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from convlab import shapes
from convlab.autograd import Tensor
from convlab.nn import functional as F
from convlab.nn import init
from convlab.nn.module import Module, Parameter

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
]

_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}
_F_PAD_MODE = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, but got {name}={value!r}")
    return int(value)


class _ConvNd(Module):
    """Shared argument checking, parameters and initialisation of the convolution layers."""

    n_spatial: int
    transposed: bool = False

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        bias,
        padding_mode,
        output_padding=0,
        dtype=None,
    ) -> None:
        super().__init__()
        n = self.n_spatial
        name = type(self).__name__
        in_channels = _as_int(in_channels, "in_channels")
        out_channels = _as_int(out_channels, "out_channels")
        groups = _as_int(groups, "groups")
        if groups <= 0:
            raise ValueError(f"groups must be a positive integer, but got groups={groups}")
        if in_channels % groups != 0:
            raise ValueError(
                f"in_channels must be divisible by groups, but got in_channels={in_channels} "
                f"and groups={groups}"
            )
        if out_channels % groups != 0:
            raise ValueError(
                f"out_channels must be divisible by groups, but got out_channels="
                f"{out_channels} and groups={groups}"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {sorted(_PADDING_MODES)}, but got "
                f"padding_mode={padding_mode!r}"
            )
        kernel_size = shapes.ntuple(kernel_size, n, "kernel_size")
        stride = shapes.ntuple(stride, n, "stride")
        dilation = shapes.ntuple(dilation, n, "dilation")
        for arg, values in (
            ("kernel_size", kernel_size),
            ("stride", stride),
            ("dilation", dilation),
        ):
            if any(v <= 0 for v in values):
                raise ValueError(f"{arg} must be positive, but got {arg}={values}")
        if isinstance(padding, str):
            if self.transposed:
                raise ValueError(
                    f"{name} does not accept padding={padding!r}: 'same' and 'valid' exist "
                    "only for convolutions; give the padding as ints (see convlab shape)"
                )
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = shapes.ntuple(padding, n, "padding")
            if any(p < 0 for p in padding):
                raise ValueError(f"padding must be non-negative, but got padding={padding}")
        output_padding = shapes.ntuple(output_padding, n, "output_padding")
        if any(p < 0 for p in output_padding):
            raise ValueError(
                f"output_padding must be non-negative, but got output_padding={output_padding}"
            )
        if self.transposed:
            if padding_mode != "zeros":
                raise ValueError(
                    f'Only "zeros" padding mode is supported for {name}, but got '
                    f"padding_mode={padding_mode!r}"
                )
            F.check_output_padding(output_padding, stride, dilation)

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        if padding == "same":
            pairs = [shapes.same_padding(k, d) for k, d in zip(kernel_size, dilation)]
        elif padding == "valid":
            pairs = [(0, 0)] * n
        else:
            pairs = [(p, p) for p in padding]
        # F.pad's order: last dimension first, (low, high) for each.
        self._reversed_padding_repeated_twice = tuple(
            v for lo, hi in reversed(pairs) for v in (lo, hi)
        )

        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if self.transposed:
            weight_shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            weight_shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = Parameter(np.empty(weight_shape, dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(a=sqrt(5))``, i.e. U(+-1/sqrt(fan_in)).

        fan_in is ``weight.shape[1] * prod(kernel_size)``: ``in/groups`` for a convolution,
        ``out/groups`` for a transposed one.
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        n = self.n_spatial
        if self.padding != (0,) * n:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * n:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class _Conv(_ConvNd):
    _conv = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            dtype=dtype,
        )

    def forward(self, input) -> Tensor:
        conv = type(self)._conv
        if self.padding_mode != "zeros":
            padded = F.pad(
                input, self._reversed_padding_repeated_twice, mode=_F_PAD_MODE[self.padding_mode]
            )
            return conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv1d(_Conv):
    """1-D convolution layer over ``(N, C_in, L)``: ``Conv1d(in, out, kernel_size, ...)``.

    Shape: ``L_out = floor((L + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``.
    """

    n_spatial = 1
    _conv = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution layer over ``(N, C_in, H, W)``, exactly ``torch.nn.Conv2d``.

    Args: in_channels, out_channels, kernel_size, stride=1, padding=0 (int, tuple, 'valid' or
    'same'), dilation=1, groups=1, bias=True, padding_mode='zeros' ('reflect', 'replicate',
    'circular').
    Shape: per spatial dim,
    ``out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride + 1)``.

    >>> conv = Conv2d(1, 6, 5, padding=2)
    >>> conv(randn(64, 1, 28, 28)).shape    # (64, 6, 28, 28)
    """

    n_spatial = 2
    _conv = staticmethod(F.conv2d)


class Conv3d(_Conv):
    """3-D convolution layer over ``(N, C_in, D, H, W)``."""

    n_spatial = 3
    _conv = staticmethod(F.conv3d)


class _ConvTranspose(_ConvNd):
    transposed = True
    _conv_transpose = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            output_padding,
            dtype=dtype,
        )

    def _output_padding(self, input, output_size) -> tuple[int, ...]:
        """The output_padding that yields ``output_size`` (PyTorch's rule and messages)."""
        if output_size is None:
            return self.output_padding
        n = self.n_spatial
        shape = tuple(input.shape)
        if isinstance(output_size, Tensor):
            output_size = output_size.data.tolist()
        output_size = [int(s) for s in output_size]
        non_spatial = len(shape) - n  # 2 for (N, C, ...), 1 for unbatched (C, ...)
        if len(output_size) == n + non_spatial:
            output_size = output_size[non_spatial:]
        if len(output_size) != n:
            raise ValueError(
                f"ConvTranspose{n}D: for {len(shape)}D input, output_size must have {n} or "
                f"{n + non_spatial} elements (got {len(output_size)})"
            )
        spatial = shape[-n:]
        ranges = [
            shapes.conv_transpose_output_range(s, k, st, p, d)
            for s, k, st, p, d in zip(
                spatial, self.kernel_size, self.stride, self.padding, self.dilation
            )
        ]
        smallest = [lo for lo, _ in ranges]
        largest = [hi for _, hi in ranges]
        if any(not lo <= s <= hi for s, (lo, hi) in zip(output_size, ranges)):
            raise ValueError(
                f"requested an output size of {output_size}, but valid sizes range from "
                f"{smallest} to {largest} (for an input of {list(spatial)})"
            )
        return tuple(s - lo for s, lo in zip(output_size, smallest))

    def forward(self, input, output_size: Sequence[int] | None = None) -> Tensor:
        output_padding = self._output_padding(input, output_size)
        return type(self)._conv_transpose(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
        )


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (the adjoint of Conv1d); weight ``(C_in, C_out / groups, k)``.

    Shape: ``L_out = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
    ``forward(x, output_size=None)`` picks the output_padding that gives ``output_size``.
    """

    n_spatial = 1
    _conv_transpose = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution, exactly ``torch.nn.ConvTranspose2d``.

    Args: in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0
    (< stride or < dilation), groups=1, bias=True, dilation=1 (note: after ``bias``).
    Shape: per spatial dim,
    ``out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    >>> up = ConvTranspose2d(16, 8, 3, stride=2, padding=1)
    >>> up(randn(1, 16, 5, 5), output_size=(10, 10)).shape   # (1, 8, 10, 10)
    """

    n_spatial = 2
    _conv_transpose = staticmethod(F.conv_transpose2d)


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution over ``(N, C_in, D, H, W)``."""

    n_spatial = 3
    _conv_transpose = staticmethod(F.conv_transpose3d)
