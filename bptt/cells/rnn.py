"""Vanilla RNN cell (Elman), torch's equation.

    a  = W_ih x + b_ih + W_hh h + b_hh          pre-activation, (H, B)
    h' = tanh(a)   or   relu(a)

Backward: dL/da = dL/dh' * φ'(a), where φ'(a) is read off the output h':
tanh: 1 - h'²;  relu: 1 where h' > 0, else 0.

With recurrent dropout (layers' ``recurrent_dropout=q``; m (H, B) one mask per sequence and unit,
the same at every step, 0 or 1/(1-q)) the recurrent product reads the masked state:

    a  = W_ih x + b_ih + W_hh (m ⊙ h) + b_hh     dL/dh (through a) = m ⊙ (W_hh^T dL/da)
"""

import numpy as np

from .activations import tanh_grad

NONLINEARITIES = ("tanh", "relu")


def forward(a: np.ndarray, h: np.ndarray, nonlinearity: str = "tanh") -> np.ndarray:
    """One step. a: (H, B) pre-activation. Writes h' (H, B) into ``h`` and returns it."""
    if nonlinearity == "tanh":
        return np.tanh(a, out=h)
    return np.maximum(a, 0, out=h)


def backward_factor(
    h: np.ndarray, nonlinearity: str = "tanh", out: np.ndarray | None = None
) -> np.ndarray:
    """dh'/da from the outputs h' (any leading shape): the factor that turns dL/dh' into dL/da,
    into ``out`` if given.

    It does not depend on the incoming gradient, so the engine computes it for all steps at once.
    """
    if nonlinearity == "tanh":
        return tanh_grad(h, out)
    if out is None:
        return (h > 0).astype(h.dtype)
    return np.greater(h, 0, out=out, casting="unsafe")


def backward(dh: np.ndarray, factor: np.ndarray, da: np.ndarray) -> np.ndarray:
    """One step. dh: (H, B) total dL/dh'. factor: from backward_factor. Writes dL/da into ``da``."""
    return np.multiply(dh, factor, out=da)
