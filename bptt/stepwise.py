"""The step-by-step API in the notation of the course the project started from.

Layout: features first, then batch, then time. Legend: n_x input size, n_a hidden size, n_y output
size, m batch, T_x steps.

    x (n_x, m, T_x)   a0 (n_a, m)   xt (n_x, m)   a_prev, c_prev (n_a, m)

This module is a thin adapter. It checks the arguments, converts the names (the course's
``Wf, Wi, Wc, Wo`` become the cell's gate blocks i, f, g, o, stacked as (4, n_a, m)), and calls the
same cell code as the engine, which works features first like the course: no gate equation is
written here. Every function returns what the course's
returns, with the same cache layouts and dict keys (see docs/stepwise.md).

How the sizes are read: ``x`` (or ``xt``) fixes n_x and m, the recurrent weight (``Waa``; ``Wf``
for the LSTM) fixes n_a by its rows, the output weight (``Wya``; ``Wy``) fixes n_y; everything
else is checked against those, and a mismatch raises ValueError naming the key, the shape
expected and the shape got. The arithmetic is float64 unless every input is float32.
"""

from collections.abc import Mapping

import numpy as np

from ._checks import FLOAT_DTYPES, as_array, check_shape, positive_int
from .cells import activations, lstm, rnn
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


def _input(name: str, value, dtype: np.dtype, ndim: int) -> np.ndarray:
    """x (n_x, m, T_x) or xt (n_x, m), with at least one example (and one step)."""
    legend = "(n_x, m, T_x)" if ndim == 3 else "(n_x, m)"
    a = as_array(name, value, dtype, ndim=ndim, what=legend)
    if 0 in a.shape[1:]:
        raise ValueError(f"{name}: expected at least one example and one step {legend}, "
                         f"got shape {a.shape}")
    return a


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
    xt = _input("xt", xt, dt, 2)
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
    x = _input("x", x, dt, 3)
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
    xt = _input("xt", xt, dt, 2)
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
    x = _input("x", x, dt, 3)
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
    "d" + name; t: the step number, counting from 1. Updates the arrays of ``parameters``, ``v`` and
    ``s`` in place (a parameter that is not a float array is replaced by a float64 copy) and returns
    (parameters, v, s). Everything is checked before anything changes.
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
        p = parameters[name]
        if not (isinstance(p, np.ndarray) and p.dtype in FLOAT_DTYPES and p.flags.writeable):
            p = parameters[name] = np.array(p, dtype=np.float64)
        adam_update(p, g, v[key], s[key], t, learning_rate, beta1, beta2, epsilon)
    return parameters, v, s
