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


def test_rule_picks_direct_loops_for_first_layers(monkeypatch):
    """Direct forward and weight-gradient for few channels and taps from ~20,000 output
    positions on planes of 256+; im2col elsewhere, and for every pass without numba."""
    monkeypatch.setattr(_jit, "numba_available", lambda: True)
    pads = ((2, 2), (2, 2))

    def rule(pass_name, x_shape, w_shape, padding=pads):
        return K._algorithms(pass_name, x_shape, w_shape, (1, 1), padding, (1, 1), 1)[0]

    for pass_name in ("forward", "inference", "weight"):
        assert rule(pass_name, (64, 1, 28, 28), (6, 1, 5, 5)) == "direct"  # LeNet's conv1
        assert rule(pass_name, (8, 3, 224, 224), (16, 3, 3, 3)) == "direct"
        assert rule(pass_name, (8, 1, 28, 28), (6, 1, 5, 5)) == "gemm"  # 6,272 positions
        assert rule(pass_name, (64, 2, 14, 14), (8, 2, 3, 3), ((0, 0), (0, 0))) == "gemm"
    assert rule("input", (64, 1, 28, 28), (6, 1, 5, 5)) == "gemm"
    # not for layers with many taps (LeNet's conv2: 150)
    assert "direct" not in K._algorithms(
        "forward", (256, 6, 28, 28), (16, 6, 5, 5), (1, 1), pads, (1, 1), 1
    )
    monkeypatch.setattr(_jit, "numba_available", lambda: False)
    for pass_name in ("forward", "inference", "weight"):
        assert rule(pass_name, (256, 1, 28, 28), (6, 1, 5, 5)) == "gemm"


def test_first_layer_passes_run_the_direct_kernels(monkeypatch):
    """conv_forward, with or without a workspace, and conv_backward_weight take the direct
    kernels where the rule says so, and agree with im2col and the slow loops."""
    calls = []
    for name in ("direct_conv_forward", "direct_conv_backward_weight_bias"):
        real = getattr(K.depthwise, name)
        monkeypatch.setattr(
            K.depthwise, name, lambda *a, real=real, name=name: calls.append(name) or real(*a)
        )
    monkeypatch.setattr(_jit, "numba_available", lambda: True)
    rng = np.random.default_rng(16)
    x = rng.standard_normal((26, 1, 28, 28))  # 20,384 output positions per channel
    w, b = rng.standard_normal((6, 1, 5, 5)), rng.standard_normal(6)
    args = ((1, 1), ((2, 2), (2, 2)), (1, 1), 1)
    training = K.conv_forward(x, w, b, *args, {})
    inference = K.conv_forward(x, w, b, *args)
    g = rng.standard_normal(training.shape)
    workspace = {}
    grad_w = K.conv_backward_weight(x, g, w.shape, *args, workspace)
    assert calls == ["direct_conv_forward"] * 2 + ["direct_conv_backward_weight_bias"]
    # The bias-gradient, summed beside the weight-gradient, waits in the workspace.
    np.testing.assert_allclose(K.conv_backward_bias(g, workspace), g.sum((0, 2, 3)), rtol=1e-12)
    assert "bias_grad" not in workspace
    with select.conv_algorithm("gemm"):
        assert np.abs(inference - K.conv_forward(x, w, b, *args)).max() < 1e-12
        assert np.abs(grad_w - K.conv_backward_weight(x, g, w.shape, *args)).max() < 1e-12
    assert np.abs(training - inference).max() == 0
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
