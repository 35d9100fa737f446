"""Read an ONNX file into an executable convlab ``Module``.

Loading is all-or-nothing: the file is parsed and checked (``onnx.checker``), every node's
operator and attributes are checked against :data:`convlab.onnx.ops.OPERATORS`, the node order
is made topological, and only then is the model built. Nothing runs at load time except the
``Constant`` nodes, whose values are attributes.

Initializers become the model's state, under their ONNX names split at the dots
(``"features.0.weight"`` is the parameter ``weight`` of sub-module ``features.0``), so that a
graph exported from PyTorch keeps PyTorch's ``state_dict`` names:

- float initializers a node computes with (weights, biases, slopes) are ``Parameter``s;
- batch-norm running means and variances are buffers, as in PyTorch;
- integer initializers and floats read only as numbers (shapes, scales, pads) are
  non-persistent buffers: present, but not in ``state_dict()``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlab.autograd import Tensor
from convlab.nn.module import Module, Parameter
from convlab.onnx.ops import ONNX_DTYPES, OPERATORS, Node, OnnxError

__all__ = ["OnnxModel", "load", "require_onnx"]

_MIN_OPSET = 7


def require_onnx():
    """``import onnx``, or an ImportError that names the extra to install."""
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ONNX support needs the onnx package: pip install 'convlab[onnx]'"
        ) from None
    return onnx


# ---------------------------------------------------------------------------------------------
# Parsing the protobuf
# ---------------------------------------------------------------------------------------------


def _read_model(source: Any):
    """A ModelProto from a path, bytes or a ModelProto; OnnxError for anything unreadable."""
    onnx = require_onnx()
    from google.protobuf.message import DecodeError

    if isinstance(source, onnx.ModelProto):
        return source, "<ModelProto>"
    if isinstance(source, (bytes, bytearray)):
        data, where = bytes(source), "<bytes>"
    else:
        where = os.fspath(source)
        try:
            with open(where, "rb") as file:
                data = file.read()
        except OSError as error:
            raise OnnxError(f"cannot read {where}: {error.strerror or error}") from None
    if not data:
        raise OnnxError(f"{where} is empty, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise OnnxError(
            f"{where} is not a valid ONNX model (truncated or corrupt?): {error}"
        ) from None
    if not isinstance(source, (bytes, bytearray)):
        base = os.path.dirname(os.path.abspath(where))
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
            try:
                from onnx.external_data_helper import load_external_data_for_model

                load_external_data_for_model(model, base)
            except (OSError, ValueError) as error:
                raise OnnxError(f"{where}: cannot read its external weights: {error}") from None
    return model, where


def _opset(model, where: str) -> int:
    """The default-domain opset, checked: a graph and an operator set must be there."""
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxError(f"{where} holds no graph (not an ONNX model, or truncated)")
    opset = None
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            opset = int(entry.version)
    if opset is None:
        raise OnnxError(f"{where} does not import the default ONNX operator set (truncated?)")
    if opset < _MIN_OPSET:
        raise OnnxError(
            f"{where} uses ONNX opset {opset}; convlab reads opset {_MIN_OPSET} and later "
            "(ONNX semantics of opset 11+; convert older models with "
            "onnx.version_converter.convert_version)"
        )
    return opset


def _checker_problem(onnx, model) -> str | None:
    """onnx.checker's complaint, if any (its first line)."""
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        text = str(error).strip()
        return text.splitlines()[0] if text else repr(error)
    return None


def _attribute(onnx, attr) -> Any:
    kind = onnx.AttributeProto
    if attr.type == kind.FLOAT:
        return float(attr.f)
    if attr.type == kind.INT:
        return int(attr.i)
    if attr.type == kind.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if attr.type == kind.TENSOR:
        return onnx.numpy_helper.to_array(attr.t)
    if attr.type == kind.FLOATS:
        return tuple(float(v) for v in attr.floats)
    if attr.type == kind.INTS:
        return tuple(int(v) for v in attr.ints)
    if attr.type == kind.STRINGS:
        return tuple(v.decode("utf-8", errors="replace") for v in attr.strings)
    return attr  # graphs, sparse tensors, type protos: refused by the operator checks


def _nodes(onnx, graph, opset: int) -> list[Node]:
    nodes = []
    for index, proto in enumerate(graph.node):
        nodes.append(
            Node(
                op_type=proto.op_type,
                name=proto.name or f"#{index}",
                inputs=tuple(proto.input),
                outputs=tuple(proto.output),
                attrs={a.name: _attribute(onnx, a) for a in proto.attribute},
                opset=opset,
                domain=proto.domain,
            )
        )
    return nodes


def _check_operators(nodes: Sequence[Node]) -> None:
    """Every operator known, with supported attributes and input counts: else one error that
    lists what is missing."""
    unsupported = []
    for node in nodes:
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPERATORS:
            where = f"{node.domain}." if node.domain not in ("", "ai.onnx") else ""
            unsupported.append(f"{where}{node.op_type} (node {node.name!r})")
    if unsupported:
        shown = ", ".join(unsupported[:10])
        more = f" and {len(unsupported) - 10} more" if len(unsupported) > 10 else ""
        raise OnnxError(
            f"unsupported ONNX operator{'s' if len(unsupported) > 1 else ''}: {shown}{more}. "
            f"convlab implements: {', '.join(sorted(OPERATORS))}"
        )
    for node in nodes:
        operator = OPERATORS[node.op_type]
        low, high = operator.inputs
        count = len(node.inputs)
        if not low <= count <= high or any(not node.has_input(i) for i in range(low)):
            rule = f"{low}" if low == high else f"{low} to {high if high < 1 << 30 else 'any'}"
            raise OnnxError(f"{node.where}: takes {rule} inputs, but got {list(node.inputs)}")
        if operator.check is not None:
            operator.check(node)


def _topological(nodes: list[Node], available: set[str]) -> list[Node]:
    """The nodes in an order that computes every input first (ONNX requires one; be lenient)."""
    known = set(available) | {""}
    for node in nodes:
        if not all(name in known for name in node.inputs):
            break
        known.update(node.outputs)
    else:
        return nodes
    known = set(available) | {""}
    pending, ordered = list(nodes), []
    while pending:
        ready = [n for n in pending if all(name in known for name in n.inputs)]
        if not ready:
            node = pending[0]
            missing = [name for name in node.inputs if name not in known]
            raise OnnxError(
                f"{node.where} reads {missing[0]!r}, which is neither a graph input, an "
                "initializer nor the output of another node (or the graph has a cycle)"
            )
        for n in ready:
            known.update(n.outputs)
            ordered.append(n)
        pending = [n for n in pending if n not in ready]
    return ordered


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class OnnxInitializers(Module):
    """A namespace for initializers: ``"features.0.weight"`` is the parameter ``weight`` of
    the sub-module ``features.0``, as in the PyTorch model the graph came from."""

    def forward(self, *args):
        raise RuntimeError("OnnxInitializers holds weights; call the OnnxModel instead")


class _Value:
    """A graph value's declared type and shape (dims are ints, names or None)."""

    def __init__(self, name: str, dtype: np.dtype | None, shape: tuple | None) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape

    def __repr__(self) -> str:
        dims = "?" if self.shape is None else ", ".join(str(d) for d in self.shape)
        return f"{self.name}: {self.dtype if self.dtype else '?'}[{dims}]"


def _value_info(value) -> _Value:
    tensor = value.type.tensor_type
    dtype = ONNX_DTYPES.get(tensor.elem_type)
    shape = None
    if tensor.HasField("shape"):
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim
        )
    return _Value(value.name, dtype, shape)


class OnnxModel(Module):
    """An ONNX graph run by convlab: call it with the graph inputs, in order (or by name).

    Returns one Tensor for a single-output graph, else a tuple in the graph's output order.
    Everything float runs through convlab's autograd, so the model can be fine-tuned:
    ``model.parameters()`` are the graph's weights.

    >>> model = convlab.onnx.load("lenet.onnx")
    >>> logits = model(np.zeros((1, 1, 28, 28), np.float32))
    """

    def __init__(
        self,
        nodes: list[Node],
        inputs: list[_Value],
        outputs: list[str],
        initializers: dict[str, np.ndarray],
        opset: int,
        graph_name: str = "",
    ) -> None:
        super().__init__()
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "output_names", list(outputs))
        object.__setattr__(self, "opset", opset)
        object.__setattr__(self, "graph_name", graph_name)
        object.__setattr__(self, "_locations", {})
        self._register_initializers(nodes, initializers)
        constants = {}
        for node in nodes:
            if node.op_type == "Constant":
                constants[node.outputs[0]] = OPERATORS["Constant"].run(node)
        object.__setattr__(self, "_constants", constants)
        # Free each intermediate value after its last reader.
        last_use: dict[str, int] = {}
        for index, node in enumerate(nodes):
            for name in node.inputs:
                last_use[name] = index
        release = [[] for _ in nodes]
        for name, index in last_use.items():
            if name not in self.output_names:
                release[index].append(name)
        object.__setattr__(self, "_release", release)

    @property
    def input_names(self) -> list[str]:
        return [value.name for value in self.inputs]

    # -- initializers ----------------------------------------------------------------------------

    def _register_initializers(self, nodes: list[Node], arrays: dict[str, np.ndarray]) -> None:
        learned, state = set(), set()
        for node in nodes:
            operator = OPERATORS[node.op_type]
            for position, name in enumerate(node.inputs):
                if position in operator.state:
                    state.add(name)
                elif position not in operator.static:
                    learned.add(name)
        for name, array in arrays.items():
            array = np.array(array)  # own, writeable memory
            if array.dtype.kind == "f" and name in state:
                self._place(name, Tensor(array), "buffer", persistent=True)
            elif array.dtype.kind == "f" and name in learned:
                self._place(name, Parameter(array), "parameter")
            else:
                self._place(name, Tensor(array), "buffer", persistent=False)

    def _place(self, name: str, value: Tensor, kind: str, persistent: bool = True) -> None:
        module, leaf = self._slot(name)
        if module is None:  # a name that cannot be a module path: keep it flat
            if "initializers" not in self._modules:
                self.add_module("initializers", OnnxInitializers())
            module = self._modules["initializers"]
            leaf = name.replace(".", "_") or "_"
            while leaf in module._parameters or leaf in module._buffers:
                leaf += "_"
        if kind == "parameter":
            module.register_parameter(leaf, value)
        else:
            module.register_buffer(leaf, value, persistent=persistent)
        self._locations[name] = (module, leaf)

    def _slot(self, name: str) -> tuple[Module | None, str]:
        parts = name.split(".")
        if any(not part for part in parts):
            return None, name
        module: Module = self
        for part in parts[:-1]:
            child = module._modules.get(part)
            if child is None:
                if self._taken(module, part):
                    return None, name
                child = OnnxInitializers()
                module.add_module(part, child)
            module = child
        if self._taken(module, parts[-1]):
            return None, name
        return module, parts[-1]

    @staticmethod
    def _taken(module: Module, name: str) -> bool:
        stores = (module._parameters, module._buffers, module._modules)
        return (
            any(name in store for store in stores)
            or hasattr(type(module), name)
            or (name in module.__dict__)
        )

    def _initializer(self, name: str) -> Tensor | None:
        location = self._locations.get(name)
        if location is None:
            return None
        module, leaf = location
        value = module._parameters.get(leaf)
        return value if value is not None else module._buffers.get(leaf)

    # -- running ---------------------------------------------------------------------------------

    def _model_float_dtype(self) -> np.dtype | None:
        for param in self.parameters():
            return param.dtype
        return None

    def _bind_inputs(self, args: tuple, kwargs: dict) -> dict[str, Tensor]:
        names = self.input_names
        if len(args) > len(names):
            raise OnnxError(f"the graph takes {len(names)} inputs {names}, but got {len(args)}")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                raise OnnxError(f"the graph has no input {key!r}; its inputs are {names}")
            if key in given:
                raise OnnxError(f"input {key!r} given twice")
            given[key] = value
        missing = [n for n in names if n not in given]
        if missing:
            raise OnnxError(f"missing graph input(s) {missing}; the graph takes {names}")
        model_dtype = self._model_float_dtype()
        bound = {}
        for info in self.inputs:
            bound[info.name] = self._check_input(info, given[info.name], model_dtype)
        return bound

    @staticmethod
    def _check_input(info: _Value, value: Any, model_dtype: np.dtype | None) -> Tensor:
        declared = info.dtype
        if isinstance(value, Tensor):
            tensor = value
            if declared is not None and declared.kind == "f" and tensor.dtype.kind == "f":
                wanted = model_dtype or declared
                if tensor.dtype != wanted:
                    raise OnnxError(
                        f"input {info.name!r} is {tensor.dtype}, but the model computes in "
                        f"{wanted}: convert the input (e.g. x.float()) or the model"
                    )
        else:
            array = np.asarray(value)
            if declared is not None and declared.kind == "f" and array.dtype.kind in "fiub":
                array = array.astype(model_dtype or declared, copy=False)
            elif declared is not None and array.dtype != declared:
                array = array.astype(declared)
            tensor = Tensor(array if array.flags.c_contiguous else array.copy())
        if info.shape is not None:
            shape = tuple(tensor.shape)
            ok = len(shape) == len(info.shape) and all(
                not isinstance(d, int) or d == s for d, s in zip(info.shape, shape)
            )
            if not ok:
                dims = ", ".join(str(d) for d in info.shape)
                raise OnnxError(
                    f"input {info.name!r} must have shape [{dims}], but got {list(shape)}"
                )
        return tensor

    def forward(self, *args: Any, **kwargs: Any):
        env: dict[str, Tensor | None] = {"": None}
        env.update(self._bind_inputs(args, kwargs))
        for index, node in enumerate(self.nodes):
            operator = OPERATORS[node.op_type]
            if node.op_type == "Constant":
                results = self._constants[node.outputs[0]]
            else:
                values = [self._lookup(env, name) for name in node.inputs]
                try:
                    results = operator.run(node, *values)
                except OnnxError:
                    raise
                except (ValueError, RuntimeError, TypeError, IndexError, ZeroDivisionError) as e:
                    shapes = ", ".join(
                        "absent" if v is None else f"{list(v.shape)} {v.dtype}" for v in values
                    )
                    raise OnnxError(f"{node.where} failed on inputs ({shapes}): {e}") from e
            if not isinstance(results, tuple):
                results = (results,)
            for name, value in zip(node.outputs, results):
                if name:
                    env[name] = value
            for name in self._release[index]:
                env.pop(name, None)
        outputs = tuple(self._lookup(env, name) for name in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs

    def _lookup(self, env: dict, name: str) -> Tensor | None:
        if name in env:
            return env[name]
        value = self._initializer(name)
        if value is None and name in self._constants:
            value = self._constants[name]
        return value

    def extra_repr(self) -> str:
        inputs = ", ".join(repr(v) for v in self.inputs)
        return (
            f"graph={self.graph_name!r}, opset={self.opset}, inputs=[{inputs}], "
            f"outputs={self.output_names}, nodes={len(self.nodes)}"
        )

    def __repr__(self) -> str:  # the initializer tree is long and says little: keep one line
        return f"OnnxModel({self.extra_repr()})"


def load(source: str | os.PathLike | bytes, *, check: bool = True) -> OnnxModel:
    """Build a convlab model from an ONNX file (path), its bytes, or an ``onnx.ModelProto``.

    Args:
        source: the ``.onnx`` file.
        check: also run ``onnx.checker``; what it finds beyond convlab's own checks (which
            always run) becomes a warning.
    Returns:
        an :class:`OnnxModel` in eval mode; ``model(x)`` runs the graph.
    Raises:
        OnnxError: unreadable or corrupt file, opset < 7, unsupported operator (named, with its
            node), unsupported attribute value, a node reading an undefined value.
        ImportError: the ``onnx`` package is missing (``pip install 'convlab[onnx]'``).

    >>> model = load("lenet.onnx")
    >>> model(x).argmax(dim=1)
    """
    onnx = require_onnx()
    model, where = _read_model(source)
    opset = _opset(model, where)
    graph = model.graph
    try:
        initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    except (ValueError, TypeError, OSError) as error:
        raise OnnxError(f"{where}: cannot decode an initializer: {error}") from None
    for t in graph.initializer:
        if initializers[t.name].dtype not in ONNX_DTYPES.values():
            raise OnnxError(
                f"{where}: initializer {t.name!r} has an unsupported element type "
                f"{initializers[t.name].dtype}"
            )
    inputs = [_value_info(v) for v in graph.input if v.name not in initializers]
    for value in inputs:
        if value.dtype is None:
            raise OnnxError(f"{where}: graph input {value.name!r} has an unsupported type")
    nodes = _nodes(onnx, graph, opset)
    _check_operators(nodes)
    available = {v.name for v in inputs} | set(initializers)
    nodes = _topological(nodes, available)
    produced = available | {name for node in nodes for name in node.outputs}
    outputs = [v.name for v in graph.output]
    for name in outputs:
        if name not in produced:
            raise OnnxError(f"{where}: graph output {name!r} is computed by no node")
    problem = _checker_problem(onnx, model) if check else None
    if problem is not None:
        # convlab's own checks passed: the graph is complete and every node is understood.
        # onnxruntime, too, runs graphs the checker finds fault with (e.g. outputs without a
        # declared shape), so warn rather than refuse.
        warnings.warn(f"{where}: onnx.checker reports: {problem}", UserWarning, stacklevel=2)
    result = OnnxModel(nodes, inputs, outputs, initializers, opset, graph.name)
    return result.eval()
