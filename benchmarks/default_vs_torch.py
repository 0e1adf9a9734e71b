"""``bptt train`` beside the PyTorch reference (benchmarks/torch_reference.py), back to back on
the same machine, in one Markdown table: the validation loss at each minute mark of training.

    python benchmarks/default_vs_torch.py                        # defaults, 10 minutes each
    python benchmarks/default_vs_torch.py --marks 1 2 --minutes 2 --out table.md
    python benchmarks/default_vs_torch.py -- --lr 2e-3 --steps 5000   # flags after -- go to bptt

Both runs are timed by one clock, the training clock: the sum of the training steps' own times
(forward, backward, clipping, the optimizer step), without validation, checkpoints or logging.
bptt's ``elapsed_s`` column is wall time and includes its validations (every --eval-every steps,
over the whole held-out text) and checkpoints, so it is not used for the marks; instead bptt's
training clock at a metrics row is rebuilt from its ``chars_per_sec`` column, which is the
characters of the steps since the previous row divided by the seconds those steps took. The
reference validates when its clock crosses a mark; bptt validates every --eval-every steps, so
its value at a mark is its last validation at or before that training time (the table gives the
time of each value). ``--minutes`` is the budget of each run on that clock: the reference stops
there, and bptt is sent SIGTERM there if it has not ended by itself (it saves and stops).

``--tiny`` (for the test): tiny models, a few steps, and the marks and ``--minutes`` read as
seconds.
"""

import argparse
import csv
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
TINY_TORCH = ["--hidden", "16", "--threads", "1", "--max-steps", "30"]
TINY_BPTT = ["--hidden", "16", "--steps", "30", "--eval-every", "10", "--log-every", "5",
             "--checkpoint-every", "30"]


def bptt_config(extra: list[str], out: str):
    """The Config that ``bptt train *extra --out out`` runs with (its parser and presets)."""
    from bptt.cli import build_parser
    from bptt.text.config import Config, with_preset

    args = build_parser().parse_args(["train", *extra, "--out", out])
    given = {k: v for k, v in vars(args).items() if k not in ("handler", "command")}
    if not given.get("corpus"):
        given.pop("corpus", None)
    return with_preset(Config(**given), set(given))


def training_clock(rows: list[dict], chars_per_step: int, log_every: int,
                   eval_every: int) -> list[tuple[dict, float]]:
    """(row, training seconds up to its step) for bptt's metrics rows, rebuilt from
    ``chars_per_sec``: a row's rate covers the steps since the last row that started a new
    window (a row whose step is a multiple of --log-every or --eval-every; bptt.text.train's
    ``_add_row``), so a window's seconds are its steps' characters over its rate."""
    out, base_step, base_clock = [], 0, 0.0
    for row in rows:
        step, rate = int(row["step"]), float(row["chars_per_sec"])
        window = (step - base_step) * chars_per_step / rate if rate > 0 else 0.0
        clock = base_clock + window
        out.append((row, clock))
        if step % log_every == 0 or step % eval_every == 0:
            base_step, base_clock = step, clock
    return out


def value_at(points: list[tuple[float, float, int]], seconds: float):
    """The last (clock, loss, step) of ``points`` with clock <= seconds, or None."""
    before = [p for p in points if p[0] <= seconds]
    return before[-1] if before else None


def read_metrics(path: str) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def env() -> dict:
    """The environment of the child runs: this checkout's bptt first on the path."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [e.get("PYTHONPATH")])])
    return e


def run_torch(marks_min: list[float], minutes: float, extra: list[str], tmp: str) -> dict:
    path = os.path.join(tmp, "torch.json")
    cmd = [sys.executable, str(HERE / "torch_reference.py"), "--marks", *map(str, marks_min),
           "--minutes", str(minutes), *extra, "--json", path]
    subprocess.run(cmd, check=True, env=env(), cwd=REPO)
    with open(path, encoding="utf-8") as fh:
        out = json.load(fh)
    out["argv"] = cmd[2:-2]
    return out


def run_bptt(extra: list[str], budget_s: float, tmp: str, poll: float) -> dict:
    """``bptt train *extra`` in a folder of ``tmp``, stopped by SIGTERM at ``budget_s`` of
    training clock; its metrics rows with their training clock."""
    out = os.path.join(tmp, "bptt_run")
    cfg = bptt_config(extra, out)
    chars = cfg.batch * cfg.seq_len
    cmd = [sys.executable, "-m", "bptt", "train", *extra, "--out", out]
    log_path = os.path.join(tmp, "bptt.log")
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, env=env(), cwd=REPO, stdout=log, stderr=log)
        stopped = False
        while proc.poll() is None:
            time.sleep(poll)
            rows = read_metrics(os.path.join(out, "metrics.csv"))
            clocked = training_clock(rows, chars, cfg.log_every, cfg.eval_every)
            if not stopped and clocked and clocked[-1][1] >= budget_s:
                proc.send_signal(signal.SIGTERM)
                stopped = True
        wall = time.perf_counter() - t0
    if proc.returncode not in (0, 128 + signal.SIGTERM) and not stopped:
        with open(log_path, encoding="utf-8") as fh:
            sys.stderr.write(fh.read()[-3000:])
        raise SystemExit(f"bptt train exited with {proc.returncode}")
    rows = read_metrics(os.path.join(out, "metrics.csv"))
    clocked = training_clock(rows, chars, cfg.log_every, cfg.eval_every)
    steps = int(rows[-1]["step"]) if rows else 0
    clock = clocked[-1][1] if clocked else 0.0
    return {"argv": ["train", *extra], "points": [(c, float(r["val_loss"]), int(r["step"]))
                                                  for r, c in clocked if r["val_loss"]],
            "steps": steps, "clock_s": clock, "wall_s": wall,
            "elapsed_s": float(rows[-1]["elapsed_s"]) if rows else 0.0,
            "chars_per_sec": steps * chars / clock if clock > 0 else 0.0,
            "stopped": stopped, "eval_every": cfg.eval_every}


class LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds in a thread while in use."""

    def __init__(self, every: float):
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> tuple[float, float]:
        """(mean, max) of the samples."""
        return sum(self.samples) / len(self.samples), max(self.samples)


def cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no lscpu)"
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def cell(found) -> str:
    """A table entry: loss (time of the validation, step), or '-' for none."""
    if found is None:
        return "-"
    clock, loss, step = found
    return f"{loss:.3f} ({_secs(clock)} s, step {step})"


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2f}"


def table(marks: list[float], unit: str, torch_out: dict, bptt_out: dict, cpu: str,
          commands: list[str], load: list[tuple[float, float]]) -> str:
    """The Markdown report: one row per run, a column per mark, then the notes."""
    scale = 60 if unit == "min" else 1
    head = ["validation loss at training clock", *[f"{m:g} {unit}" for m in marks],
            "chars/s", "steps", "wall"]
    t_row = ["PyTorch reference"]
    for m in marks:
        hit = [r for r in torch_out["results"] if r["mark"] is not None
               and abs(r["mark"] * 60 - m * scale) < 1e-3]
        t_row.append(cell((hit[0]["clock_s"], hit[0]["val_loss"], hit[0]["step"]) if hit
                          else None))
    b_row = ["`bptt train`"] + [cell(value_at(bptt_out["points"], m * scale))
                                for m in marks]
    t_row += [f"{torch_out['chars_per_sec'] / 1000:.1f}k", str(torch_out["steps"]),
              f"{_secs(torch_out['wall_s'])} s"]
    b_row += [f"{bptt_out['chars_per_sec'] / 1000:.1f}k", str(bptt_out["steps"]),
              f"{_secs(bptt_out['wall_s'])} s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| " + " | ".join(t_row) + " |", "| " + " | ".join(b_row) + " |", ""]
    end = f"{torch_out['minutes'] * 60:.0f} s"
    lines += [
        f"CPU: {cpu} (`lscpu` model name), {os.cpu_count()} logical CPUs; torch "
        f"{torch_out['torch']}, threads: {torch_out['threads']}; the two runs back to back; "
        "the 1-minute load average, mean (max) of samples during each run: PyTorch "
        f"{load[0][0]:.2f} ({load[0][1]:.2f}), bptt {load[1][0]:.2f} ({load[1][1]:.2f}) (one "
        "run alone on the machine keeps it near its thread count; above that, other processes "
        "shared the CPUs).",
        "",
        "Training clock (both runs): the sum of the training steps' own times (forward, "
        "backward, clipping, optimizer step), without validation, checkpoints or logging; bptt's "
        "is rebuilt from its metrics.csv `chars_per_sec` column (its `elapsed_s` is wall time "
        "with validation). Each entry: validation loss over the whole held-out 10% (nats/char), "
        "with the training clock and step of that validation. PyTorch: validated when its "
        "clock crosses the mark. bptt: its last validation (every "
        f"{bptt_out['eval_every']} steps and at its end) at or before the mark, so up to "
        f"{bptt_out['eval_every']} steps old. chars/s: training characters over the training "
        f"clock. Wall: the whole run with its validations (and bptt's checkpoints). Budget: {end} "
        "of training clock each"
        + ("; bptt was stopped there by SIGTERM." if bptt_out["stopped"]
           else "; bptt ended by itself (its --steps)."),
        "",
        "Commands:",
        "",
        "```",
        *commands,
        "```",
    ]
    return "\n".join(lines) + "\n"


def curves(torch_out: dict, bptt_out: dict) -> str:
    """Both runs' validations as (training clock s, loss, step), one line each."""
    t = [(r["clock_s"], r["val_loss"], r["step"]) for r in torch_out["results"]]
    seen, t_unique = set(), []
    for p in t:                             # several marks crossed by one step: one validation
        if p[2] not in seen:
            seen.add(p[2])
            t_unique.append(p)
    return (f"Curves (training clock, validation loss):\n\n- PyTorch reference: "
            f"{_points(t_unique)}\n- `bptt train`: {_points(bptt_out['points'])}\n")


def _points(points: list) -> str:
    return ", ".join(f"{_secs(clock)} s {loss:.3f}" for clock, loss, _ in points)


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(options, the flags after ``--`` for bptt train)."""
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--marks", type=float, nargs="+", default=[1, 2, 5, 7, 10],
                    help="minutes of training clock (default 1 2 5 7 10)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="training clock budget of each run (default: the last mark)")
    ap.add_argument("--curve-every", type=float, default=1.0,
                    help="also validate the reference every this many minutes, for its curve "
                         "(default 1; 0: only at the marks)")
    ap.add_argument("--torch-args", default="", help="extra flags of torch_reference.py")
    ap.add_argument("--tiny", action="store_true",
                    help="tiny models and a few steps; marks and --minutes in seconds (tests)")
    ap.add_argument("--out", help="write the Markdown to this file too")
    args = ap.parse_args(argv)
    if any(m <= 0 for m in args.marks) or (args.minutes is not None and args.minutes <= 0):
        ap.error("--marks and --minutes: expected numbers > 0")
    return args, extra


def main(argv: list[str] | None = None) -> str:
    args, extra = parse(sys.argv[1:] if argv is None else list(argv))
    unit, scale = ("s", 1 / 60) if args.tiny else ("min", 1.0)
    marks = sorted(args.marks)
    budget = args.minutes if args.minutes is not None else marks[-1]
    torch_extra = shlex.split(args.torch_args) + (TINY_TORCH if args.tiny else [])
    bptt_extra = (TINY_BPTT if args.tiny else []) + extra
    curve = []
    if args.curve_every > 0 and not args.tiny:
        n = int(budget / args.curve_every + 1e-9)
        curve = [args.curve_every * k for k in range(1, n + 1)]
    torch_marks = sorted({round(m * scale, 9) for m in [*marks, *curve]})
    with tempfile.TemporaryDirectory(prefix="default_vs_torch_") as tmp:
        every = 0.2 if args.tiny else 5
        with LoadSampler(every) as torch_load:
            torch_out = run_torch(torch_marks, budget * scale, torch_extra, tmp)
        with LoadSampler(every) as bptt_load:
            bptt_out = run_bptt(bptt_extra, budget * scale * 60, tmp, poll=min(every, 2))
    load = [torch_load.summary(), bptt_load.summary()]
    shown = ["python benchmarks/default_vs_torch.py " + shlex.join(sys.argv[1:] if argv is None
                                                                  else argv),
             "  = python benchmarks/torch_reference.py " + shlex.join(torch_out["argv"]),
             "  + bptt " + shlex.join(bptt_out["argv"]) + " --out TMP"]
    text = table(marks, unit, torch_out, bptt_out, cpu_model(), shown, load)
    text += "\n" + curves(torch_out, bptt_out)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


if __name__ == "__main__":
    main()
