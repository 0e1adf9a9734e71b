"""What a character model does with a text, measured from its own forward and backward passes:
the computations behind ``Model.gradient_flow``, ``gates``, ``units`` and ``expectations``
(bptt.text.api) and the ``bptt inspect`` report, which calls those same methods.

Legend: T steps (symbols read), L layers, H hidden units, V vocabulary size.

A sequence of N ids is read as inputs ids[:-1] and targets ids[1:] (T = N - 1), from a zero
state, batch of one. A lines-mode model reads each line as training does: END, the line's
characters, and predicts them and END, from a zero state (``line_pieces`` cuts a sequence
END l1 END l2 ... END into those pieces; the results are joined along T).

- ``gradient_flow``: the norm of dL/dh_t (and dL/dc_t for an LSTM) of every layer, for the loss
  at the last position only, from one engine backward with ``keep_state_grads=True`` (a ``dout``
  that is non-zero only at the last step). Indexed by distance back in time: entry s is step
  T-1-s. Computed on a float64 copy of the model (``in_float64``): in float32 a gradient that
  vanishes underflows to 0 (or float32's subnormal floor, 1e-45) within a few hundred steps.
- ``trace``: every layer's state after every step, from the engine run one character at a time
  (the final state of a one-step forward is each layer's h_t, c_t), and the gate activations,
  recomputed with the cells' own equations from those states (all steps as one batch).
- ``saturation``: per layer, gate and unit, the fraction of the steps with the gate < 0.1 (left)
  and > 0.9 (right); for an RNN the tanh output near -1 and 1 (< -0.9, > 0.9).
- ``expectations``: the probability the model gave each actual next character, and its top k.
- ``pick_units``: units to show over the text (rule in its docstring).
- ``decay``: the mean factor by which one step back multiplies a gradient norm.
"""

import dataclasses

import numpy as np

from ..cells import gru, lstm, rnn
from ..nn import blocks
from ..nn.losses import cross_entropy, cross_entropy_backward
from .lm import CharLM

LOW, HIGH = 0.1, 0.9   # a σ gate below LOW is left-saturated, above HIGH right-saturated
TANH_EDGE = 0.9        # an RNN's tanh output beyond ±TANH_EDGE is saturated
GATE_NAMES = {"lstm": ("input i", "forget f", "output o"), "gru": ("reset r", "update z"),
              "rnn": ("tanh h",)}
KEEP_GATE = {"lstm": "forget f", "gru": "update z"}   # the gate on the path without a weight
N_UNITS = 6            # units shown over the text unless chosen
TOP_K = 5              # candidates listed per position


def line_pieces(ids: np.ndarray, end: int | None) -> list[np.ndarray]:
    """``ids`` cut for reading: the whole of it (``end`` None: a stream), or for a lines-mode
    sequence END l1 END l2 ... END the pieces [END l_k END], each read from a zero state."""
    if end is None:
        return [ids]
    stops = np.flatnonzero(ids == end)
    return [ids[a: b + 1] for a, b in zip(stops[:-1], stops[1:], strict=True) if b > a + 1]


def decay(norms: np.ndarray, upto: int | None = None) -> float:
    """The mean factor per step back of a norm curve (entry s: s steps back), over its first
    ``upto`` steps (None: all): (norms[s] / norms[0]) ** (1 / s), from the last finite, non-zero
    entry. nan when there is no such entry."""
    n = norms[: None if upto is None else upto + 1].astype(np.float64)
    good = np.flatnonzero(np.isfinite(n) & (n > 0))
    if len(good) < 2 or good[0] != 0:
        return float("nan")
    s = good[-1]
    return float((n[s] / n[0]) ** (1.0 / s))


def in_float64(model: CharLM) -> CharLM:
    """A float64 copy of ``model`` (same weights, cast exactly)."""
    if model.dtype == np.float64:
        return model
    copy = CharLM(model.vocab_size, model.cell, model.rnn.hidden_size, model.rnn.num_layers,
                  np.float64, embed=model.embed_dim)                # (no dropout)
    copy.load_state_dict(model.params)
    return copy



# ------------------------------------------------------------------------------ measurements

def layer_input(model: CharLM, ids: np.ndarray) -> np.ndarray:
    """(T,) ids -> (T, 1, I): the recurrent layer's input for a batch of one, one-hot (I = V)
    or, for a model with an embedding, the embedded characters (I = E)."""
    return model.inputs(ids[:, None])


def last_loss_state_grads(layer, X: np.ndarray, dout_last: np.ndarray):
    """One forward of ``layer`` over X (T, 1, I) and one backward with a dout that is
    ``dout_last`` (H,) at the last step and zero elsewhere; returns the layer's
    ``state_grads`` (dh, or (dh, dc) for an LSTM; each (L, T, 1, H))."""
    out, _ = layer.forward(X)
    dout = np.zeros_like(out)
    dout[-1, 0] = dout_last
    layer.backward(dout, keep_state_grads=True)
    return layer.state_grads


def flow_norms(state_grads) -> dict[str, np.ndarray]:
    """{"h": (L, T), "c": (L, T) for an LSTM}: the norm of each step's gradient, indexed by the
    distance back from the last step (entry s is step T-1-s), in float64."""
    parts = state_grads if isinstance(state_grads, tuple) else (state_grads,)
    norms = {}
    for name, g in zip("hc", parts, strict=False):
        norms[name] = np.linalg.norm(g[:, ::-1, 0].astype(np.float64), axis=-1)
    return norms


def gradient_flow(model: CharLM, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Norms of dL/dh_t (and dL/dc_t) by distance back, for L = cross-entropy of the last
    target given the passage ``ids`` (N,). See ``flow_norms``."""
    X = layer_input(model, ids[:-1])
    T = X.shape[0]
    out, _ = model.rnn.forward(X)
    logits = model.head.forward(out[-1])                      # (1, V) the last position
    _, cache = cross_entropy(logits, ids[-1:])
    dout_last = model.head.backward(cross_entropy_backward(1.0, cache))[0]      # (H,)
    dout = np.zeros_like(out)
    dout[T - 1, 0] = dout_last
    model.rnn.backward(dout, keep_state_grads=True)
    return flow_norms(model.rnn.state_grads)


@dataclasses.dataclass
class Trace:
    """Forward values of every layer over a passage (T steps, batch of one)."""

    h: np.ndarray              # (L, T, H) state after each step
    c: np.ndarray | None       # (L, T, H) LSTM cell state after each step
    gates: dict                # gate name -> (L, T, H) activations (RNN: "tanh h" is h)


def trace(model: CharLM, ids: np.ndarray, end: int | None = None) -> Trace:
    """States of every layer after every step of reading ``ids[:-1]`` (a lines-mode sequence:
    each line from a zero state, ``line_pieces``, joined along T), and the σ gates recomputed
    from them (see the module docstring)."""
    parts = [_trace(model, piece) for piece in line_pieces(ids, end)]
    join = lambda xs: np.concatenate(xs, axis=1)  # noqa: E731 (along T)
    return Trace(join([t.h for t in parts]),
                 None if parts[0].c is None else join([t.c for t in parts]),
                 {name: join([t.gates[name] for t in parts]) for name in parts[0].gates})


def _trace(model: CharLM, ids: np.ndarray) -> Trace:
    """``trace`` of one piece read from a zero state, the engine one step at a time."""
    layer = model.rnn
    X = layer_input(model, ids[:-1])
    T, L, H = X.shape[0], layer.num_layers, layer.hidden_size
    hs, cs, state = np.empty((L, T, H), model.dtype), np.empty((L, T, H), model.dtype), None
    for t in range(T):
        _, state = layer.forward(X[t : t + 1], state)
        hs[:, t] = (state[0] if model.cell == "lstm" else state)[:, 0]
        if model.cell == "lstm":
            cs[:, t] = state[1][:, 0]
    names = GATE_NAMES[model.cell]
    gates = {name: np.empty((L, T, H), model.dtype) for name in names}
    inputs = X[:, 0]                                                        # (T, I)
    for k in range(L):
        prev = np.vstack([np.zeros((1, H), model.dtype), hs[k, :-1]])       # (T, H) h_{t-1}
        c_prev = np.vstack([np.zeros((1, H), model.dtype), cs[k, :-1]])
        acts = gate_activations(layer, k, inputs, prev, c_prev)
        for name, a in zip(names, acts, strict=True):
            gates[name][k] = a
        inputs = hs[k]
    return Trace(hs, cs if model.cell == "lstm" else None, gates)


def gate_activations(layer, k: int, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray):
    """The σ gates (or the RNN's tanh output) of layer k for all steps at once, with the cells'
    forward equations, the T steps taking the place of the batch. x: (T, I); h_prev, c_prev:
    (T, H) the states each step read. Returns a list of (T, H) arrays in GATE_NAMES order."""
    p, H = layer.params, layer.hidden_size
    gi = x @ p[f"weight_ih_l{k}"].T + p.get(f"bias_ih_l{k}", 0)            # (T, G*H)
    gh = h_prev @ p[f"weight_hh_l{k}"].T + p.get(f"bias_hh_l{k}", 0)       # (T, G*H)
    T = x.shape[0]
    h = np.empty((H, T), layer.dtype)
    if layer.kind == "LSTM":
        a = np.ascontiguousarray((gi + gh).T).reshape(4, H, T)
        c, tanh_c = np.empty((H, T), layer.dtype), np.empty((H, T), layer.dtype)
        lstm.forward(a, np.ascontiguousarray(c_prev.T), c, tanh_c, h)
        return [a[0].T, a[1].T, a[3].T]
    if layer.kind == "GRU":
        a = np.empty((3, H, T), layer.dtype)
        a[:2] = (gi[:, : 2 * H] + gh[:, : 2 * H]).T.reshape(2, H, T)
        a[2] = gi[:, 2 * H :].T
        gru.forward(a, np.ascontiguousarray(gh[:, 2 * H :].T), np.ascontiguousarray(h_prev.T), h)
        return [a[0].T, a[1].T]
    rnn.forward(np.ascontiguousarray((gi + gh).T), h, layer.nonlinearity)
    return [h.T]


def saturation(gates: dict, kind: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """gate name -> (left, right), each (L, H): the fraction of steps with the gate below LOW
    and above HIGH (RNN: tanh below -TANH_EDGE and above TANH_EDGE)."""
    lo, hi = (-TANH_EDGE, TANH_EDGE) if kind == "rnn" else (LOW, HIGH)
    return {name: ((a < lo).mean(axis=1), (a > hi).mean(axis=1)) for name, a in gates.items()}


@dataclasses.dataclass
class Expectations:
    probs: np.ndarray          # (T, V) the model's distribution for each next character
    actual: np.ndarray         # (T,) probability of the character that came
    top: np.ndarray            # (T, k) ids of the k most likely, most likely first
    loss: float                # mean cross-entropy over the passage, nats per character
    read: str = ""             # Model.expectations: the symbols read, one per position
    targets: str = ""          # and the symbol that came at each
    top_chars: list = dataclasses.field(default_factory=list)   # (T,) strings of top's symbols


def expectations(model: CharLM, ids: np.ndarray, end: int | None = None,
                 top_k: int = TOP_K) -> Expectations:
    """What the model expected at each position of ``ids`` (N,), reading from a zero state (a
    lines-mode sequence: each line from a zero state, ``line_pieces``, joined along T)."""
    z = np.concatenate([model.forward(piece[:-1, None])[0] for piece in line_pieces(ids, end)])
    z = z.astype(np.float64)                                                 # (T, V) logits
    targets = np.concatenate([piece[1:] for piece in line_pieces(ids, end)])
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    actual = p[np.arange(len(p)), targets]
    top = np.argsort(-p, axis=1, kind="stable")[:, :top_k]
    return Expectations(p, actual, top, float(-np.log(np.maximum(actual, 1e-300)).mean()))



# ------------------------------------------------------------------------------ units

def features(text: str) -> dict[str, np.ndarray]:
    """Properties of the text at each character read (T = len(text)), float64; only those that
    vary over the passage are returned."""
    pos, inside, depth, col, quoted = [], [], 0, 0, False
    for ch in text:
        col = 0 if ch == "\n" else col + 1
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in "\"“”":
            quoted = ch == "“" or (ch == '"' and not quoted)
        pos.append(col)
        inside.append(depth > 0 or quoted)
    found = {
        "position in the line": np.array(pos, float),
        "inside quotes or brackets": np.array(inside, float),
        "inside a word (a letter)": np.array([c.isalpha() for c in text], float),
        "an upper-case letter": np.array([c.isupper() for c in text], float),
        "a space or newline": np.array([c.isspace() for c in text], float),
    }
    return {name: f for name, f in found.items() if f.std() > 0}


def correlations(h: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """(L, H) Pearson correlation of each unit's activation h (L, T, H) with ``feature`` (T,);
    0 for a unit that does not vary."""
    a = h.astype(np.float64) - h.mean(axis=1, keepdims=True)
    f = feature - feature.mean()
    den = np.sqrt((a**2).sum(axis=1) * (f**2).sum())
    return np.divide(np.einsum("lth,t->lh", a, f), den, out=np.zeros(den.shape), where=den > 0)


def pick_units(h: np.ndarray, text: str, n: int = N_UNITS) -> list[tuple[int, int, str]]:
    """(layer, unit, why) for ``n`` units: for each property of ``features`` in turn, the unit of
    any layer whose activation is most correlated with it (|r|, a unit taken once), then the
    units of highest variance over the passage. h: (L, T, H)."""
    chosen, seen = [], set()
    for name, f in features(text).items():
        r = correlations(h, f)
        for flat in np.argsort(-np.abs(r), axis=None, kind="stable"):
            k, u = np.unravel_index(flat, r.shape)
            if (k, u) not in seen:
                break
        if len(chosen) < n and abs(r[k, u]) > 0:
            chosen.append((int(k), int(u), f"r = {r[k, u]:+.2f} with {name}"))
            seen.add((k, u))
    var = h.astype(np.float64).var(axis=1)
    for flat in np.argsort(-var, axis=None, kind="stable"):
        if len(chosen) >= n:
            break
        k, u = np.unravel_index(flat, var.shape)
        if (k, u) not in seen:
            chosen.append((int(k), int(u), f"variance {var[k, u]:.3f}, among the highest"))
            seen.add((k, u))
    return chosen




# ------------------------------------------------------------------------------ results

@dataclasses.dataclass
class GradientFlow:
    """``Model.gradient_flow``: norms of dL/dh_t (and dL/dc_t) of every layer for the loss at
    the last target of ``text``, by steps back (entry s: s steps before the loss), for the
    trained model and for the same model at its initialisation."""

    text: str                  # what was read (a lines-mode model: END, then the line)
    trained: dict              # "h" (L, T), and "c" (L, T) for an LSTM
    initial: dict              # the same at initialisation
    horizon: int | None        # steps training backpropagated through (seq_len; a line: whole)

    def decay(self, part: str = "h", layer: int = -1, initial: bool = False,
              upto: int | None = None) -> float:
        """The mean factor per step back of layer ``layer``'s dL/d``part`` (``decay``)."""
        return decay((self.initial if initial else self.trained)[part][layer], upto)

    def plot(self):
        """The two panels (h, and c for an LSTM), every layer, trained solid and initial dashed,
        the training horizon marked; a matplotlib Figure."""
        from .figures import flow_figure

        panels = []
        for part in self.trained:
            lines = [(f"layer {k}, {which}", norms[part][k], style, f"C{k}")
                     for k in range(len(self.trained[part]))
                     for which, norms, style in (("trained", self.trained, "-"),
                                                 ("initialisation", self.initial, "--"))]
            panels.append((f"dL/d{part}_t", lines))
        return flow_figure(panels, self.horizon, share=True)


@dataclasses.dataclass
class Gates:
    """``Model.gates``: every σ gate's value (an RNN: its tanh output) per layer, step and unit
    over the symbols ``read``."""

    read: str                  # the symbols read, one per step
    values: dict               # gate name -> (L, T, H)
    cell: str

    def saturation(self) -> dict:
        """gate name -> (left, right), each (L, H): ``saturation``."""
        return saturation(self.values, self.cell)


@dataclasses.dataclass
class Units:
    """``Model.units``: the hidden states over the symbols ``read`` and the units chosen."""

    read: str                  # the symbols read, one per step
    h: np.ndarray              # (L, T, H)
    chosen: list               # (layer, unit, why)

    def plot(self):
        """The chosen units over the text, one row each; a matplotlib Figure."""
        from .figures import units_figure

        return units_figure(self.read, self.h, self.chosen)


def layer_states(layer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """h (L, T, B, H) of every layer of the stacked one-direction ``layer`` (bptt.RNN, LSTM or
    GRU) after every step of x (T, B, I) from zero states, and c (L, T, B, H) for an LSTM (else
    None): each layer's time loop (the one its forward runs) over the layer below's states. No
    dropout (evaluation)."""
    if layer.bidirectional or layer.batch_first:
        raise ValueError("layer: expected a one-direction, time-major layer")
    T, B, _ = x.shape
    L, H, lstm = layer.num_layers, layer.hidden_size, layer.kind == "LSTM"
    h = np.empty((L, T, B, H), layer.dtype)
    c = np.empty((L, T, B, H), layer.dtype) if lstm else None
    inputs = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=layer.dtype)     # (T, I, B)
    zeros = np.zeros((H, B), layer.dtype)
    for k in range(L):
        scratch = lambda name, shape: np.empty(shape, layer.dtype)  # noqa: E731 (fresh arrays)
        run = layer._runner(k, 0)           # layer k's weights and its kind's time loop
        _, states, _ = run(inputs, (zeros, zeros) if lstm else (zeros,), scratch)
        outs = blocks.outputs(states[0], False)                                 # (T, H, B)
        h[k] = outs.transpose(0, 2, 1)
        if lstm:
            c[k] = blocks.outputs(states[1], False).transpose(0, 2, 1)
        inputs = np.ascontiguousarray(outs)                                    # (T, H, B)
    return h, c
