"""Big corpora and shared run folders (issue 14): one trainer per run folder (an OS lock that a
SIGKILL releases), memory per character of a big corpus, bounded validation, disk errors, folders
of mixed files, checkpoints whose config claims more than their arrays hold."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bptt import cli

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch", "4", "--eval-every", "20",
        "--checkpoint-every", "25", "--log-every", "5"]


def environment():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO),
                                                        os.environ.get("PYTHONPATH", "")]))


def corpus(folder: Path, n: int = 3000) -> Path:
    path = folder / "corpus.txt"
    path.write_text("".join(f"line {i % 17} of the text, {'abc'[i % 3]}\n" for i in range(n // 20)))
    return path


def snapshot(folder: Path) -> dict:
    """Name -> SHA-256 of every file in ``folder`` but the lock file and temporary files."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def wait_for_lock(folder: Path, pid: int, proc, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lock = folder / ".lock"
        settled = not any(p.name.endswith(".tmp") for p in folder.iterdir())
        if settled and lock.exists() and lock.read_text().strip() == str(pid):
            time.sleep(0.5)        # the trainer rewrites metrics.csv up to the resumed step
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first trainer never took the lock")


def test_second_trainer_refused_until_first_is_killed(tmp_path, capsys):
    text = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli.main(["train", str(text), *TINY, "--steps", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    first = subprocess.Popen(
        [sys.executable, "-m", "bptt", "train", "--out", str(run), "--resume", "--steps",
         "10000000", "--checkpoint-every", "10000000", "--eval-every", "10000000",
         "--log-every", "10000000"],
        env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_lock(run, first.pid, first)
        before = snapshot(run)
        for extra in (["--resume", "--steps", "5"], []):          # with and without --resume
            args = ["train", str(text), *TINY, "--out", str(run), *extra]
            t0 = time.monotonic()
            assert cli.main(args) == 2
            err = capsys.readouterr().err
            assert time.monotonic() - t0 < 5
            assert err.count("\n") == 1 and str(run) in err and str(first.pid) in err, err
            assert snapshot(run) == before
        assert cli.main(["sample", str(run), "--length", "20"]) == 0      # readers keep working
        assert capsys.readouterr().out
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL
        assert snapshot(run) == before
        assert cli.main(["train", "--out", str(run), "--resume", "--steps", "4"]) == 0
        assert "done: 4 steps" in capsys.readouterr().err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_failed_setup_leaves_no_folder(tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    assert cli.main(["train", str(missing), "--out", str(tmp_path / "run")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


MEMORY_CHILD = r"""
import resource, sys
import matplotlib.pyplot, tqdm   # imported by every run: not per-character memory
from bptt.text.config import Config
from bptt.text.train import train
corpus, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(corpus, "w", encoding="utf-8") as fh:       # ~n characters, 80 distinct, some not ASCII
    line = "".join(chr(32 + i) for i in range(60)) + "éàüßøñçåæœ\u03bb\u03bc\u4e2d\u6587\n"
    block = line * 1000
    for _ in range(n // len(block)):
        fh.write(block)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
train(Config(corpus=[corpus], out=out, hidden=8, layers=1, batch=16, seq_len=16, steps=1,
             eval_chars=1000), progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(base, peak)
"""


def test_memory_per_character_of_a_big_corpus(tmp_path):
    """Training on a 30 MB corpus holds one byte per character plus bounded buffers (it held 32
    bytes per character before issue 14). Measured in a child process, ru_maxrss."""
    n = 30_000_000
    r = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(tmp_path / "big.txt"),
                        str(tmp_path / "run"), str(n)], env=environment(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    base, peak = map(int, r.stdout.split())
    # the ids (1 byte per character) and buffers of a fixed size (bptt.text.data.CHUNK): measured
    # 90 MB over the base here, against 960 MB before
    assert peak - base < 1.5 * n + (96 << 20), f"{(peak - base) >> 20} MiB over the base"


def test_validation_is_bounded_by_default():
    from bptt.text import data, lines
    from bptt.text.config import Config
    cap = Config().eval_chars
    ids = np.arange(3 * cap, dtype=np.int64) % 7
    train_ids, val_ids = data.split(ids, 0.5)
    bounded = data.StreamData(train_ids, val_ids, 4, 8, cap)
    first, again = list(bounded.validation()), list(bounded.validation())
    read = sum(x.size for x, _, _ in first)
    assert cap - 8 * 4 <= read <= cap                      # the cap, up to the streams' ends
    assert all((a[0] == b[0]).all() for a, b in zip(first, again, strict=True))  # same slice
    assert first[0][0][0, 0] == val_ids[0]                 # ... the start of the held-out text
    whole = data.StreamData(train_ids, val_ids, 4, 8, 0)   # --eval-chars 0: all of them
    assert sum(x.size for x, _, _ in whole.validation()) > len(val_ids) - 8 * 4 > cap
    # the built-in corpus keeps validating on its whole held-out text by default
    train_ids, held_out = data.split(np.zeros(data.Corpus([]).n_chars, np.uint8),
                                     Config().val_fraction)
    assert data.StreamData(train_ids, held_out, 32, 64, cap).val.size == held_out.size
    # lines mode: at most EVAL_LINES held-out lines
    vocab = lines.vocabulary(["ab"])
    many = ["ab"[: 1 + i % 2] for i in range(lines.EVAL_LINES + 500)]
    line_data = lines.LineData.from_strings(["ab"], many, vocab, 4)
    assert sum(len(n) for _, _, n in line_data.validation()) == lines.EVAL_LINES


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only: mount needs it, and root ignores file permissions)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (see the read-only test instead)")
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def check_write_error(run: Path, err: str, before: dict) -> None:
    lines = [line for line in err.splitlines() if line.startswith("bptt")]
    assert len(lines) == 1 and "Traceback" not in err, err
    err = lines[0]
    assert err.startswith(f"bptt train: error: cannot write {run}"), err
    assert "is intact" in err and f"--out {run} --resume" in err, err
    assert snapshot(run)["checkpoint.npz"] == before["checkpoint.npz"]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


def test_full_disk_ends_the_run_with_one_line(small_disk, tmp_path, capsys):
    text = corpus(tmp_path)
    run = small_disk / "run"
    assert cli.main(["train", str(text), *TINY, "--steps", "25", "--out", str(run)]) == 0
    capsys.readouterr()
    before = snapshot(run)
    rows = (run / "metrics.csv").read_text()
    filler, block = small_disk / "filler", b"x" * 4096
    with open(filler, "wb", buffering=0) as fh:    # fill the disk up to its last byte
        for size in (4096, 1):
            try:
                while fh.write(block[:size]):
                    pass
            except OSError:
                pass
    assert cli.main(["train", "--out", str(run), "--resume", "--steps", "60"]) == 1
    check_write_error(run, capsys.readouterr().err, before)
    assert rows.startswith((run / "metrics.csv").read_text())    # at most whole rows removed


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway; the "
                    "full-disk test covers the message")
def test_read_only_run_folder_ends_the_run_with_one_line(tmp_path, capsys):
    text = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli.main(["train", str(text), *TINY, "--steps", "25", "--out", str(run)]) == 0
    capsys.readouterr()
    before = snapshot(run)
    run.chmod(0o555)
    try:
        assert cli.main(["train", "--out", str(run), "--resume", "--steps", "60"]) == 1
        check_write_error(run, capsys.readouterr().err, before)
    finally:
        run.chmod(0o755)


def test_folder_of_mixed_files_and_include(tmp_path, capsys):
    tree = tmp_path / "pkg"
    (tree / "sub" / "__pycache__").mkdir(parents=True)
    code = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(60))
    (tree / "a.py").write_text(code)
    (tree / "sub" / "b.py").write_text(code.replace("x", "y"))
    (tree / "notes.txt").write_text("notes " * 300)
    (tree / "sub" / "__pycache__" / "b.cpython-312.pyc").write_bytes(b"\x00\x01pyc" * 50)
    (tree / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 50)      # not UTF-8
    run = tmp_path / "run"
    args = ["train", str(tree), *TINY, "--steps", "2", "--out", str(run)]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "corpus: 3 files" in err
    # binary files apart from text not in UTF-8, with how to convert it
    assert "1 binary file skipped (b.cpython-312.pyc)" in err
    converted = [line for line in err.splitlines() if "not in UTF-8" in line]
    assert len(converted) == 1, err
    assert converted[0].startswith("1 text file not in UTF-8 skipped (latin1.txt); to read it, "
                                   "convert to UTF-8, e.g. iconv -f cp1252 -t utf-8 ")
    # --include: only the Python files, at any depth; stored, so --resume reads the same set
    run = tmp_path / "py"
    args = ["train", str(tree), "--include", "*.py", *TINY, "--steps", "2", "--out", str(run)]
    assert cli.main(args) == 0
    size = len(code) + len(code.replace("x", "y"))
    assert f"corpus: 2 files, {size:,} bytes" in capsys.readouterr().err
    from bptt.text.checkpoint import load
    _, meta = load(str(run / "checkpoint.npz"))
    assert meta["config"]["include"] == ["*.py"]
    assert (meta["corpus_files"], meta["corpus_bytes"], meta["corpus_chars"]) == (2, size, size)
    (tree / "more.txt").write_text("more text " * 100)        # not matched: still the same set
    assert cli.main(["train", "--out", str(run), "--resume", "--steps", "4"]) == 0
    assert f"corpus: 2 files, {size:,} bytes" in capsys.readouterr().err
    # a file named on the command line that is not UTF-8 stays an error
    assert cli.main(["train", str(tree / "latin1.txt"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8 text (byte 0xe9 at offset 3)" in err
    assert "iconv -f cp1252 -t utf-8 " in err and "latin1.txt" in err


@pytest.mark.parametrize("claim", [{"hidden": 30000}, {"layers": 10**9}, {"layers": 2},
                                   {"cell": "gru"}])
def test_config_claiming_more_than_the_arrays_is_refused_before_building(tmp_path, capsys,
                                                                         claim):
    """A checkpoint whose config claims a model its arrays do not hold: one line from `bptt
    sample` and `bptt train --resume`, found before the model is built (a --hidden 30000 LSTM
    would take 13 GiB; the child's memory limit of 1 GiB makes building it fail differently)."""
    from bptt.text import checkpoint as ckpt
    text = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli.main(["train", str(text), *TINY, "--steps", "2", "--out", str(run)]) == 0
    path = run / "checkpoint.npz"
    arrays, meta = ckpt.load(str(path))
    meta["config"].update(claim)
    ckpt.save(str(path), arrays, {k: v for k, v in meta.items() if k not in ("format",
                                                                              "version")})
    (run / "best.npz").unlink()
    child = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
             "from bptt import cli; sys.exit(cli.main(sys.argv[1:]))")
    for args in (["sample", str(run), "--length", "5"],
                 ["train", "--out", str(run), "--resume", "--steps", "4"]):
        r = subprocess.run([sys.executable, "-c", child, *args], env=environment(),
                           capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert "implies param/" in lines[0] or "holds more" in lines[0], lines[0]


def test_corpus_read_in_chunks_matches_the_whole_text(tmp_path, monkeypatch):
    """Blocks of 7 bytes cut multi-byte characters; ids, fingerprint and vocabulary are those of
    the text read whole, in the smallest unsigned type."""
    from bptt.text import data
    monkeypatch.setattr(data, "CHUNK", 7)
    parts = ["plain ascii text\n", "caf\u00e9 na\u00efve \u4e2d\u6587 \U0001f600 end\n", "abc"]
    files = []
    for i, part in enumerate(parts):
        files.append(tmp_path / f"{i}.txt")
        files[-1].write_text(part * 3, encoding="utf-8")
    text = "".join(p * 3 for p in parts)
    corpus = data.Corpus([str(f) for f in files])
    vocab = data.Vocab.from_text(text)
    assert corpus.chars == vocab.chars and corpus.n_chars == len(text)
    assert corpus.sha256 == data.fingerprint(text)
    ids = corpus.encode(vocab)
    assert ids.dtype == np.uint8 and (ids == vocab.encode(text)).all()
    wide = data.Vocab("".join(sorted(set(text) | {chr(0x4e00 + i) for i in range(300)})))
    assert corpus.encode(wide).dtype == np.uint16
    assert (corpus.encode(wide) == wide.encode(text)).all()
    bad = tmp_path / "bad.txt"
    bad.write_bytes("\u00e9t\u00e9 ".encode() * 3 + b"\xff rest")
    with pytest.raises(data.CorpusError, match=r"not UTF-8 text \(byte 0xff at offset 18\)"):
        data.Corpus([str(bad)])


def test_batches_are_views_of_the_streams():
    from bptt.text import data
    ids = (np.arange(1001) % 251).astype(np.uint8)
    b = data.Batches(ids, 4, 10)
    stream = 1000 // 4
    for position in (0, 7, b.n_chunks - 1):
        x, y = b.get(position)
        cols = np.arange(position * 10, position * 10 + 10)[:, None] + np.arange(4) * stream
        assert x.dtype == np.int64 and (x == ids[cols]).all() and (y == ids[cols + 1]).all()
    assert np.shares_memory(b._streams, ids)


def test_disk_full_while_writing_a_checkpoint(tmp_path, capsys, monkeypatch):
    """The checkpoint write fails half way (as on a full disk): one line naming checkpoint.npz,
    the previous checkpoint unchanged, no temporary file left."""
    import errno

    from bptt.text import checkpoint as ckpt
    text = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli.main(["train", str(text), *TINY, "--steps", "25", "--out", str(run)]) == 0
    capsys.readouterr()
    before = snapshot(run)
    savez = ckpt.np.savez

    def full(fh, **arrays):
        savez(fh, **arrays)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.np, "savez", full)
    assert cli.main(["train", "--out", str(run), "--resume", "--steps", "60"]) == 1
    err = capsys.readouterr().err
    check_write_error(run, err, before)
    assert f"cannot write {run / 'best.npz'} (No space left on device)" in err \
        or f"cannot write {run / 'checkpoint.npz'} (No space left on device)" in err, err
