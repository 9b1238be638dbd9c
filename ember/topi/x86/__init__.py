"""x86 fast paths: blocked-layout (NCHW[x]c) convolutions, pooling and layout transforms,
and their schedules.

:func:`schedule_fast` is the hook the op strategy calls before its default schedule: it
returns a schedule for kernels it knows (anchored on ``nn.conv2d_nchwc``,
``nn.dense_pack``, ``nn.matmul`` of activations ...) and None otherwise, so every other
kernel keeps the default schedule::

    s = schedule_fast(outputs, target)   # None: not ours
"""

from __future__ import annotations

from ember.target import Target
from ember.te.schedule import Schedule
from ember.te.tensor import Tensor
from ember.topi.x86 import conv2d, dense, layout, winograd  # noqa: F401  (registers the computes)
from ember.topi.x86.conv2d import schedule_conv2d_nchwc
from ember.topi.x86.dense import schedule_dense_pack, schedule_matmul
from ember.topi.x86.layout import schedule_layout_transform
from ember.topi.x86.winograd import schedule_winograd

_RULES = (
    schedule_conv2d_nchwc,
    schedule_dense_pack,
    schedule_matmul,
    schedule_winograd,
    schedule_layout_transform,
)


def schedule_fast(outputs: list[Tensor], target: Target) -> Schedule | None:
    """The first x86 fast-path schedule that accepts this kernel, or None."""
    for rule in _RULES:
        s = rule(outputs, target)
        if s is not None:
            return s
    return None


__all__ = ["schedule_fast"]
