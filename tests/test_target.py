"""Target: parsed once from a name, an alias or a TVM-style string; what it tells the rest."""

from __future__ import annotations

import pytest

from ember.errors import TargetError
from ember.runtime.cpu import host_arch, host_cpu_flags
from ember.target import CPU_FEATURES, TARGETS, Target, list_targets


def test_host_is_this_machine() -> None:
    host = Target.parse("host")
    assert host.kind == "cpu" and host.arch == host_arch() and host.is_native
    assert host.cflags == ("-march=native",)
    assert host.key == "host" and str(host) == "host"
    assert host.runs_here()
    assert host.features == host_cpu_flags()
    # TVM's plain "llvm" (and ember's older spellings) mean the same machine.
    for text in ("llvm", "cpu", "llvm -mcpu=native"):
        assert Target.parse(text) == host


@pytest.mark.parametrize(
    "text, lanes, registers, cflags",
    [
        ("llvm -mcpu=haswell", 8, 16, ("-march=haswell",)),
        ("llvm -mcpu=skylake-avx512", 16, 32, ("-march=skylake-avx512",)),
        ("x86_64", 8, 16, ("-march=x86-64-v3",)),
        ("llvm -mcpu=znver3 -mattr=+avx512f,+avx512vl", 16, 32, None),
        ("llvm -mcpu=skylake-avx512 -mattr=-avx512f", 8, 16, None),
    ],
)
def test_vector_width_follows_the_cpu(text, lanes, registers, cflags) -> None:  # type: ignore[no-untyped-def]
    t = Target.parse(text)
    assert t.vector_lanes("float32") == lanes
    assert t.vector_lanes("float64") == lanes // 2
    assert t.vector_lanes("int8") == lanes * 4
    assert t.vector_registers == registers
    if cflags is not None:
        assert t.cflags == cflags
    assert t.vector_bits == lanes * 32


def test_mattr_becomes_compiler_flags_and_features() -> None:
    t = Target.parse("llvm -mcpu=znver3 -mattr=+avx512f,+avx512vl,-fma")
    assert t.cflags == ("-march=znver3", "-mavx512f", "-mavx512vl", "-mno-fma")
    assert t.has("avx512f", "avx512vl") and not t.has("fma")
    assert Target.parse("llvm -mcpu=haswell -mattr=+avx512vnni").has("avx512_vnni")


def test_neo_device_names_are_aliases_never_the_host() -> None:
    c5 = Target.parse("ml_c5")
    assert c5 == Target.parse("ml_m5") == Target.parse("llvm -mcpu=skylake-avx512")
    assert c5.key == Target.parse("llvm -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512").key
    assert c5.cflags == ("-march=skylake-avx512",) and not c5.is_native
    assert c5.has("avx512f") and c5.vector_lanes() == 16
    assert str(c5) == "ml_c5"  # messages name what the user wrote
    assert Target.parse("ml_c4").mcpu == "haswell"
    assert Target.parse("ml_m4").mcpu == "broadwell"
    names = {t.name for t in list_targets()}
    assert {"host", "c", "skylake-avx512"} <= names
    assert all(Target.parse(n).kind in ("cpu", "c") for n in TARGETS)


def test_the_artifact_record_says_what_a_cpu_needs() -> None:
    record = Target.parse("ml_c5").record()
    assert record["arch"] == "x86_64" and record["mcpu"] == "skylake-avx512"
    assert {"avx512f", "avx512vl", "avx2", "fma"} <= set(record["cpu_features"])
    assert record["cflags"] == ["-march=skylake-avx512"] and record["vector_bits"] == 512
    host = Target.parse("host").record()
    # A native build needs the ISA extensions the compiler may use, not every cpuinfo flag.
    assert set(host["cpu_features"]) <= host_cpu_flags()
    assert "fpu" not in host["cpu_features"]


@pytest.mark.skipif(host_arch() != "x86_64", reason="x86 host")
def test_runs_here_compares_features() -> None:
    assert Target.parse("llvm -mcpu=x86-64").runs_here()
    avx512 = Target.parse("llvm -mcpu=skylake-avx512")
    has_avx512 = {"avx512f", "avx512vl", "avx512bw", "avx512dq", "avx512cd"} <= host_cpu_flags()
    assert avx512.runs_here() == has_avx512
    assert not Target.parse("llvm -mtriple=aarch64-linux-gnu -mcpu=cortex-a72").runs_here()


def test_other_architectures_and_kinds_parse() -> None:
    a72 = Target.parse("llvm -mtriple=aarch64-linux-gnu -mcpu=cortex-a72")
    assert (a72.arch, a72.triple, a72.vector_lanes(), a72.vector_registers) == (
        "aarch64",
        "aarch64-linux-gnu",
        4,
        32,
    )
    assert a72.cflags == ("-mcpu=cortex-a72",)
    if host_arch() != "aarch64":
        assert a72.cc == "aarch64-linux-gnu-gcc"  # Debian's cross compiler
    pi3 = Target.parse("llvm -mtriple=armv7l-linux-gnueabihf -mcpu=cortex-a53 -mattr=+neon")
    assert pi3.arch == "armv7l" and pi3.has("neon")  # as 32-bit ARM's /proc/cpuinfo says
    assert "-mfloat-abi=hard" in pi3.cflags
    assert Target.parse("c").kind == "c" and Target.parse("c").cflags == ()
    vta = Target.parse("vta -config=pynq")
    assert (vta.kind, vta.option("config")) == ("vta", "pynq")
    assert Target.parse("cuda -arch=sm_90").option("arch") == "sm_90"


def test_a_cpu_the_table_lacks_is_asked_of_the_compiler() -> None:
    if host_arch() != "x86_64":
        pytest.skip("the compiler query is for x86 CPU names")
    assert "icelake-client" not in CPU_FEATURES
    t = Target.parse("llvm -mcpu=icelake-client")
    assert t.has("avx512f", "avx512_vnni") and t.vector_lanes() == 16


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty target string"),
        ("tpu", "unknown target 'tpu'.*hint: targets: host"),
        ("host -foo=1", "unknown target option '-foo=1'"),
        ("llvm -mcpu=", "unknown target option '-mcpu='"),
        ("llvm -mcpu=pentium9000", "unknown CPU 'pentium9000'"),
        ("llvm -mtriple=riscv64-linux-gnu", "unknown architecture 'riscv64'"),
        ("llvm -mtriple=aarch64-none-eabi", "Linux only"),
        ("llvm -mattr=avx2", "must start with \\+ or -"),
        ("llvm -mcpu=a;b", "invalid value"),
        ("llvm -mtriple=aarch64-linux-gnu -mcpu=native", "not aarch64"),
    ],
)
def test_bad_targets_say_what_is_wrong(text, message) -> None:  # type: ignore[no-untyped-def]
    if "aarch64" in text and "native" in text and host_arch() == "aarch64":
        pytest.skip("native is aarch64 here")
    with pytest.raises(TargetError, match=f"(?s){message}"):
        Target.parse(text)
    with pytest.raises(TargetError, match="a target is a string"):
        Target.parse(42)  # type: ignore[arg-type]


def test_describe_is_one_line() -> None:
    line = Target.parse("ml_c5").describe()
    assert line.startswith("x86_64 skylake-avx512, 512-bit vectors (16 x float32)")
    assert "\n" not in Target.parse("host").describe()


def test_only_entry_points_parse_target_strings() -> None:
    """A target string is parsed where it enters (the CLI, compile, build, the tuner's
    entry points); everything below takes the Target object."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "ember"
    sites = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "parse"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "Target"
                ):
                    sites.append(f"{path.relative_to(package.parent)}:{func.name}")
    assert sorted(sites) == [
        "ember/autotune/extract.py:extract_tasks",
        "ember/autotune/graph_tuner.py:tune_graph",
        "ember/cli/common.py:parse_target",
        "ember/dispatch/task.py:create_task",
        "ember/driver/compiler.py:compile",
        "ember/driver/native.py:build",
    ]
