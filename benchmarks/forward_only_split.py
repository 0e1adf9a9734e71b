"""Where the time of the forward-only path goes (``bptt.nn.inference``): per step, the GEMMs, the
element-wise passes, the copies, and what is left (Python: the loop, the calls, the checks).

The layer's real forward runs twice: plain (the total, min over the repeats), then with the
NumPy functions that the path and the cells call wrapped by timers, each category summed
over one call; "python" is the plain total minus the three. A wrapper's own cost is outside
the span it times, so the categories are the calls' own time.

    python benchmarks/forward_only_split.py                    # LSTM 1 layer, H = I = 256
    python benchmarks/forward_only_split.py --cell gru --batch 1 10 32 --seq-len 64
"""

import argparse
import time
import types

import numpy as np

import bptt
from bptt.cells import gru, lstm, rnn
from bptt.nn import inference

GEMM = {"dot", "matmul"}
COPY = {"copyto", "take"}


class Timed(types.ModuleType):
    """``numpy`` with its GEMMs, ufuncs and copies timed into ``spent`` by category."""

    def __init__(self, spent: dict):
        super().__init__("numpy")
        self.spent = spent

    def __getattr__(self, name):
        f = getattr(np, name)
        kind = ("gemm" if name in GEMM else "copy" if name in COPY
                else "elementwise" if isinstance(f, np.ufunc) else None)
        if kind is None:
            return f
        spent = self.spent

        def timed(*args, **kw):
            t0 = time.perf_counter()
            out = f(*args, **kw)
            spent[kind] += time.perf_counter() - t0
            return out

        return timed


def split(cell: str, B: int, T: int, H: int, repeat: int) -> dict:
    layer = getattr(bptt, cell.upper())(H, H, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)

    def call():
        with bptt.no_grad():
            layer(x)

    call()
    total = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        total.append(time.perf_counter() - t0)
    best = {"gemm": np.inf, "elementwise": np.inf, "copy": np.inf}
    modules = (inference, lstm, gru, rnn)
    for _ in range(repeat):
        spent = dict.fromkeys(best, 0.0)
        timed = Timed(spent)
        for m in modules:
            m.np = timed
        try:
            call()
        finally:
            for m in modules:
                m.np = np
        best = {k: min(best[k], spent[k]) for k in best}
    us = {k: v / T * 1e6 for k, v in best.items()}
    us["total"] = min(total) / T * 1e6
    us["python"] = us["total"] - us["gemm"] - us["elementwise"] - us["copy"]
    return us


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 10, 32])
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--hidden", type=int, nargs="+", default=[256])
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    print(f"{args.cell.upper()}, 1 layer, input size H, T={args.seq_len}, float32: us per step "
          "(min over the repeats)")
    print(f"{'B':>3} {'H':>4} | {'total':>7} {'GEMM':>7} {'elem':>7} {'copy':>7} {'python':>7}")
    for H in args.hidden:
        for B in args.batch:
            us = split(args.cell, B, args.seq_len, H, args.repeat)
            print(f"{B:>3} {H:>4} | {us['total']:7.1f} {us['gemm']:7.1f} {us['elementwise']:7.1f} "
                  f"{us['copy']:7.1f} {us['python']:7.1f}")


if __name__ == "__main__":
    main()
