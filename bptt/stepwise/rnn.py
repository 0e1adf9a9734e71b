"""The course's RNN: cell and sequence, forward and backward."""


import numpy as np

from ..cells import rnn
from ._args import (
    _array,
    _batch,
    _cache,
    _caches,
    _dtype,
    _expected_n_x,
    _input,
    _mapping,
    _rnn_weights,
    _state,
    rnn_bias_key,
)
from .activations import softmax


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

    xt: (n_x, m); a_prev: (n_a, m); parameters: Wax (n_a, n_x), Waa (n_a, n_a), ba (n_a, 1) (or
    ``b``, the dinosaur exercise's name), Wya (n_y, n_a), by (n_y, 1). Returns a_next (n_a, m),
    yt_pred (n_y, m) and cache = (a_next, a_prev, xt, parameters), with the caller's own
    ``parameters``.
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
    Returns dxt (n_x, m), da_prev (n_a, m), dWax (n_a, n_x), dWaa (n_a, n_a), dba (n_a, 1)
    (``db`` when the parameters call the bias ``b``).
    """
    a_next, a_prev, xt, parameters = _cache(cache, 4, "rnn_cell_forward")
    dt = _dtype(da_next, a_next, a_prev, xt, *_mapping("parameters", parameters).values())
    xt = _input("xt", xt, dt, 2)
    w = _rnn_weights(parameters, xt.shape[0], dt, head=False)
    n_a, m = w["Waa"].shape[0], xt.shape[1]
    a_next, a_prev = (_state(n, v, dt, n_a, m) for n, v in (("a_next", a_next), ("a_prev", a_prev)))
    g = _rnn_step_backward(_state("da_next", da_next, dt, n_a, m), a_next, a_prev, xt, w)
    return _bias_named(g, parameters)


def _bias_named(grads: dict, parameters) -> dict:
    """``dba`` renamed ``db`` when the caller's dict calls the bias ``b`` (``rnn_bias_key``)."""
    key = "d" + rnn_bias_key(parameters)
    return grads if key == "dba" else {(key if k == "dba" else k): v for k, v in grads.items()}


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
    return _bias_named({"dx": dx, "da0": da_prevt, **grads}, parameters)
