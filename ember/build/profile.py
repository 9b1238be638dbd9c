"""Per-kernel metadata for profiling: the FLOPs of each fused kernel.

The compiler records, per AOT step, the kernel's C symbol, the graph node it computes
and its FLOPs (``metadata["steps"]``); ``Model.profile`` divides them by the measured
seconds of ``ember_run_profiled`` to print GFLOP/s per kernel::

    kernel_flops(fused_call.op)   # 2 * MACs of the conv + 1 per epilogue element
"""

from __future__ import annotations

from ember.graph.analysis import call_flops
from ember.graph.ir import Call, Function
from ember.graph.visitor import post_order
from ember.ops.registry import Op


def _op_flops(call: Call) -> int:
    op = call.op
    assert isinstance(op, Op)
    if op.name == "nn.conv2d_nchwc":
        # (O/o, I/i, KH, KW, i, o): each output element sums I/groups * KH * KW products.
        _, ib, kh, kw, i, _ = call.args[1].type.shape  # type: ignore[union-attr]
        out = call.type.size  # type: ignore[union-attr]
        return 2 * out * ib * i * kh * kw + (out if len(call.args) == 3 else 0)
    return call_flops(call)


def kernel_flops(func: Function) -> int:
    """FLOPs of one primitive function (the sum over its op calls)."""
    return sum(
        _op_flops(n) for n in post_order(func.body) if isinstance(n, Call) and isinstance(n.op, Op)
    )


__all__ = ["kernel_flops"]
