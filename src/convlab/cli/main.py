"""Entry point of the ``convlab`` command: one sub-command per module in ``convlab.cli``.

Errors a user can fix (bad arguments, missing or corrupt files) print one line on stderr and
exit with status 2; a diverged training run exits with 1; Ctrl-C exits with 130. No traceback.
"""

from __future__ import annotations

import argparse
import sys

import convlab
from convlab.cli import (
    animate,
    bench,
    evaluate,
    explain,
    predict,
    run,
    shape,
    summary,
    train,
    viz,
)
from convlab.cli.common import UsageError

COMMANDS = (train, evaluate, predict, summary, shape, explain, animate, viz, run, bench)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2, like every other user error
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="convlab",
        description="Convolutional neural networks on NumPy, with PyTorch's semantics.",
    )
    parser.add_argument("--version", action="version", version=f"convlab {convlab.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from convlab.data import DataError
    from convlab.io import SafetensorsError
    from convlab.io.checkpoint import CheckpointError
    from convlab.training import DivergedError

    try:
        return args.func(args)
    except (UsageError, DataError, CheckpointError, SafetensorsError) as error:
        print(f"convlab {args.command}: error: {error}", file=sys.stderr)
        return 2
    except DivergedError as error:
        print(f"convlab {args.command}: stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", "")
        print(f"\nconvlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
