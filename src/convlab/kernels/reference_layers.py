"""Slow reference versions of the linear and normalisation layers, straight from the definitions.

For tests only: plain Python loops over every output element, sums with ``math.fsum``, float64
throughout. Nothing here is vectorised or shared with ``convlab.nn.functional.layers``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "batch_norm_reference",
    "dropout_reference",
    "group_norm_reference",
    "layer_norm_reference",
    "linear_reference",
]


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _biased_var(values: list[float]) -> float:
    m = _mean(values)
    return math.fsum((v - m) ** 2 for v in values) / len(values)


def linear_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``y[..., o] = sum_i x[..., i] * weight[o, i] + bias[o]`` for a 2-D weight."""
    out_features, in_features = weight.shape
    y = np.zeros(x.shape[:-1] + (out_features,))
    for lead in itertools.product(*(range(s) for s in x.shape[:-1])):
        for o in range(out_features):
            total = math.fsum(
                float(x[lead + (i,)]) * float(weight[o, i]) for i in range(in_features)
            )
            y[lead + (o,)] = total + (0.0 if bias is None else float(bias[o]))
    return y


def batch_norm_reference(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Return ``(y, new_running_mean, new_running_var)`` for ``(N, C, *)`` input.

    Per channel c, over all samples and positions: ``y = (x - mu) / sqrt(var + eps) * w + b``
    with the batch mean and biased variance in training (then
    ``running <- (1 - momentum) * running + momentum * stat`` with the unbiased variance), or the
    running statistics in evaluation.
    """
    channels = x.shape[1]
    y = np.zeros(x.shape)
    new_mean = None if running_mean is None else running_mean.astype(np.float64).copy()
    new_var = None if running_var is None else running_var.astype(np.float64).copy()
    for c in range(channels):
        positions = [
            (n, c) + rest
            for n in range(x.shape[0])
            for rest in itertools.product(*(range(s) for s in x.shape[2:]))
        ]
        values = [float(x[p]) for p in positions]
        if training:
            mu, var = _mean(values), _biased_var(values)
            if new_mean is not None:
                count = len(values)
                unbiased = var * count / (count - 1)
                new_mean[c] = (1 - momentum) * new_mean[c] + momentum * mu
                new_var[c] = (1 - momentum) * new_var[c] + momentum * unbiased
        else:
            mu, var = float(running_mean[c]), float(running_var[c])
        w = 1.0 if weight is None else float(weight[c])
        b = 0.0 if bias is None else float(bias[c])
        for p, v in zip(positions, values):
            y[p] = (v - mu) / math.sqrt(var + eps) * w + b
    return y, new_mean, new_var


def layer_norm_reference(
    x: np.ndarray,
    normalized_shape: tuple[int, ...],
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    eps: float,
) -> np.ndarray:
    """Normalise each sample over its trailing ``normalized_shape``; elementwise affine."""
    k = len(normalized_shape)
    y = np.zeros(x.shape)
    inner = list(itertools.product(*(range(s) for s in normalized_shape)))
    for lead in itertools.product(*(range(s) for s in x.shape[: x.ndim - k])):
        values = [float(x[lead + i]) for i in inner]
        mu, var = _mean(values), _biased_var(values)
        for i, v in zip(inner, values):
            w = 1.0 if weight is None else float(weight[i])
            b = 0.0 if bias is None else float(bias[i])
            y[lead + i] = (v - mu) / math.sqrt(var + eps) * w + b
    return y


def group_norm_reference(
    x: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    eps: float,
) -> np.ndarray:
    """Normalise each (sample, group of C / G consecutive channels); per-channel affine."""
    n_batch, channels = x.shape[:2]
    per_group = channels // num_groups
    spatial = list(itertools.product(*(range(s) for s in x.shape[2:])))
    y = np.zeros(x.shape)
    for n in range(n_batch):
        for g in range(num_groups):
            members = [
                (n, c) + s for c in range(g * per_group, (g + 1) * per_group) for s in spatial
            ]
            values = [float(x[m]) for m in members]
            mu, var = _mean(values), _biased_var(values)
            for m, v in zip(members, values):
                c = m[1]
                w = 1.0 if weight is None else float(weight[c])
                b = 0.0 if bias is None else float(bias[c])
                y[m] = (v - mu) / math.sqrt(var + eps) * w + b
    return y


def dropout_reference(x: np.ndarray, keep: np.ndarray, p: float) -> np.ndarray:
    """Inverted dropout with a given keep mask (broadcast over x): ``x * keep / (1 - p)``."""
    keep = np.broadcast_to(keep, x.shape)
    y = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        y[index] = float(x[index]) / (1 - p) if keep[index] else 0.0
    return y
