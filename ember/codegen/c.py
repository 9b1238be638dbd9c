"""C code generation for the CPU: lowered PrimFuncs -> one C translation unit.

    mod = codegen_c([lower_pipeline(f)])                  # C with GCC vector extensions
    mod = codegen_c([lower_pipeline(f)], dialect=Neon())  # a dialect overriding entries
    print(mod.get_source())

The emitter here walks statements and decides (scopes, the outermost parallel loop,
stack or heap scratch); every spelling comes from the dialect
(:class:`ember.codegen.dialect.CDialect`, the default :data:`ember.codegen.dialect.C`).

ABI. For each PrimFunc ``name`` the source defines

    static int32_t name_impl(float* restrict A, ..., int32_t n)   /* typed */
    int32_t name(void** args)                                     /* exported */

``args`` holds one data pointer per buffer parameter, in order, followed by one
``int32_t*`` per symbolic shape variable (in order of first appearance in the
parameter shapes, see :func:`shape_vars`). The return value is 0, or -1 when an
AssertStmt failed. Buffer pointers are ``restrict``: the arrays passed must not
overlap (the Python module checks).

An outermost PARALLEL loop runs on ember's thread pool (:mod:`ember.codegen.thread_pool`):
its body is outlined into ``static void NAME_parK(int64_t begin, int64_t end, void* env)``
and the kernel calls ``ember_parallel_for`` (the ``OpenMP`` dialect puts
``#pragma omp parallel for schedule(guided)`` before the loop instead); a parallel loop
nested in another runs serially. The ``pragma_unroll`` annotation becomes
``#pragma GCC unroll``; scratch buffers of a constant size up to the dialect's
``stack_alloc_bytes`` live on the stack, larger ones are 64-byte-aligned heap blocks
freed at the end of their scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ember.codegen.c_expr import ExprPrinter
from ember.codegen.dialect import C, CDialect
from ember.codegen.syntax import C_KEYWORDS, C_LIBRARY_NAMES, fresh_name, itemsize, sanitize
from ember.errors import BuildError
from ember.tir import expr as E
from ember.tir.functor import post_order
from ember.tir.passes.flatten_storage import is_flat
from ember.tir.simplify import Analyzer
from ember.tir.stmt import (
    Allocate,
    AssertStmt,
    AttrStmt,
    BufferStore,
    Evaluate,
    For,
    ForKind,
    IfThenElse,
    LetStmt,
    PrimFunc,
    SeqStmt,
    Stmt,
)
from ember.version import __version__

# Names the C library already declares in the headers generated code includes: a kernel
# exported under one of them does not compile.
_RESERVED_SYMBOLS = C_KEYWORDS | C_LIBRARY_NAMES


def c_symbol(name: str) -> str:
    """The exported C symbol of kernel ``name`` (``"fused.add"`` -> ``"fused_add"``)."""
    sym = sanitize(name)
    if sym in _RESERVED_SYMBOLS or sym.startswith("ember_"):
        raise BuildError(
            f"kernel name {name!r} clashes with a C library or ember runtime name",
            hint="choose another kernel name, e.g. with a prefix or suffix",
        )
    return sym


def shape_vars(func: PrimFunc) -> list[E.Var]:
    """Symbolic shape variables of ``func``'s parameters, in order of first appearance."""
    seen: list[E.Var] = []
    for buf in func.params:
        for dim in buf.shape:
            if isinstance(dim, E.Var) and dim not in seen:
                seen.append(dim)
            elif not isinstance(dim, E.IntImm | E.Var):
                raise BuildError(
                    f"parameter {buf.name!r} of {func.name!r} has a computed shape dimension "
                    f"{dim!r}",
                    hint="use a plain variable (te.var) or a constant for each dimension",
                )
    return seen


@dataclass
class CSourceModule:
    """Generated C source and what a loader needs to call it (names and parameters)."""

    source: str
    funcs: list[PrimFunc] = field(default_factory=list)

    def get_source(self) -> str:
        return self.source

    @property
    def entry_names(self) -> list[str]:
        return [f.name for f in self.funcs]


class _FuncEmitter:
    def __init__(self, func: PrimFunc, dialect: CDialect, taken_globals: set[str]) -> None:
        self.func = func
        self.d = dialect
        self.lines: list[str] = []
        self.depth = 1
        self.parallel_depth = 0
        self.analyzer = Analyzer()
        self.p = ExprPrinter(dialect, self.analyzer, taken_globals)
        self.pointers: dict[E.Var, str] = {}  # buffer data variable -> element C type
        self.outlined: list[str] = []  # parallel loop bodies, emitted before the kernel
        self.n_outlined = 0
        self.entry = c_symbol(func.name)

    def emit(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def block(self, opening: str, body: Stmt) -> None:
        """``opening``, then ``body`` one level deeper, then the closing brace."""
        self.emit(opening)
        self.depth += 1
        self.stmt(body)
        self.depth -= 1
        self.emit("}")

    # ------------------------------------------------------------------ statements
    def stmt(self, s: Stmt) -> None:
        method = getattr(self, "s_" + type(s).__name__, None)
        if method is None:
            raise BuildError(f"the C backend cannot emit a {type(s).__name__} statement")
        method(s)

    def s_SeqStmt(self, s: SeqStmt) -> None:
        for c in s.seq:
            self.stmt(c)

    def s_For(self, s: For, unroll: int | None = None) -> None:
        if s.kind is ForKind.THREAD_BINDING:
            raise BuildError(
                f"loop {s.loop_var.name!r} is bound to GPU thread axis {s.thread_tag!r}, "
                "which the C (CPU) backend cannot run",
                hint="build for a cuda target, or remove the bind() from the schedule",
            )
        ann = dict(s.annotations)
        if "pragma_unroll" in ann:
            unroll = int(ann["pragma_unroll"] or 0)
        if s.kind is ForKind.UNROLLED and unroll is None:
            unroll = 0
        ctype = self.p.ctype(s.loop_var.dtype)
        lo = self.p.expr(s.min)
        name = self.p.declare(s.loop_var)
        end = self.p.expr(s.extent) if lo == "0" else self.p.expr(s.min + s.extent)
        # A parallel loop nested in another one runs serially: say so instead.
        nested = s.kind is ForKind.PARALLEL and self.parallel_depth > 0
        if s.kind is ForKind.PARALLEL and not nested and self.d.parallel_runtime == "pool":
            self.outline(s, ctype, name, lo, end, unroll)
            return
        pragma = self.d.nested_parallel if nested else self.d.loop_pragmas.get(s.kind)
        if pragma:
            self.emit(pragma)
        self._loop(s, ctype, name, lo, end, unroll)

    def _loop(self, s: For, ctype: str, name: str, lo: str, end: str, unroll: int | None) -> None:
        """Loop ``s`` from ``lo`` to ``end`` (its unroll pragma, its variable's range)."""
        if unroll is not None:
            factor = unroll if unroll > 0 else self.d.default_unroll
            self.emit(self.d.unroll_pragma.format(factor=factor))
        old = self.analyzer.bounds.get(s.loop_var)
        self.analyzer.bind(s.loop_var, (s.min, s.extent))
        self.parallel_depth += int(s.kind is ForKind.PARALLEL)
        self.block(self.d.for_loop(ctype, name, lo, end), s.body)
        self.parallel_depth -= int(s.kind is ForKind.PARALLEL)
        if old is None:
            self.analyzer.bounds.pop(s.loop_var, None)

    def outline(self, s: For, ctype: str, name: str, lo: str, end: str, unroll: int | None) -> None:
        """Run parallel loop ``s`` on the thread pool: its body becomes a function of a
        range of the loop variable, the variables it uses travel in a struct, and the
        kernel calls ``ember_parallel_for(lo, end, fn, &env)``."""
        fn = fresh_name(f"{self.entry}_par{self.n_outlined}", self.p.taken)
        self.n_outlined += 1
        captured = self._captured(s)
        fields = [self._field(v) for v in captured]
        names = [self.p.name(v) for v in captured]
        # The body: a function whose parameters are the captured variables under their
        # own names (restrict pointers, as in the kernel), so the loop's text is unchanged.
        saved = self.lines, self.depth
        self.lines, self.depth = [], 1
        self._loop(s, ctype, name, "_begin", "_end", unroll)
        body, (self.lines, self.depth) = self.lines, saved
        params = ", ".join(["int64_t _begin", "int64_t _end", *fields])
        unpack = ", ".join(["_begin", "_end", *(f"_e->{n}" for n in names)])
        struct = [f"struct {fn}_env {{", *(f"  {f};" for f in fields), "  char _unused;", "};"]
        self.outlined += [
            *struct,
            f"static inline void {fn}_body({params}) {{",
            *body,
            "}",
            f"static void {fn}(int64_t _begin, int64_t _end, void* _env) {{",
            f"  const struct {fn}_env* _e = (const struct {fn}_env*)_env;",
            f"  {fn}_body({unpack});",
            "}",
            "",
        ]
        init = ", ".join([*names, "0"])
        self.emit("{")
        self.emit(f"  struct {fn}_env _env = {{{init}}};")
        self.emit(f"  {self.d.parallel_call}({lo}, {end}, {fn}, &_env);")
        self.emit("}")

    def _captured(self, s: For) -> list[E.Var]:
        """The variables loop ``s`` reads that are defined outside it, in first-use order."""
        bound: set[E.Var] = set()
        used: dict[E.Var, None] = {}

        def visit(n: object) -> None:
            if isinstance(n, For):
                bound.add(n.loop_var)
            elif isinstance(n, LetStmt | E.Let):
                bound.add(n.var)
            elif isinstance(n, Allocate):
                bound.add(n.buffer.data)
            elif isinstance(n, BufferStore | E.BufferLoad):
                used.setdefault(n.buffer.data)
            elif isinstance(n, E.Var):
                used.setdefault(n)

        post_order(s, visit)
        return [v for v in used if v not in bound and v in self.p.names]

    def _field(self, v: E.Var) -> str:
        """The declaration of captured variable ``v`` (struct field and body parameter)."""
        name = self.p.name(v)
        if v in self.pointers:
            return f"{self.pointers[v]}* restrict {name}"
        return f"{self.p.ctype(v.dtype)} {name}"

    def s_BufferStore(self, s: BufferStore) -> None:
        if len(s.indices) != 1:
            raise BuildError(
                f"buffer {s.buffer.name!r} is stored with {len(s.indices)} indices",
                hint="run ember.tir.passes.lower_pipeline (storage flattening) before codegen",
            )
        buf = self.p.name(s.buffer.data)
        (idx,) = s.indices
        lanes = E.dtype_lanes(idx.dtype)
        if lanes == 1:
            if E.dtype_lanes(s.value.dtype) != 1:
                raise BuildError(
                    f"store of a vector {s.value.dtype} into one element of {s.buffer.name!r}"
                )
            self.emit(self.d.store(self.p, buf, self.p.expr(idx), self.p.expr(s.value)))
            return
        vdtype = E.with_lanes(s.buffer.dtype, lanes)
        if isinstance(idx, E.Ramp) and isinstance(idx.stride, E.IntImm) and idx.stride.value == 1:
            value = self.p.expr(s.value)
            base = self.p.expr(idx.base)
            self.emit(self.d.vector_store(self.p, vdtype, buf, base, value))
            return
        # Scatter: lane by lane (the vectorize pass proved the lanes hit distinct elements).
        lane = self.p.new_lane()
        value = self.p.lane(s.value, lane)
        self.emit(self.d.lane_loop_header(lane, lanes) + " {")
        self.emit("  " + self.d.store(self.p, buf, self.p.lane(idx, lane), value))
        self.emit("}")

    def s_IfThenElse(self, s: IfThenElse) -> None:
        self.emit(self.d.if_then(self.p.expr(s.condition)))
        self.depth += 1
        self.stmt(s.then_case)
        self.depth -= 1
        if s.else_case is not None:
            self.emit("} else {")
            self.depth += 1
            self.stmt(s.else_case)
            self.depth -= 1
        self.emit("}")

    def s_LetStmt(self, s: LetStmt) -> None:
        value = self.p.expr(s.value)
        self.emit("{")
        self.depth += 1
        name = self.p.declare(s.var)
        self.emit(self.d.let_stmt(self.p, s.var.dtype, name, value))
        self.stmt(s.body)
        self.depth -= 1
        self.emit("}")

    def s_Allocate(self, s: Allocate) -> None:
        buf = s.buffer
        if not is_flat(buf):
            raise BuildError(
                f"scratch buffer {buf.name!r} is not flattened",
                hint="run ember.tir.passes.lower_pipeline before code generation",
            )
        ctype = self.p.ctype(E.dtype_element(buf.dtype))
        size = buf.shape[0]
        self.emit("{")
        self.depth += 1
        name = self.p.declare(buf.data)
        self.pointers[buf.data] = ctype
        nbytes = size.value * itemsize(buf.dtype) if isinstance(size, E.IntImm) else None
        if nbytes is not None and nbytes <= self.d.stack_alloc_bytes:
            self.emit(self.d.stack_array(ctype, name, max(size.value, 1), buf.scope))
            self.stmt(s.body)
        else:
            alloc, free = self.d.heap_array(self.p, ctype, name, self.p.expr(size))
            self.emit(alloc)
            self.stmt(s.body)
            self.emit(free)
        self.depth -= 1
        self.emit("}")

    def s_AttrStmt(self, s: AttrStmt) -> None:
        if s.key == "pragma_unroll" and isinstance(s.body, For):
            value = s.value.value if isinstance(s.value, E.IntImm) else s.value
            self.s_For(s.body, unroll=int(value or 0))
            return
        self.emit(self.d.attr(s.key, s.value))
        self.stmt(s.body)

    def s_Evaluate(self, s: Evaluate) -> None:
        if isinstance(s.value, E.IntImm | E.FloatImm):
            return
        self.emit(self.d.evaluate(self.p.expr(s.value)))

    def s_AssertStmt(self, s: AssertStmt) -> None:
        self.emit(self.d.if_then(f"!({self.p.expr(s.condition)})"))
        self.emit("  " + self.d.assert_fail(s.message, in_parallel=self.parallel_depth > 0))
        self.emit("}")
        self.stmt(s.body)

    # ------------------------------------------------------------------ function
    def function(self) -> list[str]:
        f = self.func
        entry = c_symbol(f.name)
        params: list[str] = []
        unpack: list[str] = []
        for k, buf in enumerate(f.params):
            name = self.p.declare(buf.data)
            self.pointers[buf.data] = self.p.ctype(E.dtype_element(buf.dtype))
            param, arg = self.d.buffer_param(self.pointers[buf.data], name, k)
            params.append(param)
            unpack.append(arg)
        for k, v in enumerate(shape_vars(f)):
            param, arg = self.d.shape_param(self.p.declare(v), len(f.params) + k)
            params.append(param)
            unpack.append(arg)
            self.analyzer.bind_range(v, 0, None)
        self.entry = entry
        self.stmt(f.body)
        kernel = self.d.kernel(entry, params, self.lines) + self.d.entry_point(entry, unpack)
        return self.outlined + kernel


def codegen_runtime(dialect: CDialect = C) -> str:
    """The translation unit of the runtime support a library defines once (the thread
    pool), for a library linked from kernels generated with ``runtime=False``."""
    return "\n".join([dialect.header(__version__, ["runtime"]), dialect.support, dialect.runtime])


def codegen_c(
    funcs: list[PrimFunc] | PrimFunc, dialect: CDialect = C, *, runtime: bool = True
) -> CSourceModule:
    """Generate one C translation unit for lowered PrimFuncs (see the module docstring),
    spelled by ``dialect`` (default: C with GCC vector extensions and ember's thread pool).

    Each kernel is exported as :func:`c_symbol` of its name. ``runtime``: define the
    runtime support (the thread pool) here too, so the source builds on its own; a
    library linked from many kernels' files passes False and links
    :func:`codegen_runtime`'s file once instead (its definitions are weak, so a few
    copies would link too, at the cost of compiling them).

    >>> print(codegen_c([lower_pipeline(f)]).get_source())
    """
    if isinstance(funcs, PrimFunc):
        funcs = [funcs]
    names = [c_symbol(f.name) for f in funcs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise BuildError(
            f"two functions share the name(s) {sorted(dup)}", hint="give each kernel its own name"
        )
    bodies: list[str] = []
    vector_types: set[str] = set()
    helpers: set[str] = set()
    preludes: list[str] = []
    taken_globals = set(names) | {n + "_impl" for n in names}
    for f in funcs:
        em = _FuncEmitter(f, dialect, taken_globals)
        bodies.extend(em.function())
        vector_types |= em.p.vector_types
        helpers |= em.p.helpers
        for snippet in f.attrs.get("c_prelude", ()):
            if snippet not in preludes:
                preludes.append(snippet)
    lines = [dialect.header(__version__, names)]
    for vt in sorted(vector_types, key=lambda d: (E.dtype_lanes(d), d)):
        lines.append(dialect.vector_typedef(vt))
    if vector_types:
        lines.append("")
    for h in dialect.helper_order(helpers):
        lines.append(dialect.helper_source(h))
    lines.extend(preludes)
    lines.append("")
    lines.append(dialect.support)
    if runtime:
        lines.append(dialect.runtime)
    lines.extend(bodies)
    return CSourceModule("\n".join(lines), list(funcs))
