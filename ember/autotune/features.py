"""Features of a config for the cost model: knob values and the loop structure they produce.

    fx = FeatureExtractor(task)
    X = fx.features([0, 17, 42])          # float32 array, one fixed-length row per config

Per knob: log2 of each split factor (the outer one derived), reorder positions,
annotation codes, other values. Per computed stage (schedule order, up to
``MAX_STAGES``), for its innermost ``MAX_LOOPS`` loops: log2 extent, loop kind
(serial/parallel/vectorized/unrolled), reduction or not, and the estimated bytes the
stage touches inside that loop (the working set per loop level); then, per tensor
it reads, the innermost loop's access pattern (invariant / unit stride / strided),
and the stage's parallel extent, vector length and unrolled iterations.

Extents of a stage attached with ``compute_at`` are estimated from its full domain
(exact for the inner loops of factor splits, an upper bound for outer ones), so the
features need no bound inference and cost about one template run per config.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ember.dispatch.space import (
    ANNOTATIONS,
    AnnotateSpace,
    OtherOptionSpace,
    ReorderSpace,
    SplitSpace,
)
from ember.dispatch.task import Task
from ember.te.bound import leaf_extents
from ember.te.schedule import Fuse, Split
from ember.te.tensor import REDUCE, ComputeOp
from ember.tir import expr as E
from ember.tir.functor import post_order
from ember.tir.stmt import ForKind

MAX_STAGES = 3
MAX_LOOPS = 8
MAX_TENSORS = 3
KINDS = (ForKind.SERIAL, ForKind.PARALLEL, ForKind.VECTORIZED, ForKind.UNROLLED)
LOOP_FEATURES = 4 + len(KINDS)
STAGE_FEATURES = MAX_LOOPS * LOOP_FEATURES + MAX_TENSORS + 4


def _log2(x: float) -> float:
    return math.log2(x) if x > 0 else -1.0


def knob_features(task: Task, index: int) -> list[float]:
    space = task.config_space
    out: list[float] = []
    rest = index
    for knob in space.space_map.values():
        choice = rest % len(knob)
        rest //= len(knob)
        entity = knob.entities[choice]
        if isinstance(knob, SplitSpace):
            inner = entity.size[1:]
            outer = math.ceil(knob.extent / math.prod(inner))
            out += [_log2(outer)] + [_log2(f) for f in inner]
        elif isinstance(knob, ReorderSpace):
            out += [float(p) for p in entity.perm]
        elif isinstance(knob, AnnotateSpace):
            out += [float(ANNOTATIONS.index(a)) for a in entity.anns]
        elif isinstance(knob, OtherOptionSpace):
            v = entity.val
            out.append(float(v) if isinstance(v, int | float | bool) else float(choice))
    return out


def _vars_of(e: Any) -> set[E.Var]:
    found: set[E.Var] = set()
    post_order(e, lambda n: found.add(n) if isinstance(n, E.Var) else None)
    return found


def _stage_features(stage: Any) -> list[float]:
    """Loop-structure features of one stage (see the module docstring)."""
    roots = {iv: iv.extent for iv in stage.axis + stage.reduce_axis}
    ext = leaf_extents(stage, roots)
    # Which root variables each derived axis moves.
    moves: dict[Any, set[E.Var]] = {iv: {iv.var} for iv in roots}
    for rel in stage.relations:
        if isinstance(rel, Split):
            moves[rel.outer] = moves[rel.inner] = moves[rel.parent]
        elif isinstance(rel, Fuse):
            moves[rel.fused] = moves[rel.outer] | moves[rel.inner]
    leaves = list(stage.leaf_iter_vars)
    loads: list[tuple[list[set[E.Var]], list[int], int]] = []

    def collect(n: Any) -> None:
        if isinstance(n, E.ProducerLoad):
            shape = [int(d.value) if isinstance(d, E.IntImm) else 1 for d in n.producer.shape]
            bits = "".join(c for c in n.producer.dtype if c.isdigit())
            item = max(1, int(bits or 32) // 8)
            loads.append(([_vars_of(i) for i in n.indices], shape, item))

    for b in stage.body:
        post_order(b, collect)
    out_shape = [ext.get(iv, 1) for iv in stage.axis]
    loads.append(([{iv.var} for iv in stage.axis], out_shape, 4))

    feats: list[float] = []
    inner_ext: dict[Any, int] = {}
    loop_rows = []
    for leaf in reversed(leaves):  # innermost first
        inner_ext[leaf] = ext.get(leaf, 1)
        footprint = 0
        for dims, shape, item in loads:
            elems = 1
            for dvars, size in zip(dims, shape, strict=False):
                span = 1
                for lf, n in inner_ext.items():
                    if moves.get(lf, set()) & dvars:
                        span *= n
                elems *= min(size, span)
            footprint += elems * item
        kind = stage.iter_attrs[leaf].kind if leaf in stage.iter_attrs else ForKind.SERIAL
        row = [
            _log2(ext.get(leaf, 1)),
            1.0 if leaf.kind == REDUCE else 0.0,
            _log2(footprint),
            float(len(loop_rows)),
        ]
        row += [1.0 if kind == k else 0.0 for k in KINDS]
        loop_rows.append(row)
    for k in range(MAX_LOOPS):
        feats += loop_rows[k] if k < len(loop_rows) else [0.0] * LOOP_FEATURES
    innermost = moves.get(leaves[-1], set()) if leaves else set()
    for t in range(MAX_TENSORS):
        if t < len(loads) - 1:
            dims = loads[t][0]
            if not any(innermost & d for d in dims):
                code = 0.0  # invariant: a register value
            elif innermost & dims[-1]:
                code = 1.0  # the last dimension: unit stride
            else:
                code = 2.0  # strided
        else:
            code = -1.0
        feats.append(code)
    par = vec = unr = 1
    for leaf in leaves:
        attr = stage.iter_attrs.get(leaf)
        if attr is None:
            continue
        n = ext.get(leaf, 1)
        if attr.kind == ForKind.PARALLEL:
            par *= n
        elif attr.kind == ForKind.VECTORIZED:
            vec *= n
        elif attr.kind == ForKind.UNROLLED:
            unr *= n
    feats += [_log2(par), _log2(vec), _log2(unr), 1.0 if stage.attach_type == "scope" else 0.0]
    return feats


def structure_features(task: Task, index: int) -> list[float]:
    s, _tensors = task.instantiate(task.config_space.get(index))
    stages = [st for st in s.stages if isinstance(st.op, ComputeOp) and st.attach_type != "inline"]
    feats: list[float] = []
    for k in range(MAX_STAGES):
        feats += _stage_features(stages[k]) if k < len(stages) else [0.0] * STAGE_FEATURES
    return feats


class FeatureExtractor:
    """Feature rows for configs of one task, cached by index."""

    def __init__(self, task: Task, structure: bool = True) -> None:
        self.task = task
        self.structure = structure
        self._cache: dict[int, np.ndarray] = {}

    def row(self, index: int) -> np.ndarray:
        got = self._cache.get(index)
        if got is None:
            f = knob_features(self.task, index)
            if self.structure:
                try:
                    f += structure_features(self.task, index)
                except Exception:  # a config the template rejects: knob features only
                    f += [0.0] * (MAX_STAGES * STAGE_FEATURES)
            got = np.asarray(f, dtype=np.float32)
            self._cache[index] = got
        return got

    def features(self, indices: list[int]) -> np.ndarray:
        return np.stack([self.row(i) for i in indices]) if indices else np.zeros((0, 0))


__all__ = ["FeatureExtractor", "knob_features", "structure_features"]
