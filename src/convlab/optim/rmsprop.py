"""RMSprop, as ``torch.optim.RMSprop``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convlab.optim.optimizer import (
    Optimizer,
    ParamsT,
    _grad_with_decay,
    _hyper,
    _lerp_,
    _new_step,
)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root mean square of its recent values.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``):

    .. math::
        g &\leftarrow g + \lambda\theta, \qquad
        v \leftarrow \alpha v + (1 - \alpha) g^2 \\
        d &= \sqrt{v - \bar g^2} + \epsilon \text{ with }
            \bar g \leftarrow \alpha \bar g + (1 - \alpha) g \text{ (centered)},
            \text{ else } \sqrt{v} + \epsilon \\
        b &\leftarrow \mu b + g / d, \quad \theta \leftarrow \theta - \gamma b
            \quad (\text{or } \theta \leftarrow \theta - \gamma g / d \text{ if } \mu = 0)

    Args:
        params: Tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\gamma`.
        alpha: smoothing constant :math:`\alpha`.
        eps: :math:`\epsilon`, added to the denominator for numerical stability.
        weight_decay: L2 penalty :math:`\lambda`.
        momentum: momentum factor :math:`\mu`.
        centered: normalise by the estimated variance of the gradient instead of its second
            moment.
        maximize: maximise the objective instead of minimising it (keyword-only here).

    State per parameter: ``step``, ``square_avg``, and ``momentum_buffer`` (momentum > 0) and
    ``grad_avg`` (centered).

    Example:
        >>> opt = convlab.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)

    See https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html (Hinton, lecture 6e
    of "Neural Networks for Machine Learning"; centered: Graves, arXiv 1308.0850).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("maximize", False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            momentum = _hyper(group, "momentum")
            centered = bool(group["centered"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step()
                    state["square_avg"] = np.zeros_like(p.data)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if centered:
                        state["grad_avg"] = np.zeros_like(p.data)
                rmsprop_update(
                    p.data,
                    p.grad.data,
                    state["square_avg"],
                    state["grad_avg"] if centered else None,
                    state["momentum_buffer"] if momentum > 0 else None,
                    state["step"],
                    lr=_hyper(group, "lr"),
                    alpha=_hyper(group, "alpha"),
                    eps=_hyper(group, "eps"),
                    weight_decay=_hyper(group, "weight_decay"),
                    momentum=momentum,
                    maximize=bool(group["maximize"]),
                )
        return loss


def rmsprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    step: np.ndarray,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    maximize: bool,
) -> None:
    """One RMSprop step on arrays, in place (``grad_avg`` given means centered).

    Follows ``torch.optim.rmsprop._single_tensor_rmsprop`` operation by operation; ``grad`` is
    only read.
    """
    step += 1
    g, owned = _grad_with_decay(param, grad, weight_decay, maximize)
    tmp = np.empty_like(param)
    square_avg *= alpha
    np.multiply(g, 1 - alpha, out=tmp)
    tmp *= g
    square_avg += tmp
    avg = tmp
    if grad_avg is not None:
        _lerp_(grad_avg, g, 1 - alpha, tmp)
        np.multiply(grad_avg, grad_avg, out=avg)
        np.subtract(square_avg, avg, out=avg)
        np.sqrt(avg, out=avg)
    else:
        np.sqrt(square_avg, out=avg)
    avg += eps
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        update = np.divide(g, avg, out=g if owned else np.empty_like(param))
        momentum_buffer += update
        np.multiply(momentum_buffer, -lr, out=update)
    else:
        # param.addcdiv_(grad, avg, value=-lr) computes (value * grad) / avg.
        update = np.multiply(g, -lr, out=g if owned else np.empty_like(param))
        update /= avg
    param += update
