"""Normalisation layers: ``BatchNorm1d/2d/3d``, ``LayerNorm`` and ``GroupNorm``.

Batch norm keeps running statistics in buffers (``running_mean``, ``running_var``,
``num_batches_tracked``: PyTorch's ``state_dict`` names) and uses them in evaluation mode.
"""

from __future__ import annotations

import numbers

import numpy as np

from convlab.autograd import Tensor
from convlab.nn import functional as F
from convlab.nn import init
from convlab.nn.module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LayerNorm"]


def _count(value, name: str) -> int:
    """A number of features/channels: a non-negative int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, but got {name}={value!r}")
    if value < 0:
        raise RuntimeError(
            f"Trying to create tensor with negative dimension {value}: {name} must be "
            f"non-negative, but got {name}={value}"
        )
    return int(value)


def _dtype(dtype) -> np.dtype:
    return np.dtype(np.float32 if dtype is None else dtype)


def _add_affine(module: Module, shape, affine: bool, bias: bool, dtype) -> None:
    """Register the learned scale (``weight``) and shift (``bias``), or None for each."""
    if affine:
        module.weight = Parameter(np.empty(shape, dtype))
        if bias:
            module.bias = Parameter(np.empty(shape, dtype))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module: Module) -> None:
    """Weight 1, bias 0: the normalised output passes through unchanged at first."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """Shared state and forward of ``BatchNorm1d/2d/3d`` (PyTorch's ``_BatchNorm``)."""

    _ranks: tuple[int, ...] = ()
    _rank_text = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = _count(num_features, "num_features")
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = _dtype(dtype)
        _add_affine(self, self.num_features, affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        """Reset the running statistics, and weight 1 and bias 0."""
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input) -> None:
        ndim = input.ndim
        if ndim not in self._ranks:
            raise ValueError(f"expected {self._rank_text} input (got {ndim}D input)")

    def forward(self, input) -> Tensor:
        if not isinstance(input, (Tensor, np.ndarray)):
            raise TypeError(
                f"{type(self).__name__}: expected a Tensor or numpy.ndarray as input, but got "
                f"{type(input).__name__}"
            )
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.data)
        # Batch statistics in training mode, and in eval mode when there are no running ones.
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        # Running statistics are updated only when they are tracked, in training mode.
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def _upgrade_state_dict(self, state: dict[str, np.ndarray], prefix: str) -> None:
        # Checkpoints from before num_batches_tracked existed (PyTorch < 0.4.1) lack it.
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and key not in state:
            state[key] = self.num_batches_tracked.data.copy()

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)``, per channel (Ioffe & Szegedy, 2015).

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta``: in training mode over the batch
    (biased variance), updating ``running_mean``/``running_var`` with
    ``running = (1 - momentum) * running + momentum * batch_stat`` (unbiased variance;
    ``momentum=None`` keeps a cumulative average); in eval mode from the running statistics.

    Args: num_features (C), eps=1e-5, momentum=0.1 (or None), affine=True (learn gamma, beta),
    track_running_stats=True, and keyword-only bias=True.

    >>> bn = BatchNorm1d(100)
    >>> bn(randn(20, 100)).shape    # (20, 100)

    See https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html
    """

    _ranks = (2, 3)
    _rank_text = "2D or 3D"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)``, per channel; see ``BatchNorm1d``.

    >>> BatchNorm2d(16)(randn(8, 16, 32, 32)).shape    # (8, 16, 32, 32)
    """

    _ranks = (4,)
    _rank_text = "4D"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of ``(N, C, D, H, W)``, per channel; see ``BatchNorm1d``."""

    _ranks = (5,)
    _rank_text = "5D"


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` (Ba et al., 2016).

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta``, the statistics of each sample taken
    over its last ``len(normalized_shape)`` dimensions; gamma and beta have that shape
    (elementwise affine).

    Args: normalized_shape (int or tuple), eps=1e-5, elementwise_affine=True, bias=True.

    >>> LayerNorm(10)(randn(20, 5, 10)).shape    # (20, 5, 10)

    See https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral) and not isinstance(
            normalized_shape, bool
        ):
            normalized_shape = (normalized_shape,)
        if isinstance(normalized_shape, (str, bytes)) or not hasattr(normalized_shape, "__iter__"):
            raise TypeError(
                "normalized_shape must be an int or a tuple of ints, but got "
                f"normalized_shape={normalized_shape!r}"
            )
        self.normalized_shape = tuple(
            _count(s, "normalized_shape") for s in tuple(normalized_shape)
        )
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = _dtype(dtype)
        _add_affine(self, self.normalized_shape, elementwise_affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight 1, bias 0."""
        _reset_affine(self)

    def forward(self, input) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Group normalisation: per sample, over groups of ``num_channels / num_groups`` channels
    (Wu & He, 2018).

    Args: num_groups, num_channels (divisible by num_groups), eps=1e-5, affine=True (per-channel
    gamma and beta), and keyword-only bias=True.

    Shape: ``(N, C, *) -> (N, C, *)``.

    >>> GroupNorm(3, 6)(randn(20, 6, 10, 10)).shape    # (20, 6, 10, 10)

    See https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral):
            raise TypeError(f"num_groups must be an int, but got num_groups={num_groups!r}")
        num_channels = _count(num_channels, "num_channels")
        if num_groups == 0:
            raise ZeroDivisionError(
                "integer modulo by zero: num_groups must be positive, but got num_groups=0"
            )
        if num_channels % num_groups != 0:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.num_groups = int(num_groups)
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        dtype = _dtype(dtype)
        _add_affine(self, num_channels, affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight 1, bias 0."""
        _reset_affine(self)

    def forward(self, input) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )
