"""Search spaces: knobs a schedule template declares, and the points (configs) they span.

A *template* is a function ``template(cfg, *args) -> (schedule, tensors)``. It declares
knobs on ``cfg`` and applies the chosen values, so the same code builds the default
schedule (:class:`FallbackConfig`), collects the space (:class:`ConfigSpace`) and builds
every point the tuner tries (:class:`ConfigEntity`)::

    def matmul(cfg, n, m, k):
        ...
        cfg.define_split("tile_y", n, num_outputs=2)
        cfg.define_knob("unroll", [0, 1])
        yo, yi = cfg["tile_y"].apply(s, C, C.op.axis[0])

    space = ConfigSpace(); matmul(space, 64, 64, 64)
    len(space)                 # product of the knob sizes
    cfg = space.get(17)        # a ConfigEntity; cfg.index == 17

The index of a point is a mixed-radix number over the knobs in definition order, so
``space.get(i).index == i`` and ``space.index_of(space.get(i).knob_values()) == i``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ember.errors import ScheduleError

ANNOTATIONS = ("none", "unroll", "vec", "parallel")
"""Loop annotations an annotate knob can choose for each axis."""

FALLBACK_VECTOR_LANES = 8
"""Default innermost split factor (8 float32 lanes fill one AVX2 register)."""


def _extent(axis: Any, knob: str) -> int:
    if isinstance(axis, int) and not isinstance(axis, bool):
        if axis < 1:
            raise ScheduleError(f"knob {knob!r}: the extent must be >= 1, got {axis}")
        return axis
    try:
        return int(axis.extent)
    except Exception:
        raise ScheduleError(
            f"knob {knob!r}: cannot read a constant extent from {axis!r}",
            hint="pass a root axis with a constant extent (stage.op.axis[k]) or an int",
        ) from None


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


# ----------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class SplitEntity:
    """Split factors, outermost first; ``size[0] == -1`` means "whatever is left"."""

    size: tuple[int, ...]

    def apply(self, s: Any, stage: Any, axis: Any) -> list[Any]:
        """Split ``axis`` of ``stage`` (a Stage or a tensor) into ``len(size)`` loops."""
        st = s[stage] if not hasattr(stage, "split") else stage
        inners = []
        for factor in reversed(self.size[1:]):
            axis, inner = st.split(axis, factor=int(factor))
            inners.append(inner)
        return [axis, *reversed(inners)]

    def to_json(self) -> list[int]:
        return list(self.size)


@dataclass(frozen=True)
class ReorderEntity:
    """A permutation of the knob's axes."""

    perm: tuple[int, ...]

    def apply(self, s: Any, stage: Any, axes: Sequence[Any]) -> list[Any]:
        st = s[stage] if not hasattr(stage, "reorder") else stage
        ordered = [axes[i] for i in self.perm]
        st.reorder(*ordered)
        return ordered

    def to_json(self) -> list[int]:
        return list(self.perm)


@dataclass(frozen=True)
class AnnotateEntity:
    """One annotation per axis (``"none"``, ``"unroll"``, ``"vec"``, ``"parallel"``)."""

    anns: tuple[str, ...]

    def apply(self, s: Any, stage: Any, axes: Sequence[Any]) -> None:
        st = s[stage] if not hasattr(stage, "vectorize") else stage
        for ax, ann in zip(axes, self.anns, strict=True):
            if ann == "unroll":
                st.unroll(ax)
            elif ann == "vec":
                st.vectorize(ax)
            elif ann == "parallel":
                st.parallel(ax)

    def to_json(self) -> list[str]:
        return list(self.anns)


@dataclass(frozen=True)
class OtherOptionEntity:
    """One value of a ``define_knob`` knob (``cfg["unroll"].val``)."""

    val: Any

    def to_json(self) -> Any:
        return self.val


Entity = SplitEntity | ReorderEntity | AnnotateEntity | OtherOptionEntity


# ----------------------------------------------------------------------------- knob spaces


class KnobSpace:
    """The list of entities one knob can take."""

    kind = "other"

    def __init__(self, name: str, entities: list[Entity]) -> None:
        if not entities:
            raise ScheduleError(
                f"knob {name!r} has no candidates (a filter or max_factor removed all of them)"
            )
        self.name = name
        self.entities = entities
        self._index = {e: i for i, e in enumerate(entities)}

    def __len__(self) -> int:
        return len(self.entities)

    def index_of(self, entity: Entity) -> int:
        try:
            return self._index[entity]
        except KeyError:
            raise ScheduleError(f"knob {self.name!r} has no value {entity!r}") from None

    def from_json(self, value: Any) -> Entity:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} choices)"


class SplitSpace(KnobSpace):
    kind = "split"

    def __init__(
        self,
        name: str,
        extent: int,
        num_outputs: int,
        policy: str,
        max_factor: int | None,
        filter: Callable[[SplitEntity], bool] | None,
    ) -> None:
        if num_outputs not in (2, 3, 4):
            raise ScheduleError(f"define_split {name!r}: num_outputs must be 2, 3 or 4")
        if policy == "factors":
            choices = _divisors(extent)
        elif policy == "power2":
            choices = [1 << p for p in range(extent.bit_length()) if (1 << p) <= extent]
        elif policy == "verbose":
            choices = sorted(set(_divisors(extent)) | {1 << p for p in range(extent.bit_length())})
        else:
            raise ScheduleError(
                f"define_split {name!r}: unknown policy {policy!r}",
                hint='use "factors", "power2" or "verbose"',
            )
        if max_factor is not None:
            choices = [c for c in choices if c <= max_factor]
        entities = []
        # Inner factors whose product stays within the extent (and divides it for
        # "factors", so no loop gets a guard); the outer loop takes what is left.
        for inner in itertools.product(choices, repeat=num_outputs - 1):
            prod = math.prod(inner)
            if prod > extent or (policy == "factors" and extent % prod):
                continue
            entity = SplitEntity((-1, *inner))
            if filter is None or filter(entity):
                entities.append(entity)
        self.extent = extent
        self.num_outputs = num_outputs
        super().__init__(name, entities)

    def from_json(self, value: Any) -> Entity:
        return SplitEntity(tuple(int(v) for v in value))


class ReorderSpace(KnobSpace):
    kind = "reorder"

    def __init__(self, name: str, n_axes: int, perms: list[tuple[int, ...]]) -> None:
        self.n_axes = n_axes
        super().__init__(name, [ReorderEntity(p) for p in perms])

    def from_json(self, value: Any) -> Entity:
        return ReorderEntity(tuple(int(v) for v in value))


class AnnotateSpace(KnobSpace):
    kind = "annotate"

    def __init__(self, name: str, choices_per_axis: list[tuple[str, ...]]) -> None:
        self.n_axes = len(choices_per_axis)
        super().__init__(
            name, [AnnotateEntity(tuple(c)) for c in itertools.product(*choices_per_axis)]
        )

    def from_json(self, value: Any) -> Entity:
        return AnnotateEntity(tuple(str(v) for v in value))


class OtherOptionSpace(KnobSpace):
    kind = "other"

    def __init__(self, name: str, candidates: Sequence[Any]) -> None:
        if len(set(map(repr, candidates))) != len(candidates):
            raise ScheduleError(f"define_knob {name!r}: candidates repeat: {list(candidates)}")
        super().__init__(name, [OtherOptionEntity(c) for c in candidates])

    def from_json(self, value: Any) -> Entity:
        return OtherOptionEntity(value)


_ANNOTATE_POLICIES = {
    # policy -> (choices for every axis, choices for the last axis)
    "try_unroll": (("none", "unroll"), ("none", "unroll")),
    "try_vec": (("none",), ("none", "vec")),
    "try_unroll_vec": (("none", "unroll"), ("none", "unroll", "vec")),
    "try_parallel": (("none", "parallel"), ("none", "parallel")),
}


# ----------------------------------------------------------------------------- configs


class _ConfigBase:
    """What templates see: ``define_*`` declares a knob, ``cfg[name]`` is its chosen value."""

    def __init__(self) -> None:
        self.space_map: dict[str, KnobSpace] = {}
        self.flop = 0.0

    is_fallback = False
    """True for :class:`FallbackConfig` (templates set their default factors then)."""

    # Subclasses decide which entity a freshly declared knob takes.
    def _choose(self, knob: KnobSpace) -> Entity:
        raise NotImplementedError

    def _define(self, knob: KnobSpace) -> Entity:
        old = self.space_map.get(knob.name)
        if old is not None and old.entities != knob.entities:
            raise ScheduleError(f"knob {knob.name!r} is defined twice with different choices")
        self.space_map[knob.name] = knob
        return self._choose(knob)

    def define_split(
        self,
        name: str,
        axis: Any,
        num_outputs: int = 2,
        policy: str = "factors",
        max_factor: int | None = None,
        filter: Callable[[SplitEntity], bool] | None = None,
    ) -> Entity:
        """Declare a split of ``axis`` (an axis or an int extent) into ``num_outputs`` loops."""
        knob = SplitSpace(name, _extent(axis, name), num_outputs, policy, max_factor, filter)
        return self._define(knob)

    def define_reorder(
        self,
        name: str,
        axes: Sequence[Any],
        policy: str = "all",
        candidates: Sequence[Sequence[Any]] | None = None,
    ) -> Entity:
        """Declare a loop order: every permutation (``"all"``), or ``candidates`` orders."""
        n = len(axes)
        if policy == "all":
            if n > 6:
                raise ScheduleError(
                    f"define_reorder {name!r}: {n} axes give {math.factorial(n)} orders",
                    hint='pass policy="candidate" with a few orders',
                )
            perms = list(itertools.permutations(range(n)))
        elif policy == "candidate":
            if not candidates:
                raise ScheduleError(f"define_reorder {name!r}: policy candidate needs candidates")
            pos = {id(a): i for i, a in enumerate(axes)}
            perms = []
            for order in candidates:
                if len(order) != n or {id(a) for a in order} != set(pos):
                    raise ScheduleError(
                        f"define_reorder {name!r}: candidate {list(order)} is not an order of "
                        f"the {n} axes"
                    )
                perms.append(tuple(pos[id(a)] for a in order))
        else:
            raise ScheduleError(f"define_reorder {name!r}: unknown policy {policy!r}")
        return self._define(ReorderSpace(name, n, perms))

    def define_annotate(
        self,
        name: str,
        axes: Sequence[Any],
        policy: str = "try_unroll",
        choices: Sequence[Sequence[str]] | None = None,
    ) -> Entity:
        """Declare annotations for ``axes``: a named ``policy`` or explicit per-axis ``choices``."""
        if choices is not None:
            per_axis = [tuple(c) for c in choices]
            if len(per_axis) != len(axes):
                raise ScheduleError(f"define_annotate {name!r}: one choice list per axis needed")
        elif policy in _ANNOTATE_POLICIES:
            every, last = _ANNOTATE_POLICIES[policy]
            per_axis = [every] * (len(axes) - 1) + [last]
        else:
            raise ScheduleError(
                f"define_annotate {name!r}: unknown policy {policy!r}",
                hint=f"use one of {sorted(_ANNOTATE_POLICIES)} or choices=",
            )
        for c in per_axis:
            bad = [a for a in c if a not in ANNOTATIONS]
            if bad:
                raise ScheduleError(f"define_annotate {name!r}: unknown annotation(s) {bad}")
        return self._define(AnnotateSpace(name, per_axis))

    def define_knob(self, name: str, candidates: Sequence[Any]) -> Entity:
        """Declare a knob taking one of ``candidates`` (ints, floats, strings, bools)."""
        if not candidates:
            raise ScheduleError(f"define_knob {name!r}: no candidates")
        return self._define(OtherOptionSpace(name, list(candidates)))

    def add_flop(self, flop: float) -> None:
        """Record the floating-point operations one run performs (for GFLOP/s)."""
        self.flop += float(flop)

    def __getitem__(self, name: str) -> Any:
        raise NotImplementedError


class ConfigSpace(_ConfigBase):
    """Collects a template's knobs; enumerates exactly the product of their choices."""

    def __init__(self) -> None:
        super().__init__()
        self.template_name = ""

    def _choose(self, knob: KnobSpace) -> Entity:
        return knob.entities[0]

    def __getitem__(self, name: str) -> Any:
        # While the space is being collected, the template builds the schedule with the
        # first choice of every knob (any valid point would do).
        return self._knob(name).entities[0]

    def _knob(self, name: str) -> KnobSpace:
        try:
            return self.space_map[name]
        except KeyError:
            raise ScheduleError(
                f"the template has no knob {name!r}", hint=f"knobs: {list(self.space_map)}"
            ) from None

    @property
    def dims(self) -> list[int]:
        return [len(k) for k in self.space_map.values()]

    def __len__(self) -> int:
        return math.prod(self.dims)

    def get(self, index: int) -> ConfigEntity:
        """The point with this index (``0 <= index < len(self)``)."""
        if not 0 <= index < len(self):
            raise ScheduleError(f"config index {index} is outside the space of {len(self)} points")
        entities, rest = {}, index
        for name, knob in self.space_map.items():
            entities[name] = knob.entities[rest % len(knob)]
            rest //= len(knob)
        return ConfigEntity(self, index, entities)

    def index_of(self, knob_values: dict[str, Any]) -> int:
        """The index of the point with these knob values (JSON form, as records store them)."""
        index, radix = 0, 1
        for name, knob in self.space_map.items():
            if name not in knob_values:
                raise ScheduleError(f"config is missing knob {name!r}")
            index += knob.index_of(knob.from_json(knob_values[name])) * radix
            radix *= len(knob)
        extra = set(knob_values) - set(self.space_map)
        if extra:
            raise ScheduleError(f"config has unknown knob(s) {sorted(extra)}")
        return index

    def knob_indices(self, index: int) -> list[int]:
        """Per-knob choice indices of a point (the tuners' coordinates)."""
        out = []
        for knob in self.space_map.values():
            out.append(index % len(knob))
            index //= len(knob)
        return out

    def index_from_knob_indices(self, coords: Sequence[int]) -> int:
        index, radix = 0, 1
        for c, n in zip(coords, self.dims, strict=True):
            index += c * radix
            radix *= n
        return index

    def __iter__(self) -> Iterator[ConfigEntity]:
        return (self.get(i) for i in range(len(self)))

    def __repr__(self) -> str:
        knobs = ", ".join(f"{n}:{len(k)}" for n, k in self.space_map.items())
        return f"ConfigSpace({len(self)} points; {knobs})"


class ConfigEntity(_ConfigBase):
    """One point of a space: ``cfg[name]`` is the chosen entity of each knob."""

    def __init__(self, space: ConfigSpace, index: int, entities: dict[str, Entity]) -> None:
        super().__init__()
        self.space = space
        self.index = index
        self.entities = entities

    def _define(self, knob: KnobSpace) -> Entity:
        # Re-running the template declares the knobs again; keep the chosen values.
        self.space_map[knob.name] = knob
        return self.entities[knob.name]

    def __getitem__(self, name: str) -> Any:
        try:
            return self.entities[name]
        except KeyError:
            raise ScheduleError(
                f"the config has no knob {name!r}", hint=f"knobs: {list(self.entities)}"
            ) from None

    def knob_values(self) -> dict[str, Any]:
        """JSON-able knob values (what records store)."""
        return {n: e.to_json() for n, e in self.entities.items()}

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "knobs": self.knob_values()}

    def __repr__(self) -> str:
        return f"ConfigEntity({self.index}, {self.knob_values()})"


class FallbackConfig(_ConfigBase):
    """The default point: every knob takes a sensible default, or one a template set.

    Splits default to an inner factor of :data:`FALLBACK_VECTOR_LANES` (or the largest
    divisor below it), other knobs to their first choice; templates may override with
    ``cfg.fallback_split(name, [-1, 8])`` / ``cfg.fallback_with(name, value)`` before
    reading the knob.
    """

    is_fallback = True

    def __init__(self) -> None:
        super().__init__()
        self.index = -1
        self.entities: dict[str, Entity] = {}
        self._overrides: dict[str, Entity] = {}

    def _choose(self, knob: KnobSpace) -> Entity:
        if knob.name in self._overrides:
            e = self._overrides[knob.name]
        elif isinstance(knob, SplitSpace):
            e = _default_split(knob)
        else:
            e = knob.entities[0]
        self.entities[knob.name] = e
        return e

    def fallback_split(self, name: str, size: Sequence[int]) -> None:
        """Use these split factors (outermost first, ``-1`` for the rest) by default."""
        self._overrides[name] = SplitEntity(tuple(int(v) for v in size))
        if name in self.entities:
            self.entities[name] = self._overrides[name]

    def fallback_with(self, name: str, value: Any) -> None:
        """Use this value for an annotate/reorder/other knob by default."""
        if isinstance(value, Entity):
            entity = value
        else:
            entity = OtherOptionEntity(value)
        self._overrides[name] = entity
        if name in self.entities:
            self.entities[name] = entity

    def __getitem__(self, name: str) -> Any:
        try:
            return self.entities[name]
        except KeyError:
            raise ScheduleError(f"the template read knob {name!r} before defining it") from None

    def knob_values(self) -> dict[str, Any]:
        return {n: e.to_json() for n, e in self.entities.items()}

    def __repr__(self) -> str:
        return f"FallbackConfig({self.knob_values()})"


def _default_split(knob: SplitSpace) -> SplitEntity:
    """Innermost factor: the vector width (or its largest divisor of the extent); the middle
    factors 1, so the loop nest is the plain nest with a vectorizable inner loop."""
    lanes = max((d for d in _divisors(knob.extent) if d <= FALLBACK_VECTOR_LANES), default=1)
    size = (-1,) + (1,) * (knob.num_outputs - 2) + (lanes,)
    entity = SplitEntity(size)
    return entity if entity in knob._index else knob.entities[0]


__all__ = [
    "AnnotateEntity",
    "ConfigEntity",
    "ConfigSpace",
    "FallbackConfig",
    "OtherOptionEntity",
    "ReorderEntity",
    "SplitEntity",
]
