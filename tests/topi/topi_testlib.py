"""Helpers for operator-library tests: one-op kernels built in one shared library.

Compile time dominates these tests, so a table of cases is lowered kernel by
kernel and compiled together into one library (one C compiler run, cached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ember
from ember.codegen.c import codegen_c
from ember.graph.ir import Call, Function, TensorType, Var
from ember.ops import call
from ember.target import Target
from ember.te.lower import lower
from ember.topi.strategy import schedule_primitive


@dataclass
class Case:
    """One op call: ``inputs`` are (shape, dtype[, kind]) with kind in normal / pos / int
    range hints used to draw valid random inputs."""

    id: str
    op: str
    inputs: list[tuple]
    attrs: dict[str, Any] = field(default_factory=dict)
    rtol: float = 1e-5

    @property
    def kernel_name(self) -> str:
        return "k_" + "".join(ch if ch.isalnum() else "_" for ch in self.id)


def make_function(case: Case) -> tuple[Function, Call]:
    params = [Var(f"x{k}", TensorType(spec[0], spec[1])) for k, spec in enumerate(case.inputs)]
    body = call(case.op, *params, **case.attrs)
    return Function(tuple(params), body, {"primitive": True, "name": case.kernel_name}), body


def random_input(spec: tuple, rng: np.random.Generator) -> np.ndarray:
    shape, dtype = spec[0], spec[1]
    kind = spec[2] if len(spec) > 2 else "normal"
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if isinstance(kind, tuple):  # integer range [lo, hi)
        return rng.integers(kind[0], kind[1], shape).astype(dtype)
    if dtype.startswith("float"):
        x = rng.standard_normal(shape)
        if kind == "pos":
            x = np.abs(x) + 0.5
        elif kind == "unit":  # inside (-1, 1): asin, acos, atanh
            x = rng.uniform(-0.99, 0.99, shape)
        elif kind == "ge1":  # acosh
            x = np.abs(x) + 1
        return x.astype(dtype)
    lo, hi = (1, 20) if kind == "pos" else (-20, 20)
    return rng.integers(lo, hi, shape).astype(dtype)


class KernelTable:
    """Lower every case, compile them all in one library; failures are kept per case."""

    def __init__(self, cases: list[Case], target: str = "host") -> None:
        # Schedules make their choices for ``target``; the code is built to run here, so
        # an AVX-512 target's choices are tested on an AVX2 machine too.
        tgt = Target.parse(target)
        self.cases = {c.id: c for c in cases}
        self.errors: dict[str, Exception] = {}
        self.args: dict[str, list] = {}
        funcs = []
        for c in cases:
            try:
                func, _ = make_function(c)
                s, args = schedule_primitive(func, tgt)
                prim = lower(s, args, name=c.kernel_name)
                codegen_c([prim])  # a C emission error stays with its own case
                funcs.append(prim)
                self.args[c.id] = args
            except Exception as err:  # reported by the case's own test
                self.errors[c.id] = err
        self.module = ember.build(funcs, target="host") if funcs else None

    def run(self, case_id: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if case_id in self.errors:
            raise self.errors[case_id]
        case = self.cases[case_id]
        args = self.args[case_id]
        outs = [
            np.zeros(tuple(int(d.value) for d in t.shape), t.dtype) for t in args[len(inputs) :]
        ]
        self.module[case.kernel_name](*inputs, *outs)
        return outs


def check_close(got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if got.dtype.kind in "iub":
        np.testing.assert_array_equal(got, want)
    else:
        scale = float(np.max(np.abs(want))) if want.size else 1.0
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(scale, 1.0))


def check_case(table: KernelTable, case: Case) -> None:
    """Run ``case``'s compiled kernel on fresh random inputs against the op's reference."""
    rng = np.random.default_rng()
    inputs = [random_input(spec, rng) for spec in case.inputs]
    _, node = make_function(case)
    want = node.op.evaluate(inputs, node.attrs)
    (got,) = table.run(case.id, inputs)
    check_close(got, want, case.rtol)


def check_conv_relu_kernel(func: Function, conv: Call, sched: Any) -> str:
    """Build the schedule ``sched`` = (schedule, args) of the kernel ``func``
    (relu(conv [+ residual]), its params: data, weight, bias [, residual]), run it on
    fresh random inputs and compare with the op's reference; returns the C source."""
    import ember
    from ember.ops import get_op

    s, args = sched
    mod = ember.build(s, args, target="host", name="k")
    rng = np.random.default_rng()
    vals = [rng.standard_normal(p.type.shape).astype("float32") for p in func.params]
    out = np.zeros(func.body.type.shape, "float32")
    mod(*vals, out)
    want = get_op(conv.op.name).evaluate(vals[:3], conv.attrs)
    if len(vals) == 4:
        want = want + vals[3]
    check_close(out, np.maximum(want, 0), 1e-4)
    return mod.get_source()
