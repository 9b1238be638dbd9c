"""Per-kernel timing of a loaded model: where one inference spends its time.

``Model.profile`` runs the artifact's ``ember_run_profiled`` entry (the AOT executor with
a clock read around every kernel call) ``repeat`` times and reports, per kernel call, the
median seconds, GFLOP/s (from the FLOPs the compiler recorded) and share of the total::

    report = m.profile(repeat=20)
    print(report)                 # table, slowest first
    report.rows[0].gflops
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np

from ember.errors import EmberRuntimeError


@dataclass(frozen=True)
class KernelTime:
    """One kernel call: graph node name, kernel symbol, median ms, FLOPs, GFLOP/s, share."""

    name: str
    kernel: str
    ms: float
    flops: int
    gflops: float
    share: float


@dataclass(frozen=True)
class Profile:
    """Per-kernel times of one model (``rows`` slowest first) and the total median ms."""

    rows: list[KernelTime] = field(default_factory=list)
    total_ms: float = 0.0

    def table(self, top: int | None = None) -> str:
        head = f"{'kernel call':<40} {'ms':>8} {'GFLOP/s':>8} {'share':>6}  kernel"
        lines = [head, "-" * len(head)]
        for r in self.rows[:top]:
            gf = f"{r.gflops:8.1f}" if r.flops else f"{'-':>8}"
            lines.append(f"{r.name[:40]:<40} {r.ms:8.3f} {gf} {r.share:6.1%}  {r.kernel}")
        total_flops = sum(r.flops for r in self.rows)
        rate = total_flops / (self.total_ms * 1e-3) / 1e9 if self.total_ms else 0.0
        lines.append(f"{'total':<40} {self.total_ms:8.3f} {rate:8.1f} {1:6.0%}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def profile_run(
    lib: ctypes.CDLL, steps: list[dict], run_args: tuple, repeat: int, warmup: int
) -> Profile:
    """Run ``ember_run_profiled(*run_args, seconds)`` and gather medians per step."""
    try:
        fn = lib.ember_run_profiled
    except AttributeError:
        raise EmberRuntimeError(
            "this artifact has no profiling entry (ember_run_profiled)",
            hint="recompile it with this version of ember",
        ) from None
    fn.restype = ctypes.c_int32
    fn.argtypes = [ctypes.c_void_p] * 5
    count = len(steps)
    seconds = np.zeros((max(repeat, 1), max(count, 1)), dtype=np.float64)
    scratch = np.zeros(max(count, 1), dtype=np.float64)
    for k in range(warmup + max(repeat, 1)):
        target = scratch if k < warmup else seconds[k - warmup]
        status = fn(*run_args, target.ctypes.data)
        if status != 0:
            raise EmberRuntimeError(f"kernel {status} reported an error while profiling")
    med = np.median(seconds, axis=0)[:count]
    total = float(med.sum())
    rows = [
        KernelTime(
            name=s.get("name") or s["kernel"],
            kernel=s["kernel"],
            ms=float(t) * 1e3,
            flops=int(s.get("flops") or 0),
            gflops=(int(s.get("flops") or 0) / float(t) / 1e9) if t > 0 else 0.0,
            share=float(t) / total if total > 0 else 0.0,
        )
        for s, t in zip(steps, med)
    ]
    rows.sort(key=lambda r: -r.ms)
    return Profile(rows, total * 1e3)


__all__ = ["KernelTime", "Profile", "profile_run"]
