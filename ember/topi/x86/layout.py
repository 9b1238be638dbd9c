"""x86 computes of the other blocked-layout ops (``layout_transform``, max / average
pooling on NCHW[x]c) and the schedule of kernels without reductions on blocked data.

    y = layout_transform_compute(x, "NCHW", "NCHW16c")   # y[n, C, h, w, c] = x[n, C*16+c, h, w]
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.codegen.vecmath import VECMATH_FUNCTIONS
from ember.ops.layout import Layout
from ember.target import Target
from ember.te.schedule import Schedule
from ember.te.tensor import ComputeOp, Tensor
from ember.tir import expr as E
from ember.tir.functor import post_order
from ember.topi.common import (
    TAG_ELEMWISE,
    TAG_INJECTIVE,
    TAG_MATERIALIZE,
    int_shape,
    register_compute,
    shape_of,
)
from ember.topi.pool import _window_count


@register_compute("layout_transform")
def _layout_transform(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    return layout_transform_compute(inputs[0], attrs.src_layout, attrs.dst_layout)


def layout_transform_compute(x: Tensor, src_layout: str, dst_layout: str) -> Tensor:
    """``x`` (in ``src_layout``) re-blocked into ``dst_layout``: out[i] = x[src index of i]."""
    src, dst = Layout.parse(src_layout), Layout.parse(dst_layout)
    out_shape = dst.shape_from_primal(src.primal_shape(int_shape(x)))

    def fcompute(*idx: E.PrimExpr) -> E.PrimExpr:
        pos = {a: i for (a, _), i in zip(dst.axes, idx, strict=True)}
        primal: dict[str, E.PrimExpr] = {}
        for a in dst.primal:
            f = dst.factor(a)
            primal[a] = pos[a] * f + pos[a.lower()] if a.lower() in pos else pos[a]
        src_idx = []
        for a, f in src.axes:
            if a.isupper():
                g = src.factor(a)
                src_idx.append(primal[a] // g if g > 1 else primal[a])
            else:
                src_idx.append(primal[a.upper()] % f if f > 1 else E.const(0))
        return x[tuple(src_idx)]

    return te.compute(out_shape, fcompute, name="layout_transform", tag=TAG_INJECTIVE)


@register_compute("nn.max_pool2d_nchwc", "nn.avg_pool2d_nchwc")
def _pool2d_nchwc(inputs: list[Tensor], attrs: Any, out_type: Any) -> Tensor:
    """Window max / average over H and W; the channel block is the vector axis of the
    default reduction schedule. The padded copy (filled with -inf or 0, plus any
    ceil-mode overhang) keeps the window loops free of bounds checks."""
    x = inputs[0]
    kind = "avg" if hasattr(attrs, "count_include_pad") else "max"
    _, _, h, w, _ = int_shape(x)
    out_shape = shape_of(out_type)
    kh, kw = attrs.pool_size
    (sh, sw), (dh, dw) = attrs.strides, attrs.dilation
    pt, pl, pb, pr = attrs.padding
    oh, ow = out_shape[2:4]
    extra_b = max(0, (oh - 1) * sh + dh * (kh - 1) + 1 - (h + pt))
    extra_r = max(0, (ow - 1) * sw + dw * (kw - 1) + 1 - (w + pl))
    fill = te.min_value(x.dtype) if kind == "max" else E.const(0, x.dtype)
    src = x
    if pt or pl or extra_b or extra_r:
        src = te.compute(
            (*int_shape(x)[:2], h + pt + extra_b, w + pl + extra_r, int_shape(x)[4]),
            lambda n, c, iy, ix, b: te.if_then_else(
                te.all(iy >= pt, ix >= pl, iy < h + pt, ix < w + pl),
                x[n, c, iy - pt, ix - pl, b],
                fill,
            ),
            name="pad_data",
            tag=TAG_MATERIALIZE,
        )
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    reducer = te.max if kind == "max" else te.sum

    def window(n: Any, c: Any, y: Any, xx: Any, b: Any) -> E.PrimExpr:
        return reducer(src[n, c, y * sh + ry * dh, xx * sw + rx * dw, b], axis=[ry, rx])

    pooled = te.compute(out_shape, window, name=f"{kind}_pool2d_nchwc", tag="pool2d")
    if kind == "max":
        return pooled

    def average(n: Any, c: Any, y: Any, xx: Any, b: Any) -> E.PrimExpr:
        # The same divisor as the NCHW average pool (ember.topi.pool): taps inside the
        # input, or inside input + declared padding with count_include_pad.
        y0, x0 = y * sh - pt, xx * sw - pl
        if attrs.count_include_pad:
            count = _window_count(y0, -pt, h + pb, kh, dh) * _window_count(x0, -pl, w + pr, kw, dw)
        else:
            count = _window_count(y0, 0, h, kh, dh) * _window_count(x0, 0, w, kw, dw)
        return pooled[n, c, y, xx, b] / count.astype(x.dtype)

    return te.compute(out_shape, average, name="avg_pool2d_nchwc", tag=TAG_ELEMWISE)


def schedule_layout_transform(outputs: list[Tensor], target: Target) -> Schedule | None:
    """Kernels without reductions that write a ``layout_transform`` or a blocked (5-D)
    tensor (DenseNet's concat -> scale -> shift -> relu): every stage inlined into the
    output, the leading axes in parallel, the last two (W and the channel block, or H and
    W) left as plain nested loops. The default injective schedule fuses every axis into
    one loop when the last is short (a division per element, no contiguous runs for the
    C compiler; 0.39 ms for the 224x224 RGB input) or vectorizes the channel block, which
    turns a concatenation's select chain into per-lane code; GCC vectorizes the plain
    loops instead (measured 2-5x faster).

    A kernel that calls float32 vector math (exp, sigmoid, tanh, erf, log, log1p: SiLU,
    Mish, ELU, softplus, GELU) has its innermost axis vectorized as well: ember emits the
    vector helpers, while GCC vectorizes a plain loop of the scalar helpers only when no
    select guards the math (-ftrapping-math keeps it from evaluating both arms), which
    leaves ELU / softplus / Mish kernels scalar."""
    if len(outputs) != 1 or not isinstance(outputs[0].op, ComputeOp):
        return None
    out = outputs[0]
    if out.ndim < 3 or not (out.op.name == "layout_transform" or out.ndim == 5):
        return None
    s = te.create_schedule([out.op])
    for st in s.stages:
        if not isinstance(st.op, ComputeOp):
            continue
        if st.reduce_axis:
            return None
        if st.op is not out.op:
            st.compute_inline()
    axes = list(s[out].op.axis)
    bodies = [v for st in s.stages if isinstance(st.op, ComputeOp) for v in st.body]
    vector_math = out.dtype == "float32" and _calls_vector_math(bodies)
    lanes = target.vector_lanes("float32")
    shape = int_shape(out)
    if vector_math and out.ndim == 4 and shape[-1] < lanes and shape[1] % lanes == 0:
        # Back to NCHW with short rows (7 x 7): vectorize channels instead, so the math
        # runs on vectors (loads from the blocked input are contiguous, the stores a
        # scatter); a plain loop of the scalar helpers GCC does not vectorize here
        # (rows of 7) was measured 4x slower than libm.
        n, c, h, w = axes
        co, ci = s[out].split(c, factor=lanes)
        s[out].reorder(n, co, h, w, ci)
        s[out].parallel(s[out].fuse(n, co, h))
        s[out].vectorize(ci)
        return s
    s[out].parallel(s[out].fuse(*axes[:-2]))
    if vector_math:
        extent = int_shape(out)[-1]
        if extent % lanes == 0 or extent > lanes:  # else: too short, GCC's plain loop
            inner = axes[-1]
            if extent != lanes:  # a split that does not divide keeps a guarded tail
                _, inner = s[out].split(axes[-1], factor=lanes)
            s[out].vectorize(inner)
    return s


def _calls_vector_math(body: list[E.PrimExpr]) -> bool:
    found = False

    def visit(node: object) -> None:
        nonlocal found
        found = found or (isinstance(node, E.Call) and node.name in VECMATH_FUNCTIONS)

    for value in body:
        post_order(value, visit)
    return found


__all__ = ["layout_transform_compute", "schedule_layout_transform"]
