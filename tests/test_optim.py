"""Optimisers: lockstep parity with torch.optim 2.13, checkpoints, param groups and errors.

The parity tests give both libraries the same initial parameters and the same gradient
sequence (random, with some steps where a parameter has no gradient), step them together for
25 steps, and compare the parameters after every step and the optimiser state at the end, for
every combination of options, in float32 and float64.

Tolerances: float64 1e-12 (both libraries evaluate the same operations in the same order; torch
fuses some multiply-adds, which changes the last bit of a step). Float32 1e-6, which is ~10
float32 ulps accumulated over 25 steps. The float32 centered-RMSprop configurations keep
``alpha >= 0.6``: with a smaller alpha, ``sqrt(square_avg - grad_avg**2)`` cancels to a few
significant bits on some steps and a last-bit difference grows to ~5e-6; the lerp branch that
such an alpha reaches is covered by ``test_lerp_matches_torch`` and by Adam with
``betas[0] < 0.5``, and in float64 by alpha=0.3.
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
import pytest

import convlab as cl
from convlab.optim import SGD, Adam, AdamW, Optimizer, RMSprop
from convlab.optim.optimizer import _lerp_

OURS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-6, atol=1e-6)}
SHAPES = [(4, 5), (7,), ()]
STEPS = 25


def _configs() -> list[tuple[str, dict, type]]:
    out = []
    for dtype in (np.float32, np.float64):
        for m, d, nest, wd, mx in itertools.product(
            [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.05], [False, True]
        ):
            if nest and (m == 0 or d != 0):
                continue
            kw = dict(lr=0.1, momentum=m, dampening=d, nesterov=nest, weight_decay=wd, maximize=mx)
            out.append(("SGD", kw, dtype))
        for name in ("Adam", "AdamW"):
            for ams, wd, mx, betas in itertools.product(
                [False, True], [0.0, 0.1], [False, True], [(0.9, 0.999), (0.3, 0.6)]
            ):
                kw = dict(lr=0.01, betas=betas, weight_decay=wd, amsgrad=ams, maximize=mx)
                out.append((name, kw, dtype))
        for cen, m, wd, mx, alpha in itertools.product(
            [False, True], [0.0, 0.5], [0.0, 0.1], [False, True], [0.99, 0.6, 0.3]
        ):
            if cen and alpha == 0.3 and dtype == np.float32:
                continue  # ill-conditioned in float32: see the module docstring
            kw = dict(lr=0.01, alpha=alpha, momentum=m, weight_decay=wd, centered=cen, maximize=mx)
            out.append(("RMSprop", kw, dtype))
    out.append(("Adam", dict(decoupled_weight_decay=True, weight_decay=0.1), np.float64))
    out.append(("Adam", dict(eps=0.5, lr=0.2), np.float32))
    return out


CONFIGS = _configs()


def _config_id(config) -> str:
    name, kw, dtype = config
    opts = "-".join(f"{k}={v}" for k, v in kw.items() if k != "lr")
    return f"{name}-{np.dtype(dtype).name}-{opts}"


def _problem(dtype, seed: int = 0):
    """Initial parameters and a gradient sequence; None marks a parameter without a gradient."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = []
    for k in range(STEPS):
        step = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        if k % 7 == 3:
            step[1] = None  # this parameter is skipped on this step (state untouched)
        grads.append(step)
    return init, grads


def _set_grads(torch, tparams, cparams, grads) -> None:
    for t, c, g in zip(tparams, cparams, grads):
        t.grad = None if g is None else torch.tensor(g)
        c.grad = None if g is None else cl.Tensor(g.copy())


def _assert_params(tparams, cparams, dtype, where="") -> None:
    for i, (t, c) in enumerate(zip(tparams, cparams)):
        assert c.data.dtype == dtype
        np.testing.assert_allclose(
            c.data, t.detach().numpy(), **TOL[dtype], err_msg=f"param {i} {where}"
        )


def _assert_state(topt, copt, tparams, cparams, dtype) -> None:
    for t, c in zip(tparams, cparams):
        tstate, cstate = topt.state.get(t, {}), copt.state.get(c, {})
        assert set(cstate) == set(tstate)
        for key, value in tstate.items():
            ours = cstate[key]
            assert isinstance(ours, np.ndarray)
            if key == "step":
                assert float(ours) == float(value) and ours.dtype == np.float32
            else:
                assert ours.dtype == dtype
                np.testing.assert_allclose(ours, value.numpy(), **TOL[dtype], err_msg=key)


def _build(torch, name, kw, init):
    tparams = [torch.tensor(a, requires_grad=True) for a in init]
    cparams = [cl.Tensor(a.copy(), requires_grad=True) for a in init]
    return tparams, cparams, getattr(torch.optim, name)(tparams, **kw), OURS[name](cparams, **kw)


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_lockstep_with_torch(torch, config):
    name, kw, dtype = config
    init, grads = _problem(dtype)
    tparams, cparams, topt, copt = _build(torch, name, kw, init)
    for k in range(STEPS):
        _set_grads(torch, tparams, cparams, grads[k])
        topt.step()
        copt.step()
        _assert_params(tparams, cparams, dtype, f"after step {k + 1}")
    _assert_state(topt, copt, tparams, cparams, dtype)


# -- reference: the algorithms as the torch.optim documentation writes them, one element at a
# time in Python floats (float64), independent of NumPy's vectorised code and of torch ----------


def _reference_sgd(theta, grads, lr, momentum, dampening, weight_decay, nesterov, maximize):
    buf, started = 0.0, False
    for g in grads:
        if g is None:
            continue
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            buf = momentum * buf + (1 - dampening) * g if started else g
            started = True
            g = g + momentum * buf if nesterov else buf
        theta = theta - lr * g
    return theta


def _reference_adam(
    theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
    maximize=False, decoupled_weight_decay=False,
):  # fmt: skip
    (b1, b2), m, v, v_max, t = betas, 0.0, 0.0, 0.0, 0
    for g in grads:
        if g is None:
            continue
        t += 1
        g = -g if maximize else g
        if weight_decay and decoupled_weight_decay:
            theta = theta - lr * weight_decay * theta
        elif weight_decay:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = max(v_max, v)
        m_hat = m / (1 - b1**t)
        v_hat = (v_max if amsgrad else v) / (1 - b2**t)
        theta = theta - lr * m_hat / (v_hat**0.5 + eps)
    return theta


def _reference_rmsprop(
    theta, grads, lr, alpha, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
    maximize=False,
):  # fmt: skip
    v, g_avg, buf = 0.0, 0.0, 0.0
    for g in grads:
        if g is None:
            continue
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g * g
        v_tilde = v
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            v_tilde = v_tilde - g_avg * g_avg
        if momentum > 0:
            buf = momentum * buf + g / (v_tilde**0.5 + eps)
            theta = theta - lr * buf
        else:
            theta = theta - lr * g / (v_tilde**0.5 + eps)
    return theta


REFERENCES = {
    "SGD": lambda theta, grads, kw: _reference_sgd(theta, grads, **kw),
    "Adam": lambda theta, grads, kw: _reference_adam(theta, grads, **kw),
    "AdamW": lambda theta, grads, kw: _reference_adam(
        theta, grads, **{"weight_decay": 1e-2, **kw, "decoupled_weight_decay": True}
    ),
    "RMSprop": lambda theta, grads, kw: _reference_rmsprop(theta, grads, **kw),
}


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[2] == np.float64], ids=_config_id)
def test_matches_the_documented_algorithm(config):
    """float64 against the element-by-element reference, to 1e-12 (no torch needed)."""
    name, kw, dtype = config
    init, grads = _problem(dtype)
    params = [cl.Tensor(a.copy(), requires_grad=True) for a in init]
    opt = OURS[name](params, **kw)
    for k in range(STEPS):
        for p, g in zip(params, grads[k]):
            p.grad = None if g is None else cl.Tensor(g.copy())
        opt.step()
    for i, (p, start) in enumerate(zip(params, init)):
        expected = np.empty_like(start)
        for index in np.ndindex(start.shape):
            history = [None if step[i] is None else float(step[i][index]) for step in grads]
            expected[index] = REFERENCES[name](float(start[index]), history, kw)
        np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-12, err_msg=f"param {i}")


def test_lerp_matches_torch(torch):
    """Both of torch.lerp's formulas (weight below and above 0.5), in float64."""
    rng = np.random.default_rng(1)
    for weight in (0.1, 0.49, 0.5, 0.7, 1.0):
        start, end = rng.standard_normal(50), rng.standard_normal(50)
        expected = torch.tensor(start).lerp(torch.tensor(end), weight).numpy()
        _lerp_(start, end, weight, np.empty_like(start))
        np.testing.assert_allclose(start, expected, rtol=1e-15, atol=1e-15)


GROUP_CASES = [
    ("SGD", dict(lr=0.1), [dict(momentum=0.9, nesterov=True), dict(lr=0.01, weight_decay=0.1)]),
    ("Adam", dict(lr=0.01), [dict(amsgrad=True), dict(betas=(0.5, 0.9), maximize=True)]),
    ("AdamW", dict(), [dict(weight_decay=0.0), dict(lr=0.05, eps=1e-3)]),
    ("RMSprop", dict(momentum=0.3), [dict(centered=True), dict(momentum=0.0, alpha=0.5)]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_param_groups_with_their_own_options(torch, case, dtype):
    name, defaults, options = case
    init, grads = _problem(dtype, seed=2)
    tparams = [torch.tensor(a, requires_grad=True) for a in init]
    cparams = [cl.Tensor(a.copy(), requires_grad=True) for a in init]
    split = [slice(0, 1), slice(1, 3)]
    topt = getattr(torch.optim, name)(
        [dict(params=tparams[s], **o) for s, o in zip(split, options)], **defaults
    )
    copt = OURS[name]([dict(params=cparams[s], **o) for s, o in zip(split, options)], **defaults)
    for ours, theirs in zip(copt.param_groups, topt.param_groups):
        for key, value in ours.items():
            if key != "params":
                assert value == theirs[key], key
    for k in range(STEPS):
        _set_grads(torch, tparams, cparams, grads[k])
        topt.step()
        copt.step()
        _assert_params(tparams, cparams, dtype, f"after step {k + 1}")
    _assert_state(topt, copt, tparams, cparams, dtype)


def _torch_state_dict_as_numpy(torch, state_dict):
    def conv(v):
        if isinstance(v, torch.Tensor):
            return v.detach().numpy().copy()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {"state": conv(state_dict["state"]), "param_groups": state_dict["param_groups"]}


STATE_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
]


@pytest.mark.parametrize("case", STATE_CASES, ids=[f"{c[0]}-{len(c[1])}" for c in STATE_CASES])
def test_state_dict_round_trip_continues_identically(torch, case):
    name, kw = case
    dtype = np.float64
    init, grads = _problem(dtype, seed=3)
    tparams, cparams, topt, copt = _build(torch, name, kw, init)
    for k in range(10):
        _set_grads(torch, tparams, cparams, grads[k])
        topt.step()
        copt.step()

    saved = copt.state_dict()
    tsaved = topt.state_dict()
    # torch's layout: state keyed by index, groups list their parameters' indices.
    assert set(saved["state"]) == set(tsaved["state"])
    assert [g["params"] for g in saved["param_groups"]] == [
        g["params"] for g in tsaved["param_groups"]
    ]
    for group, tgroup in zip(saved["param_groups"], tsaved["param_groups"]):
        assert {k: tgroup[k] for k in group} == group
    for index, entry in saved["state"].items():
        assert set(entry) == set(tsaved["state"][index])
        assert all(isinstance(v, np.ndarray) for v in entry.values())

    # A fresh optimiser on copies of the parameters, restored from our checkpoint, and another
    # restored from torch's checkpoint (tensors turned into arrays), both continue as torch does.
    restored_params = [cl.Tensor(c.data.copy(), requires_grad=True) for c in cparams]
    restored = OURS[name](restored_params, lr=123.0)
    restored.load_state_dict(saved)
    from_torch_params = [cl.Tensor(c.data.copy(), requires_grad=True) for c in cparams]
    from_torch = OURS[name](from_torch_params, lr=123.0)
    from_torch.load_state_dict(_torch_state_dict_as_numpy(torch, tsaved))
    assert restored.param_groups[0]["lr"] == kw["lr"]
    for k in range(10, STEPS):
        _set_grads(torch, tparams, cparams, grads[k])
        _set_grads(torch, tparams, restored_params, grads[k])
        _set_grads(torch, tparams, from_torch_params, grads[k])
        topt.step()
        copt.step()
        restored.step()
        from_torch.step()
        for params in (cparams, restored_params, from_torch_params):
            _assert_params(tparams, params, dtype, f"after step {k + 1}")
    np.testing.assert_array_equal(restored_params[0].data, cparams[0].data)


def test_load_state_dict_copies_and_casts_arrays():
    p64 = cl.Tensor(np.ones(3), requires_grad=True)
    opt = Adam([p64])
    p64.grad = cl.Tensor(np.full(3, 0.5))
    opt.step()
    saved = opt.state_dict()
    p32 = cl.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    other = Adam([p32])
    other.load_state_dict(saved)
    state = other.state[p32]
    assert state["exp_avg"].dtype == np.float32
    assert state["step"].dtype == np.float32 and float(state["step"]) == 1.0
    assert state["exp_avg_sq"] is not saved["state"][0]["exp_avg_sq"]


def test_load_state_dict_mismatch_errors():
    a = cl.Tensor(np.ones(2), requires_grad=True)
    b = cl.Tensor(np.ones(2), requires_grad=True)
    saved = SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        SGD([a], lr=0.1).load_state_dict(saved)


def test_adamw_stays_decoupled_after_loading_adam_state():
    p = cl.Tensor(np.ones(2), requires_grad=True)
    saved = Adam([p]).state_dict()
    opt = AdamW([p])
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_quadratic_through_autograd_matches_torch(torch):
    """The whole loop: loss, backward, step; each library differentiates its own parameters."""
    rng = np.random.default_rng(4)
    a = rng.random((3, 4)) + 0.5
    c = rng.standard_normal((3, 4))
    w0 = rng.standard_normal((3, 4))
    for name, kw in [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.1))]:
        tw = torch.tensor(w0, requires_grad=True)
        cw = cl.Tensor(w0.copy(), requires_grad=True)
        topt, copt = getattr(torch.optim, name)([tw], **kw), OURS[name]([cw], **kw)
        ta, tc, ca, cc = torch.tensor(a), torch.tensor(c), cl.tensor(a), cl.tensor(c)
        for _ in range(30):
            topt.zero_grad()
            (ta * (tw - tc) ** 2).sum().backward()
            topt.step()
            loss = copt.step(functools.partial(_quadratic, copt, cw, ca, cc))
            assert isinstance(loss, cl.Tensor)
        np.testing.assert_allclose(cw.data, tw.detach().numpy(), rtol=1e-12, atol=1e-12)


def _quadratic(opt, w, a, c):
    opt.zero_grad()
    loss = (a * (w - c) ** 2).sum()
    loss.backward()
    return loss


def test_closure_runs_with_grad_enabled_inside_no_grad():
    w = cl.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with cl.no_grad():
        loss = opt.step(closure)
    assert float(loss) == 5.0
    np.testing.assert_allclose(w.data, [0.8, -1.6], rtol=1e-15)
    assert opt.step() is None


def test_step_updates_param_data_in_place_and_never_writes_grad():
    w = cl.Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    data = w.data
    grad = np.broadcast_to(np.float32(0.5), (2, 3))  # read-only, stride 0
    w.grad = cl.Tensor(grad)
    for opt in (SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True), Adam([w])):
        opt.step()
        opt.step()
    assert w.data is data and w.data.dtype == np.float32
    assert np.all(grad == 0.5)


def test_params_without_grad_are_skipped_and_get_no_state():
    a = cl.Tensor(np.ones(2), requires_grad=True)
    b = cl.Tensor(np.ones(2), requires_grad=True)
    for cls in (SGD, Adam, RMSprop):
        opt = cls([a, b], lr=0.1, momentum=0.5) if cls is not Adam else cls([a, b])
        a.grad = cl.Tensor(np.ones(2))
        b.grad = None
        opt.step()
        assert b not in opt.state and np.all(b.data == 1.0)
        assert np.all(a.data != 1.0)
        a.data[...] = 1.0


def test_zero_grad():
    w = cl.Tensor(np.ones(3), requires_grad=True)
    opt = SGD([w], lr=0.1)
    w.grad = cl.Tensor(np.full(3, 2.0))
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and np.all(grad.data == 0)
    opt.zero_grad()
    assert w.grad is None
    w.grad = cl.Tensor(np.broadcast_to(1.0, (3,)))
    opt.zero_grad(set_to_none=False)
    assert np.all(w.grad.data == 0)


def test_add_param_group_and_defaults(torch):
    a = cl.Tensor(np.ones(2), requires_grad=True)
    b = cl.Tensor(np.ones(3), requires_grad=True)
    opt = SGD([a], lr=0.5, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.1})
    assert opt.param_groups[1]["params"] == [b] or opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.1
    assert opt.defaults == dict(
        lr=0.5, momentum=0.9, dampening=0, weight_decay=0, nesterov=False, maximize=False
    )
    assert "Parameter Group 1" in repr(opt)
    # Defaults equal torch 2.13's.
    t = torch.tensor([1.0], requires_grad=True)
    for name, cls in OURS.items():
        ours = cls([cl.Tensor(np.ones(1), requires_grad=True)]).defaults
        theirs = getattr(torch.optim, name)([t]).defaults
        assert {k: theirs[k] for k in ours} == ours, name


def test_named_parameters_are_accepted():
    a = cl.Tensor(np.ones(2), requires_grad=True)
    opt = SGD([("a", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["a"]


def test_optim_is_reachable_from_the_package():
    assert cl.optim.SGD is SGD
    assert cl.optim.lr_scheduler.StepLR.__name__ == "StepLR"
    assert issubclass(cl.optim.AdamW, cl.optim.Adam) and issubclass(SGD, Optimizer)


def test_works_with_module_parameters():
    import convlab.nn as nn

    layer = nn.Conv2d(1, 2, 3)
    opt = SGD(layer.parameters(), lr=0.1)
    weight = layer.weight.data.copy()
    layer(cl.randn(1, 1, 5, 5)).sum().backward()
    opt.step()
    np.testing.assert_allclose(
        layer.weight.data, weight - 0.1 * layer.weight.grad.data, rtol=1e-6, atol=1e-7
    )


# -- errors: each rule torch enforces, with torch's exception type and message -----------------

P = [cl.Tensor(np.ones(1), requires_grad=True)]

BAD_ARGUMENTS = [
    ("SGD", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("SGD", dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    ("SGD", dict(weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    ("SGD", dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (
        "SGD",
        dict(nesterov=True, momentum=0.9, dampening=0.1),
        "Nesterov momentum requires a momentum and zero dampening",
    ),
    ("Adam", dict(lr=-1.0), "Invalid learning rate: -1.0"),
    ("Adam", dict(lr=float("nan")), "Invalid learning rate: nan"),
    ("Adam", dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    ("Adam", dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    ("Adam", dict(betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
    ("Adam", dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    ("Adam", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    ("AdamW", dict(lr=-0.5), "Invalid learning rate: -0.5"),
    ("AdamW", dict(betas=(0.9, -0.2)), "Invalid beta parameter at index 1: -0.2"),
    ("AdamW", dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    ("RMSprop", dict(lr=-0.01), "Invalid learning rate: -0.01"),
    ("RMSprop", dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    ("RMSprop", dict(momentum=-0.9), "Invalid momentum value: -0.9"),
    ("RMSprop", dict(weight_decay=-2.0), "Invalid weight_decay value: -2.0"),
    ("RMSprop", dict(alpha=-0.99), "Invalid alpha value: -0.99"),
]


def _bad_id(case) -> str:
    return f"{case[0]}-" + "-".join(f"{k}={v}" for k, v in case[1].items())


@pytest.mark.parametrize("case", BAD_ARGUMENTS, ids=_bad_id)
def test_invalid_hyper_parameters(case):
    name, kw, message = case
    with pytest.raises(ValueError) as info:
        OURS[name](P, **kw)
    assert str(info.value) == message


@pytest.mark.parametrize("case", BAD_ARGUMENTS, ids=_bad_id)
def test_invalid_hyper_parameters_match_torch(torch, case):
    name, kw, message = case
    with pytest.raises(ValueError) as info:
        getattr(torch.optim, name)([torch.ones(1, requires_grad=True)], **kw)
    assert str(info.value) == message


def test_bad_params_arguments():
    a = cl.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got"):
        SGD(a, lr=0.1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the"):
        SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        SGD([a * 2], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        SGD([{"params": {a}}], lr=0.1)
    with pytest.raises(TypeError, match="param_group must be a dict"):
        SGD([a], lr=0.1).add_param_group([a])


def test_a_parameter_in_two_groups_raises_like_torch(torch):
    a = cl.Tensor(np.ones(2), requires_grad=True)
    message = "some parameters appear in more than one parameter group"
    with pytest.raises(ValueError) as info:
        SGD([{"params": [a]}, {"params": [a], "lr": 0.1}], lr=0.1)
    assert str(info.value) == message
    opt = Adam([a])
    with pytest.raises(ValueError, match=message):
        opt.add_param_group({"params": [a]})
    t = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError) as info:
        torch.optim.SGD([{"params": [t]}, {"params": [t], "lr": 0.1}], lr=0.1)
    assert str(info.value) == message


def test_duplicate_parameter_in_one_group_warns():
    a = cl.Tensor(np.ones(2), requires_grad=True)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        SGD([a, a], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SGD([a], lr=0.1)


def test_mixing_named_and_unnamed_groups_raises():
    a = cl.Tensor(np.ones(2), requires_grad=True)
    b = cl.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="all optimizer param groups should be with/without"):
        SGD([{"params": [("a", a)]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="Some param names are missing"):
        SGD([("a", a), b], lr=0.1)
