"""Converters between the course's parameter dicts (``bptt.stepwise``) and the engine's state_dict
(``bptt.RNN`` / ``bptt.LSTM`` with one layer and one direction, names as torch's).

The layouts differ too: the course's x is (n_x, m, T_x) and a0 is (n_a, m); the engine's x is
(T, B, I) and h0 is (1, B, H). ``x.transpose(2, 1, 0)`` turns one into the other (both ways), and
``a0.T[None]`` gives h0.

The output head (``Wya, by`` for the RNN, ``Wy, by`` for the LSTM) has no counterpart in the engine
layers, which return the hidden states only. ``*_to_state_dict`` therefore returns it separately,
as a dict ``head`` (empty when the parameters have none), and ``*_from_state_dict`` takes it
back as an optional argument.

RNN: ``Wax`` = weight_ih_l0, ``Waa`` = weight_hh_l0; the course has one bias where torch has two,
so ``ba`` goes to bias_ih_l0 with bias_hh_l0 zeros, and comes back as ``ba = bias_ih + bias_hh``.
LSTM: ``Wf, Wi, Wc, Wo`` (n_a, n_a + n_x) act on [a_prev; xt]: their first n_a columns are the
hidden part (a block of weight_hh_l0), the rest the input part (a block of weight_ih_l0); the
blocks are stacked in torch's gate order i, f, g (the course's c), o. Biases as for the RNN.

Gradients: since the course's bias is the sum of torch's two, dL/dba = dL/dbias_ih = dL/dbias_hh;
``*_grads_from_state_dict`` turn the engine's ``layer.grads`` into the course's "d" + name keys.

A whole character model: ``from_run(run_dir)`` turns a one-layer ``bptt train`` run (cell rnn or
lstm) into the course's parameter dict with its output head, plus its characters, and
``to_model(parameters, chars)`` turns such a dict (for example one trained with
``bptt.stepwise.optimize``) into the engine's character model, ready for
``bptt.text.lm.sample``.
"""

from collections.abc import Mapping

import numpy as np

from .stepwise import LSTM_GATES, rnn_bias_key

_ENGINE_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _get(d: Mapping, key: str, what: str, shape: tuple | None = None) -> np.ndarray:
    if not isinstance(d, Mapping):
        raise TypeError(f"{what}: expected a dict of arrays, got {type(d).__name__}")
    if key not in d:
        raise ValueError(f"{what}: missing key {key!r}")
    a = np.asarray(d[key])
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{key}: expected a real array, got dtype {a.dtype}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{key}: expected shape {tuple(shape)}, got {a.shape}")
    return a


def _engine(state_dict: Mapping, gates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """weight_ih (G*H, I), weight_hh (G*H, H) and the summed bias (G*H,) of a one-layer,
    one-direction engine state_dict (a bias-free layer's bias is zeros)."""
    W_hh = _get(state_dict, "weight_hh_l0", "state_dict")
    for key in state_dict:
        if key not in _ENGINE_KEYS:
            raise ValueError(f"state_dict: unexpected key {key!r} (the course's cells have one "
                             f"layer, one direction and no projection)")
    if W_hh.ndim != 2 or W_hh.shape[0] != gates * W_hh.shape[1]:
        raise ValueError(f"weight_hh_l0: expected shape ({gates}*H, H), got {W_hh.shape}")
    GH = W_hh.shape[0]
    W_ih = _get(state_dict, "weight_ih_l0", "state_dict")
    if W_ih.ndim != 2 or W_ih.shape[0] != GH:
        raise ValueError(f"weight_ih_l0: expected shape ({GH}, I), got {W_ih.shape}")
    if "bias_ih_l0" not in state_dict and "bias_hh_l0" not in state_dict:
        return W_ih, W_hh, np.zeros(GH, dtype=np.result_type(W_ih, W_hh))
    b = _get(state_dict, "bias_ih_l0", "state_dict", (GH,)) \
        + _get(state_dict, "bias_hh_l0", "state_dict", (GH,))
    return W_ih, W_hh, b


def _head(parameters: Mapping, weight: str, n_a: int) -> dict:
    """The output head {weight, "by"} copied out of ``parameters`` ({} when it has none)."""
    if weight not in parameters and "by" not in parameters:
        return {}
    Wy = _get(parameters, weight, "parameters")
    if Wy.ndim != 2 or Wy.shape[1] != n_a:
        raise ValueError(f"{weight}: expected shape (n_y, n_a) = (n_y, {n_a}), got {Wy.shape}")
    by = _get(parameters, "by", "parameters", (Wy.shape[0], 1))
    return {weight: Wy.copy(), "by": by.copy()}


def _with_head(params: dict, head: Mapping | None, weight: str, n_a: int) -> dict:
    if head is not None:
        _get(head, weight, "head")
        params.update(_head(head, weight, n_a))
    return params


# ------------------------------------------------------------------------------------- RNN

def rnn_to_state_dict(parameters: Mapping) -> tuple[dict, dict]:
    """Course RNN parameters -> (state_dict for ``bptt.RNN(n_x, n_a)``, head {"Wya", "by"}).

    parameters: Wax (n_a, n_x), Waa (n_a, n_a), ba (n_a, 1) (or ``b``, the dinosaur exercise's
    name: ``bptt.stepwise.rnn_bias_key``), optionally Wya (n_y, n_a), by (n_y, 1).
    The state_dict has weight_ih_l0 (n_a, n_x), weight_hh_l0 (n_a, n_a), bias_ih_l0 = ba (n_a,),
    bias_hh_l0 = zeros; all arrays are copies.
    """
    Waa = _get(parameters, "Waa", "parameters")
    n_a = Waa.shape[0] if Waa.ndim == 2 else -1
    if Waa.shape != (n_a, n_a):
        raise ValueError(f"Waa: expected shape (n_a, n_a), got {Waa.shape}")
    Wax = _get(parameters, "Wax", "parameters")
    if Wax.ndim != 2 or Wax.shape[0] != n_a:
        raise ValueError(f"Wax: expected shape (n_a, n_x) = ({n_a}, n_x), got {Wax.shape}")
    ba = _get(parameters, rnn_bias_key(parameters), "parameters", (n_a, 1))
    state = {"weight_ih_l0": Wax.copy(), "weight_hh_l0": Waa.copy(),
             "bias_ih_l0": ba[:, 0].copy(), "bias_hh_l0": np.zeros_like(ba[:, 0])}
    return state, _head(parameters, "Wya", n_a)


def rnn_from_state_dict(state_dict: Mapping, head: Mapping | None = None) -> dict:
    """Engine state_dict (of ``bptt.RNN(n_x, n_a)``) -> course parameters Wax, Waa, ba
    (ba = bias_ih_l0 + bias_hh_l0), plus Wya, by from ``head`` when given. Arrays are copies."""
    W_ih, W_hh, b = _engine(state_dict, 1)
    params = {"Wax": W_ih.copy(), "Waa": W_hh.copy(), "ba": b[:, None].copy()}
    return _with_head(params, head, "Wya", W_hh.shape[1])


def rnn_grads_from_state_dict(grads: Mapping) -> dict:
    """Engine gradients (``bptt.RNN.grads``) -> dWax, dWaa, dba (dba = d bias_ih = d bias_hh)."""
    W_ih = _get(grads, "weight_ih_l0", "grads")
    W_hh = _get(grads, "weight_hh_l0", "grads")
    return {"dWax": W_ih.copy(), "dWaa": W_hh.copy(),
            "dba": _get(grads, "bias_ih_l0", "grads", (W_hh.shape[0],))[:, None].copy()}


# ------------------------------------------------------------------------------------ LSTM

def _lstm_blocks(n_a: int) -> dict:
    """Course gate name -> its rows in torch's (4 n_a, .) matrices."""
    return {g: slice(k * n_a, (k + 1) * n_a) for k, g in enumerate(LSTM_GATES)}


def lstm_to_state_dict(parameters: Mapping) -> tuple[dict, dict]:
    """Course LSTM parameters -> (state_dict for ``bptt.LSTM(n_x, n_a)``, head {"Wy", "by"}).

    parameters: Wf, Wi, Wc, Wo (n_a, n_a + n_x) on [a_prev; xt]; bf, bi, bc, bo (n_a, 1); optionally
    Wy (n_y, n_a), by (n_y, 1). The state_dict has weight_ih_l0 (4 n_a, n_x), weight_hh_l0
    (4 n_a, n_a), bias_ih_l0 (4 n_a,) in gate order i, f, g, o, and bias_hh_l0 zeros.
    """
    Wf = _get(parameters, "Wf", "parameters")
    if Wf.ndim != 2 or Wf.shape[1] <= Wf.shape[0]:
        raise ValueError(f"Wf: expected shape (n_a, n_a + n_x), got {Wf.shape}")
    n_a = Wf.shape[0]
    Ws = [_get(parameters, "W" + g, "parameters", Wf.shape) for g in LSTM_GATES]
    bs = [_get(parameters, "b" + g, "parameters", (n_a, 1))[:, 0] for g in LSTM_GATES]
    b = np.concatenate(bs)
    state = {"weight_ih_l0": np.concatenate([W[:, n_a:] for W in Ws]),
             "weight_hh_l0": np.concatenate([W[:, :n_a] for W in Ws]),
             "bias_ih_l0": b, "bias_hh_l0": np.zeros_like(b)}
    return state, _head(parameters, "Wy", n_a)


def lstm_from_state_dict(state_dict: Mapping, head: Mapping | None = None) -> dict:
    """Engine state_dict (of ``bptt.LSTM(n_x, n_a)``) -> course parameters Wf, bf, Wi, bi, Wc, bc,
    Wo, bo (each W = [hidden block | input block], each b = bias_ih + bias_hh block), plus Wy, by
    from ``head`` when given. Arrays are copies."""
    W_ih, W_hh, b = _engine(state_dict, 4)
    n_a = W_hh.shape[1]
    params = {}
    for g, rows in _lstm_blocks(n_a).items():
        params["W" + g] = np.concatenate([W_hh[rows], W_ih[rows]], axis=1)
        params["b" + g] = b[rows, None].copy()
    return _with_head(params, head, "Wy", n_a)


def lstm_grads_from_state_dict(grads: Mapping) -> dict:
    """Engine gradients (``bptt.LSTM.grads``) -> dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo."""
    W_hh = _get(grads, "weight_hh_l0", "grads")
    W_ih = _get(grads, "weight_ih_l0", "grads")
    b = _get(grads, "bias_ih_l0", "grads", (W_hh.shape[0],))
    out = {}
    for g, rows in _lstm_blocks(W_hh.shape[1]).items():
        out["dW" + g] = np.concatenate([W_hh[rows], W_ih[rows]], axis=1)
        out["db" + g] = b[rows, None].copy()
    return out


# ------------------------------------------------------- a `bptt train` run <-> course parameters

_KINDS = {"rnn": ("Wax", "Wya"), "lstm": ("Wf", "Wy")}     # cell -> (its first weight, head)


def from_run(path: str) -> tuple[dict, str]:
    """The model of a ``bptt train`` run in the course's notation: ``(parameters, chars)``.

    path: the run folder or its checkpoint file. The run must have one layer (``--layers 1``)
    and ``--cell rnn`` (parameters Wax, Waa, ba, Wya, by) or ``lstm`` (Wf, bf, Wi, bi, Wc, bc,
    Wo, bo, Wy, by); n_x = n_y = len(chars), and row i of the input and output is the character
    ``chars[i]``, so ``char_to_ix = {c: i for i, c in enumerate(chars)}``. The arrays are copies
    in the run's dtype. The engine's GRU is torch's, not the lecture's GRU of ``bptt.stepwise``,
    so a GRU run raises ValueError, as do deeper runs; an unreadable checkpoint raises
    ``CheckpointError`` (a ValueError).
    """
    from .text.train import load_model  # imported here: only these two functions need text/

    model, vocab, meta = load_model(str(path))
    cfg = meta["config"]
    if cfg["cell"] not in _KINDS:
        raise ValueError(f"{path}: a {cfg['cell']} run; the course notation covers rnn and lstm "
                         f"(the engine's GRU is torch's, not the lecture's GRU of "
                         f"bptt.stepwise.gru_forward)")
    if cfg["layers"] != 1:
        raise ValueError(f"{path}: a {cfg['layers']}-layer run; the course's cells have one layer "
                         f"(train with --layers 1)")
    state = {k.split(".", 1)[1]: v for k, v in model.state_dict().items() if k.startswith("rnn.")}
    head = {_KINDS[cfg["cell"]][1]: model.head.params["weight"].copy(),
            "by": model.head.params["bias"][:, None].copy()}
    back = rnn_from_state_dict if cfg["cell"] == "rnn" else lstm_from_state_dict
    return back(state, head), vocab.chars


def to_model(parameters: Mapping, chars):
    """Course parameters (RNN: Wax, Waa, ba or b, Wya, by; LSTM: Wf, ..., Wy, by) and their
    characters -> ``(model, vocab)``: the engine's one-layer character model
    (``bptt.text.lm.CharLM``) with these weights, and its vocabulary, as ``bptt train`` builds
    them. ``bptt.text.lm.sample(model, vocab, 200)`` then draws text from it.

    chars: the characters of rows 0..n_x-1 (a str or list), distinct and sorted by code point
    as ``bptt train`` orders a vocabulary. The model's dtype is float32 if every parameter is,
    else float64.
    """
    from .text.data import Vocab
    from .text.lm import CharLM

    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters: expected a dict of arrays, got {type(parameters).__name__}")
    kinds = [k for k, (first, _) in _KINDS.items() if first in parameters]
    if len(kinds) != 1:
        raise ValueError("parameters: expected a course RNN (Wax, Waa, ba, Wya, by) or LSTM "
                         "(Wf, bf, ..., Wy, by)")
    kind = kinds[0]
    state, head = (rnn_to_state_dict if kind == "rnn" else lstm_to_state_dict)(parameters)
    if not head:
        raise ValueError(f"parameters: missing the output head {_KINDS[kind][1]!r}, 'by'")
    vocab = Vocab("".join(chars) if not isinstance(chars, str) else chars)
    W_ih, Wy = state["weight_ih_l0"], head[_KINDS[kind][1]]
    if W_ih.shape[1] != vocab.size or Wy.shape[0] != vocab.size:
        raise ValueError(f"chars: expected one character per input and output row, "
                         f"{W_ih.shape[1]} and {Wy.shape[0]}, got {vocab.size}")
    f32 = all(np.asarray(v).dtype == np.float32 for v in parameters.values())
    dtype = np.float32 if f32 else np.float64
    model = CharLM(vocab.size, kind, state["weight_hh_l0"].shape[1], 1, dtype)
    model.load_state_dict({**{"rnn." + k: v for k, v in state.items()},
                           "head.weight": Wy, "head.bias": head["by"][:, 0]})
    return model, vocab
