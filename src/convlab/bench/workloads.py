"""The benchmark workloads of ``shared/reference/baselines.md``, built for convlab and PyTorch.

Each :class:`Workload` makes its float32 data once from a fixed seed (:meth:`Workload.data`), then
builds one :class:`Case` per library from that same data (:meth:`Workload.build`): a ``run`` to
time, an optional untimed ``prepare`` before each run (the forward pass of a backward workload)
and ``outputs`` to compare the two libraries. convlab is reached only through its public API
(``convlab.nn.functional``, ``convlab.models``, ``convlab.optim``).

Work is counted as PyTorch's benchmarks do: effective GFLOP/s =
``2 * N * C_out * prod(out) * (C_in / groups) * prod(kernel) / time``; a transposed convolution
counts its real multiply-adds ``2 * N * C_in * prod(in) * (C_out / groups) * prod(kernel)``; a
backward pass (input and weight gradients) counts twice its forward; max pooling counts the bytes
of its input and output (GB/s); LeNet-5 counts images (img/s).

    >>> from convlab.bench.workloads import WORKLOADS
    >>> w = WORKLOADS["W1b"]; case = w.build("convlab", w.data())
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlab import shapes

__all__ = [
    "ALIASES",
    "WORKLOADS",
    "Case",
    "ConvSpec",
    "PoolSpec",
    "Workload",
    "scaled_batch",
]

LIBRARIES = ("convlab", "torch")


def scaled_batch(batch: int, scale: float) -> int:
    """The batch size of a workload run at ``scale`` (at least one sample)."""
    return max(1, round(batch * scale))


@dataclass
class Case:
    """One workload built for one library.

    ``run()`` is what is timed; ``prepare()`` (when given) runs untimed before each ``run()``;
    ``outputs()`` gives the arrays produced by the latest ``run()``, for the comparison.
    """

    run: Callable[[], Any]
    outputs: Callable[[], list[np.ndarray]]
    prepare: Callable[[], Any] | None = None


@dataclass(frozen=True)
class ConvSpec:
    """A convolution's geometry at batch ``batch`` (``op`` names the functional in both libs)."""

    op: str  # "conv1d", "conv2d" or "conv_transpose2d"
    batch: int
    in_channels: int
    size: tuple[int, ...]
    out_channels: int
    kernel: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    output_padding: int = 0

    @property
    def transposed(self) -> bool:
        return self.op.startswith("conv_transpose")

    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, *self.kernel)
        return (self.out_channels, self.in_channels // self.groups, *self.kernel)

    def output_size(self) -> tuple[int, ...]:
        if self.transposed:
            return tuple(
                shapes.conv_transpose_output_size(
                    n, k, self.stride, self.padding, self.dilation, self.output_padding
                )
                for n, k in zip(self.size, self.kernel)
            )
        return tuple(
            shapes.conv_output_size(n, k, self.stride, self.padding, self.dilation)
            for n, k in zip(self.size, self.kernel)
        )

    def flops(self, batch: int | None = None) -> int:
        """Multiply-adds times two of the forward pass (see the module docstring)."""
        n = self.batch if batch is None else batch
        kernel = math.prod(self.kernel)
        if self.transposed:
            per_input = (self.out_channels // self.groups) * kernel
            return 2 * n * self.in_channels * math.prod(self.size) * per_input
        per_output = (self.in_channels // self.groups) * kernel
        return 2 * n * self.out_channels * math.prod(self.output_size()) * per_output

    def kwargs(self) -> dict[str, int]:
        args = {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }
        if self.transposed:
            args["output_padding"] = self.output_padding
        return args


@dataclass(frozen=True)
class PoolSpec:
    """A 2-D max pooling at batch ``batch``."""

    batch: int
    channels: int
    size: tuple[int, int]
    kernel: int
    stride: int

    def output_size(self) -> tuple[int, ...]:
        return tuple(shapes.conv_output_size(n, self.kernel, self.stride) for n in self.size)

    def bytes(self, batch: int | None = None, itemsize: int = 4) -> int:
        """Bytes of the input plus the output (float32)."""
        n = self.batch if batch is None else batch
        per_sample = math.prod(self.size) + math.prod(self.output_size())
        return n * self.channels * per_sample * itemsize


@dataclass(frozen=True)
class Workload:
    """A named benchmark: its data, its work count and how to build it in each library.

    Attributes:
        name: ``W1a`` ... ``W6ii``; a backward workload ends in ``-bwd`` (W2 is W1b's).
        description: one line for the table.
        unit: ``GFLOP/s``, ``GB/s`` or ``img/s``.
        kind: ``conv``, ``pool`` or ``model``.
        backward: times the gradients (given a fixed grad_output) instead of the forward pass.
        gemm_bound: a convolution whose im2col + GEMM form has matrices big enough for the BLAS
            to run near its peak, so its GFLOP/s is compared with the GEMM ceiling.
    """

    name: str
    description: str
    unit: str
    kind: str
    spec: ConvSpec | PoolSpec | None = None
    backward: bool = False
    gemm_bound: bool = False
    batch: int = 1
    _builders: dict[str, Callable[..., Case]] = field(default_factory=dict, repr=False)
    _make_data: Callable[[Workload, float], dict[str, Any]] | None = field(default=None, repr=False)

    def work(self, scale: float = 1.0) -> float:
        """FLOP, bytes or images of one call at ``scale`` (the numerator of the rate)."""
        batch = scaled_batch(self.batch, scale)
        if self.kind == "conv":
            return float(self.spec.flops(batch) * (2 if self.backward else 1))
        if self.kind == "pool":
            return float(self.spec.bytes(batch))
        return float(batch)

    def rate(self, seconds: float, scale: float = 1.0) -> float:
        """Throughput in ``unit`` for one call lasting ``seconds``."""
        work = self.work(scale) / seconds
        return work if self.unit == "img/s" else work / 1e9

    def data(self, scale: float = 1.0) -> dict[str, Any]:
        """The float32 inputs (and fixed grad_output) from this workload's own seed."""
        return self._make_data(self, scale)

    def build(self, library: str, data: dict[str, Any], torch: Any = None) -> Case:
        """A :class:`Case` running this workload in ``library`` ("convlab" or "torch")."""
        if library not in LIBRARIES:
            raise ValueError(f"library must be one of {LIBRARIES}, but got {library!r}")
        if library == "torch" and torch is None:
            import torch
        return self._builders[library](self, data, torch)


def _rng(key: str) -> np.random.Generator:
    # the seed depends on the key only: both libraries and every run see the same numbers
    return np.random.default_rng(zlib.crc32(key.encode()))


def _normal(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# -- convolution -------------------------------------------------------------------------------


def _conv_data(workload: Workload, scale: float) -> dict[str, Any]:
    spec = workload.spec
    n = scaled_batch(spec.batch, scale)
    rng = _rng(repr(spec))  # a forward and its backward share the data
    fan_in = math.prod(spec.weight_shape()[1:])
    data = {
        "x": _normal(rng, (n, spec.in_channels, *spec.size)),
        "w": _normal(rng, spec.weight_shape(), 1 / math.sqrt(fan_in)),
        "b": _normal(rng, (spec.out_channels,), 0.1),
    }
    data["g"] = _normal(rng, (n, spec.out_channels, *spec.output_size()))
    return data


def _conv_convlab(workload: Workload, data: dict[str, Any], torch: Any) -> Case:
    import convlab as cl
    import convlab.nn.functional as F

    fn, kwargs = getattr(F, workload.spec.op), workload.spec.kwargs()
    if not workload.backward:
        x, w, b = (cl.tensor(data[k]) for k in "xwb")
        last: list = [None]

        def forward():
            with cl.no_grad():
                last[0] = fn(x, w, b, **kwargs)

        return Case(forward, lambda: [last[0].data])

    x, w, b = (cl.tensor(data[k], requires_grad=True) for k in "xwb")
    g = cl.tensor(data["g"])
    graph: list = [None]

    def prepare():
        x.grad = w.grad = b.grad = None
        graph[0] = fn(x, w, b, **kwargs)

    def backward():
        graph[0].backward(g)

    return Case(backward, lambda: [x.grad.data, w.grad.data, b.grad.data], prepare)


def _conv_torch(workload: Workload, data: dict[str, Any], torch: Any) -> Case:
    fn, kwargs = getattr(torch.nn.functional, workload.spec.op), workload.spec.kwargs()
    if not workload.backward:
        x, w, b = (torch.tensor(data[k]) for k in "xwb")
        last: list = [None]

        def forward():
            with torch.no_grad():
                last[0] = fn(x, w, b, **kwargs)

        return Case(forward, lambda: [last[0].numpy()])

    x, w, b = (torch.tensor(data[k], requires_grad=True) for k in "xwb")
    g = torch.tensor(data["g"])
    graph: list = [None]

    def prepare():
        x.grad = w.grad = b.grad = None
        graph[0] = fn(x, w, b, **kwargs)

    def backward():
        graph[0].backward(g)

    return Case(backward, lambda: [x.grad.numpy(), w.grad.numpy(), b.grad.numpy()], prepare)


# -- max pooling -------------------------------------------------------------------------------


def _pool_data(workload: Workload, scale: float) -> dict[str, Any]:
    spec = workload.spec
    n = scaled_batch(spec.batch, scale)
    rng = _rng(repr(spec))  # a forward and its backward share the data
    # distinct random values: no ties, so both libraries pick the same maximum
    return {
        "x": _normal(rng, (n, spec.channels, *spec.size)),
        "g": _normal(rng, (n, spec.channels, *spec.output_size())),
    }


def _pool_case(workload: Workload, data: dict[str, Any], lib: Any, fn, no_grad, to_numpy) -> Case:
    spec = workload.spec
    if not workload.backward:
        x = lib.tensor(data["x"])
        last: list = [None]

        def forward():
            with no_grad():
                last[0] = fn(x, spec.kernel, spec.stride)

        return Case(forward, lambda: [to_numpy(last[0])])

    x = lib.tensor(data["x"], requires_grad=True)
    g = lib.tensor(data["g"])
    graph: list = [None]

    def prepare():
        x.grad = None
        graph[0] = fn(x, spec.kernel, spec.stride)

    def backward():
        graph[0].backward(g)

    return Case(backward, lambda: [to_numpy(x.grad)], prepare)


def _pool_convlab(workload: Workload, data: dict[str, Any], torch: Any) -> Case:
    import convlab as cl
    import convlab.nn.functional as F

    return _pool_case(workload, data, cl, F.max_pool2d, cl.no_grad, lambda t: t.data)


def _pool_torch(workload: Workload, data: dict[str, Any], torch: Any) -> Case:
    fn = torch.nn.functional.max_pool2d
    return _pool_case(workload, data, torch, fn, torch.no_grad, lambda t: t.numpy())


# -- LeNet-5 -----------------------------------------------------------------------------------

LEARNING_RATE = 0.01


def _lenet_data(workload: Workload, scale: float) -> dict[str, Any]:
    import convlab as cl
    from convlab.models import lenet5

    n = scaled_batch(workload.batch, scale)
    rng = _rng(workload.name)
    cl.manual_seed(0)
    return {
        "x": _normal(rng, (n, 1, 28, 28)),
        "y": rng.integers(0, 10, n).astype(np.int64),
        "state": lenet5().state_dict(),  # convlab's initial weights, copied into both models
    }


def torch_lenet5(torch: Any):
    """LeNet-5 built layer by layer in PyTorch, the same layers as ``convlab.models.lenet5()``."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def _lenet_convlab(workload: Workload, data: dict[str, Any], torch: Any) -> Case:
    import convlab as cl
    import convlab.nn.functional as F
    from convlab import optim
    from convlab.models import lenet5

    model = lenet5()
    model.load_state_dict(data["state"])
    x = cl.tensor(data["x"])
    last: list = [None]
    if workload.backward:
        y = cl.tensor(data["y"])
        opt = optim.SGD(model.parameters(), lr=LEARNING_RATE)
        model.train()

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            last[0] = loss

        params = list(model.parameters())
        return Case(step, lambda: [last[0].data.reshape(1)] + [p.data for p in params])

    model.eval()

    def infer():
        with cl.no_grad():
            last[0] = model(x)

    return Case(infer, lambda: [last[0].data])


def _lenet_torch(workload: Workload, data: dict[str, Any], torch: Any) -> Case:
    model = torch_lenet5(torch)
    model.load_state_dict({k: torch.tensor(v) for k, v in data["state"].items()})
    x = torch.tensor(data["x"])
    last: list = [None]
    if workload.backward:
        y = torch.tensor(data["y"])
        opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        model.train()

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            last[0] = loss

        params = list(model.parameters())
        return Case(
            step,
            lambda: [last[0].detach().numpy().reshape(1)] + [p.detach().numpy() for p in params],
        )

    model.eval()

    def infer():
        with torch.no_grad():
            last[0] = model(x)

    return Case(infer, lambda: [last[0].numpy()])


# -- the table ---------------------------------------------------------------------------------

_CONV = {"convlab": _conv_convlab, "torch": _conv_torch}
_POOL = {"convlab": _pool_convlab, "torch": _pool_torch}
_LENET = {"convlab": _lenet_convlab, "torch": _lenet_torch}


def _conv(name: str, description: str, spec: ConvSpec, gemm_bound: bool, backward_name: str):
    """A forward convolution workload and its backward twin (named ``backward_name``)."""
    forward = Workload(
        name, description, "GFLOP/s", "conv", spec, False, gemm_bound, spec.batch, _CONV, _conv_data
    )
    what = "dX + dW + db" if backward_name == "W2" else "dX, dW, db"
    backward = Workload(
        backward_name,
        f"{name} backward ({what})",
        "GFLOP/s",
        "conv",
        spec,
        True,
        gemm_bound,
        spec.batch,
        _CONV,
        _conv_data,
    )
    return forward, backward


def _make_workloads() -> dict[str, Workload]:
    rows: list[Workload] = []
    conv = [
        ("W1a", "conv2d N64 C1 28x28 k5 p2 Co6 (LeNet conv1)", False,
         ConvSpec("conv2d", 64, 1, (28, 28), 6, (5, 5), padding=2)),
        ("W1b", "conv2d N8 C64 56x56 k3 p1 Co64", True,
         ConvSpec("conv2d", 8, 64, (56, 56), 64, (3, 3), padding=1)),
        ("W1c", "conv2d N8 C128 28x28 k3 s2 p1 Co256", True,
         ConvSpec("conv2d", 8, 128, (28, 28), 256, (3, 3), stride=2, padding=1)),
        ("W1d", "depthwise conv2d N8 C128 56x56 k3 p1 g128", False,
         ConvSpec("conv2d", 8, 128, (56, 56), 128, (3, 3), padding=1, groups=128)),
        ("W1e", "1x1 conv2d N8 C256 14x14 Co256", True,
         ConvSpec("conv2d", 8, 256, (14, 14), 256, (1, 1))),
        ("W1f", "dilated conv2d N8 C64 56x56 k3 d2 p2 Co64", True,
         ConvSpec("conv2d", 8, 64, (56, 56), 64, (3, 3), padding=2, dilation=2)),
    ]  # fmt: skip
    for name, description, gemm_bound, spec in conv:
        rows += _conv(name, description, spec, gemm_bound, "W2" if name == "W1b" else f"{name}-bwd")
    rows += _conv(
        "W3",
        "conv_transpose2d N8 C64 28x28 k4 s2 p1 Co32 -> 56x56",
        ConvSpec("conv_transpose2d", 8, 64, (28, 28), 32, (4, 4), stride=2, padding=1),
        True,
        "W3-bwd",
    )
    rows += _conv(
        "W4",
        "conv1d N32 C64 L1024 k7 p3 Co64",
        ConvSpec("conv1d", 32, 64, (1024,), 64, (7,), padding=3),
        True,
        "W4-bwd",
    )
    pool = PoolSpec(8, 64, (112, 112), 2, 2)
    for name, backward, description in (
        ("W5", False, "max_pool2d k2 s2 N8 C64 112x112"),
        ("W5-bwd", True, "W5 backward (dX)"),
    ):
        rows.append(
            Workload(name, description, "GB/s", "pool", pool, backward, False, 8, _POOL, _pool_data)
        )
    rows.append(
        Workload(
            "W6i",
            "LeNet-5 train step N64 (fwd + CE + bwd + SGD)",
            "img/s",
            "model",
            None,
            True,
            False,
            64,
            _LENET,
            _lenet_data,
        )
    )
    rows.append(
        Workload(
            "W6ii",
            "LeNet-5 inference N256",
            "img/s",
            "model",
            None,
            False,
            False,
            256,
            _LENET,
            _lenet_data,
        )
    )
    return {w.name: w for w in rows}


WORKLOADS: dict[str, Workload] = _make_workloads()

# names people may reach for that denote a workload under another name
ALIASES: dict[str, str] = {"W1b-bwd": "W2"}
