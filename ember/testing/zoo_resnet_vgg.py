"""ResNet-18/34/50 and VGG-11/16, layer for layer as torchvision builds them.

Weight names are torchvision's ``state_dict`` keys (``layer2.0.downsample.1.running_var``,
``features.0.weight``), so a torchvision checkpoint would map one to one.
"""

from __future__ import annotations

from collections.abc import Callable

from ember.testing.onnx_builder import OnnxGraphBuilder, Tensor

# (block kind, blocks per stage) per depth, from torchvision.models.resnet
RESNET_LAYERS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
BN_EPS = 1e-5


def _conv_bn(
    b: OnnxGraphBuilder,
    x: Tensor,
    out_channels: int,
    kernel: int,
    stride: int,
    conv_name: str,
    bn_name: str,
    relu: bool,
) -> Tensor:
    y = b.conv(x, out_channels, kernel, stride=stride, padding=kernel // 2, name=conv_name)
    y = b.batch_norm(y, name=bn_name, eps=BN_EPS)
    return b.relu(y, name=f"{bn_name}.relu") if relu else y


def _residual(b: OnnxGraphBuilder, x: Tensor, branch: Tensor, stride: int, prefix: str) -> Tensor:
    """``out = relu(branch + shortcut)``; the shortcut is conv1x1+BN when the shape changes."""
    shortcut = x
    if stride != 1 or x.channels != branch.channels:
        shortcut = _conv_bn(
            b, x, branch.channels, 1, stride, f"{prefix}.downsample.0",
            f"{prefix}.downsample.1", relu=False,
        )  # fmt: skip
    return b.relu(b.add(branch, shortcut, name=f"{prefix}.add"), name=f"{prefix}.relu")


def _basic_block(b: OnnxGraphBuilder, x: Tensor, planes: int, stride: int, p: str) -> Tensor:
    y = _conv_bn(b, x, planes, 3, stride, f"{p}.conv1", f"{p}.bn1", relu=True)
    y = _conv_bn(b, y, planes, 3, 1, f"{p}.conv2", f"{p}.bn2", relu=False)
    return _residual(b, x, y, stride, p)


def _bottleneck(b: OnnxGraphBuilder, x: Tensor, planes: int, stride: int, p: str) -> Tensor:
    # torchvision's ResNet v1.5: the stride sits on the 3x3 conv, not the first 1x1
    y = _conv_bn(b, x, planes, 1, 1, f"{p}.conv1", f"{p}.bn1", relu=True)
    y = _conv_bn(b, y, planes, 3, stride, f"{p}.conv2", f"{p}.bn2", relu=True)
    y = _conv_bn(b, y, planes * 4, 1, 1, f"{p}.conv3", f"{p}.bn3", relu=False)
    return _residual(b, x, y, stride, p)


def build_resnet(
    b: OnnxGraphBuilder, depth: int, num_classes: int, ch: Callable[[int], int]
) -> Tensor:
    """torchvision ``resnet{depth}``; ``ch`` scales a channel count (width multiplier)."""
    kind, layers = RESNET_LAYERS[depth]
    block = _basic_block if kind == "basic" else _bottleneck
    x = _conv_bn(b, b.input, ch(64), 7, 2, "conv1", "bn1", relu=True)
    x = b.max_pool(x, 3, 2, 1, name="maxpool")
    for stage, blocks in enumerate(layers):
        planes = ch(64 * 2**stage)
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            x = block(b, x, planes, stride, f"layer{stage + 1}.{i}")
    x = b.flatten(b.global_avg_pool(x, name="avgpool"))
    return b.linear(x, num_classes, name="fc")


# torchvision.models.vgg cfgs: channel counts, "M" = 2x2 max pool
VGG_CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}
VGG_POOLED_SIZE = 7  # AdaptiveAvgPool2d((7, 7)) before the classifier
VGG_HIDDEN = 4096


def build_vgg(
    b: OnnxGraphBuilder, depth: int, num_classes: int, ch: Callable[[int], int]
) -> Tensor:
    """torchvision ``vgg{depth}`` (no batch norm); dropout is a no-op at inference."""
    x = b.input
    index = 0  # position in the torch nn.Sequential, which names the weights
    for item in VGG_CONFIGS[depth]:
        if item == "M":
            x = b.max_pool(x, 2, 2, name=f"features.{index}")
            index += 1
        else:
            x = b.conv(x, ch(item), 3, padding=1, bias=True, name=f"features.{index}")
            x = b.relu(x, name=f"features.{index + 1}")
            index += 2
    x = b.flatten(b.adaptive_avg_pool(x, VGG_POOLED_SIZE, name="avgpool"))
    hidden = ch(VGG_HIDDEN)
    x = b.relu(b.linear(x, hidden, name="classifier.0", gain=2.0), name="classifier.1")
    x = b.relu(b.linear(x, hidden, name="classifier.3", gain=2.0), name="classifier.4")
    return b.linear(x, num_classes, name="classifier.6")
