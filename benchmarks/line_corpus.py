"""Time to the first step and peak memory of a run on a big list of lines, against stream mode
on the same bytes (issue 23's budgets: first step <= 3 s, peak <= 1.5x stream mode + 64 MiB, flat
over a run with three validations).

    python benchmarks/line_corpus.py                     # 1,000,000 lines of 4-30 characters
    python benchmarks/line_corpus.py --lines-count 200000 --modes lines

Each run is a child process ``bptt.text.train.train`` with the default model; a progress-bar
class records the wall time of the first step (from just before the child starts: interpreter,
imports, reading, encoding and the step itself) and the resident memory after each
validation; then ``bptt train --out RUN --resume`` on the finished run is timed (it must refuse
before reading the corpus). The generated list is written to --corpus (kept, reused if
present).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = r"""
import json, resource, sys, time
from bptt.text.config import Config
from bptt.text.train import train

corpus, out, lines, steps, eval_every = sys.argv[1], sys.argv[2], sys.argv[3] == "1", \
    int(sys.argv[4]), int(sys.argv[5])
seen = {"first": None, "rss": []}


def rss():
    with open("/proc/self/status") as fh:
        return next(int(s.split()[1]) * 1024 for s in fh if s.startswith("VmRSS"))


class Probe:
    def __init__(self, total, initial, **kw):
        self.n = initial

    def update(self, k):
        self.n += k
        if seen["first"] is None:
            seen["first"] = time.time()
        if self.n % eval_every == 0:
            seen["rss"].append(rss())

    def set_postfix(self, **kw):
        pass

    def close(self):
        pass


extra = {} if lines else {"eval_chars": 150_000}
train(Config(corpus=[corpus], out=out, lines=lines, steps=steps, eval_every=eval_every,
             checkpoint_every=steps, **extra), progress=Probe,
      log=lambda s: print(s, file=sys.stderr))
seen["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(seen))
"""


def make_list(path: str, n: int, seed: int = 0) -> None:
    """n lines of 4-30 characters (lowercase letters, digits, '-', '_', '.'), seeded."""
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789-_.", np.uint8)
    lengths = rng.integers(4, 31, size=n)
    ends = np.cumsum(lengths + 1)
    buf = alphabet[rng.integers(0, len(alphabet) - 3, size=int(ends[-1]))]
    buf[ends - 1] = ord("\n")
    with open(path, "wb") as fh:
        fh.write(buf.tobytes())


def run(corpus: str, lines: bool, steps: int, eval_every: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        r = subprocess.run([sys.executable, "-c", CHILD, corpus, os.path.join(tmp, "run"),
                            "1" if lines else "0", str(steps), str(eval_every)],
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)
        t0 = time.time()                    # a resume of the finished run: refused at once
        done = subprocess.run([sys.executable, "-m", "bptt", "train", "--out",
                               os.path.join(tmp, "run"), "--resume"], capture_output=True,
                              text=True)
        refused = time.time() - t0
    got = json.loads(r.stdout.splitlines()[-1])
    got["refused"] = (refused, done.stderr.strip())
    got["first"] -= start
    got["summary"] = [s for s in r.stderr.splitlines() if s.startswith("corpus")]
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=os.path.join(tempfile.gettempdir(), "bptt_lines_1m.txt"))
    ap.add_argument("--lines-count", type=int, default=1_000_000)
    ap.add_argument("--modes", nargs="+", default=["lines", "stream"])
    ap.add_argument("--steps", type=int, default=6, help="steps of each run (default: 6)")
    ap.add_argument("--eval-every", type=int, default=2, help="(default: 2: three validations)")
    args = ap.parse_args()
    if not os.path.exists(args.corpus):
        make_list(args.corpus, args.lines_count)
    size = os.path.getsize(args.corpus)
    print(f"corpus {args.corpus}: {size:,} bytes")
    peaks = {}
    for mode in args.modes:
        got = run(args.corpus, mode == "lines", args.steps, args.eval_every)
        peaks[mode] = got["peak"]
        after = ", ".join(f"{r / 2**20:.0f}" for r in got["rss"])
        print(f"{mode:7} first step {got['first']:.2f} s; peak {got['peak'] / 2**20:.0f} MiB; "
              f"resident after each validation (MiB): {after}")
        for s in got["summary"]:
            print(f"        {s}")
        print(f"        resume of the finished run answered in {got['refused'][0]:.2f} s: "
              f"{got['refused'][1]}")
    if len(peaks) == 2:
        budget = 1.5 * peaks["stream"] + (64 << 20)
        print(f"lines peak / budget (1.5 x stream + 64 MiB): {peaks['lines'] / 2**20:.0f} / "
              f"{budget / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
