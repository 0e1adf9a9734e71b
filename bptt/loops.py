"""Time loops of the engine: one direction of one layer, forward and backward.

Legend: T steps, B batch, I input features, H hidden, G gates (RNN 1, LSTM 4, GRU 3).

Layout. Inside the engine every array is features first, then batch (the course's (n_a, m)):
per-step buffers are time-major with contiguous (G, H, B) blocks, so the recurrent product is
``W_hh @ h`` (GH, H) x (H, B), the faster GEMM form, and the element-wise work of a step runs
over contiguous memory. The big GEMMs over all steps use feature-major matrices (features,
T*B): the inputs ``X`` (I, T*B), and the gate gradients, transposed once after the backward loop.

Forward. ``project`` computes the input projections of all T steps before the loop (one batched
matmul, or for small batches one GEMM), biases included; each step then does one GEMM and the
cell's element-wise work, in place. Backward. The
cell's derivative factors are computed for the whole sequence at once; each step does one GEMM
``W_hh.T @ dG`` and a few products; the gate gradients go back to the caller as feature-major
matrices, so that each weight gradient is one GEMM there.

States live in S (T + 1, H, B). Forward in time S[0] is the initial state and S[t + 1] the state
after x[t]; in reverse (the second direction of a bidirectional layer) S[T] is the initial state
and S[t] the state after x[t]. The loops keep no state: what backward needs goes out in a cache
dict. Scratch buffers come from ``work(name, shape)``, reused across calls of the same shape;
nothing handed to a user lives in them.
"""

import numpy as np

from .cells import gru, lstm, rnn


def steps(T: int, reverse: bool) -> list[tuple[int, int, int]]:
    """(t, prev, cur) in the order of the forward pass: x[t] is read, S[prev] -> S[cur]."""
    if reverse:
        return [(t, t + 1, t) for t in range(T - 1, -1, -1)]
    return [(t, t, t + 1) for t in range(T)]


def outputs(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(T, H, B) view of the states written by steps 0..T-1, in time order."""
    return S[:-1] if reverse else S[1:]


def previous(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(T, H, B) view of the state each step 0..T-1 read."""
    return S[1:] if reverse else S[:-1]


def initial(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(H, B) the state before the first step of the direction."""
    return S[-1] if reverse else S[0]


def final(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(H, B) the state after the last step of the direction."""
    return S[0] if reverse else S[-1]


def project(X: np.ndarray, W_ih: np.ndarray, bias, scratch: np.ndarray, A: np.ndarray) -> None:
    """A (T, G, H, B) = W_ih @ X + bias for all steps, before the loop. X: (I, T*B); bias: (GH,)
    or None.

    With a batch of 8 or more, one batched matmul writes the per-step blocks directly (T GEMMs of
    (GH, I) x (I, B) in one call), then the bias is added. With a smaller batch, one GEMM into
    ``scratch`` (GH, T*B) and one pass that adds the bias while rearranging to per-step blocks
    are faster (a batched matmul of tiny matrices is dominated by per-matrix overhead).
    """
    T, G, H, B = A.shape
    A3 = A.reshape(T, G * H, B)
    if B >= 8:
        np.matmul(W_ih, X.reshape(-1, T, B).transpose(1, 0, 2), out=A3)
        if bias is not None:
            A3 += bias[:, None]
        return
    P = scratch.reshape(-1)[: G * H * T * B].reshape(G * H, T * B)
    np.dot(W_ih, X, P)
    P3 = P.reshape(G * H, T, B).transpose(1, 0, 2)  # (T, GH, B) view
    if bias is None:
        np.copyto(A3, P3)
    else:
        np.add(P3, bias[:, None], A3)


def feature_major(dG: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(T, G, H, B) per-step blocks -> (GH, T*B) matrix in ``out``'s memory (one copy pass)."""
    T, G, H, B = dG.shape
    M = out.reshape(-1)[: G * H * T * B].reshape(G * H, T * B)
    np.copyto(M.reshape(G * H, T, B), dG.reshape(T, G * H, B).transpose(1, 0, 2))
    return M


# ------------------------------------------------------------------------------ RNN and LSTM
#
# These two cells add the input and the recurrent projections before any nonlinearity, so a step
# is one GEMM over the stacked block [h; x; 1] (H + I + 1, B) with the joined weights
# [W_hh | W_ih | b_ih + b_hh]: no projection pass before the loop, no bias pass, and after the
# backward loop one GEMM gives dW_hh, dW_ih and the bias gradient together.


def stack_inputs(X: np.ndarray, H: int, B: int, reverse: bool, work) -> np.ndarray:
    """Z (T+1, H+I+1, B): block s holds [h; x; 1] for the step that reads S[s]. X: (I, T*B).

    The h rows of Z are the states S (``Z[:, :H]``); the loops write them. The x and ones rows of
    the block no step reads (the final state's) are never used.
    """
    I, T = X.shape[0], X.shape[1] // B
    Z = work("Z", (T + 1, H + I + 1, B))
    read = previous(Z, reverse)  # the T blocks the steps read, in time order
    np.copyto(read[:, H : H + I], X.reshape(I, T, B).transpose(1, 0, 2))
    read[:, H + I] = 1
    return Z


def joined_weights(W_hh, W_ih, bias, work, scale=None) -> np.ndarray:
    """[W_hh | W_ih | bias] (G*H, H+I+1), each gate block multiplied by ``scale`` (G, 1, 1) if
    given (the LSTM folds σ's ½ into it); a missing bias is a zero column."""
    (GH, H), I = W_hh.shape, W_ih.shape[1]
    W = work("W", (GH, H + I + 1))
    parts = ((W_hh, W[:, :H]), (W_ih, W[:, H : H + I]))
    for src, dst in parts:
        if scale is None:
            np.copyto(dst, src)
        else:
            G = scale.shape[0]
            np.multiply(src.reshape(G, GH // G, -1), scale, out=dst.reshape(G, GH // G, -1))
    if bias is None:
        W[:, H + I] = 0
    elif scale is None:
        W[:, H + I] = bias
    else:
        np.multiply(bias.reshape(G, -1), scale[:, :, 0], out=W[:, H + I].reshape(G, -1))
    return W


def preactivations(X, W_ih, W_hh, bias, Z, reverse, work, scale=None):
    """A function ``step(t, p, out)`` that writes the pre-activations of step t (G*H, B), given
    the state S[p], into ``out``; and whether they come multiplied by ``scale`` (see
    ``joined_weights``).

    With a batch of 8 or more, one GEMM of the joined weights by the block Z[p]. With a smaller
    batch each GEMM is a matrix-vector product that costs in proportion to the matrix, so the
    joined matrix (and its copy each forward) would cost more than it saves: the input
    projections of all steps are computed before the loop, and each step is W_hh @ h plus one.
    """
    (GH, H), B = W_hh.shape, Z.shape[2]
    if B >= 8:
        W = joined_weights(W_hh, W_ih, bias, work, scale)
        return (lambda t, p, out: np.dot(W, Z[p], out)), scale is not None
    T = Z.shape[0] - 1
    P = work("P", (T, 1, GH, B))
    project(X, W_ih, bias, work("Pm", (GH, T * B)), P)
    S = Z[:, :H]

    def step(t, p, out):
        np.dot(W_hh, S[p], out)
        np.add(out, P[t, 0], out)

    return step, False


def joined_grads(M: np.ndarray, Z: np.ndarray, H: int, reverse: bool, work) -> tuple:
    """Weight gradients from the gate gradients M (G*H, T*B), feature-major: one GEMM against
    the blocks the steps read. Returns the gradients of W_ih (G*H, I), W_hh (G*H, H), b_ih and
    b_hh (G*H,), views of new arrays."""
    T, K, B = Z.shape[0] - 1, Z.shape[1], Z.shape[2]
    Zf = work("Zf", (K, T * B))
    np.copyto(Zf.reshape(K, T, B), previous(Z, reverse).transpose(1, 0, 2))
    dW = M @ Zf.T
    db = dW[:, K - 1]
    return dW[:, H : K - 1], dW[:, :H], db, db.copy()  # b_ih and b_hh: same values, own memory


def rnn_forward(X, W_ih, W_hh, bias, h0, reverse, work, nonlinearity="tanh"):
    """X: (I, T*B); bias: b_ih + b_hh or None; h0: (H, B). Returns S (T+1, H, B) and the cache."""
    H, B = W_hh.shape[1], h0.shape[1]
    T = X.shape[1] // B
    Z = stack_inputs(X, H, B, reverse, work)
    S = Z[:, :H]
    pre, _ = preactivations(X, W_ih, W_hh, bias, Z, reverse, work)
    initial(S, reverse)[...] = h0
    for t, p, c in steps(T, reverse):
        h = S[c]
        pre(t, p, h)
        rnn.forward(h, h, nonlinearity)
    return S, {"S": S, "Z": Z, "reverse": reverse, "nonlinearity": nonlinearity}


def rnn_backward(dY, dh_final, cache, W_hhT, work):
    """dY: (T, H, B) dL/d outputs; dh_final: (H, B).

    Returns dG (H, T*B) (the gate gradients, feature-major, for dx), the gradients of
    (W_ih, W_hh, b_ih, b_hh) and dL/dh0 (H, B).
    """
    S, reverse = cache["S"], cache["reverse"]
    T, H, B = dY.shape
    F = work("F", (T, 1, H, B))
    np.copyto(F[:, 0], rnn.backward_factor(outputs(S, reverse), cache["nonlinearity"]))
    dG = F  # dL/da overwrites the factors step by step
    dh = work("dh", (H, B))
    last = None
    for t, _, _ in reversed(steps(T, reverse)):
        if last is None:
            np.add(dY[t], dh_final, dh)  # the last step: dL/dh from above and from the final state
        else:
            np.dot(W_hhT, dG[last, 0], dh)
            np.add(dh, dY[t], dh)
        rnn.backward(dh, F[t, 0], dG[t, 0])
        last = t
    dh0 = W_hhT @ dG[last, 0]
    M = feature_major(dG, work("M", (H, T * B)))
    return M, joined_grads(M, cache["Z"], H, reverse, work), dh0


def lstm_forward(X, W_ih, W_hh, bias, h0, c0, reverse, work):
    """X: (I, T*B); bias: b_ih + b_hh or None; h0, c0: (H, B).

    Returns S (T+1, H, B), the final cell state (H, B) (a view: copy it) and the cache.
    """
    H, B = W_hh.shape[1], h0.shape[1]
    T = X.shape[1] // B
    Z = stack_inputs(X, H, B, reverse, work)
    S = Z[:, :H]
    scale = lstm.COLUMNS[W_hh.dtype][0]  # σ's ½, folded into the joined weights
    pre, prescaled = preactivations(X, W_ih, W_hh, bias, Z, reverse, work, scale)
    A = work("A", (T, 4, H, B))  # pre-activations, then the gate activations
    F = work("F", (T, 5, H, B))  # tanh(c) in F[:, 4], then the derivative factors
    C = work("C", (T + 1, H, B))
    initial(S, reverse)[...] = h0
    initial(C, reverse)[...] = c0
    for t, p, c in steps(T, reverse):
        a = A[t]
        pre(t, p, a.reshape(4 * H, B))
        lstm.forward(a, C[p], C[c], F[t, 4], S[c], prescaled)
    return S, final(C, reverse), {"S": S, "Z": Z, "A": A, "F": F, "C": C, "reverse": reverse}


def lstm_backward(dY, dh_final, dc_final, cache, W_hhT, work):
    """Returns dA (4H, T*B) (the gate gradients, feature-major, for dx), the gradients of
    (W_ih, W_hh, b_ih, b_hh), dL/dh0 and dL/dc0."""
    A, F, C, reverse = cache["A"], cache["F"], cache["C"], cache["reverse"]
    T, H, B = dY.shape
    lstm.backward_factors(A, previous(C, reverse), F[:, 4], out=F)  # (T, 5, H, B)
    dA = F[:, :4]  # dL/da overwrites the factors step by step
    dh = work("dh", (H, B))
    dc = work("dc", (H, B))
    dc[...] = dc_final
    last = None
    for t, _, _ in reversed(steps(T, reverse)):
        if last is None:
            np.add(dY[t], dh_final, dh)  # the last step: dL/dh from above and from the final state
        else:
            np.dot(W_hhT, dA[last].reshape(4 * H, B), dh)
            np.add(dh, dY[t], dh)
        lstm.backward(dh, dc, F[t], A[t, 1], dA[t])
        last = t
    dh0 = W_hhT @ dA[last].reshape(4 * H, B)
    M = feature_major(dA, A)  # the activations are no longer needed
    return M, joined_grads(M, cache["Z"], H, reverse, work), dh0, dc.copy()


# ----------------------------------------------------------------------------------------- GRU


def gru_forward(X, W_ih, W_hh, bias, b_hn, h0, reverse, work):
    """X: (I, T*B); bias: b_ih plus the r, z parts of b_hh, or None; b_hn: (H,) the n part of
    b_hh, which r multiplies, or None; h0: (H, B). Returns S (T+1, H, B) and the cache."""
    H, B = W_hh.shape[1], h0.shape[1]
    T = X.shape[1] // B
    A = work("A", (T, 3, H, B))  # input projections, then the gate activations
    F = work("F", (T, 4, H, B))  # scratch, then the derivative factors
    project(X, W_ih, bias, F, A)
    GH = work("GH", (T, 3, H, B))  # hidden projections W_hh h + b_hh
    S = work("S", (T + 1, H, B))
    initial(S, reverse)[...] = h0
    b_hn = None if b_hn is None else b_hn[:, None]
    for t, p, c in steps(T, reverse):
        gh = GH[t]
        np.dot(W_hh, S[p], gh.reshape(3 * H, B))
        if b_hn is not None:
            np.add(gh[2], b_hn, gh[2])
        gru.forward(A[t], gh, S[p], S[c])
    return S, {"X": X, "S": S, "A": A, "F": F, "GH": GH, "reverse": reverse}


def gru_backward(dY, dh_final, cache, W_hhT, work):
    """Returns dGI (3H, T*B) (the input-side gate gradients, feature-major, for dx), the
    gradients of (W_ih, W_hh, b_ih, b_hh) and dL/dh0."""
    S, A, F, GH, reverse = cache["S"], cache["A"], cache["F"], cache["GH"], cache["reverse"]
    T, H, B = dY.shape
    gru.backward_factors(A, GH[:, 2], previous(S, reverse), out=F)  # (T, 4, H, B)
    dGH = work("dGH", (T, 3, H, B))
    dh = work("dh", (H, B))
    direct = work("direct", (H, B))
    last = None
    for t, _, _ in reversed(steps(T, reverse)):
        if last is None:
            np.add(dY[t], dh_final, dh)  # the last step: dL/dh from above and from the final state
        else:
            np.dot(W_hhT, dGH[last].reshape(3 * H, B), dh)
            np.add(dh, direct, dh)
            np.add(dh, dY[t], dh)
        gru.backward(dh, F[t], A[t, 1], dGH[t], F[t, 2], direct)  # dgi_n into F[:, 2]
        last = t
    dh0 = W_hhT @ dGH[last].reshape(3 * H, B)
    dh0 += direct
    F[:, :2] = dGH[:, :2]  # F[:, :3] is now dGI: dgi_r = dgh_r, dgi_z = dgh_z
    dGI = feature_major(F[:, :3], A)
    dGH = feature_major(dGH, GH)
    prev = work("prev", (H, T * B))  # the state each step read, feature-major
    np.copyto(prev.reshape(H, T, B), previous(S, reverse).transpose(1, 0, 2))
    grads = (dGI @ cache["X"].T, dGH @ prev.T, dGI.sum(axis=1), dGH.sum(axis=1))
    return dGI, grads, dh0
