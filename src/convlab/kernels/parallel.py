"""convlab's own threads: a kernel splits its samples (or its stack of products) over the cores.

NumPy releases the GIL inside matrix products, copies and ufunc loops, so plain Python threads
that each take a slice of the batch (and write only their own slice of the output) run on every
core. OpenBLAS is kept at one thread meanwhile (``threads.hold_blas``), for two reasons measured
on LeNet-5 training: its threads split each small per-sample product in two, which costs more
than it saves, and after every threaded product they spin for about 0.1 s waiting for more, so
the second core was busy all epoch yet the epoch was no faster than on one thread. Splitting
the samples ourselves instead: 0.47 -> 0.40 s per epoch. Large layers split the same way (each
thread runs one-thread products on its own samples), so nothing needs the BLAS's threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from convlab import threads

__all__ = ["MIN_PART_WORK", "gemm", "matmul", "parts", "run", "slices"]

T = TypeVar("T")

#: Floating-point operations below which a part is not worth a thread: handing a part to a
#: worker and back costs about 40 us here, the time of ~4 MFLOP on one core. Memory-bound
#: passes (pooling, copies) are not split: on this machine one core already takes the cache
#: bandwidth that two would share (a max-pool backward: 0.43 ms on one thread, 0.40 on two).
MIN_PART_WORK = 4e6

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_local = threading.local()


def parts(n: int, work: float) -> int:
    """Into how many slices to cut ``n`` items whose total cost is ``work`` (1: do not split).

    Holds the BLAS at one thread from the first call on, whatever the answer: the one-slice
    case must not run on a BLAS that spins against the other slices of the next kernel.
    """
    if not threads.blas_held():
        threads.hold_blas()
    count = threads.get_num_threads()
    if count <= 1 or n < 2 or getattr(_local, "inside", False):
        return 1
    by_work = work / MIN_PART_WORK if MIN_PART_WORK > 0 else count
    return max(1, int(min(count, n, by_work)))


def slices(n: int, count: int) -> list[slice]:
    """``count`` contiguous slices of ``range(n)``, as equal as can be."""
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(count)]


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="convlab")
            _pool_size = workers
        return _pool


def _forget_pool() -> None:
    # A forked child has none of its parent's threads: it must start its own pool, not queue
    # parts for workers that do not exist (they would never run).
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _inside(fn: Callable[[slice], T], part: slice) -> T:
    # A kernel called from inside a part (nested) runs on that part's thread alone.
    _local.inside = True
    try:
        return fn(part)
    finally:
        _local.inside = False


def run(fn: Callable[[slice], T], n: int, count: int) -> list[T]:
    """``[fn(s) for s in slices(n, count)]``, the slices on ``count`` threads (the caller's too).

    ``fn`` must write only its own slice of any shared output. An exception in any slice is
    raised after every slice has finished.
    """
    pieces = slices(n, count)
    if count <= 1:
        return [fn(pieces[0])]
    pool = _executor(count - 1)
    futures = [pool.submit(_inside, fn, piece) for piece in pieces[1:]]
    try:
        first = _inside(fn, pieces[0])
    finally:
        rest = [future.exception() for future in futures]  # waits for every slice
    for error in rest:
        if error is not None:
            raise error
    return [first, *(future.result() for future in futures)]


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` for stacks ``(B, M, K) @ (B, K, N)``, the stack split over
    convlab's threads (each thread one-thread products on its own matrices)."""
    if out is None:
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), np.result_type(a, b))
    batch = a.shape[0]
    work = 2.0 * batch * a.shape[1] * a.shape[2] * b.shape[2]

    def part(rows: slice) -> None:
        np.matmul(a[rows], b[rows], out=out[rows])

    run(part, batch, parts(batch, work))
    return out


def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for matrices, the rows of ``a`` (or the columns of ``b``, when they are more)
    split over convlab's threads."""
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), np.result_type(a, b))
    work = 2.0 * m * n * k
    if m >= n:
        run(lambda rows: np.matmul(a[rows], b, out=out[rows]), m, parts(m, work))
    else:
        run(lambda cols: np.matmul(a, b[:, cols], out=out[:, cols]), n, parts(n, work))
    return out
