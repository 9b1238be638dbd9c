"""ONNX converters for LSTM, GRU and RNN: unrolled over the (static) sequence length.

Each direction runs the ONNX recurrence step by step with ember's matmul and
elementwise ops; the input projection ``X @ W^T + Wb`` is one matmul for all
steps. Gate orders follow ONNX: LSTM ``i, o, f, c``; GRU ``z, r, h``::

    LSTM  i = f(Xt Wi + Ht-1 Ri + Pi * Ct-1 + b)   C = f * Ct-1 + i * g(...)   H = o * h(C)

Variable sequence lengths (``sequence_lens`` shorter than the sequence) are
reported as unsupported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ember.frontend.onnx.context import OnnxNode, converter
from ember.graph.ir import Expr

Activation = Callable[[Expr], Expr]

# Activations with their default (alpha, beta), as the corresponding ONNX ops define them.
_ACTIVATION_DEFAULTS = {
    "relu": (None, None),
    "tanh": (None, None),
    "sigmoid": (None, None),
    "softsign": (None, None),
    "softplus": (None, None),
    "leakyrelu": (0.01, None),
    "thresholdedrelu": (1.0, None),
    "elu": (1.0, None),
    "hardsigmoid": (0.2, 0.5),
    "affine": (1.0, 0.0),
    "scaledtanh": (1.0, 1.0),
}


def _activation(node: OnnxNode, name: str, alpha: float | None, beta: float | None) -> Activation:
    kind = name.lower()
    if kind not in _ACTIVATION_DEFAULTS:
        raise node.unsupported(f"activation {name!r} is not supported")
    default_alpha, default_beta = _ACTIVATION_DEFAULTS[kind]
    alpha = default_alpha if alpha is None else alpha
    beta = default_beta if beta is None else beta

    def scalar(value: float, like: Expr) -> Expr:
        return node.constant(value, like.type.dtype)  # type: ignore[union-attr]

    def apply(x: Expr) -> Expr:
        if kind == "relu":
            return node.call("nn.relu", x)
        if kind == "tanh":
            return node.call("tanh", x)
        if kind == "sigmoid":
            return node.call("sigmoid", x)
        if kind == "softsign":
            return node.call("divide", x, node.call("add", scalar(1.0, x), node.call("abs", x)))
        if kind == "softplus":
            return node.call("nn.softplus", x)
        if kind == "leakyrelu":
            return node.call("nn.leaky_relu", x, alpha=alpha)
        if kind == "thresholdedrelu":
            above = node.call("greater", x, scalar(alpha, x))  # type: ignore[arg-type]
            return node.call("where", above, x, scalar(0.0, x))
        if kind == "elu":
            return node.call("nn.elu", x, alpha=alpha)
        if kind == "hardsigmoid":
            return node.call("nn.hard_sigmoid", x, alpha=alpha, beta=beta)
        if kind == "affine":
            scaled = node.call("multiply", x, scalar(alpha, x))  # type: ignore[arg-type]
            return node.call("add", scaled, scalar(beta, x))  # type: ignore[arg-type]
        # scaledtanh: alpha * tanh(beta * x)
        inner = node.call("tanh", node.call("multiply", x, scalar(beta, x)))  # type: ignore[arg-type]
        return node.call("multiply", inner, scalar(alpha, x))  # type: ignore[arg-type]

    return apply


def _activations(
    node: OnnxNode, defaults: Sequence[str], directions: int
) -> list[list[Activation]]:
    """Per direction, the activation functions (f, g, h for LSTM)."""
    names = list(node.attr("activations", ())) or list(defaults) * directions
    if len(names) != len(defaults) * directions:
        raise node.error(
            f"activations has {len(names)} entries, expected {len(defaults) * directions}"
        )
    alphas = list(node.attr("activation_alpha", ()))
    betas = list(node.attr("activation_beta", ()))
    functions = []
    for i, name in enumerate(names):
        alpha = alphas[i] if len(alphas) == len(names) else None
        beta = betas[i] if len(betas) == len(names) else None
        functions.append(_activation(node, name, alpha, beta))
    per = len(defaults)
    return [functions[d * per : (d + 1) * per] for d in range(directions)]


def _take_direction(node: OnnxNode, x: Expr, direction: int) -> Expr:
    """Row ``direction`` of a (num_directions, ...) tensor, without that axis."""
    row = node.call(
        "strided_slice", x, begin=(direction,), end=(direction + 1,), strides=(1,), axes=(0,)
    )
    return node.call("squeeze", row, axes=(0,))


def _chunk(node: OnnxNode, x: Expr, index: int, size: int) -> Expr:
    """Gate ``index`` of the last axis, which holds gates of ``size`` each."""
    return node.call(
        "strided_slice",
        x,
        begin=(index * size,),
        end=((index + 1) * size,),
        strides=(1,),
        axes=(-1,),
    )


class _Recurrence:
    """What every RNN kind shares: inputs per direction, layout, clipping, output stacking."""

    def __init__(self, node: OnnxNode, num_gates: int) -> None:
        self.node = node
        direction = node.attr("direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            raise node.error(f"direction={direction!r} is not forward, reverse or bidirectional")
        self.directions = 2 if direction == "bidirectional" else 1
        self.reverse = direction == "reverse"
        self.layout = node.attr("layout", 0)
        x = node.input(0)
        if self.layout:  # (batch, seq, in) -> (seq, batch, in)
            x = node.call("transpose", x, axes=(1, 0, 2))
        self.x = x
        self.seq_len, self.batch, _ = x.type.shape  # type: ignore[union-attr]
        self.hidden = node.attr("hidden_size") or node.shape(2)[-1]
        self.num_gates = num_gates
        self.dtype = node.dtype(0)
        self.clip = node.attr("clip")
        if node.has_input(4):
            lengths = node.const(4, "sequence_lens")
            if not np.all(lengths == self.seq_len):
                raise node.unsupported(
                    f"sequence_lens {lengths.tolist()} shorter than the sequence ({self.seq_len}) "
                    "are not supported"
                )

    def initial(self, index: int, direction: int) -> Expr:
        """Initial state input ``index`` for ``direction`` (zeros when omitted)."""
        node = self.node
        if not node.has_input(index):
            return node.constant(np.zeros((self.batch, self.hidden), dtype=self.dtype))
        state = node.input(index)
        if self.layout:  # (batch, dirs, hidden) -> (dirs, batch, hidden)
            state = node.call("transpose", state, axes=(1, 0, 2))
        return _take_direction(node, state, direction)

    def projected_inputs(self, direction: int) -> tuple[list[Expr], Expr, Expr | None]:
        """(X_t @ W^T + Wb for each step, R^T, Rb) of ``direction``."""
        node = self.node
        weight = _take_direction(node, node.input(1), direction)
        recurrence = _take_direction(node, node.input(2), direction)
        xw = node.call("nn.matmul", self.x, node.call("transpose", weight, axes=(1, 0)))
        r_bias = None
        if node.has_input(3):
            bias = _take_direction(node, node.input(3), direction)
            size = self.num_gates * self.hidden
            xw = node.call("add", xw, _chunk(node, bias, 0, size))
            r_bias = _chunk(node, bias, 1, size)
        steps = [
            node.call(
                "squeeze",
                node.call("strided_slice", xw, begin=(t,), end=(t + 1,), strides=(1,), axes=(0,)),
                axes=(0,),
            )
            for t in range(self.seq_len)
        ]
        return steps, node.call("transpose", recurrence, axes=(1, 0)), r_bias

    def clipped(self, x: Expr) -> Expr:
        if self.clip is None:
            return x
        return self.node.call("clip", x, a_min=-self.clip, a_max=self.clip)

    def order(self, direction: int) -> list[int]:
        """Time steps in processing order for ``direction``."""
        backwards = self.reverse or direction == 1
        steps = list(range(self.seq_len))
        return steps[::-1] if backwards else steps

    def stack_outputs(
        self, per_direction: list[list[Expr]], finals: list[list[Expr]]
    ) -> list[Expr]:
        """Y (seq, dirs, batch, hidden) and the final states (dirs, batch, hidden)."""
        node = self.node

        def stack(values: list[Expr], axis: int) -> Expr:
            expanded = [node.call("expand_dims", v, axes=(axis,)) for v in values]
            return (
                expanded[0]
                if len(expanded) == 1
                else node.call("concatenate", *expanded, axis=axis)
            )

        y = stack([stack(hs, 0) for hs in per_direction], 1)
        states = [stack(list(f), 0) for f in zip(*finals)]
        if self.layout:
            y = node.call("transpose", y, axes=(2, 0, 1, 3))
            states = [node.call("transpose", s, axes=(1, 0, 2)) for s in states]
        return [y, *states]


@converter("LSTM", min_version=7)
def _lstm(node: OnnxNode) -> list[Expr]:
    rnn = _Recurrence(node, num_gates=4)
    hidden = rnn.hidden
    acts = _activations(node, ("Sigmoid", "Tanh", "Tanh"), rnn.directions)
    couple = bool(node.attr("input_forget", 0))
    outputs, finals = [], []
    for d in range(rnn.directions):
        f, g, h = acts[d]
        steps, r_t, r_bias = rnn.projected_inputs(d)
        peep = None
        if node.has_input(7):
            p = _take_direction(node, node.input(7), d)
            peep = [_chunk(node, p, k, hidden) for k in range(3)]  # i, o, f
        h_t, c_t = rnn.initial(5, d), rnn.initial(6, d)
        hs: list[Expr] = [None] * rnn.seq_len  # type: ignore[list-item]
        for t in rnn.order(d):
            gates = node.call("add", steps[t], node.call("nn.matmul", h_t, r_t))
            if r_bias is not None:
                gates = node.call("add", gates, r_bias)
            i, o, fg, c = (_chunk(node, gates, k, hidden) for k in range(4))
            if peep is not None:
                i = node.call("add", i, node.call("multiply", peep[0], c_t))
                fg = node.call("add", fg, node.call("multiply", peep[2], c_t))
            i = f(rnn.clipped(i))
            fg = f(rnn.clipped(fg))
            if couple:
                fg = node.call("subtract", node.constant(1.0, rnn.dtype), i)
            c_t = node.call(
                "add", node.call("multiply", fg, c_t), node.call("multiply", i, g(rnn.clipped(c)))
            )
            if peep is not None:
                o = node.call("add", o, node.call("multiply", peep[1], c_t))
            h_t = node.call("multiply", f(rnn.clipped(o)), h(c_t))
            hs[t] = h_t
        outputs.append(hs)
        finals.append([h_t, c_t])
    return rnn.stack_outputs(outputs, finals)


@converter("GRU", min_version=7)
def _gru(node: OnnxNode) -> list[Expr]:
    rnn = _Recurrence(node, num_gates=3)
    hidden = rnn.hidden
    acts = _activations(node, ("Sigmoid", "Tanh"), rnn.directions)
    linear_before_reset = bool(node.attr("linear_before_reset", 0))
    one = node.constant(1.0, rnn.dtype)
    outputs, finals = [], []
    for d in range(rnn.directions):
        f, g = acts[d]
        steps, r_t, r_bias = rnn.projected_inputs(d)
        r_zr = _chunk(node, r_t, 0, 2 * hidden)  # (hidden, 2*hidden): the z and r columns
        r_h = _chunk(node, r_t, 2, hidden)
        h_t = rnn.initial(5, d)
        hs: list[Expr] = [None] * rnn.seq_len  # type: ignore[list-item]
        for t in rnn.order(d):
            x_zr, x_h = _chunk(node, steps[t], 0, 2 * hidden), _chunk(node, steps[t], 2, hidden)
            zr = node.call("add", x_zr, node.call("nn.matmul", h_t, r_zr))
            if r_bias is not None:
                zr = node.call("add", zr, _chunk(node, r_bias, 0, 2 * hidden))
            z = f(rnn.clipped(_chunk(node, zr, 0, hidden)))
            r = f(rnn.clipped(_chunk(node, zr, 1, hidden)))
            rh_bias = _chunk(node, r_bias, 2, hidden) if r_bias is not None else None
            if linear_before_reset:
                recurrent = node.call("nn.matmul", h_t, r_h)
                if rh_bias is not None:
                    recurrent = node.call("add", recurrent, rh_bias)
                candidate = node.call("add", x_h, node.call("multiply", r, recurrent))
            else:
                candidate = node.call(
                    "add", x_h, node.call("nn.matmul", node.call("multiply", r, h_t), r_h)
                )
                if rh_bias is not None:
                    candidate = node.call("add", candidate, rh_bias)
            h_new = g(rnn.clipped(candidate))
            keep = node.call("multiply", z, h_t)
            h_t = node.call(
                "add", node.call("multiply", node.call("subtract", one, z), h_new), keep
            )
            hs[t] = h_t
        outputs.append(hs)
        finals.append([h_t])
    return rnn.stack_outputs(outputs, finals)


@converter("RNN", min_version=7)
def _rnn(node: OnnxNode) -> list[Expr]:
    rnn = _Recurrence(node, num_gates=1)
    acts = _activations(node, ("Tanh",), rnn.directions)
    outputs, finals = [], []
    for d in range(rnn.directions):
        (f,) = acts[d]
        steps, r_t, r_bias = rnn.projected_inputs(d)
        h_t = rnn.initial(5, d)
        hs: list[Expr] = [None] * rnn.seq_len  # type: ignore[list-item]
        for t in rnn.order(d):
            pre = node.call("add", steps[t], node.call("nn.matmul", h_t, r_t))
            if r_bias is not None:
                pre = node.call("add", pre, r_bias)
            h_t = f(rnn.clipped(pre))
            hs[t] = h_t
        outputs.append(hs)
        finals.append([h_t])
    return rnn.stack_outputs(outputs, finals)
