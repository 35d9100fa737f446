"""Fully connected, dropout and normalisation layers: argument checks and autograd Functions.

Each function checks its arguments once, with PyTorch's rules and messages, then calls one
autograd ``Function`` with a hand-written, vectorised backward:

- ``linear``: ``y = x W^T + b`` over any leading dimensions, as one GEMM on ``(rows, in)``.
- ``dropout`` and its channel-wise (``dropout1d/2d/3d``) and SELU (``alpha_dropout``) forms:
  masks drawn from ``convlab.autograd.default_generator()``, so ``convlab.manual_seed`` makes
  them reproducible.
- ``batch_norm``, ``layer_norm``, ``group_norm``: ``y = (x - mean) / sqrt(var + eps) * w + b``
  with the biased variance, over the batch and spatial dims per channel, over the trailing
  ``normalized_shape``, or per sample over channel groups. Their backward differentiates
  through the statistics.

Inputs may be ``Tensor`` or NumPy arrays; results are ``Tensor``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np

from convlab.autograd import Function, Tensor, default_generator, is_grad_enabled, sum_to_shape
from convlab.kernels import parallel

__all__ = [
    "alpha_dropout",
    "batch_norm",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
    "group_norm",
    "layer_norm",
    "linear",
]

# The C++ type names PyTorch prints in its dtype messages.
_TORCH_NAMES = {
    "float16": "c10::Half",
    "float32": "float",
    "float64": "double",
    "int64": "long int",
    "int32": "int",
    "int16": "short int",
    "int8": "signed char",
    "uint8": "unsigned char",
    "bool": "bool",
}
_SCALAR_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "int64": "Long",
    "int32": "Int",
    "int16": "Short",
    "int8": "Char",
    "uint8": "Byte",
    "bool": "Bool",
}


def _name(dtype: np.dtype) -> str:
    return _TORCH_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)


def _array(value, name: str, position: int, op: str, optional: bool = False) -> np.ndarray | None:
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if optional and value is None:
        return None
    kind = "Tensor" if not optional else "Tensor or None"
    raise TypeError(
        f"{op}(): argument '{name}' (position {position}) must be {kind}, not "
        f"{type(value).__name__}"
    )


def _check_same_dtype(x: np.ndarray, others: dict[str, np.ndarray | None], op: str) -> None:
    """PyTorch's CPU norm kernels: every operand has the input's dtype."""
    for name, array in others.items():
        if array is not None and array.dtype != x.dtype:
            raise RuntimeError(
                f"mixed dtype (CPU): expected {name} to have the input's scalar type "
                f"{_SCALAR_NAMES.get(x.dtype.name, x.dtype.name)}, but got "
                f"{_SCALAR_NAMES.get(array.dtype.name, array.dtype.name)} ({op})"
            )


def _check_floating(x: np.ndarray, kernel: str) -> None:
    if x.dtype.kind != "f":
        raise NotImplementedError(
            f'"{kernel}" not implemented for '
            f"'{_SCALAR_NAMES.get(x.dtype.name, x.dtype.name)}': the input must be floating "
            "point (convert with .float() or .double())"
        )


def _check_no_grad_needed(value, name: str, op: str) -> None:
    if isinstance(value, Tensor) and value.requires_grad:
        raise RuntimeError(
            f"The function '{op}' is not differentiable with respect to argument '{name}'. "
            "This input cannot have requires_grad True."
        )


def _float_arg(value, name: str, position: int, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{op}(): argument '{name}' (position {position}) must be float, not "
            f"{type(value).__name__}"
        )
    return float(value)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    # float16 statistics are accumulated in float32, as PyTorch's CPU kernels do.
    return np.dtype(np.float32) if dtype == np.float16 else dtype


# ---------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------


class LinearFunction(Function):
    """y = x W^T + b over any leading dimensions: one GEMM on ``(rows, in_features)``."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        in_features = x.shape[-1]
        rows = math.prod(x.shape[:-1])
        outs = math.prod(weight.shape[:-1])  # 1 for a 1-D weight
        x2 = x.reshape(rows, in_features)
        w2 = weight.reshape(outs, in_features)
        y = parallel.gemm(x2, w2.T).reshape(x.shape[:-1] + weight.shape[:-1])
        if bias is not None:
            y += bias
        ctx.save_for_backward(x2, w2)
        ctx.shapes = (x.shape, weight.shape, None if bias is None else bias.shape)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        x2, w2 = ctx.saved_tensors
        x_shape, w_shape, b_shape = ctx.shapes
        g2 = grad_output.reshape(x2.shape[0], w2.shape[0])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = parallel.gemm(g2, w2).reshape(x_shape)
        if ctx.needs_input_grad[1]:
            grad_w = parallel.gemm(g2.T, x2).reshape(w_shape)
        if b_shape is not None and ctx.needs_input_grad[2]:
            grad_b = sum_to_shape(grad_output, b_shape)
        return grad_x, grad_w, grad_b


def _check_linear_bias(b: np.ndarray, out_shape: tuple[int, ...]) -> None:
    """The bias is added in place to the output, so it must broadcast *to* its shape."""
    padded = (1,) * (len(out_shape) - b.ndim) + b.shape
    if b.ndim <= len(out_shape):
        for i, (o, s) in enumerate(zip(out_shape, padded)):
            if s not in (1, o):
                raise RuntimeError(
                    f"linear(): bias of size {list(b.shape)} does not broadcast to the output "
                    f"size {list(out_shape)}: the size of tensor a ({o}) must match the size of "
                    f"tensor b ({s}) at non-singleton dimension {i}"
                )
        return
    try:
        broadcast = list(np.broadcast_shapes(out_shape, b.shape))
    except ValueError:
        broadcast = None
    raise RuntimeError(
        f"linear(): output with shape {list(out_shape)} doesn't match the broadcast shape "
        f"{broadcast if broadcast is not None else 'of bias ' + str(list(b.shape))}"
    )


def linear(input, weight, bias=None) -> Tensor:
    """Apply ``y = x W^T + b`` to the last dimension of ``input``.

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)``, or ``(in_features,)`` (the output then loses
            its last dimension).
        bias: ``(out_features,)`` (or any shape that broadcasts to the output), or None.

    Shape: ``(*, in_features) -> (*, out_features)``.

    >>> linear(randn(8, 3), randn(5, 3), randn(5)).shape    # (8, 5)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.linear.html
    """
    x = _array(input, "input", 1, "linear")
    w = _array(weight, "weight", 2, "linear")
    b = _array(bias, "bias", 3, "linear", optional=True)
    if x.ndim == 0 or w.ndim == 0:
        raise RuntimeError(
            f"both arguments to linear need to be at least 1D, but they are {x.ndim}D and {w.ndim}D"
        )
    if w.ndim > 2:
        raise RuntimeError(
            f"linear(): weight must be (out_features, in_features): t() expects a tensor with "
            f"<= 2 dimensions, but weight is {w.ndim}D (size {list(w.shape)})"
        )
    if x.dtype != w.dtype:
        raise RuntimeError(
            f"linear(): expected input and weight to have the same dtype, but got: "
            f"{_name(x.dtype)} != {_name(w.dtype)}"
        )
    if b is not None and b.dtype != x.dtype:
        raise RuntimeError(
            f"linear(): expected bias and input to have the same dtype, but got: "
            f"{_name(b.dtype)} != {_name(x.dtype)}"
        )
    if x.shape[-1] != w.shape[-1]:
        rows = math.prod(x.shape[:-1])
        outs = w.shape[0] if w.ndim == 2 else 1
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{x.shape[-1]} and "
            f"{w.shape[-1]}x{outs}): input of size {list(x.shape)} has {x.shape[-1]} features, "
            f"weight of size {list(w.shape)} expects {w.shape[-1]}"
        )
    if b is not None:
        if w.ndim == 1:
            raise RuntimeError(
                "linear(): a bias needs a 2-D weight (mat2 must be a matrix), but got 1-D "
                f"weight of size {list(w.shape)}"
            )
        _check_linear_bias(b, x.shape[:-1] + w.shape[:-1])
    return LinearFunction.apply(input, weight, bias)


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------

# The negative saturation of SELU, -scale * alpha (Klambauer et al., 2017, arXiv 1706.02515).
_SELU_ALPHA = 1.7580993408473766


class DropoutFunction(Function):
    """y = x * noise (+ shift for alpha dropout); the noise broadcasts over x."""

    @staticmethod
    def forward(ctx, x, noise, shift):
        ctx.noise = noise
        y = x * noise
        if shift is not None:
            y += shift
        return y

    @staticmethod
    def backward(ctx, grad_output):
        return (grad_output * ctx.noise,)


def _check_p(p, training, op: str) -> float:
    if isinstance(p, Tensor):
        p = p.item()
    if not isinstance(p, numbers.Real):
        raise TypeError(f"{op}(): argument 'p' (position 2) must be float, not {type(p).__name__}")
    if math.isnan(p):
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(
            f"{op}(): argument 'train' (position 3) must be bool, not {type(training).__name__}"
        )
    return float(p)


def _dropout(input, p: float, training: bool, inplace: bool, noise_shape, alpha: bool, op: str):
    """PyTorch's ``_dropout_impl``: identity when ``p == 0``, in eval or on an empty input."""
    x = _array(input, "input", 1, op)
    if p == 0 or not training or x.size == 0:
        return input if isinstance(input, Tensor) else Tensor(x)
    if x.dtype.kind != "f":
        raise RuntimeError(
            f"{op}(): result type Float can't be cast to the desired output type "
            f"{_SCALAR_NAMES.get(x.dtype.name, x.dtype.name)}: dropout needs a floating-point "
            "input"
        )
    shape = noise_shape(x.shape)
    if p == 1:
        noise, shift = np.zeros((), x.dtype), None
    else:
        keep = default_generator().random(shape) < 1.0 - p  # Bernoulli(1 - p), as torch
        if alpha:
            a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1) * (1 - p))
            noise = np.where(keep, a, 0.0).astype(x.dtype)
            # b = (keep - 1) * alpha * a + alpha * a * p: dropped values land on SELU's floor.
            shift = np.where(keep, 0.0, -_SELU_ALPHA * a).astype(x.dtype) + x.dtype.type(
                _SELU_ALPHA * a * p
            )
        else:
            noise = np.where(keep, 1.0 / (1.0 - p), 0.0).astype(x.dtype)
            shift = None
    tensor = input if isinstance(input, Tensor) else None
    if inplace:
        if tensor is not None and tensor.requires_grad and is_grad_enabled():
            if tensor.is_leaf:
                raise RuntimeError(
                    "a leaf Variable that requires grad is being used in an in-place operation."
                )
            # convlab's autograd records no in-place ops: same values, a new tensor.
            return DropoutFunction.apply(input, noise, shift)
        np.multiply(x, noise, out=x)
        if shift is not None:
            np.add(x, shift, out=x)
        return tensor if tensor is not None else Tensor(x)
    return DropoutFunction.apply(input, noise, shift)


def _feature_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One draw per (sample, channel) of a batched ``(N, C, *)`` input."""
    if len(shape) < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return shape[:2] + (1,) * (len(shape) - 2)


def _unbatched_feature_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One draw per channel of an unbatched ``(C, *)`` input (PyTorch unsqueezes dim 0)."""
    return _feature_shape((1, *shape))[1:]


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    In evaluation (``training=False``) the input is returned unchanged. Masks come from
    convlab's generator: ``convlab.manual_seed`` makes them reproducible.

    >>> dropout(ones(4), p=0.5)    # e.g. [2., 0., 2., 2.]

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.dropout.html
    """
    p = _check_p(p, training, "dropout")
    return _dropout(input, p, training, inplace, lambda s: s, False, "dropout")


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: keeps zero mean and unit variance (Klambauer et al., 2017).

    A dropped element becomes SELU's negative saturation ``-1.7581``; then ``a * x + b`` with
    ``a = ((1 - p) * (1 + p * 1.7581**2)) ** -0.5`` restores the moments. Note that
    ``training`` defaults to False, as in PyTorch.
    """
    p = _check_p(p, training, "alpha_dropout")
    return _dropout(input, p, training, inplace, lambda s: s, True, "alpha_dropout")


def feature_alpha_dropout(
    input, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Alpha dropout of whole channels of a ``(N, C, *)`` input (one draw per sample and
    channel)."""
    p = _check_p(p, training, "feature_alpha_dropout")
    return _dropout(input, p, training, inplace, _feature_shape, True, "feature_alpha_dropout")


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` with probability ``p``.

    Each channel of each sample is kept (and scaled by ``1 / (1 - p)``) or zeroed as a whole
    (Tompson et al., 2015, arXiv 1411.4280).
    """
    p = _check_p(p, training, "dropout1d")
    x = _array(input, "input", 1, "dropout1d")
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input. Note that "
            "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs)."
        )
    shape = _feature_shape if x.ndim == 3 else _unbatched_feature_shape
    return _dropout(input, p, training, inplace, shape, False, "dropout1d")


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p``.

    As in PyTorch, a 3-D input is read as ``(N, C, L)`` (1-D channel dropout, with a warning),
    not as an unbatched ``(C, H, W)``; other ranks warn that they are deprecated.
    """
    p = _check_p(p, training, "dropout2d")
    x = _array(input, "input", 1, "dropout2d")
    if x.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated and will "
            "result in an error in a future release. To retain the behavior and silence this "
            "warning, please use dropout instead. Note that dropout2d exists to provide "
            "channel-wise dropout on inputs with 2 spatial dimensions, a channel dimension, and "
            "an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _dropout(input, p, training, inplace, _feature_shape, False, "dropout2d")


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` with probability ``p``."""
    p = _check_p(p, training, "dropout3d")
    x = _array(input, "input", 1, "dropout3d")
    if x.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated and will "
            "result in an error in a future release. To retain the behavior and silence this "
            "warning, please use dropout instead. Note that dropout3d exists to provide "
            "channel-wise dropout on inputs with 3 spatial dimensions, a channel dimension, and "
            "an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2,
        )
    shape = _feature_shape if x.ndim == 5 else _unbatched_feature_shape
    return _dropout(input, p, training, inplace, shape, False, "dropout3d")


# ---------------------------------------------------------------------------------------------
# Normalisation: shared forward and backward of "(x - mean) * rstd" over the last axis
# ---------------------------------------------------------------------------------------------


def _normalize_rows(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``x_hat`` and ``rstd`` of ``x`` normalised along its last axis (biased variance)."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / x.shape[-1]
    rstd = 1.0 / np.sqrt(var + eps)
    centred *= rstd
    return centred, rstd


def _normalize_backward(g: np.ndarray, x_hat: np.ndarray, rstd: np.ndarray) -> np.ndarray:
    """Gradient through ``x_hat = (x - mean(x)) * rstd(x)`` along the last axis.

    ``dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))``, where ``g`` is the gradient with
    respect to ``x_hat`` (already multiplied by the affine weight).
    """
    n = x_hat.shape[-1]
    mean_g = g.mean(axis=-1, keepdims=True)
    mean_gx = np.einsum("...i,...i->...", g, x_hat)[..., None] / n
    # In place on one fresh array: these are memory-bound passes over the whole input.
    dx = x_hat * mean_gx
    dx += mean_g
    np.subtract(g, dx, out=dx)
    dx *= rstd
    return dx


def _affine(x_hat: np.ndarray, weight, bias, dtype: np.dtype, shape: tuple[int, ...]):
    """``x_hat * weight + bias`` (weight and bias reshaped to ``shape``), leaving x_hat intact."""
    if weight is None:
        return x_hat if bias is None else x_hat + bias.astype(dtype).reshape(shape)
    y = x_hat * weight.astype(dtype).reshape(shape)
    if bias is not None:
        y += bias.astype(dtype).reshape(shape)
    return y


# ---------------------------------------------------------------------------------------------
# Batch normalisation
# ---------------------------------------------------------------------------------------------


class BatchNormFunction(Function):
    """Per-channel normalisation of ``(N, C, *)``; training mode updates the running stats.

    The input is viewed as ``(N, C, L)`` (no copy) and every statistic is a reduction over the
    axes 0 and 2.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        n_batch, channels = x.shape[:2]
        dtype = _compute_dtype(x.dtype)
        x3 = x.reshape(n_batch, channels, math.prod(x.shape[2:])).astype(dtype, copy=False)
        count = n_batch * x3.shape[2]
        if training and count:
            mean = x3.mean(axis=(0, 2))
            x_hat = x3 - mean[:, None]
            var = np.einsum("ncl,ncl->c", x_hat, x_hat) / count  # biased, for normalising
            rstd = 1.0 / np.sqrt(var + eps)
            x_hat *= rstd[:, None]
            if running_mean is not None:
                # The running variance is the unbiased one, as in PyTorch.
                unbiased = var * (count / (count - 1)) if count > 1 else var
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * unbiased
        elif training:  # an empty batch: nothing to normalise, running stats unchanged
            x_hat, rstd = x3.copy(), np.ones(channels, dtype)
        else:
            rstd = 1.0 / np.sqrt(running_var.astype(dtype) + eps)
            x_hat = x3 - running_mean.astype(dtype)[:, None]
            x_hat *= rstd[:, None]
        y = _affine(x_hat, weight, bias, dtype, (-1, 1))
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.training = training
        ctx.shape = x.shape
        ctx.dtype = x.dtype
        return y.reshape(x.shape).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, rstd, weight = ctx.saved_tensors
        g = grad_output.reshape(x_hat.shape).astype(x_hat.dtype, copy=False)
        grad_x = grad_w = grad_b = None
        sum_gx = np.einsum("ncl,ncl->c", g, x_hat)
        sum_g = g.sum(axis=(0, 2))
        if ctx.needs_input_grad[1]:
            grad_w = sum_gx.astype(ctx.dtype)
        if ctx.needs_input_grad[2]:
            grad_b = sum_g.astype(ctx.dtype)
        if ctx.needs_input_grad[0]:
            scale = rstd if weight is None else rstd * weight.astype(x_hat.dtype)
            count = x_hat.shape[0] * x_hat.shape[2]
            if ctx.training and count:
                # dx = w * rstd * (g - mean(g) - x_hat * mean(g * x_hat)), per channel; in place
                # on one fresh array, as these passes over the input are memory-bound.
                dx = x_hat * (sum_gx / count)[:, None]
                dx += (sum_g / count)[:, None]
                np.subtract(g, dx, out=dx)
                dx *= scale[:, None]
            else:
                dx = g * scale[:, None]  # eval mode: the statistics are constants
            grad_x = dx.reshape(ctx.shape)
        return grad_x, grad_w, grad_b


def _check_channel_vector(value: np.ndarray | None, name: str, channels: int) -> None:
    if value is None:
        return
    if value.size != channels:
        raise RuntimeError(f"{name} should contain {channels} elements not {value.size}")
    if value.ndim != 1:
        raise RuntimeError(
            f"{name} must be a vector of {channels} elements, but got {name} of size "
            f"{list(value.shape)}"
        )


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of ``(N, C, *)`` over the batch and spatial dimensions.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``. With ``training=True`` the mean and
    the biased variance are the batch's, and ``running_mean``/``running_var`` (if given) are
    updated in place: ``running = (1 - momentum) * running + momentum * batch_stat``, with the
    unbiased batch variance. With ``training=False`` the running statistics are used.

    Shape: ``(N, C, *) -> (N, C, *)``; the four vectors have ``C`` elements.

    >>> rm, rv = zeros(3), ones(3)
    >>> batch_norm(randn(8, 3, 4, 4), rm, rv, training=True)    # rm, rv move toward the batch

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.batch_norm.html and
    Ioffe & Szegedy, 2015, arXiv 1502.03167.
    """
    op = "batch_norm"
    x = _array(input, "input", 1, op)
    rm = _array(running_mean, "running_mean", 2, op, optional=True)
    rv = _array(running_var, "running_var", 3, op, optional=True)
    w = _array(weight, "weight", 4, op, optional=True)
    b = _array(bias, "bias", 5, op, optional=True)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(
            f"batch_norm(): argument 'training' (position 6) must be bool, not "
            f"{type(training).__name__}"
        )
    momentum = _float_arg(momentum, "momentum", 7, op)
    eps = _float_arg(eps, "eps", 8, op)
    if x.ndim < 2:
        raise RuntimeError(
            f"batch_norm(): expected input of size (N, C, *) with at least 2 dimensions, but got "
            f"input of size {list(x.shape)}"
        )
    if training and math.prod(x.shape[:1] + x.shape[2:]) == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {list(x.shape)}"
        )
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if (rm is None) != (rv is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    if rm is None and not training:
        raise RuntimeError("running_mean must be defined in evaluation mode")
    _check_floating(x, "batch_norm")
    channels = x.shape[1]
    for name, value in (("running_mean", rm), ("running_var", rv), ("weight", w), ("bias", b)):
        _check_channel_vector(value, name, channels)
    _check_same_dtype(
        x, {"running_mean": rm, "running_var": rv, "weight": w, "bias": b}, "batch_norm"
    )
    _check_no_grad_needed(running_mean, "running_mean", "batch_norm")
    _check_no_grad_needed(running_var, "running_var", "batch_norm")
    if rm is not None and training and not (rm.flags.writeable and rv.flags.writeable):
        raise RuntimeError("batch_norm(): running_mean and running_var must be writeable")
    return BatchNormFunction.apply(input, weight, bias, rm, rv, bool(training), momentum, eps)


# ---------------------------------------------------------------------------------------------
# Layer normalisation
# ---------------------------------------------------------------------------------------------


class LayerNormFunction(Function):
    """Normalise over the trailing ``normalized_shape``; elementwise affine over it."""

    @staticmethod
    def forward(ctx, x, weight, bias, lead, size, eps):
        dtype = _compute_dtype(x.dtype)
        rows = x.reshape(lead, size).astype(dtype, copy=False)
        if size == 0:
            x_hat, rstd = rows.copy(), np.ones((rows.shape[0], 1), dtype)
        else:
            x_hat, rstd = _normalize_rows(rows, eps)
        y = _affine(x_hat, weight, bias, dtype, (-1,))
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.shapes = (x.shape, None if weight is None else weight.shape)
        ctx.bias_shape = None if bias is None else bias.shape
        ctx.dtype = x.dtype
        return y.reshape(x.shape).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, rstd, weight = ctx.saved_tensors
        x_shape, w_shape = ctx.shapes
        g = grad_output.reshape(x_hat.shape).astype(x_hat.dtype, copy=False)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = np.einsum("ri,ri->i", g, x_hat).reshape(w_shape).astype(ctx.dtype)
        if ctx.needs_input_grad[2]:
            grad_b = g.sum(axis=0).reshape(ctx.bias_shape).astype(ctx.dtype)
        if ctx.needs_input_grad[0]:
            gw = g if weight is None else g * weight.reshape(-1).astype(x_hat.dtype)
            dx = _normalize_backward(gw, x_hat, rstd) if x_hat.shape[1] else gw
            grad_x = dx.reshape(x_shape)
        return grad_x, grad_w, grad_b


def _int_sequence(value, name: str, position: int, op: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"{op}(): argument '{name}' (position {position}) must be tuple of ints, not "
            f"{type(value).__name__}"
        )
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(
                f"{op}(): argument '{name}' (position {position}) must be tuple of ints, but "
                f"found element of type {type(v).__name__} at pos {i}"
            )
    return tuple(int(v) for v in value)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dimensions of each sample.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, the mean and biased variance taken
    over the trailing ``normalized_shape``; ``weight`` and ``bias`` have that shape.

    Shape: ``(*, *normalized_shape) -> same``.

    >>> layer_norm(randn(2, 5, 8), (8,)).shape    # (2, 5, 8)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.layer_norm.html and
    Ba, Kiros & Hinton, 2016, arXiv 1607.06450.
    """
    op = "layer_norm"
    x = _array(input, "input", 1, op)
    shape = _int_sequence(normalized_shape, "normalized_shape", 2, op)
    w = _array(weight, "weight", 3, op, optional=True)
    b = _array(bias, "bias", 4, op, optional=True)
    eps = _float_arg(eps, "eps", 5, op)
    if not shape:
        raise RuntimeError(
            "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
            "one element, but got normalized_shape = []"
        )
    for name, value in (("weight", w), ("bias", b)):
        if value is not None and value.shape != shape:
            raise RuntimeError(
                f"Expected {name} to be of same shape as normalized_shape, but got {name} of "
                f"shape {list(value.shape)} and normalized_shape = {list(shape)}"
            )
    k = len(shape)
    if x.ndim < k or x.shape[x.ndim - k :] != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*{''.join(f', {s}' for s in shape)}], but got input of size{list(x.shape)}"
        )
    _check_floating(x, "LayerNormKernelImpl")
    _check_same_dtype(x, {"weight": w, "bias": b}, "layer_norm")
    lead = math.prod(x.shape[: x.ndim - k])
    return LayerNormFunction.apply(input, weight, bias, lead, math.prod(shape), eps)


# ---------------------------------------------------------------------------------------------
# Group normalisation
# ---------------------------------------------------------------------------------------------


class GroupNormFunction(Function):
    """Normalise each (sample, group of channels) of ``(N, C, *)``; affine per channel."""

    @staticmethod
    def forward(ctx, x, weight, bias, groups, eps):
        n_batch, channels = x.shape[:2]
        dtype = _compute_dtype(x.dtype)
        length = math.prod(x.shape[2:])
        rows = x.reshape(n_batch * groups, channels // groups * length).astype(dtype, copy=False)
        if rows.shape[1] == 0:
            x_hat, rstd = rows.copy(), np.ones((rows.shape[0], 1), dtype)
        else:
            x_hat, rstd = _normalize_rows(rows, eps)
        # Per-channel affine on the (N, C, L) view.
        y = _affine(x_hat.reshape(n_batch, channels, length), weight, bias, dtype, (-1, 1))
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.shape = x.shape
        ctx.dtype = x.dtype
        return y.reshape(x.shape).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, rstd, weight = ctx.saved_tensors
        n_batch, channels = ctx.shape[:2]
        length = math.prod(ctx.shape[2:])
        g = grad_output.reshape(n_batch, channels, length).astype(x_hat.dtype, copy=False)
        x_hat3 = x_hat.reshape(g.shape)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = np.einsum("ncl,ncl->c", g, x_hat3).astype(ctx.dtype)
        if ctx.needs_input_grad[2]:
            grad_b = g.sum(axis=(0, 2)).astype(ctx.dtype)
        if ctx.needs_input_grad[0]:
            gw = g if weight is None else g * weight.astype(x_hat.dtype)[:, None]
            gw = gw.reshape(x_hat.shape)
            dx = _normalize_backward(gw, x_hat, rstd) if x_hat.shape[1] else gw
            grad_x = dx.reshape(ctx.shape)
        return grad_x, grad_w, grad_b


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise ``(N, C, *)`` over groups of ``C / num_groups`` channels, per sample.

    The mean and biased variance of each (sample, group) are taken over its channels and all
    spatial positions; ``weight`` and ``bias`` (``C`` elements) act per channel.
    ``num_groups=1`` is layer norm over ``(C, *)``; ``num_groups=C`` is instance norm.

    >>> group_norm(randn(2, 6, 4, 4), 3).shape    # (2, 6, 4, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.group_norm.html and
    Wu & He, 2018, arXiv 1803.08494.
    """
    op = "group_norm"
    x = _array(input, "input", 1, op)
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral):
        raise TypeError(
            f"group_norm(): argument 'num_groups' (position 2) must be int, not "
            f"{type(num_groups).__name__}"
        )
    num_groups = int(num_groups)
    w = _array(weight, "weight", 3, op, optional=True)
    b = _array(bias, "bias", 4, op, optional=True)
    eps = _float_arg(eps, "eps", 5, op)
    if x.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {x.ndim}")
    if num_groups == 0:
        raise ZeroDivisionError(
            "group_norm(): integer division or modulo by zero: num_groups must be positive, "
            "but got num_groups=0"
        )
    per_group = x.shape[0] * x.shape[1] // num_groups
    if num_groups > 0 and per_group * math.prod(x.shape[2:]) == 1:
        raise ValueError(
            "Expected more than 1 value per channel when training, got input size "
            f"{[per_group, num_groups, *x.shape[2:]]}"
        )
    if num_groups < 0:
        raise RuntimeError(f"Expected num groups to be greater than 0, got {num_groups}")
    channels = x.shape[1]
    if channels % num_groups:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input "
            f"of shape {list(x.shape)} and num_groups={num_groups}"
        )
    for name, value in (("weight", w), ("bias", b)):
        if value is not None and (value.ndim != 1 or value.size != channels):
            raise RuntimeError(
                f"Expected {name} to be a vector of size equal to the number of channels in "
                f"input, but got {name} of shape {list(value.shape)} and input of shape "
                f"{list(x.shape)}"
            )
    _check_floating(x, "GroupNormKernelImpl")
    _check_same_dtype(x, {"weight": w, "bias": b}, "group_norm")
    return GroupNormFunction.apply(input, weight, bias, num_groups, eps)
