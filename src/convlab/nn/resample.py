"""Resampling layers: ``Upsample``, pixel (un)shuffle, ``Unfold`` and ``Fold``.

Stateless wrappers around ``convlab.nn.functional`` with torch.nn's names, arguments and
``extra_repr``; none has parameters.
"""

from __future__ import annotations

from convlab.autograd import Tensor
from convlab.nn import functional as F
from convlab.nn.module import Module

__all__ = [
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "PixelShuffle",
    "PixelUnshuffle",
    "Unfold",
    "Fold",
]


class Upsample(Module):
    """Upsample (or downsample) 1-, 2- or 3-D data: :func:`convlab.nn.functional.interpolate`.

    Args:
        size: the output spatial size (int or tuple).
        scale_factor: multiplier of the spatial size (float or tuple); give one of the two.
        mode: ``'nearest'``, ``'linear'``, ``'bilinear'``, ``'bicubic'``, ``'trilinear'``,
            ``'area'`` or ``'nearest-exact'``.
        align_corners: for the linear and cubic modes only.
        recompute_scale_factor: map coordinates with ``in / out`` instead of the scale factor.

    Shape: ``(N, C, *S) -> (N, C, *S_out)`` with ``S_out = size`` or
    ``floor(S * scale_factor)``.

    >>> Upsample(scale_factor=2, mode="nearest")(randn(1, 1, 2, 2)).shape   # (1, 1, 4, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.Upsample.html
    """

    def __init__(
        self,
        size=None,
        scale_factor=None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.size = size
        # As torch: a tuple stays a tuple of floats, and a zero scale_factor means none.
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input) -> Tensor:
        return F.interpolate(
            input,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        return info + ", mode=" + repr(self.mode)


class UpsamplingNearest2d(Upsample):
    """2-D nearest-neighbour upsampling: ``Upsample(size, scale_factor, mode='nearest')``."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """2-D bilinear upsampling with ``align_corners=True`` (the corner pixels stay put)."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """``(*, C r^2, H, W) -> (*, C, H r, W r)``: :func:`convlab.nn.functional.pixel_shuffle`.

    >>> PixelShuffle(3)(randn(1, 9, 4, 4)).shape    # (1, 1, 12, 12)

    See https://pytorch.org/docs/stable/generated/torch.nn.PixelShuffle.html
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input) -> Tensor:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """``(*, C, H r, W r) -> (*, C r^2, H, W)``, the inverse of :class:`PixelShuffle`.

    See https://pytorch.org/docs/stable/generated/torch.nn.PixelUnshuffle.html
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input) -> Tensor:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """Extract sliding blocks as columns: :func:`convlab.nn.functional.unfold`.

    Works for any number of spatial dimensions (the length of the tuple arguments; 2 when all
    are ints), where PyTorch accepts 4-D input only.

    Shape: ``(N, C, *S) -> (N, C * prod(kernel_size), L)``,
    ``L = prod_d floor((S_d + 2 padding_d - dilation_d (k_d - 1) - 1) / stride_d + 1)``.

    >>> Unfold(kernel_size=2)(randn(1, 3, 4, 4)).shape    # (1, 12, 9)

    See https://pytorch.org/docs/stable/generated/torch.nn.Unfold.html
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input) -> Tensor:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding},"
            f" stride={self.stride}"
        )


class Fold(Module):
    """Sum sliding blocks back into an image: :func:`convlab.nn.functional.fold`.

    Shape: ``(N, C * prod(kernel_size), L) -> (N, C, *output_size)``; any number of spatial
    dimensions, like :class:`Unfold`.

    >>> Fold(output_size=(4, 4), kernel_size=2)(randn(1, 12, 9)).shape   # (1, 3, 4, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.Fold.html
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input) -> Tensor:
        return F.fold(
            input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
        )
