"""Tuning kernels anchored on the blocked ``nn.conv2d_nchwc``: the x86 register-tiled conv
schedule with its tile choices as knobs (fallback = the untuned schedule)."""

from __future__ import annotations

import numpy as np

import ember
from ember.autotune import apply_history_best, load_records
from ember.autotune.extract import extract_tasks, tune_model
from ember.dispatch.space import FallbackConfig
from ember.driver import kernel_graph
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var, const
from ember.graph.passes.fuse_ops import kernels
from ember.ops import call
from ember.target import Target
from ember.testing import zoo
from ember.topi.strategy import schedule_primitive

HOST = Target.parse("host")


def _rand(*shape: int) -> np.ndarray:
    return (np.random.default_rng().standard_normal(shape) * 0.3).astype(np.float32)


def _model() -> Module:
    """conv 16->16 at 14x14 + bias + relu, then a residual add + relu."""
    x = Var("data", TensorType((1, 16, 14, 14), "float32"))
    y = call("nn.conv2d", x, const(_rand(16, 16, 3, 3)), const(_rand(16)), padding=(1, 1, 1, 1))
    y = call("nn.relu", y)
    z = call("nn.conv2d", y, const(_rand(16, 16, 3, 3)), padding=(1, 1, 1, 1))
    return Module.from_function(Function((x,), call("nn.relu", call("add", z, x))))


def test_conv_tasks_enumerate_their_space_and_fallback_is_the_default_schedule() -> None:
    mod = _model()
    tasks = extract_tasks(mod, {})
    convs = [t for t, _ in tasks if "conv2d_nchwc" in t.describe[0]]
    assert len(convs) == 2
    _, fused = kernel_graph(mod, {}, Target.parse("host"))
    funcs = {f.name: f for f in (c.op for c in kernels(fused))}
    for task in convs:
        space = task.config_space
        assert {"oc_tile", "ow_tile", "reduce_order", "unroll_kw"} <= set(space.space_map)
        assert len(space) == np.prod(space.dims) > 4
        points = list(space)
        assert len(points) == len(space)
        assert len({repr(p.knob_values()) for p in points}) == len(space)
        # The fallback point lowers to exactly the schedule ember.compile uses untuned.
        func = funcs[task.describe[0]]
        s, args = schedule_primitive(func, HOST)
        want = str(ember.lower(s, args))
        s2, args2 = task.instantiate(FallbackConfig())
        assert str(ember.lower(s2, args2)) == want
        # The first point of the space is that default too; another point differs.
        s3, args3 = task.instantiate(space.get(0))
        assert str(ember.lower(s3, args3)) == want
        s4, args4 = task.instantiate(space.get(len(space) - 1))
        assert str(ember.lower(s4, args4)) != want


def test_tuned_conv_config_is_applied_by_compile(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mod = _model()
    log = tmp_path / "conv.jsonl"
    lines: list[str] = []
    tune_model(mod, {}, n_trial=8, log=log, tuner="random", n_parallel=1, say=lines.append)
    records = [r for r in load_records(log) if r.error is None]
    assert records, lines
    # The trials cover more than the default point of the conv tasks.
    assert len({repr(r.config) for r in records}) > 2
    x = np.random.default_rng().standard_normal((1, 16, 14, 14)).astype(np.float32)
    want = interpret(mod, {}, {"data": x})
    with apply_history_best(log) as ctx:
        lib = ember.compile(mod, {}, target="host")
    assert len(ctx.tuned) == 2, ctx.summary()
    got = lib.load().run({"data": x})[0]
    ref = want[0] if isinstance(want, list | tuple) else want
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_extract_tasks_finds_zoo_convs() -> None:
    mod, params = zoo.get("resnet18", **zoo.SMALL["resnet18"])
    names = [t.describe[0] for t, _ in extract_tasks(mod, params)]
    assert sum("conv2d_nchwc" in n for n in names) >= 10


def _winograd_gemm(alpha: int, c: int, o: int, tiles: int, block: int = 16) -> Function:
    v = Var("v", TensorType((alpha, alpha, c // block, tiles, block), "float32"))
    u = Var("u", TensorType((alpha, alpha, o // block, c // block, block, block), "float32"))
    body = call("nn.winograd_batch_matmul", v, u)
    return Function((v, u), body, {"primitive": True, "name": "gemm"})


def test_winograd_gemm_is_tunable_and_its_points_match_numpy() -> None:
    from ember.dispatch.templates_fused import is_tunable, kernel_task

    func = _winograd_gemm(alpha=6, c=32, o=64, tiles=13)
    assert is_tunable(func)
    task = kernel_task(func, HOST)
    space = task.config_space
    assert set(space.space_map) == {"oc_tile", "p_tile", "loop_order", "unroll_ic"}
    assert sorted(e.val for e in space.space_map["p_tile"].entities) == list(range(1, 14))
    s, args = schedule_primitive(func, HOST)
    assert str(ember.lower(*task.instantiate(space.get(0)))) == str(ember.lower(s, args))
    rng = np.random.default_rng()
    v = rng.standard_normal((6, 6, 2, 13, 16)).astype(np.float32)
    u = rng.standard_normal((6, 6, 4, 2, 16, 16)).astype(np.float32)
    want = np.einsum("eabpi,eaobic->eaopc", v, u)
    picks = [
        {"p_tile": 5, "loop_order": 1},  # a tail of 3 tiles, tiles outside the groups
        {"oc_tile": 1, "p_tile": 13, "unroll_ic": True},
    ]
    for pick in picks:
        values = {**space.get(0).knob_values(), **pick}
        s, args = task.instantiate(space.get(space.index_of(values)))
        mod = ember.build(s, args, target="host", name="gemm")
        out = np.zeros(want.shape, np.float32)
        mod(v, u, out)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_extract_tasks_includes_winograd_gemms() -> None:
    from ember.graph.passes.winograd import use_rule

    mod, params = zoo.get("resnet18", **zoo.SMALL["resnet18"])
    with use_rule(lambda *shape: 2):  # the small model's planes are below the rule's sizes
        names = [t.describe[0] for t, _ in extract_tasks(mod, params)]
    assert any("winograd_batch_matmul" in n for n in names), names
