"""Time loops of the engine: one direction of one layer, forward and backward.

Legend: T steps, B batch, I input features, H hidden, G gates (RNN 1, LSTM 4, GRU 3); P the
size of the state h, H except for an LSTM with a projection (below), where P < H.

Layout. Inside the engine every array is features first, then batch (the course's (n_a, m)).
Per-step buffers are time-major with contiguous blocks, so the recurrent product is
``W @ block`` (the faster GEMM form here) and the element-wise work of a step runs over
contiguous memory. A step reads the block ``Z[s] = [x; 1; h]`` (I + 1 + P, B): its input, a row
of ones (for the bias) and what the recurrent product reads of the state it starts from (the
state itself, or with recurrent dropout the masked state m ⊙ h, below). The big GEMMs over all
steps use feature-major matrices (features, T*B): the blocks the steps read, and the gate
gradients, each transposed once after the backward loop.

Forward. RNN and LSTM (and the GRU's r and z gates) add the input and recurrent projections
before any nonlinearity, so with a batch of 8 or more (or a small joined matrix) a step is one
GEMM of the joined weights [W_ih | b | W_hh] by Z[s] (``preactivations``). Other batches under
8, and the GRU's n gate (whose hidden side r multiplies), compute the input projections of all
steps before the loop (``project``, biases folded in), and each step does W_hh @ h.

Per-step cost. At a small batch a step's NumPy calls cost more than their arithmetic (about
0.4 us per ufunc call and 0.6-0.8 us per matrix-vector product here, against a few ns of work
for a (16, 1) block), so the loops make one call per equation, give every ufunc operands of one
shape (broadcasting a per-gate column costs ~0.6 us more per call), and take their per-step
views from NumPy's iteration over whole-sequence views (``per_step``) rather than indexing.
One-hot input (``onehot=(W_in, ids)``, layer 0 given ids, X empty so Z = [1; h]): step t adds
the columns ids[t] of W_in (scaled like the joined weights) to the GEMM's result, and the B < 8
path adds them to the projections (``lookup``); backward, dW_ih is the gate gradients' columns
summed per id (``scatter_columns``) and no dx is computed.
Backward. The cell's derivative factors are computed for the whole sequence at once; each step
does one GEMM ``W_hh.T @ dG`` and a few products; the weight and bias gradients are GEMMs of the
feature-major gate gradients by the feature-major blocks (``joined_grads``, ``gru_grads``).
The gradient of the input goes back in pieces, pairs (rows, G) with dx = sum of
``W_ih[rows].T @ G``: one for RNN and LSTM, two for the GRU, whose input-side gate gradients
are not one block (dgi_r, dgi_z equal dgh_r, dgh_z; dgi_n is its own).

States live in S (T + 1, P, B). Forward in time S[0] is the initial state and S[t + 1] the
state after x[t]; in reverse (the second direction of a bidirectional layer) S[T] is the initial
state and S[t] the state after x[t]. Without recurrent dropout S is the h rows of Z,
S = Z[:, I+1:], so a step writes its state straight into the block the next step reads.

Recurrent dropout (``mask`` m (P, B), one per sequence and unit, the same at every step; see
``bptt.nn.dropout``) changes only what the recurrent product reads: W_hh h becomes W_hh (m ⊙ h)
in every gate (for the GRU also inside r * (W_hn (m ⊙ h) + b_hn)), while the state carried on,
the outputs and the GRU's z * h use h itself. Then S is a buffer of its own and after each step
the loop writes m ⊙ S[s] into the h rows of Z[s] (``recurrent_inputs``' ``fed``); the joined
GEMM, the blocks of the weight gradients (dW_hh = sum over steps of dG (m ⊙ h)^T) and the GRU's
W_hn product all read Z, so they take the mask with no other change. Backward, the gradient that
the recurrent product sends to the previous state is m ⊙ (W_hh^T dG), one multiply per step.
Without a mask neither multiply runs, and nothing else differs.

LSTM projection (``W_hr`` (P, H), torch's ``proj_size``; the equation and its derivative in
``bptt.cells.lstm``). The h rows of Z and the states S are P rows, W_hh is (4H, P), while the gates,
the cell states C and the factors keep H. The cell writes q = o * tanh(c') into Q[t] (H, B)
instead of the state, and the step then writes S[s] = W_hr @ Q[t] (one more GEMM per step); Q
is kept for the backward. Backward, each step copies its total dL/dh' (P, B) into DH[t] and
gives the cell dq = W_hr^T dh (H, B); after the loop dW_hr = Σ_t dh_t q_t^T is one GEMM of DH
and Q feature-major (``projection_grad``, over all segments of a packed batch). Without W_hr
none of this runs.

Per-step state gradients (``kept``, only when a caller asks: ``keep_state_grads``): the
backward loops can copy their running dh, at the point where it is the total dL/dh_t (from the
output, from the next step through the mask if any, and from the final state at the last step),
and the LSTM cell's total dL/dc_t (``cells.lstm.backward``'s ``dc_total``), into per-step
arrays; without them the loops do nothing more.

The helpers the loops share live in two modules: ``bptt.nn.blocks`` (the per-step blocks: views
of the states by step, ``stack_inputs``, ``recurrent_inputs``, ``per_step``, the feature-major
copies) and ``bptt.nn.products`` (the matrix products: the joined weights, ``project``,
``preactivations``, the one-hot ``lookup`` and ``scatter_columns``, the weight-gradient GEMMs).

The loops keep no state: what backward needs goes out in a cache dict. Scratch buffers come
from ``work(name, shape)``, reused across calls of the same shape; nothing handed to a user
lives in them.

Variable lengths (``bptt.nn.packing``): the batch is sorted by length and cut into segments of
steps that run the same number of sequences; each segment is one call of these loops (T, B the
segment's steps and width), its buffers consecutive pieces of one ``packing.Arena`` per name,
the weight matrices (W, Wi*, Wn) built by the first segment and shared (``built``). Backward
runs ``*_backward_steps`` per segment and ``gradients`` once over all segments' columns.

Scratch buffers and what each holds in which phase. Correctness depends on this order: a buffer
is overwritten only after its last reader (G' is 5 for the LSTM, 4 for the GRU, 1 for the RNN).

=========  =================  ===========================  ====================================
buffer     shape              forward                      backward
=========  =================  ===========================  ====================================
Z          (T+1, I+1+P, B)    blocks [x; 1; h]; S is its   read by the factors (RNN, GRU) and
                              h rows (the outputs), or     copied feature-major into Zf
                              with recurrent dropout they
                              hold m ⊙ S
S          (T+1, P, B)        recurrent dropout only: the  read by the factors (RNN, GRU)
                              states (the outputs)
W          (GH, I+1+P)        joined weights, B >= 8       -
P          (T, 1, GH, B)      input projections, B < 8     -
Wi, Xf,    (GH, I+1), (I,     ``project``'s scratch        -
Pm (+key)  T*B), (GH, T*B)
A          (T, G, H, B)       pre-activations, then the    read by the factors and each step
                              gate activations (LSTM, GRU) (f, z); LSTM: then reused as M
C          (T+1, H, B)        LSTM cell states             read by the factors
GHn        (T, H, B)          GRU W_hn h + b_hn            read by the factors
Wn         (H, 1+H)           GRU [b_hn | W_hn]            -
F          (T, G', H, B)      LSTM: tanh(c) in F[:, 4]     derivative factors (for the LSTM
                                                           from tanh(c)), then overwritten step
                                                           by step by the gate gradients
Q          (T, H, B)          LSTM projection: o * tanh(c) read by ``projection_grad``
dh, dc,    (P, B), (H, B)     -                            running dL/dh, dL/dc, the GRU's
direct                                                     z * dh term, per step
DH, dq     (T, P, B), (H, B)  -                            LSTM projection: each step's dL/dh,
                                                           W_hr^T dh (the cell's dh)
M          (GH or 4H, T*B)    -                            gate gradients feature-major, for
                                                           the weight GEMMs and dx (LSTM: in A)
Zf         (I+1+P, T*B)       -                            the blocks feature-major
DHf, Qf    (P, T*B), (H, T*B) -                            DH and Q feature-major (dW_hr)
---------  -----------------  ---------------------------  ------------------------------------
packing.py (variable lengths; N = the columns of all segments, w the segment's width)
---------  -----------------  ---------------------------  ------------------------------------
(each of   per segment        as above, one piece per      as above, one piece per segment
the above)                    segment (``packing.Arena``)
d0, d1     (P, w), (H, w)     -                            a segment's dL/d its final h (and
                                                           c), zero in its extra columns
M, Zf      (R, N), (K, N)     -                            all segments' gate gradients and
                                                           blocks feature-major (R = GH or 4H)
DHf, Qf    (P, N), (H, N)     -                            all segments' DH and Q (dW_hr)
=========  =================  ===========================  ====================================
"""

import numpy as np

from ..cells import gru, lstm, rnn
from .blocks import (
    blocks_read,
    feature_major,
    final,
    initial,
    outputs,
    per_step,
    previous,
    recurrent_inputs,
    stack_inputs,
)
from .products import (
    built,
    gradients,
    hidden_n_weights,
    lookup,
    preactivations,
    project,
    projection_grad,
)

# ----------------------------------------------------------------------------------------- RNN
#
# The loops below visit the steps through ``per_step`` (per-step views made by NumPy's
# iteration), keep every operand of a step's ufuncs the same shape (broadcasting costs more
# than the work at a small batch) and make one call per equation; the forward visits steps in
# its direction's order, the backward in the reverse (``per_step(..., not reverse)``).


def rnn_forward(X, W_ih, W_hh, bias, h0, reverse, work, nonlinearity="tanh", shared=None,
                mask=None, onehot=None):
    """X: (T, I, B); bias: b_ih + b_hh or None; h0: (H, B); ``shared`` as in ``built``; mask:
    recurrent dropout's (H, B) or None; onehot: None, or (W_in, ids) as in ``preactivations``
    (X empty). Returns S (T+1, H, B) and the cache."""
    T, H = X.shape[0], W_hh.shape[1]
    Z = stack_inputs(X, H, reverse, work)
    S, fed = recurrent_inputs(Z, h0, mask, reverse, work)
    W, reads, adds, _ = preactivations(W_ih, W_hh, bias, Z, reverse, work, shared=shared,
                                       onehot=onehot)
    for z, add, h, zh in zip(per_step(reads, T, reverse), per_step(adds, T, reverse),
                             per_step(outputs(S, reverse), T, reverse),
                             per_step(fed, T, reverse), strict=True):
        np.dot(W, z, h)
        if add is not None:
            np.add(h, add, h)
        rnn.forward(h, h, nonlinearity)
        if zh is not None:
            np.multiply(h, mask, zh)
    return S, {"Z": Z, "S": S, "mask": mask, "reverse": reverse, "nonlinearity": nonlinearity}


def rnn_backward(dY, dh_final, cache, W_hhT, work, kept=None):
    """dY: (T, H, B) dL/d outputs; dh_final: (H, B); kept: None, or (dH,) with dH (T, H, B)
    that gets the total dL/dh_t of every step (``kept`` in the module docstring).

    Returns the pieces of dx (see the module docstring), the gradients of
    (W_ih, W_hh, b_ih, b_hh) and dL/dh0 (H, B).
    """
    dG, dh0 = rnn_backward_steps(dY, dh_final, cache, W_hhT, work, kept)
    T, _, H, B = dG.shape
    M = feature_major(dG, work("M", (H, T * B)))
    return *gradients("RNN", M, blocks_read(cache["Z"], cache["reverse"], work), H), dh0


def rnn_backward_steps(dY, dh_final, cache, W_hhT, work, kept=None):
    """The time loop of ``rnn_backward``: dL/da per step, dG (T, 1, H, B), and dL/dh0 (H, B);
    ``kept`` as there."""
    S, mask, back = cache["S"], cache["mask"], not cache["reverse"]
    T, H, B = dY.shape
    F = work("F", (T, 1, H, B))
    rnn.backward_factor(outputs(S, cache["reverse"]), cache["nonlinearity"], out=F[:, 0])
    dG = F  # dL/da overwrites the factors step by step
    dh = work("dh", (H, B))
    last = None
    for dy, g, keep in zip(per_step(dY, T, back), per_step(F[:, 0], T, back),
                           per_step(None if kept is None else kept[0], T, back), strict=True):
        if last is None:
            np.add(dy, dh_final, dh)  # the last step: dL/dh from above and from the final state
        else:
            np.dot(W_hhT, last, dh)
            if mask is not None:
                np.multiply(dh, mask, dh)
            np.add(dh, dy, dh)
        if keep is not None:
            np.copyto(keep, dh)
        rnn.backward(dh, g, g)
        last = g
    dh0 = W_hhT @ last
    return dG, dh0 if mask is None else np.multiply(dh0, mask, dh0)


# ---------------------------------------------------------------------------------------- LSTM


def lstm_forward(X, W_ih, W_hh, bias, h0, c0, reverse, work, shared=None, mask=None,
                 onehot=None, W_hr=None):
    """X: (T, I, B); bias: b_ih + b_hh or None; h0: (P, B), c0: (H, B); ``shared`` as in
    ``built``; mask: recurrent dropout's (P, B) or None; onehot: None, or (W_in, ids) as in
    ``preactivations`` (X empty); W_hr: the projection (P, H) or None (then P = H).

    Returns S (T+1, P, B), the final cell state (H, B) (a view: copy it) and the cache.
    """
    (T, _, B), P, H = X.shape, W_hh.shape[1], W_hh.shape[0] // 4
    Z = stack_inputs(X, P, reverse, work)
    S, fed = recurrent_inputs(Z, h0, mask, reverse, work)
    scale = lstm.COLUMNS[W_hh.dtype][0]  # σ's ½, folded into the weights and projections
    A = work("A", (T, 4, H, B))  # pre-activations, then the gate activations
    W, reads, adds, prescaled = preactivations(W_ih, W_hh, bias, Z, reverse, work, scale, shared,
                                               onehot)
    F = work("F", (T, 5, H, B))  # tanh(c) in F[:, 4], then the derivative factors
    C = work("C", (T + 1, H, B))
    initial(C, reverse)[...] = c0
    Q = None if W_hr is None else work("Q", (T, H, B))  # projection: o * tanh(c') of each step
    gates = lstm.columns(H, B, W_hh.dtype)
    for a, a4, z, add, c_prev, c, tanh_c, h, q, zh in zip(
        per_step(A, T, reverse), per_step(A.reshape(T, 4 * H, B), T, reverse),
        per_step(reads, T, reverse), per_step(adds, T, reverse),
        per_step(previous(C, reverse), T, reverse), per_step(outputs(C, reverse), T, reverse),
        per_step(F[:, 4], T, reverse), per_step(outputs(S, reverse), T, reverse),
        per_step(Q, T, reverse), per_step(fed, T, reverse), strict=True,
    ):
        np.dot(W, z, a4)
        if add is not None:
            np.add(a4, add, a4)
        if q is None:
            lstm.forward(a, c_prev, c, tanh_c, h, prescaled, gates)
        else:
            lstm.forward(a, c_prev, c, tanh_c, q, prescaled, gates)
            np.dot(W_hr, q, h)  # h' = W_hr (o * tanh(c'))
        if zh is not None:
            np.multiply(h, mask, zh)
    cache = {"Z": Z, "A": A, "F": F, "C": C, "mask": mask, "reverse": reverse, "Q": Q,
             "W_hr": W_hr}
    return S, final(C, reverse), cache


def lstm_backward(dY, dh_final, dc_final, cache, W_hhT, work, kept=None):
    """dY: (T, P, B); dh_final: (P, B); dc_final: (H, B); kept: None, or (dH, dC), (T, P, B)
    and (T, H, B), that get the total dL/dh_t and dL/dc_t of every step. Returns the pieces of
    dx (see the module docstring), the gradients of (W_ih, W_hh, b_ih, b_hh), and of W_hr after
    them with a projection, dL/dh0 and dL/dc0."""
    dA, dh0, dc0 = lstm_backward_steps(dY, dh_final, dc_final, cache, W_hhT, work, kept=kept)
    M = feature_major(dA, cache["A"])  # the activations are no longer needed
    P = dY.shape[1]
    pieces, g = gradients("LSTM", M, blocks_read(cache["Z"], cache["reverse"], work), P)
    if cache["Q"] is not None:
        g = (*g, projection_grad([cache], work))
    return pieces, g, dh0, dc0


def lstm_backward_steps(dY, dh_final, dc_final, cache, W_hhT, work, dc_ends=None, kept=None):
    """The time loop of ``lstm_backward``: dL/da per step, dA (T, 4, H, B) (a view of the
    cache's F), dL/dh0 (P, B) and dL/dc0 (H, B); ``kept`` as there. dc_ends: None, or
    {t: (columns, (H, m) array)}, the gradients of final cell states reached at step t, added
    to dL/dc there (sequences of a packed batch that end inside a segment, ``bptt.nn.packing``).
    With a projection, each step's total dL/dh' goes into cache["DH"] (T, P, B), for
    ``projection_grad``, and the cell gets dq = W_hr^T dh."""
    A, F, C, mask, reverse = cache["A"], cache["F"], cache["C"], cache["mask"], cache["reverse"]
    (T, P, B), H = dY.shape, A.shape[2]
    lstm.backward_factors(A, previous(C, reverse), F[:, 4], out=F)  # (T, 5, H, B)
    dA = F[:, :4]  # dL/da overwrites the factors step by step
    dh = work("dh", (P, B))
    dc = work("dc", (H, B))
    DH = None
    if cache["Q"] is not None:  # the projection: per-step dL/dh' kept, dq = W_hr^T dh into the cell
        DH = cache["DH"] = work("DH", (T, P, B))
        W_hrT, dq = cache["W_hr"].T, work("dq", (H, B))
    dc[...] = dc_final
    back = not reverse
    kept_h, kept_c = (None, None) if kept is None else kept
    last = None
    for t, dy, f_t, f_gate, da, da4, keep_h, keep_c, dh_kept in zip(
        per_step(range(T), T, back), per_step(dY, T, back), per_step(F, T, back),
        per_step(A[:, 1], T, back), per_step(dA, T, back),
        per_step(dA.reshape(T, 4 * H, B), T, back), per_step(kept_h, T, back),
        per_step(kept_c, T, back), per_step(DH, T, back), strict=True,
    ):
        if last is None:
            np.add(dy, dh_final, dh)  # the last step: dL/dh from above and from the final state
        else:
            np.dot(W_hhT, last, dh)
            if mask is not None:
                np.multiply(dh, mask, dh)
            np.add(dh, dy, dh)
        if dc_ends and t in dc_ends:
            dc[:, dc_ends[t][0]] += dc_ends[t][1]
        if keep_h is not None:
            np.copyto(keep_h, dh)
        if dh_kept is None:
            lstm.backward(dh, dc, f_t, f_gate, da, keep_c)
        else:
            np.copyto(dh_kept, dh)
            lstm.backward(np.dot(W_hrT, dh, dq), dc, f_t, f_gate, da, keep_c)
        last = da4
    dh0 = W_hhT @ last
    if mask is not None:
        np.multiply(dh0, mask, dh0)
    return dA, dh0, dc.copy()


# ----------------------------------------------------------------------------------------- GRU


def gru_forward(X, W_ih, W_hh, bias, b_hn, h0, reverse, work, shared=None, mask=None,
                onehot=None):
    """X: (T, I, B); bias: b_ih plus the r, z parts of b_hh, or None; b_hn: (H,) the n part of
    b_hh, which r multiplies, or None; h0: (H, B); ``shared`` as in ``built``; mask: recurrent
    dropout's (H, B) or None; onehot: None, or (W_in (3H, V), ids) as in ``preactivations``
    (X empty), the input side of the gates r, z, n. Returns S (T+1, H, B) and the cache.

    The r and z gates add their input and hidden sides like an LSTM's, so they take
    ``preactivations`` (σ's ½ folded into the weights); the n gate's input side is projected
    before the loop, and its hidden side W_hn h + b_hn is one GEMM per step of [b_hn | W_hn]
    by the [1; h] rows of the block.
    """
    (T, I, B), H = X.shape, W_hh.shape[1]
    Z = stack_inputs(X, H, reverse, work)
    S, fed = recurrent_inputs(Z, h0, mask, reverse, work)
    A = work("A", (T, 3, H, B))  # pre-activations, then the gate activations r, z, n
    b_rz, b_in = (None, None) if bias is None else (bias[: 2 * H], bias[2 * H :])
    W, reads, adds, prescaled = preactivations(
        W_ih[: 2 * H], W_hh[: 2 * H], b_rz, Z, reverse, work, gru.RZ_SCALE[W_hh.dtype], shared,
        None if onehot is None else (onehot[0][: 2 * H], onehot[1]),
    )
    project(W_ih[2 * H :], b_in, Z, reverse, work, A[:, 2:], "n", shared)
    if onehot is not None:
        A[:, 2] += lookup(onehot[0][2 * H :], onehot[1])
    W_n = built(shared, "Wn", lambda: hidden_n_weights(W_hh[2 * H :], b_hn, work("Wn", (H, 1 + H))))
    GH_n = work("GHn", (T, H, B))  # W_hn h + b_hn, kept for the backward
    half = gru.halves(H, B, W_hh.dtype)
    for a, rz, z, add, zn, gh_n, h_prev, h, zh in zip(
        per_step(A, T, reverse), per_step(A[:, :2].reshape(T, 2 * H, B), T, reverse),
        per_step(reads, T, reverse), per_step(adds, T, reverse),
        per_step(previous(Z, reverse)[:, I:], T, reverse), per_step(GH_n, T, reverse),
        per_step(previous(S, reverse), T, reverse), per_step(outputs(S, reverse), T, reverse),
        per_step(fed, T, reverse), strict=True,
    ):
        np.dot(W, z, rz)
        if add is not None:
            np.add(rz, add, rz)
        np.dot(W_n, zn, gh_n)
        gru.forward(a, gh_n, h_prev, h, prescaled, half)
        if zh is not None:
            np.multiply(h, mask, zh)
    return S, {"Z": Z, "S": S, "A": A, "GHn": GH_n, "mask": mask, "reverse": reverse}


def gru_backward(dY, dh_final, cache, W_hhT, work, kept=None):
    """kept: None, or (dH,) with dH (T, H, B) that gets the total dL/dh_t of every step.
    Returns the pieces of dx (see the module docstring), the gradients of
    (W_ih, W_hh, b_ih, b_hh) and dL/dh0."""
    D, dh0 = gru_backward_steps(dY, dh_final, cache, W_hhT, work, kept)
    T, _, H, B = D.shape
    M = feature_major(D, work("M", (4 * H, T * B)))
    return *gradients("GRU", M, blocks_read(cache["Z"], cache["reverse"], work), H), dh0


def gru_backward_steps(dY, dh_final, cache, W_hhT, work, kept=None):
    """The time loop of ``gru_backward``: per step D (T, 4, H, B) = [dgh_r, dgh_z, dgh_n,
    dgi_n], and dL/dh0 (H, B); ``kept`` as there."""
    S, A, GH_n, mask, reverse = (cache[k] for k in ("S", "A", "GHn", "mask", "reverse"))
    T, H, B = dY.shape
    F = work("F", (T, 4, H, B))
    gru.backward_factors(A, GH_n, previous(S, reverse), out=F)
    D = F  # [dgh_r, dgh_z, dgh_n, dgi_n] overwrite the factors step by step
    dh = work("dh", (H, B))
    direct = work("direct", (H, B))
    back = not reverse
    last = None
    for dy, f_t, z_gate, d3, keep in zip(
        per_step(dY, T, back), per_step(F, T, back), per_step(A[:, 1], T, back),
        per_step(D[:, :3].reshape(T, 3 * H, B), T, back),
        per_step(None if kept is None else kept[0], T, back), strict=True,
    ):
        if last is None:
            np.add(dy, dh_final, dh)  # the last step: dL/dh from above and from the final state
        else:
            np.dot(W_hhT, last, dh)
            if mask is not None:
                np.multiply(dh, mask, dh)
            np.add(dh, direct, dh)
            np.add(dh, dy, dh)
        if keep is not None:
            np.copyto(keep, dh)
        gru.backward(dh, f_t, z_gate, f_t, direct)
        last = d3
    dh0 = W_hhT @ last
    if mask is not None:
        np.multiply(dh0, mask, dh0)
    dh0 += direct
    return D, dh0
