"""``gradcheck``: compare autograd's Jacobian with central finite differences, as torch's does."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from convlab.autograd import grad_mode
from convlab.autograd.dtypes import float64
from convlab.autograd.function import grad
from convlab.autograd.tensor import Tensor

__all__ = ["GradcheckError", "gradcheck"]


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytic and numerical gradients disagree."""


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(func: Callable[..., Any], inputs: tuple[Any, ...]) -> tuple[Tensor, ...]:
    out = _as_tuple(func(*inputs))
    for i, o in enumerate(out):
        if not isinstance(o, Tensor):
            raise TypeError(
                f"gradcheck: func must return a Tensor or a tuple of Tensors, but output {i} is "
                f"{type(o).__name__}"
            )
    return out


def _numerical_jacobian(
    func: Callable[..., Any],
    inputs: tuple[Any, ...],
    x: Tensor,
    out_indices: list[int],
    eps: float,
) -> np.ndarray:
    """Central differences ``(f(x + eps) - f(x - eps)) / 2 eps``, one column per element of x.

    Rows run over the elements of the checked outputs, concatenated.
    """
    data = x.data
    if not data.flags.writeable:
        x.data = data = data.copy()
    columns = []

    def flat_outputs() -> np.ndarray:
        # Copy now: an output may be a view of the input that is about to be perturbed again.
        outs = _outputs(func, inputs)
        if not out_indices:
            return np.zeros(0)
        return np.concatenate([outs[k].data.astype(float64).ravel() for k in out_indices])

    with grad_mode.no_grad():
        for index in np.ndindex(data.shape):
            original = data[index].copy()
            data[index] = original + eps
            plus = flat_outputs()
            data[index] = original - eps
            minus = flat_outputs()
            data[index] = original
            columns.append((plus - minus) / (2 * eps))
    if not columns:
        return np.zeros((0, 0))
    return np.stack(columns, axis=1)


def _analytical_jacobians(
    outputs: tuple[Tensor, ...], out_indices: list[int], checked: list[Tensor]
) -> list[np.ndarray]:
    """Jacobian of the checked outputs with respect to each checked input, one vector-Jacobian
    product per output element (a unit vector as ``grad_outputs``)."""
    n_rows = sum(outputs[k].data.size for k in out_indices)
    jacobians = [np.zeros((n_rows, x.data.size)) for x in checked]
    row = 0
    for k in out_indices:
        out = outputs[k]
        for j in range(out.data.size):
            unit = np.zeros(out.data.size, dtype=out.dtype)
            unit[j] = 1
            grads = grad(
                out,
                checked,
                grad_outputs=unit.reshape(out.shape),
                retain_graph=True,
                allow_unused=True,
            )
            for jac, g in zip(jacobians, grads, strict=True):
                if g is not None:
                    jac[row] = g.data.ravel()
            row += 1
    return jacobians


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradcheck(
    func: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Check the gradients of ``func`` at ``inputs`` against central finite differences.

    Every Tensor in ``inputs`` (a Tensor or a tuple; other values pass through to ``func``) that
    requires grad is perturbed element by element; it should be float64, and a warning is given
    otherwise. An analytic entry ``a`` matches its numerical estimate ``n`` when
    ``|a - n| <= atol + rtol * |n|``. ``func`` may return a Tensor or a tuple of Tensors; the
    floating outputs that require grad are checked.

    Returns True when all entries match. Otherwise raises ``GradcheckError`` naming the output,
    the input, the worst element and both values (or returns False if ``raise_exception=False``).

        x = cl.randn(3, 4, dtype=cl.float64, requires_grad=True)
        assert cl.gradcheck(lambda t: (t * t).sum(dim=1), (x,))
    """
    inputs = _as_tuple(inputs)
    checked_pos = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked_pos:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, but none of the "
            "them have requires_grad=True."
        )
    for i in checked_pos:
        if inputs[i].dtype != float64:
            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point "
                f"(dtype {inputs[i].dtype}). This check will likely fail if all the inputs are "
                "not of double precision floating point.",
                stacklevel=2,
            )
    checked = [inputs[i] for i in checked_pos]

    outputs = _outputs(func, inputs)
    out_indices = [k for k, o in enumerate(outputs) if o.requires_grad]
    if not out_indices:
        # Nothing differentiable came out: every numerical derivative must then be zero.
        out_indices_numeric = [k for k, o in enumerate(outputs) if o.is_floating_point()]
        for pos, x in zip(checked_pos, checked, strict=True):
            numeric = _numerical_jacobian(func, inputs, x, out_indices_numeric, eps)
            if numeric.size and np.max(np.abs(numeric)) > atol:
                return _fail(
                    f"Jacobian mismatch with respect to input {pos}: no output requires grad, "
                    f"but the numerical gradient is nonzero (max {np.max(np.abs(numeric)):.6g})",
                    raise_exception,
                )
        return True

    analytic = _analytical_jacobians(outputs, out_indices, checked)
    offsets = np.cumsum([0] + [outputs[k].data.size for k in out_indices])
    for pos, x, a_jac in zip(checked_pos, checked, analytic, strict=True):
        n_jac = _numerical_jacobian(func, inputs, x, out_indices, eps)
        if n_jac.size == 0:
            continue
        error = np.abs(a_jac - n_jac) - (atol + rtol * np.abs(n_jac))
        bad = np.isnan(a_jac) != np.isnan(n_jac)
        if np.any(error > 0) or np.any(bad):
            error = np.where(bad, np.inf, error)
            row, col = np.unravel_index(int(np.nanargmax(error)), error.shape)
            block = int(np.searchsorted(offsets, row, side="right") - 1)
            out_k = out_indices[block]
            out_elem = np.unravel_index(row - offsets[block], outputs[out_k].shape)
            in_elem = np.unravel_index(col, x.shape)
            return _fail(
                f"Jacobian mismatch for output {out_k} with respect to input {pos}: worst "
                f"element d output[{out_k}]{_fmt_index(out_elem)} / d input[{pos}]"
                f"{_fmt_index(in_elem)}: numerical {n_jac[row, col]:.10g}, analytical "
                f"{a_jac[row, col]:.10g} (atol={atol}, rtol={rtol}, eps={eps}).\n"
                f"numerical:\n{n_jac}\nanalytical:\n{a_jac}",
                raise_exception,
            )
    return True


def _fmt_index(index: tuple[Any, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"
