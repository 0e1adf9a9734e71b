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


def _number(x) -> bool:
    """A finite real number (NumPy's included), not a bool."""
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x)


def _integer(x) -> bool:
    """An integer (NumPy's included), not a bool."""
    return isinstance(x, Integral) and not isinstance(x, bool)
