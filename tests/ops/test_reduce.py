"""Reductions and arg-reductions vs onnxruntime."""

import numpy as np
import pytest
from ops_testlib import assert_close, infer, randint, randn, run_onnx, run_op

from ember.errors import AttrError, ShapeError

REDUCE = [
    ("reduce_sum", "ReduceSum"),
    ("reduce_mean", "ReduceMean"),
    ("reduce_max", "ReduceMax"),
    ("reduce_min", "ReduceMin"),
    ("reduce_prod", "ReduceProd"),
]


@pytest.mark.parametrize("name,onnx_op", REDUCE, ids=[r[0] for r in REDUCE])
@pytest.mark.parametrize("axes", [None, (1,), (0, 2), (-1,)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_reductions_match_onnxruntime(name, onnx_op, axes, keepdims, dtype):
    x = randn((3, 4, 5), dtype) if dtype == "float32" else randint((3, 4, 5), dtype, -4, 5)
    if name == "reduce_prod" and dtype == "float32":
        x = (np.abs(x) + 0.5).astype(dtype)
    consts = [] if axes is None else [np.array(axes, "int64")]
    want = run_onnx(onnx_op, [x], consts=consts, keepdims=int(keepdims))[0]
    assert_close(run_op(name, [x], axes=axes, keepdims=keepdims), want)


def test_reduce_max_int8_and_type_rule():
    x = randint((3, 4), "int8", -128, 127)
    want = run_onnx("ReduceMax", [x], consts=[np.array([1], "int64")], keepdims=0)[0]
    assert_close(run_op("reduce_max", [x], axes=1), want)
    assert infer("reduce_mean", [(2, 3, 4)], axes=(-1,), keepdims=True).shape == (2, 3, 1)
    assert infer("reduce_sum", [(2, 3, 4)]).shape == ()
    with pytest.raises(ShapeError, match="axes 3 is out of range for rank 3"):
        infer("reduce_sum", [(2, 3, 4)], axes=(3,))
    with pytest.raises(ShapeError, match="name the same axis twice"):
        infer("reduce_sum", [(2, 3, 4)], axes=(1, -2))
    with pytest.raises(AttrError, match="repeated axes"):
        infer("reduce_sum", [(2, 3, 4)], axes=(1, 1))
    with pytest.raises(ShapeError, match="cannot reduce the empty axis"):
        infer("reduce_max", [(2, 0)], axes=(1,))
    with pytest.raises(AttrError, match="keepdims must be a bool"):
        infer("reduce_sum", [(2, 3)], keepdims=1)


@pytest.mark.parametrize("name,onnx_op", [("argmax", "ArgMax"), ("argmin", "ArgMin")])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("last", [False, True])
def test_arg_reductions(name, onnx_op, axis, keepdims, last):
    x = randint((3, 4, 5), "int32", 0, 3)  # many ties
    want = run_onnx(onnx_op, [x], axis=axis, keepdims=int(keepdims), select_last_index=int(last))
    out = run_op(name, [x], axis=axis, keepdims=keepdims, select_last_index=last)
    assert_close(out, want[0])


def test_arg_reduction_errors():
    t = infer("argmax", [(3, 4)], axis=1, keepdims=False)
    assert t.shape == (3,) and t.dtype == "int64"
    with pytest.raises(ShapeError, match="axis 2 is out of range for rank 2"):
        infer("argmin", [(3, 4)], axis=2)
    with pytest.raises(AttrError, match="axis must be an int"):
        infer("argmin", [(3, 4)], axis=None)
