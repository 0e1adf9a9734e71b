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

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np

from .data import CorpusError, Vocab
from .lm import IGNORE, CharLM, check_sampling, draw, evaluating, next_distribution

END = "\n"
MAX_LINE = 256            # longest sample (characters) lines mode accepts; longer: an error
EVAL_BATCH = 256          # lines per validation batch (the result does not depend on it)
EVAL_LINES = 20_000       # validation reads at most this many held-out lines, the same each time


def read_lines(texts: Sequence[tuple[str, str]]) -> list[str]:
    """The samples of (file, text) pairs: every line stripped of surrounding whitespace, empty
    ones skipped. CorpusError if there is none, or a line is longer than MAX_LINE."""
    lines = []
    for where, text in texts:
        for number, line in enumerate(text.split("\n"), 1):
            line = line.strip()
            if len(line) > MAX_LINE:
                raise CorpusError(f"corpus {where}: line {number} has {len(line)} characters; "
                                  f"--lines takes samples of at most {MAX_LINE} (prose? train "
                                  "without --lines)")
            if line:
                lines.append(line)
    if not lines:
        raise CorpusError(f"corpus {', '.join(w for w, _ in texts)}: no non-empty line, nothing "
                          "to train on with --lines")
    return lines


def split_lines(lines: Sequence[str], val_fraction: float,
                seed: int) -> tuple[list[str], list[str]]:
    """(train, val) by a seeded shuffle: ``np.random.default_rng(seed).permutation(n)``, the
    first round(n * val_fraction) (at least 1) of it held out, each part in that order."""
    n = len(lines)
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_val < 1:
        raise CorpusError(f"the corpus has {n} line(s): too few to hold out --val-fraction "
                          f"{val_fraction} and train on the rest (needs at least 2)")
    order = np.random.default_rng(seed).permutation(n)
    return [lines[i] for i in order[n_val:]], [lines[i] for i in order[:n_val]]


def vocabulary(lines: Sequence[str]) -> Vocab:
    """The lines' characters plus END."""
    return Vocab("".join(sorted(set("".join(lines)) | {END})))


def line_hashes(lines: Sequence[str]) -> np.ndarray:
    """(n,) uint64, sorted: an 8-byte BLAKE2b digest of each line's UTF-8 bytes (stored in the
    checkpoint so that ``bptt sample`` can count new samples without the corpus)."""
    h = [int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")
         for s in lines]
    return np.sort(np.array(h, dtype=np.uint64))


def count_new(samples: Sequence[str], hashes: np.ndarray) -> int:
    """How many of ``samples`` are not among the lines whose ``line_hashes`` are ``hashes``."""
    mine = line_hashes(samples) if samples else np.zeros(0, np.uint64)
    return int(np.sum(~np.isin(mine, hashes)))


def pad(samples: Sequence[np.ndarray], end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoded samples -> x (T, B), y (T, B), lengths (B,) as the module docstring shows:
    T = the longest sample + 1; x padded with ``end``, y with IGNORE."""
    lengths = np.array([len(s) + 1 for s in samples], dtype=np.int64)
    T, B = int(lengths.max()), len(samples)
    x = np.full((T, B), end, dtype=np.int64)
    y = np.full((T, B), IGNORE, dtype=np.int64)
    for b, s in enumerate(samples):
        x[1: len(s) + 1, b] = s
        y[: len(s), b] = s
        y[len(s), b] = end
    return x, y, lengths


class LineData:
    """Lines-mode data in the training loop's interface (see ``bptt.text.data.StreamData``).

    An epoch is ceil(n_train / B) batches over a fresh permutation of the training lines drawn
    from the run's generator (``shuffle``); the last batch of an epoch may be smaller. No state
    carries over between batches. Validation reads the held-out lines (at most EVAL_LINES, the
    same ones every time), EVAL_BATCH at a time.
    """

    carries_state = False

    def __init__(self, train: Sequence[str], val: Sequence[str], vocab: Vocab, batch: int):
        self.end = int(vocab.encode(END)[0])
        self.train = [vocab.encode(s) for s in train]
        # the first EVAL_LINES of the held-out lines (a seeded random sample of the corpus)
        self.val = sorted((vocab.encode(s) for s in val[:EVAL_LINES]), key=len)  # less padding
        self.batch_size = batch
        self.n_batches = -(-len(self.train) // batch)

    def shuffle(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(len(self.train))

    def batch(self, position: int, order: np.ndarray):
        """x (T, B), y (T, B), lengths (B,) of batch ``position`` of the epoch ``order``."""
        if not 0 <= position < self.n_batches:
            raise ValueError(f"position: expected 0 <= position < {self.n_batches}, got "
                             f"{position}")
        rows = order[position * self.batch_size: (position + 1) * self.batch_size]
        return pad([self.train[i] for i in rows], self.end)

    def next(self, position: int) -> int:
        return (position + 1) % self.n_batches

    def validation(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for i in range(0, len(self.val), EVAL_BATCH):
            yield pad(self.val[i: i + EVAL_BATCH], self.end)


def sample_lines(model: CharLM, vocab: Vocab, count: int, length: int, temperature: float = 1.0,
                 top_k: int | None = None, prime: str = "",
                 rng: np.random.Generator | None = None) -> list[str]:
    """``count`` samples, each ``prime`` followed by what the model draws until END or until
    ``length`` new characters. The samples run as one batch from the zero state: END, then the
    prime, are read first; then each step draws, with one ``rng.random()`` per unfinished
    sample in order, from ``next_distribution`` (same generator state, same samples)."""
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
    with evaluating(model):                                         # no dropout
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
    return out
