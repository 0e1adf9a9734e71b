"""Engine layers: every backward against central finite differences (float64); layer behaviour."""

import numpy as np
import pytest
from engine_cases import GRID, check_all_gradients, grid_id, make_layer, pack, random_inputs, unpack
from fd import numerical_grad, rel_error

import bptt

BIASLESS = [(kind, None, 2, True, False, False) for kind in ("RNN", "LSTM", "GRU")]


# B >= 8: RNN and LSTM steps take the joined weights, the GRU a batched input projection
@pytest.mark.parametrize("B", [2, 8], ids=["B2", "B8"])
@pytest.mark.parametrize(
    "case",
    [c + (True,) for c in GRID] + BIASLESS,
    ids=lambda c: grid_id(c[:5]) + ("" if c[5] else "-nobias"),
)
def test_backward_matches_finite_differences(case, B):
    layer = make_layer(*case[:5], I=3, H=3, dtype=np.float64, seed=1, bias=case[5])
    check_all_gradients(layer, T=4 if B < 8 else 3, B=B, seed=2)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_no_bias_layer_has_no_bias_parameters_and_correct_grads(kind):
    layer = getattr(bptt, kind)(3, 4, bias=False, dtype=np.float64, seed=0)
    assert all(name.startswith("weight") for name in layer.params)
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(3, 2, 3)), rng.normal(size=(3, 2, 4))

    def loss():
        return float(np.sum(layer.forward(x)[0] * dout))

    loss()
    layer.backward(dout)
    for name, p in layer.params.items():
        assert rel_error(layer.grads[name], numerical_grad(loss, p)) < 1e-6, name


def test_same_seed_same_weights_and_torch_bounds():
    a, b = bptt.LSTM(5, 16, seed=3), bptt.LSTM(5, 16, seed=3)
    c = bptt.LSTM(5, 16, seed=4)
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name])
        assert np.abs(a.params[name]).max() <= 1 / 4
    assert not np.array_equal(a.params["weight_hh_l0"], c.params["weight_hh_l0"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_everything_stays_in_the_layer_dtype(kind, dtype):
    layer = getattr(bptt, kind)(3, 4, num_layers=2, bidirectional=True, dtype=dtype, seed=0)
    x = np.ones((5, 2, 3))  # float64 input is cast
    out, state = layer(x)
    dx, dstate = layer.backward(np.ones_like(out))
    arrays = [out, dx, *unpack(layer, state), *unpack(layer, dstate), *layer.grads.values()]
    assert all(a.dtype == dtype for a in arrays)


def test_outputs_given_to_the_caller_are_not_overwritten_by_later_calls():
    layer = bptt.LSTM(3, 4, seed=0)
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(6, 2, 3)), rng.normal(size=(6, 2, 3))
    out1, (h1, c1) = layer(x1)
    dx1, _ = layer.backward(np.ones_like(out1))
    g1 = {k: v.copy() for k, v in layer.grads.items()}
    kept = [out1.copy(), h1.copy(), c1.copy(), dx1.copy()]
    out2, _ = layer(x2)
    layer.backward(np.full_like(out2, 2.0))
    for before, now in zip(kept, [out1, h1, c1, dx1], strict=True):
        assert np.array_equal(before, now)
    assert not np.array_equal(out1, out2)
    assert any(not np.array_equal(g1[k], layer.grads[k]) for k in g1)


def test_batch_first_equals_time_major():
    a = bptt.GRU(3, 4, num_layers=2, bidirectional=True, seed=5, dtype=np.float64)
    b = bptt.GRU(3, 4, num_layers=2, bidirectional=True, seed=5, dtype=np.float64, batch_first=True)
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    out_a, h_a = a(x)
    out_b, h_b = b(x.transpose(1, 0, 2))
    np.testing.assert_allclose(out_b.transpose(1, 0, 2), out_a, rtol=1e-12)
    np.testing.assert_allclose(h_b, h_a, rtol=1e-12)


def test_zero_grad_and_state_dict_copies():
    layer = bptt.RNN(2, 3, seed=0)
    out, _ = layer(np.ones((2, 1, 2)))
    layer.backward(np.ones_like(out))
    assert any(np.any(g) for g in layer.grads.values())
    layer.zero_grad()
    assert all(not np.any(g) for g in layer.grads.values())
    sd = layer.state_dict()
    sd["weight_hh_l0"][...] = 7
    assert not np.any(layer.params["weight_hh_l0"] == 7)


def test_repr_names_the_kind_and_its_settings():
    assert repr(bptt.RNN(3, 4, nonlinearity="relu")) == (
        "RNN(3, 4, num_layers=1, bias=True, batch_first=False, bidirectional=False, "
        "dtype=float32, nonlinearity='relu')"
    )
    assert repr(bptt.GRU(3, 4, num_layers=2, dtype=np.float64)).startswith("GRU(3, 4, num_layers=2")


# ------------------------------------------------------------------ variable lengths


@pytest.mark.parametrize(
    "case", GRID + [c + (False,) for c in BIASLESS], ids=lambda c: grid_id(c[:5])
)
def test_lengths_backward_matches_finite_differences(case):
    """Every cell on the packed path (ties, a length of 1, unsorted), out and dout included at
    padded steps (they must not count), against central differences."""
    bias = case[5] if len(case) > 5 else True
    layer = make_layer(*case[:5], I=3, H=3, dtype=np.float64, seed=1, bias=bias)
    check_all_gradients(layer, T=4, B=4, lengths=np.array([2, 4, 1, 2]), seed=2)


@pytest.mark.parametrize("B", [3, 9])
@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_lengths_all_equal_to_T_is_bitwise_lengths_none(case, B):
    results = []
    for lengths in (None, np.full(B, 4)):
        layer = make_layer(*case, I=3, H=5, dtype=np.float32, seed=2)
        x, state, dout, dstate = random_inputs(layer, T=4, B=B, rng=np.random.default_rng(6))
        out, final = layer(x, pack(layer, state), lengths=lengths)
        dx, dstate0 = layer.backward(dout, pack(layer, dstate))
        results.append([out, *unpack(layer, final), dx, *unpack(layer, dstate0),
                        *layer.grads.values()])
    for a, b in zip(*results, strict=True):
        assert np.array_equal(a, b)


def test_lengths_outputs_and_dx_are_zero_at_padding_and_padding_is_ignored():
    layer = bptt.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, seed=0)
    rng = np.random.default_rng(0)
    lengths = np.array([5, 2, 3])
    x = rng.normal(size=(3, 5, 3)).astype(np.float32)
    dout = rng.normal(size=(3, 5, 8)).astype(np.float32)
    out, (h, c) = layer(x, lengths=lengths)
    dx, _ = layer.backward(dout)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    pad = np.arange(5)[None, :] >= lengths[:, None]  # (B, T)
    assert not np.any(out[pad]) and not np.any(dx[pad]) and np.all(out[~pad] != 0)
    x2, dout2 = x.copy(), dout.copy()
    x2[pad], dout2[pad] = 1e3, -7.0  # anything at the padded steps
    out2, (h2, c2) = layer(x2, lengths=lengths)
    layer.zero_grad()
    dx2, _ = layer.backward(dout2)
    assert np.array_equal(out, out2) and np.array_equal(h, h2) and np.array_equal(c, c2)
    assert np.array_equal(dx, dx2)
    assert all(np.array_equal(grads[k], layer.grads[k]) for k in grads)


def test_lengths_final_state_is_the_state_at_each_sequences_last_step():
    """Each sequence alone, cut to its length, gives the same output and final state."""
    layer = bptt.GRU(3, 4, num_layers=2, bidirectional=True, seed=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    lengths = np.array([3, 6, 1, 6, 4])
    x = rng.normal(size=(6, 5, 3))
    out, h = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        out_b, h_b = layer(x[:n, b : b + 1])
        np.testing.assert_allclose(out[:n, b : b + 1], out_b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(h[:, b : b + 1], h_b, rtol=1e-12, atol=1e-15)


def test_lengths_calls_of_different_lengths_reuse_buffers_without_mixing():
    """One layer run on batches of other lengths (and without lengths) in between gives what a
    fresh layer gives: the scratch memory handed to the segments is reused, never shared."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 9, 3))
    dout = rng.normal(size=(6, 9, 8))
    batches = [[6, 2, 2, 5, 1, 6, 3, 4, 4], [1, 1, 1, 1, 1, 1, 1, 1, 2], None, [6] * 8 + [5]]
    used = bptt.LSTM(3, 4, num_layers=2, bidirectional=True, seed=0, dtype=np.float64)
    for lengths in batches + batches[::-1]:
        out, (h, c) = used(x, lengths=lengths)
        used.zero_grad()
        dx, (dh, dc) = used.backward(dout)
        fresh = bptt.LSTM(3, 4, num_layers=2, bidirectional=True, seed=0, dtype=np.float64)
        out2, (h2, c2) = fresh(x, lengths=lengths)
        dx2, (dh2, dc2) = fresh.backward(dout)
        for a, b in [(out, out2), (h, h2), (c, c2), (dx, dx2), (dh, dh2), (dc, dc2)]:
            assert np.array_equal(a, b)
        assert all(np.array_equal(used.grads[k], fresh.grads[k]) for k in used.grads)
