"""Element-wise nonlinearities shared by the cells.

The logistic function is computed through tanh, ``σ(x) = ½ tanh(x/2) + ½``: an exact identity, one
transcendental call, and no ``exp`` that could overflow at large |x|. LSTM and GRU apply σ and tanh
to adjacent gate blocks in one pass with ``scaled_tanh``, using a per-gate scale (½ for a σ gate,
1 for a tanh gate); multiplying by ½ or 1 is exact in floating point. The engine folds the scale
into the weights (``prescaled=True``: the pre-activations arrive already multiplied by it), which
saves one pass per step.
"""

import numpy as np


def scaled_tanh(x: np.ndarray, scale, shift, out: np.ndarray, prescaled=False) -> np.ndarray:
    """out = scale * tanh(scale * x) + shift; with ``prescaled``, x already holds scale * x.

    With scale = shift = ½ this is σ(x); with scale = 1, shift = 0 it is tanh(x). ``scale`` and
    ``shift`` broadcast against ``x`` (per-gate columns (G, 1, 1) for x of shape (G, H, B)).
    """
    if not prescaled:
        x = np.multiply(x, scale, out=out)
    np.tanh(x, out=out)
    np.multiply(out, scale, out=out)
    np.add(out, shift, out=out)
    return out


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)), computed as ½ tanh(x/2) + ½ (no overflow)."""
    x = np.asarray(x)
    if out is None:
        out = np.empty(x.shape, dtype=np.result_type(x.dtype, np.float32))
    return scaled_tanh(x, 0.5, 0.5, out)


def sigmoid_grad(s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dσ/dx in terms of the output s = σ(x): s * (1 - s), into ``out`` if given."""
    out = np.subtract(1, s, out)
    return np.multiply(out, s, out)


def tanh_grad(t: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """d tanh/dx in terms of the output t = tanh(x): 1 - t², into ``out`` if given."""
    out = np.multiply(t, t, out)
    return np.subtract(1, out, out)
