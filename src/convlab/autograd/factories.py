"""Creating tensors: ``tensor()`` with torch's dtype inference, the factories and the seeded RNG.

Random factories draw from one module-level ``numpy.random.Generator``. ``manual_seed`` reseeds it
in place, so code that kept a reference from ``default_generator()`` (initialisers, dropout, data
shuffling) sees the new seed too.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab.autograd.dtypes import (
    as_dtype,
    bool_,
    get_default_dtype,
    int64,
    is_floating,
    promote_types,
)
from convlab.autograd.ops import _size_args
from convlab.autograd.tensor import Tensor

__all__ = [
    "arange",
    "default_generator",
    "empty",
    "from_numpy",
    "full",
    "manual_seed",
    "ones",
    "ones_like",
    "rand",
    "randint",
    "randn",
    "randperm",
    "tensor",
    "zeros",
    "zeros_like",
]

_generator = np.random.default_rng()


def default_generator() -> np.random.Generator:
    """Return the generator behind ``randn``/``rand``/``randint``/``randperm``.

    Draw from it (``default_generator().standard_normal(...)``) wherever randomness should follow
    ``manual_seed``. The object stays the same across ``manual_seed`` calls.
    """
    return _generator


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the default generator, as ``torch.manual_seed`` (the streams differ from torch's)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"manual_seed(): seed must be an int, but got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise RuntimeError(
            f"Overflow when unpacking long: seed must be in [-2**63, 2**64), but got {seed}"
        )
    # Reseed in place (not a new Generator) so references held elsewhere follow the seed.
    _generator.bit_generator.state = np.random.PCG64(seed % 2**64).state
    return _generator


def _check_requires_grad(dtype: np.dtype, requires_grad: bool) -> None:
    if requires_grad and not is_floating(dtype):
        raise RuntimeError(
            f"only Tensors of floating point dtype can require gradients, but got dtype {dtype}"
        )


def _wrap(data: np.ndarray, requires_grad: bool) -> Tensor:
    _check_requires_grad(data.dtype, requires_grad)
    return Tensor(data, requires_grad=requires_grad)


def _infer_dtype(data: Any) -> np.dtype:
    """torch's ``infer_scalar_type``: Python float -> default float, int -> int64,
    bool -> bool; arrays and tensors keep their dtype; sequences promote over their items."""
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, (np.ndarray, np.generic)):
        return as_dtype(data.dtype, "data")
    if isinstance(data, bool):
        return bool_
    if isinstance(data, numbers.Integral):
        return int64
    if isinstance(data, numbers.Real):
        return get_default_dtype()
    if isinstance(data, (list, tuple)):
        result: np.dtype | None = None
        for item in data:
            dt = _infer_dtype(item)
            result = dt if result is None else promote_types(result, dt)
        return get_default_dtype() if result is None else result
    raise TypeError(
        f"tensor(): data must be a number, a (nested) sequence of numbers, a numpy.ndarray or a "
        f"Tensor, but got {type(data).__name__}"
    )


def _unwrap(data: Any) -> Any:
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, (list, tuple)):
        return [_unwrap(x) for x in data]
    return data


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Create a tensor from ``data``, copying it, with ``torch.tensor``'s dtype rules.

    NumPy arrays and Tensors keep their dtype; Python floats give float32, ints int64 and bools
    bool; a sequence takes the promotion of its items. ``dtype`` overrides the inference.

        cl.tensor([[1.0, 2.0]], requires_grad=True)   # float32, 1x2
    """
    inferred = _infer_dtype(data)
    dt = inferred if dtype is None else as_dtype(dtype)
    try:
        array = np.array(_unwrap(data), dtype=dt, copy=True)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"tensor(): could not convert data to a {dt} array: {e}") from None
    return _wrap(array, requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap ``array`` without copying; the tensor and the array share memory."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy(): expected np.ndarray, but got {type(array).__name__}")
    as_dtype(array.dtype, "array.dtype")
    return Tensor(array)


def _shape(size: tuple[Any, ...], name: str) -> tuple[int, ...]:
    shape = _size_args(size, name)
    for s in shape:
        if s < 0:
            raise RuntimeError(
                f"{name}: Dimension size must be non-negative, but got size {list(shape)}"
            )
    return shape


def _float_or(dtype: Any) -> np.dtype:
    return get_default_dtype() if dtype is None else as_dtype(dtype)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; ``size`` is ints or one tuple; float32 unless ``dtype`` is given."""
    return _wrap(np.zeros(_shape(size, "zeros"), _float_or(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones; ``size`` is ints or one tuple; float32 unless ``dtype`` is given."""
    return _wrap(np.ones(_shape(size, "ones"), _float_or(dtype)), requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """As torch.empty; the memory is zero-filled here so results are reproducible."""
    return _wrap(np.zeros(_shape(size, "empty"), _float_or(dtype)), requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; the dtype follows the value's type as torch.full."""
    dt = _infer_dtype(fill_value) if dtype is None else as_dtype(dtype)
    return _wrap(np.full(_shape((size,), "full"), fill_value, dtype=dt), requires_grad)


def zeros_like(input: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and, unless given, the dtype) of ``input``."""
    dt = input.dtype if dtype is None else as_dtype(dtype)
    return _wrap(np.zeros(input.shape, dt), requires_grad)


def ones_like(input: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and, unless given, the dtype) of ``input``."""
    dt = input.dtype if dtype is None else as_dtype(dtype)
    return _wrap(np.ones(input.shape, dt), requires_grad)


def _random_float_dtype(dtype: Any, name: str) -> np.dtype:
    dt = _float_or(dtype)
    if not is_floating(dt):
        raise TypeError(f"{name}(): dtype must be a floating point dtype, but got {dt}")
    return dt


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Samples of the standard normal distribution, from the seeded default generator."""
    dt = _random_float_dtype(dtype, "randn")
    shape = _shape(size, "randn")
    if dt in (np.float32, np.float64):
        data = _generator.standard_normal(shape, dtype=dt)
    else:
        data = _generator.standard_normal(shape).astype(dt)
    return _wrap(data, requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Samples of the uniform distribution on [0, 1), from the seeded default generator."""
    dt = _random_float_dtype(dtype, "rand")
    shape = _shape(size, "rand")
    if dt in (np.float32, np.float64):
        data = _generator.random(shape, dtype=dt)
    else:
        data = _generator.random(shape).astype(dt)
    return _wrap(data, requires_grad)


def randint(low: int, high: Any = None, size: Any = None, dtype: Any = None) -> Tensor:
    """Integers uniform in ``[low, high)``, int64 by default: ``randint(low, high, size)`` or
    ``randint(high, size)``, as torch."""
    if isinstance(high, (tuple, list)) and size is None:
        low, high, size = 0, low, high  # the randint(high, size) form
    if size is None:
        raise TypeError("randint(): missing the required argument 'size' (a tuple of ints)")
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    dt = int64 if dtype is None else as_dtype(dtype)
    shape = _shape((size,), "randint")
    return Tensor(_generator.integers(low, high, size=shape).astype(dt, copy=False))


def randperm(n: int, dtype: Any = None) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype`` is given)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise RuntimeError(f"randperm(): n must be a non-negative int, but got n={n!r}")
    dt = int64 if dtype is None else as_dtype(dtype)
    return Tensor(_generator.permutation(int(n)).astype(dt, copy=False))


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values ``start, start + step, ...`` below ``end``; int64 for int arguments, else float32.

    Values are computed in float64 as ``start + i * step`` and then cast, as torch does.
    """
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"arange(): {name} must be a number, but got {v!r}")
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(
            "upper bound and larger bound inconsistent with step sign: "
            f"start={start}, end={end}, step={step}"
        )
    if dtype is None:
        all_int = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dt = int64 if all_int else get_default_dtype()
    else:
        dt = as_dtype(dtype)
    count = int(np.ceil((end - start) / step))
    if all(isinstance(v, numbers.Integral) for v in (start, end, step)):
        data = np.arange(start, end, step, dtype=np.int64).astype(dt, copy=False)
    else:
        data = (start + np.arange(count, dtype=np.float64) * step).astype(dt)
    return _wrap(data, requires_grad)
