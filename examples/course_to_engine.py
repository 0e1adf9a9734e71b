"""From the course loop to the fast engine, one change at a time, timed (docs/course_to_engine.md).

    python examples/course_to_engine.py [--hidden 256] [--batch 32] [--steps 64] [--repeat 7]

One training step of a vanilla RNN (forward over T_x steps from a0, backward to dx, da0 and every
weight gradient, for da = R) on the same parameters, written seven ways, each one change away
from the one before:

  0 course      bptt.stepwise.rnn_forward + rnn_backward: the course's functions (with their
                argument checks and per-step caches)
  1 loop        the same loop, bare: per step dz = da * (1 - a²), dWax += dz xtᵀ, dWaa += dz a_prevᵀ
  2 time-major  the same loop on time-major copies (T_x, n, m): each step's block contiguous
  3 gemm        the loop keeps only dz⟨t⟩ and da_prev; after it, dWax = dZ Xᵀ, dWaa = dZ A_prevᵀ,
                dba = Σ dZ and dx = Waxᵀ dZ are single GEMMs over all T_x·m columns
  4 project     and the input projection Wax X + ba is one GEMM before the forward loop
  5 buffers     buffers allocated once and reused, every operation written into them (out=),
                the factor 1 - a² for all steps at once
  6 engine      bptt.RNN (bptt/nn/loops.py), loaded with bptt.convert.rnn_to_state_dict

Every version's gradients are checked against version 0 before anything is timed. The versions
run in turn, round after round (so a slower minute of a shared machine hits them all), and the
median of the rounds is printed. Then σ two ways, and the LSTM course vs engine.
"""

import argparse
import platform
import time

import numpy as np

import bptt
from bptt import convert
from bptt import stepwise as sw
from bptt.cells import activations

# ------------------------------------------------------------------------- the six versions

def course(x, a0, p, R):
    a, _, caches = sw.rnn_forward(x, a0, p)
    g = sw.rnn_backward(R, caches)
    return g["dx"], g["da0"], g["dWax"], g["dWaa"], g["dba"]


def loop(x, a0, p, R):
    """The course's loop with nothing else: weight gradients summed step by step."""
    Wax, Waa, ba = p["Wax"], p["Waa"], p["ba"]
    T = x.shape[2]
    a = [a0]
    for t in range(T):
        a.append(np.tanh(Wax @ x[:, :, t] + Waa @ a[-1] + ba))
    dx = np.empty_like(x)
    dWax, dWaa, dba = np.zeros_like(Wax), np.zeros_like(Waa), np.zeros_like(ba)
    da_prev = np.zeros_like(a0)
    for t in reversed(range(T)):
        dz = (R[:, :, t] + da_prev) * (1 - a[t + 1] ** 2)
        dWax += dz @ x[:, :, t].T                   # one small GEMM per step, per weight
        dWaa += dz @ a[t].T
        dba += dz.sum(axis=1, keepdims=True)
        dx[:, :, t] = Wax.T @ dz
        da_prev = Waa.T @ dz
    return dx, da_prev, dWax, dWaa, dba


def time_major(x, a0, p, R):
    """The same loop on time-major copies: step t reads and writes one contiguous (., m) block
    (in the course's (n, m, T_x) layout, x[:, :, t] is a strided slice)."""
    Wax, Waa, ba = p["Wax"], p["Waa"], p["ba"]
    X, Rt = np.ascontiguousarray(x.transpose(2, 0, 1)), np.ascontiguousarray(R.transpose(2, 0, 1))
    T = X.shape[0]
    A = np.empty((T + 1,) + a0.shape)               # A[0] = a0, A[t + 1] = a⟨t+1⟩
    A[0] = a0
    for t in range(T):
        A[t + 1] = np.tanh(Wax @ X[t] + Waa @ A[t] + ba)
    dX = np.empty_like(X)
    dWax, dWaa, dba = np.zeros_like(Wax), np.zeros_like(Waa), np.zeros_like(ba)
    da_prev = np.zeros_like(a0)
    for t in reversed(range(T)):
        dz = (Rt[t] + da_prev) * (1 - A[t + 1] ** 2)
        dWax += dz @ X[t].T
        dWaa += dz @ A[t].T
        dba += dz.sum(axis=1, keepdims=True)
        dX[t] = Wax.T @ dz
        da_prev = Waa.T @ dz
    return dX.transpose(1, 2, 0), da_prev, dWax, dWaa, dba


def feature_major(blocks):
    """(T, n, m) per-step blocks -> (n, T·m): every step's columns side by side (one copy)."""
    T, n, m = blocks.shape
    return np.ascontiguousarray(blocks.transpose(1, 0, 2)).reshape(n, T * m)


def gemm(x, a0, p, R):
    """The backward loop keeps only dz⟨t⟩ and da_prev; the weight gradients and dx are GEMMs
    over all T_x·m columns after it."""
    Wax, Waa, ba = p["Wax"], p["Waa"], p["ba"]
    X, Rt = np.ascontiguousarray(x.transpose(2, 0, 1)), np.ascontiguousarray(R.transpose(2, 0, 1))
    (T, n_x, m), n_a = X.shape, Waa.shape[0]
    A = np.empty((T + 1, n_a, m))
    A[0] = a0
    for t in range(T):
        A[t + 1] = np.tanh(Wax @ X[t] + Waa @ A[t] + ba)
    dZ = np.empty((T, n_a, m))
    da_prev = np.zeros_like(a0)
    for t in reversed(range(T)):
        dZ[t] = (Rt[t] + da_prev) * (1 - A[t + 1] ** 2)
        da_prev = Waa.T @ dZ[t]                     # the only product left in the loop
    M = feature_major(dZ)                           # (n_a, T·m)
    dWax = M @ feature_major(X).T                   # Σ_t dz⟨t⟩ x⟨t⟩ᵀ as one GEMM
    dWaa = M @ feature_major(A[:T]).T               # Σ_t dz⟨t⟩ a⟨t-1⟩ᵀ
    dx = (Wax.T @ M).reshape(n_x, T, m).transpose(0, 2, 1)
    return dx, da_prev, dWax, dWaa, M.sum(axis=1, keepdims=True)


def project(x, a0, p, R):
    """Also the input projection Wax x⟨t⟩ + ba of every step as one GEMM before the loop."""
    Wax, Waa, ba = p["Wax"], p["Waa"], p["ba"]
    X, Rt = np.ascontiguousarray(x.transpose(2, 0, 1)), np.ascontiguousarray(R.transpose(2, 0, 1))
    (T, n_x, m), n_a = X.shape, Waa.shape[0]
    Xf = feature_major(X)                           # (n_x, T·m)
    P = (Wax @ Xf + ba).reshape(n_a, T, m).transpose(1, 0, 2)      # (T, n_a, m) view
    A = np.empty((T + 1, n_a, m))
    A[0] = a0
    for t in range(T):
        A[t + 1] = np.tanh(P[t] + Waa @ A[t])
    dZ = np.empty((T, n_a, m))
    da_prev = np.zeros_like(a0)
    for t in reversed(range(T)):
        dZ[t] = (Rt[t] + da_prev) * (1 - A[t + 1] ** 2)
        da_prev = Waa.T @ dZ[t]
    M = feature_major(dZ)
    dWax, dWaa = M @ Xf.T, M @ feature_major(A[:T]).T
    dx = (Wax.T @ M).reshape(n_x, T, m).transpose(0, 2, 1)
    return dx, da_prev, dWax, dWaa, M.sum(axis=1, keepdims=True)


class Buffers:
    """Also buffers made once and reused by every call, every operation writing into them (out=),
    and the factor 1 - a² computed for all steps in one pass before the backward loop."""

    def __init__(self, n_x, n_a, m, T):
        self.X = np.empty((T, n_x, m))              # x, time-major
        self.S = np.empty((T + 1, n_a, m))          # the states: S[0] = a0, S[t+1] = a⟨t+1⟩
        self.D = np.empty((T, n_a, m))              # pre-activations, then 1 - a², then dz
        self.dh = np.empty((n_a, m))
        self.M = np.empty((n_a, T * m))             # dz feature-major, for the GEMMs
        self.Xf = np.empty((n_x, T * m))
        self.Sf = np.empty((n_a, T * m))

    def __call__(self, x, a0, p, R):
        Wax, Waa, ba = p["Wax"], p["Waa"], p["ba"]
        X, S, D, dh, M = self.X, self.S, self.D, self.dh, self.M
        T, n_x, m = X.shape
        n_a = S.shape[1]
        np.copyto(X, x.transpose(2, 0, 1))
        np.copyto(self.Xf.reshape(n_x, T, m), X.transpose(1, 0, 2))
        np.dot(Wax, self.Xf, M)                     # projection of all steps, M as scratch
        np.add(M.reshape(n_a, T, m).transpose(1, 0, 2), ba, D)
        S[0] = a0
        for t in range(T):
            np.dot(Waa, S[t], S[t + 1])
            np.add(S[t + 1], D[t], S[t + 1])
            np.tanh(S[t + 1], S[t + 1])
        np.multiply(S[1:], S[1:], D)                # 1 - a², every step at once
        np.subtract(1, D, D)
        Rt = R.transpose(2, 0, 1)
        np.multiply(Rt[T - 1], D[T - 1], D[T - 1])
        for t in range(T - 2, -1, -1):
            np.dot(Waa.T, D[t + 1], dh)
            np.add(dh, Rt[t], dh)
            np.multiply(dh, D[t], D[t])             # dz⟨t⟩ overwrites its factor
        da0 = Waa.T @ D[0]
        np.copyto(M.reshape(n_a, T, m), D.transpose(1, 0, 2))
        np.copyto(self.Sf.reshape(n_a, T, m), S[:T].transpose(1, 0, 2))
        dWax, dWaa = M @ self.Xf.T, M @ self.Sf.T
        dx = (Wax.T @ M).reshape(n_x, T, m).transpose(0, 2, 1)
        return dx, da0, dWax, dWaa, M.sum(axis=1, keepdims=True)


class Engine:
    """bptt.RNN on the same parameters (bptt.convert), x and R already in its (T, B, I) layout."""

    def __init__(self, p, x, a0, R):
        state, _ = convert.rnn_to_state_dict(p)
        self.layer = bptt.RNN(x.shape[0], p["Waa"].shape[0], dtype=x.dtype)
        self.layer.load_state_dict(state)
        self.xT, self.h0, self.RT = x.transpose(2, 1, 0).copy(), a0.T[None].copy(), \
            R.transpose(2, 1, 0).copy()

    def __call__(self, x, a0, p, R):
        self.layer.forward(self.xT, self.h0)
        self.layer.zero_grad()  # backward adds into grads (torch's rule)
        dx, dh0 = self.layer.backward(self.RT)
        g = convert.rnn_grads_from_state_dict(self.layer.grads)
        return dx.transpose(2, 1, 0), dh0[0].T, g["dWax"], g["dWaa"], g["dba"]


# --------------------------------------------------------------------------------- timing

def timed(fns: dict, args: tuple, repeat: int) -> dict:
    """Median seconds of each function, run in turn, round after round."""
    times = {k: [] for k in fns}
    for f in fns.values():
        f(*args)                                     # warm up (buffers, caches, BLAS threads)
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f(*args)
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=65, help="n_x (65, Tiny Shakespeare's symbols)")
    ap.add_argument("--hidden", type=int, default=256, help="n_a (256)")
    ap.add_argument("--batch", type=int, default=32, help="m (32)")
    ap.add_argument("--steps", type=int, default=64, help="T_x (64)")
    ap.add_argument("--repeat", type=int, default=7, help="timed rounds (7)")
    args = ap.parse_args(argv)
    n_x, n_a, m, T = args.inputs, args.hidden, args.batch, args.steps
    rng = np.random.default_rng(0)
    s = 1 / np.sqrt(n_a)
    p = {"Wax": rng.uniform(-s, s, (n_a, n_x)), "Waa": rng.uniform(-s, s, (n_a, n_a)),
         "ba": rng.uniform(-s, s, (n_a, 1)), "Wya": rng.uniform(-s, s, (n_x, n_a)),
         "by": np.zeros((n_x, 1))}
    x, a0 = rng.standard_normal((n_x, m, T)), rng.standard_normal((n_a, m)) * 0.1
    R = rng.standard_normal((n_a, m, T))
    fns = {"0 course": course, "1 loop": loop, "2 time-major": time_major, "3 gemm": gemm,
           "4 project": project, "5 buffers": Buffers(n_x, n_a, m, T),
           "6 engine": Engine(p, x, a0, R)}
    want = course(x, a0, p, R)
    for name, f in fns.items():
        for w, g in zip(want, f(x, a0, p, R), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=name)
    print(f"RNN, float64, n_x={n_x} n_a={n_a} m={m} T_x={T}: one forward + backward "
          f"(median of {args.repeat} rounds; machine: {platform.machine()}, "
          f"NumPy {np.__version__}); gradients of all seven versions agree")
    t = timed(fns, (x, a0, p, R), args.repeat)
    for k, v in t.items():
        print(f"  {k:12s} {v * 1e3:8.2f} ms   {t['0 course'] / v:5.1f}x the course's speed")

    z = rng.standard_normal((4 * n_a, m))
    out = np.empty_like(z)
    sig = {"exp": lambda: 1 / (1 + np.exp(-z)),
           "tanh": lambda: activations.sigmoid(z, out)}
    np.testing.assert_allclose(sig["exp"](), sig["tanh"](), rtol=1e-14)
    ts = timed({k: (lambda f=f: [f() for _ in range(T)]) for k, f in sig.items()}, (),
               args.repeat)
    print(f"σ of a (4 n_a, m) block, {T} times: 1/(1+exp(-z)) {ts['exp'] * 1e3:.2f} ms, "
          f"½ tanh(z/2) + ½ in place {ts['tanh'] * 1e3:.2f} ms")

    q = {f"W{g}": rng.uniform(-s, s, (n_a, n_a + n_x)) for g in "fico"}
    q |= {f"b{g}": rng.uniform(-s, s, (n_a, 1)) for g in "fico"}
    q |= {"Wy": p["Wya"], "by": p["by"]}
    state, _ = convert.lstm_to_state_dict(q)
    layer = bptt.LSTM(n_x, n_a, dtype=np.float64)
    layer.load_state_dict(state)
    xT, h0, RT = x.transpose(2, 1, 0).copy(), a0.T[None].copy(), R.transpose(2, 1, 0).copy()

    def lstm_course():
        return sw.lstm_backward(R, sw.lstm_forward(x, a0, q)[3])

    def lstm_engine():
        layer.forward(xT, (h0, np.zeros_like(h0)))
        return layer.backward(RT)

    np.testing.assert_allclose(lstm_engine()[0].transpose(2, 1, 0), lstm_course()["dx"],
                               rtol=1e-9, atol=1e-12)
    tl = timed({"course": lstm_course, "engine": lstm_engine}, (), args.repeat)
    print(f"LSTM, same sizes: course {tl['course'] * 1e3:.2f} ms, engine "
          f"{tl['engine'] * 1e3:.2f} ms ({tl['course'] / tl['engine']:.1f}x)")
    return {"rnn": t, "sigmoid": ts, "lstm": tl}


if __name__ == "__main__":
    main()
