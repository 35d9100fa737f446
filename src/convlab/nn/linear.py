"""Fully connected layers: ``Linear`` (``y = x W^T + b``) and ``Identity``."""

from __future__ import annotations

import math
import numbers

import numpy as np

from convlab.autograd import Tensor
from convlab.nn import functional as F
from convlab.nn import init
from convlab.nn.module import Module, Parameter

__all__ = ["Identity", "Linear"]


def _size(value, name: str) -> int:
    """A layer size: a non-negative int (PyTorch's messages for floats and negatives)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, but got {name}={value!r}")
    if value < 0:
        raise RuntimeError(
            f"Trying to create tensor with negative dimension {value}: {name} must be "
            f"non-negative, but got {name}={value}"
        )
    return int(value)


class Identity(Module):
    """Return the input unchanged; any constructor arguments are ignored (a placeholder).

    >>> Identity(54, unused="x")(x) is x    # True
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """Fully connected layer ``y = x W^T + b`` on the last dimension, as ``torch.nn.Linear``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias (default True).
        dtype: of the parameters (default float32).

    Shape: ``(*, in_features) -> (*, out_features)``.

    Attributes:
        weight: ``(out_features, in_features)``, initialised from ``U(-k, k)`` with
            ``k = 1 / sqrt(in_features)`` (``kaiming_uniform_(a=sqrt(5))``).
        bias: ``(out_features,)``, from the same ``U(-k, k)``.

    >>> fc = Linear(20, 30)
    >>> fc(randn(128, 20)).shape    # (128, 30)

    See https://pytorch.org/docs/stable/generated/torch.nn.Linear.html
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in_features = _size(in_features, "in_features")
        self.out_features = _size(out_features, "out_features")
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(a=sqrt(5))``, i.e. U(+-1/sqrt(in_features)),
        and the bias from the same range (PyTorch issue 57109)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
