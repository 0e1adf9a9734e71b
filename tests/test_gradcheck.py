"""bptt.gradcheck: it passes correct gradients, flags wrong ones and says where, restores the
parameters, checks engine layers, and rejects what it cannot check."""

import numpy as np
import pytest
from fd import numerical_grad

import bptt
from bptt import stepwise as sw
from bptt.gradcheck import GradcheckResult, check_layer, gradcheck


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def cubic(rng):
    """L = Σ W³ c + Σ sin(b): params, exact grads keyed "d" + name, and the loss."""
    c = rng.standard_normal((3, 4))
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    grads = {"dW": 3 * params["W"] ** 2 * c, "db": np.cos(params["b"])}
    return params, grads, lambda p: np.sum(p["W"] ** 3 * c) + np.sum(np.sin(p["b"]))


def test_correct_gradients_pass(rng):
    params, grads, loss = cubic(rng)
    res = gradcheck(loss, params, grads)
    assert isinstance(res, GradcheckResult) and res.ok
    assert set(res) == {"W", "b"} and res["W"].checked == 12 and res["b"].shape == (5,)
    assert res.max_error < 1e-8


def test_numeric_values_are_central_differences(rng):
    params, grads, loss = cubic(rng)
    res = gradcheck(loss, params, grads)
    for name, r in res.items():
        ref = numerical_grad(lambda p=params: loss(p), params[name])
        assert r.numeric == pytest.approx(ref[r.worst_index], rel=1e-9, abs=1e-12)
        assert r.analytic == grads["d" + name][r.worst_index]


def test_wrong_entry_is_flagged_and_located(rng):
    params, grads, loss = cubic(rng)
    grads["dW"][2, 1] += 0.05
    res = gradcheck(loss, params, grads)
    assert not res.ok and res.worst == "W" and res["W"].worst_index == (2, 1)
    assert res["W"].rel_error > 1e-3 and res["b"].rel_error < 1e-8
    text = str(res)
    assert "FAILED" in text and "(2, 1)" in text and "b " in text


def test_transposed_stepwise_gradient_is_caught(rng):
    """A learner's typical slip: dWaa transposed."""
    p = {"Wax": rng.standard_normal((4, 3)), "Waa": rng.standard_normal((4, 4)),
         "ba": rng.standard_normal((4, 1)), "Wya": rng.standard_normal((2, 4)),
         "by": rng.standard_normal((2, 1))}
    x, a0 = rng.standard_normal((3, 2, 3)), rng.standard_normal((4, 2))
    R = rng.standard_normal((4, 2, 3))
    grads = sw.rnn_backward(R, sw.rnn_forward(x, a0, p)[2])
    loss = lambda q: np.vdot(R, sw.rnn_forward(x, a0, q)[0])   # noqa: E731
    assert gradcheck(loss, p, grads).ok
    bad = gradcheck(loss, p, {**grads, "dWaa": grads["dWaa"].T})
    assert not bad.ok and bad.worst == "Waa" and bad["Wax"].rel_error < 1e-7
    assert bad.skipped == ("Wya", "by")


def test_parameters_are_restored_exactly_even_on_error(rng):
    params, grads, loss = cubic(rng)
    before = {k: v.copy() for k, v in params.items()}
    gradcheck(loss, params, grads)
    assert all(np.array_equal(params[k], before[k]) for k in params)
    calls = []

    def failing(p):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return loss(p)

    with pytest.raises(RuntimeError, match="boom"):
        gradcheck(failing, params, grads)
    assert all(np.array_equal(params[k], before[k]) for k in params)


def test_prefix_names_and_subsets(rng):
    params, grads, loss = cubic(rng)
    plain = {"W": grads["dW"], "b": grads["db"]}
    assert gradcheck(loss, params, plain, prefix="").ok
    res = gradcheck(loss, params, {"gW": grads["dW"]}, names={"W": "gW"})
    assert set(res) == {"W"} and res.ok
    res = gradcheck(loss, params, grads, names=["b"], max_entries=2, seed=3)
    assert set(res) == {"b"} and res["b"].checked == 2 and res.ok


def test_bad_arguments(rng):
    params, grads, loss = cubic(rng)
    with pytest.raises(ValueError, match=r"^grads: missing key 'db' \(the gradient of 'b'\)$"):
        gradcheck(loss, params, {"dW": grads["dW"]}, names=["W", "b"])
    with pytest.raises(ValueError, match="^grads: no key matches"):
        gradcheck(loss, params, grads, prefix="grad_")
    with pytest.raises(ValueError, match=r"^grads\['db'\]: expected shape \(5,\), got \(4,\)$"):
        gradcheck(loss, params, {**grads, "db": grads["db"][:4]})
    with pytest.raises(TypeError, match=r"^params\['W'\]: expected a writeable float64 array"):
        gradcheck(loss, {**params, "W": params["W"].astype(np.float32)}, grads)
    with pytest.raises(TypeError, match="^params: expected a dict"):
        gradcheck(loss, [params["W"]], grads)


@pytest.mark.parametrize("cls", [bptt.RNN, bptt.LSTM, bptt.GRU])
def test_check_layer_on_engine_layers(cls, rng):
    layer = cls(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    x = rng.standard_normal((3, 2, 3))
    res = check_layer(layer, x)
    names = {"x", "h0"} | ({"c0"} if cls is bptt.LSTM else set())
    assert set(res) == set(layer.state_dict()) | names and res.ok, str(res)


def test_check_layer_flags_a_wrong_layer_gradient(rng):
    layer = bptt.LSTM(3, 4, dtype=np.float64, seed=2)
    backward = layer.backward

    def wrong_backward(*args):
        out = backward(*args)
        layer.grads["weight_hh_l0"][5, 2] *= 1.01
        return out

    layer.backward = wrong_backward
    state = (rng.standard_normal((1, 2, 4)), rng.standard_normal((1, 2, 4)))
    res = check_layer(layer, rng.standard_normal((3, 2, 3)), state)
    assert not res.ok and res.worst == "weight_hh_l0" and res["weight_hh_l0"].worst_index == (5, 2)


def test_check_layer_needs_float64():
    with pytest.raises(TypeError, match="^layer: expected a float64 layer"):
        check_layer(bptt.RNN(3, 4), np.zeros((2, 1, 3)))


def test_public_names():
    assert bptt.gradcheck is gradcheck and bptt.check_layer is check_layer
    assert {"gradcheck", "check_layer", "stepwise"} <= set(bptt.__all__)


# ------------------------------------------------------------------------ sequences, by step

def rnn_case(rng, T=4):
    p = {"Wax": rng.standard_normal((4, 3)), "Waa": rng.standard_normal((4, 4)),
         "ba": rng.standard_normal((4, 1)), "Wya": rng.standard_normal((2, 4)),
         "by": rng.standard_normal((2, 1))}
    return p, rng.standard_normal((3, 2, T)), rng.standard_normal((4, 2))


def backward_without_the_recurrent_part(da, caches):
    """A learner's classic BPTT bug: each step gets da[:, :, t] only, not + da_prevt."""
    cells, x = caches
    out = {"dx": np.empty_like(x), "dWax": 0, "dWaa": 0, "dba": 0}
    for t in reversed(range(x.shape[2])):
        g = sw.rnn_cell_backward(da[:, :, t], cells[t])
        out["dx"][:, :, t], out["da0"] = g["dxt"], g["da_prev"]
        for k in ("dWax", "dWaa", "dba"):
            out[k] = out[k] + g[k]
    return out


def test_per_step_breaks_the_error_down_by_t(rng):
    p, x, a0 = rnn_case(rng)
    P = {**p, "x": x, "a0": a0}
    R = rng.standard_normal((4, 2, 4))
    loss = lambda q: np.vdot(R, sw.rnn_forward(q["x"], q["a0"], q)[0])     # noqa: E731
    good = sw.rnn_backward(R, sw.rnn_forward(x, a0, P)[2])
    res = gradcheck(loss, P, good, per_step={"x": -1})
    assert res.ok and res["x"].step_axis == 2 and len(res["x"].per_step) == 4
    assert max(res["x"].per_step) < 1e-8 and res["Wax"].per_step == ()
    bad = backward_without_the_recurrent_part(R, sw.rnn_forward(x, a0, P)[2])
    res = gradcheck(loss, P, bad, per_step=["x"])
    steps = res["x"].per_step
    assert steps[3] < 1e-8 and min(steps[:3]) > 1e-3      # only the last step is right
    assert "x by t (axis 2): t=0" in str(res)
    # by hand: the per-step error is the norm-wise error of the slice dx[:, :, t]
    num = numerical_grad(lambda: loss(P), P["x"])
    t1 = np.linalg.norm(bad["dx"][:, :, 1] - num[:, :, 1]) / (
        np.linalg.norm(bad["dx"][:, :, 1]) + np.linalg.norm(num[:, :, 1]))
    assert steps[1] == pytest.approx(t1, rel=1e-5)


def test_per_step_arguments(rng):
    params, grads, loss = cubic(rng)
    with pytest.raises(ValueError, match=r"^per_step: 'x' is not a key of params$"):
        gradcheck(loss, params, grads, per_step=["x"])
    with pytest.raises(ValueError, match=r"^per_step\['W'\]: expected an axis of its 2 dim"):
        gradcheck(loss, params, grads, per_step={"W": 2})


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_check_sequence_passes_the_stepwise_backwards(kind, rng):
    p, x, a0 = rnn_case(rng, T=3)
    if kind != "rnn":
        gates = "fico" if kind == "lstm" else "urc"
        p = {**{f"W{g}": rng.standard_normal((4, 7)) for g in gates},
             **{f"b{g}": rng.standard_normal((4, 1)) for g in gates},
             "Wy": rng.standard_normal((2, 4)), "by": rng.standard_normal((2, 1))}
    fwd, bwd = getattr(sw, f"{kind}_forward"), getattr(sw, f"{kind}_backward")
    res = bptt.check_sequence(fwd, bwd, x, a0, p)
    assert res.ok, str(res)
    assert len(res["x"].per_step) == len(res["a0"].per_step) == 3


def test_check_sequence_shows_where_a_recurrent_bug_starts(rng):
    p, x, a0 = rnn_case(rng)
    res = bptt.check_sequence(sw.rnn_forward, backward_without_the_recurrent_part, x, a0, p)
    assert not res.ok
    chain = res["a0"].per_step
    assert chain[0] < 1e-8 and min(chain[1:]) > 1e-3        # fine through 1 step, not through 2
    assert res["x"].per_step[-1] < 1e-8
    assert "a0 by chain, the loss reading steps 0..t: t=0" in str(res)


def test_loss_returning_an_array_is_one_line_error(rng):
    params, grads, _ = cubic(rng)
    before = params["W"].copy()
    with pytest.raises(TypeError, match=r"^loss_fn: expected a scalar loss \(one number\), got an "
                                        r"array of shape \(3, 4\); return its sum or mean$"):
        gradcheck(lambda p: p["W"] ** 2, params, grads)
    with pytest.raises(TypeError, match=r"^loss_fn: expected a scalar loss.*got NoneType$"):
        gradcheck(lambda p: None, params, grads)
    np.testing.assert_array_equal(params["W"], before)


def test_loss_not_depending_on_the_parameters_is_one_line_error(rng):
    params, grads, loss = cubic(rng)
    frozen = {k: v.copy() for k, v in params.items()}       # a copy made outside the loss
    with pytest.raises(ValueError, match=r"^loss_fn: every numeric gradient is zero: the loss "
                                         r"does not change"):
        gradcheck(lambda p: loss(frozen), params, grads)
