"""Layout / indexing ops vs onnxruntime: reshape, flatten, transpose, slice, gather, ..."""

import numpy as np
import pytest
from ops_testlib import assert_close, infer, randint, randn, run_onnx, run_op

from ember.errors import AttrError, EmberRuntimeError, ShapeError
from ember.graph.ir import TupleType


@pytest.mark.parametrize("newshape", [(6, 4), (-1,), (2, -1, 2), (1, 24), (4, 3, 2, 1)])
def test_reshape(newshape):
    x = randn((2, 3, 4))
    want = run_onnx("Reshape", [x], consts=[np.array(newshape, "int64")])[0]
    assert_close(run_op("reshape", [x], newshape=newshape), want)


def test_reshape_errors():
    with pytest.raises(ShapeError, match=r"newshape \(5, 5\) has 25 elements but data"):
        infer("reshape", [(2, 3, 4)], newshape=(5, 5))
    with pytest.raises(ShapeError, match="cannot infer the -1 in \\(5, -1\\) for 24"):
        infer("reshape", [(2, 3, 4)], newshape=(5, -1))
    with pytest.raises(AttrError, match="at most one -1"):
        infer("reshape", [(2, 3, 4)], newshape=(-1, -1))


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten(axis):
    x = randint((2, 3, 4), "int32")
    assert_close(run_op("flatten", [x], axis=axis), run_onnx("Flatten", [x], axis=axis)[0])


def test_flatten_errors():
    with pytest.raises(ShapeError, match="axis 4 is out of range for rank 3 \\(allowed -3..3\\)"):
        infer("flatten", [(2, 3, 4)], axis=4)


@pytest.mark.parametrize("axes", [None, (0, 2, 1), (2, 0, 1), (-1, 0, 1)])
def test_transpose(axes):
    x = randn((2, 3, 4))
    kwargs = {} if axes is None else {"perm": [a % 3 for a in axes]}
    assert_close(run_op("transpose", [x], axes=axes), run_onnx("Transpose", [x], **kwargs)[0])


def test_transpose_errors():
    with pytest.raises(ShapeError, match="axes \\(0, 1\\) has 2 entries but data has rank 3"):
        infer("transpose", [(2, 3, 4)], axes=(0, 1))
    with pytest.raises(AttrError, match="repeated axes"):
        infer("transpose", [(2, 3, 4)], axes=(0, 0, 1))
    with pytest.raises(ShapeError, match="transpose axis 3 is out of range"):
        infer("transpose", [(2, 3, 4)], axes=(0, 1, 3))


def test_squeeze_and_expand_dims():
    x = randn((1, 3, 1, 4))
    assert_close(run_op("squeeze", [x]), run_onnx("Squeeze", [x])[0])
    want = run_onnx("Squeeze", [x], consts=[np.array([-2], "int64")])[0]
    assert_close(run_op("squeeze", [x], axes=(-2,)), want)
    y = randn((3, 4))
    for axes in [(0,), (0, 3), (-1,), (1, -1)]:
        want = run_onnx("Unsqueeze", [y], consts=[np.array(axes, "int64")])[0]
        assert_close(run_op("expand_dims", [y], axes=axes), want)
    with pytest.raises(ShapeError, match="squeeze: axis 1 has size 3, not 1"):
        infer("squeeze", [(1, 3)], axes=(1,))
    with pytest.raises(ShapeError, match="expand_dims axis 4 is out of range for rank 4"):
        infer("expand_dims", [(3, 4)], axes=(0, 4))
    with pytest.raises(AttrError, match="at least one axis"):
        infer("expand_dims", [(3, 4)], axes=())


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(axis):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, s in enumerate(shapes):
        s[axis] += i
    xs = [randint(tuple(s), "int64") for s in shapes]
    assert_close(run_op("concatenate", xs, axis=axis), run_onnx("Concat", xs, axis=axis)[0])


def test_concatenate_errors():
    with pytest.raises(ShapeError, match="input #1 has shape \\(2, 4\\) but input #0 has"):
        infer("concatenate", [(2, 3), (2, 4)], axis=0)
    with pytest.raises(ShapeError, match="input #1 has dtype int32 but #0 has float32"):
        infer("concatenate", [(2, 3), (2, 3)], ["float32", "int32"])
    with pytest.raises(ShapeError, match="at least one input"):
        infer("concatenate", [])


def test_split():
    x = randn((3, 10))
    out = run_op("split", [x], axis=1, sections=(2, 5, 3))
    want = run_onnx("Split", [x], consts=[np.array([2, 5, 3], "int64")], axis=1, num_outputs=3)
    assert isinstance(out, tuple) and len(out) == 3
    for o, w in zip(out, want):
        assert_close(o, w)
    t = infer("split", [(3, 10)], axis=-1, sections=(4, 6))
    assert isinstance(t, TupleType) and t.fields[1].shape == (3, 6)
    with pytest.raises(ShapeError, match="sections \\(4, 4\\) sum to 8 but axis 1 has size 10"):
        infer("split", [(3, 10)], axis=1, sections=(4, 4))
    with pytest.raises(AttrError, match="sections must list at least one"):
        infer("split", [(3, 10)], sections=())


SLICES = [
    # begin, end, strides, axes
    ((1,), (3,), (1,), (0,)),
    ((0, 1), (100, -1), (2, 1), (1, 2)),
    ((-1,), (-100,), (-1,), (2,)),  # reverse the whole axis
    ((-1,), (-(2**63),), (-2,), (1,)),  # INT64_MIN end with a negative step
    ((5,), (0,), (-2,), (2,)),  # start past the end clamps to the last element
    ((2,), (2,), (1,), (0,)),  # empty
    ((-3, 10), (-1, -9), (1, -3), (0, 2)),
    ((0,), (2**63 - 1,), (3,), (-1,)),  # INT64_MAX end
    ((4,), (-5,), (-1,), (2,)),
]


@pytest.mark.parametrize("begin,end,strides,axes", SLICES)
def test_strided_slice_matches_onnxruntime(begin, end, strides, axes):
    x = randn((4, 5, 6))
    consts = [np.array(v, "int64") for v in (begin, end, axes, strides)]
    want = run_onnx("Slice", [x], consts=consts)[0]
    out = run_op("strided_slice", [x], begin=begin, end=end, strides=strides, axes=axes)
    assert_close(out, want)


def test_strided_slice_defaults_and_errors():
    x = randn((4, 5))
    np.testing.assert_array_equal(
        run_op("strided_slice", [x], begin=(1, 1), end=(3, 4)), x[1:3, 1:4]
    )
    with pytest.raises(AttrError, match="strides must not contain 0"):
        infer("strided_slice", [(4, 5)], begin=(0,), end=(1,), strides=(0,))
    with pytest.raises(AttrError, match="one value each per sliced axis; got lengths 2, 1"):
        infer("strided_slice", [(4, 5)], begin=(0, 0), end=(1,))
    with pytest.raises(ShapeError, match="strided_slice axis 2 is out of range for rank 2"):
        infer("strided_slice", [(4, 5)], begin=(0,), end=(1,), axes=(2,))
    with pytest.raises(ShapeError, match="name axis 1 twice"):
        infer("strided_slice", [(4, 5)], begin=(0, 0), end=(1, 1), axes=(1, -1))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("idx_dtype", ["int32", "int64"])
def test_take_matches_gather(axis, idx_dtype):
    x = randn((4, 5, 6))
    dim = x.shape[axis]
    idx = randint((2, 3), idx_dtype, -dim, dim)
    want = run_onnx("Gather", [x], consts=[idx], axis=axis)[0]
    assert_close(run_op("take", [x, idx], axis=axis), want)


def test_take_errors():
    assert infer("take", [(4, 5), (2, 3)], ["float32", "int64"], axis=1).shape == (4, 2, 3)
    with pytest.raises(ShapeError, match="input indices has dtype float32"):
        infer("take", [(4, 5), (2,)], axis=0)
    with pytest.raises(EmberRuntimeError, match="index 4 is out of range for axis 0 of size 4"):
        run_op("take", [randn((4, 5)), np.array([1, 4], "int64")])


@pytest.mark.parametrize(
    "xshape,shape", [((3, 1), (2, 3, 4)), ((2, 3), (3,)), ((1,), (1, 4)), ((4, 1), (1, 1))]
)
def test_broadcast_to_matches_expand(xshape, shape):
    x = randn(xshape)
    want = run_onnx("Expand", [x], consts=[np.array(shape, "int64")])[0]
    assert_close(run_op("broadcast_to", [x], shape=shape), want)


def test_broadcast_to_errors_and_tile():
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer("broadcast_to", [(2, 3)], shape=(4,))
    x = randint((2, 3), "int8")
    want = run_onnx("Tile", [x], consts=[np.array([2, 3], "int64")])[0]
    assert_close(run_op("tile", [x], reps=(2, 3)), want)
    with pytest.raises(ShapeError, match="reps \\(2,\\) must have one entry per axis"):
        infer("tile", [(2, 3)], reps=(2,))
    with pytest.raises(AttrError, match="reps values must be >= 0"):
        infer("tile", [(2, 3)], reps=(2, -1))
