"""The artifact file: one tar holding the model library, its weights and metadata.

This module is shared by the compiler (which writes artifacts) and the runtime
(which reads them), so it needs nothing but the standard library and numpy.

Layout of ``model.ember`` (an uncompressed tar, so members can be read in place):

- ``metadata.json``: format version, ember version, target, inputs / outputs /
  params (name, shape, dtype; params with their offset in params.bin), the
  workspace size, a graph summary, and a SHA-256 of the other two members;
- ``model.so``: the shared library exporting the ABI of ``c/ember_runtime.h``;
- ``params.bin``: the weights, each at a 64-byte aligned offset.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import EmberRuntimeError

FORMAT_VERSION = 1
LIB_MEMBER = "model.so"
PARAMS_MEMBER = "params.bin"
METADATA_MEMBER = "metadata.json"
PARAM_ALIGNMENT = 64

DTYPE_CODES = {
    "float32": 0,
    "float16": 1,
    "float64": 2,
    "int8": 3,
    "uint8": 4,
    "int16": 5,
    "int32": 6,
    "int64": 7,
    "uint32": 8,
    "bool": 9,
    "uint16": 10,
    "uint64": 11,
    "bfloat16": 12,
}

LAZY_DTYPES = {"bfloat16": "ml_dtypes"}
"""Dtypes numpy has only once a package registers them: dtype -> that package, which
the runtime imports only for an artifact that has such a tensor (it needs numpy alone
otherwise)."""


def require_dtypes(dtypes: set[str], where: str) -> None:
    """Import the package behind each lazily registered dtype in ``dtypes`` (bfloat16:
    ml_dtypes); an EmberRuntimeError saying what to install when one is missing."""
    for dtype in sorted(dtypes & set(LAZY_DTYPES)):
        package = LAZY_DTYPES[dtype]
        try:
            importlib.import_module(package)
        except ImportError:
            raise EmberRuntimeError(
                f"{where} has {dtype} tensors, and numpy needs the {package} package for them",
                hint=f"pip install {package}",
            ) from None


def pack_params(arrays: list[np.ndarray]) -> tuple[bytes, list[int]]:
    """Concatenate ``arrays`` with 64-byte alignment; returns the blob and each offset."""
    buf = io.BytesIO()
    offsets = []
    for a in arrays:
        pad = (-buf.tell()) % PARAM_ALIGNMENT
        buf.write(b"\0" * pad)
        offsets.append(buf.tell())
        buf.write(np.ascontiguousarray(a).tobytes())
    return buf.getvalue(), offsets


def write_artifact(path: str | Path, lib_bytes: bytes, params_blob: bytes, metadata: dict) -> None:
    """Write the three members into one tar file at ``path``."""
    metadata = dict(metadata)
    metadata["format_version"] = FORMAT_VERSION
    metadata["sha256"] = {
        LIB_MEMBER: hashlib.sha256(lib_bytes).hexdigest(),
        PARAMS_MEMBER: hashlib.sha256(params_blob).hexdigest(),
    }
    meta_bytes = json.dumps(metadata, indent=1).encode()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for name, data in (
            (METADATA_MEMBER, meta_bytes),
            (LIB_MEMBER, lib_bytes),
            (PARAMS_MEMBER, params_blob),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(path)


@dataclass
class ArtifactContents:
    metadata: dict[str, Any]
    lib_bytes: bytes
    params_blob: bytes


def read_artifact(path: str | Path) -> ArtifactContents:
    """Read and check an artifact; a corrupt or foreign file is an EmberRuntimeError."""
    path = Path(path)
    if not path.is_file():
        raise EmberRuntimeError(f"no artifact at {str(path)!r}")
    try:
        with tarfile.open(path, "r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            missing = [n for n in (METADATA_MEMBER, LIB_MEMBER, PARAMS_MEMBER) if n not in members]
            if missing:
                raise EmberRuntimeError(
                    f"{str(path)!r} is not an ember artifact: it lacks {', '.join(missing)}",
                    hint="build one with ember.compile(...).export(path) or `ember compile`",
                )
            data = {}
            for name in (METADATA_MEMBER, LIB_MEMBER, PARAMS_MEMBER):
                f = tar.extractfile(members[name])
                if f is None:
                    raise EmberRuntimeError(f"{str(path)!r}: member {name} is not a file")
                data[name] = f.read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise EmberRuntimeError(
            f"{str(path)!r} is not a readable ember artifact (corrupt or truncated): {err}"
        ) from None
    try:
        metadata = json.loads(data[METADATA_MEMBER])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EmberRuntimeError(f"{str(path)!r}: metadata.json is corrupt: {err}") from None
    if metadata.get("format_version") != FORMAT_VERSION:
        raise EmberRuntimeError(
            f"{str(path)!r} has artifact format {metadata.get('format_version')!r}; "
            f"this runtime reads format {FORMAT_VERSION}",
            hint="recompile the model with this version of ember",
        )
    for name in (LIB_MEMBER, PARAMS_MEMBER):
        want = metadata.get("sha256", {}).get(name)
        if want != hashlib.sha256(data[name]).hexdigest():
            raise EmberRuntimeError(
                f"{str(path)!r}: {name} does not match its checksum (the file is corrupt)",
                hint="copy or rebuild the artifact",
            )
    return ArtifactContents(metadata, data[LIB_MEMBER], data[PARAMS_MEMBER])
