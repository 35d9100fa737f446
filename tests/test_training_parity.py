"""Whole-stack training against PyTorch: the same model, data and seed, stepped 50 times.

A small CNN (convolution, batch norm, ReLU, max pooling, linear, cross-entropy) is built in both
libraries with PyTorch's initial weights copied into convlab, then trained on the same batches
with every optimiser option. After 50 steps every parameter must agree within 1e-5 (float64).
"""

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn
import convlab.nn.functional as F
from convlab import optim
from convlab.models import lenet5

torch = pytest.importorskip("torch", reason="PyTorch 2.13 not installed: pip install torch==2.13.0")

STEPS = 50

OPTIMIZERS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=False)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3)),
]


def torch_model():
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1),
        tnn.BatchNorm2d(4),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(4, 6, 3),
        tnn.ReLU(),
        tnn.Flatten(),
        tnn.Linear(6 * 2 * 2, 5),
    ).double()


def our_model():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 5),
    ).double()


@pytest.mark.parametrize("name,options", OPTIMIZERS, ids=[f"{n}-{o}" for n, o in OPTIMIZERS])
def test_fifty_steps_follow_torch(name, options):
    torch.manual_seed(0)
    theirs = torch_model()
    ours = our_model()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    t_opt = getattr(torch.optim, name)(theirs.parameters(), **options)
    c_opt = getattr(optim, name)(ours.parameters(), **options)
    rng = np.random.default_rng(1)
    for _ in range(STEPS):
        x = rng.standard_normal((8, 1, 8, 8))
        y = rng.integers(0, 5, 8)
        t_loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        c_loss = F.cross_entropy(ours(cl.tensor(x)), cl.tensor(y))
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
        c_opt.zero_grad()
        c_loss.backward()
        c_opt.step()
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(
            ours.state_dict()[key], value.numpy(), rtol=1e-5, atol=1e-5, err_msg=key
        )


def test_lenet5_learns_random_labels():
    """A LeNet-5 from convlab's modules fits a fixed random batch: the loss falls."""
    cl.manual_seed(0)
    model = lenet5()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    x = cl.tensor(rng.standard_normal((32, 1, 28, 28)).astype(np.float32))
    y = cl.tensor(rng.integers(0, 10, 32))
    losses = []
    for _ in range(80):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]  # random labels can only be memorised
    assert all(np.isfinite(losses))
