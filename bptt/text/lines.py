"""Lines mode: a corpus of short independent samples, one per line (names, words, titles...).

Legend: T steps (the longest sample of a batch, plus one), B batch (lines), V vocabulary.

Each non-empty line, stripped of surrounding whitespace, is one sample. The end symbol is the
line break itself: no sample can contain it, so it cannot collide with any character of the text,
and the vocabulary is the lines' characters plus ``END = "\\n"``. A sample of n characters
c_1..c_n is read from the zero state with

    inputs   END  c_1  c_2 ... c_n          (n + 1 steps)
    targets  c_1  c_2  ...  c_n  END

so the model learns how samples start (after END) and when they stop (predicting END). A batch is
B samples padded to the longest one (inputs padded with END, targets with IGNORE) and run with
``lengths`` = n + 1 per row, so the recurrent layer does no work on padding and the loss ignores
it: the mean is over the predicted symbols of the batch.
"""

from collections.abc import Iterator, Sequence

import numpy as np

from ..nn.grad_mode import no_grad
from .data import CorpusError, Vocab, clean_text
from .lineset import BLAKE, MAX_LINE, POLY, LineSet, from_strings, line_hashes, read_line_files
from .lm import IGNORE, CharLM, check_sampling, draw, evaluating, next_distribution

__all__ = ["BLAKE", "END", "MAX_LINE", "POLY", "LineData", "LineSet", "count_new", "draw_lines",
           "held_out_lines", "line_hashes", "pad", "pad_rows", "read_line_files", "read_lines",
           "sample_lines", "split_index", "split_lines", "vocabulary"]

END = "\n"
EVAL_SYMBOLS = 512        # a validation batch holds at most as many symbols (lines x steps) as
#                           the largest training batch, or this many if that is fewer; the loss
#                           does not depend on it, the scratch memory does (~33 KB a symbol for
#                           the default 2 x 256 LSTM)
EVAL_LINES = 20_000       # validation reads at most this many held-out lines, the same each time


def read_lines(texts: Sequence[tuple[str, str]]) -> list[str]:
    """The samples of (file, text) pairs: every line of ``clean_text(text)`` stripped of
    surrounding whitespace, empty ones skipped (the rule of ``read_line_files``). CorpusError if
    there is none, or a line is longer than MAX_LINE."""
    out = []
    for where, text in texts:
        lines = [line.strip() for line in clean_text(text).split("\n")]
        for number, line in enumerate(lines, 1):
            if len(line) > MAX_LINE:
                raise CorpusError(f"corpus {where}: line {number} has {len(line)} characters; "
                                  f"--lines takes samples of at most {MAX_LINE} (prose? train "
                                  "without --lines)")
        out += [line for line in lines if line]
    if not out:
        raise CorpusError(f"corpus {', '.join(w for w, _ in texts)}: no non-empty line, nothing "
                          "to train on with --lines; give a file of one sample per line")
    return out


def split_index(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) sample numbers by a seeded shuffle: ``np.random.default_rng(seed)
    .permutation(n)``, the first round(n * val_fraction) (at least 1) of it held out, each part
    in that order."""
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_val < 1:
        raise CorpusError(f"the corpus has {n} line(s): too few to hold out --val-fraction "
                          f"{val_fraction} and train on the rest (needs at least 2); add lines")
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def split_lines(lines: Sequence[str], val_fraction: float,
                seed: int) -> tuple[list[str], list[str]]:
    """(train, val) lines by ``split_index``: the run's split of its samples."""
    train, val = split_index(len(lines), val_fraction, seed)
    return [lines[i] for i in train], [lines[i] for i in val]


def held_out_lines(config) -> list[str]:
    """The held-out lines of a lines-mode run with this ``Config``, as strings, in the order of
    the split (validation reads the first EVAL_LINES of them); its corpus is read again."""
    from .data import choose_files

    chosen = choose_files(config.corpus, config.out, config.include, config.builtin)
    samples = read_line_files(chosen.files)
    return samples.strings(split_index(len(samples), config.val_fraction, config.seed)[1])


def vocabulary(lines: Sequence[str]) -> Vocab:
    """The lines' characters plus END."""
    return Vocab("".join(sorted(set("".join(lines)) | {END})))


def count_new(samples: Sequence[str], hashes: np.ndarray, kind: str = POLY) -> int:
    """How many of ``samples`` are not among the lines whose ``line_hashes(.., kind)`` are
    ``hashes``."""
    mine = line_hashes(samples, kind) if samples else np.zeros(0, np.uint64)
    return int(np.sum(~np.isin(mine, hashes)))


def pad(samples: Sequence[np.ndarray], end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoded samples -> x (T, B), y (T, B), lengths (B,) as the module docstring shows:
    T = the longest sample + 1; x padded with ``end``, y with IGNORE."""
    lengths = np.array([len(s) for s in samples], dtype=np.int64)
    ids = np.concatenate([np.asarray(s, np.int64) for s in samples] + [np.zeros(0, np.int64)])
    starts = np.concatenate(([0], np.cumsum(lengths)))
    return pad_rows(ids, starts, np.arange(len(samples)), end)


def pad_rows(ids: np.ndarray, starts: np.ndarray, rows: np.ndarray,
             end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pad`` of the samples ``rows`` of ``ids`` (N,) whose offsets are ``starts`` (n + 1,),
    gathered in one indexing operation."""
    s, n = starts[rows], starts[rows + 1] - starts[rows]
    lengths = n + 1
    T, B = int(lengths.max()), len(rows)
    x = np.full((T, B), end, dtype=np.int64)
    y = np.full((T, B), IGNORE, dtype=np.int64)
    col = np.repeat(np.arange(B), n)                               # (sum n,) row of each symbol
    step = np.arange(len(col)) - np.repeat(np.cumsum(n) - n, n)    # its place in its sample
    got = ids[np.repeat(s, n) + step]
    x[step + 1, col] = got
    y[step, col] = got
    y[n, np.arange(B)] = end
    return x, y, lengths


class LineData:
    """Lines-mode data in the training loop's interface (see ``bptt.text.data.StreamData``).

    An epoch is ceil(n_train / B) batches over a fresh permutation of the training lines drawn
    from the run's generator (``shuffle``); the last batch of an epoch may be smaller. No state
    carries over between batches. Validation reads the held-out lines (at most EVAL_LINES, the
    same ones every time) sorted by length (less padding), in batches of at most as many
    symbols as the largest training batch (B x the longest sample + 1; at least EVAL_SYMBOLS),
    so that its scratch memory is no more than training's.

    ``ids`` (N,) and ``starts`` (n + 1,) hold every sample (sample i is
    ``ids[starts[i]:starts[i+1]]``), ``train`` and ``val`` the sample numbers of each part.
    """

    carries_state = False

    def __init__(self, ids: np.ndarray, starts: np.ndarray, train: np.ndarray, val: np.ndarray,
                 end: int, batch: int):
        self.ids, self.starts, self.train, self.end = ids, starts, train, end
        self.batch_size = batch
        self.n_batches = -(-len(train) // batch)
        lengths = np.diff(starts)
        val = val[:EVAL_LINES]
        self.val = val[np.argsort(lengths[val], kind="stable")]
        cap = max(EVAL_SYMBOLS, batch * (int(lengths.max()) + 1))
        self.val_cuts = _cuts(lengths[self.val] + 1, cap)

    @classmethod
    def from_strings(cls, train: Sequence[str], val: Sequence[str], vocab: Vocab,
                     batch: int) -> "LineData":
        """LineData of lists of samples (the training ones first)."""
        samples = from_strings(list(train) + list(val))
        n = len(train)
        return cls(samples.encode(vocab), samples.starts, np.arange(n),
                   np.arange(n, len(samples)), int(vocab.encode(END)[0]), batch)

    def shuffle(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(len(self.train))

    def batch(self, position: int, order: np.ndarray):
        """x (T, B), y (T, B), lengths (B,) of batch ``position`` of the epoch ``order``."""
        if not 0 <= position < self.n_batches:
            raise ValueError(f"position: expected 0 <= position < {self.n_batches}, got "
                             f"{position}")
        rows = self.train[order[position * self.batch_size: (position + 1) * self.batch_size]]
        return pad_rows(self.ids, self.starts, rows, self.end)

    def next(self, position: int) -> int:
        return (position + 1) % self.n_batches

    def validation(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for a, b in zip(self.val_cuts[:-1], self.val_cuts[1:], strict=True):
            yield pad_rows(self.ids, self.starts, self.val[a:b], self.end)


def _cuts(steps: np.ndarray, cap: int) -> list[int]:
    """Where batches of samples of ``steps`` (ascending) start, each holding at most ``cap``
    symbols (its count times its longest), at least one sample; the last entry is the end."""
    cuts, first = [0], 0
    for i, t in enumerate(steps.tolist()):
        if (i - first + 1) * t > cap and i > first:
            cuts.append(i)
            first = i
    cuts.append(len(steps))
    return cuts


def sample_lines(model: CharLM, vocab: Vocab, count: int, length: int, temperature: float = 1.0,
                 top_k: int | None = None, prime: str = "",
                 rng: np.random.Generator | None = None) -> list[str]:
    """``count`` samples, each ``prime`` followed by what the model draws until END or until
    ``length`` new characters. The samples run as one batch from the zero state: END, then the
    prime, are read first; then each step draws, with one ``rng.random()`` per unfinished
    sample in order, from ``next_distribution`` (same generator state, same samples)."""
    return draw_lines(model, vocab, count, length, temperature, top_k, prime, rng)[0]


def draw_lines(model: CharLM, vocab: Vocab, count: int, length: int, temperature: float = 1.0,
               top_k: int | None = None, prime: str = "",
               rng: np.random.Generator | None = None) -> tuple[list[str], np.ndarray]:
    """(``sample_lines``'s samples, (count,) bool: whether each ended with END, not cut at
    ``length``)."""
    check_sampling(temperature, top_k, length)
    if count < 1:
        raise ValueError(f"--count: expected an integer >= 1, got {count}")
    missing = vocab.missing(prime)
    if missing or END in prime:
        c = missing[:1] or END
        raise ValueError(f"--prime: character {c!r} (U+{ord(c):04X}) is not in the vocabulary")
    rng = np.random.default_rng() if rng is None else rng
    end = int(vocab.encode(END)[0])
    start = np.concatenate([[end], vocab.encode(prime)]).astype(np.int64)
    x = np.repeat(start[:, None], count, axis=1)                    # (T, count)
    drawn = np.full((length, count), end, dtype=np.int64)
    alive = np.ones(count, dtype=bool)
    with evaluating(model), no_grad():        # no dropout; the forward-only path
        logits, state = model.forward(x, None)                      # (T*count, V)
        logits = logits[-count:]                                    # (count, V): the last step
        for t in range(length):
            for b in np.flatnonzero(alive):
                drawn[t, b] = draw(next_distribution(logits[b], temperature, top_k),
                                   rng.random())
            alive &= drawn[t] != end
            if not alive.any() or t == length - 1:
                break
            logits, state = model.forward(drawn[t: t + 1], state)
    out = []
    for b in range(count):
        ids = drawn[:, b]
        stop = np.flatnonzero(ids == end)
        out.append(prime + vocab.decode(ids[: stop[0] if stop.size else length]))
    return out, ~alive
