"""Lazy numba helpers: kernels compile on first call, and numba is never imported before.

numba is an optional extra (``pip install 'convlab[fast]'``). A kernel module writes its loops
as plain Python decorated with :func:`kernel`, using ``_jit.prange`` for a parallel loop; a
kernel may call another one (a helper, compiled along with it). Nothing is imported or compiled
until the first call, which compiles with ``cache=True`` and ``fastmath=False``: the machine code
is kept in ``__pycache__`` beside the source, so later processes load it instead of compiling.
A kernel made with ``kernel(reduction=True)`` may reassociate its floating-point additions,
which lets LLVM keep a sum in several vector registers (a dot product at full speed); its
results then differ from a sequential sum in the last bits.
Without numba a kernel call raises ImportError naming the extra; callers check
:func:`numba_available` first and take their NumPy path instead.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "compiled_for",
    "compiling",
    "kernel",
    "numba_available",
    "prange",
    "require_numba",
    "set_jit_threads",
]

# Plain ``range`` until numba is loaded; then ``numba.prange``, which numba recognises as a
# parallel loop when it resolves ``_jit.prange`` inside a kernel at compile time.
prange = range

# numba's OpenMP threading layer spins between parallel loops, as PyTorch's OpenMP and
# OpenBLAS's threads do: in one process they slow each other several-fold (W1b 11 -> 24 ms).
# The workqueue layer sleeps. Set before numba is imported (it reads the environment then and
# whenever it reloads its configuration); a user's own setting wins.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

_lock = threading.RLock()
_available: bool | None = None


def numba_available() -> bool:
    """Whether numba can be imported (checked once, without importing it)."""
    global _available
    if _available is None:
        _available = importlib.util.find_spec("numba") is not None
    return _available


# ``in`` compares with ``==``, which a dtype answers for dtypes, scalar types and names alike
# (and 40x faster than the ``str(dtype)`` it replaces, a cost paid on every kernel call).
_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def compiled_for(dtype) -> bool:
    """Whether the numba kernels run on arrays of ``dtype``: numba is installed and the dtype is
    float32 or float64, the ones they are written for (numba has no float16)."""
    return dtype in _COMPILED_DTYPES and numba_available()


def require_numba():
    """Import and return numba, or raise ImportError naming the extra that provides it."""
    global prange
    try:
        import numba
    except ImportError as err:
        raise ImportError(
            "the numba kernels need numba: pip install 'convlab[fast]' (or use impl='numpy')"
        ) from err
    with _lock:
        if prange is range:
            from numba.extending import typeof_impl

            # A kernel that calls another lazy kernel sees the callee's compiled dispatcher.
            typeof_impl.register(_Lazy)(lambda val, c: numba.typeof(val.compiled()))
            prange = numba.prange
            # convlab.set_num_threads may have been called before numba was loaded.
            from convlab import threads

            count = threads.get_num_threads()
            numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))
    return numba


def set_jit_threads(n: int) -> None:
    """Use ``n`` threads (at most numba's pool size) in parallel numba kernels; no-op without it.

    Like ``torch.set_num_threads``; the setting belongs to the calling thread.
    """
    if numba_available():
        numba = require_numba()
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


# Kernels inside their first call in this process: compiling, or loading from numba's cache.
_first_calls = 0


def compiling() -> bool:
    """Whether some kernel is inside its first call in this process (numba compiles it then,
    or loads it from its on-disk cache, which takes well under a second)."""
    return _first_calls > 0


class _Lazy:
    """A Python function that becomes ``numba.njit(cache=True)`` of itself on first call."""

    def __init__(self, func: Callable, parallel: bool, reduction: bool = False):
        self.py_func = func
        self.parallel = parallel
        self.reduction = reduction
        self._compiled: Any = None
        self._called = False
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__

    def compiled(self):
        if self._compiled is None:
            with _lock:
                if self._compiled is None:
                    numba = require_numba()
                    # Reassociation only (no finite-math or reciprocal shortcuts): NaN and
                    # inf still propagate through the sum.
                    fastmath = {"reassoc", "contract"} if self.reduction else False
                    self._compiled = numba.njit(
                        cache=True, fastmath=fastmath, parallel=self.parallel, nogil=True
                    )(self.py_func)
        return self._compiled

    def __call__(self, *args):
        if self._called:
            return self.compiled()(*args)
        global _first_calls
        with _lock:
            _first_calls += 1
        try:
            return self.compiled()(*args)
        finally:
            with _lock:
                _first_calls -= 1
                self._called = True


def kernel(parallel: bool = False, reduction: bool = False) -> Callable[[Callable], _Lazy]:
    """Decorator: compile the function with numba (``cache=True``) the first time it is called.

    ``reduction=True`` allows reassociating its additions (for sums; see the module docstring).

    >>> @kernel(parallel=True)
    ... def total(a):
    ...     s = 0.0
    ...     for i in prange(a.shape[0]):
    ...         s += a[i]
    ...     return s
    """

    def wrap(func: Callable) -> _Lazy:
        return _Lazy(func, parallel, reduction)

    return wrap
