"""convlab: convolutional neural networks on NumPy, with PyTorch's semantics.

import convlab as cl
import convlab.nn.functional as F
x = cl.randn(1, 1, 5, 5, requires_grad=True)
F.conv2d(x, cl.ones(1, 1, 3, 3), padding=1).sum().backward()
"""

# The sub-packages users reach through the top-level name (cl.nn.Conv2d, cl.optim.SGD).
from convlab import nn, optim
from convlab.allocator import reuse_freed_memory
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
from convlab.kernels.select import conv_algorithm, get_conv_algorithm, set_conv_algorithm
from convlab.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

reuse_freed_memory()  # see convlab.allocator: page faults cost half of a convolution

__all__ = [
    "Function",
    "Tensor",
    "arange",
    "cat",
    "enable_grad",
    "float32",
    "float64",
    "conv_algorithm",
    "get_conv_algorithm",
    "get_num_threads",
    "gradcheck",
    "int64",
    "is_grad_enabled",
    "manual_seed",
    "nn",
    "no_grad",
    "ones",
    "optim",
    "rand",
    "set_conv_algorithm",
    "set_num_threads",
    "randn",
    "stack",
    "tensor",
    "zeros",
]
