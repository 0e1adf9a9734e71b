"""The per-step blocks of the time loops (``bptt.nn.loops``, whose docstring gives the layout):
views of the states by step and direction, the blocks [x; 1; h] the steps read, and the copies
between per-step blocks (T, R, B) and feature-major matrices (R, T*B).

Legend: T steps, B batch, I input features, H hidden (P: the size of h), R rows.
"""

import itertools

import numpy as np


def outputs(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(T, H, B) view of the states written by steps 0..T-1, in time order."""
    return S[:-1] if reverse else S[1:]


def previous(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(T, H, B) view of the state each step 0..T-1 read."""
    return S[1:] if reverse else S[:-1]


def initial(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(H, B) the state before the first step of the direction."""
    return S[-1] if reverse else S[0]


def place(S_out: np.ndarray, d: int, out: np.ndarray, Y, last: bool, batch_first: bool):
    """Direction d's outputs S_out (T, P, B) of one layer where they go: into the caller's
    ``out`` (T, B, D*P) (or batch-first) for the last layer, else into the next layer's input
    Y (T, D*P, B), or, with one direction (Y None), S_out itself is that input. Returns the
    next layer's input."""
    P = S_out.shape[1]
    if last:
        np.copyto(out[:, :, d * P : (d + 1) * P],
                  S_out.transpose(2, 0, 1) if batch_first else S_out.transpose(0, 2, 1))
        return Y
    if Y is None:
        return S_out
    np.copyto(Y[:, d * P : (d + 1) * P], S_out)
    return Y


def final(S: np.ndarray, reverse: bool) -> np.ndarray:
    """(H, B) the state after the last step of the direction."""
    return S[0] if reverse else S[-1]


def stack_inputs(X: np.ndarray, H: int, reverse: bool, work) -> np.ndarray:
    """Z (T+1, I+1+H, B) from X (T, I, B): the block each step reads is [x[t]; 1; state]. The
    h rows Z[:, I+1:] are left for ``recurrent_inputs`` and the loop to write; the x and ones
    rows of the one block no step reads (the final state's) are never used."""
    T, I, B = X.shape
    Z = work("Z", (T + 1, I + 1 + H, B))
    read = previous(Z, reverse)  # the T blocks the steps read, in time order
    np.copyto(read[:, :I], X)
    read[:, I] = 1
    return Z


def states(Z: np.ndarray, H: int) -> np.ndarray:
    """(T+1, H, B) view of the h rows of Z: what enters the recurrent product (the states
    themselves without recurrent dropout)."""
    return Z[:, Z.shape[1] - H :]


def recurrent_inputs(Z: np.ndarray, h0: np.ndarray, mask, reverse: bool, work) -> tuple:
    """The states S (T+1, H, B), holding the initial state h0 (H, B), and ``fed``: None, or the
    (T, H, B) rows of Z (time order) into which step t writes what enters the next recurrent
    product, m ⊙ S[cur] (done here for h0; the loop does it after each step).

    Without a mask (None) those rows are the states: S is a view of them and ``fed`` is None.
    With recurrent dropout's mask m (H, B), S is a buffer of its own.
    """
    R = states(Z, h0.shape[0])
    S = R if mask is None else work("S", R.shape)
    initial(S, reverse)[...] = h0
    if mask is None:
        return S, None
    np.multiply(initial(S, reverse), mask, out=initial(R, reverse))
    return S, outputs(R, reverse)


def per_step(seq, T: int, reverse: bool):
    """The items of ``seq`` (indexed by step, time order) in the order the loop visits them:
    an array's per-step views made by NumPy's own iteration (cheaper than indexing in Python),
    None repeated if ``seq`` is None."""
    if seq is None:
        return itertools.repeat(None, T)
    if isinstance(seq, np.ndarray):
        return seq[::-1] if reverse else seq
    return map(seq.__getitem__, range(T - 1, -1, -1) if reverse else range(T))


def blocks_read(Z: np.ndarray, reverse: bool, work) -> np.ndarray:
    """The blocks the steps read, feature-major (I+1+H, T*B), in one copy pass."""
    T, K, B = Z.shape[0] - 1, Z.shape[1], Z.shape[2]
    Zf = work("Zf", (K, T * B))
    copy_feature_major(previous(Z, reverse), Zf)
    return Zf


def copy_feature_major(src: np.ndarray, dst: np.ndarray) -> None:
    """dst (R, T*B) <- src (T, R, B), per-step blocks to a feature-major matrix.

    In chunks of 32 KiB of the source (at least eight steps) unless the whole is under 128 KiB:
    with R a power of two, one pass reads the source at a power-of-two stride and thrashes the
    cache (measured here, R = 1024: B = 1 0.18 ms in one pass, 0.044 ms in chunks of eight
    steps; B = 32 0.75 against 0.52 ms); with small blocks eight steps a call made the copy's
    call overhead the cost (R = 64, B = 1, T = 5000: 625 calls).
    """
    T, R, B = src.shape
    d = dst.reshape(R, T, B)
    step = T if src.nbytes < 1 << 17 else max(8, (1 << 15) // max(R * B * src.itemsize, 1))
    for t in range(0, T, step):
        np.copyto(d[:, t : t + step], src[t : t + step].transpose(1, 0, 2))


def feature_major(dG: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(T, G, H, B) per-step blocks -> (GH, T*B) matrix in ``out``'s memory (one copy pass)."""
    T, G, H, B = dG.shape
    M = out.reshape(-1)[: G * H * T * B].reshape(G * H, T * B)
    copy_feature_major(dG.reshape(T, G * H, B), M)
    return M
