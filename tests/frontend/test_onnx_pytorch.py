"""ONNX files written by PyTorch's exporter, imported by ember and run by the reference executor.

Three small nets in the styles of the big families (residual blocks, inverted
residuals with ReLU6 / hardswish / squeeze-excite, dense blocks with concat),
random weights and non-trivial batch-norm statistics, exported with
``torch.onnx.export`` (the TorchScript exporter, opset 17) both with the
exporter's constant folding (which folds BN into the convs itself) and without
it (BN kept, with the Identity nodes that exporter writes), and with a dynamic
batch axis fixed at import. ember's output must match torch's own, before and
after the graph passes, and so must the compiled artifact.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ember
from ember.graph.passes import optimize

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

pytestmark = pytest.mark.frameworks

RTOL = 1e-4
ATOL_FRACTION = 1e-5  # of the largest |output|


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            conv_bn(cin, cout, 3, stride), nn.ReLU(), conv_bn(cout, cout, 3)
        )
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.branch(x) + identity)


class ResidualNet(nn.Module):
    """ResNet-style: 7x7/2 stem, max pool, basic blocks (one downsampling), pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2))
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * scale


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: type, se: bool):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [conv_bn(cin, hidden, 1), act()]
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), act()]  # depthwise
        if se:
            layers.append(SqueezeExcite(hidden, max(8, hidden // 4)))
        layers.append(conv_bn(hidden, cout, 1))  # linear bottleneck
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class InvertedResidualNet(nn.Module):
    """MobileNet v2/v3-style: hardswish stem, inverted residuals with ReLU6, hardswish and SE."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2), nn.Hardswish())
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 1, 1, nn.ReLU6, se=False),
            InvertedResidual(16, 24, 2, 4, nn.ReLU6, se=False),
            InvertedResidual(24, 24, 1, 3, nn.Hardswish, se=True),
            InvertedResidual(24, 40, 2, 6, nn.Hardswish, se=True),
        )
        self.head = nn.Sequential(conv_bn(40, 64, 1), nn.Hardswish())
        self.classifier = nn.Sequential(nn.Linear(64, 32), nn.Hardswish(), nn.Dropout(0.2))
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.head(self.blocks(self.stem(x))), 1)
        return self.fc(self.classifier(torch.flatten(x, 1)))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(F.relu(self.norm1(torch.cat(features, 1))))
        return self.conv2(F.relu(self.norm2(x)))


class DenseNet(nn.Module):
    """DenseNet-style: dense blocks (each layer reads the concat of all before), transitions."""

    def __init__(self, growth: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        channels = 16
        self.block1 = nn.ModuleList(DenseLayer(channels + i * growth, growth) for i in range(3))
        channels += 3 * growth
        self.transition = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels // 2, 1, bias=False),
            nn.AvgPool2d(2, 2),
        )  # fmt: skip
        channels //= 2
        self.block2 = nn.ModuleList(DenseLayer(channels + i * growth, growth) for i in range(2))
        channels += 2 * growth
        self.norm = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, 10)

    @staticmethod
    def dense(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in layers:
            features.append(layer(features))
        return torch.cat(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense(self.block1, self.stem(x))
        x = self.dense(self.block2, self.transition(x))
        x = F.adaptive_avg_pool2d(F.relu(self.norm(x)), 1)
        return self.fc(torch.flatten(x, 1))


NETS = {"residual": ResidualNet, "inverted_residual": InvertedResidualNet, "dense": DenseNet}
IMAGE = 40  # not a power of two: odd feature map sizes along the way


def make_net(kind: str, seed: int) -> nn.Module:
    """The net in eval mode with random weights and non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    net = NETS[kind]()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5))
                m.bias.copy_(torch.empty(c).uniform_(-0.5, 0.5))
                m.running_mean.copy_(torch.empty(c).uniform_(-0.5, 0.5))
                m.running_var.copy_(torch.empty(c).uniform_(0.5, 2.0))
    return net.eval()


def export(net: nn.Module, x: torch.Tensor, path, *, fold: bool, dynamic_batch: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            (x,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["data"],
            output_names=["output"],
            do_constant_folding=fold,
            dynamic_axes={"data": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None,
        )


def assert_close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    atol = ATOL_FRACTION * float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol, err_msg=what)


@pytest.mark.parametrize("kind", sorted(NETS))
@pytest.mark.parametrize("fold", [True, False], ids=["exporter_folds_bn", "bn_kept"])
def test_exported_net_matches_torch(kind: str, fold: bool, tmp_path) -> None:
    seed = int(np.random.SeedSequence().entropy % 2**31)  # fresh each run, reported on failure
    net = make_net(kind, seed)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, 3, IMAGE, IMAGE)))
    x = x.float()
    path = tmp_path / f"{kind}.onnx"
    export(net, x, path, fold=fold, dynamic_batch=False)
    with torch.no_grad():
        expected = net(x).numpy()
    what = f"{kind} (exporter folding={fold}, seed {seed})"

    mod, params = ember.frontend.from_onnx(str(path))
    (got,) = ember.graph.interpret(mod, params, {"data": x.numpy()})
    assert got.shape == expected.shape == (1, 10)
    assert_close(got, expected, what)
    (optimized,) = ember.graph.interpret(optimize(mod, params), {}, {"data": x.numpy()})
    assert_close(optimized, expected, f"{what}, after optimize")
    (compiled,) = ember.compile(mod, params, target="host").load().run({"data": x.numpy()})
    assert_close(compiled, expected, f"{what}, compiled artifact")


@pytest.mark.parametrize("kind", sorted(NETS))
def test_dynamic_batch_fixed_at_import(kind: str, tmp_path) -> None:
    seed = int(np.random.SeedSequence().entropy % 2**31)
    net = make_net(kind, seed)
    path = tmp_path / f"{kind}.onnx"
    export(net, torch.zeros(1, 3, IMAGE, IMAGE), path, fold=True, dynamic_batch=True)
    x = np.random.default_rng(seed).standard_normal((3, 3, IMAGE, IMAGE)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()

    mod, params = ember.frontend.from_onnx(str(path), shape={"data": x.shape})
    (got,) = ember.graph.interpret(optimize(mod, params), {}, {"data": x})
    assert got.shape == (3, 10)
    assert_close(got, expected, f"{kind} batch 3 (seed {seed})")
    (compiled,) = ember.compile(mod, params, target="host").load().run({"data": x})
    assert_close(compiled, expected, f"{kind} batch 3 (seed {seed}), compiled artifact")
