"""Compile time per zoo model (full size, batch 1): import, optimize+fuse+codegen, C build.

    python benchmarks/compile_time.py [--models resnet18,resnet50] [--cold]

--cold uses an empty kernel cache (the honest first-compile number).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ZOO_BENCH_MODELS as MODELS
from _common import header, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--cold", action="store_true", help="start from an empty kernel cache")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    if args.cold:
        os.environ["EMBER_CACHE_DIR"] = str(tmp / "cache")
    import ember
    from ember.testing import zoo

    rows = []
    for name in args.models.split(","):
        path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, path)
        start = time.perf_counter()
        mod, params = ember.frontend.from_onnx(str(path), shape={"data": zoo.input_shape(name)})
        t_import = time.perf_counter() - start
        start = time.perf_counter()
        lib = ember.compile(mod, params, target="host")
        t_compile = time.perf_counter() - start
        g = lib.metadata["graph"]
        mem = lib.metadata["memory"]
        rows.append(
            [
                name,
                f"{t_import:.1f}",
                f"{t_compile:.1f}",
                g["kernel_calls"],
                g["distinct_kernels"],
                f"{mem['workspace_bytes'] / 2**20:.1f}",
                f"{mem['total_intermediate_bytes'] / 2**20:.1f}",
                f"{mem['workspace_bytes'] / mem['total_intermediate_bytes']:.2f}",
            ]
        )
        print(f"{name}: import {t_import:.1f} s, compile {t_compile:.1f} s", flush=True)
    print()
    print(header("Compile time" + (" (cold cache)" if args.cold else "")))
    print(
        table(
            rows,
            [
                "model",
                "import s",
                "compile s",
                "kernel calls",
                "distinct kernels",
                "workspace MiB",
                "intermediates MiB",
                "ratio",
            ],
        )
    )


if __name__ == "__main__":
    main()
