"""Tuning templates with deliberately broken configs (imported by the measurement tests).

Knob ``mode`` picks: a correct matmul (the default), a schedule the template rejects,
C that does not compile, a kernel that reads far out of bounds (segfault), one that
runs for minutes, one that computes the wrong answer, and a correct one that does
``SLOW_REPS`` times the work (to check that timing tells configs apart).
"""

from __future__ import annotations

from typing import Any

from ember import te
from ember.autotune import template

MODES = ("ok", "schedule_error", "compile_error", "crash", "timeout", "wrong", "slow")
SLOW_REPS = 16
FAR_AWAY = 2**31 - 2**20
"""An element offset about 8 GiB past the input: no mapping there, so the read segfaults."""


@template("test_broken_matmul")
def broken_matmul(cfg: Any, n: int) -> tuple[Any, list[Any]]:
    cfg.define_knob("mode", list(MODES))
    cfg.define_split("tile", n, num_outputs=2)
    mode = cfg["mode"].val
    A = te.placeholder((n, n), "float32", name="A")
    B = te.placeholder((n, n), "float32", name="B")
    if mode == "timeout":
        r = te.reduce_axis((0, 2**30), name="r")
        C = te.compute((n, n), lambda i, j: te.sum(A[i, r % n] * B[r % n, j], axis=r), name="C")
    elif mode == "slow":  # every product SLOW_REPS times, each scaled by 1 / SLOW_REPS
        r = te.reduce_axis((0, n * SLOW_REPS), name="r")
        C = te.compute(
            (n, n),
            lambda i, j: te.sum(A[i, r // SLOW_REPS] * B[r // SLOW_REPS, j] / SLOW_REPS, axis=r),
            name="C",
        )
    else:
        r = te.reduce_axis((0, n), name="r")
        if mode == "crash":
            body = lambda i, j: te.sum(A[i, r + FAR_AWAY] * B[r, j], axis=r)  # noqa: E731
        elif mode == "compile_error":  # fabsf takes one argument
            body = lambda i, j: te.sum(  # noqa: E731
                te.call_extern("float32", "fabsf", A[i, r], B[r, j]), axis=r
            )
        elif mode == "wrong":
            body = lambda i, j: te.sum(A[i, r] * B[r, j] + 0.5, axis=r)  # noqa: E731
        else:
            body = lambda i, j: te.sum(A[i, r] * B[r, j], axis=r)  # noqa: E731
        C = te.compute((n, n), body, name="C")
    s = te.create_schedule(C.op)
    i, j = s[C].op.axis
    cfg["tile"].apply(s, C, j)
    if mode == "schedule_error":
        s[C].vectorize(s[C].op.reduce_axis[0])  # a reduction axis cannot be vector lanes
    return s, [A, B, C]
