"""Keep freed memory in the process for reuse (glibc ``mallopt``), so big stacked tensors stop page-faulting.

glibc serves an allocation above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and unmaps it
when freed, so the next step's tensor of that size faults in every page again. A K-seed learner's
activations pass that size from a few seeds on (at balance's shapes, K = 8: tensors up to 80 MB, about
150k page faults per step), and the faults cost more than the batching saves (measured on this 2-core
machine, K = 8: 102 ms per seed-step with the defaults, 72-75 ms after :func:`keep_freed_memory`).
A single learner's tensors stay under the threshold, so it barely changes.

The setting is process-wide and cannot be undone by this module: call it once, at the start of a
process that trains stacked seeds (the throughput benchmark does, for the single learner it compares
with too). Freed memory is then kept by the process rather than given back to the system. Where the
C library is not glibc it does nothing and returns False.
"""
from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap and never trim it (``M_MMAP_MAX=0``,
    ``M_TRIM_THRESHOLD=2**31-1``); True when glibc took both settings."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
