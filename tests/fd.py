"""Central finite differences for the tests (float64)."""

import numpy as np


def numerical_grad(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d a by central differences, perturbing ``a`` in place (restored afterwards)."""
    g = np.zeros(a.shape, dtype=np.float64)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def rel_error(a, b) -> float:
    """max |a - b| / max(|b|, tiny): the error relative to the scale of the reference ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
