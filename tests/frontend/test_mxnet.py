"""MXNet frontend: models exported by mxnet 1.9.1 (tests/data/mxnet) vs ember's interpreter.

The fixtures were made by tests/data/make_mxnet_fixtures.py (random weights and
batch-norm statistics); mxnet itself is not needed to run these tests.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from ember.errors import FrontendError, UnsupportedOpError
from ember.frontend.mxnet import from_mxnet, supported_ops
from ember.frontend.mxnet.ops_tensor import mxnet_reshape
from ember.frontend.mxnet.params import parse_params, read_params
from ember.graph import interpret

DATA = Path(__file__).resolve().parents[1] / "data" / "mxnet"
MODELS = [
    "resnet_v1",
    "resnet_v2",
    "mobilenet",
    "mobilenet_v2",
    "densenet",
    "squeeze_inception",
    "ops",
    "mlp",
]


def load_io(name: str) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    io = np.load(DATA / f"{name}-io.npz")
    inputs = {k: io[k] for k in io.files if not k.startswith("output_")}
    outputs = [io[f"output_{i}"] for i in range(len(io.files) - len(inputs))]
    return inputs, outputs


def files(name: str) -> tuple[Path, Path]:
    return DATA / f"{name}-symbol.json", DATA / f"{name}-0000.params"


@pytest.mark.parametrize("name", MODELS)
def test_model_matches_mxnet(name: str) -> None:
    inputs, expected = load_io(name)
    symbol, params_path = files(name)
    mod, params = from_mxnet(symbol, params_path, shape={k: v.shape for k, v in inputs.items()})
    outs = interpret(mod, params, inputs)
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_path_alone_finds_the_pair() -> None:
    inputs, expected = load_io("mlp")
    symbol, params_path = files("mlp")
    for path in (symbol, params_path, str(symbol)):
        mod, params = from_mxnet(path, shape={"data": (3, 2, 4)})
        np.testing.assert_allclose(interpret(mod, params, inputs)[0], expected[0], rtol=1e-4)


def test_neo_input_spec_and_params_dict() -> None:
    inputs, expected = load_io("resnet_v1")
    symbol, params_path = files("resnet_v1")
    arrays = read_params(params_path)
    assert all(k.startswith(("arg:", "aux:")) for k in arrays)
    mod, params = from_mxnet(symbol.read_text(), arrays, shape='{"data": [1, 3, 64, 64]}')
    names = [v.name for v in mod.main.params]
    assert names[0] == "data" and set(names[1:]) == set(params)
    np.testing.assert_allclose(interpret(mod, params, inputs)[0], expected[0], rtol=1e-4, atol=1e-5)


def test_fix_gamma_ignores_stored_gamma() -> None:
    # resnet_v2 has BatchNorm(scale=False) -> fix_gamma=True; its stored gamma is random
    symbol, params_path = files("resnet_v2")
    arrays = read_params(params_path)
    fixed = [
        k
        for k in json.loads(symbol.read_text())["nodes"]
        if k.get("attrs", {}).get("fix_gamma") == "True"
    ]
    assert fixed, "fixture should contain a fix_gamma batch norm"
    mod, params = from_mxnet(symbol, arrays, shape={"data": (1, 3, 64, 64)})
    gamma = fixed[0]["name"].replace("_fwd", "_gamma")
    assert not np.allclose(arrays[f"arg:{gamma}"], 1.0)
    assert gamma not in params  # replaced by ones, so the weight is unused


def test_other_batch_size_and_label_dropped() -> None:
    symbol, params_path = files("mlp")
    mod, params = from_mxnet(symbol, params_path, shape={"data": (5, 2, 4)})
    assert [v.name for v in mod.main.params][0] == "data"
    assert "softmax_label" not in [v.name for v in mod.main.params]
    x = np.random.default_rng(0).normal(size=(5, 2, 4)).astype(np.float32)
    out = interpret(mod, params, {"data": x})[0]
    assert out.shape == (5, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "spec", "expected"),
    [
        ((2, 3, 4), (0, -1), (2, 12)),
        ((2, 3, 4), (-2,), (2, 3, 4)),
        ((2, 3, 4), (0, -3), (2, 12)),
        ((2, 3, 4), (-3, -2), (6, 4)),
        ((2, 12), (0, -4, 3, -1), (2, 3, 4)),
        ((2, 12), (0, -4, -1, 4), (2, 3, 4)),
        ((2, 3, 4), (4, 0, -1), (4, 3, 2)),
        ((2, 3, 4), (-1, 2), (12, 2)),
        ((10, 5, 4), (-1, 0), (40, 5)),
    ],
)
def test_reshape_special_codes(shape, spec, expected) -> None:
    assert mxnet_reshape(shape, spec) == expected


def test_reshape_reverse() -> None:
    # MXNet's doc example: (10, 5, 4) with shape=(-1, 0) reverse=True -> (50, 4)
    assert mxnet_reshape((10, 5, 4), (-1, 0), reverse=True) == (50, 4)


@pytest.mark.parametrize(
    ("shape", "spec", "match"),
    [
        ((2, 3), (-1, -1), "more than one -1"),
        ((2, 3), (0, 0, 0), "code 0 copies"),
        ((2, 3), (4, 4), "cannot take shape"),
        ((2, 12), (0, -4, 5, -1), "cannot split"),
    ],
)
def test_reshape_errors(shape, spec, match) -> None:
    with pytest.raises(FrontendError, match=match):
        mxnet_reshape(shape, spec)


def test_supported_ops_lists_model_zoo_ops() -> None:
    ops = supported_ops()
    for op in ("Convolution", "BatchNorm", "Pooling", "FullyConnected", "Reshape", "clip"):
        assert op in ops


# ----------------------------------------------------------------------------- params format


def _ndarray_v2(array: np.ndarray, flag: int) -> bytes:
    out = struct.pack("<Ii", 0xF993FAC9, 0)
    out += struct.pack("<i", array.ndim) + struct.pack(f"<{array.ndim}q", *array.shape)
    out += struct.pack("<iii", 1, 0, flag)
    return out + array.tobytes()


def _params_file(entries: list[tuple[str, bytes]]) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(entries))
    out += b"".join(blob for _, blob in entries)
    out += struct.pack("<Q", len(entries))
    for name, _ in entries:
        out += struct.pack("<Q", len(name)) + name.encode()
    return out


def test_params_dtypes_and_legacy_forms() -> None:
    rng = np.random.default_rng(1)
    f16 = rng.normal(size=(2, 3)).astype(np.float16)
    i64 = rng.integers(-5, 5, size=(4,)).astype(np.int64)
    u8 = rng.integers(0, 255, size=(2, 2)).astype(np.uint8)
    legacy = rng.normal(size=(3, 2)).astype(np.float32)
    legacy_blob = struct.pack("<I2I", 2, 3, 2) + struct.pack("<iii", 1, 0, 0) + legacy.tobytes()
    v3 = struct.pack("<Iii2q", 0xF993FACA, 0, 2, 1, 2) + struct.pack("<iii", 1, 0, 0)
    v3 += np.arange(2, dtype=np.float32).tobytes()
    data = _params_file(
        [
            ("arg:a", _ndarray_v2(f16, 2)),
            ("arg:b", _ndarray_v2(i64, 6)),
            ("aux:c", _ndarray_v2(u8, 3)),
            ("arg:d", legacy_blob),
            ("arg:e", v3),
        ]
    )
    arrays = parse_params(data)
    np.testing.assert_array_equal(arrays["arg:a"], f16)
    np.testing.assert_array_equal(arrays["arg:b"], i64)
    np.testing.assert_array_equal(arrays["aux:c"], u8)
    np.testing.assert_array_equal(arrays["arg:d"], legacy)
    np.testing.assert_array_equal(arrays["arg:e"], [[0.0, 1.0]])


def test_params_real_file_round_trip() -> None:
    arrays = read_params(DATA / "mlp-0000.params")
    assert arrays["arg:fc1_weight"].shape == (16, 8)
    assert arrays["aux:bn_moving_var"].dtype == np.float32


def test_params_bad_magic() -> None:
    with pytest.raises(FrontendError, match="not an MXNet params file.*0x112"):
        parse_params(b"\x00" * 32, "x.params")


@pytest.mark.parametrize("cut", [4, 20, 40, 100, 1000, -10])
def test_params_truncated(cut: int) -> None:
    data = (DATA / "mlp-0000.params").read_bytes()
    with pytest.raises(FrontendError, match="truncated or corrupt|corrupt"):
        parse_params(data[:cut], "mlp.params")


def test_params_trailing_garbage() -> None:
    data = (DATA / "mlp-0000.params").read_bytes() + b"junk"
    with pytest.raises(FrontendError, match="unexpected byte"):
        parse_params(data, "mlp.params")


def test_params_sparse_and_bad_dtype() -> None:
    sparse = _params_file([("arg:s", struct.pack("<Ii", 0xF993FAC9, 2) + b"\x00" * 16)])
    with pytest.raises(FrontendError, match="csr sparse array"):
        parse_params(sparse)
    bad = _ndarray_v2(np.zeros((2,), np.float32), 0)
    bad = bad.replace(struct.pack("<iii", 1, 0, 0), struct.pack("<iii", 1, 0, 12))
    with pytest.raises(FrontendError, match="dtype flag 12"):
        parse_params(_params_file([("arg:x", bad)]))


def test_params_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="does not exist"):
        read_params(tmp_path / "nope.params")


# ----------------------------------------------------------------------------- model errors


def test_unknown_ops_listed_at_once(tmp_path: Path) -> None:
    symbol, params_path = files("ops")
    graph = json.loads(symbol.read_text())
    renamed = 0
    for node in graph["nodes"]:
        if node["op"] == "transpose":
            node["op"] = "_contrib_FancyOp"
            renamed += 1
        elif node["op"] == "Deconvolution" or node["op"] == "softmax":
            node["op"] = "MysteryOp"
            renamed += 1
    assert renamed == 3
    path = tmp_path / "bad-symbol.json"
    path.write_text(json.dumps(graph))
    with pytest.raises(UnsupportedOpError, match="2 unsupported op") as info:
        from_mxnet(path, params_path, shape={"data": (1, 3, 12, 12)})
    message = str(info.value)
    assert "_contrib_FancyOp" in message and "MysteryOp: 2 node(s)" in message
    assert "opsnet0_transpose0" in message


def test_missing_input_shape() -> None:
    symbol, params_path = files("mlp")
    with pytest.raises(FrontendError, match="'data'.*neither in the params file nor given a shape"):
        from_mxnet(symbol, params_path)


def test_unknown_input_name() -> None:
    symbol, params_path = files("mlp")
    with pytest.raises(FrontendError, match="'image', which the MXNet model does not have.*'data'"):
        from_mxnet(symbol, params_path, shape={"image": (1, 8)})


def test_wrong_input_shape_names_node() -> None:
    symbol, params_path = files("resnet_v1")
    with pytest.raises(FrontendError, match="MXNet node 'resnetv10_conv0_fwd'"):
        from_mxnet(symbol, params_path, shape={"data": (1, 4, 64, 64)})


def test_params_of_another_model() -> None:
    symbol, _ = files("resnet_v1")
    _, other = files("mlp")
    match = "(?s)62 input.* and 54 more.*neither in the params file.*belongs to this symbol"
    with pytest.raises(FrontendError, match=match):
        from_mxnet(symbol, other, shape={"data": (1, 3, 64, 64)})


def test_bad_symbol_files(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="does not exist"):
        from_mxnet(tmp_path / "none-symbol.json", {})
    bad = tmp_path / "bad-symbol.json"
    bad.write_text("{not json")
    with pytest.raises(FrontendError, match="not valid JSON"):
        from_mxnet(bad, {})
    bad.write_text('{"nodes": 3}')
    with pytest.raises(FrontendError, match="no 'nodes' list"):
        from_mxnet(bad, {})
    bad.write_text(
        json.dumps({"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[5, 0, 0]]})
    )
    with pytest.raises(FrontendError, match="names no value"):
        from_mxnet(bad, {}, shape={"x": (1,)})
    graph = {
        "nodes": [{"op": "relu", "name": "r", "inputs": [[3, 0, 0]]}],
        "heads": [[0, 0, 0]],
    }
    with pytest.raises(FrontendError, match="does not name an earlier node"):
        from_mxnet(graph, None)


def _one_op(op: str, attrs: dict[str, str], shape=(1, 2, 6, 6)) -> dict:
    return {
        "nodes": [
            {"op": "null", "name": "data", "inputs": []},
            {"op": op, "name": "node", "attrs": attrs, "inputs": [[0, 0, 0]]},
        ],
        "arg_nodes": [0],
        "heads": [[1, 0, 0]],
    }


@pytest.mark.parametrize(
    ("op", "attrs", "match"),
    [
        ("Activation", {"act_type": "swish"}, "act_type 'swish' is not supported"),
        ("Pooling", {"kernel": "(3,)", "pool_type": "max"}, "kernel \\(3,\\) is not 2-D"),
        ("Pooling", {"kernel": "(2, 2)", "pool_type": "lp"}, "pool_type 'lp'"),
        ("Pooling", {"kernel": "(2, 2)", "pooling_convention": "same"}, "pooling_convention"),
        ("Reshape", {"shape": "(7, -1)"}, "cannot reshape"),
        ("LeakyReLU", {"act_type": "weird"}, "act_type 'weird'"),
        ("Pooling", {"kernel": "(2, x)"}, "node 'node' \\(Pooling\\) could not be converted"),
    ],
)
def test_unsupported_attrs(op, attrs, match) -> None:
    with pytest.raises(FrontendError, match=match):
        from_mxnet(_one_op(op, attrs), None, shape={"data": (1, 2, 6, 6)})


@pytest.mark.parametrize(
    ("attrs", "reference"),
    [
        ({"kernel": "(3, 3)", "stride": "(2, 2)", "pool_type": "sum"}, "sum_valid"),
        (
            {
                "kernel": "(3, 3)",
                "stride": "(2, 2)",
                "pool_type": "sum",
                "pooling_convention": "full",
            },
            "sum_full",
        ),
        (
            {
                "kernel": "(2, 2)",
                "stride": "(2, 2)",
                "pool_type": "avg",
                "pooling_convention": "full",
            },
            "avg_full",
        ),
        ({"kernel": "(1, 1)", "pool_type": "sum", "global_pool": "True"}, "sum_global"),
    ],
)
def test_pooling_conventions(attrs, reference) -> None:
    x = np.random.default_rng(2).normal(size=(1, 2, 7, 7)).astype(np.float32)
    mod, params = from_mxnet(_one_op("Pooling", attrs), None, shape={"data": x.shape})
    got = interpret(mod, params, {"data": x})[0]
    if reference == "sum_global":
        want = x.sum(axis=(2, 3), keepdims=True)
    else:
        k, s = (3, 2) if reference.startswith("sum") else (2, 2)
        full = reference.endswith("full")
        out = (-(-(7 - k) // s) if full else (7 - k) // s) + 1
        want = np.zeros((1, 2, out, out), np.float32)
        for i in range(out):
            for j in range(out):
                window = x[:, :, i * s : i * s + k, j * s : j * s + k]
                # MXNet's avg divides by the window clipped to the input (no padding here)
                want[:, :, i, j] = (
                    window.sum((2, 3)) if reference.startswith("sum") else window.mean((2, 3))
                )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
