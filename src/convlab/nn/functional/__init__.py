"""Stateless operations with PyTorch's names, signatures and defaults (``torch.nn.functional``).

One sub-module per op family; everything is re-exported here, so ``import convlab.nn.functional
as F`` gives ``F.conv2d``, ``F.max_pool2d`` and the rest.
"""

from convlab.nn.functional.conv import (
    check_output_padding,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    pad,
)

# <pooling-imports>
# <resample-imports>
# <activation-loss-imports>
# <layers-imports>

__all__ = [
    "check_output_padding",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "pad",
    # <pooling-all>
    # <resample-all>
    # <activation-loss-all>
    # <layers-all>
]
