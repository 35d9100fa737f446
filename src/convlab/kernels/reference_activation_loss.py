"""Slow loop versions of the activations and losses, straight from their definitions; tests only.

Each activation is a scalar function applied element by element with the ``math`` module; each
loss loops over the samples (and spatial positions) and the classes exactly as the textbook
formula is written. Derivatives use PyTorch's conventions at the kinks, stated beside each one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_GRADS",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "elementwise",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "prelu",
    "prelu_grads",
    "smooth_l1_loss",
    "softmax",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _phi(x: float) -> float:
    """The standard normal density."""
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _softplus(x: float, beta: float = 1.0, threshold: float = 20.0) -> float:
    if beta * x > threshold:
        return x
    return math.log1p(math.exp(beta * x)) / beta


def _gelu_tanh_inner(x: float) -> float:
    return math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)


# name -> f(x, **params): the definition of each activation on one number.
ACTIVATIONS: dict[str, Callable[..., float]] = {
    "relu": lambda x: max(x, 0.0),
    "relu6": lambda x: min(max(x, 0.0), 6.0),
    "leaky_relu": lambda x, negative_slope=0.01: x if x > 0 else negative_slope * x,
    "elu": lambda x, alpha=1.0: x if x > 0 else alpha * math.expm1(x),
    "selu": lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x)),
    "celu": lambda x, alpha=1.0: x if x > 0 else alpha * math.expm1(x / alpha),
    "gelu": lambda x: x * _cdf(x),
    "gelu_tanh": lambda x: 0.5 * x * (1 + math.tanh(_gelu_tanh_inner(x))),
    "sigmoid": _sigmoid,
    "tanh": math.tanh,
    "softplus": _softplus,
    "silu": lambda x: x * _sigmoid(x),
    "mish": lambda x: x * math.tanh(_softplus(x)),
    "hardtanh": lambda x, min_val=-1.0, max_val=1.0: min(max(x, min_val), max_val),
    "hardsigmoid": lambda x: min(max(x / 6 + 0.5, 0.0), 1.0),
    "hardswish": lambda x: x * min(max(x + 3, 0.0), 6.0) / 6,
}

# torch's hardsigmoid backward multiplies by the float32 constant 1.0f / 6.0f.
_SIXTH_F32 = float(np.float32(1.0) / np.float32(6.0))


def _celu_grad(x: float, alpha: float = 1.0) -> float:
    # d/dx alpha (exp(x / alpha) - 1) = exp(x / alpha); torch forms 1 / alpha from alpha rounded
    # to float32 in the backward (derivatives.yaml: 1.0 / alpha.toFloat()).
    inv = 1.0 / float(np.float32(alpha))
    return 1.0 if x > 0 else inv * alpha * math.exp(x * inv)


def _gelu_tanh_grad(x: float) -> float:
    t = math.tanh(_gelu_tanh_inner(x))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi) * (
        1 + 3 * 0.044715 * x * x
    )


def _mish_grad(x: float) -> float:
    t = math.tanh(_softplus(x))
    return t + x * _sigmoid(x) * (1 - t * t)


# name -> f'(x, **params). At a kink the one-sided value torch picks is written out.
ACTIVATION_GRADS: dict[str, Callable[..., float]] = {
    "relu": lambda x: 1.0 if x > 0 else 0.0,  # relu'(0) = 0
    "relu6": lambda x: 1.0 if 0 < x < 6 else 0.0,  # 0 at both bounds
    "leaky_relu": lambda x, negative_slope=0.01: 1.0 if x > 0 else negative_slope,
    "elu": lambda x, alpha=1.0: 1.0 if x > 0 else alpha * math.exp(x),  # alpha at 0
    "selu": lambda x: SELU_SCALE * (1.0 if x > 0 else SELU_ALPHA * math.exp(x)),
    "celu": _celu_grad,  # 1 at 0
    "gelu": lambda x: _cdf(x) + x * _phi(x),
    "gelu_tanh": _gelu_tanh_grad,
    "sigmoid": lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
    "tanh": lambda x: 1 - math.tanh(x) ** 2,
    "softplus": lambda x, beta=1.0, threshold=20.0: (
        1.0 if beta * x > threshold else _sigmoid(beta * x)
    ),
    "silu": lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))),
    "mish": _mish_grad,
    "hardtanh": lambda x, min_val=-1.0, max_val=1.0: 1.0 if min_val < x < max_val else 0.0,
    "hardsigmoid": lambda x: _SIXTH_F32 if -3 < x < 3 else 0.0,  # 0 at -3 and 3
    "hardswish": lambda x: 0.0 if x <= -3 else (x / 3 + 0.5 if x < 3 else 1.0),
}


def elementwise(fn: Callable[..., float], x: np.ndarray, **params) -> np.ndarray:
    """Apply the scalar function ``fn`` to every element of ``x`` (float64 result)."""
    out = np.empty(x.shape, np.float64)
    for index in np.ndindex(x.shape):
        out[index] = fn(float(x[index]), **params)
    return out


def prelu(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """PReLU: ``x`` if positive, else ``a * x`` with ``a`` the slope of x's channel (dim 1)."""
    out = np.empty(x.shape, np.float64)
    for index in np.ndindex(x.shape):
        a = weight.flat[0] if weight.size == 1 else weight[index[1]]
        v = float(x[index])
        out[index] = v if v > 0 else a * v
    return out


def prelu_grads(x: np.ndarray, weight: np.ndarray, g: np.ndarray):
    """Gradients of ``sum(g * prelu(x, weight))``: slope ``a`` at 0, and dL/da = sum g x."""
    grad_x = np.empty(x.shape, np.float64)
    grad_w = np.zeros(weight.shape, np.float64)
    for index in np.ndindex(x.shape):
        c = 0 if weight.size == 1 else index[1]
        a = weight.flat[c]
        v = float(x[index])
        grad_x[index] = g[index] if v > 0 else a * g[index]
        if v <= 0:
            grad_w.flat[c] += v * g[index]
    return grad_x, grad_w


def softmax(x: np.ndarray, dim: int, log: bool = False) -> np.ndarray:
    """softmax / log_softmax by looping over every slice along ``dim``."""
    out = np.empty(x.shape, np.float64)
    moved = np.moveaxis(x, dim, -1)
    target = np.moveaxis(out, dim, -1)
    for index in np.ndindex(moved.shape[:-1]):
        row = [float(v) for v in moved[index]]
        top = max(row)
        total = sum(math.exp(v - top) for v in row)
        for j, v in enumerate(row):
            target[index + (j,)] = (v - top - math.log(total)) if log else math.exp(v - top) / total
    return out


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def _reduce(values: list[float], reduction: str, shape: tuple[int, ...], denominator=None):
    if reduction == "none":
        return np.array(values, np.float64).reshape(shape)
    total = math.fsum(values)
    if reduction == "sum":
        return np.float64(total)
    count = len(values) if denominator is None else denominator
    return np.float64(total / count) if count else np.float64("nan")


def _log_softmax_row(row: list[float]) -> list[float]:
    top = max(row)
    lse = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - lse for v in row]


def _positions(x: np.ndarray):
    """(batch index, spatial index) pairs of an (N, C, *spatial) array, and the class count."""
    spatial = x.shape[2:]
    return list(itertools.product(range(x.shape[0]), np.ndindex(spatial))), x.shape[1]


def cross_entropy(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """Cross-entropy of logits ``x`` (N, C, *d) or (C,) against class indices or probabilities.

    Class indices: ``l_n = -(1 - eps) w_{y_n} log p_{n,y_n} - eps/C sum_c w_c log p_{n,c}``, zero
    where ``y_n == ignore_index``; 'mean' divides by ``sum_n w_{y_n}`` over kept samples.
    Probabilities: ``l_n = -sum_c w_c t'_{n,c} log p_{n,c}`` with ``t' = (1 - eps) t + eps/C``;
    'mean' divides by the number of samples (N times the spatial size).
    """
    unbatched = x.ndim == 1
    probabilities = target.shape == x.shape
    if unbatched:
        x, target = x[None], (target[None] if probabilities else target.reshape(1))
    positions, classes = _positions(x)
    w = np.ones(classes) if weight is None else weight.astype(np.float64)
    eps = label_smoothing if label_smoothing > 0 else 0.0
    losses, weight_sum = [], 0.0
    for n, s in positions:
        logp = _log_softmax_row([float(x[(n, c) + s]) for c in range(classes)])
        if probabilities:
            t = [float(target[(n, c) + s]) * (1 - eps) + eps / classes for c in range(classes)]
            losses.append(-sum(w[c] * t[c] * logp[c] for c in range(classes)))
            continue
        y = int(target[(n,) + s])
        if y == ignore_index:
            losses.append(0.0)
            continue
        smooth = -sum(w[c] * logp[c] for c in range(classes))
        losses.append(-(1 - eps) * w[y] * logp[y] + eps / classes * smooth)
        weight_sum += w[y]
    shape = () if unbatched else (x.shape[0],) + x.shape[2:]
    return _reduce(losses, reduction, shape, None if probabilities else weight_sum)


def nll_loss(x, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """``l_n = -w_{y_n} x_{n,y_n}`` (0 where ignored); 'mean' divides by the kept weights."""
    unbatched = x.ndim == 1
    if unbatched:
        x, target = x[None], target.reshape(1)
    positions, classes = _positions(x)
    w = np.ones(classes) if weight is None else weight.astype(np.float64)
    losses, weight_sum = [], 0.0
    for n, s in positions:
        y = int(target[(n,) + s])
        if y == ignore_index:
            losses.append(0.0)
            continue
        losses.append(-w[y] * float(x[(n, y) + s]))
        weight_sum += w[y]
    shape = () if unbatched else (x.shape[0],) + x.shape[2:]
    return _reduce(losses, reduction, shape, weight_sum)


def _pointwise(fn, x: np.ndarray, target: np.ndarray, reduction: str, weight=None):
    x, target = np.broadcast_arrays(x, target)
    losses = [fn(float(a), float(b)) for a, b in zip(x.ravel(), target.ravel())]
    if weight is not None:
        weights = np.broadcast_to(weight, x.shape).ravel()
        losses = [v * float(w) for v, w in zip(losses, weights)]
        if reduction == "mean":
            return np.float64(math.fsum(losses) / math.fsum(weights))
    return _reduce(losses, reduction, x.shape)


def mse_loss(x, target, reduction: str = "mean", weight=None):
    """``(x - y)^2``; with ``weight``, 'mean' divides by the sum of the weights."""
    return _pointwise(lambda a, b: (a - b) ** 2, x, target, reduction, weight)


def l1_loss(x, target, reduction: str = "mean", weight=None):
    """``|x - y|``."""
    return _pointwise(lambda a, b: abs(a - b), x, target, reduction, weight)


def smooth_l1_loss(x, target, reduction: str = "mean", beta: float = 1.0):
    """``0.5 (x - y)^2 / beta`` where ``|x - y| < beta``, else ``|x - y| - beta / 2``."""

    def fn(a: float, b: float) -> float:
        d = abs(a - b)
        return 0.5 * d * d / beta if d < beta else d - 0.5 * beta

    return _pointwise(fn, x, target, reduction)


def binary_cross_entropy(x, target, weight=None, reduction: str = "mean"):
    """``-w (y log x + (1 - y) log(1 - x))`` with each log clamped to at least -100."""

    def fn(p: float, y: float) -> float:
        log_p = max(math.log(p), -100.0) if p > 0 else -100.0
        log_q = max(math.log(1 - p), -100.0) if p < 1 else -100.0
        return -(y * log_p + (1 - y) * log_q)

    losses = _pointwise(fn, x, target, "none")
    if weight is not None:
        losses = losses * np.broadcast_to(weight, losses.shape)
    return _reduce(list(losses.ravel()), reduction, losses.shape)


def binary_cross_entropy_with_logits(x, target, weight=None, pos_weight=None, reduction="mean"):
    """``-w (p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))``, ``p`` the positive weight."""
    shape = x.shape
    pw = np.ones(shape) if pos_weight is None else np.broadcast_to(pos_weight, shape)
    w = np.ones(shape) if weight is None else np.broadcast_to(weight, shape)
    losses = []
    for index in np.ndindex(shape):
        v, y = float(x[index]), float(target[index])
        log_sig = -math.log1p(math.exp(-v)) if v >= 0 else v - math.log1p(math.exp(v))
        log_one_minus = log_sig - v  # log(1 - sigmoid(v)) = log sigmoid(v) - v
        losses.append(-float(w[index]) * (float(pw[index]) * y * log_sig + (1 - y) * log_one_minus))
    return _reduce(losses, reduction, shape)


def kl_div(x, target, reduction: str = "mean", log_target: bool = False):
    """``y (log y - x)`` (0 where y = 0), or ``e^y (y - x)`` for a log-space target.

    'batchmean' divides the sum by the batch size (dim 0).
    """
    x, target = np.broadcast_arrays(x, target)

    def fn(a: float, y: float) -> float:
        if log_target:
            return math.exp(y) * (y - a)
        return (y * math.log(y) if y > 0 else 0.0) - y * a

    losses = [fn(float(a), float(b)) for a, b in zip(x.ravel(), target.ravel())]
    if reduction == "batchmean":
        total = math.fsum(losses)
        return np.float64(total / x.shape[0] if x.ndim else total)
    return _reduce(losses, reduction, x.shape)
