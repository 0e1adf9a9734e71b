"""The settings of a training run: one dataclass, a field per ``bptt train`` flag.

Also the errors a run's setup can raise, and which fields a resumed run may change.
"""

import dataclasses
import math
import os

from ..nn.schedule import StepSchedule
from .data import BUILTINS, corpus_name
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
    builtin: str = ""          # a built-in corpus by name (BUILTINS); "": tinyshakespeare if no
    #                            corpus is given
    include: list = dataclasses.field(default_factory=list)  # globs: only these files of
    #                            corpus folders (--include, repeatable); []: every text file
    lines: bool = False        # one sample per line (bptt.text.lines), not one stream of text
    out: str = ""              # run folder; "": runs/<corpus name>
    cell: str = "lstm"         # recurrent cell: lstm, gru or rnn
    hidden: int = 256          # hidden units per layer
    layers: int = 2            # stacked recurrent layers
    seq_len: int = 64          # characters per chunk: the truncated-BPTT length (stream mode)
    batch: int = 32            # parallel streams of text (lines mode: lines) per step
    steps: int = 4250          # total optimizer steps; --resume continues up to this
    lr: float = 3e-3           # Adam learning rate (before the schedule below)
    clip: float = 5.0          # clip the global gradient norm to this; 0: no clipping
    # regularisation and the learning-rate schedule (issue 13); a function of the step only,
    # never of --steps, so a resume stays exact (bptt.nn.schedule.StepSchedule). The defaults
    # were chosen by measured 10-minute runs on the built-in corpus (README, "The default run")
    embed: int = 0             # input embedding size; 0: one-hot input
    dropout: float = 0.2       # dropout between the layers and before the head (torch's meaning)
    recurrent_dropout: float = 0.0  # variational dropout of the state entering W_hh
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) when > 0
    lr_decay: float = 0.94     # multiply the rate by this every --lr-decay-every steps ...
    lr_decay_every: int = 100
    lr_decay_start: int = 2000  # ... from this step on
    lr_warmup: int = 0         # linear warmup over this many steps; 0: none
    seed: int = 0              # seed of the initialisation and of the run's generator
    dtype: str = "float32"     # float32 or float64
    checkpoint_every: int = 250  # write checkpoint.npz every N steps (and at the end)
    val_fraction: float = 0.1  # held out for validation: the text's last fraction (lines mode:
    #                            that fraction of the lines, chosen by a shuffle seeded by --seed)
    eval_every: int = 250      # validation loss every N steps
    eval_chars: int = 150_000  # validate on the first N held-out characters (the same ones each
    #                            time; the built-in corpus's 111,539 whole); 0: all (stream mode)
    log_every: int = 10        # a metrics.csv row every N steps (train loss averaged over them)
    min_count: int = -1        # characters seen fewer than N times in the corpus are read as one
    #                            unknown symbol (U+FFFD), never sampled; 0: every character kept;
    #                            -1: N is one per million characters (``min_count_of``), chosen by
    #                            measured runs on a source tree (docs/cli.md)
    threads: int = 0           # BLAS threads of the matrix products (threadpoolctl); 0: the
    #                            library's default (one per core); 1 on a busy machine (docs/cli.md)
    resume: bool = False       # continue the run in --out from its checkpoint

    def validate(self) -> "Config":
        """Raise ConfigError naming the flag of the first bad value; returns self."""
        for name in ("hidden", "layers", "seq_len", "batch", "steps", "checkpoint_every",
                     "eval_every", "log_every", "seed", "eval_chars", "min_count", "threads"):
            low = {"seed": 0, "eval_chars": 0, "threads": 0, "min_count": -1}.get(name, 1)
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                auto = " (-1: one per million characters)" if name == "min_count" else ""
                raise ConfigError(f"{flag(name)}: expected an integer >= {low}{auto}, got "
                                  f"{value!r}")
        for name, low, high in (("lr", 0, math.inf), ("clip", 0, math.inf),
                                ("val_fraction", 0, 1)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and math.isfinite(value)
            ok = ok and (low <= value if name == "clip" else low < value) and value < high
            if not ok:
                what = {"lr": "a number > 0", "clip": "a number >= 0 (0: no clipping)",
                        "val_fraction": "a number between 0 and 1 (exclusive)"}[name]
                raise ConfigError(f"{flag(name)}: expected {what}, got {value!r}")
        self._validate_regularisation()
        if self.cell not in CELLS:
            raise ConfigError(f"--cell: expected one of lstm, gru, rnn, got {self.cell!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"--dtype: expected float32 or float64, got {self.dtype!r}")
        if not isinstance(self.corpus, list) or not all(isinstance(p, str) for p in self.corpus):
            raise ConfigError(f"corpus: expected a list of paths, got {self.corpus!r}")
        if not isinstance(self.include, list) or not all(isinstance(g, str) and g
                                                          for g in self.include):
            raise ConfigError(f"--include: expected glob patterns, got {self.include!r}")
        if self.builtin and self.builtin not in BUILTINS:
            raise ConfigError(f"--builtin: expected one of {', '.join(BUILTINS)}, got "
                              f"{self.builtin!r}")
        if self.builtin and self.corpus:
            raise ConfigError(f"--builtin {self.builtin}: give either a built-in corpus or CORPUS "
                              f"paths, got both ({' '.join(self.corpus)})")
        if not isinstance(self.lines, bool):
            raise ConfigError(f"--lines: expected True or False, got {self.lines!r}")
        if self.builtin in LINES_ONLY and not self.lines:
            raise ConfigError(f"--builtin {self.builtin}: a corpus of one sample per line, "
                              "trained with --lines only")
        return self

    def _validate_regularisation(self) -> None:
        """ConfigError for a bad --embed, --dropout, --weight-decay or schedule value."""
        for name, low in (("embed", 0), ("lr_decay_every", 1), ("lr_decay_start", 0),
                          ("lr_warmup", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{flag(name)}: expected an integer >= {low}, got {value!r}")
        for name, ok, what in (
            ("dropout", lambda v: 0 <= v < 1, "a probability in [0, 1)"),
            ("recurrent_dropout", lambda v: 0 <= v < 1, "a probability in [0, 1)"),
            ("weight_decay", lambda v: v >= 0, "a number >= 0 (0: none)"),
            ("lr_decay", lambda v: 0 < v <= 1, "a factor in (0, 1] (1: no decay)"),
        ):
            value = getattr(self, name)
            good = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (good and math.isfinite(value) and ok(value)):
                raise ConfigError(f"{flag(name)}: expected {what}, got {value!r}")

    def schedule(self) -> StepSchedule:
        """The learning rate of each step (bptt.nn.schedule)."""
        return StepSchedule(self.lr, self.lr_decay, self.lr_decay_every, self.lr_decay_start,
                            self.lr_warmup)

    def min_count_of(self, n_chars: int) -> int:
        """The --min-count of a corpus of ``n_chars`` characters: the one given, or (-1) one
        per million characters, rounded down (0, nothing folded, under a million)."""
        return self.min_count if self.min_count >= 0 else n_chars // AUTO_MIN_COUNT

    def run_dir(self) -> str:
        return self.out or os.path.join("runs", corpus_name(self.corpus, self.builtin))

    def given(self) -> set[str]:
        """The fields that differ from the defaults (what a Python caller set)."""
        return {f.name for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(Config(), f.name)}


AUTO_MIN_COUNT = 1_000_000  # --min-count -1: fold characters rarer than one in this many

# Built-in corpora that are read one sample per line; their defaults replace Config's for every
# field the user does not give (chosen by measured runs, see the README).
LINES_ONLY = ("names",)
PRESETS = {
    "names": {"lines": True, "hidden": 256, "layers": 2, "batch": 32, "lr": 2e-3, "steps": 2000,
              "eval_every": 50, "checkpoint_every": 250, "embed": 32, "dropout": 0.2,
              "lr_decay": 0.85, "lr_decay_every": 100, "lr_decay_start": 800},
}
# Options that mean nothing in lines mode (a sample is one line; validation reads every line).
STREAM_ONLY = ("seq_len", "eval_chars")


def with_preset(config: Config, given: set[str]) -> Config:
    """``config`` with its built-in corpus's PRESETS for the fields not in ``given``; ConfigError
    for a stream-only option given in lines mode."""
    preset = {k: v for k, v in PRESETS.get(config.builtin, {}).items() if k not in given}
    config = dataclasses.replace(config, **preset)
    if config.lines:
        for name in STREAM_ONLY:
            if name in given:
                raise ConfigError(f"{flag(name)}: not used with --lines (a sample is one line, "
                                  "and validation reads every held-out line); drop it")
    return config


def flag(field: str) -> str:
    """The command-line flag of a Config field: seq_len -> --seq-len."""
    return "--" + field.replace("_", "-")


# Fields a resumed run may take from the command line; the others must match the checkpoint.
RESUMABLE = ("steps", "checkpoint_every", "eval_every", "eval_chars", "log_every", "lr", "clip",
             "out", "resume", "corpus", "threads")
