"""Activation layers with torch.nn's names, arguments and reprs; each calls its functional.

Only ``PReLU`` holds state (its learned slopes); the others store their arguments.
"""

from __future__ import annotations

import numpy as np

from convlab.autograd import Tensor
from convlab.nn import functional as F
from convlab.nn.module import Module, Parameter

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "LeakyReLU",
    "LogSoftmax",
    "Mish",
    "PReLU",
    "ReLU",
    "ReLU6",
    "SELU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmin",
    "Softplus",
    "Tanh",
]


class _Inplace(Module):
    """An activation whose only argument is ``inplace``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """``max(x, 0)`` element-wise. Shape: any, output as input.

    >>> ReLU()(tensor([-1.0, 2.0]))         # tensor([0., 2.])

    See https://pytorch.org/docs/stable/generated/torch.nn.ReLU.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, inplace=self.inplace)


class SELU(_Inplace):
    """``scale * (max(0, x) + min(0, alpha * (exp(x) - 1)))``, alpha ~ 1.6733, scale ~ 1.0507.

    See https://pytorch.org/docs/stable/generated/torch.nn.SELU.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.selu(input, inplace=self.inplace)


class SiLU(_Inplace):
    """``x * sigmoid(x)``. See https://pytorch.org/docs/stable/generated/torch.nn.SiLU.html"""

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input, inplace=self.inplace)


class Mish(_Inplace):
    """``x * tanh(softplus(x))``. See https://pytorch.org/docs/stable/generated/torch.nn.Mish.html"""

    def forward(self, input: Tensor) -> Tensor:
        return F.mish(input, inplace=self.inplace)


class Hardsigmoid(_Inplace):
    """``clamp(x / 6 + 1/2, 0, 1)``.

    See https://pytorch.org/docs/stable/generated/torch.nn.Hardsigmoid.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.hardsigmoid(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return ""  # torch's repr leaves inplace out for this layer


class Hardswish(_Inplace):
    """``x * clamp(x / 6 + 1/2, 0, 1)``.

    See https://pytorch.org/docs/stable/generated/torch.nn.Hardswish.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.hardswish(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return ""  # torch's repr leaves inplace out for this layer


class Hardtanh(Module):
    """Clamp to ``[min_val, max_val]`` (``max_val`` must exceed ``min_val``).

    ``min_value``/``max_value`` are PyTorch's deprecated spellings and override when given.

    >>> Hardtanh(-2, 2)(tensor([-3.0, 1.0]))   # tensor([-2., 1.])

    See https://pytorch.org/docs/stable/generated/torch.nn.Hardtanh.html
    """

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> None:
        super().__init__()
        if min_value is not None:
            min_val = min_value
        if max_value is not None:
            max_val = max_value
        if not max_val > min_val:
            raise ValueError(f"max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"min_val={self.min_val}, max_val={self.max_val}{inplace}"


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)``. See https://pytorch.org/docs/stable/generated/torch.nn.ReLU6.html"""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``x`` for ``x > 0``, else ``negative_slope * x``.

    >>> LeakyReLU(0.1)(tensor([-2.0]))      # tensor([-0.2])

    See https://pytorch.org/docs/stable/generated/torch.nn.LeakyReLU.html
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"negative_slope={self.negative_slope}{inplace}"


class ELU(Module):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    See https://pytorch.org/docs/stable/generated/torch.nn.ELU.html
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"alpha={self.alpha}{inplace}"


class CELU(ELU):
    """``x`` for ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``.

    See https://pytorch.org/docs/stable/generated/torch.nn.CELU.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace)


class GELU(Module):
    """``x * Phi(x)``, or its tanh approximation with ``approximate='tanh'``.

    See https://pytorch.org/docs/stable/generated/torch.nn.GELU.html
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``. See https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html"""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent. See https://pytorch.org/docs/stable/generated/torch.nn.Tanh.html"""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold``.

    See https://pytorch.org/docs/stable/generated/torch.nn.Softplus.html
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """``x`` for ``x > 0``, else ``a * x`` with ``a`` learned: one slope shared, or one per
    channel (dim 1) when ``num_parameters`` is the channel count.

    Attributes:
        weight: ``(num_parameters,)``, filled with ``init``.

    >>> PReLU(3)(randn(2, 3, 4, 4)).shape      # (2, 3, 4, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.PReLU.html
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.weight = Parameter(np.empty(num_parameters, dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.weight.data[...] = self.init

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class _SoftmaxBase(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """Softmax along ``dim`` (each slice sums to 1). ``dim=None`` warns, as torch.

    >>> Softmax(dim=1)(randn(2, 3)).sum(1)     # tensor([1., 1.])

    See https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim, _stacklevel=5)


class LogSoftmax(_SoftmaxBase):
    """``log(softmax(x))`` along ``dim``, computed stably.

    See https://pytorch.org/docs/stable/generated/torch.nn.LogSoftmax.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim, _stacklevel=5)


class Softmin(_SoftmaxBase):
    """``softmax(-x)`` along ``dim``.

    See https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.softmin(input, self.dim, _stacklevel=5)
