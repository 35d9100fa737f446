"""Losses: against the loops in kernels/reference_activation_loss.py, finite differences,
PyTorch 2.13 on random configurations (every option combined), errors and modules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn
import convlab.nn.functional as F
from convlab.kernels import reference_activation_loss as ref

TOL64 = dict(rtol=1e-10, atol=1e-12)
TOL32 = dict(rtol=1e-4, atol=1e-5)
REF_TOL = dict(rtol=1e-12, atol=1e-12)
REDUCTIONS = ("none", "mean", "sum")


def value(t):
    return t.data


# ---------------------------------------------------------------------------------------------
# Random configurations, shared by the reference, gradcheck and torch tests
# ---------------------------------------------------------------------------------------------


def draw_cross_entropy(rng: np.random.Generator, nll: bool = False) -> dict:
    """One cross_entropy / nll_loss call: input, target and every option, drawn at random."""
    classes = int(rng.integers(1, 6))
    layout = int(rng.integers(0, 4))  # 0: unbatched (C,), 1: (N, C), 2-3: (N, C, *d)
    batch = int(rng.integers(1, 4))
    spatial = tuple(int(s) for s in rng.integers(1, 4, max(layout - 1, 0)))
    shape = (classes,) if layout == 0 else (batch, classes, *spatial)
    probabilities = not nll and rng.random() < 0.35
    x = rng.normal(0, float(rng.choice([1.0, 5.0])), shape)
    ignore_index = -100
    if probabilities:
        target = rng.uniform(0, 1, shape)
        if rng.random() < 0.5:
            target /= target.sum(axis=0 if layout == 0 else 1, keepdims=True)
        ignore_index = int(rng.choice([-100, -1]))
    else:
        target_shape = () if layout == 0 else (batch, *spatial)
        target = rng.integers(0, classes, target_shape)
        if rng.random() < 0.5:
            ignore_index = int(rng.choice([-100, rng.integers(0, classes)]))
            mask = rng.random(target_shape) < float(rng.choice([0.3, 1.0]))
            target = np.where(mask, ignore_index, target)
    weight = None
    if rng.random() < 0.5:
        weight = rng.uniform(0.1, 2.0, classes)
        if classes > 1 and rng.random() < 0.3:
            weight[0] = 0.0
    smoothing = 0.0
    if not nll and rng.random() < 0.6:
        smoothing = float(rng.choice([rng.uniform(0, 1), 1.0, -0.2]))
    return {
        "x": x,
        "target": np.asarray(target),
        "weight": weight,
        "ignore_index": ignore_index,
        "reduction": str(rng.choice(REDUCTIONS)),
        "label_smoothing": smoothing,
        "probabilities": probabilities,
    }


def _shapes(rng, broadcast: bool):
    shape = tuple(int(s) for s in rng.integers(1, 4, int(rng.integers(0, 4))))
    if not broadcast or not shape or rng.random() < 0.5:
        return shape, shape
    other = tuple(1 if rng.random() < 0.5 else s for s in shape)[int(rng.integers(0, 2)) :]
    return (shape, other) if rng.random() < 0.5 else (other, shape)


def draw_pointwise(rng: np.random.Generator, name: str) -> dict:
    """One mse/l1/smooth_l1/bce/bce_with_logits/kl_div call with random options."""
    broadcast = name in ("mse_loss", "l1_loss", "smooth_l1_loss", "kl_div")
    x_shape, t_shape = _shapes(rng, broadcast)
    config = {"name": name, "reduction": str(rng.choice(REDUCTIONS)), "kwargs": {}}
    if name in ("binary_cross_entropy",):
        x = rng.uniform(0, 1, x_shape)
        if x.size and rng.random() < 0.3:
            x.flat[0] = float(rng.choice([0.0, 1.0]))  # log clamped at -100
        t = rng.uniform(0, 1, t_shape)
    elif name == "kl_div":
        x = np.log(rng.uniform(0.05, 1, x_shape))
        log_target = bool(rng.random() < 0.5)
        t = np.log(rng.uniform(0.05, 1, t_shape)) if log_target else rng.uniform(0, 1, t_shape)
        config["kwargs"]["log_target"] = log_target
        if rng.random() < 0.3:
            config["reduction"] = "batchmean"
    else:
        x = rng.normal(0, float(rng.choice([1.0, 3.0, 30.0])), x_shape)
        t = rng.normal(0, 1, t_shape)
        if name == "binary_cross_entropy_with_logits":
            t = rng.uniform(0, 1, t_shape)
    config["x"], config["target"] = np.asarray(x), np.asarray(t)
    if name == "smooth_l1_loss":
        config["kwargs"]["beta"] = float(rng.choice([1.0, 0.0, rng.uniform(0.1, 3.0)]))
    if name in ("mse_loss", "l1_loss") and rng.random() < 0.3:
        config["kwargs"]["weight"] = rng.uniform(0.1, 2.0, x_shape)
    if name in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        if rng.random() < 0.5:
            config["kwargs"]["weight"] = rng.uniform(0.1, 2.0, x_shape[int(rng.integers(0, 2)) :])
        if name == "binary_cross_entropy_with_logits" and rng.random() < 0.5:
            config["kwargs"]["pos_weight"] = rng.uniform(0.1, 3.0, x_shape[-1:])
    return config


def _draw_all() -> list[dict]:
    rng = np.random.default_rng(1234)
    configs = []
    for _ in range(100):
        configs.append({"name": "cross_entropy", **draw_cross_entropy(rng)})
    for _ in range(30):
        configs.append({"name": "nll_loss", **draw_cross_entropy(rng, nll=True)})
    names = (
        "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
        "binary_cross_entropy_with_logits", "kl_div",
    )  # fmt: skip
    for i in range(90):
        configs.append(draw_pointwise(rng, names[i % len(names)]))
    for i, config in enumerate(configs):
        config["id"] = f"{i}-{config['name']}-{config['reduction']}"
    return configs


CONFIGS = _draw_all()


def call(lib, config, dtype, x, target, grad_weight=False):
    """Call the configuration's loss in convlab (lib=cl) or torch; return output and leaves."""
    fn = getattr(F if lib is cl else lib.nn.functional, config["name"])
    make = cl.tensor if lib is cl else lib.tensor
    kwargs = dict(config.get("kwargs", {}))
    if config["name"] in ("cross_entropy", "nll_loss"):
        if config["weight"] is not None:
            kwargs["weight"] = config["weight"]
        kwargs["ignore_index"] = config["ignore_index"]
        if config["name"] == "cross_entropy":
            kwargs["label_smoothing"] = config["label_smoothing"]
    leaves = {}
    for key in ("weight", "pos_weight"):
        if key in kwargs:
            wants = grad_weight and key == "weight"
            kwargs[key] = make(np.asarray(kwargs[key], dtype), requires_grad=wants)
            if wants:
                leaves[key] = kwargs[key]
    out = fn(x, target, reduction=config["reduction"], **kwargs)
    return out, leaves


def differentiable_target(config) -> bool:
    return config["name"] not in ("cross_entropy", "nll_loss") or config["probabilities"]


def weight_has_grad(config) -> bool:
    """torch differentiates the weight of probability-target cross_entropy and mse/l1 only."""
    if config["name"] == "cross_entropy":
        return config["probabilities"] and config["weight"] is not None
    return config["name"] in ("mse_loss", "l1_loss") and "weight" in config["kwargs"]


# ---------------------------------------------------------------------------------------------
# 1. Reference loops (float64)
# ---------------------------------------------------------------------------------------------


def reference(config) -> np.ndarray:
    name, kwargs = config["name"], dict(config.get("kwargs", {}))
    x, t, reduction = config["x"], config["target"], config["reduction"]
    if name == "cross_entropy":
        return ref.cross_entropy(
            x, t, config["weight"], config["ignore_index"], reduction, config["label_smoothing"]
        )
    if name == "nll_loss":
        return ref.nll_loss(x, t, config["weight"], config["ignore_index"], reduction)
    return getattr(ref, name)(x, t, reduction=reduction, **kwargs)


@pytest.mark.parametrize("config", CONFIGS[::2], ids=lambda c: c["id"])
def test_matches_reference(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # size mismatch, kl_div 'mean'
        out, _ = call(cl, config, np.float64, config["x"], config["target"])
    expected = reference(config)
    assert value(out).shape == np.shape(expected)
    np.testing.assert_allclose(value(out), expected, equal_nan=True, **REF_TOL)


def test_reference_cross_entropy_by_hand():
    """A two-class case worked on paper: logits (0, log 3) give p = (1/4, 3/4)."""
    x = np.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]])
    target = np.array([1, 0])
    losses = F.cross_entropy(x, target, reduction="none")
    np.testing.assert_allclose(value(losses), [-np.log(0.75), -np.log(0.25)], **REF_TOL)
    weighted = F.cross_entropy(x, target, weight=np.array([1.0, 3.0]))
    expected = (3 * -np.log(0.75) + 1 * -np.log(0.25)) / 4  # divided by w_1 + w_0, not by N
    np.testing.assert_allclose(value(weighted), expected, **REF_TOL)
    smoothed = F.cross_entropy(x[:1], target[:1], label_smoothing=0.2)
    expected = -(0.9 * np.log(0.75) + 0.1 * np.log(0.25))  # target (0.1, 0.9)
    np.testing.assert_allclose(value(smoothed), expected, **REF_TOL)


# ---------------------------------------------------------------------------------------------
# 2. Finite differences (float64)
# ---------------------------------------------------------------------------------------------


def _gradcheck_ok(config) -> bool:
    # L1-type losses have kinks where x == y; BCE's clamp where x is 0 or 1; an all-ignored
    # mean is a constant nan: skip those draws.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if not np.all(np.isfinite(reference(config))):
            return False
    if config["name"] in ("l1_loss", "smooth_l1_loss"):
        x, t = np.broadcast_arrays(config["x"], config["target"])
        beta = config.get("kwargs", {}).get("beta", 0.0)
        d = np.abs(x - t)
        return bool(np.all(d > 1e-3) and np.all(np.abs(d - beta) > 1e-3))
    if config["name"] == "binary_cross_entropy":
        return bool(np.all((config["x"] > 1e-3) & (config["x"] < 1 - 1e-3)))
    if config["name"] == "kl_div" and not config["kwargs"]["log_target"]:
        return bool(np.all(config["target"] > 1e-3))
    return True


@pytest.mark.parametrize(
    "config", [c for c in CONFIGS[1::3] if _gradcheck_ok(c)], ids=lambda c: c["id"]
)
def test_gradcheck(config):
    x = cl.tensor(config["x"], requires_grad=True)
    t_grad = differentiable_target(config)
    t = cl.tensor(config["target"], requires_grad=t_grad)
    inputs = [x, t]
    w = None
    if weight_has_grad(config):
        w_value = (
            config["weight"] if config["name"] == "cross_entropy" else config["kwargs"]["weight"]
        )
        w = cl.tensor(w_value, requires_grad=True)
        inputs.append(w)

    def fn(x_, t_, w_=None):
        local = dict(config)
        if w_ is not None:
            if config["name"] == "cross_entropy":
                local["weight"] = w_
            else:
                local["kwargs"] = {**config["kwargs"], "weight": w_}
        return call_with_weight_tensor(local, x_, t_)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert cl.gradcheck(fn, tuple(inputs))


def call_with_weight_tensor(config, x, t):
    """Like ``call``, but a weight already given as a Tensor is passed through untouched."""
    name, kwargs = config["name"], dict(config.get("kwargs", {}))
    if name in ("cross_entropy", "nll_loss"):
        kwargs["weight"] = config["weight"]
        kwargs["ignore_index"] = config["ignore_index"]
        if name == "cross_entropy":
            kwargs["label_smoothing"] = config["label_smoothing"]
    return getattr(F, name)(x, t, reduction=config["reduction"], **kwargs)


def test_gradcheck_cross_entropy_spatial_smoothing_weights():
    rng = np.random.default_rng(11)
    x = cl.tensor(rng.normal(size=(2, 4, 3, 2)), requires_grad=True)
    target = np.array(rng.integers(0, 4, (2, 3, 2)))
    target[0, 0, 0] = -100
    for reduction in REDUCTIONS:
        assert cl.gradcheck(
            lambda t, reduction=reduction: F.cross_entropy(
                t,
                target,
                weight=np.array([0.5, 1.0, 2.0, 0.0]),
                reduction=reduction,
                label_smoothing=0.3,
            ),
            (x,),
        )


# ---------------------------------------------------------------------------------------------
# 3. PyTorch 2.13: >= 150 random configurations, forward and every gradient
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c["id"])
def test_matches_torch(torch, config):
    for dtype in (np.float64, np.float32):
        x = config["x"].astype(dtype)
        target = config["target"]
        if target.dtype.kind == "f":
            target = target.astype(dtype)
        t_grad = differentiable_target(config)
        w_grad = weight_has_grad(config)
        tx, cx = torch.tensor(x, requires_grad=True), cl.tensor(x, requires_grad=True)
        tt = torch.tensor(target, requires_grad=t_grad)
        ct = cl.tensor(target, requires_grad=t_grad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ty, t_leaves = call(torch, config, dtype, tx, tt, w_grad)
            cy, c_leaves = call(cl, config, dtype, cx, ct, w_grad)
        g = np.random.default_rng(5).normal(size=tuple(ty.shape)).astype(dtype)
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        tol = TOL64 if dtype == np.float64 else TOL32
        expected = ty.detach().numpy()
        assert value(cy).dtype == expected.dtype and value(cy).shape == expected.shape
        np.testing.assert_allclose(value(cy), expected, equal_nan=True, **tol)
        np.testing.assert_allclose(value(cx.grad), tx.grad.numpy(), equal_nan=True, **tol)
        if t_grad:
            np.testing.assert_allclose(value(ct.grad), tt.grad.numpy(), equal_nan=True, **tol)
        for key, leaf in t_leaves.items():
            grad = c_leaves[key].grad
            np.testing.assert_allclose(value(grad), leaf.grad.numpy(), equal_nan=True, **tol)


SPECIAL_CROSS_ENTROPY = [
    ("all ignored, mean -> nan, zero gradient", [[1.0, 2.0], [0.5, 0.0]], [-100, -100], {}),
    ("all ignored with smoothing", [[1.0, 2.0], [0.5, 0.0]], [-100, -100],
     {"label_smoothing": 0.3}),
    ("zero total weight", [[1.0, 2.0], [0.5, 0.0]], [1, 1], {"weight": [1.0, 0.0]}),
    ("zero total weight, smoothing", [[1.0, 2.0], [0.5, 0.0]], [1, -100],
     {"weight": [1.0, 0.0], "label_smoothing": 0.2}),
    ("nan logit", [[np.nan, 2.0], [0.5, 0.0]], [1, 0], {}),
    ("+inf logit", [[np.inf, 2.0], [0.5, 0.0]], [1, 0], {}),
    ("-inf logit picked", [[-np.inf, 2.0], [0.5, 0.0]], [0, 0], {}),
    ("-inf logit, smoothing", [[-np.inf, 2.0], [0.5, 0.0]], [1, 0], {"label_smoothing": 0.1}),
    ("huge logits", [[1e4, -1e4], [-1e4, 1e4]], [1, 1], {"reduction": "sum"}),
    ("empty batch, mean", np.zeros((0, 3)), np.zeros(0, np.int64), {}),
    ("empty batch, sum", np.zeros((0, 3)), np.zeros(0, np.int64), {"reduction": "sum"}),
    ("empty batch, probabilities", np.zeros((0, 3)), np.zeros((0, 3)), {}),
    ("unbatched index", [1.0, -1.0, 0.5], 2, {"label_smoothing": 0.5}),
    ("ignore_index = valid class", [[1.0, 2.0], [0.5, 0.0]], [1, 0], {"ignore_index": 1}),
    ("uint8 targets", [[1.0, 2.0], [0.5, 0.0]], np.array([1, 0], np.uint8), {}),
]  # fmt: skip


@pytest.mark.parametrize("case", SPECIAL_CROSS_ENTROPY, ids=lambda c: c[0])
def test_cross_entropy_special_cases_match_torch(torch, case):
    _, x, target, kwargs = case
    x = np.asarray(x, np.float64)
    target = np.asarray(target)
    kwargs = {k: np.asarray(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    tx, cx = torch.tensor(x, requires_grad=True), cl.tensor(x, requires_grad=True)
    targs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    ty = torch.nn.functional.cross_entropy(tx, torch.tensor(target), **targs)
    cy = F.cross_entropy(cx, target, **kwargs)
    np.testing.assert_allclose(value(cy), ty.detach().numpy(), equal_nan=True, **TOL64)
    if x.size:
        ty.sum().backward()
        cy.sum().backward()
        np.testing.assert_allclose(value(cx.grad), tx.grad.numpy(), equal_nan=True, **TOL64)


def test_bce_and_kl_special_values_match_torch(torch):
    x = np.array([0.0, 1.0, 0.5, 1e-50, 1 - 1e-16])
    t = np.array([0.3, 0.3, 0.3, 1.0, 0.0])
    for dtype in (np.float64, np.float32):
        tx, cx = (
            torch.tensor(x.astype(dtype), requires_grad=True),
            cl.tensor(x.astype(dtype), requires_grad=True),
        )
        tt, ct = (
            torch.tensor(t.astype(dtype), requires_grad=True),
            cl.tensor(t.astype(dtype), requires_grad=True),
        )
        ty = torch.nn.functional.binary_cross_entropy(tx, tt, reduction="sum")
        cy = F.binary_cross_entropy(cx, ct, reduction="sum")
        ty.backward()
        cy.backward()
        tol = TOL64 if dtype == np.float64 else TOL32
        np.testing.assert_allclose(value(cy), ty.detach().numpy(), **tol)
        np.testing.assert_allclose(value(cx.grad), tx.grad.numpy(), **tol)
        np.testing.assert_allclose(value(ct.grad), tt.grad.numpy(), **tol)
    logits = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    for pos_weight in (None, np.array([2.0])):
        tx, cx = torch.tensor(logits, requires_grad=True), cl.tensor(logits, requires_grad=True)
        kwargs_t = {} if pos_weight is None else {"pos_weight": torch.tensor(pos_weight)}
        kwargs_c = {} if pos_weight is None else {"pos_weight": pos_weight}
        ty = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(t), **kwargs_t)
        cy = F.binary_cross_entropy_with_logits(cx, t, **kwargs_c)
        ty.backward()
        cy.backward()
        assert np.isfinite(value(cy))
        np.testing.assert_allclose(value(cy), ty.detach().numpy(), **TOL64)
        np.testing.assert_allclose(value(cx.grad), tx.grad.numpy(), **TOL64)
    # kl_div: target 0 contributes 0, its gradient is nan in torch (0/0 in xlogy's backward).
    q = np.array([0.0, 0.3, np.nan])
    tx, cx = (
        torch.tensor([-1.0, 0.0, 2.0], requires_grad=True),
        cl.tensor([-1.0, 0.0, 2.0], requires_grad=True),
    )
    tq, cq = torch.tensor(q, requires_grad=True), cl.tensor(q, requires_grad=True)
    ty = torch.nn.functional.kl_div(tx, tq, reduction="none")
    cy = F.kl_div(cx, cq, reduction="none")
    ty.sum().backward()
    cy.sum().backward()
    np.testing.assert_allclose(value(cy), ty.detach().numpy(), equal_nan=True, **TOL64)
    np.testing.assert_allclose(value(cq.grad), tq.grad.numpy(), equal_nan=True, **TOL64)


LOSS_MODULES = [
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "ignore_index": 2}, "index"),
    ("CrossEntropyLoss", {"weight": [1.0, 2.0, 0.5]}, "prob"),
    ("NLLLoss", {"reduction": "sum"}, "index"),
    ("MSELoss", {}, "real"),
    ("L1Loss", {"reduction": "none"}, "real"),
    ("SmoothL1Loss", {"beta": 0.5}, "real"),
    ("BCELoss", {"weight": [1.0, 2.0, 0.5]}, "unit"),
    ("BCEWithLogitsLoss", {"pos_weight": [1.0, 2.0, 0.5]}, "unit"),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, "real"),
]


@pytest.mark.parametrize("name,kwargs,kind", LOSS_MODULES, ids=lambda v: str(v)[:30])
def test_loss_modules_match_torch(torch, name, kwargs, kind):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, 3))
    if name == "BCELoss":
        x = rng.uniform(0.05, 0.95, (4, 3))
    target = {
        "index": rng.integers(0, 3, 4),
        "prob": rng.uniform(0, 1, (4, 3)),
        "real": rng.normal(size=(4, 3)),
        "unit": rng.uniform(0, 1, (4, 3)),
    }[kind]
    t_kwargs = {
        k: torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v
        for k, v in kwargs.items()
    }
    c_kwargs = {k: np.array(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    theirs = getattr(torch.nn, name)(**t_kwargs)
    ours = getattr(nn, name)(**c_kwargs)
    assert repr(ours) == repr(theirs)
    assert sorted(n for n, _ in ours.named_buffers()) == sorted(
        n for n, _ in theirs.named_buffers()
    )
    expected = theirs(torch.tensor(x), torch.tensor(target)).numpy()
    np.testing.assert_allclose(value(ours(cl.tensor(x), cl.tensor(target))), expected, **TOL64)


# ---------------------------------------------------------------------------------------------
# Behaviour without torch
# ---------------------------------------------------------------------------------------------


def test_weighted_mean_divides_by_kept_weights_and_all_ignored_is_nan():
    x = np.log(np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]))
    target = np.array([0, 1, -100])
    w = np.array([2.0, 1.0])
    expected = (2 * -np.log(0.5) + 1 * -np.log(0.1)) / 3.0
    np.testing.assert_allclose(value(F.nll_loss(x, target, weight=w)), expected, **REF_TOL)
    np.testing.assert_allclose(value(F.cross_entropy(x, target, weight=w)), expected, **REF_TOL)
    xt = cl.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, np.array([-100, -100, -100]))
    assert np.isnan(value(loss))
    loss.backward()
    np.testing.assert_array_equal(value(xt.grad), np.zeros_like(x))


def test_nan_propagates_without_crashing():
    for fn, args in [
        (F.cross_entropy, (np.array([[np.nan, 1.0]]), np.array([0]))),
        (F.nll_loss, (np.array([[np.nan, 1.0]]), np.array([0]))),
        (F.mse_loss, (np.array([np.nan, 1.0]), np.array([0.0, 0.0]))),
        (F.l1_loss, (np.array([np.nan, 1.0]), np.array([0.0, 0.0]))),
        (F.smooth_l1_loss, (np.array([np.nan, 1.0]), np.array([0.0, 0.0]))),
        (F.binary_cross_entropy_with_logits, (np.array([np.nan, 1.0]), np.array([0.0, 1.0]))),
        (F.kl_div, (np.array([np.nan, 1.0]), np.array([0.5, 0.5]), None, None, "sum")),
    ]:
        x = cl.tensor(args[0], requires_grad=True)
        loss = fn(x, *args[1:])
        assert np.isnan(value(loss))
        loss.backward()


def test_float32_stays_float32_and_mixed_probabilities_promote():
    x = np.random.default_rng(13).normal(size=(3, 4)).astype(np.float32)
    assert F.cross_entropy(x, np.array([0, 1, 2])).dtype == np.float32
    assert F.cross_entropy(x, np.full((3, 4), 0.25)).dtype == np.float64
    assert F.mse_loss(x, x.astype(np.float64)).dtype == np.float64
    assert F.mse_loss(x, np.zeros((3, 4), np.int64)).dtype == np.float32


def test_legacy_arguments_warn_and_set_reduction():
    x, t = np.array([1.0, 3.0]), np.array([0.0, 0.0])
    with pytest.warns(UserWarning, match="reduction='sum' instead"):
        assert value(F.mse_loss(x, t, size_average=False)) == 10.0
    with pytest.warns(UserWarning, match="reduction='none' instead"):
        assert nn.L1Loss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning, match="elementwise_mean"):
        assert value(F.l1_loss(x, t, reduction="elementwise_mean")) == 2.0
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(x, t)


def test_weight_requiring_grad_is_refused_where_torch_refuses():
    w = cl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = np.zeros((2, 2))
    for fn, args in [
        (F.cross_entropy, (x, np.array([0, 1]))),
        (F.nll_loss, (x, np.array([0, 1]))),
        (F.binary_cross_entropy, (np.full((2, 2), 0.5), np.full((2, 2), 0.5))),
    ]:
        with pytest.raises(RuntimeError, match="not differentiable with respect to argument"):
            fn(*args, weight=w)
    with pytest.raises(RuntimeError, match="argument 'pos_weight'"):
        F.binary_cross_entropy_with_logits(x, x, pos_weight=w)
    with cl.no_grad():
        F.nll_loss(x, np.array([0, 1]), weight=w)


# ---------------------------------------------------------------------------------------------
# 4. Errors: torch's exception type and message
# ---------------------------------------------------------------------------------------------


def _f(shape, dtype=np.float32, fill=0.5):
    return np.full(shape, fill, dtype)


def _i(values, dtype=np.int64):
    return np.array(values, dtype)


ERROR_CASES = [
    ("cross_entropy", (_f((3, 5)), _i([0, 12, 2])), {}),
    ("cross_entropy", (_f((3, 5)), _i([0, -1, 2])), {}),
    ("cross_entropy", (_f((3, 5)), _i([0, 2])), {}),
    ("cross_entropy", (_f((3, 5)), _i([0, 1, 2])), {"label_smoothing": 1.5}),
    ("cross_entropy", (_f((3, 5)), _i(np.zeros((3, 5), int))), {}),
    ("cross_entropy", (_f((3, 5)), _f((3, 5))), {"ignore_index": 1}),
    ("cross_entropy", (_f((3, 5)), _i([0, 1, 2])), {"reduction": "foo"}),
    ("cross_entropy", (_f((3, 5)), _i([0, 1, 2], np.int32)), {}),
    ("cross_entropy", (_f((3, 5)), _f((3,))), {}),
    ("cross_entropy", (_f((3, 5)), _i([0, 1, 2])), {"weight": _f(4)}),
    ("cross_entropy", (_f((3, 5)), _i([0, 1, 2])), {"weight": _f((5, 1))}),
    ("cross_entropy", (_f((3, 5)), _i([0, 1, 2])), {"weight": _f(5, np.float64)}),
    ("cross_entropy", (_f((2, 3)), _f((2, 3))), {"weight": _f(4)}),
    ("cross_entropy", (_f((2, 3, 4)), _i(np.zeros((2, 5), int))), {}),
    ("cross_entropy", (_f((2, 3, 4)), _i(np.zeros((3, 4), int))), {}),
    ("cross_entropy", (_f((3, 5)), _i(1)), {}),
    ("cross_entropy", (_f((3, 5)), _i(np.zeros((3, 4), int))), {}),
    ("cross_entropy", (_f(5), _i([2, 1])), {}),
    ("cross_entropy", (_i(np.zeros((2, 3), int)), _i([0, 1])), {}),
    ("nll_loss", (_f(()), _i(0)), {}),
    ("nll_loss", (_f((3, 5)), _f((3, 5))), {}),
    ("nll_loss", (_f((3, 5)), _i([0, 7, 2])), {}),
    ("nll_loss", (_f((2, 3, 4, 5, 2)), _i(np.zeros((2, 4, 5, 3), int))), {}),
    ("nll_loss", (_i(np.zeros((2, 3), int)), _i([0, 1])), {}),
    ("mse_loss", (_f(3), _f(3)), {"reduction": "batchmean"}),
    ("mse_loss", (_f(3), _f(4)), {}),
    ("mse_loss", (_f(3), _f(3)), {"weight": _f(1)}),
    ("mse_loss", (_i([1, 2]), _i([1, 2])), {}),
    ("l1_loss", (_f(3), _f(3)), {"reduction": None}),
    ("smooth_l1_loss", (_f(3), _f(3)), {"beta": -1.0}),
    ("smooth_l1_loss", (_i([1, 2]), _i([1, 2])), {}),
    ("binary_cross_entropy", (_f((3, 1)), _f(3)), {}),
    ("binary_cross_entropy", (_f(3, fill=1.5), _f(3)), {}),
    ("binary_cross_entropy", (_f(3, fill=np.nan), _f(3)), {}),
    ("binary_cross_entropy", (_f(3), _f(3, fill=-0.5)), {}),
    ("binary_cross_entropy", (_f(3), _f(3, np.float64)), {}),
    ("binary_cross_entropy", (_f((3, 1)), _f((3, 1))), {"weight": _f(3)}),
    ("binary_cross_entropy", (_i([1, 0]), _i([1, 0])), {}),
    ("binary_cross_entropy_with_logits", (_f((3, 1)), _f(3)), {}),
    ("binary_cross_entropy_with_logits", (_f((3, 1)), _f((3, 1))), {"pos_weight": _f(2)}),
    ("binary_cross_entropy_with_logits", (_f(3), _f(3)), {"weight": _f(2)}),
    ("binary_cross_entropy_with_logits", (_f(3), _i([1, 0, 1])), {}),
    ("kl_div", (_f(3), _f(4)), {"reduction": "sum"}),
    ("kl_div", (_f(3), _i([1, 0, 1])), {"reduction": "sum"}),
    ("kl_div", (_f(3), _f(3)), {"reduction": "foo"}),
]


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: f"{c[0]}-{sorted(c[2])}")
def test_errors_match_torch(torch, case):
    """Same exception type and message as torch (the message with lists for torch.Size)."""
    name, args, kwargs = case
    with pytest.raises(Exception) as theirs_error:
        getattr(torch.nn.functional, name)(
            *(torch.tensor(a) for a in args),
            **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()},
        )
    with pytest.raises(type(theirs_error.value)) as ours_error:
        getattr(F, name)(*args, **kwargs)
    theirs_message = str(theirs_error.value).replace("torch.Size(", "").replace("])", "]")
    ours_message = str(ours_error.value)
    if "label_smoothing" in theirs_message:  # torch prints 1.5 as "1.5", a float as C++ does
        assert ours_message.startswith("label_smoothing must be between 0.0 and 1.0. Got: 1.5")
    else:
        assert ours_message == theirs_message


def test_errors_without_torch():
    with pytest.raises(IndexError, match=r"Target 12 is out of bounds\."):
        F.cross_entropy(_f((3, 5)), _i([0, 12, 2]))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target"):
        F.cross_entropy(_f((3, 5)), _i([0, 2]))
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(_f((3, 5)), _i([0, 1, 2]), label_smoothing=1.01)
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.l1_loss(_f(3), _f(3), reduction="foo")
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(_f(2, fill=2.0), _f(2))
    with pytest.raises(TypeError, match="argument 'target' must be a Tensor or numpy.ndarray"):
        F.cross_entropy(_f((2, 2)), [0, 1])
