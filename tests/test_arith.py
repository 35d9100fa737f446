"""convlab.arith: the convolution matrix, the layer rules and formulas, solving back, explain.

The matrix C is checked against the real ops (``convlab.nn.functional``) over random
configurations and against the slow loops of ``kernels/reference.py``; every size printed or
solved for is checked against ``convlab.shapes`` and the real op (and PyTorch when installed);
the worked example's sums and matrices are read back from its text and compared with the ops.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
import warnings

import numpy as np
import pytest

import convlab as cl
import convlab.nn.functional as F
from convlab import shapes
from convlab.arith import (
    ArithError,
    ceil_mode_note,
    conv_matrix,
    formula,
    layer,
    solve,
    transpose_output_padding,
    transpose_sizes,
)
from convlab.arith.explain import LIMITS, worked_example
from convlab.kernels import reference as R

# ---------------------------------------------------------------------------------------------
# conv_matrix
# ---------------------------------------------------------------------------------------------


def _conv_fn(n):
    return {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]


def _conv_transpose_fn(n):
    return {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[n]


def _matrix_configs(count: int, seed: int) -> list[dict]:
    """Random valid convolutions: 1/2/3-d, stride, padding (int, tuple, 'same', 'valid'),
    dilation and groups."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        n = int(rng.integers(1, 4))
        groups = int(rng.choice([1, 1, 2, 3]))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kernel = tuple(int(k) for k in rng.integers(1, {1: 5, 2: 4, 3: 3}[n] + 1, n))
        spatial = tuple(int(s) for s in rng.integers(1, {1: 11, 2: 7, 3: 5}[n] + 1, n))
        stride = tuple(int(s) for s in rng.integers(1, 4, n))
        dilation = tuple(int(d) for d in rng.integers(1, 3, n))
        kind = rng.choice(["int", "tuple", "same", "valid"], p=[0.35, 0.35, 0.2, 0.1])
        if kind == "same":
            stride, padding = (1,) * n, "same"
            pads = [shapes.same_padding(k, d) for k, d in zip(kernel, dilation)]
        elif kind == "valid":
            padding, pads = "valid", [(0, 0)] * n
        else:
            values = tuple(int(p) for p in rng.integers(0, 3, n))
            padding = values[0] if kind == "int" else values
            pads = [(p, p) for p in (values[:1] * n if kind == "int" else values)]
        out = shapes.conv_output_shape(spatial, kernel, stride, pads, dilation)
        if min(out) < 1:
            continue
        configs.append(
            dict(
                n=n,
                c_in=c_in,
                c_out=c_out,
                groups=groups,
                kernel=kernel,
                spatial=spatial,
                stride=stride,
                padding=padding,
                dilation=dilation,
                seed=int(rng.integers(1 << 30)),
            )
        )
    return configs


MATRIX_CONFIGS = _matrix_configs(60, seed=2024)


def _case(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["c_in"], *cfg["spatial"]))
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"]))
    args = dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
    )
    return x, w, args


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("cfg", MATRIX_CONFIGS, ids=lambda c: f"{c['n']}d-{c['padding']}")
def test_conv_matrix_is_the_convolution_and_its_transpose(cfg):
    x, w, args = _case(cfg)
    c = conv_matrix(x.shape, w, **args)
    y = _conv_fn(cfg["n"])(x, w, **args).numpy()
    assert c.shape == (y.size, x.size)
    np.testing.assert_allclose(c @ x.ravel(), y.ravel(), rtol=1e-10, atol=1e-10)
    if isinstance(cfg["padding"], str) and cfg["padding"] == "same":
        lo_hi = [shapes.same_padding(k, d) for k, d in zip(cfg["kernel"], cfg["dilation"])]
        if any(lo != hi for lo, hi in lo_hi):
            return  # conv_transpose has no asymmetric padding: C^T has no op to match
        padding = tuple(lo for lo, _ in lo_hi)
    else:
        padding = 0 if cfg["padding"] == "valid" else cfg["padding"]
    op = transpose_output_padding(
        cfg["spatial"], cfg["kernel"], cfg["stride"], padding, cfg["dilation"]
    )
    back = _conv_transpose_fn(cfg["n"])(
        y,
        w,
        stride=cfg["stride"],
        padding=padding,
        output_padding=op,
        groups=cfg["groups"],
        dilation=cfg["dilation"],
    ).numpy()
    assert back.shape == x.shape
    np.testing.assert_allclose(c.T @ y.ravel(), back.ravel(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "cfg", [c for c in MATRIX_CONFIGS if not isinstance(c["padding"], str)][:10], ids=str
)
def test_conv_matrix_against_the_reference_loops(cfg):
    x, w, args = _case(cfg)
    c = conv_matrix(x.shape, w, **args)
    n = cfg["n"]
    pads = shapes.ntuple(cfg["padding"], n, "padding")
    y = R.conv(
        x[None], w, None, cfg["stride"], tuple((p, p) for p in pads), cfg["dilation"], cfg["groups"]
    )[0]
    np.testing.assert_allclose(c @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)
    op = transpose_output_padding(
        cfg["spatial"], cfg["kernel"], cfg["stride"], pads, cfg["dilation"]
    )
    back = R.conv_transpose(
        y[None], w, None, cfg["stride"], pads, op, cfg["dilation"], cfg["groups"]
    )[0]
    np.testing.assert_allclose(c.T @ y.ravel(), back.ravel(), rtol=1e-12, atol=1e-12)


def test_conv_matrix_paper_example_and_integer_weights():
    # Dumoulin & Visin §4.1: a 3 x 3 kernel on a 4 x 4 input is a 4 x 16 matrix.
    w = np.arange(1, 10).reshape(1, 1, 3, 3)
    c = conv_matrix((1, 4, 4), w)
    assert c.shape == (4, 16) and c.dtype == w.dtype
    expected_first_row = [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0]
    assert c[0].tolist() == expected_first_row
    assert c[3].tolist() == [0] * 5 + [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9]
    # A Tensor weight gives the same matrix.
    np.testing.assert_array_equal(conv_matrix((1, 4, 4), cl.tensor(w * 1.0)), c)


def test_conv_matrix_sparse_equals_dense():
    pytest.importorskip("scipy", reason="SciPy not installed: pip install 'convlab[sparse]'")
    import scipy.sparse

    for cfg in MATRIX_CONFIGS[:8]:
        x, w, args = _case(cfg)
        dense = conv_matrix(x.shape, w, **args)
        sparse = conv_matrix(x.shape, w, sparse=True, **args)
        assert scipy.sparse.issparse(sparse)
        np.testing.assert_array_equal(sparse.toarray(), dense)
        np.testing.assert_allclose(sparse @ x.ravel(), dense @ x.ravel(), rtol=1e-12)


def test_conv_matrix_sparse_without_scipy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(ImportError, match=r"convlab\[sparse\]"):
        conv_matrix((1, 4, 4), np.ones((1, 1, 3, 3)), sparse=True)


@pytest.mark.parametrize(
    "input_shape,weight_shape,kwargs,match",
    [
        ((4, 4), (1, 1, 3, 3), {}, "input_shape must be \\(C_in, \\*spatial\\)"),
        ((2, 4, 4), (1, 1, 3, 3), {}, "input channels"),
        ((2, 4, 4), (3, 1, 3, 3), dict(groups=2), "divisible"),
        ((1, 2, 2), (1, 1, 3, 3), {}, "does not fit"),
        ((1, 5, 5), (1, 1, 3, 3), dict(stride=2, padding="same"), "strided"),
        ((1, 5, 5), (1, 1, 3, 3), dict(padding="full"), "Invalid padding string"),
        ((1, 5, 5), (1, 1, 3, 3), dict(stride=0), "stride"),
        ((1, 5, 5), (1, 1, 3, 3), dict(groups=0), "groups"),
        ((1, 300, 300), (1, 1, 1, 1), dict(), "sparse=True"),
    ],
)
def test_conv_matrix_bad_arguments(input_shape, weight_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_matrix(input_shape, np.ones(weight_shape), **kwargs)


@pytest.mark.parametrize(
    "size,kernel,stride,padding,dilation",
    list(itertools.product([3, 5, 6, 9], [1, 2, 3], [1, 2, 3], [0, 1], [1, 2])),
)
def test_transpose_output_padding_gives_the_input_size_back(
    size, kernel, stride, padding, dilation
):
    out = shapes.conv_output_size(size, kernel, stride, padding, dilation)
    if out < 1:
        return
    (op,) = transpose_output_padding((size,), (kernel,), stride, padding, dilation)
    assert 0 <= op < stride
    assert shapes.conv_transpose_output_size(out, kernel, stride, padding, dilation, op) == size


# ---------------------------------------------------------------------------------------------
# layer(): the rules agree with the real ops; formulas evaluate to shapes' numbers
# ---------------------------------------------------------------------------------------------


def _layer_cases(count: int, seed: int) -> list[dict]:
    """Random arguments for every op, valid or not, from small ranges."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        family = str(rng.choice(["conv", "transpose", "max_pool", "avg_pool"]))
        n = int(rng.integers(1, 4))
        op = {
            "conv": f"conv{n}d",
            "transpose": f"conv_transpose{n}d",
            "max_pool": f"max_pool{n}d",
            "avg_pool": f"avg_pool{n}d",
        }[family]
        case = dict(
            op=op,
            family=family,
            n=n,
            input=tuple(int(v) for v in rng.integers(1, 9, n)),
            kernel=tuple(int(v) for v in rng.integers(1, 6, n)),
            stride=None if rng.random() < 0.3 else tuple(int(v) for v in rng.integers(1, 4, n)),
            padding=tuple(int(v) for v in rng.integers(0, 4, n)),
            dilation=None,
            output_padding=0,
            ceil_mode=False,
        )
        if family != "avg_pool" and rng.random() < 0.5:
            case["dilation"] = tuple(int(v) for v in rng.integers(1, 4, n))
        if family == "conv" and rng.random() < 0.2:
            case["padding"] = str(rng.choice(["same", "valid"]))
        if family == "transpose":
            case["output_padding"] = tuple(int(v) for v in rng.integers(0, 3, n))
        if family.endswith("pool"):
            case["ceil_mode"] = bool(rng.random() < 0.5)
        cases.append(case)
    return cases


LAYER_CASES = _layer_cases(300, seed=7)


def _run_real_op(case):
    """The real op's output spatial shape, or the exception it raises."""
    n, family = case["n"], case["family"]
    x = np.zeros((1, 1, *case["input"]))
    w = np.zeros((1, 1, *case["kernel"]))
    stride = case["stride"]
    dilation = 1 if case["dilation"] is None else case["dilation"]
    if family == "conv":
        return _conv_fn(n)(x, w, stride=stride or 1, padding=case["padding"], dilation=dilation)
    if family == "transpose":
        return _conv_transpose_fn(n)(
            x,
            w,
            stride=stride or 1,
            padding=case["padding"],
            output_padding=case["output_padding"],
            dilation=dilation,
        )
    if family == "max_pool":
        fn = getattr(F, f"max_pool{n}d")
        return fn(x, case["kernel"], stride, case["padding"], dilation, case["ceil_mode"])
    fn = getattr(F, f"avg_pool{n}d")
    return fn(x, case["kernel"], stride, case["padding"], case["ceil_mode"])


def _layer(case):
    return layer(
        case["op"],
        case["input"],
        case["kernel"],
        case["stride"],
        case["padding"],
        case["dilation"],
        case["output_padding"],
        case["ceil_mode"],
    )


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_layer_rules_and_sizes_agree_with_the_real_ops():
    valid = invalid = 0
    for case in LAYER_CASES:
        try:
            spec = _layer(case)
        except ArithError as error:
            invalid += 1
            assert str(error).endswith("."), error  # one sentence
            with pytest.raises((RuntimeError, ValueError)):
                _run_real_op(case)
            continue
        valid += 1
        assert _run_real_op(case).shape[2:] == spec.output, case
    assert valid > 100 and invalid > 50  # both sides of every rule are exercised


def _run_torch(torch, case):
    tF = torch.nn.functional
    n, family = case["n"], case["family"]
    x = torch.zeros((1, 1, *case["input"]), dtype=torch.float64)
    w = torch.zeros((1, 1, *case["kernel"]), dtype=torch.float64)
    stride, dilation = case["stride"], 1 if case["dilation"] is None else case["dilation"]
    if family == "conv":
        fn = getattr(tF, f"conv{n}d")
        return fn(x, w, stride=stride or 1, padding=case["padding"], dilation=dilation)
    if family == "transpose":
        fn = getattr(tF, f"conv_transpose{n}d")
        return fn(
            x,
            w,
            stride=stride or 1,
            padding=case["padding"],
            output_padding=case["output_padding"],
            dilation=dilation,
        )
    if family == "max_pool":
        fn = getattr(tF, f"max_pool{n}d")
        return fn(x, case["kernel"], stride, case["padding"], dilation, case["ceil_mode"])
    fn = getattr(tF, f"avg_pool{n}d")
    return fn(x, case["kernel"], stride, case["padding"], case["ceil_mode"])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_layer_rules_and_sizes_agree_with_pytorch(torch):
    for case in LAYER_CASES:
        try:
            spec = _layer(case)
        except ArithError:
            with pytest.raises((RuntimeError, ValueError)):
                _run_torch(torch, case)
            continue
        assert tuple(_run_torch(torch, case).shape[2:]) == spec.output, case


def _evaluate(expression: str) -> int:
    """Evaluate one printed side of a formula: integers, + - * /, floor() and ceil()."""
    assert re.fullmatch(r"[0-9+\-*/() a-z]*", expression), expression
    return eval(expression, {"__builtins__": {}}, {"floor": math.floor, "ceil": math.ceil})


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_formulas_evaluate_to_the_output_size():
    checked = 0
    for case in LAYER_CASES:
        try:
            spec = _layer(case)
        except ArithError:
            continue
        for i in range(spec.n):
            text = formula(spec, i)
            main, dropped, _ = text.partition(" (last window dropped)")
            values = [_evaluate(side) for side in main.split(" = ")]
            if dropped:  # ceil mode's rule: raw count, raw count - 1, the result
                assert values[-2:] == [values[0] - 1] * 2, text
                values = values[:-2]
            assert len(set(values)) == 1, text  # every step of the substitution agrees
            final = int(main.rsplit("= ", 1)[1])
            assert final == spec.output[i]
            checked += 1
    assert checked > 200


@pytest.mark.parametrize(
    "size,kernel,stride,padding,expected,changes",
    [
        (5, 2, 2, 1, 3, False),  # the drop rule: the 4th window would start in the right pad
        (6, 1, 2, 0, 3, False),  # pytorch#45357
        (32, 1, 2, 0, 16, False),  # pytorch#57178
        (6, 3, 2, 0, 3, True),  # a real partial window: floor gives 2
        (7, 3, 2, 0, 3, None),  # ends exactly at the edge: ceil changes nothing
    ],
)
def test_ceil_mode_note(size, kernel, stride, padding, expected, changes):
    spec = layer("max_pool1d", size, kernel, stride, padding, ceil_mode=True)
    assert spec.output == (expected,)
    note = ceil_mode_note(spec, 0)
    if changes is None:
        assert note is None
    elif changes:
        assert "adds a last window" in note and f"floor mode gives {expected - 1}" in note
    else:
        assert "right padding" in note and "drops" in note


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "kernel,stride,padding,dilation", [(3, 2, 1, 1), (4, 3, 1, 1), (3, 1, 0, 2), (2, 2, 0, 1)]
)
def test_transpose_sizes_each_go_back_to_the_input(size, kernel, stride, padding, dilation):
    spec = layer("conv_transpose1d", size, kernel, stride, padding, dilation)
    (choices,) = transpose_sizes(spec)
    assert [op for _, op in choices] == list(range(len(choices)))
    for out, op in choices:
        assert shapes.conv_transpose_output_size(size, kernel, stride, padding, dilation, op) == out
        assert shapes.conv_output_size(out, kernel, stride, padding, dilation) == size
        assert (
            F.conv_transpose1d(
                np.zeros((1, 1, size)),
                np.zeros((1, 1, kernel)),
                stride=stride,
                padding=padding,
                output_padding=op,
                dilation=dilation,
            ).shape[-1]
            == out
        )


# ---------------------------------------------------------------------------------------------
# solve(): every choice re-verified, none missed, impossible wants explained
# ---------------------------------------------------------------------------------------------


def _brute_force(family, size, kernel, dilation, ceil_mode, want, strides, paddings):
    """All (stride, padding, output_padding) in the ranges that the real op accepts and that give
    ``want``, by running the op itself."""
    found = set()
    for s, p in itertools.product(strides, paddings):
        for op in range(max(s, dilation)) if family == "transpose" else (0,):
            x, w = np.zeros((1, 1, size)), np.zeros((1, 1, kernel))
            try:
                if family == "conv":
                    y = F.conv1d(x, w, stride=s, padding=p, dilation=dilation)
                elif family == "transpose":
                    y = F.conv_transpose1d(
                        x, w, stride=s, padding=p, output_padding=op, dilation=dilation
                    )
                elif family == "max_pool":
                    y = F.max_pool1d(x, kernel, s, p, dilation, ceil_mode)
                else:
                    y = F.avg_pool1d(x, kernel, s, p, ceil_mode)
            except (RuntimeError, ValueError):
                continue
            if y.shape[-1] == want:
                found.add((s, p, op))
    return found


def _solve_cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        family = str(rng.choice(["conv", "transpose", "max_pool", "avg_pool"]))
        size = int(rng.integers(1, 20))
        kernel = int(rng.integers(1, 6))
        dilation = 1 if family == "avg_pool" else int(rng.choice([1, 1, 2, 3]))
        ceil_mode = family.endswith("pool") and bool(rng.random() < 0.5)
        want = int(rng.integers(1, 25))
        cases.append((family, size, kernel, dilation, ceil_mode, want))
    return cases


@pytest.mark.parametrize("family,size,kernel,dilation,ceil_mode,want", _solve_cases(80, seed=5))
def test_solve_finds_exactly_the_working_choices(family, size, kernel, dilation, ceil_mode, want):
    op = {"conv": "conv1d", "transpose": "conv_transpose1d", "max_pool": "max_pool1d"}.get(
        family, "avg_pool1d"
    )
    extent = shapes.effective_kernel(kernel, dilation)
    strides = range(1, max(4, extent) + 1)
    paddings = range(0, (kernel // 2 if family.endswith("pool") else extent - 1) + 1)
    expected = _brute_force(family, size, kernel, dilation, ceil_mode, want, strides, paddings)
    spec = layer(
        op,
        size,
        kernel,
        None,
        0,
        None if family == "avg_pool" else dilation,
        ceil_mode=ceil_mode,
        check=False,
    )
    try:
        (solution,) = solve(spec, want)
    except ArithError as error:
        assert not expected
        assert f"into {want}" in str(error)
        return
    got = {(c.stride, c.padding, c.output_padding) for c in solution.choices}
    assert got == expected
    for c in solution.choices:  # re-verified through shapes, independently of solve()
        if family == "conv":
            out = shapes.conv_output_size(size, kernel, c.stride, c.padding, dilation)
        elif family == "transpose":
            out = shapes.conv_transpose_output_size(
                size, kernel, c.stride, c.padding, dilation, c.output_padding
            )
        else:
            out = shapes.pool_output_size(size, kernel, c.stride, c.padding, dilation, ceil_mode)
        assert out == want


def test_solve_keeps_the_given_parameters_and_explains_impossible_wants():
    spec = layer("conv2d", (28, 28), 5, stride=2)
    (h, w) = solve(spec, 14, fixed=["stride"])
    assert {(c.stride, c.padding) for c in h.choices} == {(2, 2)}
    spec = layer("conv2d", 28, 5)
    with pytest.raises(ArithError, match=r"nearest size it reaches is 32 \(stride 1, padding 4\)"):
        solve(spec, 100)
    spec = layer("conv_transpose2d", 3, 3, stride=2, padding=1)
    (h, _) = solve(spec, 6, fixed=["stride", "padding"])
    assert [(c.stride, c.padding, c.output_padding) for c in h.choices] == [(2, 1, 1)]
    with pytest.raises(ArithError, match="leave out stride or padding"):
        solve(spec, 8, fixed=["stride", "padding"])


# ---------------------------------------------------------------------------------------------
# worked_example(): the text agrees with the ops
# ---------------------------------------------------------------------------------------------


EXAMPLES = [
    # (input shape, kernel shape, stride, padding, dilation)
    ((4, 4), (3, 3), 1, 0, 1),
    ((5, 5), (3, 3), 2, 1, 1),
    ((6, 6), (3, 3), 2, 1, 1),
    ((5, 6), (2, 3), (1, 2), (1, 0), 1),
    ((7, 7), (3, 3), 1, 0, 2),
    ((9,), (3,), 2, 1, 1),
    ((10,), (4,), 3, 2, 2),
]


def _ints_after(label: str, text: str) -> list[int]:
    return [int(v) for v in re.findall(rf"{re.escape(label)} (-?\d+)", text)]


def _cells(tokens: list[str]) -> list[int]:
    return [0 if t == "." else int(t) for t in tokens if t not in ("*", "=")]


def _parse_steps(text: str, n: int, k_shape) -> list:
    """(index, window, kernel, products, sum) of every step, read back from the text."""
    lines = text.splitlines()
    steps = []
    for i, line in enumerate(lines):
        match = re.match(r"\s+y\[([\d,]+)\]: (rows|positions)", line)
        if not match:
            continue
        index = tuple(int(v) for v in match.group(1).split(","))
        if n == 1:
            body, total = line.split(":", 2)[2].split("sum =")
            rows = [_cells(body.split())]
        else:
            rows = [_cells(lines[i + 2 + r].split()) for r in range(k_shape[0])]
            total = lines[i + 2 + k_shape[0]].split("sum =")[1]
        grid = np.array(rows)
        k = k_shape[-1]
        parts = [grid[:, j * k : (j + 1) * k].reshape(k_shape) for j in range(3)]
        steps.append((index, *parts, int(total)))
    return steps


def _grid_after(header_prefix: str, text: str, rows: int) -> np.ndarray:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_prefix))
    while not re.fullmatch(r"[\s\d-]+", lines[start]):  # the header may wrap
        start += 1
    return np.array([[int(v) for v in lines[start + r].split()] for r in range(rows)])


@pytest.mark.parametrize("in_shape,k_shape,stride,padding,dilation", EXAMPLES)
def test_worked_example_sums_matrix_and_transpose_agree_with_the_ops(
    in_shape, k_shape, stride, padding, dilation
):
    rng = np.random.default_rng(len(in_shape) * 100 + sum(in_shape))
    x = rng.integers(-3, 4, in_shape)
    w = rng.integers(-2, 3, k_shape)
    text = worked_example(x, w, stride, padding, dilation, transpose=True)
    n = x.ndim
    args = dict(stride=stride, padding=padding, dilation=dilation)
    y = _conv_fn(n)(x[None, None] * 1.0, w[None, None] * 1.0, **args).numpy()[0, 0]
    # Every window's printed sum, in row-major order, is the op's output.
    assert _ints_after("sum =", text) == y.ravel().astype(int).tolist()
    # Each printed window is the padded input under the kernel's taps, times the printed kernel
    # gives the printed products, which add up to the printed sum.
    xp = np.pad(x, [(p, p) for p in shapes.ntuple(padding, n, "padding")])
    steps = _parse_steps(text, n, w.shape)
    assert [s[0] for s in steps] == list(itertools.product(*map(range, y.shape)))
    st, dl = shapes.ntuple(stride, n, "stride"), shapes.ntuple(dilation, n, "dilation")
    for index, window, kernel, products, total in steps:
        taps = [i * s + np.arange(k) * d for i, s, k, d in zip(index, st, w.shape, dl)]
        np.testing.assert_array_equal(window, xp[np.ix_(*taps)])
        np.testing.assert_array_equal(kernel, w)
        np.testing.assert_array_equal(products, window * kernel)
        assert products.sum() == total
    c = conv_matrix((1, *x.shape), w[None, None], **args)
    if max(c.shape) <= LIMITS["matrix"]:
        rows = [line for line in text.splitlines() if re.match(r"\s+y\[[\d,]+\]\s", line)]
        printed = np.array(
            [[0 if v == "." else int(v) for v in row.split()[1:] if v != "|"] for row in rows]
        )
        np.testing.assert_array_equal(printed, c)
    else:
        assert "C is too large to print here (limit" in text
    op = transpose_output_padding(x.shape, w.shape, stride, padding, dilation)
    back = _conv_transpose_fn(n)(
        y[None, None], w[None, None] * 1.0, output_padding=op, **args
    ).numpy()[0, 0]
    printed_back = _grid_after("C^T is", text, x.shape[0] if n == 2 else 1).reshape(x.shape)
    np.testing.assert_array_equal(printed_back, back.astype(int))
    assert "gives the same: yes" in text and "NO" not in text


def test_worked_example_five_and_six_with_output_padding():
    x = np.arange(25).reshape(5, 5) % 4
    w = np.arange(1, 10).reshape(3, 3)
    text = worked_example(x, w, 2, 1, 1, transpose=True)
    assert "height 5 or 6; width 5 or 6" in text.replace("\n  ", " ")
    assert "5 x 5 (this example): C is 9 x 25" in text
    assert "6 x 6: C is 9 x 36; C^T y = conv_transpose2d(y, ..., output_padding=1): yes" in text
    # The 6 x 6 picture is the transposed convolution with output_padding=1, and its first five
    # rows and columns are the 5 x 5 one: output_padding only adds elements at the end.
    y = F.conv2d(x[None, None] * 1.0, w[None, None] * 1.0, stride=2, padding=1).numpy()
    six = F.conv_transpose2d(y, w[None, None] * 1.0, stride=2, padding=1, output_padding=1)
    printed_six = _grid_after("conv_transpose2d(y, w, ..., output_padding=1) gives 6 x 6", text, 6)
    np.testing.assert_array_equal(printed_six, six.numpy()[0, 0].astype(int))
    five = _grid_after("C^T is", text, 5)
    np.testing.assert_array_equal(printed_six[:5, :5], five)


@pytest.mark.parametrize(
    "x_shape,w_shape,kwargs,match",
    [
        ((9, 9), (3, 3), {}, "inputs up to 8 per side in 2-d"),
        ((17,), (3,), {}, "inputs up to 16 per side in 1-d"),
        ((4, 4), (6, 6), {}, "kernels up to 5 per side"),
        ((4, 4, 4), (3, 3, 3), {}, "1-d and 2-d examples"),
        ((8, 8), (3, 3), dict(padding=3), "padded inputs up to 12"),
        ((8, 8), (1, 1), {}, "takes up to 36 in 2-d"),
        ((3, 3), (5, 5), {}, "padded input is only 3 long"),
    ],
)
def test_worked_example_refuses_with_the_limit_named(x_shape, w_shape, kwargs, match):
    with pytest.raises(ArithError, match=match):
        worked_example(np.ones(x_shape, int), np.ones(w_shape, int), **kwargs)


def test_worked_example_refuses_non_integers_and_large_values():
    with pytest.raises(ArithError, match="must be integers"):
        worked_example(np.ones((3, 3)), np.ones((2, 2), int))
    with pytest.raises(ArithError, match="-99..99"):
        worked_example(np.full((3, 3), 100), np.ones((2, 2), int))


def test_no_warning_or_print_from_library_calls(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conv_matrix((1, 5), np.ones((1, 1, 2)))
        worked_example(np.ones(5, int), np.ones(2, int))
    assert capsys.readouterr().out == ""
