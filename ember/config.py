"""The one place that reads ``EMBER_*`` environment variables, once, at import (and
``OMP_NUM_THREADS``, the convention ember's thread count follows when
``EMBER_NUM_THREADS`` is not set)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ember"


@dataclass(frozen=True)
class Config:
    cache_dir: Path
    """Where compiled kernels are cached, keyed by a hash of source and flags."""
    cc: str
    """The C compiler used for host builds."""
    num_threads: int
    """Threads for parallel loops: ``EMBER_NUM_THREADS``, else the first entry of
    ``OMP_NUM_THREADS``; 0 (neither set, or ``EMBER_NUM_THREADS=0``): let OpenMP decide."""
    keep_build_dirs: bool
    """Keep temporary build folders for inspection."""
    debug: bool = False
    """``EMBER_DEBUG=1``: full tracebacks of ember errors in the CLI, and the loop IR
    verified after every TIR pass (``ember.tir.passes.lower_pipeline``)."""


def _threads() -> int:
    """``EMBER_NUM_THREADS``, else ``OMP_NUM_THREADS``'s first entry (``"4,2"``: 4), else 0.
    Values that are not counts are left to the runtime, which says so when it loads."""
    for name in ("EMBER_NUM_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(name, "").split(",")[0].strip()
        if text:
            return int(text) if text.isdigit() else 0
    return 0


def _read() -> Config:
    return Config(
        cache_dir=Path(os.environ.get("EMBER_CACHE_DIR") or _default_cache_dir()),
        cc=os.environ.get("EMBER_CC", "cc"),
        num_threads=_threads(),
        keep_build_dirs=os.environ.get("EMBER_KEEP_BUILD_DIRS", "") not in ("", "0"),
        debug=os.environ.get("EMBER_DEBUG", "") not in ("", "0"),
    )


config: Config = _read()
