"""A small, dependency-free reader of TFLite flatbuffers (schema version 3).

It reads only the tables and fields the importer needs, by their slots in the
published ``tensorflow/lite/schema/schema.fbs``; every offset is bounds-checked
so that a corrupt file raises :class:`FrontendError` instead of a struct error.
Flatbuffers in brief: a table starts with an int32 back-offset to its vtable;
the vtable lists, per field, the field's offset inside the table (0 = absent,
use the default). Vectors and strings are a uint32 length followed by elements::

    model = read_model(open("m.tflite", "rb").read())
    graph = model.subgraphs[0]
    print([t.name for t in graph.tensors])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.errors import FrontendError

# TensorType enum -> numpy dtype name (None: ember cannot hold it)
TENSOR_TYPES: dict[int, str | None] = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: None,  # string
    6: "bool",
    7: "int16",
    8: None,  # complex64
    9: "int8",
    10: "float64",
    11: None,  # complex128
    12: None,  # uint64
    13: None,  # resource
    14: None,  # variant
    15: "uint32",
}

# BuiltinOperator enum values of the ops the importer knows (and a few it names in errors)
BUILTIN_OPERATORS = """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM
CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND
SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE
BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM
CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE
SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW
ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK
REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR
LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS
WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG
REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL
BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1""".split()


def operator_name(code: int, custom: str | None) -> str:
    if code == 32 and custom:
        return f"CUSTOM({custom})"
    if 0 <= code < len(BUILTIN_OPERATORS):
        return BUILTIN_OPERATORS[code]
    return f"BUILTIN_{code}"


class Table:
    """A flatbuffer table at byte ``pos`` of ``buf``; fields are read by vtable offset."""

    __slots__ = ("buf", "pos", "_vtable", "_vtable_size")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self._vtable = pos - _read(buf, "<i", pos)
        self._vtable_size = _read(buf, "<H", self._vtable)

    def _field(self, offset: int) -> int:
        """Absolute position of the field at vtable ``offset`` (4, 6, 8, ...), or 0."""
        if offset >= self._vtable_size:
            return 0
        rel = _read(self.buf, "<H", self._vtable + offset)
        return self.pos + rel if rel else 0

    def scalar(self, offset: int, fmt: str, default: Any = 0) -> Any:
        pos = self._field(offset)
        return _read(self.buf, "<" + fmt, pos) if pos else default

    def _indirect(self, pos: int) -> int:
        return pos + _read(self.buf, "<I", pos)

    def table(self, offset: int) -> Table | None:
        pos = self._field(offset)
        return Table(self.buf, self._indirect(pos)) if pos else None

    def _vector(self, offset: int) -> tuple[int, int]:
        """(start of the elements, length) of a vector field; (0, 0) when absent."""
        pos = self._field(offset)
        if not pos:
            return 0, 0
        vec = self._indirect(pos)
        return vec + 4, _read(self.buf, "<I", vec)

    def tables(self, offset: int) -> list[Table]:
        start, length = self._vector(offset)
        return [Table(self.buf, self._indirect(start + 4 * i)) for i in range(length)]

    def array(self, offset: int, dtype: str) -> np.ndarray | None:
        """A vector of scalars as a numpy array (a view of the file); None when absent."""
        start, length = self._vector(offset)
        if not start:
            return None
        item = np.dtype(dtype).itemsize
        if start + length * item > len(self.buf):
            raise FrontendError(f"TFLite file is truncated: a vector runs past its end ({start})")
        return np.frombuffer(
            self.buf, dtype=np.dtype(dtype).newbyteorder("<"), count=length, offset=start
        )

    def string(self, offset: int) -> str | None:
        data = self.array(offset, "uint8")
        return None if data is None else bytes(data).decode("utf-8", "replace")


def _read(buf: bytes, fmt: str, pos: int) -> Any:
    size = struct.calcsize(fmt)
    if pos < 0 or pos + size > len(buf):
        raise FrontendError(
            f"TFLite file is corrupt or truncated: offset {pos} is outside the file "
            f"({len(buf)} bytes)",
            hint="check that the file is a complete .tflite flatbuffer",
        )
    return struct.unpack_from(fmt, buf, pos)[0]


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: ``real = scale * (q - zero_point)``, per-tensor or along ``axis``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None  # -1 marks a dynamic dimension
    type_code: int
    data: np.ndarray | None  # the constant's raw contents (dtype and shape applied)
    quantization: Quantization | None

    @property
    def dtype(self) -> str | None:
        return TENSOR_TYPES.get(self.type_code)


@dataclass(frozen=True)
class Operator:
    index: int
    opcode: str
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: Table | None  # the op's BuiltinOptions table


@dataclass(frozen=True)
class SubGraph:
    name: str
    tensors: list[Tensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: list[Operator]


@dataclass(frozen=True)
class Model:
    version: int
    subgraphs: list[SubGraph]


def read_model(buf: bytes) -> Model:
    """Parse a TFLite flatbuffer; a corrupt file raises FrontendError."""
    if len(buf) < 8:
        raise FrontendError(f"TFLite file is too short ({len(buf)} bytes) to be a model")
    if buf[4:8] != b"TFL3":
        raise FrontendError(
            f"not a TFLite model: file identifier is {bytes(buf[4:8])!r}, expected b'TFL3'",
            hint="pass a .tflite flatbuffer written by the TFLite converter",
        )
    try:
        return _read_model(buf)
    except FrontendError:
        raise
    except (ValueError, UnicodeDecodeError, IndexError, OverflowError) as err:
        raise FrontendError(f"TFLite file is corrupt: {err}") from None


def _read_model(buf: bytes) -> Model:
    root = Table(buf, _read(buf, "<I", 0))
    version = root.scalar(4, "I", 0)
    if version != 3:
        raise FrontendError(f"TFLite schema version {version} is not supported (expected 3)")
    codes = []
    for code in root.tables(6):  # OperatorCode
        # builtin_code (slot 3) superseded the int8 deprecated_builtin_code (slot 0) at 127
        builtin = max(code.scalar(10, "i", 0), code.scalar(4, "b", 0))
        codes.append(operator_name(builtin, code.string(6)))
    buffers = root.tables(12)
    subgraphs = []
    for graph in root.tables(8):
        tensors = [_read_tensor(buf, i, t, buffers) for i, t in enumerate(graph.tables(4))]
        operators = []
        for i, op in enumerate(graph.tables(10)):
            index = op.scalar(4, "I", 0)
            if index >= len(codes):
                raise FrontendError(f"TFLite operator {i} has opcode index {index} out of range")
            inputs = _ints(op.array(6, "int32"))
            outputs = _ints(op.array(8, "int32"))
            for t in (*inputs, *outputs):
                if t >= len(tensors):
                    raise FrontendError(f"TFLite operator {i} names tensor {t}, out of range")
            operators.append(Operator(i, codes[index], inputs, outputs, op.table(12)))
        subgraphs.append(
            SubGraph(
                graph.string(12) or "",
                tensors,
                _ints(graph.array(6, "int32")),
                _ints(graph.array(8, "int32")),
                operators,
            )
        )
    if not subgraphs:
        raise FrontendError("TFLite model has no subgraph")
    return Model(version, subgraphs)


def _ints(array: np.ndarray | None) -> tuple[int, ...]:
    return () if array is None else tuple(int(v) for v in array)


def _read_tensor(buf: bytes, index: int, t: Table, buffers: list[Table]) -> Tensor:
    shape = _ints(t.array(4, "int32"))
    signature = t.array(18, "int32")
    type_code = t.scalar(6, "b", 0)
    name = t.string(10) or f"tensor_{index}"
    data = None
    buffer_index = t.scalar(8, "I", 0)
    if buffer_index >= len(buffers):
        raise FrontendError(f"TFLite tensor {name!r} names buffer {buffer_index}, out of range")
    if buffer_index:  # buffer 0 is the empty sentinel
        data = _buffer_data(buf, buffers[buffer_index])
    array = None
    dtype = TENSOR_TYPES.get(type_code)
    if data is not None and len(data) and dtype is not None:
        count = int(np.prod(shape, dtype=np.int64))
        if len(data) != count * np.dtype(dtype).itemsize:
            raise FrontendError(
                f"TFLite tensor {name!r}: buffer holds {len(data)} bytes, shape {shape} of "
                f"{dtype} needs {count * np.dtype(dtype).itemsize}"
            )
        array = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
        array = array.astype(dtype)  # native byte order, owned copy
    quant = None
    q = t.table(12)
    if q is not None:
        scale = q.array(8, "float32")
        zero_point = q.array(10, "int64")
        if scale is not None and len(scale):
            zp = zero_point if zero_point is not None and len(zero_point) else np.zeros(len(scale))
            axis = q.scalar(16, "i", 0)
            if len(zp) != len(scale) or (
                len(scale) > 1 and (not 0 <= axis < len(shape) or shape[axis] != len(scale))
            ):
                raise FrontendError(
                    f"TFLite tensor {name!r} of shape {shape}: {len(scale)} scale(s) and "
                    f"{len(zp)} zero point(s) do not fit its quantized dimension {axis}"
                )
            quant = Quantization(scale.astype("float32"), zp.astype("int64"), q.scalar(16, "i", 0))
    return Tensor(
        index,
        name,
        shape,
        None if signature is None else _ints(signature),
        type_code,
        array,
        quant,
    )


def _buffer_data(buf: bytes, buffer: Table) -> bytes | None:
    data = buffer.array(4, "uint8")
    if data is not None and len(data):
        return data.tobytes()
    offset, size = buffer.scalar(6, "Q", 0), buffer.scalar(8, "Q", 0)
    if offset > 1:  # models over 2 GB keep buffers after the flatbuffer, at a file offset
        if offset + size > len(buf):
            raise FrontendError(f"TFLite buffer at offset {offset} runs past the end of the file")
        return bytes(buf[offset : offset + size])
    return None


def read_options(options: Table | None, fields: dict[str, tuple[int, str, Any]]) -> dict[str, Any]:
    """Read an options table: ``fields`` maps name -> (vtable offset, struct format, default)."""
    out = {}
    for name, (offset, fmt, default) in fields.items():
        out[name] = default if options is None else options.scalar(offset, fmt, default)
    return out


def read_options_vector(options: Table | None, offset: int) -> tuple[int, ...]:
    """An int32 vector field of an options table (squeeze_dims, new_shape)."""
    return () if options is None else _ints(options.array(offset, "int32"))
