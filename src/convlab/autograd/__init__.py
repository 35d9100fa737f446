"""convlab's autograd: ``Tensor``, ``Function``, the backward engine, grad mode and ``gradcheck``.

Only NumPy and the standard library are used here; every layer above builds on these names.

    x = cl.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()      # x.grad == tensor([2., 4.])
"""

from __future__ import annotations

# tensor first: function and ops build on the Tensor class (see the end of tensor.py).
from convlab.autograd.tensor import Tensor  # isort: skip
from convlab.autograd.dtypes import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    result_type,
    uint8,
)
from convlab.autograd.factories import (
    arange,
    default_generator,
    empty,
    from_numpy,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from convlab.autograd.function import Context, Function, backward, grad, sum_to_shape
from convlab.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from convlab.autograd.gradcheck import GradcheckError, gradcheck
from convlab.autograd.ops import MaxMin, cat, matmul, maximum, minimum, stack, where

__all__ = [
    "Context",
    "Function",
    "GradcheckError",
    "MaxMin",
    "Tensor",
    "arange",
    "backward",
    "bool_",
    "cat",
    "default_generator",
    "empty",
    "enable_grad",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "get_default_dtype",
    "grad",
    "gradcheck",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_grad_enabled",
    "manual_seed",
    "matmul",
    "maximum",
    "minimum",
    "no_grad",
    "ones",
    "ones_like",
    "promote_types",
    "rand",
    "randint",
    "randn",
    "randperm",
    "result_type",
    "set_grad_enabled",
    "stack",
    "sum_to_shape",
    "tensor",
    "uint8",
    "where",
    "zeros",
    "zeros_like",
]
