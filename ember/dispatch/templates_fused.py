"""A tunable schedule for a model's fused kernels: an anchor (conv2d / dense / matmul)
with its epilogue (bias, activation, residual add) computed in its output's loops.
A user's op whose compute is registered ``tunable=True`` (``ember.custom``) is an anchor
too (tagged ``TAG_ANCHOR``), and a user's elementwise op is tuned in the epilogue it
joins.

The template's argument is the kernel itself (a primitive graph Function); records
identify it by the compiler's ``workload_key``. Kernels without exactly one anchor
of the output's shape are not tunable (:func:`is_tunable` says so) and keep the op
strategy's default schedule.

    task = kernel_task(func, Target.parse("host"))
    s, args = task.instantiate(task.config_space.get(5))

Knobs: ``tile_x`` splits the output's innermost axis (the vector loop inside it),
``tile_y`` the channel axis of a 4-D output (the row axis of a 2-D one); the anchor
accumulates that ``tile_y x tile_x`` block locally over the reduction, whose first
axis ``tile_r`` splits; ``reduce_outside`` orders the other reduction axes;
``unroll`` unrolls the block's rows and vectors.

Kernels anchored on the blocked ``nn.conv2d_nchwc`` (after alter_layout) use the x86
register-tiled schedule instead (ember.topi.x86.conv2d), whose knobs are ``oc_tile``,
``ow_tile``, ``reduce_order``, ``unroll_kw`` and ``row_block`` with the untuned choice as
fallback. The Winograd batched GEMM (``nn.winograd_batch_matmul``, a kernel of its own)
uses its register-tiled schedule (ember.topi.x86.winograd) with knobs ``oc_tile``,
``p_tile``, ``loop_order`` and ``unroll_ic``; the GEMM on packed weight panels
(``nn.dense_pack``, after pack_dense) its own (ember.topi.x86.dense), knobs ``tile_rows``
and ``panels_outer``.
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.dispatch.space import _ConfigBase
from ember.dispatch.task import Task, template
from ember.dispatch.templates_dense import _lanes
from ember.errors import ScheduleError
from ember.graph.ir import Function
from ember.graph.structural import workload_key
from ember.target import Target
from ember.te.exprutil import inline_tensors
from ember.te.tensor import ComputeOp
from ember.topi.common import TAG_ANCHOR, TAG_MATERIALIZE
from ember.topi.schedule_x86 import schedule_injective, schedule_reduction, vector_lanes
from ember.topi.strategy import build_compute
from ember.topi.x86.conv2d import schedule_conv2d_nchwc
from ember.topi.x86.dense import NAME_DENSE_PACK, schedule_dense_pack
from ember.topi.x86.winograd import schedule_winograd

ANCHOR_TAGS = ("conv2d", "conv2d_nchwc", "dense", "matmul", "winograd_gemm", TAG_ANCHOR)
MAX_Y_BLOCK = 16
MAX_X_BLOCK = 64
COMPUTE_CACHE_SIZE = 256
"""Kernels whose TE compute :func:`kernel_compute` keeps (a model has fewer than 100)."""

_computes: dict[int, tuple[Any, list[Any], list[Any]]] = {}


def kernel_compute(func: Any) -> tuple[list[Any], list[Any]]:
    """``build_compute(func)``, built once per kernel and shared by every config.

    Schedules never change the operations they schedule (splits, cache stages and
    inlining live in the schedule's stages), so the cost model's feature extraction,
    which instantiates the template for hundreds of configs, reuses one compute
    instead of lowering the graph to TE each time (a third of its cost).
    """
    got = _computes.get(id(func))
    if got is None or got[0] is not func:
        params, outputs = build_compute(func)
        if len(_computes) >= COMPUTE_CACHE_SIZE:
            _computes.pop(next(iter(_computes)))
        got = (func, params, outputs)  # holding func keeps its id from being reused
        _computes[id(func)] = got
    return list(got[1]), list(got[2])


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(d.value) for d in t.shape)


def find_anchor(outputs: list[Any]) -> Any:
    """The one anchor reduction of a single-output kernel, or a ScheduleError."""
    if len(outputs) != 1:
        raise ScheduleError("fused_kernel template: only single-output kernels are tunable")
    out = outputs[0]
    anchors = []
    seen: set[Any] = set()
    stack = [out.op]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        if isinstance(op, ComputeOp) and op.reduce_axis and op.tag in ANCHOR_TAGS:
            anchors.append(op)
        stack += [t.op for t in op.input_tensors]
    fitting = [a for a in anchors if _shape(a.outputs[0]) == _shape(out)]
    if fitting and fitting[0].tag == "winograd_gemm" and fitting[0] is not out.op:
        fitting = []  # the Winograd GEMM is tunable as a kernel of its own only
    if len(anchors) != 1 or not fitting or len(_shape(out)) not in (2, 3, 4, 5):
        raise ScheduleError(
            "fused_kernel template: the kernel needs exactly one conv2d/dense/matmul of the "
            f"output's shape (found {len(anchors)} anchors)"
        )
    return fitting[0]


@template("fused_kernel")
def fused_kernel(cfg: _ConfigBase, func: Any, target: Target) -> tuple[Any, list[Any]]:
    """Schedule the fused kernel ``func`` (a primitive graph Function) for ``target``
    with ``cfg``."""
    params, outputs = kernel_compute(func)
    anchor_op = find_anchor(outputs)
    out = outputs[0]
    flop = 2.0
    for d in _shape(out):
        flop *= d
    for r in anchor_op.reduce_axis:
        flop *= r.extent
    cfg.add_flop(flop)
    if anchor_op.tag == "conv2d_nchwc":
        # The x86 register-tiled conv schedule with its tile choices as knobs; its
        # fallback point is the untuned schedule ember.compile uses.
        fast = schedule_conv2d_nchwc(outputs, target, cfg)
        if fast is not None:
            return fast, params + outputs
    if anchor_op.name == NAME_DENSE_PACK:
        # The GEMM on packed weight panels (ember.topi.x86.dense), its register tile rows
        # and loop order as knobs; the fallback is the untuned schedule.
        gemm = schedule_dense_pack(outputs, target, cfg)
        if gemm is not None:
            return gemm, params + outputs
    if anchor_op.tag == "winograd_gemm":
        # The Winograd batched GEMM's register-tiled schedule (ember.topi.x86.winograd).
        gemm = schedule_winograd(outputs, target, cfg)
        assert gemm is not None, "find_anchor admits the Winograd GEMM as its own kernel only"
        return gemm, params + outputs
    s = te.create_schedule(out.op)
    if anchor_op is out.op:
        anchor = s[s.cache_write(out, "local")]
    else:
        anchor = s[anchor_op]
    # Inline the epilogue's injective stages; keep materialized ones (a padded input).
    inlined: dict[Any, Any] = {}
    for st in s.stages:
        if not isinstance(st.op, ComputeOp) or st.op is out.op or st is anchor:
            continue
        if st.reduce_axis:
            schedule_reduction(st, vector_lanes(st.op.outputs[0].dtype), attached=False)
        elif st.op.tag == TAG_MATERIALIZE:
            schedule_injective(st, vector_lanes(st.op.outputs[0].dtype))
        else:
            st.compute_inline()
            inlined[st.op.outputs[0]] = ([iv.var for iv in st.axis], st.body[0])
    for st in s.stages:
        if isinstance(st.op, ComputeOp) and st.attach_type != "inline":
            st.body = inline_tensors(tuple(st.body), inlined)

    host = s[out]
    axes = list(host.op.axis)
    shape = _shape(out)
    rank = len(shape)
    # Which output axis each knob tiles: channels (or rows) and columns; a blocked
    # (N, C/8, H, W, 8) output keeps its 8-lane channel axis as the vector.
    y_pos = 1 if rank >= 4 else rank - 2
    x_pos = 3 if rank >= 4 else rank - 1
    blocked = rank == 5
    if cfg.is_fallback:
        cfg.fallback_split("tile_y", [-1, 1 if blocked else (4 if shape[y_pos] % 4 == 0 else 1)])
        cfg.fallback_split("tile_x", [-1, 1 if blocked else _lanes(shape[x_pos])])
        cfg.fallback_split("tile_r", [-1, 1])
    cfg.define_split("tile_y", shape[y_pos], num_outputs=2, max_factor=MAX_Y_BLOCK)
    cfg.define_split("tile_x", shape[x_pos], num_outputs=2, max_factor=MAX_X_BLOCK)
    cfg.define_split("tile_r", anchor.reduce_axis[0].extent, num_outputs=2)
    cfg.define_knob("reduce_outside", [True, False])
    cfg.define_knob("unroll", [True, False])

    yo, yi = cfg["tile_y"].apply(s, host, axes[y_pos])
    xo, xi = cfg["tile_x"].apply(s, host, axes[x_pos])
    lane_axes = [axes[4]] if blocked else []
    outer = []
    for k, a in enumerate(axes):
        if k == y_pos:
            outer.append(yo)
        elif k != x_pos and not (blocked and k == 4):
            outer.append(a)
    outer.append(xo)
    host.reorder(*outer, yi, xi, *lane_axes)
    fused = host.fuse(*outer[:-1]) if len(outer) > 2 else outer[0]
    host.parallel(fused)
    lanes = _lanes(cfg["tile_x"].size[-1])
    if blocked:
        host.vectorize(axes[4])
    elif lanes == cfg["tile_x"].size[-1] and lanes > 1:
        host.vectorize(xi)
    anchor.compute_at(host, outer[-1])
    anchor.set_scope("local")

    a_axes = list(anchor.op.axis)
    reds = list(anchor.reduce_axis)
    ro, ri = cfg["tile_r"].apply(s, anchor, reds[0])
    if blocked:
        rows, vec_outer, vec = a_axes[:-1], [], a_axes[-1]
    else:
        axo, vec = anchor.split(a_axes[-1], factor=lanes)
        rows, vec_outer = a_axes[:-1], [axo]
    if cfg["reduce_outside"].val:
        anchor.reorder(ro, *reds[1:], ri, *rows, *vec_outer, vec)
    else:
        anchor.reorder(ro, ri, *reds[1:], *rows, *vec_outer, vec)
    if blocked or lanes > 1:
        anchor.vectorize(vec)
    if cfg["unroll"].val:
        anchor.unroll(rows[y_pos])
        for a in [rows[x_pos]] if blocked else vec_outer:
            anchor.unroll(a)
    return s, params + outputs


def kernel_task(func: Function, target: Target) -> Task:
    """The ``fused_kernel`` task of one primitive function (keyed by its workload_key).

    >>> kernel_task(func, Target.parse("host")).config_space   # doctest: +SKIP
    """
    shapes = [[list(p.type.shape), p.type.dtype] for p in func.params]
    return Task(
        "fused_kernel",
        (func, target),
        target,
        fused_kernel,
        workload_key(func),
        describe=(func.name, shapes),
    )


def is_tunable(func: Any) -> bool:
    """True when :func:`fused_kernel` can schedule this primitive function."""
    try:
        _params, outputs = kernel_compute(func)
        find_anchor(outputs)
    except ScheduleError:
        return False
    return True


__all__ = ["find_anchor", "fused_kernel", "is_tunable", "kernel_compute", "kernel_task"]
