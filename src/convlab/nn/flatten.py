"""``Flatten`` and ``Unflatten``: reshape between feature maps and feature vectors."""

from __future__ import annotations

import math
import numbers

import numpy as np

from convlab.autograd import Tensor
from convlab.nn.module import Module

__all__ = ["Flatten", "Unflatten"]


def _tensor(input) -> Tensor:
    if isinstance(input, Tensor):
        return input
    if isinstance(input, np.ndarray):
        return Tensor(input)
    raise TypeError(f"expected a Tensor or numpy.ndarray as input, but got {type(input).__name__}")


class Flatten(Module):
    """Merge the dimensions ``start_dim..end_dim`` into one (by default all but the batch).

    Shape: ``(N, *dims) -> (N, prod(dims))`` with the defaults ``start_dim=1, end_dim=-1``.

    >>> Flatten()(randn(32, 16, 5, 5)).shape    # (32, 400)

    See https://pytorch.org/docs/stable/generated/torch.nn.Flatten.html
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input) -> Tensor:
        return _tensor(input).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def _unflattened_shape(shape: tuple[int, ...], dim: int, sizes: tuple[int, ...]):
    """The shape after splitting dimension ``dim`` into ``sizes`` (one may be -1)."""
    n = max(len(shape), 1)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"unflatten: dim must be an int, but got dim={dim!r}")
    if not shape:
        raise RuntimeError(f"unflatten: Dimension specified as {dim} but tensor has no dimensions")
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    dim = int(dim) % n
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    size = shape[dim]
    if sizes.count(-1) > 1:
        raise RuntimeError(
            f"unflatten: only one dimension can be inferred, but got sizes {list(sizes)}"
        )
    for i, s in enumerate(sizes):
        if s < -1:
            raise RuntimeError(
                f"unflatten: invalid shape dimension {s} at index {i} of shape {list(sizes)}"
            )
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0:
            raise RuntimeError(
                f"unflatten: cannot reshape dimension {dim} of size {size} into shape "
                f"{list(sizes)} because the unspecified dimension size -1 can be any value and "
                "is ambiguous"
            )
        if size % known == 0:
            sizes = tuple(size // known if s == -1 else s for s in sizes)
            known = size
    if known != size:
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim "
            f"{dim} ({size}) in the input tensor"
        )
    return shape[:dim] + tuple(sizes) + shape[dim + 1 :]


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size`` (one entry may be -1).

    Shape: ``(*, S, *) -> (*, U1, ..., Un, *)`` with ``prod(U) == S``.

    >>> Unflatten(1, (16, 5, 5))(randn(32, 400)).shape    # (32, 16, 5, 5)

    See https://pytorch.org/docs/stable/generated/torch.nn.Unflatten.html
    """

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                "unflattened_size must be a tuple of ints, but found type "
                f"{type(unflattened_size).__name__}"
            )
        for i, elem in enumerate(unflattened_size):
            if isinstance(elem, bool) or not isinstance(elem, numbers.Integral):
                raise TypeError(
                    "unflattened_size must be tuple of ints, but found element of type "
                    f"{type(elem).__name__} at pos {i}"
                )
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input) -> Tensor:
        x = _tensor(input)
        sizes = tuple(int(s) for s in self.unflattened_size)
        return x.reshape(_unflattened_shape(x.shape, self.dim, sizes))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
