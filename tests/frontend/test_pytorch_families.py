"""torchvision / timm model families through both PyTorch import paths, against torch.

Each family (tests/frontend/pytorch_families.py, random weights) is imported from
its ``torch.export`` program and from its TorchScript trace; ember's reference
executor runs it on a fresh random input and must match torch's own output
(rtol 1e-4). The UNet and the transformer are also compiled with ``ember.compile``,
and the traced transformer is saved and loaded back: its token ids must stay int64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402
from ember.frontend.pytorch import from_pytorch  # noqa: E402
from ember.graph import interpret  # noqa: E402
from tests.frontend.pytorch_families import FAMILIES, build  # noqa: E402

pytestmark = pytest.mark.frameworks

RTOL = 1e-4


def fresh_like(example: torch.Tensor, seed: int) -> torch.Tensor:
    """A new input of the example's shape and dtype (token ids stay in the vocabulary)."""
    generator = torch.Generator().manual_seed(seed)
    if example.dtype.is_floating_point:
        return torch.randn(example.shape, generator=generator)
    high = int(example.max()) + 1
    return torch.randint(0, high, example.shape, generator=generator)


def torch_outputs(module, inputs) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*inputs)
    return [t.numpy() for t in (out if isinstance(out, tuple | list) else (out,))]


def assert_matches(got: list[np.ndarray], want: list[np.ndarray], what: str) -> None:
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what}: output {i}"
        atol = RTOL * max(float(np.abs(w).max()), 1.0)
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=atol, err_msg=f"{what}: output {i}")


def program_of(name: str, path: str):
    module, example = build(name)
    with torch.no_grad():
        if path == "export":
            return module, example, torch.export.export(module, example)
        return module, example, torch.jit.trace(module, example)


@pytest.mark.parametrize("path", ["export", "trace"])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_matches_torch(name: str, path: str) -> None:
    module, example, program = program_of(name, path)
    mod, params = from_pytorch(program)
    inputs = [fresh_like(t, seed=11) for t in example]
    feed = {v.name: t.numpy() for v, t in zip(mod.main.params, inputs)}
    assert_matches(interpret(mod, params, feed), torch_outputs(module, inputs), f"{name} {path}")


# the traced graphs compile to the same ops as the exported ones: slow-only, to save time
@pytest.mark.parametrize("path", ["export", pytest.param("trace", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["unet", "transformer"])
def test_family_compiled(name: str, path: str, tmp_path: Path) -> None:
    """The artifact matches torch and the reference executor."""
    module, example, program = program_of(name, path)
    mod, params = from_pytorch(program)
    artifact = ember.compile(mod, params, target="host").export(tmp_path / f"{name}.ember")
    model = ember.load(artifact)
    inputs = [fresh_like(t, seed=12) for t in example]
    feed = {v.name: t.numpy() for v, t in zip(mod.main.params, inputs)}
    want = torch_outputs(module, inputs)
    assert_matches(model.run(feed), want, f"{name} compiled vs torch")
    assert_matches(model.run(feed), interpret(mod, params, feed), f"{name} compiled vs interpret")


def test_saved_trace_keeps_integer_token_ids(tmp_path: Path) -> None:
    """A trace saved with torch.jit.save and imported from the file: ids stay int64."""
    module, example, traced = program_of("transformer", "trace")
    path = tmp_path / "transformer.pt"
    torch.jit.save(traced, str(path))
    inputs = [fresh_like(t, seed=13) for t in example]
    for source in (path, str(path)):
        mod, params = from_pytorch(source)  # no shape= needed: the trace recorded it
        (ids,) = mod.main.params[:1]
        assert (ids.type.dtype, ids.type.shape) == ("int64", tuple(example[0].shape))
        got = interpret(mod, params, {ids.name: inputs[0].numpy()})
        assert_matches(got, torch_outputs(module, inputs), "saved trace")
    mod, params = ember.frontend.load(path)  # the same through format detection
    assert mod.main.params[0].type.dtype == "int64"


def test_loaded_trace_without_dtypes_gets_a_hint(tmp_path: Path) -> None:
    """torch.jit.load drops the traced dtypes: the error says how to give them."""
    _, example, traced = program_of("transformer", "trace")
    path = tmp_path / "transformer.pt"
    torch.jit.save(traced, str(path))
    loaded = torch.jit.load(str(path))
    with pytest.raises(ember.errors.FrontendError, match=r"indices have dtype float32(.|\n)*int64"):
        from_pytorch(loaded, shape={"ids": tuple(example[0].shape)})
    mod, _ = from_pytorch(loaded, shape={"ids": tuple(example[0].shape)}, dtype={"ids": "int64"})
    assert mod.main.params[0].type.dtype == "int64"


def test_module_with_token_ids_needs_their_dtype() -> None:
    """An nn.Module given by shape= is exported on float32 inputs unless dtype= says otherwise."""
    module, example = build("transformer")
    shape = {"ids": tuple(example[0].shape)}
    with pytest.raises(ember.errors.FrontendError, match=r"dtype=\{'ids': 'int64'\}"):
        from_pytorch(module, shape=shape)
    mod, params = from_pytorch(module, shape=shape, dtype={"ids": "int64"})
    assert mod.main.params[0].type.dtype == "int64"
    inputs = [fresh_like(t, seed=15) for t in example]
    got = interpret(mod, params, {mod.main.params[0].name: inputs[0].numpy()})
    assert_matches(got, torch_outputs(module, inputs), "module with dtype=")


class RearrangeOps(torch.nn.Module):
    """The new converters the families reach only in one form, in their other forms."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.encoder = torch.nn.TransformerEncoderLayer(
            8,
            2,
            dim_feedforward=16,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )

    def forward(self, x, tokens):
        F = torch.nn.functional
        outs = [
            F.pixel_shuffle(x.reshape(2, 1, 8, 3, 5), 2),  # extra leading dims
            F.pixel_unshuffle(x[:, :, :2, :4], 2),
            F.channel_shuffle(x, 4),
            torch.roll(x, 7),  # no dims: the flattened tensor
            torch.roll(x, shifts=(-1, 2), dims=(-1, 1)),
            F.adaptive_avg_pool2d(x, (2, 4)),  # uneven windows: 3 -> 2, 5 -> 4
            F.adaptive_max_pool2d(x, (None, 2)),
            F.adaptive_avg_pool1d(x.flatten(2), 6),
            F.adaptive_max_pool1d(x.flatten(2), 5),
            F.interpolate(x, size=(7, 4), mode="nearest-exact"),
            F.interpolate(x, scale_factor=(2.0, 1.5), mode="bicubic", align_corners=False),
            F.interpolate(x, size=(5, 9), mode="bicubic", align_corners=True),
            F.mish(x),
            x.unflatten(1, (2, -1)),
        ]
        mask = torch.ones(5, 5, dtype=torch.bool).triu(1)  # True hides a key
        attended, weights = self.mha(tokens, tokens, tokens, attn_mask=mask)
        padding = torch.zeros(2, 5, dtype=torch.bool)
        padding[1, 3:] = True
        encoded = self.encoder(tokens, src_key_padding_mask=padding)
        return (*outs, attended, weights, encoded)


@pytest.mark.parametrize("path", ["export", "trace"])
def test_rearrange_and_fused_attention_ops(path: str) -> None:
    from tests.frontend.pytorch_testlib import randomize

    module = randomize(RearrangeOps(), seed=9)
    generator = torch.Generator().manual_seed(10)
    example = (
        torch.randn(2, 8, 3, 5, generator=generator),
        torch.randn(2, 5, 8, generator=generator),
    )
    with torch.no_grad():
        program = (
            torch.export.export(module, example)
            if path == "export"
            else torch.jit.trace(module, example, check_trace=False)
        )
    mod, params = from_pytorch(program)
    inputs = [fresh_like(t, seed=14) for t in example]
    feed = {v.name: t.numpy() for v, t in zip(mod.main.params, inputs)}
    assert_matches(interpret(mod, params, feed), torch_outputs(module, inputs), path)
