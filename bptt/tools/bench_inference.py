"""``bptt bench --inference``: the forward-only path against torch's ``inference_mode``.

Each row runs one stacked layer (``--layers``, default 2; input size H unless ``--input-size``)
forward over T steps from a zero state: bptt inside ``bptt.no_grad()`` in eval mode (the
forward-only path, ``bptt.nn.inference``), torch inside ``torch.inference_mode()`` in eval mode,
on the same weights and input, in one process, timed alternately (``bench.time_interleaved``).
A "gen" row is generation: ``--generate`` steps of one step each (T = 1, B = 1), the state
carried from call to call, as a sampler runs the model.

    bptt bench --inference                       # B {1, 10, 32} x T {35, 64} x H {200, 256, 512}
    bptt bench --inference --cell lstm --hidden 256 --batch 32 --seq-len 64 --repeat 15

Columns: median ms (min-max) of each, and the ratios bptt / torch of the medians and of the
minima.
"""

import statistics
import sys

import numpy as np

from ..nn.grad_mode import no_grad
from ..nn.layers import GRU, LSTM, RNN
from .table import format_ms

LAYERS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
DEFAULTS = {"hidden": [200, 256, 512], "batch": [1, 10, 32], "seq_len": [35, 64]}
GENERATE_HIDDEN = 256  # the generation rows' hidden size (with the default grid)


class InferenceCase:
    """One row: ``steps`` maps "bptt" (and "torch" when given) to a function running it once."""

    def __init__(self, cell, B, T, H, I, layers, dtype, torch=None, generate=0):
        self.layer = LAYERS[cell](I, H, num_layers=layers, dtype=np.dtype(dtype), seed=0).eval()
        rng = np.random.default_rng(1)
        steps = generate or T
        self.x = rng.standard_normal((steps, B, I)).astype(dtype)
        self.generate = generate
        self.steps = {"bptt": self.bptt_gen if generate else self.bptt_seq}
        if torch is not None:
            self.torch = torch
            tdtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
            self.module = getattr(torch.nn, cell)(I, H, num_layers=layers, dtype=tdtype).eval()
            self.module.load_state_dict(
                {k: torch.from_numpy(v.copy()) for k, v in self.layer.state_dict().items()})
            self.xt = torch.from_numpy(self.x)
            self.steps["torch"] = self.torch_gen if generate else self.torch_seq

    def bptt_seq(self):
        with no_grad():
            return self.layer(self.x)

    def bptt_gen(self):
        state = None
        with no_grad():
            for t in range(self.generate):
                _, state = self.layer(self.x[t : t + 1], state)
        return state

    def torch_seq(self):
        with self.torch.inference_mode():
            return self.module(self.xt)

    def torch_gen(self):
        state = None
        with self.torch.inference_mode():
            for t in range(self.generate):
                _, state = self.module(self.xt[t : t + 1], state)
        return state


def rows(args) -> list[dict]:
    """The grid of rows (dicts of the case's arguments): every cell, dtype, batch, T and H,
    then one generation row per cell and dtype (unless --generate 0)."""
    grid = []
    for dtype in args.dtype:
        for cell in (c.upper() for c in args.cell):
            for B in args.batch:
                for T in args.seq_len:
                    for H in args.hidden:
                        grid.append({"cell": cell, "dtype": dtype, "B": B, "T": T, "H": H})
            if args.generate:
                H = GENERATE_HIDDEN if GENERATE_HIDDEN in args.hidden else args.hidden[0]
                grid.append({"cell": cell, "dtype": dtype, "B": 1, "T": 1, "H": H,
                             "generate": args.generate})
    return grid


def run(args, torch, threads: int, time_interleaved) -> list[dict]:
    """Print the table (stdout; the setting on stderr) and return its rows."""
    print(f"bptt bench --inference: {args.layers} stacked layers, input size "
          f"{args.input_size or 'H'}, forward from a zero state; bptt no_grad() + eval() "
          f"against torch inference_mode() + eval(), BLAS threads {threads}, {args.repeat} "
          f"repeats, median ms (min-max); gen: {args.generate} calls of one step, B=1",
          file=sys.stderr)
    header = (f"{'cell':5} {'dtype':7} {'mode':4} {'B':>3} {'T':>3} {'H':>4} | {'bptt ms':>18} "
              f"{'torch ms':>18} | {'/torch':>6} {'min':>5}")
    print(header)
    print("-" * len(header))
    results = []
    for spec in rows(args):
        I = args.input_size or spec["H"]
        case = InferenceCase(spec["cell"], spec["B"], spec["T"], spec["H"], I, args.layers,
                             spec["dtype"], torch, spec.get("generate", 0))
        times = time_interleaved(case.steps, args.repeat)
        med = {k: statistics.median(v) for k, v in times.items()}
        low = {k: min(v) for k, v in times.items()}
        row = {**spec, "mode": "gen" if spec.get("generate") else "seq", "input_size": I,
               "layers": args.layers, "threads": threads, "ms": med, "ms_min": low,
               "ms_max": {k: max(v) for k, v in times.items()},
               "ratio_torch": med["bptt"] / med["torch"] if "torch" in med else None,
               "ratio_torch_min": low["bptt"] / low["torch"] if "torch" in low else None}
        results.append(row)

        def cell_ms(name, row=row):
            return format_ms(row, name)

        ratio = "-" if row["ratio_torch"] is None else f"{row['ratio_torch']:.2f}"
        ratio_min = "-" if row["ratio_torch_min"] is None else f"{row['ratio_torch_min']:.2f}"
        print(f"{row['cell']:5} {row['dtype']:7} {row['mode']:4} {row['B']:>3} {row['T']:>3} "
              f"{row['H']:>4} | {cell_ms('bptt')} {cell_ms('torch')} | {ratio:>6} "
              f"{ratio_min:>5}", flush=True)
    return results
