"""bptt.stepwise: course-notation RNN/LSTM against finite differences, the course's own equations,
the engine layers (through bptt.convert), torch's Adam; extreme inputs; bad inputs."""

import re
import warnings

import numpy as np
import pytest

import bptt
from bptt import convert
from bptt import stepwise as sw

N_X, N_A, N_Y, M, T = 3, 4, 2, 2, 3


def rnn_params(rng, n_x=N_X, n_a=N_A, n_y=N_Y, dtype=np.float64):
    shapes = {"Wax": (n_a, n_x), "Waa": (n_a, n_a), "ba": (n_a, 1),
              "Wya": (n_y, n_a), "by": (n_y, 1)}
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def gated_params(rng, gates, n_x=N_X, n_a=N_A, n_y=N_Y, dtype=np.float64):
    """The course's parameters of a gated cell: W<g> (n_a, n_a + n_x) and b<g> (n_a, 1) for each
    gate letter g, then the head Wy, by."""
    p = {}
    for g in gates:
        p["W" + g] = rng.standard_normal((n_a, n_a + n_x)).astype(dtype)
        p["b" + g] = rng.standard_normal((n_a, 1)).astype(dtype)
    p["Wy"] = rng.standard_normal((n_y, n_a)).astype(dtype)
    p["by"] = rng.standard_normal((n_y, 1)).astype(dtype)
    return p


def lstm_params(rng, n_x=N_X, n_a=N_A, n_y=N_Y, dtype=np.float64):
    return gated_params(rng, "fico", n_x, n_a, n_y, dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------- forward against the course's equations

def naive_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=0)


def test_rnn_cell_forward_equations_and_cache(rng):
    p = rnn_params(rng)
    xt, a_prev = rng.standard_normal((N_X, M)), rng.standard_normal((N_A, M))
    before = {k: v.copy() for k, v in p.items()}
    a_next, yt, cache = sw.rnn_cell_forward(xt, a_prev, p)
    want_a = np.tanh(p["Wax"] @ xt + p["Waa"] @ a_prev + p["ba"])
    np.testing.assert_allclose(a_next, want_a, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(yt, naive_softmax(p["Wya"] @ want_a + p["by"]), rtol=1e-13)
    assert len(cache) == 4 and cache[3] is p
    np.testing.assert_array_equal(cache[0], a_next)
    np.testing.assert_array_equal(cache[1], a_prev)
    np.testing.assert_array_equal(cache[2], xt)
    assert sorted(p) == sorted(before) and all(np.array_equal(p[k], before[k]) for k in p)


def test_lstm_cell_forward_equations_and_cache(rng):
    p = lstm_params(rng)
    xt = rng.standard_normal((N_X, M))
    a_prev, c_prev = rng.standard_normal((N_A, M)), rng.standard_normal((N_A, M))
    a_next, c_next, yt, cache = sw.lstm_cell_forward(xt, a_prev, c_prev, p)
    concat = np.concatenate([a_prev, xt])
    ft = naive_sigmoid(p["Wf"] @ concat + p["bf"])
    it = naive_sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    ot = naive_sigmoid(p["Wo"] @ concat + p["bo"])
    c_want = ft * c_prev + it * cct
    a_want = ot * np.tanh(c_want)
    want = (a_want, c_want, a_prev, c_prev, ft, it, cct, ot, xt)
    assert len(cache) == 10 and cache[9] is p
    for got, ref in zip(cache[:9], want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a_next, a_want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_next, c_want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(yt, naive_softmax(p["Wy"] @ a_want + p["by"]), rtol=1e-12)


def test_sequence_forward_shapes_and_steps(rng):
    p, q = rnn_params(rng), lstm_params(rng)
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    a, y, (cells, x_c) = sw.rnn_forward(x, a0, p)
    assert a.shape == (N_A, M, T) and y.shape == (N_Y, M, T) and len(cells) == T
    np.testing.assert_array_equal(x_c, x)
    a1, _, _ = sw.rnn_cell_forward(x[:, :, 0], a0, p)
    np.testing.assert_allclose(a[:, :, 0], a1, rtol=1e-14)
    assert all(c[3] is p for c in cells)
    a, y, c, (cells, _) = sw.lstm_forward(x, a0, q)
    assert a.shape == c.shape == (N_A, M, T) and y.shape == (N_Y, M, T) and len(cells) == T
    a1, c1, _, _ = sw.lstm_cell_forward(x[:, :, 0], a0, np.zeros((N_A, M)), q)
    np.testing.assert_allclose(a[:, :, 0], a1, rtol=1e-14)
    np.testing.assert_allclose(c[:, :, 0], c1, rtol=1e-14)
    assert all(cell[9] is q for cell in cells)


def test_float32_stays_float32(rng):
    p, q = rnn_params(rng, dtype=np.float32), lstm_params(rng, dtype=np.float32)
    x = rng.standard_normal((N_X, M, T)).astype(np.float32)
    a0 = rng.standard_normal((N_A, M)).astype(np.float32)
    a, y, caches = sw.rnn_forward(x, a0, p)
    g = sw.rnn_backward(np.ones_like(a), caches)
    assert a.dtype == y.dtype == g["dWaa"].dtype == g["dx"].dtype == np.float32
    a64, _, _ = sw.rnn_forward(x.astype(np.float64), a0, p)
    np.testing.assert_allclose(a, a64, rtol=1e-4, atol=1e-5)
    a, y, c, caches = sw.lstm_forward(x, a0, q)
    g = sw.lstm_backward(np.ones_like(a), caches)
    assert a.dtype == c.dtype == g["dWf"].dtype == np.float32


# ------------------------------------------------------------------------ finite differences

RNN_CELL_GRADS = {"Wax", "Waa", "ba", "xt", "a_prev"}
LSTM_W = {"Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo"}


def test_rnn_cell_backward_fd(rng):
    p = rnn_params(rng)
    P = {**p, "xt": rng.standard_normal((N_X, M)), "a_prev": rng.standard_normal((N_A, M))}
    R = rng.standard_normal((N_A, M))             # loss = Σ R * a_next, so da_next = R
    _, _, cache = sw.rnn_cell_forward(P["xt"], P["a_prev"], P)
    grads = sw.rnn_cell_backward(R, cache)
    assert set(grads) == {"dxt", "da_prev", "dWax", "dWaa", "dba"}
    res = bptt.gradcheck(lambda q: np.vdot(R, sw.rnn_cell_forward(q["xt"], q["a_prev"], q)[0]),
                         P, grads)
    assert set(res) == RNN_CELL_GRADS and res.ok, str(res)


def test_rnn_backward_fd(rng):
    P = {**rnn_params(rng), "x": rng.standard_normal((N_X, M, T)),
         "a0": rng.standard_normal((N_A, M))}
    R = rng.standard_normal((N_A, M, T))
    _, _, caches = sw.rnn_forward(P["x"], P["a0"], P)
    grads = sw.rnn_backward(R, caches)
    assert set(grads) == {"dx", "da0", "dWax", "dWaa", "dba"}
    res = bptt.gradcheck(lambda q: np.vdot(R, sw.rnn_forward(q["x"], q["a0"], q)[0]), P, grads)
    assert set(res) == {"Wax", "Waa", "ba", "x", "a0"} and res.ok, str(res)


def test_lstm_cell_backward_fd(rng):
    P = {**lstm_params(rng), "xt": rng.standard_normal((N_X, M)),
         "a_prev": rng.standard_normal((N_A, M)), "c_prev": rng.standard_normal((N_A, M))}
    Ra, Rc = rng.standard_normal((N_A, M)), rng.standard_normal((N_A, M))

    def loss(q):
        a_next, c_next, _, _ = sw.lstm_cell_forward(q["xt"], q["a_prev"], q["c_prev"], q)
        return np.vdot(Ra, a_next) + np.vdot(Rc, c_next)

    cache = sw.lstm_cell_forward(P["xt"], P["a_prev"], P["c_prev"], P)[3]
    da_next, dc_next = Ra.copy(), Rc.copy()
    grads = sw.lstm_cell_backward(da_next, dc_next, cache)
    np.testing.assert_array_equal(da_next, Ra)     # the caller's arrays are left alone
    np.testing.assert_array_equal(dc_next, Rc)
    assert set(grads) == {"dxt", "da_prev", "dc_prev"} | {"d" + k for k in LSTM_W}
    res = bptt.gradcheck(loss, P, grads)
    assert set(res) == LSTM_W | {"xt", "a_prev", "c_prev"} and res.ok, str(res)


def test_lstm_backward_fd(rng):
    P = {**lstm_params(rng), "x": rng.standard_normal((N_X, M, T)),
         "a0": rng.standard_normal((N_A, M))}
    R = rng.standard_normal((N_A, M, T))
    _, _, _, caches = sw.lstm_forward(P["x"], P["a0"], P)
    R_in = R.copy()
    grads = sw.lstm_backward(R_in, caches)
    np.testing.assert_array_equal(R_in, R)
    assert set(grads) == {"dx", "da0"} | {"d" + k for k in LSTM_W}
    res = bptt.gradcheck(lambda q: np.vdot(R, sw.lstm_forward(q["x"], q["a0"], q)[0]), P, grads)
    assert set(res) == LSTM_W | {"x", "a0"} and res.ok, str(res)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_backward_through_the_softmax_head(kind, rng):
    """The caller turns dL/dy into da = W_y^T (y - Y); then the weights' gradients match FD of
    the cross-entropy itself (checks that da[:, :, t] is the output part only)."""
    P = rnn_params(rng) if kind == "rnn" else lstm_params(rng)
    Wy = "Wya" if kind == "rnn" else "Wy"
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    Y = np.eye(N_Y)[:, rng.integers(0, N_Y, size=(M, T))]           # (n_y, m, T) one-hot
    forward = sw.rnn_forward if kind == "rnn" else sw.lstm_forward

    def loss(q):
        y = forward(x, a0, q)[1]
        return -np.sum(Y * np.log(y))

    out = forward(x, a0, P)
    y, caches = out[1], out[-1]
    da = np.einsum("ya,ymt->amt", P[Wy], y - Y)
    grads = (sw.rnn_backward if kind == "rnn" else sw.lstm_backward)(da, caches)
    res = bptt.gradcheck(loss, P, grads)
    assert Wy in res.skipped and res.ok, str(res)


# ------------------------------------------------------------------ the engine, via converters

def test_rnn_matches_engine(rng):
    p = rnn_params(rng)
    x, a0, da = (rng.standard_normal(s) for s in ((N_X, M, T), (N_A, M), (N_A, M, T)))
    a, _, caches = sw.rnn_forward(x, a0, p)
    g = sw.rnn_backward(da, caches)
    state, head = convert.rnn_to_state_dict(p)
    assert set(head) == {"Wya", "by"}
    layer = bptt.RNN(N_X, N_A, dtype=np.float64)
    layer.load_state_dict(state)
    out, h_n = layer.forward(x.transpose(2, 1, 0), a0.T[None])
    np.testing.assert_allclose(out.transpose(2, 1, 0), a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n[0].T, a[:, :, -1], rtol=1e-12, atol=1e-14)
    dx, dh0 = layer.backward(da.transpose(2, 1, 0))
    np.testing.assert_allclose(dx.transpose(2, 1, 0), g["dx"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dh0[0].T, g["da0"], rtol=1e-10, atol=1e-13)
    eg = convert.rnn_grads_from_state_dict(layer.grads)
    for k in ("dWax", "dWaa", "dba"):
        np.testing.assert_allclose(eg[k], g[k], rtol=1e-10, atol=1e-13, err_msg=k)
    np.testing.assert_array_equal(layer.grads["bias_hh_l0"], layer.grads["bias_ih_l0"])


def test_lstm_matches_engine(rng):
    p = lstm_params(rng)
    x, a0, da = (rng.standard_normal(s) for s in ((N_X, M, T), (N_A, M), (N_A, M, T)))
    a, _, c, caches = sw.lstm_forward(x, a0, p)
    g = sw.lstm_backward(da, caches)
    state, head = convert.lstm_to_state_dict(p)
    assert set(head) == {"Wy", "by"}
    layer = bptt.LSTM(N_X, N_A, dtype=np.float64)
    layer.load_state_dict(state)
    out, (h_n, c_n) = layer.forward(x.transpose(2, 1, 0), (a0.T[None], np.zeros((1, M, N_A))))
    np.testing.assert_allclose(out.transpose(2, 1, 0), a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_n[0].T, c[:, :, -1], rtol=1e-12, atol=1e-14)
    dx, (dh0, _) = layer.backward(da.transpose(2, 1, 0))
    np.testing.assert_allclose(dx.transpose(2, 1, 0), g["dx"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dh0[0].T, g["da0"], rtol=1e-10, atol=1e-13)
    eg = convert.lstm_grads_from_state_dict(layer.grads)
    assert set(eg) == {"d" + k for k in LSTM_W}
    for k in eg:
        np.testing.assert_allclose(eg[k], g[k], rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_engine_to_stepwise_sums_the_biases(kind, rng):
    """From a torch-initialised engine layer (bias_hh non-zero) to stepwise and back."""
    cls, fwd = (bptt.RNN, sw.rnn_forward) if kind == "rnn" else (bptt.LSTM, sw.lstm_forward)
    to_sd = convert.rnn_to_state_dict if kind == "rnn" else convert.lstm_to_state_dict
    from_sd = convert.rnn_from_state_dict if kind == "rnn" else convert.lstm_from_state_dict
    layer = cls(N_X, N_A, dtype=np.float64, seed=7)
    head_p = rnn_params(rng) if kind == "rnn" else lstm_params(rng)
    head = {k: head_p[k] for k in (("Wya", "by") if kind == "rnn" else ("Wy", "by"))}
    p = from_sd(layer.state_dict(), head)
    assert set(p) == set(head_p)
    x = rng.standard_normal((N_X, M, T))
    state = np.zeros((1, M, N_A)) if kind == "rnn" else (np.zeros((1, M, N_A)),) * 2
    out, _ = layer.forward(x.transpose(2, 1, 0), state)
    np.testing.assert_allclose(fwd(x, np.zeros((N_A, M)), p)[0], out.transpose(2, 1, 0),
                               rtol=1e-12, atol=1e-14)
    back, head2 = to_sd(p)
    assert set(head2) == set(head)
    sd = layer.state_dict()
    for k in ("weight_ih_l0", "weight_hh_l0"):
        np.testing.assert_array_equal(back[k], sd[k])
    np.testing.assert_allclose(back["bias_ih_l0"], sd["bias_ih_l0"] + sd["bias_hh_l0"], rtol=1e-15)
    assert not back["bias_hh_l0"].any()


def test_converters_round_trip_and_errors(rng):
    p = lstm_params(rng)
    state, head = convert.lstm_to_state_dict(p)
    assert state["weight_ih_l0"].shape == (4 * N_A, N_X)
    assert state["weight_hh_l0"].shape == (4 * N_A, N_A)
    back = convert.lstm_from_state_dict(state, head)
    assert all(np.array_equal(back[k], p[k]) for k in p) and set(back) == set(p)
    assert set(convert.lstm_from_state_dict(state)) == LSTM_W
    with pytest.raises(ValueError, match="unexpected key 'weight_ih_l1'"):
        convert.lstm_from_state_dict({**state, "weight_ih_l1": state["weight_ih_l0"]})
    with pytest.raises(ValueError, match="missing key 'weight_hh_l0'"):
        convert.rnn_from_state_dict({"weight_ih_l0": np.zeros((N_A, N_X))})
    with pytest.raises(ValueError, match="missing key 'Wi'"):
        convert.lstm_to_state_dict({k: v for k, v in p.items() if k != "Wi"})
    q = rnn_params(rng)
    with pytest.raises(ValueError, match=r"ba: expected shape \(4, 1\), got \(4,\)"):
        convert.rnn_to_state_dict({**q, "ba": q["ba"][:, 0]})


# ----------------------------------------------------------------------------------- Adam

@pytest.mark.parametrize("names", [("W1", "b1", "W2"), ("Waa", "Wax", "ba")])
def test_adam_matches_torch(names, rng):
    torch = pytest.importorskip("torch")
    shapes = [(4, 3), (4, 1), (2, 4)]
    params = {n: rng.standard_normal(s) for n, s in zip(names, shapes, strict=True)}
    tparams = [torch.tensor(params[n].copy(), requires_grad=True) for n in names]
    opt = torch.optim.Adam(tparams, lr=0.02, betas=(0.8, 0.99), eps=1e-7)
    v, s = sw.initialize_adam(params)
    assert set(v) == set(s) == {"d" + n for n in names}
    assert all(not v[k].any() and v[k].shape == params[k[1:]].shape for k in v)
    for t in range(1, 6):
        grads = {"d" + n: rng.standard_normal(params[n].shape) for n in names}
        for n, tp in zip(names, tparams, strict=True):
            tp.grad = torch.tensor(grads["d" + n])
        opt.step()
        out = sw.update_parameters_with_adam(params, grads, v, s, t, learning_rate=0.02,
                                             beta1=0.8, beta2=0.99, epsilon=1e-7)
        assert out[0] is params and out[1] is v and out[2] is s
        for n, tp in zip(names, tparams, strict=True):
            np.testing.assert_allclose(params[n], tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_adam_binds_new_arrays_and_leaves_a_snapshot_as_it_was(rng):
    """As the course writes it (parameters["W1"] = parameters["W1"] - ...): a learner's snapshot
    of the old parameters (and moments) keeps the values before the step."""
    params = {"W1": rng.standard_normal((3, 2)), "b1": rng.standard_normal((3, 1)),
              "W2": np.arange(6).reshape(2, 3)}                # ints become float64
    grads = {"d" + k: rng.standard_normal(np.shape(v)) for k, v in params.items()}
    v, s = sw.initialize_adam(params)
    snapshot, old_v = dict(params), dict(v)
    values = {k: np.array(a) for k, a in params.items()}
    out = sw.update_parameters_with_adam(params, grads, v, s, 1)
    assert out[0] is params and out[1] is v and out[2] is s
    for k in params:
        assert params[k] is not snapshot[k] and v["d" + k] is not old_v["d" + k]
        np.testing.assert_array_equal(snapshot[k], values[k])          # unchanged
        assert not old_v["d" + k].any()
        assert np.abs(params[k] - values[k]).min() > 0                 # every entry moved
    assert params["W2"].dtype == np.float64
    p32 = {"W": rng.standard_normal((2, 2)).astype(np.float32)}
    v32, s32 = sw.initialize_adam(p32)
    sw.update_parameters_with_adam(p32, {"dW": np.ones((2, 2), np.float32)}, v32, s32, 1)
    assert p32["W"].dtype == v32["dW"].dtype == np.float32


def test_adam_default_step_is_the_textbook_formula(rng):
    params = {"W1": rng.standard_normal((3, 2))}
    g = {"dW1": rng.standard_normal((3, 2))}
    v, s = sw.initialize_adam(params)
    start = params["W1"].copy()
    sw.update_parameters_with_adam(params, g, v, s, 1)
    v_hat, s_hat = (0.1 * g["dW1"]) / 0.1, (0.001 * g["dW1"] ** 2) / 0.001
    np.testing.assert_allclose(params["W1"], start - 0.01 * v_hat / (np.sqrt(s_hat) + 1e-8),
                               rtol=1e-12)


# ---------------------------------------------------------------------- softmax and sigmoid

def test_softmax_sigmoid_extreme_inputs():
    z = np.array([[1000.0, -1000.0, 0.0], [999.0, -1000.0, 1e308], [-1000.0, 1000.0, -1e308]])
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = sw.softmax(z)
        s = sw.sigmoid(x)
        sc = sw.sigmoid(1000)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=0), 1, rtol=1e-15)
    np.testing.assert_allclose(p[:, 0], [1 / (1 + np.exp(-1)), 1 / (1 + np.e), 0], rtol=1e-15)
    np.testing.assert_allclose(p[:, 2], [0, 1, 0])
    assert s[0] == 0 and s[-1] == 1 and s[2] == 0.5 and np.all((s >= 0) & (s <= 1))
    assert sc == 1 and np.ndim(sc) == 0


def test_softmax_sigmoid_ordinary_values(rng):
    z = rng.standard_normal((5, 3)) * 3
    np.testing.assert_allclose(sw.softmax(z), naive_softmax(z), rtol=1e-14)
    x = np.linspace(-20, 20, 81)
    np.testing.assert_allclose(sw.sigmoid(x), naive_sigmoid(x), rtol=1e-12, atol=1e-15)


# -------------------------------------------------------------------------------- bad inputs

def test_missing_keys_name_the_key(rng):
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    p, q = rnn_params(rng), lstm_params(rng)
    for key in p:
        with pytest.raises(ValueError, match=f"parameters: missing key '{key}'"):
            sw.rnn_forward(x, a0, {k: v for k, v in p.items() if k != key})
    for key in q:
        with pytest.raises(ValueError, match=f"parameters: missing key '{key}'"):
            sw.lstm_forward(x, a0, {k: v for k, v in q.items() if k != key})
    with pytest.raises(TypeError, match="parameters: expected a dict"):
        sw.rnn_forward(x, a0, list(p.values()))


def test_shape_errors_name_key_expected_and_got(rng):
    p = rnn_params(rng, n_a=5)
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((5, M))
    bad = {**p, "Waa": rng.standard_normal((5, 4))}
    with pytest.raises(ValueError,
                       match=r"^Waa: expected shape \(n_a, n_a\) = \(5, 5\), got \(5, 4\)$"):
        sw.rnn_forward(x, a0, bad)
    with pytest.raises(ValueError,
                       match=r"^Wax: expected shape \(n_a, n_x\) = \(5, 3\), got \(5, 4\)$"):
        sw.rnn_cell_forward(x[:, :, 0], a0, {**p, "Wax": np.zeros((5, 4))})
    with pytest.raises(ValueError, match=r"^by: expected shape \(n_y, 1\) = \(2, 1\), got \(2,\)"):
        sw.rnn_forward(x, a0, {**p, "by": np.zeros(2)})
    q = lstm_params(rng)
    with pytest.raises(ValueError, match=r"^Wo: expected shape \(n_a, n_a \+ n_x\) = \(4, 7\), "
                                         r"got \(4, 6\)$"):
        sw.lstm_forward(x, a0[:4], {**q, "Wo": np.zeros((4, 6))})
    with pytest.raises(ValueError, match=r"^x: expected 3 dimensions \(n_x, m, T_x\), got shape"):
        sw.rnn_forward(x[:, :, 0], a0, p)
    with pytest.raises(ValueError, match=r"^x: expected at least one"):
        sw.lstm_forward(x[:, :, :0], a0[:4], q)
    with pytest.raises(TypeError, match="^Waa: expected a real array"):
        sw.rnn_forward(x, a0, {**p, "Waa": p["Waa"].astype(complex)})


def test_batch_mismatch_of_a0_is_named(rng):
    x = rng.standard_normal((N_X, M, T))
    a0 = rng.standard_normal((N_A, M + 1))
    for fwd, p in ((sw.rnn_forward, rnn_params(rng)), (sw.lstm_forward, lstm_params(rng))):
        with pytest.raises(ValueError,
                           match=r"^a0: expected shape \(n_a, m\) = \(4, 2\), got \(4, 3\) "
                                 r"\(its batch 3 differs from the input's batch 2\)$"):
            fwd(x, a0, p)
    with pytest.raises(ValueError, match=r"^c_prev: expected shape \(n_a, m\) = \(4, 2\)"):
        sw.lstm_cell_forward(x[:, :, 0], a0[:, :M], a0, lstm_params(rng))
    with pytest.raises(ValueError,
                       match=r"^a0: expected shape \(n_a, m\) = \(4, 2\), got \(3, 2\)$"):
        sw.rnn_forward(x, a0[:3, :M], rnn_params(rng))


def test_backward_argument_errors(rng):
    p = rnn_params(rng)
    x, a0 = rng.standard_normal((N_X, M, T)), rng.standard_normal((N_A, M))
    _, _, caches = sw.rnn_forward(x, a0, p)
    with pytest.raises(ValueError, match=r"^da: expected shape \(n_a, m, T_x\) = \(4, 2, 3\), "
                                         r"got \(4, 2, 2\)$"):
        sw.rnn_backward(np.zeros((N_A, M, T - 1)), caches)
    with pytest.raises(TypeError, match="^caches: expected the pair"):
        sw.rnn_backward(np.zeros((N_A, M, T)), caches[0])
    with pytest.raises(ValueError, match="^caches: expected one cell cache per step of x, got 2"):
        sw.rnn_backward(np.zeros((N_A, M, T)), (caches[0][:2], caches[1]))
    with pytest.raises(TypeError,
                       match="^cache: expected the 10-tuple returned by lstm_cell_forward"):
        sw.lstm_cell_backward(a0, a0, caches[0][0])
    with pytest.raises(ValueError, match=r"^da_next: expected shape \(n_a, m\)"):
        sw.rnn_cell_backward(np.zeros((N_A, M + 1)), caches[0][0])


def test_adam_errors(rng):
    params = {"W1": rng.standard_normal((3, 2)), "b1": np.zeros((3, 1))}
    v, s = sw.initialize_adam(params)
    grads = {"dW1": np.zeros((3, 2)), "db1": np.zeros((3, 1))}
    before = params["W1"].copy()
    with pytest.raises(ValueError, match=r"^grads: missing key 'db1' \(for parameter 'b1'\)$"):
        sw.update_parameters_with_adam(params, {"dW1": grads["dW1"]}, v, s, 1)
    with pytest.raises(ValueError, match=r"^grads\['db1'\]: expected shape \(3, 1\), got \(3,\)$"):
        sw.update_parameters_with_adam(params, {**grads, "db1": np.zeros(3)}, v, s, 1)
    with pytest.raises(ValueError, match="^t: expected an integer >= 1, got 0$"):
        sw.update_parameters_with_adam(params, grads, v, s, 0)
    np.testing.assert_array_equal(params["W1"], before)     # nothing changed on error
    assert not v["dW1"].any()


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_transposed_x_is_named_as_a_layout_error(kind, rng):
    """x in torch's (T_x, m, n_x), Keras's (m, T_x, n_x) or (m, n_x, T_x): the error is about x's
    layout, names the shape and the transpose that fixes it (not a weight's shape)."""
    from test_stepwise_gru import gru_params

    make = {"rnn": rnn_params, "lstm": lstm_params, "gru": gru_params}[kind]
    p = make(rng, n_x=3, n_a=5)
    fwd, cell = getattr(sw, f"{kind}_forward"), getattr(sw, f"{kind}_cell_forward")
    x, a0 = rng.standard_normal((3, 10, 4)), rng.standard_normal((5, 10))
    for perm, fix in (((2, 1, 0), "(2, 1, 0)"), ((1, 2, 0), "(2, 0, 1)"),
                      ((1, 0, 2), "(1, 0, 2)")):
        bad = x.transpose(perm)
        want = (r"^x: expected the layout \(n_x, m, T_x\) \(features first\) with n_x = 3 "
                rf"\(the columns of W.*\), got shape {re.escape(str(bad.shape))}.*pass "
                rf"x\.transpose{re.escape(fix)}, of shape \(3, 10, 4\)$")
        with pytest.raises(ValueError, match=want):
            fwd(bad, a0, p)
        fwd(bad.transpose(np.argsort(perm)), a0, p)            # the inverse transpose runs
    xt = x[:, :, 0]
    args = (xt.T, a0, np.zeros((5, 10)), p) if kind == "lstm" else (xt.T, a0, p)
    with pytest.raises(ValueError, match=r"^xt: expected the layout \(n_x, m\).*got shape "
                                         r"\(10, 3\); it looks like \(m, n_x\): pass xt\.T$"):
        cell(*args)


# ------------------------------------------------------ a `bptt train` run <-> the course's dict

@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_from_run_and_back(cell, tmp_path, monkeypatch):
    from bptt import cli
    from bptt.text import lm
    from bptt.text.train import load_model

    corpus = tmp_path / "names.txt"
    corpus.write_text("anna\nbob\ncarla\ndave\nemma\n" * 40, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["train", str(corpus), "--cell", cell, "--hidden", "6", "--layers", "1",
                   "--seq-len", "8", "--batch", "2", "--steps", "5", "--dtype", "float64",
                   "--out", "run", "--log-every", "5", "--eval-every", "5"])
    assert rc == 0
    params, chars = convert.from_run(tmp_path / "run")
    head = "Wya" if cell == "rnn" else "Wy"
    assert chars == "".join(sorted(set(corpus.read_text()))) and head in params
    model, vocab, _ = load_model(str(tmp_path / "run"))
    # The course's forward on the run's parameters gives the model's own next-character
    # probabilities.
    text = "anna\nbob"
    ids = vocab.encode(text)
    x = np.eye(len(chars))[:, ids][:, None, :]                      # (n_x, 1, T_x) one-hot
    forward = sw.rnn_forward if cell == "rnn" else sw.lstm_forward
    y = forward(x, np.zeros((6, 1)), params)[1][:, 0, :]           # (n_y, T_x)
    logits = model.forward(ids[:, None], None)[0]                  # (T_x, n_y)
    np.testing.assert_allclose(y.T, sw.softmax(logits.T).T, rtol=1e-10, atol=1e-14)
    # ... and back: the same model (its two biases now summed into bias_ih_l0).
    again, vocab2 = convert.to_model(params, chars)
    assert vocab2.chars == vocab.chars and again.cell == cell
    theirs, ours = model.state_dict(), again.state_dict()
    for k in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight", "head.bias"):
        np.testing.assert_array_equal(ours[k], theirs[k])
    np.testing.assert_allclose(ours["rnn.bias_ih_l0"] + ours["rnn.bias_hh_l0"],
                               theirs["rnn.bias_ih_l0"] + theirs["rnn.bias_hh_l0"], rtol=1e-15)
    np.testing.assert_allclose(again.forward(ids[:, None], None)[0], logits, rtol=1e-12,
                               atol=1e-14)
    text_a = lm.sample(model, vocab, 30, rng=np.random.default_rng(3))
    assert lm.sample(again, vocab2, 30, rng=np.random.default_rng(3)) == text_a


def test_from_run_refuses_what_the_course_has_not(tmp_path, monkeypatch):
    from bptt import cli

    corpus = tmp_path / "c.txt"
    corpus.write_text("abcabcabd\n" * 50, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    common = ["--hidden", "4", "--seq-len", "4", "--batch", "2", "--steps", "1",
              "--log-every", "1", "--eval-every", "1"]
    assert cli.main(["train", str(corpus), "--cell", "gru", "--layers", "1", *common,
                     "--out", "gru"]) == 0
    assert cli.main(["train", str(corpus), "--cell", "rnn", "--layers", "2", *common,
                     "--out", "deep"]) == 0
    with pytest.raises(ValueError, match="a gru run; the course notation covers rnn and lstm"):
        convert.from_run(tmp_path / "gru")
    with pytest.raises(ValueError, match="a 2-layer run; the course's cells have one layer"):
        convert.from_run(tmp_path / "deep")
    with pytest.raises(ValueError, match="no such checkpoint"):
        convert.from_run(tmp_path / "nothing")


def test_to_model_takes_the_dinosaur_dict(rng):
    """initialize_parameters' dict (hidden bias 'b') becomes a model whose probabilities are
    stepwise's."""
    chars = "\nabc"
    p = sw.initialize_parameters(5, 4, 4)
    p["b"] = rng.standard_normal((5, 1))
    model, vocab = convert.to_model(p, chars)
    ids = np.array([1, 2, 3, 0])
    a, y, _ = sw.rnn_forward(np.eye(4)[:, ids][:, None, :], np.zeros((5, 1)), p)  # b works as ba
    logits = model.forward(ids[:, None], None)[0]
    np.testing.assert_allclose(y[:, 0, :].T, sw.softmax(logits.T).T, rtol=1e-12)
    with pytest.raises(ValueError, match=r"^chars: expected one character per input and output "
                                         r"row, 4 and 4, got 3$"):
        convert.to_model(p, "abc")
    with pytest.raises(ValueError, match="^parameters: missing the output head 'Wya', 'by'$"):
        convert.to_model({k: v for k, v in p.items() if k not in ("Wya", "by")}, chars)
