"""Corpus, vocabulary and char-rnn style batches with a resumable position.

Legend: T steps (seq_len), B batch (parallel streams), N characters.

The text is cut into B equal streams, one per batch row; step k of an epoch reads columns
[k*T, (k+1)*T) of every stream, so row b of one chunk continues row b of the previous one and the
hidden state can be carried over (truncated BPTT). The position is a plain int, the index of the
next chunk; after the last chunk it wraps to 0, where the carried state is reset.
"""

import codecs
import fnmatch
import hashlib
import os
from collections.abc import Iterator, Sequence
from importlib import resources

import numpy as np

BUILTIN = "tinyshakespeare"       # the corpus used when none is named
# The corpora shipped inside the package (bptt/corpus/<name>.txt), picked by name with --builtin.
BUILTINS = {
    "tinyshakespeare": "Tiny Shakespeare: 1,115,394 characters of plays (public domain)",
    "names": "5,163 first names, one per line (US Census 1990, public domain); implies --lines",
}


class CorpusError(ValueError):
    """A corpus that cannot be used: missing, empty, not UTF-8, or too small for the settings."""


def builtin_path(name: str = BUILTIN) -> str:
    """Path of a corpus shipped inside the package (a key of BUILTINS)."""
    if name not in BUILTINS:
        raise CorpusError(f"--builtin: expected one of {', '.join(BUILTINS)}, got {name!r}")
    return str(resources.files("bptt") / "corpus" / f"{name}.txt")


def corpus_name(paths: Sequence[str], builtin: str = "") -> str:
    """A short name for a run folder: the built-in corpus's name, or the first path's file name
    without extension (``tinyshakespeare`` when there is neither). ``.`` and ``..`` are named
    after the folder they stand for (else the run would go to ``runs/.``, or ``runs/..``)."""
    if builtin or not paths:
        return builtin or BUILTIN
    base = os.path.basename(os.path.abspath(paths[0]))
    return os.path.splitext(base)[0] or "corpus"


def list_files(paths: Sequence[str], skip: str | None = None) -> list[str]:
    """The files named by ``paths`` (see ``choose_files``), without the non-text ones of folders."""
    return choose_files(paths, skip)[0]


def choose_files(paths: Sequence[str], skip: str | None = None, include: Sequence[str] = (),
                 builtin: str = "") -> tuple[list[str], list[str]]:
    """(files, skipped): the files named by ``paths``, in the order given. A folder stands for
    every file below it (recursively, sorted by path, names starting with '.' skipped, and the
    folder ``skip`` too: a run folder inside the corpus folder is not part of the corpus); with
    ``include`` (glob patterns), only those whose path inside the folder matches one of them
    (``*`` matches ``/`` too: ``*.py`` is every Python file). Files of a folder that are not
    text (``is_text``) go to ``skipped``; a file named itself is always read (and must be UTF-8).
    No paths: the built-in corpus ``builtin`` (default BUILTIN)."""
    if not paths:
        return [builtin_path(builtin or BUILTIN)], []
    skip = os.path.realpath(skip) if skip else None
    files, skipped = [], []
    for path in paths:
        if os.path.isfile(path):
            files.append(path)
        elif os.path.isdir(path):
            found = []
            for root, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")
                           and os.path.realpath(os.path.join(root, d)) != skip]
                found += [os.path.join(root, n) for n in names if not n.startswith(".")]
            if include:
                found = [f for f in found if any(
                    fnmatch.fnmatchcase(os.path.relpath(f, path).replace(os.sep, "/"), glob)
                    for glob in include)]
            if not found:
                what = f" matching --include {' '.join(include)}" if include else ""
                raise CorpusError(f"corpus folder {path} holds no files{what}")
            for f in sorted(found):
                (files if is_text(f) else skipped).append(f)
        else:
            raise CorpusError(f"corpus {path}: no such file or folder")
    if not files:
        raise CorpusError(f"corpus {', '.join(paths)}: no text files (skipped {len(skipped)} "
                          f"that are not UTF-8 text: {', '.join(skipped[:3])})")
    return files, skipped


def is_text(path: str) -> bool:
    """Whether a file is UTF-8 text: no NUL byte in its first block and valid UTF-8 throughout
    (read CHUNK bytes at a time). An unreadable file counts as text (reading it says why)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8192)
            if b"\0" in raw:
                return False
            while raw:
                decoder.decode(raw)
                raw = fh.read(CHUNK)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    except OSError:
        return True
    return True


def describe_files(files: Sequence[str], skipped: Sequence[str]) -> list[str]:
    """The lines a run prints about its corpus files: how many and how many bytes, and (if any)
    how many files of its folders were skipped as not text, with a few of their names."""
    size = sum(os.path.getsize(f) for f in files)
    out = [f"corpus: {len(files)} file{'s' * (len(files) != 1)}, {size:,} bytes"]
    if skipped:
        names = ", ".join(os.path.basename(f) for f in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        out.append(f"skipped {len(skipped)} file{'s' * (len(skipped) != 1)} that are not UTF-8 "
                   f"text: {names}{more}")
    return out


def read_texts(paths: Sequence[str], skip: str | None = None, builtin: str = "",
               include: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(file, text) of every file named by ``paths`` (see ``choose_files``; ``skip``: a folder
    left out; ``include``: globs of folder files), decoded as UTF-8; no paths: the built-in
    corpus ``builtin`` (default BUILTIN).
    Raises CorpusError naming the problem, also when all of them are empty."""
    return read_files(choose_files(paths, skip, include, builtin)[0])


def read_files(files: Sequence[str]) -> list[tuple[str, str]]:
    """(file, text) of each of ``files``, decoded as UTF-8 (see ``read_texts``)."""
    texts = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                raw = fh.read()
        except OSError as err:
            raise CorpusError(f"corpus {f}: cannot read ({err.strerror or err})") from None
        try:
            texts.append((f, raw.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise CorpusError(f"corpus {f}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                              f"{err.start})") from None
    if not any(text for _, text in texts):
        raise CorpusError(f"corpus {', '.join(files)}: empty")
    return texts


def read_corpus(paths: Sequence[str], skip: str | None = None, builtin: str = "",
                include: Sequence[str] = ()) -> str:
    """The text of all files named by ``paths`` joined as they are (see ``read_texts``)."""
    return "".join(text for _, text in read_texts(paths, skip, builtin, include))


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
                 files: Sequence[str] | None = None):
        """``files``: the files to read, as ``choose_files`` lists them (else from ``paths``,
        ``skip`` and ``builtin`` as in ``read_texts``)."""
        if files is None:
            files = list_files(paths, skip) if paths else [builtin_path(builtin or BUILTIN)]
        self.files = list(files)
        sha, counts = hashlib.sha256(), np.zeros(UNICODE, np.int64)
        self.n_chars = self.n_bytes = 0
        for raw, points in self._chunks():
            sha.update(raw)
            counts += np.bincount(points, minlength=UNICODE)
            self.n_chars += len(points)
            self.n_bytes += len(raw)
        if not self.n_chars:
            raise CorpusError(f"corpus {', '.join(self.files)}: empty")
        self.sha256 = sha.hexdigest()
        self.chars = "".join(map(chr, np.flatnonzero(counts)))   # sorted by code point

    def _chunks(self) -> Iterator[tuple[bytes, np.ndarray]]:
        """(raw bytes, their code points) of every file, CHUNK bytes at a time."""
        for f in self.files:
            decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
            try:
                with open(f, "rb") as fh:
                    while True:
                        raw = fh.read(CHUNK)
                        pending = len(decoder.getstate()[0])
                        try:
                            if not pending and raw.isascii():
                                points = np.frombuffer(raw, np.uint8)
                            else:
                                points = _code_points(decoder.decode(raw, final=not raw))
                        except UnicodeDecodeError as err:
                            at = offset - pending + err.start
                            data = err.object
                            raise CorpusError(f"corpus {f}: not UTF-8 text (byte "
                                              f"0x{data[err.start]:02x} at offset {at})") from None
                        if not raw:
                            break
                        yield raw, points
                        offset += len(raw)
            except OSError as err:
                raise CorpusError(f"corpus {f}: cannot read ({err.strerror or err})") from None

    def encode(self, vocab: "Vocab") -> np.ndarray:
        """(N,) ids of the whole corpus, dtype ``id_dtype(vocab.size)``. ValueError naming a
        character of the corpus not in ``vocab``."""
        missing = set(self.chars) - set(vocab.chars)
        if missing:
            c = min(missing)
            raise ValueError(f"text: character {c!r} (U+{ord(c):04X}) is not in the vocabulary")
        dtype = id_dtype(vocab.size)
        lut = np.zeros(ord(max(self.chars)) + 1, dtype)
        lut[vocab._points[vocab._points < len(lut)]] = np.flatnonzero(vocab._points < len(lut))
        ids, at = np.empty(self.n_chars, dtype), 0
        for _, points in self._chunks():
            np.take(lut, points, out=ids[at: at + len(points)])
            at += len(points)
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


class Vocab:
    """The characters of a text, sorted by code point; ids are positions in that order."""

    def __init__(self, chars: str):
        if not isinstance(chars, str):
            raise TypeError(f"chars: expected a str, got {type(chars).__name__}")
        if len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise ValueError("chars: expected distinct characters sorted by code point")
        if not chars:
            raise ValueError("chars: expected at least one character")
        self.chars = chars
        self._points = _code_points(chars)

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def missing(self, text: str) -> str:
        """The distinct characters of ``text`` not in the vocabulary, in order of appearance."""
        known = set(self.chars)
        return "".join(dict.fromkeys(c for c in text if c not in known))

    def encode(self, text: str) -> np.ndarray:
        """(N,) int64 ids. ValueError naming the first character not in the vocabulary."""
        points = _code_points(text)
        ids = np.searchsorted(self._points, points)
        ok = ids < len(self._points)
        ok[ok] = self._points[ids[ok]] == points[ok]
        if not ok.all():
            c = chr(points[np.argmin(ok)])
            raise ValueError(f"text: character {c!r} (U+{ord(c):04X}) is not in the vocabulary")
        return ids.astype(np.int64)

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
