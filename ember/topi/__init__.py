"""The operator library: a TE compute for every graph op, and default CPU schedules.

Each module registers computes on the graph ops (``op.extensions["compute"]``,
see :func:`ember.topi.common.register_compute`); :mod:`ember.topi.strategy` turns a
fused kernel into TE stages with them and schedules it with
:mod:`ember.topi.schedule_x86` (or a fast path from :mod:`ember.topi.x86`).

- ``scalar`` / ``elementwise``: elementwise and broadcast ops from scalar rules
- ``nn``: conv2d (row-vector and channel-blocked), conv2d_transpose, dense, matmul
- ``pool``: max / avg / global pooling, lrn;  ``softmax``: softmax, log_softmax
- ``reduce``: reduce_*, argmax / argmin;  ``transform``: layout and indexing ops, pad
- ``image``: resize2d (nearest, linear, cubic; every coordinate mode), grid_sample
"""
