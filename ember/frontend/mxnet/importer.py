"""Import MXNet models (symbol JSON + binary params) into ember's graph IR, without mxnet.

    mod, params = from_mxnet("resnet18-symbol.json", "resnet18-0000.params",
                             shape={"data": (1, 3, 224, 224)})

The files are the pair ``HybridBlock.export`` (or ``Module.save_checkpoint``)
writes. The symbol JSON is read directly: ``nodes`` (each with ``op``, ``name``,
``attrs`` as strings such as ``"(3, 3)"`` and ``inputs`` as ``[node, output,
version]``), ``arg_nodes`` and ``heads``; the ``.params`` file is read by
:mod:`ember.frontend.mxnet.params`. Variables found in the params become weights
(``arg:`` and ``aux:`` prefixes dropped); the others are model inputs and need a
shape (the SageMaker Neo input spec ``{"data": [1, 3, 227, 227]}``), except label
variables consumed only by ``SoftmaxOutput``-style loss heads, which are dropped.
All unsupported ops are reported at once before anything is converted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import FrontendError
from ember.frontend.common import GraphBuilder, input_dtype
from ember.frontend.input_spec import InputSpec, parse_input_spec
from ember.frontend.mxnet.context import CONVERTERS, LABEL_CONSUMERS, MXNetNode, parse_attr
from ember.frontend.mxnet.params import read_params
from ember.graph.ir import Expr, Module

# Variable attrs that only weights carry (so their __shape__ is no input declaration).
_WEIGHT_MARKS = ("__init__", "__lr_mult__", "__wd_mult__")
_MAX_LISTED = 8  # names listed in a "missing inputs" message
_MXNET_PARAMS = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d+)\.params$")


def supported_ops() -> list[str]:
    """MXNet op names :func:`from_mxnet` converts, sorted.

    >>> "Convolution" in supported_ops()
    True
    """
    return CONVERTERS.ops()


def from_mxnet(
    symbol: str | Path | Mapping[str, Any],
    params: str | Path | Mapping[str, Any] | None = None,
    shape: Mapping[str, Sequence[int]] | str | None = None,
    dtype: str | Mapping[str, str] = "float32",
) -> tuple[Module, dict[str, np.ndarray]]:
    """Convert an MXNet model to an ember :class:`Module` and its weights.

    ``symbol`` is the path of ``NAME-symbol.json`` (or its text, or the parsed
    dict); ``params`` the path of ``NAME-NNNN.params`` (or a dict of arrays, with
    or without ``arg:``/``aux:`` prefixes). Given only a path (the symbol, the
    params file or their directory), the other file of the pair is found beside it.
    ``shape`` gives every model input a static shape (a dict or an input-spec
    string); ``dtype`` is the input dtype (one name, or a dict per input).
    Weights become Vars after the inputs in ``main``'s params, their values in
    the returned dict.

        mod, params = from_mxnet("m-symbol.json", "m-0000.params", shape={"data": (1, 3, 32, 32)})
        out = ember.graph.interpret(mod, params, {"data": x})[0]
    """
    if (
        params is None
        and isinstance(symbol, str | Path)
        and not str(symbol).lstrip().startswith("{")
    ):
        # a path alone: the symbol/params pair is found beside it (as ember.frontend.load does)
        symbol, params = mxnet_files(symbol)
    graph = _load_symbol(symbol)
    weights = _load_weights(params)
    specs = _parse_shapes(shape)
    return MXNetImporter(graph, weights, specs, dtype).convert()


# ----------------------------------------------------------------------------- loading


def _load_symbol(symbol: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(symbol, Mapping):
        graph, what = dict(symbol), "the given symbol dict"
    else:
        text = str(symbol)
        if isinstance(symbol, str) and text.lstrip().startswith("{"):
            source, what = text, "the given symbol JSON text"
        else:
            path = Path(symbol)
            what = repr(str(path))
            if not path.is_file():
                raise FrontendError(f"MXNet symbol file {what} does not exist")
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise FrontendError(f"MXNet symbol file {what} could not be read: {err}") from None
        try:
            graph = json.loads(source)
        except json.JSONDecodeError as err:
            raise FrontendError(
                f"MXNet symbol file {what} is not valid JSON: {err.msg} (line {err.lineno})",
                hint="pass the NAME-symbol.json file written by HybridBlock.export",
            ) from None
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise FrontendError(
            f"{what} is not an MXNet symbol: it has no 'nodes' list",
            hint="pass the NAME-symbol.json file written by HybridBlock.export",
        )
    if not isinstance(graph.get("heads"), list) or not graph["heads"]:
        raise FrontendError(f"{what} is not an MXNet symbol: it has no 'heads' (outputs)")
    return graph


def _load_weights(params: str | Path | Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    if params is None:
        raw: Mapping[str, Any] = {}
    elif isinstance(params, Mapping):
        raw = params
    else:
        raw = read_params(params)
    weights = {}
    for key, value in raw.items():
        name = key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key
        weights[name] = np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value)
    return weights


def _parse_shapes(shape: Mapping[str, Sequence[int]] | str | None) -> dict[str, InputSpec]:
    if shape is None:
        return {}
    return parse_input_spec(shape)


def mxnet_files(path: str | Path) -> tuple[Path, Path | None]:
    """(symbol JSON, params) for an MXNet model given as either file or their directory.

    For ``NAME-symbol.json`` the params file is ``NAME-NNNN.params`` beside it (the
    highest epoch if several); for ``NAME-NNNN.params`` the symbol is ``NAME-symbol.json``.
    """
    path = Path(path)
    if path.is_dir():
        symbols = sorted(path.glob("*-symbol.json"))
        if len(symbols) != 1:
            names = ", ".join(s.name for s in symbols) or "none"
            raise FrontendError(
                f"the directory {str(path)!r} should hold one MXNet NAME-symbol.json, "
                f"it holds: {names}",
                hint="pass the symbol file itself",
            )
        path = symbols[0]
    match = _MXNET_PARAMS.match(path.name)
    if match:
        symbol = path.with_name(f"{match['prefix']}-symbol.json")
        if not symbol.is_file():
            raise FrontendError(
                f"no MXNet symbol file {symbol.name!r} beside the params file {str(path)!r}"
            )
        return symbol, path
    prefix = path.name.removesuffix(".json").removesuffix("-symbol")
    candidates = []
    for params in path.parent.glob(f"{glob_escape(prefix)}-*.params"):
        found = _MXNET_PARAMS.match(params.name)
        if found and found["prefix"] == prefix:
            candidates.append((int(found["epoch"]), params))
    if not candidates:
        raise FrontendError(
            f"no MXNet params file {prefix}-NNNN.params beside {str(path)!r}",
            hint="keep the NAME-NNNN.params file that HybridBlock.export wrote next to the "
            "symbol file, or call ember.frontend.from_mxnet(symbol, params)",
        )
    return path, max(candidates)[1]


def glob_escape(text: str) -> str:
    """``text`` with glob wildcards escaped (model names may contain ``[``)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


# ----------------------------------------------------------------------------- conversion


class MXNetImporter:
    """Converts one MXNet symbol graph: values by (node, output) over a GraphBuilder."""

    def __init__(
        self,
        graph: dict[str, Any],
        weights: dict[str, np.ndarray],
        specs: dict[str, InputSpec],
        dtype: str | Mapping[str, str],
    ) -> None:
        self.nodes: list[dict[str, Any]] = graph["nodes"]
        self.heads: list[Any] = graph["heads"]
        self.weights = weights
        self.specs = specs
        self.dtype = dtype
        self.builder = GraphBuilder("MXNet")
        self.values: dict[tuple[int, int], Expr | None] = {}

    def _inputs_of(self, node: dict[str, Any], index: int) -> list[tuple[int, int]]:
        result = []
        for entry in node.get("inputs", []):
            if not isinstance(entry, list) or len(entry) < 2 or not 0 <= entry[0] < index:
                raise FrontendError(
                    f"MXNet symbol is corrupt: node {node.get('name')!r} has input {entry!r}, "
                    "which does not name an earlier node"
                )
            result.append((int(entry[0]), int(entry[1])))
        return result

    def convert(self) -> tuple[Module, dict[str, np.ndarray]]:
        labels = self._scan()
        self._check_shapes(labels)
        for index, node in enumerate(self.nodes):
            name = str(node.get("name", f"node{index}"))
            op = node["op"]
            if op == "null":
                self.values[(index, 0)] = self._variable(index, name, node, labels)
                continue
            inputs = []
            for src in self._inputs_of(node, index):
                if src not in self.values:
                    raise FrontendError(
                        f"MXNet symbol is corrupt: node {name!r} reads output {src[1]} of node "
                        f"{self.nodes[src[0]].get('name')!r}, which has no such output"
                    )
                inputs.append(self.values[src])
            attrs = {k: parse_attr(v) for k, v in _node_attrs(node).items()}
            node_context = MXNetNode(self.builder, name, op, attrs, inputs)
            with self.builder.converting(node_context):
                result = CONVERTERS[op](node_context)
            outputs = result if isinstance(result, list) else [result]
            for i, out in enumerate(outputs):
                self.values[(index, i)] = out
        outputs = []
        for head in self.heads:
            key = (int(head[0]), int(head[1]))
            value = self.values.get(key)
            if value is None:
                raise FrontendError(f"MXNet symbol is corrupt: output {head!r} names no value")
            outputs.append(value)
        return self.builder.finish(outputs)

    def _scan(self) -> set[int]:
        """Check every op is supported (all at once); return the label variables' indices."""
        label_uses: dict[int, bool] = {}  # null node -> used only as a label so far
        for index, node in enumerate(self.nodes):
            if not isinstance(node, dict) or "op" not in node:
                raise FrontendError(f"MXNet symbol is corrupt: node {index} has no 'op'")
            op = node["op"]
            name = str(node.get("name", f"node{index}"))
            if op != "null" and op not in CONVERTERS:
                self.builder.unsupported(op, name)
            for position, (src, _) in enumerate(self._inputs_of(node, index)):
                if self.nodes[src]["op"] != "null":
                    continue
                is_label = op in LABEL_CONSUMERS and position >= 1
                label_uses[src] = label_uses.get(src, True) and is_label
        self.builder.raise_unsupported()
        return {
            src
            for src, only_label in label_uses.items()
            if only_label and self.nodes[src]["name"] not in self.weights
        }

    def _check_shapes(self, labels: set[int]) -> None:
        names = {str(n.get("name")) for n in self.nodes if n["op"] == "null"}
        unknown = sorted(set(self.specs) - names)
        if unknown:
            inputs = [
                str(n.get("name"))
                for i, n in enumerate(self.nodes)
                if n["op"] == "null" and i not in labels and n.get("name") not in self.weights
            ]
            raise FrontendError(
                f"the input spec names {', '.join(map(repr, unknown))}, which the MXNet model "
                f"does not have; its inputs are: {', '.join(map(repr, inputs)) or 'none'}"
            )
        missing = [
            str(n.get("name"))
            for i, n in enumerate(self.nodes)
            if n["op"] == "null"
            and i not in labels
            and n.get("name") not in self.weights
            and n.get("name") not in self.specs
            and _declared_shape(n) is None
        ]
        if missing:
            listed = ", ".join(map(repr, missing[:_MAX_LISTED]))
            if len(missing) > _MAX_LISTED:
                listed += f" and {len(missing) - _MAX_LISTED} more"
            raise FrontendError(
                f"the MXNet model has {len(missing)} input(s) {listed} that are neither in "
                "the params file nor given a shape",
                hint='give their shapes, e.g. shape={"data": [1, 3, 224, 224]}; if they are '
                "weights, check that the params file belongs to this symbol",
            )

    def _variable(
        self, index: int, name: str, node: dict[str, Any], labels: set[int]
    ) -> Expr | None:
        if name in self.weights:
            return self.builder.add_weight(name, self.weights[name])
        if index in labels:
            return None  # a label of a loss head: not needed for inference
        spec = self.specs.get(name)
        shape = spec.shape if spec is not None else _declared_shape(node)
        dtype = spec.dtype if spec is not None and spec.dtype else input_dtype(self.dtype, name)
        return self.builder.add_input(name, shape or (), dtype)


def _node_attrs(node: dict[str, Any]) -> dict[str, Any]:
    # MXNet wrote "attr" before 0.9 and "param" in some versions; "attrs" since 1.0.
    for key in ("attrs", "attr", "param"):
        if isinstance(node.get(key), dict):
            return {k: v for k, v in node[key].items() if not k.startswith("__")}
    return {}


def _declared_shape(node: dict[str, Any]) -> tuple[int, ...] | None:
    """The ``__shape__`` a symbol-API input declares (never for a weight: those have an init)."""
    attrs = node.get("attrs") or node.get("attr") or {}
    if any(key in attrs for key in _WEIGHT_MARKS):
        return None
    shape = parse_attr(attrs.get("__shape__")) if isinstance(attrs, dict) else None
    if isinstance(shape, tuple) and shape and all(isinstance(d, int) and d > 0 for d in shape):
        return shape
    return None


__all__ = ["from_mxnet", "mxnet_files", "supported_ops"]
