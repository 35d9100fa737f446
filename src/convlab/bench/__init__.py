"""The speed benchmarks: convlab beside PyTorch on the workloads of the project's baselines.

``convlab bench`` (and ``python benchmarks/bench.py``) run them from the command line; in Python:

    >>> from convlab.bench import BenchOptions, format_report, run_benchmarks
    >>> print(format_report(run_benchmarks(BenchOptions(only=["W1b"], repeats=5))))

Workloads live in :mod:`convlab.bench.workloads`, the timing and the table in
:mod:`convlab.bench.runner`, the peak-memory measurement in :mod:`convlab.bench.memory`.
"""

from __future__ import annotations

from convlab.bench.runner import BenchOptions, format_report, run_benchmarks, select_workloads
from convlab.bench.workloads import WORKLOADS, Workload

__all__ = [
    "WORKLOADS",
    "BenchOptions",
    "Workload",
    "format_report",
    "run_benchmarks",
    "select_workloads",
]
