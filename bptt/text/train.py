"""Training loop of the character model: config, run folder, metrics, checkpoints, signals.

A run folder holds ``checkpoint.npz`` (bptt.text.checkpoint), ``metrics.csv`` and ``loss.png``.
One step reads the next chunk (bptt.text.data.Batches), runs forward and truncated backward from
the carried state (bptt.text.lm), clips the global gradient norm and takes an Adam step at a
constant learning rate.
Nothing depends on ``steps`` except where the loop stops, so a run resumed from step k goes on
exactly as if it had never stopped: the checkpoint holds parameters, Adam's m, v and t, the data
position, the carried state, the loss accumulated since the last metrics row and the RNG state.
"""

import csv
import dataclasses
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import numpy as np

from ..nn.optim import Adam, clip_grad_norm
from . import checkpoint as ckpt
from .data import Batches, Vocab, corpus_name, eval_chunks, fingerprint, read_corpus, split
from .lm import CELLS, CharLM, sample

CHECKPOINT, METRICS, PLOT = "checkpoint.npz", "metrics.csv", "loss.png"
COLUMNS = ["step", "train_loss", "val_loss", "chars_per_sec", "elapsed_s"]
TIMING = ("chars_per_sec", "elapsed_s")


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


@dataclasses.dataclass
class Result:
    """What ``train`` returns to its caller (the CLI prints it)."""

    out: str
    step: int
    steps: int
    interrupted: str = ""      # name of the signal that stopped the run, else ""
    val: tuple | None = None   # (step, loss) of the last validation
    sample: str = ""           # a short sample, drawn when the run completes


# ------------------------------------------------------------------------------ run folder

def _metrics_rows(path: str, upto: int) -> list[dict]:
    """Rows of an existing metrics.csv with step <= upto (later rows belong to steps the
    checkpoint does not hold, so a resume replays them)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [r for r in rows if (r.get("step") or "").isdigit() and int(r["step"]) <= upto]


def _write_metrics(path: str, rows: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    ckpt.write_atomic(path, write)


def plot_losses(path: str, rows: list[dict]) -> None:
    """loss.png: train and validation loss against step, drawn without a display (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for col, style in (("train_loss", "-"), ("val_loss", "o-")):
        pts = [(int(r["step"]), float(r[col])) for r in rows if r.get(col)]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=col.replace("_loss", ""), markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    ckpt.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


# ------------------------------------------------------------------------------ state

def _state_arrays(state) -> dict[str, np.ndarray]:
    if state is None:
        return {}
    parts = state if isinstance(state, tuple) else (state,)
    return {f"state/{i}": a for i, a in enumerate(parts)}


def _restore_state(arrays: dict, model: CharLM, batch: int):
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


def _evaluate(model: CharLM, val: np.ndarray, cfg: Config) -> float:
    """Mean loss over the held-out text, streams from zero state, state carried chunk to chunk."""
    if cfg.eval_chars:
        val = val[: cfg.eval_chars + 1]
    total, count, state = 0.0, 0, None
    for x, y in eval_chunks(val, cfg.batch, cfg.seq_len):
        try:
            loss, state = model.loss(x, y, state)
        except FloatingPointError:              # diverged parameters; the caller stops the run
            return math.nan
        total += loss * x.size
        count += x.size
    return total / count


@contextmanager
def _stop_requests():
    """Within the block, SIGINT/SIGTERM only record a request (a second one stops at once)."""
    got: list[int] = []

    def handler(signum, frame):
        if got:
            raise KeyboardInterrupt
        got.append(signum)

    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ------------------------------------------------------------------------------ setup

def _resolve(config: Config, overrides: Iterable[str] | None) -> tuple[Config, dict, dict]:
    """The effective config and, for a resume, the checkpoint's (arrays, meta)."""
    config.validate()
    out = config.run_dir()
    path = os.path.join(out, CHECKPOINT)
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunError(f"--out {out}: exists and is not a folder")
    if not config.resume:
        held = [f for f in (CHECKPOINT, METRICS, PLOT) if os.path.exists(os.path.join(out, f))]
        if held:
            raise RunError(f"{out} already holds a run ({', '.join(held)}); continue it with "
                           "--resume or choose another --out")
        return dataclasses.replace(config, out=out, corpus=_absolute(config.corpus)), {}, {}
    if not os.path.exists(path):
        raise RunError(f"nothing to resume: {path} does not exist")
    arrays, meta = ckpt.load(path)
    try:
        stored = Config(**meta["config"]).validate()
    except (KeyError, TypeError, ConfigError) as err:
        raise ckpt.CheckpointError(f"{path}: bad config in checkpoint ({err})") from None
    given = set(RESUMABLE if overrides is None else overrides)
    changes = {}
    for f in dataclasses.fields(Config):
        mine, theirs = getattr(config, f.name), getattr(stored, f.name)
        if f.name in given and mine != theirs:
            if f.name not in RESUMABLE:
                raise ConfigError(f"{flag(f.name)} {mine} differs from the run's {theirs}; drop "
                                  "it to resume, or start a new run in another --out")
            changes[f.name] = mine
    changes.update(out=out, resume=True, corpus=_absolute(changes.get("corpus") or stored.corpus))
    return dataclasses.replace(stored, **changes), arrays, meta


def _absolute(paths: list) -> list:
    return [os.path.abspath(p) for p in paths]


def _meta_int(meta: dict, key: str, path: str) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ckpt.CheckpointError(f"{path}: bad {key!r} in checkpoint: {v!r}")
    return v


def train(config: Config, overrides: Iterable[str] | None = None, progress: bool = True,
          log: Callable[[str], None] | None = None) -> Result:
    """Train (or with ``config.resume``, continue) the run in ``config.run_dir()``.

    On a resume the checkpoint's config is used; the fields named in ``overrides`` (None: all of
    RESUMABLE) come from ``config``, and naming a field outside RESUMABLE with another value is a
    ConfigError. Everything is checked before any file is written. SIGINT/SIGTERM end the run
    after the current step with a checkpoint (``Result.interrupted`` names the signal).
    Raises ConfigError, RunError, CorpusError, CheckpointError, DivergedError.
    """
    log = log or (lambda msg: None)
    cfg, arrays, meta = _resolve(config, overrides)
    out, path = cfg.out, os.path.join(cfg.out, CHECKPOINT)
    text = read_corpus(cfg.corpus, skip=out)  # a run folder inside a corpus folder is not text
    vocab = Vocab.from_text(text)
    if meta:
        if meta.get("corpus_sha256") != fingerprint(text):
            raise RunError(f"the corpus differs from the one the run in {out} was trained on")
        try:
            vocab = Vocab(meta["vocab"])
        except (KeyError, TypeError, ValueError) as err:
            raise ckpt.CheckpointError(f"{path}: bad vocabulary in checkpoint ({err})") from None
    train_ids, val_ids = split(vocab.encode(text), cfg.val_fraction)
    batches = Batches(train_ids, cfg.batch, cfg.seq_len)
    eval_chunks(val_ids, cfg.batch, cfg.seq_len)         # raises if the held-out text is unusable
    rng = np.random.default_rng(cfg.seed)
    model = initial_model(cfg, vocab.size, rng)
    opt = Adam(model.params, lr=cfg.lr)
    step, position, carried, loss_sum, loss_count = 0, 0, None, 0.0, 0
    elapsed0, last_val = 0.0, None
    rows: list[dict] = []
    if meta:
        step = _meta_int(meta, "step", path)
        if step >= cfg.steps:
            raise ConfigError(f"--steps: the run in {out} is already at step {step}; pass "
                              f"--steps larger than {step} to continue it")
        position = _meta_int(meta, "position", path)
        try:
            model.load_state_dict(ckpt.prefixed(arrays, "param"))
            rng.bit_generator.state = meta["rng"]
            loss_sum, loss_count = float(meta["loss_sum"]), int(meta["loss_count"])
            elapsed0, last_val = float(meta["elapsed_s"]), meta.get("last_val")
        except (ValueError, TypeError, KeyError) as err:
            raise ckpt.CheckpointError(f"{path}: does not match its config ({err})") from None
        ckpt.load_optimizer(opt, arrays, _meta_int(meta, "adam_t", path))
        carried = _restore_state(arrays, model, cfg.batch)
        if position >= batches.n_chunks:
            raise ckpt.CheckpointError(f"{path}: data position {position} out of range")
        rows = _metrics_rows(os.path.join(out, METRICS), step)
        log(f"resuming {out} at step {step} of {cfg.steps}")

    def save():
        bad = [k for k, v in model.params.items() if not np.isfinite(v).all()]
        if bad:                                 # never replace a good checkpoint with this
            raise DivergedError(f"the parameter {bad[0]} became NaN or infinite at step {step}; "
                                f"{keep()}")
        meta_now = {"config": dataclasses.asdict(cfg), "vocab": vocab.chars, "step": step,
                    "position": position, "adam_t": opt.t, "rng": rng.bit_generator.state,
                    "loss_sum": loss_sum, "loss_count": loss_count,
                    "elapsed_s": elapsed0 + time.perf_counter() - start, "last_val": last_val,
                    "corpus_sha256": fingerprint(text), "corpus_chars": len(text)}
        state = {f"param/{k}": v for k, v in model.params.items()}
        state.update(ckpt.optimizer_arrays(opt))
        state.update(_state_arrays(carried))
        ckpt.save(path, state, meta_now)

    from tqdm import tqdm
    start = time.perf_counter()
    chunk_chars, busy, chars, saved = cfg.batch * cfg.seq_len, 0.0, 0, -1

    def keep() -> str:
        if os.path.exists(path):
            return (f"the last good checkpoint is kept in {out}; try a lower --lr or --clip "
                    "with --resume")
        return (f"no checkpoint was written; delete {out} and start again with a lower --lr "
                "or --clip")

    # NaN/inf is caught by the checks below, which name the step: no RuntimeWarnings on stderr
    with _stop_requests() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        os.makedirs(out, exist_ok=True)
        _write_metrics(os.path.join(out, METRICS), rows)
        bar = tqdm(total=cfg.steps, initial=step, file=sys.stderr, disable=not progress,
                   unit="step", dynamic_ncols=True, leave=True)
        try:
            while step < cfg.steps and not stop:
                if position == 0:
                    carried = None                           # a new pass over the text
                x, y = batches.get(position)
                t0 = time.perf_counter()
                try:
                    loss, new_state = model.loss_and_grads(x, y, carried)
                    norm = clip_grad_norm(model.grads, cfg.clip if cfg.clip > 0 else math.inf)
                except FloatingPointError:              # NaN/inf inside the model's forward
                    loss = norm = math.nan
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    what = "loss" if not math.isfinite(loss) else "gradient norm"
                    raise DivergedError(f"the {what} became {loss if what == 'loss' else norm} at "
                                        f"step {step + 1}; {keep()}")
                opt.step(model.params, model.grads)
                busy, chars = busy + time.perf_counter() - t0, chars + chunk_chars
                step, position, carried = step + 1, batches.next_position(position), new_state
                loss_sum, loss_count = loss_sum + loss, loss_count + 1
                val = _evaluate(model, val_ids, cfg) if step % cfg.eval_every == 0 else None
                if val is not None and not math.isfinite(val):
                    raise DivergedError(f"the validation loss became {val} after step {step}; "
                                        f"{keep()}")
                if val is not None:
                    last_val = [step, val]
                if step % cfg.log_every == 0 or val is not None:
                    row = {"step": step, "train_loss": repr(loss_sum / loss_count),
                           "val_loss": "" if val is None else repr(val),
                           "chars_per_sec": f"{chars / busy:.1f}",
                           "elapsed_s": f"{elapsed0 + time.perf_counter() - start:.2f}"}
                    rows.append(row)
                    with open(os.path.join(out, METRICS), "a", newline="", encoding="utf-8") as fh:
                        csv.DictWriter(fh, COLUMNS).writerow(row)
                    bar.set_postfix(loss=f"{loss_sum / loss_count:.3f}",
                                    chars_s=f"{chars / busy:.0f}", refresh=False)
                    loss_sum, loss_count, busy, chars = 0.0, 0, 0.0, 0
                if val is not None:
                    plot_losses(os.path.join(out, PLOT), rows)
                bar.update(1)
                if step % cfg.checkpoint_every == 0:
                    save()
                    saved = step
        finally:
            bar.close()
        if saved != step:
            save()
    result = Result(out=out, step=step, steps=cfg.steps,
                    val=tuple(last_val) if last_val else None)
    if stop and step < cfg.steps:
        result.interrupted = signal.Signals(stop[0]).name
        return result
    plot_losses(os.path.join(out, PLOT), rows)
    gen = np.random.default_rng()
    gen.bit_generator.state = rng.bit_generator.state       # a copy: the run's stream is untouched
    result.sample = sample(model, vocab, 200, temperature=1.0, rng=gen)
    return result


def initial_model(cfg: Config, vocab_size: int, rng: np.random.Generator) -> CharLM:
    """The model a run starts from, its weights seeded by the first draw of the run's generator
    ``rng`` (``np.random.default_rng(cfg.seed)`` when the run starts): the same config and
    vocabulary give the same initialisation (bptt inspect compares a run with it)."""
    return CharLM(vocab_size, cfg.cell, cfg.hidden, cfg.layers, np.dtype(cfg.dtype),
                  seed=int(rng.integers(0, 2**63)))


def load_model(path: str) -> tuple[CharLM, Vocab, dict]:
    """The model of a run folder or checkpoint file, for sampling: (model, vocab, metadata).
    Raises CheckpointError for anything wrong with the file."""
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT)
    arrays, meta = ckpt.load(path)
    try:
        cfg = Config(**meta["config"]).validate()
        vocab = Vocab(meta["vocab"])
        model = CharLM(vocab.size, cfg.cell, cfg.hidden, cfg.layers, np.dtype(cfg.dtype))
        model.load_state_dict(ckpt.prefixed(arrays, "param"))
    except (KeyError, TypeError, ValueError) as err:
        raise ckpt.CheckpointError(f"{path}: config, vocabulary and parameters do not fit "
                                   f"({err})") from None
    return model, vocab, meta
