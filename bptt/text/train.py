"""Training loop of the character model: setup, the loop, checkpoints, signals.

A run folder holds ``checkpoint.npz`` (bptt.text.checkpoint), ``metrics.csv`` and ``loss.png``
(bptt.text.record). Two objects carry a run: its changing state, one ``RunState``
(bptt.text.state) that the checkpoint saves and restores whole, and its data, one object with the
interface of ``bptt.text.data.StreamData`` (read by bptt.text.rundata). One step reads batch
``position`` of the epoch, runs forward and backward (from the carried state when the data
carries state over: truncated BPTT), clips the global gradient norm and takes an Adam (with
--weight-decay, AdamW) step at the rate the schedule gives for the step (``Config.schedule``).
Nothing depends on ``steps`` except where the loop stops, so a run resumed from step k goes on
exactly as if it had never stopped; the model is in training mode (dropout) for the steps and in
evaluation mode for validation and sampling.
"""

import dataclasses
import math
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import numpy as np

from ..nn.grad_mode import no_grad
from ..nn.layers import GATES
from ..nn.optim import Adam, AdamW, clip_grad_norm_
from . import checkpoint as ckpt
from . import lines
from .config import RESUMABLE, Config, ConfigError, DivergedError, RunError, flag, with_preset
from .data import Vocab
from .lm import CharLM, evaluating, sample
from .record import METRICS, PLOT, Meter, Record
from .rundata import load_data
from .runlock import RunLock
from .state import RunState

CHECKPOINT, BEST = "checkpoint.npz", "best.npz"
__all__ = ["Config", "ConfigError", "DivergedError", "Result", "RunError", "load_model", "train"]


@dataclasses.dataclass
class Result:
    """What ``train`` returns to its caller (the CLI prints it)."""

    out: str
    step: int
    steps: int
    interrupted: str = ""      # name of the signal that stopped the run, else ""
    val: tuple | None = None   # (step, loss) of the last validation
    best: tuple | None = None  # (step, loss) of the best validation, saved in best.npz
    sample: str = ""           # a short sample (lines mode: ten), drawn when the run completes


def train(config: Config, overrides: Iterable[str] | None = None,
          progress: bool | Callable = True, log: Callable[[str], None] | None = None) -> Result:
    """Train (or with ``config.resume``, continue) the run in ``config.run_dir()``.

    On a resume the checkpoint's config is used; the fields named in ``overrides`` (None: all of
    RESUMABLE) come from ``config``, and naming a field outside RESUMABLE with another value is a
    ConfigError. Everything is checked before any file is written. SIGINT/SIGTERM end the run
    after the current step with a checkpoint (``Result.interrupted`` names the signal).
    ``progress``: a tqdm bar on stderr, none (False), or one of the tqdm-like class given (called
    with tqdm's keywords; bptt.text.api passes tqdm.auto's, a notebook bar in Jupyter).
    Raises ConfigError, RunError, CorpusError, CheckpointError, DivergedError; OSError with one
    line (the path, the checkpoint kept, how to continue) when the run folder cannot be written.
    """
    cfg, arrays, meta, lock = _resolve(config, overrides)
    try:
        with blas_threads(cfg.threads):
            return _run(cfg, arrays, meta, lock, progress, log)
    except OSError as err:                # a full disk, a read-only or vanished run folder
        raise OSError(_write_failed(err, cfg.out)) from None
    except KeyboardInterrupt:             # a second signal: stopped at once
        raise KeyboardInterrupt(_stopped_at_once(cfg.out)) from None
    finally:
        lock.release()


def _stopped_at_once(out: str) -> str:
    """What a second Ctrl-C leaves: the last complete checkpoint (the one being written, if any,
    is discarded whole) and how to go on."""
    path = os.path.join(out, CHECKPOINT)
    if not os.path.exists(path):
        return (f"stopped at once by a second signal, before the first checkpoint: delete {out} "
                "and start again")
    try:
        step = f" (step {ckpt.load(path)[1]['step']})"
    except (ckpt.CheckpointError, KeyError):
        step = ""
    return (f"stopped at once by a second signal; the last checkpoint {path}{step} is kept: "
            f"continue with: bptt train --out {shlex.quote(out)} --resume")


def _write_failed(err: OSError, out: str) -> str:
    """One line for a failed write in the run folder ``out``: the path, the reason, what is kept
    and how to go on (checkpoint.write_atomic has removed its temporary file)."""
    name = err.filename if isinstance(err.filename, str) else out
    base = os.path.basename(name)
    if base.startswith(".") and base.endswith(".tmp") and len(base) > 13:
        # write_atomic's temporary file "." + target + 8 random characters + ".tmp"
        name = os.path.join(os.path.dirname(name), base[1:-12])
    what = err.strerror or str(err)
    q = shlex.quote(out)
    path = os.path.join(out, CHECKPOINT)
    if os.path.exists(path):
        kept = (f"the last complete checkpoint {path} is intact; free some space or make {out} "
                f"writable, then continue with: bptt train --out {q} --resume")
    else:
        kept = (f"no checkpoint was written; free some space or make {out} writable, then start "
                "again")
    return f"cannot write {name} ({what}); {kept}"


def _run(cfg: Config, arrays: dict, meta: dict, lock: RunLock, progress: bool | Callable,
         log: Callable[[str], None] | None) -> Result:
    """The body of ``train``; ``lock``: the run folder's, held from before its first write."""
    out, path = cfg.out, os.path.join(cfg.out, CHECKPOINT)
    data, vocab, fixed_arrays, fixed, notes = load_data(cfg, meta, path, log)
    run = _start(cfg, vocab, data, arrays, meta, path)
    for line in notes if log else ():             # once the run is sure to start
        log(line)
    if meta and log:
        log(f"resuming {out} at step {run.step} of {cfg.steps}")

    def save(name=CHECKPOINT):
        _check_parameters(run, path)
        arrays, state = run.to_checkpoint()
        try:
            ckpt.save(os.path.join(out, name), {**fixed_arrays, **arrays}, {**fixed, **state})
        except OSError as err:                    # name the file (a full disk names none)
            raise OSError(err.errno, err.strerror, os.path.join(out, name)) from None

    from tqdm import tqdm
    meter, saved, schedule = Meter(), -1, cfg.schedule()
    # NaN/inf is caught by the checks below, which name the step: no RuntimeWarnings on stderr
    with _stop_requests() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        lock.hold()                               # creates the folder; one trainer per folder
        if _stamp(out) != lock.seen:
            raise RunError(f"{out} changed while this run was starting (another trainer?); "
                           "start it again")
        record = Record(out, run.step)
        bar = (progress if callable(progress) else tqdm)(
            total=cfg.steps, initial=run.step, file=sys.stderr, disable=not progress,
            unit="step", dynamic_ncols=True, leave=True)
        try:
            while run.step < cfg.steps and not stop:
                if run.position == 0:             # a new epoch: its order, state from zeros
                    run.order, run.carried = data.shuffle(run.rng), None
                x, y, lengths = data.batch(run.position, run.order)
                t0 = time.perf_counter()
                run.opt.lr = schedule(run.step)   # the rate of this step: a function of the step
                loss, state = _step(run, x, y, lengths, cfg.clip, path)
                meter.add(time.perf_counter() - t0, _targets(y, lengths))
                run.advance(loss, data.next(run.position), state if data.carries_state else None)
                on_eval, on_log = run.step % cfg.eval_every == 0, run.step % cfg.log_every == 0
                last = run.step == cfg.steps              # every run validates at its end
                val = _validate(run, data, path) if on_eval or last else None
                if on_log or val is not None:
                    _add_row(record, bar, run, val, meter, restart=on_eval or on_log)
                if val is not None:
                    record.plot()
                    if run.best[0] == run.step:           # the lowest validation loss so far
                        save(BEST)
                bar.update(1)
                if run.step % cfg.checkpoint_every == 0:
                    save()
                    saved = run.step
        finally:
            bar.close()
        if saved != run.step:
            save()
    result = Result(out=out, step=run.step, steps=cfg.steps,
                    val=tuple(run.last_val) if run.last_val else None,
                    best=tuple(run.best) if run.best else None)
    if stop and run.step < cfg.steps:
        result.interrupted = signal.Signals(stop[0]).name
        return result
    record.plot()
    result.sample = _sample(run, vocab, cfg.lines)
    return result


# ------------------------------------------------------------------------------ the phases

def _step(run: RunState, x, y, lengths, clip: float, path: str) -> tuple[float, object]:
    """Forward, backward, gradient clipping and an Adam step on one batch; returns (loss, the
    final state). DivergedError, before the update, if the loss or gradient is NaN/inf."""
    try:
        loss, state = run.model.loss_and_grads(x, y, run.carried, lengths)
        norm = clip_grad_norm_(run.model.parameters(), clip if clip > 0 else math.inf)
    except FloatingPointError:                  # NaN/inf inside the model's forward
        loss = norm = math.nan
    if not (math.isfinite(loss) and math.isfinite(norm)):
        what = "loss" if not math.isfinite(loss) else "gradient norm"
        raise DivergedError(f"the {what} became {loss if what == 'loss' else norm} at step "
                            f"{run.step + 1}; {_kept(path)}")
    run.opt.step()
    return loss, state


def _targets(y: np.ndarray, lengths) -> int:
    """How many targets of a batch are predicted (padding excluded)."""
    return y.size if lengths is None else int(np.sum(lengths))


def evaluate(model: CharLM, data) -> float:
    """Mean loss per predicted symbol over all of ``data.validation()``; NaN if the model's
    output is not finite. Nothing is recorded (``no_grad()``): the recurrent layer runs its
    forward-only path (``bptt.nn.inference``; with lengths, lines mode, its packed path) and
    the loss is computed without the softmax a backward would need. The batches, the state
    carried between them and so the number are those of a recorded evaluation (to float
    rounding: tests/test_validation.py)."""
    total, count, state = 0.0, 0, None
    with evaluating(model), no_grad():          # no dropout, no caches
        for x, y, lengths in data.validation():
            try:
                loss, state = model.loss(x, y, state if data.carries_state else None, lengths)
            except FloatingPointError:          # diverged parameters; the caller stops the run
                return math.nan
            n = _targets(y, lengths)
            total, count = total + loss * n, count + n
    return total / count


def _validate(run: RunState, data, path: str) -> float:
    val = evaluate(run.model, data)
    if not math.isfinite(val):
        raise DivergedError(f"the validation loss became {val} after step {run.step}; "
                            f"{_kept(path)}")
    run.last_val = [run.step, val]
    if run.best is None or val < run.best[1]:
        run.best = [run.step, val]
    return val


def _add_row(record: Record, bar, run: RunState, val: float | None, meter: Meter,
             restart: bool) -> None:
    """A metrics.csv row and the progress bar's numbers; with ``restart``, a new averaging window
    (not for the row of a validation at the end off the --eval-every and --log-every schedules,
    so that a run resumed from there goes on as one that never stopped)."""
    record.add({"step": run.step, "train_loss": repr(run.train_loss()),
                "val_loss": "" if val is None else repr(val),
                "chars_per_sec": f"{meter.rate():.1f}", "elapsed_s": f"{run.elapsed():.2f}",
                "best_step": run.best[0] if run.best else "", "lr": repr(run.opt.lr)})
    best = {"best": f"{run.best[1]:.3f}@{run.best[0]}"} if run.best else {}
    bar.set_postfix(loss=f"{run.train_loss():.3f}", chars_s=f"{meter.rate():.0f}", **best,
                    refresh=False)
    if restart:
        run.loss_sum, run.loss_count = 0.0, 0
        meter.reset()


def _sample(run: RunState, vocab: Vocab, in_lines: bool) -> str:
    """200 characters (lines mode: ten samples, one per line) from the model, drawn with a copy
    of the run's generator (the run's own stream is untouched)."""
    gen = np.random.default_rng()
    gen.bit_generator.state = run.rng.bit_generator.state
    with never_unknown(run.model, vocab):
        if in_lines:
            return "\n".join(lines.sample_lines(run.model, vocab, 10, lines.MAX_LINE, rng=gen))
        return sample(run.model, vocab, 200, temperature=1.0, rng=gen)


@contextmanager
def never_unknown(model: CharLM, vocab: Vocab):
    """Within the block the model never predicts the vocabulary's unknown symbol (its output
    bias is -1e30, a probability of exactly 0 at any temperature); then the bias as it was."""
    if not vocab.unknown:
        yield model
        return
    bias = model.head.params["bias"]
    i = vocab.chars.index(vocab.unknown)
    was = bias[i].copy()
    bias[i] = -1e30
    try:
        yield model
    finally:
        bias[i] = was


@contextmanager
def blas_threads(n: int):
    """Within the block the BLAS library uses ``n`` threads (0: its default)."""
    if not n:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _check_parameters(run: RunState, path: str) -> None:
    """DivergedError if a parameter is NaN/inf: never replace a good checkpoint with it."""
    bad = [k for k, v in run.model.params.items() if not np.isfinite(v).all()]
    if bad:
        raise DivergedError(f"the parameter {bad[0]} became NaN or infinite at step {run.step}; "
                            f"{_kept(path)}")


def _kept(path: str) -> str:
    out = os.path.dirname(path)
    if os.path.exists(path):
        return (f"the last good checkpoint is kept in {out}; try a lower --lr or --clip "
                "with --resume")
    return (f"no checkpoint was written; delete {out} and start again with a lower --lr "
            "or --clip")


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

def _resolve(config: Config, overrides: Iterable[str] | None) -> tuple[Config, dict, dict,
                                                                        RunLock]:
    """The effective config, for a resume the checkpoint's (arrays, meta), and the run folder's
    lock, taken before anything in the folder is looked at (released by the caller; by this
    function if it raises)."""
    config = with_preset(config, config.given() if overrides is None else set(overrides))
    config.validate()
    out = config.run_dir()
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunError(f"--out {out}: exists and is not a folder")
    lock = RunLock(out).acquire()
    lock.seen = _stamp(out)                    # compared again when the lock is held
    try:
        return (*_resolve_locked(config, overrides), lock)
    except BaseException:
        lock.release()
        raise


def _stamp(out: str) -> list:
    """(name, size, mtime) of the run files in ``out``: what a trainer starting there read."""
    found = []
    for name in (CHECKPOINT, BEST, METRICS, PLOT):
        try:
            st = os.stat(os.path.join(out, name))
        except OSError:
            continue
        found.append((name, st.st_size, st.st_mtime_ns))
    return found


def _resolve_locked(config: Config, overrides: Iterable[str] | None) -> tuple[Config, dict,
                                                                               dict]:
    out = config.run_dir()
    path = os.path.join(out, CHECKPOINT)
    if not config.resume:
        held = [f for f in (CHECKPOINT, BEST, METRICS, PLOT)
                if os.path.exists(os.path.join(out, f))]
        if held:
            raise RunError(f"{out} already holds a run ({', '.join(held)}); continue it with "
                           "--resume or choose another --out")
        return dataclasses.replace(config, out=out, corpus=_absolute(config.corpus)), {}, {}
    if not os.path.exists(path):
        raise RunError(f"nothing to resume: {path} does not exist")
    arrays, meta = ckpt.load(path)
    try:
        # runs from before these options: no folding, the BLAS library's threads
        stored = Config(**{"min_count": 0, "threads": 0, **meta["config"]}).validate()
    except (KeyError, TypeError, ConfigError) as err:
        raise ckpt.CheckpointError(f"{path}: bad config in checkpoint ({err})") from None
    given = set(RESUMABLE if overrides is None else overrides)
    changes = {}
    for f in dataclasses.fields(Config):
        mine, theirs = getattr(config, f.name), getattr(stored, f.name)
        if f.name in given and mine != theirs:
            if f.name not in RESUMABLE:
                raise ConfigError(f"{flag(f.name)} {_shown(mine)} differs from the run's "
                                  f"{_shown(theirs)}; drop "
                                  "it to resume, or start a new run in another --out")
            changes[f.name] = mine
    changes.update(out=out, resume=True, corpus=_absolute(changes.get("corpus") or stored.corpus))
    cfg = dataclasses.replace(stored, **changes).validate()
    if cfg.lines and "eval_chars" in changes:
        with_preset(cfg, {"eval_chars"})        # the error: not used with --lines
    step = meta.get("step")
    if isinstance(step, int) and step >= cfg.steps:   # said before the corpus is read
        raise ConfigError(f"--steps: the run in {out} is already at step {step}; pass "
                          f"--steps larger than {step} to continue it")
    return cfg, arrays, meta


def _shown(value) -> str:
    """A config value as the command line writes it (a list as its items)."""
    if isinstance(value, list):
        return " ".join(shlex.quote(str(v)) for v in value) if value else "(none)"
    return str(value)


def _absolute(paths: list) -> list:
    return [os.path.abspath(p) for p in paths]


def _start(cfg: Config, vocab: Vocab, data, arrays: dict, meta: dict, path: str) -> RunState:
    """A fresh run's state, or (``meta`` given) the checkpoint's."""
    if meta:
        check_sizes(cfg, vocab.size, arrays, path)  # before building anything of that size
    rng = np.random.default_rng(cfg.seed)
    model = initial_model(cfg, vocab.size, rng)
    opt = (AdamW(model.params, lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.weight_decay > 0
           else Adam(model.params, lr=cfg.lr))
    if not meta:
        return RunState(model, opt, rng)
    run = RunState.from_checkpoint(arrays, meta, model, opt, rng, cfg.batch, path)
    if run.step >= cfg.steps:
        raise ConfigError(f"--steps: the run in {cfg.out} is already at step {run.step}; pass "
                          f"--steps larger than {run.step} to continue it")
    if run.position >= data.n_batches:
        raise ckpt.CheckpointError(f"{path}: data position {run.position} out of range")
    return run


def initial_model(cfg: Config, vocab_size: int, rng: np.random.Generator) -> CharLM:
    """The model a run starts from, its weights seeded by the first draw of the run's generator
    ``rng`` (``np.random.default_rng(cfg.seed)`` when the run starts): the same config and
    vocabulary give the same initialisation (bptt inspect compares a run with it)."""
    return CharLM(vocab_size, cfg.cell, cfg.hidden, cfg.layers, np.dtype(cfg.dtype),
                  seed=int(rng.integers(0, 2**63)), **_model_options(cfg))


def _model_options(cfg: Config) -> dict:
    return {"embed": cfg.embed, "dropout": cfg.dropout,
            "recurrent_dropout": cfg.recurrent_dropout}


def check_sizes(cfg: Config, vocab_size: int, arrays: dict, where: str) -> None:
    """CheckpointError unless the stored parameters have the sizes that the config (--cell,
    --hidden, --layers, --embed) and vocabulary imply: checked on the arrays' shapes before the
    model is built, so that a config claiming, say, --hidden 30000 never allocates a model of
    that size (the arrays themselves are bounded by the file's size, see checkpoint.load)."""
    params = ckpt.prefixed(arrays, "param")
    gates, h = GATES[cfg.cell.upper()], cfg.hidden
    claims = f"its config (--cell {cfg.cell} --hidden {h} --layers {cfg.layers} --embed " \
             f"{cfg.embed}, {vocab_size} characters)"

    def expect(name, shape):
        got = params.get(name)
        if got is None or got.shape != shape:
            held = "none" if got is None else f"shape {got.shape}"
            raise ckpt.CheckpointError(f"{where}: {claims} implies param/{name} of shape "
                                       f"{shape}; the checkpoint holds {held}")

    expect("head.weight", (vocab_size, h))
    if cfg.embed:
        expect("embed.weight", (vocab_size, cfg.embed))
    expect("rnn.weight_ih_l0", (gates * h, cfg.embed or vocab_size))
    for k in range(cfg.layers):              # stops at the first layer the file does not hold
        expect(f"rnn.weight_hh_l{k}", (gates * h, h))
    if f"rnn.weight_hh_l{cfg.layers}" in params:
        raise ckpt.CheckpointError(f"{where}: {claims} has {cfg.layers} layers; the checkpoint "
                                   "holds more")


@dataclasses.dataclass
class Loaded:
    """A trained run read back for sampling (``load_run``)."""

    model: CharLM
    vocab: Vocab
    config: Config
    meta: dict                 # the checkpoint's metadata (step, last_val, best, ...)
    path: str                  # the checkpoint file read
    seen: np.ndarray | None    # lines mode: the training lines' hashes (bptt.text.lines)
    line_hash: str = lines.BLAKE   # the hash function of ``seen`` (lines.count_new's kind)


def load_run(path: str, latest: bool = False) -> Loaded:
    """The run in a folder (its best.npz if there is one, else, or with ``latest``, its
    checkpoint.npz) or in a checkpoint file. Raises CheckpointError for anything wrong."""
    if os.path.isdir(path):
        best = os.path.join(path, BEST)
        path = best if os.path.exists(best) and not latest else os.path.join(path, CHECKPOINT)
    arrays, meta = ckpt.load(path)
    try:
        cfg = Config(**{"min_count": 0, "threads": 0, **meta["config"]}).validate()
        vocab = Vocab(meta["vocab"], meta.get("unknown", ""))
        check_sizes(cfg, vocab.size, arrays, path)
        model = CharLM(vocab.size, cfg.cell, cfg.hidden, cfg.layers, np.dtype(cfg.dtype),
                       **_model_options(cfg)).eval()          # for sampling: no dropout
        model.load_state_dict(ckpt.prefixed(arrays, "param"))
    except (KeyError, TypeError, ValueError) as err:
        raise ckpt.CheckpointError(f"{path}: config, vocabulary and parameters do not fit "
                                   f"({err})") from None
    seen = arrays.get("lines/train_hashes")
    if cfg.lines and (seen is None or seen.ndim != 1 or seen.dtype != np.uint64):
        raise ckpt.CheckpointError(f"{path}: lines/train_hashes: expected a 1-d uint64 array, "
                                   f"got {None if seen is None else (seen.dtype, seen.shape)}")
    kind = meta.get("line_hash", lines.BLAKE)
    if kind not in (lines.BLAKE, lines.POLY):
        raise ckpt.CheckpointError(f"{path}: unknown line_hash {kind!r}")
    return Loaded(model, vocab, cfg, meta, path, seen, kind)


def load_model(path: str, latest: bool = False) -> tuple[CharLM, Vocab, dict]:
    """(model, vocab, metadata) of ``load_run(path, latest)``."""
    run = load_run(path, latest)
    return run.model, run.vocab, run.meta
