"""``convlab train``: train a CNN from the command line (LeNet-5 on the shipped digits)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from convlab.cli.common import UsageError, non_negative_int, positive_float, positive_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    from convlab.models import MODELS
    from convlab.training import OPTIMIZERS, TrainOptions

    defaults = TrainOptions()
    parser = subparsers.add_parser(
        "train",
        help="train a CNN (LeNet-5 on the 5,000 shipped MNIST digits by default)",
        description=(
            "Train a model, printing one line per epoch (and a progress bar on a terminal). "
            "After every epoch DIR holds config.json, model.safetensors, resume.safetensors and "
            "metrics.json; at the end also curves.png (with the 'viz' extra)."
        ),
    )
    parser.add_argument(
        "--model",
        default=defaults.model,
        choices=sorted(MODELS),
        help="which network of the model zoo (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        default=defaults.data,
        help="'mnist-5k' (shipped), 'mnist1d', a directory of MNIST IDX files or "
        "of class sub-folders of images, or an .npz with x and y (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"passes over the training set (default {defaults.epochs}, cnn1d 60)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults.batch_size,
        help="images per step (default: %(default)s)",
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help=f"peak learning rate of the one-cycle schedule (default {defaults.lr:g}, cnn1d 0.01)",
    )
    parser.add_argument(
        "--optimizer",
        default=defaults.optimizer,
        choices=sorted(OPTIMIZERS),
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seeds weights, shuffling and augmentation: same seed, same numbers "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--shift",
        type=non_negative_int,
        default=defaults.max_shift,
        help="random shifts of up to this many pixels (augmentation); 0 = off "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="new run directory for checkpoints and metrics (default runs/MODEL-DATE-TIME)",
    )
    parser.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR where it stopped, with its own settings",
    )
    parser.add_argument(
        "--until",
        type=positive_int,
        metavar="EPOCH",
        help="stop after this epoch of the planned ones (continue later with --resume)",
    )
    parser.set_defaults(func=run)
    return parser


def _options_for_resume(args):
    from convlab.io.checkpoint import RESUME, load_config
    from convlab.training import TrainOptions

    run_dir = Path(args.resume)
    config = load_config(run_dir)
    if not (run_dir / RESUME).is_file():
        raise UsageError(f"{run_dir} has no {RESUME}: nothing to resume")
    settings = config.get("training", {})
    planned = settings.get("epochs", TrainOptions.epochs)
    if args.epochs is not None and args.epochs != planned:
        raise UsageError(
            f"{run_dir} was planned for {planned} epochs and its learning-rate schedule "
            f"follows that plan; --epochs {args.epochs} cannot change it (use --until to stop "
            "early, or start a new run)"
        )
    return TrainOptions(
        model=config["model"],
        data=config["data"],
        epochs=planned,
        batch_size=settings.get("batch_size", TrainOptions.batch_size),
        lr=settings.get("lr", TrainOptions.lr),
        optimizer=settings.get("optimizer", TrainOptions.optimizer),
        seed=settings.get("seed", TrainOptions.seed),
        max_shift=settings.get("max_shift", TrainOptions.max_shift),
        out=str(run_dir),
        until=args.until,
    )


def _options_for_new_run(args):
    from convlab.io.checkpoint import CONFIG
    from convlab.training import MODEL_DEFAULTS, TrainOptions

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{args.model}-{stamp}"
    if (out / CONFIG).exists():
        raise UsageError(
            f"{out} already holds a run: resume it with --resume {out}, or choose another --out"
        )
    recipe = MODEL_DEFAULTS.get(args.model, {})
    return TrainOptions(
        model=args.model,
        data=args.data,
        epochs=args.epochs or recipe.get("epochs", TrainOptions.epochs),
        batch_size=args.batch_size,
        lr=args.lr or recipe.get("lr", TrainOptions.lr),
        optimizer=args.optimizer,
        seed=args.seed,
        max_shift=args.shift,
        out=str(out),
        until=args.until,
    )


def _check_model_fits_data(options, split) -> None:
    from convlab.models import build_model

    shape = split.train.input_shape
    if options.model == "cnn1d" and len(shape) != 2:
        raise UsageError(
            f"cnn1d needs 1-D sequences (e.g. --data mnist1d), but {options.data} holds inputs "
            f"of shape {shape}"
        )
    if options.model != "cnn1d" and len(shape) != 3:
        raise UsageError(
            f"{options.model} needs images (C, H, W), but {options.data} holds inputs of shape "
            f"{shape}"
        )
    try:
        build_model(
            options.model,
            in_channels=shape[0],
            num_classes=split.train.num_classes,
            input_size=list(shape[1:]),
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    from convlab.data import load_dataset
    from convlab.training import train

    options = _options_for_resume(args) if args.resume else _options_for_new_run(args)
    args.interrupt_hint = (
        f"; the last finished epoch is saved: convlab train --resume {options.out}"
    )
    split = load_dataset(options.data, seed=options.seed)
    _check_model_fits_data(options, split)
    print(
        f"training {options.model} on {split.name}: {len(split.train)} train / "
        f"{len(split.test)} test, {options.epochs} epochs, batch {options.batch_size}, "
        f"{options.optimizer} lr {options.lr:g}, seed {options.seed} -> {options.out}"
    )
    summary = train(options, split, resume=bool(args.resume))
    result = (
        f"test accuracy {100 * summary['test_accuracy']:.2f}%"
        if "test_accuracy" in summary
        else f"test mse {summary['test_mse']:.5f}"
    )
    if summary["epochs"] < options.epochs:
        print(
            f"stopped after epoch {summary['epochs']} of {options.epochs} ({result}); continue "
            f"with: convlab train --resume {options.out}"
        )
        return 0
    print(
        f"done: {result} after {summary['epochs']} epochs, "
        f"{summary['train_seconds']:.1f}s of training; run directory {options.out}"
    )
    from convlab.viz.plots import save_training_curves

    picture = save_training_curves(summary, Path(options.out) / "curves.png")
    if picture is not None:
        print(f"training curves: {picture}")
    if options.model == "autoencoder":
        _save_reconstructions(options.out, split)
    return 0


def _save_reconstructions(run_dir: str, split) -> None:
    import convlab as cl
    from convlab.data import Normalize
    from convlab.io.checkpoint import load_model
    from convlab.viz.plots import save_reconstructions

    model, config = load_model(run_dir)
    normalize = Normalize.from_dict(config["normalize"])
    import numpy as np

    targets = split.test.targets
    picks = [int(np.flatnonzero(targets == c)[0]) for c in np.unique(targets)[:10]]
    images = split.test.inputs[picks]  # one test image per class
    with cl.no_grad():
        rebuilt = model(cl.Tensor(normalize(images))).numpy()
    picture = save_reconstructions(
        images / normalize.scale, rebuilt, Path(run_dir) / "reconstructions.png"
    )
    if picture is not None:
        print(f"originals and reconstructions: {picture}")
