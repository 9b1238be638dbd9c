"""Structural equality and hashing of graphs.

Two graphs are structurally equal when they compute the same thing the same
way: the same ops with equal attributes on structurally equal operands, with
the same sharing (DAG isomorphism, not just equal trees). Details:

- function parameters match by position (and type), not by name;
- free variables (in a bare expression) match when name and type agree;
- constants match by dtype, shape and value (NaN equals NaN);
- node names (``name=``, provenance only) are ignored;
- fused functions called by Calls, and the functions control-flow calls hold in
  their attributes (branches, loop bodies), are compared structurally, recursively.

``structural_equal(a, b)`` implies ``structural_hash(a) == structural_hash(b)``::

    assert structural_equal(optimize(mod, params), expected_mod)

:func:`workload_key` is the compiler's name for a fused kernel: a short content hash
of what it computes on which shapes, shared by compilation (identical kernels are
built once), kernel caches and tuning records.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from ember.graph.ir import (
    Call,
    Constant,
    Expr,
    Function,
    Module,
    Tuple,
    Var,
    is_float_dtype,
    subfunctions,
)
from ember.graph.op import Op
from ember.graph.visitor import children, post_order

Node = Expr | Function | Module


def _attrs_equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # attrs holding arrays compare elementwise
        return repr(a) == repr(b)


def _plain_fields(attrs: Any) -> list[tuple[str, Any]]:
    """The fields of a dataclass that do not hold functions (control-flow op attributes)."""
    return [
        (f.name, getattr(attrs, f.name))
        for f in dataclasses.fields(attrs)
        if not isinstance(getattr(attrs, f.name), Function)
    ]


def _constants_equal(a: Constant, b: Constant) -> bool:
    if a.type != b.type:
        return False
    if a is b:
        return True
    equal_nan = is_float_dtype(a.value.dtype)
    return bool(np.array_equal(a.value, b.value, equal_nan=equal_nan))


class _Equal:
    """One comparison: keeps the node bijection found so far."""

    def __init__(self) -> None:
        self.a_to_b: dict[Any, Any] = {}
        self.b_to_a: dict[Any, Any] = {}

    def bind(self, a: Any, b: Any) -> bool:
        """Record ``a`` <-> ``b``; False when either is already paired with another node."""
        if a in self.a_to_b or b in self.b_to_a:
            return self.a_to_b.get(a) is b and self.b_to_a.get(b) is a
        self.a_to_b[a] = b
        self.b_to_a[b] = a
        return True

    def local(self, a: Expr, b: Expr) -> bool:
        """Do ``a`` and ``b`` match, ignoring their operands?"""
        if type(a) is not type(b) or a.type != b.type:
            return False
        if isinstance(a, Var):
            # Bound vars were paired up front; reaching here means a free var.
            return a.name == b.name
        if isinstance(a, Constant):
            return _constants_equal(a, b)  # type: ignore[arg-type]
        if isinstance(a, Call):
            assert isinstance(b, Call)
            if len(a.args) != len(b.args) or not self.attrs(a.attrs, b.attrs):
                return False
            if isinstance(a.op, Op) or isinstance(b.op, Op):
                return a.op is b.op
            return self.functions(a.op, b.op)
        if isinstance(a, Tuple):
            return len(a.fields) == len(b.fields)  # type: ignore[attr-defined]
        return a.index == b.index  # type: ignore[attr-defined]

    def attrs(self, a: Any, b: Any) -> bool:
        """Equal attributes; Function-valued fields (control-flow bodies) structurally."""
        funcs_a, funcs_b = subfunctions(a), subfunctions(b)
        if not funcs_a and not funcs_b:
            return _attrs_equal(a, b)
        if type(a) is not type(b) or [n for n, _ in funcs_a] != [n for n, _ in funcs_b]:
            return False
        if _plain_fields(a) != _plain_fields(b):
            return False
        return all(self.functions(fa, fb) for (_, fa), (_, fb) in zip(funcs_a, funcs_b))

    def functions(self, a: Function, b: Function) -> bool:
        if a in self.a_to_b or b in self.b_to_a:
            return self.a_to_b.get(a) is b
        if len(a.params) != len(b.params) or not _attrs_equal(a.attrs, b.attrs):
            return False
        for pa, pb in zip(a.params, b.params):
            if pa.type != pb.type or not self.bind(pa, pb):
                return False
        self.bind(a, b)
        return self.exprs(a.body, b.body)

    def exprs(self, a: Expr, b: Expr) -> bool:
        stack = [(a, b)]
        while stack:
            x, y = stack.pop()
            if x in self.a_to_b or y in self.b_to_a:
                if not self.bind(x, y):
                    return False
                continue
            if not self.local(x, y):
                return False
            self.bind(x, y)
            stack.extend(zip(children(x), children(y)))
        return True


def structural_equal(a: Node, b: Node) -> bool:
    """Whether two expressions, functions or modules are structurally equal (see module doc).

    >>> x1, x2 = Var("x", t), Var("x", t)
    >>> structural_equal(call("nn.relu", x1), call("nn.relu", x2))  # doctest: +SKIP
    True
    """
    eq = _Equal()
    if isinstance(a, Module) or isinstance(b, Module):
        if not (isinstance(a, Module) and isinstance(b, Module)):
            return False
        if set(a.functions) != set(b.functions):
            return False
        return all(eq.functions(a.functions[k], b.functions[k]) for k in sorted(a.functions))
    if isinstance(a, Function) or isinstance(b, Function):
        if not (isinstance(a, Function) and isinstance(b, Function)):
            return False
        return eq.functions(a, b)
    return eq.exprs(a, b)


def _hash_value(value: Any, memo: dict[Any, int]) -> str:
    funcs = subfunctions(value)
    if funcs:  # control-flow bodies hash by structure, like fused functions
        plain = type(value).__name__ + repr(_plain_fields(value))
        return plain + repr([_hash_function(f, memo) for _, f in funcs])
    if dataclasses.is_dataclass(value):
        return type(value).__name__ + repr(value)
    return repr(value)


def _constant_digest(const: Constant) -> bytes:
    value = const.value
    if is_float_dtype(value.dtype):
        # -0.0 == 0.0 and NaN == NaN under structural_equal, so hash them alike.
        value = np.where(np.isnan(value), np.nan, value + value.dtype.type(0))
    return hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16).digest()


def _hash_function(func: Function, memo: dict[Any, int]) -> int:
    if func in memo:
        return memo[func]
    bound = {p: hash(("param", i, p.type)) for i, p in enumerate(func.params)}
    body = _hash_expr(func.body, bound, memo)
    attrs = repr(sorted(func.attrs.items()))  # dict equality ignores key order; so must this
    result = hash(("fn", tuple(p.type for p in func.params), attrs, body))
    memo[func] = result
    return result


def _hash_expr(expr: Expr, bound: dict[Var, int], memo: dict[Any, int]) -> int:
    hashes: dict[Expr, int] = {}
    for node in post_order(expr):
        kids = tuple(hashes[c] for c in children(node))
        if isinstance(node, Var):
            h = bound[node] if node in bound else hash(("var", node.name, node.type))
        elif isinstance(node, Constant):
            h = hash(("const", node.type, _constant_digest(node)))
        elif isinstance(node, Call):
            op = node.op.name if isinstance(node.op, Op) else _hash_function(node.op, memo)
            h = hash(("call", op, _hash_value(node.attrs, memo), kids))
        elif isinstance(node, Tuple):
            h = hash(("tuple", kids))
        else:
            h = hash(("get", node.index, kids))  # type: ignore[attr-defined]
        hashes[node] = h
    return hashes[expr]


def structural_hash(node: Node) -> int:
    """A hash consistent with :func:`structural_equal` (equal graphs hash alike)."""
    memo: dict[Any, int] = {}
    if isinstance(node, Module):
        return hash(
            tuple((k, _hash_function(node.functions[k], memo)) for k in sorted(node.functions))
        )
    if isinstance(node, Function):
        return _hash_function(node, memo)
    return _hash_expr(node, {}, memo)


def workload_key(func: Function) -> str:
    """A content hash of a primitive function: its ops, attributes and types, not its names.

    Two kernels with the same key compute the same thing on same-shaped data, so
    they are compiled once, and tuning records of one apply to the other.
    """
    ids: dict[Any, int] = {}
    parts = []
    params = {p: i for i, p in enumerate(func.params)}
    for node in post_order(func.body):
        ids[node] = len(ids)
        if isinstance(node, Var):
            parts.append(f"param{params[node]}:{node.type}")
        elif isinstance(node, Constant):
            parts.append(f"const:{node.type}:{node.value.tobytes().hex()}")
        elif isinstance(node, Call):
            args = ",".join(str(ids[a]) for a in node.args)
            parts.append(f"{node.op.name}({args}){node.attrs!r}:{node.type}")
        else:
            parts.append(f"{type(node).__name__}:{node.type}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
