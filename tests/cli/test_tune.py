"""``ember tune`` and ``ember compile --tuning-log`` from the command line."""

from __future__ import annotations

import numpy as np
import pytest

from ember.autotune import load_records
from ember.cli import main


def _onnx_model(path) -> None:  # type: ignore[no-untyped-def]
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng().standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.3, "w"
    )
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "conv_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 10, 10])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_tune_reports_a_missing_model(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["tune", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "log.jsonl")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_tune_then_compile_with_the_log(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "m.onnx"
    _onnx_model(model)
    log = tmp_path / "log.jsonl"
    args = ["--trials", "8", "--tuner", "random", "--parallel", "2", "-o", str(log)]
    assert main(["tune", str(model), *args]) == 0
    records = list(load_records(log))
    assert all(r.error is None for r in records)
    # 8 trials, plus the default schedule measured once beside them (and re-measurements
    # that confirm a new best against it, marked "repeat").
    trials = [r for r in records if not r.config.get("default") and not r.config.get("repeat")]
    assert len(trials) == 8
    assert sum(1 for r in records if r.config.get("default")) == 1
    out = tmp_path / "m.ember"
    assert main(["compile", str(model), "--tuning-log", str(log), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 of 1 tunable kernels tuned; 2 without a tuning template" in err


@pytest.mark.slow
def test_tune_for_minutes_prints_latency_before_and_after(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "m.onnx"
    _onnx_model(model)
    log = tmp_path / "log.jsonl"
    args = ["--minutes", "0.1", "--tuner", "random", "--parallel", "2", "-o", str(log)]
    assert main(["tune", str(model), *args]) == 0
    out = capsys.readouterr().out
    assert len(list(load_records(log))) >= 8  # at least one batch within the budget
    assert "model latency:" in out and "default schedules" in out and "tuned" in out
