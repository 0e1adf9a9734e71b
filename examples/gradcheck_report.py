"""Worst finite-difference relative error of every stepwise backward and of the engine layers.

    python examples/gradcheck_report.py [--seed 0] [--verbose]

Each line: the function, the largest relative error ||g - g_num|| / (||g|| + ||g_num||) over
everything it returns a gradient for (bptt.gradcheck, central differences in float64, eps 1e-6),
and which gradient that was. The loss is a random linear function of the hidden (and cell) states.
"""

import argparse

import numpy as np

import bptt
from bptt import stepwise as sw

N_X, N_A, N_Y, M, T = 3, 5, 2, 4, 6


def rnn_params(rng) -> dict:
    shapes = {"Wax": (N_A, N_X), "Waa": (N_A, N_A), "ba": (N_A, 1),
              "Wya": (N_Y, N_A), "by": (N_Y, 1)}
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


def lstm_params(rng) -> dict:
    p = {k + g: rng.standard_normal((N_A, N_A + N_X) if k == "W" else (N_A, 1))
         for g in "fico" for k in "Wb"}
    return {**p, "Wy": rng.standard_normal((N_Y, N_A)), "by": rng.standard_normal((N_Y, 1))}


def gru_params(rng) -> dict:
    """The lecture's GRU: Wu, Wr, Wc (Wc acts on [rt * a_prev; xt]), bu, br, bc, Wy, by."""
    p = {k + g: rng.standard_normal((N_A, N_A + N_X) if k == "W" else (N_A, 1))
         for g in "urc" for k in "Wb"}
    return {**p, "Wy": rng.standard_normal((N_Y, N_A)), "by": rng.standard_normal((N_Y, 1))}


def checks(rng):
    """(name, GradcheckResult) for each function."""
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    xt, c_prev = x[:, :, 0].copy(), rng.standard_normal((N_A, M))
    R = rng.standard_normal((N_A, M, T))                  # the losses: Σ R * a (and Σ Rc * c_next)
    Ra, Rc = rng.standard_normal((N_A, M)), rng.standard_normal((N_A, M))

    P = {**rnn_params(rng), "xt": xt, "a_prev": a0.copy()}
    g = sw.rnn_cell_backward(Ra, sw.rnn_cell_forward(xt, P["a_prev"], P)[2])
    yield "rnn_cell_backward", bptt.gradcheck(
        lambda q: np.vdot(Ra, sw.rnn_cell_forward(q["xt"], q["a_prev"], q)[0]), P, g)

    P = {**rnn_params(rng), "x": x.copy(), "a0": a0.copy()}
    g = sw.rnn_backward(R, sw.rnn_forward(P["x"], P["a0"], P)[2])
    yield "rnn_backward", bptt.gradcheck(
        lambda q: np.vdot(R, sw.rnn_forward(q["x"], q["a0"], q)[0]), P, g)

    P = {**lstm_params(rng), "xt": xt, "a_prev": a0.copy(), "c_prev": c_prev}

    def cell_loss(q):
        a_next, c_next, _, _ = sw.lstm_cell_forward(q["xt"], q["a_prev"], q["c_prev"], q)
        return np.vdot(Ra, a_next) + np.vdot(Rc, c_next)

    g = sw.lstm_cell_backward(Ra, Rc, sw.lstm_cell_forward(xt, P["a_prev"], c_prev, P)[3])
    yield "lstm_cell_backward", bptt.gradcheck(cell_loss, P, g)

    P = {**lstm_params(rng), "x": x.copy(), "a0": a0.copy()}
    g = sw.lstm_backward(R, sw.lstm_forward(P["x"], P["a0"], P)[3])
    yield "lstm_backward", bptt.gradcheck(
        lambda q: np.vdot(R, sw.lstm_forward(q["x"], q["a0"], q)[0]), P, g)

    P = {**gru_params(rng), "xt": xt, "a_prev": a0.copy()}
    g = sw.gru_cell_backward(Ra, sw.gru_cell_forward(xt, P["a_prev"], P)[2])
    yield "gru_cell_backward (the lecture's GRU)", bptt.gradcheck(
        lambda q: np.vdot(Ra, sw.gru_cell_forward(q["xt"], q["a_prev"], q)[0]), P, g)

    P = {**gru_params(rng), "x": x.copy(), "a0": a0.copy()}
    g = sw.gru_backward(R, sw.gru_forward(P["x"], P["a0"], P)[2])
    yield "gru_backward (the lecture's GRU)", bptt.gradcheck(
        lambda q: np.vdot(R, sw.gru_forward(q["x"], q["a0"], q)[0]), P, g)

    for cls in (bptt.RNN, bptt.LSTM, bptt.GRU):
        layer = cls(N_X, N_A, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
        yield f"engine {cls.__name__} (2 layers, bidirectional)", bptt.check_layer(
            layer, rng.standard_normal((T, M, N_X)), max_entries=60)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="print every parameter's table")
    args = ap.parse_args(argv)
    ok = True
    for name, res in checks(np.random.default_rng(args.seed)):
        print(f"{name:44s} worst rel_error {res.max_error:.1e}  ({res.worst})  "
              f"{'OK' if res.ok else 'FAILED'}")
        if args.verbose:
            print(res, end="\n\n")
        ok &= res.ok
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
