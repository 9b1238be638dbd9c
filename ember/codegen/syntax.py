"""The vocabulary dialect entries are written in: C text with its precedence, operator
entries, and what an entry may ask of the code generator (the render context).

    x = CExpr("a + b", 12)
    x.at(13)                        # '(a + b)': parenthesized where * needs it
    Infix("*", 13)(ctx, e, x, y)    # CExpr('(a + b) * y', 13)

A rendered operand is a :class:`CExpr` (a ``str`` that knows how loosely it binds),
so an entry uses it as plain text (``f"fadd({a}, {b})"``, a call argument needs no
parentheses) or asks for ``a.at(precedence)`` when it places it next to an operator.
An entry returns a ``str`` (read as an atom: a call, a literal, or parenthesized
text), a :class:`CExpr` (text with its precedence), or ``None`` where it declines
(the generic form is used, e.g. a vector computed lane by lane).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ember.tir import expr as E

# C operator precedence, higher binds tighter (C's table; the binary ones are in the
# dialect's ``ops``). Only the levels code generation places text at need a name.
ATOM = 16
"""Identifiers, literals, calls, subscripts and parenthesized text."""
UNARY = 14
"""Prefix operators and casts: ``!a``, ``~a``, ``(float)a``."""
TERNARY = 3
"""``c ? a : b`` (its operands are rendered at ``TERNARY + 1``)."""
EQUALITY = 9
ADDITIVE = 12
MULTIPLICATIVE = 13


class CExpr(str):
    """C text of an expression with the precedence of its outermost operator.

    >>> CExpr("i * 8", 13).at(14)
    '(i * 8)'
    """

    prec: int

    def __new__(cls, text: str, prec: int = ATOM) -> CExpr:
        self = super().__new__(cls, text)
        self.prec = prec
        return self

    def at(self, prec: int) -> str:
        """The text to place where an operand must bind at least as tightly as ``prec``."""
        return f"({self})" if self.prec < prec else str(self)


def as_cexpr(text: str) -> CExpr:
    """An entry's result as a CExpr: a plain ``str`` is an atom."""
    return text if isinstance(text, CExpr) else CExpr(text, ATOM)


class Context(Protocol):
    """What an entry may ask of the code generator while it renders one function."""

    def ctype(self, dtype: str) -> str:
        """The C type of ``dtype`` (``float``, ``float32x8``); records vector typedefs."""
        ...

    def helper(self, kind: str, dtype: str = "") -> str:
        """The name of helper ``kind`` for ``dtype`` (``ember_load_float32x8``), and
        emits its definition (the dialect's ``helpers[kind]``) into the source."""
        ...

    def nonneg(self, e: E.PrimExpr) -> bool:
        """True when ``e`` is provably >= 0 in every lane (loop bounds are known)."""
        ...


Entry = Callable[..., str | None]
"""An operator or intrinsic entry: ``entry(ctx, node, *rendered_operands)``."""


@dataclass(frozen=True)
class Infix:
    """A C binary operator entry, ``a + b``: adds the parentheses C precedence needs."""

    op: str
    prec: int

    def __call__(self, ctx: Context, e: E.PrimExpr, a: CExpr, b: CExpr) -> CExpr:
        # Left-associative: the right operand needs parentheses at equal precedence.
        return CExpr(f"{a.at(self.prec)} {self.op} {b.at(self.prec + 1)}", self.prec)


@dataclass(frozen=True)
class Prefix:
    """A C prefix operator entry, ``!a`` or ``~a``."""

    op: str

    def __call__(self, ctx: Context, e: E.PrimExpr, a: CExpr) -> CExpr:
        return CExpr(self.op + a.at(UNARY), UNARY)


def call_helper(kind: str) -> Entry:
    """An entry that calls helper ``kind`` of the node's dtype: ``ember_min_float32(a, b)``."""

    def render(ctx: Context, e: E.PrimExpr, *operands: CExpr) -> str:
        return f"{ctx.helper(kind, e.dtype)}({', '.join(operands)})"

    render.__qualname__ = f"call_helper({kind!r})"
    return render


def itemsize(dtype: str) -> int:
    """Bytes per element: ``itemsize("float32x8") == 4``."""
    base = E.dtype_element(dtype)
    return _ITEMSIZE.get(base) or int(base.lstrip("uint")) // 8


_ITEMSIZE = {"bool": 1, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "handle": 8}


def padded_lanes(lanes: int) -> int:
    """GCC vector types have a power-of-two size: 3 lanes are stored in 4."""
    return 1 << (lanes - 1).bit_length()


C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while bool main".split()
)

_LIBM_FUNCTIONS = (
    "acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf erfc exp exp2 expm1 "
    "fabs floor fma fmax fmin fmod frexp hypot ldexp lgamma log log10 log1p log2 modf nearbyint "
    "pow remainder rint round sin sinh sqrt tan tanh tgamma trunc".split()
)
C_LIBRARY_NAMES = frozenset(
    [*_LIBM_FUNCTIONS, *(f + "f" for f in _LIBM_FUNCTIONS)]
    + "abort abs aligned_alloc atexit atof atoi atol bsearch calloc div exit fprintf free "
    "getenv isinf isnan labs malloc memcmp memcpy memmove memset printf qsort rand realloc "
    "srand strcmp strcpy strlen system time".split()
)
"""Functions the headers of generated code declare (<math.h>, <stdlib.h>, <string.h>, ...):
a variable or kernel named like one would hide it (a buffer ``log`` breaks ``log(x)``)."""


def sanitize(name: str) -> str:
    """A C identifier from an IR name: ``"i.outer"`` -> ``"i_outer"``."""
    out = re.sub(r"[^0-9A-Za-z_]", "_", name) or "v"
    if out[0].isdigit():
        out = "v" + out
    return out


def fresh_name(name: str, taken: set[str]) -> str:
    """A C name for IR name ``name`` not in ``taken`` (and adds it): ``"i"``, ``"i_1"``, ...

    Keywords, C library functions, and names ember's helpers or the compiler's own use,
    get a ``v_`` prefix."""
    base = sanitize(name)
    reserved = base in C_KEYWORDS or base in C_LIBRARY_NAMES
    if reserved or base.startswith("ember_") or base.startswith("_"):
        base = "v_" + base.lstrip("_")
    out, k = base, 1
    while out in taken:
        out = f"{base}_{k}"
        k += 1
    taken.add(out)
    return out
