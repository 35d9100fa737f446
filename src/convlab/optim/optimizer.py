"""``Optimizer``: the base class of every optimiser, with ``torch.optim.Optimizer``'s contract.

An optimiser holds ``param_groups`` (a list of dicts, each with its ``params`` and its own
hyper-parameters, defaults filled from ``defaults``) and ``state`` (a dict per parameter, keyed by
the parameter itself). Sub-classes implement ``step()``; the updates are NumPy ufuncs applied in
place to ``param.data``, so autograd never sees them. State arrays are NumPy arrays in the
parameter's dtype; ``state_dict()`` keys them by integer index as PyTorch does, so that a
checkpoint needs no pickle.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from convlab.autograd import Tensor, enable_grad

__all__ = ["Optimizer", "ParamsT", "required"]

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]


class _RequiredParameter:
    """Marks a hyper-parameter that every param group must give (``torch.optim.optimizer``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


class Optimizer:
    """Base class of the optimisers: parameter groups, per-parameter state, checkpoints.

    Args:
        params: an iterable of Tensors (or ``(name, Tensor)`` pairs, as from
            ``named_parameters()``), or of dicts ``{"params": ..., <option>: value}`` that give
            each group its own options.
        defaults: the option values used by groups that do not set them.

    Example:
        >>> opt = convlab.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1)
        >>> opt.zero_grad(); loss.backward(); opt.step()

    See https://pytorch.org/docs/stable/optim.html#torch.optim.Optimizer
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, (Tensor, np.ndarray)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                "dicts, but got " + _typename(params)
            )
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []

        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Sub-classes fill options missing from older checkpoints here, as torch's do.
        self.__dict__.update(state)

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"

    # -- groups ---------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (defaults fill the rest).

        Raises ``ValueError`` if a parameter is already in another group, as torch does.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        if "params" not in param_group:
            raise KeyError("param_group must have a 'params' entry (the Tensors to optimize)")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)

        tensors, names = [], []
        for param in params:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    "missing"
                )
            param_group["param_names"] = names

        for param in tensors:
            if not isinstance(param, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is "
                    + _typename(param)
                )
            if not param.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            param_group.setdefault(name, default)

        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, "
                "this will cause an error; see github.com/pytorch/pytorch/issues/40967 for more "
                "information",
                stacklevel=3,
            )

        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # -- gradients and steps --------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (default), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif grad.grad_fn is not None or not grad.data.flags.writeable:
                    # A gradient built with create_graph, or a read-only view: detach it, as
                    # torch's detach_() + zero_() does.
                    p.grad = Tensor(np.zeros_like(grad.data))
                else:
                    grad.requires_grad_(False)
                    grad.data.fill(0)

    def _run_closure(self, closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update the parameters once; ``closure`` re-evaluates the model and returns the loss."""
        raise NotImplementedError

    # -- checkpoints ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state as ``{"state": {index: {...}}, "param_groups": [...]}``.

        Parameters are replaced by their index in the order of ``param_groups``; the state
        arrays are the live NumPy arrays (not copies), as torch returns live tensors.
        """
        index: dict[int, int] = {}
        start = 0

        def pack(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        param_groups = [pack(g) for g in self.param_groups]
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from ``state_dict()`` (of this optimiser, or of torch's, as arrays).

        Groups are matched by position and parameters by index. Floating state arrays are
        copied and cast to their parameter's dtype, except ``step``; group options (``lr``, ...)
        are replaced by the saved ones.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group"
            )
        id_map = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )

        def cast(param: Tensor, value: Any, key: Any = None) -> Any:
            if isinstance(value, Tensor):
                value = value.data
            if isinstance(value, np.ndarray):
                if key == "step":
                    return np.array(value, copy=True)
                if np.issubdtype(param.dtype, np.floating) and np.issubdtype(
                    value.dtype, np.floating
                ):
                    return np.array(value, dtype=param.dtype, copy=True)
                return np.array(value, copy=True)
            if isinstance(value, dict):
                return {k: cast(param, v, k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v) for v in value)
            return value

        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = cast(param, v)
                step = state[param].get("step")
                if step is not None and not isinstance(step, np.ndarray):
                    state[param]["step"] = np.array(float(step), dtype=np.float32)
            else:
                state[k] = v

        def update_group(group: dict[str, Any], new_group: dict[str, Any]) -> dict[str, Any]:
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})


def _new_step() -> np.ndarray:
    """The step counter: a 0-d float32 array, as torch keeps a float32 scalar tensor."""
    return np.zeros((), dtype=np.float32)


def _grad_with_decay(
    param: np.ndarray, grad: np.ndarray, weight_decay: float, maximize: bool
) -> tuple[np.ndarray, bool]:
    """``(-grad if maximize else grad) + weight_decay * param``; also says if the array is new.

    The gradient array is never written to: it may be shared or read-only. Every ufunc here and
    in the optimisers writes to an ``out=`` array, since on 0-d arrays NumPy returns scalars.
    """
    if weight_decay != 0:
        g = np.multiply(param, weight_decay, out=np.empty_like(param))
        if maximize:
            np.subtract(g, grad, out=g)
        else:
            np.add(g, grad, out=g)
        return g, True
    if maximize:
        return np.negative(grad, out=np.empty_like(param)), True
    return grad, False


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """``start.lerp_(end, weight)`` with torch's two formulas (exact at both ends)."""
    w = start.dtype.type(weight)
    np.subtract(end, start, out=tmp)
    if abs(w) < 0.5:
        tmp *= w
        start += tmp
    else:
        tmp *= w - 1
        np.add(end, tmp, out=start)


def _hyper(group: dict[str, Any], key: str) -> float:
    # float(): a NumPy float64 hyper-parameter would otherwise widen a float32 update.
    return float(group[key])
