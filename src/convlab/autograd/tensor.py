"""``Tensor``: a NumPy array with a gradient, a ``requires_grad`` flag and the node that made it.

The operators and methods follow ``torch.Tensor``; each is a one-line call into ``ops``, where
the argument checks and the Functions live.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab.autograd import grad_mode
from convlab.autograd.dtypes import (
    as_dtype,
    bool_,
    float32,
    float64,
    int32,
    int64,
    is_floating,
)

if TYPE_CHECKING:
    from convlab.autograd.function import Context

__all__ = ["Tensor"]

_REQUIRES_FLOAT = "only Tensors of floating point dtype can require gradients"
# torch's repr omits these dtypes; every other dtype is printed.
_IMPLICIT_DTYPES = (float32, int64, bool_)


class Tensor:
    """An n-dimensional array that records the operations applied to it for ``backward()``.

    ``Tensor(array)`` wraps a NumPy array without copying (as ``torch.from_numpy``); data that is
    not an ndarray becomes float32, as ``torch.Tensor(data)``. Use ``convlab.tensor(data)`` for
    torch's dtype inference and a copy.

    Attributes:
        data: the ndarray (assignable: ``p.data = new_array`` swaps it outside the graph).
        grad: the accumulated gradient (a Tensor of the same dtype and shape) or None.
        requires_grad: whether operations on this tensor are recorded.
        grad_fn: the node (``Context``) that produced this tensor; None for leaves.
    """

    __slots__ = ("_data", "_grad", "_requires_grad", "grad_fn", "_output_nr", "__weakref__")
    # Make NumPy hand mixed expressions (ndarray + Tensor) to Tensor's reflected operators.
    __array_ufunc__ = None
    device = "cpu"

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        if not isinstance(data, np.ndarray):
            data = np.asarray(data.data if isinstance(data, Tensor) else data, dtype=float32)
        self._data = data
        self._grad: Tensor | None = None
        self._requires_grad = False
        self.grad_fn: Context | None = None
        self._output_nr = 0
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make_result(cls, data: np.ndarray, grad_fn: Context, output_nr: int) -> Tensor:
        """Wrap an op's output: a non-leaf that requires grad."""
        t = cls.__new__(cls)
        t._data = data
        t._grad = None
        t._requires_grad = True
        t.grad_fn = grad_fn
        t._output_nr = output_nr
        return t

    # ------------------------------------------------------------------ attributes

    @property
    def data(self) -> np.ndarray:
        """The underlying NumPy array."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        if isinstance(value, Tensor):
            value = value._data
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"data must be a Tensor or numpy.ndarray, but got {type(value).__name__}"
            )
        self._data = value

    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by ``backward()`` (None until one reaches this tensor)."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type "
                    f"{type(value).__name__}"
                )
            if value.shape != self.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: expected {self.shape}, "
                    f"got {value.shape}"
                )
            if value.dtype != self.dtype:
                raise RuntimeError(
                    f"assigned grad has data of a different type: expected {self.dtype}, "
                    f"got {value.dtype}"
                )
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        """Whether operations on this tensor are recorded for ``backward()``."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf and return self."""
        requires_grad = bool(requires_grad)
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad and not is_floating(self._data.dtype):
            raise RuntimeError(f"{_REQUIRES_FLOAT}, but got dtype {self._data.dtype}")
        self._requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded operation (their ``.grad`` is kept)."""
        return self.grad_fn is None

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor too at the next ``backward()``."""
        if self.grad_fn is None:
            return
        self.grad_fn._retained[self._output_nr] = weakref.ref(self)

    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each dimension, as a tuple."""
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        """The element type, a ``numpy.dtype``."""
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def dim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape, or the size of dimension ``dim``."""
        if dim is None:
            return self._data.shape
        if self.ndim == 0:
            raise IndexError(f"dimension specified as {dim} but tensor has no dimensions")
        return self._data.shape[_ops.normalize_dim(dim, self.ndim)]

    def numel(self) -> int:
        """The number of elements."""
        return self._data.size

    def is_floating_point(self) -> bool:
        """True for floating dtypes."""
        return is_floating(self._data.dtype)

    # ------------------------------------------------------------------ conversion

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return self._data.item()

    def tolist(self) -> Any:
        """The data as (nested) Python lists of numbers."""
        return self._data.tolist()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied); refused while ``requires_grad`` is set."""
        if self._requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return self._data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self._data if dtype is None else self._data.astype(dtype, copy=False)
        return data.copy() if copy else data

    def detach(self) -> Tensor:
        """A tensor sharing this data, cut off from the graph."""
        return Tensor(self._data)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph."""
        return _ops.Clone.apply(self)

    def contiguous(self) -> Tensor:
        """Return self (NumPy handles memory layout; kept for torch-compatible code)."""
        return self

    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Tensor:
        """Convert to ``dtype``; the device ``"cpu"`` is accepted and ignored."""
        for arg in args:
            if isinstance(arg, str):
                device = arg
            else:
                dtype = arg
        if device is not None and str(device) != "cpu":
            raise ValueError(f"to(): convlab runs on the CPU only, but got device={device!r}")
        if dtype is None:
            return self
        return _ops.cast(self, as_dtype(dtype))

    def type(self, dtype: Any) -> Tensor:
        """Convert to ``dtype``."""
        return _ops.cast(self, as_dtype(dtype))

    def float(self) -> Tensor:
        """Convert to float32."""
        return _ops.cast(self, float32)

    def double(self) -> Tensor:
        """Convert to float64."""
        return _ops.cast(self, float64)

    def long(self) -> Tensor:
        """Convert to int64."""
        return _ops.cast(self, int64)

    def int(self) -> Tensor:
        """Convert to int32."""
        return _ops.cast(self, int32)

    def bool(self) -> Tensor:
        """Convert to bool."""
        return _ops.cast(self, bool_)

    # ------------------------------------------------------------------ autograd

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of the leaves it came from.

        ``gradient`` is d(loss)/d(self); it may be left out for a one-element tensor. The graph's
        saved arrays are freed afterwards unless ``retain_graph=True``.
        """
        _function.backward([self], [gradient], retain_graph=retain_graph)

    # ------------------------------------------------------------------ in place

    def _check_inplace(self) -> None:
        if self._requires_grad and grad_mode.is_grad_enabled():
            if self.grad_fn is None:
                raise RuntimeError(
                    "a leaf Variable that requires grad is being used in an in-place operation."
                )
            raise RuntimeError(
                "in-place operations on a tensor that requires grad are not recorded by "
                "convlab's autograd; use an out-of-place op, or wrap it in no_grad()"
            )

    def _inplace(self, op: Any, other: Any) -> Tensor:
        self._check_inplace()
        value = other._data if isinstance(other, Tensor) else np.asarray(other)
        if _ops._broadcast_shape(self.shape, value.shape) != self.shape:
            raise RuntimeError(
                f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                f"{list(_ops._broadcast_shape(self.shape, value.shape))}"
            )
        op(self._data, value, out=self._data, casting="same_kind")
        return self

    def zero_(self) -> Tensor:
        """Fill with zeros in place (``p.grad.zero_()``)."""
        self._check_inplace()
        self._data[...] = 0
        return self

    def fill_(self, value: Any) -> Tensor:
        """Fill with ``value`` in place."""
        self._check_inplace()
        self._data[...] = value
        return self

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to this shape) into this tensor in place."""
        self._check_inplace()
        value = src._data if isinstance(src, Tensor) else np.asarray(src)
        self._data[...] = np.broadcast_to(value, self.shape)
        return self

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        """In-place ``self += alpha * other``."""
        if alpha != 1:
            other = (other._data if isinstance(other, Tensor) else np.asarray(other)) * alpha
        return self._inplace(np.add, other)

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        """In-place ``self -= alpha * other``."""
        if alpha != 1:
            other = (other._data if isinstance(other, Tensor) else np.asarray(other)) * alpha
        return self._inplace(np.subtract, other)

    def mul_(self, other: Any) -> Tensor:
        """In-place ``self *= other``."""
        return self._inplace(np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        """In-place ``self /= other``."""
        return self._inplace(np.true_divide, other)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._check_inplace()
        self._data[_ops.normalize_index(key)] = value._data if isinstance(value, Tensor) else value

    # ------------------------------------------------------------------ arithmetic

    def __add__(self, other: Any) -> Tensor:
        return _ops.add(self, other) if _ops._is_operand(other) else NotImplemented

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self) if _ops._is_operand(other) else NotImplemented

    def __sub__(self, other: Any) -> Tensor:
        return _ops.sub(self, other) if _ops._is_operand(other) else NotImplemented

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.sub(other, self) if _ops._is_operand(other) else NotImplemented

    def __mul__(self, other: Any) -> Tensor:
        return _ops.mul(self, other) if _ops._is_operand(other) else NotImplemented

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(other, self) if _ops._is_operand(other) else NotImplemented

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.div(self, other) if _ops._is_operand(other) else NotImplemented

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.div(other, self) if _ops._is_operand(other) else NotImplemented

    def __pow__(self, other: Any) -> Tensor:
        return _ops.power(self, other) if _ops._is_operand(other) else NotImplemented

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.power(other, self) if _ops._is_operand(other) else NotImplemented

    def __matmul__(self, other: Any) -> Tensor:
        return (
            _ops.matmul(self, other) if isinstance(other, (Tensor, np.ndarray)) else NotImplemented
        )

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self) if isinstance(other, np.ndarray) else NotImplemented

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.Abs.apply(self)

    def add(self, other: Any, alpha: Any = 1) -> Tensor:
        """``self + alpha * other``."""
        return _ops.add(self, other if alpha == 1 else _ops.mul(other, alpha))

    def sub(self, other: Any, alpha: Any = 1) -> Tensor:
        """``self - alpha * other``."""
        return _ops.sub(self, other if alpha == 1 else _ops.mul(other, alpha))

    def mul(self, other: Any) -> Tensor:
        """``self * other``."""
        return _ops.mul(self, other)

    def div(self, other: Any) -> Tensor:
        """``self / other``."""
        return _ops.div(self, other)

    def pow(self, exponent: Any) -> Tensor:
        """``self ** exponent``."""
        return _ops.power(self, exponent)

    def matmul(self, other: Any) -> Tensor:
        """Matrix product, as ``torch.matmul``."""
        return _ops.matmul(self, other)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise maximum."""
        return _ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        """Elementwise minimum."""
        return _ops.minimum(self, other)

    # ------------------------------------------------------------------ comparison and logic

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.compare(np.equal, self, other) if _ops._is_operand(other) else NotImplemented

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        if not _ops._is_operand(other):
            return NotImplemented
        return _ops.compare(np.not_equal, self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _ops.compare(np.less, self, other) if _ops._is_operand(other) else NotImplemented

    def __le__(self, other: Any) -> Tensor:
        if not _ops._is_operand(other):
            return NotImplemented
        return _ops.compare(np.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _ops.compare(np.greater, self, other) if _ops._is_operand(other) else NotImplemented

    def __ge__(self, other: Any) -> Tensor:
        if not _ops._is_operand(other):
            return NotImplemented
        return _ops.compare(np.greater_equal, self, other)

    def __and__(self, other: Any) -> Tensor:
        return (
            _ops.logical(np.bitwise_and, self, other) if _ops._is_operand(other) else NotImplemented
        )

    __rand__ = __and__

    def __or__(self, other: Any) -> Tensor:
        return (
            _ops.logical(np.bitwise_or, self, other) if _ops._is_operand(other) else NotImplemented
        )

    __ror__ = __or__

    def __xor__(self, other: Any) -> Tensor:
        return (
            _ops.logical(np.bitwise_xor, self, other) if _ops._is_operand(other) else NotImplemented
        )

    __rxor__ = __xor__

    def __invert__(self) -> Tensor:
        if is_floating(self.dtype):
            raise TypeError(
                f"~ (bitwise not) is only supported for bool and integer tensors, not {self.dtype}"
            )
        return Tensor(np.invert(self._data))

    __hash__ = object.__hash__

    # ------------------------------------------------------------------ shape

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (ints or one tuple; one size may be -1)."""
        return _ops.reshape(self, *shape)

    def view(self, *shape: Any) -> Tensor:
        """As ``reshape`` (NumPy copies only when it must, so no contiguity rule applies)."""
        return _ops.reshape(self, *shape)

    def view_as(self, other: Tensor) -> Tensor:
        """Reshape to ``other.shape``."""
        return _ops.reshape(self, other.shape)

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the dimensions (ints or one tuple)."""
        return _ops.permute(self, *dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap two dimensions."""
        return _ops.transpose(self, dim0, dim1)

    def t(self) -> Tensor:
        """Transpose a tensor of at most 2 dimensions."""
        if self.ndim > 2:
            raise RuntimeError(
                f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D"
            )
        return _ops.transpose(self, 0, -1) if self.ndim == 2 else self

    @property
    def T(self) -> Tensor:
        """All dimensions reversed."""
        return _ops.permute(self, tuple(reversed(range(self.ndim))))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dimensions ``start_dim..end_dim`` into one."""
        return _ops.flatten(self, start_dim, end_dim)

    def squeeze(self, dim: Any = None) -> Tensor:
        """Remove size-1 dimensions (all, or those in ``dim``)."""
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a size-1 dimension at ``dim``."""
        return _ops.unsqueeze(self, dim)

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to ``sizes`` without copying (-1 keeps a dimension)."""
        return _ops.expand(self, *sizes)

    def expand_as(self, other: Tensor) -> Tensor:
        """Broadcast to ``other.shape``."""
        return _ops.expand(self, other.shape)

    def __getitem__(self, key: Any) -> Tensor:
        return _ops.getitem(self, key)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    # ------------------------------------------------------------------ reductions

    def sum(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
        """Sum over ``dim`` (an int, a tuple, or None for all); bool/int sums are int64."""
        return _ops._reduce_sum(self, dim, keepdim, dtype)

    def mean(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Mean over ``dim`` (an int, a tuple, or None for all); floating tensors only."""
        return _ops._reduce_mean(self, dim, keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        """Largest element (ties share the gradient); with ``dim``, ``(values, indices)``; with a
        Tensor, the elementwise maximum."""
        return _ops.extremum(self, dim, keepdim, largest=True)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        """Smallest element (ties share the gradient); with ``dim``, ``(values, indices)``; with
        a Tensor, the elementwise minimum."""
        return _ops.extremum(self, dim, keepdim, largest=False)

    def amax(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        """Maximum over ``dim`` (default all); ties share the gradient evenly."""
        return _ops.amax(self, dim, keepdim, largest=True)

    def amin(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        """Minimum over ``dim`` (default all); ties share the gradient evenly."""
        return _ops.amax(self, dim, keepdim, largest=False)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index (int64) of the first maximum; over the flattened tensor when ``dim`` is None."""
        return _ops.argextremum(self, dim, keepdim, largest=True)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index (int64) of the first minimum; over the flattened tensor when ``dim`` is None."""
        return _ops.argextremum(self, dim, keepdim, largest=False)

    # ------------------------------------------------------------------ elementwise functions

    def exp(self) -> Tensor:
        """``e ** self``."""
        return _ops.Exp.apply(self)

    def log(self) -> Tensor:
        """Natural logarithm."""
        return _ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        """Square root."""
        return _ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        """Absolute value."""
        return _ops.Abs.apply(self)

    def relu(self) -> Tensor:
        """``max(self, 0)``."""
        return _ops.Relu.apply(self)

    def sigmoid(self) -> Tensor:
        """Logistic sigmoid."""
        return _ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent."""
        return _ops.Tanh.apply(self)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit to ``[min, max]``."""
        return _ops.clamp(self, min, max)

    clip = clamp

    # ------------------------------------------------------------------ Python protocol

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous "
                f"(it has {self._data.size} elements)"
            )
        return bool(self._data.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "biu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.item())

    def __repr__(self) -> str:
        data = self._data
        integral = data.dtype.kind != "f" or bool(np.all(np.mod(data[np.isfinite(data)], 1) == 0))
        body = np.array2string(
            data,
            separator=", ",
            prefix="tensor(",
            precision=4,
            floatmode="maxprec" if integral else "fixed",
            threshold=1000,
            edgeitems=3,
        )
        extras = []
        if data.size == 0 and data.ndim != 1:
            extras.append(f"size={data.shape}")
        if data.dtype not in _IMPLICIT_DTYPES:
            extras.append(f"dtype={data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"


# Imported last: these modules build on Tensor (Functions create Tensors), and Tensor's methods
# reach them only at call time. convlab.autograd imports this module first.
from convlab.autograd import function as _function  # noqa: E402
from convlab.autograd import ops as _ops  # noqa: E402
