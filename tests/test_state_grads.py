"""``backward(..., keep_state_grads=True)``: dL/dh_t (and dL/dc_t) of every step and layer,
against central finite differences and against torch's retain_grad on a loop over steps."""

import numpy as np
import pytest
from engine_cases import GRID, grid_id, make_layer, pack, random_inputs, unpack
from fd import numerical_grad, rel_error

import bptt
from bptt.nn import dropout


def kept(layer):
    """The kept gradients as a list [dh] or [dh, dc], each (L, T, B, D*H) time-major."""
    parts = unpack(layer, layer.state_grads)
    return [a.transpose(0, 2, 1, 3) if layer.batch_first else a for a in parts]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("t", [0, 2, 4])
@pytest.mark.parametrize("q, B", [(0.0, 2), (0.5, 2), (0.5, 8)], ids=["plain", "rdrop-B2",
                                                                   "rdrop-B8"])
def test_state_grads_match_finite_differences(kind, t, q, B):
    """One layer: dL/d(state after step t) by perturbing the state the rest of the sequence
    starts from, and the output of step t, which is h_t itself (for an LSTM, a change of c_t
    also changes h_t = o_t tanh(c_t)). With recurrent dropout (rate q; B 8 takes the joined
    GEMM) every forward starts from the same generator state, so each piece draws the mask of
    the whole run (one (H, B) mask, whatever the steps): the rest of the sequence reads
    W_hh (m ⊙ h_t), and the gradient is the state's own, through the mask."""
    T, I, H = 5, 3, 4
    layer = getattr(bptt, kind)(I, H, dtype=np.float64, seed=5, recurrent_dropout=q)
    rng = np.random.default_rng(4)
    x, dout = rng.normal(size=(T, B, I)), rng.normal(size=(T, B, H))
    dfinal = [rng.normal(size=(1, B, H)) for _ in range(2 if kind == "LSTM" else 1)]
    masks = layer.get_rng_state()
    layer.forward(x)
    layer.backward(dout, pack(layer, dfinal), keep_state_grads=True)
    analytic = kept(layer)

    layer.set_rng_state(masks)
    head, state_t = layer.forward(x[: t + 1])
    parts = unpack(layer, state_t)
    deltas = [np.zeros_like(p) for p in parts]

    def loss():
        shifted = [p + d for p, d in zip(parts, deltas, strict=True)]
        if kind == "LSTM":  # h_t = o_t tanh(c_t) moves with c_t: o_t from the forward's values
            shifted[0] = shifted[0] + parts[0] / np.tanh(parts[1]) * (
                np.tanh(shifted[1]) - np.tanh(parts[1]))
        total = np.sum(head * dout[: t + 1]) + np.sum((shifted[0] - parts[0])[0] * dout[t])
        final = shifted
        if t + 1 < T:
            layer.set_rng_state(masks)
            rest, final = layer.forward(x[t + 1 :], pack(layer, shifted))
            total += np.sum(rest * dout[t + 1 :])
            final = unpack(layer, final)
        return float(total + sum(np.sum(f * d) for f, d in zip(final, dfinal, strict=True)))

    if q:  # the pieces ran with the whole run's mask, which drops some units
        layer.set_rng_state(masks)
        whole, _ = layer.forward(x)
        assert rel_error(whole[: t + 1], head) < 1e-12
        rng_masks = dropout.generator(None)
        dropout.set_state(rng_masks, masks)
        m = dropout.layer_masks(rng_masks, 0.0, q, (1, 1, T, H, B), np.float64, True)[1][0]
        assert 0 < np.count_nonzero(m) < m.size
    for i, delta in enumerate(deltas):
        numeric = numerical_grad(loss, delta)[0]
        assert rel_error(analytic[i][0, t], numeric) < 1e-7, (kind, i)


@pytest.mark.parametrize("case", GRID, ids=grid_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_state_grads_match_torch_retain_grad(case, dtype):
    torch = pytest.importorskip("torch")
    T, B, I, H = 5, 3, 4, 6
    layer = make_layer(*case, I=I, H=H, dtype=dtype, seed=7)
    rng = np.random.default_rng(8)
    x, state, dout, dstate = random_inputs(layer, T, B, rng)
    x, dout = x.astype(dtype), dout.astype(dtype)
    state, dstate = [s.astype(dtype) for s in state], [s.astype(dtype) for s in dstate]
    layer.forward(x, pack(layer, state))
    layer.backward(dout, pack(layer, dstate), keep_state_grads=True)
    ours = kept(layer)

    theirs = torch_state_grads(torch, layer, x, state, dout, dstate)
    tol = 1e-9 if dtype == np.float64 else 1e-4
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.dtype == dtype and a.shape == b.shape
        assert rel_error(a, b) < tol, i


def torch_state_grads(torch, layer, x, state, dout, dstate):
    """torch's gradients of the same loss w.r.t. every h_t (and c_t), from a loop over steps with
    torch's cells and ``retain_grad``; returned as [dh] or [dh, dc], (L, T, B, D*H)."""
    tt = torch.float64 if layer.dtype == np.float64 else torch.float32
    kind, L, D, H = layer.kind, layer.num_layers, layer.num_directions, layer.hidden_size
    X = torch.from_numpy(x.transpose(1, 0, 2) if layer.batch_first else x)
    n = 2 if kind == "LSTM" else 1
    s0 = [torch.from_numpy(s) for s in state]
    kept_t = [[[None] * D for _ in range(L)] for _ in range(n)]  # [part][k][d] -> list over t
    finals = [[None] * (L * D) for _ in range(n)]
    for k in range(L):
        outs = []
        for d, sfx in enumerate(["", "_reverse"][:D]):
            kw = {"nonlinearity": layer.nonlinearity} if kind == "RNN" else {}
            cell = getattr(torch.nn, kind + "Cell")(X.shape[2], H, bias=layer.bias, dtype=tt, **kw)
            cell.load_state_dict({f"{w}": torch.from_numpy(layer.params[f"{w}_l{k}{sfx}"])
                                  for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                                  if f"{w}_l{k}{sfx}" in layer.params})
            j = k * D + d
            s = [p[j] for p in s0]
            seq = [None] * X.shape[0]
            order = range(X.shape[0] - 1, -1, -1) if d else range(X.shape[0])
            for part in range(n):
                kept_t[part][k][d] = [None] * X.shape[0]
            for t in order:
                s = list(cell(X[t], tuple(s))) if n == 2 else [cell(X[t], s[0])]
                for part in range(n):
                    s[part].retain_grad()
                    kept_t[part][k][d][t] = s[part]
                seq[t] = s[0]
            for part in range(n):
                finals[part][j] = s[part]
            outs.append(torch.stack(seq))
        X = torch.cat(outs, dim=2)
    out = X.transpose(0, 1) if layer.batch_first else X
    loss = (out * torch.from_numpy(dout)).sum()
    for part in range(n):
        loss = loss + (torch.stack(finals[part]) * torch.from_numpy(dstate[part])).sum()
    loss.backward()
    result = []
    for part in range(n):
        per_layer = [torch.cat([torch.stack([h.grad for h in kept_t[part][k][d]])
                                for d in range(D)], dim=2) for k in range(L)]
        result.append(torch.stack(per_layer).numpy())
    return result


def test_state_grads_are_none_unless_asked():
    layer = bptt.LSTM(3, 4, num_layers=2, seed=0)
    out, _ = layer(np.ones((5, 2, 3), np.float32))
    layer.backward(np.ones_like(out), keep_state_grads=True)
    assert layer.state_grads[0].shape == (2, 5, 2, 4)
    out, _ = layer(np.ones((5, 2, 3), np.float32))
    layer.backward(np.ones_like(out))
    assert layer.state_grads is None


@pytest.mark.parametrize("case", [("RNN", "tanh", 2, True, True), ("LSTM", None, 2, True, False),
                                  ("GRU", None, 1, False, True)], ids=grid_id)
def test_state_grads_with_lengths_are_each_sequence_on_its_own(case):
    """A padded batch: each sequence's per-step gradients equal those of the sequence run alone
    (its own T); zero at the padded steps."""
    T, B = 6, 11   # segments run on widths rounded up to 8: some columns run past their end
    layer = make_layer(*case, I=3, H=4, dtype=np.float64, seed=2)
    rng = np.random.default_rng(5)
    x, state, dout, dstate = random_inputs(layer, T, B, rng)
    lengths = np.array([4, 6, 2, 1, 5, 6, 3, 2, 4, 1, 5])
    layer.forward(x, pack(layer, state), lengths=lengths)
    layer.backward(dout, pack(layer, dstate), keep_state_grads=True)
    batch = kept(layer)
    for b, n in enumerate(lengths):
        rows = (slice(b, b + 1), slice(n)) if layer.batch_first else (slice(n), slice(b, b + 1))
        layer.forward(x[rows], pack(layer, [s[:, b : b + 1] for s in state]))
        layer.backward(dout[rows], pack(layer, [s[:, b : b + 1] for s in dstate]),
                       keep_state_grads=True)
        for whole, alone in zip(batch, kept(layer), strict=True):
            np.testing.assert_allclose(whole[:, :n, b : b + 1], alone, rtol=1e-12, atol=1e-14)
            assert not whole[:, n:, b].any()
