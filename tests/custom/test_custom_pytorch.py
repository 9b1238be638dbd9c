"""A PyTorch custom op (``torch.library``) through torch.export and TorchScript, converted
by the converter example_ops.py registers, checked against torch running the op."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import example_ops  # noqa: E402,F401 (registers the ember side of example::fancy_gelu)

import ember  # noqa: E402
from ember.errors import UnsupportedOpError  # noqa: E402
from ember.frontend import from_pytorch  # noqa: E402
from ember.graph import interpret  # noqa: E402

pytestmark = pytest.mark.frameworks


# The torch side of the op, as its author defines it: the eager kernel and the fake
# (shape-only) kernel torch.export traces with.
@torch.library.custom_op("example::fancy_gelu", mutates_args=())
def torch_fancy_gelu(x: torch.Tensor, alpha: float = 1.702) -> torch.Tensor:
    return x * torch.sigmoid(alpha * x)


@torch_fancy_gelu.register_fake
def _(x: torch.Tensor, alpha: float = 1.702) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("example::unregistered", mutates_args=())
def torch_unregistered(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@torch_unregistered.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Net(torch.nn.Module):
    """conv -> the custom op -> linear -> the custom op at its default alpha."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 6 * 6, 10)

    def forward(self, x: Any) -> Any:
        y = torch.ops.example.fancy_gelu(self.conv(x), 1.25)
        return torch.ops.example.fancy_gelu(self.fc(y.flatten(1)))


def _net() -> tuple[Any, Any]:
    torch.manual_seed(0)
    return Net().eval(), torch.randn(1, 3, 6, 6)


def _check(source: Any, net: Any, x: Any, compile_it: bool = False) -> None:
    mod, params = from_pytorch(source)
    ops = [line for line in str(mod).splitlines() if "example.fancy_gelu" in line]
    assert len(ops) == 2 and "alpha=1.25" in ops[0], ops
    fresh = torch.randn(x.shape)
    with torch.no_grad():
        want = net(fresh).numpy()
    (got,) = interpret(mod, params, {mod.main.params[0].name: fresh.numpy()})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    if compile_it:
        lib = ember.compile(mod, params)
        (compiled,) = lib.load().run({mod.main.params[0].name: fresh.numpy()})
        np.testing.assert_allclose(compiled, want, rtol=1e-4, atol=1e-5)


def test_torch_export_program_with_a_custom_op_imports_and_compiles() -> None:
    net, x = _net()
    _check(torch.export.export(net, (x,)), net, x, compile_it=True)


def test_torchscript_with_a_custom_op() -> None:
    net, x = _net()
    _check(torch.jit.trace(net, (x,)), net, x)


def test_a_torch_op_without_an_ember_converter_is_reported_by_its_own_name() -> None:
    class Uses(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.ops.example.unregistered(torch.relu(x)) + 1

    x = torch.randn(2, 3)
    for source in (torch.export.export(Uses(), (x,)), torch.jit.trace(Uses(), (x,))):
        with pytest.raises(UnsupportedOpError, match=r"example::unregistered: 1 node") as info:
            from_pytorch(source)
        assert "ember.custom.register_converter" in str(info.value)
