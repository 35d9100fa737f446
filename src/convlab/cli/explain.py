"""``convlab explain``: a worked convolution example in the terminal.

    convlab explain
    convlab explain --input 5 5 --kernel 3 --stride 2 --padding 1 --transpose
    convlab explain --input 7 --kernel 3 --dilation 2 --input-values 1 2 3 4 5 6 7

The padded input, every window with its element-wise products and their sum, the output, the
convolution as a matrix C, and (``--transpose``) the transposed convolution as C^T.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from convlab.arith import explain
from convlab.arith.sizes import ArithError
from convlab.cli.common import UsageError, non_negative_int, positive_int

EXAMPLES = """\
examples:
  convlab explain                                   (4 x 4 input, 3 x 3 kernel: C is 4 x 16)
  convlab explain --input 5 5 --kernel 3 --stride 2 --padding 1 --transpose
  convlab explain --input 6 6 --kernel 3 --stride 2 --padding 1 --transpose
  convlab explain --input 7 7 --kernel 3 --dilation 2
  convlab explain --input 5 --kernel 3 --input-values 1 2 3 4 5 --kernel-values 1 0 -1

Values are integers in row-major order. Without them the input is drawn from --seed (0..3)
and the kernel is 1, 2, 3, ... (each weight is then easy to find in C), or drawn from
--kernel-seed (0..2). Limits keep the text readable: inputs up to {i2} x {i2} (1-d: {i1}),
kernels up to {k2} x {k2} (1-d: {k1}), padded inputs up to {p2} per side (1-d: {p1}), outputs
up to {o2} positions (1-d: {o1}), values within -{v}..{v}; C is printed up to {m} x {m}.
""".format(
    i1=explain.LIMITS["input"][1],
    i2=explain.LIMITS["input"][2],
    k1=explain.LIMITS["kernel"][1],
    k2=explain.LIMITS["kernel"][2],
    p1=explain.LIMITS["padded"][1],
    p2=explain.LIMITS["padded"][2],
    o1=explain.LIMITS["output"][1],
    o2=explain.LIMITS["output"][2],
    v=explain.LIMITS["value"],
    m=explain.LIMITS["matrix"],
)


def _integers(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "explain",
        help="a worked convolution example: windows, products, sums, the matrix C and C^T",
        description=(
            "Work a small 1-d or 2-d convolution through in integers: the padded input, each "
            "output position's window, its element-wise products and their sum, the output, "
            "the convolution as a matrix C (y = C x) and, with --transpose, the transposed "
            "convolution as C^T, equal to conv_transpose with the matching output_padding."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = dict(nargs="+", type=positive_int, metavar="N")
    parser.add_argument(
        "--input", default=[4, 4], help="input size: 1 value (1-d) or 2 (2-d); default 4 4", **size
    )
    parser.add_argument("--kernel", default=[3], help="kernel size (default 3)", **size)
    parser.add_argument("--stride", default=[1], help="stride (default 1)", **size)
    parser.add_argument(
        "--padding",
        nargs="+",
        type=non_negative_int,
        default=[0],
        metavar="N",
        help="zero padding on each side (default 0)",
    )
    parser.add_argument("--dilation", default=[1], help="kernel dilation (default 1)", **size)
    values = dict(nargs="+", type=_integers, metavar="V", action="extend")
    parser.add_argument("--input-values", help="the input, row-major (default: random)", **values)
    parser.add_argument("--kernel-values", help="the kernel, row-major (default: random)", **values)
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed for the random input values, 0..3 (default 0)",
    )
    parser.add_argument(
        "--kernel-seed",
        type=non_negative_int,
        default=None,
        metavar="SEED",
        help="draw the kernel at random too, 0..2 (default: 1, 2, 3, ... row-major)",
    )
    parser.add_argument(
        "--transpose",
        action="store_true",
        help="also show the transposed convolution as C^T and the output_padding it needs",
    )
    parser.set_defaults(func=run)
    return parser


def _per_dim(values: list[int], n: int, name: str) -> tuple[int, ...]:
    if len(values) == 1:
        return tuple(values) * n
    if len(values) != n:
        raise UsageError(
            f"--{name} takes 1 or {n} values for a {n}-d example (set by --input), but got "
            f"{len(values)}"
        )
    return tuple(values)


def _values(given, shape: tuple[int, ...], name: str, seed: int, high: int) -> np.ndarray:
    if given is None:
        return explain.example_values(shape, seed, high)
    flat = [v for chunk in given for v in chunk]
    if len(flat) != math.prod(shape):
        raise UsageError(
            f"--{name}-values gives {len(flat)} values but a {' x '.join(map(str, shape))} "
            f"{name} needs {math.prod(shape)}"
        )
    return np.array(flat, dtype=np.int64).reshape(shape)


def run(args: argparse.Namespace) -> int:
    n = len(args.input)
    if n > 2:
        raise UsageError(
            f"explain shows 1-d and 2-d examples, but --input has {n} values; for 3-d sizes "
            f"use convlab shape conv3d"
        )
    kernel = _per_dim(args.kernel, n, "kernel")
    stride = _per_dim(args.stride, n, "stride")
    padding = _per_dim(args.padding, n, "padding")
    dilation = _per_dim(args.dilation, n, "dilation")
    x = _values(args.input_values, tuple(args.input), "input", args.seed, 3)
    w = _values(args.kernel_values, kernel, "kernel", args.kernel_seed, 2)
    try:
        text = explain.worked_example(x, w, stride, padding, dilation, transpose=args.transpose)
    except ArithError as error:
        raise UsageError(str(error)) from None
    print(text)
    return 0
