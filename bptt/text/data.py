"""Corpus, vocabulary and char-rnn style batches with a resumable position.

Legend: T steps (seq_len), B batch (parallel streams), N characters.

The text is cut into B equal streams, one per batch row; step k of an epoch reads columns
[k*T, (k+1)*T) of every stream, so row b of one chunk continues row b of the previous one and the
hidden state can be carried over (truncated BPTT). The position is a plain int, the index of the
next chunk; after the last chunk it wraps to 0, where the carried state is reset.
"""

import codecs
import hashlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from .files import (
    BOM,
    BUILTIN,
    BUILTINS,
    Chosen,
    Cleaner,
    CorpusError,
    builtin_path,
    choose_files,
    clean_text,
    convert_hint,
    corpus_name,
    describe_files,
    is_text,
    list_files,
    not_utf8,
    read_corpus,
    read_files,
    read_texts,
    skipped_lines,
    text_kind,
)

# the corpus files' names (bptt.text.files) are found here too, as before they had a module
__all__ = ["BOM", "BUILTIN", "BUILTINS", "CHUNK", "Batches", "Chosen", "Cleaner", "Corpus",
           "CorpusError", "StreamData", "UNKNOWN", "Vocab", "builtin_path", "choose_files",
           "clean_text", "convert_hint", "corpus_name", "describe_files", "eval_chunks",
           "fingerprint", "id_dtype", "is_text", "list_files", "not_utf8", "read_corpus",
           "read_files", "read_texts", "skipped_lines", "split", "text_kind"]


CHUNK = 1 << 22          # bytes of a corpus read, decoded and encoded at a time
UNICODE = 0x110000       # code points


class Corpus:
    """A stream-mode corpus read in bounded chunks, never held whole as text.

    ``scan`` (in the constructor) reads every file once: their SHA-256 (the ``fingerprint`` of
    the joined text), character count and which characters occur; ``encode(vocab)`` reads them
    again into one array of ids in the smallest unsigned integer type that fits the vocabulary
    (one byte for up to 256 characters). Peak memory: the ids plus a few CHUNK-sized buffers.
    """

    def __init__(self, paths: Sequence[str], skip: str | None = None, builtin: str = "",
                 files: Sequence[str] | None = None,
                 progress: Callable[[str, int], None] | None = None):
        """``files``: the files to read, as ``choose_files`` lists them (else from ``paths``,
        ``skip`` and ``builtin`` as in ``read_texts``). ``progress(what, bytes)``, if given, is
        called after each chunk read ("read") and encoded ("encoded") with the bytes so far."""
        if files is None:
            files = list_files(paths, skip) if paths else [builtin_path(builtin or BUILTIN)]
        self.files, self.progress = list(files), progress or (lambda what, done: None)
        sha, counts = hashlib.sha256(), np.zeros(UNICODE, np.int64)
        self.n_chars = self.n_bytes = 0
        for raw, points in self._chunks():
            sha.update(raw)
            counts += np.bincount(points, minlength=UNICODE)
            self.n_chars += len(points)
            self.n_bytes += len(raw)
            self.progress("read", self.n_bytes)
        if not self.n_chars:
            raise CorpusError(f"corpus {', '.join(self.files)}: empty")
        self.sha256 = sha.hexdigest()
        seen = np.flatnonzero(counts)
        self.chars = "".join(map(chr, seen))   # sorted by code point
        self.counts = dict(zip(self.chars, counts[seen].tolist(), strict=True))

    def _chunks(self) -> Iterator[tuple[bytes, np.ndarray]]:
        """(raw bytes, the code points of their text after ``clean_text``) of every file,
        CHUNK bytes at a time."""
        for f in self.files:
            decoder, clean, offset = codecs.getincrementaldecoder("utf-8")(), Cleaner(), 0
            try:
                with open(f, "rb") as fh:
                    while True:
                        raw = fh.read(CHUNK)
                        pending = len(decoder.getstate()[0])
                        try:
                            if not pending and raw.isascii():
                                points = np.frombuffer(clean(raw, not raw), np.uint8)
                            else:
                                text = clean(decoder.decode(raw, final=not raw), not raw)
                                points = _code_points(text)
                        except UnicodeDecodeError as err:
                            raise not_utf8(f, err.object[err.start],
                                           offset - pending + err.start) from None
                        if len(raw) or len(points):     # the last: a CR held back
                            yield raw, points
                        if not raw:
                            break
                        offset += len(raw)
            except OSError as err:
                raise CorpusError(f"corpus {f}: cannot read ({err.strerror or err})") from None

    def encode(self, vocab: "Vocab") -> np.ndarray:
        """(N,) ids of the whole corpus, dtype ``id_dtype(vocab.size)``; characters outside
        ``vocab`` are its unknown symbol. ValueError naming one if it has none."""
        missing = set(self.chars) - set(vocab.chars)
        if missing and not vocab.unknown:
            c = min(missing)
            raise ValueError(f"text: character {c!r} (U+{ord(c):04X}) is not in the vocabulary")
        dtype = id_dtype(vocab.size)
        top = ord(max(self.chars)) + 1
        lut = vocab.encode_points(np.arange(top, dtype=np.uint32), dtype) if vocab.unknown \
            else np.zeros(top, dtype)
        if not vocab.unknown:
            lut[vocab._points[vocab._points < top]] = np.flatnonzero(vocab._points < top)
        ids, at, done = np.empty(self.n_chars, dtype), 0, 0
        for raw, points in self._chunks():
            np.take(lut, points, out=ids[at: at + len(points)])
            at, done = at + len(points), done + len(raw)
            self.progress("encoded", done)
        if at != self.n_chars:
            raise CorpusError(f"corpus {', '.join(self.files)}: changed while it was read")
        return ids


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids 0 .. vocab_size - 1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"vocab_size: expected at most 2**32, got {vocab_size}")


def fingerprint(text: str) -> str:
    """SHA-256 of the text's UTF-8 bytes (stored in a checkpoint to notice a changed corpus)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


UNKNOWN = "\ufffd"      # the symbol rare characters are folded into (--min-count)


class Vocab:
    """The characters of a text, sorted by code point; ids are positions in that order.

    ``unknown``: "" or UNKNOWN (one of ``chars``), the symbol that every character outside the
    vocabulary is read as (a run trained with --min-count folds its rare characters into it).
    """

    def __init__(self, chars: str, unknown: str = ""):
        if not isinstance(chars, str):
            raise TypeError(f"chars: expected a str, got {type(chars).__name__}")
        if len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise ValueError("chars: expected distinct characters sorted by code point")
        if not chars:
            raise ValueError("chars: expected at least one character")
        if unknown not in ("", UNKNOWN) or unknown not in chars:
            raise ValueError(f"unknown: expected '' or {UNKNOWN!r} in chars, got {unknown!r}")
        self.chars, self.unknown = chars, unknown
        self._points = _code_points(chars)

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls("".join(sorted(set(text))))

    @classmethod
    def from_counts(cls, counts: dict[str, int], min_count: int = 0,
                    keep: str = "") -> "Vocab":
        """The characters of ``counts`` (character -> occurrences) seen at least ``min_count``
        times, and the characters of ``keep``; the others folded into UNKNOWN (added only if
        there is one to fold)."""
        chars = {c for c, n in counts.items() if n >= min_count} | set(keep)
        fold = len(chars) < len(counts.keys() | set(keep))
        return cls("".join(sorted(chars | {UNKNOWN} if fold else chars)),
                   UNKNOWN if fold else "")

    @property
    def size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def missing(self, text: str) -> str:
        """The distinct characters of ``text`` not in the vocabulary, in order of appearance
        ("" when it has an unknown symbol: they read as that)."""
        if self.unknown:
            return ""
        known = set(self.chars)
        return "".join(dict.fromkeys(c for c in text if c not in known))

    def encode(self, text: str) -> np.ndarray:
        """(N,) int64 ids. ValueError naming the first character not in the vocabulary (none
        with an unknown symbol)."""
        return self.encode_points(_code_points(text), np.int64)

    def encode_points(self, points: np.ndarray, dtype=np.int64) -> np.ndarray:
        """(N,) ids of code points (any unsigned integer array), as ``encode``: by binary search
        for a short text, by one lookup table (no int64 copy of the text) for a long one."""
        unk = self.chars.index(self.unknown) if self.unknown else -1
        if len(points) < 1 << 16:
            ids = np.searchsorted(self._points, points)
            ok = ids < len(self._points)
            ok[ok] = self._points[ids[ok]] == points[ok]
            if not ok.all() and unk < 0:
                self._refuse(points[np.argmin(ok)])
            ids[~ok] = unk
            return ids.astype(dtype)
        top = int(points.max()) + 1
        lut = np.full(top, unk, np.int64)
        inside = self._points < top
        lut[self._points[inside]] = np.flatnonzero(inside)
        if unk < 0 and (lut[np.bincount(points, minlength=top) > 0] < 0).any():
            self._refuse(points[np.argmax(lut[points] < 0)])
        return lut.astype(dtype)[points]

    @staticmethod
    def _refuse(point) -> None:
        c = chr(point)
        raise ValueError(f"text: character {c!r} (U+{ord(c):04X}) is not in the vocabulary")

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in np.asarray(ids).reshape(-1))


def split(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): val is the last ``val_fraction`` of the text (at least one character)."""
    n_val = max(1, int(round(len(ids) * val_fraction)))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


class Batches:
    """Chunks (x, y) of shape (T, B) over B parallel streams; y is x shifted by one character.

    ``n_chunks`` chunks make an epoch; ``get(position)`` returns chunk ``position`` (0-based) and
    ``next_position`` the one after it, wrapping to 0.
    """

    def __init__(self, ids: np.ndarray, batch: int, seq_len: int, what: str = "training text"):
        stream = (len(ids) - 1) // batch                  # characters per stream (inputs)
        if stream < seq_len:
            raise CorpusError(f"{what} has {len(ids)} characters, too few for --batch {batch} "
                              f"streams of --seq-len {seq_len} (needs at least "
                              f"{batch * seq_len + 1}); use a smaller --batch or --seq-len")
        self.batch, self.seq_len = batch, seq_len
        self.n_chunks = stream // seq_len
        ids = np.ascontiguousarray(ids)
        # (stream + 1, B) view, no copy: column b is stream b, ids[b * stream + j] at row j
        self._streams = np.lib.stride_tricks.as_strided(
            ids, shape=(stream + 1, batch), strides=(ids.itemsize, stream * ids.itemsize),
            writeable=False)

    def get(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ``position``: x (T, B) inputs and y (T, B) targets, int64."""
        if not 0 <= position < self.n_chunks:
            raise ValueError(f"position: expected 0 <= position < {self.n_chunks}, got {position}")
        t0 = position * self.seq_len
        return (self._streams[t0: t0 + self.seq_len].astype(np.int64),
                self._streams[t0 + 1: t0 + self.seq_len + 1].astype(np.int64))

    def next_position(self, position: int) -> int:
        return (position + 1) % self.n_chunks


def eval_chunks(ids: np.ndarray, batch: int,
                seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All of ``ids`` as (x, y) chunks over ``batch`` streams (fewer if the text is short), each
    (T, B) with T <= seq_len (the last chunk may be shorter); state carries from chunk to chunk.
    Raises CorpusError at once (not when iterated) if there are fewer than 2 characters."""
    if len(ids) < 2:
        raise CorpusError(f"the validation text has {len(ids)} character(s), needs at least 2; "
                          "raise --val-fraction")
    batch = max(1, min(batch, len(ids) - 1))
    stream = (len(ids) - 1) // batch
    starts = np.arange(batch)[:, None] * stream                    # (B, 1)
    spans = (np.arange(t0, min(t0 + seq_len, stream))[None, :] for t0 in range(0, stream, seq_len))
    return ((ids[starts + cols].T.astype(np.int64), ids[starts + cols + 1].T.astype(np.int64))
            for cols in spans)


class StreamData:
    """The stream mode's data, in the interface the training loop reads (``LineData`` is the
    other implementation):

    - ``batch(position, order) -> x, y, lengths``: inputs and targets (T, B) of batch
      ``position`` of the epoch; ``lengths`` (B,) or None when every row has all T steps;
    - ``next(position)``: the position after it, 0 when the epoch is over;
    - ``shuffle(rng)``: the order of a new epoch (None here: streams are read in order);
    - ``validation()``: the held-out data as (x, y, lengths) batches;
    - ``carries_state``: whether a batch starts from the state the previous one ended with.

    Here a batch is the next ``seq_len`` characters of each of ``batch`` streams, and the state
    carries over from batch to batch, in training and in validation.
    """

    carries_state = True

    def __init__(self, train_ids: np.ndarray, val_ids: np.ndarray, batch: int, seq_len: int,
                 eval_chars: int = 0):
        self.batches = Batches(train_ids, batch, seq_len)
        self.n_batches = self.batches.n_chunks
        self.val = val_ids[: eval_chars + 1] if eval_chars else val_ids
        self.batch_size, self.seq_len = batch, seq_len
        eval_chunks(self.val, batch, seq_len)          # raises if the held-out text is unusable

    def shuffle(self, rng: np.random.Generator) -> None:
        return None

    def batch(self, position: int, order=None) -> tuple[np.ndarray, np.ndarray, None]:
        x, y = self.batches.get(position)
        return x, y, None

    def next(self, position: int) -> int:
        return self.batches.next_position(position)

    def validation(self) -> Iterator[tuple[np.ndarray, np.ndarray, None]]:
        return ((x, y, None) for x, y in eval_chunks(self.val, self.batch_size, self.seq_len))
