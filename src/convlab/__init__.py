"""convlab: convolutional neural networks on NumPy, with PyTorch's semantics.

    import convlab as cl
    import convlab.nn.functional as F
    x = cl.randn(1, 1, 5, 5, requires_grad=True)
    F.conv2d(x, cl.ones(1, 1, 3, 3), padding=1).sum().backward()
"""

from convlab.autograd import (
    Function,
    Tensor,
    arange,
    cat,
    enable_grad,
    float32,
    float64,
    gradcheck,
    int64,
    is_grad_enabled,
    manual_seed,
    no_grad,
    ones,
    rand,
    randn,
    stack,
    tensor,
    zeros,
)

__version__ = "0.1.0"

__all__ = [
    "Function",
    "Tensor",
    "arange",
    "cat",
    "enable_grad",
    "float32",
    "float64",
    "gradcheck",
    "int64",
    "is_grad_enabled",
    "manual_seed",
    "no_grad",
    "ones",
    "rand",
    "randn",
    "stack",
    "tensor",
    "zeros",
]
