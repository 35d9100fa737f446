"""Learning-rate schedulers: the same lr (and momentum) sequences as torch 2.13, step by step.

Each parity test builds the same two-group optimiser in both libraries, attaches the same
scheduler and steps both 60+ times, comparing ``get_last_lr()``, every group's ``lr`` and, for
OneCycleLR, the cycled momentum / ``betas``. The comparison is exact (``==``): both libraries
evaluate the same double-precision expressions in the same order, so any difference is a bug.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import convlab as cl
from convlab.optim import SGD, Adam, Optimizer, RMSprop, lr_scheduler

OURS = {"SGD": SGD, "Adam": Adam, "RMSprop": RMSprop}
LRS = (0.1, 0.05)
STEPS = 60


def _optimizers(torch, name="SGD", **kw):
    tgroups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    cgroups = [{"params": [cl.Tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in LRS]
    return getattr(torch.optim, name)(tgroups, **kw), OURS[name](cgroups, **kw)


def _assert_same(tsched, csched, topt, copt, where: str) -> None:
    assert csched.get_last_lr() == tsched.get_last_lr(), where
    assert csched.last_epoch == tsched.last_epoch, where
    for cg, tg in zip(copt.param_groups, topt.param_groups):
        for key in ("lr", "momentum", "betas"):
            if key in tg:
                assert cg[key] == tg[key], f"{key} {where}"


SCHEDULES = [
    ("StepLR", dict(step_size=1), "SGD", {}),
    ("StepLR", dict(step_size=3, gamma=0.5), "SGD", {}),
    ("StepLR", dict(step_size=7, gamma=0.9), "Adam", {}),
    ("MultiStepLR", dict(milestones=[10, 40]), "SGD", {}),
    ("MultiStepLR", dict(milestones=[30, 5, 5, 20], gamma=0.5), "SGD", {}),
    ("MultiStepLR", dict(milestones=(0, 1, 59, 60, 100), gamma=0.3), "RMSprop", {}),
    ("ExponentialLR", dict(gamma=0.9), "SGD", {}),
    ("ExponentialLR", dict(gamma=0.97), "Adam", {}),
    ("ExponentialLR", dict(gamma=1.05), "SGD", {}),
    ("CosineAnnealingLR", dict(T_max=10), "SGD", {}),
    ("CosineAnnealingLR", dict(T_max=25, eta_min=1e-3), "SGD", {}),
    ("CosineAnnealingLR", dict(T_max=60), "Adam", {}),
    ("CosineAnnealingLR", dict(T_max=1, eta_min=0.01), "SGD", {}),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.2), "SGD", {}),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=STEPS), "SGD", dict(momentum=0.9)),
    ("OneCycleLR", dict(max_lr=[0.5, 2.0], total_steps=80), "SGD", dict(momentum=0.5)),
    (
        "OneCycleLR",
        dict(max_lr=0.1, epochs=6, steps_per_epoch=10, anneal_strategy="linear"),
        "SGD",
        dict(momentum=0.9),
    ),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=STEPS, three_phase=True), "Adam", {}),
    (
        "OneCycleLR",
        dict(max_lr=0.3, total_steps=61, three_phase=True, anneal_strategy="linear"),
        "SGD",
        dict(momentum=0.9),
    ),
    (
        "OneCycleLR",
        dict(max_lr=0.01, total_steps=STEPS, pct_start=0.1, base_momentum=[0.8, 0.7]),
        "Adam",
        {},
    ),
    (
        "OneCycleLR",
        dict(
            max_lr=0.05,
            total_steps=STEPS,
            pct_start=0.5,
            cycle_momentum=False,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        "SGD",
        {},
    ),
    ("OneCycleLR", dict(max_lr=0.05, total_steps=70, max_momentum=0.99), "RMSprop", {}),
    ("OneCycleLR", dict(max_lr=0.05, total_steps=STEPS, pct_start=0.0), "SGD", {}),
]


def _schedule_id(case) -> str:
    name, kw, opt, _ = case
    return f"{name}-{opt}-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", SCHEDULES, ids=_schedule_id)
def test_schedule_matches_torch(torch, case):
    name, kw, opt_name, opt_kw = case
    topt, copt = _optimizers(torch, opt_name, **opt_kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    csched = getattr(lr_scheduler, name)(copt, **kw)
    _assert_same(tsched, csched, topt, copt, "at construction")
    for k in range(STEPS):
        topt.step()
        copt.step()
        tsched.step()
        csched.step()
        _assert_same(tsched, csched, topt, copt, f"after step {k + 1}")


def _metrics(seed: int, n: int) -> list[float]:
    """A noisy decreasing curve with exact plateaus and a few jumps."""
    rng = np.random.default_rng(seed)
    values = []
    for k in range(n):
        if 20 <= k < 35:
            values.append(values[-1])  # an exact plateau
        else:
            values.append(float(1.0 / (1 + k / 10) + 0.02 * rng.standard_normal()))
    return values


PLATEAUS = [
    dict(),
    dict(patience=0),
    dict(patience=2, factor=0.5),
    dict(patience=3, cooldown=4, factor=0.3),
    dict(mode="max", patience=1),
    dict(mode="max", threshold_mode="abs", threshold=0.01, patience=2),
    dict(threshold_mode="abs", threshold=0.05, patience=1, min_lr=0.004),
    dict(patience=1, min_lr=[0.02, 0.001], factor=0.2),
    dict(patience=0, eps=0.01, factor=0.9),
    dict(threshold=0.0, patience=1, cooldown=1),
]


@pytest.mark.parametrize("kw", PLATEAUS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_reduce_lr_on_plateau_matches_torch(torch, kw):
    topt, copt = _optimizers(torch, "SGD", momentum=0.9)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    csched = lr_scheduler.ReduceLROnPlateau(copt, **kw)
    sign = -1.0 if kw.get("mode") == "max" else 1.0
    for k, metric in enumerate(_metrics(0, 80)):
        tsched.step(sign * metric)
        csched.step(cl.Tensor(np.array(sign * metric)) if k % 2 else sign * metric)
        _assert_same(tsched, csched, topt, copt, f"after step {k + 1}")
        assert (csched.best, csched.num_bad_epochs, csched.cooldown_counter) == (
            tsched.best,
            tsched.num_bad_epochs,
            tsched.cooldown_counter,
        )


CHAINS = [
    [("StepLR", dict(step_size=5, gamma=0.5)), ("ExponentialLR", dict(gamma=0.95))],
    [("MultiStepLR", dict(milestones=[15, 30])), ("CosineAnnealingLR", dict(T_max=20))],
    [("CosineAnnealingLR", dict(T_max=12, eta_min=0.001)), ("StepLR", dict(step_size=10))],
]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: "+".join(n for n, _ in c))
def test_chained_schedulers_match_torch(torch, chain):
    topt, copt = _optimizers(torch)
    tscheds = [getattr(torch.optim.lr_scheduler, n)(topt, **kw) for n, kw in chain]
    cscheds = [getattr(lr_scheduler, n)(copt, **kw) for n, kw in chain]
    for k in range(STEPS):
        topt.step()
        copt.step()
        for t, c in zip(tscheds, cscheds):
            t.step()
            c.step()
            _assert_same(t, c, topt, copt, f"after step {k + 1}")


EPOCH_CASES = [
    ("StepLR", dict(step_size=4, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[3, 3, 10])),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=8, eta_min=0.01)),
]


@pytest.mark.parametrize("case", EPOCH_CASES, ids=[c[0] for c in EPOCH_CASES])
def test_deprecated_epoch_argument_uses_the_closed_form(torch, case):
    name, kw = case
    topt, copt = _optimizers(torch)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    csched = getattr(lr_scheduler, name)(copt, **kw)
    for epoch in [1, 2, 5, 5, 11, 3, 20, 8, 0]:
        topt.step()
        copt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tsched.step(epoch)
        with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)`"):
            csched.step(epoch)
        _assert_same(tsched, csched, topt, copt, f"at epoch {epoch}")
        topt.step()
        copt.step()
        tsched.step()
        csched.step()
        _assert_same(tsched, csched, topt, copt, f"after epoch {epoch}")


@pytest.mark.parametrize("case", SCHEDULES[:14], ids=_schedule_id)
def test_state_dict_round_trip_continues_identically(torch, case):
    name, kw, opt_name, opt_kw = case
    topt, copt = _optimizers(torch, opt_name, **opt_kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    csched = getattr(lr_scheduler, name)(copt, **kw)
    for _ in range(20):
        for o, s in ((topt, tsched), (copt, csched)):
            o.step()
            s.step()
    saved = csched.state_dict()
    assert set(saved) == set(tsched.state_dict())
    assert "optimizer" not in saved

    opt_state = copt.state_dict()
    _, fresh_opt = _optimizers(torch, opt_name, **opt_kw)
    fresh = getattr(lr_scheduler, name)(fresh_opt, **kw)
    fresh_opt.load_state_dict(opt_state)
    fresh.load_state_dict(saved)
    for k in range(STEPS - 20):
        topt.step()
        fresh_opt.step()
        tsched.step()
        fresh.step()
        _assert_same(tsched, fresh, topt, fresh_opt, f"after step {k + 21}")


def test_one_cycle_state_dict_round_trip(torch):
    kw = dict(max_lr=0.3, total_steps=STEPS, three_phase=True)
    topt, copt = _optimizers(torch, "SGD", momentum=0.9)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kw)
    csched = lr_scheduler.OneCycleLR(copt, **kw)
    for _ in range(25):
        for o, s in ((topt, tsched), (copt, csched)):
            o.step()
            s.step()
    assert set(csched.state_dict()) == set(tsched.state_dict())
    _, fresh_opt = _optimizers(torch, "SGD", momentum=0.9)
    fresh = lr_scheduler.OneCycleLR(fresh_opt, **kw)
    fresh_opt.load_state_dict(copt.state_dict())
    fresh.load_state_dict(csched.state_dict())
    for k in range(STEPS - 25):
        topt.step()
        fresh_opt.step()
        tsched.step()
        fresh.step()
        _assert_same(tsched, fresh, topt, fresh_opt, f"after step {k + 26}")


def test_plateau_state_dict_round_trip(torch):
    kw = dict(patience=2, cooldown=1, mode="max")
    metrics = [-m for m in _metrics(1, 60)]
    topt, copt = _optimizers(torch)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    csched = lr_scheduler.ReduceLROnPlateau(copt, **kw)
    for m in metrics[:30]:
        tsched.step(m)
        csched.step(m)
    assert set(csched.state_dict()) == set(tsched.state_dict())
    _, fresh_opt = _optimizers(torch)
    fresh = lr_scheduler.ReduceLROnPlateau(fresh_opt)
    fresh_opt.load_state_dict(copt.state_dict())
    fresh.load_state_dict(csched.state_dict())
    for m in metrics[30:]:
        tsched.step(m)
        fresh.step(m)
        _assert_same(tsched, fresh, topt, fresh_opt, f"metric {m}")


def test_resume_with_last_epoch(torch):
    topt, copt = _optimizers(torch)
    for groups in (topt.param_groups, copt.param_groups):
        for g, lr in zip(groups, (0.4, 0.2)):
            g["initial_lr"] = lr
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=30, last_epoch=9)
    csched = lr_scheduler.CosineAnnealingLR(copt, T_max=30, last_epoch=9)
    assert csched.base_lrs == [0.4, 0.2]
    for k in range(40):
        topt.step()
        copt.step()
        tsched.step()
        csched.step()
        _assert_same(tsched, csched, topt, copt, f"after step {k + 1}")


def test_resume_without_initial_lr_raises_like_torch(torch):
    topt, copt = _optimizers(torch)
    with pytest.raises(KeyError) as theirs:
        torch.optim.lr_scheduler.StepLR(topt, step_size=2, last_epoch=3)
    with pytest.raises(KeyError) as ours:
        lr_scheduler.StepLR(copt, step_size=2, last_epoch=3)
    assert str(ours.value) == str(theirs.value)
    assert "param 'initial_lr' is not specified in param_groups[0]" in str(ours.value)


def test_initial_lr_is_recorded_and_last_epoch_starts_at_zero():
    opt = SGD([cl.Tensor(np.zeros(1), requires_grad=True)], lr=0.3)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    assert opt.param_groups[0]["initial_lr"] == 0.3
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.3] and sched.base_lrs == [0.3]


def test_warns_when_scheduler_steps_before_optimizer():
    opt = SGD([cl.Tensor(np.zeros(1), requires_grad=True)], lr=0.3)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="Detected call of `lr_scheduler.step\\(\\)` before"):
        sched.step()

    opt = SGD([cl.Tensor(np.zeros(1), requires_grad=True)], lr=0.3)
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        sched.step()
    assert sched.get_last_lr() == [0.15]
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        sched.get_lr()


def test_one_cycle_refuses_to_step_past_total_steps(torch):
    _, copt = _optimizers(torch, "SGD", momentum=0.9)
    sched = lr_scheduler.OneCycleLR(copt, max_lr=0.1, total_steps=5)
    for _ in range(5):
        copt.step()
        sched.step()
    with pytest.raises(ValueError) as info:
        sched.step()
    assert str(info.value) == "Tried to step 6 times. The specified number of total steps is 5"


# -- errors: torch's exception type and message -------------------------------------------------


def _plain(module):
    """An optimiser without momentum or betas, in either library."""

    class Plain(module.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

    return Plain


BAD_SCHEDULERS = [
    ("OneCycleLR", "SGD", dict(max_lr=0.1, total_steps=0)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, total_steps=10.0)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, epochs=0, steps_per_epoch=3)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, epochs=2, steps_per_epoch=-1)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, epochs=2)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, total_steps=10, pct_start=1.5)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, total_steps=10, pct_start=1)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, total_steps=10, anneal_strategy="exp")),
    ("OneCycleLR", "SGD", dict(max_lr=[0.1, 0.2, 0.3], total_steps=10)),
    ("OneCycleLR", "SGD", dict(max_lr=0.1, total_steps=10, base_momentum=[0.8])),
    ("OneCycleLR", "Plain", dict(max_lr=0.1, total_steps=10)),
    ("ReduceLROnPlateau", "SGD", dict(factor=1.0)),
    ("ReduceLROnPlateau", "SGD", dict(mode="avg")),
    ("ReduceLROnPlateau", "SGD", dict(threshold_mode="pct")),
    ("ReduceLROnPlateau", "SGD", dict(min_lr=[0.1])),
]


@pytest.mark.parametrize(
    "case", BAD_SCHEDULERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_SCHEDULERS)]
)
def test_bad_scheduler_arguments_raise_like_torch(torch, case):
    name, opt_name, kw = case
    if opt_name == "Plain":
        t = torch.zeros(1, requires_grad=True)
        topt = _plain(torch.optim)([{"params": [t]}, {"params": [torch.zeros(1)]}])
        c = [cl.Tensor(np.zeros(1), requires_grad=True) for _ in range(2)]
        copt = _plain(cl.optim)([{"params": [c[0]]}, {"params": [c[1]]}])
    else:
        topt, copt = _optimizers(torch, opt_name)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    with pytest.raises(ValueError) as ours:
        getattr(lr_scheduler, name)(copt, **kw)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("StepLR", dict(step_size=2)),
        ("OneCycleLR", dict(max_lr=0.1, total_steps=3)),
        ("ReduceLROnPlateau", {}),
    ],
)
def test_a_non_optimizer_is_refused(name, kw):
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        getattr(lr_scheduler, name)([], **kw)


def test_plateau_with_a_new_group_and_listed_min_lrs_raises():
    a, b, c = (cl.Tensor(np.zeros(1), requires_grad=True) for _ in range(3))
    opt = SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
    opt.add_param_group({"params": [c]})
    sched.step(1.0)
    with pytest.raises(RuntimeError, match="The number of param groups in the `optimizer` \\(3\\)"):
        sched.step(2.0)


def test_plateau_with_a_new_group_and_one_min_lr_extends_it():
    a, b = (cl.Tensor(np.zeros(1), requires_grad=True) for _ in range(2))
    opt = SGD([a], lr=0.1)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=0.05)
    opt.add_param_group({"params": [b], "lr": 1.0})
    sched.step(1.0)
    sched.step(2.0)
    assert sched.get_last_lr() == [0.05, 0.1] and sched.min_lrs == [0.05, 0.05]


def test_every_optimizer_is_an_optimizer():
    assert all(issubclass(cls, Optimizer) for cls in OURS.values())


# -- references from the definitions (no torch needed) ------------------------------------------


def _closed_form(name: str, kw: dict, base: float, epoch: int) -> float:
    gamma = kw.get("gamma", 0.1)
    if name == "StepLR":
        return base * gamma ** (epoch // kw["step_size"])
    if name == "MultiStepLR":
        return base * gamma ** sum(1 for m in kw["milestones"] if m <= epoch)
    if name == "ExponentialLR":
        return base * gamma**epoch
    eta_min = kw.get("eta_min", 0.0)
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / kw["T_max"])) / 2


@pytest.mark.parametrize("case", [c for c in SCHEDULES if c[0] != "OneCycleLR"], ids=_schedule_id)
def test_chainable_form_follows_the_closed_form(case):
    """The recursive updates stay within 1e-12 of the textbook formula over 60 epochs."""
    name, kw, _, _ = case
    opt = SGD([{"params": [cl.Tensor(np.zeros(1), requires_grad=True)], "lr": lr} for lr in LRS])
    sched = getattr(lr_scheduler, name)(opt, **kw)
    for epoch in range(STEPS + 1):
        expected = [_closed_form(name, kw, base, epoch) for base in LRS]
        np.testing.assert_allclose(sched.get_last_lr(), expected, rtol=1e-12, atol=1e-14)
        opt.step()
        sched.step()


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_reaches_its_landmarks(strategy, three_phase):
    total, pct, max_lr, div, final_div = 100, 0.25, 0.4, 20.0, 1e3
    opt = SGD([cl.Tensor(np.zeros(1), requires_grad=True)], lr=1.0, momentum=0.9)
    sched = lr_scheduler.OneCycleLR(
        opt,
        max_lr=max_lr,
        total_steps=total,
        pct_start=pct,
        anneal_strategy=strategy,
        div_factor=div,
        final_div_factor=final_div,
        three_phase=three_phase,
        base_momentum=0.8,
        max_momentum=0.9,
    )
    lrs, momenta = [], []
    for _ in range(total):
        lrs.append(sched.get_last_lr()[0])
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    peak = round(pct * total) - 1  # the first phase ends at step pct * total - 1
    initial, final = max_lr / div, max_lr / div / final_div
    assert lrs[0] == pytest.approx(initial, rel=1e-12)
    assert lrs[peak] == pytest.approx(max_lr, rel=1e-12)
    assert lrs[-1] == pytest.approx(final, rel=1e-12)
    assert momenta[0] == pytest.approx(0.9) and momenta[peak] == pytest.approx(0.8)
    assert momenta[-1] == pytest.approx(0.9)
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))
    if three_phase:
        back = 2 * peak  # the second phase mirrors the first
        assert lrs[back] == pytest.approx(initial, rel=1e-12)
        assert all(a > b for a, b in zip(lrs[peak:back], lrs[peak + 1 : back + 1]))
        assert all(a > b for a, b in zip(lrs[back:-1], lrs[back + 1 :]))
    else:
        assert all(a > b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :]))
    if strategy == "linear":
        np.testing.assert_allclose(np.diff(lrs[: peak + 1]), (max_lr - initial) / peak)


PLATEAU_STORIES = [
    # patience 2: the 3rd epoch without improvement reduces (bad epochs must exceed patience).
    (
        dict(patience=2, factor=0.5),
        [5, 4, 4, 4, 4, 3, 3, 3, 3],
        [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25],
    ),
    # cooldown 2: two epochs after a reduction do not count as bad.
    (dict(patience=0, cooldown=2), [1, 2, 2, 2, 2, 2], [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01]),
    # min_lr floors the lr; a change smaller than eps is skipped.
    (dict(patience=0, min_lr=0.5), [1, 2, 3, 4], [1, 1, 0.5, 0.5, 0.5]),
    (dict(patience=0, factor=0.5, eps=0.3), [1, 2, 3, 4], [1, 1, 0.5, 0.5, 0.5]),
    # rel threshold 10%: 0.95 is not an improvement on 1.0, 0.89 is.
    (dict(patience=0, threshold=0.1), [1.0, 0.95, 0.89], [1, 1, 0.1, 0.1]),
    (dict(patience=0, threshold=0.1, threshold_mode="abs"), [1.0, 0.95, 0.89], [1, 1, 0.1, 0.1]),
    (dict(patience=0, mode="max"), [1.0, 2.0, 1.5], [1, 1, 1, 0.1]),
]


@pytest.mark.parametrize("kw,metrics,expected", PLATEAU_STORIES)
def test_reduce_lr_on_plateau_by_hand(kw, metrics, expected):
    """Hand-worked sequences: expected[0] is the lr before any step, relative to lr=1."""
    opt = SGD([cl.Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, **kw)
    lrs = [sched.get_last_lr()[0]]
    for m in metrics:
        sched.step(m)
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs[: len(expected)], expected, rtol=1e-12)
