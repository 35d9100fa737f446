"""Entry point of the ``convlab`` command: one sub-command per module in ``convlab.cli``."""

from __future__ import annotations

import argparse
import sys

import convlab
from convlab.cli import train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convlab",
        description="Convolutional neural networks on NumPy, with PyTorch's semantics.",
    )
    parser.add_argument("--version", action="version", version=f"convlab {convlab.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    train.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
