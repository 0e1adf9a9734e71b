"""The character model's one-hot lookup, embedding, dropout and eval mode (issue 13, model
side); the training run's flags for them are in test_cli_regularise.py."""

import numpy as np
import pytest
from fd import numerical_grad, rel_error

from bptt.nn.layers import GRU, LSTM, RNN
from bptt.text.lm import CharLM, evaluating


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
@pytest.mark.parametrize("B", [3, 16])            # the per-step projection and the joined GEMM
@pytest.mark.parametrize("bidirectional,batch_first", [(False, False), (True, True)])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_lookup_equals_the_onehot_gemm(cls, B, bidirectional, batch_first, dtype, tol):
    """Ids give the outputs, final state and weight gradients of the same one-hot input as a
    float array (to within rounding), with dropout on (the same masks), and no dx."""
    V, H, T = 7, 5, 4
    kw = dict(num_layers=2, bidirectional=bidirectional, batch_first=batch_first, dtype=dtype,
              seed=3, dropout=0.3, recurrent_dropout=0.2)
    a, b = cls(V, H, **kw), cls(V, H, **kw)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (B, T) if batch_first else (T, B))
    out_a, fin_a = a.forward(ids)
    out_b, fin_b = b.forward(np.eye(V, dtype=dtype)[ids])
    dout = rng.standard_normal(out_a.shape).astype(dtype)
    dfin = tuple(rng.standard_normal(f.shape).astype(dtype) for f in
                 (fin_a if isinstance(fin_a, tuple) else (fin_a,)))
    dfin = dfin if cls is LSTM else dfin[0]
    dx_a, d0_a = a.backward(dout, dfin)
    dx_b, d0_b = b.backward(dout, dfin)
    assert dx_a is None and dx_b.shape == (*ids.shape, V)
    assert rel_error(out_a, out_b) < tol
    for x, y in zip(np.atleast_1d(fin_a), np.atleast_1d(fin_b), strict=True):
        assert rel_error(x, y) < tol
    for x, y in zip(np.atleast_1d(d0_a), np.atleast_1d(d0_b), strict=True):
        assert rel_error(x, y) < tol
    assert a.grads.keys() == b.grads.keys()
    for k in a.grads:
        assert a.grads[k].shape == b.grads[k].shape and rel_error(a.grads[k], b.grads[k]) < tol, k


def test_ids_with_lengths_run_as_onehot():
    """With lengths (the packed path) ids are the one-hot input itself."""
    a, b = LSTM(6, 4, num_layers=2, dtype=np.float64, seed=1), LSTM(6, 4, 2, dtype=np.float64,
                                                                     seed=1)
    ids, lengths = np.array([[1, 2], [3, 0], [5, 0]]), np.array([3, 1])
    out_a, _ = a.forward(ids, lengths=lengths)
    out_b, _ = b.forward(np.eye(6)[ids], lengths=lengths)
    assert np.array_equal(out_a, out_b)


@pytest.mark.parametrize("ids,err,word", [
    (np.array([[0, 7]]), ValueError, "[0, 7)"), (np.array([[-1, 0]]), ValueError, "[0, 7)"),
    (np.zeros((0, 2), int), ValueError, "at least one step"),
])
def test_bad_ids(ids, err, word):
    with pytest.raises(err, match=word.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        LSTM(7, 4).forward(ids)


def _model(embed, dropout=0.0, recurrent_dropout=0.0, cell="lstm", dtype=np.float64):
    return CharLM(9, cell, 6, 2, dtype, seed=5, embed=embed, dropout=dropout,
                  recurrent_dropout=recurrent_dropout)


def test_onehot_model_unchanged_by_the_lookup():
    """The one-hot model's loss and gradients equal those of its layers run on a one-hot float
    input (the model before the lookup path), and its parameters are initialised as before."""
    m = _model(0)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 9, (5, 10)), rng.integers(0, 9, (5, 10))
    loss, _ = m.loss_and_grads(x, y)
    ref = _model(0)
    assert all(np.array_equal(m.params[k], ref.params[k]) for k in m.params)
    from bptt.nn.losses import cross_entropy, cross_entropy_backward
    out, _ = ref.rnn.forward(np.eye(9)[x])
    logits = ref.head.forward(out.reshape(-1, 6))
    want, cache = cross_entropy(logits, y.reshape(-1))
    ref.rnn.backward(ref.head.backward(cross_entropy_backward(1.0, cache)).reshape(5, 10, 6))
    assert abs(loss - want) < 1e-13
    for k, g in ref.rnn.grads.items():
        assert rel_error(m.grads[f"rnn.{k}"], g) < 1e-12, k


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embed", [0, 4])
def test_gradients_match_finite_differences_with_dropout(cell, embed):
    """float64: every gradient of the model (embedding, layers, head) against central
    differences, dropout and recurrent dropout on with the masks fixed (the generators put back
    before each forward)."""
    m = _model(embed, 0.3, 0.25, cell)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 9, (4, 3)), rng.integers(0, 9, (4, 3))
    start = m.get_rng_state()
    m.loss_and_grads(x, y)
    grads = {k: g.copy() for k, g in m.grads.items()}
    m.set_rng_state(start)
    head_mask = m.drop(np.ones((12, 6)))        # the head's generator, apart from the layer's
    assert (head_mask == 0).any()               # the head's mask drops something

    def f():
        m.set_rng_state(start)
        return m.loss(x, y)[0]

    for name in ("embed.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l1", "rnn.bias_hh_l0",
                 "head.weight"):
        if name in m.params:
            assert rel_error(grads[name], numerical_grad(f, m.params[name])) < 1e-5, name
    assert ("embed.weight" in m.params) == bool(embed)


def test_eval_mode_is_the_model_without_dropout():
    """Eval mode gives bitwise the logits of the same model built without dropout and draws no
    mask; ``evaluating`` puts the mode back; training mode with dropout differs."""
    m, plain = _model(4, 0.5, 0.5, dtype=np.float32), _model(4, dtype=np.float32)
    x = np.random.default_rng(3).integers(0, 9, (6, 2))
    before = m.get_rng_state()
    with evaluating(m):
        assert not m.training and not m.rnn.training
        logits, _ = m.forward(x)
    assert m.training and m.rnn.training and m.get_rng_state() == before
    assert np.array_equal(logits, plain.forward(x)[0])
    assert not np.array_equal(m.forward(x)[0], logits)
    assert m.get_rng_state() != before


def test_rng_state_round_trip_and_bad_state():
    m = _model(0, 0.2, 0.2)
    x = np.random.default_rng(4).integers(0, 9, (3, 2))
    state = m.get_rng_state()
    first = m.forward(x)[0]
    m.set_rng_state(state)
    assert np.array_equal(m.forward(x)[0], first)
    with pytest.raises(ValueError, match="rng_state"):
        m.set_rng_state({"rnn": state["rnn"]})
    with pytest.raises(ValueError, match="rng_state"):
        m.set_rng_state({"rnn": state["rnn"], "head": {"bit_generator": "MT19937"}})


@pytest.mark.parametrize("kw,err,word", [
    ({"embed": -1}, ValueError, "embed"), ({"embed": 2.5}, ValueError, "embed"),
    ({"dropout": 1.5}, ValueError, "dropout"), ({"recurrent_dropout": -0.1}, ValueError,
                                                  "recurrent_dropout"),
])
def test_bad_model_options(kw, err, word):
    with pytest.raises(err, match=word):
        CharLM(9, **kw)
