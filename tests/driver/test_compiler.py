"""ember.compile end to end: graph -> one library -> artifact -> runtime (Python and C)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ember
from ember.errors import TargetError
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Tuple, Var, const
from ember.ops import call

REPO = Path(__file__).resolve().parents[2]


def _rand(*shape, scale=1.0):
    return (np.random.default_rng().standard_normal(shape) * scale).astype(np.float32)


def _small_cnn(batch=1) -> tuple[Module, dict[str, np.ndarray]]:
    """conv-bn-relu, residual block, maxpool, global pool, dense, softmax: the CNN kernel zoo."""
    x = Var("data", TensorType((batch, 3, 16, 16), "float32"))
    w1 = Var("w1", TensorType((8, 3, 3, 3), "float32"))
    params = {"w1": _rand(8, 3, 3, 3, scale=0.3)}
    y = call("nn.conv2d", x, w1, strides=(2, 2), padding=(1, 1, 1, 1), name="conv1")
    bn = [
        const(_rand(8) * 0.1 + 1),
        const(_rand(8) * 0.1),
        const(_rand(8) * 0.1),
        const(np.abs(_rand(8)) + 0.5),
    ]
    y = call("nn.batch_norm", y, *bn, name="bn1")
    y = call("nn.relu", y, name="relu1")
    z = call(
        "nn.conv2d",
        y,
        const(_rand(8, 1, 3, 3, scale=0.3)),
        padding=(1, 1, 1, 1),
        groups=8,
        name="dw",
    )
    z = call("nn.relu", call("add", z, y, name="residual"), name="relu2")
    z = call(
        "nn.max_pool2d", z, pool_size=(3, 3), strides=(2, 2), padding=(1, 1, 1, 1), name="pool"
    )
    g = call("nn.global_avg_pool2d", z, name="gap")
    f = call("reshape", g, newshape=(batch, 8), name="flatten")
    d = call("nn.dense", f, const(_rand(10, 8, scale=0.3)), const(_rand(10)), name="fc")
    s = call("nn.softmax", d, name="prob")
    return Module.from_function(Function((x, w1), Tuple((s, d)))), params


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    mod, params = _small_cnn()
    lib = ember.compile(mod, params, target="host")
    path = tmp_path_factory.mktemp("art") / "small.ember"
    lib.export(path)
    return mod, params, lib, path


def test_artifact_matches_reference(compiled):
    mod, params, lib, path = compiled
    m = ember.load(path)
    for _ in range(2):  # fresh inputs each time; the workspace is reused between runs
        x = _rand(1, 3, 16, 16)
        ours = m.run({"data": x})
        ref = interpret(mod, params, {"data": x})
        assert len(ours) == 2
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_concurrent_runs_from_threads_match_the_reference(compiled):
    import threading

    mod, params, _, path = compiled
    m = ember.load(path)
    cases = [_rand(1, 3, 16, 16) for _ in range(4)]
    want = [interpret(mod, params, {"data": x}) for x in cases]
    bad: list[int] = []

    def worker(k: int) -> None:
        for _ in range(25):
            got = m.run({"data": cases[k]})
            if not all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(got, want[k])):
                bad.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_metadata_and_memory_plan(compiled):
    _, _, lib, _ = compiled
    meta = lib.metadata
    assert [i["name"] for i in meta["inputs"]] == ["data"]
    assert [o["shape"] for o in meta["outputs"]] == [[1, 10], [1, 10]]
    mem = meta["memory"]
    assert 0 < mem["workspace_bytes"] <= mem["total_intermediate_bytes"]
    # weights live in params.bin, not in the C source
    assert len(lib.params) >= 2 and "static const float" not in lib.get_source()


def test_identical_kernels_compile_once():
    x = Var("x", TensorType((1, 4, 8, 8), "float32"))
    y = x
    for _ in range(3):  # three convs of one shape, different weights: one kernel
        y = call("nn.relu", call("nn.conv2d", y, const(_rand(4, 4, 3, 3)), padding=(1, 1, 1, 1)))
    lib = ember.compile(Module.from_function(Function((x,), y)), {}, target="host")
    assert lib.metadata["graph"]["kernel_calls"] == 3
    assert lib.metadata["graph"]["distinct_kernels"] == 1


def test_batch_and_wrong_input(compiled, tmp_path):
    mod, params = _small_cnn(batch=2)
    m = ember.compile(mod, params).load()
    x = _rand(2, 3, 16, 16)
    np.testing.assert_allclose(
        m.run({"data": x})[0], interpret(mod, params, {"data": x})[0], rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ember.errors.EmberRuntimeError, match="compiled for \\(2, 3, 16, 16\\)"):
        m.run({"data": _rand(1, 3, 16, 16)})


def test_unknown_target():
    mod, params = _small_cnn()
    with pytest.raises(TargetError, match="unknown target 'tpu'"):
        ember.compile(mod, params, target="tpu")


def test_c_runner_runs_the_artifact(compiled, tmp_path):
    mod, params, _, path = compiled
    c_dir = REPO / "ember" / "runtime" / "c"
    runner = tmp_path / "ember_run"
    subprocess.run(
        ["cc", "-O2", f"-I{c_dir}", "-o", str(runner), str(c_dir / "ember_run.c"), "-ldl"],
        check=True,
    )
    x = _rand(1, 3, 16, 16)
    np.save(tmp_path / "data.npy", x)
    subprocess.run(
        [str(runner), str(path), str(tmp_path / "out"), str(tmp_path / "data.npy")],
        check=True,
        capture_output=True,
    )
    ref = interpret(mod, params, {"data": x})
    for i in range(2):
        np.testing.assert_allclose(np.load(tmp_path / f"out{i}.npy"), ref[i], rtol=1e-4, atol=1e-5)


def test_artifact_runs_where_only_numpy_is_installed(compiled, tmp_path):
    """A bare venv whose only package is numpy (copied in), plus ember's runtime sources."""
    mod, params, _, path = compiled
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    shutil.copytree(Path(np.__file__).parent, site / "numpy")
    libs = Path(np.__file__).parent.parent / "numpy.libs"
    if libs.exists():
        shutil.copytree(libs, site / "numpy.libs")
    pkg = tmp_path / "src" / "ember"
    shutil.copytree(REPO / "ember" / "runtime", pkg / "runtime")
    for name in ("__init__.py", "errors.py"):
        shutil.copy(REPO / "ember" / name, pkg / name)
    x = _rand(1, 3, 16, 16)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        import numpy as np
        import ember
        for name in ("onnx", "onnxruntime", "torch"):
            assert importlib.util.find_spec(name) is None, name + " is installed"
        m = ember.load({str(path)!r})
        out = m.run({{"data": np.load({str(tmp_path / "x.npy")!r})}})
        np.save({str(tmp_path / "y.npy")!r}, out[0])
        compiler = ("ember.graph", "ember.te", "ember.driver")
        assert not any(k.startswith(compiler) for k in sys.modules)
        """
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "src")}
    subprocess.run([str(venv / "bin" / "python"), "-c", script], check=True, env=env)
    ref = interpret(mod, params, {"data": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ref, rtol=1e-4, atol=1e-5)


def _winograd_model() -> tuple[Module, dict[str, np.ndarray]]:
    """One 3x3 stride-1 conv of 64 -> 64 channels on 16x16: Winograd F(4x4) by the rule."""
    x = Var("data", TensorType((1, 64, 16, 16), "float32"))
    y = call("nn.conv2d", x, const(_rand(64, 64, 3, 3, scale=0.05)), padding=(1, 1, 1, 1))
    return Module.from_function(Function((x,), call("nn.relu", y))), {}


def test_profile_flops_of_winograd_kernels_count_their_arithmetic():
    mod, params = _winograd_model()
    lib = ember.compile(mod, params, target="host")
    steps = {s["name"]: s["flops"] for s in lib.metadata["steps"]}
    gemm = [n for n in steps if "gemm" in n]
    assert gemm, steps
    # M (6, 6, O/o, tiles, o) sums C = 64 products per element: 2 * 36 * 64 * 16 * 64.
    assert steps[gemm[0]] == 2 * 36 * 64 * 16 * 64
    direct = 2 * 64 * 16 * 16 * 64 * 9
    # The three Winograd kernels do less than the direct conv, but the same order of work
    # (the profile once showed 100x too little: one FLOP per output element).
    assert direct / 4 < sum(steps.values()) < direct


def test_compile_for_another_x86_cpu_records_it(tmp_path):
    mod, params = _winograd_model()
    lib = ember.compile(mod, params, target="ml_c5")
    record = lib.metadata["target"]
    assert record["name"] == "ml_c5" and record["mcpu"] == "skylake-avx512"
    assert "avx512f" in record["cpu_features"]
    # AVX-512's 16-lane channel blocks in the generated code, whatever the compiling host.
    assert "float32x16" in lib.get_source()
    assert "-march=skylake-avx512" in record["cflags"]
    if not {"avx512f", "avx512vl", "avx512bw"} <= ember.runtime.cpu.host_cpu_flags():
        with pytest.raises(ember.errors.EmberRuntimeError, match="compiled for ml_c5"):
            ember.load(lib.export(tmp_path / "c5.ember"))


def test_targets_without_a_code_generator_are_refused_early():
    mod, params = _small_cnn()
    for text in ("cuda -arch=sm_90", "vta -config=pynq"):
        with pytest.raises(TargetError, match="cannot generate code for"):
            ember.compile(mod, params, target=text)


def test_dump_ir_writes_every_graph_pass(tmp_path):
    mod, params = _small_cnn()
    ember.compile(mod, params, target="host", dump_ir=tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.txt"))
    assert "1_optimize/00_input.txt" in names and "1_optimize/01_bind_params.txt" in names
    kernels = [n for n in names if n.startswith("2_kernels/")]
    assert [n.split("_", 2)[-1] for n in kernels[1:]] == [
        "alter_layout.txt",
        "winograd_conv2d.txt",
        "pack_dense.txt",
        "fuse_ops.txt",
    ]
    assert "nn.conv2d_nchwc" in (tmp_path / "2_kernels" / "01_alter_layout.txt").read_text()


def _rewrite_target(path: Path, record: dict) -> Path:
    """A copy of the artifact at ``path`` whose metadata has ``record`` as its target."""
    out = path.with_name(f"{path.stem}_rewritten.ember")
    with tarfile.open(path) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "metadata.json":
                meta = json.loads(data)
                meta["target"] = record
                data = json.dumps(meta).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out


def test_artifacts_with_the_older_target_record_still_load(compiled):
    mod, params, _, path = compiled
    # What ember wrote before targets were parsed once (no kind, key, mcpu or triple).
    old = {"name": "host", "arch": os.uname().machine, "cpu_features": [], "cflags": []}
    m = ember.load(_rewrite_target(path, old))
    x = _rand(1, 3, 16, 16)
    np.testing.assert_allclose(
        m.run({"data": x})[0], interpret(mod, params, {"data": x})[0], rtol=1e-4, atol=1e-5
    )
    lacking = dict(old, name="a future CPU", cpu_features=["ember_test_feature"])
    with pytest.raises(ember.errors.EmberRuntimeError, match="lacks: ember_test_feature"):
        ember.load(_rewrite_target(path, lacking))
