"""The forward-only path of the recurrent layers: a forward that no backward will follow.

Legend: T steps, B batch, I input features, H hidden, G gates (RNN 1, LSTM 4, GRU 3), P the size
of the state h (H, or an LSTM's ``proj_size``), L layers, D directions.

When. ``Recurrent.forward`` takes this path inside ``bptt.no_grad()`` (nothing is recorded) when
no dropout mask would be drawn: in eval mode, or in training mode with ``dropout`` and
``recurrent_dropout`` both 0. A batch with ``lengths=`` still runs the packed path of the
training forward (``bptt.nn.packed_path``) under ``no_grad()``: it keeps the segment logic in
one place, and this path adds nothing there that the padded batch would not. The training
mode's masks (and the draws from the layer's generator) also stay with that path.

What it does differently from the recorded forward (``bptt.nn.loops``):

- The input projections of all T steps are computed before the loop for every batch size:
  one GEMM ``x (T*B, I) @ W_ih^T`` at B < ``SMALL_BATCH`` (rearranged to per-step blocks
  (G*H, B) in one pass), one batched matmul ``W_ih @ x[t]`` writing the blocks directly above,
  a column lookup for one-hot ids. The biases (b_ih + b_hh) are added in the same pass over
  the projections, so a step does one GEMM, ``W_hh @ h`` (all gates), and one add. (The
  recorded forward runs [W_ih | b | W_hh] @ [x; 1; h] per step at B >= 8, which keeps its
  backward's blocks but makes every step's GEMM I + 1 + H wide.)
- No caches: the gate activations, cell states and the blocks [x; 1; h] are not kept; each
  step's gates are one (G*H, B) scratch block that stays in cache, and an LSTM's c is one
  (H, B) buffer updated in place.
- The gate equations take the cells' ``forward_only`` form (``bptt.cells.lstm``,
  ``bptt.cells.gru``): one ``exp`` pass over the gates, whose pre-activations arrive negated
  (the projections are stored as -(W_ih x + b) and a step writes -(W_ih x + b) - W_hh h), and
  divisions by 1 + e^-a in place of products by σ(a). NumPy's float32 ``exp`` costs about half
  its ``tanh`` per element here, and the σ's ½ tanh(x/2) + ½ needs two more passes. The RNN's
  step is the cell's own ``forward`` (tanh or relu).
- Scratch buffers come from the layer's ``_buffer`` under keys of their own (("fwd", k, d)),
  reused across calls of the same shape; ``out`` and the final state are new arrays.

Exactness. The outputs and final states equal the recorded forward's within float rounding,
not bit for bit: the GEMMs add W_ih x + b and W_hh h in another order, and σ, tanh are computed
through exp. Each pre-activation then differs by a few units of its rounding, and each
activation by a few units in the last place of 1 (tanh(a) = 2 / (1 + e^-2a) - 1 loses the
relative precision of a tiny g, not its absolute one). The tests bound the largest absolute
difference of every output and final state at 32 eps (float32: 4e-6; float64: 7e-15) for
unit-scale inputs and torch's initialisation over up to 9 steps, stacked, bidirectional,
projected (``tests/test_inference.py``); over long sequences the difference stays of that
size as far as the recurrence is contracting, as training's own rounding does.

Cost per step (``docs/performance.md``, "Where the time goes: the forward-only path"): the
GEMM ``W_hh @ h``, an add of the projection, one exp pass over the gates and a handful of
(H, B) passes; at batch 1 the NumPy call overhead (about 0.5 us a ufunc here) is a third of a
step, so the steps make one call per equation and give ufuncs operands of one shape
(``one``, ``two`` as arrays) below ``SCALAR_BATCH``.
"""

import numpy as np

from ..cells import gru, lstm, rnn
from .blocks import final, initial, outputs, per_step, place, previous

SMALL_BATCH = 16  # below: the input projection as one GEMM of rows, rearranged to blocks
# (measured, 2-core EPYC, float32, H = I = 200, T = 35, B = 10: 1.0 ms against 1.36 ms for the
# batched matmul; at B = 32 the batched matmul, which writes the blocks directly, is faster)
SCALAR_BATCH = 8  # from this batch on the constants 1 and 2 enter the ufuncs as scalars
# (B = 1: an add with a full array 0.63 us against 0.88 us with a scalar; B = 32: 3.4 vs 2.4)


def applies(layer) -> bool:
    """Whether a forward of ``layer`` inside ``no_grad()`` takes this path: no mask to draw."""
    return not (layer.training and (layer.dropout > 0 or layer.recurrent_dropout > 0))


def forward(layer, x: np.ndarray, state, ids=None):
    """``layer.forward`` without a record, for a batch without lengths: x (T, B, I) time-major,
    or with ``ids`` (T, B) a one-hot input (x is then (T, B, 0)). Returns out (the layer's
    layout) and the final state (same structure as ``state``), new arrays."""
    T, B, _ = x.shape
    state0 = layer._check_state(state, B)
    P, D = layer.state_size, layer.num_directions
    finals = [np.empty(shape, layer.dtype) for shape in layer._state_shapes(B)]
    out = np.empty((B, T, D * P) if layer.batch_first else (T, B, D * P), layer.dtype)
    inp = ("ids", ids) if ids is not None else ("rows", x)
    run = RUNS[layer.kind]
    with np.errstate(over="ignore", under="ignore"):  # exp of a saturated gate: its limit
        for k in range(layer.num_layers):
            last = k == layer.num_layers - 1
            Y = None if last or D == 1 else layer._buffer(("fwd", k))("Y", (T, D * P, B))
            for d in range(D):
                reverse, j = d == 1, k * D + d
                weights = layer._weights(k, layer._suffixes()[d])   # plain arrays
                S, c = run(layer, weights, inp, tuple(s[j].T for s in state0), reverse,
                           layer._buffer(("fwd", k, d)))
                finals[0][j] = final(S, reverse).T
                if c is not None:
                    finals[1][j] = c.T
                Y = place(outputs(S, reverse), d, out, Y, last, layer.batch_first)  # (T, P, B)
            inp = ("cols", Y)
    return out, layer._pack(tuple(finals))


def project(W_ih: np.ndarray, inp: tuple, A: np.ndarray, buf) -> None:
    """A (T, G*H, B) <- W_ih @ x_t for every step. inp: ("rows", x (T, B, I)), ("cols",
    x (T, I, B)) or ("ids", ids (T, B)) (the columns of W_ih looked up)."""
    kind, v = inp
    T, GH, B = A.shape
    if kind == "ids":
        taken = buf("take", (GH, T, B))
        np.take(W_ih, v, axis=1, out=taken)
        np.copyto(A, taken.transpose(1, 0, 2))
        return
    if B >= SMALL_BATCH:
        np.matmul(W_ih, v.transpose(0, 2, 1) if kind == "rows" else v, out=A)
        return
    if kind == "cols" and B > 1:  # (T, I, B) -> rows (T, B, I), small
        rows = buf("rows", (T, B, v.shape[1]))
        np.copyto(rows, v.transpose(0, 2, 1))
        v = rows
    X = v.reshape(T * B, -1)  # (T*B, I): x as rows (at B = 1 either layout)
    if B == 1:
        np.dot(X, W_ih.T, A.reshape(T, GH))
        return
    R = buf("R", (T * B, GH))
    np.dot(X, W_ih.T, R)
    np.copyto(A, R.reshape(T, B, GH).transpose(0, 2, 1))


def add_bias(A: np.ndarray, bias, buf, name: str, negate: bool) -> None:
    """A (T, R, B) <- A + bias, or with ``negate`` -(A + bias) (bias (R,) or None), in one pass:
    the bias repeated to a full (R, B) block first, so that the pass runs over whole steps
    (broadcasting a column makes an inner loop of B elements: measured on the 2-core EPYC,
    T = 64, R = 1024, float32, 1.14 ms against 0.28 at B = 32, 0.11 against 0.015 at B = 1)."""
    if bias is None:
        if negate:
            np.negative(A, A)
        return
    full = buf(name, A.shape[1:])
    np.copyto(full, bias[:, None])
    if negate:
        np.negative(full, full)
        np.subtract(full, A, A)
    else:
        np.add(A, full, A)


def constant(buf, name: str, value: float, shape: tuple, dtype):
    """``value`` as a scalar of ``dtype`` or, for a batch under ``SCALAR_BATCH``, as a full
    array of ``shape`` (see the module docstring)."""
    if shape[-1] >= SCALAR_BATCH:
        return dtype.type(value)
    a = buf(name, shape)
    a.fill(value)
    return a


def _start(init, buf, S_shape, reverse):
    """The states S (T+1, P, B) with the initial h in place."""
    S = buf("S", S_shape)
    initial(S, reverse)[...] = init
    return S


def run_lstm(layer, weights, inp, init, reverse, buf):
    """One direction of one LSTM layer: S (T+1, P, B) (``bptt.nn.blocks``' layout) and the
    final cell state (H, B) (scratch: copy it)."""
    W_ih, W_hh, bias, W_hr = weights
    T, B = _steps(inp)
    (GH, P), dt = W_hh.shape, W_hh.dtype
    H = GH // 4
    A = buf("A", (T, GH, B))
    project(W_ih, inp, A, buf)
    add_bias(A, bias, buf, "b", negate=True)  # -(W_ih x + b): every gate enters exp negated
    S = _start(init[0], buf, (T + 1, P, B), reverse)
    c = buf("c", (H, B))
    c[...] = init[1]
    e = buf("e", (GH, B))  # the step's gates
    e4 = e.reshape(4, H, B)
    one, two = constant(buf, "one", 1, (4, H, B), dt), constant(buf, "two", 2, (H, B), dt)
    q = None if W_hr is None else buf("q", (H, B))  # a projection: o * tanh(c')
    for a, h_prev, h in zip(per_step(A, T, reverse), per_step(previous(S, reverse), T, reverse),
                            per_step(outputs(S, reverse), T, reverse), strict=True):
        np.dot(W_hh, h_prev, e)
        np.subtract(a, e, e)  # -(W_ih x + b + W_hh h)
        if q is None:
            lstm.forward_only(e4, c, h, one, two)
        else:
            np.dot(W_hr, lstm.forward_only(e4, c, q, one, two), h)  # h' = W_hr q
    return S, c


def run_gru(layer, weights, inp, init, reverse, buf):
    """One direction of one GRU layer: S (T+1, H, B) and None (no cell state)."""
    W_ih, W_hh, bias, b_hn = weights
    T, B = _steps(inp)
    H, dt = W_hh.shape[1], W_hh.dtype
    A = buf("A", (T, 3 * H, B))
    project(W_ih, inp, A, buf)
    rz, n = A[:, : 2 * H], A[:, 2 * H :]
    add_bias(rz, None if bias is None else bias[: 2 * H], buf, "b", negate=True)  # r, z negated
    add_bias(n, None if bias is None else bias[2 * H :], buf, "bi", negate=False)
    S = _start(init[0], buf, (T + 1, H, B), reverse)
    g = buf("g", (3 * H, B))  # the step's W_hh h
    e, gh_n = g[: 2 * H], g[2 * H :]
    e2 = e.reshape(2, H, B)
    bn = None
    if b_hn is not None:
        bn = buf("bn", (H, B))
        bn[...] = b_hn[:, None]
    one = constant(buf, "one", 1, (2, H, B), dt)
    for a_rz, a_n, h_prev, h in zip(
        per_step(rz, T, reverse), per_step(n, T, reverse),
        per_step(previous(S, reverse), T, reverse), per_step(outputs(S, reverse), T, reverse),
        strict=True,
    ):
        np.dot(W_hh, h_prev, g)
        np.subtract(a_rz, e, e)  # -(gi + gh) of r and z
        if bn is not None:
            np.add(gh_n, bn, gh_n)
        gru.forward_only(e2, gh_n, a_n, h_prev, h, one)
    return S, None


def run_rnn(layer, weights, inp, init, reverse, buf):
    """One direction of one RNN layer: S (T+1, H, B) and None."""
    W_ih, W_hh, bias, _ = weights
    T, B = _steps(inp)
    H = W_hh.shape[1]
    A = buf("A", (T, H, B))
    project(W_ih, inp, A, buf)
    add_bias(A, bias, buf, "b", negate=False)
    S = _start(init[0], buf, (T + 1, H, B), reverse)
    for a, h_prev, h in zip(per_step(A, T, reverse), per_step(previous(S, reverse), T, reverse),
                            per_step(outputs(S, reverse), T, reverse), strict=True):
        np.dot(W_hh, h_prev, h)
        np.add(h, a, h)
        rnn.forward(h, h, layer.nonlinearity)
    return S, None


def _steps(inp) -> tuple[int, int]:
    """(T, B) of a layer's input."""
    kind, v = inp
    return (v.shape[0], v.shape[2] if kind == "cols" else v.shape[1])


RUNS = {"LSTM": run_lstm, "GRU": run_gru, "RNN": run_rnn}
