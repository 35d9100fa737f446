"""The convolution algorithm selector: policies, the shape rule, benchmark mode.

Every algorithm reachable through ``convlab.kernels.conv`` is checked against the reference loops
(float64) when it is forced, so that whatever the selector picks is correct.
"""

import numpy as np
import pytest

import convlab as cl
from convlab.kernels import _jit, select
from convlab.kernels import conv as K
from convlab.kernels import reference as R


@pytest.fixture(autouse=True)
def _restore_policy():
    yield
    select.set_conv_algorithm("auto")


def test_policy_names_are_checked():
    with pytest.raises(ValueError, match=r"policy must be one of .*'benchmark'.* but got 'fast'"):
        cl.set_conv_algorithm("fast")
    assert cl.get_conv_algorithm() == "auto"


def test_context_manager_restores_the_previous_policy():
    with cl.conv_algorithm("gemm"):
        assert cl.get_conv_algorithm() == "gemm"
        with cl.conv_algorithm("benchmark"):
            assert cl.get_conv_algorithm() == "benchmark"
        assert cl.get_conv_algorithm() == "gemm"
    assert cl.get_conv_algorithm() == "auto"


def grid():
    # (x shape, weight shape, stride, padding, dilation, groups): each applicable to some
    # algorithm besides gemm (FFT: stride 1; direct: depthwise; Winograd: 3x3 stride 1 2-d).
    return [
        ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
        ((2, 3, 7, 10), (5, 3, 3, 3), (1, 1), ((0, 2), (1, 0)), (1, 1), 1),
        ((1, 4, 12, 11), (4, 2, 5, 4), (1, 1), ((2, 1), (0, 0)), (1, 2), 2),
        ((3, 4, 9, 9), (8, 1, 3, 3), (2, 1), ((1, 1), (1, 1)), (1, 1), 4),
        ((2, 6, 10, 8), (6, 1, 3, 3), (1, 1), ((1, 1), (0, 1)), (2, 1), 6),
        ((2, 3, 20), (4, 3, 9), (1,), ((4, 4),), (1,), 1),
        ((2, 3, 11, 10), (4, 3, 3, 3), (1, 1), ((2, 2), (2, 1)), (2, 2), 1),  # Winograd phases
        ((1, 2, 12, 9), (3, 2, 3, 3), (1, 1), ((0, 1), (3, 0)), (3, 2), 1),
        ((2, 2, 5, 6, 4), (3, 2, 3, 2, 3), (1, 1, 1), ((1, 1), (0, 1), (1, 0)), (1, 1, 1), 1),
    ]


@pytest.mark.parametrize("policy", select.ALGORITHMS + ("auto", "benchmark"))
@pytest.mark.parametrize("case", grid())
def test_every_policy_matches_the_reference(policy, case):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(11)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    args = (stride, padding, dilation, groups)
    y = R.conv(x, w, None, *args)
    g = rng.standard_normal(y.shape)
    with cl.conv_algorithm(policy):
        got = K.conv_forward(x, w, b, *args, {})
        grad_x = K.conv_backward_input(g, w, x.shape, *args)
        grad_w = K.conv_backward_weight(x, g, w.shape, *args)
    np.testing.assert_allclose(got, R.conv(x, w, b, *args), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, grad_x), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(w, grad_w), rtol=1e-10)


def test_benchmark_mode_remembers_one_algorithm_per_shape_and_pass():
    rng = np.random.default_rng(12)
    x = cl.tensor(rng.standard_normal((2, 3, 12, 12)), requires_grad=True)
    w = cl.tensor(rng.standard_normal((4, 3, 7, 7)), requires_grad=True)
    with cl.conv_algorithm("benchmark"):
        y = cl.nn.functional.conv2d(x, w, padding=3)
        y.sum().backward()
        measured = select.choices()
        assert sorted(key[0] for key in measured) == ["forward", "input", "weight"]
        assert set(measured.values()) <= {"gemm", "fft", "winograd"}
        # The same shapes again: nothing new is measured.
        cl.nn.functional.conv2d(x, w, padding=3).sum().backward()
        assert select.choices() == measured
    assert select.choices() == {}  # a policy change forgets the measurements


def test_depthwise_rule_without_numba(monkeypatch):
    monkeypatch.setattr(_jit, "numba_available", lambda: False)
    shape, weight = (8, 128, 56, 56), (128, 1, 3, 3)
    pads = ((1, 1), (1, 1))
    assert K._algorithms("forward", shape, weight, (1, 1), pads, (1, 1), 128)[0] == "gemm"
    assert K._algorithms("weight", shape, weight, (1, 1), pads, (1, 1), 128)[0] == "gemm"
    assert K._algorithms("input", shape, weight, (1, 1), pads, (1, 1), 128)[0] == "direct"


def test_rule_picks_fft_for_large_kernels_and_gemm_for_small_ones():
    pads3, pads11 = ((1, 1), (1, 1)), ((5, 5), (5, 5))
    args = ((1, 1), (1, 1), 1)
    assert K._algorithms("forward", (8, 64, 32, 32), (64, 64, 3, 3), args[0], pads3, *args[1:])[
        0
    ] in ("gemm", "winograd")
    assert (
        K._algorithms("forward", (8, 64, 32, 32), (64, 64, 11, 11), args[0], pads11, *args[1:])[0]
        == "fft"
    )
    # stride 2: no FFT at all
    assert "fft" not in K._algorithms(
        "forward", (8, 64, 32, 32), (64, 64, 11, 11), (2, 2), pads11, (1, 1), 1
    )


def test_rule_picks_direct_loops_for_first_layers_on_large_images(monkeypatch):
    monkeypatch.setattr(_jit, "numba_available", lambda: True)
    pads = ((2, 2), (2, 2))
    lenet_256 = K._algorithms("forward", (256, 1, 28, 28), (6, 1, 5, 5), (1, 1), pads, (1, 1), 1)
    lenet_64 = K._algorithms("forward", (64, 1, 28, 28), (6, 1, 5, 5), (1, 1), pads, (1, 1), 1)
    assert lenet_256[0] == "gemm" and lenet_64[0] == "gemm" and "direct" in lenet_64
    rgb = K._algorithms("forward", (8, 3, 224, 224), (16, 3, 3, 3), (1, 1), pads, (1, 1), 1)
    one = K._algorithms("forward", (1, 3, 224, 224), (16, 3, 3, 3), (1, 1), pads, (1, 1), 1)
    assert rgb[0] == "direct" and one[0] == "gemm"  # 50,176 positions: too few
    # only the forward pass, and not for layers with many taps
    assert K._algorithms("weight", (256, 1, 28, 28), (6, 1, 5, 5), (1, 1), pads, (1, 1), 1)[0] == (
        "gemm"
    )
    assert "direct" not in K._algorithms(
        "forward", (256, 6, 28, 28), (16, 6, 5, 5), (1, 1), pads, (1, 1), 1
    )
    monkeypatch.setattr(_jit, "numba_available", lambda: False)
    assert K._algorithms("forward", (256, 1, 28, 28), (6, 1, 5, 5), (1, 1), pads, (1, 1), 1)[0] == (
        "gemm"
    )
    assert K._algorithms("inference", (64, 1, 28, 28), (6, 1, 5, 5), (1, 1), pads, (1, 1), 1)[
        0
    ] == ("gemm")


def test_rule_picks_direct_loops_for_first_layers_in_inference(monkeypatch):
    """Without a weight-gradient to reuse im2col's columns, direct wins from smaller images."""
    monkeypatch.setattr(_jit, "numba_available", lambda: True)
    pads = ((2, 2), (2, 2))

    def rule(x_shape, w_shape, padding=pads):
        return K._algorithms("inference", x_shape, w_shape, (1, 1), padding, (1, 1), 1)[0]

    assert rule((64, 1, 28, 28), (6, 1, 5, 5)) == "direct"  # LeNet's conv1
    assert rule((8, 1, 28, 28), (6, 1, 5, 5)) == "gemm"  # 6,272 positions: too few
    assert rule((64, 2, 14, 14), (8, 2, 3, 3), ((0, 0), (0, 0))) == "gemm"  # 12x12 planes
    assert rule((64, 6, 14, 14), (16, 6, 5, 5), ((0, 0), (0, 0))) == "gemm"  # 150 taps


def test_inference_forward_runs_the_direct_kernel(monkeypatch):
    """conv_forward without a workspace asks the inference rule; with one, the training rule."""
    calls = []
    real = K.depthwise.direct_conv_forward
    monkeypatch.setattr(K.depthwise, "direct_conv_forward", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(_jit, "numba_available", lambda: True)
    rng = np.random.default_rng(16)
    x = rng.standard_normal((26, 1, 28, 28))  # 20,384 output positions per channel
    w, b = rng.standard_normal((6, 1, 5, 5)), rng.standard_normal(6)
    args = ((1, 1), ((2, 2), (2, 2)), (1, 1), 1)
    training = K.conv_forward(x, w, b, *args, {})
    assert calls == []
    inference = K.conv_forward(x, w, b, *args)
    assert calls == [1]
    assert np.abs(inference - training).max() < 1e-12
    expected = R.conv(x[:2], w, b, *args)  # the slow loops on two of the images
    assert np.abs(inference[:2] - expected).max() < 1e-12


@pytest.mark.parametrize("case", [c for c in grid() if c[1][2:] == (3, 3) and c[4] != (1, 1)])
def test_dilated_winograd_gradients_equal_the_gemm_ones(case):
    # Winograd on the input's phases: the merge puts each phase's rows back in place.
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(13)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    y = R.conv(x, w, None, stride, padding, dilation, groups)
    g = rng.standard_normal(y.shape)
    args = (stride, padding, dilation, groups)
    results = {}
    for policy in ("winograd", "gemm"):
        with cl.conv_algorithm(policy):
            results[policy] = (
                K.conv_backward_input(g, w, x.shape, *args),
                K.conv_backward_weight(x, g, w.shape, *args),
            )
    for got, want in zip(results["winograd"], results["gemm"]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_dilated_winograd_on_random_geometries_matches_the_reference():
    """Phases of every size and offset: padding below and above the dilation, uneven sizes."""
    rng = np.random.default_rng(31)
    for _ in range(30):
        dilation = tuple(int(v) for v in rng.integers(1, 4, 2))
        if dilation == (1, 1):
            dilation = (2, 1)
        padding = tuple(tuple(int(v) for v in rng.integers(0, 7, 2)) for _ in range(2))
        spatial = tuple(int(v) for v in rng.integers(1, 12, 2))
        x = rng.standard_normal((int(rng.integers(1, 4)), 3, *spatial))
        w = rng.standard_normal((2, 3, 3, 3))
        args = ((1, 1), padding, dilation, 1)
        if not K._winograd_applies(x.shape, w.shape, *args):
            continue
        y = R.conv(x, w, None, *args)
        g = rng.standard_normal(y.shape)
        with cl.conv_algorithm("gemm"):
            gx_ref = K.conv_backward_input(g, w, x.shape, *args)
            gw_ref = K.conv_backward_weight(x, g, w.shape, *args)
        with cl.conv_algorithm("winograd"):
            np.testing.assert_allclose(K.conv_forward(x, w, None, *args), y, atol=1e-10)
            gx = K.conv_backward_input(g, w, x.shape, *args)
            np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
            gw = K.conv_backward_weight(x, g, w.shape, *args)
            np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)
