"""LSTM ``proj_size`` (torch's projection, h' = W_hr (o * tanh(c'))): parity with torch, central
differences, dropout on the projected state, state_dict and torch conversion, bad values."""

import copy

import numpy as np
import pytest
from engine_cases import check_all_gradients, grid_id, make_layer, pack, random_inputs
from fd import rel_error

import bptt
from bptt.nn import dropout

torch = pytest.importorskip("torch")
from test_torch_parity import TOLERANCE, compare_with_torch, torch_twin  # noqa: E402

# (kind, nonlinearity, num_layers, bidirectional, batch_first): stacked; bidirectional and
# batch-first; both stacked and bidirectional
CASES = [("LSTM", None, 2, False, False), ("LSTM", None, 1, True, True),
         ("LSTM", None, 2, True, False)]
# torch 2.13 notes on every call that its oneDNN kernels do not take projections
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


# ------------------------------------------------------------------ parity with torch


@DTYPES
@pytest.mark.parametrize("B", [3, 9], ids=["B3", "B9"])  # B >= 8 takes the joined weights
@pytest.mark.parametrize("case", CASES, ids=grid_id)
def test_projected_lstm_matches_torch(case, B, dtype):
    """out, final (h, c), dx, dh0, dc0 and every weight's gradient (weight_hr's included), from
    non-zero initial states and a loss that reads the final state too."""
    worst, errors = compare_with_torch(case, dtype, T=5, B=B, I=4, H=6, proj_size=3)
    assert "weight_hr_l0" in errors and "dstate0_1" in errors
    assert worst < TOLERANCE[dtype], errors


@DTYPES
def test_projected_lstm_without_bias_matches_torch(dtype):
    for B in (3, 9):
        worst, errors = compare_with_torch(CASES[2], dtype, T=4, B=B, I=4, H=5, bias=False,
                                           proj_size=2)
        assert worst < TOLERANCE[dtype], errors


@DTYPES
@pytest.mark.parametrize("B, lengths", [(5, [3, 5, 1, 3, 4]),
                                        (11, [4, 1, 3, 4, 2, 4, 4, 3, 4, 4, 2])],
                         ids=["small-segments", "segments-of-8"])
@pytest.mark.parametrize("case", CASES, ids=grid_id)
def test_projected_lstm_with_lengths_matches_torch_packed(case, B, lengths, dtype):
    """lengths= (the packed path, segment by segment) against torch's pack_padded_sequence."""
    worst, errors = compare_with_torch(case, dtype, T=5, B=B, I=4, H=6, proj_size=3,
                                       lengths=np.array(lengths))
    assert worst < TOLERANCE[dtype], errors


@DTYPES
@pytest.mark.parametrize("batch_first", [False, True])
def test_projected_lstm_unbatched_matches_torch(batch_first, dtype):
    """A 2-D x (T, I): out (T, D*P), state h (L*D, P) and c (L*D, H), as torch's."""
    layer = bptt.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=batch_first,
                      proj_size=2, dtype=dtype, seed=4)
    module = torch_twin(layer, dtype)
    rng = np.random.default_rng(5)
    x, dout = rng.normal(size=(6, 3)).astype(dtype), rng.normal(size=(6, 4)).astype(dtype)
    h0, c0 = rng.normal(size=(4, 2)).astype(dtype), rng.normal(size=(4, 5)).astype(dtype)
    dh, dc = rng.normal(size=(4, 2)).astype(dtype), rng.normal(size=(4, 5)).astype(dtype)
    out, (h, c) = layer(x, (h0, c0))
    dx, (dh0, dc0) = layer.backward(dout, (dh, dc))
    assert out.shape == (6, 4) and h.shape == (4, 2) and c.shape == (4, 5)
    assert dx.shape == x.shape and dh0.shape == h0.shape and dc0.shape == c0.shape

    xt, h0t, c0t = (torch.from_numpy(a).requires_grad_() for a in (x, h0, c0))
    out_t, (h_t, c_t) = module(xt, (h0t, c0t))
    loss = (out_t * torch.from_numpy(dout)).sum() + (h_t * torch.from_numpy(dh)).sum() \
        + (c_t * torch.from_numpy(dc)).sum()
    loss.backward()
    tol = TOLERANCE[dtype]
    for ours, theirs in [(out, out_t), (h, h_t), (c, c_t), (dx, xt.grad), (dh0, h0t.grad),
                         (dc0, c0t.grad)]:
        assert rel_error(ours, theirs.detach().numpy()) < tol
    for name, p in module.named_parameters():
        assert rel_error(layer.grads[name], p.grad.numpy()) < tol, name


# ------------------------------------------------------------------ central differences


def check_against_finite_differences(layer, T, B, lengths=None, seed=2):
    """``check_all_gradients`` on a projected LSTM, whose gradients include weight_hr."""
    numeric = check_all_gradients(layer, T, B, lengths, seed)
    assert any("weight_hr" in name for name in numeric)


@pytest.mark.parametrize("B", [2, 8], ids=["B2", "B8"])
@pytest.mark.parametrize("case", CASES, ids=grid_id)
def test_projected_lstm_backward_matches_finite_differences(case, B):
    layer = make_layer(*case, I=3, H=4, dtype=np.float64, seed=1, proj_size=2)
    check_against_finite_differences(layer, T=4 if B < 8 else 3, B=B)


@pytest.mark.parametrize("case", CASES, ids=grid_id)
def test_projected_lstm_lengths_backward_matches_finite_differences(case):
    layer = make_layer(*case, I=3, H=4, dtype=np.float64, seed=1, proj_size=2)
    check_against_finite_differences(layer, T=4, B=4, lengths=np.array([2, 4, 1, 2]))


@pytest.mark.parametrize("lengths", [None, [3, 1, 2]], ids=["steps", "lengths"])
def test_projected_lstm_with_both_dropouts_matches_finite_differences(lengths):
    """Training mode: the outputs' mask between layers (D*P features) and the recurrent mask
    on the projected h (P features), both fixed, through the projection."""
    layer = bptt.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, dtype=np.float64,
                      seed=3, dropout=0.5, recurrent_dropout=0.4)
    lengths = None if lengths is None else np.array(lengths)
    check_against_finite_differences(layer, T=3, B=3, lengths=lengths)


# ------------------------------------------------------------------ dropout's masks, state grads


def torch_projected_lstm(layer, x, h0, c0, between, recurrent):
    """The layer's equations written out step by step in torch (autograd), every layer and
    direction: a = W_ih x + b_ih + W_hh (m ⊙ h) + b_hh, c' = f c + i g, h' = W_hr (o tanh c'),
    the next layer reading the outputs times dropout's mask. x: (T, B, I); h0 (L*D, B, P), c0
    (L*D, B, H); between, recurrent: the masks ``dropout.layer_masks`` gives ((T, D*P, B) and
    (P, B), or None). Returns out (T, B, D*P), the final (h, c), the leaf tensors (params, x, h0,
    c0) and per layer the per-step h and c tensors (retain_grad), [k][d][t]."""
    p = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in layer.params.items()}
    xt, h0t, c0t = (torch.from_numpy(a).requires_grad_() for a in (x, h0, c0))
    T, L, D = x.shape[0], layer.num_layers, layer.num_directions
    inp, finals, steps = xt, ([], []), []
    for k in range(L):
        outs, steps_k = [], []
        for d, sfx in enumerate(["", "_reverse"][:D]):
            w = {n: p[f"{n}_l{k}{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                                   "weight_hr")}
            m = recurrent[k * D + d]
            m = None if m is None else torch.from_numpy(m.T.copy())  # (B, P)
            h, c, hc = h0t[k * D + d], c0t[k * D + d], [[None] * T, [None] * T]
            for t in range(T - 1, -1, -1) if d else range(T):
                h_in = h if m is None else h * m
                a = inp[t] @ w["weight_ih"].T + w["bias_ih"] + h_in @ w["weight_hh"].T \
                    + w["bias_hh"]
                i, f, g, o = a.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = (torch.sigmoid(o) * torch.tanh(c)) @ w["weight_hr"].T
                for part, v in enumerate((h, c)):
                    v.retain_grad()
                    hc[part][t] = v
            finals[0].append(h)
            finals[1].append(c)
            outs.append(torch.stack(hc[0]))
            steps_k.append(hc)
        steps.append(steps_k)
        inp = torch.cat(outs, dim=2)  # (T, B, D*P)
        if k < L - 1 and between[k] is not None:
            inp = inp * torch.from_numpy(between[k].transpose(0, 2, 1).copy())
    return inp, tuple(torch.stack(f) for f in finals), (p, xt, h0t, c0t), steps


@pytest.mark.parametrize("B", [3, 8], ids=["B3", "B8"])
@pytest.mark.parametrize("rates", [(0.5, 0.5), (0.0, 0.0)], ids=["dropouts", "none"])
def test_projected_lstm_and_its_dropouts_match_the_equations_written_out_in_torch(rates, B):
    """Two bidirectional layers, training mode: recurrent dropout's mask is (P, B), on the
    projected h where it enters W_hh (the state carried on and the outputs are h itself), and
    dropout's is on the outputs (D*P) the next layer reads. Against the equations written out
    in torch with the masks the layer drew: out, final state, dx, dh0, dc0, every weight's
    gradient, and the per-step dL/dh_t, dL/dc_t of every layer (keep_state_grads) against
    torch's retain_grad."""
    T, I, H, P, L, D = 4, 3, 5, 2, 2, 2
    layer = bptt.LSTM(I, H, num_layers=L, bidirectional=True, proj_size=P, dtype=np.float64,
                      seed=8, dropout=rates[0], recurrent_dropout=rates[1])
    rng = np.random.default_rng(9)
    x, dout = rng.normal(size=(T, B, I)), rng.normal(size=(T, B, D * P))
    h0, c0 = rng.normal(size=(L * D, B, P)), rng.normal(size=(L * D, B, H))
    dh, dc = rng.normal(size=(L * D, B, P)), rng.normal(size=(L * D, B, H))
    gen = dropout.generator(None)
    dropout.set_state(gen, layer.get_rng_state())
    between, recurrent = dropout.layer_masks(gen, *rates, (L, D, T, P, B), np.float64, True)
    if rates[0]:
        assert all(0 < np.count_nonzero(m) < m.size for m in between + recurrent)
    out, (h, c) = layer(x, (h0, c0))
    dx, (dh0, dc0) = layer.backward(dout, (dh, dc), keep_state_grads=True)

    out_t, (h_t, c_t), (p, xt, h0t, c0t), steps = torch_projected_lstm(
        layer, x, h0, c0, between, recurrent)
    loss = (out_t * torch.from_numpy(dout)).sum() + (h_t * torch.from_numpy(dh)).sum() \
        + (c_t * torch.from_numpy(dc)).sum()
    loss.backward()
    pairs = [(out, out_t), (h, h_t), (c, c_t), (dx, xt.grad), (dh0, h0t.grad), (dc0, c0t.grad)]
    pairs += [(layer.grads[name], t.grad) for name, t in p.items()]
    for part in range(2):  # (L, T, B, D*P) and (L, T, B, D*H)
        theirs = torch.stack([torch.cat([torch.stack([v.grad for v in steps[k][d][part]])
                                         for d in range(D)], dim=2) for k in range(L)])
        pairs.append((layer.state_grads[part], theirs))
    for i, (ours, theirs) in enumerate(pairs):
        assert ours.shape == tuple(theirs.shape), i
        assert rel_error(ours, theirs.detach().numpy()) < 1e-9, i


def test_state_grads_with_lengths_are_each_sequence_on_its_own():
    """lengths= with keep_state_grads: each sequence's per-step dL/dh (P) and dL/dc (H) equal
    those of the sequence run alone; zero at the padded steps."""
    layer = bptt.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, proj_size=2,
                      dtype=np.float64, seed=2)
    rng = np.random.default_rng(5)
    x, state, dout, dstate = random_inputs(layer, 5, 9, rng)
    lengths = np.array([4, 5, 2, 1, 5, 3, 2, 4, 1])
    layer.forward(x, pack(layer, state), lengths=lengths)
    layer.backward(dout, pack(layer, dstate), keep_state_grads=True)
    batch = layer.state_grads
    for b, n in enumerate(lengths):
        cut = [s[:, b : b + 1] for s in state], [s[:, b : b + 1] for s in dstate]
        layer.forward(x[b : b + 1, :n], pack(layer, cut[0]))
        layer.backward(dout[b : b + 1, :n], pack(layer, cut[1]), keep_state_grads=True)
        for whole, alone in zip(batch, layer.state_grads, strict=True):
            np.testing.assert_allclose(whole[:, b : b + 1, :n], alone, rtol=1e-12, atol=1e-14)
            assert not whole[:, b, n:].any()


def test_state_grads_of_a_projected_lstm_have_p_and_h_features():
    layer = bptt.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True, proj_size=2)
    out, _ = layer(np.ones((4, 6, 3), np.float32))
    assert out.shape == (4, 6, 4)
    layer.backward(np.ones_like(out), keep_state_grads=True)
    assert layer.state_grads[0].shape == (2, 4, 6, 4)   # (L, B, T, D*P)
    assert layer.state_grads[1].shape == (2, 4, 6, 10)  # (L, B, T, D*H)


# ------------------------------------------------------------------ parameters and conversion


def test_parameters_in_torchs_order_shapes_and_init_bounds():
    layer = bptt.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2, seed=0)
    module = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    assert list(layer.state_dict()) == list(module.state_dict())
    for name, v in module.state_dict().items():
        assert layer.params[name].shape == tuple(v.shape), name
        assert np.abs(layer.params[name]).max() <= 1 / np.sqrt(5)
    assert np.abs(layer.params["weight_hr_l1_reverse"]).max() > 0.5 / np.sqrt(5)
    assert "proj_size=2" in repr(layer)
    assert bptt.LSTM(3, 5, proj_size=0).state_dict().keys() == torch.nn.LSTM(3, 5).state_dict(
    ).keys()


def test_torch_conversion_both_ways_and_state_dict_round_trip():
    """A torch LSTM with projections loads into bptt and runs the same; bptt's state_dict loads
    back into torch (strict) with every array equal; a bptt state_dict round trip is exact."""
    torch.manual_seed(0)
    module = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    layer = bptt.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, seed=123)
    assert layer.load_state_dict({k: v.detach().numpy() for k, v in
                                  module.state_dict().items()}) == ([], [])
    x = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    ours, (h, c) = layer(x)
    theirs, (h_t, c_t) = module(torch.from_numpy(x))
    for a, b in [(ours, theirs), (h, h_t), (c, c_t)]:
        assert rel_error(a, b.detach().numpy()) < 1e-5

    back = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()},
                         strict=True)
    for k, v in back.state_dict().items():
        assert np.array_equal(v.numpy(), layer.params[k]), k

    twin = bptt.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, seed=7)
    twin.load_state_dict(layer.state_dict())
    assert np.array_equal(twin(x)[0], ours)
    assert np.array_equal(copy.deepcopy(layer)(x)[0], ours)


def test_state_dict_of_another_projection_is_refused():
    plain = bptt.LSTM(4, 6).state_dict()
    layer = bptt.LSTM(4, 6, proj_size=3)
    before = layer.state_dict()
    with pytest.raises(ValueError, match=r"weight_hh_l0: expected shape \(24, 3\), got \(24, 6\)"):
        layer.load_state_dict(plain)
    without_hr = {k: v for k, v in before.items() if k != "weight_hr_l0"}
    with pytest.raises(ValueError, match="missing key 'weight_hr_l0'"):
        layer.load_state_dict(without_hr)
    assert layer.load_state_dict(without_hr, strict=False) == (["weight_hr_l0"], [])
    with pytest.raises(ValueError, match="unexpected key 'weight_hr_l0'"):
        bptt.LSTM(4, 6).load_state_dict(before)
    for k, v in layer.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_one_hot_ids_input_equals_its_float_input():
    """Integer ids (layer 0's input product a lookup) through a projected layer: the same
    outputs and weight gradients as the one-hot floats."""
    layer = bptt.LSTM(5, 4, num_layers=2, proj_size=3, dtype=np.float64, seed=2)
    ids = np.random.default_rng(1).integers(0, 5, size=(6, 3))
    out_ids, _ = layer(ids)
    layer.backward(np.ones_like(out_ids))
    grads_ids = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grad()
    out, _ = layer(np.eye(5)[ids])
    layer.backward(np.ones_like(out))
    assert rel_error(out_ids, out) < 1e-12
    for name, g in layer.grads.items():
        assert rel_error(grads_ids[name], g) < 1e-12, name


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("value, error", [(6, ValueError), (7, ValueError), (-1, ValueError),
                                          (1.5, TypeError), (True, TypeError), ("2", TypeError)])
def test_bad_proj_size_is_a_one_line_error_naming_it(value, error):
    with pytest.raises(error, match="^proj_size: ") as info:
        bptt.LSTM(4, 6, proj_size=value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["RNN", "GRU"])
def test_only_lstm_takes_a_projection(kind):
    with pytest.raises(ValueError, match=f"^proj_size: expected 0 for {kind}"):
        getattr(bptt, kind)(4, 6, proj_size=2)
    assert getattr(bptt, kind)(4, 6, proj_size=0).proj_size == 0


def test_initial_state_of_the_wrong_size_names_the_part_and_the_shape():
    layer = bptt.LSTM(4, 6, num_layers=2, proj_size=3)
    x = np.zeros((5, 2, 4), np.float32)
    h_bad, c = np.zeros((2, 2, 6), np.float32), np.zeros((2, 2, 6), np.float32)
    with pytest.raises(ValueError, match=r"state\[0\] \(h\): expected shape \(2, 2, 3\)"):
        layer(x, (h_bad, c))
    with pytest.raises(ValueError, match=r"state\[1\] \(c\): expected shape \(2, 2, 6\)"):
        layer(x, (np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 3), np.float32)))
    out, _ = layer(x)
    with pytest.raises(ValueError, match=r"dout: expected shape \(5, 2, 3\)"):
        layer.backward(np.zeros((5, 2, 6), np.float32))


def test_course_converter_and_gradcheck_on_a_projected_lstm():
    """The course's LSTM has no projection: its converter names weight_hr_l0; ``check_layer``
    checks a projected layer as any other."""
    layer = bptt.LSTM(3, 4, proj_size=2, dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="unexpected key 'weight_hr_l0'.*no projection"):
        bptt.convert.lstm_from_state_dict(layer.state_dict())
    x = np.random.default_rng(0).normal(size=(3, 2, 3))
    result = bptt.check_layer(layer, x, (np.ones((1, 2, 2)), np.ones((1, 2, 4))))
    assert result.ok and "weight_hr_l0" in result, result
