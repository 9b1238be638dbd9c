"""Graph tuning records: a model's per-conv channel blocks, saved as JSON and applied.

    plan = GraphPlan.load("resnet18.graph.json")          # written by plan.save(...)
    lib = ember.compile(mod, params, graph_plan=plan)     # or graph_plan="resnet18.graph.json"
    lib = ember.compile(mod, params, tuning_log="r18.jsonl")   # a plan in the log applies

A plan is tied to one model by :func:`model_key` (a hash of the conv workload list: each
conv's id, shapes and attributes after ``optimize``). In a tuning log (JSON lines) a plan
is one :class:`~ember.dispatch.record.Record` whose workload template is
``"graph_plan"``, key the model key, config ``{"index": -1, "knobs": {}, "graph_plan":
<the plan's JSON>}`` and costs the measured seconds of the kept variant, so every reader
of tuning logs takes it in its stride; compile applies the newest plan of the model and
target found in the applied log.

The JSON form::

    {"kind": "ember.graph_plan", "version": 1, "target": "host", "model": "graph-1f0c...",
     "threads": 1, "blocks": {"conv1": [3, 16], ...}, "tuned_blocks": {...},
     "kept": "tuned", "predicted_ms": {"default": 9.1, "tuned": 8.2},
     "measured_ms": {"default": 9.4, "tuned": 8.6}, "tuning_seconds": 120.5, ...}

``blocks`` is what compile applies: the tuned plan, or ``{}`` (the default rule) when the
tuned plan measured slower end to end (``kept: "default"``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ember.dispatch.record import RECORD_VERSION, Record
from ember.errors import AttrError
from ember.graph.passes.alter_layout import conv_ids

GRAPH_PLAN_TEMPLATE = "graph_plan"
"""The workload template name of graph plan records in a tuning log."""

PLAN_KIND = "ember.graph_plan"
PLAN_VERSION = 1

Blocks = dict[str, tuple[int, int]]


def model_key(opt: Any) -> str:
    """The identity of an optimized module for graph plans: a hash of its conv workloads.

    >>> model_key(optimize(mod, params))   # doctest: +SKIP
    'graph-3b1f0c9a2e4d5f60'
    """
    parts = [
        f"{cid}:{conv.args[0].type}:{conv.args[1].type}:{conv.attrs!r}"
        for conv, cid in conv_ids(opt).items()
    ]
    return "graph-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class GraphPlan:
    """Per-conv (input block, output block) for one model and target, with its costs."""

    target: str
    model: str
    blocks: Blocks
    tuned_blocks: Blocks = field(default_factory=dict)
    kept: str = "tuned"
    threads: int = 0
    predicted_ms: dict[str, float] = field(default_factory=dict)
    measured_ms: dict[str, float] = field(default_factory=dict)
    tuning_seconds: float = 0.0
    timestamp: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = {k: list(v) for k, v in self.blocks.items()}
        d["tuned_blocks"] = {k: list(v) for k, v in self.tuned_blocks.items()}
        return {"kind": PLAN_KIND, "version": PLAN_VERSION, **d}

    @staticmethod
    def from_json(d: Mapping[str, Any], where: str = "graph plan") -> GraphPlan:
        if not isinstance(d, Mapping) or d.get("kind") != PLAN_KIND:
            raise AttrError(
                f"{where}: not a graph plan (expected a JSON object with kind {PLAN_KIND!r})",
                hint="pass a file written by GraphPlan.save or `ember tune --graph`",
            )
        try:

            def blocks(x: Mapping[str, Any]) -> Blocks:
                return {str(k): (int(v[0]), int(v[1])) for k, v in x.items()}

            return GraphPlan(
                target=str(d["target"]),
                model=str(d["model"]),
                blocks=blocks(d["blocks"]),
                tuned_blocks=blocks(d.get("tuned_blocks", {})),
                kept=str(d.get("kept", "tuned")),
                threads=int(d.get("threads", 0)),
                predicted_ms={str(k): float(v) for k, v in d.get("predicted_ms", {}).items()},
                measured_ms={str(k): float(v) for k, v in d.get("measured_ms", {}).items()},
                tuning_seconds=float(d.get("tuning_seconds", 0.0)),
                timestamp=float(d.get("timestamp", 0.0)),
                details=dict(d.get("details", {})),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise AttrError(
                f"{where}: malformed graph plan ({type(err).__name__}: {err})",
                hint="blocks must map conv ids to [input block, output block]",
            ) from None

    def save(self, path: str | Path) -> Path:
        """Write the plan as one JSON file."""
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @staticmethod
    def load(path: str | Path) -> GraphPlan:
        """Read a plan written by :meth:`save`."""
        try:
            d = json.loads(Path(path).read_text())
        except OSError as err:
            raise AttrError(f"cannot read graph plan {str(path)!r}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise AttrError(f"graph plan {str(path)!r} is not JSON: {err}") from None
        return GraphPlan.from_json(d, f"graph plan {str(path)!r}")

    def to_record(self) -> Any:
        """The plan as a tuning log record (see the module docstring)."""
        seconds = self.measured_ms.get(self.kept, 0.0) / 1e3
        return Record(
            self.target,
            {"template": GRAPH_PLAN_TEMPLATE, "args": [], "key": self.model},
            {"index": -1, "knobs": {}, "graph_plan": self.to_json()},
            (seconds,),
            None,
            RECORD_VERSION,
            self.timestamp,
        )

    @staticmethod
    def from_record(record: Any) -> GraphPlan:
        return GraphPlan.from_json(record.config.get("graph_plan"), "graph plan record")


def plans_in(records: Any) -> list[GraphPlan]:
    """The graph plans among tuning records, oldest first."""
    plans = [
        GraphPlan.from_record(r)
        for r in records
        if r.workload.get("template") == GRAPH_PLAN_TEMPLATE and r.error is None
    ]
    return sorted(plans, key=lambda p: p.timestamp)


def plan_blocks(opt: Any, graph_plan: GraphPlan | str | Path | Mapping[str, Any]) -> Blocks | None:
    """The blocks an explicitly given ``graph_plan`` (a GraphPlan, a path to one, or a
    ``{conv id: (input block, output block)}`` mapping) sets for optimized module ``opt``;
    None for an empty plan (the default rule). A GraphPlan tuned for another model is an
    error. (A plan found in a tuning log applies through the dispatch context instead.)
    """
    if isinstance(graph_plan, str | Path):
        graph_plan = GraphPlan.load(graph_plan)
    if isinstance(graph_plan, GraphPlan):
        key = model_key(opt)
        if graph_plan.model != key:
            raise AttrError(
                f"graph plan for model {graph_plan.model} cannot apply to this model ({key}): "
                "its convolutions differ",
                hint="run graph tuning on this model (ember tune --graph)",
            )
        return dict(graph_plan.blocks) or None
    if isinstance(graph_plan, Mapping):
        return {str(k): tuple(v) for k, v in graph_plan.items()} or None  # type: ignore[misc]
    raise AttrError(
        f"graph_plan must be a GraphPlan, a path to a saved plan or a mapping of conv ids to "
        f"(input block, output block); got {type(graph_plan).__name__}"
    )


__all__ = [
    "GRAPH_PLAN_TEMPLATE",
    "GraphPlan",
    "model_key",
    "plan_blocks",
    "plans_in",
]
