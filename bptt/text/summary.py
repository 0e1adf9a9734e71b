"""The line a run prints about its corpus when it starts or resumes, and the progress of a load
that takes a while.

    corpus: 1 file, 18,010,108 bytes; 1,000,000 lines (0 empty skipped), 100,000 held out;
        line length p50 17, p90 28, p99 30, max 30; 37 symbols
    corpus: 668 files, 11,274,102 bytes, 11,272,684 characters (1,127,268 held out); 105
        symbols (120 rare ones, 202 occurrences, folded into U+FFFD)
"""

import time
from collections.abc import Callable

import numpy as np

from .data import Vocab

SLOW = 2.0                # seconds of loading after which each phase is reported


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def symbols(vocab: Vocab, counts: dict[str, int]) -> str:
    """'V symbols', and how many rare characters of ``counts`` were folded, if any."""
    out = _plural(vocab.size, "symbol")
    if vocab.unknown:
        rare = [n for c, n in counts.items() if c not in vocab.chars or c == vocab.unknown]
        out += (f" ({_plural(len(rare), 'rare one')}, {_plural(sum(rare), 'occurrence')}, "
                f"folded into U+{ord(vocab.unknown):04X})")
    return out


def stream_summary(n_files: int, n_bytes: int, n_chars: int, n_val: int, vocab: Vocab,
                   counts: dict[str, int]) -> str:
    return (f"corpus: {_plural(n_files, 'file')}, {n_bytes:,} bytes, "
            f"{_plural(n_chars, 'character')} ({n_val:,} held out); {symbols(vocab, counts)}")


def lines_summary(n_files: int, n_bytes: int, read: int, lengths: np.ndarray, n_val: int,
                  vocab: Vocab, counts: dict[str, int]) -> str:
    p50, p90, p99 = (int(v) for v in np.percentile(lengths, [50, 90, 99]))
    return (f"corpus: {_plural(n_files, 'file')}, {n_bytes:,} bytes; {_plural(read, 'line')} "
            f"({read - len(lengths):,} empty skipped), {n_val:,} held out; line length p50 {p50}, "
            f"p90 {p90}, p99 {p99}, max {int(lengths.max())}; {symbols(vocab, counts)}")


class Loading:
    """Says what a load is doing once it has taken more than SLOW seconds: a line at the end of
    each phase, and within a long phase a line every SLOW seconds (``tick``)."""

    def __init__(self, log: Callable[[str], None] | None, total: int = 0):
        self.log, self.total = log, total          # total: bytes of the corpus
        self.t0 = self.last = time.perf_counter()

    def phase(self, what: str) -> None:
        now = time.perf_counter()
        if self.log and now - self.t0 > SLOW:
            self.log(f"loading: {what} ({now - self.t0:.1f} s)")
            self.last = now

    def tick(self, what: str, done: int) -> None:
        """``done`` bytes of the corpus ``what`` ("read", "encoded") so far."""
        now = time.perf_counter()
        if self.log and now - self.t0 > SLOW and now - self.last > SLOW:
            share = f"{done / self.total:.0%} of " if self.total else ""
            self.log(f"loading: {what} {share}{self.total or done:,} bytes "
                     f"({now - self.t0:.1f} s)")
            self.last = now
