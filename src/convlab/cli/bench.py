"""``convlab bench``: time convlab against PyTorch on the baseline workloads, side by side."""

from __future__ import annotations

import argparse

from convlab.cli.common import positive_float, positive_int

EXAMPLES = """\
examples:
  convlab bench                          every workload, 2 threads, median of 11, peak memory
  convlab bench --only W1b,W2            a convolution forward and its backward
  convlab bench --only W1 --repeats 7    every W1* workload (a prefix selects several)
  convlab bench --threads 1 --json results.json
  convlab bench --json - > results.json  the JSON on stdout, the table on stderr
  convlab bench --memory --only W2       with the peak RSS of W1b forward+backward
  convlab bench --no-torch --scale 0.25  convlab alone, quarter-size batches

Workloads (shared/reference/baselines.md): W1a-W1f conv2d forward, W2 conv2d backward of W1b,
W3 conv_transpose2d, W4 conv1d, W5 max_pool2d, W6i LeNet-5 training step (batch 64), W6ii
LeNet-5 inference (batch 256), and NAME-bwd: the backward of each forward workload.
ratio = torch time / convlab time: above 1.0, convlab is faster. A max rel diff
(max |convlab - torch| / max |torch|) above 1e-3 is flagged MISMATCH.
"""


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="time convlab against PyTorch on the baseline workloads",
        description="Time convlab and PyTorch on the same data with the same thread count "
        "(warm-up, then the median of the repeats, one library's repeats as a block), compare "
        "their outputs, and print times, GFLOP/s (GB/s, images/s), the ratio and the share "
        "of the float32 matrix-product ceiling. Without PyTorch (or with --no-torch) only "
        "convlab's columns are filled.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated workload names or prefixes, e.g. W1b,W2 or W1 (default: all)",
    )
    parser.add_argument(
        "--threads",
        metavar="N",
        help="threads for PyTorch and for convlab's kernels (default: 2, or fewer cores)",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=11, metavar="N", help="timed calls (default 11)"
    )
    parser.add_argument(
        "--warmup",
        type=positive_int,
        default=5,
        metavar="N",
        help="untimed calls before them, for both libraries, until the allocator and JIT caches "
        "settle; the first one's outputs are compared (default 5)",
    )
    parser.add_argument(
        "--warmup-time",
        type=_non_negative_float,
        default=0.2,
        metavar="S",
        help="and warm up for at least S seconds: after an idle pause this machine runs its "
        "first ~80 ms of work at half speed (default 0.2)",
    )
    parser.add_argument(
        "--scale",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="multiply every batch size by F (at least 1 sample), for a quick run (default 1)",
    )
    parser.add_argument("--no-torch", action="store_true", help="time convlab alone")
    parser.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the peak RSS increase of one W1b forward+backward per library, each in "
        "a fresh process (default: only when every workload runs)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the results and the environment as JSON ('-': to stdout, and the "
        "table to stderr)",
    )
    parser.add_argument(
        "--pause",
        type=_non_negative_float,
        default=0.3,
        metavar="S",
        help="idle seconds between the two libraries' blocks, so that one's spinning threads "
        "do not slow the other (default 0.3)",
    )
    parser.add_argument(
        "--gemm-size",
        type=positive_int,
        default=2048,
        metavar="N",
        help="side of the float32 matrix product that gives the GEMM ceiling (default 2048)",
    )
    parser.set_defaults(func=run)
    return parser


def _threads(text: str | None) -> int | None:
    from convlab.cli.common import UsageError

    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--threads expects a positive integer, got {text!r}") from None
    if value <= 0:
        raise UsageError(f"--threads must be a positive integer, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from convlab.bench import BenchOptions, format_report, run_benchmarks, select_workloads
    from convlab.cli.common import UsageError

    threads = _threads(args.threads)
    only = [name for name in args.only.split(",") if name.strip()] if args.only else None
    if args.only is not None and not only:
        raise UsageError("--only needs at least one workload name, e.g. --only W1b,W2")
    try:
        select_workloads(only)
    except ValueError as error:
        raise UsageError(f"--only: {error}") from None
    to_stdout = args.json == "-"
    if args.json and not to_stdout:
        folder = Path(args.json).expanduser().resolve().parent
        if not folder.is_dir():
            raise UsageError(f"--json: folder {str(folder)!r} does not exist")

    options = BenchOptions(
        only=only,
        threads=threads,
        repeats=args.repeats,
        warmup=args.warmup,
        warmup_seconds=args.warmup_time,
        scale=args.scale,
        use_torch=not args.no_torch,
        memory=args.memory,
        pause=args.pause,
        gemm_size=args.gemm_size,
        progress=sys.stderr,
    )
    report = run_benchmarks(options)
    table = format_report(report)
    print(table, file=sys.stderr if to_stdout else sys.stdout)
    if to_stdout:
        print(json.dumps(report, indent=2))
    elif args.json:
        try:
            Path(args.json).expanduser().write_text(json.dumps(report, indent=2) + "\n")
        except OSError as error:
            raise UsageError(f"--json: cannot write {args.json!r}: {error.strerror}") from None
        print(f"results written to {args.json}", file=sys.stderr)
    failed = any(row["convlab_error"] or row["torch_error"] for row in report["workloads"])
    return 1 if failed else 0
