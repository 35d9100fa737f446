"""``convlab animate``: every frame shows exactly the cells the kernel covers, checked against the
definitions of convolution, transposed convolution and pooling (written out again here, apart
from ``convlab.shapes``), against convlab's own ops and, where installed, PyTorch's output sizes;
pictures are checked pixel by pixel; the command end to end, bad input included.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import warnings
from collections import Counter

import numpy as np
import pytest

from convlab.viz import animate as A

CONVLAB = [sys.executable, "-m", "convlab.cli.main"]


def convlab(*args):
    return subprocess.run([*CONVLAB, *map(str, args)], capture_output=True, text=True, timeout=120)


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------
# Random parameter sets (fixed seed); only those the op accepts are kept
# ---------------------------------------------------------------------------------------------


def _draw_configs(per_op: int = 30, seed: int = 1603) -> list[dict]:
    rng = np.random.default_rng(seed)
    configs = []
    for op, (kind, n) in A.OPS.items():
        kept = 0
        while kept < per_op:

            def pick(lo, hi, n=n):
                return tuple(int(v) for v in rng.integers(lo, hi + 1, size=n))

            config = {"op": op, "input_size": pick(1, 8), "kernel_size": pick(1, 4)}
            config["stride"] = pick(1, 3)
            if kind != "avg_pool":
                config["dilation"] = pick(1, 3)
            config["padding"] = pick(0, 3)
            if kind == "conv" and rng.random() < 0.15:
                config["padding"], config["stride"] = "same", (1,) * n
            if kind == "conv_transpose":
                limit = [max(s, d) - 1 for s, d in zip(config["stride"], config["dilation"])]
                config["output_padding"] = tuple(int(rng.integers(0, m + 1)) for m in limit)
            if kind in ("max_pool", "avg_pool"):
                config["ceil_mode"] = bool(rng.random() < 0.6)
            try:
                plan = A.plan_animation(**config)
            except A.AnimationError:
                continue
            if plan.frame_count > 150:  # keep the test fast
                continue
            configs.append(config)
            kept += 1
    return configs


CONFIGS = _draw_configs()
IDS = [
    f"{c['op']}-i{c['input_size']}-k{c['kernel_size']}-s{c['stride']}-p{c['padding']}"
    f"-d{c.get('dilation')}-op{c.get('output_padding')}-c{c.get('ceil_mode')}"
    for c in CONFIGS
]


def _pads(config: dict) -> list[tuple[int, int]]:
    """(low, high) zero padding of a convolution or pooling, from PyTorch's rules."""
    kernel, n = config["kernel_size"], len(config["input_size"])
    dilation = config.get("dilation", (1,) * n)
    if config["padding"] == "same":  # total d*(k-1), the odd one at the end
        return [
            (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)
        ]
    return [(p, p) for p in config["padding"]]


def _starts_1d(config: dict, axis: int) -> list[int]:
    """Window starts along one axis, by sliding until the window no longer fits (definition)."""
    kind = A.OPS[config["op"]][0]
    n = config["input_size"][axis]
    k = config["kernel_size"][axis]
    s = config["stride"][axis]
    d = config.get("dilation", (1,) * len(config["input_size"]))[axis]
    lo, hi = _pads(config)[axis]
    padded = n + lo + hi
    span = d * (k - 1) + 1
    starts = []
    q = 0
    while True:
        if q + span <= padded:
            starts.append(q)
        elif (
            kind in ("max_pool", "avg_pool")
            and config.get("ceil_mode")
            and q - s + span < padded  # the previous window did not reach the last cell
            and q < n + lo  # and this one starts inside the input or the left padding
        ):
            starts.append(q)
        else:
            return starts
        q += s


def expected_windows(config: dict) -> dict[tuple, set[tuple]]:
    """Output position -> cells of the drawn grid the kernel covers, from the definitions.

    Convolution and pooling: the padded input, window ``o*s + d*t``. Transposed convolution:
    input element ``i`` reaches output ``o`` through tap ``t`` when ``o = i*s - p + d*t``
    (scatter definition); in the stretched grid element ``i`` sits at ``P + i*s`` with
    ``P = d*(k-1) - p``, so output ``o`` covers ``o + d*j``, ``j`` the flipped tap. When ``P``
    is negative (padding crops) the drawing starts at the first stretched cell, shifting all
    by ``-P``.
    """
    kind, n = A.OPS[config["op"]]
    dilation = config.get("dilation", (1,) * n)
    if kind == "conv_transpose":
        kernel, stride = config["kernel_size"], config["stride"]
        out_pad = config.get("output_padding", (0,) * n)
        axes = []
        for i, k, s, p, d, a in zip(
            config["input_size"], kernel, stride, config["padding"], dilation, out_pad
        ):
            full = [x * s + d * t for x in range(i) for t in range(k)]  # scatter targets
            length = max(full) + 1 - 2 * p + a
            shift = max(p - d * (k - 1), 0)
            axes.append({o: [shift + o + d * j for j in range(k)] for o in range(length)})
    else:
        axes = []
        for axis in range(n):
            k, d = config["kernel_size"][axis], dilation[axis]
            starts = _starts_1d(config, axis)
            axes.append({o: [q + d * t for t in range(k)] for o, q in enumerate(starts)})
    windows = {}
    for position in itertools.product(*(sorted(a) for a in axes)):
        windows[position] = set(itertools.product(*(a[o] for a, o in zip(axes, position))))
    return windows


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_frames_are_the_cells_the_kernel_covers(config):
    plan = A.plan_animation(**config)
    frames = A.sliding_frames(plan)
    expected = expected_windows(config)
    assert len(frames) == len(expected) == plan.frame_count
    assert [f.output for f in frames] == sorted(expected)  # row-major, like the guide
    assert [f.index for f in frames] == list(range(len(frames)))
    for frame in frames:
        assert set(frame.cells) == expected[frame.output], frame
        assert len(set(frame.cells)) == np.prod(plan.kernel_size)
        assert all(0 <= c < m for cell in frame.cells for c, m in zip(cell, plan.canvas_size))
    # Cells off the padded input appear only in ceil-mode pooling.
    overhang = {c for f in frames for c in f.cells if A.cell_kind(plan, c) == "overhang"}
    if overhang:
        assert plan.kind in ("max_pool", "avg_pool") and plan.ceil_mode


def _reference_output(config: dict, x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """The op from its definition, with loops (float64, small inputs)."""
    kind, n = A.OPS[config["op"]]
    dilation = config.get("dilation", (1,) * n)
    kernel = config["kernel_size"]
    taps = list(itertools.product(*(range(k) for k in kernel)))
    if kind == "conv_transpose":
        stride, pad = config["stride"], config["padding"]
        out_pad = config.get("output_padding", (0,) * n)
        full = tuple((i - 1) * s + d * (k - 1) + 1 + a for i, s, d, k, a in zip(
            x.shape, stride, dilation, kernel, out_pad))  # fmt: skip
        y = np.zeros(full)
        for i in np.ndindex(*x.shape):
            for t in taps:
                y[tuple(a * s + d * b for a, s, d, b in zip(i, stride, dilation, t))] += x[i] * w[t]
        return y[tuple(slice(p, f - p) for p, f in zip(pad, full))]
    pads = _pads(config)
    fill = -np.inf if kind == "max_pool" else 0.0
    padded = np.pad(x, pads, constant_values=fill)
    starts = [_starts_1d(config, axis) for axis in range(n)]
    y = np.zeros([len(s) for s in starts])
    for o in np.ndindex(*y.shape):
        cells = [
            tuple(st[oi] + d * t for st, oi, d, t in zip(starts, o, dilation, tap)) for tap in taps
        ]
        inside = [c for c in cells if all(ci < m for ci, m in zip(c, padded.shape))]
        values = np.array([padded[c] for c in inside])
        if kind == "conv":
            y[o] = sum(padded[c] * w[t] for c, t in zip(cells, taps))
        elif kind == "max_pool":
            y[o] = values.max()
        else:  # count_include_pad: the window clipped to the padded input
            y[o] = values.sum() / len(inside)
    return y


@pytest.mark.parametrize("config", CONFIGS[::2], ids=IDS[::2])
def test_numbers_agree_with_the_definition_and_convlabs_ops(config):
    plan = A.plan_animation(**config)
    x, w, y = A.example_values(plan, seed=7)  # y: convlab's own op
    assert x.shape == plan.input_size and np.all(x == np.round(x))
    reference = _reference_output(config, x, w)
    np.testing.assert_allclose(y, reference, rtol=0, atol=1e-12)
    # What a frame shows computes its output cell: sum of products (convolutions), or the
    # max / mean of the covered cells inside the padded input (pooling).
    grid = A.grid_values(plan, x)
    for frame in A.sliding_frames(plan):
        values = np.array([grid[c] for c in frame.cells])
        if plan.kind in ("conv", "conv_transpose"):
            shown = sum(grid[c] * w[t] for c, t in zip(frame.cells, frame.taps))
        elif plan.kind == "max_pool":
            shown = np.nanmax(values)
        else:
            shown = np.nansum(values) / np.count_nonzero(~np.isnan(values))
        assert shown == pytest.approx(y[frame.output], abs=1e-12), frame


def test_the_grid_holds_the_input_where_the_plan_says():
    plan = A.plan_animation("conv_transpose2d", (3, 2), 3, stride=(2, 3), padding=1)
    x = np.arange(6.0).reshape(3, 2) + 1
    grid = A.grid_values(plan, x)
    for cell in np.ndindex(*plan.canvas_size):
        index = A.input_index(plan, cell)
        assert grid[cell] == (0 if index is None else x[index])
    assert np.count_nonzero(grid) == 6


def test_max_pooling_pads_with_minus_infinity():
    """Negative inputs: a padding drawn as 0 would win the max; PyTorch pads with -inf."""
    import convlab.nn.functional as F

    plan = A.plan_animation("max_pool2d", (4, 5), 3, stride=2, padding=1, ceil_mode=True)
    x = -1.0 - np.arange(20.0).reshape(4, 5)
    grid = A.grid_values(plan, x)
    y = F.max_pool2d(x[None, None], 3, 2, 1, ceil_mode=True).numpy()[0, 0]
    for frame in A.sliding_frames(plan):
        assert np.nanmax([grid[c] for c in frame.cells]) == y[frame.output]
    assert np.isneginf(grid[0, 0]) and np.isnan(grid[-1, -1])  # padding, then off the edge


@pytest.mark.parametrize("config", CONFIGS[::3], ids=IDS[::3])
def test_output_sizes_match_pytorch(config, torch):
    kind, n = A.OPS[config["op"]]
    plan = A.plan_animation(**config)
    F = torch.nn.functional
    x = torch.zeros((1, 1, *config["input_size"]), dtype=torch.float64)
    dilation = config.get("dilation", (1,) * n)
    if kind == "conv":
        w = torch.zeros((1, 1, *config["kernel_size"]), dtype=torch.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a copy
            y = getattr(F, config["op"])(x, w, None, config["stride"], config["padding"], dilation)
    elif kind == "conv_transpose":
        w = torch.zeros((1, 1, *config["kernel_size"]), dtype=torch.float64)
        y = getattr(F, config["op"])(
            x, w, None, config["stride"], config["padding"], config["output_padding"], 1, dilation
        )
    elif kind == "max_pool":
        y = getattr(F, config["op"])(
            x, config["kernel_size"], config["stride"], config["padding"], dilation,
            config["ceil_mode"],
        )  # fmt: skip
    else:
        y = getattr(F, config["op"])(
            x, config["kernel_size"], config["stride"], config["padding"], config["ceil_mode"]
        )
    assert tuple(y.shape[2:]) == plan.output_size


def test_the_guides_animations_have_the_guides_sizes():
    """vdumoulin/conv_arithmetic bin/generate_makefile: (i, o, p, k, s); transposed ones run
    from o back to i, one frame per output cell."""
    guide = {
        "no_padding_no_strides": (4, 2, 0, 3, 1),
        "arbitrary_padding_no_strides": (5, 6, 2, 4, 1),
        "same_padding_no_strides": (5, 5, 1, 3, 1),
        "full_padding_no_strides": (5, 7, 2, 3, 1),
        "no_padding_strides": (5, 2, 0, 3, 2),
        "padding_strides": (5, 3, 1, 3, 2),
        "padding_strides_odd": (6, 3, 1, 3, 2),
    }
    for name, (i, o, p, k, s) in guide.items():
        plan = A.plan_animation("conv2d", i, k, stride=s, padding=p)
        assert plan.output_size == (o, o) and plan.grid_size == (i + 2 * p,) * 2, name
        a = (i + 2 * p - k) % s  # relationship 14's extra zeros at the bottom/right
        back = A.plan_animation("conv_transpose2d", o, k, stride=s, padding=p, output_padding=a)
        assert back.output_size == (i, i), name
        stretched = (o - 1) * s + 1
        assert back.grid_size == (stretched + 2 * (k - 1 - p) + a,) * 2, name
        assert len(A.sliding_frames(back)) == i * i
    dilated = A.plan_animation("conv2d", 7, 3, dilation=2)
    assert dilated.output_size == (3, 3)
    assert A.sliding_frames(dilated)[0].cells[:3] == ((0, 0), (0, 2), (0, 4))


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------

PICTURES = [
    ("conv2d", dict(input_size=5, kernel_size=3, stride=2, padding=1)),
    ("conv2d", dict(input_size=(4, 6), kernel_size=(2, 3), dilation=(1, 2), padding="same")),
    ("conv_transpose2d", dict(input_size=3, kernel_size=3, stride=2, padding=1, output_padding=1)),
    ("conv_transpose1d", dict(input_size=4, kernel_size=3, stride=3, dilation=2, padding=3)),
    ("max_pool2d", dict(input_size=6, kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool1d", dict(input_size=7, kernel_size=3, stride=2, ceil_mode=True)),
]


def _majority(image, box, inset: int):
    x0, y0, x1, y1 = box
    region = np.asarray(image.crop((x0 + inset, y0 + inset, x1 - inset + 1, y1 - inset + 1)))
    return Counter(map(tuple, region.reshape(-1, 3).tolist())).most_common(1)[0][0]


@pytest.mark.parametrize("op,kwargs", PICTURES, ids=[p[0] for p in PICTURES])
def test_frames_draw_exactly_the_planned_cells(op, kwargs):
    pytest.importorskip("PIL", reason="Pillow not installed: pip install 'convlab[images]'")
    plan = A.plan_animation(op, **kwargs)
    cell = 22
    images = A.render_frames(plan, cell=cell)
    frames = A.sliding_frames(plan)
    assert len(images) == len(frames) == plan.frame_count
    rows_in, cols_in = (1, *plan.canvas_size) if plan.ndim == 1 else plan.canvas_size
    rows_out, cols_out = (1, *plan.output_size) if plan.ndim == 1 else plan.output_size
    margin = cell // 2
    size = (
        2 * margin + max(cols_in, cols_out) * cell,
        2 * margin + (rows_in + rows_out + 1) * cell,
    )
    assert {image.size for image in images} == {size}
    box = A.layout(plan, cell)
    fills = {"input": A.INPUT_COLOR, "padding": A.PAD_COLOR, "overhang": A.OVERHANG_COLOR}
    for image, frame in zip(images, frames):
        covered = set(frame.cells)
        for c in np.ndindex(*plan.canvas_size):
            fill = fills[A.cell_kind(plan, c)]
            want = A._shade(fill) if c in covered else fill
            got = _majority(image, A._cell_box(box.input_xy, cell, c), 3)
            assert got == want, (frame.index, c, got, want)
        for o in np.ndindex(*plan.output_size):
            want = A._shade(A.OUTPUT_COLOR) if o == frame.output else A.OUTPUT_COLOR
            assert _majority(image, A._cell_box(box.output_xy, cell, o), 3) == want


def test_cell_size_is_chosen_to_fit_and_limits_are_named():
    small = A.plan_animation("conv2d", 4, 3)
    assert A.choose_cell(small) == A.DEFAULT_CELL
    big = A.plan_animation("conv2d", 16, 3, stride=2, padding=4)
    cell = A.choose_cell(big)
    assert cell < A.DEFAULT_CELL
    fits = A.layout(big, cell)
    assert max(fits.width, fits.height) <= 1000 < max(A.layout(big, cell + 1).height, fits.width)
    with pytest.raises(A.AnimationError, match="1500 pixels"):
        A.check_limits(big, 60)
    many = A.plan_animation("conv_transpose2d", 15, 3, stride=2)
    with pytest.raises(A.AnimationError, match="the limit is 400"):
        A.check_limits(many, 12)
    with pytest.raises(A.AnimationError, match="limit is 16 cells"):
        A.plan_animation("max_pool1d", 17, 2)


def test_gif_and_png_frames_end_to_end(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    gif, frames = tmp_path / "conv.gif", tmp_path / "frames"
    result = convlab(
        "animate", "conv_transpose2d", "--input", 3, "--kernel", 3, "--stride", 2,
        "--padding", 1, "--output-size", 6, "--numbers", "--frames", frames, "--out", gif,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "-> output 6x6" in result.stdout and "output_padding 1x1" in result.stdout
    plan = A.plan_animation("conv_transpose2d", 3, 3, stride=2, padding=1, output_padding=1)
    box = A.layout(plan, A.choose_cell(plan, numbers=True))
    with pil.open(gif) as image:
        assert image.n_frames == 36
        assert image.size == (box.width, box.height)
        assert image.info.get("loop") == 0
    pngs = sorted(frames.glob("frame_*.png"))
    assert len(pngs) == 36
    with pil.open(gif) as animation:  # the GIF holds exactly the PNG frames' pixels
        for index in (0, 1, 17, 35):
            animation.seek(index)
            with pil.open(pngs[index]) as png:
                assert png.size == (box.width, box.height)
                assert np.array_equal(np.asarray(animation.convert("RGB")), np.asarray(png))
    # A 1-d op is one row; its default file name is the op's.
    result = subprocess.run(
        [*CONVLAB, "animate", "max_pool1d", "--input", "6", "--kernel", "3", "--stride", "2",
         "--ceil-mode"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with pil.open(tmp_path / "max_pool1d.gif") as image:
        assert image.n_frames == 3
        assert image.size == (2 * 20 + 7 * 40, 2 * 20 + 3 * 40)  # 6 cells + 1 overhang, 1 row


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["conv2d", "--input", 17], ["limit is 16"]),
        (["conv_transpose2d", "--input", 16, "--stride", 2], ["frames", "limit is 400"]),
        (["conv2d", "--input", 10, "--cell", 200], ["1500 pixels"]),
        (["conv2d", "--input", 3, "--kernel", 5], ["spans 5 cells", "padding of at least 1"]),
        (["conv2d", "--input", 5, "--stride", 2, "--padding", "same"], ["strided"]),
        (["max_pool2d", "--input", 5, "--kernel", 3, "--padding", 2], ["half of"]),
        (["conv_transpose2d", "--input", 3, "--stride", 2, "--output-padding", 2],
         ["output padding must be smaller"]),
        (["conv_transpose2d", "--input", 3, "--stride", 2, "--padding", 1, "--output-size", 7],
         ["valid sizes range from 5 to 6"]),
        (["conv_transpose1d", "--input", 3, "--padding", 5], ["padding of at most 2"]),
        (["conv2d", "--input", 5, "--ceil-mode"], ["--ceil-mode applies to pooling"]),
        (["avg_pool2d", "--input", 5, "--dilation", 2], ["no dilation"]),
        (["conv2d", "--input", 5, 5, 5], ["1 or 2 values"]),
        (["conv2d", "--input", 0], ["must be positive"]),
        (["conv2d", "--input", 5, "--padding", "half"], ["'same' or 'valid'"]),
        (["conv2d", "--input", 5, "--out", "/nonexistent-dir/x.gif"], ["cannot write"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_status_2(args, fragments):
    assert_clean_error(convlab("animate", *args), *fragments)
