"""The grid of engine configurations the layer tests run over, and a driver for one case."""


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
