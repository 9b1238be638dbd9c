"""PyTorch twins of the zoo's modern CNNs, restating torchvision's modules (eval mode).

EfficientNet-B0, MobileNet v3 Large, RegNetY-800MF and ConvNeXt-Tiny, with
torchvision's submodule names so ``state_dict`` keys match the zoo's
initializer names. Written from torchvision's source, independently of
ember/testing/zoo_modern.py (RegNet's widths are computed in torch, as
torchvision does). Used through ``tests.testing.torchvision_mini.build``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

MakeDivisible = Callable[[float], int]


class ConvNormActivation(nn.Sequential):
    """torchvision's ``Conv2dNormActivation`` (conv without bias, BN, optional activation)."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, activation=None, eps=1e-5):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=eps),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int, activation=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = activation()
        self.scale_activation = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(scale)


# ------------------------------------------------------------------------------ efficientnet
class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int, md):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        expanded = md(cin * expand)
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvNormActivation(cin, expanded, 1, activation=nn.SiLU))
        layers += [
            ConvNormActivation(expanded, expanded, kernel, stride, expanded, nn.SiLU),
            SqueezeExcitation(expanded, max(1, cin // 4), nn.SiLU),
            ConvNormActivation(expanded, cout, 1),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.use_res_connect else y


class EfficientNetB0(nn.Module):
    # (expand ratio, kernel, stride, input channels, output channels, layers)
    SETTING = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
               (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
               (6, 3, 1, 192, 320, 1)]  # fmt: skip

    def __init__(self, num_classes: int, width: float, make_divisible: MakeDivisible):
        super().__init__()

        def md(c: float) -> int:
            return make_divisible(c)

        layers: list[nn.Module] = [ConvNormActivation(3, md(32 * width), 3, 2, activation=nn.SiLU)]
        for expand, kernel, stride, cin, cout, n in self.SETTING:
            cin, cout = md(cin * width), md(cout * width)
            stage = [MBConv(cin if i == 0 else cout, cout, expand, kernel, stride if i == 0 else 1,
                            md) for i in range(n)]  # fmt: skip
            layers.append(nn.Sequential(*stage))
        last_in = md(320 * width)
        layers.append(ConvNormActivation(last_in, 4 * last_in, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * last_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ------------------------------------------------------------------------------ mobilenet v3
class InvertedResidualV3(nn.Module):
    def __init__(self, cin, kernel, expanded, cout, use_se, act, stride, md):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        activation = nn.Hardswish if act == "HS" else nn.ReLU
        eps = 0.001
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvNormActivation(cin, expanded, 1, activation=activation, eps=eps))
        layers.append(ConvNormActivation(expanded, expanded, kernel, stride, expanded, activation,
                                         eps))  # fmt: skip
        if use_se:
            layers.append(SqueezeExcitation(expanded, md(expanded // 4), nn.ReLU, nn.Hardsigmoid))
        layers.append(ConvNormActivation(expanded, cout, 1, eps=eps))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res_connect else y


class MobileNetV3Large(nn.Module):
    # (input, kernel, expanded, output, SE, activation, stride): torchvision's bneck_conf rows
    SETTING = [
        (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
        (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
        (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
        (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
        (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
        (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
        (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
        (160, 5, 960, 160, True, "HS", 1),
    ]  # fmt: skip

    def __init__(self, num_classes: int, width: float, make_divisible: MakeDivisible):
        super().__init__()

        def adjust(c: float) -> int:
            return make_divisible(c * width)

        layers: list[nn.Module] = [
            ConvNormActivation(3, adjust(16), 3, 2, activation=nn.Hardswish, eps=0.001)
        ]
        for cin, kernel, expanded, cout, use_se, act, stride in self.SETTING:
            layers.append(InvertedResidualV3(adjust(cin), kernel, adjust(expanded), adjust(cout),
                                             use_se, act, stride, make_divisible))  # fmt: skip
        last_in = adjust(160)
        layers.append(ConvNormActivation(last_in, 6 * last_in, 1, activation=nn.Hardswish,
                                         eps=0.001))  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * last_in, adjust(1280)), nn.Hardswish(), nn.Dropout(0.2),
            nn.Linear(adjust(1280), num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ------------------------------------------------------------------------------ regnet
def regnet_y_800mf_params(ch: Callable[[int], int]) -> tuple[list[int], list[int], list[int]]:
    """torchvision's ``BlockParams.from_init_params`` and group-width adjustment, in torch."""
    depth, w_0, w_a, w_m, group_width = 14, 56, 38.84, 2.4, 16
    widths_cont = torch.arange(depth) * w_a + w_0
    capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
    block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, capacity), 8)) * 8).int()
    block_widths = block_widths.tolist()
    splits = [w != wp for w, wp in zip(block_widths + [0], [0] + block_widths, strict=True)]
    stage_widths = [w for w, t in zip(block_widths, splits[:-1], strict=True) if t]
    stage_depths = torch.diff(torch.tensor([d for d, t in enumerate(splits) if t])).tolist()
    stage_widths = [ch(w) for w in stage_widths]
    groups = [min(group_width, w) for w in stage_widths]
    widths = [_make_divisible(w, g) for w, g in zip(stage_widths, groups, strict=True)]
    return widths, stage_depths, groups


def _make_divisible(v: float, divisor: int) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ResBottleneckBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, group_width: int):
        super().__init__()
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = ConvNormActivation(cin, cout, 1, stride)
        self.f = nn.Sequential(OrderedDict([
            ("a", ConvNormActivation(cin, cout, 1, activation=nn.ReLU)),
            ("b", ConvNormActivation(cout, cout, 3, stride, cout // group_width, nn.ReLU)),
            ("se", SqueezeExcitation(cout, int(round(0.25 * cin)))),
            ("c", ConvNormActivation(cout, cout, 1)),
        ]))  # fmt: skip
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))


class RegNetY800MF(nn.Module):
    def __init__(self, num_classes: int, ch: Callable[[int], int]):
        super().__init__()
        self.stem = ConvNormActivation(3, ch(32), 3, 2, activation=nn.ReLU)
        cin = ch(32)
        stages = []
        widths, depths, groups = regnet_y_800mf_params(ch)
        for i, (w, d, g) in enumerate(zip(widths, depths, groups, strict=True), start=1):
            stage = nn.Sequential()
            for j in range(d):
                stage.add_module(f"block{i}-{j}", ResBottleneckBlock(cin, w, 2 if j == 0 else 1, g))
                cin = w
            stages.append((f"block{i}", stage))
        self.trunk_output = nn.Sequential(OrderedDict(stages))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.trunk_output(self.stem(x))), 1))


# ------------------------------------------------------------------------------ convnext
class LayerNorm2d(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class CNBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * self.block(x) + x


class ConvNeXtTiny(nn.Module):
    STAGES = [(96, 3), (192, 3), (384, 9), (768, 3)]

    def __init__(self, num_classes: int, ch: Callable[[int], int]):
        super().__init__()
        widths = [ch(c) for c, _ in self.STAGES]
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, widths[0], 4, 4), LayerNorm2d(widths[0], eps=1e-6))
        ]
        for i, (_, n) in enumerate(self.STAGES):
            layers.append(nn.Sequential(*[CNBlock(widths[i]) for _ in range(n)]))
            if i + 1 < len(self.STAGES):
                layers.append(nn.Sequential(LayerNorm2d(widths[i], eps=1e-6),
                                            nn.Conv2d(widths[i], widths[i + 1], 2, 2)))  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            LayerNorm2d(widths[-1], eps=1e-6), nn.Flatten(1), nn.Linear(widths[-1], num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


def build_modern(name: str, num_classes: int, width: float, make_divisible: MakeDivisible):
    """The twin of a modern zoo model, or None for the other names."""

    def ch(c: int) -> int:
        return c if width == 1.0 else make_divisible(c * width)

    if name == "efficientnet_b0":
        return EfficientNetB0(num_classes, width, make_divisible)
    if name == "mobilenet_v3_large":
        return MobileNetV3Large(num_classes, width, make_divisible)
    if name == "regnet_y_800mf":
        return RegNetY800MF(num_classes, ch)
    if name == "convnext_tiny":
        return ConvNeXtTiny(num_classes, ch)
    return None
