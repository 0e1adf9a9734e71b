"""The engine as a PyTorch user meets it (issue 15): torch's gradient rule (accumulate, zero_grad
in place), no_grad, one recorded forward per backward, in-place changes detected, pickles without
scratch memory, unbatched input, dstate=(dh, None), the input-cast rule."""

import copy
import pickle

import numpy as np
import pytest
import torch
from fd import rel_error

import bptt

KINDS = ["RNN", "LSTM", "GRU"]


def layer_of(kind, **kw):
    return getattr(bptt, kind)(3, 4, dtype=np.float64, seed=0, **kw)


def data(seed=0, T=5, B=2, I=3, D=1, H=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, I)), rng.normal(size=(T, B, D * H))


def flat(result):
    """(dx, dstate0) as a list of arrays."""
    dx, d0 = result
    return [dx, *(d0 if isinstance(d0, tuple) else (d0,))]


def torch_of(layer):
    t = getattr(torch.nn, layer.kind)(layer.input_size, layer.hidden_size, layer.num_layers,
                                      bidirectional=layer.bidirectional, dtype=torch.float64)
    t.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.params.items()})
    return t


# ------------------------------------------------------------------ item 3: accumulate


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_grads_accumulate_into_the_same_arrays_as_torch(kind):
    """Two forward/backward pairs without zero_grad sum their gradients, as torch's .grad does,
    into the arrays a caller took before (identity kept); zero_grad clears them in place."""
    layer = layer_of(kind)
    kept = layer.grads          # a dict built once and reused (the stale-zeros case)
    arrays = dict(kept)
    (xa, da), (xb, db) = data(1), data(2)
    tl = torch_of(layer)
    for x, d in ((xa, da), (xb, db)):
        layer(x)
        layer.backward(d)
        out, _ = tl(torch.from_numpy(x))
        out.backward(torch.from_numpy(d))
    assert layer.grads is kept
    for name, p in tl.named_parameters():
        assert layer.grads[name] is arrays[name]
        assert rel_error(kept[name], p.grad.numpy()) < 1e-12, name
    layer.zero_grad()
    assert all(layer.grads[n] is arrays[n] and not arrays[n].any() for n in arrays)


def test_linear_and_embedding_grads_accumulate_as_torch():
    rng = np.random.default_rng(0)
    lin, emb = bptt.Linear(3, 2, dtype=np.float64, seed=0), bptt.Embedding(5, 3, np.float64, 1)
    tlin, temb = torch.nn.Linear(3, 2, dtype=torch.float64), torch.nn.Embedding(5, 3,
                                                                                 dtype=torch.float64)
    tlin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in lin.params.items()})
    temb.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in emb.params.items()})
    w_lin, w_emb = lin.grads["weight"], emb.grads["weight"]
    for _ in range(2):
        ids = rng.integers(0, 5, size=(4,))
        dy = rng.normal(size=(4, 2))
        lin(emb(ids))
        emb.backward(lin.backward(dy))
        tlin(temb(torch.from_numpy(ids))).backward(torch.from_numpy(dy))
    assert lin.grads["weight"] is w_lin and emb.grads["weight"] is w_emb
    assert rel_error(w_lin, tlin.weight.grad.numpy()) < 1e-12
    assert rel_error(lin.grads["bias"], tlin.bias.grad.numpy()) < 1e-12
    assert rel_error(w_emb, temb.weight.grad.numpy()) < 1e-12
    lin.zero_grad(), emb.zero_grad()
    assert lin.grads["weight"] is w_lin and not w_lin.any() and not w_emb.any()


# ------------------------------------------------------------------ item 2: one forward at a time


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lengths", [None, [5, 3]])
def test_no_grad_forward_leaves_the_pending_backward_untouched(kind, lengths):
    """An evaluation forward between a forward and its backward (the issue's corruption) run
    under no_grad changes nothing in that backward (same shapes, so the same scratch buffers
    would be overwritten; with lengths, the packed path's)."""
    (x, d), (xv, _) = data(3), data(4)
    ref = layer_of(kind, num_layers=2, bidirectional=True)
    ref(x, lengths=lengths)
    d = np.concatenate([d, d[..., ::-1]], axis=-1)
    want = ref.backward(d)
    layer = layer_of(kind, num_layers=2, bidirectional=True)
    out, _ = layer(x, lengths=lengths)
    with bptt.no_grad():
        assert not bptt.is_grad_enabled()
        val, _ = layer(xv, lengths=lengths)
        val2, _ = layer(xv[:, ::-1])
    assert bptt.is_grad_enabled() and not np.array_equal(val, out)
    got = layer.backward(d)
    for a, b in zip(flat(want), flat(got), strict=True):
        assert np.array_equal(a, b)
    assert all(np.array_equal(ref.grads[k], layer.grads[k]) for k in ref.grads)


def test_no_grad_forward_keeps_no_cache_and_is_a_decorator():
    layer = layer_of("LSTM")

    @bptt.no_grad()
    def infer(x):
        return layer(x)

    infer(data()[0])
    with pytest.raises(RuntimeError, match="none pending"):
        layer.backward(data()[1])
    lin = bptt.Linear(3, 2)
    with bptt.no_grad():
        lin(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="call forward first"):
        lin.backward(np.ones((2, 2)))


@pytest.mark.parametrize("kind", KINDS)
def test_second_recorded_forward_while_the_first_output_is_held_raises(kind):
    """``ya = layer(xa); yb = layer(xb); layer.backward(d)`` used to return the second forward's
    gradients silently; now that backward raises and names the fix."""
    layer = layer_of(kind)
    (xa, da), (xb, _) = data(5), data(6)
    ya, _ = layer(xa)
    yb, _ = layer(xb)
    with pytest.raises(RuntimeError, match="second recorded forward.*no_grad"):
        layer.backward(da)
    del ya, yb  # outputs nobody holds: a later forward replaces them, as torch frees a graph
    layer(xb)
    dx, _ = layer.backward(da)
    fresh = layer_of(kind)
    fresh(xb)
    assert np.array_equal(dx, fresh.backward(da)[0])


def test_linear_called_twice_is_differentiated_last_in_first_out():
    """Reuse inside one forward (issue 21): each call's backward, in reverse order, gets that
    call's own input; the gradients add up in ``.grad``."""
    lin = bptt.Linear(3, 2, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    xa, xb, da, db = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), \
        rng.normal(size=(4, 2)), rng.normal(size=(5, 2))
    ya = lin(xa)
    yb = lin(xb)
    lin.backward(db)
    lin.backward(da)
    assert rel_error(lin.weight.grad, db.T @ xb + da.T @ xa) < 1e-14
    with pytest.raises(RuntimeError, match="call forward first"):
        lin.backward(da)
    del ya, yb


def test_calls_whose_output_was_dropped_do_not_pile_up():
    """Forwards never differentiated (an evaluation outside no_grad) are dropped when the
    module is called again, once nothing references their output, as torch frees a graph."""
    lin, drop = bptt.Linear(3, 2), bptt.Dropout(0.5, seed=0)
    for _ in range(50):
        lin(np.ones((4, 3)))
        drop(np.ones((4, 3)))
    assert len(lin._calls) == 1 and len(drop._calls) == 1
    kept = [lin(np.ones((4, 3))) for _ in range(3)]
    assert len(lin._calls) == 3 and len(kept) == 3


# ------------------------------------------------------------------ item 4: captured state


def test_linear_input_changed_after_forward_gives_the_forwards_gradient():
    """``y = lin(x); x += 100; lin.backward(dy)`` used the changed x."""
    lin = bptt.Linear(3, 2, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    want = dy.T @ x
    lin(x)
    x += 100
    lin.backward(dy)
    assert rel_error(lin.grads["weight"], want) < 1e-14


@pytest.mark.parametrize("kind", KINDS)
def test_weight_changed_between_forward_and_backward_raises(kind):
    layer = layer_of(kind, num_layers=2)
    x, d = data(7)
    layer(x)
    layer.params["weight_hh_l1"][0, 0] += 1e-3
    with pytest.raises(RuntimeError, match="weight_hh_l1.*modified by an inplace operation"):
        layer.backward(d)
    lin = bptt.Linear(3, 2)
    lin(np.ones((2, 3)))
    lin.params["weight"] *= 2
    with pytest.raises(RuntimeError, match="'weight'.*inplace"):
        lin.backward(np.ones((2, 2)))


# ------------------------------------------------------------------ item 5: pickle, deepcopy


def test_pickle_of_a_trained_lstm_holds_parameters_and_grads_only():
    """The issue's 2-layer LSTM (0.82 MiB of float32 parameters) after one forward and backward
    at T=200, B=64 pickled to 169 MiB; now params + grads + a little."""
    layer = bptt.LSTM(32, 128, num_layers=2, seed=0)
    nbytes = sum(p.nbytes for p in layer.params.values())
    assert 0.8 * 2**20 < nbytes < 0.85 * 2**20
    rng = np.random.default_rng(0)
    out, _ = layer(rng.normal(size=(200, 64, 32)).astype(np.float32))
    layer.backward(np.ones_like(out))
    blob = pickle.dumps(layer)
    assert len(blob) < 2.2 * nbytes  # parameters and gradients
    back = pickle.loads(blob)
    for name in layer.params:
        assert np.array_equal(back.params[name], layer.params[name])
        assert np.array_equal(back.grads[name], layer.grads[name])
    x = rng.normal(size=(5, 2, 32)).astype(np.float32)
    out_a, _ = back(x)
    out_b, _ = layer(x)
    assert np.array_equal(out_a, out_b) and back.backward(np.ones_like(out_a)) is not None


def test_deepcopy_and_pickle_of_linear_and_embedding_drop_the_cache():
    lin = bptt.Linear(50, 3, seed=0)
    y = lin(np.ones((1000, 50)))
    assert len(pickle.dumps(lin)) < 2.5 * 4 * 153 + 2000
    twin = copy.deepcopy(lin)
    with pytest.raises(RuntimeError, match="call forward first"):
        twin.backward(np.ones_like(y))
    lin.backward(np.ones_like(y))  # the original's pending forward is still there
    emb = bptt.Embedding(10, 4, seed=0)
    emb(np.zeros(100000, dtype=np.int64))
    assert len(pickle.dumps(emb)) < 2000


def test_deepcopy_keeps_the_dropout_generator():
    layer = bptt.GRU(3, 4, num_layers=2, dropout=0.5, seed=3)
    twin = copy.deepcopy(layer)
    x = data()[0]
    assert np.array_equal(layer(x)[0], twin(x)[0])


# ------------------------------------------------------------------ item 6: inputs


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_as_torch(kind, batch_first):
    """x (T, I) -> out (T, D*H), state (L*D, H), with torch's numbers and gradients."""
    layer = getattr(bptt, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first,
                                dtype=np.float64, seed=0)
    tl = torch_of(layer)
    tl.batch_first = batch_first
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(5, 3)), rng.normal(size=(5, 8))
    h0 = rng.normal(size=(4, 4))
    state = (h0, rng.normal(size=(4, 4))) if kind == "LSTM" else h0
    dstate = (rng.normal(size=(4, 4)), rng.normal(size=(4, 4))) if kind == "LSTM" else \
        rng.normal(size=(4, 4))
    out, final = layer(x, state)
    dx, d0 = layer.backward(dout, dstate)
    tx = torch.tensor(x, requires_grad=True)
    ts = tuple(torch.tensor(s, requires_grad=True) for s in (state if kind == "LSTM" else (state,)))
    tout, tfin = tl(tx, ts if kind == "LSTM" else ts[0])
    tfin = tfin if kind == "LSTM" else (tfin,)
    loss = (tout * torch.from_numpy(dout)).sum() + sum(
        (f * torch.from_numpy(g)).sum()
        for f, g in zip(tfin, dstate if kind == "LSTM" else (dstate,), strict=True))
    loss.backward()
    assert out.shape == (5, 8) and dx.shape == (5, 3)
    assert rel_error(out, tout.detach().numpy()) < 1e-12
    assert rel_error(dx, tx.grad.numpy()) < 1e-9
    for a, b, t in zip(final if kind == "LSTM" else (final,), d0 if kind == "LSTM" else (d0,),
                       zip(tfin, ts, strict=True), strict=True):
        assert a.shape == b.shape == (4, 4)
        assert rel_error(a, t[0].detach().numpy()) < 1e-12
        assert rel_error(b, t[1].grad.numpy()) < 1e-9
    for name, p in tl.named_parameters():
        assert rel_error(layer.grads[name], p.grad.numpy()) < 1e-9, name


def test_unbatched_errors():
    layer = layer_of("GRU")
    with pytest.raises(ValueError, match="lengths: expected None for an unbatched"):
        layer(np.ones((5, 3)), lengths=[5])
    with pytest.raises(ValueError, match=r"state: expected 2 dimensions \(num_layers"):
        layer(np.ones((5, 3)), np.zeros((1, 1, 4)))
    with pytest.raises(ValueError, match=r"state: expected shape \(1, 4\), got \(2, 4\)"):
        layer(np.ones((5, 3)), np.zeros((2, 4)))
    layer(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"dout: expected shape \(5, 4\)"):
        layer.backward(np.ones((5, 1, 4)).reshape(5, 4)[:4])


def test_lstm_dstate_none_means_no_gradient_into_that_part():
    """``dstate=(dh, None)`` used to fail with "got dtype object"."""
    layer = layer_of("LSTM")
    x, d = data(8)
    dh = np.random.default_rng(0).normal(size=(1, 2, 4))
    layer(x)
    got = layer.backward(d, (dh, None))
    layer(x)
    want = layer.backward(d, (dh, np.zeros_like(dh)))
    assert np.array_equal(got[0], want[0])
    assert np.array_equal(got[1][0], want[1][0]) and np.array_equal(got[1][1], want[1][1])
    layer(x)
    layer.backward(d, (None, dh))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float16])
def test_inputs_of_other_real_dtypes_are_cast_by_the_same_kind_rule(dtype):
    """The documented rule: integers, booleans and float16 are cast to the layer's dtype (torch
    raises); the numbers are those of the cast array."""
    layer = bptt.LSTM(3, 4, seed=0)
    x = (np.arange(30).reshape(5, 2, 3) % 3).astype(dtype)
    with bptt.no_grad():
        got, _ = layer(x)
        want, _ = layer(x.astype(np.float32))
    assert got.dtype == np.float32 and np.array_equal(got, want)
    with pytest.raises(TypeError, match="x: expected a real array castable to float32"):
        layer(x.astype(np.complex64))


# ------------------------------------------------------------------ load_state_dict(strict=False)


def test_load_state_dict_strict_false_returns_missing_and_unexpected_keys_as_torch():
    """A parent model's state_dict loaded with its prefix stripped by the caller in one line."""
    tl = torch.nn.LSTM(3, 4, num_layers=2, dtype=torch.float64)
    parent = {f"rnn.{k}": v.numpy() for k, v in tl.state_dict().items()}
    parent["head.weight"] = np.zeros((2, 4))
    layer = bptt.LSTM(3, 4, num_layers=2, dtype=np.float64, seed=1)
    got = layer.load_state_dict({k.removeprefix("rnn."): v for k, v in parent.items()},
                                strict=False)
    assert got.missing_keys == [] and got.unexpected_keys == ["head.weight"]
    assert all(np.array_equal(layer.params[k], v.numpy()) for k, v in tl.state_dict().items())
    partial = {k: v for k, v in layer.state_dict().items() if not k.endswith("_l1")}
    other = bptt.LSTM(3, 4, num_layers=2, dtype=np.float64, seed=2)
    before = other.state_dict()
    missing, unexpected = other.load_state_dict(partial, strict=False)
    t_missing, t_unexpected = tl.load_state_dict(
        {k: torch.from_numpy(v) for k, v in partial.items()}, strict=False)
    assert missing == list(t_missing) and unexpected == list(t_unexpected) == []
    assert np.array_equal(other.params["weight_hh_l1"], before["weight_hh_l1"])
    assert np.array_equal(other.params["weight_hh_l0"], partial["weight_hh_l0"])
    assert layer.load_state_dict(layer.state_dict()) == ([], [])
    with pytest.raises(ValueError, match="unexpected key 'head.weight'"):
        layer.load_state_dict(layer.state_dict() | {"head.weight": np.zeros((2, 4))})
    bad = layer.state_dict() | {"weight_hh_l0": np.zeros((3, 3))}
    with pytest.raises(ValueError, match="weight_hh_l0: expected shape"):
        layer.load_state_dict(bad, strict=False)
    with pytest.raises(TypeError, match="strict: expected True or False"):
        layer.load_state_dict(layer.state_dict(), strict="no")
    lin = bptt.Linear(3, 2)
    assert lin.load_state_dict({"weight": np.ones((2, 3))}, strict=False).missing_keys == ["bias"]


@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_equals_a_batch_of_one_with_state_grads(batch_first):
    layer = bptt.LSTM(3, 4, num_layers=2, batch_first=batch_first, dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    x, dout = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    one = (lambda a: a[None]) if batch_first else (lambda a: a[:, None])
    out1, (h1, _) = layer(one(x))
    dx1, (dh1, _) = layer.backward(one(dout), keep_state_grads=True)
    kept1 = layer.state_grads
    out, (h, _) = layer(x)
    dx, (dh, _) = layer.backward(dout, keep_state_grads=True)
    assert np.array_equal(one(out), out1) and np.array_equal(h[:, None], h1)
    assert np.array_equal(one(dx), dx1) and np.array_equal(dh[:, None], dh1)
    for a, b in zip(layer.state_grads, kept1, strict=True):
        assert a.shape == (2, 6, 4)
        assert np.array_equal(a, b[:, 0] if batch_first else b[:, :, 0])
