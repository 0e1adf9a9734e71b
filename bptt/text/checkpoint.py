"""Checkpoints: one ``.npz`` of plain arrays plus JSON metadata; atomic writes, no pickle.

Layout of the file (a zip written by ``np.savez``):

    __meta__        0-d unicode array: JSON text {"format": "bptt-checkpoint", "version": 1, ...}
    param/<name>    model parameters
    adam_m/<name>   Adam first moments        adam_v/<name>   Adam second moments
    state/<i>       carried hidden state: state/0 is h (L, B, H); state/1 is c for an LSTM

What the metadata holds besides format and version is up to the caller (bptt.text.train stores the
config, vocabulary, step, data position, Adam's t and the RNG state).

``save`` writes a temporary file in the same folder, fsyncs it and renames it over the target with
``os.replace``, so a crash or SIGKILL at any moment leaves the previous checkpoint whole. ``load``
reads with ``allow_pickle=False`` and turns every way a file can be wrong (missing, truncated,
corrupt, pickled, from another program, from a newer version) into a ``CheckpointError``.
"""

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable

import numpy as np

FORMAT = "bptt-checkpoint"
VERSION = 1
META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or is not a bptt checkpoint of a known version."""


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` for a temporary file in ``path``'s folder, fsync it, then rename it over
    ``path`` (os.replace): ``path`` is always either the old file or the whole new one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".tmp")
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)             # as a plain open() would create it
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def save(path: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``arrays`` and ``meta`` (JSON-serialisable) to ``path`` atomically."""
    if META_KEY in arrays:
        raise ValueError(f"arrays: the key {META_KEY!r} is reserved for the metadata")
    text = json.dumps({"format": FORMAT, "version": VERSION, **meta}, allow_nan=False,
                      sort_keys=True)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **{META_KEY: np.array(text)}, **arrays)

    write_atomic(path, write)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint: (arrays without the metadata, metadata dict). Never unpickles."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror or err})") from None
    if not magic:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if magic[:1] == b"\x80":
        raise CheckpointError(f"{path}: a pickle, which bptt never loads; not a bptt checkpoint")
    if magic[:4] != b"PK\x03\x04":
        raise CheckpointError(f"{path}: not a bptt checkpoint (not an .npz file)")
    _check_declared_size(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise CheckpointError(f"{path}: holds pickled objects, which bptt never loads") \
                from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        raise CheckpointError(f"{path}: truncated or corrupt ({err})") from None
    if not isinstance(arrays, dict) or META_KEY not in arrays:
        raise CheckpointError(f"{path}: not a bptt checkpoint (no {META_KEY} entry)")
    raw = arrays.pop(META_KEY)
    try:
        meta = json.loads(str(raw[()])) if raw.dtype.kind == "U" and raw.ndim == 0 else None
    except (json.JSONDecodeError, RecursionError):  # RecursionError: JSON nested thousands deep
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a bptt checkpoint (unknown metadata)")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: bad checkpoint version {version!r}")
    if version > VERSION:
        raise CheckpointError(f"{path}: written by a newer bptt (format version {version}; "
                              f"this one reads up to {VERSION})")
    return arrays, meta


def _check_declared_size(path: str) -> None:
    """Refuse a file whose entries would unpack to much more than its own size before reading any
    of them: ``save`` stores arrays uncompressed, so their bytes are at most the file's size,
    while a crafted, compressed entry (a "zip bomb") could claim gigabytes."""
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as zf:
            declared = sum(info.file_size for info in zf.infolist())
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: truncated or corrupt ({err})") from None
    if declared > 2 * size + (1 << 20):
        raise CheckpointError(f"{path}: its entries unpack to {declared} bytes from a file of "
                              f"{size}; not a checkpoint bptt wrote")


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The entries under ``prefix/``, with the prefix removed."""
    start = prefix + "/"
    return {k[len(start):]: v for k, v in arrays.items() if k.startswith(start)}


def optimizer_arrays(opt) -> dict[str, np.ndarray]:
    """Adam's moments as checkpoint entries ``adam_m/<name>``, ``adam_v/<name>`` (t goes in the
    metadata)."""
    out = {f"adam_m/{k}": m for k, m in opt.m.items()}
    out.update({f"adam_v/{k}": v for k, v in opt.v.items()})
    return out


def load_optimizer(opt, arrays: dict[str, np.ndarray], t: int) -> None:
    """Restore Adam's m, v (from ``arrays`` as written by ``optimizer_arrays``) and t, exactly.
    Raises CheckpointError naming the first missing or mismatched entry; on error ``opt`` is
    unchanged."""
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        raise CheckpointError(f"checkpoint: bad Adam step count {t!r}")
    new = {}
    for kind, current in (("m", opt.m), ("v", opt.v)):
        found = prefixed(arrays, f"adam_{kind}")
        for name, ref in current.items():
            a = found.get(name)
            if a is None:
                raise CheckpointError(f"checkpoint: missing adam_{kind}/{name}")
            if a.shape != ref.shape or a.dtype != ref.dtype:
                raise CheckpointError(f"checkpoint: adam_{kind}/{name}: expected {ref.dtype} "
                                      f"{ref.shape}, got {a.dtype} {a.shape}")
            new[kind, name] = a
    for (kind, name), a in new.items():
        getattr(opt, kind)[name][...] = a
    opt.t = t
