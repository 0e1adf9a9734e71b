"""``bptt inspect``: what a character model does with a passage, measured from its own forward and
backward passes. This module holds the measurements; ``inspect_page`` draws and writes the page.

Legend: T steps (characters read), L layers, H hidden units, V vocabulary size.

A passage of N characters is read as inputs x = passage[:-1] and targets y = passage[1:]
(T = N - 1), from a zero state, batch of one.

- ``gradient_flow``: the norm of dL/dh_t (and dL/dc_t for an LSTM) of every layer, for the loss
  at the last position only, from one engine backward with ``keep_state_grads=True`` (a ``dout``
  that is non-zero only at the last step). Indexed by distance back in time: entry s is step
  T-1-s. A report computes it on a float64 copy of the model (``in_float64``): in float32 a
  gradient that vanishes underflows to 0 (or float32's subnormal floor, 1e-45) within a few
  hundred steps.
- ``trace``: every layer's state after every step, from the engine run one character at a time
  (the final state of a one-step forward is each layer's h_t, c_t), and the gate activations,
  recomputed with the cells' own equations from those states (all steps as one batch).
- ``saturation``: per layer, gate and unit, the fraction of the steps with the gate < 0.1 (left)
  and > 0.9 (right); for an RNN the tanh output near -1 and 1 (< -0.9, > 0.9).
- ``expectations``: the probability the model gave each actual next character, and its top 5.
- ``pick_units``: units to show over the text (rule in its docstring).
"""

import dataclasses
import os

import numpy as np

from ..cells import gru, lstm, rnn
from ..nn.layers import GRU, LSTM, RNN
from ..nn.losses import cross_entropy, cross_entropy_backward
from ..text.data import CorpusError, Vocab, fingerprint, read_corpus, split
from ..text.lm import CharLM
from ..text.train import Config, initial_model

MAX_CHARS = 2000       # longest passage a report reads (the page shows every character)
DEFAULT_CHARS = 400    # characters of the validation text read by default
LOW, HIGH = 0.1, 0.9   # a σ gate below LOW is left-saturated, above HIGH right-saturated
TANH_EDGE = 0.9        # an RNN's tanh output beyond ±TANH_EDGE is saturated
GATE_NAMES = {"lstm": ("input i", "forget f", "output o"), "gru": ("reset r", "update z"),
              "rnn": ("tanh h",)}
N_UNITS = 6            # units shown over the text unless --units names them


class InspectError(ValueError):
    """A passage or option that cannot be used (the message names it)."""


# ------------------------------------------------------------------------------ the passage

def passage_ids(text: str, vocab: Vocab, what: str) -> np.ndarray:
    """(N,) ids of a passage; InspectError if it has fewer than 2 characters or characters outside
    the vocabulary (up to five of them named). Longer than MAX_CHARS is the caller's to cut."""
    if len(text) < 2:
        raise InspectError(f"{what}: expected at least 2 characters (one to read, one to "
                           f"predict), got {len(text)}")
    missing = vocab.missing(text)
    if missing:
        chars = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InspectError(f"{what}: not in the run's vocabulary: {chars}{more}")
    return vocab.encode(text)


def validation_text(meta: dict, length: int) -> str:
    """The first ``length`` characters of the run's held-out text (its corpus read again and
    split as ``bptt train`` split it). InspectError if the corpus cannot be read or changed."""
    cfg = Config(**meta["config"])
    try:
        text = read_corpus(cfg.corpus, skip=cfg.out, builtin=cfg.builtin, include=cfg.include)
    except CorpusError as err:
        raise InspectError(f"the run's corpus cannot be read ({err}); pass --text or --file"
                           ) from None
    if meta.get("corpus_sha256") not in (None, fingerprint(text)):
        raise InspectError("the run's corpus changed since it was trained; pass --text or --file")
    start = split(np.arange(len(text)), cfg.val_fraction)[1][0]    # where the held-out part starts
    return text[start : start + length]


def in_float64(model: CharLM) -> CharLM:
    """A float64 copy of ``model`` (same weights, cast exactly)."""
    if model.dtype == np.float64:
        return model
    copy = CharLM(model.vocab_size, model.cell, model.rnn.hidden_size, model.rnn.num_layers,
                  np.float64, embed=model.embed_dim)                # (no dropout)
    copy.load_state_dict(model.params)
    return copy


def initial_of(meta: dict, vocab: Vocab) -> CharLM:
    """The run's model at its initialisation: same config, same seed, as ``bptt train`` drew it."""
    cfg = Config(**meta["config"])
    return initial_model(cfg, vocab.size, np.random.default_rng(cfg.seed)).eval()


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


def trace(model: CharLM, ids: np.ndarray) -> Trace:
    """States of every layer after every step of reading ``ids[:-1]``, from the engine one step
    at a time, and the σ gates recomputed from them (see the module docstring)."""
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
    top: np.ndarray            # (T, 5) ids of the five most likely, most likely first
    loss: float                # mean cross-entropy over the passage, nats per character


def expectations(model: CharLM, ids: np.ndarray) -> Expectations:
    """What the model expected at each position of ``ids`` (N,), reading from a zero state."""
    logits, _ = model.forward(ids[:-1, None])                                # (T, V)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    actual = p[np.arange(len(p)), ids[1:]]
    top = np.argsort(-p, axis=1, kind="stable")[:, :5]
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


def parse_units(spec: str, L: int, H: int) -> list[tuple[int, int]]:
    """``--units`` "LAYER:UNIT,..." (or "UNIT" for the top layer), layers and units from 0."""
    units = []
    for part in spec.split(","):
        part = part.strip()
        try:
            k, u = part.split(":") if ":" in part else (L - 1, part)
            k, u = int(k), int(u)
        except ValueError:
            raise InspectError(f"--units: expected LAYER:UNIT or UNIT, comma-separated, got "
                               f"{part!r}") from None
        if not (0 <= k < L and 0 <= u < H):
            raise InspectError(f"--units: {part!r} out of range: layers 0..{L - 1}, units "
                               f"0..{H - 1}")
        units.append((k, u))
    return units


# ------------------------------------------------------------------------------ fresh cells

def fresh_cells(hidden: int, steps: int, seed: int, layers: int = 1) -> dict[str, dict]:
    """The gradient flow of freshly initialised RNN, GRU and LSTM layers (``hidden`` units,
    torch's initialisation from ``seed``, input size = hidden) on one random sequence of
    ``steps`` steps (standard normal inputs, the same for all three), for the loss
    L = w . h_T with w a random unit vector. Returns kind -> ``flow_norms``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((steps, 1, hidden))
    w = rng.standard_normal(hidden)
    w /= np.linalg.norm(w)
    result = {}
    for cls in (RNN, GRU, LSTM):
        layer = cls(hidden, hidden, num_layers=layers, dtype=np.float64, seed=seed)
        result[cls.kind] = flow_norms(last_loss_state_grads(layer, X, w))
    return result


def cut(text: str, what: str, log) -> str:
    """``text`` cut to MAX_CHARS characters, saying so through ``log``."""
    if len(text) > MAX_CHARS:
        log(f"{what}: {len(text)} characters; the report reads the first {MAX_CHARS} (its limit)")
        return text[:MAX_CHARS]
    return text


def read_file(path: str) -> str:
    """The UTF-8 text of --file; InspectError naming the problem."""
    if not os.path.isfile(path):
        raise InspectError(f"--file {path}: no such file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        return raw.decode("utf-8")
    except OSError as err:
        raise InspectError(f"--file {path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise InspectError(f"--file {path}: not UTF-8 text (offset {err.start})") from None
