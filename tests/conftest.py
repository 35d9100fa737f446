"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def torch():
    """PyTorch 2.13 (CPU) for parity tests; those tests skip, with the reason, without it."""
    return pytest.importorskip(
        "torch", reason="PyTorch 2.13 not installed: pip install torch==2.13.0"
    )
