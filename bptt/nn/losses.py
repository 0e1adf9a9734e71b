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
from .calls import Stacked
from .grad_mode import is_grad_enabled
from .module import Module


def class_targets(scores: np.ndarray, targets, ignore_index: int, what: str):
    """Check (N, C) scores and (N,) class targets; returns (y with ignored rows set to 0, the
    (N,) mask of counted rows)."""
    if scores.dtype.kind != "f":
        raise TypeError(f"{what}: expected a float array, got dtype {scores.dtype}")
    if scores.ndim != 2:
        raise ValueError(f"{what}: expected 2 dimensions (N, C), got shape {scores.shape}")
    if scores.shape[0] == 0:
        raise ValueError(f"{what}: expected at least one token, got shape {scores.shape}")
    y = np.asarray(targets)
    if y.dtype.kind not in "iu":
        raise TypeError(f"targets: expected an integer array, got dtype {y.dtype}")
    N, C = scores.shape
    if y.shape != (N,):
        raise ValueError(f"targets: expected shape ({N},), got {y.shape}")
    keep = y != ignore_index
    counted = y[keep]
    if counted.size and (counted.min() < 0 or counted.max() >= C):
        raise ValueError(f"targets: expected values in [0, {C}) or ignore_index={ignore_index}, "
                         f"got min {counted.min()}, max {counted.max()}")
    return np.where(keep, y, 0), keep


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
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index: expected an integer, got {ignore_index!r}")
    y, keep = class_targets(z, targets, ignore_index, "logits")
    N, K = len(y), int(keep.sum())
    if K == 0:
        raise ValueError(
            f"targets: every target equals ignore_index={ignore_index}; expected at least one "
            "that counts (the mean over none is undefined)"
        )
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


# ------------------------------------------------------------------ log-softmax and loss modules


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """log softmax(x) along ``axis``: (x - max x) - log sum exp(x - max x), a new array (as
    torch.nn.functional.log_softmax(x, dim=axis)); never overflows."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"x: expected a float array, got dtype {x.dtype}")
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


REDUCTIONS = ("mean", "sum", "none")


def _reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    return reduction


class _Loss(Module):
    """A loss as a module: ``loss = crit(prediction, target)``, then ``dpred = crit.backward()``
    for that call (``dloss``: the gradient of what the loss feeds, 1.0 by default; with
    ``reduction='none'`` an array like the loss). Each call replaces the one before; inside
    ``bptt.no_grad()`` a call keeps nothing for backward."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _reduction(reduction)
        self._cache = None

    def __getstate__(self):
        return {**self.__dict__, "_cache": None}

    def _reduce(self, rows: np.ndarray, keep=None):
        """(N,) per-row losses -> the loss by ``reduction``; returns it and the per-row weight
        of a unit dloss."""
        n = rows.size if keep is None else int(keep.sum())
        if self.reduction == "none":
            return rows, 1.0
        if self.reduction == "sum":
            return float(np.sum(rows, dtype=np.float64)), 1.0
        if n == 0:
            raise ValueError("targets: every target equals ignore_index; expected at least one "
                             "that counts (the mean over none is undefined)")
        return float(np.sum(rows, dtype=np.float64)) / n, 1.0 / n

    def _dloss(self, dloss, shape) -> np.ndarray:
        """dloss as an array that broadcasts against the rows (a scalar, or the rows' shape
        with reduction 'none')."""
        if self._cache is None:
            raise RuntimeError(f"backward: call the {type(self).__name__} first (each recorded "
                               f"call is differentiated once; calls inside bptt.no_grad() are "
                               f"not recorded)")
        d = np.asarray(dloss, dtype=np.float64)
        if self.reduction == "none" and d.shape != shape:
            raise ValueError(f"dloss: expected shape {shape} (reduction='none'), got {d.shape}")
        if self.reduction != "none" and d.shape != ():
            raise ValueError(f"dloss: expected a scalar, got shape {d.shape}")
        return d

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def _nll_rows(logp: np.ndarray, y: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(N,) -logp[n, y_n] on the counted rows, 0 on the ignored ones."""
    return np.where(keep, -logp[np.arange(len(y)), y], 0).astype(logp.dtype)


def _row_weights(d, unit: float, keep: np.ndarray, dtype) -> np.ndarray:
    """(N,) each row's share of dloss d (a scalar, or per row with reduction 'none'): d times
    ``unit`` (1/K for the mean) on the counted rows, 0 on the ignored ones."""
    return np.broadcast_to((d * unit * keep).astype(dtype), keep.shape)


class NLLLoss(_Loss):
    """Negative log-likelihood of class targets from log-probabilities, as torch.nn.NLLLoss:
    input (N, C) log-probabilities (``log_softmax``), targets (N,) in [0, C) or
    ``ignore_index``; loss = -input[n, y_n], reduced over the counted rows."""

    def __init__(self, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, logp, targets):
        logp = np.asarray(logp)
        y, keep = class_targets(logp, targets, self.ignore_index, "input")
        loss, unit = self._reduce(_nll_rows(logp, y, keep), keep)
        self._cache = (logp.shape, logp.dtype, y, keep, unit) if is_grad_enabled() else None
        return loss

    def backward(self, dloss=1.0) -> np.ndarray:
        """dL/dinput (N, C): -dloss * unit on each counted row's target, 0 elsewhere."""
        d = self._dloss(dloss, None if self._cache is None else self._cache[2].shape)
        shape, dtype, y, keep, unit = self._cache
        dx = np.zeros(shape, dtype)
        dx[np.arange(shape[0]), y] = -_row_weights(d, unit, keep, dtype)
        self._cache = None
        return dx


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits, as torch.nn.CrossEntropyLoss: logits (N, C), targets
    (N,) in [0, C) or ``ignore_index``; = NLLLoss of log_softmax(logits). The mean reduction is
    ``cross_entropy``'s (the same numbers)."""

    def __init__(self, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, logits, targets):
        z = np.asarray(logits)
        if self.reduction == "mean":
            loss, cache = cross_entropy(z, targets, self.ignore_index)
            self._cache = ("mean", cache) if is_grad_enabled() else None
            return loss
        y, keep = class_targets(z, targets, self.ignore_index, "logits")
        logp = log_softmax(z, axis=1)
        loss, _ = self._reduce(_nll_rows(logp, y, keep), keep)
        self._cache = ("rows", (logp, y, keep)) if is_grad_enabled() else None
        return loss

    def backward(self, dloss=1.0) -> np.ndarray:
        """dL/dlogits (N, C) = w (softmax - onehot(y)) per counted row, w = dloss (per row with
        reduction 'none') times 1/K for the mean."""
        kind, cache = self._cache if self._cache is not None else (None, None)
        if kind == "mean":
            d = self._dloss(dloss, ())
            self._cache = None
            return cross_entropy_backward(float(d), cache)
        d = self._dloss(dloss, None if cache is None else cache[1].shape)
        logp, y, keep = cache
        w = _row_weights(d, 1.0, keep, logp.dtype)                          # (N,)
        dz = np.exp(logp) * w[:, None]
        dz[np.arange(len(y)), y] -= w
        self._cache = None
        return dz


class MSELoss(_Loss):
    """Mean squared error, as torch.nn.MSELoss: (prediction - target)², reduced. The target must
    have the prediction's shape (a ValueError, where torch warns and broadcasts)."""

    def forward(self, pred, target):
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.dtype.kind != "f":
            raise TypeError(f"pred: expected a float array, got dtype {pred.dtype}")
        if target.shape != pred.shape:
            raise ValueError(f"target: expected the prediction's shape {pred.shape}, got "
                             f"{target.shape}")
        diff = pred - target.astype(pred.dtype, copy=False)
        sq = diff * diff
        if self.reduction == "none":
            loss, unit = sq, 1.0
        else:
            total = float(np.sum(sq, dtype=np.float64))
            loss, unit = (total / sq.size, 1.0 / sq.size) if self.reduction == "mean" else \
                (total, 1.0)
        self._cache = (diff, unit) if is_grad_enabled() else None
        return loss

    def backward(self, dloss=1.0) -> np.ndarray:
        """dL/dpred = 2 (pred - target) * unit * dloss."""
        d = self._dloss(dloss, None if self._cache is None else self._cache[0].shape)
        diff, unit = self._cache
        self._cache = None
        return (2 * unit * d * diff).astype(diff.dtype, copy=False)


class LogSoftmax(Stacked):
    """``log_softmax`` along ``dim`` as a module (torch.nn.LogSoftmax), with its backward
    dx = dy - softmax(x) * sum(dy) along ``dim``; calls stack last in, first out."""

    _what = "LogSoftmax"

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = int(dim)

    def forward(self, x) -> np.ndarray:
        y = log_softmax(x, self.dim)
        self._calls.push(y, y)
        return y

    def _backward(self, y, dy) -> np.ndarray:
        dy = np.asarray(dy)
        if dy.shape != y.shape:
            raise ValueError(f"dy: expected shape {y.shape}, got {dy.shape}")
        return dy - np.exp(y) * dy.sum(axis=self.dim, keepdims=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
