"""The schedules of docs/tutorials/custom_operator.md (benchmarks/matmul.py) stay correct."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import ember

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "matmul.py"
_spec = importlib.util.spec_from_file_location("ember_bench_matmul", _PATH)
matmul = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matmul)


@pytest.mark.parametrize(
    "make,shape",
    [
        (matmul.schedule_naive, (5, 7, 3)),
        (matmul.schedule_tiled, (40, 36, 10)),
        (matmul.schedule_packed, (70, 64, 24)),  # rows not a multiple of the 8-row block
        (lambda n, m, k: matmul.schedule_packed(n, m, k, parallel=False), (16, 32, 8)),
        (matmul.schedule_tensorized, (64, 64, 40)),
        (lambda n, m, k: matmul.schedule_tensorized(n, m, k, kc=16), (16, 64, 48)),
    ],
)
def test_tutorial_schedules_compute_matmul(make, shape, rng):
    n, m, k = shape
    s, args = make(n, m, k)
    a = rng.standard_normal((n, k)).astype("float32")
    b = rng.standard_normal((k, m)).astype("float32")
    c = np.full((n, m), np.nan, "float32")
    ember.build(s, args, name="matmul")(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
