"""The course's LSTM: cell and sequence, forward and backward."""


import numpy as np

from ..cells import lstm
from ._args import (
    LSTM_GATES,
    _array,
    _batch,
    _cache,
    _caches,
    _dtype,
    _expected_n_x,
    _input,
    _lstm_weights,
    _mapping,
    _state,
)
from .activations import softmax


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


def _shorter_da(da, n_a: int, m: int, T_x: int) -> None:
    """The course's own test cell passes a ``da`` of fewer steps than the forward (its
    ``lstm_backward`` reads T_x from ``da`` and steps back over the first steps only): say so, and
    how to ask for that here."""
    shape = np.shape(da)
    if len(shape) == 3 and shape[:2] == (n_a, m) and 0 < shape[2] < T_x:
        k = shape[2]
        raise ValueError(
            f"da: expected shape (n_a, m, T_x) = {(n_a, m, T_x)}, one gradient per step of the "
            f"forward, got {shape}. The course's lstm_backward reads T_x from da and "
            f"backpropagates through the first {k} steps only; for that here, pass those steps' "
            f"caches: lstm_backward(da, (caches[0][:{k}], caches[1][:, :, :{k}]))")


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
    _shorter_da(da, n_a, m, T_x)
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
