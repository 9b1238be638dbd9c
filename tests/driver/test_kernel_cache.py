"""The kernel source cache (ember.driver.kernel_cache) and compile's timings: hits and misses,
keys that change with the content, and compiles that give the same C (and, from a warm
cache, the same library) as a cold one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import ember
from ember.driver import kernel_cache, toolchain
from ember.driver.kernel_cache import cached_source, code_fingerprint, source_key
from ember.graph import interpret
from ember.graph.ir import Function, Module, TensorType, Var, const
from ember.ops import call
from ember.target import Target


def _model() -> tuple[Module, dict[str, np.ndarray]]:
    """conv + bias + relu, then a residual add: three small kernels."""
    rng = np.random.default_rng()
    x = Var("data", TensorType((1, 4, 10, 10), "float32"))
    w = Var("w", TensorType((8, 4, 3, 3), "float32"))
    y = call("nn.conv2d", x, w, padding=(1, 1, 1, 1), name="conv")
    bias = const(rng.standard_normal((1, 8, 1, 1)).astype(np.float32))
    y = call("add", y, bias, name="bias")
    y = call("nn.relu", y, name="relu")
    y = call("add", y, call("nn.max_pool2d", y, pool_size=(1, 1), name="pool"), name="add")
    params = {"w": (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32)}
    return Module.from_function(Function((x, w), y)), params


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty kernel cache (sources and objects) for this test only."""
    cfg = dataclasses.replace(ember.config.config, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(kernel_cache, "config", cfg)
    monkeypatch.setattr(toolchain, "config", cfg)
    return cfg.cache_dir


def test_cached_source_miss_then_hit(tmp_path: Path) -> None:
    made = []

    def generate() -> str:
        made.append(1)
        return "int k(void) { return 1; }\n"

    hits, misses = kernel_cache.stats["hits"], kernel_cache.stats["misses"]
    first = cached_source("k1", generate, cache_dir=tmp_path)
    second = cached_source("k1", generate, cache_dir=tmp_path)
    assert first == second == "int k(void) { return 1; }\n"
    assert len(made) == 1  # the second read the file
    assert kernel_cache.stats["misses"] == misses + 1 and kernel_cache.stats["hits"] == hits + 1
    cached_source("k2", generate, cache_dir=tmp_path)  # another key: generated again
    assert len(made) == 2
    assert sorted(p.name for p in (tmp_path / "sources").iterdir()) == ["k1.c", "k2.c"]


def test_source_key_follows_the_content(tmp_path: Path) -> None:
    host = Target.parse("host")
    key = source_key("3c2e942df007", "fused_nn_conv2d_3c2e942df007", host)
    assert key == source_key("3c2e942df007", "fused_nn_conv2d_3c2e942df007", host)
    assert key != source_key("3c2e942df008", "fused_nn_conv2d_3c2e942df007", host)
    assert key != source_key("3c2e942df007", "fused_nn_conv2d_other", host)
    avx512 = Target.parse("llvm -mcpu=skylake-avx512")
    assert key != source_key("3c2e942df007", "fused_nn_conv2d_3c2e942df007", avx512)


def test_code_fingerprint_changes_with_any_source_file(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "tir").mkdir(parents=True)
    (root / "tir" / "simplify.py").write_text("RULES = 1\n")
    before = code_fingerprint(root)
    (root / "tir" / "simplify.py").write_text("RULES = 2\n")
    code_fingerprint.cache_clear()  # computed once per process: a new process sees the edit
    assert code_fingerprint(root) != before
    code_fingerprint.cache_clear()


def test_warm_compile_reads_every_kernel_and_matches_cold(cache: Path) -> None:
    mod, params = _model()
    misses = kernel_cache.stats["misses"]
    cold = ember.compile(mod, params, target="host")
    kernels = cold.metadata["graph"]["distinct_kernels"]
    assert kernel_cache.stats["misses"] == misses + kernels
    assert len(list((cache / "sources").iterdir())) == kernels

    hits, compiles = kernel_cache.stats["hits"], toolchain.stats["compiles"]
    warm = ember.compile(mod, params, target="host")
    assert kernel_cache.stats["hits"] == hits + kernels
    assert toolchain.stats["compiles"] == compiles  # every object found by its C text
    assert warm.sources == cold.sources
    assert warm.lib_bytes == cold.lib_bytes
    assert "lower_cpu_s" not in warm.timings  # nothing lowered

    data = np.random.default_rng().standard_normal((1, 4, 10, 10)).astype(np.float32)
    ref = interpret(mod, params, {"data": data})  # a list: one array per output
    got = warm.load().run({"data": data})
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5)


def test_edited_cache_file_is_what_a_hit_returns_so_keys_must_cover_content(cache: Path) -> None:
    """The cache trusts its key: a file is read back as stored. Here an edit to the stored C
    shows up in the next compile, which is why every input of the C text is in the key."""
    mod, params = _model()
    ember.compile(mod, params, target="host")
    for path in (cache / "sources").iterdir():
        path.write_text(path.read_text() + "/* edited */\n")
    again = ember.compile(mod, params, target="host")
    assert all(
        src.endswith("/* edited */\n")
        for n, src in again.sources.items()
        if n not in ("ember_aot", "ember_runtime")
    )


def test_cold_compiles_give_the_same_c_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod, params = _model()
    runs = []
    for k in range(2):
        cfg = dataclasses.replace(ember.config.config, cache_dir=tmp_path / f"cache{k}")
        monkeypatch.setattr(kernel_cache, "config", cfg)
        monkeypatch.setattr(toolchain, "config", cfg)
        runs.append(ember.compile(mod, params, target="host"))
    assert list(runs[0].sources.items()) == list(runs[1].sources.items())


def test_compile_reports_python_and_compiler_time(cache: Path) -> None:
    mod, params = _model()
    lib = ember.compile(mod, params, target="host")
    t = lib.timings
    for phase in ("graph", "lower", "codegen", "cc", "link"):
        assert t[f"{phase}_cpu_s"] >= 0 and t[f"{phase}_wall_s"] >= 0
    assert t["cc_cpu_s"] > 0  # the compiler processes' own CPU time (os.wait4)
    assert t["total_wall_s"] >= t["graph_wall_s"]
    assert "timings" not in lib.metadata  # not part of the artifact


def test_tuned_compiles_do_not_use_the_source_cache(cache: Path) -> None:
    mod, params = _model()
    hits, misses = kernel_cache.stats["hits"], kernel_cache.stats["misses"]
    ember.compile(mod, params, target="host", schedules=ember.dispatch.DispatchContext())
    assert (kernel_cache.stats["hits"], kernel_cache.stats["misses"]) == (hits, misses)
    assert not (cache / "sources").exists()


def test_kernels_with_custom_ops_bypass_the_source_cache() -> None:
    """A custom op's compute and schedule are the user's code, which the key does not
    cover: a kernel that calls one is lowered on every compile, never read back."""
    from ember import custom
    from ember.driver.compiler import _builtin_only
    from ember.graph.ir import Call, Function, TensorType, Var
    from ember.ops import NoAttrs

    op = custom.register_op("cachetest.twice", library="cachetest_ops")
    op.type_rule(lambda types, attrs: types[0])
    try:
        x = Var("x", TensorType((4,), "float32"))
        relu = ember.ops.call("nn.relu", x)
        assert _builtin_only(Function((x,), relu))
        assert not _builtin_only(Function((x,), Call(op, (relu,), NoAttrs())))
    finally:
        custom.unregister_library("cachetest_ops")
