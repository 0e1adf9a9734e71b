"""Softmax cross-entropy over logits, forward and backward (mean over the tokens, in nats).

Legend: N tokens, V classes (the vocabulary).

    p = softmax(z)                         computed as exp(z - max z) / sum, so no overflow
    L = -(1/N) sum_n log p[n, y_n]         log p = (z - max z) - log sum exp(z - max z)
    dL/dz = (p - onehot(y)) / N
"""

import numpy as np

from .._checks import as_array


def cross_entropy(logits, targets) -> tuple[float, tuple]:
    """Mean softmax cross-entropy.

    Parameters
    ----------
    logits : (N, V) float array
    targets : (N,) int array, each in [0, V)

    Returns
    -------
    loss : float, mean over the N tokens of -log p[n, y_n]
    cache : what ``cross_entropy_backward`` needs (the probabilities and the targets)
    """
    z = np.asarray(logits)
    if z.dtype.kind != "f":
        raise TypeError(f"logits: expected a float array, got dtype {z.dtype}")
    z = as_array("logits", z, z.dtype, ndim=2, what="(N, V)", finite=False)
    y = np.asarray(targets)
    if y.dtype.kind not in "iu":
        raise TypeError(f"targets: expected an integer array, got dtype {y.dtype}")
    N, V = z.shape
    if y.shape != (N,):
        raise ValueError(f"targets: expected shape ({N},), got {y.shape}")
    if N == 0:
        raise ValueError("logits: expected at least one token, got shape (0, V)")
    if y.min() < 0 or y.max() >= V:
        raise ValueError(f"targets: expected values in [0, {V}), got min {y.min()}, max {y.max()}")
    shifted = z - z.max(axis=1, keepdims=True)                             # (N, V), max 0
    p = np.exp(shifted)                                                     # (N, V)
    total = p.sum(axis=1)                                                   # (N,)
    p /= total[:, None]
    rows = np.arange(N)
    logp = shifted[rows, y] - np.log(total)                                 # (N,)
    loss = -float(np.mean(logp, dtype=np.float64))
    return loss, (p, y)


def cross_entropy_backward(dloss: float, cache: tuple) -> np.ndarray:
    """dlogits (N, V) = dloss * (p - onehot(y)) / N, for the forward that made ``cache``."""
    p, y = cache
    N = p.shape[0]
    dz = p * (dloss / N)                                                    # (N, V), a new array
    dz[np.arange(N), y] -= dloss / N
    return dz
