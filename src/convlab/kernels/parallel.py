"""convlab's own threads: a kernel splits its samples (or the rows of a product) over the cores.

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
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from convlab import threads
from convlab.kernels import _jit

__all__ = ["MIN_PART_WORK", "gemm", "parts", "run", "slices", "stop_spinning"]

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
    global _pool, _pool_size, _lock, _spinning, _spin_lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()
    _spinning, _spin_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _inside(fn: Callable[[slice], T], part: slice) -> T:
    # A kernel called from inside a part (nested) runs on that part's thread alone.
    _local.inside = True
    try:
        return fn(part)
    finally:
        _local.inside = False


# -- spinning workers ---------------------------------------------------------------------------
#
# With numba on x86-64, parts go to workers that wait for the next part spinning (without the
# GIL, convlab.kernels._spin) for SPIN_SECONDS before they sleep, and the caller spins the
# same way for their results: a sleeping thread took 30-50 us to wake on the 2-vCPU VM, at
# every hand-off and every return. LeNet's epoch: 0.285 -> 0.277 s (medians of 20 epochs,
# alternated; the hand-off 26 -> 14 us, the return 44 -> 7 us), at the price of the second
# core spinning between the parts of a step (CPU time 0.43 -> 0.54 s an epoch), as PyTorch's
# OpenMP threads do. ``CONVLAB_SPIN=0`` turns it off (the thread pool above then hands the
# parts out).
SPIN_SECONDS = 0.002
# Splits before the workers start (the thread pool hands out the first ones): loading numba
# and the spin costs ~0.25 s and 28-60 MiB once, which a process that only does a few
# convolutions should not pay, and the spin only pays off on many small splits, as in training.
SPIN_AFTER = 64
_splits = 0
_SLOT = 8  # int64s per flag: each on its own 64-byte cache line
_spinning: _SpinWorkers | None = None
_spin_lock = threading.Lock()  # one caller at a time; others run their parts on the pool


_X86_64 = platform.machine().lower() in ("x86_64", "amd64")  # for the pause instruction


def _spin_available() -> bool:
    return _X86_64 and os.environ.get("CONVLAB_SPIN", "1") != "0" and _jit.numba_available()


class _SpinWorkers:
    """``workers`` threads, each waiting for parts posted to its flag (see above)."""

    def __init__(self, workers: int) -> None:
        from convlab.kernels import _spin

        self.spin = _spin.spin_while()
        # Per worker: [posted count, finished count], each on its own cache line; last, the
        # stop flag (see stop_spinning).
        self.flags = np.zeros((workers * 2 + 1) * _SLOT, np.int64)
        self.stop = workers * 2 * _SLOT
        self.spin(self.flags, 0, 0, 10_000, self.stop)  # compiles or loads; times a read
        t0 = time.perf_counter()
        self.spin(self.flags, 0, 0, 100_000, self.stop)
        per_read = max(1e-9, (time.perf_counter() - t0) / 100_000)
        self.reads = max(1, int(SPIN_SECONDS / per_read))
        self.tasks: list[Any] = [None] * workers
        self.results: list[Any] = [None] * workers
        self.wakers = [threading.Condition() for _ in range(workers)]
        self.threads = [
            threading.Thread(target=self._serve, args=(w,), name=f"convlab-spin-{w}", daemon=True)
            for w in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def _posted(self, w: int) -> int:
        return 2 * w * _SLOT

    def _finished(self, w: int) -> int:
        return (2 * w + 1) * _SLOT

    def _serve(self, w: int) -> None:
        seen = 0
        posted = self._posted(w)
        while True:
            current = self.spin(self.flags, posted, seen, self.reads, self.stop)
            if current == seen:  # nothing for SPIN_SECONDS: sleep until notified
                with self.wakers[w]:
                    while self.flags[posted] == seen:
                        self.wakers[w].wait()
                current = int(self.flags[posted])
            seen = current
            fn, piece = self.tasks[w]
            try:
                self.results[w] = (_inside(fn, piece), None)
            except BaseException as error:  # raised in the caller's thread
                self.results[w] = (None, error)
            self.tasks[w] = None
            self.flags[self._finished(w)] = seen

    def run(self, fn: Callable[[slice], T], pieces: list[slice]) -> list[T]:
        rest = pieces[1:]
        self.flags[self.stop] = 0
        for w, piece in enumerate(rest):
            self.tasks[w] = (fn, piece)
            self.flags[self._posted(w)] += 1
            with self.wakers[w]:
                self.wakers[w].notify()
        try:
            first = _inside(fn, pieces[0])
        finally:
            for w in range(len(rest)):  # wait for every part, whatever happened here
                self._wait(w)
        outcomes = [self.results[w] for w in range(len(rest))]
        self.results = [None] * len(self.results)
        for _, error in outcomes:
            if error is not None:
                raise error
        return [first, *(result for result, _ in outcomes)]

    def _wait(self, w: int) -> None:
        target = int(self.flags[self._posted(w)])
        finished = self._finished(w)
        if self.spin(self.flags, finished, target - 1, self.reads, self.stop) == target:
            return
        while int(self.flags[finished]) != target:  # a long part: poll, mostly asleep
            if not self.threads[w].is_alive():
                raise RuntimeError(f"convlab's worker thread {w} died (part {target} lost)")
            time.sleep(50e-6)


def stop_spinning() -> None:
    """Send spinning workers to sleep now: before work on other threads (numba's parallel
    loops, say), which would otherwise share the cores with the spinning (W1b's Winograd
    transforms, when they ran on numba's threads: 7.6 -> 10.1 ms)."""
    if _spinning is not None:
        _spinning.flags[_spinning.stop] = 1


def _spin_workers(workers: int) -> _SpinWorkers:
    global _spinning
    if _spinning is None or len(_spinning.tasks) < workers:
        _spinning = _SpinWorkers(workers)  # a smaller set left behind just sleeps
    return _spinning


def run(fn: Callable[[slice], T], n: int, count: int) -> list[T]:
    """``[fn(s) for s in slices(n, count)]``, the slices on ``count`` threads (the caller's too).

    ``fn`` must write only its own slice of any shared output. An exception in any slice is
    raised after every slice has finished.
    """
    pieces = slices(n, count)
    if count <= 1:
        return [fn(pieces[0])]
    global _splits
    _splits += 1
    if _splits > SPIN_AFTER and _spin_available() and _spin_lock.acquire(blocking=False):
        try:
            return _spin_workers(count - 1).run(fn, pieces)
        finally:
            _spin_lock.release()
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
