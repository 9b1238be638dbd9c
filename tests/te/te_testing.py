"""Helpers for tensor-expression tests: run a schedule through the evaluator and the C build."""

from __future__ import annotations

import numpy as np

import ember
from ember.tir.evaluator import evaluate


def random_array(shape, dtype: str, rng: np.random.Generator) -> np.ndarray:
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -50), min(info.max, 50), shape).astype(dtype)


def run_both(s, args, inputs, *, build: bool = True, rtol: float = 1e-5, expect=None):
    """Lower ``s``, run it on ``inputs`` in the TIR evaluator (N-D and after the pass
    pipeline) and, if ``build``, as compiled C; check all agree with ``expect``."""
    outs_spec = args[len(inputs) :]
    results = []
    funcs = [ember.lower(s, args, simple_mode=True), ember.lower(s, args)]
    for f in funcs:
        outs = [np.zeros([int(d.value) for d in t.shape], t.dtype) for t in outs_spec]
        evaluate(f, *inputs, *outs)
        results.append(outs)
    if build:
        mod = ember.build(s, args, name="kernel")
        outs = [np.zeros([int(d.value) for d in t.shape], t.dtype) for t in outs_spec]
        mod(*inputs, *outs)
        results.append(outs)
    if expect is not None:
        expect = expect if isinstance(expect, list | tuple) else [expect]
        for outs in results:
            for got, want in zip(outs, expect, strict=True):
                np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    return results[-1]
