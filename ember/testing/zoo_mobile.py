"""MobileNet v1 (the paper's / Keras's layout), MobileNet v2 and SqueezeNet 1.0/1.1 (torchvision).

MobileNet v1: a 3x3 stride-2 conv, then 13 depthwise-separable blocks (3x3
depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU), global average pool and a
fully connected classifier. Like TVM's and most PyTorch ports (and unlike
Keras's asymmetric ZeroPadding2D), strided convs pad symmetrically by 1.
"""

from __future__ import annotations

from collections.abc import Callable

from ember.testing.onnx_builder import OnnxGraphBuilder, Tensor, make_divisible

BN_EPS = 1e-5

# (pointwise output channels, depthwise stride) of the 13 separable blocks
MOBILENET_V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip


def build_mobilenet_v1(b: OnnxGraphBuilder, num_classes: int, ch: Callable[[int], int]) -> Tensor:
    """MobileNet v1 (Howard et al. 2017, Table 1); names follow Keras (``conv_dw_1_bn``)."""
    x = b.conv(b.input, ch(32), 3, stride=2, padding=1, name="conv1")
    x = b.relu(b.batch_norm(x, name="conv1_bn", eps=BN_EPS), name="conv1_relu")
    for i, (channels, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        x = b.conv(x, x.channels, 3, stride=stride, padding=1, groups=x.channels,
                   name=f"conv_dw_{i}")  # fmt: skip
        x = b.relu(b.batch_norm(x, name=f"conv_dw_{i}_bn", eps=BN_EPS), name=f"conv_dw_{i}_relu")
        x = b.conv(x, ch(channels), 1, name=f"conv_pw_{i}")
        x = b.relu(b.batch_norm(x, name=f"conv_pw_{i}_bn", eps=BN_EPS), name=f"conv_pw_{i}_relu")
    x = b.flatten(b.global_avg_pool(x, name="global_pool"))
    return b.linear(x, num_classes, name="predictions")


# (expansion t, output channels c, repeats n, first stride s), torchvision's table
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip
MOBILENET_V2_LAST_CHANNEL = 1280


def _conv_bn_relu6(
    b: OnnxGraphBuilder, x: Tensor, out: int, kernel: int, stride: int, groups: int, p: str
) -> Tensor:
    """torchvision's ``Conv2dNormActivation``: ``{p}.0`` conv, ``{p}.1`` BN, ReLU6."""
    y = b.conv(x, out, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups,
               name=f"{p}.0")  # fmt: skip
    return b.relu6(b.batch_norm(y, name=f"{p}.1", eps=BN_EPS), name=f"{p}.2")


def _inverted_residual(
    b: OnnxGraphBuilder, x: Tensor, out: int, stride: int, expand: int, p: str
) -> Tensor:
    hidden = int(round(x.channels * expand))
    y, layer = x, 0
    if expand != 1:
        y = _conv_bn_relu6(b, y, hidden, 1, 1, 1, f"{p}.conv.0")
        layer = 1
    y = _conv_bn_relu6(b, y, hidden, 3, stride, hidden, f"{p}.conv.{layer}")  # depthwise
    y = b.conv(y, out, 1, name=f"{p}.conv.{layer + 1}")  # linear bottleneck: no activation
    y = b.batch_norm(y, name=f"{p}.conv.{layer + 2}", eps=BN_EPS)
    if stride == 1 and x.channels == out:
        y = b.add(x, y, name=f"{p}.add")
    return y


def build_mobilenet_v2(b: OnnxGraphBuilder, num_classes: int, width: float) -> Tensor:
    """torchvision ``mobilenet_v2(width_mult=width)``."""

    def ch(channels: float) -> int:
        return make_divisible(channels * width)

    x = _conv_bn_relu6(b, b.input, ch(32), 3, 2, 1, "features.0")
    index = 1
    for expand, channels, repeats, first_stride in MOBILENET_V2_SETTINGS:
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            x = _inverted_residual(b, x, ch(channels), stride, expand, f"features.{index}")
            index += 1
    # the last 1x1 conv never shrinks below 1280 channels (torchvision: max(1.0, width))
    last = make_divisible(MOBILENET_V2_LAST_CHANNEL * max(1.0, width))
    x = _conv_bn_relu6(b, x, last, 1, 1, 1, f"features.{index}")
    x = b.flatten(b.global_avg_pool(x, name="avgpool"))
    return b.linear(x, num_classes, name="classifier.1")


# SqueezeNet Fire modules: (squeeze, expand1x1, expand3x3) with "M" = 3x3/2 ceil-mode max pool
SQUEEZENET_LAYERS = {
    "1_0": (
        "M", (16, 64, 64), (16, 64, 64), (32, 128, 128), "M",
        (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256), "M", (64, 256, 256),
    ),
    "1_1": (
        "M", (16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M",
        (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256),
    ),
}  # fmt: skip


def build_squeezenet(
    b: OnnxGraphBuilder, version: str, num_classes: int, ch: Callable[[int], int]
) -> Tensor:
    """torchvision ``squeezenet{version}``: max pools use ``ceil_mode=True``; convs have biases."""
    if version == "1_0":
        x = b.conv(b.input, ch(96), 7, stride=2, bias=True, name="features.0")
    else:
        x = b.conv(b.input, ch(64), 3, stride=2, bias=True, name="features.0")
    x = b.relu(x, name="features.1")
    for index, item in enumerate(SQUEEZENET_LAYERS[version], start=2):
        p = f"features.{index}"
        if item == "M":
            x = b.max_pool(x, 3, 2, ceil_mode=True, name=p)
            continue
        squeeze, expand1, expand3 = (ch(c) for c in item)
        s = b.relu(b.conv(x, squeeze, 1, bias=True, name=f"{p}.squeeze"), name=f"{p}.relu0")
        e1 = b.relu(b.conv(s, expand1, 1, bias=True, name=f"{p}.expand1x1"), name=f"{p}.relu1")
        e3 = b.conv(s, expand3, 3, padding=1, bias=True, name=f"{p}.expand3x3")
        x = b.concat([e1, b.relu(e3, name=f"{p}.relu3")], name=f"{p}.cat")
    # classifier: Dropout, final 1x1 conv to the classes, ReLU, global average pool
    x = b.relu(b.conv(x, num_classes, 1, bias=True, name="classifier.1"), name="classifier.2")
    return b.flatten(b.global_avg_pool(x, name="classifier.3"))
