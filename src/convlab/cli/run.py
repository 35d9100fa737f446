"""``convlab run MODEL.onnx INPUT.npy...``: run an ONNX model with convlab and show the output.

Prints each output's shape and dtype; for a classifier-like output (a float matrix, one row
per sample) also each row's argmax and top values. ``--output`` saves the result (.npy for one
output, .npz for several). Needs the onnx extra (``pip install 'convlab[onnx]'``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from convlab.cli.common import UsageError, positive_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "run",
        help="run an ONNX model on .npy inputs",
        description="Load MODEL.onnx with convlab (no onnxruntime needed), run it on the "
        "inputs (one .npy file per graph input, in order) and print the outputs. An input "
        "without the batch dimension gets one. Needs the onnx package "
        "(pip install 'convlab[onnx]').",
    )
    parser.add_argument("model", metavar="MODEL.onnx", help="an ONNX model file")
    parser.add_argument("inputs", metavar="INPUT.npy", nargs="+", help="NumPy arrays (.npy)")
    parser.add_argument(
        "--output", metavar="OUT", help="save the output (.npy; .npz when there are several)"
    )
    parser.add_argument(
        "--top", type=positive_int, default=3, help="how many top values to show per row"
    )
    parser.set_defaults(func=run)
    return parser


def _load_input(path: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"no such input file: {path}") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path} as a .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise UsageError(f"{path} holds several arrays (.npz); give one .npy per graph input")
    return array


def _fit_batch(array: np.ndarray, declared: tuple | None) -> np.ndarray:
    """Add the batch dimension when the input has exactly one dimension less than declared."""
    if declared is not None and array.ndim == len(declared) - 1:
        return array[None]
    return array


def _looks_like_scores(y: np.ndarray) -> bool:
    return y.ndim == 2 and y.dtype.kind == "f" and 1 < y.shape[1] <= 100_000


def _describe(name: str, y: np.ndarray, top: int) -> list[str]:
    lines = [f"output {name!r}: shape {tuple(y.shape)} {y.dtype}"]
    if _looks_like_scores(y):
        k = min(top, y.shape[1])
        for row, values in enumerate(y[:20]):
            order = np.argsort(-values, kind="stable")[:k]
            tops = ", ".join(f"{i}: {values[i]:.4g}" for i in order)
            lines.append(f"  sample {row}: argmax {order[0]}  (top {k}: {tops})")
        if y.shape[0] > 20:
            lines.append(f"  ... {y.shape[0] - 20} more samples")
    else:
        flat = y.reshape(-1)
        if flat.size and y.dtype.kind in "fiub":
            mean = flat.astype(np.float64).mean()
            lines.append(f"  min {flat.min():.4g}  max {flat.max():.4g}  mean {mean:.4g}")
    return lines


def run(args: argparse.Namespace) -> int:
    import convlab as cl

    try:
        from convlab.onnx import OnnxError, load
    except ImportError as error:  # pragma: no cover - convlab.onnx imports onnx lazily
        raise UsageError(str(error)) from None
    try:
        model = load(args.model)
    except ImportError as error:
        raise UsageError(str(error)) from None
    except OnnxError as error:
        raise UsageError(str(error)) from None
    if len(args.inputs) != len(model.inputs):
        raise UsageError(
            f"{args.model} takes {len(model.inputs)} input(s) {model.input_names}, but "
            f"{len(args.inputs)} file(s) were given"
        )
    arrays = [
        _fit_batch(_load_input(path), info.shape) for path, info in zip(args.inputs, model.inputs)
    ]
    start = time.perf_counter()
    try:
        with cl.no_grad():
            outputs = model(*arrays)
    except OnnxError as error:
        raise UsageError(str(error)) from None
    elapsed = time.perf_counter() - start
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    results = {name: out.numpy() for name, out in zip(model.output_names, outputs)}
    for name, y in results.items():
        print("\n".join(_describe(name, y, args.top)))
    print(f"ran {len(model.nodes)} nodes in {1000 * elapsed:.1f} ms")
    if args.output:
        try:
            if len(results) == 1:
                np.save(args.output, next(iter(results.values())))
            else:
                np.savez(args.output, **results)
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error.strerror or error}") from None
        print(f"saved to {args.output}")
    return 0
