"""The artifact format and the numpy+ctypes runtime, on a hand-written model library.

The library computes ``y = x * w + 1`` (x: input (2, 3), w: param (2, 3)) and
exports the ABI of ember/runtime/c/ember_runtime.h, so these tests pin the
runtime's contract independently of the compiler.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from ember import config as config_module
from ember.errors import EmberRuntimeError
from ember.runtime import load
from ember.runtime.artifact import pack_params, write_artifact

HEADER_DIR = Path(__file__).resolve().parents[2] / "ember" / "runtime" / "c"

MODEL_C = r"""
#include <string.h>
#include "ember_runtime.h"
static const ember_tensor_info in_info[] = {{"x", 2, {2, 3}, EMBER_FLOAT32, 24, 0}};
static const ember_tensor_info out_info[] = {{"y", 2, {2, 3}, EMBER_FLOAT32, 24, 0}};
static const ember_tensor_info par_info[] = {{"w", 2, {2, 3}, EMBER_FLOAT32, 24, PARAM_OFFSET}};
int32_t ember_abi_version(void) { return EMBER_ABI_VERSION; }
int32_t ember_num_inputs(void) { return 1; }
int32_t ember_num_outputs(void) { return 1; }
int32_t ember_num_params(void) { return 1; }
const ember_tensor_info* ember_input_info(int32_t i) { return &in_info[i]; }
const ember_tensor_info* ember_output_info(int32_t i) { return &out_info[i]; }
const ember_tensor_info* ember_param_info(int32_t i) { return &par_info[i]; }
uint64_t ember_workspace_bytes(void) { return 24; }
int32_t ember_run(void* const* in, void* const* out, void* const* par, void* ws) {
  const float* x = in[0]; const float* w = par[0]; float* t = ws; float* y = out[0];
  for (int i = 0; i < 6; ++i) t[i] = x[i] * w[i];
  for (int i = 0; i < 6; ++i) y[i] = t[i] + 1.0f;
  return 0;
}
"""


def _make_artifact(
    tmp_path: Path, *, arch: str | None = None, source: str = MODEL_C
) -> tuple[Path, np.ndarray]:
    w = np.random.default_rng().standard_normal((2, 3)).astype(np.float32)
    blob, offsets = pack_params([np.zeros(5, np.float32), w])  # w at a non-zero offset
    src = tmp_path / "model.c"
    src.write_text(source.replace("PARAM_OFFSET", str(offsets[1])))
    lib = tmp_path / "model.so"
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", f"-I{HEADER_DIR}", "-o", str(lib), str(src)], check=True
    )
    meta = {
        "ember_version": "test",
        "target": {"name": "host", "arch": arch or platform.machine()},
        "inputs": [{"name": "x", "shape": [2, 3], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": [2, 3], "dtype": "float32"}],
        # w sits after a padding array in params.bin, so a wrong offset would show.
        "params": [{"name": "w", "shape": [2, 3], "dtype": "float32", "offset": offsets[1]}],
        "workspace_bytes": 24,
    }
    path = tmp_path / "model.ember"
    write_artifact(path, lib.read_bytes(), blob, meta)
    return path, w


def test_load_and_run(tmp_path):
    path, w = _make_artifact(tmp_path)
    m = load(path)
    x = np.random.default_rng().standard_normal((2, 3)).astype(np.float32)
    (y,) = m.run({"x": x})
    np.testing.assert_allclose(y, x * w + 1, rtol=1e-6)
    stats = m.benchmark(repeat=5, warmup=1)
    assert stats["median_ms"] >= 0 and stats["p90_ms"] >= stats["min_ms"]


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"z": np.zeros((2, 3), np.float32)}, "missing input\\(s\\) 'x'; unknown input\\(s\\) 'z'"),
        ({"x": np.zeros((3, 2), np.float32)}, "input 'x' has shape \\(3, 2\\); .* \\(2, 3\\)"),
        (
            {"x": np.zeros((2, 3), np.float64)},
            "input 'x' has dtype float64; the model expects float32",
        ),
    ],
)
def test_bad_inputs(tmp_path, inputs, message):
    path, _ = _make_artifact(tmp_path)
    with pytest.raises(EmberRuntimeError, match=message):
        load(path).run(inputs)


def test_corrupt_and_foreign_artifacts(tmp_path):
    path, _ = _make_artifact(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte inside the library or params
    bad = tmp_path / "bad.ember"
    bad.write_bytes(bytes(data))
    with pytest.raises(EmberRuntimeError, match="corrupt"):
        load(bad)

    truncated = tmp_path / "truncated.ember"
    truncated.write_bytes(path.read_bytes()[:700])
    with pytest.raises(EmberRuntimeError, match="corrupt or truncated|lacks"):
        load(truncated)

    not_tar = tmp_path / "notes.ember"
    not_tar.write_text("hello")
    with pytest.raises(EmberRuntimeError, match="not a readable ember artifact"):
        load(not_tar)

    with pytest.raises(EmberRuntimeError, match="no artifact at"):
        load(tmp_path / "missing.ember")

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_arch = "aarch64" if platform.machine() != "aarch64" else "x86_64"
    foreign, _ = _make_artifact(other_dir, arch=other_arch)
    with pytest.raises(EmberRuntimeError, match="was compiled for"):
        load(foreign)


def test_metadata_is_json_inside_a_plain_tar(tmp_path):
    path, _ = _make_artifact(tmp_path)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        meta = json.load(tar.extractfile("metadata.json"))
    assert names == ["metadata.json", "model.so", "params.bin"]
    assert meta["format_version"] == 1 and set(meta["sha256"]) == {"model.so", "params.bin"}


def test_c_runner(tmp_path):
    path, w = _make_artifact(tmp_path)
    runner = tmp_path / "ember_run"
    subprocess.run(
        [
            "cc",
            "-O2",
            f"-I{HEADER_DIR}",
            "-o",
            str(runner),
            str(HEADER_DIR / "ember_run.c"),
            "-ldl",
        ],
        check=True,
    )
    x = np.random.default_rng().standard_normal((2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run(
        [str(runner), str(path), str(tmp_path / "out_"), str(tmp_path / "x.npy"), "--repeat", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "median" in out.stdout
    np.testing.assert_allclose(np.load(tmp_path / "out_0.npy"), x * w + 1, rtol=1e-6)

    wrong = subprocess.run(
        [str(runner), str(path), str(tmp_path / "o_")], capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "takes 1 input(s), 0 given" in wrong.stderr


def test_concurrent_runs_each_get_their_own_workspace(tmp_path):
    # The model holds its product in the workspace while it spins, so runs sharing one
    # workspace would read each other's products.
    slow = MODEL_C.replace(
        "  for (int i = 0; i < 6; ++i) y[i]",
        "  for (volatile int k = 0; k < 20000; ++k) {}\n  for (int i = 0; i < 6; ++i) y[i]",
    )
    path, w = _make_artifact(tmp_path, source=slow)
    m = load(path)
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(40):
            x = rng.standard_normal((2, 3)).astype(np.float32)
            (y,) = m.run({"x": x})
            if not np.allclose(y, x * w + 1, rtol=1e-6):
                errors.append(f"thread {seed}: wrong output")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_concurrent_runs_share_the_threads(tmp_path, monkeypatch):
    path, _ = _make_artifact(tmp_path)
    m = load(path)
    calls: list[int] = []

    class BlockingLib:
        """Both runs are inside ember_run at once before either returns."""

        barrier = threading.Barrier(2, timeout=10)

        def ember_run(self, *args: object) -> int:
            self.barrier.wait()
            return 0

    monkeypatch.setattr(m, "_set_threads", calls.append)  # the library's ember_set_num_threads
    m.set_num_threads(4)
    assert m.num_threads == 4
    m._lib = BlockingLib()
    x = np.zeros((2, 3), np.float32)
    threads = [threading.Thread(target=m.run, args=({"x": x},)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == [2, 4]  # the second run in flight gets half the threads
    with pytest.raises(EmberRuntimeError, match="positive count"):
        m.set_num_threads(0)


def test_ember_num_threads_sets_the_default(tmp_path, monkeypatch):
    path, _ = _make_artifact(tmp_path)
    monkeypatch.setenv("EMBER_NUM_THREADS", "3")
    assert load(path).num_threads == 3
    monkeypatch.setenv("EMBER_NUM_THREADS", "many")
    with pytest.raises(EmberRuntimeError, match="EMBER_NUM_THREADS='many'"):
        load(path)


@pytest.mark.parametrize(
    ("ember_env", "omp_env", "expected"),
    [
        (None, "1", 1),  # the convention people and tools set
        (None, "3,1", 3),  # nested levels: the outer one counts
        ("2", "1", 2),  # ember's own variable wins
        ("0", "1", None),  # EMBER_NUM_THREADS=0: no limit
        (None, None, None),  # neither: every usable core
    ],
)
def test_omp_num_threads_sets_the_default_when_ember_num_threads_does_not(
    tmp_path, monkeypatch, ember_env, omp_env, expected
):
    path, _ = _make_artifact(tmp_path)
    for name, value in (("EMBER_NUM_THREADS", ember_env), ("OMP_NUM_THREADS", omp_env)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    cores = len(os.sched_getaffinity(0))
    assert load(path).num_threads == (cores if expected is None else expected)
    assert config_module._read().num_threads == (expected or 0)


@pytest.mark.parametrize("value", ["0", "all", "-2"])
def test_a_bad_omp_num_threads_is_an_error_naming_it(tmp_path, monkeypatch, value):
    path, _ = _make_artifact(tmp_path)
    monkeypatch.delenv("EMBER_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(EmberRuntimeError, match=f"OMP_NUM_THREADS='{value}' is not a thread"):
        load(path)
