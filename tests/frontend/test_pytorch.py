"""PyTorch frontend: CNN / MLP / attention nets through torch.export, .pt2 and TorchScript.

Each net (tests/frontend/pytorch_testlib.py, random weights) is converted three
ways: the ExportedProgram, the same program saved and loaded as ``.pt2``, and a
traced TorchScript module saved and loaded as ``.pt``. The interpreter's output
on a fresh random input is compared with torch's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ember.errors import FrontendError  # noqa: E402
from ember.frontend.pytorch import from_pytorch  # noqa: E402
from ember.graph import interpret  # noqa: E402
from tests.frontend.pytorch_testlib import MODEL_NAMES, build, exported  # noqa: E402

pytestmark = pytest.mark.frameworks


def check(
    module, input_shape, source, *, input_name: str = "x", rtol: float = 1e-4, **kwargs
) -> None:
    mod, params = from_pytorch(source, **kwargs)
    assert mod.main.params[0].name == input_name
    x = torch.randn(input_shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = module(x)
    expected = expected if isinstance(expected, tuple | list) else (expected,)
    outs = interpret(mod, params, {input_name: x.numpy()})
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected):
        np.testing.assert_allclose(got, want.numpy(), rtol=rtol, atol=rtol * 0.1)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_exported_program(name: str) -> None:
    module, shape, program = exported(name)
    check(module, shape, program)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_saved_pt2(name: str, tmp_path: Path) -> None:
    module, shape, program = exported(name)
    path = tmp_path / f"{name}.pt2"
    torch.export.save(program, str(path))
    check(module, shape, path)
    check(module, shape, str(path), shape={"x": list(shape)})  # a matching spec is fine


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torchscript(name: str, tmp_path: Path) -> None:
    module, shape = build(name)
    example = torch.rand(shape)
    with torch.no_grad():
        traced = torch.jit.trace(module, (example,))
    check(module, shape, traced)  # in memory: the trace records the input shape
    path = tmp_path / f"{name}.pt"
    torch.jit.save(traced, str(path))
    check(module, shape, path)  # the file keeps the traced shapes
    check(module, shape, path, shape={"x": shape})  # a matching spec is fine


@pytest.mark.slow
def test_full_size_resnet18(tmp_path: Path) -> None:
    module, shape = build("resnet18")
    check(module, shape, module, shape={"x": shape})
    path = tmp_path / "resnet18.pt"
    torch.jit.save(torch.jit.trace(module, (torch.rand(shape),)), str(path))
    check(module, shape, path, shape={"x": shape})


@pytest.mark.parametrize("name", ["resnet", "attention"])
def test_nn_module_with_shape(name: str) -> None:
    module, shape = build(name)
    check(module, shape, module, shape={"x": shape})
    check(module, shape, module, shape=[shape])
    check(module, shape, module, example_inputs=(torch.rand(shape),))


def test_nn_module_other_batch_size() -> None:
    module, shape = build("vgg")
    bigger = (3,) + shape[1:]
    check(module, bigger, module, shape=f"x:{'x'.join(map(str, bigger))}")


def test_weights_are_params_after_inputs() -> None:
    _, _, program = exported("resnet")
    mod, params = from_pytorch(program)
    names = [v.name for v in mod.main.params]
    assert names[0] == "x"
    assert set(names[1:]) == set(params)
    assert "stem.0.weight" in params and "layers.0.bn1.running_var" in params
    assert not any("num_batches_tracked" in n for n in params)


class OpsNet(torch.nn.Module):
    """Ops the model nets do not reach: resize, pads, slicing, reductions, arithmetic."""

    def __init__(self) -> None:
        super().__init__()
        self.deconv = torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)
        self.prelu = torch.nn.PReLU(4)
        self.conv_same = torch.nn.Conv2d(4, 4, 3, padding="same", dilation=2, groups=2)

    def forward(self, x):
        F = torch.nn.functional
        a = F.interpolate(x, scale_factor=2, mode="nearest")
        b = F.interpolate(x, size=(12, 10), mode="bilinear", align_corners=True)
        c = F.interpolate(x, size=(9, 9), mode="bilinear", align_corners=False)
        y = self.prelu(x) + F.hardsigmoid(x) * F.leaky_relu(x, 0.2) - F.elu(x, 0.5)
        y = y * F.hardtanh(x, -0.5, 0.5) + F.softplus(x, beta=2.0) + F.selu(x)
        y = F.pad(y, (1, 2, 0, 1), value=0.5)  # (1, 4, 7, 9)
        r = F.pad(x, (1, 1, 2, 2), mode="reflect") + F.pad(x, (1, 1, 2, 2), mode="replicate")
        z = self.conv_same(y)[:, :, 1:, ::2]  # (1, 4, 6, 5)
        s = y[0, 1:3].unsqueeze(0).squeeze(0)  # (2, 7, 9)
        parts = torch.split(s, [3, 4], dim=1)
        stats = torch.stack([p.amax(dim=(1, 2)) for p in parts] + [s.sum(dim=(1, 2))], dim=1)
        w = (x.clamp(min=-0.3) / 3 + 1).pow(2).expand(2, 4, 6, 8)
        q = torch.div(x * 7, 2, rounding_mode="floor") + torch.div(x * 7, 2, rounding_mode="trunc")
        pool = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True)
        up = self.deconv(x)
        logits = torch.where(x > 0, x, torch.zeros_like(x)).repeat(1, 2, 1, 1)
        return (a, b, c, r, z, stats, w.mean(0), q, pool, up, logits, 1.0 - x.sum(-1, keepdim=True))


def test_ops_net_all_paths(tmp_path: Path) -> None:
    module = OpsNet().eval()
    shape = (1, 4, 6, 8)
    check(module, shape, module, shape={"x": shape})
    with torch.no_grad():
        traced = torch.jit.trace(module, (torch.rand(shape),))
    check(module, shape, traced)
    program = torch.export.export(module, (torch.rand(shape),))
    check(module, shape, program.run_decompositions())  # the core ATen op set


@pytest.mark.parametrize("name", ["mobilenet_v2", "attention"])
def test_decomposed_core_aten(name: str) -> None:
    module, shape, program = exported(name)
    check(module, shape, program.run_decompositions())


@pytest.mark.parametrize("name", ["densenet", "attention"])
def test_dynamic_batch(name: str) -> None:
    module, shape = build(name)
    batch = torch.export.Dim("batch", min=1, max=64)
    example = torch.rand(shape)
    program = torch.export.export(module, (example,), dynamic_shapes={"x": {0: batch}})
    with pytest.raises(FrontendError, match="dynamic shape.*\n  hint: give it a static shape"):
        from_pytorch(program)
    bigger = (3,) + shape[1:]
    check(module, bigger, program, shape={"x": bigger})


def test_attention_mask_and_scale() -> None:
    class Masked(torch.nn.Module):
        def forward(self, q, k, v, mask):
            F = torch.nn.functional
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
            bias = torch.where(mask, 0.0, -1.0)
            return out + F.scaled_dot_product_attention(q, k, v, attn_mask=bias)

    rng = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 2, 4, 8, generator=rng) for _ in range(3))
    mask = torch.rand(4, 4, generator=rng) > 0.3
    mask[:, 0] = True  # every query sees at least one key
    module = Masked()
    mod, params = from_pytorch(module, example_inputs=(q, k, v, mask))
    got = interpret(
        mod, params, {"q": q.numpy(), "k": k.numpy(), "v": v.numpy(), "mask": mask.numpy()}
    )
    np.testing.assert_allclose(got[0], module(q, k, v, mask).numpy(), rtol=1e-4, atol=1e-5)


class SequenceOps(torch.nn.Module):
    """Embedding, masked_fill, max over a dim and group norm."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(11, 6)
        self.norm = torch.nn.GroupNorm(2, 6)

    def forward(self, tokens):
        h = self.embed(tokens)  # (2, 5, 6)
        scores = torch.matmul(h, h.transpose(1, 2))
        causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf")).softmax(-1)
        mixed = torch.matmul(scores, h)
        values, indices = mixed.max(dim=1)
        normed = self.norm(mixed.transpose(1, 2).unsqueeze(-1)).squeeze(-1)
        return values, indices, normed, torch.max(h), torch.square(h).min(dim=-1, keepdim=True)[0]


def test_sequence_ops() -> None:
    from tests.frontend.pytorch_testlib import randomize

    module = randomize(SequenceOps(), seed=5)
    tokens = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(4))
    for source in (
        torch.export.export(module, (tokens,)),
        torch.jit.trace(module, (tokens,)),
    ):
        mod, params = from_pytorch(source)
        outs = interpret(mod, params, {"tokens": tokens.numpy()})
        with torch.no_grad():
            expected = module(tokens)
        for got, want in zip(outs, expected):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
