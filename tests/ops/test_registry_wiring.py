"""Every op of docs/ops.md is registered, complete, and reachable as a module attribute."""

import dataclasses
import re
from pathlib import Path

import pytest

import ember.ops
from ember.errors import AttrError
from ember.graph.ir import TensorType, Var
from ember.ops import (
    OpPattern,
    call,
    control_flow,
    get_op,
    image,
    layout,
    list_ops,
    math,
    nn,
    nn_dense,
    reduce,
    transform,
    winograd,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ops.md"

EXPECTED = """
nn.relu sigmoid tanh erf exp log sqrt rsqrt abs negative floor ceil round sign reciprocal sin cos
asin acos atan asinh acosh atanh bitwise_not bitwise_and bitwise_or bitwise_xor
left_shift right_shift
logical_not nn.gelu nn.leaky_relu nn.elu nn.selu nn.softplus nn.hard_sigmoid nn.hard_swish nn.silu
nn.mish clip
cast identity nn.dropout add subtract multiply divide power maximum minimum mod logical_and
logical_or logical_xor equal not_equal less less_equal greater greater_equal nn.prelu where
nn.conv2d nn.conv2d_transpose nn.dense nn.matmul nn.batch_matmul nn.batch_norm nn.max_pool2d
nn.avg_pool2d nn.global_avg_pool2d nn.global_max_pool2d nn.lrn nn.softmax nn.log_softmax nn.pad
reshape flatten transpose squeeze expand_dims concatenate split strided_slice take broadcast_to
tile image.resize2d image.grid_sample reduce_sum reduce_mean reduce_max reduce_min reduce_prod
argmax argmin
layout_transform nn.conv2d_nchwc nn.max_pool2d_nchwc nn.avg_pool2d_nchwc
nn.winograd_input_transform nn.winograd_batch_matmul nn.winograd_output_transform
nn.dense_pack
cf.if cf.loop
""".split()


def test_registry_holds_exactly_the_documented_ops():
    # users' ops (ember.custom; tests/custom registers some in this process) are not ember's
    assert sorted(EXPECTED) == [name for name in list_ops() if get_op(name).is_builtin]
    documented = set(re.findall(r"`([a-z_0-9.]+)[`(]", DOCS.read_text()))
    missing = [name for name in EXPECTED if name not in documented]
    assert not missing, f"registered but not in docs/ops.md: {missing}"


@pytest.mark.parametrize("name", EXPECTED)
def test_op_is_complete_and_a_module_attribute(name):
    op = get_op(name)
    assert op._type_rule is not None and op._reference is not None
    assert dataclasses.is_dataclass(op.attrs_type)
    assert op.attrs_type.__dataclass_params__.frozen
    prefix, _, short = name.rpartition(".")
    # ember.ops.layout: the blocked-layout ops alter_layout makes (x86 helper);
    # ember.ops.winograd: the ops the winograd_conv2d pass makes; ember.ops.nn_dense: pack_dense's
    modules = {
        "nn": [nn, layout, winograd, nn_dense],
        "image": [image],
        "cf": [control_flow],
        "": [math, transform, reduce, layout],
    }[prefix]
    # a name that is a Python keyword gets a trailing underscore (control_flow.if_)
    attrs = (short, f"{short}_")
    assert any(getattr(mod, a, None) is op for mod in modules for a in attrs), (
        f"{name} not a module attr"
    )


def test_package_exports():
    for attr in ("get_op", "list_ops", "register_op", "OpPattern"):
        assert hasattr(ember.ops, attr)
    assert get_op("nn.conv2d").pattern is OpPattern.OUT_ELEMWISE_FUSABLE
    assert get_op("split").pattern is OpPattern.TUPLE
    assert get_op("add").pattern is OpPattern.BROADCAST
    assert get_op("nn.relu").pattern is OpPattern.ELEMWISE
    with pytest.raises(AttrError, match="no op named 'nn.conv3d'"):
        get_op("nn.conv3d")


def test_attrs_are_frozen_and_normalized():
    x, w = Var("x", TensorType((1, 4, 8, 8))), Var("w", TensorType((4, 4, 3, 3)))
    node = call("nn.conv2d", x, w, strides=[2, 2], padding=1, name="conv")
    assert node.attrs.strides == (2, 2) and node.attrs.padding == (1, 1, 1, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.attrs.groups = 2
    with pytest.raises(AttrError, match=r"op nn.conv2d \(node 'c2'\): attribute strides"):
        call("nn.conv2d", x, w, strides=(1, True), name="c2")
