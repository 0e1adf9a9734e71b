"""The grid of engine configurations the layer tests run over, and a driver for one case."""


import bptt

# (kind, nonlinearity) x (num_layers, bidirectional, batch_first)
KINDS = [("RNN", "tanh"), ("RNN", "relu"), ("LSTM", None), ("GRU", None)]
CONFIGS = [(1, False, False), (2, True, True), (3, False, False)]
GRID = [(k, nl, L, bi, bf) for k, nl in KINDS for L, bi, bf in CONFIGS]


def grid_id(case) -> str:
    kind, nl, L, bi, bf = case
    return f"{kind}{'-' + nl if nl else ''}-L{L}{'-bi' if bi else ''}{'-bf' if bf else ''}"


def make_layer(kind, nl, L, bi, bf, I, H, dtype, seed=0, bias=True):
    kw = {"nonlinearity": nl} if nl else {}
    return getattr(bptt, kind)(
        I, H, num_layers=L, bias=bias, bidirectional=bi, batch_first=bf, dtype=dtype, seed=seed,
        **kw,
    )


def random_inputs(layer, T, B, rng):
    """x, initial state, dout and dstate (non-zero), float64, in the layer's layout."""
    D = layer.num_directions
    x_shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    s_shape = (layer.num_layers * D, B, layer.hidden_size)
    o_shape = x_shape[:2] + (D * layer.hidden_size,)
    n = 2 if layer.kind == "LSTM" else 1
    x = rng.normal(size=x_shape)
    state = [rng.normal(size=s_shape) * 0.5 for _ in range(n)]
    dout = rng.normal(size=o_shape)
    dstate = [rng.normal(size=s_shape) for _ in range(n)]
    return x, state, dout, dstate


def pack(layer, parts):
    return tuple(parts) if layer.kind == "LSTM" else parts[0]


def unpack(layer, state):
    return list(state) if layer.kind == "LSTM" else [state]
