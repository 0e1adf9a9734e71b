"""A corpus of lines held as two arrays, never as one Python object per line.

Legend: N symbols of all lines together, n lines.

``LineSet.points`` (N,) holds the code points of every sample (a line of the files after
``bptt.text.data.clean_text``, stripped of surrounding whitespace, empty ones skipped), one after
the other; ``starts`` (n + 1,) says where each begins: line i is ``points[starts[i]:starts[i+1]]``.
Reading, stripping, the novelty hashes and the encoding into ids are whole-array operations, so
a list of a million names costs a few arrays, not a million strings.
"""

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np

from .data import CorpusError, Vocab, _code_points, clean_text, id_dtype, not_utf8
from .files import read_bytes

MAX_LINE = 256            # longest sample (characters) lines mode accepts; longer: an error
# whitespace as str.strip() sees it (every code point c with chr(c).isspace(); the largest U+3000)
SPACE = np.array([chr(c).isspace() for c in range(0x3001)])


@dataclasses.dataclass
class LineSet:
    """The samples of a line corpus (see the module docstring) and what reading them found."""

    points: np.ndarray     # (N,) code points, uint8 when every sample is ASCII, else uint32
    starts: np.ndarray     # (n + 1,) int64 offsets into points
    read: int = 0          # lines in the files
    sha256: str = ""       # SHA-256 of the files' bytes, joined (a run's corpus fingerprint)
    n_bytes: int = 0
    n_chars: int = 0       # characters of the files' text (after ``clean_text``)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def lengths(self) -> np.ndarray:
        """(n,) characters of each sample."""
        return np.diff(self.starts)

    def strings(self, rows: Sequence[int] | np.ndarray | None = None) -> list[str]:
        """The samples ``rows`` (default all) as strings."""
        rows = range(len(self)) if rows is None else rows
        wide = self.points.astype("<u4", copy=False)
        return [wide[self.starts[i]: self.starts[i + 1]].tobytes().decode("utf-32-le")
                for i in rows]

    def counts(self) -> dict[str, int]:
        """How often each character occurs in the samples."""
        counts = np.bincount(self.points)
        return {chr(c): int(counts[c]) for c in np.flatnonzero(counts)}

    def encode(self, vocab: Vocab) -> np.ndarray:
        """(N,) ids in ``vocab`` (``id_dtype``); characters outside it are the vocabulary's
        unknown symbol (ValueError naming one if it has none)."""
        return vocab.encode_points(self.points, id_dtype(vocab.size))

    def hashes(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(len(rows),) uint64 ``poly_hashes`` of the samples ``rows`` (default all)."""
        h = poly_hashes(self.points, self.starts)
        return h if rows is None else h[rows]


def from_strings(samples: Sequence[str]) -> LineSet:
    """A LineSet of the given samples as they are (no stripping)."""
    lengths = np.fromiter(map(len, samples), np.int64, len(samples))
    starts = np.zeros(len(samples) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    return LineSet(_code_points("".join(samples)), starts, len(samples))


def read_line_files(files: Sequence[str]) -> LineSet:
    """The samples of ``files`` (see the module docstring). CorpusError naming the file (and
    line) if one is not UTF-8, a line is longer than MAX_LINE, or no line is non-empty."""
    sha, parts, n_bytes, n_chars, read = hashlib.sha256(), [], 0, 0, 0
    for f in files:
        raw = read_bytes(f)
        sha.update(raw)
        n_bytes += len(raw)
        if raw.isascii():
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in raw else raw
            points = np.frombuffer(raw, np.uint8)
        else:
            try:
                points = _code_points(clean_text(raw.decode("utf-8")))
            except UnicodeDecodeError as err:
                raise not_utf8(f, raw[err.start], err.start) from None
        del raw
        n_chars += len(points)
        kept, lengths, lines = _samples(points, f)
        parts.append((kept, lengths))
        read += lines
    if not any(len(p[1]) for p in parts):
        raise CorpusError(f"corpus {', '.join(files)}: no non-empty line, nothing to train on "
                          "with --lines; give a file of one sample per line")
    wide = any(p[0].dtype != np.uint8 for p in parts)
    points = np.concatenate([p[0] for p in parts]).astype(np.uint32 if wide else np.uint8,
                                                          copy=False)
    lengths = np.concatenate([p[1] for p in parts])
    starts = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    return LineSet(points, starts, read, sha.hexdigest(), n_bytes, n_chars)


def _samples(points: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(the code points of the samples of one file's text, their lengths, lines in the file):
    each line stripped of surrounding whitespace, the empty ones skipped."""
    breaks = np.flatnonzero(points == 10)
    s = np.concatenate(([0], breaks + 1))                   # (lines,) first character
    e = np.concatenate((breaks, [len(points)]))             # (lines,) one past the last
    n_lines = len(s) - int(len(points) == 0 or points[-1] == 10)  # a final break ends a line
    for side in (0, 1):                                     # strip: start, then end
        active = np.flatnonzero(s < e)
        while active.size:
            at = s[active] if side == 0 else e[active] - 1
            c = points[at].astype(np.int64)
            space = (c < len(SPACE)) & SPACE[np.minimum(c, len(SPACE) - 1)]
            active = active[space]
            if side == 0:
                s[active] += 1
            else:
                e[active] -= 1
            active = active[s[active] < e[active]]
    n = e - s
    long = np.flatnonzero(n > MAX_LINE)
    if long.size:
        i = int(long[0])
        raise CorpusError(f"corpus {where}: line {i + 1} has {n[i]} characters; --lines takes "
                          f"samples of at most {MAX_LINE} (prose? train without --lines)")
    keep = n > 0
    mark = np.zeros(len(points) + 1, np.int8)               # +1 at a sample's start, -1 after
    mark[s[keep]], mark[e[keep]] = 1, -1
    inside = np.cumsum(mark[:-1], dtype=np.int8).view(bool)
    return points[inside], n[keep], n_lines


# ------------------------------------------------------------------------------ novelty hashes

POLY = "poly64"           # the hash of runs since issue 23 (checkpoint metadata "line_hash")
BLAKE = "blake2b"         # the hash of earlier runs (no "line_hash" in their metadata)
_K = np.uint64(0x100000001B3)                       # multiplier (FNV's 64-bit prime)
_BLOCK = 1 << 20                                    # code points hashed at a time


def poly_hashes(points: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(n,) uint64: per sample, sum of (c_j + 1) * K^(n-1-j) over its code points mod 2**64,
    mixed with its length and finalized by splitmix64. Whole-array work, in blocks of samples of
    about _BLOCK code points (bounded scratch)."""
    n = len(starts) - 1
    out = np.empty(n, np.uint64)
    lengths = np.diff(starts)
    longest = int(lengths.max()) if n else 0
    powers = np.ones(longest + 1, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(1, longest + 1):
            powers[j] = powers[j - 1] * _K
    i = 0
    while i < n:
        j = int(np.searchsorted(starts, starts[i] + _BLOCK, side="right")) - 1
        j = min(max(j, i + 1), n)
        s, e = starts[i: j + 1] - starts[i], lengths[i:j]
        block = points[starts[i]: starts[j]].astype(np.uint64)
        # exponent of each position: characters after it in its sample
        after = np.repeat(s[1:] - 1, e) - np.arange(len(block), dtype=np.int64)
        block += np.uint64(1)
        block *= powers[after]
        h = np.zeros(j - i, np.uint64)
        full = e > 0
        if full.any():
            h[full] = np.add.reduceat(block, s[:-1][full])
        out[i:j] = h
        i = j
    with np.errstate(over="ignore"):
        out ^= lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        out ^= out >> np.uint64(30)
        out *= np.uint64(0xBF58476D1CE4E5B9)
        out ^= out >> np.uint64(27)
        out *= np.uint64(0x94D049BB133111EB)
        out ^= out >> np.uint64(31)
    return out


def line_hashes(lines: Sequence[str], kind: str = POLY) -> np.ndarray:
    """(n,) uint64, sorted: the hash ``kind`` (POLY, or BLAKE: an 8-byte BLAKE2b digest of the
    UTF-8 bytes, as runs before issue 23 stored) of each of ``lines``."""
    if kind == POLY:
        return np.sort(poly_hashes(*_as_arrays(lines)))
    h = [int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")
         for s in lines]
    return np.sort(np.array(h, dtype=np.uint64))


def _as_arrays(lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    ls = from_strings(lines)
    return ls.points, ls.starts

