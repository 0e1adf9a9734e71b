"""Training speed (characters per second) by BLAS thread count, on a quiet machine and with other
programs busy on the cores: the measurement behind the default of ``bptt train --threads``.

    python benchmarks/threads.py                       # --threads 1 and 2, quiet, then busy
    python benchmarks/threads.py --threads 1 2 4 --busy 0 1 2 --steps 30

Each figure is one child ``bptt train`` of the default model on the built-in corpus for --steps
steps (no validation before the last); its ``metrics.csv`` gives chars_per_sec over the steps after
the first --log-every (the first is warm-up). The thread counts alternate, --repeat times, so load
changes hit them alike. "busy N": N other processes spinning in a Python loop during the run.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile

SPIN = "while True: pass"


def speed(threads: int, steps: int, log_every: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        r = subprocess.run([sys.executable, "-m", "bptt", "train", "--out", out, "--steps",
                            str(steps), "--log-every", str(log_every), "--eval-every", "100000",
                            "--eval-chars", "2000", "--threads", str(threads)],
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)
        with open(os.path.join(out, "metrics.csv"), newline="") as fh:
            rows = list(csv.DictReader(fh))
    return statistics.mean(float(r["chars_per_sec"]) for r in rows[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--log-every", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; default model, built-in corpus, {args.steps} steps a run")
    for busy in args.busy:
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
        try:
            got = {t: [] for t in args.threads}
            for _ in range(args.repeat):
                for t in args.threads:
                    got[t].append(speed(t, args.steps, args.log_every))
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        for t, v in got.items():
            print(f"busy {busy}: --threads {t}: " + ", ".join(f"{x:,.0f}" for x in v)
                  + " chars/s")


if __name__ == "__main__":
    main()
