"""What this machine's CPU supports, read once from /proc/cpuinfo.

Shared by the runtime (an artifact built for CPU features this machine lacks
must not load) and the compiler (which records the features an artifact needs,
and sizes kernels to the vector width).
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def host_cpu_flags() -> frozenset[str]:
    """The feature flags of this machine's first CPU (``avx2``, ``fma``, ...); empty if unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()
