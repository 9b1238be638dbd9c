"""Shared helpers of the benchmark scripts: machine description, interleaved timing, tables."""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Callable

import numpy as np

ZOO_BENCH_MODELS = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "vgg11",
    "squeezenet1_1",
    "densenet121",
    "inception_v3",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "regnet_y_800mf",
    "convnext_tiny",
]
"""The zoo models the speed issues measure, in this order."""


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def header(title: str) -> str:
    today = datetime.date.today().isoformat()
    return f"## {title}\n\n{today} on {machine()}\n"


BLOCK = 5
"""Calls per turn. Systems alternate in blocks, not call by call: a runtime's worker
threads spin for a while after each call, and on a 2-core machine that steals the cores
from whichever system runs next. Medians over many blocks still share the machine's
drift between systems."""


PAUSE_S = 0.05
"""Pause before each turn: longer than worker threads spin-wait before they sleep."""


def max_rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    """Largest absolute difference relative to the reference's largest magnitude."""
    return float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) + 1e-12))


def interleaved_blocks(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 3, block: int = BLOCK
) -> dict[str, list[list[float]]]:
    """ms per call of each fn over ``rounds`` calls, timed in alternating blocks: per fn,
    one list of ``block`` times per turn (turn k of every fn ran at about the same time)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[list[float]]] = {k: [] for k in fns}
    for _ in range(max(1, -(-rounds // block))):
        for name, fn in fns.items():
            time.sleep(PAUSE_S)  # let the other runtime's spinning threads go to sleep
            fn()  # the first call of a turn wakes this runtime's threads: not timed
            turn = []
            for _ in range(block):
                start = time.perf_counter()
                fn()
                turn.append((time.perf_counter() - start) * 1e3)
            times[name].append(turn)
    return times


def interleaved_medians(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 3, block: int = BLOCK
) -> dict:
    """Median ms per call of each fn over ``rounds`` calls, timed in alternating blocks."""
    return block_medians(interleaved_blocks(fns, rounds, warmup, block))


def block_medians(blocks: dict[str, list[list[float]]]) -> dict[str, float]:
    """Median ms per call of each fn over all its turns (see :func:`interleaved_blocks`)."""
    return {k: float(np.median(np.concatenate(v))) for k, v in blocks.items()}


def paired_speedup(
    base: list[list[float]], other: list[list[float]], seed: int = 0
) -> tuple[float, float, float]:
    """How many times faster ``other`` runs than ``base`` (timed turn by turn beside it,
    see :func:`interleaved_blocks`): the median over turns of base/other (each turn's
    median), with a bootstrap 90% interval of that median. Pairing turns cancels the
    machine's drift, which moves both alike."""
    ratios = np.array([np.median(b) / np.median(o) for b, o in zip(base, other, strict=True)])
    rng = np.random.default_rng(seed)
    boot = [np.median(rng.choice(ratios, len(ratios))) for _ in range(2000)]
    lo, hi = np.percentile(boot, [5, 95])
    return float(np.median(ratios)), float(lo), float(hi)


def bootstrap_median(values, seed: int = 0, n: int = 4000) -> tuple[float, float, float]:
    """The median of ``values`` and a bootstrap 90% interval of it (resampling the values
    with replacement): ``bootstrap_median([0.9, 1.0, 0.95])`` -> (0.95, lo, hi)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(values, (n, len(values))), axis=1)
    lo, hi = np.percentile(boot, [5, 95])
    return float(np.median(values)), float(lo), float(hi)


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "| " + " | ".join(str(c).rjust(w) for c, w in zip(r, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(head), sep, *map(fmt, rows)])
