"""Build the MXNet fixtures of tests/frontend/test_mxnet.py (needs mxnet, NOT in .venv).

mxnet 1.9.1 only installs beside numpy 1.23, so it lives in its own venv::

    python3 -m venv /tmp/mxnet-venv
    /tmp/mxnet-venv/bin/pip install mxnet==1.9.1 numpy==1.23.5
    /tmp/mxnet-venv/bin/python tests/data/make_mxnet_fixtures.py

Each model is written as ``NAME-symbol.json`` + ``NAME-0000.params`` (the files
``HybridBlock.export`` writes) and ``NAME-io.npz`` holding the input(s) under
their names and MXNet's outputs as ``output_0``, ``output_1``, ... Weights are
random (seeded); batch-norm statistics are random too, so a frontend that
ignored them (or ``fix_gamma``) would fail. The nets are thin versions of the
Gluon model-zoo CNNs (same block classes, few channels, small inputs) plus
hand-written nets that use every op family the frontend maps, so the files stay
small (about 3 MB in all).

``--zoo DIR`` instead writes full-size Gluon model-zoo nets (random weights, not
committed: tens of MB) for a manual check of the frontend on real architectures::

    /tmp/mxnet-venv/bin/python tests/data/make_mxnet_fixtures.py --zoo /tmp/mxzoo
    .venv/bin/python -c "import numpy as np, ember; from ember.graph import interpret
    io = np.load('/tmp/mxzoo/inceptionv3-io.npz')
    mod, params = ember.frontend.load('/tmp/mxzoo/inceptionv3-symbol.json',
                                      shape={'data': io['data'].shape})
    print(np.abs(interpret(mod, params, {'data': io['data']})[0] - io['output_0']).max())"
"""

from __future__ import annotations

import sys
from pathlib import Path

import mxnet as mx
import numpy as np
from mxnet import gluon
from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

OUT = Path(__file__).resolve().parent / "mxnet"
SEED = 20261124


def randomize(net: gluon.HybridBlock, rng: np.random.Generator) -> None:
    """Random weights everywhere, with batch-norm stats far from (0, 1)."""
    for name, param in net.collect_params().items():
        shape = param.shape
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("running_mean") or name.endswith("beta"):
            value = rng.normal(0.0, 0.3, shape)
        elif name.endswith("gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("alpha"):  # PReLU slopes
            value = rng.uniform(0.05, 0.3, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            value = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
        param.set_data(mx.nd.array(value.astype(np.float32)))


def export_gluon(name: str, net: gluon.HybridBlock, shape: tuple[int, ...], rng) -> None:
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    net(mx.nd.array(x))  # build the graph so parameter shapes are known
    randomize(net, rng)
    out = net(mx.nd.array(x))
    outs = out if isinstance(out, list | tuple) else [out]
    net.export(str(OUT / name), epoch=0)
    arrays = {"data": x}
    arrays.update({f"output_{i}": o.asnumpy() for i, o in enumerate(outs)})
    np.savez(OUT / f"{name}-io.npz", **arrays)
    print(f"{name}: {[o.shape for o in outs]}")


def export_symbol(name: str, sym, inputs: dict[str, np.ndarray], rng, skip=()) -> None:
    """A model written with the symbol API (SoftmaxOutput and friends)."""
    arg_shapes, _, aux_shapes = sym.infer_shape(**{k: v.shape for k, v in inputs.items()})
    args = {}
    for arg, shape in zip(sym.list_arguments(), arg_shapes):
        if arg in inputs:
            args[arg] = mx.nd.array(inputs[arg])
        elif arg in skip:
            args[arg] = mx.nd.zeros(shape)
        else:
            args[arg] = mx.nd.array(rng.normal(0, 0.5, shape).astype(np.float32))
    aux = {}
    for arg, shape in zip(sym.list_auxiliary_states(), aux_shapes):
        low = 0.5 if arg.endswith("var") else -0.5
        aux[arg] = mx.nd.array(rng.uniform(low, low + 1.0, shape).astype(np.float32))
    exe = sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
    outs = exe.forward(is_train=False)
    sym.save(str(OUT / f"{name}-symbol.json"))
    saved = {f"arg:{k}": v for k, v in args.items() if k not in inputs and k not in skip}
    saved.update({f"aux:{k}": v for k, v in aux.items()})
    mx.nd.save(str(OUT / f"{name}-0000.params"), saved)
    arrays = dict(inputs)
    arrays.update({f"output_{i}": o.asnumpy() for i, o in enumerate(outs)})
    np.savez(OUT / f"{name}-io.npz", **arrays)
    print(f"{name}: {[o.shape for o in outs]}")


class Fire(nn.HybridBlock):
    """SqueezeNet's fire module."""

    def __init__(self, squeeze: int, expand: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.squeeze = nn.Conv2D(squeeze, 1, activation="relu")
            self.left = nn.Conv2D(expand, 1, activation="relu")
            self.right = nn.Conv2D(expand, 3, padding=1, activation="relu")

    def hybrid_forward(self, F, x):
        x = self.squeeze(x)
        return F.concat(self.left(x), self.right(x), dim=1)


class Inception(nn.HybridBlock):
    """An Inception-v1 style block: four branches joined on channels."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.b1 = nn.Conv2D(4, 1, activation="relu")
            self.b3 = nn.HybridSequential()
            self.b3.add(nn.Conv2D(4, 1, activation="relu"), nn.Conv2D(6, 3, padding=1))
            self.b5 = nn.HybridSequential()
            self.b5.add(nn.Conv2D(2, 1), nn.Conv2D(4, 5, padding=2, use_bias=False))
            self.pool = nn.HybridSequential()
            self.pool.add(nn.MaxPool2D(3, 1, padding=1), nn.Conv2D(4, 1))

    def hybrid_forward(self, F, x):
        return F.Concat(self.b1(x), self.b3(x), self.b5(x), self.pool(x), dim=1)


def squeeze_inception() -> gluon.HybridBlock:
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(8, 3, strides=2, activation="relu"),
        nn.MaxPool2D(3, 2, ceil_mode=True),  # pooling_convention="full"
        Fire(4, 8),
        Fire(4, 8),
        nn.MaxPool2D(3, 2, ceil_mode=True),
        Inception(),
        nn.BatchNorm(),
        nn.Dropout(0.5),
        nn.Conv2D(10, 1, activation="relu"),
        nn.GlobalAvgPool2D(),
        nn.Flatten(),
    )
    return net


class OpsNet(nn.HybridBlock):
    """Every remaining op family the frontend maps, in one small graph."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(8, 3, padding=2, dilation=2, use_bias=False)
            self.bn = nn.BatchNorm(scale=False, epsilon=1e-3)  # fix_gamma=True
            self.prelu = nn.PReLU()
            self.elu = nn.ELU(alpha=0.7)
            self.selu = nn.SELU()
            self.gelu = nn.GELU()
            self.leaky = nn.LeakyReLU(0.2)
            self.deconv = nn.Conv2DTranspose(4, 3, strides=2, padding=1, output_padding=1)
            self.grouped = nn.Conv2D(8, 3, padding=1, groups=2, activation="softrelu")
            self.fc = nn.Dense(6, flatten=False)
            self.fc2 = nn.Dense(5, activation="tanh")

    def hybrid_forward(self, F, x):
        y = self.bn(self.conv(x))  # (1, 8, 12, 12)
        y = self.prelu(y) + self.elu(y) * 0.5
        y = F.broadcast_sub(self.selu(y), self.gelu(y)) + self.leaky(y)
        y = F.Activation(y, act_type="sigmoid") - 0.25
        y = F.clip(y, -0.6, 0.7)
        pooled_sum = F.Pooling(y, kernel=(2, 2), stride=(2, 2), pool_type="sum")  # (1,8,6,6)
        pooled_avg = F.Pooling(
            y, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg", count_include_pad=False
        )
        pooled = F.broadcast_mul(pooled_sum, pooled_avg) / 3.0
        up = self.deconv(pooled)  # (1, 4, 12, 12)
        z = self.grouped(F.concat(up, up, dim=1))
        z = F.relu(z)
        z = 2.0 - z  # _rminus_scalar
        z = 1.0 / (F.abs(z) + 1.0)  # _rdiv_scalar, _plus_scalar
        t = F.transpose(z, axes=(0, 2, 3, 1))  # (1, 12, 12, 8)
        t = F.Reshape(t, shape=(0, -3, -2))  # (1, 144, 8)
        t = self.fc(t)  # (1, 144, 6)
        t = F.Reshape(t, shape=(0, -4, 12, -1, 0))  # (1, 12, 12, 6)
        t = F.expand_dims(F.slice_axis(t, axis=3, begin=1, end=5), axis=1)  # (1,1,12,12,4)
        m = F.mean(t, axis=(2, 3), keepdims=False)  # (1, 1, 4)
        s = F.sum(t, axis=-1)  # (1, 1, 12, 12)
        s = F.Flatten(F.softmax(s, axis=-1))
        head = self.fc2(s)  # (1, 5)
        gpool = F.Pooling(z, kernel=(1, 1), global_pool=True, pool_type="max")
        gpool = F.identity(F.Flatten(gpool)) * 1.0  # (1, 8)
        return F.concat(head, F.Flatten(m), dim=1), F.SoftmaxActivation(gpool)


def mlp_symbol():
    data = mx.sym.var("data")
    h = mx.sym.FullyConnected(data, num_hidden=16, name="fc1")
    h = mx.sym.Activation(h, act_type="relu", name="relu1")
    h = mx.sym.FullyConnected(h, num_hidden=16, no_bias=True, name="fc2")
    h = mx.sym.LeakyReLU(h, act_type="leaky", slope=0.1, name="leaky")
    h = mx.sym.BatchNorm(h, fix_gamma=False, eps=1e-4, name="bn")
    h = mx.sym.elemwise_add(h, mx.sym.identity(h), name="double")
    h = mx.sym.FullyConnected(h, num_hidden=10, name="fc3")
    return mx.sym.SoftmaxOutput(h, name="softmax")


# (model-zoo name, input size): the smallest input each architecture accepts or 64
ZOO = [
    ("resnet18_v1", 64),
    ("resnet50_v2", 64),
    ("squeezenet1.1", 224),
    ("mobilenet1.0", 64),
    ("mobilenetv2_1.0", 64),
    ("densenet121", 224),
    ("inceptionv3", 299),
    ("vgg11_bn", 64),
    ("alexnet", 224),
]


def export_zoo(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for name, size in ZOO:
        net = vision.get_model(name, pretrained=False, classes=10)
        net.initialize(mx.init.Xavier())
        net.hybridize()
        x = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        net(mx.nd.array(x))
        randomize(net, rng)
        y = net(mx.nd.array(x)).asnumpy()
        net.export(str(out / name), epoch=0)
        np.savez(out / f"{name}-io.npz", data=x, output_0=y)
        print(name, y.shape)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--zoo":
        export_zoo(Path(sys.argv[2]))
        return
    OUT.mkdir(exist_ok=True)
    mx.random.seed(SEED)
    rng = np.random.default_rng(SEED)
    export_gluon(
        "resnet_v1",
        vision.ResNetV1(vision.BasicBlockV1, [1, 1, 1, 1], [8, 8, 12, 16, 24], classes=10),
        (1, 3, 64, 64),
        rng,
    )
    export_gluon(
        "resnet_v2",
        vision.ResNetV2(vision.BasicBlockV2, [1, 1, 1, 1], [8, 8, 12, 16, 24], classes=10),
        (1, 3, 64, 64),
        rng,
    )
    export_gluon("mobilenet", vision.mobilenet0_25(classes=10), (1, 3, 64, 64), rng)
    export_gluon("mobilenet_v2", vision.mobilenet_v2_0_25(classes=10), (1, 3, 32, 32), rng)
    export_gluon(
        "densenet",
        vision.DenseNet(8, 4, [2, 2], bn_size=2, classes=10),
        (2, 3, 56, 56),
        rng,
    )
    export_gluon("squeeze_inception", squeeze_inception(), (1, 3, 47, 47), rng)
    export_gluon("ops", OpsNet(), (1, 3, 12, 12), rng)
    export_symbol(
        "mlp",
        mlp_symbol(),
        {"data": rng.normal(size=(3, 2, 4)).astype(np.float32)},
        rng,
        skip=("softmax_label",),
    )
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"total {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    sys.exit(main())
