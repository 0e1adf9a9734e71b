"""The Python API of the character model (bptt.train, bptt.load, Model): bptt/text/api.py."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bptt
from bptt import cli
from bptt.text import api
from bptt.text.config import ConfigError, RunError

REPO = Path(__file__).resolve().parents[1]
TINY = {"hidden": 8, "layers": 2, "batch": 4, "seq_len": 8, "log_every": 5, "eval_every": 10,
        "progress": False}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text("the cat sat on the mat. a dog ran to the log.\n" * 40, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("runs") / "stream"
    return api.train(corpus, out=str(out), steps=20, **TINY)


def test_train_returns_the_history_of_metrics_csv(stream_run):
    with open(Path(stream_run.out) / "metrics.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["5", "10", "15", "20"]
    assert len(stream_run.history) == len(rows)
    for mine, theirs in zip(stream_run.history, rows, strict=True):
        assert mine["step"] == int(theirs["step"])
        assert mine["train_loss"] == float(theirs["train_loss"])
        assert mine["val_loss"] == (float(theirs["val_loss"]) if theirs["val_loss"] else None)
    assert stream_run.history[-1]["val_loss"] == stream_run.val[1]
    assert (stream_run.step, stream_run.steps, stream_run.interrupted) == (20, 20, "")
    assert stream_run.config.hidden == 8 and stream_run.sample


def test_top_level_names_are_the_api_and_text_train_stays_a_module():
    assert bptt.train is api.train and bptt.load is api.load
    assert {"train", "load"} <= set(dir(bptt)) and {"train", "load"} <= set(bptt.__all__)
    import bptt.text.train as module
    assert module.__name__ == "bptt.text.train" and callable(module.train)


def test_an_existing_run_folder_needs_resume_or_overwrite(tmp_path, corpus):
    out = tmp_path / "run"
    api.train(corpus, out=str(out), steps=10, **TINY)
    before = (out / "checkpoint.npz").read_bytes()
    with pytest.raises(RunError, match=f"{out}.*resume=True.*overwrite=True"):
        api.train(corpus, out=str(out), steps=10, **TINY)
    assert (out / "checkpoint.npz").read_bytes() == before
    # overwrite with a bad setting or a bad corpus: checked first, nothing removed
    with pytest.raises(ConfigError, match="^hidden: expected"):
        api.train(corpus, out=str(out), steps=10, overwrite=True, **{**TINY, "hidden": 0})
    with pytest.raises(ValueError, match="missing"):
        api.train(tmp_path / "missing.txt", out=str(out), steps=10, overwrite=True, **TINY)
    with pytest.raises(ValueError, match="seq_len"):         # a corpus too small for it
        api.train(corpus, out=str(out), steps=10, overwrite=True, **{**TINY, "seq_len": 10**6})
    assert (out / "checkpoint.npz").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [".lock", "best.npz", "checkpoint.npz",
                                                      "loss.png", "metrics.csv"]
    # resume: the same cell with more steps continues; the history goes on from the old rows
    more = api.train(corpus, out=str(out), steps=20, resume=True, **TINY)
    assert more.step == 20 and [r["step"] for r in more.history] == [5, 10, 15, 20]
    # overwrite: starts over
    again = api.train(corpus, out=str(out), steps=5, overwrite=True, **{**TINY, "eval_every": 5})
    assert again.step == 5 and [r["step"] for r in again.history] == [5]
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    with pytest.raises(ValueError, match="pass one of them"):
        api.train(corpus, out=str(out), resume=True, overwrite=True)


def test_bad_options_name_the_keyword(tmp_path, corpus):
    with pytest.raises(TypeError, match="unexpected option 'hiden'"):
        api.train(corpus, out=str(tmp_path / "r"), hiden=8)
    with pytest.raises(TypeError, match="out: expected a folder path, got 3"):
        api.train(corpus, out=3)
    run = api.train([corpus], out=tmp_path / "p", steps=2, **TINY)      # pathlib paths
    assert run.out == str(tmp_path / "p") and run.step == 2
    with pytest.raises(TypeError, match="corpus: expected a path"):
        api.train(3, out=str(tmp_path / "r"))
    with pytest.raises(ConfigError, match="^seq_len: expected an integer >= 1, got 0"):
        api.train(corpus, out=str(tmp_path / "r"), seq_len=0)
    with pytest.raises(RunError, match="nothing to resume"):
        api.train(corpus, out=str(tmp_path / "r"), resume=True)
    assert not (tmp_path / "r").exists()


def test_progress_comes_from_tqdm_auto(tmp_path, corpus, monkeypatch):
    import tqdm.auto

    made = []

    class Bar:
        def __init__(self, **kwargs):
            made.append(kwargs)
            self.n = kwargs["initial"]

        def update(self, n):
            self.n += n

        def set_postfix(self, **kwargs):
            pass

        def close(self):
            made.append(self.n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    api.train(corpus, out=str(tmp_path / "r"), steps=7, **{**TINY, "progress": True})
    assert made[0]["total"] == 7 and made[-1] == 7


def test_an_interrupted_run_says_so_and_resumes(tmp_path, corpus, monkeypatch):
    import tqdm.auto

    class Interrupting:                 # Ctrl-C (a notebook's stop button) during step 3
        def __init__(self, **kwargs):
            self.n = kwargs["initial"]

        def update(self, n):
            self.n += n
            if self.n == 3:
                signal.raise_signal(signal.SIGINT)

        def set_postfix(self, **kwargs):
            pass

        def close(self):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Interrupting)
    out = tmp_path / "r"
    stopped = api.train(corpus, out=str(out), steps=12, **{**TINY, "progress": True})
    assert stopped.interrupted == "SIGINT" and stopped.step == 3 and "interrupted" in repr(stopped)
    assert (out / "checkpoint.npz").exists() and stopped.sample == ""
    done = api.train(corpus, out=str(out), steps=12, resume=True, **TINY)
    assert done.step == 12 and done.interrupted == ""
    # a run that never stopped ends with the same parameters (resume is exact)
    whole = api.train(corpus, out=str(tmp_path / "whole"), steps=12, **TINY)
    a, b = api.load(done.out, latest=True).lm.params, api.load(whole.out, latest=True).lm.params
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_sample_matches_the_command_line(stream_run, capsys):
    model = bptt.load(stream_run.out)
    text = model.sample(length=40, prime="the ", temperature=0.8, top_k=5, seed=3)
    assert cli.main(["sample", stream_run.out, "--length", "40", "--prime", "the ",
                     "--temperature", "0.8", "--top-k", "5", "--seed", "3"]) == 0
    assert capsys.readouterr().out == text + "\n"
    assert text.startswith("the ") and len(text) == 44
    assert model.sample(length=40, seed=3) == model.sample(length=40, seed=3)


def test_sample_errors_name_the_keyword(stream_run):
    model = api.load(stream_run.out)
    for kwargs, match in [({"temperature": -1}, "^temperature:"), ({"top_k": 0}, "^top_k:"),
                          ({"length": 0}, "^length:"), ({"seed": -1}, "^seed:"),
                          ({"prime": "Q"}, "^prime: .*'Q'"), ({"count": 3}, "^count: .*lines")]:
        with pytest.raises(ValueError, match=match):
            model.sample(**kwargs)
    with pytest.raises(ValueError, match="^text: .*'Z'"):
        model.hidden_states("Zebra")
    with pytest.raises(ValueError, match="^text: expected at least one"):
        model.hidden_states("")


def test_lines_mode_sample_count(tmp_path, capsys):
    run = api.train(builtin="names", out=str(tmp_path / "names"), steps=3, hidden=8, layers=1,
                    batch=8, eval_every=3, progress=False)
    assert run.config.lines and run.config.hidden == 8
    model = api.load(run.out)
    got = model.sample(count=4, length=12, seed=5, prime="a")
    assert cli.main(["sample", run.out, "--count", "4", "--length", "12", "--seed", "5",
                     "--prime", "a"]) == 0
    assert capsys.readouterr().out.splitlines() == got
    assert len(got) == 4 and all(s.startswith("a") and len(s) <= 13 for s in got)
    assert 0 <= model.new_samples(got) <= 4


def manual_states(lm, X):
    """Every layer's h and c after every step by another route: one-layer copies of each layer,
    run over the whole sequence for h, and the stacked layer one step at a time for c."""
    layer, L = lm.rnn, lm.rnn.num_layers
    hs, inputs = [], X
    for k in range(L):
        one = type(layer)(inputs.shape[2], layer.hidden_size, dtype=layer.dtype)
        one.load_state_dict({n.replace(f"_l{k}", "_l0"): p for n, p in layer.params.items()
                             if n.endswith(f"_l{k}")})
        inputs, _ = one.forward(inputs)                                      # (T, 1, H)
        hs.append(inputs[:, 0])
    cs, state = [], None
    for t in range(X.shape[0]):
        _, state = layer.forward(X[t: t + 1], state)
        if layer.kind == "LSTM":
            cs.append(state[1][:, 0])
    return np.stack(hs), (np.stack(cs, axis=1) if cs else None)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_hidden_states_every_layer_and_step(tmp_path, corpus, cell):
    run = api.train(corpus, out=str(tmp_path / cell), steps=2, cell=cell, dtype="float64",
                    **{**TINY, "layers": 3})
    model = api.load(run.out)
    text = "the cat ran"
    got = model.hidden_states(text)
    L, T, H = 3, len(text), 8
    assert got.h.shape == (L, T, H) and got.text == text
    assert (got.c is None) == (cell != "lstm") and (got.c is None or got.c.shape == (L, T, H))
    X = model.lm.inputs(model._vocab.encode(text)[:, None])
    out, final = model.lm.rnn.forward(X)
    np.testing.assert_allclose(got.h[-1], out[:, 0], rtol=0, atol=1e-12)   # the layer's forward
    logits, _ = model.lm.forward(model._vocab.encode(text)[:, None])
    np.testing.assert_allclose(model.lm.head.forward(got.h[-1]), logits, rtol=0, atol=1e-12)
    h_final = final[0] if cell == "lstm" else final
    np.testing.assert_allclose(got.h[:, -1], h_final[:, 0], rtol=0, atol=1e-12)
    h, c = manual_states(model.lm, X)
    np.testing.assert_allclose(got.h, h, rtol=0, atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(got.c, c, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.c[:, -1], final[1][:, 0], rtol=0, atol=1e-12)
    assert not np.allclose(got.h[0], got.h[1])      # the layers differ


def test_hidden_states_of_a_lines_run_start_after_the_end_symbol(tmp_path):
    run = api.train(builtin="names", out=str(tmp_path / "n"), steps=2, hidden=8, layers=2,
                    batch=8, eval_every=2, dtype="float64", progress=False)
    model = api.load(run.out)
    got = model.hidden_states("ann")
    ids = model._vocab.encode("\nann")[:, None]
    out, _ = model.lm.rnn.forward(model.lm.inputs(ids))
    np.testing.assert_allclose(got.h[-1], out[1:, 0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="^text: .*'\\\\n'"):
        model.hidden_states("an\nn")


def test_the_example_notebook_runs_headless(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    nb = nbformat.read(REPO / "examples" / "notebook.ipynb", as_version=4)
    env = {**os.environ, "BPTT_NOTEBOOK_STEPS": "20",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.km = client.create_kernel_manager()
        client.start_new_kernel(env=env)
        client.start_new_kernel_client()
    except Exception as err:            # no kernel spec, no ipykernel, no free ports...
        if client.km is not None and client.km.has_kernel:
            client.km.shutdown_kernel(now=True)
        pytest.skip(f"no Jupyter kernel could start here: {type(err).__name__}: {err}")
    client.execute()                    # the kernel above; shut down at the end
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for o in outputs)
    assert "<TrainResult runs/notebook: 20 of 20 steps" in text and "(2, 11, 64)" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4   # loss, flow, units, ...
    assert "dL/dc shrinks by" in text and "median forget gate" in text
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<table>" in t and "max rel_error" in t and "OK" in t for t in tables)
    bars = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert bars.count("\r") <= 2 and "IProgress" not in bars     # no wall of progress text
    assert (tmp_path / "runs" / "notebook" / "checkpoint.npz").exists()


def test_a_kernel_interrupt_stops_the_run_with_a_checkpoint(tmp_path):
    """The notebook's stop button: the kernel gets SIGINT while a cell trains."""
    pytest.importorskip("ipykernel")
    manager = pytest.importorskip("jupyter_client.manager")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    try:
        km, kc = manager.start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    except Exception as err:
        pytest.skip(f"no Jupyter kernel could start here: {type(err).__name__}: {err}")
    try:
        msg_id = kc.execute("import bptt\nr = bptt.train(builtin='names', out='r', hidden=8, "
                            "steps=10**6, log_every=1, progress=False)\nprint(repr(r))")
        for _ in range(600):            # until the first metrics row: the loop is running
            if (tmp_path / "r" / "metrics.csv").exists() and \
                    (tmp_path / "r" / "metrics.csv").read_text().count("\n") > 1:
                break
            time.sleep(0.1)
        km.interrupt_kernel()
        said = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            said.append(msg["content"].get("text") or msg["content"].get("ename") or "")
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(said)
    assert "KeyboardInterrupt" not in text and "interrupted (SIGINT) at step" in text, text
    assert "continue with bptt.train(..., resume=True)" in text
    step = api.load(tmp_path / "r", latest=True).step
    assert step >= 1 and f"SIGINT at step {step} of 1000000" in text
    more = api.train(builtin="names", out=str(tmp_path / "r"), hidden=8, steps=step + 2,
                     log_every=1, progress=False, resume=True)
    assert more.step == step + 2 and more.history[-1]["step"] == step + 2


def test_import_bptt_does_not_import_the_training_loop():
    code = ("import sys, bptt; bptt.load; "
            "print([m for m in ('matplotlib', 'tqdm') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


def test_notebook_bar_without_ipywidgets_draws_at_start_and_end_only(monkeypatch):
    import io

    from bptt.text import progress

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress.importlib.util, "find_spec", lambda name: None)
    bar_type = progress.bar_class()
    out = io.StringIO()
    bar = bar_type(total=300, file=out)
    for step in range(300):
        bar.update(1)
        bar.set_postfix(loss=f"{3 - step / 100:.3f}")   # what the trainer does each log row
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and "300/300" in text and "loss=0.010" in text
    monkeypatch.setattr(progress, "in_notebook", lambda: False)
    from tqdm.auto import tqdm
    assert progress.bar_class() is tqdm
