"""Graph passes: IR text before/after and the same results as the interpreter before the pass."""

from __future__ import annotations

import numpy as np
import pytest

from ember.errors import ShapeError
from ember.graph import (
    Call,
    Constant,
    Function,
    Module,
    Tuple,
    TupleGetItem,
    const,
    interpret,
    post_order,
    print_module,
    structural_equal,
)
from ember.graph.passes import (
    bind_params,
    default_pipeline,
    eliminate_dead_code,
    fold_constants,
    infer_types,
    optimize,
    run_passes,
    simplify,
)
from ember.ops import call
from tests.graph.graph_testlib import (
    assert_same_results,
    batch_norm,
    bn_stats,
    random_array,
    tensor,
)


def _ops(mod: Module) -> list[str]:
    return [n.op.name for n in post_order(mod.main.body) if isinstance(n, Call)]


# ----------------------------------------------------------------------------- bind_params


def test_bind_params_turns_weights_into_constants() -> None:
    x, w = tensor("x", 1, 4), tensor("w", 3, 4)
    mod = Module.from_function(Function((x, w), call("nn.dense", x, w)))
    weight = np.random.default_rng().standard_normal((3, 4)).astype(np.float32)
    bound = bind_params(mod, {"w": weight, "unrelated": np.zeros(2)})
    assert print_module(bound) == (
        "def @main(%x: Tensor[(1, 4), float32]) -> Tensor[(1, 3), float32] {\n"
        "  %0 = nn.dense(%x, meta[Constant][0] /* (3, 4), float32 */) : Tensor[(1, 3), float32]\n"
        "  %0\n"
        "}"
    )
    constant = bound.main.body.args[1]
    assert isinstance(constant, Constant) and constant.name == "w"
    np.testing.assert_array_equal(constant.value, weight)
    assert bind_params(mod, {}) is mod
    xv = np.random.default_rng().standard_normal((1, 4)).astype(np.float32)
    np.testing.assert_array_equal(interpret(bound, {}, {"x": xv})[0], xv @ weight.T)


def test_bind_params_checks_shape_and_dtype() -> None:
    x, w = tensor("x", 1, 4), tensor("w", 3, 4)
    mod = Module.from_function(Function((x, w), call("nn.dense", x, w)))
    with pytest.raises(ShapeError, match=r"parameter 'w' has shape \(4, 3\), the graph expects"):
        bind_params(mod, {"w": np.zeros((4, 3), np.float32)})
    with pytest.raises(
        ShapeError, match="parameter 'w' has dtype float64, the graph expects float32"
    ):
        bind_params(mod, {"w": np.zeros((3, 4))})
    lists = bind_params(mod, {"w": [[0.0] * 4] * 3})
    assert lists.main.body.args[1].type.dtype == "float32"


# ----------------------------------------------------------------------------- infer_types


def _mlp() -> Module:
    x, w = tensor("x", 1, 8), tensor("w", 4, 8)
    return Module.from_function(Function((x, w), call("nn.relu", call("nn.dense", x, w))))


def test_infer_types_without_changes_is_structurally_equal() -> None:
    mod = _mlp()
    again = infer_types(mod)
    assert again is not mod and structural_equal(again, mod)


def test_infer_types_with_a_new_batch_size() -> None:
    mod = infer_types(_mlp(), {"x": (5, 8)})
    assert print_module(mod).splitlines()[0] == (
        "def @main(%x: Tensor[(5, 8), float32], %w: Tensor[(4, 8), float32])"
        " -> Tensor[(5, 4), float32] {"
    )
    rng = np.random.default_rng()
    xv, wv = random_array(rng, (5, 8)), random_array(rng, (4, 8))
    np.testing.assert_allclose(
        interpret(mod, {"w": wv}, {"x": xv})[0], np.maximum(xv @ wv.T, 0), rtol=1e-5, atol=1e-6
    )
    typed = infer_types(_mlp(), {"x": ((1, 8), "float64"), "w": ((4, 8), "float64")})
    assert typed.main.body.type.dtype == "float64"


def test_infer_types_errors() -> None:
    with pytest.raises(
        ShapeError, match="infer_types: no input named 'data'(.|\n)*inputs are: x, w"
    ):
        infer_types(_mlp(), {"data": (1, 8)})
    with pytest.raises(ShapeError, match="op nn.dense"):
        infer_types(_mlp(), {"x": (1, 7)})
    with pytest.raises(ShapeError, match="must be a tuple of ints"):
        infer_types(_mlp(), {"x": "1x8"})


# ----------------------------------------------------------------------------- fold_constants


def test_fold_constants_evaluates_weight_preprocessing() -> None:
    x = tensor("x", 2, 3)
    w = Constant(np.arange(6, dtype=np.float32).reshape(3, 2), "w_t")
    wt = call("transpose", w, name="w")  # weights stored transposed
    scaled = call("multiply", wt, const(2.0, "float32"))
    body = call("add", x, scaled)
    mod = Module.from_function(Function((x,), body))
    folded = fold_constants(mod)
    assert print_module(folded) == (
        "def @main(%x: Tensor[(2, 3), float32]) -> Tensor[(2, 3), float32] {\n"
        "  %0 = add(%x, meta[Constant][0] /* (2, 3), float32 */) : Tensor[(2, 3), float32]\n"
        "  %0\n"
        "}"
    )
    xv = np.random.default_rng().standard_normal((2, 3)).astype(np.float32)
    assert_same_results(mod, folded, {}, {"x": xv})
    assert fold_constants(folded) is folded  # nothing left to fold


def test_fold_constants_keeps_dtype_and_splits_tuples() -> None:
    x = tensor("x", 2, dtype="float16")
    c = Constant(np.array([1.5, 2.5, 3.5, 4.5], np.float16))
    parts = call("split", call("negative", c), sections=(2, 2))
    body = call("add", x, TupleGetItem(parts, 1))
    folded = fold_constants(Module.from_function(Function((x,), body)))
    (add,) = [n for n in post_order(folded.main.body) if isinstance(n, Call)]
    assert isinstance(add.args[1], Constant) and add.args[1].type.dtype == "float16"
    np.testing.assert_array_equal(add.args[1].value, np.array([-3.5, -4.5], np.float16))


def test_fold_constants_does_not_materialize_large_broadcasts() -> None:
    x = tensor("x", 1, 64, 56, 56)
    scalar = const(1.0, "float32")
    big = call("broadcast_to", scalar, shape=(1, 64, 56, 56))  # 800 KB from 4 bytes
    small = call("broadcast_to", scalar, shape=(4, 4))  # 64 bytes: folded
    body = Tuple((call("add", x, big), small))
    folded = fold_constants(Module.from_function(Function((x,), body)))
    assert _ops(folded) == ["broadcast_to", "add"]
    assert isinstance(folded.main.body.fields[1], Constant)


def test_fold_constants_leaves_inputs_alone() -> None:
    mod = _mlp()
    assert fold_constants(mod) is mod


# ----------------------------------------------------------------------------- simplify


def _conv_bn(groups: int = 1, with_bias: bool = False, extra_user: bool = False):
    rng = np.random.default_rng()
    x = tensor("data", 1, 4, 6, 6)
    w = tensor("conv_w", 8, 4 // groups, 3, 3)
    params = {"conv_w": random_array(rng, (8, 4 // groups, 3, 3))}
    args = [x, w]
    if with_bias:
        args.append(tensor("conv_b", 8))
        params["conv_b"] = random_array(rng, (8,))
    conv = call("nn.conv2d", *args, padding=1, groups=groups, name="conv")
    bn, stats = batch_norm(conv, 8, "bn")
    params.update(bn_stats(rng, 8, "bn"))
    body = call("nn.relu", bn)
    if extra_user:
        body = Tuple((body, conv))
    mod = Module.from_function(Function((x, *args[1:], *stats), body))
    return mod, params, {"data": random_array(rng, (1, 4, 6, 6))}


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("with_bias", [False, True])
def test_batch_norm_folds_into_conv(groups: int, with_bias: bool) -> None:
    mod, params, inputs = _conv_bn(groups, with_bias)
    after = simplify(bind_params(mod, params))
    assert _ops(after) == ["nn.conv2d", "nn.relu"]
    text = print_module(after)
    assert "nn.conv2d(%data, meta[Constant][0] /* (8, " in text
    assert "meta[Constant][1] /* (8), float32 */, padding=(1, 1, 1, 1)" in text
    assert_same_results(mod, after, params, inputs)


def test_batch_norm_not_folded_into_a_conv_with_other_users() -> None:
    mod, params, inputs = _conv_bn(extra_user=True)
    after = simplify(bind_params(mod, params))
    # The conv output is also a model output: the batch norm becomes a scale and shift.
    assert _ops(after) == ["nn.conv2d", "multiply", "add", "nn.relu"]
    assert "multiply(%0, meta[Constant][1] /* (8, 1, 1), float32 */) /* bn */" in print_module(
        after
    )
    assert_same_results(mod, after, params, inputs)


def test_batch_norm_with_unbound_statistics_is_left_alone() -> None:
    mod, _, _ = _conv_bn()
    assert simplify(mod) is mod


def test_batch_norm_folds_into_dense() -> None:
    rng = np.random.default_rng()
    x, w, b = tensor("x", 3, 5), tensor("fc_w", 6, 5), tensor("fc_b", 6)
    bn, stats = batch_norm(call("nn.dense", x, w, b), 6, "bn", axis=-1)
    mod = Module.from_function(Function((x, w, b, *stats), bn))
    params = {"fc_w": random_array(rng, (6, 5)), "fc_b": random_array(rng, (6,))}
    params.update(bn_stats(rng, 6, "bn"))
    after = simplify(bind_params(mod, params))
    assert print_module(after) == (
        "def @main(%x: Tensor[(3, 5), float32]) -> Tensor[(3, 6), float32] {\n"
        "  %0 = nn.dense(%x, meta[Constant][0] /* (6, 5), float32 */,"
        " meta[Constant][1] /* (6), float32 */) : Tensor[(3, 6), float32]\n"
        "  %0\n"
        "}"
    )
    assert_same_results(mod, after, params, {"x": random_array(rng, (3, 5))})


@pytest.mark.parametrize("groups", [1, 2])
def test_batch_norm_folds_into_conv2d_transpose(groups: int) -> None:
    rng = np.random.default_rng()
    x, w = tensor("x", 1, 4, 5, 5), tensor("w", 4, 6 // groups, 3, 3)
    deconv = call("nn.conv2d_transpose", x, w, strides=2, groups=groups)
    bn, stats = batch_norm(deconv, 6, "bn")
    mod = Module.from_function(Function((x, w, *stats), bn))
    params = {"w": random_array(rng, (4, 6 // groups, 3, 3)), **bn_stats(rng, 6, "bn")}
    after = simplify(bind_params(mod, params))
    assert _ops(after) == ["nn.conv2d_transpose"]
    assert_same_results(mod, after, params, {"x": random_array(rng, (1, 4, 5, 5))})


def test_per_channel_scale_and_shift_fold_into_conv() -> None:
    rng = np.random.default_rng()
    x, w = tensor("x", 1, 3, 5, 5), tensor("w", 4, 3, 3, 3)
    scale = Constant(random_array(rng, (4, 1, 1)), "scale")
    shift = Constant(random_array(rng, (1, 4, 1, 1)), "shift")
    y = call("nn.conv2d", x, w)
    y = call("multiply", scale, y)  # constant first: multiply commutes
    y = call("add", y, shift)
    y = call("subtract", y, const(0.25, "float32"))
    mod = Module.from_function(Function((x, w), call("nn.relu", y)))
    params = {"w": random_array(rng, (4, 3, 3, 3))}
    after = simplify(bind_params(mod, params))
    assert _ops(after) == ["nn.conv2d", "nn.relu"]
    assert_same_results(mod, after, params, {"x": random_array(rng, (1, 3, 5, 5))})


def test_scale_that_varies_across_pixels_is_not_folded() -> None:
    rng = np.random.default_rng()
    x, w = tensor("x", 1, 3, 5, 5), tensor("w", 4, 3, 3, 3)
    pixel_scale = Constant(random_array(rng, (1, 1, 3, 3)), "s")
    y = call("multiply", call("nn.conv2d", x, w), pixel_scale)
    mod = bind_params(
        Module.from_function(Function((x, w), y)), {"w": random_array(rng, (4, 3, 3, 3))}
    )
    assert simplify(mod) is mod
    # Nor a subtraction *from* a constant (not an affine map of the conv output).
    y2 = call("subtract", const(1.0, "float32"), call("nn.conv2d", x, w))
    mod2 = bind_params(
        Module.from_function(Function((x, w), y2)), {"w": random_array(rng, (4, 3, 3, 3))}
    )
    assert simplify(mod2) is mod2


def test_dropout_and_identities_are_removed() -> None:
    x = tensor("x", 2, 3)
    y = call("nn.dropout", x, rate=0.3)
    y = call("nn.relu", call("identity", y))
    y = call("cast", y, dtype="float32")
    y = call("reshape", y, newshape=(2, 3))
    y = call("reshape", y, newshape=(3, 2))
    mod = Module.from_function(Function((x,), y))
    after = simplify(mod)
    assert print_module(after) == (
        "def @main(%x: Tensor[(2, 3), float32]) -> Tensor[(3, 2), float32] {\n"
        "  %0 = nn.relu(%x) : Tensor[(2, 3), float32]\n"
        "  %1 = reshape(%0, newshape=(3, 2)) : Tensor[(3, 2), float32]\n"
        "  %1\n"
        "}"
    )
    assert_same_results(mod, after, {}, {"x": random_array(np.random.default_rng(), (2, 3))})


def test_standalone_batch_norm_on_an_input_becomes_scale_and_shift() -> None:
    rng = np.random.default_rng()
    x = tensor("x", 2, 5)
    bn, stats = batch_norm(x, 5, "bn", axis=1)
    mod = Module.from_function(Function((x, *stats), bn))
    params = bn_stats(rng, 5, "bn")
    after = simplify(bind_params(mod, params))
    assert print_module(after) == (
        "def @main(%x: Tensor[(2, 5), float32]) -> Tensor[(2, 5), float32] {\n"
        "  %0 = multiply(%x, meta[Constant][0] /* (5), float32 */) /* bn */"
        " : Tensor[(2, 5), float32]\n"
        "  %1 = add(%0, meta[Constant][1] /* (5), float32 */) /* bn */ : Tensor[(2, 5), float32]\n"
        "  %1\n"
        "}"
    )
    assert_same_results(mod, after, params, {"x": random_array(rng, (2, 5))})


# ----------------------------------------------------------------------------- eliminate_dead_code


def test_dead_tuple_fields_and_unreachable_functions_go() -> None:
    x, unused = tensor("x", 3), tensor("unused", 3)
    expensive = call("exp", call("nn.softmax", x))
    pair = Tuple((call("nn.relu", x), expensive))
    main = Function((x, unused), TupleGetItem(pair, 0))
    p = tensor("p", 3)
    helper = Function((p,), p)
    kernel = Function((p,), call("negative", p), {"primitive": True, "name": "neg"})
    used = Module({"main": Function((x, unused), Call(kernel, (main.body,), None)), "k": kernel})
    mod = Module({"main": main, "helper": helper})
    after = eliminate_dead_code(mod)
    assert print_module(after) == (
        "def @main(%x: Tensor[(3), float32], %unused: Tensor[(3), float32])"
        " -> Tensor[(3), float32] {\n"
        "  %0 = nn.relu(%x) : Tensor[(3), float32]\n"
        "  %0\n"
        "}"
    )
    inputs = {"x": random_array(np.random.default_rng(), (3,)), "unused": np.zeros(3, np.float32)}
    assert_same_results(mod, after, {}, inputs)
    assert list(eliminate_dead_code(used).functions) == ["main", "k"]  # k is called by main
    pruned = eliminate_dead_code(mod, remove_unused_params=True)
    assert [p.name for p in pruned.main.params] == ["x"]
    assert eliminate_dead_code(pruned) is pruned


# ----------------------------------------------------------------------------- driver


def test_run_passes_dumps_ir_after_each_pass(tmp_path, capsys) -> None:
    mod, params, _ = _conv_bn()
    times: dict[str, float] = {}
    run_passes(bind_params(mod, params), default_pipeline(), dump=tmp_path, timings=times)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "00_input.txt",
        "01_infer_types.txt",
        "02_simplify.txt",
        "03_rewrite_activations.txt",
        "04_fold_constants.txt",
        "05_eliminate_dead_code.txt",
    ]
    assert "nn.batch_norm" in (tmp_path / "00_input.txt").read_text()
    assert "nn.batch_norm" not in (tmp_path / "02_simplify.txt").read_text()
    assert list(times) == [n[:-4] for n in names[1:]] and all(t >= 0 for t in times.values())
    run_passes(mod, [simplify], dump=True, timings=True)
    err = capsys.readouterr().err
    assert "// ---- IR after 01_simplify" in err and "total" in err


def test_optimize_end_to_end_matches_the_unoptimized_model() -> None:
    rng = np.random.default_rng()
    x = tensor("data", 1, 3, 8, 8)
    w1, w2, fc = tensor("w1", 8, 3, 3, 3), tensor("w2", 8, 1, 3, 3), tensor("fc", 10, 8)
    y = call("nn.conv2d", x, w1, padding=1)
    y, s1 = batch_norm(y, 8, "bn1")
    y = call("nn.dropout", call("nn.relu", y))
    y = call("nn.conv2d", y, w2, padding=1, groups=8)  # depthwise
    y, s2 = batch_norm(y, 8, "bn2")
    y = call("nn.relu", y)
    y = call("reshape", call("nn.global_avg_pool2d", y), newshape=(1, 8))
    y = call("nn.dense", y, fc)
    mod = Module.from_function(Function((x, w1, w2, fc, *s1, *s2), call("nn.softmax", y)))
    params = {
        "w1": random_array(rng, (8, 3, 3, 3)),
        "w2": random_array(rng, (8, 1, 3, 3)),
        "fc": random_array(rng, (10, 8)),
        **bn_stats(rng, 8, "bn1"),
        **bn_stats(rng, 8, "bn2"),
    }
    opt = optimize(mod, params)
    assert _ops(opt) == [
        "nn.conv2d",
        "nn.relu",
        "nn.conv2d",
        "nn.relu",
        "nn.global_avg_pool2d",
        "reshape",
        "nn.dense",
        "nn.softmax",
    ]
    assert [p.name for p in opt.main.params] == ["data"]
    assert_same_results(mod, opt, params, {"data": random_array(rng, (1, 3, 8, 8))})


def test_infer_types_through_tuples() -> None:
    x = tensor("x", 2, 6)
    parts = call("split", x, sections=(2, 4), axis=1)
    body = Tuple((call("nn.relu", TupleGetItem(parts, 1)), TupleGetItem(parts, 0)))
    mod = infer_types(Module.from_function(Function((x,), body)), {"x": (3, 6)})
    assert str(mod.main.ret_type) == "(Tensor[(3, 4), float32], Tensor[(3, 2), float32])"
    xv = random_array(np.random.default_rng(), (3, 6))
    relu, first = interpret(mod, {}, {"x": xv})
    np.testing.assert_array_equal(relu, np.maximum(xv[:, 2:], 0))
    np.testing.assert_array_equal(first, xv[:, :2])
