"""A worked convolution example as text: windows, products, sums, the matrix C and C^T.

The example is small and in integers so that every number can be checked by hand. The output
values come from ``convlab.nn.functional`` (the real op), the sizes from ``convlab.shapes`` and
the matrix from :func:`convlab.arith.conv_matrix`; the window sums written out are asserted equal
to the op's output, so the text cannot disagree with the computation. See Dumoulin & Visin,
"A guide to convolution arithmetic for deep learning" (arXiv 1603.07285), §4.1.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Sequence

import numpy as np

from convlab.arith import sizes
from convlab.arith.matrix import conv_matrix, transpose_output_padding
from convlab.arith.sizes import ArithError

__all__ = ["LIMITS", "worked_example", "example_values"]

# Sizes past which the text stops being readable in a terminal, per number of dimensions.
LIMITS = {
    "input": {1: 16, 2: 8},
    "kernel": {1: 7, 2: 5},
    "padded": {1: 24, 2: 12},
    "output": {1: 24, 2: 36},  # output positions worked through, one step each
    "value": 99,  # largest |value| of an input or kernel element
    "matrix": 36,  # largest number of rows or columns of C that is printed
}


def example_values(shape: Sequence[int], seed: int | None, high: int = 3) -> np.ndarray:
    """Default values: integers ``0..high`` drawn from ``seed``, or ``1, 2, 3, ...`` (row-major)
    when ``seed`` is None, which makes each weight easy to find again in C."""
    if seed is None:
        return np.arange(1, int(np.prod(shape)) + 1).reshape(tuple(shape))
    return np.random.default_rng(seed).integers(0, high + 1, size=tuple(shape))


def _fmt(value, mask: bool = False) -> str:
    return "." if mask else str(int(value))


def _grid(array: np.ndarray, mask: np.ndarray | None = None, width: int | None = None) -> list[str]:
    """Rows of right-aligned entries; masked entries (padding, zeros of C) print as '.'."""
    array = np.atleast_2d(array)
    mask = np.zeros(array.shape, bool) if mask is None else np.atleast_2d(mask)
    cells = [[_fmt(v, m) for v, m in zip(row, mrow)] for row, mrow in zip(array, mask)]
    width = width or max(len(c) for row in cells for c in row)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


def _side_by_side(blocks: list[list[str]], joints: list[str]) -> list[str]:
    """Blocks of lines next to each other; ``joints[i]`` sits between block i and i+1 on the
    middle line (blanks elsewhere)."""
    height = max(len(b) for b in blocks)
    widths = [max(len(line) for line in b) for b in blocks]
    middle = (height - 1) // 2
    lines = []
    for r in range(height):
        parts = []
        for i, block in enumerate(blocks):
            parts.append((block[r] if r < len(block) else "").ljust(widths[i]))
            if i < len(joints):
                joint = joints[i] if r == middle else " " * len(joints[i])
                parts.append(joint)
        lines.append("".join(parts).rstrip())
    return lines


def _x(values) -> str:
    values = tuple(values)
    return f"length {values[0]}" if len(values) == 1 else " x ".join(str(v) for v in values)


def _tuple_text(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))


def _indent(lines: list[str], by: str = "  ") -> list[str]:
    return [by + line for line in lines]


def _check_example(x: np.ndarray, w: np.ndarray) -> int:
    n = x.ndim
    if n not in (1, 2) or w.ndim != n:
        raise ArithError(
            f"explain shows 1-d and 2-d examples (input and kernel with the same number of "
            f"dimensions), but got an input of {x.ndim} and a kernel of {w.ndim}; for 3-d sizes "
            f"use convlab shape."
        )
    for name, array in (("input", x), ("kernel", w)):
        if array.dtype.kind not in "iu":
            raise ArithError(f"the {name} values must be integers, but got dtype {array.dtype}.")
        limit = LIMITS[name][n]
        if any(s > limit for s in array.shape):
            raise ArithError(
                f"a {_x(array.shape)} {name} is too large to show readably; explain takes "
                f"{name}s up to {limit} per side in {n}-d."
            )
        if array.size and np.abs(array).max() > LIMITS["value"]:
            raise ArithError(
                f"{name} values must lie in -{LIMITS['value']}..{LIMITS['value']} to stay "
                f"readable, but got {int(np.abs(array).max())}."
            )
    return n


def worked_example(
    x: np.ndarray,
    w: np.ndarray,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    transpose: bool = False,
) -> str:
    """The worked example as text.

    Args:
        x: the input, a 1-d or 2-d array of small integers (one channel, no batch).
        w: the kernel, integers, with as many dimensions as ``x``.
        stride, padding, dilation: as in ``conv1d``/``conv2d`` (integers, one or one per dim).
        transpose: also show the transposed convolution as ``C^T`` applied to the output, equal
            to ``conv_transpose`` with the matching ``output_padding``, and which other input
            sizes the same output could go back to.

    Raises:
        ArithError: the sizes have no valid output, or are past :data:`LIMITS` (named).

    >>> text = worked_example(np.array([1, 2, 3]), np.array([1, 1]))
    >>> print(next(line for line in text.splitlines() if "sum =" in line))
      y[0]: positions 0..1:  1 2  *  1 1  =  1 2   sum = 3
    """
    import convlab.nn.functional as F  # the real op, imported late: arith sits above nn

    x, w = np.asarray(x), np.asarray(w)
    n = _check_example(x, w)
    conv = f"conv{n}d"
    spec = sizes.layer(conv, x.shape, w.shape, stride, padding, dilation)
    stride, dilation = spec.stride, spec.dilation
    pads = tuple(lo for lo, _ in spec.padding)
    padded_shape = tuple(s + 2 * p for s, p in zip(x.shape, pads))
    if any(s > LIMITS["padded"][n] for s in padded_shape):
        raise ArithError(
            f"the padded input would be {_x(padded_shape)}, too large to show readably; explain "
            f"takes padded inputs up to {LIMITS['padded'][n]} per side in {n}-d."
        )
    positions = int(np.prod(spec.output))
    if positions > LIMITS["output"][n]:
        raise ArithError(
            f"the output would be {_x(spec.output)}, {positions} positions, too many to work "
            f"through readably; explain takes up to {LIMITS['output'][n]} in {n}-d (use a smaller "
            f"input or padding, or a larger stride)."
        )
    args = dict(stride=stride, padding=pads, dilation=dilation)
    call = _call_text(conv, "x", stride, pads, dilation)

    def run_conv(values: np.ndarray) -> np.ndarray:
        out = getattr(F, conv)(values[None, None].astype(np.float64), w[None, None] * 1.0, **args)
        return _as_int(out.numpy()[0, 0])

    y = run_conv(x)
    assert y.shape == spec.output

    lines = [
        f"Worked example: {conv}, {_x(x.shape)} input, {_x(w.shape)} kernel, stride "
        f"{_tuple_text(stride)}, padding {_tuple_text(pads)}, dilation {_tuple_text(dilation)}",
        "",
    ]
    lines += _side_by_side(
        [
            [f"Input x ({_x(x.shape)}):", *_indent(_grid(x))],
            [f"Kernel w ({_x(w.shape)}):", *_indent(_grid(w))],
        ],
        ["    "],
    )
    xp = np.pad(x, [(p, p) for p in pads])
    is_pad = np.pad(np.zeros(x.shape, bool), [(p, p) for p in pads], constant_values=True)
    if any(pads):
        lines += [
            "",
            f"Padded input ({_x(xp.shape)}; . = zero padding):",
            *_indent(_grid(xp, is_pad)),
        ]
    lines += ["", "Output size per dimension:", f"  {sizes.general_formula(spec)}"]
    lines += _formula_lines(spec)
    lines += [
        "",
        "Each output element is the sum of the window times the kernel, element by element:",
    ]
    steps = []
    for index in itertools.product(*(range(o) for o in y.shape)):
        taps = [i * s + np.arange(k) * d for i, s, k, d in zip(index, stride, w.shape, dilation)]
        window = xp[np.ix_(*taps)]
        products = window * w
        total = int(products.sum())
        assert total == y[index], (index, total, y[index])  # the text agrees with the op
        steps.append((index, taps, window, is_pad[np.ix_(*taps)], products, total))
    # One cell width for every step, so that the grids line up from one step to the next.
    width = max(len(str(int(v))) for step in steps for v in (*step[2].ravel(), *step[4].ravel()))
    width = max(width, *(len(str(int(v))) for v in w.ravel()))
    for index, taps, window, on_pad, products, total in steps:
        lines += _step_lines(index, taps, window, on_pad, w, products, total, width)
    lines += ["", f"Output y = {call} ({_x(y.shape)}):", *_indent(_grid(y))]
    lines += [""] + _matrix_lines(x, w, y, args)
    if transpose:
        lines += [""] + _transpose_lines(spec, x, w, y, args)
    else:
        lines += ["", "(add --transpose to see the transposed convolution as C^T)"]
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str, width: int = 100) -> str:
    """Wrap long prose lines at ``width`` columns; grids and matrix rows are never wrapped."""
    if len(line) <= width or re.fullmatch(r"\s*(y\[[\d,]+\]\s+)?[\s\d.|-]*", line):
        return line  # grids and rows of C stay whole
    indent = " " * (len(line) - len(line.lstrip()))
    return textwrap.fill(line, width, initial_indent="", subsequent_indent=indent + "  ")


def _formula_lines(spec: sizes.Layer) -> list[str]:
    names = sizes.axis_names(spec.n)
    width = max(map(len, names)) + 1
    return [f"  {name + ':':<{width}} {sizes.formula(spec, i)}" for i, name in enumerate(names)]


def _as_int(values: np.ndarray) -> np.ndarray:
    rounded = np.rint(values)
    assert np.array_equal(rounded, values), "integer inputs must give integer outputs"
    return rounded.astype(np.int64)


def _call_text(op: str, name: str, stride, pads, dilation, output_padding=None) -> str:
    text = f"{op}({name}, w"
    for key, value, default in (
        ("stride", stride, 1),
        ("padding", pads, 0),
        ("dilation", dilation, 1),
    ):
        if set(value) != {default}:
            text += f", {key}={_tuple_text(value)}"
    if output_padding is not None:
        text += f", output_padding={_tuple_text(output_padding)}"
    return text + ")"


def _positions(taps: np.ndarray) -> str:
    step = int(taps[1] - taps[0]) if len(taps) > 1 else 1
    if step == 1:
        return f"{taps[0]}..{taps[-1]}"
    return ",".join(str(t) for t in taps)


def _step_lines(index, taps, window, on_pad, w, products, total, width: int) -> list[str]:
    where = "[" + ",".join(map(str, index)) + "]"
    grids = [_grid(window, on_pad, width), _grid(w, None, width), _grid(products, on_pad, width)]
    if len(index) == 1:
        window_text, kernel_text, product_text = (g[0] for g in grids)
        return [
            f"  y{where}: positions {_positions(taps[0])}:  {window_text}  *  {kernel_text}  =  "
            f"{product_text}   sum = {total}"
        ]
    titles = ("window", "kernel", "products")
    widths = [max(len(title), len(g[0])) for title, g in zip(titles, grids)]
    caption = "     ".join(t.ljust(wd) for t, wd in zip(titles, widths)).rstrip()
    middle = (len(grids[0]) - 1) // 2
    rows = []
    for r in range(len(grids[0])):
        star, equals = ("  *  ", "  =  ") if r == middle else ("     ", "     ")
        rows.append(
            f"{grids[0][r].ljust(widths[0])}{star}{grids[1][r].ljust(widths[1])}{equals}"
            f"{grids[2][r]}"
        )
    header = (
        f"  y{where}: rows {_positions(taps[0])}, columns {_positions(taps[1])} of the padded input"
    )
    return [header, "    " + caption, *_indent(rows, "    "), f"    sum = {total}"]


def _matrix_lines(x: np.ndarray, w: np.ndarray, y: np.ndarray, args: dict) -> list[str]:
    c = conv_matrix((1, *x.shape), w[None, None], **args)
    equal = np.array_equal(c @ x.ravel(), y.ravel())
    assert equal
    lines = [
        "The convolution as a matrix: y.ravel() = C @ x.ravel()",
        f"C is {c.shape[0]} x {c.shape[1]}: one row per output element, one column per input "
        f"element (both in row-major order).",
    ]
    limit = LIMITS["matrix"]
    if max(c.shape) > limit:
        lines.append(
            f"C is too large to print here (limit {limit} rows and columns); "
            f"convlab.arith.conv_matrix builds it in Python."
        )
    else:
        legend = "(. = 0, | between input rows)" if x.ndim == 2 else "(. = 0)"
        lines.append(f"Each row holds the kernel's weights where its window falls {legend}:")
        lines += _indent(_matrix_rows(c, y.shape, x.shape))
    lines.append(
        f"C @ x.ravel() = [{' '.join(map(str, c @ x.ravel()))}] equals y.ravel(): {_yes(equal)}"
    )
    return lines


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _matrix_rows(c: np.ndarray, out_shape, in_shape) -> list[str]:
    width = max(len(str(int(v))) for v in c.ravel())
    labels = ["y[" + ",".join(map(str, i)) + "]" for i in itertools.product(*map(range, out_shape))]
    label_width = max(map(len, labels))
    row_len = in_shape[-1]
    rows = []
    for label, row in zip(labels, c):
        cells = [_fmt(v, v == 0).rjust(width) for v in row]
        groups = [" ".join(cells[i : i + row_len]) for i in range(0, len(cells), row_len)]
        rows.append(f"{label.ljust(label_width)}  " + " | ".join(groups))
    return rows


def _transpose_lines(spec, x: np.ndarray, w: np.ndarray, y: np.ndarray, args: dict) -> list[str]:
    import convlab.nn.functional as F

    n = x.ndim
    transpose = f"conv_transpose{n}d"
    stride, pads, dilation = args["stride"], args["padding"], args["dilation"]

    def both(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], tuple]:
        """C^T y for an input of ``shape``, and the op with the output_padding that size needs."""
        c = conv_matrix((1, *shape), w[None, None], **args)
        op = transpose_output_padding(shape, w.shape, stride, pads, dilation)
        out = getattr(F, transpose)(
            y[None, None].astype(np.float64), w[None, None] * 1.0, output_padding=op, **args
        )
        return (c.T @ y.ravel()).reshape(shape), _as_int(out.numpy()[0, 0]), op, c.shape

    back, op_out, op, c_shape = both(x.shape)
    equal = np.array_equal(back, op_out)
    assert equal
    call = _call_text(transpose, "y", stride, pads, dilation, op)
    back_spec = sizes.layer(transpose, y.shape, w.shape, stride, pads, dilation, op)
    lines = [
        "The transposed convolution is C^T: it takes y back to x's size (not to x's values):",
        f"C^T is {c_shape[1]} x {c_shape[0]}; C^T @ y.ravel() ({_x(x.shape)}):",
    ]
    lines += _indent(_grid(back))
    lines.append(f"{call} gives the same: {_yes(equal)}")
    lines += ["Output size per dimension:", f"  {sizes.general_formula(back_spec)}"]
    lines += _formula_lines(back_spec)

    choices = sizes.transpose_sizes(
        sizes.layer(transpose, y.shape, w.shape, stride, pads, dilation)
    )
    if all(len(c) == 1 for c in choices):
        lines.append(
            "Only one input size gives this output here (stride 1), so output_padding stays 0."
        )
        return lines
    among = "; ".join(
        f"{name} {' or '.join(str(o) for o, _ in c)}"
        for name, c in zip(sizes.axis_names(n), choices)
    )
    lines.append(
        f"Why output_padding: {spec.op} with these arguments turns inputs of several sizes into "
        f"{_x(y.shape)} ({among}), so going back is ambiguous; each size has its own C, and "
        f"output_padding picks which C^T the transposed convolution is:"
    )
    for combo in itertools.product(*choices):
        shape = tuple(o for o, _ in combo)
        back2, out2, op2, c2 = both(shape)
        same = np.array_equal(back2, out2)
        assert same
        mark = " (this example)" if shape == x.shape else ""
        lines.append(
            f"  {_x(shape)}{mark}: C is {c2[0]} x {c2[1]}; C^T y = {transpose}(y, ..., "
            f"output_padding={_tuple_text(op2)}): {_yes(same)}"
        )
    largest = tuple(c[-1][0] for c in choices)
    pick = largest if largest != x.shape else tuple(c[0][0] for c in choices)
    _, values, op2, _ = both(pick)
    if pick == largest:
        # The elements past x's size, and whether any window tap lands on them at all.
        extra = np.ones(pick, bool)
        extra[tuple(slice(0, s) for s in x.shape)] = False
        taps = conv_matrix((1, *pick), np.ones((1, 1, *w.shape), np.int64), **args)
        reached = taps.sum(axis=0).reshape(pick) > 0
        note = "output_padding adds no zeros: the extra elements at the end are computed too"
        if not reached[extra].any():
            note = (
                "output_padding adds no zeros, but no window reaches the extra elements at the "
                "end (stride and kernel skip them), so they come out 0"
            )
        elif not values[extra].any():
            note += " (here they come out 0)"
    else:
        note = "the same values as above, without the extra elements at the end"
    lines.append(
        f"{transpose}(y, w, ..., output_padding={_tuple_text(op2)}) gives {_x(pick)}; {note}:"
    )
    lines += _indent(_grid(values))
    return lines
