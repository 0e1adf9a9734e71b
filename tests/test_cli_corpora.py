"""Real corpora (issue 23): clean text by one rule (BOM, CRLF, CR) in both modes and in folders,
files not in UTF-8, the summary line, --min-count (stored, exact on resume, never sampled),
--threads (recorded and applied), and the messages that say what to do."""

import shutil

import numpy as np
import pytest
import threadpoolctl
from test_cli import assert_resume_is_one_run, assert_user_error, load, run_cli, snapshot
from test_cli_lines import names

from bptt import cli
from bptt.text import data
from bptt.text.config import Config
from bptt.text.train import train

TINY = ["--hidden", "8", "--layers", "1", "--batch", "4", "--eval-every", "20",
        "--checkpoint-every", "25", "--log-every", "5"]
STREAM = [*TINY, "--seq-len", "8"]
LINES = ["--lines", *TINY]
TEXT = "the cat sat on the mat\nla même chose\nand the dog\n" * 30


def written(path, text, bom=False, ends="\n"):
    path.write_bytes(("\ufeff" if bom else "").encode() + text.replace("\n", ends).encode())
    return path


@pytest.mark.parametrize("mode", [STREAM, LINES])
@pytest.mark.parametrize("bom, ends", [(True, "\n"), (False, "\r\n"), (False, "\r"),
                                       (True, "\r\n")])
def test_bom_and_line_ends_read_as_plain_text(tmp_path, mode, bom, ends):
    """A file with a BOM, CRLF or lone CR trains exactly as the plain one: same vocabulary, same
    characters, same parameters; the fingerprint is still the file's own."""
    plain = written(tmp_path / "plain.txt", TEXT)
    other = written(tmp_path / "other.txt", TEXT, bom, ends)
    for f, out in ((plain, "a"), (other, "b")):
        r = run_cli("train", f, *mode, "--steps", 3, "--out", out, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    (arr_a, meta_a), (arr_b, meta_b) = load(tmp_path / "a"), load(tmp_path / "b")
    assert meta_a["vocab"] == meta_b["vocab"] and "\r" not in meta_b["vocab"]
    assert "\ufeff" not in meta_b["vocab"] and meta_a["corpus_chars"] == meta_b["corpus_chars"]
    assert all(np.array_equal(arr_a[k], arr_b[k]) for k in arr_a if k.startswith("param/"))
    assert meta_b["corpus_sha256"] == data.fingerprint(other.read_bytes().decode("utf-8"))


def test_clean_text_is_one_public_rule():
    assert data.clean_text("\ufeffa\r\nb\rc\n\ufeff") == "a\nb\nc\n\ufeff"
    clean = data.Cleaner()                     # the same over pieces: a CRLF cut in two
    pieces = ["\ufeffa\r", "\nb\r", "", "c\r"]
    got = "".join(clean(p, False) for p in pieces) + clean("", True)
    assert got == data.clean_text("".join(pieces)) == "a\nb\nc\n"


def test_chunked_corpus_reads_cleaned_text(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK", 5)
    text = "\ufeffab\r\ncd\r\ref\rg\r" * 7 + "é\r\n"
    f = tmp_path / "c.txt"
    f.write_bytes(text.encode())
    corpus = data.Corpus([str(f)])
    want = data.clean_text(text)
    assert corpus.n_chars == len(want) and corpus.chars == "".join(sorted(set(want)))
    assert corpus.sha256 == data.fingerprint(text)        # the file's bytes, as before
    vocab = data.Vocab(corpus.chars)
    assert vocab.decode(corpus.encode(vocab)) == want


@pytest.mark.parametrize("mode", [STREAM, LINES])
def test_not_utf8_names_file_byte_offset_and_iconv(tmp_path, mode):
    bad = tmp_path / "win.txt"
    bad.write_bytes("caf\u00e9 \u201cquoted\u201d\n".encode("cp1252") * 20)
    before = snapshot(tmp_path)
    r = run_cli("train", bad, *mode, "--out", "run", cwd=tmp_path)
    assert_user_error(r, before, tmp_path, f"corpus {bad}: not UTF-8 text (byte 0xe9 at offset "
                      "3)", f"iconv -f cp1252 -t utf-8 {bad} > {bad}.utf8")


def test_a_folder_lists_binary_files_apart_from_text_not_in_utf8(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    written(tree / "good.txt", TEXT, bom=True, ends="\r\n")
    (tree / "a.pyc").write_bytes(b"\x00\x01" * 50)
    (tree / "b.pyc").write_bytes(b"\x00\x02" * 50)
    (tree / "win.txt").write_bytes("caf\u00e9\n".encode("cp1252") * 9)
    r = run_cli("train", tree, *STREAM, "--steps", 2, "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    err = r.stderr.splitlines()
    assert "2 binary files skipped (a.pyc, b.pyc)" in err
    assert (f"1 text file not in UTF-8 skipped (win.txt); to read it, convert to UTF-8, e.g. "
            f"iconv -f cp1252 -t utf-8 {tree / 'win.txt'} > {tree / 'win.txt'}.utf8") in err
    assert "\r" not in load(tmp_path / "run")[1]["vocab"]


def test_summary_line_at_start_and_resume(tmp_path):
    f = written(tmp_path / "names.txt", "\n".join(names(40, 0)) + "\n\n  \n")
    r = run_cli("train", f, *LINES, "--steps", 2, "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lengths = np.array(sorted(len(s) for s in names(40, 0)))
    p50, p90, p99 = (int(v) for v in np.percentile(lengths, [50, 90, 99]))
    n_bytes = f.stat().st_size
    vocab = load(tmp_path / "run")[1]["vocab"]
    want = (f"corpus: 1 file, {n_bytes:,} bytes; 42 lines (2 empty skipped), 4 held out; line "
            f"length p50 {p50}, p90 {p90}, p99 {p99}, max {lengths.max()}; {len(vocab)} symbols")
    assert want in r.stderr.splitlines()
    again = run_cli("train", "--out", "run", "--resume", "--steps", 3, cwd=tmp_path)
    assert want in again.stderr.splitlines() and "resuming" in again.stderr
    s = run_cli("train", f, *STREAM, "--steps", 2, "--out", "stream", cwd=tmp_path)
    text = data.clean_text(f.read_text(encoding="utf-8"))
    n_val = round(len(text) * 0.1)
    assert (f"corpus: 1 file, {n_bytes:,} bytes, {len(text):,} characters ({n_val:,} held "
            f"out); {len(set(text))} symbols") in s.stderr.splitlines()


# ------------------------------------------------------------------------------ --min-count

RARE = "".join(names(60, 1)[i] + ("ßøæ"[i % 3] if i % 20 == 0 else "") + "\n" for i in range(60))


def test_min_count_folds_rare_symbols_and_resumes_exactly(tmp_path):
    f = written(tmp_path / "rare.txt", RARE)
    flags = [*LINES, "--min-count", "2"]
    r = run_cli("train", f, *flags, "--steps", 60, "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    counts = {c: RARE.replace("\n", "").count(c) for c in set(RARE) - {"\n"}}
    rare = [c for c, n in counts.items() if n < 2]
    assert set("ßøæ") <= set(rare)
    assert (f"({len(rare)} rare ones, {len(rare)} occurrences, folded into U+FFFD)"
            in r.stderr), r.stderr
    _, meta = load(tmp_path / "run")
    assert meta["unknown"] == "\ufffd" and "\ufffd" in meta["vocab"]
    assert not set("ßøæ") & set(meta["vocab"]) and meta["config"]["min_count"] == 2
    assert_resume_is_one_run(tmp_path, f, flags, "run", 120)
    s = run_cli("sample", tmp_path / "run", "--count", 200, "--temperature", 3, cwd=tmp_path)
    assert s.returncode == 0 and "\ufffd" not in s.stdout
    p = run_cli("sample", tmp_path / "run", "--count", 2, "--prime", "ß", cwd=tmp_path)
    assert p.returncode == 0 and all(x.startswith("ß") for x in p.stdout.splitlines())


def test_min_count_in_stream_mode_is_never_sampled(tmp_path):
    f = written(tmp_path / "rare.txt", TEXT + "ж")
    r = run_cli("train", f, *STREAM, "--min-count", "5", "--steps", 3, "--out", "run",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    vocab = load(tmp_path / "run")[1]["vocab"]
    assert "ж" not in vocab and "\ufffd" in vocab
    import bptt.text.train as training
    run = training.load_run(str(tmp_path / "run"))
    unk = run.vocab.chars.index("\ufffd")
    run.model.head.params["bias"][unk] = 1e4          # the model's favourite ...
    with training.never_unknown(run.model, run.vocab):
        text = training.sample(run.model, run.vocab, 50, rng=np.random.default_rng(0))
    assert "\ufffd" not in text                       # ... is never drawn
    assert run.model.head.params["bias"][unk] == np.float32(1e4)    # and the bias is restored


def test_vocab_from_counts_and_encoding_with_unknown():
    v = data.Vocab.from_counts({"a": 5, "b": 1, "c": 2}, 2, keep="\n")
    assert v.chars == "\nac\ufffd" and v.unknown == "\ufffd"
    assert v.decode(v.encode("abcz")) == "a\ufffdc\ufffd" and v.missing("xyz") == ""
    assert data.Vocab.from_counts({"a": 5}, 2).unknown == ""      # nothing to fold: none added
    long = "abcz" * 20_000                            # the lookup-table path of long texts
    assert np.array_equal(v.encode(long), np.tile(v.encode("abcz"), 20_000))
    with pytest.raises(ValueError, match="'z'"):
        data.Vocab("abc").encode(long)
    with pytest.raises(ValueError, match="unknown"):
        data.Vocab("ab", "\ufffd")


# ------------------------------------------------------------------------------ --threads

def blas_threads() -> int:
    """The BLAS library's thread count now (NumPy's; not an OpenMP pool another library such
    as torch may have loaded first)."""
    return [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"][0][
        "num_threads"]


def test_threads_recorded_and_applied(tmp_path, monkeypatch):
    f = written(tmp_path / "t.txt", TEXT)
    seen = []

    class Probe:
        def __init__(self, **kw):
            pass

        def update(self, k):
            seen.append(blas_threads())

        def set_postfix(self, **kw):
            pass

        def close(self):
            pass

    cfg = Config(corpus=[str(f)], out=str(tmp_path / "run"), hidden=8, layers=1, batch=4,
                 seq_len=8, steps=2, threads=1)
    train(cfg, progress=Probe)
    assert seen == [1, 1] and load(tmp_path / "run")[1]["config"]["threads"] == 1
    import bptt.text.lm as lm
    got = []
    monkeypatch.setattr(lm, "sample", lambda *a, **k: got.append(
        blas_threads()) or "x")
    assert cli.main(["sample", str(tmp_path / "run")]) == 0
    assert got == [1]                                 # the run's
    assert cli.main(["sample", str(tmp_path / "run"), "--threads", "2"]) == 0
    assert got == [1, 2]
    assert cli.main(["sample", str(tmp_path / "run"), "--threads", "-1"]) == 2


# ------------------------------------------------------------------------------ messages

def test_resume_of_a_finished_run_is_refused_before_its_corpus_is_read(tmp_path):
    f = written(tmp_path / "c.txt", TEXT)
    assert run_cli("train", f, *STREAM, "--steps", 3, "--out", "run", cwd=tmp_path).returncode == 0
    f.unlink()                                        # not read: the run is done anyway
    before = snapshot(tmp_path)
    r = run_cli("train", "--out", "run", "--resume", cwd=tmp_path)
    assert_user_error(r, before, tmp_path, "already at step 3", "--steps larger than 3")


def test_moved_corpus_and_changed_corpus_say_what_to_do(tmp_path):
    f = written(tmp_path / "c.txt", TEXT)
    assert run_cli("train", f, *STREAM, "--steps", 3, "--out", "run", cwd=tmp_path).returncode == 0
    shutil.move(f, tmp_path / "moved.txt")
    before = snapshot(tmp_path)
    r = run_cli("train", "--out", "run", "--resume", "--steps", 5, cwd=tmp_path)
    assert_user_error(r, before, tmp_path, "no such file", "give its new path",
                      "bptt train NEW_PATH --out run --resume")
    written(tmp_path / "other.txt", TEXT + "more")
    before = snapshot(tmp_path)
    r = run_cli("train", tmp_path / "other.txt", "--out", "run", "--resume", "--steps", 5,
                cwd=tmp_path)
    size = len((TEXT + "more").encode())
    assert_user_error(r, before, tmp_path, f"(it had 1 file, {len(TEXT.encode()):,} bytes; now "
                      f"1 file, {size:,} bytes)", "give the run's own corpus")


def test_list_options_are_shown_as_flags(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    written(tree / "a.txt", TEXT)
    args = ["train", tree, *STREAM, "--steps", 2, "--out", "run"]
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path)
    r = run_cli("train", "--out", "run", "--resume", "--steps", 4, "--include", "*.txt",
                "--include", "b c", cwd=tmp_path)
    assert_user_error(r, before, tmp_path, "--include '*.txt' 'b c' differs from the run's "
                                           "(none)")


def test_every_user_error_has_one_prefix(tmp_path):
    for args in (["sample", str(tmp_path), "--count", "0"], ["sample", str(tmp_path),
                                                             "--seed", "-1"],
                 ["sample", str(tmp_path / "missing")], ["train", "--hidden", "x"]):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.startswith(f"bptt {args[0]}: error: "), r.stderr


def test_a_second_signal_says_which_checkpoint_is_kept(tmp_path, capsys, monkeypatch):
    import bptt.text.train as training
    f = written(tmp_path / "c.txt", TEXT)
    run = tmp_path / "run"
    assert cli.main(["train", str(f), *STREAM, "--steps", "3", "--out", str(run)]) == 0
    capsys.readouterr()

    def stopped(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(training, "_run", stopped)
    assert cli.main(["train", "--out", str(run), "--resume", "--steps", "9"]) == 130
    err = capsys.readouterr().err
    assert err == (f"bptt train: interrupted; stopped at once by a second signal; the last "
                   f"checkpoint {run / 'checkpoint.npz'} (step 3) is kept: continue with: bptt "
                   f"train --out {run} --resume\n")


@pytest.mark.parametrize("mode", [STREAM, LINES])
def test_a_slow_load_shows_progress(tmp_path, capsys, monkeypatch, mode):
    """(As if every load were slow: summary.SLOW < 0.) Each phase, and the chunks of a long
    one, say what is done; a fast load says nothing (the other tests)."""
    from bptt.text import summary
    monkeypatch.setattr(summary, "SLOW", -1.0)
    f = written(tmp_path / "c.txt", TEXT)
    assert cli.main(["train", str(f), *mode, "--steps", "1", "--out", str(tmp_path / "r")]) == 0
    err = [s for s in capsys.readouterr().err.splitlines() if s.startswith("loading: ")]
    assert any(s.startswith("loading: read 1 file (") for s in err), err
    assert any(s.startswith("loading: encoded (") for s in err), err
    if mode is STREAM:
        assert f"loading: read 100% of {f.stat().st_size:,} bytes (" in "\n".join(err)


def test_default_min_count_is_one_per_million_characters(tmp_path):
    """-1 (the default): nothing folded under a million characters (the built-in corpora, these
    tests), characters rarer than one in a million folded above."""
    cfg = Config()
    assert cfg.min_count == -1 and cfg.min_count_of(999_999) == 0
    assert cfg.min_count_of(11_272_684) == 11 and Config(min_count=3).min_count_of(10**9) == 3
    line = "".join(chr(c) for c in range(32, 127)) + "\n"
    text = line * (5_000_000 // len(line) + 1) + "ж" * 3 + "ю"        # --min-count 5
    f = written(tmp_path / "big.txt", text)
    r = run_cli("train", f, *STREAM, "--steps", 1, "--eval-chars", 100, "--out", "run",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(2 rare ones, 4 occurrences, folded into U+FFFD)" in r.stderr
    assert not set("жю") & set(load(tmp_path / "run")[1]["vocab"])
    with pytest.raises(ValueError, match=r"--min-count: expected an integer "
                                                          r">= -1 \(-1: one per million"):
        Config(min_count=-2).validate()


def test_runs_with_blake2b_hashes_still_count_new_samples(tmp_path):
    """A checkpoint from before issue 23 (BLAKE2b line hashes, no "line_hash", no "unknown", no
    min_count or threads in its config) samples and counts novelty as a new one does."""
    from bptt.text import checkpoint as ckpt
    from bptt.text import lines
    f = written(tmp_path / "n.txt", "\n".join(names(80, 2)) + "\n")
    assert run_cli("train", f, *LINES, "--steps", 3, "--out", "run", cwd=tmp_path).returncode == 0
    (tmp_path / "run" / "best.npz").unlink()
    new = run_cli("sample", tmp_path / "run", "--count", 40, "--length", 12, cwd=tmp_path)
    path = str(tmp_path / "run" / "checkpoint.npz")
    arrays, meta = ckpt.load(path)
    train_rows = lines.split_index(80, 0.1, 0)[0]
    train_lines = [names(80, 2)[i] for i in train_rows]
    arrays["lines/train_hashes"] = lines.line_hashes(train_lines, lines.BLAKE)
    for key in ("line_hash", "unknown", "format", "version"):
        meta.pop(key)
    for key in ("min_count", "threads"):
        meta["config"].pop(key)
    ckpt.save(path, arrays, meta)
    old = run_cli("sample", tmp_path / "run", "--count", 40, "--length", 12, cwd=tmp_path)
    assert old.returncode == 0 and (old.stdout, old.stderr) == (new.stdout, new.stderr)
    assert "complete samples are not in the training lines" in old.stderr
    from bptt.text.train import load_run
    run = load_run(path)
    assert run.line_hash == lines.BLAKE and run.vocab.unknown == "" and run.config.threads == 0
    assert lines.count_new(train_lines[:5] + ["zzzq"], run.seen, run.line_hash) == 1
