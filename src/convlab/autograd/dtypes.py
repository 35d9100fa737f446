"""Data types and PyTorch's type-promotion rules, expressed with NumPy dtypes.

Tensors hold NumPy arrays, so a dtype is a ``numpy.dtype``. The promotion rules are torch's, which
differ from NumPy's in two ways that matter here: a Python scalar never widens a tensor of its own
category (``float32 tensor * 0.5`` stays float32, ``int32 tensor + 1`` stays int32), and a 0-d
tensor ranks below tensors with dimensions (``float32[3] + float64[]`` is float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "bool_",
    "float16",
    "float32",
    "float64",
    "get_default_dtype",
    "int8",
    "int16",
    "int32",
    "int64",
    "result_type",
    "uint8",
]

bool_ = np.dtype(np.bool_)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)

_DEFAULT_FLOAT = float32

# Category ranks: bool < integer < floating. Complex numbers are not supported.
_BOOL, _INT, _FLOAT = 0, 1, 2


def get_default_dtype() -> np.dtype:
    """Return the dtype that Python floats and floating factories produce (float32, as torch)."""
    return _DEFAULT_FLOAT


def as_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """Convert ``dtype`` (a numpy dtype, a scalar type such as ``np.float32``, or ``float``,
    ``int``, ``bool``) to a ``numpy.dtype`` supported by tensors."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{name} must be a NumPy dtype such as convlab.float32, but got {dtype!r}"
        ) from None
    if dt.kind not in "biuf":
        raise TypeError(f"{name} must be a bool, integer or floating dtype, but got {dt}")
    return dt


def category(dtype: np.dtype) -> int:
    """Return 0 for bool, 1 for integer and 2 for floating dtypes."""
    kind = dtype.kind
    if kind == "f":
        return _FLOAT
    if kind == "b":
        return _BOOL
    return _INT


def is_floating(dtype: np.dtype) -> bool:
    """Return True for floating dtypes, the only ones that can require gradients."""
    return dtype.kind == "f"


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """Promote two dtypes as ``torch.promote_types`` does."""
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        # NumPy would widen int64 + float16 to float64; torch keeps the floating operand's dtype.
        return a if ca > cb else b
    return np.promote_types(a, b)


def scalar_dtype(value: bool | int | float) -> np.dtype:
    """Return the dtype a Python scalar takes on its own (bool, int64 or the default float)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    return _DEFAULT_FLOAT


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    # torch's combine_categories: a lower-priority operand only matters when it belongs to a
    # higher category (or when the higher-priority operands are all bool).
    if higher is None:
        return lower
    if lower is None:
        return higher
    if category(higher) == _FLOAT:
        return higher
    if higher == bool_ or category(lower) == _FLOAT:
        return promote_types(higher, lower)
    return higher


def result_type(*operands: Any) -> np.dtype:
    """Return the dtype of an elementwise op over ``operands`` under torch's promotion rules.

    Operands are objects with ``dtype`` and ``ndim`` (tensors, arrays) or Python scalars.
    """
    dim: np.dtype | None = None
    zero: np.dtype | None = None
    wrapped: np.dtype | None = None
    for op in operands:
        if isinstance(op, (bool, int, float, np.generic)):
            # NumPy scalars count as Python numbers: torch treats them as wrapped numbers too.
            dt = scalar_dtype(op)
            wrapped = dt if wrapped is None else promote_types(wrapped, dt)
        elif op.ndim == 0:
            zero = op.dtype if zero is None else promote_types(zero, op.dtype)
        else:
            dim = op.dtype if dim is None else promote_types(dim, op.dtype)
    result = _combine(dim, _combine(zero, wrapped))
    assert result is not None, "result_type needs at least one operand"
    return result
