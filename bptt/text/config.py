"""The settings of a training run: one dataclass, a field per ``bptt train`` flag.

Also the errors a run's setup can raise, and which fields a resumed run may change.
"""

import dataclasses
import math
import os

from .data import corpus_name
from .lm import CELLS


class ConfigError(ValueError):
    """A config value out of range, or a resume that would change what cannot change."""


class RunError(RuntimeError):
    """The run folder cannot be used as asked (a run already there, nothing to resume, ...)."""


class DivergedError(RuntimeError):
    """The loss or the gradient became NaN or infinite."""


@dataclasses.dataclass
class Config:
    """Every setting of a run; each field is the CLI flag of the same name (``--seq-len``...)."""

    corpus: list = dataclasses.field(default_factory=list)  # files/folders; []: built-in corpus
    out: str = ""              # run folder; "": runs/<corpus name>
    cell: str = "lstm"         # recurrent cell: lstm, gru or rnn
    hidden: int = 256          # hidden units per layer
    layers: int = 2            # stacked recurrent layers
    seq_len: int = 64          # characters per chunk: the truncated-BPTT length
    batch: int = 32            # parallel streams of text per step
    steps: int = 4500          # total optimizer steps; --resume continues up to this
    lr: float = 2e-3           # Adam learning rate, constant (no schedule, so resume is exact)
    clip: float = 5.0          # clip the global gradient norm to this; 0: no clipping
    seed: int = 0              # seed of the initialisation and of the run's generator
    dtype: str = "float32"     # float32 or float64
    checkpoint_every: int = 250  # write checkpoint.npz every N steps (and at the end)
    val_fraction: float = 0.1  # the last fraction of the text, held out for validation
    eval_every: int = 250      # validation loss every N steps
    eval_chars: int = 0        # validate on the first N characters of the held-out text; 0: all
    log_every: int = 10        # a metrics.csv row every N steps (train loss averaged over them)
    resume: bool = False       # continue the run in --out from its checkpoint

    def validate(self) -> "Config":
        """Raise ConfigError naming the flag of the first bad value; returns self."""
        for name in ("hidden", "layers", "seq_len", "batch", "steps", "checkpoint_every",
                     "eval_every", "log_every", "seed", "eval_chars"):
            low = 0 if name in ("seed", "eval_chars") else 1
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{flag(name)}: expected an integer >= {low}, got {value!r}")
        for name, low, high in (("lr", 0, math.inf), ("clip", 0, math.inf),
                                ("val_fraction", 0, 1)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and math.isfinite(value)
            ok = ok and (low <= value if name == "clip" else low < value) and value < high
            if not ok:
                what = {"lr": "a number > 0", "clip": "a number >= 0 (0: no clipping)",
                        "val_fraction": "a number between 0 and 1 (exclusive)"}[name]
                raise ConfigError(f"{flag(name)}: expected {what}, got {value!r}")
        if self.cell not in CELLS:
            raise ConfigError(f"--cell: expected one of lstm, gru, rnn, got {self.cell!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"--dtype: expected float32 or float64, got {self.dtype!r}")
        if not isinstance(self.corpus, list) or not all(isinstance(p, str) for p in self.corpus):
            raise ConfigError(f"corpus: expected a list of paths, got {self.corpus!r}")
        return self

    def run_dir(self) -> str:
        return self.out or os.path.join("runs", corpus_name(self.corpus))


def flag(field: str) -> str:
    """The command-line flag of a Config field: seq_len -> --seq-len."""
    return "--" + field.replace("_", "-")


# Fields a resumed run may take from the command line; the others must match the checkpoint.
RESUMABLE = ("steps", "checkpoint_every", "eval_every", "eval_chars", "log_every", "lr", "clip",
             "out", "resume", "corpus")
