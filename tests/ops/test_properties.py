"""Randomized configurations (hypothesis) of the ops with the most index math, vs onnxruntime."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops_testlib import assert_close, randn, run_onnx, run_op

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 12))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 12))
    return (cin, cout, groups, (kh, kw), (dh, dw), pads, strides, (h, w), draw(st.booleans()))


@SETTINGS
@given(conv_configs())
def test_conv2d_random_configs(config):
    cin, cout, groups, kernel, dilation, pads, strides, hw, bias = config
    inputs = [randn((2, cin, *hw)), randn((cout, cin // groups, *kernel))]
    if bias:
        inputs.append(randn((cout,)))
    out = run_op(
        "nn.conv2d", inputs, strides=strides, padding=pads, dilation=dilation, groups=groups
    )
    want = run_onnx(
        "Conv",
        inputs,
        strides=list(strides),
        pads=list(pads),
        dilations=list(dilation),
        group=groups,
    )[0]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(3, 12),
    st.integers(3, 12),
    st.booleans(),
    st.booleans(),
    st.integers(1, 2),
)
def test_pools_random_configs(kh, kw, sh, sw, ph, pw, h, w, ceil, include, dil):
    ph, pw = min(ph, kh - 1), min(pw, kw - 1)
    if dil * (kh - 1) + 1 > h + 2 * ph or dil * (kw - 1) + 1 > w + 2 * pw:
        return
    x = randn((1, 2, h, w))
    attrs = dict(pool_size=(kh, kw), strides=(sh, sw), padding=(ph, pw, ph, pw), ceil_mode=ceil)
    onnx_attrs = dict(
        kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw], ceil_mode=int(ceil)
    )
    out = run_op("nn.max_pool2d", [x], dilation=dil, **attrs)
    assert_close(out, run_onnx("MaxPool", [x], dilations=[dil, dil], **onnx_attrs)[0])
    out = run_op("nn.avg_pool2d", [x], count_include_pad=include, dilation=dil, **attrs)
    want = run_onnx(
        "AveragePool",
        [x],
        count_include_pad=int(include),
        dilations=[dil, dil],
        opset=19,
        **onnx_attrs,
    )[0]
    assert_close(out, want)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(-9, 9), st.integers(-9, 9), st.integers(-3, 3).filter(bool)),
        min_size=1,
        max_size=3,
    )
)
def test_strided_slice_random(slices):
    x = randn((4, 5, 6))
    axes = list(range(len(slices)))
    begin, end, steps = (list(v) for v in zip(*slices))
    consts = [np.array(v, "int64") for v in (begin, end, axes, steps)]
    want = run_onnx("Slice", [x], consts=consts)[0]
    out = run_op("strided_slice", [x], begin=begin, end=end, strides=steps, axes=axes)
    assert_close(out, want)


@SETTINGS
@given(
    st.sampled_from([1, 2]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.lists(st.integers(0, 2), min_size=4, max_size=4),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(1, 6),
    st.integers(1, 6),
)
def test_conv2d_transpose_random(groups, k, s1, s2, cout_g, dil, pads, op1, op2, h, w):
    # onnxruntime wants output_padding < stride (PyTorch and ember: < max(stride, dilation)).
    op1, op2 = min(op1, s1 - 1), min(op2, s2 - 1)
    if (h - 1) * s1 - pads[0] - pads[2] + dil * (k - 1) + op1 + 1 <= 0:
        return
    if (w - 1) * s2 - pads[1] - pads[3] + dil * (k - 1) + op2 + 1 <= 0:
        return
    cin = 2 * groups
    x, wt = randn((1, cin, h, w)), randn((cin, cout_g, k, k))
    attrs = dict(
        strides=(s1, s2),
        padding=tuple(pads),
        output_padding=(op1, op2),
        dilation=dil,
        groups=groups,
    )
    out = run_op("nn.conv2d_transpose", [x, wt], **attrs)
    want = run_onnx(
        "ConvTranspose",
        [x, wt],
        strides=[s1, s2],
        pads=list(pads),
        output_padding=[op1, op2],
        dilations=[dil, dil],
        group=groups,
    )[0]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
