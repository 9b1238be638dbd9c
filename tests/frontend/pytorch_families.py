"""Miniatures of the torchvision / timm families, written here (neither installs).

Each class copies the blocks of its family as the libraries write them (the same
ops in the same order, so torch.export and TorchScript emit the same ATen ops),
at a size that converts and runs in well under a second:

- ConvNeXt: depthwise 7x7 conv, permute to channels-last, LayerNorm, MLP with GELU,
  layer scale, permute back; the channels-first LayerNorm of its downsampling;
- Swin: patch partition, window attention with a relative position bias table and
  shifted windows (``torch.roll`` + attention mask), patch merging; as the original
  code writes it (mask in a buffer, ``AdaptiveAvgPool1d`` head) and as torchvision
  does (windows padded, mask built at run time with ``new_zeros``, ``x[..., 0::2]``);
- ViT / DeiT: patch embedding conv, class and distillation tokens, position
  embedding, ``nn.MultiheadAttention`` and ``scaled_dot_product_attention`` blocks;
- EfficientNet: MBConv with SiLU, squeeze-and-excitation (adaptive average pool,
  sigmoid), stochastic depth (identity at eval);
- MobileNetV3: hardswish, SE with hardsigmoid;
- RegNet: grouped 3x3 convs (group width), SE;
- UNet: encoder/decoder with max pool, transposed conv, bilinear and nearest
  upsampling (``F.interpolate``), ``cat`` skips and a ``pixel_shuffle`` head;
- a text transformer: token + position embeddings, a causal decoder block,
  ``nn.TransformerEncoderLayer``, tied output head.

``build(name)`` returns ``(module, example_inputs)`` with random weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tests.frontend.pytorch_testlib import randomize

# ----------------------------------------------------------------------------- ConvNeXt


class LayerNorm2d(nn.LayerNorm):
    """ConvNeXt's channels-first LayerNorm (timm's LayerNorm2d): permute, norm, permute."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ChannelsFirstLayerNorm(nn.Module):
    """The original ConvNeXt code's LayerNorm(data_format="channels_first")."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        x = (self.gamma * x).permute(0, 3, 1, 2)
        return shortcut + x  # stochastic depth is the identity at eval


class ConvNeXt(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), LayerNorm2d(8, eps=1e-6))
        self.stage1 = ConvNeXtBlock(8)
        self.down = nn.Sequential(ChannelsFirstLayerNorm(8), nn.Conv2d(8, 16, 2, stride=2))
        self.stage2 = ConvNeXtBlock(16)
        self.head_norm = nn.LayerNorm(16, eps=1e-6)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.head(self.head_norm(x.mean([-2, -1])))


# ----------------------------------------------------------------------------- Swin


def window_partition(x, window: int):
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window * window, channels)


def window_reverse(windows, window: int, height: int, width: int):
    channels = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, height, width, channels)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.window, self.heads = window, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) * (2 * window - 1), heads)
        )
        coords = torch.stack(
            torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        )
        flat = torch.flatten(coords, 1)
        relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
        relative[:, :, 0] += window - 1
        relative[:, :, 1] += window - 1
        relative[:, :, 0] *= 2 * window - 1
        self.register_buffer("relative_position_index", relative.sum(-1), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        windows, length, channels = x.shape
        qkv = self.qkv(x).reshape(windows, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(length, length, -1).permute(2, 0, 1).contiguous()
        attn = attn + bias.unsqueeze(0)
        if mask is not None:
            groups = mask.shape[0]
            attn = attn.view(windows // groups, groups, self.heads, length, length)
            attn = attn + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, length, length)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(windows, length, channels))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, resolution: int, window: int, shift: int) -> None:
        super().__init__()
        self.resolution, self.window, self.shift = resolution, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        mask = None
        if shift:
            image = torch.zeros(1, resolution, resolution, 1)
            spans = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            count = 0
            for h in spans:
                for w in spans:
                    image[:, h, w, :] = count
                    count += 1
            ids = window_partition(image, window).squeeze(-1)
            mask = ids.unsqueeze(1) - ids.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x):
        size, window = self.resolution, self.window
        batch, length, channels = x.shape
        shortcut = x
        x = self.norm1(x).view(batch, size, size, channels)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(window_partition(x, window), mask=self.attn_mask)
        x = window_reverse(windows.view(-1, window, window, channels), window, size, size)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + x.view(batch, length, channels)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim: int, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        batch, _, channels = x.shape
        x = x.view(batch, self.resolution, self.resolution, channels)
        parts = [x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :], x[:, 0::2, 1::2, :], x[:, 1::2, 1::2, :]]
        x = torch.cat(parts, -1).view(batch, -1, 4 * channels)
        return self.reduction(self.norm(x))


class Swin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 8, 2, stride=2)
        self.patch_norm = nn.LayerNorm(8)
        self.blocks = nn.Sequential(SwinBlock(8, 8, 4, 0), SwinBlock(8, 8, 4, 2))
        self.merge = PatchMerging(8, 8)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.patch_norm(self.patch_embed(x).flatten(2).transpose(1, 2))
        x = self.norm(self.merge(self.blocks(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool1d(x.transpose(1, 2), 1), 1))


def shifted_window_attention(x, block: WindowAttention, window: int, shift: int):
    """torchvision's functional Swin attention: pads to whole windows and builds the
    shifted-window mask at run time (``x.new_zeros`` filled slice by slice)."""
    batch, height, width, channels = x.shape
    pad_r = (window - width % window) % window
    pad_b = (window - height % window) % window
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_h, pad_w, _ = x.shape
    shift = 0 if window >= pad_h else shift
    if shift > 0:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    num_windows = (pad_h // window) * (pad_w // window)
    x = x.view(batch, pad_h // window, window, pad_w // window, window, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch * num_windows, window * window, channels)
    heads = block.heads
    qkv = F.linear(x, block.qkv.weight, block.qkv.bias)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * (channels // heads) ** -0.5
    attn = q.matmul(k.transpose(-2, -1))
    length = window * window
    bias = block.relative_position_bias_table[block.relative_position_index.flatten()]
    attn = attn + bias.view(length, length, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
    if shift > 0:
        attn_mask = x.new_zeros((pad_h, pad_w))
        slices = ((0, -window), (-window, -shift), (-shift, None))
        count = 0
        for h in slices:
            for w in slices:
                attn_mask[h[0] : h[1], w[0] : w[1]] = count
                count += 1
        attn_mask = attn_mask.view(pad_h // window, window, pad_w // window, window)
        attn_mask = attn_mask.permute(0, 2, 1, 3).reshape(num_windows, length)
        attn_mask = attn_mask.unsqueeze(1) - attn_mask.unsqueeze(2)
        attn_mask = attn_mask.masked_fill(attn_mask != 0, -100.0).masked_fill(attn_mask == 0, 0.0)
        attn = attn.view(x.size(0) // num_windows, num_windows, heads, x.size(1), x.size(1))
        attn = attn + attn_mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, x.size(1), x.size(1))
    attn = F.softmax(attn, dim=-1)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), channels)
    x = F.linear(x, block.proj.weight, block.proj.bias)
    x = x.view(batch, pad_h // window, pad_w // window, window, window, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, pad_h, pad_w, channels)
    if shift > 0:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    return x[:, :height, :width, :].contiguous()


class TorchvisionSwinBlock(nn.Module):
    def __init__(self, dim: int, window: int, shift: int) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = WindowAttention(dim, window, heads=2)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + shifted_window_attention(self.norm1(x), self.attn, self.window, self.shift)
        return x + self.mlp(self.norm2(x))


class TorchvisionPatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        height, width = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        parts = [x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :]]
        x = torch.cat([*parts, x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


class TorchvisionSwin(nn.Module):
    """torchvision's SwinTransformer layout: channels-last stages, windows padded (6 -> 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 2, stride=2), nn.LayerNorm(8))
        self.stage = nn.Sequential(TorchvisionSwinBlock(8, 4, 0), TorchvisionSwinBlock(8, 4, 2))
        self.merge = TorchvisionPatchMerging(8)
        self.norm = nn.LayerNorm(16)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem[0](x).permute(0, 2, 3, 1)
        x = self.norm(self.merge(self.stage(self.stem[1](x))))
        x = self.avgpool(x.permute(0, 3, 1, 2))
        return self.head(torch.flatten(x, 1))


# ----------------------------------------------------------------------------- ViT / DeiT


class ViTBlock(nn.Module):
    """torchvision's EncoderBlock (nn.MultiheadAttention) or timm's (fused SDPA)."""

    def __init__(self, dim: int, heads: int, fused: bool) -> None:
        super().__init__()
        self.fused, self.heads = fused, heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if fused:
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
        else:
            self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def attend(self, x):
        if not self.fused:
            return self.attention(x, x, x, need_weights=False)[0]
        batch, length, dim = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, length, dim))

    def forward(self, x):
        x = x + self.attend(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """ViT-style (class token) or DeiT-style (class + distillation tokens, two heads)."""

    def __init__(self, distilled: bool = False) -> None:
        super().__init__()
        dim, self.distilled = 16, distilled
        self.conv_proj = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if distilled else None
        tokens = 16 + (2 if distilled else 1)
        self.pos_embedding = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(ViTBlock(dim, 2, fused=False), ViTBlock(dim, 4, fused=True))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 10)
        self.head_dist = nn.Linear(dim, 10) if distilled else None

    def forward(self, x):
        batch = x.shape[0]
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        tokens = [self.cls_token.expand(batch, -1, -1)]
        if self.dist_token is not None:
            tokens.append(self.dist_token.expand(batch, -1, -1))
        x = torch.cat([*tokens, x], dim=1) + self.pos_embedding
        x = self.norm(self.blocks(x))
        if self.head_dist is None:
            return self.head(x[:, 0])
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


# ----------------------------------------------------------- EfficientNet, MobileNetV3, RegNet


class SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation: pool, fc, activation, fc, scale activation."""

    def __init__(self, channels: int, squeeze: int, act=nn.ReLU, gate=nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = act(), gate()

    def forward(self, x):
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


def conv_norm_act(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act=nn.SiLU):
    layers = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, kernel: int = 3) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            conv_norm_act(cin, hidden, 1),
            conv_norm_act(hidden, hidden, kernel, stride, groups=hidden),
            SqueezeExcitation(hidden, max(1, cin // 4), act=nn.SiLU),
            conv_norm_act(hidden, cout, 1, act=None),
        )

    def forward(self, x):
        out = self.block(x)
        return out + x if self.use_res else out


class EfficientNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_norm_act(3, 8, 3, 2),
            MBConv(8, 8, 1, 1),
            MBConv(8, 12, 2, 4, kernel=5),
            MBConv(12, 12, 1, 4),
            conv_norm_act(12, 32, 1),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class MobileNetV3Block(nn.Module):
    def __init__(self, cin: int, hidden: int, cout: int, kernel: int, stride: int, se: bool):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers = [
            conv_norm_act(cin, hidden, 1, act=nn.Hardswish),
            conv_norm_act(hidden, hidden, kernel, stride, groups=hidden, act=nn.Hardswish),
        ]
        if se:
            layers.append(SqueezeExcitation(hidden, hidden // 4, gate=nn.Hardsigmoid))
        layers.append(conv_norm_act(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        out = self.block(x)
        return out + x if self.use_res else out


class MobileNetV3(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_norm_act(3, 8, 3, 2, act=nn.Hardswish),
            MobileNetV3Block(8, 16, 8, 3, 1, se=True),
            MobileNetV3Block(8, 24, 12, 5, 2, se=True),
            MobileNetV3Block(12, 36, 12, 3, 1, se=False),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(12, 32), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(32, 10)
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class RegNetBlock(nn.Module):
    """RegNetY's ResBottleneckBlock: 1x1, grouped 3x3 (group width 4), SE, 1x1, projection."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int = 4) -> None:
        super().__init__()
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = conv_norm_act(cin, cout, 1, stride, act=None)
        self.f = nn.Sequential(
            conv_norm_act(cin, cout, 1, act=nn.ReLU),
            conv_norm_act(cout, cout, 3, stride, groups=cout // group_width, act=nn.ReLU),
            SqueezeExcitation(cout, max(1, cin // 4)),
            conv_norm_act(cout, cout, 1, act=None),
        )
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))


class RegNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_norm_act(3, 8, 3, 2, act=nn.ReLU)
        self.trunk = nn.Sequential(RegNetBlock(8, 16, 2), RegNetBlock(16, 16, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.trunk(self.stem(x)), (1, 1)).flatten(1))


# ----------------------------------------------------------------------------- UNet


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            conv_norm_act(cin, cout, 3, act=nn.ReLU), conv_norm_act(cout, cout, 3, act=nn.ReLU)
        )

    def forward(self, x):
        return self.net(x)


class UNet(nn.Module):
    """Encoder, bottleneck, three kinds of decoder upsampling and a pixel-shuffle head."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1, self.enc2 = DoubleConv(3, 8), DoubleConv(8, 16)
        self.bottleneck = DoubleConv(16, 16)
        self.up_transposed = nn.ConvTranspose2d(16, 16, 2, stride=2)
        self.dec2 = DoubleConv(32, 8)
        self.dec1 = DoubleConv(16, 8)
        self.head = nn.Conv2d(8, 3 * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.unshuffle = nn.PixelUnshuffle(2)

    def forward(self, x):
        e1 = self.enc1(x)  # 16x16
        e2 = self.enc2(F.max_pool2d(e1, 2))  # 8x8
        b = self.bottleneck(F.max_pool2d(e2, 2))  # 4x4
        b = self.up_transposed(b) + F.interpolate(b, scale_factor=2, mode="nearest")
        d2 = self.dec2(torch.cat([b, e2], dim=1))  # 8x8
        up = F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=True)
        up = up + F.interpolate(d2, scale_factor=2.0, mode="bilinear", align_corners=False)
        d1 = self.dec1(torch.cat([up, e1], dim=1))  # 16x16
        out = self.shuffle(self.head(d1))  # 3x32x32
        return out, self.unshuffle(out)  # and back to 12x16x16


# ----------------------------------------------------------------------------- text transformer


class CausalBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(dim)
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim)
        )

    def forward(self, x):
        batch, length, dim = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(dim, dim=2)
        q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(batch, length, dim))
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    """GPT-style decoder block + a BERT-style nn.TransformerEncoderLayer, tied LM head."""

    def __init__(self, vocab: int = 50, dim: int = 16, max_length: int = 12) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(max_length, dim)
        self.block = CausalBlock(dim, heads=2)
        self.encoder = nn.TransformerEncoderLayer(
            dim, 2, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=False
        )
        self.ln_f = nn.LayerNorm(dim)
        self.scale = math.sqrt(dim)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], dtype=torch.long).unsqueeze(0)
        x = self.wte(ids) * self.scale + self.wpe(positions)
        x = self.encoder(self.block(x))
        return F.linear(self.ln_f(x), self.wte.weight)  # weights tied to the embedding


# ----------------------------------------------------------------------------- registry


def build(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """``(module with random weights, example inputs)`` of the family ``name``."""
    generator = torch.Generator().manual_seed(len(name))
    image = torch.randn(1, 3, 32, 32, generator=generator)
    families = {
        "convnext": (ConvNeXt, (image,)),
        "swin": (Swin, (torch.randn(1, 3, 16, 16, generator=generator),)),
        "swin_torchvision": (TorchvisionSwin, (torch.randn(1, 3, 12, 12, generator=generator),)),
        "vit": (ViT, (image[:, :, :16, :16],)),
        "deit": (lambda: ViT(distilled=True), (image[:, :, :16, :16],)),
        "efficientnet": (EfficientNet, (image,)),
        "mobilenet_v3": (MobileNetV3, (image,)),
        "regnet": (RegNet, (image,)),
        "unet": (UNet, (image[:, :, :16, :16],)),
        "transformer": (TextTransformer, (torch.randint(0, 50, (2, 7), generator=generator),)),
    }
    cls, inputs = families[name]
    return randomize(cls(), seed=len(name) + 1), inputs


FAMILIES = [
    "convnext",
    "swin",
    "swin_torchvision",
    "vit",
    "deit",
    "efficientnet",
    "mobilenet_v3",
    "regnet",
    "unet",
    "transformer",
]
