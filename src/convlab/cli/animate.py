"""``convlab animate OP``: an animated GIF of a kernel sliding over its input.

Drawn like the animations of Dumoulin & Visin's convolution-arithmetic guide (arXiv 1603.07285):
blue input, white dashed padding, the covered cells shaded, the output grid above. Needs Pillow
(``pip install 'convlab[images]'``).
"""

from __future__ import annotations

import argparse

from convlab.cli.common import UsageError, positive_int

DESCRIPTION = """\
Draw a convolution, transposed convolution or pooling as an animated GIF, one frame per
output position, in the style of Dumoulin & Visin's convolution-arithmetic animations:
the input grid (blue; padding white and dashed), the cells under the kernel shaded
(dilation leaves gaps) and the output grid above it with the current cell shaded.
Every size comes from convlab.shapes, and the values of --numbers from convlab's own ops.
Needs Pillow: pip install 'convlab[images]'.
"""

EXAMPLES = """\
examples:
  convlab animate conv2d --input 5 --kernel 3 --stride 2 --padding 1 --out conv.gif
  convlab animate conv2d --input 7 --kernel 3 --dilation 2 --numbers --frames frames/
  convlab animate conv_transpose2d --input 3 --kernel 3 --stride 2 --padding 1 \\
      --output-padding 1 --out up.gif       (the 3x3 -> 6x6 case; --output-size 6 says the same)
  convlab animate max_pool2d --input 5 --kernel 2 --padding 1 --ceil-mode --numbers
  convlab animate conv1d --input 8 --kernel 3 --stride 2     (1-d ops are drawn as one row)

Sizes take one number (used for every dimension) or one per dimension (height width).
A transposed convolution is drawn as the guide draws it: the input stretched with stride - 1
zeros between cells, padded by dilation*(kernel-1)-padding per side (plus output_padding at
the bottom/right), and a stride-1 convolution with the flipped kernel sliding over that.
Limits: input sides up to 16, at most 400 frames, frames up to 1500 pixels a side.
"""


def _ints(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _padding(text: str) -> int | str:
    if text in ("same", "valid"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer, 'same' or 'valid', got {text!r}"
        ) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    from convlab.viz.animate import OPS

    parser = subparsers.add_parser(
        "animate",
        help="animated GIF of a kernel sliding over its input (conv, transposed, pooling)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("op", choices=list(OPS), metavar="OP", help=f"one of {', '.join(OPS)}")
    size = parser.add_argument_group("geometry (PyTorch's meaning and defaults)")
    size.add_argument(
        "--input", type=_ints, nargs="+", required=True, metavar="N", help="input size (max 16)"
    )
    size.add_argument(
        "--kernel", type=_ints, nargs="+", default=[3], metavar="K", help="kernel size (default 3)"
    )
    size.add_argument(
        "--stride",
        type=_ints,
        nargs="+",
        metavar="S",
        help="stride (default 1; for pooling, the kernel size)",
    )
    size.add_argument(
        "--padding",
        type=_padding,
        nargs="+",
        default=[0],
        metavar="P",
        help="zero padding per side (default 0); convolutions also take 'same' or 'valid'",
    )
    size.add_argument(
        "--dilation",
        type=_ints,
        nargs="+",
        default=[1],
        metavar="D",
        help="spacing between kernel taps (default 1: none)",
    )
    size.add_argument(
        "--output-padding",
        type=_ints,
        nargs="+",
        default=[0],
        metavar="A",
        help="transposed convolution: extra output at the bottom/right (< stride or dilation)",
    )
    size.add_argument(
        "--output-size",
        type=_ints,
        nargs="+",
        metavar="O",
        help="transposed convolution: the wanted output size (picks --output-padding)",
    )
    size.add_argument(
        "--ceil-mode", action="store_true", help="pooling: ceil instead of floor for the output"
    )
    look = parser.add_argument_group("output")
    look.add_argument("--out", metavar="FILE.gif", help="the GIF to write (default OP.gif)")
    look.add_argument("--frames", metavar="DIR", help="also write each frame as DIR/frame_NNN.png")
    look.add_argument(
        "--numbers",
        action="store_true",
        help="write values in the cells: small integers in, convlab's output out",
    )
    look.add_argument("--seed", type=int, default=0, help="seed of the --numbers values")
    look.add_argument(
        "--cell", type=positive_int, metavar="PX", help="cell size in pixels (default: fit)"
    )
    look.add_argument(
        "--delay", type=positive_int, default=800, metavar="MS", help="ms per frame (800)"
    )
    parser.set_defaults(func=run)
    return parser


def _size(values: list | None, n: int, flag: str):
    """One value for every dimension, or one per dimension."""
    if values is None:
        return None
    if len(values) not in (1, n):
        raise UsageError(
            f"{flag} takes 1 or {n} value{'s' if n > 1 else ''} for a {n}-d op, "
            f"got {len(values)}: {' '.join(map(str, values))}"
        )
    if any(isinstance(v, str) for v in values):
        if len(values) != 1:
            raise UsageError(f"{flag} 'same' or 'valid' stands alone, got {' '.join(values)}")
        return values[0]
    return tuple(values) * (n if len(values) == 1 else 1)


def run(args: argparse.Namespace) -> int:
    from convlab.viz.animate import OPS, AnimationError, plan_animation, save_animation

    kind, n = OPS[args.op]
    pooling = kind in ("max_pool", "avg_pool")
    if args.ceil_mode and not pooling:
        raise UsageError(f"--ceil-mode applies to pooling, not to {args.op}")
    if kind != "conv_transpose" and (args.output_size or any(args.output_padding)):
        raise UsageError(
            f"--output-padding and --output-size apply to transposed convolutions, not to {args.op}"
        )
    if kind == "avg_pool" and any(d != 1 for d in args.dilation):
        raise UsageError("avg_pool has no dilation (PyTorch's average pooling takes none)")
    if args.output_size and any(args.output_padding):
        raise UsageError("give --output-size or --output-padding, not both")
    out = args.out or f"{args.op}.gif"
    try:
        plan = plan_animation(
            args.op,
            _size(args.input, n, "--input"),
            _size(args.kernel, n, "--kernel"),
            stride=_size(args.stride, n, "--stride"),
            padding=_size(args.padding, n, "--padding"),
            dilation=_size(args.dilation, n, "--dilation"),
            output_padding=_size(args.output_padding, n, "--output-padding"),
            ceil_mode=args.ceil_mode,
            output_size=_size(args.output_size, n, "--output-size"),
        )
        result = save_animation(
            plan,
            out,
            numbers=args.numbers,
            frames_dir=args.frames,
            cell=args.cell,
            delay_ms=args.delay,
            seed=args.seed,
        )
    except AnimationError as error:
        raise UsageError(str(error)) from None
    except ImportError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        where = (
            error.filename if error.filename and not str(error.filename).endswith(".tmp") else out
        )
        raise UsageError(f"cannot write {where}: {error.strerror or error}") from None
    width, height = result["size"]
    print(plan.describe())
    print(f"wrote {result['path']} ({result['frames']} frames, {width}x{height} px)")
    if result["pngs"]:
        print(f"wrote {len(result['pngs'])} frames to {args.frames}/frame_NNN.png")
    return 0
