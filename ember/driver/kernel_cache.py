"""The generated C of each kernel, cached on disk by content, so a second compile of a
model (or another model with the same layers) skips Python lowering of those kernels.

    key = source_key(workload, "fused_nn_conv2d_3c2e942df007", target)
    source = cached_source(key, lambda: lower_kernel(func, name, target))

The key hashes everything the C text depends on: the kernel's workload (ops, attributes,
types: :func:`ember.graph.structural.workload_key`), its C name, the target's record,
this machine's CPU (``-mcpu=native`` targets resolve against it) and the source of
ember itself (:func:`code_fingerprint`), so a changed schedule or pass never reads a
stale file. The object cache (:mod:`ember.driver.toolchain`) is keyed by this C text,
so a hit here also finds the compiled object. Tuned kernels are not cached: their
schedule comes from a tuning log the key does not cover.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from ember.codegen.dialect import dialect_for
from ember.config import config
from ember.runtime.cpu import host_cpu_fingerprint
from ember.target import Target
from ember.version import __version__

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""The ``ember`` package folder whose Python sources :func:`code_fingerprint` hashes."""

stats = {"hits": 0, "misses": 0}
"""Counters over this process (tests read them)."""

_lock = threading.Lock()


@functools.cache
def code_fingerprint(root: Path = PACKAGE_ROOT) -> str:
    """A hash of every ``.py`` file under ``root`` (path and bytes) and ember's version:
    editing any lowering rule, pass or code generator changes every key. Computed once
    per process (about 300 small files)."""
    h = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes() + b"\1")
    return h.hexdigest()[:16]


def source_key(workload: str, name: str, target: Target) -> str:
    """The cache key of kernel ``name`` computing ``workload`` for ``target``."""
    parts = [workload, name, json.dumps(target.record(), sort_keys=True, default=str)]
    parts.append(dialect_for(target).name)  # the same kernel in another dialect is other C
    parts += [host_cpu_fingerprint(), code_fingerprint()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def cached_source(key: str, generate: Callable[[], str], cache_dir: Path | None = None) -> str:
    """The C source stored under ``key``, else ``generate()``'s, stored for next time.

    Written to a temporary file and renamed, so a concurrent compile never reads half a
    file; an unreadable cache folder only costs the lowering.

    >>> cached_source(key, lambda: lower_kernel(func, name, target))  # doctest: +SKIP
    """
    folder = Path(cache_dir or config.cache_dir) / "sources"
    path = folder / f"{key}.c"
    try:
        source = path.read_text()
    except OSError:
        pass
    else:
        with _lock:
            stats["hits"] += 1
        return source
    with _lock:
        stats["misses"] += 1
    source = generate()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".c", dir=folder)
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full cache folder: next time lowers again
    return source


__all__ = ["code_fingerprint", "cached_source", "source_key", "stats"]
