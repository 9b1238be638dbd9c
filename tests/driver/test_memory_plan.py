"""plan_memory: lifetimes never overlap in memory, and the workspace is reused."""

from __future__ import annotations

import numpy as np

from ember.driver.memory_plan import ALIGNMENT, plan_memory
from ember.graph.ir import Function, Module, TensorType, Tuple, Var
from ember.graph.passes.fuse_ops import fuse_ops
from ember.ops import call


def _chain(n: int, shape=(1, 16, 32, 32)):
    x = Var("x", TensorType(shape, "float32"))
    y = x
    for i in range(n):
        # softmax is opaque: every op is its own kernel with its own intermediate
        y = call("nn.softmax", y, axis=1, name=f"s{i}")
    return Module.from_function(Function((x,), y))


def _check_no_overlap(plan):
    """Simulate the plan on shadow memory: every read must see the bytes its producer wrote."""
    from ember.graph.ir import TupleGetItem

    chunks = plan.workspace_bytes // ALIGNMENT
    owner = np.full(chunks, -1)
    tag_of: dict[tuple[object, int], int] = {}
    for step in plan.steps:
        for j, (arg, s) in enumerate(zip(step.call.args, step.args)):
            if s.kind != "workspace":
                continue
            src = (arg.tuple_value, arg.index) if isinstance(arg, TupleGetItem) else (arg, 0)
            lo, hi = s.offset // ALIGNMENT, -(-(s.offset + s.nbytes) // ALIGNMENT)
            assert (owner[lo:hi] == tag_of[src]).all(), (
                f"argument {j} of {step.call.name} clobbered"
            )
        read = {(s.offset, s.offset + s.nbytes) for s in step.args if s.kind == "workspace"}
        for k, s in enumerate(step.results):
            assert s.offset % ALIGNMENT == 0
            if s.kind == "workspace":
                for lo, hi in read:  # a kernel must not write over what it reads
                    assert not (s.offset < hi and lo < s.offset + s.nbytes), step.call.name
                assert s.offset + s.nbytes <= plan.workspace_bytes
                tag_of[(step.call, k)] = len(tag_of)
                lo, hi = s.offset // ALIGNMENT, -(-(s.offset + s.nbytes) // ALIGNMENT)
                owner[lo:hi] = tag_of[(step.call, k)]


def test_chain_reuses_two_buffers():
    plan = plan_memory(fuse_ops(_chain(10)))
    nbytes = 16 * 32 * 32 * 4
    assert plan.total_intermediate_bytes == 9 * nbytes  # the 10th result is the model output
    assert plan.workspace_bytes == 2 * nbytes  # ping-pong
    assert plan.steps[-1].results[0].kind == "output"
    _check_no_overlap(plan)


def test_branches_and_tuple_outputs():
    x = Var("x", TensorType((1, 8, 16, 16), "float32"))
    a = call("nn.softmax", x, axis=1)
    b = call("nn.softmax", a, axis=2)
    c = call("nn.softmax", a, axis=3)  # a lives until here
    d = call("nn.softmax", call("add", b, c), axis=1)
    mod = Module.from_function(Function((x,), Tuple((d, x))))
    plan = plan_memory(fuse_ops(mod))
    _check_no_overlap(plan)
    # output 1 is the input itself: copied at the end
    assert [(src.kind, i) for src, i in plan.copies] == [("input", 1)]
    assert plan.workspace_bytes < plan.total_intermediate_bytes
    assert np.isfinite(plan.workspace_bytes)
