"""Pooling layers with ``torch.nn``'s names, arguments and attributes.

Each layer stores its arguments as PyTorch does (``stride`` defaults to ``kernel_size``) and
calls the matching function of ``convlab.nn.functional``, which checks them: like PyTorch, a bad
argument is reported on the first forward call. The classes only fix the number of spatial
dimensions; the work is in the shared N-d kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

from convlab.autograd import Tensor
from convlab.nn.functional import pooling as F
from convlab.nn.module import Module

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
]

IntOrTuple = int | Sequence[int]


def _ntuple(value, n: int):
    """torch's ``_single/_pair/_triple``: repeat an int, keep a sequence as a tuple."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return (value,) * n


class _MaxPoolNd(Module):
    _pool = None

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return type(self)._pool(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling layer over ``(N, C, L)`` or ``(C, L)``; see :class:`MaxPool2d`.

    Shape: ``L_out = floor((L + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``.
    """

    _pool = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling layer, exactly ``torch.nn.MaxPool2d``.

    Args: kernel_size, stride=None (= kernel_size), padding=0 (-inf, at most half the kernel),
    dilation=1, return_indices=False (also return flat plane indices for MaxUnpool2d),
    ceil_mode=False.
    Shape: per spatial dim,
    ``out = floor((in + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)``.

    >>> MaxPool2d(2)(randn(64, 6, 28, 28)).shape    # (64, 6, 14, 14)

    See https://pytorch.org/docs/stable/generated/torch.nn.MaxPool2d.html
    """

    _pool = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling layer over ``(N, C, D, H, W)``; see :class:`MaxPool2d`."""

    _pool = staticmethod(F.max_pool3d)


class _MaxUnpoolNd(Module):
    n_spatial: int
    _unpool = None

    def __init__(
        self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0
    ) -> None:
        super().__init__()
        n = self.n_spatial
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, n)
        self.padding = _ntuple(padding, n)

    def forward(self, input, indices, output_size: Sequence[int] | None = None) -> Tensor:
        return type(self)._unpool(
            input, indices, self.kernel_size, self.stride, self.padding, output_size
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Partial inverse of MaxPool1d; ``forward(input, indices, output_size=None)``.

    Shape: ``L_out = (L - 1) * stride - 2 * padding + kernel_size`` (or ``output_size``).
    """

    n_spatial = 1
    _unpool = staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    """Partial inverse of MaxPool2d: zeros except the maxima, put back where they were.

    Shape: per spatial dim, ``out = (in - 1) * stride - 2 * padding + kernel_size``; pass
    ``output_size`` to pick another size that pools to the same shape.

    >>> pool, unpool = MaxPool2d(2, return_indices=True), MaxUnpool2d(2)
    >>> y, i = pool(x); unpool(y, i, output_size=x.shape)

    See https://pytorch.org/docs/stable/generated/torch.nn.MaxUnpool2d.html
    """

    n_spatial = 2
    _unpool = staticmethod(F.max_unpool2d)


class MaxUnpool3d(_MaxUnpoolNd):
    """Partial inverse of MaxPool3d; see :class:`MaxUnpool2d`."""

    n_spatial = 3
    _unpool = staticmethod(F.max_unpool3d)


class _AvgPoolNd(Module):
    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling layer over ``(N, C, L)`` or ``(C, L)``; see :class:`AvgPool2d`.

    Shape: ``L_out = floor((L + 2 * padding - kernel_size) / stride + 1)``.
    """

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, 1)
        self.stride = _ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = _ntuple(padding, 1)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input) -> Tensor:
        return F.avg_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )


class _AvgPool(_AvgPoolNd):
    _pool = None

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input) -> Tensor:
        return type(self)._pool(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class AvgPool2d(_AvgPool):
    """2-D average pooling layer, exactly ``torch.nn.AvgPool2d``.

    Args: kernel_size, stride=None (= kernel_size), padding=0 (zeros, at most half the kernel),
    ceil_mode=False, count_include_pad=True, divisor_override=None.
    Shape: per spatial dim, ``out = floor((in + 2 * padding - kernel_size) / stride + 1)``.

    >>> AvgPool2d(3, stride=2, padding=1)(randn(1, 8, 9, 9)).shape   # (1, 8, 5, 5)

    See https://pytorch.org/docs/stable/generated/torch.nn.AvgPool2d.html
    """

    _pool = staticmethod(F.avg_pool2d)


class AvgPool3d(_AvgPool):
    """3-D average pooling layer over ``(N, C, D, H, W)``; see :class:`AvgPool2d`."""

    _pool = staticmethod(F.avg_pool3d)


class _LPPoolNd(Module):
    _pool = None

    def __init__(
        self,
        norm_type: float,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input) -> Tensor:
        return type(self)._pool(
            input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode
        )

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"ceil_mode={self.ceil_mode}"
        )


class LPPool1d(_LPPoolNd):
    """1-D power-average pooling layer; see :class:`LPPool2d`."""

    _pool = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPoolNd):
    """2-D power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``.

    Args: norm_type (p; inf gives max pooling of ``|x|``), kernel_size, stride=None
    (= kernel_size), ceil_mode=False. No padding.
    Shape: per spatial dim, ``out = floor((in - kernel_size) / stride + 1)``.

    >>> LPPool2d(2, 3, stride=2)(randn(1, 4, 9, 9)).shape     # (1, 4, 4, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.LPPool2d.html
    """

    _pool = staticmethod(F.lp_pool2d)


class LPPool3d(_LPPoolNd):
    """3-D power-average pooling layer; see :class:`LPPool2d`."""

    _pool = staticmethod(F.lp_pool3d)


class _AdaptiveMaxPoolNd(Module):
    _pool = None

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input):
        return type(self)._pool(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-D adaptive max pooling to ``output_size`` (an int); see :class:`AdaptiveMaxPool2d`."""

    _pool = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-D adaptive max pooling: output ``output_size`` (int or ``(H, W)``, None = as input).

    Bins: ``[floor(i * in / out), ceil((i + 1) * in / out))`` per dimension.

    >>> AdaptiveMaxPool2d((5, None))(randn(1, 64, 10, 9)).shape    # (1, 64, 5, 9)

    See https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveMaxPool2d.html
    """

    _pool = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling; see :class:`AdaptiveMaxPool2d`."""

    _pool = staticmethod(F.adaptive_max_pool3d)


class _AdaptiveAvgPoolNd(Module):
    _pool = None

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input) -> Tensor:
        return type(self)._pool(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling to ``output_size`` (an int); see :class:`AdaptiveAvgPool2d`."""

    _pool = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling: output ``output_size`` whatever the input's size.

    Args: output_size: an int or ``(H, W)``; None keeps that input dimension.
    Bins: ``[floor(i * in / out), ceil((i + 1) * in / out))`` per dimension (they may overlap).

    >>> AdaptiveAvgPool2d(1)(randn(8, 512, 7, 7)).shape    # (8, 512, 1, 1)

    See https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool2d.html
    """

    _pool = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling; see :class:`AdaptiveAvgPool2d`."""

    _pool = staticmethod(F.adaptive_avg_pool3d)
