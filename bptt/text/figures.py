"""Figures of a run and of what its model does, as matplotlib ``Figure`` objects (drawn without a
display, Agg): ``TrainResult.plot`` and the results of ``Model.gradient_flow`` / ``units`` return
them for a notebook, and ``bptt inspect`` embeds the same figures in its page.
Nothing here measures: the numbers come from ``bptt.text.probe``.
"""

import io

import numpy as np


def figure(width: float, height: float, dpi: int = 90):
    """An empty Figure with an Agg canvas (no pyplot, no display, no global state) that a
    notebook shows as a PNG when it is a cell's last expression, pyplot imported or not."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        def _repr_png_(self) -> bytes:
            buf = io.BytesIO()
            self.savefig(buf, format="png")
            return buf.getvalue()

    fig = ShownFigure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def positive(row: np.ndarray) -> np.ndarray:
    """Zeros (an underflowed gradient) as NaN, so a log-scale line stops instead of failing."""
    return np.where(row > 0, row, np.nan)


def loss_figure(history: list[dict]):
    """Train and validation loss against step from ``TrainResult.history`` rows (numbers; a
    validation loss of None between validations), the best validation starred."""
    fig = figure(7, 4, dpi=100)
    ax = fig.add_subplot()
    for col, style in (("train_loss", "-"), ("val_loss", "o-")):
        pts = [(r["step"], r[col]) for r in history if r.get(col) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=col.replace("_loss", ""), markersize=3)
    vals = [(r["val_loss"], r["step"]) for r in history if r.get("val_loss") is not None]
    if vals:
        loss, step = min(vals)
        ax.plot(step, loss, "*", markersize=12, label=f"best {loss:.3f} (step {step})")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per symbol)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def flow_figure(panels: list, horizon: int | None = None, share: bool = False,
                title: str = ""):
    """Gradient norm against steps back, log scale, panels side by side. ``panels``: a list of
    (title, lines), each line (label, norms (T,) indexed by steps back, linestyle, colour).
    ``horizon``: a vertical marker at the steps training backpropagated through. ``share``: one
    y axis for all panels (so their slopes compare at a glance)."""
    fig = figure(4.2 * len(panels) + 1, 3.8)
    first = None
    for i, (name, lines) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1, sharey=first if share else None)
        first = first or ax
        for label, norms, style, colour in lines:
            ax.semilogy(positive(np.asarray(norms, dtype=np.float64)), style, color=colour,
                        label=label)
        if horizon is not None:
            ax.axvline(horizon, color="#888", ls=":", lw=1.2,
                       label=f"training horizon ({horizon} steps)")
        ax.set_title(name)
        ax.set_xlabel("steps back from the loss")
        ax.set_ylabel("gradient norm")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def units_figure(read: str, h: np.ndarray, chosen: list):
    """The chosen units' activations (rows) over the symbols read (columns), blue -1 to red +1.
    h: (L, T, H); chosen: (layer, unit, why) tuples."""
    rows = np.array([h[k, :, u] for k, u, _ in chosen], dtype=np.float64)        # (n, T)
    fig = figure(min(2 + 0.12 * len(read), 16), 0.9 + 0.35 * len(chosen))
    ax = fig.add_subplot()
    ax.imshow(rows, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(chosen)), [f"layer {k}, unit {u}" for k, u, _ in chosen],
                  fontsize=8)
    if len(read) <= 120:
        ax.set_xticks(range(len(read)), ["↵" if c == "\n" else c for c in read], fontsize=7)
    else:
        ax.set_xlabel("symbol read")
    fig.tight_layout()
    return fig
