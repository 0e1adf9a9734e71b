"""Dropout between layers and recurrent dropout: masks, finite differences with the masks fixed,
torch autograd with the same masks, eval and rate 0 bitwise the engine without dropout,
train()/eval(), the generator's state."""

import json
import warnings

import numpy as np
import pytest
from engine_cases import check_all_gradients, make_layer, pack, random_inputs, unpack
from fd import numerical_grad, rel_error

import bptt
from bptt.nn import dropout

# every cell, stacked with both directions and batch-first, and stacked one-way
CASES = [(k, nl, L, bi, bf) for k, nl in [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", None),
                                          ("GRU", None)]
         for L, bi, bf in [(2, True, True), (3, False, False)]]


def case_id(c):
    return f"{c[0]}{'-' + c[1] if c[1] else ''}-L{c[2]}{'-bi' if c[3] else ''}"


def with_dropout(case, p, q, dtype=np.float64, I=3, H=3, seed=1):
    layer = make_layer(*case, I=I, H=H, dtype=dtype, seed=seed)
    return layer.__class__(
        layer.input_size, layer.hidden_size, num_layers=layer.num_layers,
        bidirectional=layer.bidirectional, batch_first=layer.batch_first, dtype=dtype, seed=seed,
        dropout=p, recurrent_dropout=q, **({"nonlinearity": case[1]} if case[1] else {}),
    )


def linear_loss(layer, x, state, dout, dstate):
    out, final = layer.forward(x, pack(layer, state))
    return float(np.sum(out * dout) + sum(
        np.sum(s * d) for s, d in zip(unpack(layer, final), dstate, strict=True)))


# ------------------------------------------------------------------------------------ masks


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_mean_is_one_and_drops_a_fraction_p(p, dtype):
    m = dropout.mask(dropout.generator(0), p, (400, 500), dtype)
    assert m.dtype == dtype
    scale = dtype(1 / (1 - p))
    assert set(np.unique(m)) <= {0, scale}
    # 200 000 entries: the mean has standard deviation sqrt(p / (1-p) / n) <= 0.0045 here, the
    # fraction dropped sqrt(p (1-p) / n) <= 0.0012; the seed is fixed and the bounds are 7 of them
    n = m.size
    assert abs(m.mean(dtype=np.float64) - 1) < 7 * np.sqrt(p / (1 - p) / n)
    assert abs((m == 0).mean() - p) < 7 * np.sqrt(p * (1 - p) / n)


def test_rates_zero_and_one_and_no_draw_in_eval():
    rng = dropout.generator(3)
    before = dropout.get_state(rng)
    assert dropout.draw(rng, 0.0, (3, 4), np.float32, training=True) is None
    assert dropout.draw(rng, 0.5, (3, 4), np.float32, training=False) is None
    assert dropout.get_state(rng) == before
    assert not dropout.mask(rng, 1.0, (3, 4), np.float64).any()


def test_recurrent_mask_is_the_same_at_every_step():
    """A layer whose W_hh is the identity and W_ih zero: with recurrent dropout, a unit dropped
    for a sequence receives nothing through the recurrent product at any step."""
    layer = bptt.RNN(1, 6, bias=False, dtype=np.float64, seed=0, recurrent_dropout=0.5,
                     nonlinearity="relu")
    layer.params["weight_ih_l0"][...] = 0
    layer.params["weight_hh_l0"][...] = np.eye(6)
    out, _ = layer.forward(np.zeros((5, 40, 1)), np.ones((1, 40, 6)))
    first = out[0]
    assert set(np.unique(first)) == {0.0, 2.0}  # h0 = 1 masked: 0 or 1 / (1 - 0.5)
    for t in range(1, 5):  # kept units double at each step, dropped ones stay 0
        assert np.array_equal(out[t], first * 2.0 ** t)


# ------------------------------------------------------------------ finite differences, torch


@pytest.mark.parametrize("B", [2, 8], ids=["B2", "B8"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_backward_matches_finite_differences_with_masks_fixed(case, B):
    layer = with_dropout(case, p=0.4, q=0.3)
    x, state, dout, dstate = random_inputs(layer, T=3, B=B, rng=np.random.default_rng(2))
    rng_state = layer.get_rng_state()

    def loss():  # the same masks at every evaluation
        layer.set_rng_state(rng_state)
        return linear_loss(layer, x, state, dout, dstate)

    loss()
    dx, dstate0 = layer.backward(dout, pack(layer, dstate))
    analytic = {"x": dx, **{f"state{i}": g for i, g in enumerate(unpack(layer, dstate0))},
                **layer.grads}
    numeric = {"x": numerical_grad(loss, x)}
    numeric.update({f"state{i}": numerical_grad(loss, s) for i, s in enumerate(state)})
    numeric.update({name: numerical_grad(loss, p) for name, p in layer.params.items()})
    for name, g in numeric.items():
        assert rel_error(analytic[name], g) < 1e-6, name


def torch_reference(torch, layer, params, x, state, between, recurrent, kept=None):
    """The layer's forward in torch autograd, torch's cell equations written out with the masks
    applied by hand (W_hh (m ⊙ h) in every gate; the GRU's carry z * h keeps h). params: the
    layer's as tensors; x, state: time-major float64 tensors; masks in layer_masks' layout.
    kept: None, or a dict that gets every step's state, {(part, k, d, t): tensor} with part 0
    for h and 1 for an LSTM's c, each retaining its gradient."""
    L, D, H = layer.num_layers, layer.num_directions, layer.hidden_size
    T = x.shape[0]
    h_all, c_all = state[0], state[1] if layer.kind == "LSTM" else None
    inp, finals_h, finals_c = x, [], []
    for k in range(L):
        outs = []
        for d, sfx in enumerate(["", "_reverse"][:D]):
            j = k * D + d
            p = {n: params[f"{n}_l{k}{sfx}"]
                 for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            m = (torch.ones(H, x.shape[1], dtype=torch.float64) if recurrent[j] is None
                 else torch.from_numpy(recurrent[j])).T  # (B, H)
            h, c = h_all[j], None if c_all is None else c_all[j]
            seq = [None] * T
            for t in (range(T - 1, -1, -1) if d else range(T)):
                xt = inp[t]
                if layer.kind == "LSTM":
                    gates = xt @ p["weight_ih"].T + p["bias_ih"] + (m * h) @ p["weight_hh"].T \
                        + p["bias_hh"]
                    i, f, g, o = gates.chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                elif layer.kind == "GRU":
                    gi = xt @ p["weight_ih"].T + p["bias_ih"]
                    gh = (m * h) @ p["weight_hh"].T + p["bias_hh"]
                    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
                    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
                    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                    h = (1 - z) * n + z * h
                else:
                    a = xt @ p["weight_ih"].T + p["bias_ih"] + (m * h) @ p["weight_hh"].T \
                        + p["bias_hh"]
                    h = torch.tanh(a) if layer.nonlinearity == "tanh" else torch.relu(a)
                for part, s in enumerate([h] if c is None else [h, c]):
                    if kept is not None:
                        s.retain_grad()
                        kept[part, k, d, t] = s
                seq[t] = h
            outs.append(torch.stack(seq))
            finals_h.append(h)
            finals_c.append(c)
        y = torch.cat(outs, dim=2)  # (T, B, D*H)
        if k < L - 1 and between[k] is not None:
            y = y * torch.from_numpy(between[k]).permute(0, 2, 1)
        inp = y
    final = [torch.stack(finals_h)] + ([torch.stack(finals_c)] if c_all is not None else [])
    return inp, final


@pytest.mark.parametrize("case", [c for c in CASES if c[2] == 2], ids=case_id)
def test_equals_torch_autograd_with_the_same_masks(case):
    """Forward, final state and every gradient against torch autograd, float64: the masks the
    layer draws are drawn again from the generator state it started from."""
    torch = pytest.importorskip("torch")
    layer = with_dropout(case, p=0.5, q=0.4, I=4, H=5)
    T, B = 4, 3
    x, state, dout, dstate = random_inputs(layer, T=T, B=B, rng=np.random.default_rng(5))
    rng = dropout.generator(None)
    dropout.set_state(rng, layer.get_rng_state())
    between, recurrent = dropout.layer_masks(
        rng, 0.5, 0.4, (layer.num_layers, layer.num_directions, T, 5, B), np.float64, True)
    out, final = layer.forward(x, pack(layer, state))
    dx, dstate0 = layer.backward(dout, pack(layer, dstate))

    def tm(a):  # to time-major
        return a.transpose(1, 0, 2) if layer.batch_first else a
    params = {n: torch.from_numpy(p.copy()).requires_grad_() for n, p in layer.params.items()}
    xt = torch.from_numpy(tm(x).copy()).requires_grad_()
    st = [torch.from_numpy(s.copy()).requires_grad_() for s in state]
    y, fin = torch_reference(torch, layer, params, xt, st, between, recurrent)
    total = (y * torch.from_numpy(tm(dout).copy())).sum() + sum(
        (f * torch.from_numpy(d)).sum() for f, d in zip(fin, dstate, strict=True))
    total.backward()
    assert rel_error(out, tm(y.detach().numpy())) < 1e-12
    for mine, theirs in zip(unpack(layer, final), fin, strict=True):
        assert rel_error(mine, theirs.detach().numpy()) < 1e-12
    assert rel_error(dx, tm(xt.grad.numpy())) < 1e-12
    for mine, theirs in zip(unpack(layer, dstate0), st, strict=True):
        assert rel_error(mine, theirs.grad.numpy()) < 1e-12
    for name, p in params.items():
        assert rel_error(layer.grads[name], p.grad.numpy()) < 1e-12, name


@pytest.mark.parametrize("lengths", [None, [3, 4, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("case", [c for c in CASES if c[2] == 2], ids=case_id)
def test_state_grads_equal_torch_retain_grad_with_the_same_masks(case, lengths):
    """backward(keep_state_grads=True) with dropout between the layers and recurrent dropout:
    every step's dL/dh_t (and dL/dc_t) is the gradient torch autograd gives the state itself
    (retain_grad), with the same masks. With lengths, sequence b against the reference run on
    its own steps with its own columns of the masks (which it keeps, as tested above); zero at
    the padded steps."""
    torch = pytest.importorskip("torch")
    layer = with_dropout(case, p=0.5, q=0.4, I=4, H=5)
    T, B, H, L, D = 4, 3, 5, layer.num_layers, layer.num_directions
    x, state, dout, dstate = random_inputs(layer, T=T, B=B, rng=np.random.default_rng(6))
    rng = dropout.generator(None)
    dropout.set_state(rng, layer.get_rng_state())
    between, recurrent = dropout.layer_masks(rng, 0.5, 0.4, (L, D, T, H, B), np.float64, True)
    assert all(0 < np.count_nonzero(m) < m.size for m in between + recurrent)
    layer.forward(x, pack(layer, state), lengths=lengths)
    layer.backward(dout, pack(layer, dstate), keep_state_grads=True)
    ours = [a.transpose(0, 2, 1, 3) if layer.batch_first else a
            for a in unpack(layer, layer.state_grads)]  # (L, T, B, D*H) each

    def tm(a):  # to time-major
        return a.transpose(1, 0, 2) if layer.batch_first else a
    params = {n: torch.from_numpy(p.copy()) for n, p in layer.params.items()}
    X, dO = tm(x), tm(dout)
    for b, n in enumerate([T] * B if lengths is None else lengths):
        cols = slice(0, B) if lengths is None else slice(b, b + 1)
        kept = {}
        y, fin = torch_reference(
            torch, layer, params, torch.from_numpy(X[:n, cols].copy()),
            [torch.from_numpy(s[:, cols].copy()).requires_grad_() for s in state],
            [m[:n, :, cols] for m in between], [m[:, cols] for m in recurrent], kept)
        total = (y * torch.from_numpy(dO[:n, cols].copy())).sum() + sum(
            (f * torch.from_numpy(d[:, cols].copy())).sum() for f, d in zip(fin, dstate,
                                                                              strict=True))
        total.backward()
        for part, mine in enumerate(ours):
            for k in range(L):
                for d in range(D):
                    theirs = np.stack([kept[part, k, d, t].grad.numpy() for t in range(n)])
                    got = mine[k, :n, cols, d * H : (d + 1) * H]
                    assert rel_error(got, theirs) < 1e-12, (part, k, d)
            assert not mine[:, n:, cols].any()
        if lengths is None:
            break


# --------------------------------------------------------------- off is the plain engine, bitwise


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES[::2] + [("GRU", None, 2, False, False)], ids=case_id)
def test_eval_and_rate_zero_are_bitwise_the_engine_without_dropout(case, dtype):
    plain = make_layer(*case, I=3, H=4, dtype=dtype, seed=1)
    x, state, dout, dstate = random_inputs(plain, T=5, B=9, rng=np.random.default_rng(3))
    want_out, want_final = plain.forward(x, pack(plain, state))
    want = plain.backward(dout, pack(plain, dstate)), dict(plain.grads)
    for layer in (with_dropout(case, 0.5, 0.5, dtype, H=4).eval(),
                  with_dropout(case, 0.0, 0.0, dtype, H=4)):
        rng_state = layer.get_rng_state()
        out, final = layer.forward(x, pack(layer, state))
        got = layer.backward(dout, pack(layer, dstate)), layer.grads
        assert np.array_equal(out, want_out)
        for a, b in zip(unpack(layer, final), unpack(plain, want_final), strict=True):
            assert np.array_equal(a, b)
        assert np.array_equal(got[0][0], want[0][0])
        for a, b in zip(unpack(layer, got[0][1]), unpack(plain, want[0][1]), strict=True):
            assert np.array_equal(a, b)
        assert all(np.array_equal(got[1][n], want[1][n]) for n in want[1])
        assert layer.get_rng_state() == rng_state  # nothing drawn


def test_training_mode_drops_and_each_forward_draws_new_masks():
    layer = bptt.LSTM(3, 4, num_layers=2, dtype=np.float64, seed=0, dropout=0.5,
                      recurrent_dropout=0.5)
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    a, b = layer(x)[0], layer(x)[0]
    assert not np.array_equal(a, b)
    c = layer.eval()(x)[0]
    assert not np.array_equal(a, c) and np.array_equal(c, layer(x)[0])


# ------------------------------------------------------------------------- flags and state


def test_train_eval_and_training_as_torch():
    layer = bptt.GRU(2, 3, num_layers=2, dropout=0.2)
    assert layer.training is True
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    assert layer.train(False).training is False
    assert "dropout=0.2" in repr(layer) and "recurrent_dropout" not in repr(layer)


def test_rng_state_round_trips_through_json_and_repeats_the_masks():
    layer = bptt.RNN(2, 3, num_layers=2, dtype=np.float64, seed=4, dropout=0.3,
                     recurrent_dropout=0.3)
    x = np.random.default_rng(1).normal(size=(4, 3, 2))
    saved = json.loads(json.dumps(layer.get_rng_state()))
    first = layer(x)[0]
    layer(x)
    layer.set_rng_state(saved)
    assert np.array_equal(layer(x)[0], first)
    other = bptt.RNN(2, 3, num_layers=2, dtype=np.float64, seed=4, dropout=0.3,
                     recurrent_dropout=0.3)
    assert np.array_equal(other(x)[0], first)  # same seed, same masks
    before = layer.get_rng_state()
    for bad in ({"bit_generator": "MT19937"}, "state", {"bit_generator": "PCG64"}):
        with pytest.raises(ValueError, match="rng_state: expected a PCG64 state"):
            layer.set_rng_state(bad)
        assert layer.get_rng_state() == before


def test_dropout_stream_is_not_the_initialisation_stream():
    a = dropout.generator(0).random(5)
    b = np.random.default_rng(0).random(5)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"dropout": -0.1}, ValueError, r"dropout: expected a probability in \[0, 1\], got -0.1"),
    ({"dropout": 1.5}, ValueError, "dropout: expected"),
    ({"recurrent_dropout": float("nan")}, ValueError, "recurrent_dropout: expected"),
    ({"recurrent_dropout": "0.2"}, TypeError, "recurrent_dropout: expected a probability"),
    ({"dropout": True}, TypeError, "dropout: expected"),
])
def test_bad_rates_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        bptt.LSTM(2, 3, num_layers=2, **kwargs)


def test_dropout_on_one_layer_warns_as_torch():
    with pytest.warns(UserWarning, match="num_layers > 1"):
        bptt.LSTM(2, 3, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bptt.LSTM(2, 3, recurrent_dropout=0.2)
        bptt.LSTM(2, 3, num_layers=2, dropout=0.2)


# ------------------------------------------------------------------------------------ lengths


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_with_lengths_masks_follow_their_sequence(kind):
    """With lengths (the batch runs sorted by length, in segments), sequence b gets the masks it
    gets without lengths: its valid outputs equal those of the full batch from the same
    generator state; padded outputs are zero."""
    layer = getattr(bptt, kind)(3, 4, num_layers=3, dtype=np.float64, seed=2, dropout=0.5,
                                recurrent_dropout=0.5)
    x = np.random.default_rng(0).normal(size=(6, 4, 3))
    lengths = np.array([2, 6, 3, 6])
    start = layer.get_rng_state()
    full, _ = layer(x)
    layer.set_rng_state(start)
    packed, _ = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        assert rel_error(packed[:n, b], full[:n, b]) < 1e-12
        assert not packed[n:, b].any()


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_backward_with_lengths_matches_finite_differences_with_masks_fixed(kind):
    layer = getattr(bptt, kind)(2, 3, num_layers=2, bidirectional=True, dtype=np.float64,
                                seed=3, dropout=0.4, recurrent_dropout=0.4)
    check_all_gradients(layer, T=4, B=3, lengths=[2, 4, 1], seed=4)


def test_check_layer_fixes_the_masks():
    layer = bptt.GRU(2, 3, num_layers=2, dtype=np.float64, seed=0, dropout=0.5,
                     recurrent_dropout=0.5)
    x = np.random.default_rng(0).normal(size=(3, 2, 2))
    result = bptt.check_layer(layer, x)
    assert result.ok, str(result)
