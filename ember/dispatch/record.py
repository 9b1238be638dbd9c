"""Tuning records: JSON lines, one measured config per line.

    {"target": "host", "workload": {"template": "matmul", "args": [512, 512, 512],
     "key": "3f2a..."}, "config": {"index": 17, "knobs": {"tile_y": [-1, 4], ...}},
     "costs": [0.0021, 0.0020, 0.0021], "error": null, "version": 1, "timestamp": 1764000000.0}

``error`` is null or ``{"kind": ..., "message": ...}`` (see ``measure.ERROR_KINDS``);
a record with an error never counts as fast.

    append_records("log.jsonl", task, inputs, results)
    for rec in load_records("log.jsonl"): ...
    best = best_per_workload(load_records("log.jsonl"))   # {(target, key): Record}
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ember.errors import EmberError

RECORD_VERSION = 1


class RecordError(EmberError):
    """A tuning log line that cannot be read."""


@dataclass(frozen=True)
class Record:
    """One measured config."""

    target: str
    workload: dict[str, Any]
    config: dict[str, Any]
    costs: tuple[float, ...]
    error: dict[str, str] | None
    version: int = RECORD_VERSION
    timestamp: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        """(target, workload key): what dispatch looks records up by."""
        return (self.target, self.workload["key"])

    @property
    def cost(self) -> float:
        if self.error is not None or not self.costs:
            return float("inf")
        return statistics.median(self.costs)

    def to_json(self) -> str:
        return json.dumps(
            {
                "target": self.target,
                "workload": self.workload,
                "config": self.config,
                "costs": list(self.costs),
                "error": self.error,
                "version": self.version,
                "timestamp": self.timestamp,
            },
            sort_keys=False,
        )

    @staticmethod
    def from_json(line: str, where: str = "") -> Record:
        try:
            d = json.loads(line)
            wl = d["workload"]
            if not {"template", "args", "key"} <= set(wl):
                raise KeyError("workload.template/args/key")
            cfg = d["config"]
            if not {"index", "knobs"} <= set(cfg):
                raise KeyError("config.index/knobs")
            return Record(
                str(d["target"]),
                wl,
                cfg,
                tuple(float(c) for c in d["costs"]),
                d["error"],
                int(d.get("version", RECORD_VERSION)),
                float(d.get("timestamp", 0.0)),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise RecordError(
                f"tuning log {where}: not a tuning record ({type(err).__name__}: {err}): "
                f"{line[:120]!r}",
                hint="each line must be one JSON record written by ember.autotune",
            ) from None


def make_record(task: Any, config: Any, result: Any) -> Record:
    """A record of ``result`` (a MeasureResult) for ``config`` of ``task``."""
    return Record(
        task.target_key,
        task.workload,
        {"index": config.index, "knobs": config.knob_values()},
        tuple(result.costs),
        result.error,
        RECORD_VERSION,
        getattr(result, "timestamp", time.time()),
    )


def default_record(task: Any, result: Any) -> Record:
    """A record of the template's default schedule (``config.default`` true, index -1):
    logged next to the searched configs, so dispatch keeps the default schedule for a
    kernel where no measured config beat it."""
    return Record(
        task.target_key,
        task.workload,
        {"index": -1, "knobs": {}, "default": True},
        tuple(result.costs),
        result.error,
        RECORD_VERSION,
        getattr(result, "timestamp", time.time()),
    )


def append_records(path: str | Path, records: Iterable[Record]) -> None:
    """Append records to a log file (created if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for r in records:
            f.write(r.to_json() + "\n")


def save_records(path: str | Path, records: Iterable[Record]) -> None:
    """Write records to a new log file (replacing it)."""
    path = Path(path)
    with open(path, "w") as f:
        for r in records:
            f.write(r.to_json() + "\n")


def load_records(path: str | Path, skip_bad: bool = False) -> Iterator[Record]:
    """Read the records of a log file; bad lines raise RecordError (or are skipped)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise RecordError(
            f"cannot read tuning log {str(path)!r}: {err.strerror}",
            hint="pass the file `ember tune -o LOG` or Tuner.tune(log=...) wrote",
        ) from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Record.from_json(line, f"{path}:{n}")
        except RecordError:
            if not skip_bad:
                raise


def best_per_workload(records: Iterable[Record]) -> dict[tuple[str, str], Record]:
    """The fastest error-free config for each (target, workload key); a config with an
    error in any of its records (a crash, timeout or wrong answer) is never picked.

    A config measured more than once counts by the median of all its measurements, so
    one lucky sample on a noisy machine does not make it the winner. Where some of a
    workload's configs were re-measured (records marked ``repeat``: the task scheduler
    measures each batch's fastest config again before it counts), only those configs
    and the default schedule compete, and a re-measured config counts by its
    re-measurements alone: the search measures thousands of configs once, and the
    lowest of those single measurements are low by luck (the winner's curse), which is
    why they were re-measured. The returned record carries the pooled costs.
    """
    pooled: dict[tuple[tuple[str, str], int], list[float]] = {}
    first: dict[tuple[tuple[str, str], int], Record] = {}
    again: dict[tuple[tuple[str, str], int], list[float]] = {}  # re-measurements only
    failed: set[tuple[tuple[str, str], int]] = set()
    for r in records:
        k = (r.key, int(r.config.get("index", -1)))
        if r.error is not None:
            failed.add(k)  # crashed, timed out or wrong once: never the pick
            continue
        if not r.costs:
            continue
        pooled.setdefault(k, []).extend(r.costs)
        first.setdefault(k, r)
        if r.config.get("repeat"):
            again.setdefault(k, []).extend(r.costs)
    re_measured = {key for key, _ in again}
    best: dict[tuple[str, str], Record] = {}
    for k, costs in pooled.items():
        if k in failed and k[1] >= 0:  # (the default is the fallback either way)
            continue
        if k[0] in re_measured and k[1] >= 0:
            if k not in again:
                continue  # measured once by a search whose winners were re-measured
            costs = again[k]
        rec = first[k]
        if tuple(costs) != rec.costs:
            rec = Record(
                rec.target,
                rec.workload,
                rec.config,
                tuple(costs),
                None,
                rec.version,
                rec.timestamp,
            )
        old = best.get(k[0])
        if old is None or rec.cost < old.cost:
            best[k[0]] = rec
    return best


__all__ = [
    "RECORD_VERSION",
    "Record",
    "RecordError",
    "append_records",
    "best_per_workload",
    "default_record",
    "load_records",
    "make_record",
    "save_records",
]
