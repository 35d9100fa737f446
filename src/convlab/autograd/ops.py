"""The tensor operations: one ``Function`` per primitive, forward and backward side by side.

Each op has a front door (a plain function such as ``reshape(x, shape)``) that checks arguments
with PyTorch's rules and messages, then calls one Function. ``Tensor`` methods and operators are
one-line calls to these front doors.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from convlab.autograd.dtypes import (
    as_dtype,
    get_default_dtype,
    int64,
    is_floating,
    promote_types,
    result_type,
)
from convlab.autograd.function import Context, Function, sum_to_shape
from convlab.autograd.tensor import Tensor

__all__ = [
    "cat",
    "matmul",
    "maximum",
    "minimum",
    "stack",
    "where",
]

_Scalar = (bool, int, float, np.bool_, np.integer, np.floating)


# --------------------------------------------------------------------------- argument helpers


def _shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, (Tensor, np.ndarray)) else ()


def _broadcast_shape(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """Return the broadcast shape of ``sa`` and ``sb``, or raise torch's RuntimeError."""
    if sa == sb:
        return sa
    ndim = max(len(sa), len(sb))
    out = []
    for i in range(-ndim, 0):
        a = sa[i] if -i <= len(sa) else 1
        b = sb[i] if -i <= len(sb) else 1
        if a != b and a != 1 and b != 1:
            raise RuntimeError(
                f"The size of tensor a ({a}) must match the size of tensor b ({b}) at "
                f"non-singleton dimension {ndim + i}"
            )
        out.append(b if a == 1 else a)
    return tuple(out)


def _is_operand(x: Any) -> bool:
    if isinstance(x, (Tensor, np.ndarray)):
        return x.dtype.kind in "biuf"
    return isinstance(x, _Scalar)


def _as_operand(x: Any, dtype: np.dtype) -> Any:
    # Tensors go to apply() as they are so the graph links them; the rest becomes an array.
    if isinstance(x, Tensor):
        return x
    return np.asarray(x, dtype=dtype) if not isinstance(x, np.ndarray) else x


def _binary(fn: type[Function], a: Any, b: Any, dtype: np.dtype | None = None) -> Tensor:
    _broadcast_shape(_shape_of(a), _shape_of(b))
    if dtype is None:
        dtype = result_type(a, b)
    return fn.apply(_as_operand(a, dtype), _as_operand(b, dtype), dtype=dtype)


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """Ops like exp and true division give the default float dtype for integer input."""
    return dtype if is_floating(dtype) else get_default_dtype()


def normalize_dim(dim: Any, ndim: int, name: str = "dim") -> int:
    """Wrap a possibly negative ``dim`` into ``[0, ndim)``, raising torch's IndexError."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{name} must be an int, but got {type(dim).__name__} ({dim!r})")
    # torch lets a 0-d tensor be indexed as if it had one dimension (dim 0 or -1).
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return int(dim) % n


def normalize_dims(dim: Any, ndim: int, name: str = "dim") -> tuple[int, ...] | None:
    """Return ``dim`` (None, an int or a sequence of ints) as sorted axes; None means all."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    if not dims:
        # torch reduces over every dimension when given an empty dim list.
        return None
    axes = tuple(sorted({normalize_dim(d, ndim, name) for d in dims}))
    if len(axes) != len(dims):
        raise RuntimeError(f"{name} {tuple(dims)} appears multiple times in the list of dims")
    if ndim == 0:
        return ()
    return axes


def _size_args(args: tuple[Any, ...], name: str) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` or ``f((2, 3))`` as torch does and return a tuple of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(
                f"{name}: sizes must be ints, but got {type(a).__name__} ({a!r}) in {args}"
            )
    return tuple(int(a) for a in args)


# --------------------------------------------------------------------------- elementwise


class Add(Function):
    """``a + b`` with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.shapes = (a.shape, b.shape)
        return np.add(a, b, dtype=dtype)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        sa, sb = ctx.shapes
        return (
            sum_to_shape(g, sa) if ctx.needs_input_grad[0] else None,
            sum_to_shape(g, sb) if ctx.needs_input_grad[1] else None,
        )


class Sub(Function):
    """``a - b`` with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.shapes = (a.shape, b.shape)
        return np.subtract(a, b, dtype=dtype)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        sa, sb = ctx.shapes
        return (
            sum_to_shape(g, sa) if ctx.needs_input_grad[0] else None,
            -sum_to_shape(g, sb) if ctx.needs_input_grad[1] else None,
        )


class Mul(Function):
    """``a * b`` with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
        a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        a, b = ctx.saved_tensors
        return (
            sum_to_shape(g * b, a.shape) if ctx.needs_input_grad[0] else None,
            sum_to_shape(g * a, b.shape) if ctx.needs_input_grad[1] else None,
        )


class Div(Function):
    """``a / b`` (true division) with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
        a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        a, b = ctx.saved_tensors
        ga = sum_to_shape(g / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to_shape(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """``-a``."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return np.negative(a)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return -g


class PowScalar(Function):
    """``a ** exponent`` for a Python-number exponent."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, exponent: float, dtype: np.dtype) -> np.ndarray:
        a = a.astype(dtype, copy=False)
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return np.power(a, np.asarray(exponent, dtype=dtype))

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_tensors
        p = ctx.exponent
        if p == 0:
            return np.zeros_like(g)
        return g * (p * np.power(a, np.asarray(p - 1, dtype=a.dtype)))


class Pow(Function):
    """``a ** b`` for two tensors (or a number base and a tensor exponent)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
        a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
        out = np.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        a, b, out = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            # torch: zero where the exponent is 0, even at a == 0 where the formula is nan.
            ga = np.where(b == 0, 0, g * (b * np.power(a, b - 1)))
            ga = sum_to_shape(ga, a.shape)
        if ctx.needs_input_grad[1]:
            # torch: zero where a == 0 and b >= 0, where log(a) would give -inf * 0.
            gb = np.where((a == 0) & (b >= 0), 0, g * (out * np.log(a)))
            gb = sum_to_shape(gb, b.shape)
        return ga, gb


class Maximum(Function):
    """Elementwise ``maximum(a, b)``; ties send half the gradient to each side, as torch."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
        a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        a, b = ctx.saved_tensors
        return _select_backward(ctx, g, a, b, a > b)


class Minimum(Function):
    """Elementwise ``minimum(a, b)``; ties send half the gradient to each side, as torch."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
        a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        a, b = ctx.saved_tensors
        return _select_backward(ctx, g, a, b, a < b)


def _select_backward(
    ctx: Context, g: np.ndarray, a: np.ndarray, b: np.ndarray, a_wins: np.ndarray
) -> tuple[np.ndarray | None, ...]:
    tie = a == b
    half = g / 2
    ga = gb = None
    if ctx.needs_input_grad[0]:
        ga = sum_to_shape(np.where(tie, half, np.where(a_wins, g, 0)), a.shape)
    if ctx.needs_input_grad[1]:
        gb = sum_to_shape(np.where(tie, half, np.where(a_wins, 0, g)), b.shape)
    return ga, gb


class Where(Function):
    """``where(condition, a, b)``: elements of ``a`` where condition holds, else of ``b``."""

    @staticmethod
    def forward(
        ctx: Context, cond: np.ndarray, a: np.ndarray, b: np.ndarray, dtype: np.dtype
    ) -> np.ndarray:
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape, b.shape)
        return np.where(cond, a, b).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        zero = np.zeros((), g.dtype)
        return (
            None,
            sum_to_shape(np.where(cond, g, zero), sa) if ctx.needs_input_grad[1] else None,
            sum_to_shape(np.where(cond, zero, g), sb) if ctx.needs_input_grad[2] else None,
        )


class Exp(Function):
    """``exp(a)``."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.exp(a, dtype=_float_dtype(a.dtype))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return g * out


class Log(Function):
    """Natural logarithm; ``log(0) = -inf`` without a warning, as torch."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.log(a, dtype=_float_dtype(a.dtype))

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_tensors
        return g / a


class Sqrt(Function):
    """Square root."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.sqrt(a, dtype=_float_dtype(a.dtype))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return g / (2 * out)


class Abs(Function):
    """``|a|``; the gradient at 0 is 0, as torch."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_tensors
        return g * np.sign(a)


class Clamp(Function):
    """``clamp(a, min, max)``; the gradient flows where ``min <= a <= max``, as torch."""

    @staticmethod
    def forward(
        ctx: Context, a: np.ndarray, min: float | None, max: float | None, dtype: np.dtype
    ) -> np.ndarray:
        ctx.save_for_backward(a)
        ctx.bounds = (min, max)
        return np.clip(a, min, max).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (a,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        mask = np.ones(a.shape, dtype=bool)
        if lo is not None:
            mask &= a >= lo
        if hi is not None:
            mask &= a <= hi
        return np.where(mask, g, np.zeros((), g.dtype))


class Relu(Function):
    """``max(a, 0)``; the gradient at 0 is 0, as torch."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.maximum(a, np.zeros((), a.dtype))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return np.where(out > 0, g, np.zeros((), g.dtype))


class Sigmoid(Function):
    """Logistic sigmoid ``1 / (1 + exp(-a))``."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        a = a.astype(_float_dtype(a.dtype), copy=False)
        out = 1 / (1 + np.exp(-a))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)


class Tanh(Function):
    """Hyperbolic tangent."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.tanh(a, dtype=_float_dtype(a.dtype))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class Cast(Function):
    """Conversion to another dtype; the gradient is cast back by the engine."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return g


class Clone(Function):
    """A copy that stays in the graph."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return a.copy()

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return g


# --------------------------------------------------------------------------- linear algebra


class MatMul(Function):
    """``torch.matmul``: dot, matrix-vector, matrix-matrix and broadcast batched products."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        a, b = ctx.saved_tensors
        # Lift vectors to matrices as matmul does: a (n,) -> (1, n), b (n,) -> (n, 1).
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:
            g = g[..., None]
        if a.ndim == 1:
            g = g[..., None, :]
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = sum_to_shape(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = sum_to_shape(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape)
        return ga, gb


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with ``torch.matmul``'s rules for 1-D, 2-D and batched operands."""
    for name, x in (("input", a), ("other", b)):
        if not isinstance(x, (Tensor, np.ndarray)):
            raise TypeError(f"matmul(): {name} must be a Tensor, but got {type(x).__name__}")
    sa, sb = a.shape, b.shape
    if len(sa) == 0 or len(sb) == 0:
        raise RuntimeError(
            "both arguments to matmul need to be at least 1D, but they are "
            f"{len(sa)}D and {len(sb)}D"
        )
    if a.dtype != b.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {a.dtype} != {b.dtype}"
        )
    if len(sa) == 1 and len(sb) == 1:
        if sa != sb:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{sa[0]}] and src [{sb[0]}] to have "
                f"the same number of elements, but got {sa[0]} and {sb[0]} elements respectively"
            )
    elif len(sb) == 1:
        if sa[-1] != sb[0]:
            raise RuntimeError(
                f"size mismatch, got input ({sa[-2]}), mat ({_fmt_shape(sa[-2:])}), vec ({sb[0]})"
            )
    else:
        a_mat = (1, sa[0]) if len(sa) == 1 else sa[-2:]
        if a_mat[1] != sb[-2]:
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({_fmt_shape(a_mat)} and "
                f"{_fmt_shape(sb[-2:])})"
            )
        _broadcast_shape(sa[:-2], sb[:-2])
    return MatMul.apply(a, b)


# --------------------------------------------------------------------------- shape ops


class Reshape(Function):
    """A new shape for the same elements (torch's ``reshape`` and ``view``)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.in_shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return g.reshape(ctx.in_shape)


def reshape(a: Tensor, *shape: Any) -> Tensor:
    """Return ``a`` with a new shape (ints or one tuple; one entry may be -1)."""
    shape = _size_args(shape, "reshape")
    numel = a.data.size
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s < -1:
            raise RuntimeError(f"invalid shape dimension {s}")
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    if shape == a.shape:
        return a
    return Reshape.apply(a, shape)


class Permute(Function):
    """A reordering of the dimensions."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
        ctx.dims = dims
        return np.transpose(a, dims)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return np.transpose(g, np.argsort(ctx.dims))


def permute(a: Tensor, *dims: Any) -> Tensor:
    """Return ``a`` with its dimensions reordered as ``dims`` (ints or one tuple)."""
    dims = _size_args(dims, "permute")
    if len(dims) != a.ndim:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the "
            "length of the desired ordering of dimensions i.e. input.dim() = "
            f"{a.ndim} is not equal to len(dims) = {len(dims)}"
        )
    axes = tuple(normalize_dim(d, a.ndim) for d in dims)
    if len(set(axes)) != len(axes):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    if a.ndim == 0:
        return a
    return Permute.apply(a, axes)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """Return ``a`` with dimensions ``dim0`` and ``dim1`` swapped."""
    d0, d1 = normalize_dim(dim0, a.ndim), normalize_dim(dim1, a.ndim)
    if a.ndim < 2 or d0 == d1:
        return a
    axes = list(range(a.ndim))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Permute.apply(a, tuple(axes))


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` (inclusive) into one."""
    start = normalize_dim(start_dim, a.ndim, "start_dim")
    end = normalize_dim(end_dim, a.ndim, "end_dim")
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if a.ndim == 0:
        return reshape(a, 1)
    shape = a.shape[:start] + (int(np.prod(a.shape[start : end + 1])),) + a.shape[end + 1 :]
    return reshape(a, shape)


def squeeze(a: Tensor, dim: Any = None) -> Tensor:
    """Remove dimensions of size 1 (all of them, or those in ``dim`` that have size 1)."""
    axes = normalize_dims(dim, a.ndim)
    if axes is None:
        axes = tuple(range(a.ndim))
    shape = tuple(s for i, s in enumerate(a.shape) if not (i in axes and s == 1))
    return reshape(a, shape)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim`` (which may be ``a.dim()``)."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"unsqueeze(): dim must be an int, but got {dim!r}")
    n = a.ndim + 1
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    d = int(dim) % n
    return reshape(a, a.shape[:d] + (1,) + a.shape[d:])


class Expand(Function):
    """A broadcast view of ``a`` at a larger shape."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.in_shape = a.shape
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        return sum_to_shape(g, ctx.in_shape)


def expand(a: Tensor, *sizes: Any) -> Tensor:
    """Broadcast ``a`` to ``sizes`` (-1 keeps a dimension) without copying, as torch.expand."""
    sizes = _size_args(sizes, "expand")
    if len(sizes) < a.ndim:
        raise RuntimeError(
            f"expand(Tensor{{{list(a.shape)}}}, size={list(sizes)}): the number of sizes provided "
            f"({len(sizes)}) must be greater or equal to the number of dimensions in the tensor "
            f"({a.ndim})"
        )
    lead = len(sizes) - a.ndim
    target = []
    for i, s in enumerate(sizes):
        current = a.shape[i - lead] if i >= lead else None
        if s == -1:
            if current is None:
                raise RuntimeError(
                    f"The expanded size of the tensor (-1) isn't allowed in a leading, "
                    f"non-existing dimension {i}"
                )
            s = current
        if current is not None and current != 1 and current != s:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({current}) "
                f"at non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: "
                f"{list(a.shape)}"
            )
        target.append(s)
    if tuple(target) == a.shape:
        return a
    return Expand.apply(a, tuple(target))


class Cat(Function):
    """Concatenation along an existing dimension."""

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, dim: int, dtype: np.dtype) -> np.ndarray:
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in arrays]
        return np.concatenate([x.astype(dtype, copy=False) for x in arrays], axis=dim)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        grads = []
        start = 0
        lead = (slice(None),) * ctx.dim
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad, strict=True):
            grads.append(g[lead + (slice(start, start + size),)] if needed else None)
            start += size
        return tuple(grads)


def _tensor_list(tensors: Any, name: str) -> list[Any]:
    if isinstance(tensors, (Tensor, np.ndarray)) or not isinstance(tensors, Sequence):
        raise TypeError(
            f"{name}(): argument 'tensors' must be a sequence of Tensors, but got "
            f"{type(tensors).__name__}"
        )
    items = list(tensors)
    if not items:
        raise ValueError(f"{name}(): expected a non-empty list of Tensors")
    for i, t in enumerate(items):
        if not isinstance(t, (Tensor, np.ndarray)):
            raise TypeError(
                f"{name}(): expected a sequence of Tensors, but element {i} is {type(t).__name__}"
            )
    return items


def _promote_all(items: list[Any]) -> np.dtype:
    dtype = items[0].dtype
    for t in items[1:]:
        dtype = promote_types(dtype, t.dtype)
    return dtype


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate ``tensors`` along dimension ``dim``; dtypes are promoted as torch.cat."""
    items = _tensor_list(tensors, "cat")
    first = items[0]
    d = normalize_dim(dim, first.ndim)
    for i, t in enumerate(items[1:], start=1):
        if t.ndim != first.ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {first.ndim} and {t.ndim}"
            )
        for k in range(first.ndim):
            if k != d and t.shape[k] != first.shape[k]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{first.shape[k]} but got size {t.shape[k]} for tensor number {i} in the list."
                )
    if first.ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    return Cat.apply(*items, dim=d, dtype=_promote_all(items))


class Stack(Function):
    """Joining equal-shape tensors along a new dimension."""

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, dim: int, dtype: np.dtype) -> np.ndarray:
        ctx.dim = dim
        return np.stack([x.astype(dtype, copy=False) for x in arrays], axis=dim)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        lead = (slice(None),) * ctx.dim
        return tuple(
            g[lead + (i,)] if needed else None for i, needed in enumerate(ctx.needs_input_grad)
        )


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Stack equal-shape ``tensors`` along a new dimension ``dim``."""
    items = _tensor_list(tensors, "stack")
    first = items[0]
    n = first.ndim + 1
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"stack(): dim must be an int, but got {dim!r}")
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    for i, t in enumerate(items[1:], start=1):
        if t.shape != first.shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(first.shape)} at "
                f"entry 0 and {list(t.shape)} at entry {i}"
            )
    return Stack.apply(*items, dim=int(dim) % n, dtype=_promote_all(items))


# --------------------------------------------------------------------------- indexing


def _is_basic_key(key: tuple[Any, ...]) -> bool:
    return all(
        k is None or k is Ellipsis or isinstance(k, slice) or isinstance(k, numbers.Integral)
        for k in key
    )


def normalize_index(key: Any) -> tuple[Any, ...]:
    """Turn a torch-style index into a NumPy index tuple: Tensors become their arrays, lists
    become arrays, and negative slice steps are refused as torch refuses them."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k.data
        elif isinstance(k, list):
            k = np.asarray([x.data if isinstance(x, Tensor) else x for x in k])
        if isinstance(k, slice) and k.step is not None and k.step <= 0:
            raise ValueError("step must be greater than zero")
        if isinstance(k, np.ndarray):
            if k.dtype.kind not in "biu":
                raise IndexError(
                    "tensors used as indices must be long, int, byte or bool tensors, but got "
                    f"{k.dtype}"
                )
            if k.ndim == 0 and k.dtype.kind != "b":
                k = int(k)
        elif not (k is None or k is Ellipsis or isinstance(k, (slice, numbers.Integral))):
            raise IndexError(
                "only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                f"Variables are valid indices (got {type(k).__name__})"
            )
        out.append(k)
    return tuple(out)


class GetItem(Function):
    """``a[key]`` with NumPy/torch indexing; repeated indices accumulate their gradient."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, key: tuple[Any, ...]) -> np.ndarray:
        ctx.key = key
        ctx.in_shape = a.shape
        ctx.dtype = a.dtype
        try:
            return a[key]
        except IndexError as e:
            raise IndexError(
                str(e).replace(" axis ", " dimension ").replace("array", "tensor")
            ) from None

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        out = np.zeros(ctx.in_shape, dtype=g.dtype)
        if _is_basic_key(ctx.key):
            out[ctx.key] = g
        else:
            np.add.at(out, ctx.key, g)
        return out


def getitem(a: Tensor, key: Any) -> Tensor:
    """Index ``a`` like ``torch.Tensor.__getitem__``."""
    return GetItem.apply(a, normalize_index(key))


# --------------------------------------------------------------------------- reductions


def _restore_dims(g: np.ndarray, axes: tuple[int, ...] | None, keepdim: bool) -> np.ndarray:
    """Put back the reduced axes (as size 1) so ``g`` broadcasts against the input."""
    if keepdim or not axes:
        # axes None without keepdim leaves a 0-d gradient, which broadcasts as it is.
        return g
    return np.expand_dims(g, axes)


class Sum(Function):
    """Sum over ``axes`` (None: all)."""

    @staticmethod
    def forward(
        ctx: Context,
        a: np.ndarray,
        axes: tuple[int, ...] | None,
        keepdim: bool,
        dtype: np.dtype,
    ) -> np.ndarray:
        ctx.meta = (a.shape, axes, keepdim)
        return np.asarray(np.sum(a, axis=axes, keepdims=keepdim, dtype=dtype))

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        shape, axes, keepdim = ctx.meta
        return np.broadcast_to(_restore_dims(g, axes, keepdim), shape)


class Mean(Function):
    """Mean over ``axes`` (None: all); an empty reduction gives nan, without a warning."""

    @staticmethod
    def forward(
        ctx: Context, a: np.ndarray, axes: tuple[int, ...] | None, keepdim: bool
    ) -> np.ndarray:
        total = np.asarray(np.sum(a, axis=axes, keepdims=keepdim))
        count = a.size // total.size if total.size else 0
        ctx.meta = (a.shape, axes, keepdim, count)
        # Sum then divide: np.mean's own "Mean of empty slice" warning is not torch's behaviour.
        return total / np.asarray(count, a.dtype)

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        shape, axes, keepdim, count = ctx.meta
        g = _restore_dims(g, axes, keepdim)
        return np.broadcast_to(g / np.asarray(count, g.dtype), shape)


def _reduce_sum(a: Tensor, dim: Any, keepdim: bool, dtype: Any) -> Tensor:
    axes = normalize_dims(dim, a.ndim)
    if dtype is not None:
        out_dtype = as_dtype(dtype)
    elif is_floating(a.dtype):
        out_dtype = a.dtype
    else:
        out_dtype = int64  # torch sums bool and integer tensors in int64
    return Sum.apply(a, axes, bool(keepdim), out_dtype)


def _reduce_mean(a: Tensor, dim: Any, keepdim: bool) -> Tensor:
    if not is_floating(a.dtype):
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {a.dtype}"
        )
    return Mean.apply(a, normalize_dims(dim, a.ndim), bool(keepdim))


class AMax(Function):
    """Maximum (or minimum, ``largest=False``) over ``axes``; ties share the gradient evenly.

    ``whole=True`` is ``Tensor.max()``/``min()`` without a dim, whose gradient (torch's
    evenly_distribute_backward) goes to the nan elements when the result is nan; ``amax``'s
    gradient is then nan, as torch's.
    """

    @staticmethod
    def forward(
        ctx: Context,
        a: np.ndarray,
        axes: tuple[int, ...] | None,
        keepdim: bool,
        largest: bool,
        whole: bool = False,
    ) -> np.ndarray:
        reduce = np.max if largest else np.min
        out = np.asarray(reduce(a, axis=axes, keepdims=keepdim))
        ctx.save_for_backward(a, out)
        ctx.meta = (axes, keepdim, whole)
        return out

    @staticmethod
    def backward(ctx: Context, g: np.ndarray) -> np.ndarray:
        a, out = ctx.saved_tensors
        axes, keepdim, whole = ctx.meta
        values = _restore_dims(out, axes, keepdim)
        mask = a == values
        if whole and is_floating(a.dtype):
            mask |= np.isnan(a) & np.isnan(values)
        count = np.sum(mask, axis=axes, keepdims=True)
        return mask * (_restore_dims(g, axes, keepdim) / count)


class MaxDim(Function):
    """Maximum (or minimum) along one dimension, with the int64 index of the first extremum."""

    @staticmethod
    def forward(
        ctx: Context, a: np.ndarray, dim: int, keepdim: bool, largest: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        arg = np.argmax if largest else np.argmin
        if a.ndim == 0:
            return a.copy(), np.zeros((), dtype=np.int64)
        idx = arg(a, axis=dim, keepdims=True).astype(np.int64, copy=False)
        values = np.take_along_axis(a, idx, axis=dim)
        ctx.save_for_backward(idx)
        ctx.meta = (a.shape, dim, keepdim)
        if not keepdim:
            values, idx = np.squeeze(values, dim), np.squeeze(idx, dim)
        return values, idx

    @staticmethod
    def backward(ctx: Context, g: np.ndarray, g_indices: None) -> np.ndarray:
        if not ctx.saved_tensors:
            return g
        (idx,) = ctx.saved_tensors
        shape, dim, keepdim = ctx.meta
        out = np.zeros(shape, dtype=g.dtype)
        np.put_along_axis(out, idx, g if keepdim else np.expand_dims(g, dim), axis=dim)
        return out


class MaxMin(NamedTuple):
    """``(values, indices)`` returned by ``max``/``min`` along a dimension (torch.return_types)."""

    values: Tensor
    indices: Tensor


def _check_nonempty(a: Tensor, name: str, axes: tuple[int, ...] | None) -> None:
    if axes is None:
        if a.data.size == 0:
            raise RuntimeError(
                f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument."
            )
        return
    for ax in axes:
        if a.shape[ax] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {ax} to have non-zero size.")


def extremum(a: Tensor, dim: Any, keepdim: bool, largest: bool) -> Any:
    """Front door of ``max``/``min``: all elements, along ``dim`` with indices, or elementwise
    against another tensor."""
    name = "max" if largest else "min"
    if isinstance(dim, (Tensor, np.ndarray)):
        return maximum(a, dim) if largest else minimum(a, dim)
    if dim is None:
        _check_nonempty(a, name, None)
        return AMax.apply(a, None, False, largest, whole=True)
    d = normalize_dim(dim, a.ndim)
    if a.ndim:
        _check_nonempty(a, name, (d,))
    values, indices = MaxDim.apply(a, d, bool(keepdim), largest)
    return MaxMin(values, indices)


def amax(a: Tensor, dim: Any = (), keepdim: bool = False, largest: bool = True) -> Tensor:
    """Maximum over ``dim`` (default: all), ties sharing the gradient, as ``torch.amax``."""
    axes = normalize_dims(dim, a.ndim)
    _check_nonempty(a, "amax" if largest else "amin", axes)
    return AMax.apply(a, axes, bool(keepdim), largest)


def argextremum(a: Tensor, dim: Any, keepdim: bool, largest: bool) -> Tensor:
    """Index of the first maximum (or minimum), as int64; ``dim=None`` flattens first."""
    arg = np.argmax if largest else np.argmin
    data = a.data
    if dim is None:
        if data.size == 0:
            raise RuntimeError(
                f"{arg.__name__}(): Expected reduction dim to be specified for input.numel() == 0."
            )
        idx = np.asarray(arg(data), dtype=np.int64)
        return Tensor(idx.reshape((1,) * data.ndim) if keepdim else idx)
    d = normalize_dim(dim, data.ndim)
    if data.ndim == 0:
        return Tensor(np.zeros((), dtype=np.int64))
    if data.shape[d] == 0:
        raise IndexError(f"{arg.__name__}(): Expected reduction dim {d} to have non-zero size.")
    return Tensor(arg(data, axis=d, keepdims=bool(keepdim)).astype(np.int64, copy=False))


# --------------------------------------------------------------------------- front doors


def add(a: Any, b: Any) -> Tensor:
    """``a + b`` with torch's broadcasting and type promotion."""
    return _binary(Add, a, b)


def sub(a: Any, b: Any) -> Tensor:
    """``a - b``; bool operands are refused, as torch refuses them."""
    if _is_bool(a) and _is_bool(b):
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. Use the "
            "`^` or `logical_xor()` operator instead."
        )
    return _binary(Sub, a, b)


def mul(a: Any, b: Any) -> Tensor:
    """``a * b`` with torch's broadcasting and type promotion."""
    return _binary(Mul, a, b)


def div(a: Any, b: Any) -> Tensor:
    """True division; integer operands give the default float dtype, as torch."""
    return _binary(Div, a, b, _float_dtype(result_type(a, b)))


def neg(a: Tensor) -> Tensor:
    """``-a``; refused for bool tensors, as torch."""
    if a.dtype.kind == "b":
        raise RuntimeError(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying "
            "to invert a mask, use the `~` or `logical_not()` operator instead."
        )
    return Neg.apply(a)


def _is_bool(x: Any) -> bool:
    if isinstance(x, (Tensor, np.ndarray)):
        return x.dtype.kind == "b"
    return isinstance(x, (bool, np.bool_))


def power(a: Any, b: Any) -> Tensor:
    """``a ** b``: a Tensor base with a number or Tensor exponent, or a number base."""
    dtype = result_type(a, b)
    if not is_floating(dtype) and _has_negative(b):
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    if isinstance(a, Tensor) and isinstance(b, _Scalar) and not isinstance(b, (bool, np.bool_)):
        return PowScalar.apply(a, b, dtype=dtype)
    return _binary(Pow, a, b, dtype)


def _has_negative(x: Any) -> bool:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    return bool(data.dtype.kind in "iu" and data.size and np.min(data) < 0)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; at ties each input gets half the gradient, as torch."""
    return _binary(Maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; at ties each input gets half the gradient, as torch."""
    return _binary(Minimum, a, b)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """Pick ``input`` where ``condition`` is True, else ``other`` (all broadcast together)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype.kind != "b":
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got {cond.dtype}")
    shape = _broadcast_shape(_shape_of(input), _shape_of(other))
    _broadcast_shape(cond.shape, shape)
    dtype = result_type(input, other)
    return Where.apply(cond, _as_operand(input, dtype), _as_operand(other, dtype), dtype=dtype)


def clamp(a: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Limit ``a`` to ``[min, max]`` (numbers; either may be None)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    for name, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, _Scalar):
            raise TypeError(f"clamp(): {name} must be a number or None, but got {v!r}")
    bounds = [v for v in (min, max) if v is not None]
    return Clamp.apply(a, min, max, dtype=result_type(a, *bounds))


def compare(op: Any, a: Any, b: Any) -> Tensor:
    """Elementwise comparison (``np.less`` etc.) in the promoted dtype; a bool Tensor, no grad."""
    _broadcast_shape(_shape_of(a), _shape_of(b))
    dtype = result_type(a, b)
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    return Tensor(op(np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype)))


def logical(op: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``&``, ``|``, ``^`` on bool or integer tensors (no grad)."""
    _broadcast_shape(_shape_of(a), _shape_of(b))
    dtype = result_type(a, b)
    if is_floating(dtype):
        raise TypeError(
            f"{op.__name__} is only supported for bool and integer tensors, not {dtype}"
        )
    x = a.data if isinstance(a, Tensor) else a
    y = b.data if isinstance(b, Tensor) else b
    return Tensor(op(np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype)))


def cast(a: Tensor, dtype: np.dtype) -> Tensor:
    """Return ``a`` converted to ``dtype`` (``a`` itself if it already has it)."""
    if a.dtype == dtype:
        return a
    return Cast.apply(a, dtype)
