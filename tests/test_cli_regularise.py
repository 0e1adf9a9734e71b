"""``bptt train`` with --embed, --dropout, --recurrent-dropout, --weight-decay and the
learning-rate schedule (issue 13): exact resume, SIGINT in the middle of a decay, the rate in
metrics.csv, what the checkpoint holds, bad values."""

import signal

import numpy as np
import pytest
from test_cli import (  # noqa: F401
    TINY,
    assert_resume_is_one_run,
    assert_user_error,
    corpus,
    interrupt,
    load,
    rows,
    run_cli,
    snapshot,
)

from bptt.nn.schedule import StepSchedule
from bptt.text.config import Config

# every option on; two layers so that dropout between them does something
ALL_ON = [*TINY, "--layers", "2", "--embed", "5", "--dropout", "0.2", "--recurrent-dropout",
          "0.1", "--weight-decay", "0.05", "--lr-decay", "0.8", "--lr-decay-every", "9",
          "--lr-decay-start", "20", "--lr-warmup", "6", "--log-every", "7"]


def test_resume_with_everything_on_is_bitwise_one_run(tmp_path, corpus):  # noqa: F811
    """60 -> 120 with --resume and no other flag equals 120 in one go: parameters, AdamW's
    moments, the dropout generators, metrics.csv (its lr column the schedule's rate)."""
    first = run_cli("train", corpus, *ALL_ON, "--steps", 60, "--out", "split", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert_resume_is_one_run(tmp_path, corpus, ALL_ON, "split", 120)
    _, meta = load(tmp_path / "split")
    assert meta["dropout_rng"] == load(tmp_path / "whole")[1]["dropout_rng"]
    cfg = meta["config"]
    assert (cfg["embed"], cfg["dropout"], cfg["recurrent_dropout"], cfg["weight_decay"],
            cfg["lr_decay"], cfg["lr_decay_every"], cfg["lr_decay_start"], cfg["lr_warmup"]) \
        == (5, 0.2, 0.1, 0.05, 0.8, 9, 20, 6)
    lr = Config().lr  # --lr not given: the default
    schedule = StepSchedule(lr, 0.8, 9, 20, 6)
    table = rows(tmp_path / "split")
    assert table and all(float(x["lr"]) == schedule(int(x["step"]) - 1) for x in table)
    assert float(table[0]["lr"]) == lr and float(table[-1]["lr"]) < lr * 0.8 ** 10
    assert len({x["lr"] for x in table}) > 5


def test_each_option_changes_the_run(tmp_path, corpus):  # noqa: F811
    """Each flag does something: the final parameters differ from the run without it."""
    base = ["--steps", 30, "--layers", 2]
    runs = {"plain": [], "dropout": ["--dropout", "0.3"], "rec": ["--recurrent-dropout", "0.3"],
            "wd": ["--weight-decay", "0.5"], "decay": ["--lr-decay", "0.5", "--lr-decay-every",
                                                       "5", "--lr-decay-start", "0"]}
    params = {}
    for name, flags in runs.items():
        r = run_cli("train", corpus, *TINY, *base, *flags, "--out", name, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        params[name] = load(tmp_path / name)[0]["param/rnn.weight_hh_l1"]
    for name in runs:
        if name != "plain":
            assert not np.array_equal(params[name], params["plain"]), name


def test_sigint_in_the_middle_of_a_decay_resumes_exactly(tmp_path, corpus):  # noqa: F811
    flags = [*ALL_ON, "--checkpoint-every", 100000, "--lr-decay-start", 5, "--lr-decay-every",
             3, "--lr-decay", "0.99"]
    returncode, out, err = interrupt(tmp_path, corpus, flags, signal.SIGINT, rows=4)
    assert returncode == 130, err
    _, meta = load(tmp_path / "stopped")
    step = meta["step"]
    assert 21 <= step < 100000 and out == ""     # inside the decay (from step 5 on)
    assert_resume_is_one_run(tmp_path, corpus, flags, "stopped", step + 25)


def test_resume_refuses_to_change_the_regularisation(tmp_path, corpus):  # noqa: F811
    r = run_cli("train", corpus, *TINY, "--steps", 10, "--dropout", "0.1", "--out", "run",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before = snapshot(tmp_path)
    r = run_cli("train", "--out", "run", "--resume", "--steps", 20, "--dropout", "0.3",
                cwd=tmp_path)
    assert_user_error(r, before, tmp_path, "--dropout", "0.1")


def test_sample_is_in_eval_mode(tmp_path, corpus):  # noqa: F811
    """Sampling a run trained with dropout gives the text of the same weights without dropout:
    the same seed, the same text, twice."""
    r = run_cli("train", corpus, *TINY, "--layers", 2, "--steps", 10, "--dropout", "0.5",
                "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    a = run_cli("sample", "run", "--length", 40, "--seed", 1, cwd=tmp_path)
    b = run_cli("sample", "run", "--length", 40, "--seed", 1, cwd=tmp_path)
    assert a.returncode == 0 and a.stdout == b.stdout
    from bptt.text.train import load_model
    model, vocab, _ = load_model(str(tmp_path / "run"))
    assert not model.training and not model.rnn.training


BAD = [
    (["--embed", "-1"], "--embed"), (["--embed", "2.5"], "--embed"),
    (["--dropout", "1"], "--dropout"), (["--dropout", "-0.1"], "--dropout"),
    (["--dropout", "nan"], "--dropout"), (["--recurrent-dropout", "1.5"], "--recurrent-dropout"),
    (["--weight-decay", "-1"], "--weight-decay"), (["--weight-decay", "inf"], "--weight-decay"),
    (["--lr-decay", "0"], "--lr-decay"), (["--lr-decay", "1.5"], "--lr-decay"),
    (["--lr-decay-every", "0"], "--lr-decay-every"),
    (["--lr-decay-start", "-1"], "--lr-decay-start"), (["--lr-warmup", "-2"], "--lr-warmup"),
    (["--lr-warmup", "x"], "--lr-warmup"),
]


@pytest.mark.parametrize("flags,word", BAD, ids=[" ".join(f) for f, _ in BAD])
def test_bad_flags_are_one_line(tmp_path, corpus, flags, word):  # noqa: F811
    before = snapshot(tmp_path)
    r = run_cli("train", corpus, *TINY, *flags, cwd=tmp_path)
    assert_user_error(r, before, tmp_path, word)
