"""``bptt inspect``: what a character model does with a passage, measured from its own forward and
backward passes. This module chooses the passage (a stream run's held-out text; a lines run's
held-out lines, each read as training reads it) and the fresh cells of ``--cells``; the
measurements are ``bptt.text.probe``'s (re-exported here), called through the loaded model's
own methods (``Model.gradient_flow``, ``gates``, ``units``, ``expectations``);
``inspect_report`` writes the explanations and ``inspect_page`` the page.

Legend: T steps (characters read), L layers, H hidden units, V vocabulary size.

A passage of N characters is read as inputs x = passage[:-1] and targets y = passage[1:]
(T = N - 1), from a zero state, batch of one.

- ``gradient_flow``: the norm of dL/dh_t (and dL/dc_t for an LSTM) of every layer, for the loss
  at the last position only, from one engine backward with ``keep_state_grads=True`` (a ``dout``
  that is non-zero only at the last step). Indexed by distance back in time: entry s is step
  T-1-s. A report computes it on a float64 copy of the model (``in_float64``): in float32 a
  gradient that vanishes underflows to 0 (or float32's subnormal floor, 1e-45) within a few
  hundred steps.
- ``trace``: every layer's state after every step, from the engine run one character at a time
  (the final state of a one-step forward is each layer's h_t, c_t), and the gate activations,
  recomputed with the cells' own equations from those states (all steps as one batch).
- ``saturation``: per layer, gate and unit, the fraction of the steps with the gate < 0.1 (left)
  and > 0.9 (right); for an RNN the tanh output near -1 and 1 (< -0.9, > 0.9).
- ``expectations``: the probability the model gave each actual next character, and its top 5.
- ``pick_units``: units to show over the text (rule in its docstring).
"""

import os

import numpy as np

from ..nn.layers import GRU, LSTM, RNN
from ..text.data import CorpusError, Vocab, fingerprint, read_texts, split
from ..text.data import clean_text as clean  # the one rule: BOM dropped, CRLF and CR as LF
from ..text.lines import read_lines, split_lines
from ..text.probe import (  # noqa: F401 (the measurements, re-exported for the report)
    GATE_NAMES,
    HIGH,
    KEEP_GATE,
    LOW,
    N_UNITS,
    TANH_EDGE,
    Expectations,
    Trace,
    correlations,
    decay,
    expectations,
    features,
    flow_norms,
    gate_activations,
    gradient_flow,
    in_float64,
    last_loss_state_grads,
    layer_input,
    line_pieces,
    pick_units,
    saturation,
    trace,
)
from ..text.train import Config, initial_model

MAX_CHARS = 2000       # longest passage a report reads (the page shows every character)
DEFAULT_CHARS = 400    # characters of the validation text read by default


class InspectError(ValueError):
    """A passage or option that cannot be used (the message names it)."""


# ------------------------------------------------------------------------------ the passage

def passage_ids(text: str, vocab: Vocab, what: str) -> np.ndarray:
    """(N,) ids of a passage; InspectError if it has fewer than 2 characters or characters outside
    the vocabulary (up to five of them named). Longer than MAX_CHARS is the caller's to cut."""
    if len(text) < 2:
        raise InspectError(f"{what}: expected at least 2 characters (one to read, one to "
                           f"predict), got {len(text)}")
    check_chars(text, vocab, what)
    return vocab.encode(text)


def _corpus(meta: dict) -> list[tuple[str, str]]:
    """The run's corpus read again, (file, text) pairs; InspectError if it cannot be read or
    changed since the run was trained (its fingerprint is in the checkpoint)."""
    cfg = Config(**meta["config"])
    try:
        texts = read_texts(cfg.corpus, skip=cfg.out, builtin=cfg.builtin, include=cfg.include)
    except CorpusError as err:
        raise InspectError(f"the run's corpus cannot be read ({err}); pass --text or --file"
                           ) from None
    if meta.get("corpus_sha256") not in (None, fingerprint("".join(t for _, t in texts))):
        raise InspectError("the run's corpus changed since it was trained; pass --text or --file")
    return texts


def validation_text(meta: dict, length: int) -> str:
    """The first ``length`` characters of the run's held-out text (its corpus read again and
    split as ``bptt train`` split it), cleaned as training reads it (``clean``)."""
    cfg = Config(**meta["config"])
    text = "".join(clean(t) for _, t in _corpus(meta))              # as training reads it
    start = split(np.arange(len(text)), cfg.val_fraction)[1][0]    # where the held-out part starts
    return text[start : start + length]


def initial_of(meta: dict, vocab: Vocab):
    """The run's model at its initialisation: same config, same seed, as ``bptt train`` drew it."""
    cfg = Config(**meta["config"])
    return initial_model(cfg, vocab.size, np.random.default_rng(cfg.seed)).eval()


def run_lines(meta: dict) -> tuple[list[str], list[str]]:
    """A lines run's (training lines, held-out lines), split as ``bptt train`` split them."""
    cfg = Config(**meta["config"])
    texts = [(where, clean(text)) for where, text in _corpus(meta)]
    try:
        return split_lines(read_lines(texts), cfg.val_fraction, cfg.seed)
    except CorpusError as err:
        raise InspectError(f"the run's corpus: {err}") from None


def held_out_lines(val: list[str], length: int) -> list[str]:
    """The first held-out lines (in the split's order) whose symbols, each line with its end
    symbol, add up to at most ``length`` (at least one line)."""
    chosen, n = [], 0
    for line in val:
        if chosen and n + len(line) + 1 > length:
            break
        chosen.append(line)
        n += len(line) + 1
    return chosen


def as_lines(text: str) -> list[str]:
    """A --text or --file for a lines run: its lines as training reads them (cleaned, each
    stripped, empty ones skipped)."""
    return [s.strip() for s in clean(text).split("\n") if s.strip()]


def check_chars(text: str, vocab: Vocab, what: str) -> None:
    """InspectError naming up to five characters of ``text`` outside the vocabulary."""
    missing = vocab.missing(text)
    if missing:
        chars = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InspectError(f"{what}: not in the run's vocabulary: {chars}{more}")


def parse_units(spec: str, L: int, H: int) -> list[tuple[int, int]]:
    """``--units`` "LAYER:UNIT,..." (or "UNIT" for the top layer), layers and units from 0."""
    units = []
    for part in spec.split(","):
        part = part.strip()
        try:
            k, u = part.split(":") if ":" in part else (L - 1, part)
            k, u = int(k), int(u)
        except ValueError:
            raise InspectError(f"--units: expected LAYER:UNIT or UNIT, comma-separated, got "
                               f"{part!r}") from None
        if not (0 <= k < L and 0 <= u < H):
            raise InspectError(f"--units: {part!r} out of range: layers 0..{L - 1}, units "
                               f"0..{H - 1}")
        units.append((k, u))
    return units


# ------------------------------------------------------------------------------ fresh cells

def fresh_cells(hidden: int, steps: int, seed: int, layers: int = 1,
                scale: float = 1.0) -> dict[str, dict]:
    """The gradient flow of freshly initialised RNN, GRU and LSTM layers (``hidden`` units,
    torch's initialisation from ``seed``, input size = hidden; the recurrent weights W_hh
    multiplied by ``scale``) on one random sequence of ``steps`` steps (standard normal inputs,
    the same for all three), for the loss L = w . h_T with w a random unit vector. Returns
    kind -> ``flow_norms``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((steps, 1, hidden))
    w = rng.standard_normal(hidden)
    w /= np.linalg.norm(w)
    result = {}
    for cls in (RNN, GRU, LSTM):
        layer = cls(hidden, hidden, num_layers=layers, dtype=np.float64, seed=seed)
        for k in range(layers):
            layer.params[f"weight_hh_l{k}"][...] *= scale
        result[cls.kind] = flow_norms(last_loss_state_grads(layer, X, w))
    return result


def cut(text: str, what: str, log) -> str:
    """``text`` cut to MAX_CHARS characters, saying so through ``log``."""
    if len(text) > MAX_CHARS:
        log(f"{what}: {len(text)} characters; the report reads the first {MAX_CHARS} (its limit)")
        return text[:MAX_CHARS]
    return text


def read_file(path: str) -> str:
    """The UTF-8 text of --file; InspectError naming the problem."""
    if not os.path.isfile(path):
        raise InspectError(f"--file {path}: no such file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        return raw.decode("utf-8")
    except OSError as err:
        raise InspectError(f"--file {path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise InspectError(f"--file {path}: not UTF-8 text (offset {err.start})") from None
