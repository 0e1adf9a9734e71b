"""The course's dinosaur-names exercise in bptt.stepwise: initialize_parameters, clip, sample and
optimize against the course notebook's published expected values, central finite differences
of optimize's loss, and examples/dinosaur_names.py run with small settings."""

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bptt
from bptt import stepwise as sw

ROOT = Path(__file__).resolve().parents[1]
CHARS = ["\n"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]   # the course's 27 symbols
CHAR_TO_IX = {ch: i for i, ch in enumerate(CHARS)}


def course_parameters(draw, n_a, vocab_size):
    """The notebook's test parameters, drawn in its order from np.random.seed(...)."""
    Wax, Waa = draw.randn(n_a, vocab_size), draw.randn(n_a, n_a)
    Wya = draw.randn(vocab_size, n_a)
    b, by = draw.randn(n_a, 1), draw.randn(vocab_size, 1)
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}


# ------------------------------------------------------------ the notebook's expected values

@pytest.mark.parametrize("max_value, want", [
    (10, (10.0, -10.0, 0.2971381536101662, 10.0, 8.45833407)),
    (5, (5.0, -5.0, 0.2971381536101662, 5.0, 5.0)),
])
def test_clip_course_expected_values(max_value, want):
    draw = np.random.RandomState(3)
    gradients = {"dWax": draw.randn(5, 3) * 10, "dWaa": draw.randn(5, 5) * 10,
                 "dWya": draw.randn(2, 5) * 10, "db": draw.randn(5, 1) * 10,
                 "dby": draw.randn(2, 1) * 10}
    before = copy.deepcopy(gradients)
    out = sw.clip(gradients, max_value)
    got = (out["dWaa"][1][2], out["dWax"][3][1], out["dWya"][1][2], out["db"][4][0],
           out["dby"][1][0])
    np.testing.assert_allclose(got, want, rtol=1e-8)
    for k, g in gradients.items():
        np.testing.assert_array_equal(g, before[k])             # the caller's arrays unchanged
        inside = np.abs(g) <= max_value
        np.testing.assert_array_equal(out[k][inside], g[inside])
        assert np.abs(out[k]).max() <= max_value


def test_sample_course_expected_output():
    params = course_parameters(np.random.RandomState(24), 100, 27)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global generator the course seeds)
    indices = sw.sample(params, CHAR_TO_IX, 0)
    assert indices == [23, 16, 26, 26, 24, 3, 21, 1, 7, 24, 15, 3, 25, 20, 6, 13, 10, 8, 20,
                       12, 2, 0]
    assert "".join(CHARS[i] for i in indices) == "wpzzxcuagxocytfmjhtlb\n"
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002 (untouched)


def test_optimize_course_expected_output():
    draw = np.random.RandomState(1)
    a_prev = draw.randn(100, 1)
    params = course_parameters(draw, 100, 27)
    old = copy.deepcopy(params)
    snapshot = dict(params)
    loss, gradients, a_last = sw.optimize([12, 3, 5, 11, 22, 3], [4, 14, 11, 22, 25, 26],
                                          a_prev, params, learning_rate=0.01)
    assert loss == pytest.approx(126.50397572165389, rel=1e-12)
    assert set(gradients) == {"dWaa", "dWax", "dWya", "db", "dby"}
    assert gradients["dWaa"][1][2] == pytest.approx(0.19470931534713587, rel=1e-9)
    assert np.argmax(gradients["dWax"]) == 93
    assert gradients["dWya"][1][2] == pytest.approx(-0.007773876032002162, rel=1e-9)
    assert gradients["db"][4][0] == pytest.approx(-0.06809825, rel=1e-6)
    assert gradients["dby"][1][0] == pytest.approx(0.01538192, rel=1e-6)
    assert a_last.shape == (100, 1) and a_last[4][0] == pytest.approx(-1.0)
    for k in params:                          # the dict holds new arrays, one SGD step away
        assert params[k] is not snapshot[k]
        np.testing.assert_array_equal(snapshot[k], old[k])
        np.testing.assert_allclose(params[k], old[k] - 0.01 * gradients["d" + k], rtol=1e-15)


def test_initialize_parameters():
    p = sw.initialize_parameters(6, 5, 4)
    assert list(p) == ["Wax", "Waa", "Wya", "b", "by"]
    assert {k: v.shape for k, v in p.items()} == {"Wax": (6, 5), "Waa": (6, 6), "Wya": (4, 6),
                                                  "b": (6, 1), "by": (4, 1)}
    assert not p["b"].any() and not p["by"].any()
    w = np.concatenate([p[k].ravel() for k in ("Wax", "Waa", "Wya")]) / 0.01
    assert abs(w.mean()) < 0.3 and 0.7 < w.std() < 1.3          # N(0, 0.01²)
    q = sw.initialize_parameters(6, 5, 4)                        # seeded: the same every time
    assert all(np.array_equal(p[k], q[k]) for k in p)
    with pytest.raises(ValueError, match="^n_a: expected an integer >= 1, got 0$"):
        sw.initialize_parameters(0, 5, 4)


# --------------------------------------------------------------- gradients and the bias name

def test_optimize_gradients_are_the_loss_gradients():
    """optimize's (unclipped, small) gradients against central differences of its own loss."""
    rng = np.random.default_rng(5)
    n_a, n_x = 5, 7
    params = {"Wax": rng.standard_normal((n_a, n_x)) * 0.3,
              "Waa": rng.standard_normal((n_a, n_a)) * 0.3, "b": rng.standard_normal((n_a, 1)),
              "Wya": rng.standard_normal((n_x, n_a)) * 0.3, "by": rng.standard_normal((n_x, 1))}
    a_prev = rng.standard_normal((n_a, 1))
    X, Y = [None, 3, 1, 6], [3, 1, 6, 0]
    _, grads, _ = sw.optimize(X, Y, a_prev, dict(params), learning_rate=1e-9)
    assert max(np.abs(g).max() for g in grads.values()) < 5          # clipping did nothing

    def loss(p):
        # optimize's loss at p, with an update too small to matter for the returned loss
        return sw.optimize(X, Y, a_prev, dict(p), learning_rate=1e-300)[0]

    res = bptt.gradcheck(loss, params, grads)
    assert set(res) == set(params) and res.ok, str(res)


def test_ba_works_as_b_and_errors_are_one_line():
    p = course_parameters(np.random.RandomState(2), 8, 27)
    q = {**{k: v for k, v in p.items() if k != "b"}, "ba": p["b"]}
    lp, gp, ap = sw.optimize([None, 1, 2], [1, 2, 0], np.zeros((8, 1)), dict(p))
    lq, gq, aq = sw.optimize([None, 1, 2], [1, 2, 0], np.zeros((8, 1)), dict(q))
    assert lp == lq and "dba" in gq and "db" in gp
    np.testing.assert_array_equal(gp["db"], gq["dba"])
    assert sw.sample(p, CHAR_TO_IX, 3) == sw.sample(q, CHAR_TO_IX, 3)
    with pytest.raises(ValueError,
                       match=r"^parameters: expected the hidden bias as 'ba' or 'b'.*got both"):
        sw.sample({**p, "ba": p["b"]}, CHAR_TO_IX, 0)
    with pytest.raises(ValueError, match=r"^Y\[1\]: expected an index in \[0, 27\), got 27$"):
        sw.optimize([None, 1], [1, 27], np.zeros((8, 1)), p)
    with pytest.raises(ValueError, match=r"^Y: expected one target per input, 2, got 3$"):
        sw.optimize([None, 1], [1, 2, 0], np.zeros((8, 1)), p)
    with pytest.raises(TypeError, match="^X: expected a list of character indices, got str$"):
        sw.optimize("ab", [1, 2], np.zeros((8, 1)), p)
    with pytest.raises(ValueError, match=r"^a0: expected shape \(n_a, m\) = \(8, 1\)"):
        sw.optimize([None, 1], [1, 0], np.zeros((7, 1)), p)
    with pytest.raises(ValueError, match="^char_to_ix: expected a dict .* '\\\\n'"):
        sw.sample(p, {"a": 1}, 0)
    with pytest.raises(ValueError, match="^learning_rate: expected a number > 0, got 0$"):
        sw.optimize([None, 1], [1, 0], np.zeros((8, 1)), p, learning_rate=0)
    with pytest.raises(TypeError, match="^learning_rate: expected a number, got str$"):
        sw.optimize([None, 1], [1, 0], np.zeros((8, 1)), p, learning_rate="0.01")
    with pytest.raises(ValueError, match="^maxValue: expected a number > 0, got -1$"):
        sw.clip({"dW": np.ones(2)}, -1)


def test_sample_stops_at_fifty_characters():
    """A model that never emits the newline: 50 characters, then the newline appended."""
    p = {"Wax": np.zeros((3, 27)), "Waa": np.zeros((3, 3)), "b": np.zeros((3, 1)),
         "Wya": np.zeros((27, 3)), "by": np.full((27, 1), 0.0)}
    p["by"][0] = -1e3                                           # P(newline) = 0
    indices = sw.sample(p, CHAR_TO_IX, 1)
    assert len(indices) == 51 and indices[-1] == 0 and 0 not in indices[:-1]


# ------------------------------------------------------------------------------ the example

def test_dinosaur_example_runs_and_learns():
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "dinosaur_names.py"),
                           "--iterations", "2001", "--every", "1000"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("5163 names, 27 symbols")
    losses = [float(x.split("Loss: ")[1].split()[0]) for x in lines if x.startswith("Iteration")]
    assert len(losses) == 3 and losses[2] < losses[1] < losses[0] - 1     # the smoothed loss
    names = lines[-8:-1]
    assert all(n and n[0].isupper() and n[1:].islower() or len(n) == 1 for n in names), names


def test_names_corpus_is_shipped():
    text = (ROOT / "bptt" / "corpus" / "names.txt").read_text(encoding="utf-8")
    assert set(text) == set(CHARS) and len(text.split()) == 5163
