"""``convlab train``: train a CNN on the digits shipped with the package.

Not built yet: the engine (convolution, autograd, layers) comes first. Until then the command
says so and exits with status 2, rather than pretending to train.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a CNN (LeNet-5 on the shipped MNIST digits by default)",
        description="Train a CNN from the command line. Not available yet in this version.",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    print(
        "convlab train: training is not available yet in this version (the engine comes "
        "first); see README.md",
        file=sys.stderr,
    )
    return 2
