"""What dropout costs: forward + backward of a stacked layer without dropout, with dropout=p,
with recurrent_dropout=p and with both, timed alternately in one process (so load hits all
alike); median and min in ms.

    python benchmarks/dropout_cost.py                       # 2 x 256 LSTM, B=32, T=64, I=65
    python benchmarks/dropout_cost.py --base /tmp/old       # also an older bptt/ (in /tmp/old/bptt)
    git archive i11 bptt | tar -x -C /tmp/old              # (one way to get one)

``--base`` adds that package's layer without dropout to the rotation: the no-dropout path
before and after a change.
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

import bptt


def load_base(folder: str):
    """The ``bptt`` package in ``folder``, imported under the name ``bptt_base``."""
    init = Path(folder) / "bptt" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "bptt_base", init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["bptt_base"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="LSTM", choices=["RNN", "LSTM", "GRU"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--input", type=int, default=65)
    ap.add_argument("--p", type=float, default=0.2)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--base", help="a folder holding another bptt/ package to compare")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.steps, a.batch, a.input)).astype(np.float32)
    dout = rng.standard_normal((a.steps, a.batch, a.hidden)).astype(np.float32)

    def make(package, **kw):
        return getattr(package, a.kind)(a.input, a.hidden, num_layers=a.layers, seed=0, **kw)

    layers = {}
    if a.base:
        layers["base, no dropout"] = make(load_base(a.base))
    layers["no dropout"] = make(bptt)
    layers[f"dropout {a.p}"] = make(bptt, dropout=a.p)
    layers[f"recurrent_dropout {a.p}"] = make(bptt, recurrent_dropout=a.p)
    layers["both"] = make(bptt, dropout=a.p, recurrent_dropout=a.p)
    times = {name: [] for name in layers}
    for r in range(a.rounds + 2):  # the first two rounds warm up
        for name, layer in layers.items():
            t0 = time.perf_counter()
            layer.forward(x)
            layer.backward(dout)
            if r >= 2:
                times[name].append(1e3 * (time.perf_counter() - t0))
    print(f"{a.kind} {a.layers}x{a.hidden} B={a.batch} T={a.steps} I={a.input} float32, "
          f"{a.rounds} rounds")
    for name, t in times.items():
        print(f"  {name:26s} median {np.median(t):7.1f} ms   min {np.min(t):7.1f} ms")


if __name__ == "__main__":
    main()
