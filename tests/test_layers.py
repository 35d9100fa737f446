"""Linear, dropout, normalisation and flatten layers: references, gradcheck, PyTorch, errors.

1. float64 against the loops in ``convlab.kernels.reference_layers`` (to ~1e-12);
2. ``convlab.gradcheck`` for every differentiable input;
3. against PyTorch 2.13 on random configurations drawn with a fixed seed: outputs and all
   gradients over several training steps, running statistics, evaluation outputs, in float32 and
   float64 (skipped, with the reason, without torch);
4. bad input: the exception type and message PyTorch gives (checked against torch where
   installed).
"""

from __future__ import annotations

import math
import re
import types
import warnings

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn
import convlab.nn.functional as F
from convlab.kernels import reference_layers as ref

try:  # torch is optional: the parity half of the error tests runs only when it is installed
    import torch as _torch
except ImportError:  # pragma: no cover - depends on the environment
    _torch = None

EXACT = dict(rtol=1e-12, atol=1e-12)
TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=2e-5)}


def t64(rng, *shape, requires_grad=False):
    return cl.tensor(rng.standard_normal(shape), requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------------
# 1. Against the reference loops (float64)
# ---------------------------------------------------------------------------------------------

LINEAR_CASES = [
    ((5,), (4, 5), True),
    ((3, 5), (4, 5), True),
    ((2, 3, 5), (4, 5), False),
    ((2, 1, 3, 5), (1, 5), True),
    ((3, 1), (6, 1), True),
    ((0, 5), (4, 5), True),
]


@pytest.mark.parametrize("x_shape, w_shape, has_bias", LINEAR_CASES)
def test_linear_matches_reference(x_shape, w_shape, has_bias):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if has_bias else None
    y = F.linear(x, w, b)
    assert y.shape == x_shape[:-1] + w_shape[:1]
    np.testing.assert_allclose(y.numpy(), ref.linear_reference(x, w, b), **EXACT)


def test_linear_with_a_1d_weight_drops_the_feature_dimension():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal(4)
    y = F.linear(x, w)
    assert y.shape == (2, 3)
    np.testing.assert_allclose(y.numpy(), ref.linear_reference(x, w[None], None)[..., 0], **EXACT)


def test_linear_with_zero_in_features_is_the_bias():
    b = np.arange(3.0)
    y = F.linear(np.zeros((2, 0)), np.zeros((3, 0)), b)
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(b, (2, 3)))


BN_SHAPES = [(4, 3), (2, 3, 5), (2, 3, 4, 3), (2, 2, 2, 3, 2), (3, 1, 1)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_reference(shape, training, affine):
    rng = np.random.default_rng(3)
    c = shape[1]
    x = rng.standard_normal(shape) * 3 + 1
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    w, b = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    expected, new_rm, new_rv = ref.batch_norm_reference(x, rm, rv, w, b, training, 0.3, 1e-3)
    rm_ours, rv_ours = rm.copy(), rv.copy()
    y = F.batch_norm(x, rm_ours, rv_ours, w, b, training=training, momentum=0.3, eps=1e-3)
    np.testing.assert_allclose(y.numpy(), expected, **EXACT)
    np.testing.assert_allclose(rm_ours, new_rm, **EXACT)
    np.testing.assert_allclose(rv_ours, new_rv, **EXACT)


def test_batch_norm_without_running_stats_uses_batch_stats():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 2, 3))
    y = F.batch_norm(x, None, None, training=True)
    np.testing.assert_allclose(
        y.numpy(), ref.batch_norm_reference(x, None, None, None, None, True, 0.1, 1e-5)[0], **EXACT
    )


def test_batch_norm_on_an_empty_batch_keeps_the_running_stats():
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm(np.zeros((0, 3)), rm, rv, training=True)
    assert y.shape == (0, 3)
    np.testing.assert_array_equal(rm, 0.0)
    np.testing.assert_array_equal(rv, 1.0)


LN_CASES = [
    ((4, 3), (3,)),
    ((2, 3, 4), (3, 4)),
    ((5,), (5,)),
    ((2, 2, 3, 2), (2, 3, 2)),
    ((3, 1), (1,)),
]


@pytest.mark.parametrize("shape, normalized", LN_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_reference(shape, normalized, affine):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) * 2 - 1
    w, b = (
        (rng.standard_normal(normalized), rng.standard_normal(normalized))
        if affine
        else (None,) * 2
    )
    y = F.layer_norm(x, normalized, w, b, eps=1e-4)
    np.testing.assert_allclose(
        y.numpy(), ref.layer_norm_reference(x, normalized, w, b, 1e-4), **EXACT
    )


GN_CASES = [((2, 6), 3), ((2, 6, 4), 2), ((1, 4, 3, 2), 4), ((3, 4, 2, 2, 2), 1), ((2, 3, 5), 3)]


@pytest.mark.parametrize("shape, groups", GN_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_reference(shape, groups, affine):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape) + 0.5
    c = shape[1]
    w, b = (rng.standard_normal(c), rng.standard_normal(c)) if affine else (None, None)
    y = F.group_norm(x, groups, w, b, eps=1e-4)
    np.testing.assert_allclose(y.numpy(), ref.group_norm_reference(x, groups, w, b, 1e-4), **EXACT)


def test_group_norm_with_one_group_is_layer_norm_over_channels_and_space():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 3, 3))
    np.testing.assert_allclose(
        F.group_norm(x, 1).numpy(), F.layer_norm(x, (4, 3, 3)).numpy(), **EXACT
    )


@pytest.mark.parametrize(
    "fn, shape, mask_shape",
    [
        (F.dropout, (3, 4, 5), (3, 4, 5)),
        (F.dropout1d, (3, 4, 5), (3, 4, 1)),
        (F.dropout1d, (4, 5), (4, 1)),
        (F.dropout2d, (2, 3, 4, 5), (2, 3, 1, 1)),
        (F.dropout3d, (2, 3, 2, 2, 2), (2, 3, 1, 1, 1)),
        (F.dropout3d, (3, 2, 2, 2), (3, 1, 1, 1)),
    ],
)
def test_dropout_matches_reference_with_its_own_mask(fn, shape, mask_shape):
    rng = np.random.default_rng(8)
    x = rng.uniform(0.5, 1.5, shape)  # never zero, so the mask can be read off the output
    cl.manual_seed(123)
    y = fn(cl.tensor(x), p=0.4).numpy()
    kept = y != 0
    # A channel-wise mask is constant over the dimensions it broadcasts along.
    axes = tuple(i for i, s in enumerate(mask_shape) if s == 1 and shape[i] != 1)
    mask = kept.all(axis=axes, keepdims=True) if axes else kept
    np.testing.assert_array_equal(kept, np.broadcast_to(mask, shape))
    np.testing.assert_allclose(y, ref.dropout_reference(x, mask, 0.4), **EXACT)


# ---------------------------------------------------------------------------------------------
# 2. gradcheck (float64, finite differences)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, has_bias", LINEAR_CASES[:5])
def test_linear_gradcheck(x_shape, w_shape, has_bias):
    rng = np.random.default_rng(10)
    x, w = t64(rng, *x_shape, requires_grad=True), t64(rng, *w_shape, requires_grad=True)
    b = t64(rng, w_shape[0], requires_grad=True) if has_bias else None
    assert cl.gradcheck(lambda x, w, b: F.linear(x, w, b), (x, w, b))


def test_linear_gradcheck_scalar_and_broadcast_bias():
    rng = np.random.default_rng(11)
    x, w = t64(rng, 3, 4, requires_grad=True), t64(rng, 2, 4, requires_grad=True)
    for b in (t64(rng, requires_grad=True), t64(rng, 1, requires_grad=True)):
        assert cl.gradcheck(lambda x, w, b: F.linear(x, w, b), (x, w, b))
    w1 = t64(rng, 4, requires_grad=True)
    assert cl.gradcheck(lambda x, w: F.linear(x, w), (x, w1))


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4), (2, 2, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(shape, training):
    rng = np.random.default_rng(12)
    c = shape[1]
    x = cl.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    w, b = t64(rng, c, requires_grad=True), t64(rng, c, requires_grad=True)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)

    def fn(x, w, b):
        # Copies: gradcheck calls fn many times and training mode updates the statistics.
        return F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training, eps=1e-3)

    assert cl.gradcheck(fn, (x, w, b))
    assert cl.gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (x,))


@pytest.mark.parametrize("shape, normalized", LN_CASES[:4])
def test_layer_norm_gradcheck(shape, normalized):
    rng = np.random.default_rng(13)
    x = t64(rng, *shape, requires_grad=True)
    w = cl.tensor(rng.standard_normal(normalized), requires_grad=True)
    b = cl.tensor(rng.standard_normal(normalized), requires_grad=True)
    assert cl.gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b), (x, w, b))
    assert cl.gradcheck(lambda x: F.layer_norm(x, normalized), (x,))


@pytest.mark.parametrize("shape, groups", GN_CASES[:4])
def test_group_norm_gradcheck(shape, groups):
    rng = np.random.default_rng(14)
    x = t64(rng, *shape, requires_grad=True)
    w, b = t64(rng, shape[1], requires_grad=True), t64(rng, shape[1], requires_grad=True)
    assert cl.gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), (x, w, b))
    assert cl.gradcheck(lambda x: F.group_norm(x, groups), (x,))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.dropout(x, 0.3),
        lambda x: F.dropout2d(x, 0.5),
        lambda x: F.alpha_dropout(x, 0.2, training=True),
        lambda x: F.feature_alpha_dropout(x, 0.4, training=True),
    ],
)
def test_dropout_gradcheck(fn):
    x = t64(np.random.default_rng(15), 3, 4, 2, 2, requires_grad=True)

    def seeded(x):
        cl.manual_seed(7)  # the same mask at every evaluation
        return fn(x)

    assert cl.gradcheck(seeded, (x,))


# ---------------------------------------------------------------------------------------------
# Behaviour: dropout masks, modes and in-place; batch norm's module bookkeeping
# ---------------------------------------------------------------------------------------------


def test_dropout_is_reproducible_under_manual_seed():
    x = cl.ones(1000)
    cl.manual_seed(0)
    a = F.dropout(x, 0.5).numpy()
    cl.manual_seed(0)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, F.dropout(x, 0.5).numpy())


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_about_one_minus_p_and_preserves_the_mean(p):
    cl.manual_seed(1)
    n = 200_000
    y = F.dropout(cl.ones(n, dtype=cl.float64), p).numpy()
    kept = np.mean(y != 0)
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(kept - (1 - p)) < 5 * sigma
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-15)
    assert abs(y.mean() - 1.0) < 5 * sigma / (1 - p)


def test_alpha_dropout_keeps_zero_mean_unit_variance():
    cl.manual_seed(2)
    x = cl.tensor(np.random.default_rng(16).standard_normal(400_000))
    y = F.alpha_dropout(x, 0.3, training=True).numpy()
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1.0) < 0.01
    # From the definition (Klambauer et al., 2017): kept x -> a x + b, dropped -> a (-alpha) + b.
    alpha, p = 1.7580993408473766, 0.3
    a = ((1 - p) * (1 + p * alpha**2)) ** -0.5
    b = a * alpha * p
    dropped = y == -alpha * a + b
    assert abs(dropped.mean() - p) < 0.005
    np.testing.assert_allclose(y[~dropped], a * x.numpy()[~dropped] + b, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("fn", [F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout])
def test_dropout_in_eval_or_with_p_zero_returns_the_input(fn):
    x = cl.randn(2, 3, 4, 5) if fn is not F.dropout1d else cl.randn(2, 3, 4)
    assert fn(x, 0.5, training=False) is x
    assert fn(x, 0.0, training=True) is x


def test_dropout_with_p_one_zeroes_everything_and_the_gradient():
    x = cl.tensor([[-1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    y = F.dropout(x, 1.0)
    assert np.all(y.data == 0) and np.signbit(y.data).tolist() == [[True, False], [False, True]]
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


def test_dropout_inplace():
    x = cl.ones(100)
    cl.manual_seed(3)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x and set(np.unique(x.numpy())) <= {0.0, 2.0}
    a = np.ones(10)
    out = F.dropout(a, 0.5, inplace=True)
    assert np.shares_memory(out.numpy(), a)
    # On a non-leaf that needs a gradient the values are the same, only not in place.
    w = cl.ones(50, requires_grad=True)
    h = w * 1
    cl.manual_seed(4)
    z = F.dropout(h, 0.5, inplace=True)
    cl.manual_seed(4)
    np.testing.assert_array_equal(z.data, F.dropout(cl.ones(50), 0.5).data)
    z.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), z.data)


def test_dropout_module_follows_train_and_eval():
    drop = nn.Dropout(0.5)
    x = cl.ones(1000)
    assert (drop(x).numpy() == 0).any()
    drop.eval()
    assert drop(x) is x
    assert repr(nn.Dropout2d(0.2, inplace=True)) == "Dropout2d(p=0.2, inplace=True)"


def test_batch_norm_module_buffers_state_dict_and_eval():
    bn = nn.BatchNorm2d(3)
    assert list(bn.state_dict()) == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    rng = np.random.default_rng(17)
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    bn(x)
    bn(x)
    assert int(bn.num_batches_tracked.item()) == 2
    bn.eval()
    expected, _, _ = ref.batch_norm_reference(
        x, bn.running_mean.numpy(), bn.running_var.numpy(), None, None, False, 0.1, 1e-5
    )
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 2
    bn.double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64


def test_batch_norm_momentum_none_is_a_cumulative_average():
    rng = np.random.default_rng(18)
    bn = nn.BatchNorm1d(2, momentum=None).double()
    batches = [rng.standard_normal((5, 2)) + i for i in range(4)]
    for batch in batches:
        bn(batch)
    np.testing.assert_allclose(
        bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), **EXACT
    )
    np.testing.assert_allclose(
        bn.running_var.numpy(), np.mean([b.var(0, ddof=1) for b in batches], axis=0), **EXACT
    )


def test_batch_norm_without_tracking_uses_batch_stats_in_eval():
    bn = nn.BatchNorm1d(2, track_running_stats=False, affine=False).eval()
    assert bn.running_mean is None and list(bn.state_dict()) == []
    x = np.random.default_rng(19).standard_normal((6, 2))
    np.testing.assert_allclose(bn(x).data, F.batch_norm(x, None, None, training=True).data)


def test_batch_norm_loads_a_checkpoint_without_num_batches_tracked():
    bn = nn.BatchNorm1d(3)
    state = bn.state_dict()
    del state["num_batches_tracked"]
    state["running_mean"] = np.full(3, 0.5, np.float32)
    bn.load_state_dict(state)
    np.testing.assert_array_equal(bn.running_mean.data, 0.5)


def test_linear_init_bounds_and_reprs():
    cl.manual_seed(5)
    fc = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (fc.weight.data, fc.bias.data):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.95 * bound  # fills the range U(-bound, bound)
    assert abs(fc.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert repr(fc) == "Linear(in_features=400, out_features=300, bias=True)"
    assert nn.Linear(3, 2, bias=False, dtype=cl.float64).weight.dtype == np.float64
    with pytest.warns(UserWarning, match="zero-element"):
        empty = nn.Linear(0, 2)
    np.testing.assert_array_equal(empty.bias.data, 0.0)
    x = cl.randn(3, 1)
    assert nn.Identity(5, foo=1)(x) is x
    assert repr(nn.BatchNorm1d(3, momentum=None)) == (
        "BatchNorm1d(3, eps=1e-05, momentum=None, affine=True, bias=True, track_running_stats=True)"
    )
    assert repr(nn.LayerNorm((2, 3))) == (
        "LayerNorm((2, 3), eps=1e-05, elementwise_affine=True, bias=True)"
    )
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert repr(nn.Unflatten(1, (2, 3))) == "Unflatten(dim=1, unflattened_size=(2, 3))"


def test_norm_module_parameters():
    ln = nn.LayerNorm(4, elementwise_affine=False)
    assert ln.weight is None and list(ln.parameters()) == []
    assert nn.LayerNorm(4, bias=False).bias is None
    assert [p.shape for p in nn.LayerNorm([2, 3]).parameters()] == [(2, 3), (2, 3)]
    gn = nn.GroupNorm(2, 4, affine=True, bias=False)
    assert gn.bias is None and np.all(gn.weight.data == 1)
    bn = nn.BatchNorm3d(5, bias=False)
    assert bn.bias is None and list(bn.state_dict())[0] == "weight"


@pytest.mark.parametrize(
    "module, shape, expected",
    [
        (nn.Flatten(), (2, 3, 4, 5), (2, 60)),
        (nn.Flatten(0), (2, 3, 4, 5), (120,)),
        (nn.Flatten(1, 2), (2, 3, 4, 5), (2, 12, 5)),
        (nn.Flatten(-3, -2), (2, 3, 4, 5), (2, 12, 5)),
        (nn.Flatten(0), (), (1,)),
        (nn.Unflatten(1, (3, 1)), (2, 3), (2, 3, 1)),
        (nn.Unflatten(1, (-1, 3)), (2, 6), (2, 2, 3)),
        (nn.Unflatten(-1, [2, 3]), (2, 6), (2, 2, 3)),
        (nn.Unflatten(1, (2, -1)), (2, 0), (2, 2, 0)),
        (nn.Unflatten(0, (2, 2)), (4, 3), (2, 2, 3)),
    ],
)
def test_flatten_and_unflatten_shapes(module, shape, expected):
    x = cl.tensor(np.arange(math.prod(shape), dtype=np.float64).reshape(shape), requires_grad=True)
    y = module(x)
    assert y.shape == expected
    np.testing.assert_array_equal(y.data.ravel(), x.data.ravel())
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 1.0)


# ---------------------------------------------------------------------------------------------
# 3. PyTorch parity on random configurations
# ---------------------------------------------------------------------------------------------


def draw_configs(count: int, seed: int = 2024) -> list[dict]:
    rng = np.random.default_rng(seed)
    kinds = ["linear", "batchnorm", "layernorm", "groupnorm"]
    configs = []
    for index in range(count):
        kind = kinds[index % 4]
        c = dict(kind=kind, index=index)
        if kind == "linear":
            lead = tuple(int(s) for s in rng.integers(1, 4, size=rng.integers(0, 4)))
            c.update(
                i=int(rng.integers(1, 7)),
                o=int(rng.integers(1, 7)),
                lead=lead,
                bias=bool(rng.random() < 0.75),
            )
        elif kind == "batchnorm":
            n = int(rng.integers(1, 4))
            ch = int(rng.integers(1, 5))
            spatial = tuple(int(s) for s in rng.integers(1, 4, size=n))
            if n == 1 and rng.random() < 0.4:
                spatial = ()  # (N, C) input to BatchNorm1d
            batch = int(rng.integers(1, 5))
            if batch * math.prod(spatial) == 1:
                batch = 2
            c.update(
                n=n,
                c=ch,
                shape=(batch, ch, *spatial),
                momentum=[0.1, 0.3, None, 0.0, 1.0][int(rng.integers(0, 5))],
                affine=bool(rng.random() < 0.8),
                track=bool(rng.random() < 0.8),
                bias=bool(rng.random() < 0.8),
                eps=float([1e-5, 1e-3, 0.1][rng.integers(0, 3)]),
            )
        elif kind == "layernorm":
            rank = int(rng.integers(1, 5))
            shape = tuple(int(s) for s in rng.integers(1, 5, size=rank))
            k = int(rng.integers(1, min(rank, 3) + 1))
            if math.prod(shape[rank - k :]) == 1:
                # Groups of one element are degenerate (test_size_one_groups_match_torch).
                shape = shape[:-1] + (2,)
            c.update(
                shape=shape,
                normalized=shape[rank - k :],
                affine=bool(rng.random() < 0.8),
                bias=bool(rng.random() < 0.8),
                eps=float([1e-5, 1e-3, 0.1][rng.integers(0, 3)]),
            )
        else:
            groups = int(rng.integers(1, 4))
            ch = groups * int(rng.integers(1, 4))
            spatial = tuple(int(s) for s in rng.integers(1, 4, size=rng.integers(0, 4)))
            batch = int(rng.integers(1, 4))
            if (ch // groups) * math.prod(spatial) == 1:
                spatial = (2,)
            c.update(
                groups=groups,
                c=ch,
                shape=(batch, ch, *spatial),
                affine=bool(rng.random() < 0.8),
                bias=bool(rng.random() < 0.8),
                eps=float([1e-5, 1e-3, 0.1][rng.integers(0, 3)]),
            )
        configs.append(c)
    return configs


CONFIGS = draw_configs(160)


def config_id(c: dict) -> str:
    if c["kind"] == "linear":
        return f"{c['index']}-linear-{c['i']}x{c['o']}-lead{c['lead']}"
    if c["kind"] == "batchnorm":
        return f"{c['index']}-bn{c['n']}d-{c['shape']}-m{c['momentum']}-t{int(c['track'])}"
    if c["kind"] == "layernorm":
        return f"{c['index']}-ln-{c['shape']}-{c['normalized']}"
    return f"{c['index']}-gn{c['groups']}-{c['shape']}"


def build(c: dict, torch):
    if c["kind"] == "linear":
        ours, theirs = (
            nn.Linear(c["i"], c["o"], c["bias"]),
            torch.nn.Linear(c["i"], c["o"], c["bias"]),
        )
    elif c["kind"] == "batchnorm":
        args = dict(
            eps=c["eps"],
            momentum=c["momentum"],
            affine=c["affine"],
            track_running_stats=c["track"],
            bias=c["bias"],
        )
        ours = getattr(nn, f"BatchNorm{c['n']}d")(c["c"], **args)
        theirs = getattr(torch.nn, f"BatchNorm{c['n']}d")(c["c"], **args)
    elif c["kind"] == "layernorm":
        args = dict(eps=c["eps"], elementwise_affine=c["affine"], bias=c["bias"])
        ours, theirs = (
            nn.LayerNorm(c["normalized"], **args),
            torch.nn.LayerNorm(c["normalized"], **args),
        )
    else:
        args = dict(eps=c["eps"], affine=c["affine"], bias=c["bias"])
        ours = nn.GroupNorm(c["groups"], c["c"], **args)
        theirs = torch.nn.GroupNorm(c["groups"], c["c"], **args)
    return ours, theirs


def input_shape(c: dict) -> tuple[int, ...]:
    return c["lead"] + (c["i"],) if c["kind"] == "linear" else c["shape"]


def compare_step(ours, theirs, x, rng, dtype, torch):
    tol = TOLERANCE[dtype]
    cx, tx = cl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cy, ty = ours(cx), theirs(tx)
    assert cy.shape == tuple(ty.shape) and cy.dtype == dtype
    upstream = rng.standard_normal(cy.shape).astype(dtype)
    np.testing.assert_allclose(cy.data, ty.detach().numpy(), **tol)
    (cy * cl.tensor(upstream)).sum().backward()
    (ty * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), **tol)
    for name, param in theirs.named_parameters():
        mine = ours.get_parameter(name)
        np.testing.assert_allclose(mine.grad.numpy(), param.grad.numpy(), **tol, err_msg=name)
    ours.zero_grad()
    theirs.zero_grad()


def smallest_group(c: dict) -> float:
    """How many values the smallest normalisation statistic is taken over."""
    if c["kind"] == "batchnorm":
        return c["shape"][0] * math.prod(c["shape"][2:])
    if c["kind"] == "layernorm":
        return math.prod(c["normalized"])
    if c["kind"] == "groupnorm":
        return c["shape"][1] // c["groups"] * math.prod(c["shape"][2:])
    return math.inf


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_layer_matches_torch(config, torch):
    rng = np.random.default_rng(config["index"])
    # Over two values, x - mean is a difference of nearly equal numbers whenever they are close,
    # and 1/sqrt(var + eps) multiplies its float32 rounding error by up to 316: neither library
    # can then give 1e-4 in float32 (both are checked against float64 in float64).
    dtypes = (np.float64, np.float32) if smallest_group(config) >= 3 else (np.float64,)
    for dtype in dtypes:
        ours, theirs = build(config, torch)
        theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
        ours.to(dtype)
        # Random affine parameters, the same on both sides.
        with torch.no_grad():
            for param in theirs.parameters():
                param.copy_(torch.tensor(rng.standard_normal(tuple(param.shape))))
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
        shape = input_shape(config)
        for _ in range(3):  # training steps: outputs, gradients and running statistics
            x = (rng.standard_normal(shape) * 2 + rng.standard_normal()).astype(dtype)
            compare_step(ours, theirs, x, rng, dtype, torch)
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(
                ours.state_dict()[key], value.numpy(), **TOLERANCE[dtype], err_msg=key
            )
        ours.eval()
        theirs.eval()
        x = rng.standard_normal(shape).astype(dtype)
        compare_step(ours, theirs, x, rng, dtype, torch)


@pytest.mark.parametrize(
    "ours, theirs, shape",
    [
        (lambda x, w, b: F.layer_norm(x, (1,), w, b), "layer_norm", (3, 1)),
        (lambda x, w, b: F.group_norm(x, 2, w, b), "group_norm", (3, 2)),
    ],
)
def test_size_one_groups_match_torch_and_the_definition(ours, theirs, shape, torch):
    # A group of one element normalises to 0: y = bias, and no gradient reaches x or weight.
    # In float32 PyTorch's result carries rounding noise of ~1e-5 amplified by 1/sqrt(eps), so
    # the comparison with torch is in float64 and the float32 check is against the definition.
    rng = np.random.default_rng(21)
    n = shape[1] if theirs == "group_norm" else 1
    x, w, b = rng.standard_normal(shape), rng.standard_normal(n), rng.standard_normal(n)
    if theirs == "group_norm":
        tfn = lambda x, w, b: torch.nn.functional.group_norm(x, 2, w, b)  # noqa: E731
    else:
        tfn = lambda x, w, b: torch.nn.functional.layer_norm(x, (1,), w, b)  # noqa: E731
    cargs = [cl.tensor(a, requires_grad=True) for a in (x, w, b)]
    targs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    cy, ty = ours(*cargs), tfn(*targs)
    np.testing.assert_allclose(cy.data, ty.detach().numpy(), **TOLERANCE[np.float64])
    upstream = rng.standard_normal(shape)
    (cy * cl.tensor(upstream)).sum().backward()
    (ty * torch.tensor(upstream)).sum().backward()
    for c, t in zip(cargs, targs):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), **TOLERANCE[np.float64])
    c32 = [cl.tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b)]
    y32 = ours(*c32)
    np.testing.assert_array_equal(y32.data, np.broadcast_to(b.astype(np.float32), shape))
    y32.sum().backward()
    np.testing.assert_array_equal(c32[0].grad.numpy(), 0.0)
    np.testing.assert_array_equal(c32[1].grad.numpy(), 0.0)


def test_dropout_agrees_with_torch_where_randomness_does_not_enter(torch):
    x = np.random.default_rng(20).standard_normal((4, 3, 2, 2)).astype(np.float32)
    for name in ("dropout", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"):
        ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
        for p in (0.0, 1.0):
            got = ours(cl.tensor(x), p, training=True).numpy()
            want = theirs(torch.tensor(x), p, training=True).numpy()
            np.testing.assert_array_equal(got, want, err_msg=f"{name} p={p}")
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
        got = ours(cl.tensor(x), 0.5, training=False).numpy()
        np.testing.assert_array_equal(got, theirs(torch.tensor(x), 0.5, training=False).numpy())


@pytest.mark.parametrize(
    "name, shape",
    [
        ("dropout2d", (2, 3)),
        ("dropout2d", (2, 3, 4)),
        ("dropout2d", (2, 3, 4, 5, 6)),
        ("dropout2d", (2, 3, 4, 5)),
        ("dropout3d", (2, 3, 4)),
        ("dropout3d", (2, 3, 4, 5)),
        ("dropout3d", (2, 3, 4, 5, 6)),
        ("dropout1d", (2, 3, 4)),
    ],
)
def test_dropout_rank_warnings_match_torch(name, shape, torch):
    def messages(fn, x):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn(x, 0.5, training=True)
        return [str(w.message) for w in caught]

    x = np.ones(shape, np.float32)
    ours = messages(getattr(F, name), cl.tensor(x))
    assert ours == messages(getattr(torch.nn.functional, name), torch.tensor(x))


# ---------------------------------------------------------------------------------------------
# 4. Bad input: PyTorch's exception types and messages
# ---------------------------------------------------------------------------------------------


def _namespace(lib):
    if lib == "convlab":
        return types.SimpleNamespace(
            F=F,
            nn=nn,
            randn=lambda *s: cl.randn(*s),
            zeros=lambda *s: cl.zeros(*s),
            ones=lambda *s: cl.ones(*s),
        )
    return types.SimpleNamespace(
        F=_torch.nn.functional,
        nn=_torch.nn,
        randn=lambda *s: _torch.randn(s),
        zeros=lambda *s: _torch.zeros(*s),
        ones=lambda *s: _torch.ones(*s),
    )


def _leaf_inplace(m):
    return m.F.dropout(m.randn(3).requires_grad_(), 0.5, inplace=True)


def _bn_requires_grad_stat(m):
    return m.F.batch_norm(m.randn(4, 3), m.zeros(3).requires_grad_(), m.ones(3), training=False)


ERRORS = [
    # linear
    (
        "linear-0d",
        lambda m: m.F.linear(m.randn(), m.randn(4, 3)),
        RuntimeError,
        r"both arguments to linear need to be at least 1D, but they are 0D and 2D",
    ),
    (
        "linear-mismatch",
        lambda m: m.F.linear(m.randn(2, 3), m.randn(4, 5)),
        RuntimeError,
        r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 5x4\)",
    ),
    (
        "linear-3d-mismatch",
        lambda m: m.F.linear(m.randn(2, 5, 3), m.randn(4, 2)),
        RuntimeError,
        r"mat1 and mat2 shapes cannot be multiplied \(10x3 and 2x4\)",
    ),
    (
        "linear-3d-weight",
        lambda m: m.F.linear(m.randn(2, 3), m.randn(2, 4, 3)),
        RuntimeError,
        r"t\(\) expects a tensor with <= 2 dimensions, but \w+ is 3D",
    ),
    (
        "linear-dtype",
        lambda m: m.F.linear(m.randn(2, 3), m.randn(4, 3).double()),
        RuntimeError,
        r"to have the same dtype, but got: float != double",
    ),
    (
        "linear-bias-dtype",
        lambda m: m.F.linear(m.randn(2, 3), m.randn(4, 3), m.randn(4).double()),
        RuntimeError,
        r"same dtype, but got:? [Dd]ouble",
    ),
    (
        "linear-bias-size",
        lambda m: m.F.linear(m.randn(2, 3), m.randn(4, 3), m.randn(5)),
        RuntimeError,
        r"must match the [\w ]*size[\w ]* \(5\)",
    ),
    (
        "linear-bias-grows",
        lambda m: m.F.linear(m.randn(3), m.randn(4, 3), m.randn(2, 4)),
        RuntimeError,
        r"output with shape \[4\] doesn't match the broadcast shape \[2, 4\]",
    ),
    (
        "linear-1d-weight-bias",
        lambda m: m.F.linear(m.randn(2, 3), m.randn(3), m.randn(2)),
        RuntimeError,
        r"mat2 must be a matrix",
    ),
    (
        "linear-list",
        lambda m: m.F.linear([1.0, 2.0, 3.0], m.randn(4, 3)),
        TypeError,
        r"argument 'input' \(position 1\) must be Tensor, not list",
    ),
    (
        "linear-float-bias",
        lambda m: m.F.linear(m.randn(4, 3), m.randn(4, 3), 1.0),
        TypeError,
        r"argument 'bias' \(position 3\) must be Tensor",
    ),
    (
        "Linear-negative",
        lambda m: m.nn.Linear(-1, 2),
        RuntimeError,
        r"Trying to create tensor with negative dimension -1",
    ),
    ("Linear-float", lambda m: m.nn.Linear(3.5, 2), TypeError, r"3\.5|float"),
    # dropout
    (
        "dropout-p-high",
        lambda m: m.F.dropout(m.randn(3), 1.5),
        ValueError,
        r"dropout probability has to be between 0 and 1, but got 1\.5",
    ),
    (
        "dropout-p-low",
        lambda m: m.F.dropout(m.randn(3), -0.1),
        ValueError,
        r"dropout probability has to be between 0 and 1, but got -0\.1",
    ),
    (
        "dropout-p-nan",
        lambda m: m.F.dropout(m.randn(3), float("nan")),
        RuntimeError,
        r"dropout probability has to be between 0 and 1, but got nan",
    ),
    (
        "Dropout-p",
        lambda m: m.nn.Dropout(2),
        ValueError,
        r"dropout probability has to be between 0 and 1, but got 2",
    ),
    ("Dropout3d-p", lambda m: m.nn.Dropout3d(-1), ValueError, r"between 0 and 1, but got -1"),
    (
        "dropout-train-none",
        lambda m: m.F.dropout(m.randn(3), 0.5, training=None),
        TypeError,
        r"argument 'train' \(position 3\) must be bool, not NoneType",
    ),
    (
        "dropout-long",
        lambda m: m.F.dropout(m.ones(3).long(), 0.5),
        RuntimeError,
        r"can't be cast to the desired output type Long",
    ),
    (
        "dropout-leaf-inplace",
        _leaf_inplace,
        RuntimeError,
        r"a leaf Variable that requires grad is being used in an in-place operation",
    ),
    (
        "dropout1d-4d",
        lambda m: m.F.dropout1d(m.randn(2, 3, 4, 5)),
        RuntimeError,
        r"dropout1d: Expected 2D or 3D input, but received a 4D input",
    ),
    (
        "dropout1d-1d",
        lambda m: m.F.dropout1d(m.randn(3)),
        RuntimeError,
        r"dropout1d: Expected 2D or 3D input, but received a 1D input",
    ),
    (
        "dropout2d-1d",
        lambda m: m.F.dropout2d(m.randn(3)),
        RuntimeError,
        r"Feature dropout requires at least 2 dimensions in the input",
    ),
    # batch_norm
    (
        "bn-one-value",
        lambda m: m.F.batch_norm(m.randn(1, 3), m.zeros(3), m.ones(3), training=True),
        ValueError,
        r"Expected more than 1 value per channel when training, got input size",
    ),
    (
        "bn-one-value-3d",
        lambda m: m.F.batch_norm(m.randn(1, 3, 1), None, None, training=True),
        ValueError,
        r"Expected more than 1 value per channel when training",
    ),
    (
        "bn-running-mean",
        lambda m: m.F.batch_norm(m.randn(4, 3), m.zeros(4), m.ones(3), training=True),
        RuntimeError,
        r"running_mean should contain 3 elements not 4",
    ),
    (
        "bn-running-var",
        lambda m: m.F.batch_norm(m.randn(4, 3), m.zeros(3), m.ones(4)),
        RuntimeError,
        r"running_var should contain 3 elements not 4",
    ),
    (
        "bn-weight",
        lambda m: m.F.batch_norm(m.randn(4, 3), m.zeros(3), m.ones(3), m.ones(4)),
        RuntimeError,
        r"weight should contain 3 elements not 4",
    ),
    (
        "bn-bias",
        lambda m: m.F.batch_norm(m.randn(4, 3), m.zeros(3), m.ones(3), None, m.ones(2)),
        RuntimeError,
        r"bias should contain 3 elements not 2",
    ),
    (
        "bn-eval-no-stats",
        lambda m: m.F.batch_norm(m.randn(4, 3), None, None, training=False),
        RuntimeError,
        r"running_mean must be defined in evaluation mode",
    ),
    (
        "bn-one-stat",
        lambda m: m.F.batch_norm(m.randn(4, 3), m.zeros(3), None, training=True),
        ValueError,
        r"running_mean and running_var must either both be None or neither be None",
    ),
    (
        "bn-eps-train",
        lambda m: m.F.batch_norm(m.randn(4, 3), None, None, training=True, eps=0),
        ValueError,
        r"batch_norm eps must be positive during training, but got 0",
    ),
    (
        "bn-eps-eval",
        lambda m: m.F.batch_norm(m.randn(4, 3), m.zeros(3), m.ones(3), eps=-1),
        ValueError,
        r"batch_norm eps must be non-negative, but got -1",
    ),
    (
        "bn-mixed",
        lambda m: m.F.batch_norm(m.randn(4, 3).double(), m.zeros(3), m.ones(3)),
        RuntimeError,
        r"mixed dtype \(CPU\)",
    ),
    (
        "bn-long",
        lambda m: m.F.batch_norm(m.ones(4, 3).long(), m.zeros(3), m.ones(3)),
        NotImplementedError,
        r"\"batch_norm\" not implemented for 'Long'",
    ),
    (
        "bn-stat-grad",
        _bn_requires_grad_stat,
        RuntimeError,
        r"not differentiable with respect to argument 'running_mean'",
    ),
    (
        "bn-training-int",
        lambda m: m.F.batch_norm(m.randn(4, 3), None, None, training=1),
        TypeError,
        r"argument 'training' \(position 6\) must be bool, not int",
    ),
    (
        "bn-momentum-none",
        lambda m: m.F.batch_norm(m.randn(4, 3), None, None, training=True, momentum=None),
        TypeError,
        r"argument 'momentum' \(position 7\) must be float, not NoneType",
    ),
    (
        "BatchNorm1d-4d",
        lambda m: m.nn.BatchNorm1d(3)(m.randn(4, 3, 2, 2)),
        ValueError,
        r"expected 2D or 3D input \(got 4D input\)",
    ),
    (
        "BatchNorm2d-3d",
        lambda m: m.nn.BatchNorm2d(3)(m.randn(3, 2, 2)),
        ValueError,
        r"expected 4D input \(got 3D input\)",
    ),
    (
        "BatchNorm3d-4d",
        lambda m: m.nn.BatchNorm3d(3)(m.randn(4, 3, 2, 2)),
        ValueError,
        r"expected 5D input \(got 4D input\)",
    ),
    (
        "BatchNorm1d-channels",
        lambda m: m.nn.BatchNorm1d(3)(m.randn(4, 4)),
        RuntimeError,
        r"running_mean should contain 4 elements not 3",
    ),
    (
        "BatchNorm1d-one",
        lambda m: m.nn.BatchNorm1d(3)(m.randn(1, 3)),
        ValueError,
        r"Expected more than 1 value per channel when training",
    ),
    (
        "BatchNorm1d-negative",
        lambda m: m.nn.BatchNorm1d(-1),
        RuntimeError,
        r"Trying to create tensor with negative dimension -1",
    ),
    ("BatchNorm1d-float", lambda m: m.nn.BatchNorm1d(3.5), TypeError, r"float|3\.5"),
    # layer_norm
    (
        "ln-shape",
        lambda m: m.F.layer_norm(m.randn(4, 3), (4,)),
        RuntimeError,
        r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\], but got input of "
        r"size\[4, 3\]",
    ),
    (
        "ln-too-long",
        lambda m: m.F.layer_norm(m.randn(4, 3), (2, 4, 3)),
        RuntimeError,
        r"Given normalized_shape=\[2, 4, 3\], expected input with shape \[\*, 2, 4, 3\]",
    ),
    (
        "ln-empty",
        lambda m: m.F.layer_norm(m.randn(4, 3), ()),
        RuntimeError,
        r"Expected normalized_shape to be at least 1-dimensional, i\.e\., containing at least one "
        r"element, but got normalized_shape = \[\]",
    ),
    (
        "ln-int",
        lambda m: m.F.layer_norm(m.randn(4, 3), 3),
        TypeError,
        r"layer_norm\(\): argument 'normalized_shape' \(position 2\) must be tuple of ints, "
        r"not int",
    ),
    (
        "ln-float",
        lambda m: m.F.layer_norm(m.randn(4, 3), [3.0]),
        TypeError,
        r"must be tuple of ints, but found element of type float at pos 0",
    ),
    (
        "ln-weight",
        lambda m: m.F.layer_norm(m.randn(4, 3), [3], m.ones(4)),
        RuntimeError,
        r"Expected weight to be of same shape as normalized_shape, but got weight of shape \[4\] "
        r"and normalized_shape = \[3\]",
    ),
    (
        "ln-bias",
        lambda m: m.F.layer_norm(m.randn(4, 3), [3], None, m.ones(1, 3)),
        RuntimeError,
        r"Expected bias to be of same shape as normalized_shape, but got bias of shape \[1, 3\]",
    ),
    (
        "ln-mixed",
        lambda m: m.F.layer_norm(m.randn(4, 3), [3], m.ones(3).double()),
        RuntimeError,
        r"mixed dtype \(CPU\)",
    ),
    (
        "ln-long",
        lambda m: m.F.layer_norm(m.ones(4, 3).long(), [3]),
        NotImplementedError,
        r"\"LayerNormKernelImpl\" not implemented for 'Long'",
    ),
    (
        "ln-eps",
        lambda m: m.F.layer_norm(m.randn(4, 3), [3], eps="a"),
        TypeError,
        r"argument 'eps' \(position 5\) must be float, not str",
    ),
    (
        "LayerNorm-negative",
        lambda m: m.nn.LayerNorm(-2),
        RuntimeError,
        r"Trying to create tensor with negative dimension -2",
    ),
    ("LayerNorm-float", lambda m: m.nn.LayerNorm((2, 3.0)), TypeError, r"float|3\.0"),
    # group_norm
    (
        "gn-divisible",
        lambda m: m.F.group_norm(m.randn(4, 3, 5), 2),
        RuntimeError,
        r"Expected number of channels in input to be divisible by num_groups, but got input of "
        r"shape \[4, 3, 5\] and num_groups=2",
    ),
    (
        "gn-zero",
        lambda m: m.F.group_norm(m.randn(4, 3, 5), 0),
        ZeroDivisionError,
        r"integer division or modulo by zero",
    ),
    (
        "gn-negative",
        lambda m: m.F.group_norm(m.randn(4, 3, 5), -1),
        RuntimeError,
        r"Expected num groups to be greater than 0, got -1",
    ),
    (
        "gn-1d",
        lambda m: m.F.group_norm(m.randn(3), 1),
        RuntimeError,
        r"Expected at least 2 dimensions for input tensor but received 1",
    ),
    (
        "gn-weight",
        lambda m: m.F.group_norm(m.randn(4, 3, 5), 3, m.ones(4)),
        RuntimeError,
        r"Expected weight to be a vector of size equal to the number of channels in input, but "
        r"got weight of shape \[4\] and input of shape \[4, 3, 5\]",
    ),
    (
        "gn-bias",
        lambda m: m.F.group_norm(m.randn(4, 3, 5), 3, None, m.ones(4)),
        RuntimeError,
        r"Expected bias to be a vector of size equal to the number of channels in input",
    ),
    (
        "gn-one-value",
        lambda m: m.F.group_norm(m.randn(1, 2), 2),
        ValueError,
        r"Expected more than 1 value per channel when training, got input size \[1, 2\]",
    ),
    (
        "gn-float-groups",
        lambda m: m.F.group_norm(m.randn(4, 3, 2), 3.0),
        TypeError,
        r"argument 'num_groups' \(position 2\) must be int, not float",
    ),
    (
        "gn-long",
        lambda m: m.F.group_norm(m.ones(4, 3, 2).long(), 3),
        NotImplementedError,
        r"\"GroupNormKernelImpl\" not implemented for 'Long'",
    ),
    (
        "GroupNorm-divisible",
        lambda m: m.nn.GroupNorm(3, 4),
        ValueError,
        r"num_channels \(4\) must be divisible by num_groups \(3\)",
    ),
    ("GroupNorm-zero", lambda m: m.nn.GroupNorm(0, 4), ZeroDivisionError, r"modulo by zero"),
    (
        "GroupNorm-channels",
        lambda m: m.nn.GroupNorm(2, 4)(m.randn(3, 6)),
        RuntimeError,
        r"Expected weight to be a vector of size equal to the number of channels",
    ),
    # flatten / unflatten
    (
        "Flatten-order",
        lambda m: m.nn.Flatten(2, 1)(m.randn(2, 3, 4, 5)),
        RuntimeError,
        r"flatten\(\) has invalid args: start_dim cannot come after end_dim",
    ),
    (
        "Flatten-range",
        lambda m: m.nn.Flatten(5)(m.randn(2, 3, 4, 5)),
        IndexError,
        r"Dimension out of range \(expected to be in range of \[-4, 3\], but got 5\)",
    ),
    (
        "Flatten-1d",
        lambda m: m.nn.Flatten()(m.randn(3)),
        IndexError,
        r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)",
    ),
    (
        "Unflatten-product",
        lambda m: m.nn.Unflatten(1, (2, 2))(m.randn(2, 3)),
        RuntimeError,
        r"unflatten: Provided sizes \[2, 2\] don't multiply up to the size of dim 1 \(3\) in the "
        r"input tensor",
    ),
    (
        "Unflatten-empty",
        lambda m: m.nn.Unflatten(1, ())(m.randn(2, 1)),
        RuntimeError,
        r"unflatten: sizes must be non-empty",
    ),
    (
        "Unflatten-two-inferred",
        lambda m: m.nn.Unflatten(1, (-1, -1))(m.randn(2, 6)),
        RuntimeError,
        r"only one dimension can be inferred",
    ),
    (
        "Unflatten-negative",
        lambda m: m.nn.Unflatten(1, (-2, 3))(m.randn(2, 6)),
        RuntimeError,
        r"invalid shape dimension -2",
    ),
    (
        "Unflatten-ambiguous",
        lambda m: m.nn.Unflatten(1, (0, -1))(m.randn(2, 0)),
        RuntimeError,
        r"the unspecified dimension size -1 can be any value and is ambiguous",
    ),
    (
        "Unflatten-range",
        lambda m: m.nn.Unflatten(3, (2, 3))(m.randn(2, 6)),
        IndexError,
        r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 3\)",
    ),
    (
        "Unflatten-0d",
        lambda m: m.nn.Unflatten(0, (1,))(m.randn()),
        RuntimeError,
        r"Dimension specified as 0 but tensor has no dimensions",
    ),
    (
        "Unflatten-int",
        lambda m: m.nn.Unflatten(1, 3),
        TypeError,
        r"unflattened_size must be a tuple of ints, but found type int",
    ),
    (
        "Unflatten-float",
        lambda m: m.nn.Unflatten(1, (3.0, 2)),
        TypeError,
        r"unflattened_size must be tuple of ints, but found element of type float at pos 0",
    ),
]


@pytest.mark.filterwarnings("ignore:dropout2d")
@pytest.mark.filterwarnings("ignore:Initializing zero-element")
@pytest.mark.parametrize("name, call, error, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_like_torch(name, call, error, pattern):
    with pytest.raises(error, match=pattern) as caught:
        call(_namespace("convlab"))
    assert type(caught.value) is error  # exactly torch's type, not a subclass
    if _torch is None:
        return
    with pytest.raises(error) as theirs:  # PyTorch raises the same type, with the same words
        call(_namespace("torch"))
    assert re.search(pattern, str(theirs.value)), str(theirs.value)
