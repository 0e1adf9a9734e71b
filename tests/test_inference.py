"""The forward-only path (``bptt.nn.inference``): inside ``no_grad()`` with no mask to draw, the
recurrent layers' outputs and final states equal the recorded forward's within the documented
bound (32 eps, absolute), for every cell, stacked, bidirectional, batch-first, projected,
one-hot ids, float32 and float64; its buffers are reused across calls of one shape; and which
forwards take it."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from engine_cases import GRID, grid_id, make_layer, random_inputs

import bptt

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
BOUND = 32  # eps, absolute, for unit-scale inputs and torch's initialisation (module docstring)


def parts(state):
    return state if isinstance(state, tuple) else (state,)


def both(layer, *args, **kw):
    """(recorded forward, forward-only) of the same call: outputs and final states."""
    recorded = layer(*args, **kw)
    with bptt.no_grad():
        fast = layer(*args, **kw)
    return recorded, fast


def largest_difference(a, b):
    (out_a, state_a), (out_b, state_b) = a, b
    assert out_a.shape == out_b.shape and out_a.dtype == out_b.dtype
    diffs = [np.abs(out_a - out_b).max()]
    for x, y in zip(parts(state_a), parts(state_b), strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype
        diffs.append(np.abs(x - y).max())
    return max(diffs)


def assert_close(a, b, dtype):
    assert largest_difference(a, b) <= BOUND * np.finfo(dtype).eps


def cast_state(layer, state, dtype):
    state = tuple(s.astype(dtype) for s in state)
    return state if layer.kind == "LSTM" else state[0]


# B 3 takes the small-batch projection, 9 the rows GEMM, 17 the batched matmul
@DTYPES
@pytest.mark.parametrize("B", [1, 3, 9, 17])
@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_forward_only_equals_recorded_forward(case, B, dtype):
    layer = make_layer(*case, I=5, H=6, dtype=dtype).eval()
    x, state, _, _ = random_inputs(layer, 7, B, np.random.default_rng(0))
    x, state = x.astype(dtype), cast_state(layer, state, dtype)
    recorded, fast = both(layer, x, state)
    assert largest_difference(recorded, fast) > 0 or B == 1  # it is another computation
    assert_close(recorded, fast, dtype)
    assert_close(*both(layer, x), dtype)  # from zeros


@DTYPES
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("B", [2, 20])
@pytest.mark.parametrize("L, bi, bf", [(2, False, False), (2, True, True)])
def test_projected_lstm(L, bi, bf, B, bias, dtype):
    layer = make_layer("LSTM", None, L, bi, bf, I=4, H=7, dtype=dtype, bias=bias,
                       proj_size=3).eval()
    x, state, _, _ = random_inputs(layer, 9, B, np.random.default_rng(1))
    assert_close(*both(layer, x.astype(dtype), cast_state(layer, state, dtype)), dtype)


@DTYPES
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("B", [1, 3, 20])
def test_one_hot_ids_and_no_bias(kind, B, dtype):
    for bf in (False, True):
        layer = make_layer(kind, None, 2, True, bf, I=11, H=5, dtype=dtype, bias=False).eval()
        ids = np.random.default_rng(2).integers(0, 11, (B, 6) if bf else (6, B))
        assert_close(*both(layer, ids), dtype)
        assert_close(*both(layer, np.eye(11)[ids]), dtype)  # the same, as floats


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_unbatched_input(kind):
    layer = make_layer(kind, None, 2, True, False, I=3, H=4, dtype=np.float64)
    x = np.random.default_rng(3).normal(size=(5, 3))
    (out_a, s_a), (out_b, s_b) = both(layer, x)
    assert out_a.shape == out_b.shape == (5, 8)
    assert_close((out_a, s_a), (out_b, s_b), np.float64)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_saturated_gates_give_their_limits_without_warnings(kind):
    """Pre-activations of ±1000: exp overflows to inf, and the gates take their exact limits."""
    layer = getattr(bptt, kind)(3, 4, seed=0).eval()
    for p in layer.params.values():
        p[...] = np.random.default_rng(4).choice([-300.0, 300.0], size=p.shape)
    x = np.random.default_rng(5).choice([-1.0, 1.0], size=(6, 2, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):  # the path silences the overflow itself
            recorded, fast = both(layer, x)
    assert np.isfinite(fast[0]).all()
    assert_close(recorded, fast, np.float32)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_buffers_reused_across_calls_of_one_shape_and_right_across_shapes(kind):
    layer = make_layer(kind, None, 2, True, False, I=3, H=4, dtype=np.float64).eval()
    rng = np.random.default_rng(6)
    xa, xb = rng.normal(size=(5, 2, 3)), rng.normal(size=(8, 3, 3))
    with bptt.no_grad():
        out_a, _ = layer(xa)
        kept = out_a.copy()
        buffers = {k: v for k, v in layer._work.items() if k[0][0] == "fwd"}
        assert buffers
        again, _ = layer(xa)
        assert all(layer._work[k] is v for k, v in buffers.items())  # nothing new
        assert np.array_equal(again, out_a)
        out_b, _ = layer(xb)  # another shape: other buffers
        third, _ = layer(xa)  # and back
    assert np.array_equal(out_a, kept)  # what a caller holds is never overwritten
    assert np.array_equal(third, kept)
    assert_close(both(layer, xb)[0], (out_b, layer(xb)[1]), np.float64)


def test_which_forwards_take_the_path():
    layer = bptt.LSTM(3, 4, num_layers=2, dropout=0.5, seed=0)
    x = np.random.default_rng(7).normal(size=(5, 2, 3))

    def took_it(call):
        layer._work.clear()
        call()
        return any(k[0][0] == "fwd" for k in layer._work)

    with bptt.no_grad():
        assert not took_it(lambda: layer(x))  # training mode with dropout: the masks' path
        layer.eval()
        assert took_it(lambda: layer(x))
        assert not took_it(lambda: layer(x, lengths=[5, 3]))  # lengths: the packed path
    assert not took_it(lambda: layer(x))  # recorded
    plain = bptt.GRU(3, 4, seed=0)  # training mode, no dropout: nothing to draw
    with bptt.no_grad():
        plain(x)
    assert any(k[0][0] == "fwd" for k in plain._work)


def test_a_pending_backward_is_untouched():
    layer = bptt.LSTM(3, 4, num_layers=2, bidirectional=True, seed=0)
    rng = np.random.default_rng(8)
    x, other, dout = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 3)), rng.normal(
        size=(5, 2, 8))
    twin = bptt.LSTM(3, 4, num_layers=2, bidirectional=True, seed=0)
    out, _ = layer(x)
    with bptt.no_grad():
        layer.eval()(other)
    layer.train()
    dx, _ = layer.backward(dout)
    twin(x)
    dx_twin, _ = twin.backward(dout)
    assert np.array_equal(dx, dx_twin)
    for name, g in layer.grads.items():
        assert np.array_equal(g, twin.grads[name]), name


def test_bench_inference_rows_are_well_formed(tmp_path):
    out = tmp_path / "inference.json"
    cmd = [sys.executable, "-m", "bptt", "bench", "--inference", "--cell", "lstm", "gru",
           "--hidden", "8", "--batch", "1", "2", "--seq-len", "3", "--repeat", "1",
           "--generate", "2", "--json", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    header, rule, *rows = run.stdout.strip().splitlines()
    assert header.split()[:6] == ["cell", "dtype", "mode", "B", "T", "H"] and set(rule) == {"-"}
    assert len(rows) == 2 * (2 + 1)  # cells x (batches + one generation row)
    has_torch = "torch 2" in run.stderr or "torch 1" in run.stderr
    for row in rows:
        f = row.split()
        assert f[0] in ("LSTM", "GRU") and f[1] == "float32" and f[2] in ("seq", "gen")
        assert f[6] == "|" and float(f[7]) > 0  # bptt ms (min-max)
        assert (f[9] != "-") == has_torch
    results = json.loads(out.read_text())
    assert [r["mode"] for r in results] == ["seq", "seq", "gen"] * 2
    for r in results:
        assert r["ms"]["bptt"] > 0 and r["layers"] == 2 and r["input_size"] == r["H"]
        if has_torch:
            assert r["ratio_torch"] == pytest.approx(r["ms"]["bptt"] / r["ms"]["torch"])


def test_bench_takes_several_seq_lens_only_with_inference():
    run = subprocess.run([sys.executable, "-m", "bptt", "bench", "--seq-len", "3", "4"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "--seq-len" in run.stderr
