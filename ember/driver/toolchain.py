"""Compile C source into a shared library or object with the target's C compiler, cached.

    path, hit = compile_shared(source, Target.parse("host"))
    obj = compile_object(source, target, include_dirs=(RUNTIME_INCLUDE,))

The target gives the compiler (``target.cc``: ``EMBER_CC`` for this machine, a cross
compiler for another architecture) and its flags (``target.cflags``). The cache key is
a hash of the source, the flags, the compiler's version line and, for ``-march=native``
builds, this machine's CPU, so a second build of the same kernel loads the cached file
without running the compiler. On failure :class:`ember.errors.BuildError` carries the
compiler's error output and the path of the kept source file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ember.config import config
from ember.errors import BuildError
from ember.runtime.cpu import host_arch, host_cpu_fingerprint
from ember.target import ARCHES, Target

BASE_FLAGS = ("-O3", "-fPIC", "-shared", "-fopenmp", "-ffp-contract=fast", "-std=gnu11")
"""Always used for host builds: optimized, position independent, OpenMP, FMA contraction."""

MAX_ERROR_CHARS = 4000
"""Compiler output kept in a BuildError message (the full text is in the log file)."""

stats: dict[str, float] = {"compiles": 0, "cache_hits": 0, "compiler_cpu_s": 0.0}
"""Counters over this process (tests read them; ``compiler_cpu_s``: user + system CPU
seconds of the C compiler and linker processes, which the compile-time benchmark reports
apart from Python's own)."""

_stats_lock = threading.Lock()  # compiles run on several threads


def run_tool(cmd: list[str], timeout: float = 600) -> tuple[int, str, float]:
    """Run a compiler command; (exit status, its stderr, its CPU seconds).

    The CPU time of one child is read from ``os.wait4`` (``subprocess`` does not give
    it): on a shared machine wall time is noise, the CPU seconds are what a build costs.
    Raises OSError when the command cannot start and TimeoutExpired after ``timeout``.

    >>> status, err, cpu = run_tool(["cc", "--version"])
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9  # reaped here: Popen must not wait for it again
                raise subprocess.TimeoutExpired(cmd, timeout)
            time.sleep(pause)
            pause = min(pause * 2, 0.02)  # short jobs return fast, long ones poll rarely
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        with _stats_lock:
            stats["compiler_cpu_s"] += cpu
        err.seek(0)
        return proc.returncode, err.read().decode(errors="replace"), cpu


@functools.lru_cache(maxsize=8)
def compiler_version(cc: str, target: str = "") -> str:
    """First line of ``cc --version`` (part of the cache key); a BuildError naming what to
    install when the compiler is missing (``target`` names the target that needs it)."""
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        for arch in ARCHES.values():
            if cc.startswith(arch.triple) and arch.name != host_arch():
                raise BuildError(
                    f"the C compiler {cc!r} for target {target or arch.name} is not "
                    f"installed ({exc.strerror or exc})",
                    hint=f"install Debian's {arch.toolchain_package} "
                    f"(apt-get install {arch.toolchain_package}), or set EMBER_CC",
                ) from None
        raise BuildError(
            f"cannot run the C compiler {cc!r}: {exc}",
            hint="install gcc or clang, or point EMBER_CC at one",
        ) from None
    return (out.stdout.splitlines() or ["unknown"])[0]


def cache_key(source: str, flags: tuple[str, ...], cc: str) -> str:
    """Hash of everything that decides the compiled bytes (source, flags, compiler, CPU)."""
    h = hashlib.sha256()
    cpu = host_cpu_fingerprint() if any(f.endswith("=native") for f in flags) else ""
    for part in (source, "\0".join(flags), cc, compiler_version(cc), cpu):
        h.update(part.encode())
        h.update(b"\x01")
    return h.hexdigest()[:32]


def _cached_build(
    source: str,
    key: str,
    cache_dir: Path,
    suffix: str,
    command: Callable[[Path, str], list[str]],
    cc: str,
    what: str,
) -> tuple[Path, bool]:
    """Run ``command(source_path, output_path)`` unless ``cache_dir/key+suffix`` exists.

    The source is kept beside the output (error messages point at it); the output is
    written to a temporary file and renamed, so a concurrent build never sees half a file.
    """
    out_path = cache_dir / f"{key}{suffix}"
    if out_path.exists():
        with _stats_lock:
            stats["cache_hits"] += 1
        return out_path, True
    cache_dir.mkdir(parents=True, exist_ok=True)
    src_path = cache_dir / f"{key}.c"
    src_path.write_text(source)
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=cache_dir)
    os.close(fd)
    cmd = command(src_path, tmp)
    try:
        returncode, stderr, _ = run_tool(cmd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        os.unlink(tmp)
        raise BuildError(f"cannot run the C compiler {cc!r}: {exc}", hint="set EMBER_CC") from None
    with _stats_lock:
        stats["compiles"] += 1
    if returncode != 0:
        os.unlink(tmp)
        log = cache_dir / f"{key}.log"
        log.write_text(" ".join(cmd) + "\n" + stderr)
        err = stderr.strip()
        if len(err) > MAX_ERROR_CHARS:
            err = err[:MAX_ERROR_CHARS] + f"\n... (full output in {log})"
        raise BuildError(
            f"the C compiler failed (exit {returncode}) on {what}{src_path}:\n{err}",
            hint=f"the generated source is kept at {src_path}",
        )
    os.replace(tmp, out_path)
    return out_path, False


def compile_shared(
    source: str,
    target: Target,
    *,
    flags: tuple[str, ...] = (),
    extra_sources: tuple[str, ...] = (),
    libs: tuple[str, ...] = (),
    cache_dir: Path | None = None,
) -> tuple[Path, bool]:
    """Build ``source`` (+ extra C files) for ``target`` into a cached shared library;
    return (path, cache hit). ``flags`` are added after the target's own."""
    cc = target.cc
    compiler_version(cc, str(target))  # a missing compiler says what to install
    extra_text = []
    for p in extra_sources:
        try:
            extra_text.append(Path(p).read_text())
        except OSError as exc:
            raise BuildError(f"cannot read extra source {p!r}: {exc}") from None
    lib_flags = tuple(f"-l{lib}" if not lib.startswith("-") else lib for lib in libs)
    all_flags = target.cflags + tuple(flags)
    key = cache_key(source + "\0".join(extra_text), BASE_FLAGS + all_flags + lib_flags, cc)

    def command(src: Path, out: str) -> list[str]:
        return [
            cc,
            *BASE_FLAGS,
            *all_flags,
            str(src),
            *map(str, extra_sources),
            "-o",
            out,
            "-lm",
            *lib_flags,
        ]

    return _cached_build(
        source, key, Path(cache_dir or config.cache_dir) / "kernels", ".so", command, cc, ""
    )


def compile_object(
    source: str,
    target: Target,
    *,
    include_dirs: tuple[Path, ...] = (),
    what: str = "",
    cache_dir: Path | None = None,
) -> Path:
    """Compile ``source`` for ``target`` to a cached object file (to link several into one
    library). ``what`` names the source in a compile error (e.g. the kernel)."""
    cc = target.cc
    compiler_version(cc, str(target))
    obj_flags = tuple(f for f in BASE_FLAGS if f != "-shared") + target.cflags + ("-c",)
    key = cache_key(source, obj_flags, cc)

    def command(src: Path, out: str) -> list[str]:
        return [cc, *obj_flags, *(f"-I{d}" for d in include_dirs), str(src), "-o", out]

    label = f"{what} " if what else ""
    path, _ = _cached_build(
        source, key, Path(cache_dir or config.cache_dir) / "objects", ".o", command, cc, label
    )
    return path


def link_shared(objects: list[Path], target: Target) -> bytes:
    """Link object files into one shared library for ``target``; its bytes."""
    with tempfile.TemporaryDirectory(prefix="ember-link-") as tmp:
        out = Path(tmp) / "model.so"
        cmd = [
            target.cc,
            "-shared",
            "-fopenmp",
            *target.cflags,
            *map(str, objects),
            "-o",
            str(out),
            "-lm",
        ]
        try:
            returncode, stderr, _ = run_tool(cmd)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(
                f"cannot run the linker {target.cc!r}: {exc}", hint="set EMBER_CC"
            ) from None
        if returncode != 0:
            raise BuildError(f"linking the model library failed:\n{stderr.strip()[:4000]}")
        return out.read_bytes()
