"""Small graph builders and comparison helpers shared by the graph tests."""

from __future__ import annotations

import numpy as np

from ember.graph import Function, Module, TensorType, Var, interpret
from ember.ops import call

RTOL = {"float32": 1e-4, "float64": 1e-10, "float16": 2e-2}
ATOL = {"float32": 1e-5, "float64": 1e-12, "float16": 2e-2}


def tensor(name: str, *shape: int, dtype: str = "float32") -> Var:
    return Var(name, TensorType(shape, dtype))


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: str = "float32"):
    return rng.standard_normal(shape).astype(dtype)


def random_inputs(rng: np.random.Generator, func: Function) -> dict[str, np.ndarray]:
    return {p.name: random_array(rng, p.type.shape, p.type.dtype) for p in func.params}


def bn_stats(rng: np.random.Generator, channels: int, prefix: str, dtype: str = "float32"):
    """Realistic batch-norm statistics: positive variance, gamma around 1."""
    return {
        f"{prefix}_gamma": (rng.random(channels) + 0.5).astype(dtype),
        f"{prefix}_beta": rng.standard_normal(channels).astype(dtype),
        f"{prefix}_mean": rng.standard_normal(channels).astype(dtype),
        f"{prefix}_var": (rng.random(channels) + 0.5).astype(dtype),
    }


def batch_norm(x, channels: int, prefix: str, axis: int = 1, dtype: str = "float32"):
    stats = [
        tensor(f"{prefix}_{s}", channels, dtype=dtype) for s in ("gamma", "beta", "mean", "var")
    ]
    return call("nn.batch_norm", x, *stats, axis=axis, name=prefix), stats


def assert_same_results(before: Module, after: Module, params: dict, inputs: dict) -> None:
    """``after`` (params possibly bound) computes what ``before`` does on ``inputs``."""
    expected = interpret(before, params, inputs)
    got = interpret(after, params, inputs)
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert e.shape == g.shape and e.dtype == g.dtype
        np.testing.assert_allclose(g, e, rtol=RTOL[str(e.dtype)], atol=ATOL[str(e.dtype)])
