"""A small, dependency-free decoder of TensorFlow GraphDef protobufs.

It reads the protobuf wire format (varints, length-delimited fields, fixed
32/64-bit values) and keeps only what the importer needs: nodes, their inputs
and attributes, and constant tensors. Field numbers are those of
``tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto``::

    nodes = read_graph_def(open("frozen.pb", "rb").read())
    print(nodes[0].name, nodes[0].op, nodes[0].attrs.get("dtype"))
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ember.errors import FrontendError

# DataType enum -> numpy dtype name (None: ember cannot hold it)
DTYPES: dict[int, str | None] = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: None,  # string
    9: "int64",
    10: "bool",
    17: None,  # uint16
    19: "float16",
    22: "uint32",
}


class DecodeError(FrontendError):
    """The bytes are not a valid protobuf message."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise DecodeError("varint is too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of one message."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise DecodeError(f"unsupported wire type {wire} (field {number})")
        if pos > end or number == 0:
            raise DecodeError("message is truncated or malformed")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(wire: int, value: Any) -> list[int]:
    if wire == 0:
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(_signed(v))
    return out


def _packed_fixed(wire: int, value: bytes, fmt: str) -> list[Any]:
    size = struct.calcsize(fmt)
    return list(struct.unpack(f"<{len(value) // size}{fmt}", value))


# ----------------------------------------------------------------------------- messages


@dataclass
class NodeDef:
    name: str = ""
    op: str = ""
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class FunctionDef:
    """A function of the graph's library (called by PartitionedCall nodes)."""

    name: str = ""
    input_args: list[str] = field(default_factory=list)
    output_args: list[str] = field(default_factory=list)
    nodes: list[NodeDef] = field(default_factory=list)
    ret: dict[str, str] = field(default_factory=dict)  # output arg -> "node:out_arg:index"


def read_graph_def(buf: bytes) -> tuple[list[NodeDef], dict[str, FunctionDef]]:
    """The nodes of a serialized GraphDef and the functions of its library, by name."""
    nodes, library = [], {}
    for number, wire, value in fields(buf):
        if number == 1 and wire == 2:
            nodes.append(_node_def(value))
        elif number == 2 and wire == 2:
            for n, _, v in fields(value):
                if n == 1:
                    function = _function_def(v)
                    library[function.name] = function
    return nodes, library


def _function_def(buf: bytes) -> FunctionDef:
    function = FunctionDef()
    for number, _, value in fields(buf):
        if number == 1:  # OpDef signature
            for n, _, v in fields(value):
                if n == 1:
                    function.name = bytes(v).decode()
                elif n in (2, 3):
                    arg = next((bytes(a).decode() for k, _, a in fields(v) if k == 1), "")
                    (function.input_args if n == 2 else function.output_args).append(arg)
        elif number == 3:
            function.nodes.append(_node_def(value))
        elif number == 4:
            entry = {k: bytes(v).decode() for k, _, v in fields(value) if k in (1, 2)}
            function.ret[entry.get(1, "")] = entry.get(2, "")
    return function


def function_name(attr: Any) -> str:
    """The function name of a ``func`` attribute (a NameAttrList)."""
    if isinstance(attr, tuple) and attr[0] == "func":
        return next((bytes(v).decode() for n, _, v in fields(attr[1]) if n == 1), "")
    return ""


def _node_def(buf: bytes) -> NodeDef:
    node = NodeDef()
    for number, _, value in fields(buf):
        if number == 1:
            node.name = bytes(value).decode()
        elif number == 2:
            node.op = bytes(value).decode()
        elif number == 3:
            node.inputs.append(bytes(value).decode())
        elif number == 5:  # map<string, AttrValue> entry
            key, attr = "", None
            for n, _, v in fields(value):
                if n == 1:
                    key = bytes(v).decode()
                elif n == 2:
                    attr = _attr_value(v)
            node.attrs[key] = attr
    return node


def _attr_value(buf: bytes) -> Any:
    for number, _, value in fields(buf):
        if number == 1:
            return _list_value(value)
        if number == 2:
            return bytes(value).decode("utf-8", "replace")
        if number in (3, 6):  # i, type
            return _signed(value)
        if number == 4:
            return struct.unpack("<f", value)[0]
        if number == 5:
            return bool(value)
        if number == 7:
            return _shape(value)
        if number == 8:
            return _tensor(value)
        if number == 10:
            return ("func", bytes(value))
    return None


def _list_value(buf: bytes) -> list[Any]:
    out: list[Any] = []
    for number, wire, value in fields(buf):
        if number == 2:
            out.append(bytes(value).decode("utf-8", "replace"))
        elif number in (3, 6):
            out.extend(_packed_varints(wire, value))
        elif number == 4:
            out.extend(_packed_fixed(wire, value, "f"))
        elif number == 5:
            out.extend(bool(v) for v in _packed_varints(wire, value))
        elif number == 7:
            out.append(_shape(value))
        elif number == 8:
            out.append(_tensor(value))
    return out


def _shape(buf: bytes) -> list[int] | None:
    """A TensorShapeProto: dims (-1 unknown), or None for an unknown rank."""
    dims: list[int] = []
    for number, _, value in fields(buf):
        if number == 2:
            size = 0
            for n, _, v in fields(value):
                if n == 1:
                    size = _signed(v)
            dims.append(size)
        elif number == 3 and value:
            return None
    return dims


def _tensor(buf: bytes) -> np.ndarray:
    dtype_code, shape, content = 0, [], None
    values: dict[int, list[Any]] = {}
    for number, wire, value in fields(buf):
        if number == 1:
            dtype_code = value
        elif number == 2:
            shape = _shape(value) or []
        elif number == 4:
            content = bytes(value)
        elif number == 5:
            values.setdefault(5, []).extend(_packed_fixed(wire, value, "f"))
        elif number == 6:
            values.setdefault(6, []).extend(_packed_fixed(wire, value, "d"))
        elif number in (7, 10, 11, 13, 16, 17):  # int, int64, bool, half (as bits), uint32/64
            values.setdefault(number, []).extend(_packed_varints(wire, value))
        elif number == 8:
            values.setdefault(8, []).append(bytes(value))
    dtype = DTYPES.get(dtype_code)
    if dtype is None:
        if dtype_code == 7:  # strings: only for error messages; never folded into the graph
            return np.asarray(
                [s.decode("utf-8", "replace") for s in values.get(8, [])], dtype=object
            )
        raise FrontendError(f"TensorFlow constant of DataType {dtype_code} is not supported")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype=np.dtype(dtype).newbyteorder("<"))
        if array.size != count:
            raise FrontendError(
                f"TensorFlow constant: tensor_content holds {array.size} values, shape {shape} "
                f"needs {count}"
            )
        return array.astype(dtype).reshape(shape)
    listed = next((values[n] for n in (5, 6, 7, 10, 11, 13, 16, 17) if n in values), [])
    if dtype == "float16" and 13 in values:
        listed = list(np.asarray(values[13], dtype="uint16").view("float16"))
    if not listed:
        return np.zeros(shape, dtype=dtype)
    array = np.asarray(listed, dtype=dtype)
    if array.size < count:  # TF repeats the last value to fill the tensor
        array = np.concatenate([array, np.full(count - array.size, array[-1], dtype=dtype)])
    return array[:count].reshape(shape)
