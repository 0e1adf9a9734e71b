"""``bptt inspect`` on a lines run, the loaded model's measuring methods (gradient_flow, gates,
units, expectations) against the engine and plain recomputations, and the ``--cells`` picture:
one shared axis, a per-step factor for each cell, and an exploding case that grows."""

import re

import numpy as np
import pytest

import bptt
from bptt.text import probe
from bptt.text.lines import END
from bptt.text.train import Config, train
from bptt.tools import inspect as m
from bptt.tools import inspect_page as pg
from bptt.tools import inspect_report as report

NAMES = [n + s for s in ("", "a", "o") for n in (
    "anna", "bob", "christopher", "dora", "eve", "fay", "gus", "hal", "ida", "jo", "kim", "lou",
    "max", "ned", "olga", "pia", "quin", "rosa", "sam", "tia")]           # 60 distinct lines


@pytest.fixture(scope="module")
def names_run(tmp_path_factory):
    """A tiny float64 lines run on a CRLF file with a byte-order mark."""
    folder = tmp_path_factory.mktemp("names")
    corpus = folder / "names.txt"
    corpus.write_bytes(("\ufeff" + "\r\n".join(NAMES) + "\r\n").encode("utf-8"))
    cfg = Config(corpus=[str(corpus)], out=str(folder / "run"), lines=True, cell="lstm",
                 hidden=8, layers=2, batch=4, steps=4, dtype="float64", eval_every=4,
                 val_fraction=0.25, dropout=0.0)
    train(cfg, progress=False)
    return folder / "run", bptt.load(str(folder / "run"))


def line_loss(model, lines):
    """Mean cross-entropy over every predicted symbol of ``lines``, each read as validation
    reads it (END + line -> line + END, from a zero state): the plain model call."""
    total, count = 0.0, 0
    for line in lines:
        ids = model._vocab.encode(END + line + END)
        loss, _ = model.lm.loss(ids[:-1, None], ids[1:, None])
        total, count = total + loss * (len(ids) - 1), count + len(ids) - 1
    return total / count


def test_lines_report_reads_held_out_lines_as_training_does(names_run, tmp_path):
    folder, model = names_run
    out = tmp_path / "r.html"
    assert report.run_report(str(folder), out=str(out)) == str(out)
    page = out.read_text(encoding="utf-8")
    train_lines, val_lines = m.run_lines(model._meta)
    passage = m.held_out_lines(val_lines, m.DEFAULT_CHARS)
    assert len(val_lines) == 15 and len(passage) > 5
    assert set(passage) <= set(val_lines) and not set(passage) & set(train_lines)
    assert f"the first {len(passage)} of the 15 that training held out" in page
    loss = float(re.search(r"Passage loss ([0-9.]+)", page).group(1))
    assert loss == pytest.approx(line_loss(model, passage), abs=6e-4)   # printed to 3 places
    val = model._meta["last_val"]
    assert f"the run's validation loss at step {val[0]}: {val[1]:.3f}" in page
    assert "Each line is backpropagated whole" in page and "--seq-len" not in page
    assert "\\r" not in page and "U+000D" not in page


def test_each_line_starts_from_the_end_symbol_and_a_zero_state(names_run):
    _, model = names_run
    text = "anna\nbob\nchristopher"
    units = model.units(text)
    starts = [i for i, c in enumerate(units.read) if c == END]
    assert units.read == "\nanna\nbob\nchristopher" and len(starts) == 3
    for i in starts[1:]:                   # after END from zero: the same state every time
        np.testing.assert_array_equal(units.h[:, i], units.h[:, starts[0]])
    np.testing.assert_allclose(model.units("bob").h[:, 1:], model.hidden_states("bob").h,
                               atol=1e-12)
    e = model.expectations(text)
    assert e.read == "\nanna\nbob\nchristopher" and e.targets == "anna\nbob\nchristopher\n"
    assert e.loss == pytest.approx(line_loss(model, ["anna", "bob", "christopher"]), rel=1e-12)


def test_gates_equal_the_cell_equations_on_the_hidden_states(names_run):
    _, model = names_run
    gates = model.gates("christopher")
    states = model.hidden_states("christopher")
    p = model.lm.rnn.params
    H = model.config.hidden
    x_ids = model._vocab.encode("christopher")
    h_prev = np.vstack([model.units("c").h[1, :1], states.h[1, :-1]])   # top layer, from END
    x = states.h[0]                                                     # its input: layer 0
    z = x @ p["weight_ih_l1"].T + p["bias_ih_l1"] + h_prev @ p["weight_hh_l1"].T + p["bias_hh_l1"]
    forget = 1 / (1 + np.exp(-z[:, H: 2 * H]))                          # gate order i, f, g, o
    np.testing.assert_allclose(gates.values["forget f"][1, 1:], forget, atol=1e-12)
    assert len(x_ids) == gates.values["forget f"].shape[1] - 1


def test_gradient_flow_is_the_engines_backward_on_the_longest_line(names_run):
    _, model = names_run
    flow = model.gradient_flow("bob\nchristopher\nida")
    assert flow.text == "\nchristopher" and flow.horizon == len("christopher") + 1
    ids = model._vocab.encode(END + "christopher" + END)
    direct = probe.gradient_flow(probe.in_float64(model.lm), ids)
    for part in ("h", "c"):
        np.testing.assert_array_equal(flow.trained[part], direct[part])
        assert flow.trained[part].shape == (2, len(ids) - 1)
    assert flow.decay() == pytest.approx(probe.decay(direct["h"][-1]))
    fig = flow.plot()
    assert len(fig.axes) == 2 and fig.axes[0].get_shared_y_axes().joined(*fig.axes)


def test_decay_is_the_mean_factor_per_step():
    assert probe.decay(0.5 ** np.arange(10)) == pytest.approx(0.5)
    assert probe.decay(np.array([1.0, 2.0, 0.0])) == pytest.approx(2.0)   # to the last non-zero
    assert np.isnan(probe.decay(np.array([0.0, 1.0])))


def test_cells_share_one_axis_and_the_scaled_rnn_explodes():
    flows = {"torch": m.fresh_cells(16, 60, 0), "x4": m.fresh_cells(16, 60, 0, scale=4.0)}
    for kind in ("RNN", "GRU", "LSTM"):
        assert probe.decay(flows["torch"][kind]["h"][0]) < 1
    rnn = flows["x4"]["RNN"]["h"][0]
    assert rnn[-1] > 10 * rnn[0] and probe.decay(rnn) > 1
    panels, rows = report.cells_panels(flows)
    fig = report.cells_figure(panels)
    a, b = fig.axes
    assert a.get_shared_y_axes().joined(a, b) and a.get_ylim() == b.get_ylim()
    assert a.get_yscale() == "log" and len(rows) == 8
    labels = [ln.get_label() for ln in a.get_lines()]
    assert any(re.fullmatch(r"RNN dL/dh: x0\.\d{3}/step", s) for s in labels)


def test_cells_page_prints_each_cells_factor(tmp_path):
    out = report.cells_report(hidden=8, steps=30, out=str(tmp_path / "c.html"), scale=4)
    page = open(out, encoding="utf-8").read()
    assert re.search(r"RNN x\d\.\d{3} per step", page) and "times 4" in page
    assert page.count("<td>") > 8 and "per step</th>" in page


def test_a_short_passage_still_gets_a_gradient_table():
    assert pg.distances(5) == [1, 2, 3, 4] and pg.distances(3) == [1, 2]
    assert pg.distances(200) == [10, 25, 50, 100]
    table = pg.flow_table([("x", 0.5 ** np.arange(6))])
    assert "<th>1 back</th>" in table and "0.500" in table


def test_train_result_plots_its_history():
    from bptt.text.api import TrainResult

    rows = [{"step": s, "train_loss": 3 - s / 100, "val_loss": (2.5 if s == 100 else None)}
            for s in range(10, 110, 10)]
    r = TrainResult("x", 100, 100, "", (100, 2.5), (100, 2.5), "", rows, None)
    fig = r.plot()
    lines = fig.axes[0].get_lines()
    assert len(lines[0].get_xdata()) == 10 and list(lines[1].get_ydata()) == [2.5]


def test_unit_choice_and_bad_text_are_one_line_errors(names_run):
    _, model = names_run
    assert [c[:2] for c in model.units("anna", units=[(1, 3)]).chosen] == [(1, 3)]
    with pytest.raises(ValueError, match=r"^units: expected"):
        model.units("anna", units=[(5, 0)])
    with pytest.raises(ValueError, match=r"^text: not in the model's vocabulary: 'Z'"):
        model.expectations("Zed")
    with pytest.raises(ValueError, match=r"^text: expected at least one non-empty line"):
        model.gates("\n\n")
