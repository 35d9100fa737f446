"""Grad mode: whether operations record the graph that ``backward()`` walks.

The flag is thread-local, as in PyTorch, so a data-loading thread that runs under ``no_grad()``
does not switch recording off for the training loop.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _State(threading.local):
    enabled: bool = True


_state = _State()


def is_grad_enabled() -> bool:
    """Return True when new operations record the graph for ``backward()``."""
    return _state.enabled


def _set_enabled(mode: bool) -> None:
    _state.enabled = mode


class _GradModeContext:
    """Base of the grad-mode switches: a context manager that also decorates functions."""

    _mode: bool = True

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_state.enabled)
        _state.enabled = self._mode

    def __exit__(self, *exc_info: object) -> None:
        _state.enabled = self._previous.pop()

    def __call__(self, func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # A fresh instance per call keeps the decorator re-entrant and thread-safe.
            with type(self)():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _NoArgGradModeContext(_GradModeContext):
    def __new__(cls, orig_func: Callable[..., Any] | None = None) -> Any:
        # Lets ``@no_grad`` work without parentheses too, as in torch.
        if orig_func is None:
            return super().__new__(cls)
        if not callable(orig_func):
            raise TypeError(f"{cls.__name__}() takes no arguments, but got {orig_func!r}")
        return cls()(orig_func)


class no_grad(_NoArgGradModeContext):
    """Context manager (or decorator) that stops operations from recording the graph.

    ``with cl.no_grad(): y = w * x`` gives ``y.requires_grad == False``.
    """

    _mode = False


class enable_grad(_NoArgGradModeContext):
    """Context manager (or decorator) that switches graph recording back on inside ``no_grad``."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode`` now; used as a context manager it restores the old mode on exit.

    cl.set_grad_enabled(False)            # as a function
    with cl.set_grad_enabled(is_train):   # or as a context manager
        ...
    """

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self._mode = bool(mode)
        self._previous.append(_state.enabled)
        _state.enabled = self._mode

    def __enter__(self) -> None:
        # The switch already happened in __init__; __exit__ restores the mode saved there.
        pass

    def __call__(self, func: _F) -> _F:
        _state.enabled = self._previous.pop()
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
