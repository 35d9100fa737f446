"""Split a batch across threads when each sample's work is too small for a threaded BLAS.

OpenBLAS threads one matrix product well when it is large; LeNet-sized convolutions are many
small products (one per sample), which it runs on one core. NumPy releases the GIL inside
copies, ufuncs and matrix products, so plain Python threads, each taking a slice of the batch,
use every core. Inside such a region the BLAS runs one thread per caller, so that the cores are
not oversubscribed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from convlab import threads

__all__ = ["PER_SAMPLE_FLOPS", "map_batch", "parts_for"]

T = TypeVar("T")

# Below this many floating-point operations per sample, the batch is split across threads
# (measured on LeNet-5's and W1e's shapes: 1.4-1.8x faster on 2 cores); above it, one threaded
# matrix product per chunk is at least as fast.
PER_SAMPLE_FLOPS = 32e6

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_workers = 0
_inside = threading.local()


def parts_for(n: int, flops_per_sample: float) -> int:
    """How many slices to cut a batch of ``n`` into (1: do not split)."""
    if n < 2 or flops_per_sample >= PER_SAMPLE_FLOPS or getattr(_inside, "active", False):
        return 1
    count = threads.get_num_threads() or 1
    return max(1, min(count, n))


def _pool(workers: int) -> ThreadPoolExecutor:
    global _executor, _workers
    with _lock:
        if _executor is None or _workers < workers:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="convlab")
            _workers = workers
        return _executor


def _guarded(fn: Callable[[slice], T], part: slice) -> T:
    _inside.active = True
    try:
        return fn(part)
    finally:
        _inside.active = False


def map_batch(fn: Callable[[slice], T], n: int, parts: int) -> list[T]:
    """``[fn(s) for s in slices]`` over ``parts`` contiguous slices of ``range(n)``, in threads.

    ``fn`` must only write to its own slice of any shared output.
    """
    bounds = [n * i // parts for i in range(parts + 1)]
    slices = [slice(bounds[i], bounds[i + 1]) for i in range(parts)]
    if parts == 1:
        return [fn(slices[0])]
    with threads.blas_threads(1):
        pool = _pool(parts - 1)
        futures = [pool.submit(_guarded, fn, part) for part in slices[1:]]
        results = [_guarded(fn, slices[0])]
        results.extend(future.result() for future in futures)
    return results
