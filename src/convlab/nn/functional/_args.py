"""Argument handling shared by every functional op family."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab.autograd import Tensor


def as_array(value: Any, name: str, op: str) -> np.ndarray:
    """The ndarray behind a Tensor or ndarray argument; anything else is a TypeError."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(
        f"{op}(): argument '{name}' must be a Tensor or numpy.ndarray, not {type(value).__name__}"
    )
