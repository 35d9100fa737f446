"""``convlab viz``: not built yet (placeholder so the command is registered)."""

from __future__ import annotations

import argparse

from convlab.cli.common import UsageError


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("viz", help="(not built yet)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    raise UsageError("'convlab viz' is not built yet in this version")
