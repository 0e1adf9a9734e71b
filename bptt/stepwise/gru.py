"""The lecture's GRU (reset gate before the product; not the engine's torch GRU): cell and
sequence, forward and backward."""


import numpy as np

from ..cells import gru
from ._args import (
    _array,
    _batch,
    _cache,
    _caches,
    _dtype,
    _expected_n_x,
    _input,
    _mapping,
    _param,
    _state,
)
from .activations import softmax

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
