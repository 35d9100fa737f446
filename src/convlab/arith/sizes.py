"""Output sizes with the numbers written in, the rules that make a layer valid, and solving back.

Every size here comes from :mod:`convlab.shapes`, the one place each formula lives; this module
only writes the formulas out with a user's numbers substituted (for reading) and checks the
rules PyTorch enforces, so that a bad combination gets one sentence saying why and what would
work instead of an exception from deep inside an op. The relationships are those of Dumoulin &
Visin, "A guide to convolution arithmetic for deep learning" (arXiv 1603.07285).

>>> spec = layer("conv_transpose2d", (3, 3), 3, stride=2, padding=1)
>>> spec.output, transpose_sizes(spec)[0]
((5, 5), [(5, 0), (6, 1)])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convlab import shapes

__all__ = [
    "OPS",
    "ArithError",
    "Layer",
    "Choice",
    "Solution",
    "layer",
    "general_formula",
    "formula",
    "transpose_sizes",
    "ceil_mode_note",
    "solve",
    "axis_names",
]

_FAMILIES = {
    "conv": "conv{}d",
    "transpose": "conv_transpose{}d",
    "max_pool": "max_pool{}d",
    "avg_pool": "avg_pool{}d",
}
_OPS = {pattern.format(n): (family, n) for family, pattern in _FAMILIES.items() for n in (1, 2, 3)}
OPS: tuple[str, ...] = tuple(_OPS)

_AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}

Size = int | Sequence[int]


class ArithError(ValueError):
    """A combination with no valid output: one sentence saying why and what would work."""


def axis_names(n: int) -> tuple[str, ...]:
    """Names of the spatial dimensions, PyTorch's order: ``('height', 'width')`` for 2-d."""
    return _AXES[n]


@dataclass(frozen=True)
class Layer:
    """One convolution, transposed convolution or pooling layer, normalised (and checked,
    unless built with ``layer(..., check=False)``).

    ``padding`` holds one ``(low, high)`` pair per spatial dimension (unequal only for
    ``padding='same'`` with an even extent); ``padding_name`` keeps ``'same'``/``'valid'``.
    """

    op: str
    family: str
    input: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    ceil_mode: bool = False
    padding_name: str | None = None

    @property
    def n(self) -> int:
        return len(self.input)

    @property
    def output(self) -> tuple[int, ...]:
        """The output size, from :mod:`convlab.shapes`."""
        if self.family == "conv":
            return shapes.conv_output_shape(
                self.input, self.kernel, self.stride, self.padding, self.dilation
            )
        if self.family == "transpose":
            return shapes.conv_transpose_output_shape(
                self.input,
                self.kernel,
                self.stride,
                [lo for lo, _ in self.padding],
                self.dilation,
                self.output_padding,
            )
        return shapes.pool_output_shape(
            self.input,
            self.kernel,
            self.stride,
            [lo for lo, _ in self.padding],
            self.dilation,
            self.ceil_mode,
        )

    def dim(self, i: int) -> tuple:
        """The parameters of dimension ``i`` (equal tuples: the dims print as one line)."""
        return (
            self.input[i],
            self.kernel[i],
            self.stride[i],
            self.padding[i],
            self.dilation[i],
            self.output_padding[i],
        )


def _values(value: Size, n: int, name: str, op: str) -> tuple[int, ...]:
    if isinstance(value, int):
        value = (value,)
    values = tuple(value)
    if len(values) == 1:
        values *= n
    if len(values) != n:
        raise ArithError(
            f"{name} takes 1 or {n} values for {op} (one per spatial dimension), but got "
            f"{len(values)}: {' '.join(map(str, values))}."
        )
    return shapes.ntuple(values, n, name)


def _check_at_least(values: tuple[int, ...], least: int, name: str) -> None:
    if any(v < least for v in values):
        raise ArithError(f"{name} must be at least {least}, but got {_list(values)}.")


def _list(values: Sequence) -> str:
    return " ".join(str(v) for v in values)


def layer(
    op: str,
    input: Size,
    kernel: Size,
    stride: Size | None = None,
    padding: Size | str = 0,
    dilation: Size | None = None,
    output_padding: Size = 0,
    ceil_mode: bool = False,
    check: bool = True,
) -> Layer:
    """Normalise and check a layer's arguments the way the real op does.

    Args:
        op: one of :data:`OPS` (``conv2d``, ``conv_transpose1d``, ``max_pool3d``, ...).
        input: the spatial input size, one value for every dimension or one per dimension.
        kernel, stride, padding, dilation, output_padding: as in ``torch.nn.functional``;
            ``stride=None`` means 1 (the kernel size for pooling), ``padding`` may be
            ``'same'``/``'valid'`` for convolutions.
        ceil_mode: pooling only.
        check: apply the rules that need the sizes (padding limits, output_padding, a window
            that fits); :func:`solve` starts from an unchecked layer.

    Raises:
        ArithError: the combination has no valid output (the message says why, and what
            would work), or an argument does not belong to ``op``.
    """
    if op not in _OPS:
        raise ArithError(f"unknown op {op!r}; choose one of {', '.join(OPS)}.")
    family, n = _OPS[op]
    pool = family in ("max_pool", "avg_pool")
    sizes = _values(input, n, "input", op)
    kernel = _values(kernel, n, "kernel", op)
    _check_at_least(sizes, 1, "input")
    _check_at_least(kernel, 1, "kernel")
    if stride is None:
        stride = kernel if pool else (1,) * n
    stride = _values(stride, n, "stride", op)
    _check_at_least(stride, 1, "stride")
    if (
        family == "avg_pool"
        and dilation is not None
        and set(_values(dilation, n, "dilation", op)) != {1}
    ):
        raise ArithError(f"{op} has no dilation (PyTorch's average pooling takes none); drop it.")
    dilation = _values(1 if dilation is None else dilation, n, "dilation", op)
    _check_at_least(dilation, 1, "dilation")
    output_padding = _values(output_padding, n, "output_padding", op)
    _check_at_least(output_padding, 0, "output_padding")
    if family != "transpose" and any(output_padding):
        raise ArithError(f"output_padding belongs to transposed convolutions, not to {op}.")
    if ceil_mode and not pool:
        raise ArithError(f"ceil_mode belongs to pooling, not to {op}.")

    padding_name = None
    if isinstance(padding, str):
        if family != "conv":
            raise ArithError(
                f"padding {padding!r} exists only for convolutions; give {op} an integer padding."
            )
        if padding == "valid":
            pads = ((0, 0),) * n
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ArithError(
                    f"padding='same' needs stride 1 (PyTorch does not support it for strided "
                    f"convolutions), but got stride {_list(stride)}; give an integer padding "
                    f"instead (--want finds one for a wanted size)."
                )
            pads = tuple(shapes.same_padding(k, d) for k, d in zip(kernel, dilation))
        else:
            raise ArithError(f"padding must be an integer, 'same' or 'valid', but got {padding!r}.")
        padding_name = padding
    else:
        pads = tuple((p, p) for p in _values(padding, n, "padding", op))
        _check_at_least(tuple(p for p, _ in pads), 0, "padding")

    spec = Layer(
        op,
        family,
        sizes,
        kernel,
        stride,
        pads,
        dilation,
        output_padding,
        bool(ceil_mode),
        padding_name,
    )
    if check:
        _check(spec)
    return spec


def _check(spec: Layer) -> None:
    """The rules PyTorch enforces, each as one sentence with a way out."""
    names = axis_names(spec.n)
    pool = spec.family in ("max_pool", "avg_pool")
    for axis, (size, k, s, (lo, hi), d, op), out in zip(
        names, map(spec.dim, range(spec.n)), spec.output
    ):
        # PyTorch 2.13 compares pooling padding with half the raw kernel (dilation ignored);
        # the effective-kernel rule it also has is never the stricter one.
        if pool and lo > k // 2:
            raise ArithError(
                f"{spec.op}: padding {lo} in the {axis} is more than half the kernel "
                f"({k} // 2 = {k // 2}); pooling pads at most half the kernel, so use padding "
                f"0..{k // 2}."
            )
        if spec.family == "transpose" and not (op < s or op < d):
            raise ArithError(
                f"{spec.op}: output_padding {op} in the {axis} must be smaller than the stride "
                f"({s}) or the dilation ({d}); use output_padding 0..{max(s, d) - 1}."
            )
        if out >= 1:
            continue
        if spec.family == "transpose":
            fits = [
                p for p in range(lo) if shapes.conv_transpose_output_size(size, k, s, p, d, op) >= 1
            ]
            fix = f"use padding at most {max(fits)}" if fits else "use a larger input or kernel"
            raise ArithError(
                f"{spec.op}: the output would be {out} long in the {axis} "
                f"({formula(spec, axis)}); {fix}."
            )
        extent = shapes.effective_kernel(k, d)
        what = f"kernel {k}" if d == 1 else f"kernel {k} with dilation {d}"
        raise ArithError(
            f"{spec.op}: the {what} spans {extent} in the {axis} but the padded input is only "
            f"{size + lo + hi} long ({size} + {lo} + {hi}); {_fit_hint(spec, size, k, s, d)}."
        )
    if spec.op == "avg_pool3d":
        # PyTorch's avg_pool3d wants the raw input (padding ignored) at least as big as the kernel.
        for axis, size, k in zip(names, spec.input, spec.kernel):
            if size < k:
                raise ArithError(
                    f"avg_pool3d needs every input side at least the kernel size, padding aside "
                    f"(a PyTorch rule), but the {axis} is {size} < kernel {k}; use a smaller "
                    f"kernel or a larger input."
                )


def _fit_hint(spec: Layer, size: int, k: int, s: int, d: int) -> str:
    """What would make a window fit: the smallest padding that works, or ceil_mode."""
    if spec.family == "conv":
        extent = shapes.effective_kernel(k, d)
        need = next(p for p in range(extent) if shapes.conv_output_size(size, k, s, p, d) >= 1)
        return f"use padding {need} or more, or a smaller kernel"
    limit = k // 2
    for p in range(limit + 1):
        if shapes.pool_output_size(size, k, s, p, d, spec.ceil_mode) >= 1:
            return f"use padding {_span(range(p, limit + 1))} or a smaller kernel"
    if not spec.ceil_mode and shapes.pool_output_size(size, k, s, 0, d, True) >= 1:
        return "use ceil_mode (one window that hangs over the end) or a smaller kernel"
    return "use a smaller kernel or a larger input"


# ---------------------------------------------------------------------------------------------
# Formulas with the numbers substituted (printing only: every result comes from shapes)
# ---------------------------------------------------------------------------------------------


def general_formula(spec: Layer) -> str:
    """The formula of ``spec``'s op in words, PyTorch's Shape section."""
    if spec.family == "transpose":
        return "out = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1"
    rounding = "ceil" if spec.ceil_mode else "floor"
    if spec.family == "avg_pool":
        return f"out = {rounding}((in + 2*padding - kernel) / stride) + 1"
    pad = "pad_lo + pad_hi" if spec.padding_name == "same" else "2*padding"
    return f"out = {rounding}((in + {pad} - dilation*(kernel - 1) - 1) / stride) + 1"


def _index(spec: Layer, axis: int | str) -> int:
    return axis_names(spec.n).index(axis) if isinstance(axis, str) else axis


def formula(spec: Layer, axis: int | str) -> str:
    """The formula of one dimension with the numbers substituted, ending in its result.

    The result printed is ``spec.output`` (from :mod:`convlab.shapes`); the intermediate numbers
    are there to be read, and an assertion keeps them honest.
    """
    i = _index(spec, axis)
    size, k, s, (lo, hi), d, op = spec.dim(i)
    out = spec.output[i]
    if spec.family == "transpose":
        value = (size - 1) * s - 2 * lo + d * (k - 1) + op + 1
        assert value == out, (value, out)
        return f"({size} - 1)*{s} - 2*{lo} + {d}*({k} - 1) + {op} + 1 = {out}"
    pad = f"2*{lo}" if lo == hi else f"{lo} + {hi}"
    if spec.family == "avg_pool":
        top = size + lo + hi - k
        inside = f"({size} + {pad} - {k})"
    else:
        top = size + lo + hi - d * (k - 1) - 1
        inside = f"({size} + {pad} - {d}*({k} - 1) - 1)"
    if not spec.ceil_mode:
        assert top // s + 1 == out, (top, s, out)
        return f"floor({inside} / {s}) + 1 = floor({top} / {s}) + 1 = {out}"
    raw = -(-top // s) + 1
    text = f"ceil({inside} / {s}) + 1 = ceil({top} / {s}) + 1 = {raw}"
    if raw != out:
        assert raw - 1 == out, (raw, out)
        text += f" - 1 = {out} (last window dropped)"
    return text


def transpose_sizes(spec: Layer) -> list[list[tuple[int, int]]]:
    """Per dimension, every valid output size of a transposed convolution with its output_padding.

    These are the lengths ``[min, min + stride - 1]`` of :func:`shapes.conv_transpose_output_range`
    (what ``output_size=`` accepts): all of them are turned into ``spec.input`` by the
    convolution with the same arguments.
    """
    assert spec.family == "transpose"
    result = []
    for size, k, s, (lo, _), d, _ in map(spec.dim, range(spec.n)):
        smallest, largest = shapes.conv_transpose_output_range(size, k, s, lo, d)
        result.append(
            [
                (want, shapes.output_padding_for_size(want, size, k, s, lo, d))
                for want in range(max(smallest, 1), largest + 1)
            ]
        )
    return result


def ceil_mode_note(spec: Layer, axis: int | str) -> str | None:
    """What ceil_mode does in one dimension when it matters (it adds a window, or its
    last-window rule drops the one that rounding up would add); None otherwise.

    The last-window rule (PyTorch's Pool.h): rounding up may add one window that starts inside
    the input or the left padding and runs past the end; a window that would start in the right
    padding is dropped.
    """
    if not spec.ceil_mode:
        return None
    i = _index(spec, axis)
    size, k, s, (lo, _), d, _ = spec.dim(i)
    out = spec.output[i]
    floor_out = shapes.pool_output_size(size, k, s, lo, d, ceil_mode=False)
    extent = shapes.effective_kernel(k, d)
    end = size + 2 * lo  # padded positions 0..end-1; the input is lo..lo+size-1
    if out != floor_out:
        start = (out - 1) * s
        where = "inside the input" if start >= lo else "in the left padding"
        return (
            f"ceil_mode adds a last window: it starts at padded position {start} ({where}; "
            f"the input spans {lo}..{lo + size - 1}) and would cover "
            f"{start}..{start + extent - 1}, past the padded end {end - 1}, so it takes only the "
            f"elements that exist; floor mode gives {floor_out}"
        )
    raw_top = size + 2 * lo - extent
    raw = -(-raw_top // s) + 1
    if raw != out:
        start = (raw - 1) * s
        return (
            f"rounding up would add a window starting at padded position {start}, but that is "
            f"in the right padding (the input ends at {lo + size - 1}), and PyTorch drops a "
            f"window that starts there, so ceil_mode gives the same {out} as floor mode"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Solving backwards
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One way of reaching a wanted size in one dimension: a checked 1-d layer."""

    stride: int
    padding: int
    output_padding: int
    layer: Layer


@dataclass(frozen=True)
class Solution:
    """The choices for one dimension, and the ranges searched (as text)."""

    axis: str
    want: int
    choices: list[Choice]
    searched: str


def solve(
    spec: Layer,
    want: Size,
    fixed: Sequence[str] = (),
    max_stride: int | None = None,
    max_padding: int | None = None,
) -> list[Solution]:
    """The (stride, padding[, output_padding]) choices that give ``want``, per dimension.

    Args:
        spec: the layer as given (its input, kernel, dilation and ceil_mode are kept); it may
            come from ``layer(..., check=False)``, since only the choices must be valid.
        want: the wanted output size, one value or one per dimension.
        fixed: which of ``'stride'``, ``'padding'`` keep ``spec``'s value; the others are
            searched. A transposed convolution's ``output_padding`` is always searched (all
            values below ``max(stride, dilation)``, the op's rule).
        max_stride: largest stride tried; default ``max(4, kernel extent)``.
        max_padding: largest padding tried; default ``kernel extent - 1`` ("full" padding, past
            which some windows see padding only), and at most half the kernel for pooling.

    Every choice is a 1-d layer built by :func:`layer` (so it obeys the op's rules) whose
    output, from :mod:`convlab.shapes`, equals the wanted size.

    Raises:
        ArithError: some dimension has no choice in the searched ranges; the message names the
            ranges and the nearest sizes that can be reached.
    """
    wants = _values(want, spec.n, "want", spec.op)
    _check_at_least(wants, 1, "want")
    op1 = _FAMILIES[spec.family].format(1)
    transpose = spec.family == "transpose"
    result = []
    for i, axis in enumerate(axis_names(spec.n)):
        size, k, s, (lo, _), d, _ = spec.dim(i)
        extent = shapes.effective_kernel(k, d)
        top_stride = max_stride if max_stride is not None else max(4, extent)
        top_pad = max_padding if max_padding is not None else extent - 1
        if spec.family in ("max_pool", "avg_pool"):
            top_pad = min(top_pad, k // 2)
        strides = range(s, s + 1) if "stride" in fixed else range(1, top_stride + 1)
        paddings = range(lo, lo + 1) if "padding" in fixed else range(0, top_pad + 1)
        reached: dict[int, Choice] = {}
        choices = []
        for st in strides:
            for p in paddings:
                for op in range(max(st, d)) if transpose else (0,):
                    try:
                        one = layer(
                            op1,
                            size,
                            k,
                            st,
                            p,
                            None if spec.family == "avg_pool" else d,
                            op,
                            spec.ceil_mode,
                        )
                    except ArithError:
                        continue
                    choice = Choice(st, p, op, one)
                    reached.setdefault(one.output[0], choice)
                    if one.output[0] == wants[i]:
                        choices.append(choice)
        searched = f"stride {_span(strides)}, padding {_span(paddings)}"
        if transpose:
            searched += ", output_padding below max(stride, dilation)"
        if not choices:
            raise ArithError(_no_choice(spec, axis, size, wants[i], searched, fixed, reached))
        result.append(Solution(axis, wants[i], choices, searched))
    return result


def _span(r: range) -> str:
    return str(r.start) if len(r) == 1 else f"{r.start}..{r.stop - 1}"


def _no_choice(spec, axis, size, want, searched, fixed, reached: dict[int, Choice]) -> str:
    what = f"{spec.op}: no choice of {searched} turns {size} into {want} in the {axis}"
    if not reached:
        return f"{what}, nor any other size; change the kernel or widen the search."
    near = []
    below = [o for o in reached if o < want]
    above = [o for o in reached if o > want]
    for found in (max(below, default=None), min(above, default=None)):
        if found is not None:
            c = reached[found]
            extra = f", output_padding {c.output_padding}" if spec.family == "transpose" else ""
            near.append(f"{found} (stride {c.stride}, padding {c.padding}{extra})")
    if fixed:
        them = "them" if len(fixed) > 1 else "it"
        hint = f"leave out {' or '.join(fixed)} to search {them}, or change the kernel"
    else:
        hint = "widen the search with --max-stride/--max-padding, or change the kernel"
    nearest = "the nearest size it reaches is" if len(near) == 1 else "the nearest it reaches are"
    return f"{what}; {nearest} {' and '.join(near)}; {hint}."
