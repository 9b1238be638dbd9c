"""Read a TF 2.x SavedModel directory without TensorFlow: graph, signature and variables.

A SavedModel holds ``saved_model.pb`` (a ``SavedModel`` proto: the graph, its
function library, the signatures and the object graph) and a checkpoint in
``variables/`` (a *tensor bundle*: an SSTable index ``variables.index`` whose
values say where each tensor lies in ``variables.data-*``). The signature's
output is computed by a ``StatefulPartitionedCall`` whose extra inputs are
``VarHandleOp`` nodes; the object graph's ``bound_inputs`` of the called
function name the variable objects, and the checkpoint's object graph gives
each one's key in the bundle. :func:`read_saved_model` resolves that chain and
returns the value of every variable handle node::

    model = read_saved_model(Path("saved_model_dir"))
    model.variables["dense/kernel"]  # numpy array
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ember.errors import FrontendError
from ember.frontend.tensorflow.proto import (
    DTYPES,
    FunctionDef,
    NodeDef,
    _shape,
    _varint,
    fields,
    function_name,
    read_graph_def,
)

TABLE_MAGIC = 0xDB4775248B80FB57  # leveldb table footer magic (little-endian uint64)
OBJECT_GRAPH_KEY = b"_CHECKPOINTABLE_OBJECT_GRAPH"


@dataclass
class SavedModel:
    nodes: list[NodeDef]
    library: dict[str, FunctionDef]
    inputs: dict[str, str] = field(default_factory=dict)  # signature key -> placeholder node
    outputs: list[str] = field(
        default_factory=list
    )  # tensor refs, e.g. "StatefulPartitionedCall:0"
    variables: dict[str, np.ndarray] = field(default_factory=dict)  # VarHandleOp node -> value
    output_keys: dict[str, str] = field(default_factory=dict)  # signature key -> tensor ref


def read_saved_model(path: Path, signature: str = "serving_default") -> SavedModel:
    """Graph, signature and variable values of the SavedModel directory ``path``."""
    try:
        return _read_saved_model(path, signature)
    except FrontendError:
        raise
    except (ValueError, IndexError, KeyError, struct.error, UnicodeDecodeError) as err:
        raise FrontendError(f"SavedModel {str(path)!r} is corrupt: {err}") from None


def _read_saved_model(path: Path, signature: str) -> SavedModel:
    meta = None
    for number, _, value in fields((path / "saved_model.pb").read_bytes()):
        if number == 2:  # the first MetaGraphDef (the "serve" tag set)
            meta = value
            break
    if meta is None:
        raise FrontendError(f"SavedModel {str(path)!r} holds no meta graph")
    graph, signatures, bound = b"", {}, {}
    for number, _, value in fields(meta):
        if number == 2:
            graph = value
        elif number == 5:
            entry = dict((n, v) for n, _, v in fields(value))
            signatures[bytes(entry.get(1, b"")).decode()] = entry.get(2, b"")
        elif number == 7:
            bound = _bound_inputs(value)
    if signature not in signatures:
        raise FrontendError(
            f"SavedModel {str(path)!r} has no signature {signature!r}",
            hint=f"its signatures are: {', '.join(sorted(signatures))}",
        )
    nodes, library = read_graph_def(graph)
    model = SavedModel(nodes, library)
    for number, _, value in fields(signatures[signature]):
        if number in (1, 2):  # map<string, TensorInfo>
            entry = dict((n, v) for n, _, v in fields(value))
            key = bytes(entry.get(1, b"")).decode()
            info = dict((n, v) for n, _, v in fields(entry.get(2, b"")))
            tensor = bytes(info.get(1, b"")).decode()
            if number == 1:
                model.inputs[key] = tensor.split(":")[0]
            else:
                model.outputs.append(tensor)
                model.output_keys[key] = tensor
    handles = [n for n in nodes if n.op == "VarHandleOp"]
    if handles:
        checkpoint = read_bundle(path / "variables" / "variables")
        keys = _checkpoint_keys(checkpoint.pop(OBJECT_GRAPH_KEY))
        by_name = {n.name: n for n in nodes}
        for node in nodes:
            fname = function_name(node.attrs.get("f"))
            if fname not in bound:
                continue
            refs = [i for i in node.inputs if not i.startswith("^")]
            captured = refs[len(refs) - len(bound[fname]) :]
            for ref, object_id in zip(captured, bound[fname]):
                handle = ref.split(":")[0]
                if by_name.get(handle) is not None and by_name[handle].op == "VarHandleOp":
                    if object_id not in keys:
                        raise FrontendError(
                            f"SavedModel variable {handle!r} is not in its checkpoint"
                        )
                    model.variables[handle] = checkpoint[keys[object_id].encode()]
    return model


def _bound_inputs(object_graph: bytes) -> dict[str, list[int]]:
    """SavedObjectGraph.concrete_functions: function name -> captured object ids."""
    out = {}
    for number, _, value in fields(object_graph):
        if number == 2:
            entry = dict((n, v) for n, _, v in fields(value))
            ids: list[int] = []
            for n, wire, v in fields(entry.get(2, b"")):
                if n == 2:
                    ids += _varints(wire, v)
            out[bytes(entry.get(1, b"")).decode()] = ids
    return out


def _varints(wire: int, value) -> list[int]:
    if wire == 0:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v)
    return out


def _checkpoint_keys(object_graph: np.ndarray) -> dict[int, str]:
    """TrackableObjectGraph: object id -> checkpoint key of its VARIABLE_VALUE."""
    keys = {}
    objects = [value for number, _, value in fields(bytes(object_graph.item())) if number == 1]
    for index, value in enumerate(objects):
        for n, _, attribute in fields(value):
            if n == 2:
                attr = {k: bytes(v).decode() for k, _, v in fields(attribute)}
                if attr.get(1) == "VARIABLE_VALUE":
                    keys[index] = attr.get(3, "")
    return keys


# ----------------------------------------------------------------------------- tensor bundle


def read_bundle(prefix: Path) -> dict[bytes, np.ndarray]:
    """All tensors of the checkpoint at ``prefix`` (``prefix.index`` + ``prefix.data-*``)."""
    index = Path(str(prefix) + ".index")
    try:
        table = read_table(index.read_bytes())
    except OSError as err:
        raise FrontendError(
            f"cannot read checkpoint index {str(index)!r}: {err.strerror}"
        ) from None
    shards: dict[int, bytes] = {}
    tensors = {}
    for key, value in table.items():
        if not key:
            continue  # the BundleHeaderProto
        entry = {n: (w, v) for n, w, v in fields(value)}
        dtype_code = entry.get(1, (0, 1))[1]
        shape = _shape(entry[2][1]) if 2 in entry else []
        shard = entry.get(3, (0, 0))[1]
        offset = entry.get(4, (0, 0))[1]
        size = entry.get(5, (0, 0))[1]
        if shard not in shards:
            matches = sorted(prefix.parent.glob(f"{prefix.name}.data-{shard:05d}-of-*"))
            if not matches:
                raise FrontendError(f"checkpoint shard {shard} of {str(prefix)!r} is missing")
            shards[shard] = matches[0].read_bytes()
        raw = shards[shard][offset : offset + size]
        if dtype_code == 7:  # DT_STRING: varint lengths, a crc32c, then the bytes
            length, pos = _varint(raw, 0)
            tensors[key] = np.asarray(raw[pos + 4 : pos + 4 + length], dtype=object)
            continue
        dtype = DTYPES.get(dtype_code)
        if dtype is None:
            raise FrontendError(f"checkpoint tensor {key!r} has unsupported DataType {dtype_code}")
        tensors[key] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        tensors[key] = tensors[key].reshape(shape or [])
    return tensors


def read_table(buf: bytes) -> dict[bytes, bytes]:
    """Every key/value of a leveldb-format SSTable (the tensor bundle index)."""
    if len(buf) < 48 or struct.unpack_from("<Q", buf, len(buf) - 8)[0] != TABLE_MAGIC:
        raise FrontendError("checkpoint index is not an SSTable (bad footer magic)")
    footer = buf[-48:]
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    out = {}
    for _, handle in _block_entries(_block(buf, index_offset, index_size)):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        out.update(_block_entries(_block(buf, offset, size)))
    return out


def _block(buf: bytes, offset: int, size: int) -> bytes:
    data = buf[offset : offset + size]
    kind = buf[offset + size]  # trailer: compression type, then a crc32c
    if kind == 1:
        return snappy_decompress(data)
    if kind != 0:
        raise FrontendError(f"checkpoint index block uses unknown compression {kind}")
    return data


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * restarts
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((bytes(key), bytes(block[pos : pos + length])))
        pos += length
    return entries


def snappy_decompress(data: bytes) -> bytes:
    """Decode a raw snappy block (literal and copy elements)."""
    size, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            length += 1
            out += data[pos : pos + length]
            pos += length
            continue
        if kind == 1:
            length, offset = 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise FrontendError("corrupt snappy block in checkpoint index")
        for _ in range(length):  # copies may overlap their own output
            out.append(out[-offset])
    if len(out) != size:
        raise FrontendError("corrupt snappy block in checkpoint index")
    return bytes(out)
