"""`bptt train --lines` and `bptt sample --count` end to end, through subprocess in tmp_path, on
a tiny generated list of names: the run folder, best.npz, exact resume, signals, NaN stop,
sampling and the novelty count, the built-in names corpus, and each bad input."""

import os
import shutil
import signal

import numpy as np
import pytest
from test_cli import (
    assert_best_is_lowest,
    assert_resume_is_one_run,
    assert_user_error,
    interrupt,
    load,
    rows,
    run_cli,
    snapshot,
)

from bptt.text.config import PRESETS, Config

TINY = ["--lines", "--hidden", "8", "--layers", "1", "--batch", "4", "--eval-every", "20",
        "--checkpoint-every", "25", "--log-every", "5"]


def names(n, seed):
    """n distinct made-up names of 2 to 4 syllables (one with an inner space and an accent)."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ra", "ne", "to", "sa", "vi", "du", "é"]
    out = {"jean luc"}
    while len(out) < n:
        out.add("".join(rng.choice(syllables, size=rng.integers(2, 5))))
    return sorted(out)                          # sorted, as such files often are


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("lines") / "names.txt"
    path.write_text("\n".join(names(120, 0)) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    cwd = tmp_path_factory.mktemp("trained_lines")
    r = run_cli("train", corpus, *TINY, "--steps", 60, "--out", "run", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return cwd / "run", r


def training_lines(corpus, val_fraction=0.1, seed=0):
    """The split by the rule docs/cli.md states: a permutation by default_rng(seed), the first
    round(n * val_fraction) of it held out."""
    lines = [s.strip() for s in corpus.read_text(encoding="utf-8").split("\n") if s.strip()]
    order = np.random.default_rng(seed).permutation(len(lines))
    n_val = max(1, round(len(lines) * val_fraction))
    return {lines[i] for i in order[n_val:]}, {lines[i] for i in order[:n_val]}


def novelty(samples, seen, length, prime=""):
    """What `bptt sample --count` says: the complete samples (ended before --length, something
    drawn) that are new; the empty and the cut ones counted apart."""
    done = [s for s in samples if s != prime and len(s) - len(prime) < length]
    empty = sum(s == prime for s in samples)
    cut = len(samples) - len(done) - empty
    out = (f"{sum(s not in seen for s in done)} of {len(done)} complete samples are not in the "
           "training lines")
    out += f"; {empty} empty" if empty else ""
    return out + (f"; {cut} cut at --length {length} (raise it to let them end)" if cut else "")


def test_train_lines_writes_the_run_folder(trained, corpus):
    run, r = trained
    assert sorted(os.listdir(run)) == [".lock", "best.npz", "checkpoint.npz", "loss.png",
                                       "metrics.csv"]
    table = rows(run)
    assert [int(x["step"]) for x in table if x["val_loss"]] == [20, 40, 60]
    assert float(table[-1]["train_loss"]) < float(table[0]["train_loss"])
    assert_best_is_lowest(run)
    arrays, meta = load(run)
    assert meta["config"]["lines"] is True and meta["step"] == 60
    assert set(meta["vocab"]) == set(corpus.read_text(encoding="utf-8")) - {""}   # with "\n"
    assert "order" in arrays and sorted(arrays["order"]) == list(range(108))      # 120 - 12
    assert arrays["lines/train_hashes"].shape == (108,)
    assert "state/0" not in arrays               # no state carried between samples
    printed = r.stdout.splitlines()              # ten samples, one per line
    assert len(printed) == 10 and set("".join(printed)) <= set(meta["vocab"])


def test_sample_count_prime_and_novelty(trained, corpus):
    run, _ = trained
    seen, _ = training_lines(corpus)
    a = run_cli("sample", run, "--count", 30, "--seed", 5, "--length", 12, cwd=run.parent)
    assert a.returncode == 0, a.stderr
    got = a.stdout.split("\n")
    assert got[-1] == "" and len(got[:-1]) == 30 and all(len(s) <= 12 for s in got)
    assert a.stderr == novelty(got[:-1], seen, 12) + "\n"
    b = run_cli("sample", run, "--count", 30, "--seed", 5, "--length", 12, cwd=run.parent)
    assert b.stdout == a.stdout
    p = run_cli("sample", run, "--count", 4, "--prime", "jean ", cwd=run.parent)
    assert p.returncode == 0 and all(s.startswith("jean ") for s in p.stdout.splitlines())
    assert len(p.stdout.splitlines()) == 4
    d = run_cli("sample", run, cwd=run.parent)
    assert d.returncode == 0 and len(d.stdout.splitlines()) == 10      # default --count


def test_sample_novelty_of_identical_greedy_samples(tmp_path):
    """Greedy samples are all the same line: 0 of 3 new if it is a training line, else 3 of 3."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(["kalo", "mira", "neto", "sadu"] * 1) + "\n", encoding="utf-8")
    r = run_cli("train", corpus, *TINY, "--steps", 2, "--val-fraction", 0.25, "--out", "run",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    seen, held = training_lines(corpus, 0.25)
    greedy = run_cli("sample", tmp_path / "run", "--count", 3, "--temperature", 0,
                     "--length", 10, cwd=tmp_path)
    out = greedy.stdout.split("\n")[:-1]
    assert len(set(out)) == 1
    assert greedy.stderr == novelty(out, seen, 10) + "\n"
    assert held and not held & seen


def test_sample_best_by_default_latest_on_request(tmp_path, corpus):
    """40 steps at a sane rate, then 20 at --lr 1 wreck the model: best.npz stays at step 40."""
    r = run_cli("train", corpus, *TINY, "--steps", 40, "--lr", "0.05", "--out", "run",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--out", "run", "--resume", "--steps", 60, "--lr", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    assert_best_is_lowest(run)
    assert load(run, "best.npz")[1]["step"] == 40 and "best" in r.stderr.splitlines()[-3]
    args = ["--count", 8, "--seed", 1]
    default = run_cli("sample", run, *args, cwd=tmp_path).stdout
    assert default == run_cli("sample", run / "best.npz", *args, cwd=tmp_path).stdout
    latest = run_cli("sample", run, "--latest", *args, cwd=tmp_path).stdout
    assert latest == run_cli("sample", run / "checkpoint.npz", *args, cwd=tmp_path).stdout
    assert latest != default


def test_resume_lines_is_bitwise_identical_to_one_run(tmp_path, corpus):
    flags = [*TINY, "--log-every", 7, "--batch", 16]   # an epoch is 7 batches: epochs straddle
    first = run_cli("train", corpus, *flags, "--steps", 60, "--out", "split", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert_resume_is_one_run(tmp_path, corpus, flags, "split", 120)
    assert load(tmp_path / "whole")[1]["config"]["lines"] is True


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_lines_signal_saves_and_resume_matches(tmp_path, corpus, sig, code):
    flags = [*TINY, "--checkpoint-every", 100000, "--eval-every", 100000]
    returncode, out, err = interrupt(tmp_path, corpus, flags, sig)
    assert returncode == code, err
    assert "Traceback" not in err and "--resume" in err.splitlines()[-1]
    step = load(tmp_path / "stopped")[1]["step"]
    assert_resume_is_one_run(tmp_path, corpus, flags, "stopped", step + 9)


def test_lines_overflowing_lr_stops_in_one_line(tmp_path, corpus):
    r = run_cli("train", corpus, *TINY, "--lr", "1e38", "--steps", 20, "--out", "run",
                cwd=tmp_path)
    lines = [x for x in r.stderr.replace("\r", "\n").splitlines()
             if "step/s" not in x and x and not x.startswith("corpus: ")]
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == "", r.stderr
    assert len(lines) == 1 and "stopped" in lines[0] and "step" in lines[0], lines


def test_builtin_names_implies_lines_and_its_defaults(tmp_path):
    r = run_cli("train", "--builtin", "names", "--steps", 2, "--hidden", 16, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _, meta = load(tmp_path / "runs" / "names")
    cfg = meta["config"]
    assert cfg["lines"] is True and cfg["builtin"] == "names" and cfg["corpus"] == []
    preset = PRESETS["names"]                    # the names defaults, except what was given
    assert (cfg["hidden"], cfg["layers"], cfg["lr"], cfg["steps"], cfg["eval_every"]) == \
        (16, preset["layers"], preset["lr"], 2, preset["eval_every"])
    assert preset["eval_every"] != Config.eval_every and preset["steps"] != Config.steps
    assert [r["step"] for r in rows(tmp_path / "runs" / "names") if r["val_loss"]] == ["2"]
    s = run_cli("sample", tmp_path / "runs" / "names", "--count", 3, cwd=tmp_path)
    assert s.returncode == 0 and len(s.stdout.splitlines()) == 3
    assert "complete samples are not in the training lines" in s.stderr
    again = run_cli("train", "--builtin", "names", "--resume", "--steps", 3, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    h = run_cli("train", "--help", cwd=tmp_path)
    assert "names" in h.stdout and "tinyshakespeare" in h.stdout and "--builtin" in h.stdout


def test_python_config_for_names_takes_the_preset_where_left_at_default(tmp_path):
    from bptt.text.train import train

    result = train(Config(builtin="names", steps=2, hidden=8, layers=1,
                          out=str(tmp_path / "run")), progress=False)
    cfg = load(tmp_path / "run")[1]["config"]
    assert cfg["lines"] is True and cfg["eval_every"] == PRESETS["names"]["eval_every"]
    assert (cfg["hidden"], cfg["steps"]) == (8, 2) and result.best[0] == 2
    assert len(result.sample.split("\n")) == 10


def test_a_file_named_like_a_builtin_is_a_file(tmp_path, corpus):
    shutil.copy(corpus, tmp_path / "names")
    r = run_cli("train", "names", *TINY, "--steps", 2, "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert load(tmp_path / "run")[1]["corpus_chars"] == len(corpus.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", ["no_line", "long_line", "seq_len", "eval_chars", "both",
                                  "bad_builtin", "one_line"])
def test_bad_lines_input(tmp_path, corpus, case):
    args, word = ["train", corpus, *TINY], ""
    if case == "no_line":
        (tmp_path / "e.txt").write_text("\n  \n\n")
        args, word = ["train", tmp_path / "e.txt", *TINY], "no non-empty line"
    elif case == "long_line":
        (tmp_path / "l.txt").write_text("ok\n" + "x" * 300 + "\n")
        args, word = ["train", tmp_path / "l.txt", *TINY], "line 2 has 300 characters"
    elif case == "seq_len":
        args, word = [*args, "--seq-len", 5], "--seq-len"
    elif case == "eval_chars":
        args, word = [*args, "--eval-chars", 5], "--eval-chars"
    elif case == "both":
        args, word = [*args, "--builtin", "names"], "--builtin"
    elif case == "bad_builtin":
        args, word = ["train", "--builtin", "./names.txt"], "--builtin"
    elif case == "one_line":
        (tmp_path / "o.txt").write_text("solo\n")
        args, word = ["train", tmp_path / "o.txt", *TINY], "too few"
    before = snapshot(tmp_path)
    assert_user_error(run_cli(*args, cwd=tmp_path), before, tmp_path, word)


@pytest.mark.parametrize("case", ["count_on_stream", "count_zero", "latest_on_file",
                                  "prime_newline"])
def test_bad_sample_lines_flags(tmp_path, trained, case):
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    args, word = ["sample", run, "--count", 0], "--count"
    if case == "count_on_stream":
        stream = tmp_path / "s.txt"
        stream.write_text("abcdefgh" * 40)
        r = run_cli("train", stream, "--hidden", 4, "--layers", 1, "--seq-len", 4, "--batch", 2,
                    "--steps", 1, "--out", "stream", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        args = ["sample", tmp_path / "stream", "--count", 3]
    elif case == "latest_on_file":
        args, word = ["sample", run / "best.npz", "--latest"], "--latest"
    elif case == "prime_newline":
        args, word = ["sample", run, "--prime", "ka\nlo"], "--prime"
    before = snapshot(tmp_path)
    assert_user_error(run_cli(*args, cwd=tmp_path), before, tmp_path, word)
