"""Input specs: Neo JSON, list and dict forms, NAME:1x3x224x224[:dtype], and their errors."""

from __future__ import annotations

import pytest

from ember.errors import FrontendError
from ember.frontend import InputSpec, parse_input_spec
from ember.frontend.input_spec import shapes_and_dtypes


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ('{"data": [1, 3, 224, 224]}', {"data": InputSpec((1, 3, 224, 224), None)}),
        ('{"a": [1, 4], "b": []}', {"a": InputSpec((1, 4)), "b": InputSpec(())}),
        ('[{"a": [1, 4]}, {"b": [2]}]', {"a": InputSpec((1, 4)), "b": InputSpec((2,))}),
        ('{"ids": {"shape": [1, 128], "dtype": "int64"}}', {"ids": InputSpec((1, 128), "int64")}),
        ("data:1x3x224x224", {"data": InputSpec((1, 3, 224, 224))}),
        (
            "data:1X3:float16, mask:1x16:bool",
            {"data": InputSpec((1, 3), "float16"), "mask": InputSpec((1, 16), "bool")},
        ),
        ("scalar:", {"scalar": InputSpec(())}),
        ({"data": (1, 3, 8, 8)}, {"data": InputSpec((1, 3, 8, 8))}),
        ({"x": {"shape": [2], "dtype": "int32"}}, {"x": InputSpec((2,), "int32")}),
        ({"x": InputSpec((2,), "float32")}, {"x": InputSpec((2,), "float32")}),
    ],
)
def test_accepted_forms(spec, expected) -> None:
    assert parse_input_spec(spec) == expected


def test_shapes_and_dtypes_split() -> None:
    shapes, dtypes = shapes_and_dtypes(parse_input_spec("a:1x2:int64,b:3"))
    assert shapes == {"a": (1, 2), "b": (3,)} and dtypes == {"a": "int64"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "the input spec is empty"),
        ("   ", "the input spec is empty"),
        ('{"data": [1, 3, 224', "is not valid JSON"),
        ("{}", "names no inputs"),
        ("[1, 3, 224, 224]", "must map input names to shapes"),
        ('{"data": "1x3"}', "must be a list of ints"),
        ('{"data": [1, -1, 224]}', "must hold non-negative ints"),
        ('{"data": [1, null]}', "must hold non-negative ints"),
        ('{"data": [1.5]}', "must hold non-negative ints"),
        ('{"data": {"dims": [1]}}', "must have the keys 'shape'"),
        (
            '{"data": {"shape": [1], "dtype": "float"}}',
            "dtype 'float' of 'data' is not an ember dtype",
        ),
        ('[{"a": [1]}, {"a": [2]}]', "input 'a' is given twice"),
        ("data", "is not NAME:SHAPE"),
        ("data:1x3:float32:extra", "is not NAME:SHAPE"),
        (":1x3", "is not NAME:SHAPE"),
        ("data:1xx3", "is not dims joined by 'x'"),
        ("data:1x3,data:1x3", "given twice"),
        ("data:1x3:complex64", "not an ember dtype"),
    ],
)
def test_errors(spec: str, message: str) -> None:
    with pytest.raises(FrontendError, match=message):
        parse_input_spec(spec)
