"""A learning-rate schedule that is a function of the step alone.

The rate for a step depends only on ``step``, the number of optimizer steps taken before it
(0 for the first), never on how many steps the run will take in total: a run resumed to a larger
``--steps`` follows the same rates as one that ran in one go.

    rate(step) = lr · warm(step) · F^k(step)

    warm(step) = (step + 1) / W   for step < W, else 1          linear warmup over W steps
    k(step)    = 0                for step < S                   char-rnn's rule: multiply by F
               = (step - S) // N + 1   for step >= S             at step S and every N after

so the rate is lr until step S, lr·F from S to S+N-1, lr·F² from S+N on, and so on; with F = 1
(the default) and W = 0 it is the constant lr. In torch terms: ``LinearLR(start_factor=1/W,
total_iters=W-1)`` chained with ``MultiStepLR(milestones=[S, S+N, ...], gamma=F)`` (for S >= 1).
"""

import math
from dataclasses import dataclass
from numbers import Integral, Real


@dataclass(frozen=True)
class StepSchedule:
    """``schedule(step)`` -> the learning rate of the step after ``step`` steps taken.

    lr : the base rate. decay : F, the factor (0 < F; 1 means no decay). every : N >= 1.
    start : S >= 0, the step of the first multiplication. warmup : W >= 0 steps (0: none).
    """

    lr: float
    decay: float = 1.0
    every: int = 1
    start: int = 0
    warmup: int = 0

    def __post_init__(self):
        for name, ok, want in (
            ("lr", _number(self.lr) and self.lr >= 0, "a number >= 0"),
            ("decay", _number(self.decay) and self.decay > 0, "a number > 0"),
            ("every", _integer(self.every) and self.every >= 1, "an integer >= 1"),
            ("start", _integer(self.start) and self.start >= 0, "an integer >= 0"),
            ("warmup", _integer(self.warmup) and self.warmup >= 0, "an integer >= 0"),
        ):
            if not ok:
                raise ValueError(f"{name}: expected {want}, got {getattr(self, name)!r}")

    def decays(self, step: int) -> int:
        """k(step): how many times the rate has been multiplied by F before this step."""
        return 0 if step < self.start else (step - self.start) // self.every + 1

    def __call__(self, step: int) -> float:
        if not _integer(step) or step < 0:
            raise ValueError(f"step: expected an integer >= 0, got {step!r}")
        step = int(step)
        rate = float(self.lr) * float(self.decay) ** self.decays(step)
        if step < self.warmup:
            rate *= (step + 1) / self.warmup
        return rate

    def apply(self, optimizer, step: int) -> float:
        """Set every parameter group's lr of ``optimizer`` to the rate of ``step`` (call it
        before each ``optimizer.step()``, with the number of steps taken); returns the rate."""
        rate = self(step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        return rate


class ReduceLROnPlateau:
    """torch.optim.lr_scheduler.ReduceLROnPlateau: ``step(metric)`` after each evaluation;
    when the metric has not improved for more than ``patience`` evaluations, every group's lr
    is multiplied by ``factor`` (not below ``min_lr``, and only if the change exceeds ``eps``),
    then ``cooldown`` evaluations pass before bad ones count again.

    Improvement (mode 'min'; 'max' mirrors it): metric < best * (1 - threshold) with
    threshold_mode 'rel', metric < best - threshold with 'abs'.
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr=0.0, eps: float = 1e-8):
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        if not (_number(factor) and 0 <= factor < 1):
            raise ValueError(f"factor: expected a number in [0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if not _integer(value) or value < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
        groups = optimizer.param_groups
        mins = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(mins) != len(groups):
            raise ValueError(f"min_lr: expected {len(groups)} values (one per group), got "
                             f"{len(mins)}")
        self.optimizer, self.mode, self.factor = optimizer, mode, float(factor)
        self.patience, self.cooldown, self.eps = int(patience), int(cooldown), float(eps)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.min_lrs = [float(m) for m in mins]
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0
        self._last_lr = [g["lr"] for g in groups]

    def is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (1 + self.threshold) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def step(self, metric: float) -> None:
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, low in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                new = max(group["lr"] * self.factor, low)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        """The groups' rates after the last ``step`` (torch's)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The scheduler's counters and best metric (numbers: JSON)."""
        return {k: getattr(self, k) for k in ("best", "num_bad_epochs", "cooldown_counter",
                                               "last_epoch")}

    def load_state_dict(self, state: dict) -> None:
        for k in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch"):
            setattr(self, k, state[k])


def _number(x) -> bool:
    """A finite real number (NumPy's included), not a bool."""
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x)


def _integer(x) -> bool:
    """An integer (NumPy's included), not a bool."""
    return isinstance(x, Integral) and not isinstance(x, bool)
