"""Graph-level tuning: block plans in alter_layout, the DP, plan records, a tiny tuning run.

The DP is checked against brute force on random cost tables (chains, a residual DAG, and
the cost model of a real residual graph); plans are checked in the compiled graph and
against the reference executor; every plan error a user can make has a test.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import ember
from ember.autotune.graph_dp import LayoutProblem, brute_force, solve
from ember.autotune.graph_tuner import analyze, build_problem, conv_kernels, tune_graph
from ember.dispatch.context import apply_history_best
from ember.dispatch.graph_plan import GraphPlan, model_key, plan_blocks
from ember.dispatch.record import append_records, load_records
from ember.driver import kernel_graph
from ember.errors import AttrError
from ember.graph.interpreter import interpret
from ember.graph.ir import Call, Function, Module, TensorType, Var, const
from ember.graph.passes import optimize
from ember.graph.passes.alter_layout import alter_layout, conv_ids, plan_blocks_of
from ember.graph.visitor import post_order
from ember.ops import call
from ember.target import Target

HOST = Target.parse("host")

F = "float32"


def _w(rng: np.random.Generator, *shape: int):  # type: ignore[no-untyped-def]
    return const((rng.standard_normal(shape) * 0.3).astype(F))


def _resnet_ish(rng: np.random.Generator, hw: int = 8) -> Module:
    """conv(3->8) relu, conv(8->16) relu, conv(16->8) + residual, relu, dw conv, 1x1 -> gap."""
    x = Var("data", TensorType((1, 3, hw, hw)))
    a = call("nn.relu", call("nn.conv2d", x, _w(rng, 8, 3, 3, 3), _w(rng, 8), padding=1))
    b = call("nn.relu", call("nn.conv2d", a, _w(rng, 16, 8, 3, 3), _w(rng, 16), padding=1))
    c = call("nn.conv2d", b, _w(rng, 8, 16, 1, 1), _w(rng, 8), name="proj")
    d = call("nn.relu", call("add", c, a))
    e = call("nn.conv2d", d, _w(rng, 8, 1, 3, 3), groups=8, padding=1, name="dw")
    f = call("nn.conv2d", e, _w(rng, 16, 8, 1, 1), name="dw")  # repeated name: conv2d#4
    out = call("nn.global_avg_pool2d", f)
    return Module.from_function(Function((x,), out))


def _blocks_in(fused: Module) -> list[tuple[str, tuple[int, int]]]:
    """(node name, (data block, output block)) of every blocked conv of a fused module, in
    execution order."""
    found = []
    for k in post_order(fused.main.body):
        if isinstance(k, Call) and isinstance(k.op, Function):
            for n in post_order(k.op.body):
                if isinstance(n, Call) and getattr(n.op, "name", "") == "nn.conv2d_nchwc":
                    found.append((n.name, (n.args[0].type.shape[4], n.args[1].type.shape[5])))
    return found


# ----------------------------------------------------------------------------- the DP


def _random_problem(
    rng: np.random.Generator, nodes: list[str], edges: list[tuple[str, str]]
) -> LayoutProblem:
    pool = [(4, 4), (4, 8), (8, 8), (8, 16), (16, 16)]
    states = {
        n: [pool[i] for i in sorted(rng.choice(5, rng.integers(1, 5), replace=False))]
        for n in nodes
    }
    unary = {n: {s: float(rng.uniform(0, 10)) for s in states[n]} for n in nodes}
    problem = LayoutProblem(nodes, states, unary)
    for u, v in edges:
        table = {
            (a, b): 0.0 if a[1] == b[0] else float(rng.uniform(0, 8))
            for a in states[u]
            for b in states[v]
        }
        problem.add_pair(u, v, table)
    return problem


@pytest.mark.parametrize("seed", range(6))
def test_dp_is_optimal_on_chains(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nodes = [f"c{i}" for i in range(6)]
    problem = _random_problem(rng, nodes, list(itertools.pairwise(nodes)))
    _, best = brute_force(problem)
    assert problem.cost(solve(problem)) == pytest.approx(best)


@pytest.mark.parametrize("seed", range(6))
def test_dp_is_optimal_on_a_residual_dag(seed: int) -> None:
    # a -> b -> c -> add(c, a) -> d -> e -> add(e, add1) -> f, plus a branch b -> f.
    rng = np.random.default_rng(100 + seed)
    nodes = ["a", "b", "c", "d", "e", "f"]
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("d", "e"), ("c", "e")]
    edges += [("e", "f"), ("b", "f")]
    problem = _random_problem(rng, nodes, edges)
    _, best = brute_force(problem)
    assert problem.cost(solve(problem)) == pytest.approx(best)


def test_dp_fallback_stays_valid_when_the_frontier_is_capped() -> None:
    rng = np.random.default_rng(7)
    nodes = [f"c{i}" for i in range(6)]
    edges = [(u, v) for u, v in itertools.combinations(nodes, 2)]  # everything alive
    problem = _random_problem(rng, nodes, edges)
    _, best = brute_force(problem)
    approx = solve(problem, max_table=4)
    assert set(approx) == set(nodes)
    assert all(approx[n] in problem.states[n] for n in nodes)
    assert problem.cost(approx) >= best - 1e-9
    assert problem.cost(solve(problem)) == pytest.approx(best)


def test_cost_model_of_a_real_graph_is_solved_exactly() -> None:
    """analyze + build_problem on a residual graph, random costs: DP == brute force, and a
    conv input reading another block than its producer wrote is charged a transform."""
    rng = np.random.default_rng(3)
    opt = optimize(_resnet_ish(rng), {})
    ids = conv_ids(opt)
    states = {cid: plan_blocks_of(c) for c, cid in ids.items()}
    order = list(ids.values())
    uses = analyze(opt, ids, set(order))
    kinds = {(u.kind, u.source, u.consumer) for u in uses}
    assert ("operand", "conv2d#0", "proj") in kinds  # the residual add reads conv 0
    assert ("conv_input", None, "conv2d#0") in kinds  # the NCHW input
    assert ("nchw", "conv2d#4", None) in kinds  # global_avg_pool2d reads NCHW
    conv_cost = {(c, s): float(rng.uniform(1, 5)) for c in order for s in states[c]}
    t_cost: dict = {}

    def transform(t):  # type: ignore[no-untyped-def]
        return t_cost.setdefault(t, float(rng.uniform(0.5, 3)))

    problem = build_problem(order, states, lambda c, s: conv_cost[(c, s)], uses, transform)
    assert problem.cost({c: states[c][0] for c in order}) > 0
    _, best = brute_force(problem)
    assert problem.cost(solve(problem)) == pytest.approx(best)
    # Consistent blocks cost only the kernels + input/output transforms; a mismatch more.
    same = {"conv2d#0": (3, 8), "conv2d#1": (8, 8), "proj": (8, 8), "conv2d#3": (8, 8)}
    same["conv2d#4"] = (8, 8)
    other = dict(same, **{"conv2d#1": (4, 8)})
    extra = problem.cost(other) - problem.cost(same)
    base = conv_cost[("conv2d#1", (4, 8))] - conv_cost[("conv2d#1", (8, 8))]
    assert extra == pytest.approx(base + t_cost[((1, 8, 8, 8), 8, 4)])


# ----------------------------------------------------------------------------- plans


def test_conv_ids_use_unique_names_else_the_index() -> None:
    opt = optimize(_resnet_ish(np.random.default_rng(0)), {})
    assert list(conv_ids(opt).values()) == ["conv2d#0", "conv2d#1", "proj", "conv2d#3", "conv2d#4"]


def test_plan_is_applied_and_matches_the_reference() -> None:
    rng = np.random.default_rng()
    mod = _resnet_ish(rng)
    plan = {
        "conv2d#0": (3, 4),
        "conv2d#1": (8, 16),
        "proj": (4, 8),
        "conv2d#3": (4, 4),
        "conv2d#4": (8, 16),
    }
    _, fused = kernel_graph(mod, {}, HOST, graph_plan=plan)
    assert [b for _, b in _blocks_in(fused)] == list(plan.values())
    new = alter_layout(optimize(mod, {}), HOST, blocks=plan)
    moves = [
        (n.attrs.src_layout, n.attrs.dst_layout)
        for n in post_order(new.main.body)
        if isinstance(n, Call) and n.op.name == "layout_transform"
    ]
    # Blocks change in one step (NCHW4c -> NCHW8c ...); NCHW only at the input and output.
    assert ("NCHW16c", "NCHW4c") in moves and ("NCHW4c", "NCHW8c") in moves
    assert [m for m in moves if "NCHW" in m] == [("NCHW", "NCHW3c"), ("NCHW16c", "NCHW")]
    x = rng.standard_normal((1, 3, 8, 8)).astype(F)
    (want,) = interpret(mod, {}, {"data": x})
    out = ember.compile(mod, {}, "host", graph_plan=plan).load().run({"data": x})[0]
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_no_plan_keeps_todays_output() -> None:
    opt = optimize(_resnet_ish(np.random.default_rng(0)), {})
    base = alter_layout(opt, HOST)
    assert alter_layout(opt, HOST, blocks={}) is not None
    assert str(alter_layout(opt, HOST, blocks={})) == str(base)
    assert str(alter_layout(opt, HOST, blocks=None)) == str(base)


@pytest.mark.parametrize(
    ("plan", "match"),
    [
        ({"nope": (8, 8)}, r"(?s)names convs the module does not have: \['nope'\].*conv2d#0"),
        ({"conv2d#1": (8, 12)}, r"conv 'conv2d#1': blocks \(8, 12\) do not fit 8 input / 16"),
        ({"conv2d#1": (16, 16)}, r"conv 'conv2d#1': blocks \(16, 16\) do not fit 8 input"),
        ({"conv2d#3": (4, 8)}, r"(?s)'conv2d#3'.*groups=8.*takes \[\(4, 4\), \(8, 8\)\]"),
        ({"proj": (8,)}, r"conv 'proj': expected \(input block, output block\) as two ints"),
        ({"proj": ("8", 8)}, r"two ints"),
    ],
)
def test_bad_plans_raise_clear_errors(plan: dict, match: str) -> None:
    opt = optimize(_resnet_ish(np.random.default_rng(0)), {})
    with pytest.raises(AttrError, match=match):
        alter_layout(opt, HOST, blocks=plan)


def test_a_conv_the_blocked_kernel_cannot_run_is_named() -> None:
    rng = np.random.default_rng(0)
    x = Var("data", TensorType((1, 8, 6, 6)))
    # Groups of 2 channels: no channel block (4, 8, 16) fits inside one group. (Groups
    # of 4 or more run blocked since grouped convs have a blocked kernel.)
    y = call("nn.conv2d", x, _w(rng, 8, 2, 3, 3), groups=4, name="grouped")
    opt = optimize(Module.from_function(Function((x,), y)), {})
    with pytest.raises(AttrError, match=r"conv 'grouped': the blocked x86 conv cannot run"):
        alter_layout(opt, HOST, blocks={"grouped": (8, 8)})


def _plan_for(opt: Module, blocks: dict) -> GraphPlan:
    return GraphPlan(
        target="host",
        model=model_key(opt),
        blocks=blocks,
        tuned_blocks=blocks,
        threads=1,
        predicted_ms={"default": 1.0, "tuned": 0.9},
        measured_ms={"default": 1.1, "tuned": 1.0},
    )


def test_plan_round_trips_through_json_and_a_tuning_log(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mod = _resnet_ish(np.random.default_rng(0))
    opt = optimize(mod, {})
    plan = _plan_for(opt, {"conv2d#1": (8, 8), "proj": (4, 4)})
    assert GraphPlan.load(plan.save(tmp_path / "p.json")) == plan
    log = tmp_path / "log.jsonl"
    append_records(log, [plan.to_record()])
    (rec,) = load_records(log)
    assert GraphPlan.from_record(rec) == plan
    with apply_history_best(log) as ctx:  # compile finds the plan of this model in the log
        assert ctx.channel_blocks(opt, HOST) == {"conv2d#1": (8, 8), "proj": (4, 4)}
        _, fused = kernel_graph(mod, {}, HOST)
    assert dict(_blocks_in(fused))["proj"] == (4, 4)
    # A plan kept as "default" (it measured slower) applies nothing.
    append_records(log, [GraphPlan("host", plan.model, {}, plan.blocks, "default").to_record()])
    with apply_history_best(log) as ctx:
        assert ctx.channel_blocks(opt, HOST) is None
    # Another model's plan in the log is ignored; given explicitly it is an error.
    other = optimize(_resnet_ish(np.random.default_rng(0), hw=10), {})
    with apply_history_best(log) as ctx:
        assert ctx.channel_blocks(other, HOST) is None
    with pytest.raises(AttrError, match="cannot apply to this model"):
        plan_blocks(other, plan)


def test_bad_plan_files_raise_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AttrError, match="cannot read graph plan"):
        GraphPlan.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(AttrError, match="is not JSON"):
        GraphPlan.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(AttrError, match="not a graph plan"):
        GraphPlan.load(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(json.dumps({"kind": "ember.graph_plan", "target": "host"}))
    with pytest.raises(AttrError, match="malformed graph plan"):
        GraphPlan.load(tmp_path / "z.json")
    with pytest.raises(AttrError, match="graph_plan must be"):
        plan_blocks(optimize(_resnet_ish(np.random.default_rng(0)), {}), 42)


# ----------------------------------------------------------------------------- tuning


def test_tune_graph_on_a_tiny_cnn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng()
    x = Var("data", TensorType((1, 3, 8, 8)))
    a = call("nn.relu", call("nn.conv2d", x, _w(rng, 8, 3, 3, 3), _w(rng, 8), padding=1))
    b = call("nn.conv2d", a, _w(rng, 8, 8, 1, 1), _w(rng, 8))
    mod = Module.from_function(Function((x,), call("nn.relu", call("add", b, a))))
    log = tmp_path / "log.jsonl"
    log.touch()
    lines: list[str] = []
    plan = tune_graph(
        mod, {}, "host", tuning_log=log, threads=1, say=lines.append, candidate_blocks=(4, 8)
    )
    assert set(plan.tuned_blocks) == {"conv2d#0", "conv2d#1"}
    assert plan.tuned_blocks["conv2d#0"] in [(3, 4), (3, 8)]
    assert set(plan.predicted_ms) == {"default", "tuned"} == set(plan.measured_ms)
    assert all(v > 0 for v in plan.measured_ms.values())
    if plan.kept == "tuned":  # never keep a plan that measured slower than the default
        assert plan.measured_ms["tuned"] < plan.measured_ms["default"]
        assert plan.blocks == plan.tuned_blocks
    else:
        assert plan.blocks == {}
    assert any("predicted" in line for line in lines)
    (rec,) = load_records(log)
    assert GraphPlan.from_record(rec) == plan
    x_in = rng.standard_normal((1, 3, 8, 8)).astype(F)
    (want,) = interpret(mod, {}, {"data": x_in})
    got = ember.compile(mod, {}, graph_plan=plan.tuned_blocks).load().run({"data": x_in})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_conv_kernels_are_the_ones_compile_generates() -> None:
    """Each (conv, blocks) candidate is costed by the kernels compile would run for it: a
    64-channel 3x3 conv on 8x8 runs as Winograd (three kernels), the 1x1 conv directly."""
    rng = np.random.default_rng(0)
    x = Var("data", TensorType((1, 64, 8, 8)))
    a = call("nn.relu", call("nn.conv2d", x, _w(rng, 64, 64, 3, 3), padding=1, name="wino"))
    b = call("nn.conv2d", a, _w(rng, 16, 64, 1, 1), name="direct")
    opt = optimize(Module.from_function(Function((x,), b)), {})
    states = {"wino": [(8, 8), (16, 16)], "direct": [(8, 16), (16, 16)]}
    found = conv_kernels(opt, states, HOST, 16)
    assert set(found) == {(c, s) for c, ss in states.items() for s in ss}
    wino = [[k.attrs["name"] for k in found[("wino", s)]] for s in states["wino"]]
    assert all(len(names) == 3 and "winograd" in " ".join(names) for names in wino)
    assert all(len(found[("direct", s)]) == 1 for s in states["direct"])
    # The planned blocks are the ones in the kernels.
    (direct,) = found[("direct", (8, 16))]
    assert direct.params[0].type.shape[4] == 8 and direct.ret_type.shape[4] == 16


def _onnx_two_convs(path) -> None:  # type: ignore[no-untyped-def]
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng()
    w1 = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(F), "w1")
    w2 = numpy_helper.from_array((rng.standard_normal((8, 8, 1, 1)) * 0.3).astype(F), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2"),
        ],
        "two_convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])],
        [w1, w2],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_cli_graph_tuning_then_compile_applies_the_plan(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from ember.cli import main

    model, log = tmp_path / "m.onnx", tmp_path / "log.jsonl"
    _onnx_two_convs(model)
    assert main(["tune", str(model), "--graph-only", "-o", str(log)]) == 0
    assert "graph plan (" in capsys.readouterr().out
    (rec,) = load_records(log)
    tuned = GraphPlan.from_record(rec)
    assert set(tuned.tuned_blocks) == set(
        conv_ids(optimize(*ember.frontend.from_onnx(str(model)))).values()
    )
    # Whichever won, a plan that is kept applies at compile time.
    forced = GraphPlan("host", tuned.model, {"conv1": (3, 4), "conv2": (4, 8)})
    append_records(log, [forced.to_record()])
    out = tmp_path / "m.ember"
    assert main(["compile", str(model), "--tuning-log", str(log), "-o", str(out)]) == 0
    assert "graph plan: channel blocks of 2 convs" in capsys.readouterr().err
    x = np.random.default_rng().standard_normal((1, 3, 6, 6)).astype(F)
    mod, params = ember.frontend.from_onnx(str(model))
    (want,) = interpret(mod, params, {"x": x})
    got = ember.load(out).run({"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # A saved plan applies with --graph-plan.
    saved = forced.save(tmp_path / "plan.json")
    out2 = tmp_path / "m2.ember"
    assert main(["compile", str(model), "--graph-plan", str(saved), "-o", str(out2)]) == 0
    assert "graph plan: channel blocks of 2 convs" in capsys.readouterr().err
    got = ember.load(out2).run({"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("cpu", ["haswell", "skylake-avx512"])
@pytest.mark.parametrize(
    "model",
    [
        "squeezenet1_1",
        pytest.param("densenet121", marks=pytest.mark.slow),
        pytest.param("resnet18", marks=pytest.mark.slow),
    ],
)
def test_the_default_plan_builds_exactly_the_untuned_kernels(model, cpu) -> None:  # type: ignore[no-untyped-def]
    """The graph tuner's "default" candidate is the rule itself: compiling with it as a
    plan generates the same kernels as compiling with no plan. SqueezeNet's 264-class
    conv divides by 8 but not 16: with AVX-512 the rule zero-pads it to 16-channel
    blocks, and the default plan must say so too."""
    from ember.graph.passes.alter_layout import default_plan
    from ember.testing import zoo

    target = Target.parse(f"llvm -mcpu={cpu}")
    options = {**zoo.SMALL[model], "num_classes": 264}
    mod, params = zoo.get(model, **options)
    plan = default_plan(optimize(mod, params), target.vector_lanes("float32"))
    assert plan
    untuned = ember.compile(mod, params, target)
    planned = ember.compile(mod, params, target, graph_plan=plan)
    assert planned.sources == untuned.sources
    if model == "squeezenet1_1" and target.vector_lanes("float32") == 16:
        assert (*plan.values(),)[-1][1] == 16  # the classifier, padded
        assert "strided_slice" in planned.get_source()
