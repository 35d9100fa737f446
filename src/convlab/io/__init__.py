"""Reading and writing models: safetensors checkpoints (no pickle, atomic writes)."""

from convlab.io.safetensors import SafetensorsError, atomic_write_bytes, load_file, save_file

__all__ = ["SafetensorsError", "atomic_write_bytes", "load_file", "save_file"]
