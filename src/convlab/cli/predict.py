"""``convlab predict DIR IMAGE...``: classify image files with a trained run."""

from __future__ import annotations

import argparse

import numpy as np


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="classify image files with a trained run",
        description="Print the predicted class and the top probabilities for each image. "
        "Images are converted to the model's channels and size; a light "
        "background is inverted to match MNIST's white-on-black digits. "
        "Needs Pillow (pip install 'convlab[images]').",
    )
    parser.add_argument("run_dir", metavar="DIR", help="a run directory made by convlab train")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="PNG/JPEG files")
    parser.add_argument("--top", type=int, default=3, help="how many probabilities to show")
    parser.set_defaults(func=run)
    return parser


def load_image(path: str, channels: int, size: tuple[int, int]) -> np.ndarray:
    """An image as uint8 ``(C, H, W)`` at the model's size, white-on-black like MNIST."""
    from convlab.cli.common import UsageError

    try:
        from PIL import Image
    except ImportError:
        raise UsageError("predict needs Pillow: pip install 'convlab[images]'") from None
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except OSError as error:
        raise UsageError(f"cannot read image {path}: {error}") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    border = np.concatenate(
        [array[:, 0].ravel(), array[:, -1].ravel(), array[:, :, 0].ravel(), array[:, :, -1].ravel()]
    )
    if channels == 1 and border.mean() > 127:  # dark digit on light paper: invert
        array = 255 - array
    return array


def run(args: argparse.Namespace) -> int:
    import convlab as cl
    from convlab.cli.common import UsageError
    from convlab.data import Normalize
    from convlab.io.checkpoint import load_model

    model, config = load_model(args.run_dir)
    if config.get("task") != "classify":
        raise UsageError(f"{args.run_dir} holds a {config['model']}, which does not classify")
    model_args = config["model_args"]
    size = tuple(model_args["input_size"])
    if len(size) != 2:
        raise UsageError(f"{config['model']} reads sequences, not images")
    batch = np.stack([load_image(p, model_args["in_channels"], size) for p in args.images])
    x = cl.Tensor(Normalize.from_dict(config["normalize"])(batch))
    with cl.no_grad():
        logits = model(x).numpy().astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    classes = config["classes"]
    for path, row in zip(args.images, probs):
        order = np.argsort(-row)[: max(1, args.top)]
        tops = ", ".join(f"{classes[i]} {100 * row[i]:.1f}%" for i in order)
        print(f"{path}: {classes[order[0]]}  ({tops})")
    return 0
