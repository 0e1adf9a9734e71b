"""The course path: the dinosaur exercise's bias name ``b`` wherever a course RNN dict goes,
``bptt.check_cell`` on every input of one cell (the LSTM's c_prev included), and the gradient
check's summary in words."""

import numpy as np
import pytest
from test_gradcheck import backward_without_the_recurrent_part

import bptt
from bptt import convert
from bptt import stepwise as sw
from bptt.gradcheck import GradcheckResult, ParamReport


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def rnn_params(rng, n_x=3, n_a=4, n_y=2):
    return {"Wax": rng.standard_normal((n_a, n_x)), "Waa": rng.standard_normal((n_a, n_a)),
            "ba": rng.standard_normal((n_a, 1)), "Wya": rng.standard_normal((n_y, n_a)),
            "by": rng.standard_normal((n_y, 1))}


def with_b(p):
    return {("b" if k == "ba" else k): v for k, v in p.items()}


def test_b_is_ba_in_every_rnn_function(rng):
    p = rnn_params(rng)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    a, y, caches = sw.rnn_forward(x, a0, p)
    ab, yb, caches_b = sw.rnn_forward(x, a0, with_b(p))
    np.testing.assert_array_equal(a, ab)
    np.testing.assert_array_equal(y, yb)
    da = rng.standard_normal(a.shape)
    g, gb = sw.rnn_backward(da, caches), sw.rnn_backward(da, caches_b)
    assert "db" in gb and "dba" not in gb                    # keyed "d" + the caller's name
    np.testing.assert_array_equal(g["dba"], gb["db"])
    an, _, cache = sw.rnn_cell_forward(x[:, :, 0], a0, with_b(p))
    np.testing.assert_array_equal(an, a[:, :, 0])
    assert set(sw.rnn_cell_backward(da[:, :, 0], cache)) == {"dxt", "da_prev", "dWax", "dWaa", "db"}
    state, head = convert.rnn_to_state_dict(with_b(p))
    np.testing.assert_array_equal(state["bias_ih_l0"], p["ba"][:, 0])
    assert set(head) == {"Wya", "by"}


def test_b_and_ba_together_or_neither_is_one_line_error(rng):
    p = rnn_params(rng)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    for call in (lambda q: sw.rnn_forward(x, a0, q), lambda q: convert.rnn_to_state_dict(q),
                 lambda q: sw.sample(q, {c: i for i, c in enumerate("ab\n")}, 0)):
        with pytest.raises(ValueError, match=r"hidden bias as 'ba' or 'b'.*got both$"):
            call({**p, "b": p["ba"]})
    del p["ba"]
    with pytest.raises(ValueError, match=r"^parameters: missing key 'ba' or 'b', the dinosaur"):
        sw.rnn_forward(x, a0, p)
    with pytest.raises(ValueError, match=r"^parameters: missing key 'ba'"):
        convert.rnn_to_state_dict(p)


def lstm_params(rng, n_x=3, n_a=4):
    return {**{f"W{g}": rng.standard_normal((n_a, n_a + n_x)) for g in "fico"},
            **{f"b{g}": rng.standard_normal((n_a, 1)) for g in "fico"},
            "Wy": rng.standard_normal((2, n_a)), "by": rng.standard_normal((2, 1))}


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_check_cell_passes_the_stepwise_cells(kind, rng):
    xt, a_prev = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    fwd, bwd = getattr(sw, f"{kind}_cell_forward"), getattr(sw, f"{kind}_cell_backward")
    if kind == "rnn":
        res = bptt.check_cell(fwd, bwd, xt, a_prev, with_b(rnn_params(rng)))
    elif kind == "gru":
        p = {**{f"W{g}": rng.standard_normal((4, 7)) for g in "urc"},
             **{f"b{g}": rng.standard_normal((4, 1)) for g in "urc"},
             "Wy": rng.standard_normal((2, 4)), "by": rng.standard_normal((2, 1))}
        res = bptt.check_cell(fwd, bwd, xt, a_prev, p)
    else:
        res = bptt.check_cell(fwd, bwd, xt, a_prev, rng.standard_normal((4, 2)), lstm_params(rng))
        assert "c_prev" in res
    assert res.ok, str(res)
    assert {"xt", "a_prev"} <= set(res) and res.skipped      # the head is not a cell gradient


def test_check_cell_finds_a_cell_state_bug_in_c_prev_alone(rng):
    def backward_forgetting_f(da_next, dc_next, cache):      # dc_prev = dc_next, without * f
        g = sw.lstm_cell_backward(da_next, dc_next, cache)
        zero = sw.lstm_cell_backward(da_next, np.zeros_like(dc_next), cache)["dc_prev"]
        return {**g, "dc_prev": zero + dc_next}

    xt, a_prev, c_prev = (rng.standard_normal(s) for s in ((3, 2), (4, 2), (4, 2)))
    res = bptt.check_cell(sw.lstm_cell_forward, backward_forgetting_f, xt, a_prev, c_prev,
                          lstm_params(rng))
    assert not res.ok and res.worst == "c_prev"
    assert all(r.rel_error < 1e-7 for name, r in res.items() if name != "c_prev")
    with pytest.raises(TypeError, match="check_cell: expected"):
        bptt.check_cell(sw.lstm_cell_forward, backward_forgetting_f, xt, a_prev)


def test_summary_says_in_words_where_a_recurrent_bug_is(rng):
    p = rnn_params(rng)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    res = bptt.check_sequence(sw.rnn_forward, backward_without_the_recurrent_part, x, a0, p)
    words = "\n".join(res.diagnosis)
    assert "x: right at the last 1 step(s) only (t >= 4), wrong before: the gradient from step " \
           "t+1 does not reach step t" in words
    assert "a0: right only when the loss reads the first 1 step(s)" in words
    assert words in str(res)
    assert bptt.check_sequence(sw.rnn_forward, sw.rnn_backward, x, a0, p).diagnosis == []


@pytest.mark.parametrize("errors, words", [
    ((1, 1, 1), "wrong at every step"),
    ((0, 0, 1), "right at the first 2 step(s) only, wrong from t = 2"),
    ((1, 0, 1), "wrong at t = [0, 2]"),
    ((1, 1, 0), "right at the last 1 step(s) only"),
])
def test_summary_words_for_each_pattern(errors, words):
    r = ParamReport("x", (3, 2, 3), 1.0, (0, 0, 0), 1.0, 0.0, 18, tuple(errors), 2)
    assert words in GradcheckResult({"x": r}, 1e-7, 1e-6).diagnosis[0]


def test_result_shows_as_an_html_table_in_a_notebook(rng):
    p = rnn_params(rng)
    x, a0 = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2))
    res = bptt.check_sequence(sw.rnn_forward, backward_without_the_recurrent_part, x, a0, p)
    html = res._repr_html_()
    assert html.count("<tr>") == len(res) + 1 and "FAILED" in html
    assert all(f"<td>{name}</td>" in html for name in res)
    assert "right at the last 1 step(s) only" in html
