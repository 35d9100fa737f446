"""Loss functions: PyTorch's argument checks and messages, then one autograd ``Function`` each.

``cross_entropy`` is a single fused Function: log-softmax and the negative log-likelihood in the
forward, ``softmax - (smoothed) one-hot``, scaled, in the backward. Every loss takes
``reduction='none' | 'mean' | 'sum'`` and the deprecated ``size_average``/``reduce`` pair, in
PyTorch's positional order. Inputs may be ``Tensor`` or NumPy arrays; results are ``Tensor``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from convlab.autograd import Function, Tensor, is_grad_enabled, sum_to_shape
from convlab.autograd.dtypes import result_type
from convlab.autograd.ops import _broadcast_shape
from convlab.nn.functional._args import as_array
from convlab.nn.functional.activation import torch_dtype_name

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]

_REDUCTIONS = ("none", "mean", "sum")
# torch's binary_cross_entropy backward divides by max(x (1 - x), EPSILON), EPSILON = 1e-12f.
_BCE_EPSILON = float(np.float32(1e-12))


# ---------------------------------------------------------------------------------------------
# Argument checking shared by the losses
# ---------------------------------------------------------------------------------------------


def _array(value: Any, op: str, name: str) -> np.ndarray:
    return as_array(value, name, op)


def _optional(value: Any, op: str, name: str) -> np.ndarray | None:
    return None if value is None else _array(value, op, name)


def _legacy_reduction(size_average: bool | None, reduce: bool | None) -> str:
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
        "instead.",
        UserWarning,
        stacklevel=4,
    )
    return reduction


def check_reduction(reduction: Any) -> str:
    """Return ``reduction`` if valid ('elementwise_mean' warns and means 'mean'), else raise
    torch's ValueError."""
    if isinstance(reduction, str):
        if reduction == "elementwise_mean":
            warnings.warn(
                "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
                UserWarning,
                stacklevel=4,
            )
            return "mean"
        if reduction in _REDUCTIONS:
            return reduction
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduction(reduction: Any, size_average: bool | None, reduce: bool | None) -> str:
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return check_reduction(reduction)


def _not_differentiable(value: Any, arg: str, function: str) -> None:
    """torch refuses, at the call, a ``weight`` that requires grad where it has no derivative."""
    if isinstance(value, Tensor) and value.requires_grad and is_grad_enabled():
        raise RuntimeError(
            f"The function '{function}' is not differentiable with respect to argument '{arg}'. "
            "This input cannot have requires_grad True."
        )


def _float_result(dtype: np.dtype, kernel: str) -> np.dtype:
    if dtype.kind != "f":
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{torch_dtype_name(dtype)}'")
    return dtype


def _size_warning(x: np.ndarray, t: np.ndarray) -> None:
    if x.shape != t.shape:
        warnings.warn(
            f"Using a target size ({list(t.shape)}) that is different to the input size "
            f"({list(x.shape)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=4,
        )


def _check_broadcasts_to(value: np.ndarray, shape: tuple[int, ...]) -> None:
    """``value`` must broadcast to ``shape`` without growing it (torch's in-place multiply)."""
    full = _broadcast_shape(shape, value.shape)
    if full != tuple(shape):
        raise RuntimeError(
            f"output with shape {list(shape)} doesn't match the broadcast shape {list(full)}"
        )


def _scale(g: np.ndarray, reduction: str, count: Any) -> np.ndarray:
    """d(reduced loss)/d(each element's loss) times the incoming gradient ``g``."""
    if reduction == "mean":
        return g / count
    return g


def _reduce(loss: np.ndarray, reduction: str, dtype: np.dtype) -> np.ndarray:
    if reduction == "none":
        return loss
    total = loss.sum(dtype=dtype)
    if reduction == "sum":
        return np.asarray(total, dtype)
    return np.asarray(total / loss.size, dtype)  # 0/0 = nan for an empty input, as torch


# ---------------------------------------------------------------------------------------------
# Class-index targets: cross_entropy and nll_loss
# ---------------------------------------------------------------------------------------------


def _class_count(x: np.ndarray) -> int:
    return x.shape[0] if x.ndim == 1 else x.shape[1]


def _check_class_target(
    x: np.ndarray, t: np.ndarray, w: np.ndarray | None, ignore_index: int, prefix: str = ""
) -> np.ndarray:
    """Check a class-index target against the input as torch's nll_loss_nd does; return the
    target as int64 in batched layout ``(N, *spatial)``."""
    if x.ndim == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    if x.ndim <= 2 and t.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if x.ndim == 1:
        if t.ndim == 1 and t.size != 1:
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {t.size}"
            )
    else:
        batch = t.shape[0] if t.ndim else 0
        if batch != x.shape[0]:
            raise ValueError(
                f"Expected input batch_size ({x.shape[0]}) to match target batch_size ({batch})."
            )
        expected = x.shape[:1] + x.shape[2:]
        if t.shape != expected:
            raise RuntimeError(f"Expected target size {list(expected)}, got {list(t.shape)}")
    if t.dtype not in (np.dtype(np.int64), np.dtype(np.uint8)):
        raise RuntimeError(
            f"expected target dtype to be Long or Byte, but got {torch_dtype_name(t.dtype)}"
        )
    classes = _class_count(x)
    if w is not None:
        if w.ndim != 1 or w.size != classes:
            raise RuntimeError(
                f"{prefix}weight tensor should be defined either for all {classes} classes or no "
                f"classes but got weight tensor of shape: {list(w.shape)}"
            )
        if w.dtype != x.dtype:
            raise RuntimeError(
                f"expected scalar type {torch_dtype_name(x.dtype)} but found "
                f"{torch_dtype_name(w.dtype)}"
            )
    target = t.astype(np.int64).reshape(1) if x.ndim == 1 else t.astype(np.int64, copy=False)
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(f"Target {target[bad].flat[0]} is out of bounds.")
    return target


def _log_softmax(x: np.ndarray, with_softmax: bool = False):
    """log_softmax along axis 1 of a batched ``(N, C, *spatial)`` array, max subtracted; with
    ``with_softmax`` also the softmax itself (from the same exponentials)."""
    if x.shape[1] == 0:
        return (x.copy(), x.copy()) if with_softmax else x.copy()
    logp = x - x.max(axis=1, keepdims=True)
    e = np.exp(logp)
    total = e.sum(axis=1, keepdims=True)
    logp -= np.log(total)
    if not with_softmax:
        return logp
    e /= total
    return logp, e


def _pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[n, index[n, ...], ...] along axis 1."""
    if values.shape[1] == 0:
        return np.zeros(index.shape, values.dtype)
    return np.take_along_axis(values, index[:, None], axis=1)[:, 0]


def _add_at_target(array: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """array[n, index[n, ...], ...] += values[n, ...] (one target per position: no clashes)."""
    if array.shape[1] == 0:
        return
    idx = index[:, None]
    np.put_along_axis(array, idx, np.take_along_axis(array, idx, axis=1) + values[:, None], 1)


def _channel_shape(ndim: int, classes: int) -> tuple[int, ...]:
    return (1, classes) + (1,) * (ndim - 2)


class _ClassIndexLoss(Function):
    """Shared state of the class-index losses: the target, its mask and the weights it picks."""

    @staticmethod
    def _setup(ctx, x, target, weight, ignore_index, reduction):
        ignored = target == ignore_index
        safe = np.where(ignored, 0, target)
        if weight is None or x.shape[1] == 0:
            picked_w = None if weight is None else np.zeros(target.shape, x.dtype)
            total = (~ignored).sum(dtype=x.dtype)
        else:
            picked_w = weight[safe]
            total = np.where(ignored, 0, picked_w).sum(dtype=x.dtype)
        ctx.ignored, ctx.safe, ctx.picked_w = ignored, safe, picked_w
        ctx.total, ctx.reduction = total, reduction
        return ignored, safe, picked_w, total

    @staticmethod
    def _target_coefficient(ctx, g, shape):
        """Per-position factor of d(loss)/d(-w_y logp_y): 0 where ignored."""
        scale = np.broadcast_to(
            _scale(g.reshape(shape) if ctx.reduction == "none" else g, ctx.reduction, ctx.total),
            shape,
        )
        weighted = scale if ctx.picked_w is None else scale * ctx.picked_w
        return scale, np.where(ctx.ignored, np.zeros((), weighted.dtype), weighted)


class CrossEntropyFunction(_ClassIndexLoss):
    """Fused log_softmax + nll_loss with label smoothing, on a batched ``(N, C, *d)`` input.

    ``l_n = (1 - eps) * (-w_y logp_y) + eps / C * (-sum_c w_c logp_c)``; 'mean' divides both
    terms by the summed weight of the kept targets. Backward: with ``d = dL/dlogp``,
    ``dL/dx = d - softmax * sum_c d``, which is ``softmax - onehot`` scaled for plain targets.
    """

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction, eps):
        unbatched = x.ndim == 1
        xb = x[None] if unbatched else x
        classes = xb.shape[1]
        ignored, safe, picked_w, total = _ClassIndexLoss._setup(
            ctx, xb, target, weight, ignore_index, reduction
        )
        logp, p = _log_softmax(xb, with_softmax=True)
        picked = _pick(logp, safe)
        nll = -picked if picked_w is None else -(picked * picked_w)
        zero = np.zeros((), xb.dtype)
        nll = np.where(ignored, zero, nll)
        smooth = None
        if eps:
            weighted = (
                logp if weight is None else logp * weight.reshape(_channel_shape(xb.ndim, classes))
            )
            smooth = np.where(ignored, zero, -weighted.sum(axis=1))
        ctx.save_for_backward(p, weight)
        ctx.unbatched, ctx.eps, ctx.classes = unbatched, eps, classes
        smooth_factor = eps / classes if classes else 0.0
        if reduction == "none":
            loss = nll if smooth is None else (1 - eps) * nll + smooth * smooth_factor
            return loss.reshape(()) if unbatched else loss
        nll_total = nll.sum(dtype=xb.dtype)
        smooth_total = None if smooth is None else smooth.sum(dtype=xb.dtype)
        if reduction == "mean":
            nll_total = nll_total / total
            smooth_total = None if smooth is None else smooth_total / total
        if smooth is None:
            return np.asarray(nll_total, xb.dtype)
        return np.asarray((1 - eps) * nll_total + smooth_total * smooth_factor, xb.dtype)

    @staticmethod
    def backward(ctx, g):
        p, weight = ctx.saved_tensors
        scale, coef = _ClassIndexLoss._target_coefficient(ctx, g, ctx.safe.shape)
        eps = ctx.eps
        coef = (1 - eps) * coef if eps else coef
        if not eps:
            grad = p * coef[:, None]
        else:
            # d = dL/dlogp = -s w_c - a onehot, s = eps/C * scale: grad = d - p * sum_c d.
            s = np.where(ctx.ignored, np.zeros((), scale.dtype), scale) * (eps / ctx.classes)
            if weight is None:
                grad = p * (ctx.classes * s + coef)[:, None] - s[:, None]
            else:
                wb = weight.reshape(_channel_shape(p.ndim, ctx.classes))
                grad = p * (s * weight.sum() + coef)[:, None] - s[:, None] * wb
        _add_at_target(grad, ctx.safe, -coef)
        return grad[0] if ctx.unbatched else grad


class NLLLossFunction(_ClassIndexLoss):
    """``l_n = -w_y x_{n,y}`` on a batched ``(N, C, *d)`` input; backward scatters ``-w_y``."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        unbatched = x.ndim == 1
        xb = x[None] if unbatched else x
        ignored, safe, picked_w, total = _ClassIndexLoss._setup(
            ctx, xb, target, weight, ignore_index, reduction
        )
        picked = _pick(xb, safe)
        loss = np.where(
            ignored, np.zeros((), xb.dtype), -picked if picked_w is None else -(picked * picked_w)
        )
        ctx.unbatched, ctx.shape = unbatched, xb.shape
        if reduction == "none":
            return loss.reshape(()) if unbatched else loss
        out = loss.sum(dtype=xb.dtype)
        return np.asarray(out / total if reduction == "mean" else out, xb.dtype)

    @staticmethod
    def backward(ctx, g):
        _, coef = _ClassIndexLoss._target_coefficient(ctx, g, ctx.safe.shape)
        grad = np.zeros(ctx.shape, coef.dtype)
        _add_at_target(grad, ctx.safe, -coef)
        return grad[0] if ctx.unbatched else grad


class CrossEntropyProbFunction(Function):
    """Cross-entropy against class probabilities: ``l_n = -sum_c w_c t'_{n,c} logp_{n,c}`` with
    ``t' = (1 - eps) t + eps / C``; 'mean' divides by the number of positions ``N * prod(d)``.

    Differentiable in the input, the target and the weight.
    """

    @staticmethod
    def forward(ctx, x, target, weight, reduction, eps, dtype):
        unbatched = x.ndim == 1
        xb, tb = (x[None], target[None]) if unbatched else (x, target)
        classes = xb.shape[1]
        logp = _log_softmax(xb).astype(dtype, copy=False)
        tb = tb.astype(dtype, copy=False)
        smoothed = tb * (1 - eps) + eps / classes if eps else tb
        wb = (
            None
            if weight is None
            else weight.astype(dtype).reshape(_channel_shape(xb.ndim, classes))
        )
        prod = logp * smoothed if wb is None else logp * smoothed * wb
        positions = xb.size // classes if classes else 0
        ctx.save_for_backward(logp, smoothed, wb)
        ctx.unbatched, ctx.eps, ctx.reduction, ctx.positions = unbatched, eps, reduction, positions
        ctx.weight_shape = None if weight is None else weight.shape
        if reduction == "none":
            loss = -prod.sum(axis=1)
            return loss.reshape(()) if unbatched else loss
        total = -prod.sum(dtype=dtype)
        if reduction == "mean":
            total = total / positions if xb.size else np.asarray(np.nan, dtype)
        return np.asarray(total, dtype)

    @staticmethod
    def backward(ctx, g):
        logp, smoothed, wb = ctx.saved_tensors
        if ctx.reduction == "none":
            g = g.reshape((1,) + g.shape) if ctx.unbatched else g
            dprod = -g[:, None]
        else:
            dprod = -_scale(g, ctx.reduction, ctx.positions)
        grad_x = grad_t = grad_w = None
        if ctx.needs_input_grad[0]:
            dlogp = dprod * smoothed if wb is None else dprod * smoothed * wb
            grad_x = dlogp - np.exp(logp) * dlogp.sum(axis=1, keepdims=True)
            grad_x = grad_x[0] if ctx.unbatched else grad_x
        if ctx.needs_input_grad[1]:
            grad_t = dprod * logp if wb is None else dprod * logp * wb
            if ctx.eps:
                grad_t = grad_t * (1 - ctx.eps)
            grad_t = np.broadcast_to(grad_t, logp.shape)
            grad_t = grad_t[0] if ctx.unbatched else grad_t
        if ctx.needs_input_grad[2]:
            per_class = np.broadcast_to(dprod * logp * smoothed, logp.shape)
            axes = tuple(a for a in range(logp.ndim) if a != 1)
            grad_w = per_class.sum(axis=axes).reshape(ctx.weight_shape)
        return grad_x, grad_t, grad_w


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities.

    Args:
        input: logits ``(N, C)``, ``(N, C, d1, ..., dK)`` or unbatched ``(C,)``.
        target: class indices (int64 or uint8) of shape ``(N,)``, ``(N, d1, ..., dK)`` or
            ``()``; or probabilities (floating) with the input's shape.
        weight: ``(C,)`` rescaling weight per class.
        ignore_index: class-index targets equal to it add nothing (and leave the mean's
            denominator alone). Probability targets need it negative.
        reduction: 'none' | 'mean' | 'sum'. With class indices, 'mean' divides by the summed
            weight of the kept targets (nan when none is kept); with probabilities, by the
            number of positions ``N * d1 * ... * dK``.
        label_smoothing: ``eps`` in [0, 1]: the target becomes ``(1 - eps) onehot + eps / C``.

    Shape: ``l_n = -(1 - eps) w_{y_n} log p_{n,y_n} - eps / C sum_c w_c log p_{n,c}`` with
    ``p = softmax(input)`` over dim 1 (dim 0 unbatched); 'none' gives the target's shape.

    >>> cross_entropy(tensor([[2.0, 0.0]]), tensor([0]))   # tensor(0.1269)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html
    """
    x = _array(input, "cross_entropy", "input")
    t = _array(target, "cross_entropy", "target")
    w = _optional(weight, "cross_entropy", "weight")
    reduction = _reduction(reduction, size_average, reduce)
    label_smoothing = float(label_smoothing)
    if x.ndim and x.dtype.kind != "f":
        kernel = "log_softmax_lastdim_kernel_impl" if x.ndim <= 2 else "log_softmax_kernel_impl"
        _float_result(x.dtype, kernel)
    if t.shape == x.shape:
        if t.dtype.kind != "f":
            raise RuntimeError(
                "Expected floating point type for target with class probabilities, got "
                f"{torch_dtype_name(t.dtype)}"
            )
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        if x.ndim == 0:
            raise ValueError("Expected 1 or more dimensions (got 0)")
        classes = _class_count(x)
        if w is not None and (w.ndim != 1 or w.size != classes):
            raise RuntimeError(
                f"cross_entropy: weight tensor should be defined either for all {classes} "
                f"classes or no classes but got weight tensor of shape: {list(w.shape)}"
            )
        eps = _smoothing(label_smoothing)
        dtype = result_type(*(a for a in (x, t, w) if a is not None))
        return CrossEntropyProbFunction.apply(input, target, weight, reduction, eps, dtype)
    eps = _smoothing(label_smoothing)
    labels = _check_class_target(x, t, w, ignore_index)
    _not_differentiable(weight, "weight", "nll_loss_forward")
    return CrossEntropyFunction.apply(input, labels, w, ignore_index, reduction, eps)


def _smoothing(label_smoothing: float) -> float:
    """torch checks (and applies) label smoothing only when it is positive."""
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError(
                f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}"
            )
        return label_smoothing
    return 0.0


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` at class-index ``target``.

    Shape: input ``(N, C, *d)`` or ``(C,)``, target ``(N, *d)`` or ``()``;
    ``l_n = -w_{y_n} input[n, y_n]``, 0 where ``y_n == ignore_index``; 'mean' divides by
    ``sum_n w_{y_n}`` over the kept targets.

    >>> nll_loss(tensor([[-0.1, -2.4]]), tensor([0]))      # tensor(0.1)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.nll_loss.html
    """
    x = _array(input, "nll_loss", "input")
    t = _array(target, "nll_loss", "target")
    w = _optional(weight, "nll_loss", "weight")
    reduction = _reduction(reduction, size_average, reduce)
    labels = _check_class_target(x, t, w, ignore_index)
    _float_result(x.dtype, "nll_loss_out_frame")
    _not_differentiable(weight, "weight", "nll_loss_forward")
    return NLLLossFunction.apply(input, labels, w, ignore_index, reduction)


# ---------------------------------------------------------------------------------------------
# Regression losses
# ---------------------------------------------------------------------------------------------


def _smooth_l1_value(d: np.ndarray, beta: float) -> np.ndarray:
    z = np.abs(d)
    return np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


def _smooth_l1_derivative(d: np.ndarray, beta: float) -> np.ndarray:
    one = np.ones((), d.dtype)
    return np.where(d <= -beta, -one, np.where(d >= beta, one, d / beta))


# kind -> (loss of d = x - y, its derivative in d); torch's l1 derivative is sign(d), 0 at 0.
_POINTWISE = {
    "mse": (lambda d, _: d * d, lambda d, _: 2 * d),
    "l1": (lambda d, _: np.abs(d), lambda d, _: np.sign(d)),
    "smooth_l1": (_smooth_l1_value, _smooth_l1_derivative),
}


class PointwiseLossFunction(Function):
    """``loss = f(x - y)`` element-wise over the broadcast shape, optionally weighted, reduced.

    ``kind`` is 'mse' (``d^2``), 'l1' (``|d|``) or 'smooth_l1' (``0.5 d^2 / beta`` below
    ``beta``, else ``|d| - beta / 2``). 'mean' divides by the number of elements, or by the sum
    of the weights when weighted (torch's weighted mse/l1).
    """

    @staticmethod
    def forward(ctx, x, target, weight, kind, reduction, dtype, param):
        d = x.astype(dtype, copy=False) - target.astype(dtype, copy=False)
        loss = _POINTWISE[kind][0](d, param)
        w = None if weight is None else weight.astype(dtype, copy=False)
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(d, w)
        ctx.shapes = (x.shape, target.shape, None if weight is None else weight.shape)
        ctx.kind, ctx.reduction, ctx.param, ctx.count = kind, reduction, param, 1
        if reduction == "none":
            return loss
        total = loss.sum(dtype=dtype)
        if reduction == "sum":
            return np.asarray(total, dtype)
        # Weighted: torch divides by the sum of the weight as given, not as broadcast.
        count = loss.size if w is None else w.sum(dtype=dtype)
        ctx.count, ctx.mean = count, total / count
        return np.asarray(total / count, dtype)

    @staticmethod
    def backward(ctx, g):
        d, w = ctx.saved_tensors
        x_shape, t_shape, w_shape = ctx.shapes
        value, derivative = _POINTWISE[ctx.kind]
        scale = _scale(g, ctx.reduction, ctx.count)
        grad_d = derivative(d, ctx.param) * scale
        if w is not None:
            grad_d = grad_d * w
        grad_x = sum_to_shape(grad_d, x_shape) if ctx.needs_input_grad[0] else None
        grad_t = sum_to_shape(-grad_d, t_shape) if ctx.needs_input_grad[1] else None
        grad_w = None
        if ctx.needs_input_grad[2]:
            # d(sum v w / sum w)/dw_i = (sum of v over w_i's copies) / W - mean / W for 'mean'.
            per = np.broadcast_to(value(d, ctx.param) * scale, d.shape)
            grad_w = sum_to_shape(per, w_shape)
            if ctx.reduction == "mean":
                grad_w = grad_w - ctx.mean * scale
        return grad_x, grad_t, grad_w


def _regression(kind: str, op: str, kernel: str, input, target, weight, reduction, param) -> Tensor:
    x = _array(input, op, "input")
    t = _array(target, op, "target")
    w = _optional(weight, op, "weight")
    _size_warning(x, t)
    shape = _broadcast_shape(x.shape, t.shape)
    dtype = result_type(x, t)
    if w is not None:
        if w.shape != x.shape:
            raise ValueError("Weights and input must have the same size.")
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'."
            )
        _broadcast_shape(shape, w.shape)
        dtype = result_type(x, t, w)
    if dtype.kind != "f":
        if reduction == "mean" and kernel == "l1_cpu":
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating "
                f"point or complex dtype. Got: {torch_dtype_name(dtype)}"
            )
        _float_result(dtype, kernel)
    return PointwiseLossFunction.apply(input, target, weight, kind, reduction, dtype, param)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error ``(x - y)^2``, element-wise over the broadcast shape.

    A target of another shape is broadcast, with PyTorch's warning. ``weight`` (the input's
    shape) multiplies each term; 'mean' then divides by the sum of the weights.

    >>> mse_loss(tensor([1.0, 2.0]), tensor([1.0, 4.0]))   # tensor(2.)

    See https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if weight is None:
        reduction = check_reduction(reduction)
    return _regression("mse", "mse_loss", "mse_cpu", input, target, weight, reduction, None)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean absolute error ``|x - y|``; the gradient at ``x == y`` is 0.

    >>> l1_loss(tensor([1.0, 2.0]), tensor([1.0, 4.0]))    # tensor(1.)

    See https://pytorch.org/docs/stable/generated/torch.nn.L1Loss.html
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if weight is None:
        reduction = check_reduction(reduction)
    return _regression("l1", "l1_loss", "l1_cpu", input, target, weight, reduction, None)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Huber-like loss: ``0.5 (x - y)^2 / beta`` where ``|x - y| < beta``, else
    ``|x - y| - beta / 2``; ``beta=0`` is the L1 loss.

    >>> smooth_l1_loss(tensor([0.0, 3.0]), tensor([0.5, 0.0]))  # tensor(1.3125)

    See https://pytorch.org/docs/stable/generated/torch.nn.SmoothL1Loss.html
    """
    reduction = _reduction(reduction, size_average, reduce)
    beta = float(beta)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0.0:
        return _regression("l1", "smooth_l1_loss", "l1_cpu", input, target, None, reduction, None)
    return _regression(
        "smooth_l1", "smooth_l1_loss", "smooth_l1_cpu", input, target, None, reduction, beta
    )


# ---------------------------------------------------------------------------------------------
# Binary cross-entropy
# ---------------------------------------------------------------------------------------------


class BinaryCrossEntropyFunction(Function):
    """``-w (y log x + (1 - y) log(1 - x))``, each log clamped at -100, as torch's kernel."""

    @staticmethod
    def forward(ctx, x, target, weight, reduction):
        floor = x.dtype.type(-100)
        loss = (target - 1) * np.maximum(np.log1p(-x), floor) - target * np.maximum(
            np.log(x), floor
        )
        w = None if weight is None else np.broadcast_to(weight.astype(x.dtype), x.shape)
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(x, target, w)
        ctx.reduction = reduction
        return _reduce(loss, reduction, x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, target, w = ctx.saved_tensors
        scale = _scale(g, ctx.reduction, x.size)
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            eps = x.dtype.type(_BCE_EPSILON)
            grad_x = scale * (x - target) / np.maximum((1 - x) * x, eps)
            grad_x = grad_x if w is None else grad_x * w
        if ctx.needs_input_grad[1]:
            grad_t = -np.log(x / (1 - x)) * scale  # -logit(x)
            grad_t = grad_t if w is None else grad_t * w
        return grad_x, grad_t


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of probabilities ``input`` in [0, 1] against ``target`` in [0, 1].

    Shape: input and target the same shape; ``weight`` broadcasts to it.
    ``l = -w (y log x + (1 - y) log(1 - x))`` with the logs clamped to >= -100, so that x = 0
    or 1 gives a finite loss.

    >>> binary_cross_entropy(tensor([0.9]), tensor([1.0]))  # tensor(0.1054)

    See https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html
    """
    x = _array(input, "binary_cross_entropy", "input")
    t = _array(target, "binary_cross_entropy", "target")
    w = _optional(weight, "binary_cross_entropy", "weight")
    reduction = _reduction(reduction, size_average, reduce)
    if t.shape != x.shape:
        raise ValueError(
            f"Using a target size ({list(t.shape)}) that is different to the input size "
            f"({list(x.shape)}) is deprecated. Please ensure they have the same size."
        )
    if w is not None:
        _check_broadcasts_to(w, x.shape)
    _float_result(x.dtype, "binary_cross_entropy")
    if t.dtype != x.dtype:
        raise RuntimeError(
            f"Found dtype {torch_dtype_name(t.dtype)} but expected {torch_dtype_name(x.dtype)}"
        )
    if not ((x >= 0) & (x <= 1)).all():
        raise RuntimeError("all elements of input should be between 0 and 1")
    if not ((t >= 0) & (t <= 1)).all():
        raise RuntimeError("all elements of target should be between 0 and 1")
    _not_differentiable(weight, "weight", "binary_cross_entropy")
    return BinaryCrossEntropyFunction.apply(input, target, w, reduction)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


class BinaryCrossEntropyWithLogitsFunction(Function):
    """``(1 - y) x - (1 + (p - 1) y) log sigmoid(x)``, times ``w``: stable for any logit."""

    @staticmethod
    def forward(ctx, x, target, weight, pos_weight, reduction, dtype):
        x = x.astype(dtype, copy=False)
        target = target.astype(dtype, copy=False)
        w = None if weight is None else weight.astype(dtype, copy=False)
        pw = None if pos_weight is None else pos_weight.astype(dtype, copy=False)
        log_sig = _log_sigmoid(x)
        if pw is not None:
            log_sig = log_sig * ((pw - 1) * target + 1)
        loss = (1 - target) * x - log_sig
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(x, target, w, pw)
        ctx.reduction = reduction
        return _reduce(loss, reduction, dtype)

    @staticmethod
    def backward(ctx, g):
        x, target, w, pw = ctx.saved_tensors
        scale = _scale(g, ctx.reduction, x.size)
        if w is not None:
            scale = scale * w
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            sig = 1 / (1 + np.exp(-x))
            if pw is None:
                grad_x = (sig - target) * scale
            else:
                tp = pw * target
                grad_x = ((tp + 1 - target) * sig - tp) * scale
        if ctx.needs_input_grad[1]:
            if pw is None:
                grad_t = -x * scale
            else:
                grad_t = (_log_sigmoid(-x) - _log_sigmoid(x) * pw) * scale
        return grad_x, grad_t


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula.

    Args:
        weight: broadcasts to the input's shape; multiplies each term.
        pos_weight: weight of the positive term, broadcast along the input (usually ``(C,)``
            for the last dim): ``l = -w (p y log s(x) + (1 - y) log(1 - s(x)))``.

    >>> binary_cross_entropy_with_logits(tensor([0.0]), tensor([1.0]))   # tensor(0.6931)

    See https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html
    """
    op = "binary_cross_entropy_with_logits"
    x = _array(input, op, "input")
    t = _array(target, op, "target")
    w = _optional(weight, op, "weight")
    pw = _optional(pos_weight, op, "pos_weight")
    reduction = _reduction(reduction, size_average, reduce)
    if t.shape != x.shape:
        raise ValueError(
            f"Target size ({list(t.shape)}) must be the same as input size ({list(x.shape)})"
        )
    for extra in (pw, w):
        if extra is not None:
            _check_broadcasts_to(extra, x.shape)
    dtype = result_type(*(a for a in (x, t, w, pw) if a is not None))
    _float_result(x.dtype, "binary_cross_entropy_with_logits")
    if t.dtype.kind != "f":
        raise RuntimeError(
            f"result type {torch_dtype_name(dtype)} can't be cast to the desired output type "
            f"{torch_dtype_name(t.dtype)}"
        )
    _not_differentiable(weight, "weight", op)
    _not_differentiable(pos_weight, "pos_weight", op)
    return BinaryCrossEntropyWithLogitsFunction.apply(input, target, w, pw, reduction, dtype)


# ---------------------------------------------------------------------------------------------
# Kullback-Leibler divergence
# ---------------------------------------------------------------------------------------------


class KLDivFunction(Function):
    """``xlogy(y, y) - y x``, or ``exp(y) (y - x)`` with ``log_target``; 'batchmean' divides
    the sum by the batch size."""

    @staticmethod
    def forward(ctx, x, target, reduction, log_target, dtype):
        xs = x.astype(dtype, copy=False)
        ts = target.astype(dtype, copy=False)
        if log_target:
            loss = np.exp(ts) * (ts - xs)
        else:
            loss = np.where(ts == 0, np.zeros((), dtype), ts * np.log(ts)) - ts * xs
        ctx.save_for_backward(xs, ts)
        ctx.shapes = (x.shape, target.shape)
        ctx.log_target = log_target
        if reduction == "batchmean":
            ctx.reduction, ctx.count = "mean", (x.shape[0] if x.ndim else 1)
            return np.asarray(loss.sum(dtype=dtype) / ctx.count, dtype)
        ctx.reduction, ctx.count = reduction, loss.size
        return _reduce(loss, reduction, dtype)

    @staticmethod
    def backward(ctx, g):
        xs, ts = ctx.saved_tensors
        x_shape, t_shape = ctx.shapes
        scale = _scale(g, ctx.reduction, ctx.count)
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            dx = -np.exp(ts) if ctx.log_target else -ts
            grad_x = sum_to_shape(
                np.broadcast_to(dx * scale, np.broadcast_shapes(xs.shape, ts.shape)), x_shape
            )
        if ctx.needs_input_grad[1]:
            if ctx.log_target:
                e = np.exp(ts)
                dt = scale * (ts - xs) * e + scale * e
            else:
                log_t = np.where(ts != 0, np.log(ts), np.zeros((), ts.dtype))
                dt = scale * (log_t + ts / ts) - scale * xs
            grad_t = sum_to_shape(
                np.broadcast_to(dt, np.broadcast_shapes(xs.shape, ts.shape)), t_shape
            )
        return grad_x, grad_t


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence of ``target`` from ``exp(input)`` (input in log space).

    ``l = y (log y - x)`` (0 where y = 0), or ``exp(y) (y - x)`` when ``log_target``.
    ``reduction='batchmean'`` divides the sum by the batch size (the mathematical KL);
    'mean' divides by the number of elements and warns, as torch does.

    >>> kl_div(tensor([[-0.7, -0.7]]), tensor([[0.5, 0.5]]), reduction='batchmean')

    See https://pytorch.org/docs/stable/generated/torch.nn.KLDivLoss.html
    """
    x = _array(input, "kl_div", "input")
    t = _array(target, "kl_div", "target")
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    else:
        if reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the "
                "support size.'batchmean' divides only by the batch size, and aligns with the "
                "KL div math definition.'mean' will be changed to behave the same as "
                "'batchmean' in the next major release.",
                UserWarning,
                stacklevel=2,
            )
    if reduction != "batchmean":
        reduction = check_reduction(reduction)
    _broadcast_shape(t.shape, x.shape)  # torch names the target "a"
    if x.dtype.kind != "f" or t.dtype.kind != "f":
        raise RuntimeError("kl_div: Integral inputs not supported.")
    dtype = result_type(x, t)
    return KLDivFunction.apply(input, target, reduction, bool(log_target), dtype)
