"""Time the workloads in convlab and PyTorch, compare their outputs, and report.

Fairness rules: both libraries get the same thread count (:func:`apply_threads`), the same data
(made once per workload), the same number of warm-up calls and repeats; each library's repeats
run as one block, and the process idles ``pause`` seconds between blocks, because PyTorch's
OpenMP threads keep spinning after their work and would slow the next library's threads.

    >>> report = run_benchmarks(BenchOptions(only=["W1b", "W2"], repeats=5))
    >>> print(format_report(report))
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from convlab import threads as convlab_threads
from convlab.bench.environment import (
    apply_threads,
    default_threads,
    describe_environment,
    import_torch,
)
from convlab.bench.workloads import ALIASES, WORKLOADS, Case, Workload

__all__ = [
    "MISMATCH_TOLERANCE",
    "BenchOptions",
    "format_report",
    "run_benchmarks",
    "select_workloads",
]

MISMATCH_TOLERANCE = 1e-3  # max |convlab - torch| / max |torch| above this is flagged
REPORT_VERSION = 1


@dataclass
class BenchOptions:
    """What to run and how.

    Args:
        only: workload names or prefixes (``["W1"]`` runs every W1*); None runs all.
        threads: threads for every library (default 2, or fewer cores).
        repeats: timed calls per library; the median is reported.
        warmup: untimed calls first (the first one's outputs are compared).
        warmup_seconds: and the warm-up goes on until this long has passed (see
            ``_time_case``).
        scale: multiplies every batch size (at least 1 sample), for quick runs.
        use_torch: time PyTorch too, when it is installed.
        memory: measure the peak RSS of W1b forward+backward; None: only in a full run.
        pause: idle seconds between the two libraries' blocks.
        gemm_size: side of the square float32 matrix product that gives the GEMM ceiling.
        progress: a stream for the progress line (None: silent).
    """

    only: Sequence[str] | None = None
    threads: int | None = None
    repeats: int = 11
    warmup: int = 5  # allocator and JIT caches settle in a few calls, for both libraries
    warmup_seconds: float = 0.2
    scale: float = 1.0
    use_torch: bool = True
    memory: bool | None = None
    pause: float = 0.3
    gemm_size: int = 2048
    progress: TextIO | None = None


def select_workloads(only: Iterable[str] | None) -> list[Workload]:
    """The workloads named by ``only`` (exact names first, else prefixes), in table order.

    Raises ValueError naming the unknown entry and the known workloads.
    """
    if not only:
        return list(WORKLOADS.values())
    by_lower = {name.lower(): name for name in WORKLOADS}
    aliases = {alias.lower(): target for alias, target in ALIASES.items()}
    chosen: set[str] = set()
    for token in only:
        key = token.strip().lower()
        if not key:
            continue
        if key in by_lower:
            chosen.add(by_lower[key])
        elif key in aliases:
            chosen.add(aliases[key])
        else:
            matches = [name for lower, name in by_lower.items() if lower.startswith(key)]
            if not matches:
                raise ValueError(
                    f"unknown workload {token.strip()!r}; the workloads are "
                    f"{', '.join(WORKLOADS)} (a prefix such as 'W1' selects several)"
                )
            chosen.update(matches)
    if not chosen:
        raise ValueError("no workload named: give names or prefixes such as 'W1b,W2'")
    return [w for name, w in WORKLOADS.items() if name in chosen]


# -- timing ------------------------------------------------------------------------------------


def _time_case(
    case: Case, repeats: int, warmup: int, warmup_seconds: float = 0.0
) -> tuple[list[float], list[np.ndarray]]:
    """Seconds of each timed call, and copies of the outputs of the first (warm-up) call.

    The warm-up is ``warmup`` calls and at least ``warmup_seconds``: on the 2-vCPU VM this was
    tuned on, the first 50-80 ms of work after the process idled 0.3 s or more (the pause
    between blocks) ran at half speed, whatever the library (a 1x1 convolution, 1.2 ms warm:
    2.25 ms for its first 36 calls after a 1 s sleep; 1.25 ms after 0.1 s of busy-waiting).
    A fixed number of calls left short workloads timed entirely in that slow stretch.
    """
    outputs: list[np.ndarray] = []
    start = time.perf_counter()
    i = 0
    while i < max(1, warmup) or time.perf_counter() - start < warmup_seconds:
        if case.prepare is not None:
            case.prepare()
        case.run()
        if i == 0:
            outputs = [np.array(a, copy=True) for a in case.outputs()]
        i += 1
    times = []
    gc.disable()  # a cyclic collection inside one call would count against that library
    try:
        for _ in range(repeats):
            if case.prepare is not None:
                case.prepare()
            start = time.perf_counter()
            case.run()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times, outputs


def _max_rel_diff(ours: list[np.ndarray], theirs: list[np.ndarray]) -> float:
    """max |ours - theirs| / max |theirs|, the worst over the outputs."""
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return math.inf
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def _median_ms(times: list[float]) -> float:
    return 1e3 * float(np.median(times))


class _Progress:
    """One line on stderr, rewritten in place on a terminal; a line per step otherwise."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream, self.total, self.width = stream, total, 0
        self.tty = stream is not None and getattr(stream, "isatty", lambda: False)()

    def show(self, index: int, text: str) -> None:
        if self.stream is None:
            return
        line = f"convlab bench [{index}/{self.total}] {text}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _gemm(
    size: int, repeats: int, warmup: int, torch: Any, pause: float, count: int, seconds: float
) -> dict[str, Any]:
    """The float32 matrix-product ceiling: NumPy's BLAS on ``count`` threads (and torch.mm).

    convlab keeps the BLAS on one thread and splits its own work over ``count`` threads
    (convlab.kernels.parallel); the ceiling is what the machine's GEMM does with all of them.
    """
    rng = np.random.default_rng(2048)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty((size, size), np.float32)
    flops = 2.0 * size**3
    with convlab_threads.blas_threads(count):
        case = Case(lambda: np.matmul(a, b, out=c), lambda: [])
        times, _ = _time_case(case, repeats, warmup, seconds)
    ms = _median_ms(times)
    row: dict[str, Any] = {
        "size": size,
        "flops": flops,
        "numpy_ms": ms,
        "numpy_gflops": flops / ms / 1e6,
        "torch_ms": None,
        "torch_gflops": None,
    }
    if torch is not None:
        time.sleep(pause)
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.empty(size, size)
        case = Case(lambda: torch.mm(ta, tb, out=tc), lambda: [])
        times, _ = _time_case(case, repeats, warmup, seconds)
        row["torch_ms"] = _median_ms(times)
        row["torch_gflops"] = flops / row["torch_ms"] / 1e6
        time.sleep(pause)
    return row


def _run_library(
    workload: Workload, library: str, data: dict, torch: Any, options: BenchOptions
) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    try:
        case = workload.build(library, data, torch)
        times, outputs = _time_case(case, options.repeats, options.warmup, options.warmup_seconds)
    except Exception as error:  # a broken kernel fails its row, not the whole run
        return {"error": f"{type(error).__name__}: {error}"}, None
    ms = _median_ms(times)
    return {
        "ms": ms,
        "times_ms": [1e3 * t for t in times],
        "rate": workload.rate(ms / 1e3, options.scale),
    }, outputs


def _run_workload(
    workload: Workload, torch: Any, options: BenchOptions, gemm_gflops: float
) -> dict[str, Any]:
    data = workload.data(options.scale)
    row: dict[str, Any] = {
        "name": workload.name,
        "description": workload.description,
        "unit": workload.unit,
        "kind": workload.kind,
        "backward": workload.backward,
        "gemm_bound": workload.gemm_bound,
        "work": workload.work(options.scale),
    }
    ours, our_outputs = _run_library(workload, "convlab", data, torch, options)
    theirs, their_outputs = ({}, None)
    if torch is not None:
        time.sleep(options.pause)
        theirs, their_outputs = _run_library(workload, "torch", data, torch, options)
        time.sleep(options.pause)
    for library, result in (("convlab", ours), ("torch", theirs)):
        row[f"{library}_ms"] = result.get("ms")
        row[f"{library}_times_ms"] = result.get("times_ms")
        row[f"{library}_rate"] = result.get("rate")
        row[f"{library}_error"] = result.get("error")
    both = row["convlab_ms"] is not None and row["torch_ms"] is not None
    row["ratio"] = row["torch_ms"] / row["convlab_ms"] if both else None
    row["max_rel_diff"] = _max_rel_diff(our_outputs, their_outputs) if both else None
    row["mismatch"] = bool(both and not row["max_rel_diff"] <= MISMATCH_TOLERANCE)
    conv = workload.kind == "conv" and row["convlab_rate"] is not None
    row["gemm_percent"] = 100 * row["convlab_rate"] / gemm_gflops if conv else None
    torch_conv = workload.kind == "conv" and row["torch_rate"] is not None
    row["torch_gemm_percent"] = 100 * row["torch_rate"] / gemm_gflops if torch_conv else None
    return row


def _geomean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def run_benchmarks(options: BenchOptions | None = None) -> dict[str, Any]:
    """Run the selected workloads and return the report (what ``--json`` writes).

    Raises ValueError for an unknown workload in ``options.only`` or a bad thread count.
    """
    options = options or BenchOptions()
    workloads = select_workloads(options.only)
    threads = default_threads() if options.threads is None else options.threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, but got {threads!r}")
    if options.repeats < 1 or options.warmup < 0 or not options.scale > 0:
        raise ValueError("repeats must be >= 1, warmup >= 0 and scale > 0")
    notes: list[str] = []
    torch = None
    if options.use_torch:
        torch = import_torch()
        if torch is None:
            notes.append("PyTorch is not installed (pip install torch==2.13.0): convlab only")
    else:
        notes.append("--no-torch: convlab only")
    applied = apply_threads(threads, torch)
    if applied["convlab_blas"] is None:
        notes.append("NumPy's BLAS thread count could not be set (no OpenBLAS found)")
    measure_memory = options.memory or (options.memory is None and not options.only)
    progress = _Progress(options.progress, len(workloads) + 1 + bool(measure_memory))

    progress.show(1, f"GEMM ceiling {options.gemm_size}x{options.gemm_size}")
    gemm = _gemm(
        options.gemm_size,
        options.repeats,
        options.warmup,
        torch,
        options.pause,
        threads,
        options.warmup_seconds,
    )
    rows = []
    for index, workload in enumerate(workloads, start=2):
        progress.show(index, f"{workload.name}: {workload.description}")
        rows.append(_run_workload(workload, torch, options, gemm["numpy_gflops"]))
        gc.collect(1)  # the young generations only: a full pass costs 0.1 s with torch loaded
    memory = None
    if measure_memory:
        from convlab.bench.memory import peak_memory

        progress.show(len(workloads) + 2, "peak memory of W1b forward+backward")
        memory = {"workload": "W1b forward+backward", "convlab": None, "torch": None}
        memory["convlab"] = peak_memory("convlab", threads, options.scale)
        if torch is not None:
            memory["torch"] = peak_memory("torch", threads, options.scale)
        peaks = [(memory[k] or {}).get("peak_increase_mib") for k in ("convlab", "torch")]
        both = None not in peaks and peaks[1] > 0
        memory["ratio"] = peaks[0] / peaks[1] if both else None
    progress.done()

    for row in rows:
        for library in ("convlab", "torch"):
            if row[f"{library}_error"]:
                notes.append(f"{row['name']} failed in {library}: {row[f'{library}_error']}")
    return {
        "report_version": REPORT_VERSION,
        "environment": describe_environment(torch),
        "settings": {
            "threads": applied,
            "repeats": options.repeats,
            "warmup": options.warmup,
            "scale": options.scale,
            "only": list(options.only) if options.only else None,
            "torch": torch is not None,
            "pause_s": options.pause,
            "warmup_s": options.warmup_seconds,
            "mismatch_tolerance": MISMATCH_TOLERANCE,
        },
        "gemm": gemm,
        "workloads": rows,
        "geomean_ratio": _geomean([row["ratio"] for row in rows]),
        "memory": memory,
        "notes": notes,
    }


# -- the table ---------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "img/s":
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def format_report(report: dict[str, Any]) -> str:
    """The aligned table of a report from :func:`run_benchmarks`, with its summary lines."""
    with_torch = report["settings"]["torch"]
    settings, env = report["settings"], report["environment"]
    lines = [
        f"convlab bench: {settings['threads']['requested']} threads, median of "
        f"{settings['repeats']} after {settings['warmup']} warm-up calls, float32"
        + (f", batch x{settings['scale']:g}" if settings["scale"] != 1 else ""),
        f"{env['cpu_model'] or 'unknown CPU'}, numpy {env['numpy']}"
        + (f", torch {env['torch']}" if with_torch else "")
        + (f", numba {env['numba']}" if env["numba"] else ""),
    ]
    if with_torch:
        lines.append("ratio = torch ms / convlab ms (above 1: convlab faster)")
    header = ["workload", "description", "convlab ms"]
    header += ["torch ms", "convlab rate", "torch rate"] if with_torch else ["convlab rate"]
    header += ["unit"] + (["ratio"] if with_torch else []) + ["% GEMM"]
    header += ["max rel diff"] if with_torch else []
    table = [header]

    gemm = report["gemm"]
    which = "NumPy; torch.mm" if with_torch else "NumPy"
    row = ["GEMM", f"matmul {gemm['size']}x{gemm['size']} ({which})", _ms(gemm["numpy_ms"])]
    if with_torch:
        row += [
            _ms(gemm["torch_ms"]),
            _rate(gemm["numpy_gflops"], ""),
            _rate(gemm["torch_gflops"], ""),
        ]
        row += ["GFLOP/s", "-", "100", "-"]
    else:
        row += [_rate(gemm["numpy_gflops"], ""), "GFLOP/s", "100"]
    table.append(row)

    for w in report["workloads"]:
        percent = "-" if w["gemm_percent"] is None else f"{w['gemm_percent']:.0f}"
        ours = "error" if w["convlab_error"] else _ms(w["convlab_ms"])
        row = [w["name"], w["description"], ours]
        if with_torch:
            theirs = "error" if w["torch_error"] else _ms(w["torch_ms"])
            ratio = "-" if w["ratio"] is None else f"{w['ratio']:.2f}"
            diff = "-" if w["max_rel_diff"] is None else f"{w['max_rel_diff']:.1e}"
            if w["mismatch"]:
                diff += " MISMATCH"
            row += [theirs, _rate(w["convlab_rate"], w["unit"]), _rate(w["torch_rate"], w["unit"])]
            row += [w["unit"], ratio, percent, diff]
        else:
            row += [_rate(w["convlab_rate"], w["unit"]), w["unit"], percent]
        table.append(row)

    left = {0, 1, header.index("unit")}
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        cells = [c.ljust(n) if i in left else c.rjust(n) for i, (c, n) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())

    if with_torch:
        ratios = [w["ratio"] for w in report["workloads"] if w["ratio"] is not None]
        if report["geomean_ratio"] is not None:
            lines.append(
                f"geometric mean of the {len(ratios)} ratios: {report['geomean_ratio']:.2f}"
            )
        mismatches = [w["name"] for w in report["workloads"] if w["mismatch"]]
        if mismatches:
            lines.append(
                f"MISMATCH (max rel diff > {MISMATCH_TOLERANCE:g}): {', '.join(mismatches)}"
            )
    lines.append(
        "% GEMM: convlab's GFLOP/s as a share of the NumPy matmul's "
        f"({gemm['numpy_gflops']:.1f} GFLOP/s)"
    )
    memory = report["memory"]
    if memory is not None:
        lines.append(_memory_line(memory))
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def _memory_line(memory: dict[str, Any]) -> str:
    parts = []
    for library in ("convlab", "torch"):
        result = memory.get(library)
        if result is None:
            continue
        if "error" in result:
            parts.append(f"{library} unavailable ({result['error']})")
        else:
            parts.append(f"{library} {result['peak_increase_mib']:.1f} MiB")
    text = f"peak RSS increase of one {memory['workload']}: " + ", ".join(parts)
    if memory.get("ratio") is not None:
        text += f"; convlab / torch = {memory['ratio']:.2f}"
    return text
