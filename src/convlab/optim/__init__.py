"""Optimisers and learning-rate schedulers with ``torch.optim``'s names, defaults and numbers.

    import convlab as cl
    opt = cl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = cl.optim.lr_scheduler.StepLR(opt, step_size=30)
    for epoch in range(90):
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        sched.step()

Each update follows torch 2.13's single-tensor CPU code operation by operation, in place on
``param.data`` with NumPy ufuncs. State is NumPy arrays; ``state_dict()`` has torch's layout.
"""

from __future__ import annotations

from convlab.optim import lr_scheduler
from convlab.optim.adam import Adam, AdamW
from convlab.optim.optimizer import Optimizer
from convlab.optim.rmsprop import RMSprop
from convlab.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
