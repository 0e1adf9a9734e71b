"""Time loops of the engine: one direction of one layer, forward and backward.

Legend: T steps, B batch, H hidden, G gates (RNN 1, LSTM 4, GRU 3).

Each forward loop receives the input projections of all steps, computed by the caller as one GEMM
(``P = X @ W_ih.T + biases``, (T, B, G, H)), and per step does one GEMM ``h @ W_hh.T`` plus the cell's
element-wise work, in place, into buffers allocated once. Each backward loop first computes the
cell's derivative factors for the whole sequence at once, then per step does one GEMM ``dG @ W_hh``
and a few products; the weight gradients are left to the caller as single GEMMs over all steps.

States live in a buffer S of shape (T + 1, B, H). Forward in time, S[0] is the initial state and
S[t + 1] the state after x[t]; in reverse (the second direction of a bidirectional layer) S[T] is the
initial state and S[t] the state after x[t]. ``outputs`` and ``previous`` below give the two
(T, B, H) views: the state each step wrote and the one it read.

The loops keep no state: what backward needs goes out in a cache dict and comes back in.
"""

import numpy as np

from .cells import gru, lstm, rnn


def steps(T: int, reverse: bool) -> list[tuple[int, int, int]]:
    """(t, prev, cur) in the order of the forward pass: x[t] is read, S[prev] -> S[cur]."""
    if reverse:
        return [(t, t + 1, t) for t in range(T - 1, -1, -1)]
    return [(t, t, t + 1) for t in range(T)]


def outputs(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(T, B, H) view of the states written by steps 0..T-1, in time order."""
    return S[:-1] if reverse else S[1:]


def previous(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(T, B, H) view of the state each step 0..T-1 read."""
    return S[1:] if reverse else S[:-1]


def _initial(S: np.ndarray, reverse: bool) -> np.ndarray:
    return S[-1] if reverse else S[0]


def final(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(B, H) the state after the last step of the direction."""
    return S[0] if reverse else S[-1]


def _flat(a: np.ndarray) -> np.ndarray:
    """(T, B, G, H) -> (T*B, G*H) view."""
    return a.reshape(a.shape[0] * a.shape[1], -1)


# ----------------------------------------------------------------------------------------- RNN

def rnn_forward(P, W_hh, h0, reverse, nonlinearity="tanh"):
    """P: (T, B, 1, H) input projections with both biases. Returns S (T+1, B, H) and the cache."""
    T, B, _, H = P.shape
    S = np.empty((T + 1, B, H), dtype=P.dtype)
    _initial(S, reverse)[...] = h0
    W_hhT = W_hh.T
    for t, p, c in steps(T, reverse):
        h = S[c]
        np.matmul(S[p], W_hhT, out=h)
        np.add(h, P[t, :, 0], out=h)
        rnn.forward(h, h, nonlinearity)
    return S, {"S": S, "reverse": reverse, "nonlinearity": nonlinearity}


def rnn_backward(dout, dh_final, cache, W_hh, work):
    """dout: (T, B, H) dL/d outputs; dh_final: (B, H) dL/d final state.

    Returns dG (T*B, H) for W_ih and b_ih, dG again for W_hh and b_hh, and dL/dh0 (B, H).
    """
    S, reverse = cache["S"], cache["reverse"]
    T, B, H = dout.shape
    F = rnn.backward_factor(outputs(S, reverse), cache["nonlinearity"])    # (T, B, H)
    dG = work("dG", (T, B, H))
    dh = np.empty((B, H), dtype=dout.dtype)
    last = None
    for t, _, _ in reversed(steps(T, reverse)):
        if last is None:
            np.add(dout[t], dh_final, out=dh)
        else:
            np.matmul(dG[last], W_hh, out=dh)
            np.add(dh, dout[t], out=dh)
        rnn.backward(dh, F[t], dG[t])
        last = t
    dG2 = _flat(dG)
    return dG2, dG2, dG[last] @ W_hh


# ---------------------------------------------------------------------------------------- LSTM

def lstm_forward(P, W_hh, h0, c0, reverse, work):
    """P: (T, B, 4, H) input projections with both biases, overwritten with the gate activations.

    Returns S (T+1, B, H), the final cell state (B, H) and the cache.
    """
    T, B, _, H = P.shape
    S = np.empty((T + 1, B, H), dtype=P.dtype)
    C = work("C", (T + 1, B, H))
    TC = work("TC", (T, B, H))
    _initial(S, reverse)[...] = h0
    _initial(C, reverse)[...] = c0
    rec = np.empty((B, 4, H), dtype=P.dtype)
    rec2 = rec.reshape(B, 4 * H)
    W_hhT = W_hh.T
    for t, p, c in steps(T, reverse):
        a = P[t]
        np.matmul(S[p], W_hhT, out=rec2)
        np.add(a, rec, out=a)
        lstm.forward(a, C[p], C[c], TC[t], S[c])
    cache = {"S": S, "C": C, "TC": TC, "A": P, "reverse": reverse}
    return S, final(C, reverse).copy(), cache


def lstm_backward(dout, dh_final, dc_final, cache, W_hh, work):
    """Returns dA (T*B, 4H) (for both weight matrices and biases), dL/dh0, dL/dc0."""
    A, C, TC, reverse = cache["A"], cache["C"], cache["TC"], cache["reverse"]
    T, B, H = dout.shape
    F = lstm.backward_factors(A, previous(C, reverse), TC)                 # (T, B, 5, H)
    dA = work("dA", (T, B, 4, H))
    dA2 = dA.reshape(T, B, 4 * H)
    dh = np.empty((B, H), dtype=dout.dtype)
    dc = np.array(dc_final, dtype=dout.dtype)
    last = None
    for t, _, _ in reversed(steps(T, reverse)):
        if last is None:
            np.add(dout[t], dh_final, out=dh)
        else:
            np.matmul(dA2[last], W_hh, out=dh)
            np.add(dh, dout[t], out=dh)
        lstm.backward(dh, dc, F[t], A[t, :, 1], dA[t])
        last = t
    flat = _flat(dA)
    return flat, flat, dA2[last] @ W_hh, dc


# ----------------------------------------------------------------------------------------- GRU

def gru_forward(P, W_hh, b_hn, h0, reverse, work):
    """P: (T, B, 3, H) input projections (with b_ih and the r, z parts of b_hh), overwritten
    with the gate activations. b_hn: (H,) or None, the n part of b_hh, which r multiplies.

    Returns S (T+1, B, H) and the cache.
    """
    T, B, _, H = P.shape
    S = np.empty((T + 1, B, H), dtype=P.dtype)
    GH = work("GH", (T, B, 3, H))
    GH2 = GH.reshape(T, B, 3 * H)
    _initial(S, reverse)[...] = h0
    W_hhT = W_hh.T
    for t, p, c in steps(T, reverse):
        gh = GH[t]
        np.matmul(S[p], W_hhT, out=GH2[t])
        if b_hn is not None:
            np.add(gh[:, 2], b_hn, out=gh[:, 2])
        gru.forward(P[t], gh, S[p], S[c])
    return S, {"S": S, "GH": GH, "A": P, "reverse": reverse}


def gru_backward(dout, dh_final, cache, W_hh, work):
    """Returns dGI (T*B, 3H) for W_ih and b_ih, dGH (T*B, 3H) for W_hh and b_hh, and dL/dh0."""
    S, GH, A, reverse = cache["S"], cache["GH"], cache["A"], cache["reverse"]
    T, B, H = dout.shape
    F = gru.backward_factors(A, GH[:, :, 2], previous(S, reverse))        # (T, B, 4, H)
    dGH = work("dGH", (T, B, 3, H))
    dGI = work("dGI", (T, B, 3, H))
    dGH2 = dGH.reshape(T, B, 3 * H)
    dh = np.empty((B, H), dtype=dout.dtype)
    direct = np.empty((B, H), dtype=dout.dtype)
    last = None
    for t, _, _ in reversed(steps(T, reverse)):
        if last is None:
            np.add(dout[t], dh_final, out=dh)
        else:
            np.matmul(dGH2[last], W_hh, out=dh)
            np.add(dh, direct, out=dh)
            np.add(dh, dout[t], out=dh)
        gru.backward(dh, F[t], A[t, :, 1], dGH[t], dGI[t, :, 2], direct)
        last = t
    dGI[:, :, :2] = dGH[:, :, :2]
    dh0 = dGH2[last] @ W_hh
    dh0 += direct
    return _flat(dGI), _flat(dGH), dh0
