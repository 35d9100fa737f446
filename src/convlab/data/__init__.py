"""Data sets (shipped and user-provided) and a batching data loader."""

from convlab.data.datasets import (
    ArrayDataset,
    DataError,
    Split,
    load_dataset,
    load_idx,
    load_image_folder,
    load_mnist1d,
    load_mnist5k,
    load_npz,
    read_idx,
)
from convlab.data.loader import DataLoader, Normalize, random_shift

__all__ = [
    "ArrayDataset",
    "DataError",
    "DataLoader",
    "Normalize",
    "Split",
    "load_dataset",
    "load_idx",
    "load_image_folder",
    "load_mnist1d",
    "load_mnist5k",
    "load_npz",
    "random_shift",
    "read_idx",
]
