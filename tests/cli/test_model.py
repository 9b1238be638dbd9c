"""ember compile / run / bench on a small zoo model."""

from __future__ import annotations

import numpy as np
import pytest

from ember.cli import main
from ember.graph import interpret
from ember.testing import zoo

SMALL = zoo.SMALL["squeezenet1_1"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    onnx_path = tmp / "sq.onnx"
    zoo.to_onnx("squeezenet1_1", onnx_path, **SMALL)
    out = tmp / "sq.ember"
    shape = "x".join(map(str, zoo.input_shape("squeezenet1_1", **SMALL)))
    assert main(["compile", str(onnx_path), "--input", f"data:{shape}", "-o", str(out)]) == 0
    return onnx_path, out


def test_run_matches_reference(artifact, tmp_path, capsys):
    onnx_path, out = artifact
    x = zoo.random_input("squeezenet1_1", seed=3, **SMALL)
    np.save(tmp_path / "x.npy", x)
    assert (
        main(
            [
                "run",
                str(out),
                "--input",
                f"data={tmp_path / 'x.npy'}",
                "-o",
                str(tmp_path / "y.npz"),
            ]
        )
        == 0
    )
    assert "shape (1, 10) float32" in capsys.readouterr().out
    mod, params = zoo.get("squeezenet1_1", **SMALL)
    expected = interpret(mod, params, {"data": x})[0]
    got = np.load(tmp_path / "y.npz")
    np.testing.assert_allclose(got[got.files[0]], expected, rtol=1e-4, atol=1e-6)


def test_bench_prints_latency(artifact, capsys):
    _, out = artifact
    assert main(["bench", str(out), "--repeat", "5", "--threads", "1"]) == 0
    assert "median" in capsys.readouterr().out


def test_errors_are_one_line(artifact, tmp_path, capsys):
    onnx_path, out = artifact
    assert main(["compile", str(onnx_path), "--target", "tpu", "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "unknown target 'tpu'" in err and "Traceback" not in err
    assert main(["run", str(out), "--input", "data=missing.npy"]) == 2
    assert "cannot read input 'data'" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((1, 3, 8, 8), np.float32))
    assert main(["run", str(out), "--input", f"data={tmp_path / 'bad.npy'}"]) == 2
    assert "has shape (1, 3, 8, 8); the model was compiled for" in capsys.readouterr().err
