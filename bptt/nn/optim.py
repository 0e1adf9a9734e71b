"""Adam (Kingma & Ba, as torch.optim.Adam) and global-norm gradient clipping, on dicts of arrays."""

import math

import numpy as np


def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
                beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """One Adam step of parameter ``p`` with gradient ``g``, in place on p, m and v.

    m = β1 m + (1 - β1) g            first moment
    v = β2 v + (1 - β2) g²           second moment
    p -= lr / (1 - β1^t) * m / (sqrt(v) / sqrt(1 - β2^t) + eps)

    which is lr * m̂ / (sqrt(v̂) + eps) with the bias-corrected m̂, v̂, in torch's order of operations.
    t counts steps from 1.
    """
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * (g * g)
    step_size = lr / (1 - beta1 ** t)
    denom = np.sqrt(v)
    denom /= math.sqrt(1 - beta2 ** t)
    denom += eps
    p -= step_size * (m / denom)


class Adam:
    """Adam over a dict of parameters: ``opt.step(params, grads)`` updates ``params`` in place.

    State (``m``, ``v``, ``t``) is plain arrays and an int, so it can be saved with np.savez.
    """

    def __init__(self, params: dict, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8):
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        for name, p in params.items():
            adam_update(p, grads[name], self.m[name], self.v[name], self.t, self.lr,
                        self.betas[0], self.betas[1], self.eps)


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``, as
    torch.nn.utils.clip_grad_norm_ (factor max_norm / (norm + 1e-6) when below 1).
    Returns the norm before clipping."""
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads.values():
            g *= coef
    return total
