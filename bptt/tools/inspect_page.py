"""The page of ``bptt inspect``: figures (matplotlib, Agg, PNG as data: URIs) and one
self-contained HTML file (inline CSS, no script, no font or file fetched). The numbers come from
``bptt.tools.inspect``; nothing here measures.
"""

import base64
import html
import io

import numpy as np

from ..text import figures
from ..text.checkpoint import write_atomic
from ..text.probe import decay

MARK = "<!-- written by bptt inspect -->"   # first line of every page: only such a file is replaced
BACK = (10, 25, 50, 100)                    # distances back tabulated under the flow figure
STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
img { max-width: 100%; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
.text { font-family: monospace; white-space: pre-wrap; line-height: 1.6; padding: .5em;
        border: 1px solid #ddd; }
.text span { padding: 1px 0; }
.label { font-weight: bold; margin-top: .8em; }
.note { color: #555; font-size: .9em; }
table.units { font-family: monospace; font-size: .85em; margin: .3em 0; }
table.units td { border: none; padding: 0; min-width: .75em; height: 1.1em; text-align: center; }
table.units th { border: none; padding: 0 .5em 0 0; font-weight: normal; color: #555; }
"""


# ------------------------------------------------------------------------------ figures

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    return fig


def png_uri(fig) -> str:
    """The figure as a data: URI of a PNG."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def flow_figure(panels: list, horizon: int | None = None, share: bool = True) -> str:
    """``bptt.text.figures.flow_figure`` as a data: URI: gradient norm against steps back, log
    scale, one y axis for all panels, the training horizon marked."""
    return png_uri(figures.flow_figure(panels, horizon, share))


def keep_figure(gate: str, values: dict, flows: dict, part: str) -> str:
    """Left: the distribution of a gate's values (``values``: "trained"/"initialisation" ->
    array of all its values); right: the decay of dL/d``part`` it causes (``flows``: the same
    keys -> norms by steps back), with the per-step factor in the legend."""
    fig = _figure(9.5, 3.6)
    ax = fig.add_subplot(1, 2, 1)
    for j, (which, v) in enumerate(values.items()):
        ax.hist(np.ravel(v), bins=40, range=(0, 1), alpha=0.55, color=f"C{j}", density=True,
                label=f"{which}, median {np.median(v):.2f}")
    ax.set_xlabel(f"{gate} gate value")
    ax.set_ylabel("density")
    ax.set_title(f"{gate} gate over the passage (top layer)")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 2, 2)
    for j, (which, norms) in enumerate(flows.items()):
        d = decay(norms)
        ax.semilogy(figures.positive(norms), color=f"C{j}", label=f"{which}: x{d:.3f} per step")
        ax.semilogy(norms[0] * d ** np.arange(len(norms)), ":", color=f"C{j}", lw=0.9)
    ax.set_xlabel("steps back from the loss")
    ax.set_ylabel(f"|dL/d{part}|")
    ax.set_title(f"dL/d{part}: decay per step back (dotted: the fit)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return png_uri(fig)


def saturation_figure(trained: dict, initial: dict, low: str, high: str) -> str:
    """Scatter per layer (rows) and gate (columns): each unit at (fraction left-saturated,
    fraction right-saturated); trained in colour, initialisation in grey."""
    names = list(trained)
    L = trained[names[0]][0].shape[0]
    fig = _figure(3.3 * len(names) + 0.5, 3.1 * L + 0.3)
    for k in range(L):
        for j, name in enumerate(names):
            ax = fig.add_subplot(L, len(names), k * len(names) + j + 1)
            ax.plot([0, 1], [1, 0], color="#bbb", lw=0.8)
            li, ri = initial[name][0][k], initial[name][1][k]
            lt, rt = trained[name][0][k], trained[name][1][k]
            ax.scatter(li, ri, s=8, color="#999", alpha=0.5, label="initialisation")
            ax.scatter(lt, rt, s=8, color=f"C{j}", alpha=0.7, label="trained")
            ax.set_xlim(-0.03, 1.03)
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"layer {k}, {name}", fontsize=10)
            ax.set_xlabel(f"fraction of steps {low}", fontsize=8)
            ax.set_ylabel(f"fraction of steps {high}", fontsize=8)
            if k == 0 and j == 0:
                ax.legend(fontsize=7, loc="upper right")
    return png_uri(fig)


# ------------------------------------------------------------------------------ coloured text

def _shown(ch: str) -> str:
    if ch == "\n":
        return "↵\n"
    if ch == "\t":
        return "⇥"
    return html.escape(ch)


def _diverging(v: float) -> str:
    """Blue (-1) through white (0) to red (+1), light enough at the ends to read black text."""
    v = float(np.clip(v, -1, 1))
    fade = int(round(255 - 145 * abs(v)))
    return f"#ff{fade:02x}{fade:02x}" if v >= 0 else f"#{fade:02x}{fade:02x}ff"


def _probability(p: float) -> str:
    """Red (0) through yellow to green (1)."""
    return f"hsl({120 * float(np.clip(p, 0, 1)):.0f}, 75%, 78%)"


def unit_text(text: str, values: np.ndarray) -> str:
    """``text`` (T characters read) with character t on the colour of values[t] in [-1, 1]."""
    spans = (f'<span style="background:{_diverging(v)}" title="{v:+.3f}">{_shown(c)}</span>'
             for c, v in zip(text, values, strict=True))
    return '<div class="text">' + "".join(spans) + "</div>"


def units_table(read: str, h: np.ndarray, chosen: list, width: int = 64) -> str:
    """The units as rows under the text, ``width`` symbols per block: a row of the symbols read,
    then one row per unit coloured by its activation (hover: the value). One passage, shown once."""
    blocks = []
    for a in range(0, len(read), width):
        chunk = read[a: a + width]
        rows = ["<tr><th></th>" + "".join(f"<td>{_shown(c).rstrip()}</td>" for c in chunk)
                + "</tr>"]
        for k, u, _ in chosen:
            cells = "".join(f'<td style="background:{_diverging(v)}" title="{v:+.3f}"></td>'
                            for v in h[k, a: a + len(chunk), u])
            rows.append(f"<tr><th>{k}:{u}</th>{cells}</tr>")
        blocks.append('<table class="units">' + "".join(rows) + "</table>")
    return "".join(blocks)


def expectation_text(passage: str, exp, chars: str) -> str:
    """The passage with each predicted character (all but the first) on the colour of the
    probability it was given; its title (hover) lists the five most likely characters."""
    out = [f'<span title="read first, not predicted">{_shown(passage[0])}</span>']
    for t, ch in enumerate(passage[1:]):
        top = ", ".join(f"{chars[i]!r} {exp.probs[t, i]:.1%}" for i in exp.top[t])
        title = html.escape(f"{ch!r}: {exp.actual[t]:.1%}; top 5: {top}", quote=True)
        out.append(f'<span style="background:{_probability(exp.actual[t])}" title="{title}">'
                   f"{_shown(ch)}</span>")
    return '<div class="text">' + "".join(out) + "</div>"


# ------------------------------------------------------------------------------ tables, page

def ratio(norms: np.ndarray, s: int) -> float:
    """|grad| s steps back over |grad| at the loss (distance 0), for one layer's row."""
    return float(norms[s] / norms[0]) if s < len(norms) and norms[0] > 0 else float("nan")


def distances(length: int) -> list[int]:
    """The distances back tabulated: BACK where the passage reaches them, else up to four spread
    over what it has (a passage of any length gets a table)."""
    back = [s for s in BACK if s < length]
    if len(back) >= 2 or length < 2:
        return back
    return sorted({int(round(x)) for x in np.linspace(1, length - 1, min(4, length - 1))})


def flow_table(rows: list[tuple[str, np.ndarray]]) -> str:
    """Ratio of the gradient norm s steps back to the norm at the loss (``distances``), and the
    mean factor per step back."""
    length = min(len(r) for _, r in rows)
    back = distances(length)
    head = "".join(f"<th>{s} back</th>" for s in back) + "<th>per step</th>"
    body = "".join(f"<tr><th>{html.escape(name)}</th>"
                   + "".join(f"<td>{ratio(r, s):.2e}</td>" for s in back)
                   + f"<td>{decay(r):.3f}</td></tr>"
                   for name, r in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def section(title: str, explanation: str, *body: str) -> str:
    return f"<h2>{html.escape(title)}</h2><p>{explanation}</p>" + "".join(body)


def page(title: str, intro: str, sections: list[str]) -> str:
    return (f"{MARK}\n<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{intro}</p>{''.join(sections)}</body></html>\n")


def check_out(path: str) -> None:
    """FileExistsError unless ``path`` is free or a page bptt inspect wrote (its first line is
    MARK): a report replaces its own earlier page, never another file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().rstrip("\n")
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise FileExistsError(f"--out {path}: is a folder") from None
    if first != MARK:
        raise FileExistsError(f"--out {path}: exists and is not a report of bptt inspect; "
                              "choose another --out or remove it")


def write_page(path: str, text: str) -> None:
    """Write the page atomically (``check_out`` first): a failure leaves the old file whole."""
    check_out(path)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    write_atomic(path, write)
