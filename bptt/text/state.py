"""The state of a training run in one place, saved and restored whole by the checkpoint.

``RunState.to_checkpoint()`` gives the arrays and metadata of everything that changes while a run
trains; ``RunState.from_checkpoint`` rebuilds it from them, exactly, so a resumed run goes on as
if it had never stopped. What does not change (config, vocabulary, corpus fingerprint) is added
to the metadata by the caller.

Checkpoint entries written here:

    param/<name>                 model parameters
    adam_m/<name>, adam_v/<name> Adam's (or AdamW's) moments (its step count is ``adam_t`` in the
                                 metadata; the learning rate is the schedule's for the step)
    state/0, state/1             the carried hidden state h (L, B, H) and, for an LSTM, c
    order                        lines mode: this epoch's order of the training lines (n_train,)
"""

import dataclasses
import time

import numpy as np

from ..nn.optim import Adam
from . import checkpoint as ckpt
from .lm import CharLM


@dataclasses.dataclass
class RunState:
    """Everything a training run changes as it goes."""

    model: CharLM               # parameters (and the last step's gradients)
    opt: Adam                   # moments and step count
    rng: np.random.Generator    # the run's generator
    step: int = 0               # optimizer steps taken
    position: int = 0           # the data's next batch within the current epoch
    order: np.ndarray | None = None  # lines mode: the training lines' order in this epoch
    carried: object = None      # stream mode: hidden state carried into the next batch
    loss_sum: float = 0.0       # training loss summed over the steps since the last metrics row
    loss_count: int = 0         # how many steps loss_sum holds
    last_val: list | None = None   # [step, loss] of the last validation
    best: list | None = None       # [step, loss] of the lowest validation loss (best.npz)
    elapsed_before: float = 0.0    # wall seconds of the earlier sessions of this run
    started: float = dataclasses.field(default_factory=time.perf_counter)  # this session (unsaved)

    def elapsed(self) -> float:
        """Wall seconds of the run so far, over all its sessions."""
        return self.elapsed_before + time.perf_counter() - self.started

    def advance(self, loss: float, position: int, carried) -> None:
        """Count a step taken with training loss ``loss``; the data goes on at ``position`` from
        the state ``carried`` (None: zeros)."""
        self.step, self.position, self.carried = self.step + 1, position, carried
        self.loss_sum, self.loss_count = self.loss_sum + loss, self.loss_count + 1

    def train_loss(self) -> float:
        """Mean training loss of the steps since the last metrics row."""
        return self.loss_sum / self.loss_count

    def to_checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, metadata) of the whole state, for ``checkpoint.save``."""
        arrays = {f"param/{k}": v for k, v in self.model.params.items()}
        arrays.update(ckpt.optimizer_arrays(self.opt))
        if self.carried is not None:
            parts = self.carried if isinstance(self.carried, tuple) else (self.carried,)
            arrays.update({f"state/{i}": a for i, a in enumerate(parts)})
        if self.order is not None:
            arrays["order"] = self.order
        meta = {"step": self.step, "position": self.position, "adam_t": self.opt.t,
                "rng": self.rng.bit_generator.state, "loss_sum": self.loss_sum,
                "loss_count": self.loss_count, "elapsed_s": self.elapsed(),
                "last_val": self.last_val, "best": self.best,
                "dropout_rng": self.model.get_rng_state()}
        return arrays, meta

    @classmethod
    def from_checkpoint(cls, arrays: dict, meta: dict, model: CharLM, opt: Adam,
                        rng: np.random.Generator, batch: int, where: str) -> "RunState":
        """The state saved by ``to_checkpoint``, loaded into ``model``, ``opt`` and ``rng``
        (built from the run's config). ``batch``: the batch size of the carried state;
        ``where``: the file, for messages. Raises CheckpointError naming what does not fit."""
        try:
            model.load_state_dict(ckpt.prefixed(arrays, "param"))
            rng.bit_generator.state = meta["rng"]
            if "dropout_rng" in meta:     # (absent from checkpoints before dropout)
                model.set_rng_state(meta["dropout_rng"])
            run = cls(model, opt, rng, step=_count(meta, "step", where),
                      position=_count(meta, "position", where),
                      loss_sum=float(meta["loss_sum"]), loss_count=int(meta["loss_count"]),
                      last_val=meta.get("last_val"), best=meta.get("best"),
                      elapsed_before=float(meta["elapsed_s"]))
        except (ValueError, TypeError, KeyError) as err:
            raise ckpt.CheckpointError(f"{where}: does not match its config ({err})") from None
        ckpt.load_optimizer(opt, arrays, _count(meta, "adam_t", where))
        run.carried = _carried(arrays, model, batch)
        run.order = arrays.get("order")
        if run.order is not None and (run.order.ndim != 1 or run.order.dtype.kind not in "iu"):
            raise ckpt.CheckpointError(f"{where}: order: expected a 1-d integer array, got "
                                       f"{run.order.dtype} {run.order.shape}")
        return run


def _count(meta: dict, key: str, where: str) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ckpt.CheckpointError(f"{where}: bad {key!r} in checkpoint: {v!r}")
    return v


def _carried(arrays: dict, model: CharLM, batch: int):
    """The carried state of ``state/<i>`` entries, checked against the model; None if absent."""
    found = ckpt.prefixed(arrays, "state")
    if not found:
        return None
    n = 2 if model.cell == "lstm" else 1
    shape = (model.rnn.num_layers, batch, model.rnn.hidden_size)
    parts = [found.get(str(i)) for i in range(n)]
    for i, a in enumerate(parts):
        if a is None or a.shape != shape or a.dtype != model.dtype:
            raise ckpt.CheckpointError(f"checkpoint: state/{i}: expected {model.dtype} {shape}, "
                                       f"got {None if a is None else (a.dtype, a.shape)}")
    return tuple(parts) if n == 2 else parts[0]
