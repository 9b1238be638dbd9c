"""The one place that reads ``EMBER_*`` environment variables, once, at import."""

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
    """Threads for parallel loops (0: let OpenMP decide)."""
    keep_build_dirs: bool
    """Keep temporary build folders for inspection."""
    debug: bool = False
    """``EMBER_DEBUG=1``: full tracebacks of ember errors in the CLI, and the loop IR
    verified after every TIR pass (``ember.tir.passes.lower_pipeline``)."""


def _read() -> Config:
    return Config(
        cache_dir=Path(os.environ.get("EMBER_CACHE_DIR") or _default_cache_dir()),
        cc=os.environ.get("EMBER_CC", "cc"),
        num_threads=int(os.environ.get("EMBER_NUM_THREADS", "0") or 0),
        keep_build_dirs=os.environ.get("EMBER_KEEP_BUILD_DIRS", "") not in ("", "0"),
        debug=os.environ.get("EMBER_DEBUG", "") not in ("", "0"),
    )


config: Config = _read()
