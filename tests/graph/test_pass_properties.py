"""Property test: the default pipeline keeps the results of random conv/elementwise chains."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.graph import Function, Module, Var, print_module, structural_equal, verify
from ember.graph.passes import bind_params, optimize, run_passes, simplify
from ember.ops import call
from tests.graph.graph_testlib import assert_same_results, batch_norm, bn_stats, tensor

LAYERS = ("conv", "bn", "relu", "sigmoid", "dropout", "identity", "scale", "shift", "residual")


@st.composite
def chains(draw):
    """A random chain (with residual branches) and its random weights."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kinds = draw(st.lists(st.sampled_from(LAYERS), min_size=1, max_size=8))
    channels, size = draw(st.sampled_from([2, 4])), 5
    x = tensor("data", 1, channels, size, size)
    params: dict[str, np.ndarray] = {}
    variables: list[Var] = [x]
    y = x

    def weight(name: str, value: np.ndarray) -> Var:
        params[name] = value.astype(np.float32)
        var = tensor(name, *value.shape)
        variables.append(var)
        return var

    for i, kind in enumerate(kinds):
        if kind == "conv":
            groups = draw(st.sampled_from([g for g in (1, 2, channels) if channels % g == 0]))
            args = [y, weight(f"w{i}", rng.standard_normal((channels, channels // groups, 3, 3)))]
            if draw(st.booleans()):
                args.append(weight(f"b{i}", rng.standard_normal(channels)))
            y = call("nn.conv2d", *args, padding=1, groups=groups)
        elif kind == "bn":
            y, stats = batch_norm(y, channels, f"bn{i}")
            params.update(bn_stats(rng, channels, f"bn{i}"))
            variables.extend(stats)
        elif kind in ("relu", "sigmoid"):
            y = call("nn.relu" if kind == "relu" else "sigmoid", y)
        elif kind in ("dropout", "identity"):
            y = call("nn.dropout" if kind == "dropout" else "identity", y)
        elif kind == "scale":
            y = call("multiply", y, weight(f"s{i}", rng.random((channels, 1, 1)) + 0.5))
        elif kind == "shift":
            y = call("add", weight(f"t{i}", rng.standard_normal((1, channels, 1, 1))), y)
        else:  # a second user of y: folds into y must not happen
            y = call("add", y, call("nn.relu", y))
    mod = Module.from_function(Function(tuple(variables), y))
    inputs = {"data": rng.standard_normal((1, channels, size, size)).astype(np.float32)}
    return mod, params, inputs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_optimize_preserves_results(case) -> None:
    mod, params, inputs = case
    verify(mod)
    opt = optimize(mod, params)
    ops = print_module(opt)
    assert "nn.batch_norm" not in ops and "dropout" not in ops and "identity" not in ops
    assert [p.name for p in opt.main.params] == ["data"]
    assert_same_results(mod, opt, params, inputs)
    # Passes are idempotent once the graph is simplified.
    assert structural_equal(run_passes(opt, [simplify]), opt)


@settings(max_examples=20, deadline=None)
@given(chains())
def test_simplify_without_bound_weights_keeps_results(case) -> None:
    mod, params, inputs = case
    simplified = simplify(mod)
    assert_same_results(mod, simplified, params, inputs)
    bound = bind_params(mod, params)
    assert_same_results(mod, simplify(bound), params, inputs)
