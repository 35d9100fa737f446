"""Stochastic gradient descent, optionally with (Nesterov) momentum, as ``torch.optim.SGD``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convlab.optim.optimizer import Optimizer, ParamsT, _grad_with_decay, _hyper

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum and Nesterov momentum.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``):

    .. math::
        g &\leftarrow g + \lambda\theta \\
        b &\leftarrow \mu b + (1 - \tau) g \quad (b \leftarrow g \text{ at the first step}) \\
        g &\leftarrow g + \mu b \text{ (nesterov) or } b \\
        \theta &\leftarrow \theta - \gamma g

    Args:
        params: Tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\gamma` (torch 2.13's default, 1e-3).
        momentum: momentum factor :math:`\mu`.
        dampening: dampening :math:`\tau` for momentum.
        weight_decay: L2 penalty :math:`\lambda`.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: maximise the objective instead of minimising it.

    State per parameter: ``momentum_buffer`` (an array, only when momentum is non-zero).

    Example:
        >>> opt = convlab.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

    See https://pytorch.org/docs/stable/generated/torch.optim.SGD.html
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            momentum = _hyper(group, "momentum")
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = None
                if momentum != 0:
                    buf = self.state[p].get("momentum_buffer")
                buf = sgd_update(
                    p.data,
                    p.grad.data,
                    buf,
                    lr=_hyper(group, "lr"),
                    momentum=momentum,
                    dampening=_hyper(group, "dampening"),
                    weight_decay=_hyper(group, "weight_decay"),
                    nesterov=bool(group["nesterov"]),
                    maximize=bool(group["maximize"]),
                )
                if momentum != 0:
                    self.state[p]["momentum_buffer"] = buf
        return loss


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> np.ndarray | None:
    """One SGD step on arrays: updates ``param`` (and the buffer) in place, returns the buffer.

    Follows ``torch.optim.sgd._single_tensor_sgd`` operation by operation; ``grad`` is only read.
    """
    g, owned = _grad_with_decay(param, grad, weight_decay, maximize)
    if momentum == 0:
        step = np.multiply(g, -lr, out=g if owned else np.empty_like(param))
    else:
        if momentum_buffer is None:
            momentum_buffer = g if owned else g.copy()
        else:
            momentum_buffer *= momentum
            if dampening == 0:
                momentum_buffer += g
            else:
                momentum_buffer += np.multiply(g, 1 - dampening, out=np.empty_like(param))
        if nesterov:
            step = np.multiply(momentum_buffer, momentum, out=np.empty_like(param))
            step += g
            step *= -lr
        else:
            step = np.multiply(momentum_buffer, -lr, out=np.empty_like(param))
    param += step  # param.add_(step, alpha=-lr)
    return momentum_buffer
