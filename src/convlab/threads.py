"""How many threads NumPy's BLAS uses: ``convlab.set_num_threads`` / ``get_num_threads``.

NumPy has no API for this, so convlab finds the OpenBLAS library NumPy loaded and calls its own
``set_num_threads`` (as threadpoolctl does). Small matrix products, as in LeNet-sized training,
run faster on one thread than on two; large ones want every core. Where no OpenBLAS is found
(another BLAS, another platform) these functions do nothing and report ``None``.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import sys
from collections.abc import Iterator

import numpy as np

__all__ = ["blas_threads", "get_num_threads", "set_num_threads"]

_SYMBOL_PREFIXES = ("scipy_openblas", "openblas")
_SYMBOL_SUFFIXES = ("64_", "")


def _candidate_paths() -> list[str]:
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        pass
    if not paths:  # not Linux: look beside NumPy
        root = os.path.dirname(os.path.dirname(np.__file__))
        paths = glob.glob(os.path.join(root, "numpy*libs", "*openblas*"))
    return paths


def _find_functions():
    for path in _candidate_paths():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _SYMBOL_PREFIXES:
            for suffix in _SYMBOL_SUFFIXES:
                setter = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    return setter, getter
    return None


_FUNCTIONS = _find_functions()


def get_num_threads() -> int | None:
    """Threads NumPy's OpenBLAS uses now, or None when it cannot be told."""
    return None if _FUNCTIONS is None else int(_FUNCTIONS[1]())


def set_num_threads(count: int) -> bool:
    """Use ``count`` threads in NumPy's matrix products (and in the numba kernels, when loaded).

    Returns False when this BLAS cannot be set.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise ValueError(f"set_num_threads expects a positive integer, but got {count!r}")
    if "numba" in sys.modules:  # the numba kernels' threads too, if numba is loaded
        from convlab.kernels import _jit

        _jit.set_jit_threads(count)
    if _FUNCTIONS is None:
        return False
    _FUNCTIONS[0](count)
    return True


@contextlib.contextmanager
def blas_threads(count: int | None) -> Iterator[None]:
    """Run a block with ``count`` BLAS threads (None: leave as is), then restore."""
    previous = get_num_threads()
    if count is None or previous is None:
        yield
        return
    set_num_threads(count)
    try:
        yield
    finally:
        set_num_threads(previous)
