"""A run's record: ``metrics.csv`` (a row every ``--log-every`` steps and at each validation)
and ``loss.png`` (train and validation loss against step, the best validation marked).

``best_step`` is the step of the lowest validation loss so far, whose state is in best.npz;
``lr`` the learning rate of the row's step (the schedule's, ``Config.schedule``)."""

import csv
import os

from . import checkpoint as ckpt

METRICS, PLOT = "metrics.csv", "loss.png"
COLUMNS = ["step", "train_loss", "val_loss", "chars_per_sec", "elapsed_s", "best_step", "lr"]
TIMING = ("chars_per_sec", "elapsed_s")


def read_rows(path: str, upto: int) -> list[dict]:
    """Rows of an existing metrics.csv with step <= upto (later rows belong to steps the
    checkpoint does not hold, so a resume replays them)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [r for r in rows if (r.get("step") or "").isdigit() and int(r["step"]) <= upto]


class Record:
    """The metrics rows of the run in folder ``out``. Opening it rewrites metrics.csv with the
    rows up to step ``upto`` (atomically); ``add`` appends one row to the file."""

    def __init__(self, out: str, upto: int):
        self.metrics, self.plot_path = os.path.join(out, METRICS), os.path.join(out, PLOT)
        self.rows = read_rows(self.metrics, upto)

        def write(tmp):
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, COLUMNS, extrasaction="ignore")
                w.writeheader()
                w.writerows(self.rows)
        ckpt.write_atomic(self.metrics, write)

    def add(self, row: dict) -> None:
        self.rows.append(row)
        size = os.path.getsize(self.metrics) if os.path.exists(self.metrics) else 0
        try:
            with open(self.metrics, "a", newline="", encoding="utf-8") as fh:
                csv.DictWriter(fh, COLUMNS, extrasaction="ignore").writerow(row)
        except OSError:                 # e.g. a full disk: no partial row is left behind
            if os.path.exists(self.metrics) and os.path.getsize(self.metrics) > size:
                os.truncate(self.metrics, size)
            raise

    def plot(self) -> None:
        plot_losses(self.plot_path, self.rows)


def plot_losses(path: str, rows: list[dict]) -> None:
    """loss.png: train and validation loss against step, drawn without a display (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for col, style in (("train_loss", "-"), ("val_loss", "o-")):
        pts = [(int(r["step"]), float(r[col])) for r in rows if r.get(col)]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=col.replace("_loss", ""), markersize=3)
    best = [r for r in rows if r.get("best_step") and r["best_step"] == r["step"]]
    if best and best[-1].get("val_loss"):
        ax.plot(int(best[-1]["step"]), float(best[-1]["val_loss"]), "*", markersize=12,
                label=f"best (step {best[-1]['step']})")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per symbol)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    ckpt.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


class Meter:
    """Training symbols and the seconds spent in training steps since the last metrics row."""

    def __init__(self):
        self.seconds, self.symbols = 0.0, 0

    def add(self, seconds: float, symbols: int) -> None:
        self.seconds, self.symbols = self.seconds + seconds, self.symbols + symbols

    def rate(self) -> float:
        return self.symbols / self.seconds if self.seconds > 0 else 0.0

    def reset(self) -> None:
        self.seconds, self.symbols = 0.0, 0
