"""The BLAS calls of one engine training step alone: a lower bound for the step.

``bptt bench`` shows it as "GEMM ms": the same matrix products as the engine's step (one layer,
one direction, T steps forward and back, weight gradients, dx), with the same shapes and memory
layouts, on random arrays, with none of the element-wise work. What the engine spends above it
is NumPy's element-wise passes and copies; what torch spends below it, it saves with its own
kernels. This mirrors ``bptt.nn.loops`` (``preactivations``, ``project``, ``gru_forward``, the
backward loops, ``joined_grads``, ``gru_grads``) and the dx products of ``bptt.nn.layers``: keep
them in step.
"""

import numpy as np

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def gemm_step(cell: str, B: int, H: int, T: int, I: int, dtype, seed: int = 0):
    """A function that runs the BLAS calls of one training step of ``cell`` (RNN, LSTM, GRU)."""
    G = GATES[cell]
    GH, K, TB = G * H, I + 1 + H, T * B
    rng = np.random.default_rng(seed)

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    Z, W_ih, W_hh, Zf = rand(T + 1, K, B), rand(GH, I), rand(GH, H), rand(K, TB)
    M = rand(4 * H if cell == "GRU" else GH, TB)  # the GRU's rows: dgh_r, dgh_z, dgh_n, dgi_n
    X, A, dh = rand(I, TB), rand(T, GH, B), rand(H, B)
    # the rows joined with the inputs (GRU: r, z), and the GRU's n gate
    J = GH if cell != "GRU" else 2 * H
    W_joined, W_aug, W_n = rand(J, K), rand(GH - J, I + 1), rand(H, 1 + H)
    out, gh_n = rand(J, B), rand(H, B)

    def step():
        if B >= 8:  # one GEMM per step over [x; 1; h]; the GRU's n gate: projection first
            if cell == "GRU":
                np.matmul(W_aug, Z[:T, : I + 1], out=A[:, :H])
            for t in range(T):
                np.dot(W_joined, Z[t], out)
                if cell == "GRU":
                    np.dot(W_n, Z[t, I:], gh_n)
        else:  # input projections first, then the recurrent products per step
            np.dot(W_ih, X)
            for t in range(T):
                np.dot(W_hh[:J], Z[t, I + 1 :], out)
                if cell == "GRU":
                    np.dot(W_n, Z[t, I:], gh_n)
        for t in range(T):
            np.dot(W_hh.T, A[t], dh)
        if cell == "GRU":
            M[: 2 * H] @ Zf.T
            M[2 * H : 3 * H] @ Zf[I:].T
            M[3 * H :] @ Zf[: I + 1].T
            M[: 2 * H].T @ W_ih[: 2 * H] + M[3 * H :].T @ W_ih[2 * H :]
        else:
            M @ Zf.T
            M.T @ W_ih

    return step
