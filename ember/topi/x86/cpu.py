"""What the x86 fast paths need to know about the CPU a target means.

float32_lanes(Target.parse("host"))      # 16 on an AVX-512 host, else 8
vector_registers(Target.parse("host"))   # 32 with AVX-512, else 16
"""

from __future__ import annotations

from ember.runtime.cpu import host_cpu_flags
from ember.target import Target


def _native_avx512(target: Target | None) -> bool:
    # Only "host" built with -march=native is known to run where it was compiled; a named
    # -mcpu could be an older CPU, so it gets the AVX2 choices.
    if target is None or target.kind != "host" or target.option("mcpu", "native") != "native":
        return False
    flags = host_cpu_flags()
    return "avx512f" in flags and "avx512vl" in flags


def float32_lanes(target: Target | None) -> int:
    """float32 lanes of one SIMD register: 16 with AVX-512 on the host, else 8 (AVX2)."""
    return 16 if _native_avx512(target) else 8


def vector_registers(target: Target | None) -> int:
    """SIMD registers a register tile may use: 32 with AVX-512, else 16."""
    return 32 if _native_avx512(target) else 16


__all__ = ["float32_lanes", "vector_registers"]
