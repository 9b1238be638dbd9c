"""Print ember's ONNX backend node conformance counts (for the README).

    .venv/bin/python benchmarks/onnx_conformance.py [--compiled] [--failures] [--skips] [CASE ...]

Runs every node test case shipped in the onnx wheel (or the named ones) through
``ember.frontend.from_onnx`` + ``ember.graph.interpret``; with ``--compiled`` each
claimed case also runs through ``ember.compile`` and the runtime (``.load().run``),
compared the same way. See ``ember/frontend/onnx/conformance.py`` for how cases are
classified. Failures of either path are listed with ``--failures`` (always with
``--compiled``). Exit status 1 when any claimed case is wrong or fails.
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import time

import onnx

from ember.frontend.onnx.conformance import CaseResult, all_cases, run_case
from ember.testing.conformance import compile_and_load

OUTCOMES = ("passed", "wrong", "failed", "did-not-compile")


def _outcome_rows(label: str, counts: collections.Counter, claimed: int) -> list[str]:
    rows = [f"  {label + ' (of ' + str(claimed) + ' claimed)':<38}"]
    for outcome in OUTCOMES:
        if outcome == "did-not-compile" and label == "reference":
            continue
        rows.append(f"    {outcome:<36} {counts[outcome]:>5}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="case names (default: every case)")
    parser.add_argument(
        "--compiled", action="store_true", help="also run each claimed case compiled"
    )
    parser.add_argument("--failures", action="store_true", help="list failing cases")
    parser.add_argument("--skips", action="store_true", help="list skipped cases by reason")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    cases = all_cases()
    names = sorted(args.cases or cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        parser.error(f"no such case(s): {', '.join(unknown)}")
    compiler = compile_and_load if args.compiled else None
    results: list[CaseResult] = []
    for k, name in enumerate(names, 1):
        results.append(run_case(cases[name], compiler))
        if args.compiled and k % 100 == 0:
            print(f"  ... {k} of {len(names)} cases", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    status = collections.Counter(r.status for r in results)
    skipped = collections.Counter(r.category for r in results if r.status == "skipped")
    not_plain = skipped["dtype"] + skipped["non-tensor inputs/outputs"]
    claimed = len(results) - status["skipped"]

    print(f"ONNX backend node conformance (onnx {onnx.__version__}, {platform.python_version()})")
    print(f"  {'total cases':<38} {len(results):>5}")
    print(f"  {'plain tensors of ember dtypes':<38} {len(results) - not_plain:>5}")
    print(f"  {'supported (claimed by ember)':<38} {claimed:>5}")
    print("\n".join(_outcome_rows("reference", status, claimed)))
    frozen = sum(1 for r in results if r.status == "passed" and r.frozen)
    print(f"      {'of which with shape inputs frozen':<34} {frozen:>5}")
    if args.compiled:
        compiled = collections.Counter(r.compiled for r in results if r.status != "skipped")
        print("\n".join(_outcome_rows("compiled", compiled, claimed)))
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
    bad = False
    for r in results:
        if r.status in ("wrong", "failed"):
            bad = True
            if args.failures or args.compiled:
                print(f"REFERENCE {r.status.upper()} {r.name}: {r.reason}")
        if r.compiled not in ("", "passed"):
            bad = True
            print(f"COMPILED {r.compiled.upper()} {r.name}: {r.compiled_reason.splitlines()[0]}")
    if args.skips:
        for r in results:
            if r.status == "skipped":
                print(f"SKIPPED {r.name} [{r.category}]: {r.reason}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
