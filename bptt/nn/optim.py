"""Adam (Kingma & Ba, as torch.optim.Adam), AdamW (Loshchilov & Hutter, as torch.optim.AdamW) and
global-norm gradient clipping, on dicts of arrays."""

import math

import numpy as np

from .._checks import as_array, check_shape


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


def _hyper(lr, betas, eps, weight_decay=0.0) -> tuple:
    """The hyper-parameters as floats, each checked as torch does (ValueError naming it)."""
    lr, eps, weight_decay = float(lr), float(eps), float(weight_decay)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
    betas = (float(betas[0]), float(betas[1]))
    for name, value, ok, want in (
        ("lr", lr, lr >= 0, ">= 0"), ("eps", eps, eps >= 0, ">= 0"),
        ("betas[0]", betas[0], 0 <= betas[0] < 1, "in [0, 1)"),
        ("betas[1]", betas[1], 0 <= betas[1] < 1, "in [0, 1)"),
        ("weight_decay", weight_decay, weight_decay >= 0, ">= 0"),
    ):
        if not ok:  # (a NaN fails every comparison, so it lands here too)
            raise ValueError(f"{name}: expected a number {want}, got {value!r}")
    return lr, betas, eps, weight_decay


class Adam:
    """Adam over a dict of parameters: ``opt.step(params, grads)`` updates ``params`` in place.

    State (``m``, ``v``, ``t``) is plain arrays and an int, so it can be saved with np.savez;
    ``state_dict()`` / ``load_state_dict()`` give it as one flat dict of arrays. ``lr`` may be
    changed between steps (a schedule sets it before each step).
    """

    def __init__(self, params: dict, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8):
        self.lr, self.betas, self.eps, _ = _hyper(lr, betas, eps)
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0

    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        for name, p in params.items():
            adam_update(p, grads[name], self.m[name], self.v[name], self.t, self.lr,
                        self.betas[0], self.betas[1], self.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the moments as ``m/<name>``, ``v/<name>`` and the step count as ``t`` (a
        0-d int64 array): everything a checkpoint needs to continue bitwise (the
        hyper-parameters are the caller's configuration)."""
        state = {f"{kind}/{name}": a.copy()
                 for kind, moments in (("m", self.m), ("v", self.v)) for name, a in moments.items()}
        state["t"] = np.array(self.t, dtype=np.int64)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` gave. Every key, shape and the step count are checked
        first (ValueError naming the first mismatch), so on error nothing is changed."""
        want = {f"{kind}/{name}": a for kind, moments in (("m", self.m), ("v", self.v))
                for name, a in moments.items()}
        for key in state:
            if key not in want and key != "t":
                raise ValueError(f"optimizer state: unexpected key {key!r}")
        t = np.asarray(state.get("t", -1))
        if t.shape != () or t.dtype.kind not in "iu" or t < 0:
            raise ValueError(f"optimizer state: expected 't' a step count >= 0, "
                             f"got {state.get('t')!r}")
        loaded = {}
        for key, current in want.items():
            if key not in state:
                raise ValueError(f"optimizer state: missing key {key!r}")
            loaded[key] = as_array(key, state[key], current.dtype)
            check_shape(key, loaded[key], current.shape)
        for key, current in want.items():
            current[...] = loaded[key]
        self.t = int(t)


class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW: before each Adam step every
    parameter shrinks by the factor ``1 - lr * weight_decay``

        p <- p (1 - lr λ)        then the Adam step of ``adam_update`` with the same lr

    (the decay does not pass through the moments, unlike an L2 term added to the gradient).
    Same interface and state as ``Adam``; ``weight_decay`` λ defaults to torch's 1e-2.
    """

    def __init__(self, params: dict, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps)
        self.weight_decay = _hyper(lr, betas, eps, weight_decay)[3]

    def step(self, params: dict, grads: dict) -> None:
        if self.weight_decay:
            keep = 1 - self.lr * self.weight_decay
            for p in params.values():
                p *= keep
        super().step(params, grads)


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
