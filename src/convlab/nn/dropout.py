"""Dropout layers: elementwise, channel-wise (1-D/2-D/3-D) and alpha dropout.

Active in training mode only (``model.train()``); in evaluation mode they return the input.
Masks come from convlab's generator, so ``convlab.manual_seed`` makes them reproducible.
"""

from __future__ import annotations

import numbers

from convlab.autograd import Tensor
from convlab.nn import functional as F
from convlab.nn.module import Module

__all__ = [
    "AlphaDropout",
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "FeatureAlphaDropout",
]


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not isinstance(p, numbers.Real):
            raise TypeError(f"dropout probability must be a float, but got p={p!r}")
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` in training, scaling the rest by
    ``1 / (1 - p)`` (Srivastava et al., 2014).

    Shape: any; the output has the input's shape.

    >>> drop = Dropout(p=0.2)
    >>> drop(randn(20, 16)).shape    # (20, 16); drop.eval() makes it the identity

    See https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html
    """

    def forward(self, input) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` with probability ``p``."""

    def forward(self, input) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p`` (Tompson et al., 2015).

    As in PyTorch, a 3-D input is taken as ``(N, C, L)`` (with a warning), not as ``(C, H, W)``.
    """

    def forward(self, input) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` with probability ``p``."""

    def forward(self, input) -> Tensor:
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps the zero mean and unit variance of SELU activations."""

    def forward(self, input) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels of ``(N, C, *)``."""

    def forward(self, input) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training)
