"""``convlab viz DIR``: pictures of a trained model, from its run directory.

Writes ``kernels.png`` (the first convolution's kernels), ``feature_maps.png`` (every
convolutional layer's output for one input) and, for classifiers, ``confusion.png``.
Needs matplotlib: ``pip install 'convlab[viz]'`` (and Pillow for ``--image``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from convlab.cli.common import UsageError, non_negative_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "viz",
        help="pictures of a trained model: kernels, feature maps, confusion matrix",
        description="Write DIR/kernels.png (the first convolutional layer's kernels on a "
        "diverging colour map), DIR/feature_maps.png (the output of every convolutional "
        "layer, after its activation, for one input: the first test image of the run's data, "
        "or --image) and, for classifiers, DIR/confusion.png (the test set's confusion "
        "matrix). Needs matplotlib: pip install 'convlab[viz]'.",
    )
    parser.add_argument("run_dir", metavar="DIR", help="a run directory made by convlab train")
    parser.add_argument(
        "--image", metavar="PNG", help="an image file to look at (converted like predict does)"
    )
    parser.add_argument(
        "--index",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="without --image: which test item to look at (default 0, the first)",
    )
    parser.add_argument("--data", help="use this data's test set instead of the run's")
    parser.add_argument("--out", metavar="FOLDER", help="where to write the pictures (default DIR)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from convlab.data import Normalize, load_dataset
    from convlab.io.checkpoint import load_model

    model, config = load_model(args.run_dir)
    try:
        from convlab.viz import model_pictures as pictures
    except ImportError as error:
        raise UsageError(str(error)) from None
    layers = pictures.conv_layers(model)
    if not layers:
        raise UsageError(f"{args.run_dir} holds a {config['model']} with no convolutional layer")
    out = Path(args.out or args.run_dir)
    if not out.is_dir():
        raise UsageError(f"{out} is not a folder")
    model_args = config.get("model_args", {})
    channels = model_args.get("in_channels", 1)
    size = tuple(model_args.get("input_size", ()))
    normalize = Normalize.from_dict(config["normalize"])
    split = load_dataset(args.data or config["data"])
    if args.image:
        if len(size) != 2:
            raise UsageError(f"{config['model']} reads sequences, not images: leave out --image")
        from convlab.cli.predict import load_image

        raw = load_image(args.image, channels, size)
        source = args.image
    else:
        if args.index >= len(split.test):
            raise UsageError(
                f"--index {args.index} is past the end of {split.name}'s test set "
                f"({len(split.test)} items)"
            )
        raw = split.test.inputs[args.index]
        label = split.test.classes[split.test.targets[args.index]] if split.test.classes else ""
        source = f"{split.name} test item {args.index}" + (f" (class {label})" if label else "")
    if raw.shape != (channels, *size):
        raise UsageError(
            f"{source} has shape {raw.shape}, but the model of {args.run_dir} reads "
            f"({channels}, {', '.join(map(str, size))})"
        )
    x = normalize(raw[None])[0]
    try:
        maps = pictures.feature_maps(model, x)
        first_name, first = layers[0]
        weight = np.asarray(first.weight.data)
        paths = [
            pictures.save_kernels(
                weight,
                out / "kernels.png",
                f"{config['model']} layer {first_name}: {type(first).__name__} "
                f"{'x'.join(map(str, weight.shape))}",
            ),
            pictures.save_feature_maps(
                raw.astype(np.float64),
                maps,
                out / "feature_maps.png",
                f"{config['model']}: feature maps for {source}",
            ),
        ]
    except ImportError as error:
        raise UsageError(str(error)) from None
    if config.get("task") == "classify":
        paths.append(_confusion(model, config, split, normalize, out, args.run_dir))
    for path in paths:
        if path is not None:
            print(path)
    return 0


def _confusion(model, config, split, normalize, out: Path, run_dir) -> Path | None:
    from convlab.cli.evaluate import confusion_matrix
    from convlab.training import evaluate
    from convlab.viz.plots import save_confusion_matrix

    test = split.test
    expected = (config["model_args"].get("in_channels", 1), *config["model_args"]["input_size"])
    if test.input_shape != tuple(expected):
        raise UsageError(
            f"{split.name} holds inputs of shape {test.input_shape}, but the model of "
            f"{run_dir} reads {tuple(expected)}"
        )
    if len(test) == 0:
        return None
    metrics = evaluate(model, test, normalize, config["model"])
    matrix = confusion_matrix(test.targets, metrics["predictions"], len(config["classes"]))
    return save_confusion_matrix(matrix, config["classes"], out / "confusion.png")
