"""The two reports of ``bptt inspect``: a trained run (``run_report``) and fresh cells
(``cells_report``). A run's report measures through the loaded model's own methods
(``Model.gradient_flow``, ``gates``, ``units``, ``expectations``: the calls a notebook makes),
writes its explanations with the numbers it measured, and writes the page with
``bptt.tools.inspect_page``.
"""

import dataclasses
import html
import os

import numpy as np

from ..text import api
from ..text.lines import END
from . import inspect as m
from . import inspect_page as pg

SCALE = 4.0     # --cells: the recurrent weights of the exploding case, times torch's initialisation


@dataclasses.dataclass
class Passage:
    """What a report reads: ``text`` as the model's methods take it (a lines run: its lines
    joined by END, each read from the end symbol and a zero state)."""

    text: str
    source: str                # in words, for the page
    lines: list | None         # a lines run: the lines
    horizon: int | None        # steps training backpropagated through (seq_len; longest line + 1)


def _lines_passage(meta, text, file, length, log) -> Passage:
    try:
        train, val = m.run_lines(meta)
        horizon = max(len(s) for s in train) + 1
    except m.InspectError:
        if text is None and file is None:
            raise
        train, val, horizon = None, None, None
    if text is not None or file is not None:
        raw = m.cut(text, "--text", log) if text is not None else \
            m.cut(m.read_file(file), f"--file {file}", log)
        lines = m.as_lines(raw)
        if not lines:
            raise m.InspectError(f"{'--text' if text is not None else '--file ' + file}: "
                                 "expected at least one non-empty line")
        source = "the text given with --text" if text is not None else \
            f"the file {html.escape(file)}"
    else:
        lines = m.held_out_lines(val, length)
        source = (f"the run's held-out lines (the first {len(lines)} of the {len(val)} that "
                  f"training held out for validation, in its split's order)")
    return Passage(END.join(lines), source, lines, horizon)


def _stream_passage(meta, text, file, length, log) -> Passage:
    seq_len = meta["config"].get("seq_len")
    if text is not None:
        return Passage(m.clean(m.cut(text, "--text", log)), "the text given with --text",
                       None, seq_len)
    if file is not None:
        return Passage(m.clean(m.cut(m.read_file(file), f"--file {file}", log)),
                       f"the file {html.escape(file)}", None, seq_len)
    return Passage(m.validation_text(meta, length), "the run's held-out (validation) text",
                   None, seq_len)


def run_report(path: str, text: str | None = None, file: str | None = None,
               length: int | None = None, units: str | None = None,
               out: str | None = None, log=lambda msg: None) -> str:
    """Write the report of the run (folder or checkpoint) ``path``; returns the page's path
    (default: report.html beside the checkpoint). ``length``: symbols of the held-out text or
    lines (None: DEFAULT_CHARS) when neither ``text`` nor ``file`` is given."""
    length = m.DEFAULT_CHARS if length is None else length
    if not 2 <= length <= m.MAX_CHARS:
        raise m.InspectError(f"--length: expected an integer from 2 to {m.MAX_CHARS}, got "
                             f"{length}")
    model = api.load(path)
    meta = model._meta
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    out = out or os.path.join(folder, "report.html")
    pg.check_out(out)
    lines = model.config.lines
    passage = (_lines_passage if lines else _stream_passage)(meta, text, file, length, log)
    what = "--text" if text is not None else (f"--file {file}" if file is not None else
                                              "the held-out text")
    if lines:
        m.check_chars("".join(passage.lines), model._vocab, what)
    else:
        m.passage_ids(passage.text, model._vocab, what)
    cfg = model.config
    chosen = None
    if units:
        chosen = m.parse_units(units, cfg.layers, cfg.hidden)
    flow = model.gradient_flow(passage.text)
    flow.horizon = passage.horizon
    exp, exp0 = model.expectations(passage.text), model.expectations(passage.text, initial=True)
    reading = passage.text if lines else passage.text[:-1]          # what the states are shown on
    gates = {"trained": model.gates(reading), "initialisation": model.gates(reading, True)}
    shown = model.units(reading, chosen)
    val = meta.get("last_val")
    val_words = (f"; the run's validation loss at step {val[0]}: {val[1]:.3f}" if val else "")
    read_how = ("each line read as training reads it: from the end symbol (shown ↵) and a zero "
                "state, predicting the line and then its end" if lines else
                "read from a zero state")
    intro = (f"{html.escape(path)}: a {cfg.layers}-layer {cfg.cell.upper()} of {cfg.hidden} "
             f"units, trained {model.step} steps, over a vocabulary of {len(model.vocab)} "
             f"symbols. The passage: {len(exp.targets)} predicted symbols of {passage.source}, "
             f"{read_how}. <b>Passage loss {exp.loss:.3f} nats per symbol{val_words}</b> "
             "(a passage of held-out data should score near it; far above it, the passage is "
             "not read as training read it, or is unlike the corpus). Every number on this page "
             "comes from the model's own forward and backward passes (bptt's engine), through "
             "the loaded model's methods <code>gradient_flow</code>, <code>gates</code>, "
             "<code>units</code> and <code>expectations</code>; the same model at its "
             "initialisation (the run's seed, before its first step) is shown beside it.")
    sections = [_flow_section(flow, cfg, lines)]
    if cfg.cell == "rnn":
        sections.append(_saturation_section(gates, cfg.cell))
    else:
        sections += [_keep_section(gates, flow, cfg.cell), _saturation_section(gates, cfg.cell)]
    sections += [_units_section(shown), _expect_section(exp, exp0, model.vocab, val_words)]
    pg.write_page(out, pg.page("bptt inspect", intro, sections))
    return out


def _flow_section(flow, cfg, lines: bool) -> str:
    tr, init = flow.trained, flow.initial
    L = tr["h"].shape[0]
    rows = [(f"layer {k} dL/d{part}, {which}", f[part][k])
            for part in tr for k in range(L) for which, f in (("trained", tr),
                                                              ("initialisation", init))]
    s = min(50, len(tr["h"][0]) - 1)
    numbers = " ".join(
        f"{s} steps back, dL/d{p} of the top layer is {pg.ratio(tr[p][-1], s):.2e} of its size "
        f"at the loss after training ({flow.decay(p):.3f} per step), "
        f"{pg.ratio(init[p][-1], s):.2e} at initialisation ({flow.decay(p, initial=True):.3f} "
        f"per step)." for p in tr)
    if lines:
        loss = ("The loss here is the cross-entropy of the end symbol after the passage's "
                f"longest line (<code>{html.escape(flow.text.strip(END))}</code>, "
                f"{len(flow.text)} steps with its end symbol).")
        horizon = ("Each line is backpropagated whole: lines mode has no truncation, so "
                   "training reached every step of a line"
                   + (f" (the longest training line takes {flow.horizon} steps, the dotted "
                      "line)." if flow.horizon else "."))
    else:
        loss = "The loss here is the cross-entropy of the passage's last character alone."
        horizon = (f"Training backpropagated through at most <code>--seq-len</code> = "
                   f"{cfg.seq_len} steps (truncated BPTT, the dotted line): further back, the "
                   "model was never trained through.")
    text = (loss + " One backward pass of the engine (<code>backward(dout, keep_state_grads="
            "True)</code>, <code>dout</code> non-zero only at the last step; on a float64 copy "
            "of the model, so that tiny gradients do not underflow) gives dL/dh<sub>t</sub> of "
            "every step and layer" + (" and dL/dc<sub>t</sub> of the cell state"
                                      if cfg.cell == "lstm" else "") +
            "; the plot shows its norm against how far back step t lies from the loss, on one "
            "log scale for both panels. A line that falls steeply is a vanishing gradient: what "
            "the model read that many steps earlier barely moves this loss, so training cannot "
            "teach the model to use it. A line that rises is an exploding one. Solid: the "
            f"trained model; dashed: the same model at initialisation. {numbers} {horizon} The "
            "table: norm s steps back over the norm at the loss, and the mean factor per step.")
    return pg.section("Gradient flow through time", text,
                      f'<img alt="gradient flow" src="{pg.png_uri(flow.plot())}">',
                      pg.flow_table(rows))


def _keep_section(gates: dict, flow, cell: str) -> str:
    """The gate on the path with no weight matrix (LSTM forget f, GRU update z) beside the decay
    of the gradient it carries (LSTM dL/dc, GRU dL/dh), top layer."""
    gate = m.KEEP_GATE[cell]
    part = "c" if cell == "lstm" else "h"
    values = {w: g.values[gate][-1] for w, g in gates.items()}
    flows = {"trained": flow.trained[part][-1], "initialisation": flow.initial[part][-1]}
    med = {w: float(np.median(v)) for w, v in values.items()}
    d = {w: m.decay(n) for w, n in flows.items()}
    path = ("c<sub>t</sub> = f ⊙ c<sub>t-1</sub> + i ⊙ g, so one step back multiplies "
            "dL/dc by f (plus what flows through h)" if cell == "lstm" else
            "h<sub>t</sub> = (1 - z) ⊙ n + z ⊙ h<sub>t-1</sub>, so one step back multiplies "
            "dL/dh by z on that path (plus what flows through n)")
    text = (f"How the gates make the gradient last: {path}. Left, the top layer's {gate} gate "
            "over every unit and step of the passage; right, the decay of the gradient it "
            f"carries. Trained: median {gate} {med['trained']:.2f}, dL/d{part} shrinks by "
            f"{d['trained']:.3f} per step back; at initialisation: median "
            f"{med['initialisation']:.2f}, {d['initialisation']:.3f} per step. A gate near 1 "
            "keeps the gradient; near ½ (σ(0), where training starts) it halves it each step.")
    return pg.section(f"The {gate.split()[0]} gate and the decay of dL/d{part}", text,
                      f'<img alt="{gate} gate" src="{pg.keep_figure(gate, values, flows, part)}">')


def _saturation_section(gates: dict, cell: str) -> str:
    tr, init = (g.saturation() for g in (gates["trained"], gates["initialisation"]))
    if cell == "rnn":
        title, low, high = "Tanh saturation", f"h < -{m.TANH_EDGE}", f"h > {m.TANH_EDGE}"
        what = ("For each unit of each layer, the fraction of the passage's steps in which its "
                f"tanh output was near -1 (below -{m.TANH_EDGE}, horizontal axis) and near +1 "
                f"(above {m.TANH_EDGE}, vertical axis). A saturated tanh passes almost no "
                "gradient back (its derivative 1 - h² is near 0).")
    else:
        title, low, high = "Gate saturation", f"< {m.LOW}", f"> {m.HIGH}"
        what = ("For each unit of each layer and each gate, the fraction of the passage's steps "
                f"in which the gate was nearly closed (below {m.LOW}, horizontal axis) and "
                f"nearly open (above {m.HIGH}, vertical axis). Points at the origin are gates "
                "that never saturate; on the upper-left edge, gates almost always open; lower "
                "right, almost always closed; on the grey diagonal, gates that are always "
                "saturated, switching between the two: a unit that acts like a switch. "
                f"The {', '.join(m.GATE_NAMES[cell])} gates are shown (those that take σ).")
    head = "<tr><th></th><th>high, trained</th><th>low, trained</th>" \
           "<th>high, initialisation</th><th>low, initialisation</th></tr>"
    body = "".join(
        f"<tr><th>{name}</th>" + "".join(f"<td>{(s[name][j] > 0.5).sum()} of {s[name][j].size}"
                                         "</td>" for s in (tr, init) for j in (1, 0)) + "</tr>"
        for name in tr)
    text = (what + " Grey: the same units at initialisation. The table counts the units (all "
            "layers) high or low on more than half of the steps.")
    fig = pg.saturation_figure(tr, init, low, high)
    return pg.section(title, text, f"<table>{head}{body}</table>",
                      f'<img alt="{title.lower()}" src="{fig}">')


def _units_section(shown) -> str:
    why = "".join(f"<li>layer {k}, unit {u}: {html.escape(w)}</li>" for k, u, w in shown.chosen)
    text = ("The passage once, with one row per unit under it, coloured by the unit's "
            "activation h<sub>t</sub> after reading that symbol (blue -1, white 0, red +1; hover "
            "for the value). The units: for each property of the text (position in the line, "
            "inside quotes or brackets, a letter, an upper-case letter, a space or newline; "
            "those that vary over the passage), the unit of any layer whose activation is most "
            "correlated with it, then the units that vary most; <code>--units LAYER:UNIT,...</"
            "code> shows your own. A correlation found on a few hundred symbols is a hint, not "
            "a proof: try another passage with <code>--file</code>.")
    return pg.section("Units over the text", text, f"<ul>{why}</ul>",
                      pg.units_table(shown.read, shown.h, shown.chosen))


def _expect_section(exp, exp0, chars: str, val_words: str) -> str:
    vocab_size = len(chars)
    text = ("Each symbol is coloured by the probability the model gave it just before "
            "reading it (red: unlikely, yellow: half, green: expected); hover over a symbol "
            "for its probability and the five most likely candidates. The first symbol is "
            "read, not predicted. Mean cross-entropy over the passage: "
            f"{exp.loss:.3f} nats per symbol ({exp.loss / np.log(2):.2f} bits) trained"
            f"{val_words}, {exp0.loss:.3f} at initialisation (a uniform guess over the "
            f"{vocab_size} symbols would be {np.log(vocab_size):.3f}).")
    shown = exp.read + exp.targets[-1:]
    return pg.section("What the model expects", text,
                      pg.expectation_text(shown, exp, chars))


def cells_report(hidden: int | None = None, steps: int | None = None, seed: int = 0,
                 out: str | None = None, scale: float | None = None) -> str:
    """Write the fresh-cells page (default cells.html in the current folder); returns its path.
    hidden: units per layer (None: 128); steps: length of the random sequence (None: 100);
    scale: the recurrent weights of the second set of cells, times torch's (None: SCALE)."""
    hidden, steps = (128 if hidden is None else hidden), (100 if steps is None else steps)
    scale = SCALE if scale is None else float(scale)
    if not 2 <= steps <= m.MAX_CHARS:
        raise m.InspectError(f"--length: expected an integer from 2 to {m.MAX_CHARS}, got "
                             f"{steps}")
    if hidden < 1 or hidden > 4096:
        raise m.InspectError(f"--hidden: expected an integer from 1 to 4096, got {hidden}")
    if not 0 < scale <= 100:
        raise m.InspectError(f"--scale: expected a number in (0, 100], got {scale:g}")
    out = out or "cells.html"
    pg.check_out(out)
    flows = {"torch's initialisation": m.fresh_cells(hidden, steps, seed),
             f"W_hh x {scale:g}": m.fresh_cells(hidden, steps, seed, scale=scale)}
    panels, rows = cells_panels(flows)
    s = min(50, steps - 1)
    words = {name: "; ".join(f"{kind} x{m.decay(f['h'][0]):.3f} per step "
                             f"({pg.ratio(f['h'][0], s):.1e} at {s} back)"
                             for kind, f in fl.items()) for name, fl in flows.items()}
    first, second = flows
    text = (f"Freshly initialised RNN (tanh), GRU and LSTM layers, {hidden} units each, read "
            f"the same random sequence of {steps} steps (standard normal inputs of size {hidden}"
            f", seed {seed}). The loss is L = w · h<sub>T</sub> for a random unit vector w; one "
            "backward gives dL/dh<sub>t</sub> (and the LSTM's dL/dc<sub>t</sub>, dashed) of "
            "every step. Both panels share one log axis, so the slopes compare directly; the "
            "dotted lines are each cell's mean factor per step back, drawn from the loss. "
            f"<b>Left, torch's initialisation</b> U(-1/√H, 1/√H): {words[first]}. Each step back "
            "multiplies the gradient by the step's Jacobian, for the RNN W<sub>hh</sub><sup>T"
            "</sup> diag(1 - h²), which shrinks it at a steady rate when the weights are small: "
            "the vanishing gradient of the textbook. The GRU's z h term and the LSTM's f c term "
            "add a path through a gate alone, with no weight matrix; at initialisation these "
            "gates sit near σ(0) = ½, so that path halves the gradient at each step, and "
            "training learns to open them where it needs a long memory. "
            f"<b>Right, the recurrent weights times {scale:g}</b>: {words[second]}. Above 1 per "
            "step the gradient explodes: one long sequence gives an update that throws the "
            "weights far away, which is what clipping the gradient's norm "
            "(<code>--clip</code>) guards against; below 1 it vanishes, which is what the "
            "gates address.")
    body = pg.section("Gradient flow through time in fresh cells", text,
                      f'<img alt="gradient flow" src="{pg.png_uri(cells_figure(panels))}">',
                      pg.flow_table(rows))
    intro = ("No run needed: what backpropagation through time does to a gradient in each "
             "kind of cell before any training, vanishing and exploding.")
    pg.write_page(out, pg.page("bptt inspect --cells", intro, [body]))
    return out


def cells_panels(flows: dict) -> tuple[list, list]:
    """The panels (one per set of cells) with each curve and its fitted per-step factor, and
    the table rows."""
    panels, rows = [], []
    for name, fl in flows.items():
        lines = []
        for i, (kind, f) in enumerate(fl.items()):
            for p in f:
                d = m.decay(f[p][0])
                lines.append((f"{kind} dL/d{p}: x{d:.3f}/step", f[p][0],
                              "-" if p == "h" else "--", f"C{i}"))
                rows.append((f"{name}: {kind} dL/d{p}", f[p][0]))
            d = m.decay(f["h"][0])
            lines.append(("_fit", f["h"][0][0] * d ** np.arange(len(f["h"][0])), ":", f"C{i}"))
        panels.append((name, lines))
    return panels, rows


def cells_figure(panels: list):
    """The panels on one shared log y axis (``bptt.text.figures.flow_figure``)."""
    from ..text.figures import flow_figure

    return flow_figure(panels, share=True)
