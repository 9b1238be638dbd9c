"""The model zoo's ONNX files: valid, runnable, torchvision-shaped, deterministic.

Only onnx and onnxruntime are needed, except the ``frameworks`` tests, which
rebuild every architecture in PyTorch (tests/testing/torchvision_mini.py), load
the zoo's weights by torchvision's state_dict names and compare outputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ember.testing import zoo
from ember.testing.onnx_builder import (
    BUFFER,
    CONSTANT,
    PARAMETER,
    make_divisible,
    parameter_count,
)

ort = pytest.importorskip("onnxruntime")

MODELS = zoo.list_models()
# Building a full-size VGG takes ~15 s (a 100M-weight classifier); those run with -m slow.
FAST_FULL_SIZE = [m for m in MODELS if not m.startswith("vgg")]


def run_onnxruntime(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"data": x})[0]


def weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_list_models() -> None:
    assert MODELS == sorted(
        ["resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "mobilenet_v1", "mobilenet_v2",
         "squeezenet1_0", "squeezenet1_1", "densenet121", "inception_v3", "efficientnet_b0",
         "mobilenet_v3_large", "regnet_y_800mf", "convnext_tiny"]
    )  # fmt: skip
    assert set(zoo.SMALL) == set(MODELS)
    assert set(zoo.PUBLISHED_PARAMETERS) == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_small_model_is_valid_and_runs(name: str) -> None:
    options = {**zoo.SMALL[name], "batch": 2}
    model = zoo.to_onnx(name, **options)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert model.opset_import[0].version == 17
    x = zoo.random_input(name, **options)
    assert (
        x.shape
        == zoo.input_shape(name, **options)
        == (2, 3, options["image_size"]) + (options["image_size"],)
    )
    y = run_onnxruntime(model, x)
    assert y.shape == (2, options["num_classes"])
    assert np.isfinite(y).all()
    # Activations stay O(1) (the variance-preserving init), and the two images differ.
    assert 1e-2 < np.abs(y).max() < 1e2
    assert not np.allclose(y[0], y[1])


@pytest.mark.parametrize("name", FAST_FULL_SIZE)
def test_full_size_parameter_count_is_torchvisions(name: str) -> None:
    model = zoo.to_onnx(name)
    assert parameter_count(model) == zoo.PUBLISHED_PARAMETERS[name]
    default = 299 if name == "inception_v3" else 224
    assert zoo.input_shape(name) == (1, 3, default, default)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_full_size_model_runs(name: str) -> None:
    model = zoo.to_onnx(name)
    assert parameter_count(model) == zoo.PUBLISHED_PARAMETERS[name]
    y = run_onnxruntime(model, zoo.random_input(name))
    assert y.shape == (1, 1000) and np.isfinite(y).all()
    assert 1e-2 < np.abs(y).max() < 1e3


def test_batch_norm_statistics_are_not_trivial() -> None:
    model = zoo.to_onnx("resnet18", **zoo.SMALL["resnet18"])
    kinds = {t.name: t.doc_string for t in model.graph.initializer}
    w = weights(model)
    assert kinds["bn1.running_var"] == kinds["bn1.running_mean"] == BUFFER
    assert kinds["bn1.weight"] == kinds["conv1.weight"] == PARAMETER
    for suffix, trivial in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)):
        values = w[f"layer1.0.bn2.{suffix}"]
        assert np.abs(values - trivial).mean() > 0.1 and values.std() > 0.05, suffix
    assert (w["bn1.running_var"] > 0).all()
    eps = {n.name: n.attribute[0].f for n in model.graph.node if n.op_type == "BatchNormalization"}
    assert set(np.float32(list(eps.values()))) == {np.float32(1e-5)}


def test_seed_makes_weights_deterministic() -> None:
    options = zoo.SMALL["mobilenet_v2"]
    a = zoo.to_onnx("mobilenet_v2", **options)
    b = zoo.to_onnx("mobilenet_v2", **options)
    c = zoo.to_onnx("mobilenet_v2", **options, seed=1)
    assert a.SerializeToString() == b.SerializeToString()
    wa, wc = weights(a), weights(c)
    assert wa.keys() == wc.keys()
    assert not np.array_equal(wa["features.0.0.weight"], wc["features.0.0.weight"])


def test_to_onnx_writes_the_file(tmp_path) -> None:
    path = tmp_path / "squeezenet.onnx"
    model = zoo.to_onnx("squeezenet1_1", path, **zoo.SMALL["squeezenet1_1"])
    assert onnx.load(str(path)).SerializeToString() == model.SerializeToString()
    assert dict((p.key, p.value) for p in model.metadata_props)["zoo_model"] == "squeezenet1_1"


def test_squeezenet_max_pools_use_ceil_mode() -> None:
    model = zoo.to_onnx("squeezenet1_0", **zoo.SMALL["squeezenet1_0"])
    pools = [n for n in model.graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 3
    assert all(onnx.helper.get_attribute_value(a) == 1 for n in pools for a in n.attribute
               if a.name == "ceil_mode")  # fmt: skip


def test_inception_is_the_eval_graph() -> None:
    model = zoo.to_onnx("inception_v3", **zoo.SMALL["inception_v3"])
    names = [t.name for t in model.graph.initializer]
    assert not any("AuxLogits" in n for n in names)
    eps = {
        onnx.helper.get_attribute_value(a)
        for n in model.graph.node
        if n.op_type == "BatchNormalization"
        for a in n.attribute
    }
    assert {np.float32(e) for e in eps} == {np.float32(1e-3)}
    # transform_input=False: the first node reads the raw input
    assert model.graph.node[0].op_type == "Conv" and model.graph.node[0].input[0] == "data"
    pools = [n for n in model.graph.node if n.op_type == "AveragePool"]
    assert pools and all(
        onnx.helper.get_attribute_value(a) == 1
        for n in pools
        for a in n.attribute
        if a.name == "count_include_pad"
    )


def test_width_multiplier_scales_channels() -> None:
    w = weights(zoo.to_onnx("mobilenet_v2", width_multiplier=0.5, image_size=32))
    assert w["features.0.0.weight"].shape == (16, 3, 3, 3)  # _make_divisible(32 * 0.5)
    assert w["features.18.0.weight"].shape[0] == 1280  # torchvision keeps 1280 below 1.0
    assert w["classifier.1.weight"].shape == (1000, 1280)
    r = weights(zoo.to_onnx("resnet50", width_multiplier=0.3, image_size=32, num_classes=7))
    assert r["conv1.weight"].shape == (make_divisible(64 * 0.3), 3, 7, 7) == (24, 3, 7, 7)
    assert r["fc.weight"].shape == (7, 4 * make_divisible(512 * 0.3))
    v = weights(zoo.to_onnx("vgg11", width_multiplier=0.125, image_size=32))
    assert v["classifier.0.weight"].shape == (512, 64 * 49)
    assert make_divisible(1) == 8 and make_divisible(1280 * 0.35) == 448


def test_vgg_adaptive_pool_matches_torch_bins() -> None:
    # at 64x64 VGG's last feature map is 2x2; AdaptiveAvgPool2d((7, 7)) repeats its pixels
    model = zoo.to_onnx("vgg11", image_size=64, width_multiplier=0.125, num_classes=3)
    kinds = {t.name: t.doc_string for t in model.graph.initializer}
    rows = weights(model)["const.avgpool.rows"]
    assert kinds["const.avgpool.rows"] == CONSTANT and rows.shape == (7, 2)
    np.testing.assert_array_equal(rows.argmax(1), [0, 0, 0, 0, 1, 1, 1])
    assert run_onnxruntime(model, zoo.random_input("vgg11", image_size=64)).shape == (1, 3)


@pytest.mark.parametrize("name", [m for m in MODELS if zoo.MODELS[m].min_image_size > 1])
def test_min_image_size_is_the_smallest_that_builds(name: str) -> None:
    size = zoo.MODELS[name].min_image_size
    options = {"width_multiplier": 0.125, "num_classes": 3}
    model = zoo.to_onnx(name, image_size=size, **options)
    y = run_onnxruntime(model, zoo.random_input(name, image_size=size))
    assert y.shape == (1, 3)
    # one pixel less: the builder itself finds a window larger than its feature map
    with pytest.raises(zoo.ZooError, match="smaller than its"):
        zoo._build(name, zoo.ZooOptions(image_size=size - 1, **options))
    with pytest.raises(zoo.ZooError, match=f"(?s)image_size={size - 1} is too small.*>= {size}"):
        zoo.to_onnx(name, image_size=size - 1, **options)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        (
            "resnet19",
            {},
            "(?s)unknown zoo model 'resnet19'.*choose one of: convnext_tiny, densenet121",
        ),
        ("resnet18", {"width": 0.5}, "(?s)unknown option.*'width'.*width_multiplier"),
        ("resnet18", {"batch": 0}, "option batch=0, expected a positive integer"),
        ("resnet18", {"batch": 1.5}, "option batch=1.5"),
        ("resnet18", {"num_classes": -1}, "option num_classes=-1"),
        ("resnet18", {"width_multiplier": 0}, "width_multiplier=0, expected a number in"),
        ("resnet18", {"width_multiplier": "0.5"}, "width_multiplier='0.5'"),
        ("resnet18", {"opset": 9}, r"opset=9, expected an integer in \[11, "),
        ("resnet18", {"image_size": 0}, "image_size=0 is too small"),
        ("resnet18", {"image_size": "224"}, "image_size='224', expected an integer"),
        ("resnet18", {"seed": None}, "seed=None, expected an integer"),
        ("inception_v3", {"image_size": 74}, "(?s)image_size=74 is too small.*>= 75"),
        ("convnext_tiny", {"image_size": 31}, "(?s)image_size=31 is too small.*>= 32"),
        (
            "mobilenet_v3_large",
            {"opset": 13},
            r"(?s)opset=13, expected an integer in \[14, .*HardSwish, an ONNX op from opset 14",
        ),
        (
            "convnext_tiny",
            {"opset": 16},
            r"(?s)opset=16, expected an integer in \[17, .*needs opset >= 17: .*LayerNormalization",
        ),
    ],
)
def test_bad_name_or_options_raise(name: str, options: dict, match: str) -> None:
    with pytest.raises(zoo.ZooError, match=match):
        zoo.to_onnx(name, **options)
    with pytest.raises(zoo.ZooError, match=match):
        zoo.input_shape(name, **options)


def test_other_opsets() -> None:
    for opset in (11, 13, 18):
        model = zoo.to_onnx("mobilenet_v2", opset=opset, **zoo.SMALL["mobilenet_v2"])
        assert model.opset_import[0].version == opset
        assert run_onnxruntime(model, zoo.random_input("mobilenet_v2", image_size=32)).shape == (
            1,
            10,
        )


@pytest.mark.parametrize(("name", "opset"), [("mobilenet_v3_large", 14), ("efficientnet_b0", 11)])
def test_modern_models_at_their_oldest_opset(name: str, opset: int) -> None:
    options = zoo.SMALL[name]
    model = zoo.to_onnx(name, opset=opset, **options)
    assert model.opset_import[0].version == opset
    assert run_onnxruntime(model, zoo.random_input(name, **options)).shape == (1, 10)


def test_regnet_widths_are_torchvisions() -> None:
    from ember.testing.zoo_modern import REGNET_Y_800MF, regnet_stages, regnet_widths_and_groups

    widths, depths = regnet_stages(**REGNET_Y_800MF)
    assert depths == [1, 3, 8, 2]  # torchvision's regnet_y_800mf: 14 blocks
    assert regnet_widths_and_groups(widths, 16) == ([64, 144, 320, 784], [16] * 4)
    # thin variants keep every stage width a multiple of its (possibly smaller) group width
    w = weights(zoo.to_onnx("regnet_y_800mf", **zoo.SMALL["regnet_y_800mf"]))
    assert w["trunk_output.block2.block2-0.f.b.0.weight"].shape == (32, 16, 3, 3)  # 2 groups
    assert w["trunk_output.block1.block1-0.f.se.fc1.weight"].shape == (2, 16, 1, 1)  # 0.25 * 8


def test_modern_blocks_are_exported_like_torch() -> None:
    graphs = {
        name: zoo.to_onnx(name, **zoo.SMALL[name]).graph
        for name in ("efficientnet_b0", "mobilenet_v3_large", "convnext_tiny")
    }
    ops = {name: {n.op_type for n in graph.node} for name, graph in graphs.items()}
    assert {"Sigmoid", "Mul", "GlobalAveragePool"} <= ops["efficientnet_b0"]  # SiLU, SE
    assert {"HardSwish", "HardSigmoid", "Relu"} <= ops["mobilenet_v3_large"]
    assert {"LayerNormalization", "Transpose", "MatMul", "Erf"} <= ops["convnext_tiny"]

    def attribute(node: onnx.NodeProto, name: str) -> object:
        return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)

    gates = [n for n in graphs["mobilenet_v3_large"].node if n.op_type == "HardSigmoid"]
    # torch's hardsigmoid is relu6(x + 3) / 6, not ONNX's default alpha 0.2
    assert gates and all(np.float32(attribute(n, "alpha")) == np.float32(1 / 6) for n in gates)
    norms = [n for n in graphs["convnext_tiny"].node if n.op_type == "LayerNormalization"]
    assert len(norms) == 18 + 5  # one per block, the stem, three downsamplers, the head
    assert all(attribute(n, "axis") == -1 for n in norms)
    w = {t.name: t.dims for t in graphs["convnext_tiny"].initializer}
    assert list(w["features.5.8.layer_scale"]) == [48, 1, 1]  # stage 3, ninth block
    assert list(w["features.1.0.block.3.weight"]) == [64, 16]  # nn.Linear's (out, in)


# ------------------------------------------------------------------ an independent twin in torch
@pytest.mark.frameworks
@pytest.mark.parametrize("name", MODELS)
def test_matches_a_torch_twin(name: str) -> None:
    torch = pytest.importorskip("torch")
    from tests.testing.torchvision_mini import build

    options = zoo.SMALL[name]
    model = zoo.to_onnx(name, **options)
    net = build(name, options["num_classes"], options["width_multiplier"], make_divisible)
    state = {k: torch.from_numpy(v.copy()) for k, v in weights(model).items()}
    state = {k: v for k, v in state.items() if not k.startswith("const.")}
    expected_keys = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    # same names and shapes as torchvision's state_dict: the architectures line up
    assert set(state) == expected_keys
    net.load_state_dict(state, strict=False)
    assert sum(p.numel() for p in net.parameters()) == parameter_count(model)
    x = zoo.random_input(name, seed=3, **options)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = run_onnxruntime(model, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.frameworks
@pytest.mark.parametrize(
    "name",
    ["resnet50", "mobilenet_v2", "densenet121", "inception_v3", "efficientnet_b0",
     "mobilenet_v3_large", "regnet_y_800mf", "convnext_tiny"],
)  # fmt: skip
def test_torch_twin_counts_match_at_full_size(name: str) -> None:
    pytest.importorskip("torch")
    from tests.testing.torchvision_mini import build

    net = build(name, 1000, 1.0, make_divisible)
    assert sum(p.numel() for p in net.parameters()) == zoo.PUBLISHED_PARAMETERS[name]


@pytest.mark.frameworks
@pytest.mark.parametrize("name", [m for m in MODELS if zoo.MODELS[m].min_image_size > 1])
def test_torch_agrees_on_min_image_size(name: str) -> None:
    torch = pytest.importorskip("torch")
    from tests.testing.torchvision_mini import build

    net = build(name, 3, 0.125, make_divisible)
    size = zoo.MODELS[name].min_image_size
    with torch.no_grad():
        assert net(torch.zeros(1, 3, size, size)).shape == (1, 3)
        with pytest.raises(RuntimeError):
            net(torch.zeros(1, 3, size - 1, size - 1))
