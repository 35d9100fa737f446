"""``convlab shape``: output sizes with the formula written out, and solving back for a size.

    convlab shape conv2d --input 28 28 --kernel 5 --padding 2
    convlab shape conv_transpose2d --input 3 --kernel 3 --stride 2 --padding 1
    convlab shape max_pool2d --input 5 --kernel 2 --padding 1 --ceil-mode
    convlab shape conv2d --input 28 --kernel 5 --want 14

Every number comes from ``convlab.shapes`` (through ``convlab.arith``); the formulas are written
out with the user's numbers so that each step can be checked by hand.
"""

from __future__ import annotations

import argparse
import textwrap

from convlab import shapes
from convlab.arith import sizes as arith
from convlab.cli.common import UsageError, non_negative_int, positive_int

EXAMPLES = """\
examples:
  convlab shape conv2d --input 28 28 --kernel 5 --padding 2
  convlab shape conv2d --input 32 --kernel 4 --padding same
  convlab shape conv_transpose2d --input 3 --kernel 3 --stride 2 --padding 1
  convlab shape max_pool2d --input 5 --kernel 2 --padding 1 --ceil-mode
  convlab shape conv2d --input 28 --kernel 5 --want 14          (which stride/padding?)
  convlab shape conv_transpose2d --input 7 --kernel 4 --stride 2 --want 14

Each size flag takes one value (used for every dimension) or one value per dimension.
With --want, the parameters you give are kept and the others are searched: stride and padding
for every op, output_padding too for a transposed convolution.
"""


def _padding(text: str) -> int | str:
    if text in ("same", "valid"):
        return text
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, 'same' or 'valid', got {text!r}"
        ) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "shape",
        help="output size of a conv / transposed conv / pooling layer, with the formula",
        description=(
            "Print the output size of a convolution, transposed convolution or pooling layer "
            "and the formula with your numbers substituted, per dimension. For a transposed "
            "convolution also the valid output sizes and the output_padding each needs; for "
            "pooling, what ceil_mode does. With --want, list the parameter choices that give "
            "a wanted size."
        ),
        usage="convlab shape OP --input N [N ...] --kernel N [N ...] [options]",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("op", choices=arith.OPS, metavar="OP", help=", ".join(arith.OPS))
    size = dict(nargs="+", type=positive_int, metavar="N")
    parser.add_argument("--input", required=True, help="spatial input size", **size)
    parser.add_argument("--kernel", required=True, help="kernel size", **size)
    parser.add_argument(
        "--stride", default=None, help="stride (default 1; the kernel size for pooling)", **size
    )
    parser.add_argument(
        "--padding",
        nargs="+",
        type=_padding,
        default=None,
        metavar="P",
        help="zero padding on each side (default 0); 'same' or 'valid' for convolutions",
    )
    parser.add_argument("--dilation", default=None, help="kernel dilation (default 1)", **size)
    parser.add_argument(
        "--output-padding",
        nargs="+",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="extra length at the end of a transposed convolution's output (default 0)",
    )
    parser.add_argument(
        "--ceil-mode", action="store_true", help="pooling: round the window count up"
    )
    parser.add_argument(
        "--want", help="solve back: which parameters give this output size?", default=None, **size
    )
    parser.add_argument(
        "--max-stride",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --want: largest stride tried (default max(4, kernel extent))",
    )
    parser.add_argument(
        "--max-padding",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="with --want: largest padding tried (default kernel extent - 1; "
        "pooling: half the kernel)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        lines = _solve(args) if args.want is not None else _describe(args)
    except arith.ArithError as error:
        raise UsageError(str(error)) from None
    print("\n".join(lines))
    return 0


def _layer(args: argparse.Namespace, check: bool = True) -> arith.Layer:
    padding = 0 if args.padding is None else args.padding
    if isinstance(padding, list):
        strings = [p for p in padding if isinstance(p, str)]
        if strings and len(padding) > 1:
            raise arith.ArithError(
                f"padding {strings[0]!r} stands alone: give it once, not with other values."
            )
        padding = padding[0] if strings else padding
    return arith.layer(
        args.op,
        args.input,
        args.kernel,
        stride=args.stride,
        padding=padding,
        dilation=args.dilation,
        output_padding=0 if args.output_padding is None else args.output_padding,
        ceil_mode=args.ceil_mode,
        check=check,
    )


def _note(text: str, indent: str = "  ") -> list[str]:
    """A line of prose, wrapped at 100 columns (formula lines are never wrapped)."""
    return textwrap.wrap(
        text, 100, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    )


def _x(values) -> str:
    return " x ".join(str(v) for v in values)


def _groups(keys: list, names: tuple[str, ...]) -> list[tuple[str, int]]:
    """Dimensions with equal parameters, as ``('height, width', first index)``."""
    order: dict = {}
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    return [(", ".join(names[i] for i in idx), idx[0]) for idx in order.values()]


def _describe(args: argparse.Namespace) -> list[str]:
    spec = _layer(args)
    names = arith.axis_names(spec.n)
    out = spec.output
    lines = [f"{spec.op}: input {_x(spec.input)} -> output {_x(out)}"]
    if spec.padding_name == "same":
        pads = ", ".join(f"{a} {lo} + {hi}" for a, (lo, hi) in zip(names, spec.padding))
        lines += _note(
            f"padding='same' pads (before + after) {pads}: dilation*(kernel - 1) in all, "
            f"an odd one out at the end"
        )
    lines.append(f"  {arith.general_formula(spec)}")
    dims = _groups([spec.dim(i) for i in range(spec.n)], names)
    width = max(len(label) for label, _ in dims)
    for label, i in dims:
        lines.append(f"  {label + ':':<{width + 1}} {arith.formula(spec, i)}")
    if spec.family == "transpose":
        lines += _transpose_lines(spec, dims, width)
    elif spec.family in ("max_pool", "avg_pool"):
        lines += _ceil_lines(spec, dims)
    return lines


def _transpose_lines(spec: arith.Layer, dims, width: int) -> list[str]:
    sizes = arith.transpose_sizes(spec)
    lines = ["  valid output sizes (pass output_size=, or the output_padding shown):"]
    for label, i in dims:
        listed = ", ".join(f"{o} (output_padding {op})" for o, op in sizes[i])
        lines.append(f"  {label + ':':<{width + 1}} {listed}")
    conv = spec.op.replace("_transpose", "")
    groups = [(label, i) for label, i in dims if len(sizes[i]) > 1]
    if groups:
        label, i = groups[0]
        values = [str(o) for o, _ in sizes[i]]
        among = " or ".join(values) if len(values) == 2 else f"{values[0]} to {values[-1]}"
        lines += _note(
            f"why several: {conv} with the same arguments turns an input of {among} "
            f"({label}) into {spec.input[i]}, so going back is ambiguous and output_padding "
            f"picks one (it adds computed elements at the end, not zeros)"
        )
    else:
        lines += _note("only one size: with stride 1 every output_size has output_padding 0")
    for label, i in dims:
        s, d = spec.stride[i], spec.dilation[i]
        if d > s:
            extra = [
                shapes.conv_transpose_output_size(
                    spec.input[i], spec.kernel[i], s, spec.padding[i][0], d, op
                )
                for op in range(s, d)
            ]
            values = f"{s}" if d - 1 == s else f"{s}..{d - 1}"
            lines += _note(
                f"{label}: output_padding {values} is also accepted (it is below the dilation "
                f"{d}) and gives {', '.join(map(str, extra))}, which output_size= rejects"
            )
    return lines


def _ceil_lines(spec: arith.Layer, dims) -> list[str]:
    lines = []
    if spec.ceil_mode:
        for label, i in dims:
            note = arith.ceil_mode_note(spec, i)
            if note is None:
                note = "ceil_mode changes nothing: the last window ends exactly at the padded end"
            lines += _note(f"{label}: {note}")
        return lines
    ceil = shapes.pool_output_shape(
        spec.input,
        spec.kernel,
        spec.stride,
        [lo for lo, _ in spec.padding],
        spec.dilation,
        ceil_mode=True,
    )
    if ceil != spec.output:
        lines += _note(
            f"with --ceil-mode the output would be {_x(ceil)} (a last window that hangs over "
            f"the end is kept)"
        )
    return lines


def _solve(args: argparse.Namespace) -> list[str]:
    if isinstance(args.padding, list) and any(isinstance(p, str) for p in args.padding):
        raise arith.ArithError(
            "--want searches integer paddings: give an integer --padding or leave it out."
        )
    if args.output_padding is not None:
        raise arith.ArithError(
            "--want finds the output_padding itself: leave out --output-padding."
        )
    spec = _layer(args, check=False)  # only the choices found must be valid
    fixed = [name for name in ("stride", "padding") if getattr(args, name) is not None]
    solutions = arith.solve(spec, args.want, fixed, args.max_stride, args.max_padding)
    wants = tuple(s.want for s in solutions)
    searched = (
        ["stride", "padding"] if not fixed else [n for n in ("stride", "padding") if n not in fixed]
    )
    if spec.family == "transpose":
        searched.append("output_padding")
    kept = f"kernel {_x(spec.kernel)}" + (
        "" if spec.family == "avg_pool" else f", dilation {_x(spec.dilation)}"
    )
    kept += "".join(f", {n} {_x(getattr(spec, n))}" for n in fixed if n == "stride")
    if "padding" in fixed:
        kept += f", padding {_x(lo for lo, _ in spec.padding)}"
    if spec.ceil_mode:
        kept += ", ceil_mode"
    what = f"values of {' and '.join(searched)}" if searched else "the stride and padding given"
    lines = _note(
        f"{spec.op}: {what} that turn {_x(spec.input)} into {_x(wants)} ({kept})", indent=""
    )
    names = arith.axis_names(spec.n)
    keys = [(spec.dim(i), wants[i]) for i in range(spec.n)]
    for label, i in _groups(keys, names):
        solution = solutions[i]
        lines.append(f"  {label} (searched {solution.searched}):")
        for choice in solution.choices:
            what = f"stride {choice.stride}, padding {choice.padding}"
            if spec.family == "transpose":
                what += f", output_padding {choice.output_padding}"
            lines.append(f"    {what}: {arith.formula(choice.layer, 0)}")
    return lines
