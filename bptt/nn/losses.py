"""Softmax cross-entropy over logits, forward and backward (mean over the tokens, in nats).

Legend: N tokens, V classes (the vocabulary), K the tokens that count (targets not equal to
``ignore_index``, torch's meaning: padding positions of a variable-length batch).

    p = softmax(z)                         computed as exp(z - max z) / sum, so no overflow
    L = -(1/K) sum_{n counted} log p[n, y_n]    log p = (z - max z) - log sum exp(z - max z)
    dL/dz = (p - onehot(y)) / K on counted rows, 0 on ignored rows

Inside ``bptt.no_grad()`` no backward will come, so ``cross_entropy`` computes only the loss,
log-sum-exp and the target's logit (``loss_only``), without normalising p or keeping it: the
same operations on the same values as the recorded loss, so the same number, bit for bit, with
one (N, V) pass and one (N, V) array fewer; its cache is None.
"""

import numpy as np

from .._checks import as_array
from .grad_mode import is_grad_enabled


def cross_entropy(logits, targets, ignore_index: int = -100) -> tuple[float, tuple]:
    """Mean softmax cross-entropy, as torch.nn.functional.cross_entropy.

    Parameters
    ----------
    logits : (N, V) float array
    targets : (N,) int array, each in [0, V) or equal to ``ignore_index``
    ignore_index : targets equal to it count for nothing (torch's default, -100)

    Returns
    -------
    loss : float, mean over the counted tokens of -log p[n, y_n]
    cache : what ``cross_entropy_backward`` needs (the probabilities, the targets and which
        rows count); None inside ``bptt.no_grad()`` (the module docstring)
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
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index: expected an integer, got {ignore_index!r}")
    keep = y != ignore_index  # (N,) the rows that count
    K = int(keep.sum())
    if K == 0:
        raise ValueError(
            f"targets: every target equals ignore_index={ignore_index}; expected at least one "
            "that counts (the mean over none is undefined)"
        )
    counted = y[keep] if K < N else y
    if counted.min() < 0 or counted.max() >= V:
        raise ValueError(
            f"targets: expected values in [0, {V}) or ignore_index={ignore_index}, got min "
            f"{counted.min()}, max {counted.max()}"
        )
    if K < N:
        y = np.where(keep, y, 0)  # any class: the ignored rows' log p is not used
    if not is_grad_enabled():
        return loss_only(z, y, None if K == N else keep), None
    shifted = z - z.max(axis=1, keepdims=True)                             # (N, V), max 0
    p = np.exp(shifted)                                                     # (N, V)
    total = p.sum(axis=1)                                                   # (N,)
    p /= total[:, None]
    rows = np.arange(N)
    logp = shifted[rows, y] - np.log(total)                                 # (N,)
    if K == N:
        return -float(np.mean(logp, dtype=np.float64)), (p, y, None)
    return -float(np.mean(logp[keep], dtype=np.float64)), (p, y, keep)


def loss_only(z: np.ndarray, y: np.ndarray, keep) -> float:
    """The mean of -log p[n, y_n] over the rows ``keep`` (a bool (N,) mask, or None: all), from
    logits z (N, V) and targets y (N,) in [0, V), as ``cross_entropy`` computes it but without p:
    log p[n, y_n] = (z - max z)[n, y_n] - log sum exp(z - max z)[n]."""
    shifted = np.subtract(z, z.max(axis=1, keepdims=True))                # (N, V), max 0
    picked = shifted[np.arange(len(y)), y]                                  # (N,)
    total = np.exp(shifted, out=shifted).sum(axis=1)                        # (N,)
    logp = picked - np.log(total)                                           # (N,)
    return -float(np.mean(logp if keep is None else logp[keep], dtype=np.float64))


def cross_entropy_backward(dloss: float, cache: tuple) -> np.ndarray:
    """dlogits (N, V) = dloss * (p - onehot(y)) / K on the counted rows and 0 on the ignored
    ones, for the forward that made ``cache``; RuntimeError for the None cache of a loss
    computed inside ``bptt.no_grad()``."""
    if cache is None:
        raise RuntimeError(
            "cross_entropy_backward: the loss was computed inside bptt.no_grad(), which keeps "
            "nothing for a backward (its cache is None); compute it outside no_grad() to "
            "differentiate it"
        )
    p, y, keep = cache
    N = p.shape[0]
    K = N if keep is None else int(keep.sum())
    dz = p * (dloss / K)                                                    # (N, V), a new array
    dz[np.arange(N), y] -= dloss / K
    if keep is not None:
        dz[~keep] = 0
    return dz
