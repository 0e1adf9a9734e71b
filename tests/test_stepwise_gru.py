"""bptt.stepwise's GRU (the lecture's: Γr applied before the product with Wc) against the lecture's
equations written out, central finite differences, and the engine's GRU (which differs)."""

import numpy as np
import pytest
from test_stepwise import gated_params

import bptt
from bptt import stepwise as sw

N_X, N_A, N_Y, M, T = 3, 4, 2, 2, 4
GRU_W = {"Wu", "bu", "Wr", "br", "Wc", "bc"}


def gru_params(rng, n_x=N_X, n_a=N_A, n_y=N_Y, dtype=np.float64):
    return gated_params(rng, "urc", n_x, n_a, n_y, dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(77)


def lecture_step(xt, c_prev, p):
    """The lecture's equations, written out once more with plain NumPy."""
    sig = lambda z: 1 / (1 + np.exp(-z))            # noqa: E731
    cx = np.concatenate([c_prev, xt])
    gu = sig(p["Wu"] @ cx + p["bu"])
    gr = sig(p["Wr"] @ cx + p["br"])
    cct = np.tanh(p["Wc"] @ np.concatenate([gr * c_prev, xt]) + p["bc"])
    c = gu * cct + (1 - gu) * c_prev
    z = p["Wy"] @ c + p["by"]
    return c, np.exp(z) / np.exp(z).sum(axis=0), (gu, gr, cct)


def test_gru_cell_forward_is_the_lecture_equations(rng):
    p = gru_params(rng)
    xt, a_prev = rng.standard_normal((N_X, M)), rng.standard_normal((N_A, M))
    a_next, yt, cache = sw.gru_cell_forward(xt, a_prev, p)
    want_a, want_y, gates = lecture_step(xt, a_prev, p)
    np.testing.assert_allclose(a_next, want_a, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(yt, want_y, rtol=1e-13)
    assert len(cache) == 7 and cache[6] is p
    for got, want in zip(cache[2:5], gates, strict=True):      # ut, rt, cct
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(cache[1], a_prev)
    np.testing.assert_array_equal(cache[5], xt)


def test_gru_forward_runs_the_cell_over_time(rng):
    p = gru_params(rng)
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    a, y, (cells, x_cached) = sw.gru_forward(x, a0, p)
    assert a.shape == (N_A, M, T) and y.shape == (N_Y, M, T) and len(cells) == T
    c = a0
    for t in range(T):
        c, yt, _ = lecture_step(x[:, :, t], c, p)
        np.testing.assert_allclose(a[:, :, t], c, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(y[:, :, t], yt, rtol=1e-12)
    np.testing.assert_array_equal(x_cached, x)


def test_gru_cell_backward_fd(rng):
    P = {**gru_params(rng), "xt": rng.standard_normal((N_X, M)),
         "a_prev": rng.standard_normal((N_A, M))}
    R = rng.standard_normal((N_A, M))
    cache = sw.gru_cell_forward(P["xt"], P["a_prev"], P)[2]
    R_in = R.copy()
    grads = sw.gru_cell_backward(R_in, cache)
    np.testing.assert_array_equal(R_in, R)
    assert set(grads) == {"dxt", "da_prev"} | {"d" + k for k in GRU_W}
    res = bptt.gradcheck(lambda q: np.vdot(R, sw.gru_cell_forward(q["xt"], q["a_prev"], q)[0]),
                         P, grads)
    assert set(res) == GRU_W | {"xt", "a_prev"} and res.ok, str(res)


@pytest.mark.parametrize("m", [1, 3])
def test_gru_backward_fd(m, rng):
    P = {**gru_params(rng), "x": rng.standard_normal((N_X, m, T)),
         "a0": rng.standard_normal((N_A, m))}
    R = rng.standard_normal((N_A, m, T))
    grads = sw.gru_backward(R, sw.gru_forward(P["x"], P["a0"], P)[2])
    assert set(grads) == {"dx", "da0"} | {"d" + k for k in GRU_W}
    res = bptt.gradcheck(lambda q: np.vdot(R, sw.gru_forward(q["x"], q["a0"], q)[0]), P, grads,
                         per_step={"x": -1})
    assert set(res) == GRU_W | {"x", "a0"} and res.ok, str(res)
    assert len(res["x"].per_step) == T


def test_gru_backward_through_the_softmax_head(rng):
    P = gru_params(rng)
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    Y = np.eye(N_Y)[:, rng.integers(0, N_Y, size=(M, T))]
    a, y, caches = sw.gru_forward(x, a0, P)
    grads = sw.gru_backward(np.einsum("ya,ymt->amt", P["Wy"], y - Y), caches)
    res = bptt.gradcheck(lambda q: -np.sum(Y * np.log(sw.gru_forward(x, a0, q)[1])), P, grads)
    assert {"Wy", "by"} == set(res.skipped) and res.ok, str(res)


def test_gru_float32_stays_float32(rng):
    p = gru_params(rng, dtype=np.float32)
    x = rng.standard_normal((N_X, M, T)).astype(np.float32)
    a, y, caches = sw.gru_forward(x, np.zeros((N_A, M), np.float32), p)
    g = sw.gru_backward(np.ones_like(a), caches)
    assert a.dtype == y.dtype == g["dWc"].dtype == g["dx"].dtype == np.float32


def test_gru_differs_from_the_engine_gru(rng):
    """The engine's GRU (torch's) applies r after the product, to W_hn h + b_hn, and weighs the
    old state by z: loading the lecture's weights into it (with z = 1 - Γu, i.e. negated u rows)
    gives the same output only when r is 1, which it never is exactly."""
    p = gru_params(rng)
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    a = sw.gru_forward(x, a0, p)[0]
    layer = bptt.GRU(N_X, N_A, dtype=np.float64)
    W = {g: p["W" + g] for g in "urc"}
    state = {"weight_ih_l0": np.concatenate([W["r"][:, N_A:], -W["u"][:, N_A:], W["c"][:, N_A:]]),
             "weight_hh_l0": np.concatenate([W["r"][:, :N_A], -W["u"][:, :N_A], W["c"][:, :N_A]]),
             "bias_ih_l0": np.concatenate([p["br"], -p["bu"], p["bc"]])[:, 0],
             "bias_hh_l0": np.zeros(3 * N_A)}
    layer.load_state_dict(state)
    out = layer.forward(x.transpose(2, 1, 0), a0.T[None])[0].transpose(2, 1, 0)
    assert np.abs(out - a).max() > 1e-3
    # With the reset gate forced open (br huge), both are the same function.
    p["br"][:] = 50.0
    state["bias_ih_l0"] = np.concatenate([p["br"], -p["bu"], p["bc"]])[:, 0]
    layer.load_state_dict(state)
    out = layer.forward(x.transpose(2, 1, 0), a0.T[None])[0].transpose(2, 1, 0)
    np.testing.assert_allclose(out, sw.gru_forward(x, a0, p)[0], rtol=1e-12, atol=1e-12)


def test_gru_errors_name_the_key(rng):
    p = gru_params(rng)
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    for key in p:
        with pytest.raises(ValueError, match=f"parameters: missing key '{key}'"):
            sw.gru_forward(x, a0, {k: v for k, v in p.items() if k != key})
    with pytest.raises(ValueError, match=r"^Wc: expected shape \(n_a, n_a \+ n_x\) = \(4, 7\), "
                                         r"got \(4, 6\)$"):
        sw.gru_forward(x, a0, {**p, "Wc": np.zeros((4, 6))})
    with pytest.raises(ValueError, match=r"^x: expected the layout \(n_x, m, T_x\).*"
                                         r"x\.transpose\(2, 1, 0\)"):
        sw.gru_forward(x.transpose(2, 1, 0), a0, p)
    caches = sw.gru_forward(x, a0, p)[2]
    with pytest.raises(TypeError, match="^cache: expected the 7-tuple returned by gru_cell_fo"):
        sw.gru_cell_backward(a0, caches[0][0][:6])
    with pytest.raises(ValueError, match=r"^da: expected shape \(n_a, m, T_x\)"):
        sw.gru_backward(np.zeros((N_A, M, T + 1)), caches)
