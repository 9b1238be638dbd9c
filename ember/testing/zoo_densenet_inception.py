"""DenseNet-121 and Inception v3, layer for layer as torchvision builds them (eval mode).

DenseNet's dense layers each concatenate every earlier feature map of their
block (``torch.cat(prev_features, 1)``, as torch exports it). Inception v3 is
the inference graph: no AuxLogits branch, ``transform_input=False``, BN eps 1e-3,
``F.avg_pool2d(3, 1, 1)`` counting the padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ember.testing.onnx_builder import OnnxGraphBuilder, Tensor

DENSENET121 = {"growth_rate": 32, "block_config": (6, 12, 24, 16), "init_features": 64}
DENSENET_BN_SIZE = 4  # bottleneck width = bn_size * growth_rate
DENSENET_BN_EPS = 1e-5


def _bn_relu(b: OnnxGraphBuilder, x: Tensor, name: str, eps: float) -> Tensor:
    return b.relu(b.batch_norm(x, name=name, eps=eps), name=f"{name}.relu")


def build_densenet121(b: OnnxGraphBuilder, num_classes: int, ch: Callable[[int], int]) -> Tensor:
    """torchvision ``densenet121`` (memory_efficient changes nothing at inference)."""
    growth = ch(DENSENET121["growth_rate"])
    eps = DENSENET_BN_EPS
    x = b.conv(b.input, ch(DENSENET121["init_features"]), 7, stride=2, padding=3,
               name="features.conv0")  # fmt: skip
    x = _bn_relu(b, x, "features.norm0", eps)
    x = b.max_pool(x, 3, 2, 1, name="features.pool0")
    blocks = DENSENET121["block_config"]
    for block_index, layers in enumerate(blocks, start=1):
        features = [x]
        for layer in range(1, layers + 1):
            p = f"features.denseblock{block_index}.denselayer{layer}"
            y = features[0] if len(features) == 1 else b.concat(features, name=f"{p}.cat")
            y = _bn_relu(b, y, f"{p}.norm1", eps)
            y = b.conv(y, DENSENET_BN_SIZE * growth, 1, name=f"{p}.conv1")
            y = _bn_relu(b, y, f"{p}.norm2", eps)
            features.append(b.conv(y, growth, 3, padding=1, name=f"{p}.conv2"))
        x = b.concat(features, name=f"features.denseblock{block_index}.cat")
        if block_index != len(blocks):
            p = f"features.transition{block_index}"
            x = _bn_relu(b, x, f"{p}.norm", eps)
            x = b.conv(x, x.channels // 2, 1, name=f"{p}.conv")
            x = b.avg_pool(x, 2, 2, name=f"{p}.pool")
    x = _bn_relu(b, x, "features.norm5", eps)
    x = b.flatten(b.global_avg_pool(x, name="avgpool"))
    return b.linear(x, num_classes, name="classifier")


INCEPTION_BN_EPS = 1e-3


class _Inception:
    """Inception v3's blocks; ``ch`` scales every channel count (width multiplier)."""

    def __init__(self, b: OnnxGraphBuilder, ch: Callable[[int], int]) -> None:
        self.b, self.ch = b, ch

    def conv(
        self,
        x: Tensor,
        channels: int,
        kernel: int | Sequence[int],
        name: str,
        stride: int = 1,
        padding: int | Sequence[int] = 0,
    ) -> Tensor:
        """torchvision's ``BasicConv2d``: conv (no bias), BN (eps 1e-3), ReLU."""
        b = self.b
        y = b.conv(x, self.ch(channels), kernel, stride=stride, padding=padding,
                   name=f"{name}.conv")  # fmt: skip
        return _bn_relu(b, y, f"{name}.bn", INCEPTION_BN_EPS)

    def pool_branch(self, x: Tensor, channels: int, p: str) -> Tensor:
        y = self.b.avg_pool(x, 3, 1, 1, count_include_pad=True, name=f"{p}.avgpool")
        return self.conv(y, channels, 1, f"{p}.branch_pool")

    def a(self, x: Tensor, pool_features: int, p: str) -> Tensor:
        c = self.conv
        b1 = c(x, 64, 1, f"{p}.branch1x1")
        b5 = c(c(x, 48, 1, f"{p}.branch5x5_1"), 64, 5, f"{p}.branch5x5_2", padding=2)
        b3 = c(x, 64, 1, f"{p}.branch3x3dbl_1")
        b3 = c(b3, 96, 3, f"{p}.branch3x3dbl_2", padding=1)
        b3 = c(b3, 96, 3, f"{p}.branch3x3dbl_3", padding=1)
        return self.b.concat([b1, b5, b3, self.pool_branch(x, pool_features, p)], name=p)

    def b_(self, x: Tensor, p: str) -> Tensor:
        c = self.conv
        b3 = c(x, 384, 3, f"{p}.branch3x3", stride=2)
        d = c(x, 64, 1, f"{p}.branch3x3dbl_1")
        d = c(d, 96, 3, f"{p}.branch3x3dbl_2", padding=1)
        d = c(d, 96, 3, f"{p}.branch3x3dbl_3", stride=2)
        pool = self.b.max_pool(x, 3, 2, name=f"{p}.maxpool")
        return self.b.concat([b3, d, pool], name=p)

    def c_(self, x: Tensor, c7: int, p: str) -> Tensor:
        c = self.conv
        b1 = c(x, 192, 1, f"{p}.branch1x1")
        b7 = c(x, c7, 1, f"{p}.branch7x7_1")
        b7 = c(b7, c7, (1, 7), f"{p}.branch7x7_2", padding=(0, 3))
        b7 = c(b7, 192, (7, 1), f"{p}.branch7x7_3", padding=(3, 0))
        d = c(x, c7, 1, f"{p}.branch7x7dbl_1")
        d = c(d, c7, (7, 1), f"{p}.branch7x7dbl_2", padding=(3, 0))
        d = c(d, c7, (1, 7), f"{p}.branch7x7dbl_3", padding=(0, 3))
        d = c(d, c7, (7, 1), f"{p}.branch7x7dbl_4", padding=(3, 0))
        d = c(d, 192, (1, 7), f"{p}.branch7x7dbl_5", padding=(0, 3))
        return self.b.concat([b1, b7, d, self.pool_branch(x, 192, p)], name=p)

    def d(self, x: Tensor, p: str) -> Tensor:
        c = self.conv
        b3 = c(c(x, 192, 1, f"{p}.branch3x3_1"), 320, 3, f"{p}.branch3x3_2", stride=2)
        b7 = c(x, 192, 1, f"{p}.branch7x7x3_1")
        b7 = c(b7, 192, (1, 7), f"{p}.branch7x7x3_2", padding=(0, 3))
        b7 = c(b7, 192, (7, 1), f"{p}.branch7x7x3_3", padding=(3, 0))
        b7 = c(b7, 192, 3, f"{p}.branch7x7x3_4", stride=2)
        pool = self.b.max_pool(x, 3, 2, name=f"{p}.maxpool")
        return self.b.concat([b3, b7, pool], name=p)

    def e(self, x: Tensor, p: str) -> Tensor:
        c, cat = self.conv, self.b.concat
        b1 = c(x, 320, 1, f"{p}.branch1x1")
        b3 = c(x, 384, 1, f"{p}.branch3x3_1")
        b3 = cat([c(b3, 384, (1, 3), f"{p}.branch3x3_2a", padding=(0, 1)),
                  c(b3, 384, (3, 1), f"{p}.branch3x3_2b", padding=(1, 0))],
                 name=f"{p}.branch3x3")  # fmt: skip
        d = c(x, 448, 1, f"{p}.branch3x3dbl_1")
        d = c(d, 384, 3, f"{p}.branch3x3dbl_2", padding=1)
        d = cat([c(d, 384, (1, 3), f"{p}.branch3x3dbl_3a", padding=(0, 1)),
                 c(d, 384, (3, 1), f"{p}.branch3x3dbl_3b", padding=(1, 0))],
                name=f"{p}.branch3x3dbl")  # fmt: skip
        return cat([b1, b3, d, self.pool_branch(x, 192, p)], name=p)


def build_inception_v3(b: OnnxGraphBuilder, num_classes: int, ch: Callable[[int], int]) -> Tensor:
    """torchvision ``inception_v3(aux_logits=False, transform_input=False)``, eval mode."""
    net = _Inception(b, ch)
    x = net.conv(b.input, 32, 3, "Conv2d_1a_3x3", stride=2)
    x = net.conv(x, 32, 3, "Conv2d_2a_3x3")
    x = net.conv(x, 64, 3, "Conv2d_2b_3x3", padding=1)
    x = b.max_pool(x, 3, 2, name="maxpool1")
    x = net.conv(x, 80, 1, "Conv2d_3b_1x1")
    x = net.conv(x, 192, 3, "Conv2d_4a_3x3")
    x = b.max_pool(x, 3, 2, name="maxpool2")
    x = net.a(x, 32, "Mixed_5b")
    x = net.a(x, 64, "Mixed_5c")
    x = net.a(x, 64, "Mixed_5d")
    x = net.b_(x, "Mixed_6a")
    x = net.c_(x, 128, "Mixed_6b")
    x = net.c_(x, 160, "Mixed_6c")
    x = net.c_(x, 160, "Mixed_6d")
    x = net.c_(x, 192, "Mixed_6e")
    x = net.d(x, "Mixed_7a")
    x = net.e(x, "Mixed_7b")
    x = net.e(x, "Mixed_7c")
    x = b.flatten(b.global_avg_pool(x, name="avgpool"))  # then dropout: a no-op at inference
    return b.linear(x, num_classes, name="fc")
