"""Search spaces enumerate exactly their points; indices and knob values round-trip."""

from __future__ import annotations

import math

import pytest

from ember import te
from ember.autotune import ConfigSpace, FallbackConfig, create_task, template
from ember.dispatch.space import SplitEntity
from ember.errors import ScheduleError


def _space(define) -> ConfigSpace:
    cfg = ConfigSpace()
    define(cfg)
    return cfg


@pytest.mark.parametrize(
    "extent,num_outputs,policy",
    [
        (64, 2, "factors"),
        (48, 3, "factors"),
        (36, 4, "factors"),
        (20, 2, "power2"),
        (24, 3, "verbose"),
    ],
)
def test_split_enumerates_exactly(extent: int, num_outputs: int, policy: str) -> None:
    space = _space(lambda c: c.define_split("s", extent, num_outputs=num_outputs, policy=policy))
    sizes = [e.size for e in space.space_map["s"].entities]
    assert len(sizes) == len(set(sizes)) == len(space)
    for size in sizes:
        assert size[0] == -1 and len(size) == num_outputs
        prod = math.prod(size[1:])
        assert prod <= extent
        if policy == "factors":
            assert extent % prod == 0
        if policy == "power2":
            assert all(f & (f - 1) == 0 for f in size[1:])
    # Brute force: every tuple of candidate factors that fits is there.
    if policy == "factors":
        divisors = [d for d in range(1, extent + 1) if extent % d == 0]
        expected = 0
        import itertools

        for inner in itertools.product(divisors, repeat=num_outputs - 1):
            expected += extent % math.prod(inner) == 0
        assert len(sizes) == expected


def test_space_is_product_and_indices_round_trip() -> None:
    A = te.placeholder((32, 32), "float32", name="A")
    C = te.compute((32, 32), lambda i, j: A[i, j] * 2.0, name="C")

    def define(cfg: ConfigSpace) -> None:
        i, j = C.op.axis
        cfg.define_split("tile_i", i, num_outputs=3)
        cfg.define_split("tile_j", 24, num_outputs=2, policy="power2")
        cfg.define_reorder("order", [i, j, C.op.axis[0]], policy="all")
        cfg.define_annotate("ann", [i, j], policy="try_unroll_vec")
        cfg.define_knob("unroll", [0, 16, 64])

    space = _space(define)
    dims = space.dims
    assert len(space) == math.prod(dims)
    assert dims[2] == 6 and dims[3] == 6 and dims[4] == 3
    seen = set()
    for index in range(len(space)):
        cfg = space.get(index)
        assert cfg.index == index
        values = cfg.knob_values()
        key = tuple((k, repr(v)) for k, v in values.items())
        seen.add(key)
        assert space.index_of(values) == index
        assert space.index_from_knob_indices(space.knob_indices(index)) == index
    assert len(seen) == len(space)


def test_template_spaces_build_every_sampled_point() -> None:
    task = create_task("matmul", (32, 48, 16))
    space = task.config_space
    assert len(space) == math.prod(space.dims) > 100
    assert task.flop == 2 * 32 * 48 * 16
    for index in (0, len(space) // 2, len(space) - 1):
        s, tensors = task.instantiate(space.get(index))
        assert len(tensors) == 3


def test_fallback_config_defaults() -> None:
    cfg = FallbackConfig()
    entity = cfg.define_split("s", 64, num_outputs=3)
    assert entity == SplitEntity((-1, 1, 8))  # vector-width inner factor
    assert cfg.define_split("odd", 9).size == (-1, 3)  # largest divisor <= 8
    assert cfg.define_knob("k", [4, 2]).val == 4
    cfg2 = FallbackConfig()
    cfg2.fallback_split("s", [-1, 4])
    cfg2.fallback_with("k", 2)
    assert cfg2.define_split("s", 64).size == (-1, 4)
    assert cfg2.define_knob("k", [4, 2]).val == 2
    assert cfg2.is_fallback and not ConfigSpace().is_fallback


def test_split_apply_makes_the_loops() -> None:
    A = te.placeholder((64,), "float32", name="A")
    C = te.compute((64,), lambda i: A[i] + 1.0, name="C")
    s = te.create_schedule(C.op)
    axes = SplitEntity((-1, 4, 2)).apply(s, C, C.op.axis[0])
    assert [a.name for a in axes] == ["i.outer.outer", "i.outer.inner", "i.inner"]
    assert s[C].leaf_iter_vars == axes


def test_space_errors() -> None:
    with pytest.raises(ScheduleError, match="unknown policy 'halves'"):
        ConfigSpace().define_split("s", 8, policy="halves")
    with pytest.raises(ScheduleError, match="num_outputs must be 2, 3 or 4"):
        ConfigSpace().define_split("s", 8, num_outputs=5)
    with pytest.raises(ScheduleError, match="no candidates"):
        ConfigSpace().define_split("s", 8, filter=lambda e: False)
    with pytest.raises(ScheduleError, match="extent must be >= 1"):
        ConfigSpace().define_split("s", 0)
    with pytest.raises(ScheduleError, match="candidates repeat"):
        ConfigSpace().define_knob("k", [1, 1])
    space = _space(lambda c: c.define_knob("k", [1, 2]))
    with pytest.raises(ScheduleError, match="outside the space of 2 points"):
        space.get(2)
    with pytest.raises(ScheduleError, match="has no knob 'x'"):
        space["x"]
    with pytest.raises(ScheduleError, match="missing knob 'k'"):
        space.index_of({})
    with pytest.raises(ScheduleError, match="has no value"):
        space.index_of({"k": 3})
    with pytest.raises(ScheduleError, match="no tuning template named 'nope'"):
        create_task("nope", (1,))
    with pytest.raises(ScheduleError, match="unknown annotation"):
        ConfigSpace().define_annotate("a", [1], choices=[["spin"]])
    with pytest.raises(ScheduleError, match="template arguments must be"):
        _ = create_task("matmul", (object(), 1, 1)).workload


@template("test_default_outside_space")
def _default_outside_space(cfg, n):  # type: ignore[no-untyped-def]
    cfg.define_knob("unroll", [1, 2])
    cfg.fallback_with("unroll", 4)  # a default the space does not offer
    _ = cfg["unroll"].val
    A = te.placeholder((n,), "float32", name="A")
    B = te.compute((n,), lambda i: A[i] * 2.0, name="B")
    return te.create_schedule(B.op), [A, B]


def test_default_index_is_the_fallback_point_or_none() -> None:
    task = create_task("matmul", (32, 32, 32))
    point = task.default_index()
    assert point is not None
    fallback = FallbackConfig()
    task.instantiate(fallback)
    assert task.config_space.get(point).knob_values() == fallback.knob_values()
    assert create_task("test_default_outside_space", (8,)).default_index() is None
