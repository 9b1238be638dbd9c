"""Tensors with a zero-sized dimension, through every layer.

Each case is one op on inputs where some dimension is 0: the type rule and the numpy
reference must agree with plain numpy, and the compiled kernel with the reference.
All cases compile into one model (one kernel each), so the compiled check costs one
build; the model's empty inputs and outputs also cross the AOT entry and the runtime.
An empty result is an array of the right shape and dtype; a reduction over an empty
axis gives the reduction's identity; a matmul with K = 0 gives zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import ember
from ember.graph.ir import Function, Module, Tuple, TupleGetItem, Var
from ember.graph.ir import TensorType as T
from ember.ops import call

EMPTY = (2, 0, 3)


@dataclass(frozen=True)
class Case:
    name: str
    op: str
    shapes: tuple[tuple[int, ...], ...]
    numpy: Callable[..., Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ()
    field_count: int = 0  # > 0: the op returns a tuple of this many tensors


CASES = [
    Case("relu", "nn.relu", (EMPTY,), lambda x: np.maximum(x, 0)),
    Case("exp", "exp", (EMPTY,), np.exp),
    Case("sigmoid", "sigmoid", (EMPTY,), lambda x: 1 / (1 + np.exp(-x))),
    Case("cast", "cast", (EMPTY,), lambda x: x.astype("int32"), {"dtype": "int32"}),
    Case("add_broadcast", "add", (EMPTY, (3,)), np.add),
    Case("add_to_empty", "add", ((2, 1, 3), (0, 1)), np.add),
    Case("less", "less", (EMPTY, EMPTY), np.less),
    Case("sum_empty_axis", "reduce_sum", (EMPTY,), lambda x: x.sum(1), {"axes": (1,)}),
    Case("prod_empty_axis", "reduce_prod", (EMPTY,), lambda x: x.prod(1), {"axes": (1,)}),
    Case("sum_all_empty", "reduce_sum", (EMPTY,), lambda x: x.sum(), {}),
    Case("max_keep_empty", "reduce_max", (EMPTY,), lambda x: x.max(2), {"axes": (2,)}),
    Case("mean_keep_empty", "reduce_mean", (EMPTY,), lambda x: x.mean(2), {"axes": (2,)}),
    Case("argmax", "argmax", (EMPTY,), lambda x: x.argmax(2, keepdims=True), {"axis": 2}),
    Case("softmax", "nn.softmax", (EMPTY,), lambda x: x, {"axis": 2}),
    Case("softmax_empty_axis", "nn.softmax", (EMPTY,), lambda x: x, {"axis": 1}),
    Case("log_softmax", "nn.log_softmax", ((2, 3, 0),), lambda x: x, {"axis": 1}),
    Case("log_softmax_empty_axis", "nn.log_softmax", ((2, 3, 0),), lambda x: x, {"axis": 2}),
    Case("matmul_k0", "nn.matmul", ((3, 0), (0, 4)), np.matmul),
    Case("matmul_m0", "nn.matmul", ((0, 5), (5, 4)), np.matmul),
    Case("dense_k0", "nn.dense", ((3, 0), (4, 0)), lambda x, w: x @ w.T),
    Case(
        "batch_matmul_k0",
        "nn.batch_matmul",
        ((2, 3, 0), (2, 0, 4)),
        np.matmul,
    ),
    Case(
        "concat_empty_part",
        "concatenate",
        (EMPTY, (2, 5, 3)),
        lambda a, b: np.concatenate([a, b], 1),
        {"axis": 1},
    ),
    Case(
        "split_empty_part",
        "split",
        ((2, 4),),
        lambda x: np.split(x, [2, 2], 1),
        {"sections": (2, 0, 2), "axis": 1},
        field_count=3,
    ),
    Case(
        "slice_to_empty",
        "strided_slice",
        ((4, 5),),
        lambda x: x[:, 3:1],
        {"begin": (3,), "end": (1,), "axes": (1,)},
    ),
    Case("transpose", "transpose", (EMPTY,), lambda x: x.transpose(2, 0, 1), {"axes": (2, 0, 1)}),
    Case("reshape", "reshape", (EMPTY,), lambda x: x.reshape(0, 6), {"newshape": (0, 6)}),
    Case("flatten", "flatten", (EMPTY,), lambda x: x.reshape(2, 0), {"axis": 1}),
    Case("expand_dims", "expand_dims", (EMPTY,), lambda x: x[None], {"axes": (0,)}),
    Case("broadcast_to", "broadcast_to", ((1, 3),), lambda x: np.zeros((0, 3)), {"shape": (0, 3)}),
    Case("tile", "tile", (EMPTY,), lambda x: np.tile(x, (2, 3, 1)), {"reps": (2, 3, 1)}),
    Case(
        "pad_empty",
        "nn.pad",
        (EMPTY,),
        lambda x: np.pad(x, ((0, 0), (1, 1), (0, 0)), constant_values=2.0),
        {"pad_width": ((0, 0), (1, 1), (0, 0)), "pad_value": 2.0},
    ),
    Case(
        "take_empty_indices",
        "take",
        ((4, 3), (0, 2)),
        lambda x, i: np.take(x, i, 0),
        dtypes=("float32", "int64"),
    ),
    Case(
        "conv2d_batch0",
        "nn.conv2d",
        ((0, 3, 5, 5), (4, 3, 3, 3)),
        lambda x, w: np.zeros((0, 4, 3, 3), "float32"),
    ),
    Case(
        "max_pool_batch0",
        "nn.max_pool2d",
        ((0, 2, 4, 4),),
        lambda x: np.zeros((0, 2, 2, 2), "float32"),
        {"pool_size": (2, 2), "strides": (2, 2)},
    ),
    Case(
        "resize_batch0",
        "image.resize2d",
        ((0, 2, 3, 3),),
        lambda x: np.zeros((0, 2, 6, 6), "float32"),
        {"size": (6, 6), "method": "linear"},
    ),
]


def _inputs(case: Case, rng: np.random.Generator) -> list[np.ndarray]:
    dtypes = case.dtypes or ("float32",) * len(case.shapes)
    out = []
    for shape, dtype in zip(case.shapes, dtypes):
        if dtype.startswith("int"):
            out.append(rng.integers(0, 4, shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out


def _model() -> tuple[Module, list[str], list[tuple[str, int]]]:
    """One module computing every case: its inputs' names and, per output, (case, field)."""
    params, outputs, names, which = [], [], [], []
    for case in CASES:
        dtypes = case.dtypes or ("float32",) * len(case.shapes)
        args = [
            Var(f"{case.name}_{k}", T(shape, dtype))
            for k, (shape, dtype) in enumerate(zip(case.shapes, dtypes))
        ]
        params += args
        names += [a.name for a in args]
        result = call(case.op, *args, **case.attrs)
        for k in range(case.field_count or 1):
            outputs.append(TupleGetItem(result, k) if case.field_count else result)
            which.append((case.name, k))
    return Module.from_function(Function(params, Tuple(outputs))), names, which


def _numpy(case: Case, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with np.errstate(all="ignore"):
        want = case.numpy(*inputs)
    return list(want) if case.field_count else [want]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reference_matches_numpy(case: Case) -> None:
    rng = np.random.default_rng()
    inputs = _inputs(case, rng)
    args = [Var(f"in{k}", T(x.shape, str(x.dtype))) for k, x in enumerate(inputs)]
    node = call(case.op, *args, **case.attrs)
    ref = ember.graph.interpret(
        Module.from_function(Function(args, node)), {}, {a.name: x for a, x in zip(args, inputs)}
    )
    for got, want in zip(ref, _numpy(case, inputs), strict=True):
        assert got.shape == np.shape(want), case.name
        if got.size:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=case.name)


def test_compiled_matches_reference() -> None:
    """Every case in one compiled model: empty inputs and outputs cross the AOT entry,
    the memory plan (0-byte tensors) and the runtime."""
    mod, names, which = _model()
    rng = np.random.default_rng()
    feeds = {}
    for case in CASES:
        for k, x in enumerate(_inputs(case, rng)):
            feeds[f"{case.name}_{k}"] = x
    assert set(feeds) == set(names)
    want = ember.graph.interpret(mod, {}, feeds)
    model = ember.compile(mod, {}).load()
    got = model.run(feeds)
    assert any(info.shape and 0 in info.shape for info in model.inputs)
    for (name, k), g, w in zip(which, got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype, f"{name}[{k}]"
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"{name}[{k}]")
