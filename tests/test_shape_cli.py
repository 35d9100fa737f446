"""``convlab shape`` and ``convlab explain`` end to end.

Many random parameter sets run in-process through the command's ``main`` (fast); the sizes
printed are checked against ``convlab.shapes`` and the real op's output shape, and every choice
printed by ``--want`` is re-run through the op. The documented examples and every bad input run
as subprocesses, as a user would: bad input means exit status 2, one line, no traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import convlab.nn.functional as F
from convlab import shapes
from convlab.cli.main import main

CONVLAB = [sys.executable, "-m", "convlab.cli.main"]


def convlab(*args):
    return subprocess.run([*CONVLAB, *map(str, args)], capture_output=True, text=True, timeout=60)


def assert_clean_error(result, *fragments):
    """Exit status 2, one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _family(op: str) -> str:
    for family in ("conv_transpose", "max_pool", "avg_pool", "conv"):
        if op.startswith(family):
            return family


def _real_output(
    op, size, kernel, stride=None, padding=0, dilation=1, output_padding=0, ceil=False
):
    """The real op's output spatial shape on zeros of the given size."""
    n = len(size)
    x, w = np.zeros((1, 1, *size)), np.zeros((1, 1, *kernel))
    family = _family(op)
    if family == "conv":
        y = getattr(F, op)(x, w, stride=stride or 1, padding=padding, dilation=dilation)
    elif family == "conv_transpose":
        y = getattr(F, op)(
            x,
            w,
            stride=stride or 1,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
        )
    elif family == "max_pool":
        y = getattr(F, op)(x, kernel, stride, padding, dilation, ceil)
    else:
        y = getattr(F, op)(x, kernel, stride, padding, ceil)
    return tuple(y.shape[2 : 2 + n])


def _random_argv(rng):
    op = str(
        rng.choice(
            [
                f"{f}{n}d"
                for f in ("conv", "conv_transpose", "max_pool", "avg_pool")
                for n in (1, 2, 3)
            ]
        )
    )
    n = int(op[-2])
    family = _family(op)
    kw = dict(
        size=tuple(int(v) for v in rng.integers(1, 10, n)),
        kernel=tuple(int(v) for v in rng.integers(1, 6, n)),
        stride=None,
        padding=0,
        dilation=1,
        output_padding=0,
        ceil=False,
    )
    argv = ["shape", op, "--input", *kw["size"], "--kernel", *kw["kernel"]]
    if rng.random() < 0.7:
        kw["stride"] = tuple(int(v) for v in rng.integers(1, 4, n))
        argv += ["--stride", *kw["stride"]]
    if family == "conv" and rng.random() < 0.2:
        kw["padding"] = str(rng.choice(["same", "valid"]))
        argv += ["--padding", kw["padding"]]
    elif rng.random() < 0.7:
        kw["padding"] = tuple(int(v) for v in rng.integers(0, 3, n))
        argv += ["--padding", *kw["padding"]]
    if family != "avg_pool" and rng.random() < 0.4:
        kw["dilation"] = tuple(int(v) for v in rng.integers(1, 3, n))
        argv += ["--dilation", *kw["dilation"]]
    if family == "conv_transpose" and rng.random() < 0.5:
        kw["output_padding"] = tuple(int(v) for v in rng.integers(0, 3, n))
        argv += ["--output-padding", *kw["output_padding"]]
    if family.endswith("pool") and rng.random() < 0.5:
        kw["ceil"] = True
        argv.append("--ceil-mode")
    return op, kw, [str(a) for a in argv]


def _shapes_output(op, kw):
    n = len(kw["size"])
    family = _family(op)
    pool = family.endswith("pool")
    stride = shapes.ntuple(kw["stride"] or (kw["kernel"] if pool else 1), n, "stride")
    dilation = shapes.ntuple(kw["dilation"], n, "dilation")
    if kw["padding"] == "same":
        pads = [shapes.same_padding(k, d) for k, d in zip(kw["kernel"], dilation)]
    else:
        pads = shapes.ntuple(0 if kw["padding"] == "valid" else kw["padding"], n, "padding")
    if family == "conv":
        return shapes.conv_output_shape(kw["size"], kw["kernel"], stride, pads, dilation)
    if family == "conv_transpose":
        op_ = shapes.ntuple(kw["output_padding"], n, "output_padding")
        return shapes.conv_transpose_output_shape(
            kw["size"], kw["kernel"], stride, pads, dilation, op_
        )
    return shapes.pool_output_shape(kw["size"], kw["kernel"], stride, pads, dilation, kw["ceil"])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_printed_sizes_equal_shapes_and_the_real_op(capsys):
    rng = np.random.default_rng(99)
    printed = refused = formulas = dims = transposed = 0
    for _ in range(250):
        op, kw, argv = _random_argv(rng)
        code = main(argv)
        out, err = capsys.readouterr()
        try:
            real = _real_output(op, **kw)
        except (RuntimeError, ValueError):
            real = None
        if code == 2:
            refused += 1
            assert real is None, (argv, err)
            assert len(err.strip().splitlines()) == 1 and out == ""
            continue
        assert code == 0, argv
        printed += 1
        dims += len(kw["size"])
        match = re.search(r"-> output ([\d x]+)", out)
        got = tuple(int(v) for v in match.group(1).split(" x "))
        assert got == real == _shapes_output(op, kw), argv
        # Every per-dimension formula line ends in that dimension's size.
        names = {1: ["length"], 2: ["height", "width"], 3: ["depth", "height", "width"]}[len(got)]
        for line in out.splitlines()[1:]:
            m = re.match(
                r"\s+([a-z, ]+):\s+((?:floor|ceil|\().*) = (-?\d+)(?: \(last window dropped\))?$",
                line,
            )
            if m:
                for name in m.group(1).split(", "):
                    assert int(m.group(3)) == got[names.index(name)], line
                    formulas += 1
        # A transposed convolution's valid sizes each come from an output_padding the op accepts.
        if _family(op) == "conv_transpose":
            for line in out.splitlines():
                m = re.match(r"\s+([a-z, ]+):\s+(\d+ \(output_padding \d+\).*)$", line)
                if not m:
                    continue
                for size, op_ in re.findall(r"(\d+) \(output_padding (\d+)\)", m.group(2)):
                    for name in m.group(1).split(", "):
                        i = names.index(name)
                        one = dict(kw, size=(kw["size"][i],), kernel=(kw["kernel"][i],))
                        for key in ("stride", "padding", "dilation"):
                            if isinstance(kw[key], tuple):
                                one[key] = (kw[key][i],)
                        one["output_padding"] = (int(op_),)
                        assert _real_output("conv_transpose1d", **one) == (int(size),)
                        transposed += 1
    assert printed > 80 and refused > 30
    assert formulas == dims  # every dimension's formula line was found and checked
    assert transposed > 40


def _check_choice(op, size, kernel, dilation, ceil, want, stride, padding, output_padding):
    one = dict(size=(size,), kernel=(kernel,), stride=(stride,), padding=(padding,))
    one.update(dilation=(dilation,), output_padding=(output_padding,), ceil=ceil)
    assert _real_output(f"{_family(op)}1d", **one) == (want,)


def test_want_choices_each_give_the_wanted_size(capsys):
    rng = np.random.default_rng(3)
    solved = unsolved = 0
    for _ in range(120):
        family = str(rng.choice(["conv", "conv_transpose", "max_pool", "avg_pool"]))
        op = f"{family}2d"
        size, kernel = int(rng.integers(1, 30)), int(rng.integers(1, 6))
        dilation = 1 if family == "avg_pool" else int(rng.choice([1, 2]))
        ceil = family.endswith("pool") and bool(rng.random() < 0.5)
        want = int(rng.integers(1, 40))
        argv = ["shape", op, "--input", size, "--kernel", kernel, "--want", want]
        if family != "avg_pool":
            argv += ["--dilation", dilation]
        argv += ["--ceil-mode"] if ceil else []
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        if code == 2:
            unsolved += 1
            assert f"into {want}" in err and "nearest" in err or "nor any other size" in err
            continue
        assert code == 0
        choices = re.findall(
            r"stride (\d+), padding (\d+)(?:, output_padding (\d+))?: .* = (\d+)$", out, re.M
        )
        assert choices
        for stride, padding, output_padding, result in choices:
            assert int(result) == want
            _check_choice(
                op,
                size,
                kernel,
                dilation,
                ceil,
                want,
                int(stride),
                int(padding),
                int(output_padding or 0),
            )
        solved += 1
    assert solved > 20 and unsolved > 10


def test_documented_examples():
    result = convlab("shape", "conv2d", "--input", 28, 28, "--kernel", 5, "--padding", 2)
    assert result.returncode == 0, result.stderr
    assert "conv2d: input 28 x 28 -> output 28 x 28" in result.stdout
    assert "floor((28 + 2*2 - 1*(5 - 1) - 1) / 1) + 1 = floor(27 / 1) + 1 = 28" in result.stdout

    result = convlab(
        "shape", "conv_transpose2d", "--input", 3, "--kernel", 3, "--stride", 2, "--padding", 1
    )
    assert result.returncode == 0, result.stderr
    assert "-> output 5 x 5" in result.stdout
    assert "5 (output_padding 0), 6 (output_padding 1)" in result.stdout

    result = convlab(
        "shape", "max_pool1d", "--input", 6, "--kernel", 1, "--stride", 2, "--ceil-mode"
    )
    assert result.returncode == 0, result.stderr
    assert "-> output 3" in result.stdout  # pytorch#45357: not 4
    assert "in the right padding" in " ".join(result.stdout.split())  # undo the wrapping

    result = convlab("shape", "conv2d", "--input", 28, "--kernel", 5, "--want", 14)
    assert result.returncode == 0, result.stderr
    assert "stride 2, padding 2:" in result.stdout

    for command in ("shape", "explain"):
        result = convlab(command, "--help")
        assert result.returncode == 0 and "examples:" in result.stdout


def test_explain_five_and_six_example_end_to_end():
    result = convlab(
        "explain", "--input", 5, 5, "--kernel", 3, "--stride", 2, "--padding", 1, "--transpose"
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    x = np.array([[int(v) for v in line.split()[:5]] for line in text.splitlines()[3:8]])
    w = np.arange(1, 10).reshape(3, 3)  # the default kernel
    y = F.conv2d(x[None, None] * 1.0, w[None, None] * 1.0, stride=2, padding=1).numpy()
    sums = [int(v) for v in re.findall(r"sum = (-?\d+)", text)]
    assert sums == y.ravel().astype(int).tolist()
    assert "C is 9 x 25" in text
    assert "6 x 6: C is 9 x 36; C^T y = conv_transpose2d(y, ..., output_padding=1): yes" in text
    assert "NO" not in text


BAD_SHAPE = [
    (["conv2d", "--input", 3, "--kernel", 5], "padded input is only 3", "padding 1 or more"),
    (["conv2d", "--input", 28, "--kernel", 5, "--want", 100], "into 100", "nearest"),
    (
        ["conv_transpose2d", "--input", 3, "--kernel", 3, "--stride", 2, "--output-padding", 2],
        "smaller than the stride (2) or the dilation (1)",
        "output_padding 0..1",
    ),
    (["max_pool2d", "--input", 8, "--kernel", 3, "--padding", 2], "half the kernel", "0..1"),
    (["avg_pool1d", "--input", 8, "--kernel", 4, "--padding", 3], "half the kernel", "0..2"),
    (["conv2d", "--input", 8, "--kernel", 3, "--stride", 2, "--padding", "same"], "stride 1", ""),
    (["conv2d", "--input", 8, 8, 8, "--kernel", 3], "1 or 2 values", "8 8 8"),
    (["avg_pool2d", "--input", 8, "--kernel", 2, "--dilation", 2], "no dilation", ""),
    (["conv2d", "--input", 8, "--kernel", 3, "--output-padding", 1], "transposed", ""),
    (["conv2d", "--input", 8, "--kernel", 3, "--ceil-mode"], "ceil_mode belongs", ""),
    (["conv_transpose1d", "--input", 4, "--kernel", 3, "--padding", "same"], "only for conv", ""),
    (["conv_transpose1d", "--input", 1, "--kernel", 1, "--padding", 1], "would be -1", "at most 0"),
    (["avg_pool3d", "--input", 2, 5, 5, "--kernel", 3, "--padding", 1], "depth is 2 < kern", ""),
    (
        ["max_pool1d", "--input", 1, "--kernel", 3, "--dilation", 3, "--stride", 8],
        "spans 7",
        "ceil",
    ),
    (["max_pool1d", "--input", 1, "--kernel", 3], "padded input is only 1", "use padding 1 or"),
    (["conv2d", "--input", 9, "--kernel", 3, "--want", 4, "--padding", "same"], "integer", ""),
    (["conv_transpose2d", "--input", 3, "--kernel", 3, "--want", 6, "--output-padding", 1], "", ""),
    (["conv2d", "--input", 9, "--kernel", 3, "--want", 40, "--stride", 2], "leave out stride", ""),
    (["conv2d", "--input", 9, "--kernel", 3, "--padding", 1, 2, "same"], "stands alone", ""),
    (["conv4d", "--input", 9, "--kernel", 3], "invalid choice", ""),
    (["conv2d", "--input", 0, "--kernel", 3], "positive integer", ""),
    (["conv2d", "--input", 9, "--kernel", 3, "--padding", -1], "'same' or 'valid'", ""),
    (["conv2d", "--kernel", 3], "required", "--input"),
]


@pytest.mark.parametrize("argv,fragment,fix", BAD_SHAPE, ids=lambda v: str(v)[:40])
def test_shape_bad_input_one_line_exit_2(argv, fragment, fix):
    assert_clean_error(convlab("shape", *argv), fragment, fix)


BAD_EXPLAIN = [
    (["--input", 9, 9], "inputs up to 8 per side"),
    (["--input", 3, 3, 3], "1-d and 2-d"),
    (["--input", 4, 4, "--kernel", 6], "kernels up to 5 per side"),
    (["--input", 4, 4, "--padding", 3], "up to 36 in 2-d"),
    (["--input", 3, "--kernel", 5], "padded input is only 3"),
    (["--input", 4, 4, "--input-values", 1, 2, 3], "needs 16"),
    (["--input", 2, "--input-values", 1, "x"], "expected integers"),
    (["--input", 2, "--input-values", 1, 300], "-99..99"),
    (["--input", 4, 4, "--stride", 1, 2, 3], "1 or 2 values"),
    (["--input", 5, "--stride", 2, "--padding", 1, "--kernel-values", 1, 2], "needs 3"),
]


@pytest.mark.parametrize("argv,fragment", BAD_EXPLAIN, ids=lambda v: str(v)[:40])
def test_explain_bad_input_one_line_exit_2(argv, fragment):
    assert_clean_error(convlab("explain", *argv), fragment)


def test_explain_user_values_with_negatives(capsys):
    code = main(
        [
            "explain",
            "--input",
            "5",
            "--kernel",
            "3",
            "--input-values",
            "1,2,-3",
            "4",
            "5",
            "--kernel-values",
            "-1",
            "0",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    x, w = np.array([1, 2, -3, 4, 5]), np.array([-1, 0, 1])
    y = F.conv1d(x[None, None] * 1.0, w[None, None] * 1.0).numpy().ravel().astype(int)
    assert [int(v) for v in re.findall(r"sum = (-?\d+)", out)] == y.tolist()
