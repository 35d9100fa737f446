"""Keep freed memory for reuse: glibc's malloc settings for array-sized blocks.

glibc gives every allocation above a threshold (128 KiB to 32 MiB, adjusted as it goes) its own
``mmap`` and returns it to the system on free, so the next array of that size starts on fresh
pages: one page fault per 4 KiB written. A convolution allocates and frees several such
arrays per call (columns, gradients, outputs); on a 2-core machine the faults took half the time
of W1b (8 images, 64 channels, 56x56, 3x3: 26 ms instead of 14 ms). PyTorch avoids this with its
own allocators; convlab asks glibc to serve blocks up to 32 MiB from its heap and to keep up to
256 MiB of freed heap for reuse. The process's resident memory then stays near its peak instead
of shrinking after each call.

``import convlab`` calls :func:`reuse_freed_memory` once on Linux with glibc; set the environment
variable ``CONVLAB_SYSTEM_MALLOC=1`` to leave malloc as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
_TRIM_THRESHOLD = 256 << 20
_TOP_PAD = 16 << 20

_applied: bool | None = None


def reuse_freed_memory() -> bool:
    """Ask glibc to serve array-sized blocks from its heap and keep freed ones; True if done.

    Does nothing (returns False) off Linux, with another C library, or when
    ``CONVLAB_SYSTEM_MALLOC`` is set. Calling it again returns the first result.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get("CONVLAB_SYSTEM_MALLOC"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        and mallopt(_M_TOP_PAD, _TOP_PAD)
    )
    return _applied
