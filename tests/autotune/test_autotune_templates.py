"""Every built-in template computes the right answer at its default and at sampled points."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.autotune import FallbackConfig, create_task


def _pad(x: np.ndarray, padding, value: float = 0.0) -> np.ndarray:  # type: ignore[no-untyped-def]
    top, left, bottom, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _windows(x: np.ndarray, kh: int, kw: int, strides) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(N, C, OH, OW, KH, KW) view of the sliding windows."""
    sh, sw = strides
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return win[:, :, ::sh, ::sw]


def _reference(name: str, args: tuple, arrays: list[np.ndarray]) -> np.ndarray:
    if name == "matmul":
        return arrays[0] @ arrays[1]
    if name == "dense":
        return arrays[0] @ arrays[1].T
    if name == "conv2d_nchw":
        *_, kh, kw, strides, padding = args
        win = _windows(_pad(arrays[0], padding), kh, kw, strides)
        return np.einsum("ncyxhw,ochw->noyx", win, arrays[1])
    if name == "depthwise_conv2d_nchw":
        *_, kh, kw, strides, padding = args
        win = _windows(_pad(arrays[0], padding), kh, kw, strides)
        return np.einsum("ncyxhw,chw->ncyx", win, arrays[1][:, 0])
    *_, kh, kw, strides, padding, pool_type = args
    fill = -np.inf if pool_type == "max" else 0.0
    win = _windows(_pad(arrays[0], padding, fill), kh, kw, strides)
    return win.max(axis=(4, 5)) if pool_type == "max" else win.mean(axis=(4, 5))


CASES = [
    ("matmul", (24, 40, 16)),
    ("dense", (8, 24, 20)),
    ("conv2d_nchw", (1, 8, 9, 10, 16, 3, 3, (1, 1), (1, 1, 1, 1))),
    ("conv2d_nchw", (1, 4, 9, 9, 8, 3, 3, (2, 2), (0, 1, 1, 0))),
    ("depthwise_conv2d_nchw", (1, 8, 10, 12, 3, 3, (1, 1), (1, 1, 1, 1))),
    ("pool2d_nchw", (1, 4, 10, 12, 3, 3, (2, 2), (1, 1, 1, 1), "max")),
    ("pool2d_nchw", (1, 4, 8, 8, 2, 2, (2, 2), (0, 0, 0, 0), "avg")),
]


@pytest.mark.parametrize("name,args", CASES, ids=[f"{n}{i}" for i, (n, _) in enumerate(CASES)])
def test_template_points_match_numpy(name: str, args: tuple) -> None:
    task = create_task(name, args)
    space = task.config_space
    rng = np.random.default_rng()
    points = [FallbackConfig()] + [space.get(int(i)) for i in rng.integers(len(space), size=2)]
    for cfg in points:
        s, tensors = task.instantiate(cfg)
        f = ember.build(s, tensors, name="candidate")
        arrays = [
            rng.standard_normal([int(d.value) for d in t.shape]).astype(np.float32) for t in tensors
        ]
        f(*arrays)
        want = _reference(name, args, arrays[:-1])
        np.testing.assert_allclose(arrays[-1], want, rtol=1e-4, atol=1e-4, err_msg=repr(cfg))
