"""Which convolution algorithm runs: a rule by shape, or measured once per shape.

Several algorithms compute the same convolution (im2col + GEMM, Winograd, FFT, direct loops for
depthwise convolutions); which one is fastest depends on the shapes and the machine. The policy
decides:

- ``"auto"`` (the default): a fixed rule by shape, written from measurements on a 2-core AVX2
  machine (see ``convlab.kernels.conv``);
- ``"benchmark"``: the first call with a new shape runs every applicable algorithm, times it, and
  remembers the fastest for that shape (like ``torch.backends.cudnn.benchmark``); later calls
  with the same shape use the remembered one. Worth it for long training runs;
- an algorithm's name (``"gemm"``, ``"winograd"``, ``"fft"``, ``"direct"``): use it wherever it
  applies, the rule elsewhere. For tests and measurements.

    >>> import convlab
    >>> convlab.set_conv_algorithm("benchmark")
    >>> convlab.get_conv_algorithm()
    'benchmark'
    >>> convlab.set_conv_algorithm("auto")
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "ALGORITHMS",
    "POLICIES",
    "choices",
    "conv_algorithm",
    "get_conv_algorithm",
    "run",
    "set_conv_algorithm",
]

ALGORITHMS = ("gemm", "winograd", "fft", "direct")
POLICIES = ("auto", "benchmark", *ALGORITHMS)

_policy = "auto"
# (pass, shapes, arguments, dtype) -> the algorithm measured fastest.
_measured: dict[tuple, str] = {}


def set_conv_algorithm(policy: str) -> None:
    """Choose how convolutions pick their algorithm: one of :data:`POLICIES`."""
    global _policy
    if policy not in POLICIES:
        raise ValueError(
            f"set_conv_algorithm(): policy must be one of {', '.join(map(repr, POLICIES))}, "
            f"but got {policy!r}"
        )
    if policy != _policy:
        _measured.clear()
    _policy = policy


def get_conv_algorithm() -> str:
    """The current policy (see :func:`set_conv_algorithm`)."""
    return _policy


@contextlib.contextmanager
def conv_algorithm(policy: str) -> Iterator[None]:
    """Use ``policy`` inside a ``with`` block, then restore the previous one."""
    previous = _policy
    set_conv_algorithm(policy)
    try:
        yield
    finally:
        set_conv_algorithm(previous)


def choices() -> dict[tuple, str]:
    """What benchmark mode has measured so far: ``{shape key: algorithm}`` (a copy)."""
    return dict(_measured)


def run(key: tuple, candidates: dict[str, Callable[[], Any]], rule: str) -> Any:
    """Run the algorithm the policy picks among ``candidates`` (name -> thunk) for ``key``.

    ``rule`` is the name the shape rule picks; it must be one of the candidates.
    """
    if _policy == "auto" or len(candidates) == 1:
        return candidates[rule]()
    if _policy != "benchmark":
        return candidates[_policy if _policy in candidates else rule]()
    name = _measured.get(key)
    if name is not None:
        return candidates[name]()
    best_time, best_name, best_result = float("inf"), rule, None
    for name, thunk in candidates.items():
        thunk()  # warm-up: caches, first-call compilation
        start = time.perf_counter()
        result = thunk()
        elapsed = time.perf_counter() - start
        if elapsed < best_time:
            best_time, best_name, best_result = elapsed, name, result
    _measured[key] = best_name
    return best_result
