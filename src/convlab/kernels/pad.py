"""Padding of the trailing dimensions, in PyTorch's four modes, and its adjoint.

``padding`` is canonical here: a tuple of ``(low, high)`` pairs for the last ``len(padding)``
dimensions, in natural order (first padded dimension first). ``constant`` accepts negative
amounts, which crop. Reflect, replicate and circular map each output position to one input
position; their backward adds the output gradient back through that map.
"""

from __future__ import annotations

import numpy as np

Pads = tuple[tuple[int, int], ...]

__all__ = ["pad_forward", "pad_backward", "source_indices"]


def source_indices(size: int, low: int, high: int, mode: str) -> np.ndarray:
    """For each output position along one dimension, the input position it copies."""
    positions = np.arange(-low, size + high)
    if mode == "reflect":
        period = 2 * (size - 1)
        if period == 0:
            return np.zeros_like(positions)
        folded = np.mod(positions, period)
        return np.where(folded < size, folded, period - folded)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "circular":
        return np.mod(positions, size)
    raise ValueError(f"unknown padding mode {mode!r}")


def _constant(x: np.ndarray, padding: Pads, value: float) -> np.ndarray:
    lead = x.ndim - len(padding)
    dims = x.shape[lead:]
    out_dims = tuple(s + lo + hi for s, (lo, hi) in zip(dims, padding))
    out = np.full(x.shape[:lead] + out_dims, value, dtype=x.dtype)
    src = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for s, (lo, hi) in zip(dims, padding))
    dst = tuple(slice(max(lo, 0), o - max(hi, 0)) for o, (lo, hi) in zip(out_dims, padding))
    out[(Ellipsis,) + dst] = x[(Ellipsis,) + src]
    return out


def pad_forward(x: np.ndarray, padding: Pads, mode: str = "constant", value: float = 0.0):
    """Pad the last ``len(padding)`` dimensions of ``x``."""
    if mode == "constant":
        return _constant(x, padding, value)
    lead = x.ndim - len(padding)
    out = x
    for axis, (lo, hi) in enumerate(padding, start=lead):
        out = np.take(out, source_indices(x.shape[axis], lo, hi, mode), axis=axis)
    return out


def pad_backward(
    grad_out: np.ndarray, input_shape: tuple[int, ...], padding: Pads, mode: str = "constant"
) -> np.ndarray:
    """Gradient of :func:`pad_forward` with respect to its input."""
    lead = len(input_shape) - len(padding)
    if mode == "constant":
        # The adjoint of padding by (lo, hi) is cropping by (lo, hi): padding by the negatives.
        return _constant(grad_out, tuple((-lo, -hi) for lo, hi in padding), 0.0)
    grad = grad_out
    for axis, (lo, hi) in reversed(list(enumerate(padding, start=lead))):
        size = input_shape[axis]
        index = source_indices(size, lo, hi, mode)
        moved = np.moveaxis(grad, axis, 0)
        acc = np.zeros((size,) + moved.shape[1:], dtype=grad.dtype)
        # Positions inside the input copy themselves; only the borders need a scatter-add.
        inner = slice(max(lo, 0), max(lo, 0) + size)
        if np.array_equal(index[inner], np.arange(size)):
            acc += moved[inner]
            outer = np.r_[0 : inner.start, inner.stop : len(index)]
            np.add.at(acc, index[outer], moved[outer])
        else:
            np.add.at(acc, index, moved)
        grad = np.moveaxis(acc, 0, axis)
    return np.ascontiguousarray(grad)
