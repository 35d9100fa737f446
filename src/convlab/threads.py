"""How many threads convlab uses: ``convlab.set_num_threads`` / ``get_num_threads``.

convlab's kernels split their work over their own threads (:mod:`convlab.kernels.parallel`) and
keep NumPy's OpenBLAS on one thread meanwhile. NumPy has no API for the BLAS's threads, so
convlab finds the OpenBLAS library NumPy loaded and calls its own ``set_num_threads`` (as
threadpoolctl does). Where no OpenBLAS is found (another BLAS, another platform) the BLAS is
left as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import sys
from collections.abc import Iterator

import numpy as np

__all__ = [
    "blas_held",
    "blas_threads",
    "get_blas_threads",
    "get_num_threads",
    "hold_blas",
    "set_num_threads",
]

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


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# convlab's own thread count (its kernels split their work over this many threads).
_count = _available_cores()
# Whether convlab has taken NumPy's BLAS down to one thread (done once, when a kernel first
# splits its work; see convlab.kernels.parallel for why).
_blas_held = False


def get_num_threads() -> int:
    """Threads convlab's kernels use (``set_num_threads``; by default every available core)."""
    return _count


def set_num_threads(count: int) -> bool:
    """Use ``count`` threads in convlab's kernels, like ``torch.set_num_threads``.

    convlab splits a kernel's work (the samples of a batch, the rows of a matrix product) over
    its own threads, and the numba kernels use ``count`` threads too. While it does, NumPy's
    OpenBLAS runs on one thread (two thread pools would fight over the cores): see
    :mod:`convlab.kernels.parallel`. ``blas_threads`` gives NumPy's BLAS more threads for a
    block of your own code. Returns False when NumPy's BLAS cannot be set (another BLAS).
    """
    global _count
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise ValueError(f"set_num_threads expects a positive integer, but got {count!r}")
    _count = count
    if "numba" in sys.modules:  # the numba kernels' threads too, if numba is loaded
        from convlab.kernels import _jit

        _jit.set_jit_threads(count)
    return hold_blas()


def hold_blas() -> bool:
    """Keep NumPy's BLAS on one thread from now on (convlab's threads split the work instead).

    Returns False when the BLAS cannot be set.
    """
    global _blas_held
    _blas_held = True
    return _set_blas_threads(1)


def blas_held() -> bool:
    """Whether convlab keeps NumPy's BLAS on one thread."""
    return _blas_held


def get_blas_threads() -> int | None:
    """Threads NumPy's OpenBLAS uses now, or None when it cannot be told."""
    return None if _FUNCTIONS is None else int(_FUNCTIONS[1]())


def _set_blas_threads(count: int) -> bool:
    if _FUNCTIONS is None:
        return False
    if int(_FUNCTIONS[1]()) != count:
        _FUNCTIONS[0](count)
    return True


@contextlib.contextmanager
def blas_threads(count: int | None) -> Iterator[None]:
    """Run a block with ``count`` NumPy BLAS threads (None: leave as is), then restore.

    For your own large NumPy matrix products while convlab holds the BLAS at one thread.
    """
    previous = get_blas_threads()
    if count is None or previous is None:
        yield
        return
    _set_blas_threads(count)
    try:
        yield
    finally:
        _set_blas_threads(previous)
