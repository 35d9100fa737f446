"""Kernels: forward and backward of each op as functions on ndarrays, no autograd.

``reference`` holds the slow loop versions from the definitions, used by the tests.
"""

from convlab.kernels.conv import (
    col2im,
    conv_backward_bias,
    conv_backward_input,
    conv_backward_weight,
    conv_forward,
    conv_transpose_backward_input,
    conv_transpose_backward_weight,
    conv_transpose_forward,
    im2col,
)
from convlab.kernels.pad import pad_backward, pad_forward

__all__ = [
    "col2im",
    "conv_backward_bias",
    "conv_backward_input",
    "conv_backward_weight",
    "conv_forward",
    "conv_transpose_backward_input",
    "conv_transpose_backward_weight",
    "conv_transpose_forward",
    "im2col",
    "pad_backward",
    "pad_forward",
]
