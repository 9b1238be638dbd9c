"""rewrite_activations: find activations written out of primitive ops and call them by name.

Exporters spell activations as small graphs: PyTorch's SiLU is ``Sigmoid`` + ``Mul``,
its GELU ``Div`` + ``Erf`` + ``Add`` + ``Mul`` + ``Mul``, hard-swish ``x * relu6(x + 3) / 6``.
As one op each is a single scalar rule (one pass over memory even unfused, and an
epilogue the conv / dense schedules compile in one expression) and reads better.

Needs: a typed module (run ``infer_types``).
Guarantees: each pattern below, as the value of a node, becomes one call of the named
op on the same ``x`` with the node's name; the nodes inside a pattern other than ``x``
must have no other users (else nothing changes, so no work is duplicated). Products
are matched in any order and grouping, with divisions by a constant as multiplies;
constants match with relative tolerance ``CONSTANT_RTOL`` (float32 spellings of
1/sqrt(2) and 1/6). Only floating-point tensors of unchanged type are rewritten.

Patterns (``x`` any expression; each becomes one call on ``x``):

- ``x * sigmoid(x)`` -> ``nn.silu(x)``;
- ``x * tanh(softplus(x))``, softplus as ``nn.softplus`` or ``log(exp(x) + 1)``
  -> ``nn.mish(x)``;
- ``0.5 * x * (1 + erf(x / sqrt(2)))`` -> ``nn.gelu(x)``;
- ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))``, the cube as
  ``x * x * x`` or ``power(x, 3)`` -> ``nn.gelu(x, approximate="tanh")``;
- ``x * relu6(x + 3) / 6``, relu6 as ``clip(0, 6)``, ``minimum(maximum(., 0), 6)``
  or ``minimum(relu(.), 6)``, and ``x * hard_sigmoid(x, 1/6, 0.5)``
  -> ``nn.hard_swish(x)``;
- ``relu6(x + 3) / 6`` -> ``nn.hard_sigmoid(x, alpha=1/6, beta=0.5)``.

    mod = rewrite_activations(mod)
    # multiply(%conv, sigmoid(%conv))  ->  nn.silu(%conv)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ember.graph.ir import Call, Constant, Expr, Module, TensorType
from ember.graph.visitor import ExprMutator, rebuild_call, use_counts, with_bodies
from ember.ops import call as call_op
from ember.ops.registry import Op

CONSTANT_RTOL = 1e-5
"""Relative tolerance of a pattern's constants: float32 rounds 1/sqrt(2) and 1/6 at ~6e-8,
and exporters write 0.044715 or sqrt(2/pi) with 7 or more digits."""

SQRT_HALF = 1 / math.sqrt(2)
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_CUBIC = 0.044715


def _name(e: Expr) -> str:
    return e.op.name if isinstance(e, Call) and isinstance(e.op, Op) else ""


def _scalar(e: Expr) -> float | None:
    """The value of a one-element float constant, else None."""
    if not isinstance(e, Constant) or e.type.size != 1 or not e.type.dtype.startswith("float"):
        return None
    return float(np.asarray(e.value).reshape(-1)[0])


def _close(value: float | None, want: float) -> bool:
    return value is not None and abs(value - want) <= CONSTANT_RTOL * abs(want)


class _Matcher:
    """Patterns over the rewritten graph; ``single(e)``: ``e`` has one user."""

    def __init__(self, single: Callable[[Expr], bool]) -> None:
        self.single = single

    def product(self, e: Expr, root: bool = True) -> tuple[list[Expr], float]:
        """``e`` as ``coefficient * prod(factors)``: multiplies and divisions by scalar
        constants are flattened through nodes with one user (and ``e`` itself)."""
        name = _name(e)
        if (root or self.single(e)) and name in ("multiply", "divide"):
            a, b = e.args  # type: ignore[union-attr]
            value = _scalar(b)
            if name == "divide":
                if value is None or value == 0:
                    return [e], 1.0
                factors, coef = self.product(a, False)
                return factors, coef / value
            if _scalar(a) is not None:
                a, b, value = b, a, _scalar(a)
            if value is not None:
                factors, coef = self.product(a, False)
                return factors, coef * value
            fa, ca = self.product(a, False)
            fb, cb = self.product(b, False)
            return fa + fb, ca * cb
        return [e], 1.0

    def unary(self, e: Expr, name: str) -> Expr | None:
        """The operand of ``e`` when ``e`` is a one-user call of op ``name``."""
        if _name(e) == name and self.single(e):
            return e.args[0]  # type: ignore[union-attr]
        return None

    def plus_constant(self, e: Expr, want: float) -> Expr | None:
        """``y`` when ``e`` is a one-user ``y + want`` (either order)."""
        if _name(e) != "add" or not self.single(e):
            return None
        a, b = e.args  # type: ignore[union-attr]
        if _close(_scalar(b), want):
            return a
        if _close(_scalar(a), want):
            return b
        return None

    def relu6(self, e: Expr) -> Expr | None:
        """``y`` when ``e`` is a one-user ``relu6(y)`` in one of its spellings."""
        if not self.single(e):
            return None
        if _name(e) == "clip":
            low, high = e.attrs.a_min, e.attrs.a_max  # type: ignore[union-attr]
            if low is not None and high is not None and low == 0 and high == 6:
                return e.args[0]  # type: ignore[union-attr]
            return None
        if _name(e) == "minimum":
            a, b = e.args  # type: ignore[union-attr]
            if not _close(_scalar(b), 6.0):
                a, b = b, a
            if not _close(_scalar(b), 6.0):
                return None
            inner = self.unary(a, "nn.relu")
            if inner is not None:
                return inner
            if _name(a) == "maximum" and self.single(a):
                p, q = a.args  # type: ignore[union-attr]
                if _scalar(q) == 0:
                    return p
                if _scalar(p) == 0:
                    return q
        return None

    def softplus(self, e: Expr) -> Expr | None:
        """``x`` when ``e`` is ``softplus(x)``: the op, or ``log(exp(x) + 1)``."""
        x = self.unary(e, "nn.softplus")
        if x is not None:
            return x
        inner = self.unary(e, "log")
        inner = self.plus_constant(inner, 1.0) if inner is not None else None
        return self.unary(inner, "exp") if inner is not None else None

    def scaled(self, e: Expr, want: float) -> Expr | None:
        """``x`` when ``e`` is ``want * x`` (a product of one non-constant factor)."""
        factors, coef = self.product(e, root=self.single(e))
        if len(factors) == 1 and _close(coef, want):
            return factors[0]
        return None

    def gelu_tanh_inner(self, e: Expr, x: Expr) -> bool:
        """``e`` is ``sqrt(2/pi) * (x + 0.044715 * x^3)``."""
        inner = self.scaled(e, SQRT_2_OVER_PI)
        if _name(inner) != "add" or not self.single(inner):
            return False
        a, b = inner.args  # type: ignore[union-attr]
        cube = b if a is x else a if b is x else None
        if cube is None:
            return False
        factors, coef = self.product(cube, root=self.single(cube))
        if not _close(coef, GELU_CUBIC):
            return False
        if len(factors) == 3 and all(f is x for f in factors):
            return True
        if len(factors) == 1 and _name(factors[0]) == "power" and self.single(factors[0]):
            base, exponent = factors[0].args  # type: ignore[union-attr]
            return base is x and _scalar(exponent) == 3.0
        return False


def _match(e: Call, m: _Matcher) -> tuple[str, Expr, dict] | None:
    """(op name, x, attrs) of the activation ``e`` computes, or None."""
    factors, coef = m.product(e)
    if len(factors) == 1 and _close(coef, 1 / 6):
        x = m.relu6(factors[0])
        x = m.plus_constant(x, 3.0) if x is not None else None
        if x is not None:
            return "nn.hard_sigmoid", x, {"alpha": 1 / 6, "beta": 0.5}
    if len(factors) != 2:
        return None
    for x, other in (factors, factors[::-1]):
        if _close(coef, 1.0):
            if m.unary(other, "sigmoid") is x:
                return "nn.silu", x, {}
            tanh_of = m.unary(other, "tanh")
            if tanh_of is not None and m.softplus(tanh_of) is x:
                return "nn.mish", x, {}
            if (
                _name(other) == "nn.hard_sigmoid"
                and m.single(other)
                and other.args[0] is x  # type: ignore[union-attr]
                and _close(other.attrs.alpha, 1 / 6)  # type: ignore[union-attr]
                and _close(other.attrs.beta, 0.5)  # type: ignore[union-attr]
            ):
                return "nn.hard_swish", x, {}
        if _close(coef, 1 / 6):
            shifted = m.relu6(other)
            if shifted is not None and m.plus_constant(shifted, 3.0) is x:
                return "nn.hard_swish", x, {}
        if _close(coef, 0.5):
            one_plus = m.plus_constant(other, 1.0)
            erf_of = m.unary(one_plus, "erf") if one_plus is not None else None
            if erf_of is not None and m.scaled(erf_of, SQRT_HALF) is x:
                return "nn.gelu", x, {}
            tanh_of = m.unary(one_plus, "tanh") if one_plus is not None else None
            if tanh_of is not None and m.gelu_tanh_inner(tanh_of, x):
                return "nn.gelu", x, {"approximate": "tanh"}
    return None


class _Rewriter(ExprMutator):
    def __init__(self, uses: dict[Expr, int]) -> None:
        super().__init__()
        self.uses = uses
        self.origin: dict[Expr, Expr] = {}  # rewritten node -> the original it replaces
        self.matcher = _Matcher(self._single)

    def _single(self, e: Expr | None) -> bool:
        return e is not None and self.uses.get(self.origin.get(e, e), 0) == 1

    def visit_call(self, call: Call, args: tuple[Expr, ...]) -> Expr:
        new = rebuild_call(call, args)
        self.origin[new] = call
        if not isinstance(call.type, TensorType) or not call.type.dtype.startswith("float"):
            return new
        if _name(call) not in ("multiply", "divide"):
            return new
        found = _match(new, self.matcher)
        if found is None:
            return new
        op, x, attrs = found
        if x.type != call.type:
            return new  # a constant broadcast the product to another shape or dtype
        rewritten = call_op(op, x, name=call.name, **attrs)
        self.origin[rewritten] = call
        return rewritten


def rewrite_activations(mod: Module) -> Module:
    """``mod`` with written-out activations replaced by their ops (see module doc).

    >>> rewrite_activations(mod)   # multiply(%x, sigmoid(%x)) -> nn.silu(%x)  # doctest: +SKIP
    """
    mod = with_bodies(mod, rewrite_activations)  # control-flow branches and bodies too
    main = mod.main
    new = _Rewriter(use_counts(main.body)).visit_function(main)
    return mod if new is main else mod.with_main(new)


__all__ = ["rewrite_activations"]
