"""This machine's CPU: the one place that reads it (``/proc/cpuinfo``, ``uname -m``).

The runtime uses it to refuse an artifact built for another machine before any of
its code is loaded; the compiler's ``host`` target is this machine's CPU, and the
kernel cache keys native builds by it::

    host_arch()                      # "x86_64", "aarch64", "armv7l"
    "avx2" in host_cpu_flags()       # feature flags as /proc/cpuinfo spells them
    check_target_record(meta["target"], "model.ember")   # EmberRuntimeError if it can't run

Feature names are the kernel's: ``avx512f``, ``avx512_vnni``, ``fma`` on x86;
``asimd``, ``asimddp`` on aarch64 and ``neon`` on 32-bit ARM.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from collections.abc import Mapping
from typing import Any

from ember.errors import EmberRuntimeError

_CPUINFO = "/proc/cpuinfo"


@functools.lru_cache(maxsize=1)
def _first_processor() -> tuple[tuple[str, str], ...]:
    """``key: value`` lines of the first processor block of /proc/cpuinfo (empty if none)."""
    lines: list[tuple[str, str]] = []
    try:
        with open(_CPUINFO) as fh:
            for line in fh:
                if not line.strip():
                    if lines:
                        break  # the first processor is enough
                    continue
                key, _, value = line.partition(":")
                lines.append((key.strip(), value.strip()))
    except OSError:
        pass
    return tuple(lines)


def host_arch() -> str:
    """The machine architecture as ``uname -m`` prints it (``x86_64``, ``aarch64``, ...)."""
    return platform.machine()


@functools.lru_cache(maxsize=1)
def host_cpu_flags() -> frozenset[str]:
    """The feature flags of this machine's first CPU (``avx2``, ``fma``, ...); empty if unknown.

    x86 lists them under ``flags``, ARM under ``Features``.
    """
    for key, value in _first_processor():
        if key in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def host_cpu_model() -> str:
    """The CPU's model name (``AMD EPYC 7R13 Processor``), or the architecture if unknown."""
    for key, value in _first_processor():
        if key in ("model name", "Model name", "Hardware", "CPU part"):
            return value
    return platform.processor() or host_arch()


@functools.lru_cache(maxsize=1)
def host_cpu_fingerprint() -> str:
    """A hash of what ``-march=native`` means here (architecture, CPU model, feature flags):
    a kernel cache shared by machines with different CPUs must not hand one of them code
    built for the other's instruction set."""
    text = host_arch() + host_cpu_model() + " ".join(sorted(host_cpu_flags()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def missing_features(record: Mapping[str, Any]) -> list[str]:
    """Features an artifact's target record needs that this CPU lacks (empty if it runs)."""
    needed = set(record.get("cpu_features", ()))
    have = host_cpu_flags()
    if not needed or not have:  # unknown on either side: the loader will tell
        return []
    return sorted(needed - have)


def check_target_record(record: Mapping[str, Any], path: str) -> None:
    """Refuse an artifact whose target record says it cannot run on this machine.

    ``record`` is the artifact metadata's ``target`` object (``arch``, ``cpu_features``,
    ``name``); older artifacts without some of the keys are checked on what they have.
    """
    arch = record.get("arch")
    here = host_arch()
    name = record.get("name", arch)
    if arch and arch != here:
        raise EmberRuntimeError(
            f"{path!r} was compiled for {name} ({arch}); this machine is {here}",
            hint=f"compile the model for this machine (--target host), or copy the artifact "
            f"to a {arch} device and run it there",
        )
    missing = missing_features(record)
    if missing:
        raise EmberRuntimeError(
            f"{path!r} was compiled for {name}, whose CPU features this machine lacks: "
            f"{', '.join(missing)}",
            hint="compile for this CPU (--target host) or for an older -mcpu",
        )


__all__ = [
    "check_target_record",
    "host_arch",
    "host_cpu_fingerprint",
    "host_cpu_flags",
    "host_cpu_model",
    "missing_features",
]
