"""Optimizers as torch.optim's (SGD, Adam, AdamW) and global-norm gradient clipping.

An optimizer is built from the parameters it updates, in any of torch's forms or bptt's older
dict form, and holds ``param_groups`` (a list of dicts: ``"params"``, ``"lr"`` and the other
hyper-parameters, each writable between steps, as torch's):

    opt = bptt.SGD(model.parameters(), lr=20)               # Parameters: step() reads p.grad
    opt = bptt.Adam(model.named_parameters(), lr=1e-3)      # (name, Parameter) pairs
    opt = bptt.Adam([{"params": [...], "lr": 1e-2}, ...])   # groups, as torch's
    opt = bptt.Adam(params_dict); opt.step(params_dict, grads_dict)    # the dict form

Each array is updated once per step however often it is listed (a tied weight). The state (the
moments, the momentum buffers, the step count) is plain arrays keyed by each parameter's name
(its index in the order given, for unnamed parameters): ``state_dict()`` is one flat dict of
arrays that np.savez stores.
"""

import math

import numpy as np

from .._checks import as_array, check_shape
from .module import unique
from .module import zero_grad as zero_param_grad


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


class Optimizer:
    """The base of SGD, Adam and AdamW: parameter groups, names, ``zero_grad``, ``lr``."""

    _buffers: tuple = ()   # the names of the per-parameter state arrays

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.names: dict[int, str] = {}       # id(parameter) -> its name in the state
        groups = list(params.items()) if isinstance(params, dict) else params
        groups = [groups] if isinstance(groups, np.ndarray) else list(groups)
        if not groups:
            raise ValueError("params: expected at least one parameter, got an empty list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        for kind in self._buffers:
            setattr(self, kind, {})
        self.t = 0

    def add_param_group(self, group: dict) -> None:
        """Add a group (a dict with ``"params"`` and, optionally, hyper-parameters that differ
        from the defaults), as torch's."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"param group: expected a dict with 'params', got {group!r:.80}")
        items = group["params"]
        items = [items] if isinstance(items, np.ndarray) else list(items)
        arrays = []
        for i, item in enumerate(items):
            name, p = item if isinstance(item, tuple) else (None, item)
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(f"params[{i}]: expected a float array or bptt.Parameter, got "
                                f"{type(p).__name__}")
            if id(p) in self.names:
                continue       # listed twice (a tied weight): updated once
            self.names[id(p)] = str(len(self.names)) if name is None else name
            arrays.append(p)
        self.param_groups.append({**self.defaults, **group, "params": arrays})

    @property
    def lr(self) -> float:
        """The first group's rate; setting it sets every group's (a schedule's use)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    def zero_grad(self) -> None:
        """Every parameter's ``.grad`` to zero in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if getattr(p, "grad", None) is not None:   # (a dict-form plain array: none)
                    zero_param_grad(p)

    def _pairs(self, params, grads):
        """(group, name, parameter, gradient) for every parameter: from ``params[name]`` and
        ``grads[name]`` (the dict form), else the registered parameter and its ``.grad``."""
        if (params is None) != (grads is None):
            raise TypeError("step: expected no arguments (gradients in each .grad) or both "
                            "params and grads dicts")
        for group in self.param_groups:
            for p in group["params"]:
                name = self.names[id(p)]
                if params is not None:
                    p = params[name]
                g = p.grad if grads is None else grads[name]
                if g is None:
                    raise ValueError(f"step: parameter {name!r} has no gradient (.grad is None)")
                yield group, name, p, g

    def _buffer(self, kind: str, name: str, p: np.ndarray) -> np.ndarray:
        store = getattr(self, kind)
        if name not in store:
            store[name] = np.zeros_like(p.view(np.ndarray))
        return store[name]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the per-parameter state as ``<kind>/<name>`` and the step count as ``t``
        (a 0-d int64 array): everything a checkpoint needs to continue bitwise (the
        hyper-parameters are the caller's configuration)."""
        state = {f"{kind}/{name}": a.copy()
                 for kind in self._buffers for name, a in getattr(self, kind).items()}
        state["t"] = np.array(self.t, dtype=np.int64)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` gave. Every key, shape and the step count are checked
        first (ValueError naming the first mismatch), so on error nothing is changed."""
        by_name = {self.names[id(p)]: p for g in self.param_groups for p in g["params"]}
        loaded = {}
        for key in state:
            kind, _, name = key.partition("/")
            if key != "t" and (kind not in self._buffers or name not in by_name):
                raise ValueError(f"optimizer state: unexpected key {key!r}")
        t = np.asarray(state.get("t", -1))
        if t.shape != () or t.dtype.kind not in "iu" or t < 0:
            raise ValueError(f"optimizer state: expected 't' a step count >= 0, "
                             f"got {state.get('t')!r}")
        for kind in self._buffers:
            for name, p in by_name.items():
                key = f"{kind}/{name}"
                if key not in state:
                    if self._required(int(t)):
                        raise ValueError(f"optimizer state: missing key {key!r}")
                    continue
                loaded[key] = as_array(key, state[key], p.dtype)
                check_shape(key, loaded[key], p.shape)
        for kind in self._buffers:
            getattr(self, kind).clear()
        for key, value in loaded.items():
            kind, _, name = key.partition("/")
            getattr(self, kind)[name] = value.copy()
        self.t = int(t)

    def _required(self, t: int) -> bool:
        """Whether every buffer exists after ``t`` steps."""
        return True


class Adam(Optimizer):
    """Adam (torch.optim.Adam), ``weight_decay`` its L2 term added to the gradient.

    ``step()`` reads each parameter's ``.grad``; the dict form ``step(params, grads)`` reads
    ``grads[name]``. State: the moments ``m``, ``v`` (dicts by name) and the step count ``t``.
    """

    _buffers = ("m", "v")

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        lr, betas, eps, weight_decay = _hyper(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        for group in self.param_groups:    # moments from the start (the checkpoint's keys)
            for p in group["params"]:
                for kind in self._buffers:
                    self._buffer(kind, self.names[id(p)], p)

    def _decay(self, group, p, g):
        """The gradient Adam uses: g + λ p with torch's L2 ``weight_decay`` λ (g itself if 0)."""
        return g + group["weight_decay"] * p.view(np.ndarray) if group["weight_decay"] else g

    def step(self, params: dict | None = None, grads: dict | None = None) -> None:
        self.t += 1
        for group, name, p, g in self._pairs(params, grads):
            b1, b2 = group["betas"]
            adam_update(p.view(np.ndarray), self._decay(group, p, g), self.m[name],
                        self.v[name], self.t, group["lr"], b1, b2, group["eps"])


class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW: before each Adam step every
    parameter shrinks by the factor ``1 - lr * weight_decay``

        p <- p (1 - lr λ)        then the Adam step of ``adam_update`` with the same lr

    (the decay does not pass through the moments, unlike an L2 term added to the gradient).
    Same interface and state as ``Adam``; ``weight_decay`` λ defaults to torch's 1e-2.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _decay(self, group, p, g):
        if group["weight_decay"]:
            p.view(np.ndarray)[...] *= 1 - group["lr"] * group["weight_decay"]
        return g


class SGD(Optimizer):
    """Stochastic gradient descent as torch.optim.SGD, per parameter with gradient g:

        d = g + λ p                          weight_decay λ (L2)
        b = d (first step),  μ b + (1 - τ) d (after)     momentum μ, dampening τ
        d = d + μ b (nesterov)  or  b        (when μ > 0)
        p -= lr d

    State: the momentum buffers ``momentum_buffer`` (a dict by name, made at the first step)
    and the step count ``t``.
    """

    _buffers = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        values = {"lr": lr, "momentum": momentum, "dampening": dampening,
                  "weight_decay": weight_decay}
        for name, value in values.items():
            if not _number(value) or value < 0:
                raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: expected momentum > 0 and dampening 0 (torch's rule), "
                             f"got momentum={momentum}, dampening={dampening}")
        super().__init__(params, {**{k: float(v) for k, v in values.items()},
                                  "nesterov": bool(nesterov)})

    def _required(self, t: int) -> bool:
        return t > 0 and any(g["momentum"] for g in self.param_groups)

    def step(self, params: dict | None = None, grads: dict | None = None) -> None:
        self.t += 1
        for group, name, p, g in self._pairs(params, grads):
            mu, wd = group["momentum"], group["weight_decay"]
            d = g + wd * p.view(np.ndarray) if wd else g
            if mu:
                buf = self.momentum_buffer.get(name)
                if buf is None:
                    buf = self.momentum_buffer[name] = np.array(d, dtype=p.dtype)
                else:
                    buf *= mu
                    buf += (1 - group["dampening"]) * d
                d = d + mu * buf if group["nesterov"] else buf
            p.view(np.ndarray)[...] -= group["lr"] * d


def _number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) \
        and math.isfinite(x)


def clip_grad_norm(grads, max_norm: float) -> float:
    """Scale gradients in place so that their global L2 norm is at most ``max_norm``, as
    torch.nn.utils.clip_grad_norm_ (factor max_norm / (norm + 1e-6) when below 1). ``grads``:
    a dict of gradient arrays or any iterable of them; an array listed twice counts once.
    Returns the norm before clipping."""
    grads = unique(grads)
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= coef
    return total


def clip_grad_norm_(parameters, max_norm: float) -> float:
    """torch.nn.utils.clip_grad_norm_: the gradients (``.grad``) of ``parameters`` (a
    Parameter or any iterable of them; each array once, a tied weight too) scaled in place to a
    global L2 norm of at most ``max_norm``. Returns the norm before clipping."""
    grads = [p.grad for p in unique(parameters) if getattr(p, "grad", None) is not None]
    return clip_grad_norm(grads, max_norm)
