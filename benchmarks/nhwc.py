"""MobileNetV2's convs, layer by layer: ember's blocked NCHW[x]c kernels vs NHWC kernels.

    python benchmarks/nhwc.py [--rounds 100] [--layers 0-5,9] [--threads 1,2]

For every distinct conv kernel of MobileNetV2 (batch 1, 224x224, random weights) as
``ember.compile`` generates it today -- the fused kernels of ``kernel_graph`` /
``layout_kernels``, lowered and compiled by the compiler's own ``lower_kernel`` -- the
same conv with the same epilogue (bias, relu6, residual add) is built with the NHWC
kernels of :mod:`ember.topi.x86.nhwc`. Both are called through the same C ABI on the
same random data (checked to agree), at each thread count, and timed in interleaved
blocks (``_common.interleaved_medians``). ratio = NHWC / NCHWc (below 1: NHWC faster).
"calls" is how often the model runs the kernel; the sums weigh each kernel by it.

The model boundary: today's model transforms its NCHW input to NCHW3c (for 3 channels
that is already NHWC order) and its last NCHW16c tensor back to NCHW inside the global
average pool's kernel; an NHWC model would transpose the input to NHWC and pool the NHWC
tensor directly. Both pairs are timed too.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, interleaved_medians, max_rel_err, table  # noqa: E402

MAX_REL_ERR = 1e-5
"""Largest difference allowed between the two kernels' outputs (float32, same data)."""


@dataclass
class Layer:
    """One distinct fused conv kernel of the model and its NHWC twin."""

    func: Any  # the fused primitive Function (NCHWc)
    calls: int
    desc: str = ""
    nchwc: list[np.ndarray] = field(default_factory=list)  # kernel ABI order
    nhwc: list[np.ndarray] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    fns: dict[str, Any] = field(default_factory=dict)
    flops: int = 0


def _conv_parts(func: Any) -> dict[str, Any]:
    """The conv call of a fused kernel and its epilogue: which params are what."""
    from ember.graph.ir import Call, Constant
    from ember.graph.visitor import post_order

    parts: dict[str, Any] = {"activation": None, "residual": None, "bias": None}
    clip: list[float] = []
    for node in post_order(func.body):
        if not isinstance(node, Call):
            continue
        name = getattr(node.op, "name", "")
        if name == "nn.conv2d_nchwc":
            parts["conv"] = node
            parts["data"], parts["weight"] = node.args[0], node.args[1]
            parts["bias"] = node.args[2] if len(node.args) == 3 else None
        elif name in ("maximum", "minimum"):
            const = [a for a in node.args if isinstance(a, Constant)]
            clip.append(float(np.asarray(const[0].value).max()) if const else float("nan"))
        elif name == "add":
            parts["residual"] = next(a for a in node.args if not isinstance(a, Call))
        else:
            raise ValueError(f"unexpected op {name} in kernel {func.name}")
    if clip == [0.0, 6.0]:
        parts["activation"] = "relu6"
    elif clip == [0.0]:
        parts["activation"] = "relu"
    elif clip:
        raise ValueError(f"unexpected clip {clip} in kernel {func.name}")
    return parts


def _logical_to_nchwc(x: np.ndarray, block: int) -> np.ndarray:
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, c // block, block, h, w).transpose(0, 1, 3, 4, 2))


def _prepare(layer: Layer, rng: np.random.Generator, target: Any) -> None:
    """Random data for both layouts, and the C source of both kernels."""
    from ember import te
    from ember.codegen.c import codegen_c
    from ember.driver import lower_kernel
    from ember.te.lower import lower
    from ember.topi.x86.nhwc import conv2d_nhwc, depthwise_conv2d_nhwc, schedule_nhwc

    func = layer.func
    p = _conv_parts(func)
    conv = p["conv"]
    n, cb, h, w, ib_data = p["data"].type.shape
    ob_n, ib_n, kh, kw, ib, ob = p["weight"].type.shape
    out = conv.type.shape
    oc, c = ob_n * ob, cb * ib_data
    groups = conv.attrs.groups
    if tuple(conv.attrs.dilation) != (1, 1):
        raise ValueError(f"kernel {func.name}: dilated convs have no NHWC kernel here")
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    wt = rng.uniform(-1, 1, (oc, ib_n * ib, kh, kw)).astype(np.float32)
    y_shape = (out[0], out[1] * out[4], out[2], out[3])
    arrays = {
        p["data"]: (_logical_to_nchwc(x, ib_data), np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    }
    packed = wt.reshape(ob_n, ob, ib_n, ib, kh, kw).transpose(0, 2, 4, 5, 3, 1)
    if groups == 1:
        hwio = wt.transpose(2, 3, 1, 0)
    else:
        hwio = wt[:, 0].transpose(1, 2, 0)
    arrays[p["weight"]] = (np.ascontiguousarray(packed), np.ascontiguousarray(hwio))
    if p["bias"] is not None:
        b = rng.uniform(-1, 1, (oc,)).astype(np.float32)
        arrays[p["bias"]] = (b, b)
    if p["residual"] is not None:
        r = rng.uniform(-1, 1, y_shape).astype(np.float32)
        arrays[p["residual"]] = (
            _logical_to_nchwc(r, out[4]),
            np.ascontiguousarray(r.transpose(0, 2, 3, 1)),
        )
    layer.nchwc = [arrays[v][0] for v in func.params] + [np.zeros(out, np.float32)]
    # NHWC placeholders in the order data, weight, [bias], [residual], output.
    te_in = {}
    nhwc = []
    for v in (p["data"], p["weight"], p["bias"], p["residual"]):
        if v is not None:
            arr = arrays[v][1]
            te_in[v] = te.placeholder(arr.shape, "float32", name=f"p{len(te_in)}")
            nhwc.append(arr)
    conv_fn = conv2d_nhwc if groups == 1 else depthwise_conv2d_nhwc
    result = conv_fn(
        te_in[p["data"]],
        te_in[p["weight"]],
        strides=tuple(conv.attrs.strides),
        padding=tuple(conv.attrs.padding),
        bias=te_in.get(p["bias"]),
        activation=p["activation"],
        residual=te_in.get(p["residual"]),
    )
    layer.nhwc = [*nhwc, np.zeros((out[0], out[2], out[3], y_shape[1]), np.float32)]
    s = schedule_nhwc(result, target)
    prim = lower(s, [*te_in.values(), result], name="nhwc_kernel")
    layer.sources["NHWC"] = codegen_c([prim]).get_source()
    layer.sources["NCHWc"] = lower_kernel(func, "nchwc_kernel", target)
    stride = conv.attrs.strides[0]
    kind = "dw " if groups > 1 else ""
    parts = (("bias", p["bias"]), (p["activation"], p["activation"]), ("add", p["residual"]))
    epi = "+".join(name for name, present in parts if present is not None)
    layer.desc = f"{kh}x{kw} {kind}{c}->{oc} {h}x{w} s{stride} {epi}"
    layer.flops = 2 * int(np.prod(layer.nhwc[-1].shape)) * kh * kw * (c // groups)


def _load(path: Path, symbol: str, arrays: list[np.ndarray]) -> Any:
    """A no-argument callable that runs one compiled kernel on ``arrays`` (C ABI: void**)."""
    lib = ctypes.CDLL(str(path))
    fn = getattr(lib, symbol)
    fn.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    fn.restype = ctypes.c_int32
    argv = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])

    def run() -> None:
        _ = (lib, arrays)  # keep the library and buffers alive
        if fn(argv) != 0:
            raise RuntimeError(f"kernel {symbol} failed")

    return run


def _boundary(target: Any) -> dict[str, dict[str, Any]]:
    """Callables of the model-boundary kernels: NCHWc (today) vs NHWC."""
    from ember import te
    from ember.codegen.c import codegen_c
    from ember.driver import lower_kernel
    from ember.driver.toolchain import compile_shared
    from ember.graph.ir import Function, TensorType, Var
    from ember.ops import call
    from ember.te.lower import lower

    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    last = rng.uniform(-1, 1, (1, 80, 7, 7, 16)).astype(np.float32)
    # Today: the compiler's own fused kernels for both ends.
    v = Var("x", TensorType((1, 3, 224, 224)))
    body = call("layout_transform", v, src_layout="NCHW", dst_layout="NCHW3c")
    k_in = Function((v,), body, {"primitive": True, "name": "fused_layout_transform"})
    u = Var("y", TensorType((1, 80, 7, 7, 16)))
    pooled = call(
        "nn.global_avg_pool2d", call("layout_transform", u, src_layout="NCHW16c", dst_layout="NCHW")
    )
    k_out = Function((u,), pooled, {"primitive": True, "name": "fused_layout_transform_pool"})
    srcs = {
        ("input", "NCHWc"): (
            lower_kernel(k_in, "b_in", target),
            "b_in",
            [x, np.zeros((1, 1, 224, 224, 3), np.float32)],
        ),
        ("output", "NCHWc"): (
            lower_kernel(k_out, "b_out", target),
            "b_out",
            [last, np.zeros((1, 1280, 1, 1), np.float32)],
        ),
    }
    # NHWC: transpose the input; pool the NHWC tensor over (H, W), channels vectorizable.
    a = te.placeholder((1, 3, 224, 224), "float32", name="a")
    t = te.compute((1, 224, 224, 3), lambda n, y, xx, c: a[n, c, y, xx], name="to_nhwc")
    s = te.create_schedule(t.op)
    s[t].parallel(s[t].fuse(*t.op.axis[:2]))
    srcs[("input", "NHWC")] = (
        codegen_c([lower(s, [a, t], name="n_in")]).get_source(),
        "n_in",
        [x, np.zeros((1, 224, 224, 3), np.float32)],
    )
    z = te.placeholder((1, 7, 7, 1280), "float32", name="z")
    ry, rx = te.reduce_axis((0, 7), name="ry"), te.reduce_axis((0, 7), name="rx")
    total = te.compute((1, 1280), lambda n, c: te.sum(z[n, ry, rx, c], axis=[ry, rx]), name="sum")
    avg = te.compute((1, 1280, 1, 1), lambda n, c, i, j: total[n, c] / 49.0, name="avg")
    s = te.create_schedule(avg.op)
    st = s[total]
    st.reorder(*st.op.reduce_axis, *st.op.axis)  # the channel loop innermost: contiguous
    srcs[("output", "NHWC")] = (
        codegen_c([lower(s, [z, avg], name="n_out")]).get_source(),
        "n_out",
        [
            np.ascontiguousarray(last.transpose(0, 2, 3, 1, 4).reshape(1, 7, 7, 1280)),
            np.zeros((1, 1280, 1, 1), np.float32),
        ],
    )
    result: dict[str, dict[str, Any]] = {"input": {}, "output": {}}
    outs = {}
    for (end, layout), (src, sym, arrays) in srcs.items():
        path = compile_shared(src, target)[0]
        result[end][layout] = _load(path, sym, arrays)
        result[end][layout]()
        outs[(end, layout)] = arrays[-1]
    ref = outs[("input", "NHWC")].reshape(-1)
    err_in = max_rel_err(outs[("input", "NCHWc")].reshape(-1), ref)
    err_out = max_rel_err(outs[("output", "NCHWc")], outs[("output", "NHWC")])
    if max(err_in, err_out) > 1e-5:
        raise RuntimeError(f"boundary kernels disagree: {err_in:.1e} / {err_out:.1e}")
    return result


def _select(n: int, spec: str | None) -> list[int]:
    if not spec:
        return list(range(n))
    chosen: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        chosen += range(int(lo), int(hi or lo) + 1)
    return [i for i in chosen if 0 <= i < n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100, help="timed calls per kernel")
    parser.add_argument("--layers", default=None, help="kernel indices, e.g. 0-5,9")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()

    from ember.driver import kernel_graph
    from ember.driver.toolchain import compile_shared
    from ember.graph.ir import Call
    from ember.graph.passes.fuse_ops import kernels
    from ember.graph.structural import workload_key
    from ember.graph.visitor import post_order
    from ember.runtime.model import _gomp
    from ember.target import Target
    from ember.testing import zoo

    target = Target.parse("host")
    mod, params = zoo.get("mobilenet_v2")
    _, fused = kernel_graph(mod, params, target)
    layers: dict[str, Layer] = {}
    for call in kernels(fused):
        func = call.op
        if not any(
            isinstance(n, Call) and getattr(n.op, "name", "") == "nn.conv2d_nchwc"
            for n in post_order(func.body)
        ):
            continue
        key = workload_key(func)
        if key in layers:
            layers[key].calls += 1
        else:
            layers[key] = Layer(func, 1)
    todo = [list(layers.values())[i] for i in _select(len(layers), args.layers)]
    rng = np.random.default_rng(0)
    for layer in todo:
        _prepare(layer, rng, target)
    sources = [(layer, kind, src) for layer in todo for kind, src in layer.sources.items()]
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda t: compile_shared(t[2], target)[0], sources))
    symbols = {"NHWC": "nhwc_kernel", "NCHWc": "nchwc_kernel"}
    for (layer, kind, _), path in zip(sources, paths):
        arrays = layer.nhwc if kind == "NHWC" else layer.nchwc
        layer.fns[kind] = _load(path, symbols[kind], arrays)

    gomp = _gomp()
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    bad: list[str] = []
    sums = {t: [0.0, 0.0] for t in threads}
    for i, layer in enumerate(todo):
        gomp.omp_set_num_threads(1)
        layer.fns["NCHWc"]()
        layer.fns["NHWC"]()
        out5 = layer.nchwc[-1]
        n, ob_n, h, w, ob = out5.shape
        as_nhwc = out5.transpose(0, 2, 3, 1, 4).reshape(n, h, w, ob_n * ob)
        err = max_rel_err(layer.nhwc[-1], as_nhwc)
        if err > MAX_REL_ERR:
            bad.append(f"#{i} {layer.desc}: max rel err {err:.1e}")
        row = [str(i), layer.desc, str(layer.calls), f"{err:.0e}"]
        for t in threads:
            gomp.omp_set_num_threads(t)
            med = interleaved_medians(
                {"NCHWc": layer.fns["NCHWc"], "NHWC": layer.fns["NHWC"]}, rounds=args.rounds
            )
            sums[t][0] += med["NCHWc"] * layer.calls
            sums[t][1] += med["NHWC"] * layer.calls
            gflops = layer.flops / (med["NHWC"] * 1e-3) / 1e9
            row += [
                f"{med['NCHWc']:.3f}",
                f"{med['NHWC']:.3f}",
                f"{med['NHWC'] / med['NCHWc']:.2f}",
                f"{gflops:.0f}",
            ]
        rows.append(row)
        print(" | ".join(row), flush=True)
    total = ["", "sum over the model's calls", str(sum(x.calls for x in todo)), ""]
    for t in threads:
        a, b = sums[t]
        total += [f"{a:.2f}", f"{b:.2f}", f"{b / a:.2f}", ""]
    rows.append(total)
    head = ["#", "conv (kernel, in->out ch, input, stride, epilogue)", "calls", "max rel err"]
    for t in threads:
        head += [f"NCHWc ms {t}T", f"NHWC ms {t}T", f"ratio {t}T", f"NHWC GF/s {t}T"]
    print()
    print(header("MobileNetV2 convs: NCHW[x]c (ember today) vs NHWC kernels"))
    print(f"{args.rounds} timed calls per kernel and thread count, interleaved\n")
    print(table(rows, head))

    ends = _boundary(target)
    brows = []
    for end, fns in ends.items():
        row = [end]
        for t in threads:
            gomp.omp_set_num_threads(t)
            med = interleaved_medians(fns, rounds=args.rounds)
            row += [f"{med['NCHWc']:.3f}", f"{med['NHWC']:.3f}"]
        brows.append(row)
    bhead = ["model boundary"]
    for t in threads:
        bhead += [f"NCHWc ms {t}T", f"NHWC ms {t}T"]
    print()
    print("input: NCHW -> NCHW3c (today) vs NCHW -> NHWC; output: NCHW16c -> NCHW + global")
    print("average pool (today, one kernel) vs pooling the NHWC tensor directly\n")
    print(table(brows, bhead))
    if bad:
        raise SystemExit("NHWC and NCHWc kernels disagree:\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
