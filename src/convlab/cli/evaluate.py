"""``convlab evaluate DIR``: test metrics of a trained run, from its directory alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="test accuracy (and a confusion matrix) of a run directory",
        description="Rebuild the model of a run directory, run it on the test set of its data "
        "(or --data) and print the accuracy; with the 'viz' extra also write "
        "DIR/confusion.png.",
    )
    parser.add_argument("run_dir", metavar="DIR", help="a run directory made by convlab train")
    parser.add_argument("--data", help="evaluate on this data's test set instead")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(func=run)
    return parser


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    return np.bincount(targets * classes + predictions, minlength=classes * classes).reshape(
        classes, classes
    )


def run(args: argparse.Namespace) -> int:
    from convlab.cli.common import UsageError
    from convlab.data import Normalize, load_dataset
    from convlab.io.checkpoint import load_model
    from convlab.training import evaluate

    model, config = load_model(args.run_dir)
    split = load_dataset(args.data or config["data"])
    test = split.test
    expected = tuple(config["model_args"].get("input_size", ()))
    if test.input_shape[1:] != tuple(expected) or test.input_shape[0] != config["model_args"].get(
        "in_channels", test.input_shape[0]
    ):
        raise UsageError(
            f"{split.name} holds inputs of shape {test.input_shape}, but the model of "
            f"{args.run_dir} was trained on ({config['model_args'].get('in_channels')}, "
            f"{', '.join(map(str, expected))})"
        )
    metrics = evaluate(model, test, Normalize.from_dict(config["normalize"]), config["model"])
    result = {"run_dir": str(args.run_dir), "data": split.name, "samples": len(test)}
    if "test_accuracy" in metrics:
        matrix = confusion_matrix(test.targets, metrics["predictions"], len(config["classes"]))
        result.update(
            test_accuracy=metrics["test_accuracy"],
            test_loss=metrics["test_loss"],
            confusion_matrix=matrix.tolist(),
        )
    else:
        result.update(test_mse=metrics["test_mse"])
    if args.json:
        print(json.dumps(result))
    elif "test_accuracy" in result:
        print(
            f"test accuracy {100 * result['test_accuracy']:.2f}% "
            f"({int(round(result['test_accuracy'] * len(test)))}/{len(test)}), "
            f"loss {result['test_loss']:.4f}"
        )
    else:
        print(f"test mse {result['test_mse']:.5f} over {len(test)} samples")
    if "confusion_matrix" in result:
        from convlab.viz.plots import save_confusion_matrix

        save_confusion_matrix(
            np.array(result["confusion_matrix"]),
            config["classes"],
            Path(args.run_dir) / "confusion.png",
        )
    return 0
