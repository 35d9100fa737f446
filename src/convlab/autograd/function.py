"""``Function``, the unit every differentiable op is written as, and the backward engine.

An op is a subclass of ``Function`` with two static methods on NumPy arrays::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad_output):
            a, b = ctx.saved_tensors
            return grad_output * b, grad_output * a   # one entry per positional input

    y = Mul.apply(x, w)       # Tensors or arrays in, a Tensor out, linked into the graph

The ``ctx`` object is also the output's ``grad_fn``: a node of the graph that remembers its input
tensors. ``backward()`` sorts the nodes topologically (iteratively, so deep graphs cannot overflow
the Python stack) and calls each ``backward`` once, with the summed gradient of its outputs.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab.autograd import grad_mode
from convlab.autograd.dtypes import is_floating
from convlab.autograd.tensor import Tensor

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Context", "Function", "backward", "grad", "sum_to_shape"]

# Like torch, floating-point overflow or 0/0 gives inf/nan without a warning.
_SILENT_FP = {"divide": "ignore", "over": "ignore", "invalid": "ignore"}

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


def sum_to_shape(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``array`` over the dimensions that broadcasting added or stretched to reach ``shape``.

    This is the gradient rule of broadcasting: an input of ``shape`` broadcast to
    ``array.shape`` receives the sum of the gradient over the copies it was broadcast to.
    """
    if array.shape == shape:
        return array
    lead = array.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and array.shape[lead + i] != 1
    )
    out = np.sum(array, axis=axes, keepdims=True) if axes else array
    if lead:
        out = out.reshape(out.shape[lead:])
    return out


class Context:
    """The ``ctx`` passed to ``forward``/``backward``, and the ``grad_fn`` node of its outputs.

    Attributes available in ``forward`` and ``backward``:
        needs_input_grad: one bool per positional argument of ``forward``: whether that argument
            is a Tensor whose gradient is wanted. ``backward`` may skip work where it is False.
        saved_tensors: the arrays given to ``save_for_backward`` (freed after ``backward`` unless
            ``retain_graph=True``).
    Any other attribute (``ctx.stride = stride``) may be set freely in ``forward``.
    """

    def __init__(self, fn: type[Function], inputs: tuple[Tensor | None, ...]) -> None:
        self._fn = fn
        # One entry per positional argument: the input Tensor when it needs a gradient, else None.
        self._inputs = inputs
        self.needs_input_grad = tuple(t is not None for t in inputs)
        self._saved: tuple[Any, ...] | None = ()
        self._non_differentiable_ids: set[int] = set()
        self._num_outputs = 1
        self._output_shapes: tuple[tuple[int, ...], ...] = ()
        self._output_dtypes: tuple[np.dtype, ...] = ()
        self._differentiable: tuple[bool, ...] = ()
        self._retained: dict[int, weakref.ref[Tensor]] = {}

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep ``arrays`` (ndarrays or None) for ``backward``, where ``saved_tensors`` returns
        them."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """The arrays given to ``save_for_backward``, in order."""
        if self._saved is None:
            raise RuntimeError(_FREED_MESSAGE)
        return self._saved

    def mark_non_differentiable(self, *outputs: np.ndarray) -> None:
        """Mark outputs of ``forward`` (the very arrays it returns) as not carrying gradient.

        Their Tensors get ``requires_grad=False`` and ``backward`` receives None for them.
        Outputs of bool or integer dtype are always non-differentiable.
        """
        self._non_differentiable_ids = {id(o) for o in outputs}

    def name(self) -> str:
        """Return the node's name, ``<Function name>Backward``."""
        return f"{self._fn.__name__}Backward"

    @property
    def next_functions(self) -> tuple[tuple[Context | None, int], ...]:
        """For each positional input: ``(grad_fn, output index)`` of the Tensor that fed it, or
        ``(None, 0)`` for a leaf or an input without gradient (as torch's AccumulateGrad/None)."""
        return tuple(
            (t.grad_fn, t._output_nr) if t is not None else (None, 0) for t in self._inputs
        )

    def _release(self) -> None:
        # Like torch, only a node that saved something fails on a second backward.
        if self._saved:
            self._saved = None

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class Function:
    """Base class of differentiable operations: subclass it and define ``forward``/``backward``.

    ``forward(ctx, *args, **kwargs) -> ndarray | tuple[ndarray, ...]``
        Receives every positional Tensor argument unwrapped to its ``.data`` ndarray; other
        positional arguments (arrays, None, numbers) and all keyword arguments arrive untouched.
        It runs with grad mode off. It may return one array or a tuple of arrays.
    ``backward(ctx, *grad_outputs) -> ndarray | None | tuple[ndarray | None, ...]``
        Receives one gradient array per output of ``forward`` (zeros for a differentiable output
        that received no gradient, None for a non-differentiable one) and returns one gradient
        per positional argument of ``forward``, in order. Trailing entries may be left off, and
        None means "no gradient" (use it for non-Tensor arguments). Each gradient must have the
        shape of its input: reduce broadcasting yourself (``sum_to_shape`` helps); a gradient
        that still broadcasts to the input's shape is summed to it, as torch's engine does, and
        any other shape raises RuntimeError. The engine casts gradients to the input's dtype.
        Treat ``grad_outputs`` and saved arrays as read-only: they may be views of other arrays.

    ``fresh_gradients = True`` on a subclass promises that ``backward`` returns arrays nothing
    else holds (new ones, not inputs, saved arrays or caches, and no array twice): a leaf's
    ``.grad`` then takes such an array as it is instead of a copy, as torch's AccumulateGrad
    steals a gradient no one else refers to.

    Multiple outputs: when ``forward`` returns a tuple, ``apply`` returns a tuple of Tensors.
    Outputs of bool/integer dtype, and those passed to ``ctx.mark_non_differentiable``, get
    ``requires_grad=False`` (e.g. the indices of a max-pool).
    """

    fresh_gradients = False

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        """Compute the op on ndarrays; override in subclasses."""
        raise NotImplementedError("subclasses of Function must implement forward")

    @staticmethod
    def backward(ctx: Context, *grad_outputs: Any) -> Any:
        """Return the gradient for each positional input of ``forward``; override in
        subclasses."""
        raise NotImplementedError("subclasses of Function must implement backward")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on the arrays behind ``args`` and return Tensor output(s) linked into
        the graph when grad mode is on and some Tensor input requires grad."""
        arrays = []
        inputs: list[Tensor | None] = []
        record = False
        for arg in args:
            if isinstance(arg, Tensor):
                arrays.append(arg.data)
                if arg.requires_grad:
                    inputs.append(arg)
                    record = True
                    continue
            else:
                arrays.append(arg)
            inputs.append(None)
        record = record and grad_mode._state.enabled
        ctx = Context(cls, tuple(inputs) if record else (None,) * len(args))

        previous = grad_mode._state.enabled
        grad_mode._state.enabled = False
        try:
            with np.errstate(**_SILENT_FP):
                raw = cls.forward(ctx, *arrays, **kwargs)
        finally:
            grad_mode._state.enabled = previous

        multi = isinstance(raw, tuple)
        outputs = raw if multi else (raw,)
        outputs = tuple(o if isinstance(o, np.ndarray) else np.asarray(o) for o in outputs)
        if not record:
            tensors = tuple(Tensor(o) for o in outputs)
            return tensors if multi else tensors[0]

        excluded = ctx._non_differentiable_ids
        differentiable = tuple(
            is_floating(o.dtype) and id(raw_o) not in excluded
            for o, raw_o in zip(outputs, raw if multi else (raw,), strict=True)
        )
        ctx._num_outputs = len(outputs)
        ctx._output_shapes = tuple(o.shape for o in outputs)
        ctx._output_dtypes = tuple(o.dtype for o in outputs)
        ctx._differentiable = differentiable
        tensors = tuple(
            Tensor._make_result(o, ctx, i) if d else Tensor(o)
            for i, (o, d) in enumerate(zip(outputs, differentiable, strict=True))
        )
        return tensors if multi else tensors[0]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _initial_gradient(root: Tensor, gradient: Any, index: int) -> np.ndarray:
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return np.ones_like(root.data)
    array = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient)
    if array.shape != root.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{index}] has a shape of {tuple(array.shape)} and "
            f"output[{index}] has a shape of {tuple(root.shape)}."
        )
    return array.astype(root.dtype, copy=False)


def _topological_order(roots: Iterable[Context]) -> list[Context]:
    """Return the nodes reachable from ``roots`` so that every node precedes its inputs' nodes."""
    order: list[Context] = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        # Iterative post-order DFS: (node, iterator over its inputs).
        stack = [(root, iter(root._inputs))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child is not None and child.grad_fn is not None:
                    fn = child.grad_fn
                    if id(fn) not in visited:
                        visited.add(id(fn))
                        stack.append((fn, iter(fn._inputs)))
                        break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _accumulate_leaf(leaf: Tensor, g: np.ndarray, owned: bool = False) -> None:
    current = leaf._grad
    if current is None:
        if owned and g.dtype == leaf.data.dtype and g.flags.writeable:
            leaf._grad = Tensor(g)  # no one else holds it (Function.fresh_gradients)
            return
        # Copy: g may be shared with other tensors' gradients or alias saved arrays.
        leaf._grad = Tensor(np.array(g, dtype=leaf.data.dtype, copy=True))
    elif current.data.shape == g.shape and current.data.flags.writeable:
        # In place, as torch does, so a reference to .grad sees the accumulated value.
        current.data += g
    else:
        leaf._grad = Tensor(current.data + g)


def _check_gradient(node: Context, index: int, g: Any, tensor: Tensor) -> np.ndarray:
    if not isinstance(g, np.ndarray):
        if isinstance(g, Tensor):
            g = g.data
        else:
            g = np.asarray(g)
    if g.shape != tensor.data.shape:
        # Accept what torch's engine accepts: a gradient the input's shape expands to.
        try:
            ok = np.broadcast_shapes(g.shape, tensor.data.shape) == g.shape
        except ValueError:
            ok = False
        if not ok:
            raise RuntimeError(
                f"Function {node.name()} returned an invalid gradient at index {index} - got "
                f"{list(g.shape)} but expected shape compatible with {list(tensor.data.shape)}"
            )
        g = sum_to_shape(g, tensor.data.shape)
    if g.dtype != tensor.data.dtype:
        g = g.astype(tensor.data.dtype)
    return g


def _run(
    roots: Sequence[Tensor],
    root_grads: Sequence[np.ndarray],
    retain_graph: bool,
    capture: dict[int, int] | None,
) -> list[np.ndarray | None] | None:
    """Propagate ``root_grads`` back from ``roots``.

    With ``capture`` None, gradients accumulate into the ``.grad`` of leaves. Otherwise capture
    maps ``id(tensor)`` to a slot, and the gradients of those tensors are returned instead, with
    no ``.grad`` touched.
    """
    captured: list[np.ndarray | None] | None = None
    if capture is not None:
        captured = [None] * len(set(capture.values()))
    buffers: dict[Context, list[np.ndarray | None]] = {}

    def deliver(tensor: Tensor, g: np.ndarray, owned: bool = False) -> None:
        # Route the gradient of ``tensor``: into a captured slot, a leaf's .grad, or the
        # buffer of the node that produced it.
        if captured is not None:
            slot = capture.get(id(tensor))  # type: ignore[union-attr]
            if slot is not None:
                captured[slot] = g if captured[slot] is None else captured[slot] + g
        node = tensor.grad_fn
        if node is None:
            if captured is None:
                _accumulate_leaf(tensor, g, owned)
            return
        slots = buffers.get(node)
        if slots is None:
            slots = buffers[node] = [None] * node._num_outputs
        current = slots[tensor._output_nr]
        slots[tensor._output_nr] = g if current is None else current + g

    for root, g in zip(roots, root_grads, strict=True):
        deliver(root, g)
    order = _topological_order(list(buffers))

    previous = grad_mode._state.enabled
    grad_mode._state.enabled = False
    try:
        with np.errstate(**_SILENT_FP):
            for node in order:
                slots = buffers.pop(node, None)
                if slots is None:
                    continue
                for out_index, ref in node._retained.items():
                    retained = ref()
                    g = slots[out_index]
                    if retained is not None and g is not None:
                        _accumulate_leaf(retained, g)
                grad_outputs = [
                    (g if g is not None else np.zeros(shape, dtype)) if diff else None
                    for g, shape, dtype, diff in zip(
                        slots,
                        node._output_shapes,
                        node._output_dtypes,
                        node._differentiable,
                        strict=True,
                    )
                ]
                grads = node._fn.backward(node, *grad_outputs)
                if not isinstance(grads, tuple):
                    grads = (grads,)
                if len(grads) > len(node._inputs):
                    raise RuntimeError(
                        f"function {node.name()} returned an incorrect number of gradients "
                        f"(expected {len(node._inputs)}, got {len(grads)})"
                    )
                if not retain_graph:
                    node._release()
                fresh = node._fn.fresh_gradients
                for index, (tensor, g) in enumerate(zip(node._inputs, grads, strict=False)):
                    if tensor is None or g is None:
                        continue
                    deliver(tensor, _check_gradient(node, index, g, tensor), fresh)
    finally:
        grad_mode._state.enabled = previous
    return captured


def _prepare_roots(outputs: Any, grad_outputs: Any) -> tuple[list[Tensor], list[np.ndarray]]:
    roots = _as_list(outputs)
    grads = [None] * len(roots) if grad_outputs is None else _as_list(grad_outputs)
    if len(grads) != len(roots):
        raise RuntimeError(
            f"grad_outputs must have one entry per output: got {len(grads)} for "
            f"{len(roots)} outputs"
        )
    arrays = []
    for index, (root, g) in enumerate(zip(roots, grads, strict=True)):
        if not isinstance(root, Tensor):
            raise TypeError(
                f"outputs must be Tensors, but element {index} is {type(root).__name__}"
            )
        if not root.requires_grad:
            raise RuntimeError(
                f"element {index} of tensors does not require grad and does not have a grad_fn"
            )
        arrays.append(_initial_gradient(root, g, index))
    return roots, arrays


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool = False) -> None:
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves they depend on.

    ``grad_tensors`` gives the gradient with respect to each tensor (None: 1 for a one-element
    tensor). ``Tensor.backward`` calls this.
    """
    roots, arrays = _prepare_roots(tensors, grad_tensors)
    _run(roots, arrays, retain_graph, None)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return the gradients of ``outputs`` with respect to ``inputs``, leaving ``.grad`` alone.

    As ``torch.autograd.grad`` (without ``create_graph``): ``inputs`` may be leaves or
    intermediate tensors; an input the outputs do not depend on raises RuntimeError unless
    ``allow_unused=True``, in which case its entry is None.
    """
    roots, arrays = _prepare_roots(outputs, grad_outputs)
    targets = _as_list(inputs)
    for index, t in enumerate(targets):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(
                f"One of the differentiated Tensors (index {index}) does not require grad"
            )
    capture = {}
    for index, t in enumerate(targets):
        capture.setdefault(id(t), index)
    captured = _run(roots, arrays, retain_graph, capture)
    assert captured is not None
    result: list[Tensor | None] = []
    for index, t in enumerate(targets):
        g = captured[capture[id(t)]]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (index {index}) appears to not have "
                    "been used in the graph. Set allow_unused=True if this is the desired "
                    "behavior."
                )
            result.append(None)
        else:
            result.append(Tensor(np.array(g, dtype=t.dtype, copy=True)))
    return tuple(result)
