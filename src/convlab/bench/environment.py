"""Threads and the machine: what a benchmark sets before it runs and records beside its numbers."""

from __future__ import annotations

import datetime
import importlib.util
import os
import platform
from typing import Any

__all__ = ["apply_threads", "default_threads", "describe_environment", "import_torch"]


def default_threads() -> int:
    """2, or the number of cores when the machine has fewer."""
    return min(2, os.cpu_count() or 1)


def import_torch() -> Any:
    """PyTorch, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def apply_threads(count: int, torch: Any = None) -> dict[str, Any]:
    """Give every library in the race ``count`` threads; report what each one accepted.

    PyTorch (intra-op threads), convlab's own threads through ``convlab.set_num_threads`` (which
    keeps NumPy's OpenBLAS on one thread), and numba when it is installed (convlab's optional JIT
    kernels use it).
    """
    import convlab

    applied: dict[str, Any] = {"requested": count}
    applied["convlab_blas"] = count if convlab.set_num_threads(count) else None
    applied["numba"] = None
    if importlib.util.find_spec("numba") is not None:
        from convlab.kernels import _jit

        _jit.set_jit_threads(count)  # imports numba, which refuses more than it started with
        applied["numba"] = _jit.require_numba().get_num_threads()
    applied["torch"] = None
    if torch is not None:
        torch.set_num_threads(count)
        applied["torch"] = torch.get_num_threads()
    return applied


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # an importable module without distribution metadata
        return None


def describe_environment(torch: Any = None) -> dict[str, Any]:
    """Versions, the CPU and the date, for the JSON report."""
    import numpy as np

    import convlab
    from convlab import threads as convlab_threads

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "convlab": convlab.__version__,
        "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
        "numba": _version("numba"),
        "convlab_threads": convlab.get_num_threads(),
        "blas_threads": convlab_threads.get_blas_threads(),
    }
