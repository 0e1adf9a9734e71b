"""The matrix products of the time loops (``bptt.nn.loops``, whose docstring gives the layout):
the joined weights [W_ih | b | W_hh] and the input projections of the forward, a one-hot input's
column lookup, and the weight gradients of the backward (GEMMs over feature-major matrices, the
one-hot input's scatter).

Legend: T steps, B batch, I input features, H hidden (P: the size of h), G gates, V the size of a
one-hot input.
"""

import numpy as np

from .blocks import copy_feature_major, previous, states


def copy_scaled(src: np.ndarray, dst: np.ndarray, scale=None) -> None:
    """dst <- src, both (G*H, C), each gate block of rows multiplied by ``scale`` (G, 1, 1) if
    given (σ's ½, folded into the weights of the gates that take σ)."""
    if scale is None:
        np.copyto(dst, src)
    else:
        G, C = scale.shape[0], src.shape[1]
        shape = (G, src.shape[0] // G, C)  # (explicit: C may be 0, a one-hot input's W_ih)
        np.multiply(src.reshape(shape), scale, out=dst.reshape(shape))


def built(shared, name: str, make):
    """``make()``, or with a ``shared`` dict its value kept under ``name``: the weight matrices
    a forward builds, built once when ``bptt.nn.packing`` runs the forward in segments."""
    if shared is None:
        return make()
    if name not in shared:
        shared[name] = make()
    return shared[name]


def input_weights(W_ih, bias, out, scale=None) -> np.ndarray:
    """[W_ih | bias] into ``out`` (G*H, I+1), scaled per gate as ``copy_scaled``; a missing bias
    is a zero column."""
    I = W_ih.shape[1]
    copy_scaled(W_ih, out[:, :I], scale)
    if bias is None:
        out[:, I] = 0
    else:
        copy_scaled(bias[:, None], out[:, I : I + 1], scale)
    return out


def project(W_ih, bias, Z, reverse, work, A, key="", shared=None) -> None:
    """A (T, G, H, B) = W_ih @ x[t] + bias for all steps, before the loop. Z: the blocks from
    ``stack_inputs``; bias: (GH,) or None; ``key`` tells its scratch buffers apart from those
    of another projection of the same step; ``shared`` as in ``built``.

    With a batch of 8 or more, one batched matmul of [W_ih | bias] by the [x; 1] rows of the
    blocks writes the per-step blocks directly. With a smaller batch, the inputs copied
    feature-major (small), one GEMM into scratch (GH, T*B) and one pass that adds the bias while
    rearranging to per-step blocks are faster (a batched matmul of tiny matrices is dominated by
    per-matrix overhead).
    """
    T, G, H, B = A.shape
    I = W_ih.shape[1]
    A3 = A.reshape(T, G * H, B)
    if B >= 8:
        W = built(
            shared, "Wi" + key, lambda: input_weights(W_ih, bias, work("Wi" + key, (G * H, I + 1)))
        )
        np.matmul(W, previous(Z, reverse)[:, : I + 1], out=A3)
        return
    X = work("Xf" + key, (I, T * B))
    copy_feature_major(previous(Z, reverse)[:, :I], X)
    P = work("Pm" + key, (G * H, T * B))
    np.dot(W_ih, X, P)
    P3 = P.reshape(G * H, T, B).transpose(1, 0, 2)  # (T, GH, B) view
    if bias is None:
        np.copyto(A3, P3)
    else:
        np.add(P3, bias[:, None], A3)


def joined_weights(W_ih, W_hh, bias, out, scale=None) -> np.ndarray:
    """[W_ih | bias | W_hh] into ``out`` (G*H, I+1+H), scaled per gate as ``copy_scaled``."""
    I = W_ih.shape[1]
    input_weights(W_ih, bias, out[:, : I + 1], scale)
    copy_scaled(W_hh, out[:, I + 1 :], scale)
    return out


def preactivations(W_ih, W_hh, bias, Z, reverse, work, scale=None, shared=None, onehot=None):
    """For RNN, LSTM and the GRU's r and z gates: ``(W, reads, adds, prescaled)``, so that the
    pre-activations of step t (G*H, B), from the state it starts from, are ``W @ reads[t]``,
    plus ``adds[t]`` unless ``adds`` is None, multiplied by ``scale`` per gate (σ's ½, exact)
    if ``prescaled``. reads: (T, K, B) views of the blocks Z in time order; adds: None, a
    (T, G*H, B) array, or (one-hot input at B >= 8) an object whose ``[t]`` gathers step t's
    (G*H, B).
    ``shared`` as in ``built``; ``onehot``: None, or (W_in (G*H, V), ids (T, B)) for a one-hot
    input (then X is empty): step t adds the columns ids[t] of W_in. ``per_step`` walks them.

    With a batch of 8 or more, or a joined matrix of at most ``JOIN_SMALL`` entries, one GEMM
    of the joined weights [W_ih | b | W_hh] (copied each forward, ``scale`` folded in) by the
    block Z[p]. With a smaller batch each GEMM is a matrix-vector product that costs in
    proportion to the matrix, so a large joined matrix would cost more than it saves
    (measured: B=1 H=512 LSTM ~5% slower): the input projections are computed before the loop
    and each step is W_hh @ h plus one of them, unscaled (a scaled copy of W_hh costs more per
    call than the pass it saves per step at H=256, T=64). A small joined matrix at B < 8 is
    kept in column-major order, whose matrix-vector product OpenBLAS runs faster (2-core Xeon,
    64 x 33 float32, B=1: 0.63 against 0.88 us).
    """
    (GH, H), B, I = W_hh.shape, Z.shape[2], W_ih.shape[1]
    reads = previous(Z, reverse)
    if B >= 8 or GH * (I + 1 + H) <= JOIN_SMALL:
        W = built(
            shared, "W", lambda: joined_weights(W_ih, W_hh, bias, work("W", (GH, I + 1 + H)), scale)
        )
        if B < 8:
            W = built(shared, "WF", lambda: column_major(W, work("WF", W.shape[::-1])))
        if onehot is None:
            return W, reads, None, scale is not None
        W_in, ids = onehot
        scaled = work("Wl", W_in.shape)  # scaled as the joined weights (½ or 1: exact)
        copy_scaled(W_in, scaled, scale)
        if B < 8:
            return W, reads, lookup(scaled, ids), scale is not None
        W_rows = work("WlT", W_in.shape[::-1])  # (V, G*H): a step gathers B contiguous rows
        np.copyto(W_rows, scaled.T)  # (measured: 2.4 against 3.5 ms per 64 steps for
        rows = work("Wlr", (B, GH))  # gathering columns, G*H = 1024, V = 65, B = 32)
        return W, reads, _Gathered(W_rows, ids, rows), scale is not None
    P = work("P", (reads.shape[0], 1, GH, B))
    project(W_ih, bias, Z, reverse, work, P)
    if onehot is not None:
        P[:, 0] += lookup(*onehot)
    return W_hh, states(reads, H), P[:, 0], False


JOIN_SMALL = 4096  # entries of [W_ih | b | W_hh] up to which B < 8 also takes the joined GEMM
# (2-core Xeon, float32, B=1: 64 x 33 joined 0.63 us against 0.59 + 0.37 for W_hh h + P[t])


def column_major(W: np.ndarray, out: np.ndarray) -> np.ndarray:
    """W (R, C) copied into ``out`` (C, R); returns ``out.T``, W's values in column-major order."""
    np.copyto(out, W.T)
    return out.T


class _Gathered:
    """``adds`` of a one-hot input at B >= 8: ``[t]`` gathers the rows ids[t] of W_in^T
    (V, G*H) into ``rows`` (B, G*H) and returns them as (G*H, B)."""

    def __init__(self, W_rows, ids, rows):
        self.W_rows, self.ids, self.rows = W_rows, ids, rows

    def __getitem__(self, t):
        return np.take(self.W_rows, self.ids[t], axis=0, out=self.rows).T


def lookup(W_ih: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The input projections of a one-hot input, looked up: (T, G*H, B) with [t, :, b] the
    column ids[t, b] of W_ih (G*H, I), which is W_ih @ onehot(ids[t, b]) without the product.
    ids: (T, B) integers in [0, I)."""
    return np.ascontiguousarray(np.take(W_ih, ids, axis=1).transpose(1, 0, 2))


def scatter_columns(G: np.ndarray, ids: np.ndarray, columns: int) -> np.ndarray:
    """(R, columns): column v the sum of the columns of G (R, N) whose ids (N,) is v, which is
    G @ onehot(ids) (N, columns) without the product: the gradient of ``lookup``'s W_ih.

    The columns gathered in id order (one pass), then each id's run summed by one
    ``np.add.reduceat``. Measured (2-core Xeon, R = 1024, N = 2048, 65 ids, float32): 3.5 ms,
    against 7.6 for a sum per id, 23 for one ``np.bincount`` over all R*N entries and 30 for
    ``np.add.at``; the product by a one-hot matrix it replaces takes 1.4-1.6 ms with
    multi-threaded BLAS."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    out = np.zeros((G.shape[0], columns), G.dtype)
    out[:, sorted_ids[starts]] = np.add.reduceat(np.take(G, order, axis=1), starts, axis=1)
    return out


def joined_grads(M: np.ndarray, Zf: np.ndarray, H: int) -> tuple:
    """RNN and LSTM: the gradients of (W_ih, W_hh, b_ih, b_hh) from the gate gradients M
    (G*H, N), feature-major, in one GEMM by the blocks the steps read, Zf (I+1+H, N) (views of
    one new array; b_hh is a copy of b_ih, so that each gradient has its own memory)."""
    I = Zf.shape[0] - 1 - H
    dW = M @ Zf.T  # (G*H, I+1+H): [dW_ih | db | dW_hh]
    return dW[:, :I], dW[:, I + 1 :], dW[:, I], dW[:, I].copy()


def gru_grads(M: np.ndarray, Zf: np.ndarray, H: int) -> tuple:
    """GRU: the gradients of (W_ih, W_hh, b_ih, b_hh) from M (4H, N), feature-major rows
    [dgh_r, dgh_z, dgh_n, dgi_n] (dgi_r = dgh_r, dgi_z = dgh_z). Three GEMMs by the rows of the
    blocks Zf each needs: r, z by [x; 1; h], dgh_n by [1; h], dgi_n by [x; 1]."""
    I = Zf.shape[0] - 1 - H
    rz = M[: 2 * H] @ Zf.T  # [dW_i | db | dW_h] of r, z
    hn = M[2 * H : 3 * H] @ Zf[I:].T  # [db_hn | dW_hn]
    n = M[3 * H :] @ Zf[: I + 1].T  # [dW_in | db_in]
    return (
        np.concatenate((rz[:, :I], n[:, :I])),
        np.concatenate((rz[:, I + 1 :], hn[:, 1:])),
        np.concatenate((rz[:, I], n[:, I])),
        np.concatenate((rz[:, I], hn[:, 0])),
    )


def gradients(kind: str, M: np.ndarray, Zf: np.ndarray, H: int) -> tuple:
    """The pieces of dx (see the module docstring) and the gradients of (W_ih, W_hh, b_ih,
    b_hh), from the feature-major gate gradients M and blocks Zf of one direction."""
    if kind == "GRU":
        pieces = [(slice(0, 2 * H), M[: 2 * H]), (slice(2 * H, 3 * H), M[3 * H :])]
        return pieces, gru_grads(M, Zf, H)
    return [(slice(None), M)], joined_grads(M, Zf, H)


def hidden_n_weights(W_hn, b_hn, out) -> np.ndarray:
    """[b_hn | W_hn] into ``out`` (H, 1+H); a missing bias is a zero column."""
    out[:, 0] = 0 if b_hn is None else b_hn
    out[:, 1:] = W_hn
    return out


def projection_grad(caches, work) -> np.ndarray:
    """dW_hr (P, H) = Σ_t dh_t q_t^T over every step of ``caches`` (one direction: the one
    forward's cache, or its segments' with ``bptt.nn.packing``), from what the forward kept,
    q = o * tanh(c') (T, H, B), and the backward loop, dh = dL/dh' (T, P, B): both copied
    feature-major side by side, then one GEMM."""
    N = sum(c["Q"].shape[0] * c["Q"].shape[2] for c in caches)
    P, H = caches[0]["DH"].shape[1], caches[0]["Q"].shape[1]
    dHf, Qf = work("DHf", (P, N)), work("Qf", (H, N))
    col = 0
    for c in caches:
        T, _, B = c["Q"].shape
        copy_feature_major(c["DH"], dHf[:, col : col + T * B])
        copy_feature_major(c["Q"], Qf[:, col : col + T * B])
        col += T * B
    return dHf @ Qf.T
