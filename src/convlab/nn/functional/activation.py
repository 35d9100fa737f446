"""Activation functions: argument checks, then one autograd ``Function`` per activation.

Every forward and backward follows PyTorch 2.13's CPU kernels formula for formula, including
the derivative chosen at a kink (``relu'(0) = 0``, ``hardtanh'`` is 0 at both bounds,
``leaky_relu'(0) = negative_slope``). A NaN input gives a NaN output; the gradient at a NaN
follows torch's scalar kernels (``relu'(nan) = 1``, ``hardsigmoid'(nan) = 0``): torch's own
vectorised kernels disagree with them and with each other there. Inputs may be ``Tensor`` or
NumPy arrays; results are ``Tensor``.

``inplace=True`` overwrites the input and returns it, as in PyTorch, when the input does not
need a gradient. convlab's autograd records no in-place operations, so for a non-leaf input
that requires grad the result is computed out of place instead (a leaf that requires grad raises
PyTorch's error).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev

from convlab.autograd import Function, Tensor, get_default_dtype, is_grad_enabled
from convlab.autograd.dtypes import as_dtype
from convlab.autograd.ops import normalize_dim
from convlab.kernels import pointwise
from convlab.nn.functional._args import as_array

__all__ = [
    "celu",
    "elu",
    "gelu",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "leaky_relu",
    "log_softmax",
    "mish",
    "prelu",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softmin",
    "softplus",
    "tanh",
]

# torch's names for dtypes, used in its "not implemented for 'Long'" messages.
TORCH_DTYPE_NAMES = {
    np.dtype(np.float16): "Half",
    np.dtype(np.float32): "Float",
    np.dtype(np.float64): "Double",
    np.dtype(np.int8): "Char",
    np.dtype(np.int16): "Short",
    np.dtype(np.int32): "Int",
    np.dtype(np.int64): "Long",
    np.dtype(np.uint8): "Byte",
    np.dtype(np.bool_): "Bool",
}

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
# torch's hardsigmoid backward multiplies by the float32 constant 1.0f / 6.0f in every dtype.
_HARDSIGMOID_SLOPE = float(np.float32(1.0) / np.float32(6.0))
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


# ---------------------------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------------------------


def torch_dtype_name(dtype: np.dtype) -> str:
    """Return PyTorch's C++ name of ``dtype`` ('Float', 'Long', ...), for error messages."""
    return TORCH_DTYPE_NAMES.get(np.dtype(dtype), str(dtype))


def _array(value: Any, op: str, name: str = "input") -> np.ndarray:
    return as_array(value, name, op)


def _require_float(x: np.ndarray, kernel: str, integers: bool = False) -> None:
    """Raise PyTorch's NotImplementedError for a dtype its kernel has no implementation for."""
    if x.dtype.kind == "f" or (integers and x.dtype.kind in "iu"):
        return
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{torch_dtype_name(x.dtype)}'")


def _number(value: Any, name: str, op: str) -> float:
    if isinstance(value, Tensor) and value.data.size == 1:
        value = value.data.item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{op}(): argument '{name}' must be Number, not {type(value).__name__}")


def _finish(input: Any, out: Tensor, inplace: bool) -> Tensor:
    """Return ``out``, or with ``inplace`` copy it into ``input`` and return ``input``."""
    if not inplace:
        return out
    if isinstance(input, Tensor):
        if input.requires_grad and is_grad_enabled():
            if input.grad_fn is None:
                raise RuntimeError(
                    "a leaf Variable that requires grad is being used in an in-place operation."
                )
            return out  # not recordable in place: the out-of-place result is equivalent
        input.data[...] = out.data
        return input
    input[...] = out.data
    return Tensor(input)


def _zero(g: np.ndarray) -> np.ndarray:
    return np.zeros((), g.dtype)


# ---------------------------------------------------------------------------------------------
# The error function, for the exact GELU
# ---------------------------------------------------------------------------------------------


def _chebyshev_fit(fn, lo: float, hi: float, degree: int) -> np.ndarray:
    nodes = chebyshev.chebpts1(degree + 1)
    values = [fn(lo + (t + 1.0) * (hi - lo) / 2.0) for t in nodes]
    return chebyshev.chebfit(nodes, values, degree)


# NumPy has no erf. Chebyshev interpolants fitted once at import to math.erf/math.erfc:
# erf(z) = z * P(z) on [0, 1]; erf(z) = 1 - exp(-z^2) * Q(z) on [1, 6], where Q = erfc * e^{z^2}
# is smooth; erf(z) rounds to 1 beyond 6. Absolute error ~3e-15 (checked against math.erf).
# For float32 one piece, 1 - exp(-z^2) * Q(z) on [0, 4] evaluated in float32, is enough (~4e-7
# absolute, erf rounds to 1 beyond 3.92) and three times faster.
_ERF_SPLIT, _ERF_ONE, _ERF32_ONE = 1.0, 6.0, 4.0
_ERF_SMALL = _chebyshev_fit(
    lambda z: math.erf(z) / z if z else 2.0 / math.sqrt(math.pi), 0.0, _ERF_SPLIT, 14
)
_ERF_LARGE = _chebyshev_fit(lambda z: math.erfc(z) * math.exp(z * z), _ERF_SPLIT, _ERF_ONE, 25)
_ERF32 = _chebyshev_fit(lambda z: math.erfc(z) * math.exp(z * z), 0.0, _ERF32_ONE, 14).astype(
    np.float32
)


def _clenshaw(t: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """Evaluate the Chebyshev series ``coefs`` at ``t`` (chebval, without its temporaries)."""
    t2 = 2.0 * t
    b1 = np.full_like(t, coefs[-1])
    b2 = np.zeros_like(t)
    tmp = np.empty_like(t)
    for c in coefs[-2:0:-1]:
        np.multiply(t2, b1, out=tmp)
        tmp -= b2
        tmp += c
        b1, b2, tmp = tmp, b1, b2
    b1 *= t
    b1 -= b2
    b1 += coefs[0]
    return b1


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of a float64 array, to about 3e-15 absolute; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    out = np.ones_like(z)
    out[np.isnan(z)] = np.nan
    small = z < _ERF_SPLIT
    if small.any():
        zs = z[small]
        out[small] = zs * _clenshaw(zs * (2.0 / _ERF_SPLIT) - 1.0, _ERF_SMALL)
    mid = (z >= _ERF_SPLIT) & (z < _ERF_ONE)
    if mid.any():
        zm = z[mid]
        t = (2.0 * zm - (_ERF_SPLIT + _ERF_ONE)) / (_ERF_ONE - _ERF_SPLIT)
        out[mid] = 1.0 - np.exp(-zm * zm) * _clenshaw(t, _ERF_LARGE)
    return np.copysign(out, x)


def erf32(x: np.ndarray) -> np.ndarray:
    """The error function in float32 arithmetic, to about 4e-7 absolute; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float32)
    z = np.minimum(np.abs(x), np.float32(_ERF32_ONE))
    t = z * np.float32(2.0 / _ERF32_ONE)
    t -= np.float32(1.0)
    q = _clenshaw(t, _ERF32)
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    z *= q
    np.subtract(np.float32(1.0), z, out=z)
    return np.copysign(z, x)


def _erf_like(x: np.ndarray) -> np.ndarray:
    """erf in x's precision: float64 for float64, float32 arithmetic for narrower floats."""
    if x.dtype == np.float64:
        return erf(x)
    return erf32(x).astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Functions: forward and backward side by side
# ---------------------------------------------------------------------------------------------


class ReLUFunction(Function):
    """max(x, 0); backward ``result <= 0 ? 0 : grad`` (so 0 at 0, grad at NaN)."""

    @staticmethod
    def forward(ctx, x):
        out = pointwise.relu(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return pointwise.relu_backward(g, out)


class HardtanhFunction(Function):
    """clamp(x, min_val, max_val); gradient 1 strictly inside, 0 at and beyond the bounds."""

    @staticmethod
    def forward(ctx, x, min_val, max_val):
        ctx.save_for_backward(x)
        ctx.bounds = (min_val, max_val)
        return np.clip(x, min_val, max_val).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        return np.where((x <= lo) | (x >= hi), _zero(g), g)


class LeakyReLUFunction(Function):
    """x if x > 0 else slope * x; gradient ``slope`` at 0."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return np.where(x > 0, x, x * slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return np.where(x > 0, g, g * ctx.slope)


class ELUFunction(Function):
    """ELU/SELU/CELU: ``scale * x`` if x > 0 else ``alpha * scale * (exp(x * input_scale) - 1)``.

    ``grad_input_scale`` is the input scale the backward uses: torch's CELU backward rounds
    ``alpha`` to float32 before taking ``1 / alpha``.
    """

    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale, grad_input_scale):
        ctx.save_for_backward(x)
        ctx.coefs = (alpha * scale, scale, grad_input_scale)
        negative = np.expm1(x * input_scale) * (alpha * scale)
        return np.where(x <= 0, negative, x * scale)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        negcoef, poscoef, negiptcoef = ctx.coefs
        negative = g * (negiptcoef * negcoef) * np.exp(x * negiptcoef)
        return np.where(x <= 0, negative, g * poscoef)


class GELUFunction(Function):
    """x * Phi(x) (``approximate='none'``) or the tanh approximation, as torch's kernels."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        if approximate == "tanh":
            ctx.save_for_backward(x, None)
            inner = _SQRT_2_OVER_PI * (x + _GELU_KAPPA * (x * x * x))
            return 0.5 * x * (1 + np.tanh(inner))
        cdf = 0.5 * (1 + _erf_like(x * x.dtype.type(_SQRT1_2)))
        ctx.save_for_backward(x, cdf)  # the backward needs Phi(x) again: keep it, erf is slow
        return x * cdf

    @staticmethod
    def backward(ctx, g):
        x, cdf = ctx.saved_tensors
        if ctx.approximate == "tanh":
            x_sq = x * x
            tanh_inner = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * (x_sq * x)))
            left_derivative = 0.5 * (1 + tanh_inner)
            right_derivative = ((0.5 * x) * (1 - tanh_inner * tanh_inner) * _SQRT_2_OVER_PI) * (
                1 + 3 * _GELU_KAPPA * x_sq
            )
            return g * (left_derivative + right_derivative)
        pdf = _INV_SQRT_2PI * np.exp(x * x * -0.5)
        return g * (cdf + x * pdf)


class SigmoidFunction(Function):
    """1 / (1 + exp(-x)); backward ``grad * (1 - y) * y``."""

    @staticmethod
    def forward(ctx, x):
        out = 1 / (1 + np.exp(-x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out) * out


class TanhFunction(Function):
    """tanh(x); backward ``grad * (1 - y^2)``."""

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class SoftplusFunction(Function):
    """log(1 + exp(beta x)) / beta, or x where ``beta * x > threshold``."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.params = (beta, threshold)
        scaled = x * beta
        return np.where(scaled > threshold, x, np.log1p(np.exp(scaled)) / beta)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        beta, threshold = ctx.params
        scaled = x * beta
        z = np.exp(scaled)
        return np.where(scaled > threshold, g, g * z / (z + 1))


class SiLUFunction(Function):
    """x * sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + np.exp(-x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        sig = 1 / (1 + np.exp(-x))
        return g * sig * (1 + x * (1 - sig))


class MishFunction(Function):
    """x * tanh(softplus(x))."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * np.tanh(np.log1p(np.exp(x)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        sig = 1 / (1 + np.exp(-x))
        tanh_sp = np.tanh(np.log1p(np.exp(x)))
        return g * (tanh_sp + x * sig * (1 - tanh_sp * tanh_sp))


class HardsigmoidFunction(Function):
    """min(max(x + 3, 0), 6) / 6; gradient 1/6 strictly inside (-3, 3)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.minimum(np.maximum(x + 3, x.dtype.type(0)), x.dtype.type(6)) / 6

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return np.where((x > -3) & (x < 3), g * _HARDSIGMOID_SLOPE, _zero(g))


class HardswishFunction(Function):
    """x * min(max(x + 3, 0), 6) / 6; gradient 0 up to -3, ``x / 3 + 1/2`` below 3, 1 after."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * np.minimum(np.maximum(x + 3, x.dtype.type(0)), x.dtype.type(6)) / 6

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return np.where(x <= -3, _zero(g), np.where(x < 3, g * (x / 3 + 0.5), g))


class PReLUFunction(Function):
    """x if x > 0 else w * x, with one slope per channel (dim 1) or one for all."""

    @staticmethod
    def forward(ctx, x, weight):
        w = weight.reshape(()) if weight.size == 1 else _channel_view(weight, x.ndim)
        ctx.save_for_backward(x, w)
        ctx.weight_shape = weight.shape
        return np.where(x > 0, x, w * x)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = np.where(x > 0, g, w * g)
        if ctx.needs_input_grad[1]:
            per_element = np.where(x > 0, _zero(g), x * g)
            if w.ndim == 0:
                grad_w = per_element.sum().reshape(ctx.weight_shape)
            else:
                axes = tuple(a for a in range(x.ndim) if a != 1)
                grad_w = per_element.sum(axis=axes)
        return grad_x, grad_w


def _channel_view(weight: np.ndarray, ndim: int) -> np.ndarray:
    return weight.reshape((1, weight.size) + (1,) * (ndim - 2))


class SoftmaxFunction(Function):
    """softmax / log_softmax along ``axis`` with the max subtracted first; softmin negates x."""

    @staticmethod
    def forward(ctx, x, axis, log, negate):
        if negate:
            x = -x
        ctx.axis, ctx.log, ctx.negate = axis, log, negate
        if x.size == 0:
            out = x.copy()
        elif x.ndim == 0:
            out = _softmax(x.reshape(1), 0, log).reshape(())
        else:
            out = _softmax(x, axis, log)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        axis = ctx.axis if out.ndim else None
        if ctx.log:
            grad = g - np.exp(out) * g.sum(axis=axis, keepdims=True)
        else:
            grad = out * (g - (g * out).sum(axis=axis, keepdims=True))
        return -grad if ctx.negate else grad


def _softmax(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=axis, keepdims=True)
    if log:
        return shifted - np.log(total)
    e /= total
    return e


# ---------------------------------------------------------------------------------------------
# Front doors
# ---------------------------------------------------------------------------------------------


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """Rectified linear unit, ``max(x, 0)`` element-wise; the gradient at 0 is 0.

    Shape: any; the output has the input's shape. Integer inputs are allowed, as in torch.

    >>> relu(tensor([-1.0, 0.0, 2.0]))      # tensor([0., 0., 2.])

    See https://pytorch.org/docs/stable/generated/torch.nn.ReLU.html
    """
    x = _array(input, "relu")
    _require_float(x, "clamp_min_scalar_cpu", integers=True)
    return _finish(input, ReLUFunction.apply(input), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)``: ``hardtanh(x, 0, 6)``; the gradient is 0 at 0 and at 6.

    >>> relu6(tensor([-1.0, 3.0, 7.0]))     # tensor([0., 3., 6.])

    See https://pytorch.org/docs/stable/generated/torch.nn.ReLU6.html
    """
    return _hardtanh(input, 0.0, 6.0, inplace, "relu6")


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """Clamp to ``[min_val, max_val]``; the gradient is 1 strictly inside and 0 at the bounds.

    >>> hardtanh(tensor([-2.0, 0.5, 2.0]))  # tensor([-1.0, 0.5, 1.0])

    See https://pytorch.org/docs/stable/generated/torch.nn.Hardtanh.html
    """
    min_val = _number(min_val, "min_val", "hardtanh")
    max_val = _number(max_val, "max_val", "hardtanh")
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _hardtanh(input, min_val, max_val, inplace, "hardtanh")


def _hardtanh(input, min_val: float, max_val: float, inplace: bool, op: str) -> Tensor:
    x = _array(input, op)
    _require_float(x, "hardtanh_cpu", integers=True)
    return _finish(input, HardtanhFunction.apply(input, min_val, max_val), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``negative_slope * x``; the gradient at 0 is the slope.

    >>> leaky_relu(tensor([-2.0, 3.0]), 0.1)   # tensor([-0.2, 3.0])

    See https://pytorch.org/docs/stable/generated/torch.nn.LeakyReLU.html
    """
    x = _array(input, "leaky_relu")
    slope = _number(negative_slope, "negative_slope", "leaky_relu")
    _require_float(x, "leaky_relu_cpu")
    return _finish(input, LeakyReLUFunction.apply(input, slope), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``; the gradient at 0 is ``alpha``.

    >>> elu(tensor([-1.0, 2.0]))            # tensor([-0.6321, 2.0000])

    See https://pytorch.org/docs/stable/generated/torch.nn.ELU.html (Clevert et al., 2015,
    arXiv 1511.07289).
    """
    x = _array(input, "elu")
    alpha = _number(alpha, "alpha", "elu")
    _require_float(x, "elu_cpu")
    return _finish(input, ELUFunction.apply(input, alpha, 1.0, 1.0, 1.0), inplace)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with ``alpha ~ 1.6733``, ``scale ~ 1.0507``.

    >>> selu(tensor([1.0]))                 # tensor([1.0507])

    See https://pytorch.org/docs/stable/generated/torch.nn.SELU.html (Klambauer et al., 2017,
    arXiv 1706.02515).
    """
    x = _array(input, "selu")
    _require_float(x, "elu_cpu")
    out = ELUFunction.apply(input, SELU_ALPHA, SELU_SCALE, 1.0, 1.0)
    return _finish(input, out, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``; the gradient at 0 is 1.

    >>> celu(tensor([-1.0, 2.0]), alpha=2.0)   # tensor([-0.7869, 2.0000])

    See https://pytorch.org/docs/stable/generated/torch.nn.CELU.html (Barron, 2017,
    arXiv 1704.07483).
    """
    x = _array(input, "celu")
    alpha = _number(alpha, "alpha", "celu")
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    _require_float(x, "elu_cpu")
    # torch's backward takes 1 / alpha of alpha rounded to float32 (derivatives.yaml toFloat).
    grad_scale = 1.0 / float(np.float32(alpha))
    out = ELUFunction.apply(input, alpha, 1.0, 1.0 / alpha, grad_scale)
    return _finish(input, out, inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate='tanh'`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    >>> gelu(tensor([1.0]))                 # tensor([0.8413])

    See https://pytorch.org/docs/stable/generated/torch.nn.GELU.html (Hendrycks and Gimpel,
    2016, arXiv 1606.08415).
    """
    x = _array(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    _require_float(x, "GeluKernelImpl")
    return GELUFunction.apply(input, approximate)


def _promote_to_float(input: Any, op: str) -> Any:
    """sigmoid and tanh of an integer tensor give the default float dtype, as torch."""
    x = _array(input, op)
    if x.dtype.kind == "f":
        return input
    if x.dtype.kind == "b":
        raise NotImplementedError(f"\"{op}_cpu\" not implemented for 'Bool'")
    return x.astype(get_default_dtype())


def sigmoid(input: Tensor) -> Tensor:
    """Logistic sigmoid ``1 / (1 + exp(-x))``.

    >>> sigmoid(tensor([0.0]))              # tensor([0.5])

    See https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html
    """
    return SigmoidFunction.apply(_promote_to_float(input, "sigmoid"))


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent.

    >>> tanh(tensor([0.0]))                 # tensor([0.])

    See https://pytorch.org/docs/stable/generated/torch.nn.Tanh.html
    """
    return TanhFunction.apply(_promote_to_float(input, "tanh"))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, reverting to ``x`` where ``beta * x > threshold``.

    >>> softplus(tensor([0.0]))             # tensor([0.6931])

    See https://pytorch.org/docs/stable/generated/torch.nn.Softplus.html
    """
    x = _array(input, "softplus")
    beta = _number(beta, "beta", "softplus")
    threshold = _number(threshold, "threshold", "softplus")
    _require_float(x, "softplus_cpu")
    return SoftplusFunction.apply(input, beta, threshold)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """Sigmoid linear unit (swish) ``x * sigmoid(x)``.

    >>> silu(tensor([1.0]))                 # tensor([0.7311])

    See https://pytorch.org/docs/stable/generated/torch.nn.SiLU.html (Elfwing et al., 2017,
    arXiv 1702.03118).
    """
    x = _array(input, "silu")
    _require_float(x, "silu_cpu")
    return _finish(input, SiLUFunction.apply(input), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``.

    >>> mish(tensor([1.0]))                 # tensor([0.8651])

    See https://pytorch.org/docs/stable/generated/torch.nn.Mish.html (Misra, 2019,
    arXiv 1908.08681).
    """
    x = _array(input, "mish")
    _require_float(x, "mish_cpu")
    return _finish(input, MishFunction.apply(input), inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """Piecewise-linear sigmoid ``clamp(x / 6 + 1/2, 0, 1)``; gradient 0 at -3 and 3.

    >>> hardsigmoid(tensor([0.0, 4.0]))     # tensor([0.5, 1.0])

    See https://pytorch.org/docs/stable/generated/torch.nn.Hardsigmoid.html
    """
    x = _array(input, "hardsigmoid")
    _require_float(x, "hardsigmoid_cpu")
    return _finish(input, HardsigmoidFunction.apply(input), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * hardsigmoid(x)`` (Howard et al., 2019, arXiv 1905.02244).

    >>> hardswish(tensor([-4.0, 1.0, 4.0]))    # tensor([-0.0, 0.6667, 4.0])

    See https://pytorch.org/docs/stable/generated/torch.nn.Hardswish.html
    """
    x = _array(input, "hardswish")
    _require_float(x, "hardswish_cpu")
    return _finish(input, HardswishFunction.apply(input), inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` for ``x > 0``, else ``weight * x``, with a learned slope per channel.

    Args:
        weight: one element (shared), or ``C`` elements for the channels of dim 1 (an input
            of fewer than 2 dims counts as one channel, as in torch).

    >>> prelu(tensor([[-1.0, 2.0]]), tensor([0.25]))   # tensor([[-0.25, 2.0]])

    See https://pytorch.org/docs/stable/generated/torch.nn.PReLU.html (He et al., 2015,
    arXiv 1502.01852).
    """
    x = _array(input, "prelu")
    w = _array(weight, "prelu", "weight")
    if w.ndim > 1:
        raise RuntimeError(
            f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {w.ndim}"
        )
    if x.ndim == 0 and w.size != 1:
        raise RuntimeError("Not allow zero-dim input tensor.")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.size != 1 and w.size != channels:
        raise RuntimeError(
            "Mismatch of parameter numbers and input channel size. Found parameter numbers = "
            f"{w.size} and channel size = {channels}."
        )
    _require_float(x, "prelu_cpu")
    if w.dtype != x.dtype:
        raise RuntimeError(
            f"prelu: Type promoting not supported. Got {torch_dtype_name(x.dtype)} and "
            f"{torch_dtype_name(w.dtype)}"
        )
    return PReLUFunction.apply(input, weight)


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
        "dim=X as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_family(
    input, dim, stacklevel: int, dtype, name: str, log: bool, negate: bool
) -> Tensor:
    x = _array(input, name)
    if dim is None:
        dim = _softmax_dim(name, x.ndim, stacklevel + 1)
    axis = normalize_dim(dim, x.ndim)
    if dtype is not None:
        dtype = as_dtype(dtype)
        if dtype != x.dtype:
            input = input.to(dtype) if isinstance(input, Tensor) else x.astype(dtype)
            x = _array(input, name)
    kind = "log_softmax" if log else "softmax"
    lastdim = "lastdim_" if axis == max(x.ndim, 1) - 1 else ""
    _require_float(x, f"{kind}_{lastdim}kernel_impl")
    return SoftmaxFunction.apply(input, axis, log, negate)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``, with the maximum subtracted first.

    Args:
        dim: the dimension that sums to 1. ``None`` is deprecated: it warns and picks dim 0
            for 0-, 1- and 3-d inputs, else dim 1, as torch does.
        dtype: cast the input to this dtype first.

    >>> softmax(tensor([[1.0, 1.0]]), dim=1)   # tensor([[0.5, 0.5]])

    See https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html
    """
    return _softmax_family(input, dim, _stacklevel, dtype, "softmax", False, False)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``x_i - log(sum_j exp(x_j))`` along ``dim``, computed stably.

    >>> log_softmax(tensor([0.0, 0.0]), dim=0)  # tensor([-0.6931, -0.6931])

    See https://pytorch.org/docs/stable/generated/torch.nn.LogSoftmax.html
    """
    return _softmax_family(input, dim, _stacklevel, dtype, "log_softmax", True, False)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``softmax(-x)`` along ``dim``.

    >>> softmin(tensor([0.0, 0.0]), dim=0)  # tensor([0.5, 0.5])

    See https://pytorch.org/docs/stable/generated/torch.nn.Softmin.html
    """
    return _softmax_family(input, dim, _stacklevel, dtype, "softmin", False, True)
