"""The CLI's ``--custom-ops``: a user's module (a .py path or a module name) is imported
before the model, for every verb that imports one; ``ember run`` needs nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ember import custom
from ember.cli import main
from ember.errors import CustomOpError

CLI_OPS = '''
"""A user's module for the CLI test: the ONNX op cli.Triple, x * 3."""
from ember import custom, te

triple = custom.register_op("cli_test.triple", pattern="elemwise")
triple.type_rule(lambda types, attrs: types[0])
triple.reference(lambda inputs, attrs: inputs[0] * 3)


@custom.register_compute(triple)
def _(inputs, attrs, out_type):
    return te.compute(out_type.shape, lambda *i: inputs[0][i] * 3.0)


@custom.register_converter("onnx", "Triple", domain="cli.test")
def _(node):
    return node.call(triple, node.input(0))
'''


def _model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Triple", ["x"], ["y"], domain="cli.test")],
        "triple",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("cli.test", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)
    return path


def test_custom_ops_module_from_a_path_for_compile_then_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(tmp_path / "triple.onnx")
    assert main(["info", str(model)]) == 2  # without the module: unsupported, with a pointer
    err = capsys.readouterr().err
    assert "cli.test.Triple" in err and "ember.custom.register_converter" in err
    ops = tmp_path / "user" / "cli_test_ops.py"
    ops.parent.mkdir()
    ops.write_text(CLI_OPS)
    artifact = tmp_path / "triple.ember"
    try:
        assert main(["compile", str(model), "--custom-ops", str(ops), "-o", str(artifact)]) == 0
        assert sys.modules["cli_test_ops"].triple.library == "cli_test_ops"
        # a module name works once its folder is on sys.path (the path form put it there)
        assert main(["info", str(model), "--custom-ops", "cli_test_ops"]) == 0
    finally:
        sys.path.remove(str(ops.parent))
    x = np.random.default_rng().standard_normal((2, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npz"
    assert main(["run", str(artifact), "--data", f"x={tmp_path / 'x.npy'}", "-o", str(out)]) == 0
    with np.load(out) as got:
        np.testing.assert_allclose(got["y"], x * 3, rtol=1e-6)


def test_a_custom_ops_module_that_cannot_be_found_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(tmp_path / "triple.onnx")
    missing = tmp_path / "nowhere.py"
    assert main(["compile", str(model), "--custom-ops", str(missing), "-o", "x.ember"]) == 2
    assert f"custom op library {str(missing)!r} does not exist" in capsys.readouterr().err
    with pytest.raises(CustomOpError, match=r"'no_such_ops_module' cannot be imported"):
        custom.import_library("no_such_ops_module")
