"""Reading and writing models: safetensors checkpoints (no pickle, atomic writes) and PyTorch
weights (``torch.save`` files read without running their pickle code)."""

from convlab.io.checkpoint import CheckpointError
from convlab.io.interchange import load_torch_state_dict, load_weights, read_weights, save_weights
from convlab.io.safetensors import SafetensorsError, atomic_write_bytes, load_file, save_file
from convlab.io.torch_format import UnsafeCheckpointError, load_torch_checkpoint

__all__ = [
    "CheckpointError",
    "SafetensorsError",
    "UnsafeCheckpointError",
    "atomic_write_bytes",
    "load_file",
    "load_torch_checkpoint",
    "load_torch_state_dict",
    "load_weights",
    "read_weights",
    "save_file",
    "save_weights",
]
