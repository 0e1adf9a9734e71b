"""The two reports of ``bptt inspect``: a trained run (``run_report``) and fresh cells
(``cells_report``). Each measures with ``bptt.tools.inspect``, writes its explanations with the
numbers it measured, and writes the page with ``bptt.tools.inspect_page``.
"""

import html
import os

import numpy as np

from ..text.train import load_model
from . import inspect as m
from . import inspect_page as pg


def _ratio_sentence(trained: np.ndarray, initial: np.ndarray, what: str) -> str:
    """'50 steps back, dL/dh of the top layer is ... of its size at the loss ...'"""
    s = min(50, len(trained) - 1)
    return (f"{s} steps back, {what} is {pg.ratio(trained, s):.2e} of its size at the loss "
            f"after training, {pg.ratio(initial, s):.2e} at initialisation.")


def _passage(path_meta, vocab, text, file, length, log) -> tuple[str, str]:
    if text is not None:
        return m.cut(text, "--text", log), "the text given with --text"
    if file is not None:
        return m.cut(m.read_file(file), f"--file {file}", log), f"the file {html.escape(file)}"
    return m.validation_text(path_meta, length), "the run's held-out (validation) text"


def run_report(path: str, text: str | None = None, file: str | None = None,
               length: int | None = None, units: str | None = None,
               out: str | None = None, log=lambda msg: None) -> str:
    """Write the report of the run (folder or checkpoint) ``path``; returns the page's path
    (default: report.html beside the checkpoint). ``length``: characters of the validation text
    (None: DEFAULT_CHARS) when neither ``text`` nor ``file`` is given."""
    length = m.DEFAULT_CHARS if length is None else length
    if not 2 <= length <= m.MAX_CHARS:
        raise m.InspectError(f"--length: expected an integer from 2 to {m.MAX_CHARS}, got "
                             f"{length}")
    model, vocab, meta = load_model(path)
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    out = out or os.path.join(folder, "report.html")
    pg.check_out(out)
    passage, source = _passage(meta, vocab, text, file, length, log)
    ids = m.passage_ids(passage, vocab, "--text" if text is not None else
                        (f"--file {file}" if file is not None else "the validation text"))
    initial = m.initial_of(meta, vocab)
    L, H = model.rnn.num_layers, model.rnn.hidden_size
    chosen = ([(k, u, "chosen with --units") for k, u in m.parse_units(units, L, H)]
              if units else None)
    flow = {"trained": m.gradient_flow(m.in_float64(model), ids),
            "initialisation": m.gradient_flow(m.in_float64(initial), ids)}
    traces = {"trained": m.trace(model, ids), "initialisation": m.trace(initial, ids)}
    sat = {k: m.saturation(tr.gates, model.cell) for k, tr in traces.items()}
    expect, expect0 = m.expectations(model, ids), m.expectations(initial, ids)
    read = passage[:-1]
    chosen = chosen or m.pick_units(traces["trained"].h, read)

    intro = (f"{html.escape(path)}: a {L}-layer {model.cell.upper()} of {H} units, trained "
             f"{meta.get('step', '?')} steps, over a vocabulary of {vocab.size} characters. "
             f"The passage: {len(passage)} characters of {source}, read from a zero state. "
             "Every number on this page comes from the model's own forward and backward passes "
             "(bptt's engine); the same model at its initialisation (the run's seed, before its "
             "first step) is shown beside it.")
    sections = [
        _flow_section(flow, model.cell, meta),
        _saturation_section(sat, model.cell),
        _units_section(traces["trained"].h, read, chosen),
        _expect_section(passage, expect, expect0, vocab),
    ]
    pg.write_page(out, pg.page("bptt inspect", intro, sections))
    return out


def _flow_section(flow: dict, cell: str, meta: dict) -> str:
    tr, init = flow["trained"], flow["initialisation"]
    L = tr["h"].shape[0]
    panels = []
    for part, title in (("h", "dL/dh_t (hidden state)"), ("c", "dL/dc_t (cell state)")):
        if part in tr:
            lines = [(f"layer {k}, {which}", flow[which][part][k], style, f"C{k}")
                     for k in range(L) for which, style in (("trained", "-"),
                                                            ("initialisation", "--"))]
            panels.append((title, lines))
    rows = [(f"layer {k} dL/d{part}, {which}", flow[which][part][k])
            for part in tr for k in range(L) for which in ("trained", "initialisation")]
    seq_len = meta.get("config", {}).get("seq_len", "?")
    numbers = " ".join(_ratio_sentence(tr[p][L - 1], init[p][L - 1],
                                       f"dL/d{p} of the top layer") for p in tr)
    text = ("The loss here is the cross-entropy of the passage's last character alone. One "
            "backward pass of the engine (<code>backward(dout, keep_state_grads=True)</code>, "
            "<code>dout</code> non-zero only at the last step; on a float64 copy of the model, "
            "so that tiny gradients do not underflow) gives dL/dh<sub>t</sub> of every "
            "step and layer" + (" and dL/dc<sub>t</sub> of the cell state" if cell == "lstm"
                                else "") +
            "; the plot shows its norm against how far back step t lies from the loss, on a log "
            "scale. A line that falls steeply is a vanishing gradient: what the model read that "
            "many steps earlier barely moves this loss, so training cannot teach the model to "
            "use it. A line that rises is an exploding one. Solid: the trained model; dashed: "
            f"the same model at initialisation. {numbers} Training backpropagated through at "
            f"most <code>--seq-len</code> = {seq_len} steps (truncated BPTT): further back, "
            "the model was never trained through. The table: norm s steps back over the norm "
            "at the loss.")
    return pg.section("Gradient flow through time", text,
                      f'<img alt="gradient flow" src="{pg.flow_figure(panels)}">',
                      pg.flow_table(rows))


def _saturation_section(sat: dict, cell: str) -> str:
    tr, init = sat["trained"], sat["initialisation"]
    if cell == "rnn":
        low, high = f"h < -{m.TANH_EDGE}", f"h > {m.TANH_EDGE}"
        what = ("For each unit of each layer, the fraction of the passage's steps in which its "
                f"tanh output was near -1 (below -{m.TANH_EDGE}, horizontal axis) and near +1 "
                f"(above {m.TANH_EDGE}, vertical axis). A saturated tanh passes almost no "
                "gradient back (its derivative 1 - h² is near 0).")
    else:
        low, high = f"< {m.LOW}", f"> {m.HIGH}"
        what = ("For each unit of each layer and each gate, the fraction of the passage's steps "
                f"in which the gate was nearly closed (below {m.LOW}, horizontal axis) and "
                f"nearly open (above {m.HIGH}, vertical axis). Points at the origin are gates "
                "that never saturate; on the upper-left edge, gates almost always open (for a "
                + ("forget gate, a unit that keeps its cell state for long" if cell == "lstm"
                   else "update gate z, a unit that keeps its state: h' = (1-z) n + z h")
                + "); lower right, almost always closed; on the grey diagonal, gates that are "
                "always saturated, switching between the two: a unit that acts like a switch. "
                f"The {', '.join(m.GATE_NAMES[cell])} gates are shown (those that take σ).")
    head = "<tr><th>gate</th><th>open, trained</th><th>closed, trained</th>" \
           "<th>open, initialisation</th><th>closed, initialisation</th></tr>"
    body = "".join(
        f"<tr><th>{name}</th>" + "".join(f"<td>{(s[name][j] > 0.5).sum()} of {s[name][j].size}"
                                         "</td>" for s in (tr, init) for j in (1, 0)) + "</tr>"
        for name in tr)
    table = f"<table>{head}{body}</table>"
    text = (what + " Grey: the same units at initialisation. The table counts the units (all "
            "layers) open or closed on more than half of the steps.")
    fig = pg.saturation_figure(tr, init, low, high)
    return pg.section("Gate saturation", text, table,
                      f'<img alt="gate saturation" src="{fig}">')


def _units_section(h: np.ndarray, read: str, chosen: list) -> str:
    rows = []
    for k, u, why in chosen:
        rows.append(f'<div class="label">layer {k}, unit {u}: {html.escape(why)}</div>'
                    + pg.unit_text(read, h[k, :, u]))
    text = ("Each row is the passage coloured by one unit's activation h<sub>t</sub> after "
            "reading that character (blue -1, white 0, red +1; hover over a character for the "
            "value). The units shown: for each property of the text (position in the line, "
            "inside quotes or brackets, a letter, an upper-case letter, a space or newline; "
            "those that vary over the passage), the unit of any layer whose activation is most "
            "correlated with it, then the units that vary most. <code>--units LAYER:UNIT,...</"
            "code> shows your own. A correlation found on a few hundred characters is a hint, "
            "not a proof: try another passage with <code>--file</code>.")
    return pg.section("Units over the text", text, *rows)


def _expect_section(passage: str, exp, exp0, vocab) -> str:
    text = ("Each character is coloured by the probability the model gave it just before "
            "reading it (red: unlikely, yellow: half, green: expected); hover over a character "
            "for its probability and the five most likely candidates. The first character is "
            "read, not predicted. Mean cross-entropy over the passage: "
            f"{exp.loss:.3f} nats per character ({exp.loss / np.log(2):.2f} bits) trained, "
            f"{exp0.loss:.3f} at initialisation (a uniform guess over the {vocab.size} "
            f"characters would be {np.log(vocab.size):.3f}). Look for where it is sure (the "
            "end of a common word, a space after it) and where it cannot be (the first letter "
            "of a word, a name).")
    return pg.section("What the model expects", text,
                      pg.expectation_text(passage, exp, vocab.chars))


def cells_report(hidden: int | None = None, steps: int | None = None, seed: int = 0,
                 out: str | None = None) -> str:
    """Write the fresh-cells page (default cells.html in the current folder); returns its path.
    hidden: units per layer (None: 128); steps: length of the random sequence (None: 100)."""
    hidden, steps = (128 if hidden is None else hidden), (100 if steps is None else steps)
    if not 2 <= steps <= m.MAX_CHARS:
        raise m.InspectError(f"--length: expected an integer from 2 to {m.MAX_CHARS}, got "
                             f"{steps}")
    if hidden < 1 or hidden > 4096:
        raise m.InspectError(f"--hidden: expected an integer from 1 to 4096, got {hidden}")
    out = out or "cells.html"
    pg.check_out(out)
    flows = m.fresh_cells(hidden, steps, seed)
    panels = [(kind, [(f"dL/d{p}", f[p][0], "-" if p == "h" else "--", f"C{i}") for p in f])
              for i, (kind, f) in enumerate(flows.items())]
    rows = [(f"{kind} dL/d{p}", f[p][0]) for kind, f in flows.items() for p in f]
    numbers = "; ".join(f"{kind} {pg.ratio(f['h'][0], min(50, steps - 1)):.2e}"
                        for kind, f in flows.items())
    text = (f"Three freshly initialised layers, RNN (tanh), GRU and LSTM, {hidden} units each "
            "(torch's initialisation, U(-1/√H, 1/√H), seed "
            f"{seed}), read the same random sequence of {steps} steps (standard normal inputs "
            f"of size {hidden}). The loss is L = w · h<sub>T</sub> for a random unit vector w; "
            "one backward gives dL/dh<sub>t</sub> (and the LSTM's dL/dc<sub>t</sub>) of every "
            "step. Each step back multiplies the gradient by the step's Jacobian: for the RNN "
            "W<sub>hh</sub><sup>T</sup> diag(1 - h²), which shrinks it at a steady rate when "
            "the weights are small, the vanishing gradient of the textbook. The GRU's z h "
            "term and the LSTM's f c term add a path through the gates alone, h or c times "
            "the gate, with no weight matrix: it keeps more of the gradient, but at "
            "initialisation these gates sit near σ(0) = ½, so that path too halves the "
            "gradient at each step (½<sup>50</sup> ≈ 9e-16); training learns to open them "
            "where it needs a long memory (see a trained run's report), and a forget-gate bias "
            "of 1 at initialisation is a common head start. Norm "
            f"{min(50, steps - 1)} steps back over the norm at the loss: {numbers}.")
    body = pg.section("Gradient flow through time in fresh cells", text,
                      f'<img alt="gradient flow" src="{pg.flow_figure(panels)}">',
                      pg.flow_table(rows))
    intro = ("No run needed: what backpropagation through time does to a gradient in each "
             "kind of cell before any training.")
    pg.write_page(out, pg.page("bptt inspect --cells", intro, [body]))
    return out
