"""Darknet frontend: cfg + weights written by the test's own writer, against a torch forward pass.

The fixtures (tests/frontend/darknet_testlib.py) are the real architectures'
layer lists with random arrays, written in Darknet's file layout by code that
shares nothing with ember's parser, and run by an independent torch forward
pass of Darknet's C semantics; ember's reference executor (and, for two nets,
the compiled artifact) must match it to rtol 1e-4 on fresh random inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402
from ember.errors import FrontendError, UnsupportedOpError  # noqa: E402
from ember.frontend import detect_framework  # noqa: E402
from ember.frontend.darknet import from_darknet, supported_ops  # noqa: E402
from ember.graph import interpret  # noqa: E402
from tests.frontend import darknet_testlib as lib  # noqa: E402

RTOL = 1e-4

# (layers, input C x H x W): the fast tests' sizes
NETS = {
    "yolov3_tiny": (lambda: lib.yolov3_tiny(divisor=4), (3, 96, 96)),
    "darknet19": (lambda: lib.darknet19(divisor=8, classes=100), (3, 64, 64)),
    "tiny_darknet": (lambda: lib.tiny_darknet(divisor=4, classes=100), (3, 64, 64)),
    "features": (lib.feature_net, (3, 16, 16)),
}


def fresh_input(chw: tuple[int, int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (1, *chw)).astype(np.float32)


def assert_close(got: list[np.ndarray], want: list[np.ndarray], what: str) -> None:
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what}: output {i} {g.shape} {w.shape}"
        atol = RTOL * max(float(np.abs(w).max()), 1e-3)
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=atol, err_msg=f"{what}: output {i}")


def written(tmp_path: Path, name: str, **kwargs):
    build, chw = NETS[name]
    layers = build()
    cfg, weights, arrays = lib.write_model(tmp_path, name, layers, chw, **kwargs)
    return layers, arrays, cfg, weights, chw


@pytest.mark.parametrize("name", list(NETS))
def test_matches_torch_reference(name: str, tmp_path: Path) -> None:
    layers, arrays, cfg, _, chw = written(tmp_path, name)
    mod, params = from_darknet(cfg)
    assert mod.main.params[0].name == "data" and mod.main.params[0].type.shape == (1, *chw)
    x = fresh_input(chw, seed=1)
    got = interpret(mod, params, {"data": x})
    assert_close(got, lib.reference_forward(layers, arrays, x), name)


def test_output_names_and_shapes(tmp_path: Path) -> None:
    _, _, cfg, _, _ = written(tmp_path, "yolov3_tiny")
    mod, _ = from_darknet(cfg)
    assert list(mod.main.attrs["output_names"]) == ["yolo_16", "yolo_23"]
    assert [o.shape for o in mod.main.body.type.fields] == [(1, 255, 3, 3), (1, 255, 6, 6)]
    _, _, cfg, _, _ = written(tmp_path, "darknet19")
    mod, _ = from_darknet(cfg)
    assert list(mod.main.attrs["output_names"]) == ["cost_26"]
    assert mod.main.body.type.shape == (1, 100)  # the softmax, flattened as Darknet's output


@pytest.mark.parametrize("name", ["yolov3_tiny", "tiny_darknet"])
def test_compiled_matches_reference(name: str, tmp_path: Path) -> None:
    layers, arrays, cfg, _, chw = written(tmp_path, name)
    mod, params = ember.frontend.load(cfg)  # detected as darknet, weights found beside
    model = ember.load(ember.compile(mod, params, target="host").export(tmp_path / "m.ember"))
    x = fresh_input(chw, seed=2)
    outs = model.run({"data": x})
    assert_close(outs, lib.reference_forward(layers, arrays, x), f"{name} compiled vs torch")
    assert_close(outs, interpret(mod, params, {"data": x}), f"{name} compiled vs interpret")


@pytest.mark.parametrize("version", [(0, 1, 0), (0, 2, 5), (1, 0, 0), (0, 1001, 0)])
def test_weights_header_versions(version: tuple[int, int, int], tmp_path: Path) -> None:
    """seen is 32-bit before 0.2, 64-bit from it; minor > 1000 marks transposed FC weights."""
    layers, arrays, cfg, _, chw = written(tmp_path, "features", version=version)
    mod, params = from_darknet(cfg)
    x = fresh_input(chw, seed=3)
    assert_close(
        interpret(mod, params, {"data": x}), lib.reference_forward(layers, arrays, x), str(version)
    )


def test_shape_spec_changes_batch_and_size(tmp_path: Path) -> None:
    layers, arrays, cfg, _, _ = written(tmp_path, "yolov3_tiny")
    mod, params = from_darknet(cfg, shape={"data": (2, 3, 64, 64)})
    x = np.random.default_rng(4).uniform(0, 1, (2, 3, 64, 64)).astype(np.float32)
    assert_close(
        interpret(mod, params, {"data": x}), lib.reference_forward(layers, arrays, x), "2x64"
    )
    with pytest.raises(FrontendError, match="no input called"):
        from_darknet(cfg, shape={"input": (1, 3, 64, 64)})
    with pytest.raises(FrontendError, match=r"takes \(N, 3, H, W\)"):
        from_darknet(cfg, shape={"data": (1, 4, 64, 64)})


def test_file_pairs_and_detection(tmp_path: Path) -> None:
    _, _, cfg, weights, _ = written(tmp_path, "tiny_darknet")
    for path in (cfg, weights, tmp_path):
        assert detect_framework(path) == "darknet"
        mod, _ = ember.frontend.load(path)
        assert mod.main.params[0].name == "data"
    renamed = tmp_path / "other" / "tiny_final.weights"
    renamed.parent.mkdir()
    renamed.write_bytes(weights.read_bytes())
    from_darknet(cfg, renamed)  # the pair given
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "net.cfg").write_text(cfg.read_text())
    with pytest.raises(FrontendError, match="no Darknet .weights file 'net.weights' beside"):
        from_darknet(alone / "net.cfg")
    with pytest.raises(FrontendError, match="float32"):
        from_darknet(cfg, dtype="float16")


# ----------------------------------------------------------------------------- bad input


def test_truncated_weights_name_the_layer(tmp_path: Path) -> None:
    _, _, cfg, weights, _ = written(tmp_path, "yolov3_tiny")
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(
        FrontendError,
        match=r"is truncated: Darknet yolov3_tiny.cfg line \d+ "
        r"\(\[convolutional\], layer 22 'convolutional_22'\) needs \d+ weights",
    ):
        from_darknet(cfg)
    weights.write_bytes(data[:10])
    with pytest.raises(FrontendError, match="shorter than its header"):
        from_darknet(cfg)
    weights.write_bytes(data + b"\0" * 8)
    with pytest.raises(FrontendError, match="8 bytes \\(2 floats\\) left after the last layer"):
        from_darknet(cfg)


def test_unknown_sections_listed_with_their_lines(tmp_path: Path) -> None:
    layers = lib.tiny_darknet(divisor=8, classes=10)
    layers[3:3] = [("region", {"classes": 2}), ("reorgg", {})]
    cfg, _, _ = lib.write_model(tmp_path, "odd", layers, (3, 32, 32))
    with pytest.raises(UnsupportedOpError, match="2 unsupported op") as info:
        from_darknet(cfg)
    message = str(info.value)
    assert "[region]: 1 node(s): 'odd.cfg line" in message and "(layer 3)" in message
    assert "[reorgg]" in message and "ember.frontend.darknet.supported_ops()" in message


def test_layer_reference_out_of_range(tmp_path: Path) -> None:
    cfg, _, _ = lib.write_model(tmp_path, "bad", lib.yolov3_tiny(divisor=8), (3, 64, 64))
    text = cfg.read_text().replace("layers = -1, 8", "layers = -1, 30")
    cfg.write_text(text)
    line = text.splitlines().index("layers = -1, 30") + 1
    with pytest.raises(
        FrontendError,
        match=rf"bad.cfg line {line} \(\[route\], layer 20 'route_20'\): "
        r"layers=30 refers to layer 30, but only layers 0..19",
    ):
        from_darknet(cfg)
    cfg, _, _ = lib.write_model(tmp_path, "bad2", lib.feature_net(), (3, 16, 16))
    cfg.write_text(cfg.read_text().replace("from = -2", "from = -9"))
    with pytest.raises(FrontendError, match=r"layer 4 'shortcut_4'\): from=-9 refers to layer -5"):
        from_darknet(cfg)


def test_malformed_cfg_and_options(tmp_path: Path) -> None:
    _, _, cfg, _, _ = written(tmp_path, "features")
    text = cfg.read_text()
    cfg.write_text(text.replace("activation = relu\n", "activation = hardswish\n", 1))
    with pytest.raises(
        FrontendError, match=r"layer 3 'convolutional_3'\): activation=hardswish is not supported"
    ):
        from_darknet(cfg)
    cfg.write_text(text.replace("size = 3", "size = three", 1))
    with pytest.raises(
        FrontendError,
        match=r"features.cfg line \d+ \(\[convolutional\], layer 0 "
        r"'convolutional_0'\): size='three' is not an integer",
    ):
        from_darknet(cfg)
    cfg.write_text(text.replace("[net]", "[net\n", 1))
    with pytest.raises(
        FrontendError, match="features.cfg line 1: '\\[net' is not a section header"
    ):
        from_darknet(cfg)
    cfg.write_text(text.replace("classes = 1\nnum = 3", "classes = 2\nnum = 3", 1))
    with pytest.raises(
        FrontendError, match="the input has 12 channels; 2 anchors x \\(5 \\+ 2 classes\\)"
    ):
        from_darknet(cfg)
    cfg.write_text(text.split("[convolutional]")[0].replace("width=16", "width=0"))
    with pytest.raises(FrontendError, match="must give channels=, height= and width="):
        from_darknet(cfg, tmp_path / "features.weights")


def test_supported_sections() -> None:
    for kind in ("convolutional", "maxpool", "avgpool", "upsample", "route", "shortcut", "yolo"):
        assert kind in supported_ops()
    assert {"softmax", "connected", "dropout"} <= set(supported_ops())


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, build, chw",
    [
        ("yolov3-tiny", lib.yolov3_tiny, (3, 416, 416)),
        ("darknet19", lib.darknet19, (3, 224, 224)),
        ("tiny-darknet", lib.tiny_darknet, (3, 224, 224)),
    ],
    ids=["yolov3-tiny", "darknet19", "tiny-darknet"],
)
def test_full_size_nets(name: str, build, chw, tmp_path: Path) -> None:
    layers = build()
    cfg, _, arrays = lib.write_model(tmp_path, name, layers, chw)
    mod, params = from_darknet(cfg)
    x = fresh_input(chw, seed=5)
    assert_close(
        interpret(mod, params, {"data": x}), lib.reference_forward(layers, arrays, x), name
    )


# ----------------------------------------------------------------------------- a second reader


def opencv_dnn():
    """OpenCV's DNN module, which reads Darknet files itself (removed in OpenCV 5)."""
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip(f"OpenCV {cv2.__version__} has no Darknet reader (OpenCV 4 does)")
    return cv2.dnn


@pytest.mark.parametrize("name", ["yolov3_tiny", "darknet19", "tiny_darknet"])
def test_matches_opencv(name: str, tmp_path: Path) -> None:
    """OpenCV reads the same files with its own parser and runs them with its own kernels.

    For yolov3-tiny it gives the raw maps before each [yolo] (its yolo layer decodes
    boxes); the logistic on x, y and the scores is applied here.
    """
    dnn = opencv_dnn()
    layers, _, cfg, weights, chw = written(tmp_path, name)
    net = dnn.readNetFromDarknet(str(cfg), str(weights))
    x = fresh_input(chw, seed=6)
    net.setInput(x)
    mod, params = from_darknet(cfg)
    ours = interpret(mod, params, {"data": x})
    if name != "yolov3_tiny":
        assert_close(ours, [net.forward().reshape(ours[0].shape)], f"{name} vs OpenCV")
        return
    expected = []
    for raw in net.forward(["conv_15", "conv_22"]):  # the convolutions feeding yolo_16, yolo_23
        grid = raw.reshape(1, 3, 85, *raw.shape[2:]).copy()
        grid[:, :, :2] = 1 / (1 + np.exp(-grid[:, :, :2]))
        grid[:, :, 4:] = 1 / (1 + np.exp(-grid[:, :, 4:]))
        expected.append(grid.reshape(raw.shape))
    assert_close(ours, expected, "yolov3-tiny vs OpenCV")
