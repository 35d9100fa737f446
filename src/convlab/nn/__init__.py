"""Layers with torch.nn's names, signatures and defaults."""

from convlab.nn import functional, init
from convlab.nn.containers import ModuleList, Sequential
from convlab.nn.conv import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
from convlab.nn.module import Module, Parameter

# <pooling-imports>
# <resample-imports>
# <activation-loss-imports>
# <layers-imports>

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Module",
    "ModuleList",
    "Parameter",
    "Sequential",
    "functional",
    "init",
    # <pooling-all>
    # <resample-all>
    # <activation-loss-all>
    # <layers-all>
]
