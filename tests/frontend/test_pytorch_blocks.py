"""timm / torchvision / DETR blocks beyond the families, from PyTorch, against torch.

The blocks are written as timm and torchvision write them (neither installs
here): ConvNeXtV2's global response norm (``torch.norm``), SwinV2's cosine
attention (``F.normalize``), a relative-position attention in ``einsum``
(MaxViT/HaloNet style), BiT's weight-standardized conv (``var``), a style
transfer net (``InstanceNorm2d``, reflection padding), a conformer conv
module (``glu``, ``conv1d``), ECA channel attention, 1-D (transposed) convs,
DETR's sine position embedding (``cumsum``, ``~mask``), T2T-ViT's ``nn.Unfold``,
HaloNet's ``Tensor.unfold`` windows, a 1-D text CNN (pools, 1-D resizes) and a
top-2 mixture-of-experts router (``topk``, ``one_hot``).
Each is imported from its ``torch.export`` program and its TorchScript trace
and must match torch on a fresh input (rtol 1e-4).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402
from ember.errors import FrontendError  # noqa: E402
from ember.frontend.pytorch import from_pytorch, supported_ops  # noqa: E402
from ember.graph import interpret  # noqa: E402
from tests.frontend.pytorch_testlib import randomize  # noqa: E402

nn, F = torch.nn, torch.nn.functional

pytestmark = pytest.mark.frameworks

RTOL = 1e-4


class GRN(nn.Module):
    """ConvNeXtV2's global response normalization over channels-last (N, H, W, C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(y))))
        return x + y.permute(0, 3, 1, 2)


class CosineAttention(nn.Module):
    """SwinV2's scaled cosine attention with a learned, clamped logit scale."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(heads, 1, 1)))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class RelPosAttention(nn.Module):
    """Attention with a relative-position term along the width, all products in einsum."""

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.rel = nn.Parameter(torch.randn(width, width, dim))
        self.scale = dim**-0.5

    def forward(self, x):  # (B, H, W, C)
        b, h, w, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        content = torch.einsum("bhic,bhjc->bhij", q, k)
        position = torch.einsum("bhic,ijc->bhij", q, self.rel)
        attn = ((content + position) * self.scale).softmax(dim=-1)
        return (
            torch.einsum("bhij,bhjc->bhic", attn, v)
            + torch.einsum("...c,c", x, self.rel[0, 0])[..., None]
        )


class StdConv2d(nn.Conv2d):
    """BiT's (timm ResNetV2's) weight-standardized convolution, as timm first wrote it."""

    def forward(self, x):
        w = self.weight
        var, mean = torch.var_mean(w, dim=[1, 2, 3], keepdim=True, unbiased=False)
        w = (w - mean) / torch.sqrt(var + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class StyleNet(nn.Module):
    """A fast style-transfer net's pieces: reflection pad, conv, instance norm, flips."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.in1 = nn.InstanceNorm2d(8, affine=True)
        self.conv2 = StdConv2d(8, 8, 3, padding=1)
        self.in2 = nn.InstanceNorm2d(8)  # no affine, input statistics
        self.in3 = nn.InstanceNorm2d(8, affine=True, track_running_stats=True)  # running stats
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        y = F.relu(self.in1(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        y = self.in3(self.in2(self.conv2(y)))
        y = y + torch.flip(y, dims=[-1])  # a test-time horizontal flip, merged
        std = y.std(dim=(2, 3), keepdim=True)  # correction=1, the default
        return self.head(y / (std + 1.0))


class ConformerConv(nn.Module):
    """A conformer convolution module: pointwise conv, GLU over channels, depthwise conv."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, 3, padding=1, groups=dim)
        self.keep = torch.tensor([0, 2, 3, 5])  # a fixed token subset, as token pruning keeps

    def forward(self, x):  # (B, T, C)
        y = self.pointwise(self.norm(x).transpose(1, 2))
        y = F.silu(self.depthwise(F.glu(y, dim=1))).transpose(1, 2)
        return (x + y).index_select(1, self.keep)


class ECA(nn.Module):
    """timm's efficient channel attention (ECA-Net): a 1-D conv across pooled channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))
        return x * torch.sigmoid(y).view(x.shape[0], -1, 1, 1)


class AudioUpsampler(nn.Module):
    """Strided, dilated and "same"-padded 1-D convs, then a 1-D transposed conv back up."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv1d(4, 8, 4, stride=2, padding=1)
        self.mid = nn.Conv1d(8, 8, 3, padding="same", dilation=2, groups=2)
        self.up = nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return self.up(F.gelu(self.mid(self.down(x))))


class SinePositionEmbedding(nn.Module):
    """DETR's sine position embedding from a padding mask: ~mask, cumsum, sin/cos stacked."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        self.features = features
        self.proj = nn.Conv2d(2 * features, 8, 1)

    def forward(self, x):  # (N, C, H, W); the padding mask comes from the input here
        mask = x[:, 0] > 1.0
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        dim_t = torch.arange(self.features, dtype=torch.float32)
        dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.features)
        pos_x, pos_y = x_embed[:, :, :, None] / dim_t, y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4)
        pos = torch.cat((pos_y.flatten(3), pos_x.flatten(3)), dim=3).permute(0, 3, 1, 2)
        keep = (mask & (x[:, 1] > 0)) | ~(x[:, 2] < 2.0)
        return self.proj(pos) * keep[:, None].float() + x.sum(1, keepdim=True)


class TokensToToken(nn.Module):
    """T2T-ViT's soft split: nn.Unfold windows become tokens, then a linear embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.split = nn.Unfold(kernel_size=3, stride=2, padding=1)
        self.embed = nn.Linear(3 * 9, 16)

    def forward(self, x):
        return self.embed(self.split(x).transpose(1, 2))


class HaloAttention(nn.Module):
    """HaloNet-style local attention: ``Tensor.unfold`` windows with a halo as the keys."""

    def __init__(self, dim: int = 8, block: int = 2, halo: int = 1) -> None:
        super().__init__()
        self.block, self.halo = block, halo
        self.q, self.kv = nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        size = self.block + 2 * self.halo
        q = self.q(x).reshape(b, c, h // self.block, self.block, w // self.block, self.block)
        q = q.permute(0, 2, 4, 3, 5, 1).reshape(b, -1, self.block**2, c)
        kv = F.pad(self.kv(x), [self.halo] * 4)
        kv = kv.unfold(2, size, self.block).unfold(3, size, self.block)  # b, 2c, nh, nw, s, s
        kv = kv.reshape(b, 2 * c, -1, size * size).permute(0, 2, 3, 1)
        k, v = kv.split(c, dim=-1)
        out = (q @ k.transpose(-1, -2) * c**-0.5).softmax(-1) @ v
        return out.reshape(b, h // self.block, w // self.block, self.block, self.block, c)


class TextCNN(nn.Module):
    """A 1-D conv net over a sequence: max/avg pools, linear and nearest upsampling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.pool = nn.MaxPool1d(2)

    def forward(self, x):
        y = self.pool(F.relu(self.conv(x)))
        y = y + F.avg_pool1d(y, 3, 1, 1, count_include_pad=False)
        up = F.interpolate(y, scale_factor=2, mode="linear") + F.interpolate(y, size=x.shape[-1])
        return torch.cat((up, F.max_pool1d(up, 3, 2, 1, ceil_mode=True)), dim=-1)


class MoERouter(nn.Module):
    """A top-2 mixture-of-experts layer (V-MoE style): topk gate, one_hot dispatch."""

    def __init__(self, dim: int = 8, experts: int = 4) -> None:
        super().__init__()
        self.experts = experts
        self.gate = nn.Linear(dim, experts)
        self.mlps = nn.ModuleList(nn.Linear(dim, dim) for _ in range(experts))

    def forward(self, x):  # (B, T, C)
        weights, chosen = self.gate(x).topk(2, dim=-1)
        weights = weights.softmax(-1)
        dispatch = (F.one_hot(chosen, self.experts) * weights[..., None]).sum(-2)
        outputs = torch.stack([mlp(x) for mlp in self.mlps], dim=-2)  # (B, T, E, C)
        return (dispatch[..., None] * outputs).sum(-2), chosen


BLOCKS = {
    "convnextv2": (lambda: ConvNeXtV2Block(8), (1, 8, 6, 6)),
    "swinv2_attention": (lambda: CosineAttention(16, 2), (2, 9, 16)),
    "relpos_einsum": (lambda: RelPosAttention(8, 5), (2, 3, 5, 8)),
    "style_instance_norm": (StyleNet, (1, 3, 10, 10)),
    "conformer_glu": (lambda: ConformerConv(8), (2, 6, 8)),
    "eca_conv1d": (ECA, (2, 8, 4, 4)),
    "audio_conv1d": (AudioUpsampler, (2, 4, 16)),
    "detr_position": (SinePositionEmbedding, (1, 3, 5, 6)),
    "t2t_unfold": (TokensToToken, (1, 3, 9, 8)),
    "halo_unfold": (HaloAttention, (1, 8, 4, 6)),
    "text_cnn_1d": (TextCNN, (2, 4, 12)),
    "moe_topk": (MoERouter, (2, 6, 8)),
}


def imported(name: str, path: str):
    build, shape = BLOCKS[name]
    module = randomize(build(), seed=len(name))
    example = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        program = (
            torch.export.export(module, (example,))
            if path == "export"
            else torch.jit.trace(module, (example,), check_trace=False)
        )
    mod, params = from_pytorch(program)
    fresh = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = module(fresh)
    want = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
    return mod, params, {mod.main.params[0].name: fresh.numpy()}, want


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, what
    atol = RTOL * max(float(np.abs(want).max()), 1.0)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=what)


@pytest.mark.parametrize("path", ["export", "trace"])
@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_matches_torch(name: str, path: str) -> None:
    mod, params, feed, want = imported(name, path)
    got = interpret(mod, params, feed)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, f"{name} {path} output {i}")


def test_compiled(tmp_path: Path) -> None:
    """The compositions compile: einsum's matmuls, instance norm, cumsum and masks."""
    for name in ("relpos_einsum", "style_instance_norm", "detr_position"):
        mod, params, feed, want = imported(name, "export")
        model = ember.load(ember.compile(mod, params, target="host").export(tmp_path / name))
        assert_close(model.run(feed)[0], want[0], f"{name} compiled")


class Forms(nn.Module):
    """The overloads and options the blocks leave alone."""

    def forward(self, x):  # (2, 5, 8)
        return (
            torch.linalg.vector_norm(x, float("inf"), dim=-1),
            torch.linalg.vector_norm(x, -float("inf"), dim=(0, 2)),
            torch.linalg.vector_norm(x.round(), 0, dim=1),
            torch.round(x, decimals=1),
            x.norm(3, -1, keepdim=True),
            torch.norm(x, "fro", dim=(1, 2)),
            torch.norm(x),
            F.normalize(x, p=1, dim=1),
            x.var(),
            x.std(unbiased=False),
            torch.var(x, dim=(0, 2), correction=0),
            torch.std(x, dim=1, correction=2, keepdim=True),
            *torch.std_mean(x, dim=-1),
            x.flip((0, 1)),
            torch.fliplr(x[0]),
            torch.flipud(x[1]),
            x.index_select(-1, torch.tensor([7, 0, 0, 3])),
            F.glu(x, -1),
            torch.einsum("i,j->ij", x[0, 0], x[1, 1]),  # outer product
            torch.einsum("bij->jbi", x),  # a transpose
            torch.einsum("bij,bkj->bk", x, x),  # a summed-out index
            torch.einsum("bij,bjk", x, x.transpose(1, 2)),  # implicit output
            torch.einsum("bi,bj,bk->bijk", x[:, 0], x[:, 1], x[:, 2, :3]),  # three operands
            torch.einsum("...ij->...", x),
            x.cumsum(1),
            (x > 0).cumsum(-1),  # int64, as torch sums bools
            ~(x > 0).long(),
            F.unfold(x[:, None], (2, 3), dilation=(2, 1), stride=(1, 2)),
        )


class MathForms(nn.Module):
    """Elementwise math composed of a few ember ops, on floats and on integers."""

    def forward(self, x):  # (2, 5, 8)
        ints = (x * 10).long()
        return (
            torch.sign(x) * torch.log2(x.abs() + 1.0) + torch.log10(x.abs() + 1.0),
            torch.expm1(x) + F.logsigmoid(x) + F.celu(x, 0.7),
            F.hardshrink(x) + F.softshrink(x, 0.3),
            torch.addcmul(x, x, x, value=0.5) + torch.addcdiv(x, x, x.abs() + 1),
            torch.floor_divide(x, 0.3) + torch.remainder(x, 0.7) + torch.fmod(x, 0.6),
            ints // 3 + ints % 3 + torch.div(ints, -4, rounding_mode="floor"),
            torch.remainder(7, ints.abs() + 1),
            torch.tril(x) + torch.triu(x, 1) + torch.tril(x, -2),
            torch.triu(x > 0),
            x.unfold(-1, 3, 2),
            torch.gather(x, 1, torch.tensor([[[0, 4, 1]], [[3, 3, 2]]]).expand(2, 2, 3)),
            torch.gather(x, -1, x.argmax(-1, keepdim=True)),  # a computed index
            torch.nan_to_num(torch.log(x)) + torch.nan_to_num(1 / (x * 0), 1.0, 2.0, -3.0),
        )


class SelectForms(nn.Module):
    """topk, sort and argsort in their overloads (random floats: no ties, so indices match)."""

    def forward(self, x):  # (2, 5, 8)
        return (
            *torch.topk(x, 3, dim=-1),
            *torch.topk(x, 2, dim=1, largest=False),
            *x.topk(1),
            *torch.sort(x, dim=1),
            *torch.sort(x, descending=True),
            *torch.sort(x, stable=True, dim=0),
            x.argsort(-1, descending=True),
            torch.argsort(x, dim=1),
            *torch.topk((x * 1000).long(), 3),
            F.one_hot(x.argmax(-1), 8),
        )


@pytest.mark.parametrize(
    "module_type", [Forms, MathForms, SelectForms], ids=["forms", "math", "select"]
)
@pytest.mark.parametrize("path", ["export", "trace"])
def test_forms_match_torch(path: str, module_type: type) -> None:
    example = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(3)) * 2
    module = module_type()
    with torch.no_grad():
        program = (
            torch.export.export(module, (example,))
            if path == "export"
            else torch.jit.trace(module, (example,), check_trace=False)
        )
        mod, params = from_pytorch(program)
        fresh = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(4)) * 2
        want = [t.numpy() for t in module(fresh)]
    got = interpret(mod, params, {mod.main.params[0].name: fresh.numpy()})
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, f"{path} output {i}")


def test_topk_with_infinities_and_ties() -> None:
    """-inf entries still rank above the positions already taken; tied values come out
    in order (torch does not fix the order of tied indices, so only values are compared)."""

    class Ties(nn.Module):
        def forward(self, x):
            masked = torch.where(x > 0.5, -float("inf"), x)
            return torch.topk(masked, 8)[0], torch.sort(x.round(), stable=True)

    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(5))
    mod, params = from_pytorch(torch.export.export(Ties(), (x,)))
    values, rounded, rounded_order = interpret(mod, params, {mod.main.params[0].name: x.numpy()})
    want_values, (want_rounded, want_order) = Ties()(x)
    np.testing.assert_array_equal(values, want_values.numpy())
    np.testing.assert_array_equal(rounded, want_rounded.numpy())
    np.testing.assert_array_equal(rounded_order, want_order.numpy())  # stable: first first


def test_supported_and_errors() -> None:
    ops = set(supported_ops())
    assert {"linalg_vector_norm", "norm", "var", "std", "var_mean", "std_mean"} <= ops
    assert {"instance_norm", "einsum", "glu", "flip", "index_select"} <= ops
    assert {"conv1d", "cumsum", "im2col", "bitwise_not", "bitwise_and", "round"} <= ops
    assert {"unfold", "log2", "floor_divide", "remainder", "tril", "max_pool1d"} <= ops
    assert {"avg_pool1d", "upsample_linear1d", "upsample_nearest1d", "celu", "expm1"} <= ops
    assert {"gather", "nan_to_num", "topk", "sort", "argsort", "one_hot"} <= ops

    class Diagonal(nn.Module):
        def forward(self, x):
            return torch.einsum("ii->i", x)

    class Broadcast(nn.Module):
        def forward(self, x):
            return torch.einsum("ij,ij->ij", x, x[:1])

    cases = [
        (Diagonal(), (3, 3), r"aten::einsum\): einsum 'ii->i': repeated index in 'ii'"),
        (Broadcast(), (3, 4), "index 'i' has sizes 3 and 1"),
    ]
    for module, shape, message in cases:
        program = torch.export.export(module, (torch.randn(shape),))
        with pytest.raises(FrontendError, match=message):
            from_pytorch(program)

    class LongSort(nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=-1)[0]

    class OneHotUnsized(nn.Module):
        def forward(self, x):
            return F.one_hot(x.argmax(-1))

    traced_cases = [
        (LongSort(), (2, 100), r"aten::sort\): sort of 100 entries .* up to 64"),
        (OneHotUnsized(), (2, 5), "one_hot without num_classes depends on the input's values"),
    ]
    for module, shape, message in traced_cases:
        traced = torch.jit.trace(module, (torch.randn(shape),), check_trace=False)
        with pytest.raises(FrontendError, match=message):
            from_pytorch(traced)
