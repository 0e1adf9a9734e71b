"""Every engine layer against torch: outputs, final state, dx, initial-state and weight grads."""

import numpy as np
import pytest
from engine_cases import GRID, grid_id, make_layer, pack, random_inputs, unpack
from fd import rel_error

torch = pytest.importorskip("torch")

TOLERANCE = {np.float64: 1e-9, np.float32: 1e-4}


def torch_twin(layer, dtype):
    """The torch module of the same kind and shape, loaded with the layer's weights (strict)."""
    kw = {"nonlinearity": layer.nonlinearity} if layer.kind == "RNN" else {}
    kw.update({"proj_size": layer.proj_size} if layer.proj_size else {})
    module = getattr(torch.nn, layer.kind)(
        layer.input_size,
        layer.hidden_size,
        num_layers=layer.num_layers,
        bias=layer.bias,
        batch_first=layer.batch_first,
        bidirectional=layer.bidirectional,
        dtype=torch.float64 if dtype == np.float64 else torch.float32,
        **kw,
    )
    module.load_state_dict(
        {k: torch.from_numpy(v) for k, v in layer.state_dict().items()}, strict=True
    )
    return module


def compare_with_torch(case, dtype, T=7, B=3, I=5, H=8, seed=0, bias=True, lengths=None,
                       proj_size=0):
    """Worst relative error over every compared quantity, and the per-quantity errors. With
    ``lengths``, torch runs pack_padded_sequence -> layer -> pad_packed_sequence."""
    layer = make_layer(*case, I=I, H=H, dtype=dtype, seed=seed, bias=bias, proj_size=proj_size)
    module = torch_twin(layer, dtype)
    rng = np.random.default_rng(seed + 1)
    x, state, dout, dstate = (
        np.asarray(a, dtype) if not isinstance(a, list) else [s.astype(dtype) for s in a]
        for a in random_inputs(layer, T, B, rng)
    )
    out, final = layer.forward(x, pack(layer, state), lengths=lengths)
    dx, dstate0 = layer.backward(dout, pack(layer, dstate))

    xt = torch.from_numpy(x).requires_grad_()
    st = [torch.from_numpy(s).requires_grad_() for s in state]
    if lengths is None:
        out_t, final_t = module(xt, pack(layer, st))
    else:
        rnn_utils = torch.nn.utils.rnn
        packed = rnn_utils.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=layer.batch_first, enforce_sorted=False
        )
        out_p, final_t = module(packed, pack(layer, st))
        out_t, _ = rnn_utils.pad_packed_sequence(
            out_p, batch_first=layer.batch_first, total_length=T
        )
    loss = (out_t * torch.from_numpy(dout)).sum()
    for s, d in zip(unpack(layer, final_t), dstate, strict=True):
        loss = loss + (s * torch.from_numpy(d)).sum()
    loss.backward()

    errors = {"out": rel_error(out, out_t.detach().numpy()), "dx": rel_error(dx, xt.grad.numpy())}
    pairs = zip(unpack(layer, final), unpack(layer, final_t), strict=True)
    for i, (ours, theirs) in enumerate(pairs):
        errors[f"final{i}"] = rel_error(ours, theirs.detach().numpy())
    for i, (ours, theirs) in enumerate(zip(unpack(layer, dstate0), st, strict=True)):
        errors[f"dstate0_{i}"] = rel_error(ours, theirs.grad.numpy())
    for name, p in module.named_parameters():
        errors[name] = rel_error(layer.grads[name], p.grad.numpy())
    return max(errors.values()), errors


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_layer_matches_torch(case, dtype):
    worst, errors = compare_with_torch(case, dtype)
    assert worst < TOLERANCE[dtype], errors


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_batch_of_eight_or_more_matches_torch(kind, dtype):
    """B >= 8 takes the batched-matmul input projection; the grid above uses B = 3."""
    worst, errors = compare_with_torch((kind, None, 2, True, False), dtype, T=4, B=9, I=6, H=5)
    assert worst < TOLERANCE[dtype], errors


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_small_batch_with_a_large_matrix_matches_torch(kind, dtype):
    """Below B = 8 a small joined [W_ih | b | W_hh] is one product per step (the grid's case);
    a larger one takes the input projections before the loop and W_hh h per step."""
    from bptt.nn import products

    I, H, G = 30, 56, {"RNN": 1, "LSTM": 4, "GRU": 2}[kind]   # the GRU joins its r, z rows
    assert G * H * (I + 1 + H) > products.JOIN_SMALL >= 4 * 8 * (5 + 1 + 8)
    worst, errors = compare_with_torch((kind, None, 2, True, False), dtype, T=4, B=3, I=I, H=H)
    assert worst < TOLERANCE[dtype], errors


@pytest.mark.parametrize("B", [3, 9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layer_without_bias_matches_torch(kind, dtype, B):
    """bias=False: the joined weights (B >= 8) carry a zero bias column, the projection none."""
    worst, errors = compare_with_torch((kind, None, 2, True, False), dtype, T=4, B=B, bias=False)
    assert worst < TOLERANCE[dtype], errors


# ties, a length of 1, unsorted; all equal to T; one sequence much longer than the rest
LENGTHS = {"ragged": [3, 7, 1, 3, 5], "full": [7, 7, 7, 7, 7], "one-long": [2, 7, 2, 2, 1]}


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_lengths_match_torch_packed_sequences(case, dtype, lengths):
    worst, errors = compare_with_torch(case, dtype, B=5, lengths=np.array(lengths))
    assert worst < TOLERANCE[dtype], errors


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_lengths_with_segments_of_eight_or_more_match_torch(kind, dtype):
    """Segments of 8 or more sequences take the joined weights (built once, shared), smaller
    ones the projection path; bias=False too."""
    lengths = np.array([4, 1, 3, 4, 2, 4, 4, 3, 4, 4, 4, 4, 2])
    for bias in (True, False):
        worst, errors = compare_with_torch(
            (kind, None, 2, True, False), dtype, T=4, B=13, I=6, H=5, bias=bias, lengths=lengths
        )
        assert worst < TOLERANCE[dtype], errors


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_state_dict_round_trips_with_torch(kind):
    import bptt

    module = getattr(torch.nn, kind)(4, 6, num_layers=2, bidirectional=True)
    layer = getattr(bptt, kind)(4, 6, num_layers=2, bidirectional=True, seed=123)
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    ours = layer(x)[0]
    theirs = module(torch.from_numpy(x))[0].detach().numpy()
    assert rel_error(ours, theirs) < 1e-5

    back = getattr(torch.nn, kind)(4, 6, num_layers=2, bidirectional=True)
    back.load_state_dict(
        {k: torch.from_numpy(v) for k, v in layer.state_dict().items()}, strict=True
    )
    for k, v in back.state_dict().items():
        assert np.array_equal(v.numpy(), layer.params[k])
    assert list(layer.state_dict()) == list(module.state_dict())


if __name__ == "__main__":
    # Worst relative error against torch per cell kind and dtype over the test grid:
    #   python tests/test_torch_parity.py
    from engine_cases import KINDS

    # and with lengths (torch's packed path), over the grid and the lengths of the tests:
    #   python tests/test_torch_parity.py
    print("cell       dtype    padded   lengths")
    for kind, nl in KINDS:
        for dtype in (np.float64, np.float32):
            cases = [c for c in GRID if c[:2] == (kind, nl)]
            worst = max(compare_with_torch(c, dtype)[0] for c in cases)
            packed = max(
                compare_with_torch(c, dtype, B=5, lengths=np.array(lengths))[0]
                for c in cases
                for lengths in LENGTHS.values()
            )
            name = kind + ("-" + nl if nl else "")
            print(f"{name:10s} {np.dtype(dtype).name:8s} {worst:.2e} {packed:.2e}")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_lengths_without_initial_state_match_torch(kind):
    """state=None (zeros) on the packed path, torch given no initial state either."""
    import bptt

    layer = getattr(bptt, kind)(4, 6, num_layers=2, bidirectional=True, dtype=np.float64, seed=3)
    module = torch_twin(layer, np.float64)
    rng = np.random.default_rng(4)
    lengths = np.array([2, 5, 5, 1, 3, 4, 5, 2, 1])
    x, dout = rng.normal(size=(5, 9, 4)), rng.normal(size=(5, 9, 12))
    out, _ = layer(x, lengths=lengths)
    dx, _ = layer.backward(dout)
    xt = torch.from_numpy(x).requires_grad_()
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths),
                                                     enforce_sorted=False)
    out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(module(packed)[0], total_length=5)
    (out_t * torch.from_numpy(dout)).sum().backward()
    assert rel_error(out, out_t.detach().numpy()) < 1e-9
    assert rel_error(dx, xt.grad.numpy()) < 1e-9
    for name, p in module.named_parameters():
        assert rel_error(layer.grads[name], p.grad.numpy()) < 1e-9, name
