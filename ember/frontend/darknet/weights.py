"""Darknet ``.weights`` files: a small header, then every layer's float32 arrays in order.

The header is three int32 (major, minor, revision) and ``seen``, the number of
images trained on: a 64-bit integer from format version 0.2 on
(``major * 10 + minor >= 2``, with major and minor below 1000), a 32-bit one
before. Major or minor above 1000 marks connected-layer weights stored
transposed. The layers follow with no separators, each in Darknet's order
(for a convolution: biases, then with batch_normalize the scales, rolling means
and rolling variances, then the weights), so a reader must know each layer's
sizes from the cfg::

    reader = WeightsReader.from_file(Path("yolov3-tiny.weights"))
    biases = reader.read(16, "biases", "layer 0")  # numpy float32 array
    reader.finish()                                # no bytes left over
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ember.errors import FrontendError

_FLOAT = np.dtype("<f4")
_MAX_VERSION = 1000  # Darknet reads major/minor >= 1000 as "transposed" flags, not versions


@dataclass
class WeightsReader:
    """Reads one layer's arrays after another from a ``.weights`` file's bytes."""

    data: bytes
    source: str
    major: int
    minor: int
    revision: int
    seen: int
    offset: int

    @property
    def transposed(self) -> bool:
        """Connected layers' weights are stored (inputs, outputs) instead of (outputs, inputs)."""
        return self.major > _MAX_VERSION or self.minor > _MAX_VERSION

    @classmethod
    def from_file(cls, path: Path) -> WeightsReader:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise FrontendError(
                f"cannot read Darknet weights {str(path)!r}: {err.strerror}"
            ) from None
        return cls.from_bytes(data, path.name)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "weights") -> WeightsReader:
        if len(data) < 16:
            raise FrontendError(
                f"Darknet {source} is {len(data)} bytes, shorter than its header (16 or 20 bytes)",
                hint="the weights file is truncated or not a Darknet .weights file",
            )
        major, minor, revision = struct.unpack_from("<3i", data, 0)
        wide = major * 10 + minor >= 2 and major < _MAX_VERSION and minor < _MAX_VERSION
        if wide:
            if len(data) < 20:
                raise FrontendError(
                    f"Darknet {source}: format {major}.{minor} has a 20-byte header, the file "
                    f"has {len(data)} bytes",
                    hint="the weights file is truncated",
                )
            (seen,) = struct.unpack_from("<Q", data, 12)
            offset = 20
        else:
            (seen,) = struct.unpack_from("<i", data, 12)
            offset = 16
        return cls(data, source, major, minor, revision, seen, offset)

    def read(self, count: int, what: str, where: str, shape: tuple[int, ...] = ()) -> np.ndarray:
        """The next ``count`` floats (shaped ``shape``), for the layer ``where`` describes."""
        size = count * _FLOAT.itemsize
        if self.offset + size > len(self.data):
            left = (len(self.data) - self.offset) // _FLOAT.itemsize
            raise FrontendError(
                f"Darknet {self.source} is truncated: {where} needs {count} {what} "
                f"at byte {self.offset}, only {max(left, 0)} floats are left",
                hint="the weights do not belong to this cfg, or the file was cut short "
                "(a partial file such as darknet53.conv.74 holds only the first layers)",
            )
        values = np.frombuffer(self.data, _FLOAT, count, self.offset).astype(np.float32)
        self.offset += size
        return values.reshape(shape) if shape else values

    def finish(self) -> None:
        """Every byte was read: more means the weights belong to another cfg."""
        left = len(self.data) - self.offset
        if left:
            raise FrontendError(
                f"Darknet {self.source} has {left} bytes ({left // _FLOAT.itemsize} floats) left "
                "after the last layer's weights",
                hint="the weights belong to a different cfg (more or larger layers)",
            )
