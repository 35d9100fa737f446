"""``Module`` and ``Parameter``: the containers of state, as in ``torch.nn``.

A module registers its parameters, buffers and sub-modules by attribute assignment, so that
``parameters()``, ``state_dict()`` and ``train()``/``eval()`` can walk the tree. The rules for
assignment, registration, traversal and (de)serialisation follow ``torch.nn.Module``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from convlab.autograd import Tensor

__all__ = ["Module", "Parameter", "RemovableHandle"]


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable; ``requires_grad`` defaults to True."""

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        array = data.data if isinstance(data, Tensor) else np.asarray(data)
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: the keys it missed and those it did not expect."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
            f"unexpected_keys={self.unexpected_keys})"
        )

    __str__ = __repr__


class RemovableHandle:
    """Returned by ``register_forward_hook``/``register_forward_pre_hook``: ``.remove()`` it."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict[int, Callable]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check_name(kind: str, name: Any, dotted_got: bool = False) -> None:
    """torch's rules for the name of a parameter, buffer or sub-module."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {_type_name(name)}")
    if "." in name:
        got = f", got: {name}" if dotted_got else f", got: {name!r}"
        raise KeyError(f'{kind} name can\'t contain "."{got}')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')


class Module:
    """Base class of every layer: holds parameters, buffers and sub-modules.

    Sub-classes set attributes in ``__init__`` (after ``super().__init__()``) and define
    ``forward``; calling the module runs the forward pre-hooks, ``forward`` and the forward hooks.

    >>> class Affine(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = Parameter(np.ones(3, np.float32))       # registered as a parameter
    ...         self.register_buffer("count", cl.tensor(0))       # saved, not learned
    ...     def forward(self, x):
    ...         return x * self.w
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ---------------------------------------------------------------------------

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call: call super().__init__() "
                "first in the sub-class's __init__"
            )
        if isinstance(value, Parameter):
            self._remove_from(name, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as parameter '{name}' "
                    "(convlab.nn.Parameter or None expected)"
                )
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._remove_from(name, self._parameters, self._buffers)
            self._modules[name] = value
        elif name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as child module '{name}' "
                    "(convlab.nn.Module or None expected)"
                )
            self._modules[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as buffer '{name}' "
                    "(convlab.Tensor or None expected)"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _remove_from(self, name: str, *stores: dict) -> None:
        # Not from the store being assigned to: a re-assigned name keeps its place in the order.
        self.__dict__.pop(name, None)
        for store in stores:
            store.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str):
        for store in ("_parameters", "_buffers", "_modules"):
            items = self.__dict__.get(store)
            if items is not None and name in items:
                return items[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def _check_new_name(self, kind: str, name: Any, store: dict, dotted_got: bool = False) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        _check_name(kind, name, dotted_got)
        if hasattr(self, name) and name not in store:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, for an absent optional one such as ``bias=False``)."""
        self._check_new_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_type_name(param)}' object to parameter '{name}' "
                "(convlab.nn.Parameter or None required)"
            )
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not learned (e.g. running means).

        A persistent buffer is saved in ``state_dict``; a non-persistent one is not.
        """
        self._check_new_name("buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{_type_name(tensor)}' object to buffer '{name}' "
                "(convlab.Tensor or None required)"
            )
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module (or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_type_name(module)} is not a Module subclass")
        self._check_new_name("module", name, self._modules, dotted_got=True)
        self.__dict__.pop(name, None)
        self._modules[name] = module

    def register_module(self, name: str, module: Module | None) -> None:
        """Alias of ``add_module``."""
        self.add_module(name, module)

    def get_submodule(self, target: str) -> Module:
        """The sub-module at a dotted path such as ``"features.0"`` (``""`` is this module)."""
        if target == "":
            return self
        module = self
        for i, item in enumerate(target.split(".")):
            child = module._modules.get(item) if isinstance(module, Module) else None
            if child is None:
                where = ".".join(target.split(".")[:i]) or type(self).__name__
                raise AttributeError(f"{where} has no attribute `{item}`")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path such as ``"features.0.weight"``."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters or module._parameters[name] is None:
            raise AttributeError(f"{type(module).__name__} has no parameter `{name}`")
        return module._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path such as ``"bn.running_mean"``."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._buffers or module._buffers[name] is None:
            raise AttributeError(f"{type(module).__name__} has no buffer `{name}`")
        return module._buffers[name]

    # -- traversal ------------------------------------------------------------------------------

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, pre-order, with dotted names (each once, unless
        ``remove_duplicate=False``)."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                child_prefix = f"{prefix}.{name}" if prefix else name
                yield from child.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a shared parameter is listed once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """Every buffer (persistent or not) with its dotted name; a shared one is listed once."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every sub-module (children first) and then on this module.

        >>> model.apply(lambda m: init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- state ------------------------------------------------------------------------------------

    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        # torch's order: each module's parameters, then its persistent buffers, then its
        # children; a module or tensor reachable under two names appears under both.
        for module_prefix, module in self.named_modules(remove_duplicate=False):
            dotted = prefix + (f"{module_prefix}." if module_prefix else "")
            for name, param in module._parameters.items():
                if param is not None:
                    yield dotted + name, param
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent_buffers_set:
                    yield dotted + name, buf

    def state_dict(
        self, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Any]:
        """Every parameter and persistent buffer by dotted name.

        Values are NumPy copies (``keep_vars=True``: the Parameters and buffer Tensors
        themselves). The keys are PyTorch's, so ``load_state_dict`` accepts torch's
        ``state_dict()`` converted with ``.numpy()``.
        """
        state = OrderedDict() if destination is None else destination
        for key, value in self._state_items(prefix):
            state[key] = value if keep_vars else value.data.copy()
        return state

    def _upgrade_state_dict(self, state: dict[str, np.ndarray], prefix: str) -> None:
        """Hook for sub-classes: fill in entries that older checkpoints lack (in ``state``)."""

    def load_state_dict(self, state_dict, strict: bool = True) -> _IncompatibleKeys:
        """Copy arrays into the parameters and buffers; report or refuse mismatches.

        With ``strict`` (the default), missing or unexpected keys raise a RuntimeError that
        lists all of them; a shape mismatch always raises. Nothing is changed unless every
        entry fits. Returns ``(missing_keys, unexpected_keys)`` as a named tuple.
        """
        own = OrderedDict(self._state_items())
        given = {
            k: (v.data if isinstance(v, Tensor) else np.asarray(v)) for k, v in state_dict.items()
        }
        for prefix, module in self.named_modules(remove_duplicate=False):
            module._upgrade_state_dict(given, f"{prefix}." if prefix else "")
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        errors = [
            f"size mismatch for {k}: copying a param with shape {tuple(given[k].shape)} from "
            f"checkpoint, the shape in current model is {tuple(own[k].shape)}."
            for k in own
            if k in given and given[k].shape != own[k].shape
        ]
        if strict:
            if unexpected:
                errors.insert(
                    0,
                    "Unexpected key(s) in state_dict: "
                    + ", ".join(f'"{k}"' for k in unexpected)
                    + ".",
                )
            if missing:
                errors.insert(
                    0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + "."
                )
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        for key, target in own.items():
            if key in given:
                target.data = given[key].astype(target.dtype, copy=True)
        return _IncompatibleKeys(missing, unexpected)

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode on this module and below."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, but got {mode!r}")
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout off, batch norm uses its running statistics."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros."""
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.data[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter (e.g. to freeze a feature extractor)."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Module:
        """Cast every floating parameter, gradient and buffer to ``dtype``, in place.

        Accepts torch's forms: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``,
        ``to(tensor)`` and keywords. The only device is the CPU.
        """
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif arg is None or _is_device(arg):
                device = arg
            else:
                dtype = arg
        if device is not None and str(device) != "cpu":
            raise RuntimeError(f"convlab runs on the CPU only, but got device={device!r}")
        if dtype is None:
            return self
        target = np.dtype(dtype)
        if target.kind not in "fc":
            raise TypeError(
                "nn.Module.to only accepts floating point or complex dtypes, but got desired "
                f"dtype={target}"
            )
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for value in store.values():
                    if value is None or value.dtype.kind not in "fc":
                        continue
                    value.data = value.data.astype(target, copy=False)
                    grad = value.grad
                    if grad is not None and grad.dtype != target:
                        value.grad = Tensor(grad.data.astype(target))
        return self

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64."""
        return self.to(np.float64)

    def half(self) -> Module:
        """Cast floating parameters and buffers to float16."""
        return self.to(np.float16)

    def cpu(self) -> Module:
        """A no-op: convlab runs on the CPU."""
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the model learns (all parameters, or only trainable ones); a
        shared parameter counts once."""
        return sum(p.data.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- calling, hooks and printing -------------------------------------------------------------

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(module, args)`` before ``forward``; a non-None result replaces ``args``
        (a non-tuple result is wrapped in a tuple)."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after ``forward``; a non-None result replaces the
        output. Handy for looking at intermediate feature maps."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(
            set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        )


def _is_device(value: Any) -> bool:
    """A device as ``Module.to`` may receive it: ``"cpu"``, ``"cuda:0"``, a torch.device."""
    if isinstance(value, str):
        try:
            np.dtype(value)
        except TypeError:
            return True
        return False
    return type(value).__name__ == "device"
