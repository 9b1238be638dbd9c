"""Targets: the machine code is built for, parsed once from a string.

    Target.parse("host")                               # this CPU (-march=native)
    Target.parse("ml_c5")                              # SageMaker Neo's name: Skylake-SP AVX-512
    Target.parse("llvm -mcpu=skylake-avx512")          # TVM's spelling of the same target
    Target.parse("llvm -mtriple=aarch64-linux-gnu -mcpu=cortex-a72")
    Target.parse("c")                                  # portable C, no -march
    t.arch, t.features, t.vector_lanes("float32"), t.cc, t.cflags, t.runs_here()

Only the public entry points parse (the CLI, ``ember.compile``, ``ember.build`` and
the tuner's entry points); the :class:`Target` object then flows through graph
passes, op strategy, schedules, code generation, the toolchain and the artifact's
metadata (:meth:`Target.record`), which the runtime checks without importing this
module. Named targets live in one table, :data:`TARGETS` (see :func:`list_targets`);
the ARM and VTA issues add their entries there, with Neo's device names as aliases.

A CPU's features come from :data:`CPU_FEATURES` for the CPUs ember knows; for another
x86 CPU name they are asked of the C compiler (``cc -march=NAME -dM -E``), which
also checks the name. Feature names are spelled as ``/proc/cpuinfo`` spells them, so
an artifact's record can be compared with the machine that loads it.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from ember.config import config
from ember.errors import TargetError
from ember.runtime.cpu import host_arch, host_cpu_flags, missing_features

# ----------------------------------------------------------------------------- CPUs

_X86_V2 = ("sse4_2", "popcnt")
_X86_V3 = (*_X86_V2, "avx", "avx2", "fma", "f16c", "bmi2")
_AVX512 = (*_X86_V3, "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")
_ICELAKE = (*_AVX512, "avx512_vnni", "avx512vbmi", "avx512_vbmi2", "avx512_vpopcntdq")
_ARMV8 = ("asimd", "fp")

CPU_FEATURES: dict[str, tuple[str, ...]] = {
    # x86-64 (names as gcc's -march takes them)
    "x86-64": (),
    "x86-64-v2": _X86_V2,
    "x86-64-v3": _X86_V3,
    "x86-64-v4": _AVX512,
    "haswell": _X86_V3,
    "broadwell": _X86_V3,
    "skylake": _X86_V3,
    "skylake-avx512": _AVX512,
    "cascadelake": (*_AVX512, "avx512_vnni"),
    "cooperlake": (*_AVX512, "avx512_vnni", "avx512_bf16"),
    "icelake-server": _ICELAKE,
    "sapphirerapids": (*_ICELAKE, "avx512_bf16", "avx512_fp16", "avx_vnni"),
    "alderlake": (*_X86_V3, "avx_vnni"),
    "znver2": _X86_V3,
    "znver3": _X86_V3,
    "znver4": (*_ICELAKE, "avx512_bf16"),
    # ARM (names as gcc's -mcpu takes them); 64-bit features as aarch64 /proc/cpuinfo
    "generic": _ARMV8,
    "cortex-a53": _ARMV8,
    "cortex-a72": _ARMV8,
    "cortex-a76": (*_ARMV8, "asimddp", "asimdhp"),
    "neoverse-n1": (*_ARMV8, "asimddp", "asimdhp"),
    "neoverse-v1": (*_ARMV8, "asimddp", "asimdhp", "sve", "bf16", "i8mm"),
}
"""Feature flags of the CPUs ember knows by name (``/proc/cpuinfo`` spelling)."""

# gcc's predefined macros -> feature flags, for x86 CPU names not in the table.
_X86_MACROS = {
    "__SSE4_2__": "sse4_2",
    "__POPCNT__": "popcnt",
    "__AVX__": "avx",
    "__AVX2__": "avx2",
    "__FMA__": "fma",
    "__F16C__": "f16c",
    "__BMI2__": "bmi2",
    "__AVX512F__": "avx512f",
    "__AVX512CD__": "avx512cd",
    "__AVX512BW__": "avx512bw",
    "__AVX512DQ__": "avx512dq",
    "__AVX512VL__": "avx512vl",
    "__AVX512VNNI__": "avx512_vnni",
    "__AVX512BF16__": "avx512_bf16",
    "__AVX512VPOPCNTDQ__": "avx512_vpopcntdq",
    "__AVX512VBMI__": "avx512vbmi",
    "__AVX512VBMI2__": "avx512_vbmi2",
    "__AVX512FP16__": "avx512_fp16",
    "__AVXVNNI__": "avx_vnni",
}

# -mattr spellings (LLVM's and gcc's -m names) that /proc/cpuinfo spells differently.
_MATTR_TO_FLAG = {
    "sse4.2": "sse4_2",
    "avx512vnni": "avx512_vnni",
    "avx512bf16": "avx512_bf16",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512fp16": "avx512_fp16",
    "avxvnni": "avx_vnni",
    "neon": "asimd",
    "dotprod": "asimddp",
    "fp16": "asimdhp",
}
_ARMV7_FLAGS = {"asimd": "neon", "fp": "vfpv4"}

RECORDED_X86_FEATURES = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
)
"""x86 features a native (``host``) artifact records as needed: the ones ember's kernels
and ``-march=native`` code can use. The runtime refuses to load it on a CPU without them."""

# ----------------------------------------------------------------------------- architectures


@dataclass(frozen=True)
class Arch:
    """What ember knows of an instruction-set architecture."""

    name: str  # as `uname -m` prints it
    triple: str  # the GNU triple of Debian's toolchain for it
    cpu_flag: str  # gcc's option naming the CPU: -march (x86) or -mcpu (ARM)
    default_cpu: str  # the CPU a triple without -mcpu means
    vector_registers: int  # SIMD registers a register tile may use
    toolchain_package: str  # the Debian package of its cross compiler
    extra_cflags: tuple[str, ...] = ()


ARCHES: dict[str, Arch] = {
    "x86_64": Arch("x86_64", "x86_64-linux-gnu", "-march", "x86-64", 16, "gcc"),
    "aarch64": Arch(
        "aarch64", "aarch64-linux-gnu", "-mcpu", "generic", 32, "gcc-aarch64-linux-gnu"
    ),
    "armv7l": Arch(
        "armv7l",
        "arm-linux-gnueabihf",
        "-mcpu",
        "cortex-a53",
        16,  # NEON's q0-q15
        "gcc-arm-linux-gnueabihf",
        ("-mfpu=neon-vfpv4", "-mfloat-abi=hard"),
    ),
}

_TRIPLE_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "armv7l",
    "armv7a": "armv7l",
    "armv7": "armv7l",
    "arm": "armv7l",
}

# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class NamedTarget:
    """A row of the target table: a name (and its aliases) for a target string."""

    name: str
    spelling: str  # the target string it stands for
    description: str
    aliases: tuple[str, ...] = ()


TARGETS: dict[str, NamedTarget] = {
    t.name: t
    for t in (
        NamedTarget("host", "llvm -mcpu=native", "this machine's CPU (-march=native)"),
        NamedTarget("c", "c", "portable C for this machine's architecture, no -march"),
        NamedTarget(
            "x86_64",
            "llvm -mtriple=x86_64-linux-gnu -mcpu=x86-64-v3",
            "any x86-64 CPU with AVX2 and FMA (Haswell, Zen and later)",
        ),
        NamedTarget(
            "skylake-avx512",
            "llvm -mtriple=x86_64-linux-gnu -mcpu=skylake-avx512",
            "Intel Xeon Skylake-SP and later with AVX-512 (AWS C5/M5)",
            aliases=("ml_c5", "ml_m5"),
        ),
        NamedTarget(
            "cascadelake",
            "llvm -mtriple=x86_64-linux-gnu -mcpu=cascadelake",
            "Intel Xeon Cascade Lake: AVX-512 with VNNI (AWS C5 second generation, M5n)",
        ),
        NamedTarget(
            "haswell",
            "llvm -mtriple=x86_64-linux-gnu -mcpu=haswell",
            "Intel Xeon Haswell: AVX2 and FMA (AWS C4)",
            aliases=("ml_c4",),
        ),
        NamedTarget(
            "broadwell",
            "llvm -mtriple=x86_64-linux-gnu -mcpu=broadwell",
            "Intel Xeon Broadwell: AVX2 and FMA (AWS M4)",
            aliases=("ml_m4",),
        ),
    )
}
"""Named targets; SageMaker Neo's ``TargetDevice`` names are aliases of rows."""

_ALIASES = {alias: t.name for t in TARGETS.values() for alias in t.aliases}

_KINDS = ("llvm", "c", "cuda", "vta")
_OPTIONS = {
    "llvm": ("-mtriple", "-mcpu", "-mattr", "-num-cores", "-model"),
    "c": ("-mtriple", "-mcpu", "-mattr", "-num-cores", "-model"),
    "cuda": ("-arch", "-model", "-max_num_threads"),
    "vta": ("-config", "-model", "-device"),
}
_VALUE = re.compile(r"[A-Za-z0-9_.,+\-/]+")


def list_targets() -> list[NamedTarget]:
    """The rows of the target table, in table order (``ember targets`` prints them)."""
    return list(TARGETS.values())


# ----------------------------------------------------------------------------- Target


@dataclass(frozen=True)
class Target:
    """A parsed target. Build it with :meth:`parse`; compare by value.

    ``kind`` is ``"cpu"`` (native code from C, possibly for another CPU), ``"c"``
    (portable C), ``"cuda"`` or ``"vta"`` (parsed, not yet built for).
    """

    kind: str
    arch: str = ""
    mcpu: str = ""
    features: frozenset[str] = frozenset()
    mattr: tuple[str, ...] = ()  # the -mattr items as given (+avx512f, -fma)
    options: tuple[tuple[str, str], ...] = ()  # other options (-num-cores, -config, ...)
    text: str = field(default="", compare=False)  # what the user wrote

    # -- parsing
    @staticmethod
    def parse(text: str | Target) -> Target:
        """Parse a target name from the table, an alias, or a TVM-style target string."""
        if isinstance(text, Target):
            return text
        if not isinstance(text, str):
            raise TargetError(f"a target is a string such as 'host', got {type(text).__name__}")
        parts = shlex.split(text)
        if not parts:
            raise TargetError("empty target string", hint='use "host" for this CPU')
        head, rest = parts[0], parts[1:]
        named = TARGETS.get(_ALIASES.get(head, head))
        if named is not None:
            base = shlex.split(named.spelling)
            head, rest = base[0], base[1:] + rest
        elif head in ("x86_64", "cpu"):  # older ember spellings of llvm
            head = "llvm"
        if head not in _KINDS:
            raise TargetError(
                f"unknown target {parts[0]!r} in {text!r}",
                hint=f"targets: {', '.join(TARGETS)}; aliases: {', '.join(sorted(_ALIASES))}; "
                f"or a target string starting with {', '.join(_KINDS)} (see `ember targets`)",
            )
        options = _parse_options(head, rest, text)
        if head in ("cuda", "vta"):
            return Target(head, options=tuple(sorted(options.items())), text=text)
        return _cpu_target(head, options, text)

    # -- what the rest of the compiler asks
    def option(self, key: str, default: str | None = None) -> str | None:
        """An option's value (``"num-cores"``, ``"config"``, ...) or ``default``."""
        return dict(self.options).get(key, default)

    @property
    def is_native(self) -> bool:
        """Built for exactly this machine's CPU (``-march=native``)."""
        return self.mcpu == "native"

    @property
    def is_x86(self) -> bool:
        return self.arch == "x86_64"

    def has(self, *features: str) -> bool:
        """True when the target's CPU has every one of ``features``."""
        return all(f in self.features for f in features)

    @property
    def vector_bits(self) -> int:
        """Width of one SIMD register the kernels use: 512 with AVX-512 (F and VL), 256 on
        other x86-64 CPUs (narrower ones emulate 256-bit vectors), 128 with NEON."""
        if self.kind != "cpu":
            return 128
        if self.is_x86:
            return 512 if self.has("avx512f", "avx512vl") else 256
        return 128

    def vector_lanes(self, dtype: str = "float32") -> int:
        """Lanes of ``dtype`` in one SIMD register (16 float32 with AVX-512, 8 with AVX2)."""
        digits = "".join(ch for ch in dtype if ch.isdigit())
        bits = 8 if dtype == "bool" else int(digits or 32)
        return max(1, self.vector_bits // bits)

    @property
    def vector_registers(self) -> int:
        """SIMD registers a register tile may use (32 with AVX-512 or on aarch64)."""
        if self.is_x86 and self.has("avx512f"):
            return 32
        arch = ARCHES.get(self.arch)
        return arch.vector_registers if arch is not None else 16

    @property
    def triple(self) -> str:
        arch = ARCHES.get(self.arch)
        return arch.triple if arch is not None else ""

    @property
    def cc(self) -> str:
        """The C compiler: ``EMBER_CC`` (default ``cc``) for this machine's architecture,
        Debian's cross compiler (``aarch64-linux-gnu-gcc``) for another."""
        if self.kind not in ("cpu", "c") or self.arch == host_arch():
            return config.cc
        return f"{self.triple}-gcc"

    @property
    def cflags(self) -> tuple[str, ...]:
        """C compiler flags this target implies (beyond ember's optimization flags)."""
        if self.kind != "cpu":
            return ()
        arch = ARCHES[self.arch]
        if self.is_x86:
            flags = [f"{arch.cpu_flag}={self.mcpu}"]
            for item in self.mattr:
                name = item[1:]
                flags.append(f"-m{name}" if item[0] == "+" else f"-mno-{name}")
            return tuple(flags)
        # gcc spells ARM extensions as -mcpu suffixes; NEON itself comes with the CPU
        # (and -mfpu on 32-bit ARM), so it has none.
        extensions = "".join(
            f"+{item[1:]}" if item[0] == "+" else f"+no{item[1:]}"
            for item in self.mattr
            if item[1:] != "neon"
        )
        return (f"{arch.cpu_flag}={self.mcpu}{extensions}", *arch.extra_cflags)

    def runs_here(self) -> bool:
        """Whether code built for this target runs on this machine."""
        if self.kind not in ("cpu", "c") or self.arch != host_arch():
            return False
        return not missing_features({"cpu_features": sorted(self.required_features())})

    def required_features(self) -> frozenset[str]:
        """What a CPU needs to run this target's code (the artifact records it)."""
        if self.kind != "cpu":
            return frozenset()
        if self.is_native and self.is_x86:
            return frozenset(f for f in RECORDED_X86_FEATURES if f in self.features)
        return self.features

    @property
    def key(self) -> str:
        """The canonical spelling: equal targets have equal keys (tuning records use it).

        >>> Target.parse("ml_c5").key == Target.parse("llvm -mcpu=skylake-avx512").key
        True
        """
        if self.kind == "c":
            return "c"
        if self.kind == "cpu" and self.is_native and not self.mattr and not self.options:
            return "host"
        words = ["llvm" if self.kind == "cpu" else self.kind]
        if self.kind == "cpu":
            words.append(f"-mtriple={self.triple}")
            words.append(f"-mcpu={self.mcpu}")
            if self.mattr:
                words.append(f"-mattr={','.join(self.mattr)}")
        words += [f"-{k}={v}" for k, v in self.options]
        return " ".join(words)

    def record(self) -> dict[str, object]:
        """The artifact's target record (plain JSON; the runtime reads it, not this class)."""
        return {
            "name": str(self),
            "key": self.key,
            "kind": self.kind,
            "arch": self.arch,
            "triple": self.triple,
            "mcpu": self.mcpu,
            "cpu_features": sorted(self.required_features()),
            "cflags": list(self.cflags),
            "vector_bits": self.vector_bits,
        }

    def describe(self) -> str:
        """One line: ``x86_64 skylake-avx512, 512-bit vectors (16 x float32), avx2 ...``."""
        if self.kind not in ("cpu", "c"):
            return f"{self.kind} {' '.join(f'-{k}={v}' for k, v in self.options)}".strip()
        lanes = self.vector_lanes("float32")
        shown = [f for f in sorted(self.features) if f in _SHOWN_FEATURES]
        what = "portable C" if self.kind == "c" else self.mcpu
        return f"{self.arch} {what}, {self.vector_bits}-bit vectors ({lanes} x float32)" + (
            f", {' '.join(shown)}" if shown else ""
        )

    def __str__(self) -> str:
        return self.text or self.key


_SHOWN_FEATURES = frozenset(
    (
        "avx2",
        "fma",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "avx_vnni",
        "asimd",
        "asimddp",
        "neon",
    )
)


def _parse_options(kind: str, words: Iterable[str], text: str) -> dict[str, str]:
    known = _OPTIONS[kind]
    options: dict[str, str] = {}
    for word in words:
        key, _, value = word.partition("=")
        if key not in known or not value:
            raise TargetError(
                f"unknown target option {word!r} in {text!r}",
                hint=f"options of {kind} look like -mcpu=NAME; known: {', '.join(known)}",
            )
        if not _VALUE.fullmatch(value):
            raise TargetError(f"invalid value {value!r} for target option {key} in {text!r}")
        options[key.lstrip("-")] = value
    return options


def _cpu_target(kind: str, options: dict[str, str], text: str) -> Target:
    triple = options.pop("mtriple", None)
    arch = host_arch() if triple is None else _triple_arch(triple, text)
    if arch not in ARCHES:
        raise TargetError(
            f"ember cannot build for the {arch} architecture ({text!r})",
            hint=f"architectures: {', '.join(ARCHES)}",
        )
    mattr = tuple(_mattr_items(options.pop("mattr", ""), text))
    options.pop("model", None)  # a board's name (TVM's -model=bcm2837): informational
    if kind == "c":
        # Portable C: no -march, so no ISA extension beyond the architecture's baseline.
        return Target("c", arch, "", frozenset(), (), tuple(sorted(options.items())), text)
    if "mcpu" in options:
        mcpu = options.pop("mcpu")
    else:  # plain "llvm" is this machine's CPU, as ember always took it; a triple its baseline
        mcpu = "native" if triple is None else ARCHES[arch].default_cpu
    if mcpu == "native":
        if arch != host_arch():
            raise TargetError(
                f"-mcpu=native means this machine's CPU, which is not {arch} ({text!r})",
                hint="name the target board's CPU, e.g. -mcpu=cortex-a72",
            )
        features = set(host_cpu_flags())
    else:
        features = set(_cpu_features(arch, mcpu, text))
    for item in mattr:
        flag = _MATTR_TO_FLAG.get(item[1:], item[1:])
        (features.add if item[0] == "+" else features.discard)(flag)
    if arch == "armv7l" and mcpu != "native":
        # 32-bit ARM kernels name NEON and VFP differently in /proc/cpuinfo.
        features = {_ARMV7_FLAGS.get(f, f) for f in features}
    return Target(
        "cpu", arch, mcpu, frozenset(features), mattr, tuple(sorted(options.items())), text
    )


def _triple_arch(triple: str, text: str) -> str:
    first, _, system = triple.partition("-")
    arch = _TRIPLE_ARCH.get(first)
    if arch is None:
        raise TargetError(
            f"unknown architecture {first!r} in -mtriple={triple} ({text!r})",
            hint="known triples: " + ", ".join(a.triple for a in ARCHES.values()),
        )
    if "linux" not in system:
        raise TargetError(
            f"-mtriple={triple}: ember builds for Linux only ({text!r})",
            hint=f"use {ARCHES[arch].triple}",
        )
    return arch


def _mattr_items(value: str, text: str) -> list[str]:
    items = [v for v in value.split(",") if v]
    for item in items:
        if item[0] not in "+-" or len(item) < 2:
            raise TargetError(
                f"-mattr item {item!r} in {text!r} must start with + or -",
                hint="e.g. -mattr=+avx512f,-fma",
            )
    return items


def _cpu_features(arch: str, mcpu: str, text: str) -> tuple[str, ...]:
    known = CPU_FEATURES.get(mcpu)
    if known is not None:
        return known
    if arch == "x86_64" and host_arch() == "x86_64":
        features = _compiler_features(config.cc, mcpu)
        if features is not None:
            return features
    names = ", ".join(sorted(CPU_FEATURES))
    raise TargetError(
        f"unknown CPU {mcpu!r} for {arch} in {text!r}",
        hint=f"CPUs ember knows: {names} (and any -march name the C compiler accepts on x86)",
    )


@functools.lru_cache(maxsize=32)
def _compiler_features(cc: str, mcpu: str) -> tuple[str, ...] | None:
    """The x86 features ``cc -march=mcpu`` enables (its predefined macros), or None if the
    compiler does not know the CPU."""
    try:
        proc = subprocess.run(
            [cc, f"-march={mcpu}", "-dM", "-E", "-x", "c", "/dev/null"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    macros = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("#define")}
    return tuple(sorted(flag for macro, flag in _X86_MACROS.items() if macro in macros))


__all__ = ["ARCHES", "CPU_FEATURES", "TARGETS", "NamedTarget", "Target", "list_targets"]
