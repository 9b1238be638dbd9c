"""Whole-model tuning: task extraction, trial split, and compiling with a tuning log."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.autotune import MeasureResult, append_records, apply_history_best, load_records
from ember.autotune.extract import extract_tasks, tune_model
from ember.dispatch.record import make_record
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var, const
from ember.ops import call


def _rand(*shape: int) -> np.ndarray:
    return (np.random.default_rng().standard_normal(shape) * 0.3).astype(np.float32)


def _model() -> tuple[Module, dict[str, np.ndarray]]:
    """Three same-shaped conv-relu layers (one kernel: weights are its arguments), then
    dense + bias."""
    x = Var("data", TensorType((1, 8, 12, 12), "float32"))
    w = const(_rand(8, 8, 3, 3))
    y = call("nn.relu", call("nn.conv2d", x, const(_rand(8, 8, 3, 3)), padding=(1, 1, 1, 1)))
    y = call("nn.relu", call("nn.conv2d", y, w, padding=(1, 1, 1, 1)))
    y = call("nn.relu", call("nn.conv2d", y, w, padding=(1, 1, 1, 1)))
    f = call("reshape", call("nn.global_avg_pool2d", y), newshape=(1, 8))
    d = call("nn.dense", f, const(_rand(16, 8)), const(_rand(16)))
    return Module.from_function(Function((x,), d)), {}


def test_extract_tasks_finds_distinct_tunable_kernels() -> None:
    mod, params = _model()
    tasks = extract_tasks(mod, params)
    calls = {t.describe[0]: c for t, c in tasks}
    assert calls == {"fused_nn_conv2d_nchwc_nn_relu": 3, "fused_nn_dense": 1}
    keys = {t.workload["key"] for t, _ in tasks}
    assert len(keys) == 2
    for task, _ in tasks:
        assert task.workload["template"] == "fused_kernel" and task.flop > 0
        assert len(task.config_space) > 1


def test_compile_applies_records_and_counts_untuned(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mod, params = _model()
    tasks = extract_tasks(mod, params)
    log = tmp_path / "model.jsonl"
    # Record the last config of each conv task as "fastest" (dispatch only reads records).
    convs = [t for t, _ in tasks if "conv" in t.describe[0]]
    for task in convs:
        cfg = task.config_space.get(len(task.config_space) - 1)
        append_records(log, [make_record(task, cfg, MeasureResult([1e-4]))])
    x = np.random.default_rng().standard_normal((1, 8, 12, 12)).astype(np.float32)
    want = interpret(mod, params, {"data": x})
    messages: list[str] = []
    with apply_history_best(log) as ctx:
        lib = ember.compile(mod, params, target="host", progress=messages.append)
    # The conv kernel is tuned; the dense (no record) keeps its default schedule, and so
    # do the layout transforms and the pooling kernel (no template covers them).
    assert len(ctx.tuned) == 1 and ctx.untuned == ["fused_nn_dense"]
    assert len(ctx.not_tunable) >= 2
    assert any(m.startswith("1 of 2 tunable kernels tuned") for m in messages), messages
    got = lib.load().run({"data": x})[0]
    ref = want[0] if isinstance(want, list | tuple) else want
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_tune_model_resumes_from_its_log(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mod, params = _model()
    log = tmp_path / "tune.jsonl"
    lines: list[str] = []
    tune_model(mod, params, n_trial=24, log=log, tuner="random", n_parallel=2, say=lines.append)
    first = list(load_records(log))
    assert len(first) >= 24 and all(r.error is None for r in first)
    tune_model(mod, params, n_trial=24, log=log, tuner="random", n_parallel=2, say=lines.append)
    assert len(list(load_records(log))) == len(first)  # every share already measured


def test_configs_of_a_kernel_share_its_compute_without_touching_it() -> None:
    from ember.dispatch import templates_fused

    mod, params = _model()
    conv = next(t for t, _ in extract_tasks(mod, params) if "conv" in t.describe[0])
    space = conv.config_space
    picks = [space.get(k) for k in np.random.default_rng().choice(len(space), 4, replace=False)]

    def lowered(cfg):  # type: ignore[no-untyped-def]
        s, args = conv.instantiate(cfg)
        return str(ember.lower(s, args))

    fresh = []
    for cfg in picks:
        templates_fused._computes.clear()
        fresh.append(lowered(cfg))
    # One compute for all configs, each schedule lowered after the others used it.
    shared = [lowered(cfg) for cfg in picks] + [lowered(picks[0])]
    assert shared == [*fresh, fresh[0]]
    func = conv.args[0]
    p1, o1 = templates_fused.kernel_compute(func)
    p2, o2 = templates_fused.kernel_compute(func)
    assert all(a is b for a, b in zip(p1 + o1, p2 + o2, strict=True))
