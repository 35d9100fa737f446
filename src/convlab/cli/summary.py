"""``convlab summary MODEL``: one row per layer with output shape, parameters and mult-adds."""

from __future__ import annotations

import argparse

from convlab.cli.common import positive_int

DEFAULT_INPUTS = {"cnn1d": (1, 40)}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from convlab.models import MODELS

    parser = subparsers.add_parser(
        "summary",
        help="layers, output shapes, parameters and multiply-adds of a model",
        description="Print a model's layers with their output shape, parameter count and "
        "multiply-adds per sample, and the totals (what torchinfo prints for "
        "PyTorch). MODEL is a zoo name or a run directory.",
    )
    parser.add_argument(
        "model", metavar="MODEL", help=f"one of {', '.join(sorted(MODELS))}, or a run directory"
    )
    parser.add_argument(
        "--input-size",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="input shape C H W (images) or C L (sequences); default 1 28 28",
    )
    parser.add_argument("--classes", type=positive_int, default=10)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from convlab.cli.common import UsageError
    from convlab.models import MODELS, build_model
    from convlab.models.summary import format_summary, summarize

    if Path(args.model).is_dir():
        from convlab.io.checkpoint import load_model

        model, config = load_model(args.model)
        shape = (config["model_args"]["in_channels"], *config["model_args"]["input_size"])
        title = f"{config['model']} ({args.model})"
    elif args.model in MODELS:
        shape = tuple(args.input_size or DEFAULT_INPUTS.get(args.model, (1, 28, 28)))
        if len(shape) < 2:
            raise UsageError(f"--input-size needs channels and at least one size, got {shape}")
        try:
            model = build_model(
                args.model,
                in_channels=shape[0],
                num_classes=args.classes,
                input_size=list(shape[1:]),
            )
        except (TypeError, ValueError) as error:
            raise UsageError(f"{args.model} cannot take input {shape}: {error}") from None
        title = args.model
    else:
        raise UsageError(
            f"unknown model {args.model!r}; choose one of {', '.join(MODELS)} "
            "or give a run directory"
        )
    try:
        rows = summarize(model, shape)
    except (RuntimeError, ValueError) as error:
        raise UsageError(f"{title} cannot run on input {shape}: {error}") from None
    print(format_summary(rows, title, shape))
    return 0
