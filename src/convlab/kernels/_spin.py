"""A GIL-free spin-wait on a flag in a NumPy array (numba, x86-64): the hand-off of
:mod:`convlab.kernels.parallel`.

A thread that sleeps between two parts of a kernel (on a lock or a condition) takes 30-50 us
to wake on the 2-vCPU VM convlab is tuned on: the idle virtual CPU halts, and waking it goes
through the hypervisor. LeNet's training step splits five times, so that was ~10 % of it.
Waiting instead in a compiled loop that reads the flag with an atomic load (and the ``pause``
instruction between reads), with the GIL released, keeps the waiter's CPU running for a
bounded time; PyTorch's OpenMP threads do the same between parallel regions.

Only imported where numba is installed and the machine is x86-64 (``pause``).
"""

from __future__ import annotations

import functools

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _load_acquire(typingctx, array, index):  # pragma: no cover - compiled
    """``array[index]`` (int64) read with an atomic acquire load: never hoisted out of a loop,
    and it sees the other thread's store."""
    signature = types.int64(array, types.intp)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]])
        return builder.load_atomic(pointer, "acquire", 8)

    return signature, codegen


@intrinsic
def _pause(typingctx):  # pragma: no cover - compiled
    """The x86 ``pause`` hint: a polite spin (it yields to the sibling hyperthread)."""
    signature = types.void()

    def codegen(context, builder, sig, args):
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
        )
        builder.call(function, [])
        return context.get_dummy_value()

    return signature, codegen


def _spin_while(flags, index, value, limit, stop):  # pragma: no cover - compiled
    """Spin while ``flags[index] == value``, at most ``limit`` reads, and while
    ``flags[stop]`` is 0; return the last read of ``flags[index]``."""
    for _ in range(limit):
        current = _load_acquire(flags, index)
        if current != value:
            return current
        if _load_acquire(flags, stop) != 0:
            return value
        _pause()
    return value


@functools.cache
def spin_while():
    """The compiled :func:`_spin_while` (nogil: the GIL is free while it spins)."""
    return numba.njit(nogil=True, cache=True)(_spin_while)
