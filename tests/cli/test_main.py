"""The ``ember`` command line: info, run-reference, and clean errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from ember import cli
from ember.cli.common import random_input
from ember.frontend import from_onnx
from ember.graph import interpret
from tests.frontend.onnx_testlib import make_model, random_array


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    """A small conv -> relu -> global pool -> flatten -> dense model with a dynamic batch."""
    rng = np.random.default_rng()
    inits = {"w": random_array(rng, (4, 3, 3, 3)), "fc": random_array(rng, (5, 4))}
    nodes = [
        helper.make_node("Conv", ["data", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1),
    ]
    model = make_model(nodes, {"data": (("N", 3, 8, 8), "float32")}, ["logits", "label"], inits)
    path = tmp_path / "net.onnx"
    onnx.save(model, str(path))
    return path


def test_info_prints_summary(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", str(model_path), "--input", '{"data": [2, 3, 8, 8]}']) == 0
    out = capsys.readouterr().out
    assert "data: Tensor[(2, 3, 8, 8), float32]" in out
    assert "nn.conv2d" in out and "FLOPs" in out
    assert "parameters: 128" in out  # 4*3*3*3 + 5*4


def test_info_graph_flag_prints_ir(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", str(model_path), "-i", "data:1x3x8x8", "--graph"]) == 0
    out = capsys.readouterr().out
    assert "def @main" in out and "nn.dense" in out


def test_run_reference_random_inputs_are_seeded(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_a, out_b = tmp_path / "a.npz", tmp_path / "b.npz"
    spec = "data:2x3x8x8"
    assert (
        cli.main(["run-reference", str(model_path), "-i", spec, "--seed", "7", "-o", str(out_a)])
        == 0
    )
    text = capsys.readouterr().out
    assert "output logits: shape (2, 5) float32" in text
    assert "output label: shape (2, 1) int64" in text
    assert (
        cli.main(["run-reference", str(model_path), "-i", spec, "--seed", "7", "-o", str(out_b)])
        == 0
    )
    a, b = np.load(out_a), np.load(out_b)
    assert sorted(a.files) == ["label", "logits"]
    np.testing.assert_array_equal(a["logits"], b["logits"])
    # The same random input, fed through the Python API, gives the same outputs.
    x = random_input((2, 3, 8, 8), "float32", np.random.default_rng(7))
    mod, params = from_onnx(model_path, shape={"data": (2, 3, 8, 8)})
    np.testing.assert_allclose(interpret(mod, params, {"data": x})[0], a["logits"], rtol=1e-6)


def test_run_reference_with_given_data(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng().standard_normal((1, 3, 8, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "o.npz"
    argv = [
        "run-reference",
        str(model_path),
        "-i",
        "data:1x3x8x8",
        "--data",
        f"data={tmp_path / 'x.npy'}",
        "-o",
        str(out),
    ]
    assert cli.main(argv) == 0
    assert "x.npy" in capsys.readouterr().out
    mod, params = from_onnx(model_path, shape={"data": (1, 3, 8, 8)})
    np.testing.assert_allclose(
        np.load(out)["logits"], interpret(mod, params, {"data": x})[0], rtol=1e-6
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "{model}"], r"input 'data' has a dynamic dimension 0 \('N'\)"),
        (["info", "{model}", "-i", "data:1x3x8"], "has rank 4"),
        (["info", "{model}", "-i", "data:1xAx8x8"], "is not dims joined by 'x'"),
        (["info", "{model}", "-i", '[{{"data": [1, 3'], "is not valid JSON"),
        (["info", "{tmp}/missing.onnx"], "does not exist"),
        (["info", "{tmp}/model.xyz"], "cannot tell which framework"),
        (
            ["run-reference", "{model}", "-i", "data:1x3x8x8", "--data", "data"],
            "is not NAME=FILE.npy",
        ),
        (["run-reference", "{model}", "-i", "data:1x3x8x8", "--data", "x=a.npy"], "does not exist"),
        (
            ["run-reference", "{model}", "-i", "data:1x3x8x8", "--data", "img={tmp}/a.npy"],
            "no input called",
        ),
        (
            ["run-reference", "{model}", "-i", "data:1x3x8x8", "--data", "data={tmp}/bad.npy"],
            r"shape \(2, 2\), expected \(1, 3, 8, 8\)",
        ),
    ],
)
def test_errors_are_one_clean_message(
    argv: list[str],
    message: str,
    model_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "model.xyz").write_text("?")
    np.save(tmp_path / "a.npy", np.zeros(3, "float32"))
    np.save(tmp_path / "bad.npy", np.zeros((2, 2), "float32"))
    argv = [a.format(model=model_path, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == cli.EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.startswith(f"ember {argv[0]}: error: ")
    assert re.search(message, captured.err), captured.err


def test_debug_shows_traceback(
    model_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from ember import config as config_module

    monkeypatch.setattr(
        config_module, "config", dataclasses.replace(config_module.config, debug=True)
    )
    assert cli.main(["info", str(model_path)]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "Traceback" in err and "dynamic dimension" in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USER_ERROR
    assert "run-reference" in capsys.readouterr().err


def test_python_dash_m_and_env_debug(model_path: Path) -> None:
    env = {**os.environ, "EMBER_DEBUG": ""}
    ok = subprocess.run(
        [sys.executable, "-m", "ember", "info", str(model_path), "-i", '{"data":[1,3,8,8]}'],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "nn.conv2d" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "ember", "info", str(model_path)],
        capture_output=True,
        text=True,
        env={**env, "EMBER_DEBUG": "1"},
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" in bad.stderr and "dynamic dimension" in bad.stderr
