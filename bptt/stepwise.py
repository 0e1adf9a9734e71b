"""The step-by-step API in the notation of the course the project started from.

Layout: features first, then batch, then time. Legend: n_x input size, n_a hidden size, n_y output
size, m batch, T_x steps.

    x (n_x, m, T_x)   a0 (n_a, m)   xt (n_x, m)   a_prev, c_prev (n_a, m)

Sections: the RNN, the LSTM, the lecture's GRU (reset gate before the product, not the engine's
torch GRU), Adam, and the course's dinosaur-names exercise (initialize_parameters, clip, sample,
optimize).

This module is a thin adapter. It checks the arguments, converts the names (the course's
``Wf, Wi, Wc, Wo`` become the cell's gate blocks i, f, g, o, stacked as (4, n_a, m)), and calls the
same cell code as the engine, which works features first like the course: no gate equation is
written here (the lecture's GRU has its own in bptt/cells/gru.py). Every function returns what the
course's returns, with the same cache layouts and dict keys (see docs/stepwise.md).

How the sizes are read: ``x`` (or ``xt``) fixes n_x and m, the recurrent weight (``Waa``; ``Wf``
for the LSTM, ``Wu`` for the GRU) fixes n_a by its rows, the output weight (``Wya``; ``Wy``) fixes
n_y; everything else is checked against those, and a mismatch raises ValueError naming the key,
the shape expected and the shape got. An x whose first axis does not fit the weights but that
fits them transposed (torch's (T_x, m, n_x), Keras's (m, T_x, n_x), (m, n_x, T_x)) is named as a
layout error with the transpose that fixes it. The arithmetic is float64 unless every input is
float32.
"""

from collections.abc import Mapping

import numpy as np

from ._checks import FLOAT_DTYPES, as_array, check_shape, positive_int
from .cells import activations, gru, lstm, rnn
from .nn.optim import adam_update

# The course's names of the LSTM gate blocks, in the cell's order i, f, g, o (torch's too);
# the course calls the candidate g "c" (cct).
LSTM_GATES = ("i", "f", "c", "o")


# ------------------------------------------------------------------------------------ checks

def _dtype(*values) -> np.dtype:
    """float32 when every given array is float32, else float64 (the course's default)."""
    if all(getattr(v, "dtype", None) == np.float32 for v in values):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _array(name: str, value, dtype: np.dtype, legend: str, shape: tuple) -> np.ndarray:
    """``value`` as an array of ``dtype`` with ``shape`` (None: any size), else ValueError/TypeError
    ``name: expected shape (n_a, m) = (5, 10), got (5, 7)``."""
    a = as_array(name, value, dtype, ndim=len(shape) if None in shape else None, what=legend)
    want = tuple(a.shape[k] if n is None else n for k, n in enumerate(shape))
    if a.shape != want:
        raise ValueError(f"{name}: expected shape {legend} = {want}, got {a.shape}")
    return a


def _mapping(name: str, value) -> Mapping:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a dict of arrays, got {type(value).__name__}")
    return value


def _param(parameters: Mapping, name: str, dtype: np.dtype, legend: str,
           shape: tuple) -> np.ndarray:
    if name not in parameters:
        raise ValueError(f"parameters: missing key {name!r} (expected an array of shape {legend})")
    return _array(name, parameters[name], dtype, legend, shape)


# Layouts a learner may bring from torch or Keras, and the transpose that turns each into the
# course's (n_x, m, T_x): x.transpose(perm).
_OTHER_LAYOUTS = (("(T_x, m, n_x)", "torch's", (2, 1, 0)), ("(m, T_x, n_x)", "Keras's", (2, 0, 1)),
                  ("(m, n_x, T_x)", "", (1, 0, 2)), ("(T_x, n_x, m)", "", (1, 2, 0)))


def _expected_n_x(parameters, weight: str, stacked: bool) -> int | None:
    """n_x as the parameters fix it: the columns of ``weight`` (Wax), or its columns minus its rows
    when it acts on [a_prev; xt] (Wf, Wu). None when the parameters cannot say."""
    shape = np.shape(parameters.get(weight)) if isinstance(parameters, Mapping) else ()
    if len(shape) != 2:
        return None
    n_x = shape[1] - shape[0] if stacked else shape[1]
    return n_x if n_x > 0 else None


def _layout_error(name: str, shape: tuple, n_x: int, m: int | None,
                  source: str) -> ValueError | None:
    """For an ``x`` whose first axis is not n_x but that fits n_x (and m) when transposed: the
    error naming the layout it seems to have and the transpose. None when no transpose fits (then
    the weights are what the later checks blame)."""
    legend = "(n_x, m, T_x)" if len(shape) == 3 else "(n_x, m)"
    msg = (f"{name}: expected the layout {legend} (features first) with n_x = {n_x} ({source}), "
           f"got shape {shape}")
    if len(shape) == 2:
        if shape[1] == n_x and (m is None or shape[0] == m):
            return ValueError(f"{msg}; it looks like (m, n_x): pass {name}.T")
        return None
    for layout, whose, perm in _OTHER_LAYOUTS:
        got = tuple(shape[k] for k in perm)
        if got[0] == n_x and (m is None or got[1] == m):
            whose = f", {whose} layout" if whose else ""
            return ValueError(f"{msg}; it looks like {layout}{whose}: pass "
                              f"{name}.transpose{perm}, of shape {got}")
    return None


def _input(name: str, value, dtype: np.dtype, ndim: int, n_x: int | None = None,
           m: int | None = None, source: str = "") -> np.ndarray:
    """x (n_x, m, T_x) or xt (n_x, m), with at least one example (and one step). ``n_x`` (from
    ``source``, the parameters) and ``m`` (from a0), when known, tell a transposed x apart."""
    legend = "(n_x, m, T_x)" if ndim == 3 else "(n_x, m)"
    a = as_array(name, value, dtype, ndim=ndim, what=legend)
    if n_x is not None and a.shape[0] != n_x:
        err = _layout_error(name, a.shape, n_x, m, source)
        if err is not None:
            raise err
    if 0 in a.shape[1:]:
        raise ValueError(f"{name}: expected at least one example and one step {legend}, "
                         f"got shape {a.shape}")
    return a


def _batch(state) -> int | None:
    """m as a0 or a_prev says it (None when it is not a 2-D array)."""
    shape = np.shape(state)
    return shape[1] if len(shape) == 2 else None


def _rnn_weights(parameters, n_x: int, dtype: np.dtype, head: bool = True) -> dict:
    """Checked RNN parameters in ``dtype``: Wax, Waa, ba (and Wya, by when ``head``)."""
    _mapping("parameters", parameters)
    Waa = _param(parameters, "Waa", dtype, "(n_a, n_a)", (None, None))
    n_a = Waa.shape[0]
    w = {"Waa": _array("Waa", Waa, dtype, "(n_a, n_a)", (n_a, n_a)),
         "Wax": _param(parameters, "Wax", dtype, "(n_a, n_x)", (n_a, n_x)),
         "ba": _param(parameters, "ba", dtype, "(n_a, 1)", (n_a, 1))}
    if head:
        w["Wya"] = _param(parameters, "Wya", dtype, "(n_y, n_a)", (None, n_a))
        w["by"] = _param(parameters, "by", dtype, "(n_y, 1)", (w["Wya"].shape[0], 1))
    return w


def _lstm_weights(parameters, n_x: int, dtype: np.dtype, head: bool = True) -> dict:
    """Checked LSTM parameters in ``dtype``, the four gates stacked in the cell's order:
    W (4 n_a, n_a + n_x) acting on [a_prev; xt], b (4 n_a, 1); and Wy, by when ``head``."""
    _mapping("parameters", parameters)
    n_a = _param(parameters, "Wf", dtype, "(n_a, n_a + n_x)", (None, None)).shape[0]
    Ws, bs = [], []
    for g in LSTM_GATES:
        Ws.append(_param(parameters, "W" + g, dtype, "(n_a, n_a + n_x)", (n_a, n_a + n_x)))
        bs.append(_param(parameters, "b" + g, dtype, "(n_a, 1)", (n_a, 1)))
    w = {"W": np.concatenate(Ws), "b": np.concatenate(bs), "n_a": n_a}
    if head:
        w["Wy"] = _param(parameters, "Wy", dtype, "(n_y, n_a)", (None, n_a))
        w["by"] = _param(parameters, "by", dtype, "(n_y, 1)", (w["Wy"].shape[0], 1))
    return w


def _state(name: str, value, dtype: np.dtype, n_a: int, m: int) -> np.ndarray:
    """a0, a_prev, c_prev, da_next, ...: (n_a, m), naming a batch that differs from x's."""
    a = as_array(name, value, dtype, ndim=2, what="(n_a, m)")
    if a.shape[0] == n_a and a.shape[1] != m:
        raise ValueError(f"{name}: expected shape (n_a, m) = {(n_a, m)}, got {a.shape} "
                         f"(its batch {a.shape[1]} differs from the input's batch {m})")
    return _array(name, a, dtype, "(n_a, m)", (n_a, m))


def _cache(cache, length: int, origin: str) -> tuple:
    if not isinstance(cache, (tuple, list)) or len(cache) != length:
        raise TypeError(f"cache: expected the {length}-tuple returned by {origin}, "
                        f"got {type(cache).__name__}")
    return tuple(cache)


def _caches(caches, length: int, origin: str) -> tuple[list, np.ndarray]:
    """(list of cell caches, x) from a sequence forward."""
    if not isinstance(caches, (tuple, list)) or len(caches) != 2:
        raise TypeError(f"caches: expected the pair (list of cell caches, x) returned by {origin}, "
                        f"got {type(caches).__name__}")
    cells, x = caches[0], np.asarray(caches[1])
    if not isinstance(cells, (tuple, list)):
        raise TypeError(f"caches[0]: expected the list of cell caches from {origin}, "
                        f"got {type(cells).__name__}")
    if x.ndim != 3 or not 0 < len(cells) == x.shape[2]:
        raise ValueError(f"caches: expected one cell cache per step of x, got {len(cells)} "
                         f"for x of shape {x.shape}")
    return [_cache(c, length, origin) for c in cells], x


# ----------------------------------------------------------------------------- activations

def softmax(x) -> np.ndarray:
    """Softmax over axis 0 (each column sums to 1), stable for large inputs: each column's maximum
    is subtracted first, so exp never overflows."""
    x = np.asarray(x)
    with np.errstate(over="ignore"):       # x - max <= 0 can only overflow to -inf, and exp -> 0
        e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def sigmoid(x) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)), element-wise: the cells' own (no overflow at ±1000)."""
    out = activations.sigmoid(np.asarray(x))
    return out[()] if out.ndim == 0 else out


# ------------------------------------------------------------------------------------- RNN

def _rnn_step(xt, a_prev, w):
    """One step on checked arrays: xt (n_x, m), a_prev (n_a, m) -> a_next (n_a, m), yt (n_y, m)."""
    z = w["Wax"] @ xt                              # (n_a, m): the pre-activation
    z += w["Waa"] @ a_prev
    z += w["ba"]
    a_next = rnn.forward(z, z)                     # in place: z becomes tanh(z)
    return a_next, softmax(w["Wya"] @ a_next + w["by"])


def _rnn_step_backward(da_next, a_next, a_prev, xt, w) -> dict:
    """One step's gradients; da_next (n_a, m) is the total dL/da_next."""
    factor = rnn.backward_factor(a_next)           # (n_a, m): 1 - a_next²
    dz = rnn.backward(da_next, factor, np.empty_like(factor))      # (n_a, m): dL/dz
    return {"dxt": w["Wax"].T @ dz, "da_prev": w["Waa"].T @ dz,
            "dWax": dz @ xt.T, "dWaa": dz @ a_prev.T, "dba": dz.sum(axis=1, keepdims=True)}


def rnn_cell_forward(xt, a_prev, parameters: dict):
    """One RNN step: ``a_next = tanh(Wax xt + Waa a_prev + ba)``,
    ``yt_pred = softmax(Wya a_next + by)``.

    xt: (n_x, m); a_prev: (n_a, m); parameters: Wax (n_a, n_x), Waa (n_a, n_a), ba (n_a, 1),
    Wya (n_y, n_a), by (n_y, 1). Returns a_next (n_a, m), yt_pred (n_y, m) and
    cache = (a_next, a_prev, xt, parameters), with the caller's own ``parameters``.
    """
    dt = _dtype(xt, a_prev, *_mapping("parameters", parameters).values())
    xt = _input("xt", xt, dt, 2, _expected_n_x(parameters, "Wax", False), _batch(a_prev),
                "the columns of Wax")
    w = _rnn_weights(parameters, xt.shape[0], dt)
    a_prev = _state("a_prev", a_prev, dt, w["Waa"].shape[0], xt.shape[1])
    a_next, yt_pred = _rnn_step(xt, a_prev, w)
    return a_next, yt_pred, (a_next, a_prev, xt, parameters)


def rnn_forward(x, a0, parameters: dict):
    """The RNN over a sequence.

    x: (n_x, m, T_x); a0: (n_a, m). Returns a (n_a, m, T_x), y_pred (n_y, m, T_x) and
    caches = (list of T_x cell caches, x).
    """
    dt = _dtype(x, a0, *_mapping("parameters", parameters).values())
    x = _input("x", x, dt, 3, _expected_n_x(parameters, "Wax", False), _batch(a0),
               "the columns of Wax")
    n_x, m, T_x = x.shape
    w = _rnn_weights(parameters, n_x, dt)
    n_a, n_y = w["Waa"].shape[0], w["Wya"].shape[0]
    a_next = _state("a0", a0, dt, n_a, m)
    a = np.empty((n_a, m, T_x), dtype=dt)
    y_pred = np.empty((n_y, m, T_x), dtype=dt)
    cells = []
    for t in range(T_x):
        a_prev, xt = a_next, x[:, :, t]
        a_next, y_pred[:, :, t] = _rnn_step(xt, a_prev, w)
        a[:, :, t] = a_next
        cells.append((a_next, a_prev, xt, parameters))
    return a, y_pred, (cells, x)


def rnn_cell_backward(da_next, cache) -> dict:
    """Backward of one RNN step.

    da_next: (n_a, m) gradient of the loss with respect to a_next; cache: from rnn_cell_forward.
    Returns dxt (n_x, m), da_prev (n_a, m), dWax (n_a, n_x), dWaa (n_a, n_a), dba (n_a, 1).
    """
    a_next, a_prev, xt, parameters = _cache(cache, 4, "rnn_cell_forward")
    dt = _dtype(da_next, a_next, a_prev, xt, *_mapping("parameters", parameters).values())
    xt = _input("xt", xt, dt, 2)
    w = _rnn_weights(parameters, xt.shape[0], dt, head=False)
    n_a, m = w["Waa"].shape[0], xt.shape[1]
    a_next, a_prev = (_state(n, v, dt, n_a, m) for n, v in (("a_next", a_next), ("a_prev", a_prev)))
    return _rnn_step_backward(_state("da_next", da_next, dt, n_a, m), a_next, a_prev, xt, w)


def rnn_backward(da, caches) -> dict:
    """Backward through the whole sequence.

    da: (n_a, m, T_x) gradient of the loss with respect to each hidden state a[:, :, t] (from the
    outputs only; the recurrent part flowing back from step t+1 is added here).
    caches: from rnn_forward. Returns dx (n_x, m, T_x), da0 (n_a, m), dWax, dWaa, dba.
    """
    cells, x = _caches(caches, 4, "rnn_forward")
    parameters = cells[0][3]
    dt = _dtype(da, x, *_mapping("parameters", parameters).values())
    n_x, m, T_x = x.shape
    w = _rnn_weights(parameters, n_x, dt, head=False)
    n_a = w["Waa"].shape[0]
    da = _array("da", da, dt, "(n_a, m, T_x)", (n_a, m, T_x))
    dx = np.empty((n_x, m, T_x), dtype=dt)
    grads = {k: np.zeros_like(w[k[1:]]) for k in ("dWax", "dWaa", "dba")}
    da_prevt = np.zeros((n_a, m), dtype=dt)
    for t in reversed(range(T_x)):
        a_next, a_prev, xt, _ = cells[t]
        g = _rnn_step_backward(da[:, :, t] + da_prevt, a_next, a_prev, xt, w)
        dx[:, :, t], da_prevt = g["dxt"], g["da_prev"]
        for k in grads:
            grads[k] += g[k]
    return {"dx": dx, "da0": da_prevt, **grads}


# ------------------------------------------------------------------------------------ LSTM

def _lstm_step(xt, a_prev, c_prev, w):
    """One step on checked arrays. Returns a_next, c_next, yt_pred and the gates ft, it, cct, ot."""
    n_a, m = a_prev.shape
    concat = np.concatenate([a_prev, xt])          # (n_a + n_x, m): [a_prev; xt]
    z = w["W"] @ concat + w["b"]                   # (4 n_a, m)
    acts = z.reshape(4, n_a, m)                    # (4, n_a, m): blocks i, f, g, o
    c_next, tanh_c, a_next = (np.empty((n_a, m), dtype=z.dtype) for _ in range(3))
    lstm.forward(acts, c_prev, c_next, tanh_c, a_next)             # acts now hold the gates
    it, ft, cct, ot = acts
    return a_next, c_next, softmax(w["Wy"] @ a_next + w["by"]), (ft, it, cct, ot)


def _lstm_step_backward(da_next, dc_next, cache, w) -> dict:
    """One step's gradients from checked arrays; the gate blocks come back stacked (4 n_a, .)."""
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt = cache
    n_a, m = a_prev.shape
    acts = np.stack([it, ft, cct, ot])             # (4, n_a, m): i, f, g, o
    # The course's cache holds c_next but not tanh(c_next): recompute it (same value as forward).
    tanh_c = np.tanh(c_next)                       # (n_a, m)
    F = lstm.backward_factors(acts, c_prev, tanh_c)                # (5, n_a, m)
    dh = np.array(da_next, order="C")              # copies: lstm.backward overwrites dh and
    dc = np.array(dc_next, order="C")              # turns dc into dL/dc_prev in place
    dz = np.empty((4, n_a, m), dtype=dh.dtype)
    lstm.backward(dh, dc, F, acts[1], dz)          # dz: dL/d(pre-activations), (4, n_a, m)
    dz2 = dz.reshape(4 * n_a, m)
    dconcat = w["W"].T @ dz2                       # (n_a + n_x, m)
    return {"dxt": dconcat[n_a:], "da_prev": dconcat[:n_a], "dc_prev": dc,
            "dW": dz2 @ np.concatenate([a_prev, xt]).T,            # (4 n_a, n_a + n_x)
            "db": dz2.sum(axis=1, keepdims=True)}                   # (4 n_a, 1)


def _split_gates(dW, db, n_a: int) -> dict:
    """Stacked (4 n_a, .) gradients -> dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo."""
    out = {}
    for g in ("f", "i", "c", "o"):                 # the course's order of the keys
        k = LSTM_GATES.index(g)
        out["dW" + g], out["db" + g] = dW[k * n_a:(k + 1) * n_a], db[k * n_a:(k + 1) * n_a]
    return out


def lstm_cell_forward(xt, a_prev, c_prev, parameters: dict):
    """One LSTM step: ``ft, it, ot = σ(W·[a_prev; xt] + b)``, ``cct = tanh(Wc·[a_prev; xt] + bc)``,
    ``c_next = ft*c_prev + it*cct``, ``a_next = ot*tanh(c_next)``,
    ``yt_pred = softmax(Wy a_next + by)``.

    xt: (n_x, m); a_prev, c_prev: (n_a, m); parameters: Wf, Wi, Wc, Wo (n_a, n_a + n_x),
    bf, bi, bc, bo (n_a, 1), Wy (n_y, n_a), by (n_y, 1). Returns a_next, c_next (n_a, m),
    yt_pred (n_y, m), cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters).
    """
    dt = _dtype(xt, a_prev, c_prev, *_mapping("parameters", parameters).values())
    xt = _input("xt", xt, dt, 2, _expected_n_x(parameters, "Wf", True), _batch(a_prev),
                "the columns of Wf minus its rows")
    w = _lstm_weights(parameters, xt.shape[0], dt)
    a_prev = _state("a_prev", a_prev, dt, w["n_a"], xt.shape[1])
    c_prev = _state("c_prev", c_prev, dt, w["n_a"], xt.shape[1])
    a_next, c_next, yt_pred, gates = _lstm_step(xt, a_prev, c_prev, w)
    return a_next, c_next, yt_pred, (a_next, c_next, a_prev, c_prev, *gates, xt, parameters)


def lstm_forward(x, a0, parameters: dict):
    """The LSTM over a sequence, starting from a0 and c0 = zeros.

    x: (n_x, m, T_x); a0: (n_a, m). Returns a (n_a, m, T_x), y (n_y, m, T_x), c (n_a, m, T_x)
    and caches = (list of T_x cell caches, x).
    """
    dt = _dtype(x, a0, *_mapping("parameters", parameters).values())
    x = _input("x", x, dt, 3, _expected_n_x(parameters, "Wf", True), _batch(a0),
               "the columns of Wf minus its rows")
    n_x, m, T_x = x.shape
    w = _lstm_weights(parameters, n_x, dt)
    n_a, n_y = w["n_a"], w["Wy"].shape[0]
    a_next = _state("a0", a0, dt, n_a, m)
    c_next = np.zeros((n_a, m), dtype=dt)
    a, c = np.empty((n_a, m, T_x), dtype=dt), np.empty((n_a, m, T_x), dtype=dt)
    y = np.empty((n_y, m, T_x), dtype=dt)
    cells = []
    for t in range(T_x):
        a_prev, c_prev, xt = a_next, c_next, x[:, :, t]
        a_next, c_next, y[:, :, t], gates = _lstm_step(xt, a_prev, c_prev, w)
        a[:, :, t], c[:, :, t] = a_next, c_next
        cells.append((a_next, c_next, a_prev, c_prev, *gates, xt, parameters))
    return a, y, c, (cells, x)


def lstm_cell_backward(da_next, dc_next, cache) -> dict:
    """Backward of one LSTM step.

    da_next, dc_next: (n_a, m) gradients of the loss with respect to a_next and c_next;
    cache: from lstm_cell_forward. Returns dxt (n_x, m), da_prev, dc_prev (n_a, m),
    dWf, dWi, dWc, dWo (n_a, n_a + n_x), dbf, dbi, dbc, dbo (n_a, 1).
    """
    cache = _cache(cache, 10, "lstm_cell_forward")
    parameters = _mapping("parameters", cache[9])
    dt = _dtype(da_next, dc_next, *cache[:9], *parameters.values())
    xt = _input("xt", cache[8], dt, 2)
    w = _lstm_weights(parameters, xt.shape[0], dt, head=False)
    n_a, m = w["n_a"], xt.shape[1]
    names = ("a_next", "c_next", "a_prev", "c_prev", "ft", "it", "cct", "ot")
    states = [_state(n, v, dt, n_a, m) for n, v in zip(names, cache[:8], strict=True)]
    g = _lstm_step_backward(_state("da_next", da_next, dt, n_a, m),
                            _state("dc_next", dc_next, dt, n_a, m), (*states, xt), w)
    return {"dxt": g["dxt"], "da_prev": g["da_prev"], "dc_prev": g["dc_prev"],
            **_split_gates(g["dW"], g["db"], n_a)}


def lstm_backward(da, caches) -> dict:
    """Backward through the whole sequence (c0 was zeros, so there is no dc0).

    da: (n_a, m, T_x) gradient of the loss with respect to each hidden state (from the outputs
    only; the recurrent part from step t+1 is added here). caches: from lstm_forward.
    Returns dx (n_x, m, T_x), da0 (n_a, m), dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo.
    """
    cells, x = _caches(caches, 10, "lstm_forward")
    parameters = cells[0][9]
    dt = _dtype(da, x, *_mapping("parameters", parameters).values())
    n_x, m, T_x = x.shape
    w = _lstm_weights(parameters, n_x, dt, head=False)
    n_a = w["n_a"]
    da = _array("da", da, dt, "(n_a, m, T_x)", (n_a, m, T_x))
    dx = np.empty((n_x, m, T_x), dtype=dt)
    dW, db = np.zeros_like(w["W"]), np.zeros_like(w["b"])
    da_prevt, dc_prevt = np.zeros((n_a, m), dtype=dt), np.zeros((n_a, m), dtype=dt)
    for t in reversed(range(T_x)):
        g = _lstm_step_backward(da[:, :, t] + da_prevt, dc_prevt, cells[t][:9], w)
        dx[:, :, t], da_prevt, dc_prevt = g["dxt"], g["da_prev"], g["dc_prev"]
        dW += g["dW"]
        db += g["db"]
    return {"dx": dx, "da0": da_prevt, **_split_gates(dW, db, n_a)}


# ------------------------------------------------------------------------------------- GRU

# The lecture's GRU (the original of Cho et al. 2014, Keras's reset_after=False), equations in
# bptt/cells/gru.py: Γu, Γr = σ(W [a_prev; xt] + b), c̃ = tanh(Wc [Γr * a_prev; xt] + bc),
# a_next = c_next = Γu * c̃ + (1 - Γu) * a_prev. Not the engine's GRU (torch's); see the docs.
GRU_GATES = ("u", "r")


def _gru_weights(parameters, n_x: int, dtype: np.dtype, head: bool = True) -> dict:
    """Checked GRU parameters in ``dtype``: W = [Wu; Wr] (2 n_a, n_a + n_x) acting on
    [a_prev; xt], b = [bu; br] (2 n_a, 1), Wc (n_a, n_a + n_x) acting on [Γr * a_prev; xt], bc;
    and Wy, by when ``head``."""
    _mapping("parameters", parameters)
    n_a = _param(parameters, "Wu", dtype, "(n_a, n_a + n_x)", (None, None)).shape[0]
    legend, shape = "(n_a, n_a + n_x)", (n_a, n_a + n_x)
    Ws = [_param(parameters, "W" + g, dtype, legend, shape) for g in GRU_GATES]
    bs = [_param(parameters, "b" + g, dtype, "(n_a, 1)", (n_a, 1)) for g in GRU_GATES]
    w = {"W": np.concatenate(Ws), "b": np.concatenate(bs), "n_a": n_a,
         "Wc": _param(parameters, "Wc", dtype, legend, shape),
         "bc": _param(parameters, "bc", dtype, "(n_a, 1)", (n_a, 1))}
    if head:
        w["Wy"] = _param(parameters, "Wy", dtype, "(n_y, n_a)", (None, n_a))
        w["by"] = _param(parameters, "by", dtype, "(n_y, 1)", (w["Wy"].shape[0], 1))
    return w


def _gru_step(xt, a_prev, w):
    """One step on checked arrays. Returns a_next, yt_pred and the gates ut, rt, cct."""
    n_a, m = a_prev.shape
    z = w["W"] @ np.concatenate([a_prev, xt]) + w["b"]          # (2 n_a, m)
    gates = z.reshape(2, n_a, m)                                  # Γu, Γr pre-activations
    rc = np.empty((n_a, m), dtype=z.dtype)
    gru.course_gates(gates, a_prev, rc)                           # gates now hold Γu, Γr
    cct = w["Wc"] @ np.concatenate([rc, xt]) + w["bc"]          # (n_a, m) pre-activation
    a_next = np.empty((n_a, m), dtype=z.dtype)
    gru.course_candidate(cct, gates[0], a_prev, a_next)          # cct now holds c̃
    return a_next, softmax(w["Wy"] @ a_next + w["by"]), (gates[0], gates[1], cct)


def _gru_step_backward(da_next, cache, w) -> dict:
    """One step's gradients from checked arrays; [Wu; Wr]'s come back stacked (2 n_a, .)."""
    a_next, a_prev, ut, rt, cct, xt = cache
    n_a, m = a_prev.shape
    dz = np.empty((3, n_a, m), dtype=a_prev.dtype)               # dz_u, dz_r, dz_c
    da_prev = np.empty((n_a, m), dtype=a_prev.dtype)
    gru.course_backward(da_next, ut, cct, a_prev, dz, da_prev)    # dz_u, dz_c; da_prev direct
    rc = rt * a_prev       # the course's cache holds Γr, not Γr * a_prev: recomputed (same value)
    drcx = w["Wc"].T @ dz[2]                                     # (n_a + n_x, m): [drc; dxt]
    gru.course_backward_reset(drcx[:n_a], rt, a_prev, dz[1], da_prev)
    dz2 = dz[:2].reshape(2 * n_a, m)                              # [dz_u; dz_r]
    dconcat = w["W"].T @ dz2                                      # (n_a + n_x, m)
    da_prev += dconcat[:n_a]
    return {"dxt": drcx[n_a:] + dconcat[n_a:], "da_prev": da_prev,
            "dW": dz2 @ np.concatenate([a_prev, xt]).T,          # (2 n_a, n_a + n_x)
            "db": dz2.sum(axis=1, keepdims=True),
            "dWc": dz[2] @ np.concatenate([rc, xt]).T,           # (n_a, n_a + n_x)
            "dbc": dz[2].sum(axis=1, keepdims=True)}


def _gru_grads(g: dict, n_a: int) -> dict:
    """Stacked gradients -> dWu, dbu, dWr, dbr, dWc, dbc."""
    out = {}
    for k, name in enumerate(GRU_GATES):
        rows = slice(k * n_a, (k + 1) * n_a)
        out["dW" + name], out["db" + name] = g["dW"][rows], g["db"][rows]
    return {**out, "dWc": g["dWc"], "dbc": g["dbc"]}


def gru_cell_forward(xt, a_prev, parameters: dict):
    """One step of the lecture's GRU (Γr applied to a_prev before the product with Wc):
    ``ut = σ(Wu·[a_prev; xt] + bu)``, ``rt = σ(Wr·[a_prev; xt] + br)``,
    ``cct = tanh(Wc·[rt * a_prev; xt] + bc)``, ``a_next = ut * cct + (1 - ut) * a_prev``,
    ``yt_pred = softmax(Wy a_next + by)``.

    xt: (n_x, m); a_prev: (n_a, m); parameters: Wu, Wr, Wc (n_a, n_a + n_x), bu, br, bc (n_a, 1),
    Wy (n_y, n_a), by (n_y, 1). Returns a_next (n_a, m), yt_pred (n_y, m) and
    cache = (a_next, a_prev, ut, rt, cct, xt, parameters).
    """
    dt = _dtype(xt, a_prev, *_mapping("parameters", parameters).values())
    xt = _input("xt", xt, dt, 2, _expected_n_x(parameters, "Wu", True), _batch(a_prev),
                "the columns of Wu minus its rows")
    w = _gru_weights(parameters, xt.shape[0], dt)
    a_prev = _state("a_prev", a_prev, dt, w["n_a"], xt.shape[1])
    a_next, yt_pred, gates = _gru_step(xt, a_prev, w)
    return a_next, yt_pred, (a_next, a_prev, *gates, xt, parameters)


def gru_forward(x, a0, parameters: dict):
    """The lecture's GRU over a sequence.

    x: (n_x, m, T_x); a0: (n_a, m). Returns a (n_a, m, T_x), y_pred (n_y, m, T_x) and
    caches = (list of T_x cell caches, x).
    """
    dt = _dtype(x, a0, *_mapping("parameters", parameters).values())
    x = _input("x", x, dt, 3, _expected_n_x(parameters, "Wu", True), _batch(a0),
               "the columns of Wu minus its rows")
    n_x, m, T_x = x.shape
    w = _gru_weights(parameters, n_x, dt)
    n_a, n_y = w["n_a"], w["Wy"].shape[0]
    a_next = _state("a0", a0, dt, n_a, m)
    a, y_pred = np.empty((n_a, m, T_x), dtype=dt), np.empty((n_y, m, T_x), dtype=dt)
    cells = []
    for t in range(T_x):
        a_prev, xt = a_next, x[:, :, t]
        a_next, y_pred[:, :, t], gates = _gru_step(xt, a_prev, w)
        a[:, :, t] = a_next
        cells.append((a_next, a_prev, *gates, xt, parameters))
    return a, y_pred, (cells, x)


def gru_cell_backward(da_next, cache) -> dict:
    """Backward of one step of the lecture's GRU.

    da_next: (n_a, m) gradient of the loss with respect to a_next; cache: from gru_cell_forward.
    Returns dxt (n_x, m), da_prev (n_a, m), dWu, dWr, dWc (n_a, n_a + n_x), dbu, dbr, dbc (n_a, 1).
    """
    cache = _cache(cache, 7, "gru_cell_forward")
    parameters = _mapping("parameters", cache[6])
    dt = _dtype(da_next, *cache[:6], *parameters.values())
    xt = _input("xt", cache[5], dt, 2)
    w = _gru_weights(parameters, xt.shape[0], dt, head=False)
    n_a, m = w["n_a"], xt.shape[1]
    names = ("a_next", "a_prev", "ut", "rt", "cct")
    states = [_state(n, v, dt, n_a, m) for n, v in zip(names, cache[:5], strict=True)]
    g = _gru_step_backward(_state("da_next", da_next, dt, n_a, m), (*states, xt), w)
    return {"dxt": g["dxt"], "da_prev": g["da_prev"], **_gru_grads(g, n_a)}


def gru_backward(da, caches) -> dict:
    """Backward through the whole sequence.

    da: (n_a, m, T_x) gradient of the loss with respect to each hidden state (from the outputs
    only; the recurrent part from step t+1 is added here). caches: from gru_forward.
    Returns dx (n_x, m, T_x), da0 (n_a, m), dWu, dbu, dWr, dbr, dWc, dbc.
    """
    cells, x = _caches(caches, 7, "gru_forward")
    parameters = cells[0][6]
    dt = _dtype(da, x, *_mapping("parameters", parameters).values())
    n_x, m, T_x = x.shape
    w = _gru_weights(parameters, n_x, dt, head=False)
    n_a = w["n_a"]
    da = _array("da", da, dt, "(n_a, m, T_x)", (n_a, m, T_x))
    dx = np.empty((n_x, m, T_x), dtype=dt)
    total = {k: np.zeros_like(w[k[1:]]) for k in ("dW", "db", "dWc", "dbc")}
    da_prevt = np.zeros((n_a, m), dtype=dt)
    for t in reversed(range(T_x)):
        g = _gru_step_backward(da[:, :, t] + da_prevt, cells[t][:6], w)
        dx[:, :, t], da_prevt = g["dxt"], g["da_prev"]
        for k in total:
            total[k] += g[k]
    return {"dx": dx, "da0": da_prevt, **_gru_grads(total, n_a)}


# ------------------------------------------------------------------------------------ Adam

def initialize_adam(parameters: dict) -> tuple[dict, dict]:
    """Adam's moments v (first) and s (second): zeros shaped like each parameter, keyed "d" + name.

    Returns (v, s).
    """
    v, s = {}, {}
    for name, p in _mapping("parameters", parameters).items():
        p = np.asarray(p)
        dt = p.dtype if p.dtype in FLOAT_DTYPES else np.dtype(np.float64)
        v["d" + name], s["d" + name] = np.zeros(p.shape, dt), np.zeros(p.shape, dt)
    return v, s


def update_parameters_with_adam(parameters: dict, grads: dict, v: dict, s: dict, t: int,
                                learning_rate: float = 0.01, beta1: float = 0.9,
                                beta2: float = 0.999, epsilon: float = 1e-8):
    """One Adam step (torch.optim.Adam's) for every parameter, with ``bptt.nn.optim.adam_update``.

    parameters: any dict of arrays (``W1, b1, ...`` or ``Waa, Wax, ...``); grads, v, s: keyed
    "d" + name; t: the step number, counting from 1. As the course writes it, each updated
    parameter and moment is a new array bound into the same dict (``parameters[name] = ...``):
    the caller's old arrays are never changed, so a snapshot ``old = dict(parameters)`` keeps the
    values before the step. Returns (parameters, v, s), the same dicts. A parameter that is not a
    float array becomes float64. Everything is checked before anything changes.
    """
    t = positive_int("t", t)
    checked = []
    for name, p in _mapping("parameters", parameters).items():
        key = "d" + name
        shape = np.shape(p)
        for what, d in (("grads", grads), ("v", v), ("s", s)):
            if key not in _mapping(what, d):
                raise ValueError(f"{what}: missing key {key!r} (for parameter {name!r})")
        g = np.asarray(grads[key])
        check_shape(f"grads[{key!r}]", g, shape)
        for what, d in (("v", v), ("s", s)):
            moment = d[key]
            if not isinstance(moment, np.ndarray) or moment.dtype not in FLOAT_DTYPES:
                raise TypeError(f"{what}[{key!r}]: expected a float array (from initialize_adam), "
                                f"got {type(moment).__name__}")
            check_shape(f"{what}[{key!r}]", moment, shape)
        checked.append((name, g, key))
    for name, g, key in checked:
        p = np.asarray(parameters[name])
        p = np.array(p, dtype=p.dtype if p.dtype in FLOAT_DTYPES else np.float64)   # new arrays:
        m1, m2 = v[key].copy(), s[key].copy()         # the caller's old ones stay as they were
        adam_update(p, g, m1, m2, t, learning_rate, beta1, beta2, epsilon)
        parameters[name], v[key], s[key] = p, m1, m2
    return parameters, v, s


# ------------------------------------------------------- the dinosaur-names exercise (char RNN)
# The course's next notebook trains the RNN above on names, one name per sequence, one sequence
# per step (m = 1). Its parameters call the hidden bias ``b`` (not ``ba``); these functions take
# either and key its gradient to match (``db`` or ``dba``).

def initialize_parameters(n_a: int, n_x: int, n_y: int) -> dict:
    """The course's initialisation: Wax (n_a, n_x), Waa (n_a, n_a), Wya (n_y, n_a) drawn from
    N(0, 0.01²), in that order, from the legacy generator seeded with 1 (the values of the
    course's ``np.random.seed(1)``, without touching NumPy's global generator); b (n_a, 1) and
    by (n_y, 1) zeros. Returns {"Wax", "Waa", "Wya", "b", "by"}."""
    n_a, n_x, n_y = (positive_int(k, v) for k, v in (("n_a", n_a), ("n_x", n_x), ("n_y", n_y)))
    draw = np.random.RandomState(1)
    Wax = draw.randn(n_a, n_x) * 0.01                  # input to hidden
    Waa = draw.randn(n_a, n_a) * 0.01                  # hidden to hidden
    Wya = draw.randn(n_y, n_a) * 0.01                  # hidden to output
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": np.zeros((n_a, 1)), "by": np.zeros((n_y, 1))}


def clip(gradients: dict, maxValue: float) -> dict:  # noqa: N803 (the course's name)
    """Every entry of every gradient clipped to [-maxValue, maxValue] (element-wise, as the
    course does; ``bptt.clip_grad_norm`` is the norm-wise clipping of torch and the CLI).

    gradients: a dict of arrays (dWaa, dWax, dWya, db, dby, or any other keys). Returns a new dict
    with the same keys and clipped copies; the caller's arrays are not changed.
    """
    _mapping("gradients", gradients)
    if isinstance(maxValue, bool) or not isinstance(maxValue, (int, float, np.integer,
                                                                np.floating)):
        raise TypeError(f"maxValue: expected a number, got {type(maxValue).__name__}")
    if not maxValue > 0:
        raise ValueError(f"maxValue: expected a number > 0, got {maxValue}")
    out = {}
    for key, g in gradients.items():
        g = np.asarray(g)
        if g.dtype.kind not in "biuf":
            raise TypeError(f"gradients[{key!r}]: expected a real array, got dtype {g.dtype}")
        out[key] = np.clip(g, -maxValue, maxValue)
    return out


def _char_rnn(parameters) -> tuple[dict, str]:
    """The parameters with the hidden bias under "ba" (a new dict of the same arrays), and the
    key the caller used for it ("b" or "ba")."""
    _mapping("parameters", parameters)
    given = [k for k in ("b", "ba") if k in parameters]
    if len(given) != 1:
        what = "both" if given else "neither"
        raise ValueError(f"parameters: expected the hidden bias as 'b' (the course's name here) "
                         f"or 'ba', got {what}")
    view = {k: parameters[k] for k in ("Wax", "Waa", "Wya", "by") if k in parameters}
    return {**view, "ba": parameters[given[0]]}, given[0]


def _ids(name: str, seq, n: int, none_ok: bool) -> list:
    """A list of character indices in [0, n) (None allowed where ``none_ok``: a zero input)."""
    if isinstance(seq, (str, bytes)) or not isinstance(seq, (list, tuple, np.ndarray)):
        raise TypeError(f"{name}: expected a list of character indices, got {type(seq).__name__}")
    out = []
    for t, i in enumerate(seq):
        if i is None and none_ok:
            out.append(None)
            continue
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise ValueError(f"{name}[{t}]: expected an index in [0, {n})"
                             f"{' or None' if none_ok else ''}, got {i!r}")
        out.append(int(i))
    if not out:
        raise ValueError(f"{name}: expected at least one character, got an empty list")
    return out


def optimize(X, Y, a_prev, parameters: dict, learning_rate: float = 0.01):
    """One step of the course's training loop on one name: forward (``rnn_forward``), the
    cross-entropy summed over the steps, backward (``rnn_backward`` and the softmax head),
    ``clip(gradients, 5)``, then gradient descent.

    X: list of T_x input indices (None: the zero vector, which starts a name); Y: the T_x target
    indices; a_prev: (n_a, 1) the state to start from; parameters: Wax, Waa, Wya, b (or ba), by.
    The update binds new arrays into ``parameters`` (``parameters[k] = parameters[k] - lr * dk``),
    as the course's dict is updated, while a snapshot of the old arrays stays unchanged.
    Returns loss (float), gradients (dWaa, dWax, dWya, db or dba, dby; clipped) and the last
    hidden state a (n_a, 1).
    """
    view, bias = _char_rnn(parameters)
    n_x = _expected_n_x(view, "Wax", False)
    if n_x is None:
        raise ValueError("parameters: expected Wax of shape (n_a, n_x)")
    X, Y = _ids("X", X, n_x, True), _ids("Y", Y, n_x, False)
    if len(X) != len(Y):
        raise ValueError(f"Y: expected one target per input, {len(X)}, got {len(Y)}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.integer,
                                                                          np.floating)):
        raise TypeError(f"learning_rate: expected a number, got {type(learning_rate).__name__}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected a number > 0, got {learning_rate!r}")
    T_x = len(X)
    x = np.zeros((n_x, 1, T_x))                                   # one-hot columns
    for t, i in enumerate(X):
        if i is not None:
            x[i, 0, t] = 1
    a, y_hat, caches = rnn_forward(x, a_prev, view)              # (n_a, 1, T_x), (n_y, 1, T_x)
    steps = np.arange(T_x)
    loss = float(-np.log(y_hat[Y, 0, steps]).sum())
    dy = y_hat.copy()                                             # dL/d(Wya a + by): y_hat - y
    dy[Y, 0, steps] -= 1
    grads = rnn_backward(np.einsum("ya,ymt->amt", view["Wya"], dy), caches)
    gradients = {"dWaa": grads["dWaa"], "dWax": grads["dWax"],
                 "dWya": np.einsum("ymt,amt->ya", dy, a), "d" + bias: grads["dba"],
                 "dby": dy.sum(axis=(1, 2))[:, None]}
    gradients = clip(gradients, 5)
    for key in ("Wax", "Waa", "Wya", bias, "by"):
        parameters[key] = parameters[key] - learning_rate * gradients["d" + key]
    return loss, gradients, a[:, :, -1].copy()


def sample(parameters: dict, char_to_ix: dict, seed: int) -> list:
    """A name drawn from the model, as the course samples: start from a0 = 0 and the zero input,
    draw each character from yt_pred, feed it back one-hot, stop after the newline or 50
    characters (then a newline is appended).

    parameters: Wax, Waa, Wya, b (or ba), by; char_to_ix: {character: index}, with "\\n".
    The draw at step k uses ``np.random.RandomState(seed + 2k)``: the course's
    ``np.random.seed(counter + seed)`` with both counting up, so its expected output is
    reproduced, without touching NumPy's global generator. Returns the list of indices.
    """
    view, _ = _char_rnn(parameters)
    if not isinstance(char_to_ix, Mapping) or "\n" not in char_to_ix:
        raise ValueError("char_to_ix: expected a dict {character: index} with an entry for "
                         "'\\n', the end of a name")
    seed = positive_int("seed", seed, minimum=0)
    newline = char_to_ix["\n"]
    n_x = _expected_n_x(view, "Wax", False)
    if n_x is None:
        raise ValueError("parameters: expected Wax of shape (n_a, n_x)")
    if np.shape(view.get("Wya"))[:1] != (n_x,):
        raise ValueError(f"Wya: expected shape (n_x, n_a) with n_x = {n_x} (sampled characters "
                         f"are fed back as inputs), got {np.shape(view.get('Wya'))}")
    x = np.zeros((n_x, 1))
    a_prev = np.zeros((np.shape(view["Waa"])[0], 1))
    indices, idx = [], -1
    while idx != newline and len(indices) != 50:
        a_prev, y, _ = rnn_cell_forward(x, a_prev, view)
        draw = np.random.RandomState(seed + 2 * len(indices))
        idx = int(draw.choice(n_x, p=y.ravel()))
        indices.append(idx)
        x = np.zeros((n_x, 1))
        x[idx] = 1
    if idx != newline:
        indices.append(newline)
    return indices
