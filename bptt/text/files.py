"""The files of a corpus: which ones a run reads (folders, --include, binary and not-UTF-8 files
skipped and listed apart), reading them, and the one rule by which their text is cleaned
(``clean_text``: a leading byte-order mark dropped, CRLF and lone CR read as LF).
"""

import codecs
import dataclasses
import fnmatch
import os
import shlex
from collections.abc import Sequence
from importlib import resources

BLOCK = 1 << 22          # bytes of a file checked for UTF-8 at a time

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
    """The files named by ``paths`` (see ``choose_files``), without the skipped ones of folders."""
    return choose_files(paths, skip).files


@dataclasses.dataclass
class Chosen:
    """The files a run reads (``choose_files``) and those of its folders it leaves out."""

    files: list            # read, in this order
    binary: list           # skipped: not text (a NUL byte in the first block)
    not_utf8: list         # skipped: text, but not UTF-8 (convert them to read them)


def choose_files(paths: Sequence[str], skip: str | None = None, include: Sequence[str] = (),
                 builtin: str = "") -> Chosen:
    """The files named by ``paths``, in the order given. A folder stands for every file below
    it (recursively, sorted by path, names starting with '.' skipped, and the folder ``skip``
    too: a run folder inside the corpus folder is not part of the corpus); with ``include``
    (glob patterns), only those whose path inside the folder matches one of them (``*`` matches
    ``/`` too: ``*.py`` is every Python file). Files of a folder that are binary or not UTF-8
    (``text_kind``) are skipped and listed apart; a file named itself is always read (and must
    be UTF-8). No paths: the built-in corpus ``builtin`` (default BUILTIN)."""
    if not paths:
        return Chosen([builtin_path(builtin or BUILTIN)], [], [])
    skip = os.path.realpath(skip) if skip else None
    chosen = Chosen([], [], [])
    for path in paths:
        if os.path.isfile(path):
            chosen.files.append(path)
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
                raise CorpusError(f"corpus folder {path} holds no files{what}; name a folder "
                                  "of text files" + (" or change --include" if include else ""))
            for f in sorted(found):
                kind = text_kind(f)
                {"text": chosen.files, "binary": chosen.binary,
                 "not-utf8": chosen.not_utf8}[kind].append(f)
        else:
            raise CorpusError(f"corpus {path}: no such file or folder")
    if not chosen.files:
        raise CorpusError(f"corpus {', '.join(paths)}: no UTF-8 text files; "
                          + "; ".join(skipped_lines(chosen)))
    return chosen


def text_kind(path: str) -> str:
    """"binary" (a NUL byte in the first block), "not-utf8" (text that is not valid UTF-8,
    read BLOCK bytes at a time) or "text". An unreadable file counts as text (reading it says
    why)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8192)
            if b"\0" in raw:
                return "binary"
            while raw:
                decoder.decode(raw)
                raw = fh.read(BLOCK)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "not-utf8"
    except OSError:
        return "text"
    return "text"


def is_text(path: str) -> bool:
    """Whether a file is UTF-8 text (``text_kind``)."""
    return text_kind(path) == "text"


def _few(files: Sequence[str]) -> str:
    names = ", ".join(os.path.basename(f) for f in files[:3])
    return names + (f" and {len(files) - 3} more" if len(files) > 3 else "")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def skipped_lines(chosen: Chosen) -> list[str]:
    """What was skipped, binary files apart from text files not in UTF-8 (with how to convert
    one of them)."""
    out = []
    if chosen.binary:
        out.append(f"{_plural(len(chosen.binary), 'binary file')} skipped ({_few(chosen.binary)})")
    if chosen.not_utf8:
        n = len(chosen.not_utf8)
        out.append(f"{_plural(n, 'text file')} not in UTF-8 skipped ({_few(chosen.not_utf8)}); "
                   f"to read {'them' if n > 1 else 'it'}, {convert_hint(chosen.not_utf8[0])}")
    return out


def convert_hint(path: str) -> str:
    """How to convert a file to UTF-8 (most such files are Windows-1252)."""
    q = shlex.quote(path)
    return f"convert to UTF-8, e.g. iconv -f cp1252 -t utf-8 {q} > {q}.utf8"


def not_utf8(path: str, byte: int, offset: int) -> CorpusError:
    """The one-line error for a file that is not UTF-8 text."""
    return CorpusError(f"corpus {path}: not UTF-8 text (byte 0x{byte:02x} at offset {offset}); "
                       f"{convert_hint(path)}")


def describe_files(chosen: Chosen) -> list[str]:
    """The lines a run prints about the files its folders hold but it skipped."""
    return skipped_lines(chosen)


def read_texts(paths: Sequence[str], skip: str | None = None, builtin: str = "",
               include: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(file, text) of every file named by ``paths`` (see ``choose_files``; ``skip``: a folder
    left out; ``include``: globs of folder files), decoded as UTF-8; no paths: the built-in
    corpus ``builtin`` (default BUILTIN).
    Raises CorpusError naming the problem, also when all of them are empty."""
    return read_files(choose_files(paths, skip, include, builtin).files)


def read_bytes(f: str) -> bytes:
    """The bytes of corpus file ``f``; CorpusError naming it if it cannot be read."""
    try:
        with open(f, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise CorpusError(f"corpus {f}: cannot read ({err.strerror or err})") from None


def read_files(files: Sequence[str]) -> list[tuple[str, str]]:
    """(file, text) of each of ``files``, decoded as UTF-8 as it is (see ``read_texts``; the
    text a run reads is ``clean_text`` of it)."""
    texts = []
    for f in files:
        raw = read_bytes(f)
        try:
            texts.append((f, raw.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise not_utf8(f, raw[err.start], err.start) from None
    if not any(text for _, text in texts):
        raise CorpusError(f"corpus {', '.join(files)}: empty")
    return texts


def read_corpus(paths: Sequence[str], skip: str | None = None, builtin: str = "",
                include: Sequence[str] = ()) -> str:
    """The text of all files named by ``paths`` joined as they are (see ``read_texts``); its
    ``fingerprint`` is a run's ``corpus_sha256``. The text a run trains on is
    ``"".join(clean_text(t) for _, t in read_texts(...))``."""
    return "".join(text for _, text in read_texts(paths, skip, builtin, include))


BOM = "\ufeff"


def clean_text(text: str) -> str:
    """The one rule by which every mode and command reads a file's text: a leading byte-order
    mark is dropped, and CRLF and a lone CR are read as LF."""
    if text.startswith(BOM):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


class Cleaner:
    """``clean_text`` over consecutive pieces (str or bytes) of one file: a CR that ends a piece
    waits for the next one (it may be the first half of a CRLF)."""

    def __init__(self):
        self.started, self.cr = False, False

    def __call__(self, piece, final: bool):
        cr, lf = ("\r", "\n") if isinstance(piece, str) else (b"\r", b"\n")
        if not self.started and piece:
            self.started = True
            if isinstance(piece, str) and piece.startswith(BOM):
                piece = piece[1:]
        if self.cr:
            piece = cr + piece
        self.cr = not final and piece.endswith(cr)
        if self.cr:
            piece = piece[:-1]
        if cr in piece:
            piece = piece.replace(cr + lf, lf).replace(cr, lf)
        return piece
