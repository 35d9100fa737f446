"""Animations of a kernel sliding over its input, drawn like Dumoulin & Visin's guide.

The pictures follow "A guide to convolution arithmetic for deep learning" (arXiv 1603.07285,
github.com/vdumoulin/conv_arithmetic): the input is a grid of blue cells, padding (and the zeros
a transposed convolution inserts) are white cells with dashed borders, the cells under the kernel
are shaded dark (dilation leaves visible gaps), and the output grid (cyan) sits above with the
cell being computed shaded. A transposed convolution is drawn as the guide draws it: a stride-1
convolution over the input stretched with ``stride - 1`` zeros between cells and padded by
``dilation * (kernel - 1) - padding`` per side (plus ``output_padding`` at the high side), its
kernel flipped. Pooling windows that ``ceil_mode`` lets hang off the edge are drawn over grey
hatched cells outside the padded input.

Three layers, so that each can be checked on its own:

- :func:`plan_animation` validates the parameters and works out the geometry, every size from
  :mod:`convlab.shapes` (and PyTorch's other rules by running the op itself once);
- :func:`sliding_frames` lists, per frame, the output cell and the input cells the kernel
  covers there (in the coordinates of the drawn grid): pure integers, no drawing;
- :func:`render_frames` draws them with Pillow (``pip install 'convlab[images]'``), pixel-exact,
  and :func:`save_animation` writes the GIF (and PNG frames).

>>> plan = plan_animation("conv2d", (5, 5), (3, 3), stride=2, padding=1)
>>> plan.output_size, plan.grid_size, len(sliding_frames(plan))
((3, 3), (7, 7), 9)
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlab import shapes

__all__ = [
    "MAX_FRAMES",
    "MAX_IMAGE_SIDE",
    "MAX_INPUT_SIDE",
    "OPS",
    "AnimationError",
    "Frame",
    "Layout",
    "SlidePlan",
    "cell_kind",
    "check_limits",
    "choose_cell",
    "example_values",
    "grid_values",
    "input_index",
    "layout",
    "plan_animation",
    "render_frames",
    "save_animation",
    "sliding_frames",
]

# op name -> (family, spatial dimensions); the names are PyTorch's functional ones.
OPS: dict[str, tuple[str, int]] = {
    "conv1d": ("conv", 1),
    "conv2d": ("conv", 2),
    "conv_transpose1d": ("conv_transpose", 1),
    "conv_transpose2d": ("conv_transpose", 2),
    "max_pool1d": ("max_pool", 1),
    "max_pool2d": ("max_pool", 2),
    "avg_pool1d": ("avg_pool", 1),
    "avg_pool2d": ("avg_pool", 2),
}

# Beyond these a GIF is unreadable (cells too small to see) or needlessly huge.
MAX_INPUT_SIDE = 16
MAX_FRAMES = 400
MAX_IMAGE_SIDE = 1500

# Colours of the guide's TikZ templates (solarized base02/base03 and its input/output colours).
INPUT_COLOR = (38, 139, 210)
OUTPUT_COLOR = (42, 161, 152)
SHADE_COLOR = (7, 54, 66)  # base02, drawn at 40 % opacity over the covered cells
LINE_COLOR = (0, 43, 54)  # base03
PAD_COLOR = (255, 255, 255)
OVERHANG_COLOR = (232, 232, 232)
OVERHANG_LINE = (160, 160, 160)
SHADE_OPACITY = 0.4
TEXT_LIGHT = (255, 255, 255)
TEXT_GREY = (120, 120, 120)
TEXT_KERNEL = (255, 236, 130)


class AnimationError(ValueError):
    """Parameters that cannot be animated: no valid output, or a picture too large to read."""


@dataclass(frozen=True)
class SlidePlan:
    """Everything the frames and the drawing need, in the coordinates of the drawn grid.

    The drawn grid ("canvas") is the padded input (convolution, pooling), or the input stretched
    with ``stride - 1`` zeros between cells and then padded (transposed convolution), plus, for
    ``ceil_mode`` pooling, the cells a last window hangs over beyond the padded input. Cell
    ``c`` of the canvas holds input element ``(c - input_origin) / input_spacing`` when that is
    a whole number inside the input, and a zero (padding) otherwise.
    """

    op: str
    kind: str  # 'conv', 'conv_transpose', 'max_pool' or 'avg_pool'
    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]  # (low, high) per dim, as the op applies it
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    ceil_mode: bool
    output_size: tuple[int, ...]
    # Zeros drawn before/after the (stretched) input; for a transposed convolution
    # dilation * (kernel - 1) - padding, plus output_padding at the high side (negative: cropped).
    grid_padding: tuple[tuple[int, int], ...]
    input_origin: tuple[int, ...]  # canvas cell of input element 0
    input_spacing: tuple[int, ...]  # 1, or the stride for a transposed convolution
    window_origin: tuple[int, ...]  # canvas cell where the first window starts
    window_step: tuple[int, ...]  # how far the window moves: the stride, or 1 when transposed
    grid_size: tuple[int, ...]  # the padded (stretched) input
    canvas_size: tuple[int, ...]  # grid plus any ceil-mode overhang

    @property
    def ndim(self) -> int:
        return len(self.input_size)

    @property
    def frame_count(self) -> int:
        return int(np.prod(self.output_size))

    def describe(self) -> str:
        """One paragraph for the terminal: parameters, output and what is drawn."""

        def size(values) -> str:
            return "x".join(str(v) for v in values)

        pads = [lo if lo == hi else f"{lo}/{hi}" for lo, hi in self.padding]
        parts = [
            f"{self.op}: input {size(self.input_size)}, kernel {size(self.kernel_size)}",
            f"stride {size(self.stride)}",
            f"padding {size(pads)}",
        ]
        if self.kind != "avg_pool":
            parts.append(f"dilation {size(self.dilation)}")
        if self.kind == "conv_transpose":
            parts.append(f"output_padding {size(self.output_padding)}")
        if self.kind in ("max_pool", "avg_pool"):
            parts.append(f"ceil_mode {self.ceil_mode}")
        text = ", ".join(parts) + f" -> output {size(self.output_size)}"
        if self.kind == "conv_transpose":
            stretched = tuple((n - 1) * s + 1 for n, s in zip(self.input_size, self.stride))
            lows = size(lo for lo, _ in self.grid_padding)
            highs = size(hi for _, hi in self.grid_padding)
            text += (
                f"\ndrawn as a stride-1 convolution with the flipped kernel over the input "
                f"stretched to {size(stretched)} (stride - 1 zeros between cells) and padded by "
                f"dilation*(kernel-1)-padding = {lows} before and {highs} after "
                f"(+output_padding): {size(self.grid_size)}"
            )
            if any(lo < 0 for lo, _ in self.grid_padding):
                text += "; negative: the kernel skips that many stretched cells at the edges"
        elif any(lo or hi for lo, hi in self.padding):
            text += f"\ndrawn over the padded input: {size(self.grid_size)}"
        if self.canvas_size != self.grid_size:
            text += "; grey cells: where ceil_mode's last window hangs past the padding"
        return text


@dataclass(frozen=True)
class Frame:
    """One position of the kernel: the output cell and the canvas cells it covers.

    ``cells[i]`` is multiplied by ``weight[taps[i]]`` (a convolution), or is one of the values
    pooled (then ``taps[i]`` is the offset inside the window). For a transposed convolution
    ``taps`` runs backwards: the drawn kernel is the flipped weight.
    """

    index: int
    output: tuple[int, ...]
    cells: tuple[tuple[int, ...], ...]
    taps: tuple[tuple[int, ...], ...]


def _axis_names(ndim: int) -> tuple[str, ...]:
    return ("length",) if ndim == 1 else ("height", "width")


def _fail(op: str, message: str) -> AnimationError:
    return AnimationError(message if message.startswith(f"{op}()") else f"{op}: {message}")


def _tuple(value, n: int, name: str, op: str, minimum: int) -> tuple[int, ...]:
    try:
        values = shapes.ntuple(value, n, name)
    except (TypeError, ValueError) as error:
        raise _fail(op, str(error)) from None
    if any(v < minimum for v in values):
        rule = "positive" if minimum == 1 else "non-negative"
        raise _fail(op, f"{name} must be {rule}, but got {list(values)}")
    return values


def plan_animation(
    op: str,
    input_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    output_padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    output_size: int | Sequence[int] | None = None,
) -> SlidePlan:
    """Check the parameters of an animation and work out its geometry.

    Args:
        op: one of :data:`OPS` (``conv2d``, ``conv_transpose1d``, ``max_pool2d``, ...).
        input_size: spatial size of the op's input (at most :data:`MAX_INPUT_SIDE` per side).
        kernel_size, stride, dilation: as in PyTorch; ``stride`` defaults to 1 for
            convolutions and to ``kernel_size`` for pooling.
        padding: as in PyTorch; ``'same'`` and ``'valid'`` for convolutions.
        output_padding, output_size: transposed convolution only (``output_size`` picks the
            ``output_padding``, as ``ConvTranspose2d.forward(x, output_size)`` does).
        ceil_mode: pooling only.

    Shape:
        convolution ``out = floor((n + pad_lo + pad_hi - d*(k-1) - 1) / s) + 1``; transposed
        ``out = (n-1)*s - 2p + d*(k-1) + output_padding + 1``; pooling as
        :func:`convlab.shapes.pool_output_size`. Each comes from :mod:`convlab.shapes`.

    Raises AnimationError (a ValueError) with a sentence saying what is wrong and what works.

    >>> plan_animation("conv_transpose2d", 3, 3, stride=2, padding=1, output_padding=1).grid_size
    (8, 8)
    """
    if op not in OPS:
        raise AnimationError(f"unknown op {op!r}; choose one of {', '.join(OPS)}")
    kind, n = OPS[op]
    size = _tuple(input_size, n, "input_size", op, 1)
    kernel = _tuple(kernel_size, n, "kernel_size", op, 1)
    if stride is None:
        stride = kernel if kind in ("max_pool", "avg_pool") else 1
    strides = _tuple(stride, n, "stride", op, 1)
    dilations = _tuple(dilation, n, "dilation", op, 1)
    if kind == "avg_pool" and dilations != (1,) * n:
        raise _fail(op, "average pooling has no dilation (PyTorch's avg_pool takes none)")
    if kind not in ("max_pool", "avg_pool") and ceil_mode:
        raise _fail(op, "ceil_mode applies to pooling only")
    if kind != "conv_transpose" and (
        output_size is not None or any(_tuple(output_padding or 0, n, "output_padding", op, 0))
    ):
        raise _fail(op, "output_padding and output_size apply to transposed convolutions only")
    too_big = [(a, v) for a, v in zip(_axis_names(n), size) if v > MAX_INPUT_SIDE]
    if too_big:
        axis, value = too_big[0]
        raise _fail(
            op,
            f"an input {axis} of {value} is too large to animate readably: the limit is "
            f"{MAX_INPUT_SIDE} cells per side",
        )

    if isinstance(padding, str):
        if kind != "conv" or padding not in ("same", "valid"):
            raise _fail(
                op,
                f"padding must be an int or a tuple of ints"
                f"{', or one of same, valid' if kind == 'conv' else ''}, but got {padding!r}",
            )
        if padding == "same" and strides != (1,) * n:
            raise _fail(op, "padding='same' is not supported for strided convolutions")
        pads = (
            tuple(shapes.same_padding(k, d) for k, d in zip(kernel, dilations))
            if padding == "same"
            else ((0, 0),) * n
        )
    else:
        pads = tuple((p, p) for p in _tuple(padding, n, "padding", op, 0))

    out_pad = (0,) * n
    if kind == "conv_transpose":
        out_pad = _tuple(
            0 if output_padding is None else output_padding, n, "output_padding", op, 0
        )
        if output_size is not None:
            wanted = _tuple(output_size, n, "output_size", op, 1)
            try:
                out_pad = tuple(
                    shapes.output_padding_for_size(w, i, k, s, p, d)
                    for w, i, k, s, (p, _), d in zip(wanted, size, kernel, strides, pads, dilations)
                )
            except ValueError as error:
                raise _fail(op, str(error)) from None

    # -- sizes, each from convlab.shapes ------------------------------------------------------
    if kind == "conv":
        out = shapes.conv_output_shape(size, kernel, strides, pads, dilations)
    elif kind == "conv_transpose":
        out = shapes.conv_transpose_output_shape(
            size, kernel, strides, [lo for lo, _ in pads], dilations, out_pad
        )
    else:
        out = shapes.pool_output_shape(
            size, kernel, strides, [lo for lo, _ in pads], dilations, ceil_mode
        )
    for axis, o, i, k, s, (lo, hi), d in zip(
        _axis_names(n), out, size, kernel, strides, pads, dilations
    ):
        if o <= 0:
            span = shapes.effective_kernel(k, d)
            if kind == "conv_transpose":
                widest = shapes.conv_transpose_output_size(i, k, s, 0, d, 0)
                raise _fail(
                    op,
                    f"padding {lo} crops everything along the {axis}: the output would have "
                    f"{o} cells; a padding of at most {(widest - 1) // 2} leaves one",
                )
            raise _fail(
                op,
                f"the kernel spans {span} cells along the {axis} (dilation*(kernel-1)+1), "
                f"but the padded input has only {i + lo + hi}; use a smaller kernel or "
                f"dilation, or padding of at least {-(-(span - i) // 2)}",
            )
    _check_with_the_op(op, kind, size, kernel, strides, pads, dilations, out_pad, ceil_mode, out)

    # -- the drawn grid -----------------------------------------------------------------------
    if kind == "conv_transpose":
        spacing = strides
        grid_pads = tuple(
            (shapes.effective_kernel(k, d) - 1 - lo, shapes.effective_kernel(k, d) - 1 - lo + a)
            for k, d, (lo, _), a in zip(kernel, dilations, pads, out_pad)
        )
        stretched = tuple((i - 1) * s + 1 for i, s in zip(size, strides))
        # Relationship 14 of the guide: a stride-1 convolution over the stretched, padded input
        # has exactly the transposed convolution's output size.
        as_convolution = shapes.conv_output_shape(stretched, kernel, (1,) * n, grid_pads, dilations)
        assert out == as_convolution, (out, as_convolution)
        origin = tuple(max(lo, 0) for lo, _ in grid_pads)
        window_origin = tuple(max(-lo, 0) for lo, _ in grid_pads)
        grid = tuple(o + m + max(hi, 0) for o, m, (_, hi) in zip(origin, stretched, grid_pads))
        step = (1,) * n
    else:
        spacing = (1,) * n
        grid_pads = pads
        origin = tuple(lo for lo, _ in pads)
        window_origin = (0,) * n
        grid = tuple(i + lo + hi for i, (lo, hi) in zip(size, pads))
        step = strides
    last_end = tuple(
        w + (o - 1) * s + shapes.effective_kernel(k, d)
        for w, o, s, k, d in zip(window_origin, out, step, kernel, dilations)
    )
    canvas = tuple(max(g, e) for g, e in zip(grid, last_end))
    return SlidePlan(
        op=op,
        kind=kind,
        input_size=size,
        kernel_size=kernel,
        stride=strides,
        padding=pads,
        dilation=dilations,
        output_padding=out_pad,
        ceil_mode=bool(ceil_mode),
        output_size=tuple(out),
        grid_padding=grid_pads,
        input_origin=origin,
        input_spacing=spacing,
        window_origin=window_origin,
        window_step=step,
        grid_size=grid,
        canvas_size=canvas,
    )


def _functional(kind: str, n: int):
    import convlab.nn.functional as F

    names = {
        "conv": f"conv{n}d",
        "conv_transpose": f"conv_transpose{n}d",
        "max_pool": f"max_pool{n}d",
        "avg_pool": f"avg_pool{n}d",
    }
    return getattr(F, names[kind])


def _run_op(kind, n, x, weight, kernel, strides, pads, dilations, out_pad, ceil_mode):
    """Run convlab's own op on ``x`` (spatial shape only) and return the output's spatial part."""
    fn = _functional(kind, n)
    xb = np.asarray(x, dtype=np.float64).reshape((1, 1, *np.shape(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a copy
        if kind == "conv":
            if all(lo == hi for lo, hi in pads):
                padding = tuple(lo for lo, _ in pads)
            else:
                padding = "same"  # only 'same' makes asymmetric padding here
            wb = np.asarray(weight, np.float64).reshape((1, 1, *kernel))
            y = fn(xb, wb, None, strides, padding, dilations)
        elif kind == "conv_transpose":
            wb = np.asarray(weight, np.float64).reshape((1, 1, *kernel))
            y = fn(xb, wb, None, strides, tuple(lo for lo, _ in pads), out_pad, 1, dilations)
        elif kind == "max_pool":
            y = fn(xb, kernel, strides, tuple(lo for lo, _ in pads), dilations, ceil_mode)
        else:
            y = fn(xb, kernel, strides, tuple(lo for lo, _ in pads), ceil_mode)
    return y.numpy()[0, 0]


def _check_with_the_op(op, kind, size, kernel, strides, pads, dilations, out_pad, ceil_mode, out):
    """PyTorch's remaining rules (pooling padding, output_padding) by running the op once."""
    weight = np.zeros(kernel) if kind in ("conv", "conv_transpose") else None
    try:
        y = _run_op(
            kind,
            len(size),
            np.zeros(size),
            weight,
            kernel,
            strides,
            pads,
            dilations,
            out_pad,
            ceil_mode,
        )
    except (RuntimeError, ValueError, TypeError) as error:
        raise _fail(op, str(error)) from None
    # The kernels and convlab.shapes are one truth; a disagreement is a bug, not a user error.
    assert y.shape == tuple(out), (y.shape, out)


# ---------------------------------------------------------------------------------------------
# Frames: pure integer geometry
# ---------------------------------------------------------------------------------------------


def sliding_frames(plan: SlidePlan) -> list[Frame]:
    """Per output position (row-major, like the guide), the canvas cells the kernel covers.

    >>> f = sliding_frames(plan_animation("conv1d", 5, 3, dilation=2))
    >>> [frame.cells for frame in f]
    [((0,), (2,), (4,))]
    """
    offsets = list(itertools.product(*(range(k) for k in plan.kernel_size)))
    flip = plan.kind == "conv_transpose"
    taps = tuple(
        tuple(k - 1 - t for k, t in zip(plan.kernel_size, off)) if flip else off for off in offsets
    )
    frames = []
    for index, position in enumerate(itertools.product(*(range(o) for o in plan.output_size))):
        start = [w + p * s for w, p, s in zip(plan.window_origin, position, plan.window_step)]
        cells = tuple(
            tuple(b + d * t for b, d, t in zip(start, plan.dilation, off)) for off in offsets
        )
        frames.append(Frame(index, tuple(position), cells, taps))
    return frames


def input_index(plan: SlidePlan, cell: Sequence[int]) -> tuple[int, ...] | None:
    """The input element drawn at a canvas cell, or None for padding and inserted zeros."""
    index = []
    for c, origin, spacing, n in zip(cell, plan.input_origin, plan.input_spacing, plan.input_size):
        offset = c - origin
        if offset < 0 or offset % spacing or offset // spacing >= n:
            return None
        index.append(offset // spacing)
    return tuple(index)


def cell_kind(plan: SlidePlan, cell: Sequence[int]) -> str:
    """'input', 'padding' (padding or a zero a transposed convolution inserts) or 'overhang'."""
    if any(not 0 <= c < g for c, g in zip(cell, plan.grid_size)):
        return "overhang"
    return "padding" if input_index(plan, cell) is None else "input"


def grid_values(plan: SlidePlan, x: np.ndarray) -> np.ndarray:
    """The canvas as numbers: ``x`` at its cells, the padding value elsewhere, NaN off the edge.

    The padding value is 0, or -inf for max pooling (PyTorch pads max pooling with -inf).
    """
    fill = -np.inf if plan.kind == "max_pool" else 0.0
    canvas = np.full(plan.canvas_size, np.nan)
    canvas[tuple(slice(0, g) for g in plan.grid_size)] = fill
    # The whole (stretched) input is drawn: input_origin >= 0 even when padding crops it.
    cells = tuple(
        slice(o, o + s * (n - 1) + 1, s)
        for o, s, n in zip(plan.input_origin, plan.input_spacing, plan.input_size)
    )
    canvas[cells] = np.asarray(x, dtype=np.float64)
    return canvas


def example_values(plan: SlidePlan, seed: int = 0):
    """Small integers to write in the cells, and the output convlab's own op computes from them.

    Returns ``(x, weight, y)``: ``x`` with the input's size (0..3 for convolutions, as in the
    guide's numerical figures; 0..9 for pooling), the weight (0..2; None for pooling) and the
    op's output, all float64.
    """
    rng = np.random.default_rng(seed)
    pooling = plan.kind in ("max_pool", "avg_pool")
    x = rng.integers(0, 10 if pooling else 4, size=plan.input_size).astype(np.float64)
    weight = None if pooling else rng.integers(0, 3, size=plan.kernel_size).astype(np.float64)
    y = _run_op(
        plan.kind,
        plan.ndim,
        x,
        weight,
        plan.kernel_size,
        plan.stride,
        plan.padding,
        plan.dilation,
        plan.output_padding,
        plan.ceil_mode,
    )
    return x, weight, y


# ---------------------------------------------------------------------------------------------
# Drawing (Pillow)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Pixel geometry of a frame: output grid on top, the (padded) input below, both centred.

    ``width = 2 * margin + max(input columns, output columns) * cell`` and
    ``height = 2 * margin + (output rows + input rows) * cell + gap``, with
    ``margin = cell // 2`` and ``gap = cell``; a 1-d op is drawn as one row.
    """

    cell: int
    margin: int
    gap: int
    width: int
    height: int
    input_xy: tuple[int, int]
    output_xy: tuple[int, int]


def _rows_cols(size: tuple[int, ...]) -> tuple[int, int]:
    return (1, size[0]) if len(size) == 1 else (size[0], size[1])


def layout(plan: SlidePlan, cell: int) -> Layout:
    """Where the grids go for cells of ``cell`` pixels."""
    in_rows, in_cols = _rows_cols(plan.canvas_size)
    out_rows, out_cols = _rows_cols(plan.output_size)
    margin, gap = cell // 2, cell
    width = 2 * margin + max(in_cols, out_cols) * cell
    height = 2 * margin + (in_rows + out_rows) * cell + gap
    inner = width - 2 * margin
    output_xy = (margin + (inner - out_cols * cell) // 2, margin)
    input_xy = (margin + (inner - in_cols * cell) // 2, margin + out_rows * cell + gap)
    return Layout(cell, margin, gap, width, height, input_xy, output_xy)


DEFAULT_CELL = 40
MIN_CELL = 12
MIN_CELL_NUMBERS = 24


def choose_cell(plan: SlidePlan, numbers: bool = False, target: int = 1000) -> int:
    """The largest cell size up to 40 px whose frame fits ``target`` pixels (readable minimum
    12 px, 24 px with numbers); :func:`check_limits` then refuses what still does not fit."""
    smallest = MIN_CELL_NUMBERS if numbers else MIN_CELL
    for cell in range(DEFAULT_CELL, smallest - 1, -1):
        box = layout(plan, cell)
        if max(box.width, box.height) <= target:
            return cell
    return smallest


def check_limits(plan: SlidePlan, cell: int) -> None:
    """Refuse animations with more than :data:`MAX_FRAMES` frames or frames larger than
    :data:`MAX_IMAGE_SIDE` pixels, naming the limit."""
    if plan.frame_count > MAX_FRAMES:
        raise _fail(
            plan.op,
            f"{plan.frame_count} output positions would make {plan.frame_count} frames; "
            f"the limit is {MAX_FRAMES}: use a smaller input or a larger stride",
        )
    box = layout(plan, cell)
    if max(box.width, box.height) > MAX_IMAGE_SIDE:
        raise _fail(
            plan.op,
            f"frames of {box.width}x{box.height} pixels (cells of {cell} px over a "
            f"{'x'.join(map(str, plan.canvas_size))} grid) exceed the limit of "
            f"{MAX_IMAGE_SIDE} pixels per side: use a smaller cell, input, padding or kernel",
        )


def _pil():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ImportError(
            "animations need Pillow: pip install 'convlab[images]' (or 'convlab[viz]')"
        ) from None
    return Image, ImageDraw, ImageFont


def _font(ImageFont, size: int):
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 (FreeType)
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def _shade(color: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(
        round((1 - SHADE_OPACITY) * c + SHADE_OPACITY * s) for c, s in zip(color, SHADE_COLOR)
    )


def _dashed_line(draw, start, end, color, width: int, dash: int) -> None:
    (x0, y0), (x1, y1) = start, end
    length = max(abs(x1 - x0), abs(y1 - y0))
    for a in range(0, length, 2 * dash):
        b = min(a + dash, length)
        if x0 == x1:
            draw.line([(x0, y0 + a), (x0, y0 + b)], fill=color, width=width)
        else:
            draw.line([(x0 + a, y0), (x0 + b, y0)], fill=color, width=width)


def _dashed_rect(draw, box, color, width: int, dash: int) -> None:
    x0, y0, x1, y1 = box
    for start, end in (((x0, y0), (x1, y0)), ((x0, y1), (x1, y1))):
        _dashed_line(draw, start, end, color, width, dash)
    for start, end in (((x0, y0), (x0, y1)), ((x1, y0), (x1, y1))):
        _dashed_line(draw, start, end, color, width, dash)


def _hatch(rect, k: int) -> list[tuple[int, int]]:
    """The part of the diagonal ``x + y = x0 + y0 + k`` inside the square ``rect``."""
    x0, y0, x1, y1 = rect
    side = x1 - x0
    a = (x0 + min(k, side), y0 + max(0, k - side))
    b = (x0 + max(0, k - side), y0 + min(k, side))
    return [a, b]


def _format(value: float) -> str:
    if np.isneginf(value):
        return "-inf"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _text(draw, center, text, font, fill) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = center[0] - (right - left) / 2 - left
    y = center[1] - (bottom - top) / 2 - top
    draw.text((round(x), round(y)), text, font=font, fill=fill)


def _cell_box(origin, cell: int, position: tuple[int, ...]) -> tuple[int, int, int, int]:
    row, col = (0, position[0]) if len(position) == 1 else position
    x0, y0 = origin[0] + col * cell, origin[1] + row * cell
    return x0, y0, x0 + cell, y0 + cell


def render_frames(
    plan: SlidePlan, numbers: bool = False, cell: int | None = None, seed: int = 0
) -> list:
    """Draw every frame as an RGB ``PIL.Image`` of the size :func:`layout` predicts.

    With ``numbers`` the input cells show small integers, the covered cells the kernel value
    that multiplies them (flipped for a transposed convolution), and the output cells the
    values convlab's own op computes, filled in as the kernel reaches them. Text is drawn
    without anti-aliasing, so a frame holds only a few exact colours.
    """
    Image, ImageDraw, ImageFont = _pil()
    cell = cell or choose_cell(plan, numbers)
    box = layout(plan, cell)
    line = max(1, cell // 16)
    thick = line + 1
    dash = max(2, cell // 8)
    big = _font(ImageFont, max(8, int(cell * 0.42)))
    small = _font(ImageFont, max(7, int(cell * 0.27)))
    values = weight = y = None
    if numbers:
        x, weight, y = example_values(plan, seed)
        values = grid_values(plan, x)
    canvas_cells = list(itertools.product(*(range(c) for c in plan.canvas_size)))
    kinds = {c: cell_kind(plan, c) for c in canvas_cells}
    fills = {"input": INPUT_COLOR, "padding": PAD_COLOR, "overhang": OVERHANG_COLOR}
    outputs = list(itertools.product(*(range(n) for n in plan.output_size)))

    def in_box(c):
        return _cell_box(box.input_xy, cell, c)

    def out_box(o):
        return _cell_box(box.output_xy, cell, o)

    def inside(rect, width):
        return (rect[0] + width, rect[1] + width, rect[2] - width, rect[3] - width)

    def centre(rect, lift=0.0):
        return ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2 - lift * cell)

    def hatch(draw, rect):  # overhang: not part of the padded input, ignored by the op
        for k in range(cell // 4, 2 * cell, cell // 4):
            draw.line(_hatch(rect, k), fill=OVERHANG_LINE, width=1)
        _dashed_rect(draw, rect, OVERHANG_LINE, line, max(1, dash // 2))

    def input_number(draw, c):
        v = values[c]
        if np.isnan(v):
            return  # off the edge: no value
        if np.isneginf(v):  # max pooling pads with -inf
            _text(draw, centre(in_box(c)), "-inf", small, TEXT_GREY)
        else:
            color = TEXT_LIGHT if kinds[c] == "input" else TEXT_GREY
            _text(draw, centre(in_box(c), 0.06), _format(v), big, color)

    # The picture without a kernel: every frame starts from a copy of it.
    background = Image.new("RGB", (box.width, box.height), (255, 255, 255))
    draw = behind = ImageDraw.Draw(background)
    draw.fontmode = "1"
    for c in canvas_cells:
        draw.rectangle(in_box(c), fill=fills[kinds[c]])
    for c in canvas_cells:
        if kinds[c] == "input":
            draw.rectangle(in_box(c), outline=LINE_COLOR, width=line)
        elif kinds[c] == "padding":
            _dashed_rect(draw, in_box(c), LINE_COLOR, line, dash)
        else:
            hatch(draw, in_box(c))
        if numbers:
            input_number(draw, c)
    for o in outputs:
        draw.rectangle(out_box(o), fill=OUTPUT_COLOR, outline=LINE_COLOR, width=line)

    images = []
    for frame in sliding_frames(plan):
        image = background.copy()
        draw = ImageDraw.Draw(image)
        draw.fontmode = "1"
        # The kernel: covered cells shaded with solid borders, a frame around its extent.
        for c in frame.cells:
            draw.rectangle(inside(in_box(c), line), fill=_shade(fills[kinds[c]]))
            if kinds[c] == "overhang":
                hatch(draw, in_box(c))
            if numbers:
                input_number(draw, c)
            draw.rectangle(in_box(c), outline=LINE_COLOR, width=thick)
        first, last = in_box(frame.cells[0]), in_box(frame.cells[-1])
        draw.rectangle((first[0], first[1], last[2], last[3]), outline=LINE_COLOR, width=line)
        if weight is not None:
            for c, t in zip(frame.cells, frame.taps):
                corner = (in_box(c)[2] - cell * 0.2, in_box(c)[3] - cell * 0.2)
                _text(draw, corner, f"x{_format(weight[t])}", small, TEXT_KERNEL)
        # The output cell being computed, and lines to it from the window's top corners (the
        # guide draws the same lines in perspective).
        target = out_box(frame.output)
        draw.rectangle(target, fill=_shade(OUTPUT_COLOR), outline=LINE_COLOR, width=thick)
        draw.line([(first[0], first[1]), (target[0], target[3])], fill=LINE_COLOR, width=1)
        draw.line([(last[2], first[1]), (target[2], target[3])], fill=LINE_COLOR, width=1)
        if numbers:  # computed: written here and, for the frames to come, in the background
            text = _format(y[frame.output])
            _text(draw, centre(target), text, big, TEXT_LIGHT)
            _text(behind, centre(target), text, big, TEXT_LIGHT)
        images.append(image)
    return images


def _gif_frames(images: list) -> list:
    """Palette images sharing one exact palette (frames hold few colours: no dithering)."""
    from PIL import Image

    colors: dict[tuple, int] = {}
    for image in images:
        found = image.getcolors(maxcolors=256)
        if found is None:
            return images  # more than 256 colours: let Pillow quantise each frame
        for _, color in found:
            colors.setdefault(color, len(colors))
        if len(colors) > 256:
            return images
    palette = Image.new("P", (1, 1))
    flat = [v for color in colors for v in color]
    palette.putpalette(flat + [0] * (768 - len(flat)))
    return [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]


def save_animation(
    plan: SlidePlan,
    path: str | Path,
    numbers: bool = False,
    frames_dir: str | Path | None = None,
    cell: int | None = None,
    delay_ms: int = 800,
    seed: int = 0,
) -> dict:
    """Check the limits, draw the frames and write the GIF (looping) and optional PNG frames.

    Returns ``{"path", "frames", "size", "cell", "pngs"}``.
    """
    cell = cell or choose_cell(plan, numbers)
    check_limits(plan, cell)
    images = render_frames(plan, numbers=numbers, cell=cell, seed=seed)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    frames = _gif_frames(images)
    frames[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=delay_ms,
        loop=0,
    )
    tmp.replace(path)
    pngs = []
    if frames_dir is not None:
        folder = Path(frames_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for index, image in enumerate(images):
            png = folder / f"frame_{index:03d}.png"
            image.save(png, format="PNG")
            pngs.append(png)
    return {"path": path, "frames": len(images), "size": images[0].size, "cell": cell, "pngs": pngs}
