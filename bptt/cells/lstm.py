"""LSTM cell, torch's equations and gate order i, f, g, o.

    a = W_ih x + b_ih + W_hh h + b_hh              pre-activations, (B, 4, H): blocks i, f, g, o
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Backward, with dh = dL/dh' and dc = dL/dc' arriving from later steps (τ = tanh(c')):

    da_o = dh * τ * o(1 - o)
    dc  += dh * o * (1 - τ²)                       total gradient at c'
    da_i = dc * g * i(1 - i)
    da_f = dc * c * f(1 - f)
    da_g = dc * i * (1 - g²)
    dc_prev = dc * f

Every factor that multiplies dh or dc depends only on the forward values, so ``backward_factors``
computes them (for one step or for a whole sequence at once) and ``backward`` is five products.
"""

import numpy as np

from .activations import scaled_tanh, sigmoid_grad, tanh_grad

GATES = 4
# Per-gate columns for scaled_tanh: σ for i, f, o and tanh for g; one copy per dtype.
_COLUMNS = {
    np.dtype(dt): (np.array([[0.5], [0.5], [1.0], [0.5]], dt), np.array([[0.5], [0.5], [0.0], [0.5]], dt))
    for dt in (np.float32, np.float64)
}


def forward(a: np.ndarray, c_prev: np.ndarray, c: np.ndarray, tanh_c: np.ndarray,
            h: np.ndarray) -> np.ndarray:
    """One step.

    a: (B, 4, H) pre-activations, overwritten with the activations i, f, g, o.
    c_prev: (B, H). Writes c' into ``c``, tanh(c') into ``tanh_c`` and h' into ``h`` (all (B, H)).
    """
    scale, shift = _COLUMNS[a.dtype]
    scaled_tanh(a, scale, shift, out=a)
    np.multiply(a[:, 1], c_prev, out=c)        # f * c
    np.multiply(a[:, 0], a[:, 2], out=h)       # i * g   (h is scratch here)
    np.add(c, h, out=c)
    np.tanh(c, out=tanh_c)
    return np.multiply(a[:, 3], tanh_c, out=h)  # o * tanh(c')


def backward_factors(acts: np.ndarray, c_prev: np.ndarray, tanh_c: np.ndarray) -> np.ndarray:
    """Factors of the backward step, for any leading shape (one step (B,) or a sequence (T, B)).

    acts: (..., 4, H) activations i, f, g, o; c_prev: (..., H); tanh_c: (..., H) = tanh(c').
    Returns F (..., 5, H): [g i(1-i), c f(1-f), i (1-g²), τ o(1-o), o (1-τ²)].
    """
    i, f, g, o = (acts[..., k, :] for k in range(4))
    F = np.empty(acts.shape[:-2] + (5, acts.shape[-1]), dtype=acts.dtype)
    np.multiply(g, sigmoid_grad(i), out=F[..., 0, :])
    np.multiply(c_prev, sigmoid_grad(f), out=F[..., 1, :])
    np.multiply(i, tanh_grad(g), out=F[..., 2, :])
    np.multiply(tanh_c, sigmoid_grad(o), out=F[..., 3, :])
    np.multiply(o, tanh_grad(tanh_c), out=F[..., 4, :])
    return F


def backward(dh: np.ndarray, dc: np.ndarray, F: np.ndarray, f: np.ndarray,
             da: np.ndarray) -> np.ndarray:
    """One step.

    dh: (B, H) total dL/dh' (used as scratch: overwritten). dc: (B, H) dL/dc' from step t+1,
    updated in place to dL/dc (the previous cell state). F: (B, 5, H) from backward_factors.
    f: (B, H) forget gate. Writes dL/da (B, 4, H) into ``da`` and returns it.
    """
    np.multiply(dh, F[:, 3], out=da[:, 3])
    np.multiply(dh, F[:, 4], out=dh)
    np.add(dc, dh, out=dc)
    np.multiply(dc[:, None, :], F[:, :3], out=da[:, :3])
    np.multiply(dc, f, out=dc)
    return da
