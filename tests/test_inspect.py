"""``bptt inspect``: the numbers behind each figure against direct engine calls and plain
recomputations, the page (self-contained, opened in headless Chromium), and bad input."""

import base64
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bptt
from bptt import cli
from bptt.text.train import Config, load_model, train
from bptt.tools import inspect as m
from bptt.tools import inspect_page as pg

REPO = Path(__file__).resolve().parents[1]
TEXT = ('KING: "Peace (and quiet)", said he.\nQUEEN: No, sir; no.\n' * 40
        + "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)


def make_run(folder: Path, cell: str):
    """A 3-step float64 run of ``cell`` on TEXT: (run folder, model, vocab, meta)."""
    corpus = folder / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = folder / cell
    cfg = Config(corpus=[str(corpus)], out=str(out), cell=cell, hidden=6, layers=2, seq_len=8,
                 batch=2, steps=3, dtype="float64", eval_every=3, val_fraction=0.2)
    train(cfg, progress=False)
    model, vocab, meta = load_model(str(out))
    return out, model, vocab, meta


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def run(request, tmp_path_factory):
    """A tiny run of each cell, for the numbers."""
    return make_run(tmp_path_factory.mktemp("runs"), request.param)


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    """A tiny LSTM run, for the page and the command line."""
    return make_run(tmp_path_factory.mktemp("lstm"), "lstm")


def suffix_state_grads(layer, X, dout_last, t):
    """dL/d(state after step t) (t < T-1) the way there was before: run the steps after t from
    that state and take the initial-state gradient of one plain backward. Returns [dh] or
    [dh, dc], each (L, 1, H). Exact for the top layer; a lower layer's misses the path through
    the layer above at step t itself (which the initial state of the suffix cuts)."""
    with bptt.no_grad():  # only its final state is needed: not the forward to differentiate
        _, state_t = layer.forward(X[: t + 1])
    out, _ = layer.forward(X[t + 1 :], state_t)
    dout = np.zeros_like(out)
    dout[-1, 0] = dout_last
    _, d0 = layer.backward(dout)
    return list(d0) if isinstance(d0, tuple) else [d0]


# ------------------------------------------------------------------------------ numbers

def test_gradient_flow_equals_direct_backward_calls(run):
    _, model, vocab, _ = run
    ids = vocab.encode(TEXT[:30])
    flow = m.gradient_flow(model, ids)
    X = np.eye(model.vocab_size, dtype=model.dtype)[ids[:-1]][:, None]  # (T, 1, V) one-hot
    with bptt.no_grad():  # values only; the forward to differentiate comes below
        out, _ = model.rnn.forward(X)
        p = np.exp(model.head.forward(out[-1])[0])
    p /= p.sum()
    p[ids[-1]] -= 1                                   # dL/dlogits of the last cross-entropy
    dout_last = model.head.params["weight"].T @ p
    T = len(ids) - 1
    assert flow["h"].shape == (2, T) and (("c" in flow) == (model.cell == "lstm"))
    dout = np.zeros_like(out)
    dout[-1, 0] = dout_last
    model.rnn.forward(X)
    model.rnn.backward(dout, keep_state_grads=True)         # the direct call, read by hand
    kept = model.rnn.state_grads if model.cell == "lstm" else (model.rnn.state_grads,)
    for part, g in zip("hc", kept, strict=False):
        for k in range(2):
            for t in range(T):
                assert flow[part][k, T - 1 - t] == pytest.approx(np.linalg.norm(g[k, t, 0]),
                                                                 rel=1e-12)
    for t in (0, 5, T - 2):        # the top layer as before the API: one backward per step
        dh = suffix_state_grads(model.rnn, X, dout_last, t)[0]
        np.testing.assert_allclose(flow["h"][1, T - 1 - t], np.linalg.norm(dh[1, 0]), rtol=1e-10)
    np.testing.assert_allclose(flow["h"][-1, 0], np.linalg.norm(dout_last), rtol=1e-10)


def test_fresh_cells_flow_equals_direct_backward_calls():
    flows = m.fresh_cells(hidden=5, steps=12, seed=3)
    assert set(flows) == {"RNN", "GRU", "LSTM"} and set(flows["LSTM"]) == {"h", "c"}
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 1, 5))
    w = rng.standard_normal(5)
    w /= np.linalg.norm(w)
    for kind, flow in flows.items():
        layer = getattr(bptt, kind)(5, 5, dtype=np.float64, seed=3)
        for t in (0, 6, 10):
            dh = suffix_state_grads(layer, X, w, t)[0]
            np.testing.assert_allclose(flow["h"][0, 11 - t], np.linalg.norm(dh[0, 0]), rtol=1e-10)
        assert flow["h"][0, 0] == pytest.approx(1.0)            # dL/dh_T = w, a unit vector


def plain_gates(model, ids):
    """States and σ gates of every layer by the textbook equations, one step at a time from the
    parameters alone (float64): {name: (L, T, H)} and h (L, T, H)."""
    def sig(a):
        return 1 / (1 + np.exp(-a))

    layer, H = model.rnn, model.rnn.hidden_size
    x = np.eye(model.vocab_size)[ids[:-1]]
    hs, gates = [], {}
    for k in range(layer.num_layers):
        W, U = layer.params[f"weight_ih_l{k}"], layer.params[f"weight_hh_l{k}"]
        b, c_b = layer.params[f"bias_ih_l{k}"], layer.params[f"bias_hh_l{k}"]
        h, c, seq, gk = np.zeros(H), np.zeros(H), [], []
        for xt in x:
            gi, gh = W @ xt + b, U @ h + c_b
            if model.cell == "lstm":
                i, f, g, o = sig(gi[:H] + gh[:H]), sig(gi[H:2 * H] + gh[H:2 * H]), \
                    np.tanh(gi[2 * H:3 * H] + gh[2 * H:3 * H]), sig(gi[3 * H:] + gh[3 * H:])
                c = f * c + i * g
                h = o * np.tanh(c)
                gk.append((i, f, o))
            elif model.cell == "gru":
                r, z = sig(gi[:H] + gh[:H]), sig(gi[H:2 * H] + gh[H:2 * H])
                n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
                h = (1 - z) * n + z * h
                gk.append((r, z))
            else:
                h = np.tanh(gi + gh)
                gk.append((h,))
            seq.append(h)
        hs.append(seq)
        for j, name in enumerate(m.GATE_NAMES[model.cell]):
            gates.setdefault(name, []).append([g[j] for g in gk])
        x = np.array(seq)
    return np.array(hs), {name: np.array(v) for name, v in gates.items()}


def test_trace_and_saturation_equal_a_direct_count(run):
    _, model, vocab, _ = run
    ids = vocab.encode(TEXT[:60])
    tr = m.trace(model, ids)
    h, gates = plain_gates(model, ids)
    np.testing.assert_allclose(tr.h, h, atol=1e-12)
    sat = m.saturation(tr.gates, model.cell)
    lo, hi = (-0.9, 0.9) if model.cell == "rnn" else (0.1, 0.9)
    for name, g in gates.items():
        np.testing.assert_allclose(tr.gates[name], g, atol=1e-12)
        L, T, H = g.shape
        for k in range(L):
            for u in range(H):
                left = sum(1 for t in range(T) if g[k, t, u] < lo) / T
                right = sum(1 for t in range(T) if g[k, t, u] > hi) / T
                assert sat[name][0][k, u] == left and sat[name][1][k, u] == right


def test_expectations_are_the_models_distributions(run):
    _, model, vocab, _ = run
    ids = vocab.encode(TEXT[:50])
    exp = m.expectations(model, ids)
    np.testing.assert_allclose(exp.probs.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(exp.actual, exp.probs[np.arange(49), ids[1:]])
    assert (np.diff(np.take_along_axis(exp.probs, exp.top, axis=1), axis=1) <= 0).all()
    assert exp.top[:, 0].tolist() == exp.probs.argmax(axis=1).tolist()
    loss, _ = model.loss(ids[:-1, None], ids[1:, None])
    assert exp.loss == pytest.approx(loss, rel=1e-10)


def test_initial_model_is_the_one_training_started_from(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    cfg = Config(corpus=[str(corpus)], out=str(tmp_path / "r"), hidden=6, layers=1, seq_len=8,
                 batch=2, steps=1, lr=1e-9, dtype="float64", seed=5, log_every=1)
    train(cfg, progress=False)
    model, vocab, meta = load_model(str(tmp_path / "r"))
    start = m.initial_of(meta, vocab)
    for name, p in model.params.items():            # one Adam step moves each by at most ~lr
        assert np.abs(p - start.params[name]).max() < 2e-9, name
    meta["config"]["seed"] = 6
    other = m.initial_of(meta, vocab)
    assert np.abs(other.params["head.weight"] - start.params["head.weight"]).max() > 1e-3


def test_pick_units_finds_a_unit_that_tracks_the_line_position():
    text = "ab cd\nefg h\nij\n" * 3
    rng = np.random.default_rng(0)
    h = rng.uniform(-0.2, 0.2, size=(2, len(text), 7))
    col = np.array(m.features(text)["position in the line"])
    h[1, :, 4] = col / col.max()
    units = m.pick_units(h, text)
    assert units[0][:2] == (1, 4) and "position in the line" in units[0][2]
    assert len(units) == m.N_UNITS and len({u[:2] for u in units}) == m.N_UNITS
    assert m.parse_units("1:4, 2", 2, 7) == [(1, 4), (1, 2)]
    for bad in ("2:1", "7", "x", "1:2:3"):
        with pytest.raises(m.InspectError, match="--units"):
            m.parse_units(bad, 2, 7)


# ------------------------------------------------------------------------------ the page

def images(page: str) -> list[bytes]:
    return [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_report_is_self_contained(run, tmp_path, capsys):
    folder, model, vocab, _ = run
    out = tmp_path / "r.html"
    assert cli.main(["inspect", str(folder), "--out", str(out), "--length", "60"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    assert page.startswith(pg.MARK)
    assert not re.search(r"<script|<link|@import|url\(|https?:", page, re.I)
    gated = model.cell != "rnn"
    assert re.findall(r'<img [^>]*src="([^"]{0,22})', page) == \
        ["data:image/png;base64,"] * (3 if gated else 2)
    for png in images(page):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    saturation = "Gate saturation" if gated else "Tanh saturation"
    for title in ("Gradient flow through time", saturation, "Units over the text",
                  "What the model expects"):
        assert f"<h2>{title}</h2>" in page
    assert ("Gate saturation" in page) == gated and ("decay of dL/d" in page) == gated
    for gate in m.GATE_NAMES[model.cell]:
        assert f"<th>{gate}</th>" in page
    assert page.count("layer 1, unit") + page.count("layer 0, unit") == m.N_UNITS


def test_units_and_text_options(lstm_run, tmp_path):
    folder, *_ = lstm_run
    out = tmp_path / "r.html"
    assert cli.main(["inspect", str(folder), "--out", str(out), "--units", "0:1,2",
                     "--text", TEXT[:40]]) == 0
    page = out.read_text(encoding="utf-8")
    assert "layer 0, unit 1: chosen" in page and "layer 1, unit 2: chosen" in page
    assert "39 predicted symbols of the text given with --text" in page
    assert page.count('<span style="background:') == 39                 # the expectations
    assert page.count("<th>0:1</th>") == page.count("<th>1:2</th>") == 1  # one row each


def test_cells_report(tmp_path, capsys):
    out = tmp_path / "cells.html"
    assert cli.main(["inspect", "--cells", "--hidden", "8", "--length", "30", "--out",
                     str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert len(images(page)) == 1 and "RNN" in page and "LSTM" in page and "GRU" in page


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="no chromium on PATH (Debian: apt-get install "
                                               "chromium; .ci/run installs it when root)")
def test_report_renders_in_headless_chromium(lstm_run, tmp_path):
    from matplotlib.image import imread

    folder, *_ = lstm_run
    out, shot = tmp_path / "report.html", tmp_path / "shot.png"
    assert cli.main(["inspect", str(folder), "--out", str(out), "--length", "120"]) == 0
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           "--window-size=1200,1600", out.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    pixels = imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    not_white = (pixels < 0.95).any(axis=-1).mean()
    assert 0.02 < not_white < 0.9, not_white         # text and figures, not a blank page
    assert len({tuple(p) for p in pixels[::8, ::8].reshape(-1, 3)}) > 20    # colours drawn
    for png in images(out.read_text(encoding="utf-8")):
        img = imread(io.BytesIO(png), format="png")
        assert img.ndim == 3 and min(img.shape[:2]) > 100 and img.std() > 0


# ------------------------------------------------------------------------------ bad input

def one_line_error(capsys, argv, *words):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_bad_input_is_one_line(lstm_run, tmp_path, capsys):
    folder, *_ = lstm_run
    one_line_error(capsys, ["inspect", str(tmp_path / "nothing")], "nothing")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip at all")
    one_line_error(capsys, ["inspect", str(corrupt)], "corrupt.npz")
    one_line_error(capsys, ["inspect", str(folder), "--text", "KING é ☃"], "'é' (U+00E9)",
                   "'☃' (U+2603)", "--text")
    one_line_error(capsys, ["inspect", str(folder), "--text", ""], "--text", "at least 2")
    one_line_error(capsys, ["inspect", str(folder), "--file", str(tmp_path / "x.txt")],
                   "--file", "no such file")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    one_line_error(capsys, ["inspect", str(folder), "--file", str(tmp_path / "bin.txt")],
                   "not UTF-8")
    one_line_error(capsys, ["inspect", str(folder), "--length", "5000"], "--length", "2000")
    one_line_error(capsys, ["inspect", str(folder), "--units", "9:0"], "--units")
    one_line_error(capsys, ["inspect", "--cells", str(folder)], "--cells")
    one_line_error(capsys, ["inspect"], "RUN_DIR")
    one_line_error(capsys, ["inspect", str(folder), "--hidden", "4"], "--hidden", "--cells")
    one_line_error(capsys, ["inspect", "--cells", "--hidden", "0"], "--hidden")
    one_line_error(capsys, ["inspect", str(folder), "--length", "0"], "--length")
    mine = tmp_path / "notes.html"
    mine.write_text("my notes", encoding="utf-8")
    one_line_error(capsys, ["inspect", str(folder), "--out", str(mine)], "not a report")
    assert mine.read_text(encoding="utf-8") == "my notes"


def test_long_passage_is_cut_with_a_message(lstm_run, tmp_path, capsys):
    folder, *_ = lstm_run
    out = tmp_path / "r.html"
    long = tmp_path / "long.txt"
    long.write_text(TEXT * 2, encoding="utf-8")
    assert len(TEXT * 2) > m.MAX_CHARS
    assert cli.main(["inspect", str(folder), "--file", str(long), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"the first {m.MAX_CHARS}" in err and err.count("\n") == 1
    assert f"{m.MAX_CHARS - 1} predicted symbols of the file" in out.read_text(encoding="utf-8")


def test_inspect_runs_as_a_command(lstm_run, tmp_path):
    folder, *_ = lstm_run
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO),
                                                        os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "bptt", "inspect", str(folder), "--length", "40"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(folder / "report.html") and (folder / "report.html").exists()


def test_float64_copy_has_the_same_weights_and_outputs(lstm_run):
    _, model, vocab, meta = lstm_run
    meta = {**meta, "config": {**meta["config"], "dtype": "float32"}}
    small = m.initial_of(meta, vocab)
    assert small.dtype == np.float32
    big = m.in_float64(small)
    assert big.dtype == np.float64 and big is not small
    for name, p in small.params.items():
        assert big.params[name].dtype == np.float64
        np.testing.assert_array_equal(big.params[name], p.astype(np.float64))
    ids = vocab.encode(TEXT[:20])
    np.testing.assert_allclose(big.forward(ids[:, None])[0], small.forward(ids[:, None])[0],
                               rtol=1e-4, atol=1e-5)
