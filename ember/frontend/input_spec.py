"""Parse input specs: the name, shape and (optionally) dtype of each model input.

Accepted forms (the first is the one SageMaker Neo uses)::

    >>> parse_input_spec('{"data": [1, 3, 224, 224]}')
    {'data': InputSpec(shape=(1, 3, 224, 224), dtype=None)}
    >>> parse_input_spec("data:1x3x224x224:float16,mask:1x16:bool")["mask"]
    InputSpec(shape=(1, 16), dtype='bool')

also a JSON list of such objects (``[{"a": [1, 4]}, {"b": [2]}]``), a JSON object
of ``{"name": {"shape": [...], "dtype": "..."}}``, and the same structures as
Python dicts. ``dtype=None`` means "as the model declares it". A name may be a
tensor name with its output index, as TensorFlow writes them
(``input:0:1x224x224x3`` is input ``input:0``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ember.errors import FrontendError
from ember.graph.ir import DTYPES

_FORMS = (
    "accepted forms: '{\"data\": [1, 3, 224, 224]}' (JSON, as SageMaker Neo), "
    '\'[{"a": [1, 4]}, {"b": [2]}]\', \'{"data": {"shape": [1, 3, 224, 224], '
    '"dtype": "float32"}}\', or \'data:1x3x224x224[:dtype]\' (comma-separated for several)'
)


class InputSpec(NamedTuple):
    """Static shape and dtype of one model input (``dtype=None``: take the model's)."""

    shape: tuple[int, ...]
    dtype: str | None = None


def parse_input_spec(spec: str | Mapping[str, Any] | Sequence[Any]) -> dict[str, InputSpec]:
    """Parse an input spec (JSON text, ``NAME:1x3x224x224[:dtype]`` text, or a dict).

    >>> parse_input_spec({"data": (1, 3, 8, 8)})
    {'data': InputSpec(shape=(1, 3, 8, 8), dtype=None)}
    """
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise FrontendError("the input spec is empty", hint=_FORMS)
        if text[0] in "{[":
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise FrontendError(
                    f"the input spec {_short(text)} is not valid JSON: {err.msg} "
                    f"(at character {err.pos})",
                    hint=_FORMS,
                ) from None
            return _from_structure(value, text)
        return _from_colon_form(text)
    return _from_structure(spec, repr(spec))


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _from_structure(value: Any, source: str) -> dict[str, InputSpec]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple) and all(isinstance(v, Mapping) for v in value):
        items = [item for v in value for item in v.items()]
    else:
        raise FrontendError(
            f"the input spec {_short(source)} must map input names to shapes",
            hint=_FORMS,
        )
    if not items:
        raise FrontendError(f"the input spec {_short(source)} names no inputs", hint=_FORMS)
    result: dict[str, InputSpec] = {}
    for name, entry in items:
        if not isinstance(name, str) or not name:
            raise FrontendError(f"input spec: input name {name!r} is not a non-empty string")
        if name in result:
            raise FrontendError(f"input spec: input {name!r} is given twice")
        if isinstance(entry, InputSpec):
            result[name] = InputSpec(_shape(name, entry.shape), _dtype(name, entry.dtype))
        elif isinstance(entry, Mapping):
            unknown = sorted(set(entry) - {"shape", "dtype"})
            if unknown or "shape" not in entry:
                raise FrontendError(
                    f"input spec for {name!r} must have the keys 'shape' and optionally 'dtype', "
                    f"got {sorted(entry)}",
                    hint=_FORMS,
                )
            result[name] = InputSpec(_shape(name, entry["shape"]), _dtype(name, entry.get("dtype")))
        else:
            result[name] = InputSpec(_shape(name, entry), None)
    return result


def _shape(name: str, dims: Any) -> tuple[int, ...]:
    if isinstance(dims, str | bytes) or not isinstance(dims, Sequence):
        raise FrontendError(
            f"input spec: the shape of {name!r} must be a list of ints, got {dims!r}", hint=_FORMS
        )
    shape = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise FrontendError(
                f"input spec: the shape of {name!r} must hold non-negative ints, "
                f"got {list(dims)!r}",
                hint="dynamic dims (-1, None, 'batch') must be given a size, e.g. 1",
            )
        shape.append(int(d))
    return tuple(shape)


def _dtype(name: str, dtype: Any) -> str | None:
    if dtype is None:
        return None
    if dtype not in DTYPES:
        raise FrontendError(
            f"input spec: dtype {dtype!r} of {name!r} is not an ember dtype",
            hint=f"use one of {', '.join(DTYPES)}",
        )
    return str(dtype)


def _from_colon_form(text: str) -> dict[str, InputSpec]:
    result: dict[str, InputSpec] = {}
    for part in text.split(","):
        part = part.strip()
        fields = part.split(":")
        if _names_a_tensor(fields):  # input:0:1x224x224x3 (TensorFlow's tensor names)
            fields = [f"{fields[0]}:{fields[1]}", *fields[2:]]
        if len(fields) not in (2, 3) or not fields[0]:
            raise FrontendError(
                f"input spec entry {_short(part)} is not NAME:SHAPE[:DTYPE] "
                "(e.g. data:1x3x224x224 or ids:1x128:int64)",
                hint=_FORMS,
            )
        name, dims_text = fields[0].strip(), fields[1].strip()
        if name in result:
            raise FrontendError(f"input spec: input {name!r} is given twice")
        try:
            dims = [int(d) for d in dims_text.lower().split("x")] if dims_text else []
        except ValueError:
            raise FrontendError(
                f"input spec: the shape {dims_text!r} of {name!r} is not dims joined by 'x' "
                "(e.g. 1x3x224x224)",
                hint=_FORMS,
            ) from None
        dtype = fields[2].strip() if len(fields) == 3 else None
        result[name] = InputSpec(_shape(name, dims), _dtype(name, dtype))
    return result


def _names_a_tensor(fields: list[str]) -> bool:
    """True if ``NAME:INDEX:SHAPE[:DTYPE]`` (``input:0:1x224x224x3``): INDEX belongs to the name.

    ``x:4:int64`` stays the 1-D shape (4,) with a dtype: a dtype never follows a tensor index
    without a shape between them.
    """
    if len(fields) == 4:
        return fields[1].strip().isdigit()
    return len(fields) == 3 and fields[1].strip().isdigit() and fields[2].strip() not in DTYPES


def shapes_and_dtypes(
    specs: Mapping[str, InputSpec],
) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Split parsed specs into the ``shape=`` and ``dtype=`` arguments of the frontends."""
    shapes = {name: s.shape for name, s in specs.items()}
    dtypes = {name: s.dtype for name, s in specs.items() if s.dtype is not None}
    return shapes, dtypes
