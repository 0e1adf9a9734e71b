"""Naive training steps in the style of the course notebook: the benchmark's reference point.

One function per cell kind runs a forward over all steps and the backward to dx and every weight
gradient the way a first hand-written implementation does: column layout (features, batch), per
step ``np.concatenate([h, x_t])`` and a separate matmul per gate, ``1 / (1 + exp(-z))``, a list of
caches, and the weight gradients accumulated step by step. Single layer, one direction, from a zero
state. It is slow on purpose: ``bptt bench`` shows what the engine's layout buys over it. It is
also a second, independent derivation, and the tests check it against the engine.

Every function takes torch-named parameters (``weight_ih_l0`` ...), x (T, B, I) and dout (T, B, H),
and returns dx (T, B, I) and the gradients keyed like the parameters.
"""

import numpy as np


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _split(params, G):
    """Per-gate blocks: W_ih[k] (H, I), W_hh[k] (H, H), b[k] (H, 1) for both biases."""
    W_ih, W_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b_ih, b_hh = params["bias_ih_l0"], params["bias_hh_l0"]
    H = W_hh.shape[1]
    blocks = [slice(k * H, (k + 1) * H) for k in range(G)]
    return (
        [W_ih[s] for s in blocks],
        [W_hh[s] for s in blocks],
        [b_ih[s].reshape(H, 1) for s in blocks],
        [b_hh[s].reshape(H, 1) for s in blocks],
    )


def _collect(dW_ih, dW_hh, db_ih, db_hh):
    return {
        "weight_ih_l0": np.concatenate(dW_ih),
        "weight_hh_l0": np.concatenate(dW_hh),
        "bias_ih_l0": np.concatenate(db_ih).ravel(),
        "bias_hh_l0": np.concatenate(db_hh).ravel(),
    }


def rnn_step(params, x, dout):
    Wi, Wh, bi, bh = _split(params, 1)
    W = np.concatenate([Wh[0], Wi[0]], axis=1)  # acts on [h; x]
    b = bi[0] + bh[0]
    T, B, _ = x.shape
    H = W.shape[0]
    h = np.zeros((H, B), dtype=x.dtype)
    caches = []
    for t in range(T):
        concat = np.concatenate([h, x[t].T], axis=0)
        h = np.tanh(W @ concat + b)
        caches.append((concat, h))
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dx = np.zeros_like(x)
    dh_next = np.zeros((H, B), dtype=x.dtype)
    for t in reversed(range(T)):
        concat, h = caches[t]
        dz = (dout[t].T + dh_next) * (1 - h**2)
        dW += dz @ concat.T
        db += np.sum(dz, axis=1, keepdims=True)
        dconcat = W.T @ dz
        dh_next, dx[t] = dconcat[:H], dconcat[H:].T
    return dx, _collect([dW[:, H:]], [dW[:, :H]], [db], [db.copy()])


def lstm_step(params, x, dout):
    Wi, Wh, bi, bh = _split(params, 4)  # blocks i, f, g, o
    W = [np.concatenate([Wh[k], Wi[k]], axis=1) for k in range(4)]
    b = [bi[k] + bh[k] for k in range(4)]
    T, B, _ = x.shape
    H = Wh[0].shape[1]
    h = np.zeros((H, B), dtype=x.dtype)
    c = np.zeros((H, B), dtype=x.dtype)
    caches = []
    for t in range(T):
        concat = np.concatenate([h, x[t].T], axis=0)
        it = _sigmoid(W[0] @ concat + b[0])
        ft = _sigmoid(W[1] @ concat + b[1])
        cct = np.tanh(W[2] @ concat + b[2])
        ot = _sigmoid(W[3] @ concat + b[3])
        c_prev = c
        c = ft * c_prev + it * cct
        h = ot * np.tanh(c)
        caches.append((concat, c_prev, c, it, ft, cct, ot))
    dW = [np.zeros_like(w) for w in W]
    db = [np.zeros_like(v) for v in b]
    dx = np.zeros_like(x)
    dh_next = np.zeros((H, B), dtype=x.dtype)
    dc_next = np.zeros((H, B), dtype=x.dtype)
    for t in reversed(range(T)):
        concat, c_prev, c, it, ft, cct, ot = caches[t]
        dh = dout[t].T + dh_next
        tc = np.tanh(c)
        dot = dh * tc * ot * (1 - ot)
        dc = dc_next + dh * ot * (1 - tc**2)
        dit = dc * cct * it * (1 - it)
        dft = dc * c_prev * ft * (1 - ft)
        dcct = dc * it * (1 - cct**2)
        dconcat = np.zeros_like(concat)
        for k, dz in enumerate((dit, dft, dcct, dot)):
            dW[k] += dz @ concat.T
            db[k] += np.sum(dz, axis=1, keepdims=True)
            dconcat += W[k].T @ dz
        dh_next, dx[t] = dconcat[:H], dconcat[H:].T
        dc_next = dc * ft
    return dx, _collect([w[:, H:] for w in dW], [w[:, :H] for w in dW], db, [v.copy() for v in db])


def gru_step(params, x, dout):
    Wi, Wh, bi, bh = _split(params, 3)  # blocks r, z, n
    T, B, _ = x.shape
    H = Wh[0].shape[1]
    h = np.zeros((H, B), dtype=x.dtype)
    caches = []
    for t in range(T):
        xt = x[t].T
        r = _sigmoid(Wi[0] @ xt + bi[0] + Wh[0] @ h + bh[0])
        z = _sigmoid(Wi[1] @ xt + bi[1] + Wh[1] @ h + bh[1])
        hn = Wh[2] @ h + bh[2]
        n = np.tanh(Wi[2] @ xt + bi[2] + r * hn)
        h_prev = h
        h = (1 - z) * n + z * h_prev
        caches.append((xt, h_prev, r, z, n, hn))
    dWi = [np.zeros_like(w) for w in Wi]
    dWh = [np.zeros_like(w) for w in Wh]
    dbi = [np.zeros_like(v) for v in bi]
    dbh = [np.zeros_like(v) for v in bh]
    dx = np.zeros_like(x)
    dh_next = np.zeros((H, B), dtype=x.dtype)
    for t in reversed(range(T)):
        xt, h_prev, r, z, n, hn = caches[t]
        dh = dout[t].T + dh_next
        dn = dh * (1 - z) * (1 - n**2)
        dz = dh * (h_prev - n) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        dgh = (dr, dz, dn * r)
        dgi = (dr, dz, dn)
        dxt = np.zeros_like(xt)
        dh_next = dh * z
        for k in range(3):
            dWi[k] += dgi[k] @ xt.T
            dWh[k] += dgh[k] @ h_prev.T
            dbi[k] += np.sum(dgi[k], axis=1, keepdims=True)
            dbh[k] += np.sum(dgh[k], axis=1, keepdims=True)
            dxt += Wi[k].T @ dgi[k]
            dh_next = dh_next + Wh[k].T @ dgh[k]
        dx[t] = dxt.T
    return dx, _collect(dWi, dWh, dbi, dbh)


STEPS = {"RNN": rnn_step, "LSTM": lstm_step, "GRU": gru_step}
