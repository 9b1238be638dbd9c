"""PyTorch frontend: every error a user can hit, with the message it gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ember.errors import FrontendError, UnsupportedOpError  # noqa: E402
from ember.frontend.pytorch import (  # noqa: E402
    from_pytorch,
    is_exported_program,
    is_torchscript,
    supported_ops,
)

pytestmark = pytest.mark.frameworks


class Unsupported(torch.nn.Module):
    def forward(self, x):
        a = torch.cumprod(x, dim=1)
        values, _ = torch.cummax(x, dim=1)
        b = torch.cumprod(x * 2, dim=0)
        return a.sum() + values.sum() + b.relu().sum()


def test_unsupported_ops_listed_at_once_export() -> None:
    with pytest.raises(UnsupportedOpError, match="2 unsupported op") as info:
        from_pytorch(Unsupported(), shape={"x": (2, 4)})
    message = str(info.value)
    assert "aten::cumprod" in message and "2 node(s): 'cumprod', 'cumprod_1'" in message
    assert "aten::cummax" in message
    assert "ember.frontend.pytorch.supported_ops()" in message


def test_unsupported_ops_listed_at_once_torchscript() -> None:
    traced = torch.jit.trace(Unsupported(), (torch.rand(2, 4),))
    with pytest.raises(UnsupportedOpError, match="aten::cumprod: 2 node") as info:
        from_pytorch(traced)
    assert "aten::cummax" in str(info.value)


def test_supported_ops_list() -> None:
    ops = supported_ops()
    for op in ("conv2d", "convolution", "batch_norm", "linear", "max_pool2d", "cat", "view"):
        assert op in ops


def test_module_needs_shape() -> None:
    net = torch.nn.Linear(4, 2)
    with pytest.raises(FrontendError, match="needs example inputs or the shape.*input"):
        from_pytorch(net)


def test_unknown_input_name() -> None:
    net = torch.nn.Linear(4, 2)
    with pytest.raises(FrontendError, match="'data', which Linear.forward does not take.*'input'"):
        from_pytorch(net, shape={"data": (1, 4)})


def test_wrong_number_of_positional_shapes() -> None:
    with pytest.raises(FrontendError, match="takes 1 input.*2 shape"):
        from_pytorch(torch.nn.Linear(4, 2), shape=[(1, 4), (1, 4)])


def test_export_failure_is_frontend_error() -> None:
    class Bad(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.linear(x, torch.ones(3, 5))  # 4 != 5

    with pytest.raises(FrontendError, match="torch.export.export failed on Bad"):
        from_pytorch(Bad(), shape={"x": (1, 4)})


def test_static_program_other_shape() -> None:
    program = torch.export.export(torch.nn.Linear(4, 2), (torch.rand(1, 4),))
    with pytest.raises(FrontendError, match=r"static shape \(1, 4\), the spec gives \(3, 4\)"):
        from_pytorch(program, shape={"input": (3, 4)})


def test_training_mode_batch_norm() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
    program = torch.export.export(net, (torch.rand(2, 3, 8, 8),))
    with pytest.raises(FrontendError, match="training mode.*\n  hint: call model.eval"):
        from_pytorch(program)


def test_adaptive_pool_rank() -> None:
    # uneven windows are supported now (tests/frontend/test_pytorch_families.py); a
    # 1-D pool over a 4-D tensor is still an error
    traced = torch.jit.trace(torch.nn.AdaptiveAvgPool1d(2), (torch.rand(1, 2, 8),))
    with pytest.raises(FrontendError, match=r"shape \(1, 2, 8, 8\); expected 2 or 3 axes"):
        from_pytorch(traced, shape={"input": (1, 2, 8, 8)})  # the spec overrides the trace


def test_loaded_torchscript_needs_shape(tmp_path: Path) -> None:
    # a scripted module records no example inputs; a traced one does (and keeps its shape)
    path = tmp_path / "lin.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(path))
    assert is_torchscript(path) and not is_exported_program(path)
    with pytest.raises(FrontendError, match="does not record the shape of input 'input'"):
        from_pytorch(path)
    traced = tmp_path / "traced.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Linear(4, 2), (torch.rand(3, 4),)), str(traced))
    mod, _ = from_pytorch(traced)
    assert mod.main.params[0].type.shape == (3, 4)


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="does not exist"):
        from_pytorch(tmp_path / "missing.pt2")
    text = tmp_path / "model.pt"
    text.write_text("not a model")
    with pytest.raises(FrontendError, match="not a zip archive"):
        from_pytorch(text)
    state = tmp_path / "weights.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), str(state))
    with pytest.raises(FrontendError, match="neither a torch.export program nor TorchScript"):
        from_pytorch(state)
    broken = tmp_path / "broken.pt2"
    program = torch.export.export(torch.nn.Linear(2, 2), (torch.rand(1, 2),))
    torch.export.save(program, str(broken))
    data = bytearray(broken.read_bytes())
    broken.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(FrontendError):
        from_pytorch(broken)


def test_wrong_object() -> None:
    with pytest.raises(FrontendError, match="expects an nn.Module.*got int"):
        from_pytorch(42)


def test_import_ember_does_not_import_torch() -> None:
    code = (
        "import sys, ember, ember.frontend, ember.frontend.pytorch, ember.frontend.load; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
