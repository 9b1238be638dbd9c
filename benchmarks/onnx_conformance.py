"""Print ember's ONNX backend node conformance counts (for the README).

    .venv/bin/python benchmarks/onnx_conformance.py [--failures] [--skips]

Runs every node test case shipped in the onnx wheel through
``ember.frontend.from_onnx`` + ``ember.graph.interpret`` (see
``ember/frontend/onnx/conformance.py`` for how cases are classified).
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import time

import onnx

from ember.frontend.onnx.conformance import all_cases, run_cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list failing cases")
    parser.add_argument("--skips", action="store_true", help="list skipped cases by reason")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    cases = all_cases()
    results = run_cases()
    seconds = time.perf_counter() - start
    status = collections.Counter(r.status for r in results)
    skipped = collections.Counter(r.category for r in results if r.status == "skipped")
    not_plain = skipped["dtype"] + skipped["non-tensor inputs/outputs"]
    claimed = status["passed"] + status["failed"]

    print(f"ONNX backend node conformance (onnx {onnx.__version__}, {platform.python_version()})")
    print(f"  {'total cases':<38} {len(cases):>5}")
    print(f"  {'plain tensors of ember dtypes':<38} {len(cases) - not_plain:>5}")
    print(f"  {'supported (claimed by ember)':<38} {claimed:>5}")
    print(f"  {'passed':<38} {status['passed']:>5}")
    frozen = sum(1 for r in results if r.status == "passed" and r.frozen)
    print(f"    {'of which with shape inputs frozen':<36} {frozen:>5}")
    print(f"  {'failed':<38} {status['failed']:>5}")
    print(f"  {'skipped':<38} {status['skipped']:>5}")
    for category, count in skipped.most_common():
        print(f"    {category:<36} {count:>5}")
    ops = collections.Counter(
        r.reason.removeprefix("unsupported op ") for r in results if r.category == "unsupported op"
    )
    print(
        "  most common unsupported ops: "
        + ", ".join(f"{op} ({n})" for op, n in ops.most_common(12))
    )
    print(f"  ({seconds:.1f} s)")
    if args.failures:
        for r in results:
            if r.status == "failed":
                print(f"FAILED {r.name}: {r.reason}")
    if args.skips:
        for r in results:
            if r.status == "skipped":
                print(f"SKIPPED {r.name} [{r.category}]: {r.reason}")
    return 1 if status["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
