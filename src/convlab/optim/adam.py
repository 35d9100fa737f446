"""Adam and AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW``."""

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

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam: moment estimates of the gradient and its square, with bias correction.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``), at
    step :math:`t`:

    .. math::
        g &\leftarrow g + \lambda\theta
            \quad (\text{or } \theta \leftarrow \theta(1 - \gamma\lambda) \text{ if decoupled}) \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &= \max(\hat v, v) \text{ (amsgrad) or } v \\
        \theta &\leftarrow \theta - \frac{\gamma}{1 - \beta_1^t} \, m \Big/
            \Big(\frac{\sqrt{\hat v}}{\sqrt{1 - \beta_2^t}} + \epsilon\Big)

    Args:
        params: Tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\gamma`.
        betas: decay rates :math:`(\beta_1, \beta_2)` of the two moment estimates.
        eps: :math:`\epsilon`, added to the denominator for numerical stability.
        weight_decay: :math:`\lambda`, an L2 penalty added to the gradient (or, with
            ``decoupled_weight_decay``, AdamW's decay of the parameter itself).
        amsgrad: use the running maximum of :math:`v` (AMSGrad, Reddi et al. 2018).
        maximize: maximise the objective instead of minimising it.
        decoupled_weight_decay: decay the weights directly, as AdamW.

    State per parameter: ``step`` (0-d float32 array), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.

    Example:
        >>> opt = convlab.optim.Adam(model.parameters(), lr=1e-3)
        >>> opt.zero_grad(); loss.backward(); opt.step()

    See https://pytorch.org/docs/stable/generated/torch.optim.Adam.html (Kingma and Ba,
    arXiv 1412.6980).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            amsgrad = bool(group["amsgrad"])
            beta1, beta2 = (float(b) for b in group["betas"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step()
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                adam_update(
                    p.data,
                    p.grad.data,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    state.get("max_exp_avg_sq") if amsgrad else None,
                    state["step"],
                    lr=_hyper(group, "lr"),
                    beta1=beta1,
                    beta2=beta2,
                    eps=_hyper(group, "eps"),
                    weight_decay=_hyper(group, "weight_decay"),
                    maximize=bool(group["maximize"]),
                    decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
                )
        return loss


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, :math:`\theta \leftarrow \theta(1-\gamma\lambda)`.

    Same arguments as :class:`Adam`, with ``weight_decay`` defaulting to 1e-2 and applied to the
    parameter before the Adam step rather than added to the gradient.

    Example:
        >>> opt = convlab.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)

    See https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html (Loshchilov and
    Hutter, arXiv 1711.05101).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # A checkpoint loaded into AdamW stays AdamW, as in torch.
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    step: np.ndarray,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    """One Adam step on arrays, in place (``max_exp_avg_sq`` given means amsgrad).

    Follows ``torch.optim.adam._single_tensor_adam`` operation by operation; ``grad`` is only
    read.
    """
    step += 1
    t = float(step)
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
        g, owned = _grad_with_decay(param, grad, 0.0, maximize)
    else:
        g, owned = _grad_with_decay(param, grad, weight_decay, maximize)

    tmp = np.empty_like(param)
    _lerp_(exp_avg, g, 1 - beta1, tmp)
    exp_avg_sq *= beta2
    np.multiply(g, 1 - beta2, out=tmp)
    tmp *= g
    exp_avg_sq += tmp

    step_size = lr / (1 - beta1**t)
    bias_correction2_sqrt = (1 - beta2**t) ** 0.5
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = np.sqrt(second, out=tmp)
    denom /= bias_correction2_sqrt
    denom += eps
    # param.addcdiv_(exp_avg, denom, value=-step_size) computes (value * exp_avg) / denom.
    update = np.multiply(exp_avg, -step_size, out=g if owned else np.empty_like(param))
    update /= denom
    param += update
