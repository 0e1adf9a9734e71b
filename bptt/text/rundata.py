"""The data of a training run: its corpus chosen, read, checked against the run on a resume,
folded (--min-count), encoded and split, in stream or lines mode; and the lines a run prints
about it (bptt.text.summary).
"""

import dataclasses
import os
import shlex
from collections.abc import Callable

import numpy as np

from . import checkpoint as ckpt
from . import lines, summary
from .config import Config, RunError
from .data import Corpus, CorpusError, StreamData, Vocab, choose_files, describe_files, split


def load_data(cfg: Config, meta: dict, path: str,
              log: Callable[[str], None] | None = None) -> tuple[object, Vocab, dict, dict, list]:
    """The run's data (StreamData or LineData), its vocabulary, the arrays and metadata that
    stay fixed over the run (config, vocabulary, corpus fingerprint and files; in lines mode the
    training lines' hashes), and the lines to print about the corpus (what its folders skipped,
    the summary). On a resume the corpus must be the one the run started with. ``log``: where a
    load slower than summary.SLOW says what it is doing."""
    # skip: a run folder inside a corpus folder
    try:
        chosen = choose_files(cfg.corpus, cfg.out, cfg.include, cfg.builtin)
    except CorpusError as err:
        if meta and "no such file" in str(err):     # a resume whose corpus moved
            q = shlex.quote(cfg.out)
            raise CorpusError(f"{err}; if the run's corpus moved, give its new path: bptt train "
                              f"NEW_PATH --out {q} --resume") from None
        raise
    files, notes = chosen.files, describe_files(chosen)
    n_bytes = sum(os.path.getsize(f) for f in files)
    loading = summary.Loading(log, n_bytes)
    if cfg.lines:
        samples = lines.read_line_files(files)
        sha256, n_chars, counts = samples.sha256, samples.n_chars, samples.counts()
    else:             # read in bounded chunks: never the whole text as a str (issue 14)
        corpus = Corpus([], files=files, progress=loading.tick)
        sha256, n_chars, counts = corpus.sha256, corpus.n_chars, corpus.counts
    loading.phase(f"read {len(files):,} file{'s' * (len(files) != 1)}")
    if meta and meta.get("corpus_sha256") != sha256:
        raise RunError(_corpus_changed(cfg.out, meta, len(files), n_bytes))
    if meta:
        try:
            vocab = Vocab(meta["vocab"], meta.get("unknown", ""))
        except (KeyError, TypeError, ValueError) as err:
            raise ckpt.CheckpointError(f"{path}: bad vocabulary in checkpoint ({err})") from None
    else:
        vocab = Vocab.from_counts(counts, cfg.min_count_of(sum(counts.values())),
                                  lines.END if cfg.lines else "")
    fixed = {"config": dataclasses.asdict(cfg), "vocab": vocab.chars, "unknown": vocab.unknown,
             "corpus_sha256": sha256, "corpus_chars": n_chars, "corpus_files": len(files),
             "corpus_bytes": n_bytes}  # --include is in config
    if not cfg.lines:
        ids = _encode(corpus, vocab, path)
        loading.phase("encoded")
        train_ids, val_ids = split(ids, cfg.val_fraction)
        notes.append(summary.stream_summary(len(files), n_bytes, n_chars, len(val_ids), vocab,
                                            counts))
        return StreamData(train_ids, val_ids, cfg.batch, cfg.seq_len, cfg.eval_chars), vocab, \
            {}, fixed, notes
    train_rows, val_rows = lines.split_index(len(samples), cfg.val_fraction, cfg.seed)
    hashes = np.sort(samples.hashes(train_rows))
    fixed["line_hash"] = lines.POLY
    ids = _encode(samples, vocab, path)
    loading.phase("encoded")
    notes.append(summary.lines_summary(len(files), n_bytes, samples.read, samples.lengths(),
                                       len(val_rows), vocab, counts))
    data = lines.LineData(ids, samples.starts, train_rows, val_rows,
                          int(vocab.encode(lines.END)[0]), cfg.batch)
    return data, vocab, {"lines/train_hashes": hashes}, fixed, notes


def _corpus_changed(out: str, meta: dict, n_files: int, n_bytes: int) -> str:
    """The one line for a resume whose corpus is not the run's."""
    was = ""
    if isinstance(meta.get("corpus_bytes"), int) and isinstance(meta.get("corpus_files"), int):
        def files(n, size):
            return f"{n} file{'s' * (n != 1)}, {size:,} bytes"
        was = f" (it had {files(meta['corpus_files'], meta['corpus_bytes'])}; now " \
              f"{files(n_files, n_bytes)})"
    return (f"the corpus differs from the one the run in {out} was trained on{was}; give the "
            "run's own corpus (its new path if it moved), or start a new run in another --out")


def _encode(source, vocab, path: str):
    """``source.encode(vocab)`` (a corpus or a line set); CheckpointError if the run's
    vocabulary does not cover it."""
    try:
        return source.encode(vocab)
    except ValueError as err:
        raise ckpt.CheckpointError(f"{path}: vocabulary does not cover the corpus ({err})") \
            from None
