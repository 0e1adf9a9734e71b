"""Gradient checks of a course-style forward/backward pair, yours or ``bptt.stepwise``'s:
``check_cell`` for one step (every input of the cell, the LSTM's ``c_prev`` included) and
``check_sequence`` for a whole sequence, broken down by time step. Both return
``bptt.gradcheck``'s ``GradcheckResult``, whose summary says in words where a sequence gradient
goes wrong (``GradcheckResult.diagnosis``)."""

from collections.abc import Callable, Mapping

import numpy as np

from ..gradcheck import GradcheckResult, ParamReport, gradcheck


def check_cell(forward: Callable, backward: Callable, xt, a_prev, *args, seed: int = 0,
               eps: float = 1e-6, tol: float = 1e-7) -> GradcheckResult:
    """Gradient check of one cell step: ``check_cell(forward, backward, xt, a_prev, parameters)``
    for an RNN or GRU cell, ``check_cell(forward, backward, xt, a_prev, c_prev, parameters)`` for
    an LSTM cell.

    forward: ``rnn_cell_forward(xt, a_prev, parameters)`` (or ``gru_cell_forward``), or
    ``lstm_cell_forward(xt, a_prev, c_prev, parameters)``: returns a_next first (then c_next for
    the LSTM) and the cache last. backward: ``rnn_cell_backward(da_next, cache)`` or
    ``lstm_cell_backward(da_next, dc_next, cache)``: a dict keyed "d" + name (dxt, da_prev,
    dc_prev, dWaa, ...). xt (n_x, m), a_prev and c_prev (n_a, m): float64.

    The loss is L = Σ R_a ⊙ a_next (+ Σ R_c ⊙ c_next for the LSTM), R random from ``seed``, so
    da_next = R_a and dc_next = R_c: every input is checked, xt, a_prev and the cell-state path
    c_prev, and every parameter with a gradient (the output head, which a cell backward does not
    differentiate, is listed as not checked).
    """
    if len(args) not in (1, 2):
        raise TypeError(f"check_cell: expected (forward, backward, xt, a_prev, parameters) or "
                        f"(forward, backward, xt, a_prev, c_prev, parameters), got "
                        f"{4 + len(args)} arguments")
    lstm = len(args) == 2
    parameters = args[-1]
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters: expected a dict of arrays, got {type(parameters).__name__}")
    inputs = {"xt": xt, "a_prev": a_prev, **({"c_prev": args[0]} if lstm else {})}
    params = {**parameters, **{k: np.array(v, dtype=np.float64) for k, v in inputs.items()}}

    def run(p: dict):
        states = (p["xt"], p["a_prev"], p["c_prev"]) if lstm else (p["xt"], p["a_prev"])
        return forward(*states, p)

    out = run(params)
    rng = np.random.default_rng(seed)
    R = [rng.standard_normal(np.shape(o)) for o in out[: 2 if lstm else 1]]
    grads = backward(*[r.copy() for r in R], out[-1])
    if not isinstance(grads, Mapping):
        raise TypeError(f"backward: expected a dict of gradients, got {type(grads).__name__}")

    def loss(p: dict) -> float:
        o = run(p)
        return float(sum(np.vdot(r, v) for r, v in zip(R, o, strict=False)))

    return gradcheck(loss, params, grads, eps=eps, tol=tol, seed=seed)


def check_sequence(forward: Callable, backward: Callable, x, a0, parameters: dict, *,
                   seed: int = 0, eps: float = 1e-6, tol: float = 1e-7) -> GradcheckResult:
    """Gradient check of a step-by-step sequence forward/backward pair in the course's layout,
    broken down by time step.

    forward(x, a0, parameters) must return a tuple whose first item is the hidden states
    a (n_a, m, T_x) and whose last is the caches; backward(da, caches) a dict of gradients keyed
    "d" + name (dx, da0, dWaa, ...). ``bptt.stepwise``'s rnn_, lstm_ and gru_forward/backward
    fit, and so does a learner's own implementation. x: (n_x, m, T_x); a0: (n_a, m); all float64.

    The loss is L = Σ R ⊙ a with R random from ``seed`` (so da = R). Every parameter with a
    gradient is checked as ``gradcheck`` does, dx per step t (``result["x"].per_step``), and a0
    per chain length: ``result["a0"].per_step[t]`` is the error of da0 when the loss reads the
    steps 0..t only, so the gradient crosses t recurrent steps; a bug in the recurrent part of
    the backward shows from t = 1 on, while t = 0 still passes.
    """
    x, a0 = np.array(x, dtype=np.float64), np.array(a0, dtype=np.float64)
    if x.ndim != 3 or a0.ndim != 2:
        bad, got = ("x", x.shape) if x.ndim != 3 else ("a0", a0.shape)
        raise ValueError(f"{bad}: expected {'(n_x, m, T_x)' if bad == 'x' else '(n_a, m)'}, "
                         f"got shape {got}")
    params = {**parameters, "x": x, "a0": a0}
    R = np.random.default_rng(seed).standard_normal(
        np.shape(forward(x[:, :, :1], a0, params)[0])[:2] + (x.shape[2],))

    def loss_upto(T: int):
        return lambda p: float(np.vdot(R[:, :, :T], forward(p["x"][:, :, :T], p["a0"], p)[0]))

    grads = backward(R.copy(), forward(x, a0, params)[-1])
    if not isinstance(grads, Mapping) or "da0" not in grads or "dx" not in grads:
        raise TypeError(f"backward: expected a dict with dx and da0, got "
                        f"{type(grads).__name__}")
    result = gradcheck(loss_upto(x.shape[2]), params, grads, eps=eps, tol=tol,
                       per_step={"x": 2})
    chain = []
    for T in range(1, x.shape[2] + 1):
        short = {**parameters, "x": x[:, :, :T].copy(), "a0": a0.copy()}
        g = backward(R[:, :, :T].copy(), forward(short["x"], short["a0"], short)[-1])
        chain.append(gradcheck(loss_upto(T), short, g, names=["a0"], eps=eps, tol=tol)["a0"]
                     .rel_error)
    reports = dict(result.reports)
    a0_report = reports["a0"]
    reports["a0"] = ParamReport(a0_report.name, a0_report.shape,
                                max(a0_report.rel_error, *chain), a0_report.worst_index,
                                a0_report.analytic, a0_report.numeric, a0_report.checked,
                                tuple(chain), None)
    return GradcheckResult(reports, tol, eps, result.skipped)
