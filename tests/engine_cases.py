"""The grid of engine configurations the layer tests run over, and a driver for one case."""

import numpy as np
from fd import numerical_grad, rel_error

import bptt

# (kind, nonlinearity) x (num_layers, bidirectional, batch_first)
KINDS = [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", None), ("GRU", None)]
CONFIGS = [(1, False, False), (2, True, True), (3, False, False)]
GRID = [(k, nl, L, bi, bf) for k, nl in KINDS for L, bi, bf in CONFIGS]


def grid_id(case) -> str:
    kind, nl, L, bi, bf = case
    return f"{kind}{'-' + nl if nl else ''}-L{L}{'-bi' if bi else ''}{'-bf' if bf else ''}"


def make_layer(kind, nl, L, bi, bf, I, H, dtype, seed=0, bias=True, proj_size=0):
    kw = {"nonlinearity": nl} if nl else {}
    kw.update({"proj_size": proj_size} if proj_size else {})
    return getattr(bptt, kind)(
        I, H, num_layers=L, bias=bias, bidirectional=bi, batch_first=bf, dtype=dtype, seed=seed,
        **kw,
    )


def random_inputs(layer, T, B, rng):
    """x, initial state, dout and dstate (non-zero), float64, in the layer's layout (h and the
    outputs of ``layer.state_size`` features per direction: H, or an LSTM's proj_size)."""
    D, P = layer.num_directions, layer.state_size
    x_shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    sizes = (P, layer.hidden_size) if layer.kind == "LSTM" else (P,)
    s_shapes = [(layer.num_layers * D, B, n) for n in sizes]
    o_shape = x_shape[:2] + (D * P,)
    x = rng.normal(size=x_shape)
    state = [rng.normal(size=shape) * 0.5 for shape in s_shapes]
    dout = rng.normal(size=o_shape)
    dstate = [rng.normal(size=shape) for shape in s_shapes]
    return x, state, dout, dstate


def pack(layer, parts):
    return tuple(parts) if layer.kind == "LSTM" else parts[0]


def unpack(layer, state):
    return list(state) if layer.kind == "LSTM" else [state]


def check_all_gradients(layer, T, B, lengths=None, seed=2):
    """Every gradient of a float64 ``layer`` (x, each initial state, each parameter) against
    central differences, for random inputs of T steps and B sequences (``lengths`` as the
    layer's forward); with dropout in training mode every forward draws the same masks.
    Returns the numeric gradients, by name."""
    x, state, dout, dstate = random_inputs(layer, T, B, np.random.default_rng(seed))
    masks = layer.get_rng_state()

    def loss():
        layer.set_rng_state(masks)
        out, final = layer.forward(x, pack(layer, state), lengths=lengths)
        return float(np.sum(out * dout) + sum(
            np.sum(s * d) for s, d in zip(unpack(layer, final), dstate, strict=True)))

    loss()
    dx, dstate0 = layer.backward(dout, pack(layer, dstate))
    analytic = {"x": dx, **{f"state{i}": g for i, g in enumerate(unpack(layer, dstate0))},
                **layer.grads}
    numeric = {"x": numerical_grad(loss, x)}
    for i, s in enumerate(state):
        numeric[f"state{i}"] = numerical_grad(loss, s)
    for name, p in layer.params.items():
        numeric[name] = numerical_grad(loss, p)
    assert set(layer.grads) == set(layer.params)
    for name, g in numeric.items():
        assert analytic[name].shape == g.shape, name
        assert rel_error(analytic[name], g) < 1e-6, name
    return numeric
