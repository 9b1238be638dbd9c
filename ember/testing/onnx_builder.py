"""A small ONNX graph builder for the model zoo: layers in, a checked ``ModelProto`` out.

It tracks the shape of every tensor (so a layer only names its output
channels), names weights like PyTorch's ``state_dict`` (``layer1.0.conv1.weight``,
``bn1.running_var``), tags each initializer as a trainable ``parameter``, a BN
``buffer`` or a ``constant`` (in its ``doc_string``), and draws random weights
with a fixed seed::

    b = OnnxGraphBuilder("tiny", (1, 3, 8, 8), seed=0)
    y = b.relu(b.batch_norm(b.conv(b.input, 16, 3, padding=1, name="conv1"), name="bn1"))
    model = b.finish(b.linear(b.flatten(b.global_avg_pool(y)), 10, name="fc"))

Weight scales follow a variance-preserving rule (He/Kaiming, made
data-free): the builder keeps an estimate of each tensor's second moment
``E[x^2]`` and scales every conv/linear so its output has ``E[y^2] ~ 2`` (before
a ReLU) whatever came in, so activations stay O(1) through 100+ layer nets and
relative-tolerance tests stay meaningful. Batch-norm statistics are random but
fitted to that estimate (running_var ~ estimated variance x U(0.5, 1.5), random
running_mean, gamma ~ U(0.5, 1.5), beta ~ U(-0.5, 0.5)), so folding batch norm
changes every weight for real.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ember.errors import EmberError

# Conv/linear outputs feeding a ReLU get E[y^2] = 2 so that E[relu(y)^2] = 1 (He et al. 2015).
RELU_GAIN = 2.0
# Crude second-moment factors of pooling on post-ReLU activations: a max over a window
# grows E[x^2]; a global mean keeps mostly the (positive) mean. Only used to pick weight
# scales, so being off by 2x is harmless.
MAX_POOL_GROWTH = 2.0
GLOBAL_POOL_SHRINK = 0.5
GATE_MOMENT = 0.3  # E[sigmoid(y)^2] for y ~ N(0, 1): gates scale E[x^2] by about this

PARAMETER, BUFFER, CONSTANT = "parameter", "buffer", "constant"


class ZooError(EmberError):
    """A zoo model was asked for with an unknown name or invalid options."""


@dataclass(frozen=True)
class Tensor:
    """A value in the graph being built: its ONNX name, NCHW (or NC) shape and E[x^2] estimate."""

    name: str
    shape: tuple[int, ...]
    second_moment: float = 1.0

    @property
    def channels(self) -> int:
        return self.shape[1]


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never
    more than 10% below it: torchvision's ``_make_divisible``, used for width multipliers.

    >>> make_divisible(32 * 0.25), make_divisible(1280 * 0.35)
    (8, 448)
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def _pool_out(size: int, kernel: int, stride: int, pad_total: int, ceil_mode: bool) -> int:
    span = size + pad_total - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # PyTorch/ONNX: with ceil_mode the last window must start inside the (left-padded) input
    if ceil_mode and (out - 1) * stride >= size + pad_total // 2:
        out -= 1
    return out


class OnnxGraphBuilder:
    """Accumulates nodes and initializers; see the module doc for an example."""

    def __init__(
        self,
        graph_name: str,
        input_shape: Sequence[int],
        *,
        seed: int = 0,
        input_name: str = "data",
    ) -> None:
        self.graph_name = graph_name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._names: set[str] = set()
        self._counts: dict[str, int] = {}
        self.input = Tensor(input_name, tuple(int(d) for d in input_shape), 1.0)
        self._names.add(input_name)

    # ------------------------------------------------------------------ naming, weights
    def _fresh(self, base: str) -> str:
        """A unique tensor/node name derived from ``base``."""
        if base not in self._names:
            self._names.add(base)
            return base
        n = self._counts.get(base, 0)
        while f"{base}_{n + 1}" in self._names:
            n += 1
        self._counts[base] = n + 1
        name = f"{base}_{n + 1}"
        self._names.add(name)
        return name

    def weight(self, name: str, value: np.ndarray, kind: str = PARAMETER) -> str:
        """Add an initializer (float32 unless ``value`` is an integer array); returns its name."""
        if name in self._names:
            raise ValueError(f"initializer name {name!r} used twice")  # a builder bug
        self._names.add(name)
        array = np.asarray(value)
        if array.dtype.kind == "f":
            array = array.astype(np.float32, copy=False)
        proto = numpy_helper.from_array(array, name)
        proto.doc_string = kind
        self.initializers.append(proto)
        return name

    def _uniform(self, shape: Sequence[int], variance: float) -> np.ndarray:
        bound = math.sqrt(3.0 * variance)  # U(-b, b) has variance b^2 / 3
        # drawn in float32 and scaled in place: VGG's 100M-weight layers build in a second
        values = self.rng.random(tuple(shape), dtype=np.float32)
        values *= np.float32(2 * bound)
        values -= np.float32(bound)
        return values

    def _node(self, op: str, inputs: Sequence[str], name: str, **attrs: object) -> str:
        out = self._fresh(name)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    # ------------------------------------------------------------------ layers
    def conv(
        self,
        x: Tensor,
        out_channels: int,
        kernel: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = False,
        name: str,
        gain: float = RELU_GAIN,
    ) -> Tensor:
        """``torch.nn.Conv2d``: weights ``{name}.weight`` (O, I/groups, KH, KW), ``{name}.bias``."""
        n, c, h, w = x.shape
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride)
        ph, pw = _pair(padding)
        if c % groups or out_channels % groups:
            raise ValueError(f"{name}: channels {c}->{out_channels} not divisible by {groups}")
        oh = (h + 2 * ph - kh) // sh + 1
        ow = (w + 2 * pw - kw) // sw + 1
        self._check_spatial(name, h + 2 * ph, w + 2 * pw, kh, kw, oh, ow)
        fan_in = (c // groups) * kh * kw
        inputs = [
            x.name,
            self.weight(
                f"{name}.weight",
                self._uniform(
                    (out_channels, c // groups, kh, kw), gain / (fan_in * x.second_moment)
                ),
            ),
        ]
        if bias:  # torch's default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            inputs.append(self.weight(f"{name}.bias", self._uniform((out_channels,), 1 / fan_in)))
        out = self._node(
            "Conv",
            inputs,
            name,
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            pads=[ph, pw, ph, pw],
            group=groups,
            dilations=[1, 1],
        )
        return Tensor(out, (n, out_channels, oh, ow), gain)

    def batch_norm(self, x: Tensor, *, name: str, eps: float = 1e-5) -> Tensor:
        """Inference ``BatchNormalization`` with random, non-trivial statistics (module doc)."""
        c = x.channels
        rng = self.rng
        scale = math.sqrt(x.second_moment)
        gamma = rng.uniform(0.5, 1.5, c)
        beta = rng.uniform(-0.5, 0.5, c)
        mean = rng.normal(0.0, 0.5 * scale, c)
        var = x.second_moment * rng.uniform(0.5, 1.5, c)
        inputs = [
            x.name,
            self.weight(f"{name}.weight", gamma),
            self.weight(f"{name}.bias", beta),
            self.weight(f"{name}.running_mean", mean, BUFFER),
            self.weight(f"{name}.running_var", var, BUFFER),
        ]
        out = self._node("BatchNormalization", inputs, name, epsilon=float(eps))
        # E[y^2] = E[gamma^2] E[(x-mean)^2/var] + E[beta^2] ~ 1.08 * 1.3 + 0.08
        return Tensor(out, x.shape, 1.5)

    def relu(self, x: Tensor, *, name: str = "relu") -> Tensor:
        return Tensor(self._node("Relu", [x.name], name), x.shape, x.second_moment / 2)

    def relu6(self, x: Tensor, *, name: str = "relu6") -> Tensor:
        """``Clip(x, 0, 6)``, as torch exports ``nn.ReLU6`` at opset >= 11."""
        lo = self._const_scalar("const.zero", 0.0)
        hi = self._const_scalar("const.six", 6.0)
        return Tensor(self._node("Clip", [x.name, lo, hi], name), x.shape, x.second_moment / 2)

    def _const_scalar(self, name: str, value: float) -> str:
        if name not in self._names:
            self.weight(name, np.array(value, dtype=np.float32), CONSTANT)
        return name

    def add(self, a: Tensor, b: Tensor, *, name: str = "add") -> Tensor:
        if a.shape != b.shape:
            raise ValueError(f"{name}: adding {a.shape} and {b.shape}")  # a builder bug
        out = self._node("Add", [a.name, b.name], name)
        return Tensor(out, a.shape, a.second_moment + b.second_moment)

    def concat(self, xs: Sequence[Tensor], *, name: str = "concat") -> Tensor:
        """Concatenate along channels (``torch.cat(xs, 1)``)."""
        n, _, h, w = xs[0].shape
        if any(x.shape[0] != n or x.shape[2:] != (h, w) for x in xs):
            raise ValueError(f"{name}: concatenating {[x.shape for x in xs]}")  # a builder bug
        channels = sum(x.channels for x in xs)
        moment = sum(x.channels * x.second_moment for x in xs) / channels
        out = self._node("Concat", [x.name for x in xs], name, axis=1)
        return Tensor(out, (n, channels, h, w), moment)

    def max_pool(
        self,
        x: Tensor,
        kernel: int,
        stride: int,
        padding: int = 0,
        *,
        ceil_mode: bool = False,
        name: str = "maxpool",
    ) -> Tensor:
        oh, ow = self._pool_shape(x, kernel, stride, padding, ceil_mode, name)
        out = self._node(
            "MaxPool",
            [x.name],
            name,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[padding] * 4,
            ceil_mode=int(ceil_mode),
        )
        return Tensor(out, (*x.shape[:2], oh, ow), x.second_moment * MAX_POOL_GROWTH)

    def avg_pool(
        self,
        x: Tensor,
        kernel: int,
        stride: int,
        padding: int = 0,
        *,
        count_include_pad: bool = True,
        name: str = "avgpool",
    ) -> Tensor:
        """``nn.AvgPool2d``/``F.avg_pool2d`` (torch counts the padding by default)."""
        oh, ow = self._pool_shape(x, kernel, stride, padding, False, name)
        out = self._node(
            "AveragePool",
            [x.name],
            name,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[padding] * 4,
            count_include_pad=int(count_include_pad),
        )
        return Tensor(out, (*x.shape[:2], oh, ow), x.second_moment)

    def global_avg_pool(self, x: Tensor, *, name: str = "global_avgpool") -> Tensor:
        out = self._node("GlobalAveragePool", [x.name], name)
        return Tensor(out, (*x.shape[:2], 1, 1), x.second_moment * GLOBAL_POOL_SHRINK)

    def adaptive_avg_pool(self, x: Tensor, size: int, *, name: str = "avgpool") -> Tensor:
        """``nn.AdaptiveAvgPool2d(size)`` for any input size.

        Nothing when the input already has that size (what torch exports), a
        plain ``AveragePool`` when it divides evenly, else two ``MatMul``s with
        constant bin-averaging matrices (torch's bins: [floor(i*in/out), ceil((i+1)*in/out))).
        """
        n, c, h, w = x.shape
        if (h, w) == (size, size):
            return x
        if size == 1:
            return self.global_avg_pool(x, name=name)
        if h % size == 0 and w % size == 0 and h == w:
            k = h // size
            return self.avg_pool(x, k, k, name=name)

        def bins(length: int) -> np.ndarray:
            m = np.zeros((size, length), dtype=np.float32)
            for i in range(size):
                start, end = (i * length) // size, -(-((i + 1) * length) // size)
                m[i, start:end] = 1.0 / (end - start)
            return m

        rows = self.weight(f"const.{name}.rows", bins(h), CONSTANT)  # (size, H)
        cols = self.weight(f"const.{name}.cols", bins(w).T.copy(), CONSTANT)  # (W, size)
        pooled_w = self._node("MatMul", [x.name, cols], f"{name}.cols")  # (N, C, H, size)
        out = self._node("MatMul", [rows, pooled_w], f"{name}.rows")  # (N, C, size, size)
        return Tensor(out, (n, c, size, size), x.second_moment)

    def flatten(self, x: Tensor, *, name: str = "flatten") -> Tensor:
        out = self._node("Flatten", [x.name], name, axis=1)
        return Tensor(out, (x.shape[0], math.prod(x.shape[1:])), x.second_moment)

    def linear(
        self, x: Tensor, out_features: int, *, name: str, gain: float = 1.0, bias: bool = True
    ) -> Tensor:
        """``nn.Linear`` as torch exports it: ``Gemm(x, W, b, transB=1)``, W is (out, in)."""
        n, fan_in = x.shape
        inputs = [
            x.name,
            self.weight(
                f"{name}.weight",
                self._uniform((out_features, fan_in), gain / (fan_in * x.second_moment)),
            ),
        ]
        if bias:
            inputs.append(self.weight(f"{name}.bias", self._uniform((out_features,), 1 / fan_in)))
        out = self._node("Gemm", inputs, name, transB=1)
        return Tensor(out, (n, out_features), gain)

    # ------------------------------------------------------------------ modern blocks
    def sigmoid(self, x: Tensor, *, name: str = "sigmoid") -> Tensor:
        return Tensor(self._node("Sigmoid", [x.name], name), x.shape, GATE_MOMENT)

    def hard_sigmoid(self, x: Tensor, *, name: str = "hardsigmoid") -> Tensor:
        """``nn.Hardsigmoid`` (relu6(x + 3) / 6) as torch exports it: ``HardSigmoid(alpha=1/6)``."""
        out = self._node("HardSigmoid", [x.name], name, alpha=1.0 / 6.0, beta=0.5)
        return Tensor(out, x.shape, GATE_MOMENT)

    def silu(self, x: Tensor, *, name: str = "silu") -> Tensor:
        """``nn.SiLU`` as torch exports it: ``Mul(x, Sigmoid(x))``."""
        gate = self._node("Sigmoid", [x.name], f"{name}.sigmoid")
        return Tensor(self._node("Mul", [x.name, gate], name), x.shape, x.second_moment / 2)

    def hard_swish(self, x: Tensor, *, name: str = "hardswish") -> Tensor:
        """``nn.Hardswish``: the ``HardSwish`` op (ONNX opset 14 and newer)."""
        return Tensor(self._node("HardSwish", [x.name], name), x.shape, x.second_moment / 2)

    def gelu(self, x: Tensor, *, name: str = "gelu") -> Tensor:
        """``nn.GELU()`` (the erf form) as torch exports it below opset 20:
        ``Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)``."""
        root2 = self._const_scalar("const.sqrt2", math.sqrt(2.0))
        one = self._const_scalar("const.one", 1.0)
        half = self._const_scalar("const.half", 0.5)
        erf = self._node("Erf", [self._node("Div", [x.name, root2], f"{name}.div")], f"{name}.erf")
        y = self._node("Mul", [x.name, self._node("Add", [erf, one], f"{name}.add")], f"{name}.mul")
        return Tensor(self._node("Mul", [y, half], name), x.shape, x.second_moment / 2)

    def mul(self, a: Tensor, b: Tensor, *, name: str = "mul") -> Tensor:
        """Broadcasting ``Mul`` (squeeze-and-excitation's ``x * scale``)."""
        shape = tuple(int(d) for d in np.broadcast_shapes(a.shape, b.shape))
        out = self._node("Mul", [a.name, b.name], name)
        return Tensor(out, shape, a.second_moment * b.second_moment)

    def transpose(self, x: Tensor, perm: Sequence[int], *, name: str = "transpose") -> Tensor:
        """``Tensor.permute(perm)``."""
        out = self._node("Transpose", [x.name], name, perm=list(perm))
        return Tensor(out, tuple(x.shape[p] for p in perm), x.second_moment)

    def layer_norm(self, x: Tensor, *, name: str, eps: float = 1e-5) -> Tensor:
        """``nn.LayerNorm`` over the last axis (``LayerNormalization``, opset 17): random
        ``{name}.weight`` ~ U(0.5, 1.5) and ``{name}.bias`` ~ U(-0.5, 0.5), like batch norm's."""
        c = x.shape[-1]
        gamma = self.weight(f"{name}.weight", self.rng.uniform(0.5, 1.5, c))
        beta = self.weight(f"{name}.bias", self.rng.uniform(-0.5, 0.5, c))
        out = self._node(
            "LayerNormalization", [x.name, gamma, beta], name, axis=-1, epsilon=float(eps)
        )
        return Tensor(out, x.shape, 1.2)  # E[gamma^2] + E[beta^2], as for batch norm

    def layer_scale(self, x: Tensor, *, name: str) -> Tensor:
        """``layer_scale * x`` with a (C, 1, 1) parameter ``name``, random U(0.5, 1.5) (not
        ConvNeXt's 1e-6 initial value, which would make every block an identity)."""
        scale = self.weight(name, self.rng.uniform(0.5, 1.5, (x.channels, 1, 1)))
        return Tensor(self._node("Mul", [scale, x.name], f"{name}.mul"), x.shape, x.second_moment)

    def channels_last_linear(
        self, x: Tensor, out_features: int, *, name: str, gain: float = 1.0
    ) -> Tensor:
        """``nn.Linear`` on the last axis of a (N, H, W, C) tensor: ``MatMul`` by the transposed
        (out, in) weight ``{name}.weight``, then ``Add`` of ``{name}.bias``."""
        fan_in = x.shape[-1]
        w = self.weight(
            f"{name}.weight",
            self._uniform((out_features, fan_in), gain / (fan_in * x.second_moment)),
        )
        bias = self.weight(f"{name}.bias", self._uniform((out_features,), 1 / fan_in))
        w_t = self._node("Transpose", [w], f"{name}.weight_t", perm=[1, 0])
        y = self._node("MatMul", [x.name, w_t], f"{name}.matmul")
        return Tensor(self._node("Add", [y, bias], name), (*x.shape[:-1], out_features), gain)

    # ------------------------------------------------------------------ shapes
    def _pool_shape(
        self, x: Tensor, kernel: int, stride: int, padding: int, ceil_mode: bool, name: str
    ) -> tuple[int, int]:
        _, _, h, w = x.shape
        oh = _pool_out(h, kernel, stride, 2 * padding, ceil_mode)
        ow = _pool_out(w, kernel, stride, 2 * padding, ceil_mode)
        if ceil_mode:  # torch lets a ceil-mode window hang over the edge, if one fits at all
            self._check_spatial(name, h, w, 1, 1, oh, ow, window=kernel)
        else:
            self._check_spatial(name, h + 2 * padding, w + 2 * padding, kernel, kernel, oh, ow)
        return oh, ow

    def _check_spatial(
        self, name: str, h: int, w: int, kh: int, kw: int, oh: int, ow: int, window: int = 0
    ) -> None:
        if h < kh or w < kw or oh < 1 or ow < 1:
            kh, kw = (window, window) if window else (kh, kw)
            raise ZooError(
                f"{self.graph_name}: layer {name} gets a {h}x{w} (padded) feature map, "
                f"smaller than its {kh}x{kw} window",
                hint="use a larger image_size",
            )

    # ------------------------------------------------------------------ result
    def finish(
        self, output: Tensor, *, opset: int = 17, output_name: str = "output"
    ) -> onnx.ModelProto:
        """The model with ``output`` renamed to ``output_name``, checked by ``onnx.checker``."""
        # Rename the producer's output so the graph output has the agreed name.
        for node in self.nodes:
            for i, o in enumerate(node.output):
                if o == output.name:
                    node.output[i] = output_name
        graph = helper.make_graph(
            self.nodes,
            self.graph_name,
            [helper.make_tensor_value_info(self.input.name, TensorProto.FLOAT, self.input.shape)],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, output.shape)],
            self.initializers,
        )
        opsets = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="ember.testing.zoo")
        # The oldest IR version that carries this opset, so older onnxruntimes load it too.
        model.ir_version = helper.find_min_ir_version_for(opsets)
        onnx.checker.check_model(model, full_check=True)
        return model


def parameter_count(model: onnx.ModelProto) -> int:
    """Number of trainable weights (what ``sum(p.numel() for p in m.parameters())`` counts).

    BN running statistics and helper constants are not counted.
    """
    return sum(math.prod(t.dims) for t in model.graph.initializer if t.doc_string == PARAMETER)
