"""EfficientNet-B0, MobileNet v3 Large, RegNetY-800MF and ConvNeXt-Tiny (torchvision, eval mode).

Each follows torchvision's module tree, so initializer names are its
``state_dict`` keys (``features.1.0.block.1.0.weight``). Eval mode: stochastic
depth and dropout are identities. What the ONNX graphs use beyond the classic
models: SiLU as ``Sigmoid`` + ``Mul``, squeeze-and-excitation (global pool, two
1x1 convs with biases, a ``Sigmoid``/``HardSigmoid`` gate, a broadcasting
``Mul``), ``HardSwish`` (opset 14), grouped 3x3 convs, and ConvNeXt's
channels-last blocks as torch exports them: ``Transpose`` to NHWC,
``LayerNormalization`` (opset 17), ``MatMul`` + ``Add`` linears, GELU built from
``Erf``, ``Transpose`` back, a layer-scale ``Mul``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ember.testing.onnx_builder import OnnxGraphBuilder, Tensor, make_divisible

Activation = Callable[..., Tensor]  # builder methods such as b.relu(x, name=...)

BN_EPS = 1e-5  # torch's BatchNorm2d default: EfficientNet-B0, RegNet
MOBILENET_V3_BN_EPS = 1e-3  # torchvision's partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
CONVNEXT_LN_EPS = 1e-6


def _conv_bn_act(
    b: OnnxGraphBuilder,
    x: Tensor,
    out: int,
    kernel: int,
    stride: int,
    groups: int,
    p: str,
    activation: Activation | None,
    eps: float = BN_EPS,
) -> Tensor:
    """torchvision's ``Conv2dNormActivation``: ``{p}.0`` conv, ``{p}.1`` BN, ``{p}.2`` act."""
    y = b.conv(x, out, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups,
               name=f"{p}.0")  # fmt: skip
    y = b.batch_norm(y, name=f"{p}.1", eps=eps)
    return y if activation is None else activation(y, name=f"{p}.2")


def _squeeze_excitation(
    b: OnnxGraphBuilder, x: Tensor, squeeze: int, p: str, act: Activation, gate: Activation
) -> Tensor:
    """torchvision's ``SqueezeExcitation``: ``x * gate(fc2(act(fc1(avgpool(x)))))``."""
    s = b.global_avg_pool(x, name=f"{p}.avgpool")
    s = act(b.conv(s, squeeze, 1, bias=True, name=f"{p}.fc1"), name=f"{p}.activation")
    s = b.conv(s, x.channels, 1, bias=True, name=f"{p}.fc2", gain=1.0)
    return b.mul(x, gate(s, name=f"{p}.scale_activation"), name=f"{p}.mul")


# ------------------------------------------------------------------------------ EfficientNet-B0
# MBConv stages: (expand ratio, kernel, first stride, output channels, layers), torchvision's
# bneck_conf table for width_mult=1.0, depth_mult=1.0; the input is the previous output.
EFFICIENTNET_B0_STAGES = (
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1),
)  # fmt: skip


def _mbconv(
    b: OnnxGraphBuilder, x: Tensor, expand: int, kernel: int, stride: int, out: int, p: str
) -> Tensor:
    """torchvision's ``MBConv``: [1x1 expand], depthwise, SE (SiLU, Sigmoid), 1x1 project."""
    expanded = make_divisible(x.channels * expand)
    y, layer = x, 0
    if expanded != x.channels:
        y = _conv_bn_act(b, y, expanded, 1, 1, 1, f"{p}.block.0", b.silu)
        layer = 1
    y = _conv_bn_act(b, y, expanded, kernel, stride, expanded, f"{p}.block.{layer}", b.silu)
    squeeze = max(1, x.channels // 4)
    y = _squeeze_excitation(b, y, squeeze, f"{p}.block.{layer + 1}", b.silu, b.sigmoid)
    y = _conv_bn_act(b, y, out, 1, 1, 1, f"{p}.block.{layer + 2}", None)
    if stride == 1 and x.channels == out:  # stochastic depth is the identity in eval mode
        y = b.add(y, x, name=f"{p}.add")
    return y


def build_efficientnet_b0(b: OnnxGraphBuilder, num_classes: int, width: float) -> Tensor:
    """torchvision ``efficientnet_b0`` (its ``width_mult`` is the zoo's width multiplier)."""

    def ch(channels: float) -> int:
        return make_divisible(channels * width)

    x = _conv_bn_act(b, b.input, ch(32), 3, 2, 1, "features.0", b.silu)
    for stage, (expand, kernel, stride, out, layers) in enumerate(EFFICIENTNET_B0_STAGES, 1):
        for i in range(layers):
            x = _mbconv(b, x, expand, kernel, stride if i == 0 else 1, ch(out),
                        f"features.{stage}.{i}")  # fmt: skip
    last = len(EFFICIENTNET_B0_STAGES) + 1
    x = _conv_bn_act(b, x, 4 * x.channels, 1, 1, 1, f"features.{last}", b.silu)
    x = b.flatten(b.global_avg_pool(x, name="avgpool"))
    return b.linear(x, num_classes, name="classifier.1")  # classifier.0 is Dropout


# ------------------------------------------------------------------------------ MobileNet v3
# (kernel, expanded channels, output channels, squeeze-excitation, activation, stride):
# torchvision's mobilenet_v3_large bneck_conf table; the first input is the stem's 16.
MOBILENET_V3_LARGE_BLOCKS = (
    (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
)  # fmt: skip
MOBILENET_V3_LARGE_LAST_CHANNEL = 1280


def _mobilenet_v3_block(
    b: OnnxGraphBuilder,
    x: Tensor,
    kernel: int,
    expanded: int,
    out: int,
    use_se: bool,
    activation: Activation,
    stride: int,
    p: str,
) -> Tensor:
    """torchvision's MobileNet v3 ``InvertedResidual``."""
    eps = MOBILENET_V3_BN_EPS
    y, layer = x, 0
    if expanded != x.channels:
        y = _conv_bn_act(b, y, expanded, 1, 1, 1, f"{p}.block.0", activation, eps)
        layer = 1
    y = _conv_bn_act(b, y, expanded, kernel, stride, expanded, f"{p}.block.{layer}",
                     activation, eps)  # fmt: skip
    if use_se:
        layer += 1
        squeeze = make_divisible(expanded // 4)
        y = _squeeze_excitation(b, y, squeeze, f"{p}.block.{layer}", b.relu, b.hard_sigmoid)
    y = _conv_bn_act(b, y, out, 1, 1, 1, f"{p}.block.{layer + 1}", None, eps)
    if stride == 1 and x.channels == out:
        y = b.add(x, y, name=f"{p}.add")
    return y


def build_mobilenet_v3_large(b: OnnxGraphBuilder, num_classes: int, width: float) -> Tensor:
    """torchvision ``mobilenet_v3_large(width_mult=width)`` (dilated=False, reduced_tail=False)."""

    def ch(channels: float) -> int:
        return make_divisible(channels * width)

    eps = MOBILENET_V3_BN_EPS
    x = _conv_bn_act(b, b.input, ch(16), 3, 2, 1, "features.0", b.hard_swish, eps)
    for index, (kernel, expanded, out, use_se, act, stride) in enumerate(
        MOBILENET_V3_LARGE_BLOCKS, start=1
    ):
        activation = b.relu if act == "RE" else b.hard_swish
        x = _mobilenet_v3_block(b, x, kernel, ch(expanded), ch(out), use_se, activation, stride,
                                f"features.{index}")  # fmt: skip
    last = len(MOBILENET_V3_LARGE_BLOCKS) + 1
    x = _conv_bn_act(b, x, 6 * x.channels, 1, 1, 1, f"features.{last}", b.hard_swish, eps)
    x = b.flatten(b.global_avg_pool(x, name="avgpool"))
    x = b.linear(x, ch(MOBILENET_V3_LARGE_LAST_CHANNEL), name="classifier.0", gain=2.0)
    x = b.hard_swish(x, name="classifier.1")  # classifier.2 is Dropout
    return b.linear(x, num_classes, name="classifier.3")


# ------------------------------------------------------------------------------ RegNetY-800MF
# torchvision's regnet_y_800mf: BlockParams.from_init_params(depth=14, w_0=56, w_a=38.84,
# w_m=2.4, group_width=16, se_ratio=0.25); bottleneck multiplier 1, stem width 32.
REGNET_Y_800MF = {"depth": 14, "w_0": 56, "w_a": 38.84, "w_m": 2.4}
REGNET_GROUP_WIDTH = 16
REGNET_SE_RATIO = 0.25
REGNET_STEM_WIDTH = 32
REGNET_WIDTH_QUANTUM = 8  # torchvision's QUANT: block widths are multiples of 8


def regnet_stages(depth: int, w_0: float, w_a: float, w_m: float) -> tuple[list[int], list[int]]:
    """Stage widths and depths of a RegNet's linear-then-quantized width rule, computed in
    float32 like torchvision's torch code (``regnet_widths_and_groups`` then rounds the
    widths to multiples of the group width: 64, 144, 320, 784 for RegNetY-800MF).

    >>> regnet_stages(**REGNET_Y_800MF)
    ([56, 136, 320, 776], [1, 3, 8, 2])
    """
    f32 = np.float32
    widths_cont = np.arange(depth).astype(f32) * f32(w_a) + f32(w_0)
    capacity = np.round(np.log(widths_cont / f32(w_0)) / f32(np.log(w_m)))
    quantum = f32(REGNET_WIDTH_QUANTUM)
    block_widths = np.round(f32(w_0) * np.power(f32(w_m), capacity) / quantum) * quantum
    widths: list[int] = []
    depths: list[int] = []
    for w in block_widths.astype(int).tolist():
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    return widths, depths


def regnet_widths_and_groups(
    widths: Sequence[int], group_width: int
) -> tuple[list[int], list[int]]:
    """torchvision's ``_adjust_widths_groups_compatibilty`` (bottleneck multiplier 1): the
    group width is at most the stage width, which becomes a multiple of it."""
    groups = [min(group_width, w) for w in widths]
    return [make_divisible(w, g) for w, g in zip(widths, groups, strict=True)], groups


def _res_bottleneck(
    b: OnnxGraphBuilder, x: Tensor, out: int, stride: int, group_width: int, p: str
) -> Tensor:
    """torchvision's ``ResBottleneckBlock``: 1x1, grouped 3x3, SE (ReLU, Sigmoid), 1x1."""
    y = _conv_bn_act(b, x, out, 1, 1, 1, f"{p}.f.a", b.relu)
    y = _conv_bn_act(b, y, out, 3, stride, out // group_width, f"{p}.f.b", b.relu)
    squeeze = int(round(REGNET_SE_RATIO * x.channels))  # of the block's input width
    y = _squeeze_excitation(b, y, squeeze, f"{p}.f.se", b.relu, b.sigmoid)
    y = _conv_bn_act(b, y, out, 1, 1, 1, f"{p}.f.c", None)
    shortcut = x
    if x.channels != out or stride != 1:
        shortcut = _conv_bn_act(b, x, out, 1, stride, 1, f"{p}.proj", None)
    return b.relu(b.add(shortcut, y, name=f"{p}.add"), name=f"{p}.activation")


def build_regnet_y_800mf(b: OnnxGraphBuilder, num_classes: int, ch: Callable[[int], int]) -> Tensor:
    """torchvision ``regnet_y_800mf``; the width multiplier scales the stem and stage widths
    before torchvision's group-width adjustment (ember's extension)."""
    widths, depths = regnet_stages(**REGNET_Y_800MF)
    widths, groups = regnet_widths_and_groups([ch(w) for w in widths], REGNET_GROUP_WIDTH)
    x = _conv_bn_act(b, b.input, ch(REGNET_STEM_WIDTH), 3, 2, 1, "stem", b.relu)
    for stage, (width, depth, group_width) in enumerate(zip(widths, depths, groups), start=1):
        for i in range(depth):
            x = _res_bottleneck(b, x, width, 2 if i == 0 else 1, group_width,
                                f"trunk_output.block{stage}.block{stage}-{i}")  # fmt: skip
    x = b.flatten(b.global_avg_pool(x, name="avgpool"))
    return b.linear(x, num_classes, name="fc")


# ------------------------------------------------------------------------------ ConvNeXt-Tiny
CONVNEXT_TINY_STAGES = ((96, 3), (192, 3), (384, 9), (768, 3))  # (channels, blocks)
CONVNEXT_PATCH = 4  # the stem is a 4x4 stride-4 conv


def _layer_norm_2d(b: OnnxGraphBuilder, x: Tensor, p: str) -> Tensor:
    """torchvision's ``LayerNorm2d``: permute to NHWC, LayerNorm over channels, permute back."""
    y = b.transpose(x, (0, 2, 3, 1), name=f"{p}.to_nhwc")
    y = b.layer_norm(y, name=p, eps=CONVNEXT_LN_EPS)
    return b.transpose(y, (0, 3, 1, 2), name=f"{p}.to_nchw")


def _cn_block(b: OnnxGraphBuilder, x: Tensor, p: str) -> Tensor:
    """torchvision's ``CNBlock``: 7x7 depthwise, channels-last LayerNorm, Linear 4x, GELU,
    Linear, layer scale, residual add (stochastic depth is the identity in eval mode)."""
    dim = x.channels
    y = b.conv(x, dim, 7, padding=3, groups=dim, bias=True, name=f"{p}.block.0", gain=1.0)
    y = b.transpose(y, (0, 2, 3, 1), name=f"{p}.block.1")
    y = b.layer_norm(y, name=f"{p}.block.2", eps=CONVNEXT_LN_EPS)
    y = b.gelu(b.channels_last_linear(y, 4 * dim, name=f"{p}.block.3", gain=2.0),
               name=f"{p}.block.4")  # fmt: skip
    y = b.channels_last_linear(y, dim, name=f"{p}.block.5")
    y = b.transpose(y, (0, 3, 1, 2), name=f"{p}.block.6")
    return b.add(b.layer_scale(y, name=f"{p}.layer_scale"), x, name=f"{p}.add")


def build_convnext_tiny(b: OnnxGraphBuilder, num_classes: int, ch: Callable[[int], int]) -> Tensor:
    """torchvision ``convnext_tiny``: features.0 stem, then stages and downsamplers alternate
    (features.1, features.2 = LayerNorm2d + 2x2 stride-2 conv, features.3, ...)."""
    widths = [ch(c) for c, _ in CONVNEXT_TINY_STAGES]
    x = b.conv(b.input, widths[0], CONVNEXT_PATCH, stride=CONVNEXT_PATCH, bias=True,
               name="features.0.0", gain=1.0)  # fmt: skip
    x = _layer_norm_2d(b, x, "features.0.1")
    index = 1
    for stage, ((_, blocks), width) in enumerate(zip(CONVNEXT_TINY_STAGES, widths, strict=True)):
        if stage > 0:
            x = _layer_norm_2d(b, x, f"features.{index}.0")
            x = b.conv(x, width, 2, stride=2, bias=True, name=f"features.{index}.1", gain=1.0)
            index += 1
        for i in range(blocks):
            x = _cn_block(b, x, f"features.{index}.{i}")
        index += 1
    x = _layer_norm_2d(b, b.global_avg_pool(x, name="avgpool"), "classifier.0")
    return b.linear(b.flatten(x, name="classifier.1"), num_classes, name="classifier.2")
