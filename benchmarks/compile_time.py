"""Compile time per zoo model (full size, batch 1): import, optimize+fuse+codegen, C build.

    python benchmarks/compile_time.py [--models resnet18,resnet50] [--cold]
    python benchmarks/compile_time.py --cold --hashes before.json   # record kernel C hashes
    python benchmarks/compile_time.py --cold --compare before.json  # kernels whose C changed

--cold compiles each model in a new process with its own empty kernel cache (the honest
first-compile number: no imports, C sources or objects left by another model). The machine may be
shared, so next to wall seconds the table gives CPU seconds: "py cpu" is this process
(graph passes, TE/TIR lowering and C codegen in Python), "c cpu" the C compiler and
linker processes; the phase columns split them (``CompiledModel.timings``). The sum of
the CPU columns over the cores is what a quiet machine's wall time approaches.
"workspace ratio": the planned workspace over the sum of all intermediate tensors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

CLASSIC = ["resnet18", "resnet50", "mobilenet_v2", "vgg11", "squeezenet1_1"]
CLASSIC += ["densenet121", "inception_v3"]
"""The seven classic zoo models (the default set; the modern ones: ``--models``)."""

PHASES = ("graph", "lower", "codegen", "cc", "link")
"""Phases of ``CompiledModel.timings``, in pipeline order."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def source_hashes(sources: dict[str, str]) -> dict[str, str]:
    """A short hash of each kernel's C source, by kernel name (names carry the workload)."""
    return {name: hashlib.sha256(src.encode()).hexdigest()[:16] for name, src in sources.items()}


def compare(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[str]:
    """Lines naming the kernels whose C changed, appeared or disappeared, per model."""
    lines = []
    for model in sorted(set(before) & set(after)):
        old, new = before[model], after[model]
        changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
        lines += [f"{model}: changed {k}" for k in changed]
        lines += [f"{model}: new {k}" for k in sorted(set(new) - set(old))]
        lines += [f"{model}: gone {k}" for k in sorted(set(old) - set(new))]
        same = len(set(old) & set(new)) - len(changed)
        lines.append(f"{model}: {same} of {len(new)} kernels unchanged")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(CLASSIC))
    parser.add_argument("--cold", action="store_true", help="start from an empty kernel cache")
    parser.add_argument("--hashes", type=Path, help="write each kernel's C source hash here")
    parser.add_argument("--compare", type=Path, help="list kernels whose C differs from FILE")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model here
    args = parser.parse_args()
    if args.cold and not args.one:
        cold_in_children(args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-"))
    import ember
    from ember.testing import zoo

    rows, records, hashes = [], {}, {}
    for name in (args.one or args.models).split(","):
        path = tmp / f"{name}.onnx"
        zoo.to_onnx(name, path)
        start = time.perf_counter()
        mod, params = ember.frontend.from_onnx(str(path), shape={"data": zoo.input_shape(name)})
        t_import = time.perf_counter() - start
        cpu, children, start = time.process_time(), _children_cpu(), time.perf_counter()
        lib = ember.compile(mod, params, target="host")
        wall = time.perf_counter() - start
        py_cpu, c_cpu = time.process_time() - cpu, _children_cpu() - children
        timings = getattr(lib, "timings", {})  # older ember: no breakdown
        g, mem = lib.metadata["graph"], lib.metadata["memory"]
        hashes[name] = source_hashes(lib.sources)
        records[name] = {
            "import_s": t_import,
            "wall_s": wall,
            "py_cpu_s": py_cpu,
            "c_cpu_s": c_cpu,
            "kernels": g["distinct_kernels"],
            "timings": timings,
        }
        phase_cells = [
            f"{timings[f'{p}_cpu_s']:.1f}" if f"{p}_cpu_s" in timings else "-" for p in PHASES
        ]
        rows.append(
            [
                name,
                f"{t_import:.1f}",
                f"{wall:.1f}",
                f"{py_cpu:.1f}",
                f"{c_cpu:.1f}",
                *phase_cells,
                g["kernel_calls"],
                g["distinct_kernels"],
                f"{mem['workspace_bytes'] / mem['total_intermediate_bytes']:.2f}",
            ]
        )
        print(
            f"{name}: import {t_import:.1f} s, compile {wall:.1f} s wall, "
            f"{py_cpu:.1f} s python cpu, {c_cpu:.1f} s compiler cpu",
            flush=True,
        )
    if args.one:  # a child of cold_in_children: hand the results to the parent
        assert args.json is not None
        args.json.write_text(json.dumps({"rows": rows, "records": records, "hashes": hashes}))
        return
    report(args, rows, records, hashes)


def cold_in_children(args: argparse.Namespace) -> None:
    """Each model in a new process with its own empty kernel cache: nothing imported,
    lowered or compiled for one model (or an earlier run) helps the next."""
    rows, records, hashes = [], {}, {}
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="ember-cold-") as tmp:
            out = Path(tmp) / "result.json"
            env = dict(os.environ, EMBER_CACHE_DIR=str(Path(tmp) / "cache"))
            cmd = [sys.executable, __file__, "--cold", "--one", name, "--json", str(out)]
            subprocess.run(cmd, env=env, check=True)
            result = json.loads(out.read_text())
        rows += result["rows"]
        records.update(result["records"])
        hashes.update(result["hashes"])
    report(args, rows, records, hashes)


def report(args: argparse.Namespace, rows: list, records: dict, hashes: dict) -> None:
    print()
    print(header("Compile time" + (" (cold cache)" if args.cold else "")))
    columns = ["model", "import s", "compile s (wall)", "py cpu s", "c cpu s"]
    columns += [f"{p} cpu s" for p in PHASES]
    columns += ["kernel calls", "distinct kernels", "workspace ratio"]
    print(table(rows, columns))
    if args.hashes:
        args.hashes.write_text(json.dumps(hashes, indent=1, sort_keys=True))
    if args.json:
        args.json.write_text(json.dumps(records, indent=1, sort_keys=True))
    if args.compare:
        print()
        print("\n".join(compare(json.loads(args.compare.read_text()), hashes)))


if __name__ == "__main__":
    main()
