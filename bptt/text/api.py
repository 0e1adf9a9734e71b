"""The character model from Python (a notebook, a script): ``train``, ``load`` and a ``Model``.

``bptt.train`` and ``bptt.load`` are these functions. They are the ``bptt train`` and
``bptt sample`` commands with keywords for flags (``--seq-len 64`` is ``seq_len=64``): the same
run folder (checkpoint.npz, best.npz, metrics.csv, loss.png), the same checks, and the same
samples for the same seed. What they add for a notebook: the metrics history returned as rows,
a progress bar from ``tqdm.auto`` (a widget in Jupyter when ipywidgets is installed, text on
stderr elsewhere), and ``Model.hidden_states``, every layer's state after every character.

Legend: T characters read, L layers, H hidden units, V vocabulary size.
"""

import dataclasses
import os
import re
import shutil
import sys
import tempfile

import numpy as np

from ..nn.grad_mode import no_grad
from . import checkpoint as ckpt
from . import lines as lines_mode
from . import probe
from . import train as training
from .config import Config, ConfigError, RunError
from .data import CorpusError
from .lm import CharLM, check_sampling, sample
from .progress import bar_class
from .record import METRICS, PLOT, read_rows
from .runlock import RunLock
from .train import never_unknown

# The files of a run that ``overwrite=True`` removes (nothing else in the folder is touched).
RUN_FILES = (training.CHECKPOINT, training.BEST, METRICS, PLOT)
OPTIONS = tuple(f.name for f in dataclasses.fields(Config) if f.name not in ("corpus", "resume"))


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: where the run is, how far it got, and its metrics history."""

    out: str                    # the run folder
    step: int                   # the step the run reached (its checkpoint's)
    steps: int                  # the steps asked for
    interrupted: str            # "SIGINT" (Ctrl-C, a notebook's interrupt) or "SIGTERM"; "" if
    #                             the run completed
    val: tuple | None           # (step, loss) of the last validation
    best: tuple | None          # (step, loss) of the best validation (its state in best.npz)
    sample: str                 # a short sample (lines mode: ten, one per line); "" if stopped
    history: list[dict]         # metrics.csv's rows: step, train_loss, val_loss (None between
    #                             validations), chars_per_sec, elapsed_s, best_step (or None)
    config: Config              # the run's settings (a resumed run: the checkpoint's, updated)

    def load(self, latest: bool = False) -> "Model":
        """The trained model: ``load(self.out, latest)``."""
        return load(self.out, latest)

    def plot(self):
        """Train and validation loss against step, the best validation starred: a matplotlib
        Figure (a notebook shows it as a cell's last expression; ``.savefig(path)`` saves it)."""
        from .figures import loss_figure

        return loss_figure(self.history)

    def __repr__(self) -> str:
        state = (f"interrupted ({self.interrupted}) at step {self.step} of {self.steps}"
                 if self.interrupted else f"{self.step} of {self.steps} steps")
        val = f", val loss {self.val[1]:.4f} at step {self.val[0]}" if self.val else ""
        best = f", best {self.best[1]:.4f} at step {self.best[0]}" if self.best else ""
        return f"<TrainResult {self.out}: {state}{val}{best}; {len(self.history)} rows>"


def train(corpus=None, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, **options) -> TrainResult:
    """Train a character model, as ``bptt train``; returns a ``TrainResult``.

    corpus: a text file or folder, or a list of them; None: the built-in corpus ``builtin=``
    names (``"tinyshakespeare"``, the default, or ``"names"``, which trains one name per line
    with its own defaults). options: the other ``bptt train`` flags as keywords, ``out``, ``cell``,
    ``hidden``, ``layers``, ``seq_len``, ``batch``, ``steps``, ``lr``, ... (``Config``'s fields).

    A folder that already holds a run (``out``, default ``runs/<corpus name>``): ``resume=True``
    continues it up to ``steps`` (the options given must match the run's, except those a resume
    may change: steps, lr, clip, the eval/log/checkpoint intervals); ``overwrite=True`` starts
    over, and deletes its run files (checkpoint.npz, best.npz, metrics.csv, loss.png) once the
    new run has started (a new run that fails its checks leaves them as they were); with
    neither, a RunError names the folder.

    Interrupting (Ctrl-C, or the notebook's stop button) ends the run after the current step
    with a checkpoint: the result's ``interrupted`` says so and ``resume=True`` continues it.
    progress: a tqdm.auto bar (False: none). Errors are those of ``bptt train`` with keywords
    for flags: ConfigError, CorpusError, CheckpointError and RunError, all ValueError or
    RuntimeError, DivergedError (a RuntimeError) if the loss becomes NaN or infinite.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"train: unexpected option {unknown[0]!r}; expected one of "
                        f"{', '.join(OPTIONS)}")
    for name, value in (("resume", resume), ("overwrite", overwrite)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected True or False, got {value!r}")
    if resume and overwrite:
        raise ValueError("resume=True continues the run, overwrite=True starts it over: "
                         "pass one of them")
    given = dict(options)
    if "out" in given:
        if not isinstance(given["out"], (str, os.PathLike)):
            raise TypeError(f"out: expected a folder path, got {given['out']!r}")
        given["out"] = os.fspath(given["out"])
    if corpus is not None:
        given["corpus"] = _paths(corpus)
    config = Config(**given, resume=resume)
    aside, failed = None, True
    try:
        aside = _check_folder(config, overwrite)
        result = training.train(config, overrides=set(given) | {"resume"},
                                progress=bar_class() if progress else False, log=_say)
        failed = False
    except (ConfigError, CorpusError, ckpt.CheckpointError, RunError,
            training.DivergedError) as err:
        raise type(err)(keywords(str(err))) from None
    finally:
        _settle(aside, config.run_dir(), failed)
    if result.interrupted:
        _say(f"{result.interrupted} at step {result.step} of {result.steps}: checkpoint saved "
             f"in {result.out}; continue with bptt.train(..., resume=True)")
    return TrainResult(result.out, result.step, result.steps, result.interrupted, result.val,
                       result.best, result.sample, history(result.out, result.step),
                       _stored_config(result.out))


def _stored_config(out: str) -> Config:
    """The config in ``out``'s checkpoint (the one the run went on with)."""
    path = os.path.join(out, training.CHECKPOINT)
    return Config(**ckpt.load(path)[1]["config"])


def _paths(corpus) -> list[str]:
    """The corpus argument as a list of path strings (TypeError for anything else)."""
    items = [corpus] if isinstance(corpus, (str, os.PathLike)) else corpus
    try:
        paths = [os.fspath(p) for p in items]
    except TypeError:
        raise TypeError(f"corpus: expected a path or a list of paths, got {corpus!r}") from None
    if not paths or not all(isinstance(p, str) for p in paths):
        raise TypeError(f"corpus: expected a path or a list of paths, got {corpus!r}")
    return paths


def _check_folder(config: Config, overwrite: bool) -> str | None:
    """A new run (not a resume) in a folder that holds one: RunError naming it, or with
    ``overwrite`` its run files moved into a hidden folder inside it, whose path is returned
    (``_settle`` removes it, or puts them back if the new run wrote nothing)."""
    if config.resume:
        return None
    out = config.run_dir()
    held = [f for f in RUN_FILES if os.path.isfile(os.path.join(out, f))]
    if not held:
        return None
    if not overwrite:
        raise RunError(f"{out} already holds a run ({', '.join(held)}); pass resume=True to "
                       "continue it, overwrite=True to start it over, or another out=")
    RunLock(out).acquire().release()    # RunLockError if a trainer is using the folder
    aside = tempfile.mkdtemp(prefix=".overwritten-", dir=out)   # a corpus folder skips it
    for f in held:
        os.replace(os.path.join(out, f), os.path.join(aside, f))
    return aside


def _settle(aside: str | None, out: str, failed: bool) -> None:
    """After a run with ``overwrite``: the old run's files are deleted, unless the new run
    failed before writing any file (a bad setting, an unusable corpus): then they go back."""
    if aside is None:
        return
    if failed and not any(os.path.exists(os.path.join(out, f)) for f in RUN_FILES):
        for f in os.listdir(aside):
            os.replace(os.path.join(aside, f), os.path.join(out, f))
    shutil.rmtree(aside, ignore_errors=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def keywords(message: str) -> str:
    """A CLI error message with keywords for flags: '--seq-len' -> 'seq_len'."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), message)


def history(out: str, upto: int) -> list[dict]:
    """The rows of ``out``/metrics.csv up to step ``upto``, as numbers (None where empty)."""
    types = {"step": int, "best_step": int}
    return [{k: (types.get(k, float)(v) if v not in ("", None) else None) for k, v in r.items()}
            for r in read_rows(os.path.join(out, METRICS), upto)]


# ------------------------------------------------------------------------------ a trained model

def load(run_dir: str, latest: bool = False) -> "Model":
    """The model of a run folder (its best.npz if there is one; with ``latest``, or if there is
    none, checkpoint.npz) or of a checkpoint file, as ``bptt sample`` reads it."""
    if latest and not os.path.isdir(run_dir):
        raise ValueError(f"latest: expected a run folder, got {run_dir!r}")
    return Model(training.load_run(os.fspath(run_dir), latest=latest))


@dataclasses.dataclass
class HiddenStates:
    """What a model's recurrent layers hold after each character of ``text``.

    h[k, t] is layer k's hidden state (its output) after reading text[t]; h[-1] is the top layer,
    the one the output head reads. c: the same for an LSTM's cell state, None for RNN and GRU.
    """

    text: str
    h: np.ndarray               # (L, T, H)
    c: np.ndarray | None        # (L, T, H), LSTM only


class Model:
    """A trained character model: ``sample`` and ``hidden_states``; ``config`` (the run's
    settings), ``vocab`` (its characters, a string), ``step`` (of the checkpoint read), ``lm``
    (the bptt.text.lm.CharLM) and ``path`` (the checkpoint file)."""

    def __init__(self, run):
        self.lm: CharLM = run.model
        self.config: Config = run.config
        self.vocab: str = run.vocab.chars
        self.step: int = int(run.meta.get("step", 0))
        self.path: str = run.path
        self._vocab, self._seen, self._meta = run.vocab, run.seen, run.meta
        self._line_hash = run.line_hash
        self._initial: CharLM | None = None

    def __repr__(self) -> str:
        c = self.config
        return (f"<Model {self.path}: {c.layers}-layer {c.cell.upper()} of {c.hidden} units, "
                f"{len(self.vocab)} symbols, step {self.step}{', lines' if c.lines else ''}>")

    def sample(self, length: int = 500, prime: str = "", temperature: float = 1.0,
               top_k: int | None = None, seed: int | None = None, count: int | None = None):
        """Generated text, as ``bptt sample`` (the same seed gives the same text as its
        ``--seed``): ``prime`` followed by ``length`` characters drawn at ``temperature`` (0:
        the likeliest each time) among the ``top_k`` likeliest (None: all). seed None: new text
        each call. A run trained with lines=True gives a list of ``count`` (default 10) samples,
        each ``prime`` and at most ``length`` characters, up to the end of its line."""
        try:
            check_sampling(temperature, top_k, length)
        except ValueError as err:
            raise ValueError(keywords(str(err))) from None
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed: expected an integer >= 0 or None, got {seed!r}")
        if not isinstance(prime, str):
            raise TypeError(f"prime: expected a string, got {type(prime).__name__}")
        self._check_text("prime", prime)
        rng = np.random.default_rng(seed)
        if not self.config.lines:
            if count is not None:
                raise ValueError(f"count: for runs trained with lines=True; {self.path} reads "
                                 "its corpus as one stream (use length)")
            with never_unknown(self.lm, self._vocab):
                return sample(self.lm, self._vocab, length, temperature, top_k, prime, rng)
        count = 10 if count is None else count
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count: expected an integer >= 1, got {count!r}")
        with never_unknown(self.lm, self._vocab):
            return lines_mode.sample_lines(self.lm, self._vocab, count, length, temperature,
                                           top_k, prime, rng)

    def new_samples(self, samples: list[str]) -> int:
        """Lines mode: how many of ``samples`` are not lines the model was trained on."""
        if not self.config.lines:
            raise ValueError(f"new_samples: for runs trained with lines=True; {self.path} is not")
        return lines_mode.count_new(samples, self._seen, self._line_hash)

    def hidden_states(self, text: str) -> HiddenStates:
        """Every layer's state after every character of ``text``, read from the zero state (a run
        trained with lines=True first reads the end-of-line symbol, as in training, so that
        ``text`` is read as the start of a line; that step is not returned). One pass per layer
        with the engine's own time loop, so h[-1] equals the layer's forward output."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        if not text:
            raise ValueError("text: expected at least one character, got ''")
        self._check_text("text", text)
        start = lines_mode.END if self.config.lines else ""
        ids = self._vocab.encode(start + text)[:, None]                    # (T, 1)
        h, c = probe.layer_states(self.lm.rnn, self.lm.inputs(ids))
        skip = len(start)
        return HiddenStates(text, h[:, skip:, 0], None if c is None else c[:, skip:, 0])

    # -------------------------------------------------------- what bptt inspect measures
    # A lines-mode model reads each line of ``text`` as training does: the end symbol, then the
    # line, from a zero state, predicting the line and then the end symbol.

    def gradient_flow(self, text: str) -> probe.GradientFlow:
        """Norms of dL/dh_t (and the LSTM's dL/dc_t) of every layer for the loss at the last
        symbol of ``text`` given the ones before it, by steps back, trained and at
        initialisation (``probe.GradientFlow``: ``.trained["h"]`` (L, T), ``.decay()``,
        ``.plot()``). A lines-mode model: the longest line of ``text``, its loss at the end
        symbol. On float64 copies of the model, so that tiny gradients do not underflow."""
        ids, end = self._ids("text", text, 2)
        piece = max(probe.line_pieces(ids, end), key=len)      # the longest line (or the text)
        flows = [probe.gradient_flow(probe.in_float64(m), piece) for m in (self.lm, self._init())]
        horizon = len(piece) - 1 if self.config.lines else self.config.seq_len
        return probe.GradientFlow(self._vocab.decode(piece[:-1]), *flows, horizon)

    def gates(self, text: str, initial: bool = False) -> probe.Gates:
        """Every σ gate (an RNN: its tanh output) per layer, step and unit while reading
        ``text`` (``probe.Gates``: ``.values[name]`` (L, T, H), ``.saturation()``); ``initial``:
        the model at its initialisation."""
        tr, read = self._trace(text, initial)
        return probe.Gates(read, tr.gates, self.config.cell)

    def units(self, text: str, units=None, n: int = probe.N_UNITS) -> probe.Units:
        """Every layer's hidden state over ``text`` and ``n`` units to look at, picked by
        ``probe.pick_units`` (or ``units``, a list of (layer, unit)); ``.plot()`` draws them."""
        tr, read = self._trace(text, False)
        L, _, H = tr.h.shape
        if units is None:
            chosen = probe.pick_units(tr.h, read, n)
        else:
            chosen = [(int(k), int(u), "chosen") for k, u in units]
            bad = [(k, u) for k, u, _ in chosen if not (-L <= k < L and 0 <= u < H)]
            if bad:
                raise ValueError(f"units: expected (layer, unit) in 0..{L - 1}, 0..{H - 1}, "
                                 f"got {bad[0]}")
        return probe.Units(read, tr.h, chosen)

    def expectations(self, text: str, top_k: int = probe.TOP_K,
                     initial: bool = False) -> probe.Expectations:
        """Per position of ``text`` after the first (a lines model: every symbol of each line
        and its end), the probability the model gave the symbol that came (``.actual``), its
        ``top_k`` candidates (``.top_chars``), and the mean cross-entropy (``.loss``, nats)."""
        ids, end = self._ids("text", text, 2)
        model = self._init() if initial else self.lm
        with no_grad():
            e = probe.expectations(model, ids, end, top_k)
        pieces = probe.line_pieces(ids, end)
        e.read = "".join(self._vocab.decode(p[:-1]) for p in pieces)
        e.targets = "".join(self._vocab.decode(p[1:]) for p in pieces)
        e.top_chars = [self._vocab.decode(row) for row in e.top]
        return e

    def _trace(self, text: str, initial: bool) -> tuple:
        ids, end = self._ids("text", text, 1)
        if end is None:
            ids = np.append(ids, ids[-1])                   # a target nobody reads: all of text
        model = self._init() if initial else self.lm
        with no_grad():
            tr = probe.trace(model, ids, end)
        read = "".join(self._vocab.decode(p[:-1]) for p in probe.line_pieces(ids, end))
        return tr, read

    def _ids(self, name: str, text: str, least: int) -> tuple:
        """(ids, end): ``text`` encoded as the model reads it (lines: END l1 END l2 ... END, with
        ``end`` the end symbol's id; else the text and None)."""
        if not isinstance(text, str):
            raise TypeError(f"{name}: expected a string, got {type(text).__name__}")
        if not self.config.lines:
            if len(text) < least:
                raise ValueError(f"{name}: expected at least {least} characters, got {text!r}")
            self._check_text(name, text)
            return self._vocab.encode(text), None
        lines = [s for s in text.split(lines_mode.END) if s]
        if not lines:
            raise ValueError(f"{name}: expected at least one non-empty line, got {text!r}")
        self._check_text(name, "".join(lines))
        end = lines_mode.END
        return self._vocab.encode(end + end.join(lines) + end), int(self._vocab.encode(end)[0])

    def _init(self) -> CharLM:
        """The run's model at its initialisation (same config and seed as ``bptt train``)."""
        if self._initial is None:
            rng = np.random.default_rng(self.config.seed)
            self._initial = training.initial_model(self.config, self._vocab.size, rng).eval()
        return self._initial

    def _check_text(self, name: str, text: str) -> None:
        bad = self._vocab.missing(text) or (lines_mode.END if self.config.lines
                                            and lines_mode.END in text else "")
        if bad:
            chars = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in bad[:5])
            raise ValueError(f"{name}: not in the model's vocabulary: {chars}")
