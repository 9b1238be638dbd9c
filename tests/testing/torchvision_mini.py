"""Compact PyTorch definitions of the zoo's architectures, written after torchvision's.

torchvision is not a dependency, so these restate its modules (same submodule
names, so ``state_dict`` keys match torchvision's and the zoo's initializer
names). Used by tests/testing/test_zoo.py to check the zoo's ONNX graphs
against an independent implementation; the modern CNNs (EfficientNet, MobileNet v3,
RegNet, ConvNeXt) are in torchvision_mini_modern.py, reached through ``build``.
Importing this module needs torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tests.testing.torchvision_mini_modern import build_modern

Channels = Callable[[int], int]


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


# ------------------------------------------------------------------------------ resnet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(inplanes, planes, 3, stride)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(inplanes, planes, 1)
        self.conv2, self.bn2 = conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = conv_bn(planes, planes * 4, 1)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, ch: Channels):
        super().__init__()
        block, layers = {
            18: (BasicBlock, (2, 2, 2, 2)),
            34: (BasicBlock, (3, 4, 6, 3)),
            50: (Bottleneck, (3, 4, 6, 3)),
        }[depth]
        self.inplanes = ch(64)
        self.conv1, self.bn1 = conv_bn(3, self.inplanes, 7, 2)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, n in enumerate(layers):
            planes, stride = ch(64 * 2**i), 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                down = None
                if s != 1 or self.inplanes != planes * block.expansion:
                    down = nn.Sequential(
                        nn.Conv2d(self.inplanes, planes * block.expansion, 1, s, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                blocks.append(block(self.inplanes, planes, s, down))
                self.inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(self.inplanes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------------------ vgg
class VGG(nn.Module):
    CFGS = {
        11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        16: [
            64,
            64,
            "M",
            128,
            128,
            "M",
            256,
            256,
            256,
            "M",
            512,
            512,
            512,
            "M",
            512,
            512,
            512,
            "M",
        ],
    }

    def __init__(self, depth: int, num_classes: int, ch: Channels):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in self.CFGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, ch(v), 3, padding=1), nn.ReLU()]
                cin = ch(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        hidden = ch(4096)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 49, hidden), nn.ReLU(), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(),
            nn.Linear(hidden, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ------------------------------------------------------------------------------ mobilenets
class MobileNetV1(nn.Module):
    BLOCKS = (
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
        + [(512, 1)] * 5
        + [
            (1024, 2),
            (1024, 1),
        ]
    )

    def __init__(self, num_classes: int, ch: Channels):
        super().__init__()
        self.conv1, self.conv1_bn = conv_bn(3, ch(32), 3, 2)
        cin = ch(32)
        for i, (c, s) in enumerate(self.BLOCKS, start=1):
            dw, dw_bn = conv_bn(cin, cin, 3, s, groups=cin)
            pw, pw_bn = conv_bn(cin, ch(c), 1)
            setattr(self, f"conv_dw_{i}", dw)
            setattr(self, f"conv_dw_{i}_bn", dw_bn)
            setattr(self, f"conv_pw_{i}", pw)
            setattr(self, f"conv_pw_{i}_bn", pw_bn)
            cin = ch(c)
        self.predictions = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1_bn(self.conv1(x)))
        for i in range(1, len(self.BLOCKS) + 1):
            x = F.relu(getattr(self, f"conv_dw_{i}_bn")(getattr(self, f"conv_dw_{i}")(x)))
            x = F.relu(getattr(self, f"conv_pw_{i}_bn")(getattr(self, f"conv_pw_{i}")(x)))
        return self.predictions(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
    return nn.Sequential(*conv_bn(cin, cout, kernel, stride, groups), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(inp * expand))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_relu6(inp, hidden, 1))
        layers += [
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            *conv_bn(hidden, oup, 1),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                [6, 160, 3, 2], [6, 320, 1, 1]]  # fmt: skip

    def __init__(self, num_classes: int, width: float, make_divisible: Callable[[float], int]):
        super().__init__()
        cin = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        features: list[nn.Module] = [conv_bn_relu6(3, cin, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                out = make_divisible(c * width)
                features.append(InvertedResidual(cin, out, s if i == 0 else 1, t))
                cin = out
        features.append(conv_bn_relu6(cin, last, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ------------------------------------------------------------------------------ squeezenet
class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze: int, e1: int, e3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    LAYERS = {  # (squeeze, expand) per Fire module, "M" = 3x3/2 ceil-mode max pool
        "1_0": ["M", (16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192),
                (64, 256), "M", (64, 256)],
        "1_1": ["M", (16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192),
                (64, 256), (64, 256)],
    }  # fmt: skip

    def __init__(self, version: str, num_classes: int, ch: Channels):
        super().__init__()
        cin = ch(96) if version == "1_0" else ch(64)
        kernel = 7 if version == "1_0" else 3
        layers: list[nn.Module] = [nn.Conv2d(3, cin, kernel, stride=2), nn.ReLU()]
        for item in self.LAYERS[version]:
            if item == "M":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                squeeze, expand = item
                layers.append(Fire(cin, ch(squeeze), ch(expand), ch(expand)))
                cin = 2 * ch(expand)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Conv2d(cin, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


# ------------------------------------------------------------------------------ densenet
class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, cin: int, growth: int, bn_size: int):
        super().__init__()
        for i in range(layers):
            self[f"denselayer{i + 1}"] = DenseLayer(cin + i * growth, growth, bn_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet121(nn.Module):
    def __init__(self, num_classes: int, ch: Channels):
        super().__init__()
        growth, cin = ch(32), ch(64)
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, cin, 7, 2, 3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(cin))
        self.features.add_module("relu0", nn.ReLU())
        self.features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
        for i, n in enumerate((6, 12, 24, 16)):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, cin, growth, 4))
            cin += n * growth
            if i != 3:
                t = nn.Sequential()
                t.add_module("norm", nn.BatchNorm2d(cin))
                t.add_module("relu", nn.ReLU())
                t.add_module("conv", nn.Conv2d(cin, cin // 2, 1, bias=False))
                t.add_module("pool", nn.AvgPool2d(2, 2))
                self.features.add_module(f"transition{i + 1}", t)
                cin //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(cin))
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(F.relu(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ------------------------------------------------------------------------------ inception v3
class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def pooled(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, 1, 1)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int, ch: Channels):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, ch(64), 1)
        self.branch5x5_1 = BasicConv2d(cin, ch(48), 1)
        self.branch5x5_2 = BasicConv2d(ch(48), ch(64), 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, ch(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(ch(64), ch(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(ch(96), ch(96), 3, padding=1)
        self.branch_pool = BasicConv2d(cin, ch(pool_features), 1)
        self.out = ch(64) * 2 + ch(96) + ch(pool_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(pooled(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int, ch: Channels):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, ch(384), 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, ch(64), 1)
        self.branch3x3dbl_2 = BasicConv2d(ch(64), ch(96), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(ch(96), ch(96), 3, stride=2)
        self.out = ch(384) + ch(96) + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int, ch: Channels):
        super().__init__()
        c7 = ch(c7)
        self.branch1x1 = BasicConv2d(cin, ch(192), 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, ch(192), (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, ch(192), (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, ch(192), 1)
        self.out = 4 * ch(192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(pooled(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int, ch: Channels):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, ch(192), 1)
        self.branch3x3_2 = BasicConv2d(ch(192), ch(320), 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, ch(192), 1)
        self.branch7x7x3_2 = BasicConv2d(ch(192), ch(192), (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(ch(192), ch(192), (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(ch(192), ch(192), 3, stride=2)
        self.out = ch(320) + ch(192) + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, ch: Channels):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, ch(320), 1)
        self.branch3x3_1 = BasicConv2d(cin, ch(384), 1)
        self.branch3x3_2a = BasicConv2d(ch(384), ch(384), (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(ch(384), ch(384), (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, ch(448), 1)
        self.branch3x3dbl_2 = BasicConv2d(ch(448), ch(384), 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(ch(384), ch(384), (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(ch(384), ch(384), (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, ch(192), 1)
        self.out = ch(320) + 4 * ch(384) + ch(192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled(x))], 1)


class InceptionV3(nn.Module):
    """torchvision's Inception3 with aux_logits=False, transform_input=False, eval mode."""

    def __init__(self, num_classes: int, ch: Channels):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, ch(32), 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(ch(32), ch(32), 3)
        self.Conv2d_2b_3x3 = BasicConv2d(ch(32), ch(64), 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(ch(64), ch(80), 1)
        self.Conv2d_4a_3x3 = BasicConv2d(ch(80), ch(192), 3)
        self.Mixed_5b = InceptionA(ch(192), 32, ch)
        self.Mixed_5c = InceptionA(self.Mixed_5b.out, 64, ch)
        self.Mixed_5d = InceptionA(self.Mixed_5c.out, 64, ch)
        self.Mixed_6a = InceptionB(self.Mixed_5d.out, ch)
        self.Mixed_6b = InceptionC(self.Mixed_6a.out, 128, ch)
        self.Mixed_6c = InceptionC(self.Mixed_6b.out, 160, ch)
        self.Mixed_6d = InceptionC(self.Mixed_6c.out, 160, ch)
        self.Mixed_6e = InceptionC(self.Mixed_6d.out, 192, ch)
        self.Mixed_7a = InceptionD(self.Mixed_6e.out, ch)
        self.Mixed_7b = InceptionE(self.Mixed_7a.out, ch)
        self.Mixed_7c = InceptionE(self.Mixed_7b.out, ch)
        self.fc = nn.Linear(self.Mixed_7c.out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(name: str, num_classes: int, width: float, make_divisible: Callable[[float], int]):
    """The torch twin of zoo model ``name`` (eval mode), channel counts scaled like the zoo's."""

    def ch(c: int) -> int:
        return c if width == 1.0 else make_divisible(c * width)

    if name.startswith("resnet"):
        model = ResNet(int(name[6:]), num_classes, ch)
    elif name.startswith("vgg"):
        model = VGG(int(name[3:]), num_classes, ch)
    elif name == "mobilenet_v1":
        model = MobileNetV1(num_classes, ch)
    elif name == "mobilenet_v2":
        model = MobileNetV2(num_classes, width, make_divisible)
    elif name.startswith("squeezenet"):
        model = SqueezeNet(name[10:], num_classes, ch)
    elif name == "densenet121":
        model = DenseNet121(num_classes, ch)
    elif name == "inception_v3":
        model = InceptionV3(num_classes, ch)
    else:
        model = build_modern(name, num_classes, width, make_divisible)
        if model is None:
            raise KeyError(name)
    return model.eval()
