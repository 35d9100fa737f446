"""convlab.allocator: glibc's malloc settings, applied once at import, with an opt-out."""

import os
import platform
import subprocess
import sys

import pytest

from convlab import allocator


def _applied_in_fresh_process(env_extra: dict) -> str:
    env = {**os.environ, **env_extra}
    code = "import convlab.allocator as a, convlab; print(a._applied)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt's settings are glibc's",
)
def test_import_applies_the_settings_and_the_variable_opts_out():
    assert _applied_in_fresh_process({"CONVLAB_SYSTEM_MALLOC": ""}) == "True"
    assert _applied_in_fresh_process({"CONVLAB_SYSTEM_MALLOC": "1"}) == "False"


def test_second_call_returns_the_first_result():
    first = allocator.reuse_freed_memory()
    assert allocator.reuse_freed_memory() is first
