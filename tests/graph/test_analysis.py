"""summarize / format_summary: op counts, parameter counts, FLOP formulas."""

from __future__ import annotations

import numpy as np

from ember.graph import Call, Constant, Function, Module, Tuple
from ember.graph.analysis import call_flops, format_summary, summarize
from ember.ops import call
from tests.graph.graph_testlib import tensor


def test_conv_flops_count_a_multiply_add_as_two() -> None:
    x, w = tensor("x", 2, 8, 10, 10), tensor("w", 16, 4, 3, 3)
    conv = call("nn.conv2d", x, w, padding=1, groups=2)
    # 2 * N*O*OH*OW * (C/groups)*KH*KW
    assert call_flops(conv) == 2 * (2 * 16 * 10 * 10) * (4 * 3 * 3)
    biased = call("nn.conv2d", x, w, tensor("b", 16), padding=1, groups=2)
    assert call_flops(biased) == call_flops(conv) + 2 * 16 * 10 * 10


def test_conv2d_transpose_dense_matmul_batch_matmul() -> None:
    x, w = tensor("x", 1, 4, 5, 5), tensor("w", 4, 3, 2, 2)
    deconv = call("nn.conv2d_transpose", x, w, strides=2, groups=1)
    assert call_flops(deconv) == 2 * (4 * 5 * 5) * (3 * 2 * 2)
    dense = call("nn.dense", tensor("d", 7, 32), tensor("dw", 10, 32))
    assert call_flops(dense) == 2 * 7 * 10 * 32
    matmul = call("nn.matmul", tensor("a", 3, 5, 6), tensor("b", 6, 2))
    assert call_flops(matmul) == 2 * (3 * 5 * 2) * 6
    bmm = call("nn.batch_matmul", tensor("p", 4, 6, 5), tensor("q", 4, 6, 3), transpose_a=True)
    assert call_flops(bmm) == 2 * (4 * 5 * 3) * 6


def test_pooling_elementwise_and_data_movement() -> None:
    x = tensor("x", 1, 8, 6, 6)
    assert call_flops(call("nn.max_pool2d", x, pool_size=3, strides=3)) == 8 * 2 * 2 * 9
    assert call_flops(call("nn.global_avg_pool2d", x)) == 8 * 36
    assert call_flops(call("nn.relu", x)) == 8 * 36
    assert call_flops(call("add", x, tensor("c", 8, 1, 1))) == 8 * 36
    assert call_flops(call("reshape", x, newshape=(8, 36))) == 0
    assert call_flops(call("reduce_sum", x, axes=(1,))) == 8 * 36


def test_summary_counts_ops_weights_and_sees_through_fused_functions() -> None:
    x, w, fc = tensor("data", 1, 3, 4, 4), tensor("w", 2, 3, 1, 1), tensor("fc", 5, 32)
    bias = Constant(np.zeros(5, np.float32))
    p = tensor("p", 1, 5)
    kernel = Function((p,), call("nn.relu", p), {"primitive": True, "name": "relu"})
    y = call("nn.relu", call("nn.conv2d", x, w))
    y = call("reshape", y, newshape=(1, 32))
    y = Call(kernel, (call("nn.dense", y, fc, bias),), None)
    mod = Module.from_function(Function((x, w, fc), Tuple((y, x))))
    params = {"w": None, "fc": None}
    s = summarize(mod, params)
    assert s["num_calls"] == 5
    assert s["op_counts"] == {"nn.dense": 1, "nn.conv2d": 1, "nn.relu": 2, "reshape": 1}
    expected_flops = {
        "nn.dense": 2 * 5 * 32 + 5,
        "nn.conv2d": 2 * 2 * 16 * 3,
        "nn.relu": 32 + 5,
        "reshape": 0,
    }
    assert s["flops_by_op"] == expected_flops
    assert s["flops"] == sum(expected_flops.values())
    assert s["num_params"] == 2 * 3 + 5 * 32 + 5 and s["param_bytes"] == 4 * s["num_params"]
    assert s["inputs"] == [("data", (1, 3, 4, 4), "float32")]
    assert s["outputs"] == [("output0", (1, 5), "float32"), ("output1", (1, 3, 4, 4), "float32")]
    table = format_summary(s)
    assert "inputs:  data: Tensor[(1, 3, 4, 4), float32]" in table
    assert "parameters: 171 (0.00 MiB)" in table
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("op "))
    assert lines[header + 1].split()[:2] == ["nn.dense", "1"]
    assert lines[header + 3].split()[:2] == ["nn.relu", "2"]
