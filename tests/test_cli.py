"""The command line end to end, through subprocess in tmp_path, on a small corpus, tiny model:
train, sample, exact resume, SIGINT/SIGTERM, and each bad input (one line, no traceback,
nothing changed)."""

import csv
import hashlib
import importlib.util
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bptt import cli
from bptt.text import lm as bptt_lm

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "8", "--layers", "1", "--seq-len", "8", "--batch", "4", "--eval-every", "20",
        "--checkpoint-every", "25", "--log-every", "5"]
TIMING = ("chars_per_sec", "elapsed_s")


def environment():
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path)


def run_cli(*args, cwd, timeout=120):
    env = environment()
    return subprocess.run([sys.executable, "-m", "bptt.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def popen(*args, cwd):
    env = environment()
    return subprocess.Popen([sys.executable, "-m", "bptt.cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8")


def interrupt(tmp_path, corpus, flags, sig, rows=3):
    """``bptt train corpus *flags`` into tmp_path/stopped, sent ``sig`` once its metrics.csv has
    more than ``rows`` lines; returns (exit code, stdout, stderr)."""
    p = popen("train", corpus, *flags, "--steps", 100000, "--out", "stopped", cwd=tmp_path)
    metrics, deadline = tmp_path / "stopped" / "metrics.csv", time.time() + 60
    while time.time() < deadline and p.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) > rows:
            break
        time.sleep(0.05)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


def assert_resume_is_one_run(tmp_path, corpus, flags, out, steps):
    """Resume the run in tmp_path/out to ``steps``, train ``flags`` to ``steps`` in one go into
    tmp_path/whole, and check the two are the same run; returns the resume's result."""
    r = run_cli("train", "--out", out, "--resume", "--steps", steps, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    whole = run_cli("train", corpus, *flags, "--steps", steps, "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert_same_run(tmp_path / "whole", tmp_path / out)
    return r


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """~6k characters of Shakespeare with accents, CJK and emoji mixed in."""
    text = (REPO / "bptt" / "corpus" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:5000]
    text += "Café naïve, 日本語の歌 🙂🎉\n" * 40
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    """A finished 60-step run (copy it before changing it)."""
    cwd = tmp_path_factory.mktemp("trained")
    r = run_cli("train", corpus, *TINY, "--steps", 60, "--out", "run", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return cwd / "run", r


def snapshot(root):
    """Every path under root with a hash of its bytes and its mtime."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        st = p.stat()
        out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                       st.st_mtime_ns)
    return out


def rows(run):
    with open(Path(run) / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def untimed(run):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows(run)]


def load(run, name="checkpoint.npz"):
    with np.load(Path(run) / name, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("__meta__")))


def assert_same_run(a, b):
    for name in ("checkpoint.npz", "best.npz"):
        arr_a, meta_a = load(a, name)
        arr_b, meta_b = load(b, name)
        assert sorted(arr_a) == sorted(arr_b)
        for k in arr_a:
            assert arr_a[k].dtype == arr_b[k].dtype and np.array_equal(arr_a[k], arr_b[k]), k
        for k in ("step", "position", "adam_t", "rng", "loss_sum", "loss_count", "vocab",
                  "last_val", "best"):
            assert meta_a[k] == meta_b[k], k
    assert untimed(a) == untimed(b)


def assert_best_is_lowest(run):
    """best.npz holds the step of the lowest validation loss in metrics.csv, and each row's
    best_step says which step that was so far."""
    table, low = rows(run), None
    for r in table:
        if r["val_loss"] and (low is None or float(r["val_loss"]) < low[1]):
            low = (int(r["step"]), float(r["val_loss"]))
        assert r["best_step"] == ("" if low is None else str(low[0])), r
    _, meta = load(run, "best.npz")
    assert meta["step"] == low[0] and meta["best"] == [low[0], low[1]]
    assert meta["last_val"] == [low[0], low[1]]


def assert_user_error(r, before, root, *words):
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "\n" not in err and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""
    for w in words:
        assert w in err, (w, err)
    assert snapshot(root) == before


# ------------------------------------------------------------------------------ happy paths

def test_train_writes_the_run_folder(trained, corpus):
    run, r = trained
    assert sorted(os.listdir(run)) == [".lock", "best.npz", "checkpoint.npz", "loss.png",
                                       "metrics.csv"]
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = rows(run)
    assert list(table[0]) == ["step", "train_loss", "val_loss", "chars_per_sec", "elapsed_s",
                              "best_step", "lr"]
    assert [int(x["step"]) for x in table] == list(range(5, 61, 5))
    assert [int(x["step"]) for x in table if x["val_loss"]] == [20, 40, 60]
    assert_best_is_lowest(run)
    losses = [float(x["train_loss"]) for x in table]
    assert losses[-1] < losses[0] and all(float(x["chars_per_sec"]) > 0 for x in table)
    _, meta = load(run)
    assert meta["step"] == 60 and meta["config"]["hidden"] == 8
    assert set(meta["vocab"]) == set(corpus.read_text(encoding="utf-8"))
    assert "done: 60 steps" in r.stderr and "bptt sample" in r.stderr
    assert len(r.stdout) > 100                           # the sample, and only it, on stdout
    assert set(r.stdout) <= set(meta["vocab"])


def test_default_out_is_named_after_the_corpus(tmp_path, corpus):
    r = run_cli("train", corpus, *TINY, "--steps", 5, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "corpus" / "checkpoint.npz").exists()


def test_sample_same_seed_same_text(trained):
    run, _ = trained
    a = run_cli("sample", run, "--length", 80, "--seed", 3, cwd=run.parent)
    b = run_cli("sample", run / "best.npz", "--length", 80, "--seed", 3, cwd=run.parent)
    c = run_cli("sample", run, "--length", 80, "--seed", 4, cwd=run.parent)
    assert a.returncode == 0 and a.stderr == "" and a.stdout == b.stdout != c.stdout
    assert len(a.stdout) == 81 and a.stdout.endswith("\n")
    g = run_cli("sample", run, "--length", 20, "--temperature", 0, "--prime", "日本🙂",
                "--top-k", 3, cwd=run.parent)
    assert g.returncode == 0 and g.stdout.startswith("日本🙂") and len(g.stdout) == 3 + 20 + 1


def test_resume_is_bitwise_identical_to_one_run(tmp_path, corpus):
    flags = [*TINY, "--log-every", 7, "--eval-every", 20]   # row 63 straddles the resume point
    first = run_cli("train", corpus, *flags, "--steps", 60, "--out", "split", cwd=tmp_path)
    assert first.returncode == 0
    with open(tmp_path / "split" / "metrics.csv", "a") as fh:   # a row a killed run left behind
        fh.write("65,9.99,,1.0,1.0\n")
    r = assert_resume_is_one_run(tmp_path, corpus, flags, "split", 120)
    assert "resuming" in r.stderr


def test_a_run_validates_at_its_end(tmp_path, corpus):
    """--eval-every 25 with --steps 60: validations at 25, 50 and the end, 60. Resumed to 120,
    the run equals one that never stopped except for that extra validation row at 60 (and what
    counts as best)."""
    flags = [*TINY, "--log-every", 7, "--eval-every", 25]
    first = run_cli("train", corpus, *flags, "--steps", 60, "--out", "split", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    table = rows(tmp_path / "split")
    assert [r["step"] for r in table if r["val_loss"]] == ["25", "50", "60"]
    assert table[-1]["step"] == "60" and f"val loss {float(table[-1]['val_loss']):.4f} at step " \
        "60" in first.stderr
    assert_best_is_lowest(tmp_path / "split")
    r = run_cli("train", "--out", "split", "--resume", "--steps", 120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    whole = run_cli("train", corpus, *flags, "--steps", 120, "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    arr_a, meta_a = load(tmp_path / "whole")
    arr_b, meta_b = load(tmp_path / "split")
    assert sorted(arr_a) == sorted(arr_b) and all(np.array_equal(arr_a[k], arr_b[k]) for k in arr_a)
    for k in ("step", "position", "adam_t", "rng", "loss_sum", "loss_count", "last_val"):
        assert meta_a[k] == meta_b[k], k
    unbest = [[{k: v for k, v in x.items() if k != "best_step"} for x in untimed(d)]
              for d in (tmp_path / "whole", tmp_path / "split")]
    extra = [x for x in unbest[1] if x["step"] == "60"]
    assert len(extra) == 1 and extra[0]["val_loss"]
    assert unbest[0] == [x for x in unbest[1] if x["step"] != "60"]
    assert_best_is_lowest(tmp_path / "split")


def test_validation_does_not_disturb_training(tmp_path, corpus):
    for out, extra in (("all", []), ("some", ["--eval-chars", 50])):
        r = run_cli("train", corpus, *TINY, "--steps", 40, "--out", out, *extra, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    arr_a, _ = load(tmp_path / "all")
    arr_b, _ = load(tmp_path / "some")
    assert all(np.array_equal(arr_a[k], arr_b[k]) for k in arr_a)
    val = [[x["val_loss"] for x in rows(tmp_path / d) if x["val_loss"]] for d in ("all", "some")]
    assert len(val[0]) == len(val[1]) == 2 and val[0] != val[1]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_and_resume_matches(tmp_path, corpus, sig, code):
    flags = [*TINY, "--checkpoint-every", 100000]
    returncode, out, err = interrupt(tmp_path, corpus, flags, sig)
    assert returncode == code, err
    assert "Traceback" not in err and "--resume" in err.splitlines()[-1]
    _, meta = load(tmp_path / "stopped")
    step = meta["step"]
    assert 15 <= step < 100000 and out == ""
    assert_resume_is_one_run(tmp_path, corpus, flags, "stopped", step + 30)


def test_nan_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, corpus, monkeypatch,
                                                                 capsys):
    real, calls = bptt_lm.CharLM.loss_and_grads, []

    def flaky(self, x, y, state=None, lengths=None):
        calls.append(1)
        loss, state = real(self, x, y, state, lengths)
        return (float("nan") if len(calls) == 7 else loss), state

    monkeypatch.setattr(bptt_lm.CharLM, "loss_and_grads", flaky)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["train", str(corpus), *map(str, TINY), "--checkpoint-every", "5",
                   "--steps", "20", "--out", "run"])
    err = capsys.readouterr().err
    assert rc == 1 and "step 7" in err.splitlines()[-1] and "nan" in err.splitlines()[-1]
    _, meta = load(tmp_path / "run")
    assert meta["step"] == 5


@pytest.mark.parametrize("eval_every,checkpoint_every", [(1, 1000), (1000, 1), (1000, 1000)])
def test_overflowing_lr_stops_in_one_line_without_a_bad_checkpoint(tmp_path, corpus, eval_every,
                                                                   checkpoint_every):
    # Adam's first step moves every parameter by ~lr: float32 overflows, the recurrent output is
    # NaN, which the head would refuse with a ValueError traceback
    r = run_cli("train", corpus, *TINY, "--lr", "1e38", "--steps", 20, "--out", "run",
                "--eval-every", eval_every, "--checkpoint-every", checkpoint_every, cwd=tmp_path)
    lines = [x for x in r.stderr.replace("\r", "\n").splitlines()
             if "step/s" not in x and x and not x.startswith("corpus: ")]
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == "", r.stderr
    assert len(lines) == 1 and "stopped" in lines[0] and "step" in lines[0], lines
    saved = (tmp_path / "run" / "checkpoint.npz").exists()
    assert ("--resume" in lines[0]) == saved and ("no checkpoint" in lines[0]) != saved, lines
    if saved:
        arrays, _ = load(tmp_path / "run")
        assert all(np.isfinite(a).all() for a in arrays.values())


def test_out_of_memory_is_one_line(tmp_path, corpus):
    before = snapshot(tmp_path)
    r = run_cli("train", corpus, *TINY, "--hidden", 10**7, cwd=tmp_path)   # a PiB of weights
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "not enough memory" in r.stderr
    assert snapshot(tmp_path) == before


def test_sample_from_a_diverged_model_is_one_line(trained, monkeypatch, capsys):
    def diverged(self, x, state=None, lengths=None):
        raise FloatingPointError("the model's recurrent output is NaN or infinite")

    monkeypatch.setattr(bptt_lm.CharLM, "forward", diverged)
    assert cli.main(["sample", str(trained[0])]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "NaN or infinite" in err


def test_import_bptt_stays_light():
    code = ("import sys, bptt; "
            "print([m for m in ('matplotlib', 'tqdm', 'torch') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.stdout.strip() == "[]", r.stderr


def test_bench_is_wired():
    r = run_cli("bench", "--help", cwd=REPO)
    if importlib.util.find_spec("bptt.tools.bench") is None:
        assert r.returncode == 2 and "bench" in r.stderr and "\n" not in r.stderr.strip()
    else:
        assert r.returncode == 0 and "usage: bptt bench" in r.stdout


# ------------------------------------------------------------------------------ bad input

TRAIN_FLAGS = [
    (["--steps", "0"], "--steps"), (["--steps", "-3"], "--steps"), (["--steps", "x"], "--steps"),
    (["--lr", "0"], "--lr"), (["--lr", "nan"], "--lr"), (["--val-fraction", "1"], "--val-fraction"),
    (["--val-fraction", "0"], "--val-fraction"), (["--batch", "0"], "--batch"),
    (["--clip", "-1"], "--clip"), (["--cell", "lstmx"], "--cell"),
    (["--dtype", "float16"], "--dtype"),
    (["--seed", "-1"], "--seed"), (["--bogus"], "--bogus"), (["--batch", "4000"], "--batch"),
    (["--hidden", "2.5"], "--hidden"), (["--eval-every", "0"], "--eval-every"),
    (["--val-fraction", "0.0001"], "--val-fraction"), (["--val-fraction", "0.999"], "--batch"),
]


@pytest.mark.parametrize("flags,word", TRAIN_FLAGS, ids=[" ".join(f) for f, _ in TRAIN_FLAGS])
def test_bad_train_flags(tmp_path, corpus, flags, word):
    before = snapshot(tmp_path)
    r = run_cli("train", corpus, *TINY, *flags, cwd=tmp_path)
    assert_user_error(r, before, tmp_path, word)


@pytest.mark.parametrize("case", ["missing", "empty", "empty_folder", "undecodable"])
def test_bad_corpus(tmp_path, case):
    path = tmp_path / "c.txt"
    if case == "empty":
        path.write_text("")
    elif case == "empty_folder":
        path = tmp_path / "texts"
        path.mkdir()
    elif case == "undecodable":
        path.write_bytes("Café ".encode("latin-1") * 100)
    before = snapshot(tmp_path)
    r = run_cli("train", path, *TINY, cwd=tmp_path)
    assert_user_error(r, before, tmp_path, str(path))


@pytest.mark.parametrize("case", ["no_resume", "nothing_to_resume", "changed_flag", "done",
                                  "changed_corpus", "corrupt"])
def test_bad_run_folder(tmp_path, trained, corpus, case):
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    args, word = ["train", corpus, *TINY, "--out", run, "--steps", 100], ""
    if case == "no_resume":
        word = "--resume"
    elif case == "nothing_to_resume":
        args, word = ["train", "--out", tmp_path / "other", "--resume"], "nothing to resume"
    elif case == "changed_flag":
        args, word = ["train", "--out", run, "--resume", "--hidden", 16], "--hidden"
    elif case == "done":
        args, word = ["train", "--out", run, "--resume", "--steps", 60], "--steps"
    elif case == "changed_corpus":
        other = tmp_path / "other.txt"
        other.write_text(corpus.read_text(encoding="utf-8")[::-1], encoding="utf-8")
        args, word = ["train", other, "--out", run, "--resume", "--steps", 100], "corpus"
    elif case == "corrupt":
        raw = (run / "checkpoint.npz").read_bytes()
        (run / "checkpoint.npz").write_bytes(raw[:1000])
        args, word = ["train", "--out", run, "--resume", "--steps", 100], "corrupt"
    before = snapshot(tmp_path)
    assert_user_error(run_cli(*args, cwd=tmp_path), before, tmp_path, word)


def damage(path, how):
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "flipped":
        b = bytearray(raw)
        for i in range(len(b) // 2, len(b) // 2 + 64):
            b[i] ^= 0x5A
        path.write_bytes(bytes(b))
    elif how == "foreign":
        np.savez(path.with_suffix(""), weights=np.zeros(3))
    elif how == "pickle":
        path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif how == "pickled_array":
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["param/rnn.weight_ih_l0"] = np.array([object()], dtype=object)
        np.savez(path.with_suffix(""), **arrays)
    elif how == "text":
        path.write_text("not a checkpoint")
    elif how == "vocab_not_text":
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        meta["vocab"] = list(meta["vocab"])
        np.savez(path.with_suffix(""), __meta__=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize("how", ["truncated", "flipped", "foreign", "pickle", "pickled_array",
                                 "text", "vocab_not_text"])
@pytest.mark.parametrize("name", ["best.npz", "checkpoint.npz"])
def test_bad_checkpoint_for_sample(tmp_path, trained, how, name):
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    damage(run / name, how)
    before = snapshot(tmp_path)
    latest = ["--latest"] if name == "checkpoint.npz" else []    # the default reads best.npz
    r = run_cli("sample", run, *latest, cwd=tmp_path)
    assert_user_error(r, before, tmp_path, name)


SAMPLE_FLAGS = [(["--temperature", "-1"], "--temperature"), (["--top-k", "0"], "--top-k"),
                (["--length", "0"], "--length"), (["--prime", "snow ☃"], "U+2603"),
                (["--seed", "-2"], "--seed"), (["--length", "many"], "--length")]


@pytest.mark.parametrize("flags,word", SAMPLE_FLAGS, ids=[" ".join(f) for f, _ in SAMPLE_FLAGS])
def test_bad_sample_flags(tmp_path, trained, flags, word):
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    before = snapshot(tmp_path)
    assert_user_error(run_cli("sample", run, *flags, cwd=tmp_path), before, tmp_path, word)


def test_sample_missing_run(tmp_path):
    before = snapshot(tmp_path)
    assert_user_error(run_cli("sample", tmp_path / "nope", cwd=tmp_path), before, tmp_path, "nope")


def test_a_run_folder_inside_the_corpus_folder_is_not_read_as_corpus(tmp_path, corpus):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text(open(corpus, encoding="utf-8").read(), encoding="utf-8")
    first = run_cli("train", ".", *TINY, "--steps", 20, "--out", "runs/texts", cwd=texts)
    assert first.returncode == 0, first.stderr
    again = run_cli("train", ".", "--out", "runs/texts", "--resume", "--steps", 30, cwd=texts)
    assert again.returncode == 0, again.stderr
    assert rows(texts / "runs" / "texts")[-1]["step"] == "30"
