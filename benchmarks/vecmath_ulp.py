"""Accuracy of ember's float32 vector math: maximum error in ulp over all 2^32 inputs.

    python benchmarks/vecmath_ulp.py [--target host] [--step 1] [--threads 2]

Writes ``vecmath_generated.h`` (the exp/log/log1p/sigmoid/tanh/erf helpers exactly as
the C code generator emits them for ``--target``: the scalar twin and the vector form of
the target's float32 width), compiles ``benchmarks/vecmath_ulp.c`` with the toolchain's
flags (``-O3 -ffp-contract=fast``, no -ffast-math) and runs it. It prints one markdown
row per function: the maximum error of the vector and the scalar form against libm's
double function (and the input where it is reached), the non-finite mismatches of each
(NaN or infinity where the reference is not, or the other way round: must be 0) and the
inputs whose vector and scalar results differ in any bit (must be 0). ``--step k``
checks every k-th bit pattern (``--step 997``: seconds); the full run takes about 19
CPU-minutes (10 minutes on two idle cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from ember.codegen.dialect import dialect_for
from ember.codegen.vecmath import VECMATH_FUNCTIONS, VECMATH_REQUIRES
from ember.driver.toolchain import BASE_FLAGS
from ember.target import Target

HERE = Path(__file__).resolve().parent


def generated_header(target: Target) -> str:
    """Typedefs and helpers for ``target``, as codegen_c emits them, plus the macros the
    harness uses (VM_LANES, VM_VEC, vm_vec)."""
    d = dialect_for(target)
    lanes = target.vector_lanes("float32")
    vec, ivec = f"float32x{lanes}", f"int32x{lanes}"
    ordered = sorted(VECMATH_FUNCTIONS, key=lambda k: (k not in _required(), k))
    lines = [d.vector_typedef(vec), d.vector_typedef(ivec)]
    for kind in ordered:
        lines.append(d.helper_source(f"{kind}:float32"))
        lines.append(d.helper_source(f"{kind}:{vec}"))
    lines += [
        f"#define VM_LANES {lanes}",
        f"#define VM_VEC(F) ember_##F##_{vec}",
        f"typedef {vec} vm_vec;",
    ]
    return "#include <stdint.h>\n#include <math.h>\n" + "\n".join(lines) + "\n"


def _required() -> set[str]:
    return {r for reqs in VECMATH_REQUIRES.values() for r in reqs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="host")
    ap.add_argument("--step", type=int, default=1, help="check every STEP-th bit pattern")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    target = Target.parse(args.target)
    flags = [f for f in BASE_FLAGS if f not in ("-shared", "-fPIC")]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vecmath_generated.h").write_text(generated_header(target))
        exe = Path(tmp, "vecmath_ulp")
        cmd = [target.cc, *flags, *target.cflags, f"-DVM_STEP={args.step}", f"-I{tmp}"]
        subprocess.run([*cmd, str(HERE / "vecmath_ulp.c"), "-o", str(exe), "-lm"], check=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        start = time.perf_counter()
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
    lanes = target.vector_lanes("float32")
    print(
        f"float32 vector math vs libm double, {2**32 // args.step} inputs, {target} "
        f"({platform.processor() or platform.machine()}), {lanes}-lane vectors, "
        f"{seconds:.0f} s on {args.threads} threads\n"
    )
    print(
        "| function | max ulp (vector) | at x | max ulp (scalar) | at x "
        "| non-finite mismatches (vector, scalar) | vector != scalar |"
    )
    print("|---|---|---|---|---|---|---|")
    for line in out.stdout.splitlines():
        name, vmax, vat, smax, sat, vnf, snf, diff = line.split()
        print(
            f"| {name} | {float(vmax):.3f} | {vat} | {float(smax):.3f} | {sat} "
            f"| {vnf}, {snf} | {diff} |"
        )


if __name__ == "__main__":
    main()
