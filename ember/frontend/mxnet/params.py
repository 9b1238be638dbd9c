"""Read MXNet's binary ``.params`` files (``mx.nd.save``) without the mxnet package.

The layout (little endian), as written by ``NDArray::Save`` in MXNet 1.x::

    uint64 0x112 (list magic), uint64 reserved, uint64 count
    count x NDArray:
        uint32 magic   0xF993FAC9 (V2) or 0xF993FACA (V3, numpy shape semantics);
                       anything else is the legacy V1 form, where this word is ndim
        int32 storage type (V2/V3; 0 = dense; sparse arrays are not supported)
        shape: int32 ndim, then ndim x int64 dims (legacy: uint32 ndim and uint32 dims)
        (an array with no shape stops here)
        int32 device type, int32 device id
        int32 dtype flag (0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8,
                         6 int64, 7 bool)
        raw data, C order
    uint64 count, then count x (uint64 length + UTF-8 name)  (names: "arg:w" / "aux:w"; may be 0)

    >>> arrays = read_params("resnet-0000.params")  # doctest: +SKIP
    >>> sorted(arrays)[0]  # doctest: +SKIP
    'arg:conv0_weight'
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ember.errors import FrontendError

LIST_MAGIC = 0x112
NDARRAY_V1_MAGIC = 0xF993FAC8
NDARRAY_V2_MAGIC = 0xF993FAC9
NDARRAY_V3_MAGIC = 0xF993FACA

# MXNet's mshadow type flags -> numpy dtypes ember knows.
DTYPE_FLAGS = {
    0: "float32",
    1: "float64",
    2: "float16",
    3: "uint8",
    4: "int32",
    5: "int8",
    6: "int64",
    7: "bool",
}
_STORAGE_NAMES = {1: "row_sparse", 2: "csr"}


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, size: int, field: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise FrontendError(
                f"MXNet params file {self.what} is truncated or corrupt: reading {field} needs "
                f"{size} byte(s) at offset {self.pos}, the file has {len(self.data)}",
                hint="re-export the model (HybridBlock.export or mx.nd.save)",
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, field: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), field))


def read_params(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an MXNet ``.params`` file by name (names keep their arg:/aux: prefix).

    Raises FrontendError on a missing, truncated or corrupt file, or on sparse arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise FrontendError(f"MXNet params file {str(path)!r} does not exist")
    return parse_params(path.read_bytes(), repr(str(path)))


def parse_params(data: bytes, what: str = "<bytes>") -> dict[str, np.ndarray]:
    """Like :func:`read_params` on the bytes of a file."""
    reader = _Reader(data, what)
    magic, _reserved = reader.unpack("QQ", "the header")
    if magic != LIST_MAGIC:
        raise FrontendError(
            f"{what} is not an MXNet params file: it starts with 0x{magic:x}, "
            f"expected the NDArray list magic 0x{LIST_MAGIC:x}",
            hint="pass the NAME-NNNN.params file written by HybridBlock.export or mx.nd.save",
        )
    (count,) = reader.unpack("Q", "the array count")
    if count > len(data):  # each array takes at least one byte: a huge count is corruption
        raise FrontendError(f"MXNet params file {what} is corrupt: it claims {count} arrays")
    arrays = [_read_ndarray(reader, index) for index in range(count)]
    (name_count,) = reader.unpack("Q", "the name count")
    if name_count not in (0, count):
        raise FrontendError(
            f"MXNet params file {what} is corrupt: {count} arrays but {name_count} names"
        )
    names = []
    for index in range(name_count):
        (length,) = reader.unpack("Q", f"the length of name {index}")
        raw = reader.take(length, f"name {index}")
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise FrontendError(
                f"MXNet params file {what} is corrupt: name {index} is not UTF-8"
            ) from None
    if not names:
        names = [f"array_{i}" for i in range(count)]
    if reader.pos != len(data):
        raise FrontendError(
            f"MXNet params file {what} is corrupt: {len(data) - reader.pos} unexpected "
            "byte(s) after the last name"
        )
    return dict(zip(names, arrays))


def _corrupt(reader: _Reader, reason: str) -> FrontendError:
    return FrontendError(
        f"MXNet params file {reader.what} is corrupt: {reason}",
        hint="re-export the model (HybridBlock.export or mx.nd.save)",
    )


def _read_ndarray(reader: _Reader, index: int) -> np.ndarray:
    field = f"array {index}"
    (magic,) = reader.unpack("I", f"the magic of {field}")
    if magic in (NDARRAY_V2_MAGIC, NDARRAY_V3_MAGIC):
        (storage,) = reader.unpack("i", f"the storage type of {field}")
        if storage != 0:
            kind = _STORAGE_NAMES.get(storage, f"storage type {storage}")
            raise FrontendError(
                f"MXNet params file {reader.what}: {field} is a {kind} sparse array; "
                "ember reads dense arrays only",
                hint="convert it first: arr.tostype('default') before saving",
            )
        (ndim,) = reader.unpack("i", f"the rank of {field}")
        if ndim < 0:  # V3 "unknown shape": an array that was never set
            return np.zeros((0,), np.float32)
        if ndim > 32:
            raise FrontendError(
                f"MXNet params file {reader.what} is corrupt: {field} has rank {ndim}"
            )
        shape = reader.unpack(f"{ndim}q", f"the shape of {field}")
        if ndim == 0 and magic == NDARRAY_V2_MAGIC:  # V2: rank 0 means "no data"
            return np.zeros((0,), np.float32)
    elif magic == NDARRAY_V1_MAGIC:
        (ndim,) = reader.unpack("I", f"the rank of {field}")
        shape = reader.unpack(f"{ndim}q", f"the shape of {field}") if ndim <= 32 else None
        if shape is None:
            raise FrontendError(
                f"MXNet params file {reader.what} is corrupt: {field} has rank {ndim}"
            )
        if ndim == 0:
            return np.zeros((0,), np.float32)
    else:  # legacy: the word just read was the rank, dims are uint32
        ndim = magic
        if ndim > 32:
            raise FrontendError(
                f"MXNet params file {reader.what} is corrupt: {field} starts with 0x{magic:x}, "
                "which is neither an NDArray magic nor a plausible rank"
            )
        shape = reader.unpack(f"{ndim}I", f"the shape of {field}")
        if ndim == 0:
            return np.zeros((0,), np.float32)
    if any(d < 0 for d in shape):
        raise FrontendError(
            f"MXNet params file {reader.what} is corrupt: {field} has shape {shape}"
        )
    reader.unpack("ii", f"the device of {field}")
    (flag,) = reader.unpack("i", f"the dtype of {field}")
    dtype = DTYPE_FLAGS.get(flag)
    if dtype is None:
        raise FrontendError(
            f"MXNet params file {reader.what}: {field} has dtype flag {flag}, which ember does "
            f"not support (supported: {', '.join(DTYPE_FLAGS.values())})"
        )
    size = int(np.prod(shape, dtype=np.int64))
    raw = reader.take(size * np.dtype(dtype).itemsize, f"the data of {field} {tuple(shape)}")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
