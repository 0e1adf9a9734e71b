"""``bptt bench``: the engine's training step against torch and a naive loop, side by side.

One training step = forward over T steps from a zero state + backward to dx and every weight
gradient (single layer, one direction), on the same weights and data for every implementation. The
implementations are timed interleaved, repeat after repeat, in one process, so drift and load hit
all alike; the table gives the median in ms with the spread (min-max) and the ratios. "GEMM ms"
times the engine step's matrix products alone (``bptt.tools.floor``): the bound NumPy's BLAS puts on
the step, to read the ratios against. Peak extra
memory is the high-water mark of the resident set during one step from cold, above what was
resident before it, measured for each implementation in a fresh child process whose allocator
returns every large block to the system (Linux /proc; "-" elsewhere).

    bptt bench                  # the default grid: 3 cells x B {1, 32} x H {64, 256, 512}
    bptt bench --cell lstm --hidden 256 --batch 32 --dtype float64 --repeat 20 --json out.json
    bptt bench --ragged         # variable lengths: packed vs the same batch padded vs torch packed
    bptt bench --long           # long sequences at batch 1: T=5000, B=1, H=16, input size 16
    bptt bench --inference      # forward only: no_grad() + eval() against torch inference_mode

With ``--ragged`` every batch has lengths drawn uniformly from [T/4, T] (seed 0, the same for
every implementation), and the rows compare the engine on the packed batch (``lengths=``), the
engine on the same batch fully padded (all T steps), and torch's packed path
(``pack_padded_sequence`` -> layer -> ``pad_packed_sequence(total_length=T)``); the valid column
is the fraction of the T x B steps the lengths cover.

``--long`` changes the defaults of the grid to one long sequence of a small layer, T=5000, B=1,
H=16, input size 16 (each still set by its own option): a case where the time loop's per-step
overhead, not the matrix products, decides the speed.

``--inference`` times the forward-only path instead (``bptt.tools.bench_inference``: stacked
layers, B {1, 10, 32} x T {35, 64} x H {200, 256, 512} by default, and generation one step at
a time); there ``--seq-len`` takes several values.
"""

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from ..nn.layers import GRU, LSTM, RNN
from . import bench_inference, floor, naive
from .table import format_ms

LAYERS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def _positive(text: str) -> int:
    """argparse type: an integer >= 1 (argparse reports the error with the option's name)."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive.__name__ = "positive integer"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cell",
        nargs="+",
        default=["lstm", "gru", "rnn"],
        type=str.lower,
        choices=["lstm", "gru", "rnn"],
        help="cell kinds (default: all three)",
    )
    p.add_argument(
        "--hidden", nargs="+", type=_positive, default=None,
        help="hidden sizes (default 64 256 512; with --long 16)",
    )
    p.add_argument("--batch", nargs="+", type=_positive, default=None,
                   help="batch sizes (default 1 32; with --long 1)")
    p.add_argument("--seq-len", nargs="+", type=_positive, default=None,
                   help="time steps T (default 64; with --long 5000; with --inference 35 64, "
                   "the only mode that takes several)")
    p.add_argument("--input-size", type=_positive, default=None,
                   help="input size (default 65; with --long 16)")
    p.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "float64"])
    p.add_argument("--repeat", type=_positive, default=7, help="timed repeats per implementation")
    p.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="threads for NumPy's BLAS and torch (default: the number of CPUs)",
    )
    p.add_argument("--no-naive", action="store_true", help="skip the naive loop")
    p.add_argument("--no-torch", action="store_true", help="skip torch even if it imports")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument(
        "--no-gemm", action="store_true", help="skip timing the step's matrix products alone"
    )
    p.add_argument(
        "--ragged",
        action="store_true",
        help="variable-length batches (lengths uniform in [T/4, T], seed 0): the engine packed "
        "against the same batch padded and torch packed",
    )
    p.add_argument(
        "--long",
        action="store_true",
        help="long sequences at batch 1: the defaults become T=5000, B=1, H=16, input size 16",
    )
    p.add_argument(
        "--inference",
        action="store_true",
        help="the forward-only path: no_grad() + eval() against torch inference_mode(), stacked "
        "layers, defaults B 1 10 32, T 35 64, H 200 256 512 (input size H)",
    )
    p.add_argument("--layers", type=_positive, default=2,
                   help="stacked layers with --inference (default 2)")
    p.add_argument("--generate", type=int, default=200,
                   help="with --inference: a row of N one-step calls per cell (B=1); 0: none")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


DEFAULTS = {"hidden": [64, 256, 512], "batch": [1, 32], "seq_len": 64, "input_size": 65}
LONG = {"hidden": [16], "batch": [1], "seq_len": 5000, "input_size": 16}


def resolve_sizes(args) -> None:
    """Fill the sizes not given on the command line: ``LONG`` with --long, the inference grid
    with --inference, else ``DEFAULTS``. Outside --inference ``seq_len`` becomes one integer
    (ValueError if several were given)."""
    if args.inference:
        defaults = {**bench_inference.DEFAULTS, "input_size": 0}  # 0: the input size is H
    else:
        defaults = {**(LONG if args.long else DEFAULTS)}
        defaults["seq_len"] = [defaults["seq_len"]]
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not args.inference:
        if len(args.seq_len) != 1:
            raise ValueError(f"--seq-len: expected one value (several only with --inference), "
                             f"got {args.seq_len}")
        args.seq_len = args.seq_len[0]


def _memory_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_extra_mib(step) -> float | None:
    """Peak resident memory above the current level while ``step()`` runs, in MiB (Linux only)."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the high-water mark VmHWM
    except OSError:
        return None
    before = _memory_kib("VmRSS")
    step()
    peak = _memory_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0) / 1024


class Case:
    """One configuration: the engine, naive and torch steps on the same weights and data."""

    def __init__(
        self, cell, B, H, T, I, dtype, torch=None, naive_loop=True, gemm=False, ragged=False
    ):
        self.cell, self.dtype, self.torch = cell, np.dtype(dtype), torch
        self.layer = LAYERS[cell](I, H, dtype=self.dtype, seed=0)
        rng = np.random.default_rng(1)
        self.x = rng.standard_normal((T, B, I)).astype(self.dtype)
        self.dout = rng.standard_normal((T, B, H)).astype(self.dtype)
        self.lengths = ragged_lengths(T, B) if ragged else None
        self.steps = {"bptt": self.engine_step}
        if ragged:
            self.steps["padded"] = self.padded_step
        if naive_loop and not ragged:
            self.steps["naive"] = self.naive_step
        if gemm and not ragged:
            self.steps["gemm"] = floor.gemm_step(cell, B, H, T, I, self.dtype)
        if torch is not None:
            self.module = self._torch_module(self.layer)
            self.xt = torch.from_numpy(self.x).requires_grad_()
            self.doutt = torch.from_numpy(self.dout)
            self.steps["torch"] = self.torch_step

    def _torch_module(self, layer):
        torch = self.torch
        tdtype = torch.float64 if self.dtype == np.float64 else torch.float32
        m = getattr(torch.nn, self.cell)(layer.input_size, layer.hidden_size, dtype=tdtype)
        m.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
        return m

    def engine_step(self):
        self.layer.forward(self.x, lengths=self.lengths)
        self.layer.backward(self.dout)

    def padded_step(self):
        self.layer.forward(self.x)
        self.layer.backward(self.dout)

    def naive_step(self):
        naive.STEPS[self.cell](self.layer.params, self.x, self.dout)

    def torch_step(self):
        self.module.zero_grad(set_to_none=True)
        self.xt.grad = None
        if self.lengths is None:
            out, _ = self.module(self.xt)
        else:
            rnn_utils = self.torch.nn.utils.rnn
            packed = rnn_utils.pack_padded_sequence(
                self.xt, self.torch.from_numpy(self.lengths), enforce_sorted=False
            )
            out, _ = rnn_utils.pad_packed_sequence(
                self.module(packed)[0], total_length=self.x.shape[0]
            )
        out.backward(self.doutt)

    def memory(self):
        """Peak extra MiB of one step per implementation; call it on a case that has not run yet
        (as memory_in_child does), so that every buffer is allocated inside the measured step."""
        return {name: peak_extra_mib(step) for name, step in self.steps.items()}


def ragged_lengths(T: int, B: int) -> np.ndarray:
    """The lengths of a ``--ragged`` batch: uniform in [T/4, T] (at least 1), seed 0."""
    return np.random.default_rng(0).integers(max(T // 4, 1), T + 1, B)


def memory_in_child(spec: dict) -> dict:
    """Case(**spec).memory() in a fresh interpreter, with glibc told to map every block over
    64 KiB on its own (so freed buffers leave the resident set and each step starts cold). A
    throwaway case runs each implementation once first, so that one-time library initialisation
    (thread pools, kernel caches) is not counted as the memory of a step."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    code = "import json, sys; from bptt.tools.bench import _child; _child(json.loads(sys.argv[1]))"
    run = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if run.returncode != 0:
        return {}
    return json.loads(run.stdout.strip().splitlines()[-1])


def _child(spec: dict) -> None:
    torch = None
    if spec.pop("torch"):
        import torch

        torch.set_num_threads(spec["threads"])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=spec.pop("threads"), user_api="blas"):
        warm = Case(torch=torch, **spec)  # first calls initialise each library's own state
        for step in warm.steps.values():
            step()
        del warm, step
        print(json.dumps(Case(torch=torch, **spec).memory()))


def time_interleaved(steps: dict, repeat: int, settle: float = 0.2) -> dict:
    """ms per call of each step function: repeat after repeat, each implementation in turn.

    Before each timed call, the same implementation runs untimed for ``settle`` seconds (at least
    once). OpenBLAS's worker threads keep spinning for about 0.1 s after a call (measured here:
    torch's LSTM step at B=32, H=256 took 44-54 ms right after a NumPy step, 24 ms from 0.1-0.15 s
    on), and torch's OpenMP threads spin too; the pause keeps one library's idle spinning out of
    the other's timed call.
    """
    times = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            end = time.perf_counter() + settle
            step()
            while time.perf_counter() < end:
                step()
            t0 = time.perf_counter()
            step()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def _fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def run(args) -> int:
    try:
        resolve_sizes(args)
    except ValueError as err:
        print(f"bptt bench: {err}", file=sys.stderr)
        return 2
    threads = args.threads or os.cpu_count() or 1
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=threads, user_api="blas")
    if torch is not None:
        torch.set_num_threads(threads)
    torch_info = "not installed"
    if torch is not None:
        torch_info = f"{torch.__version__} threads {torch.get_num_threads()}"
    if args.inference:
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; NumPy {np.__version__}; "
              f"torch {torch_info}", file=sys.stderr)
        results = bench_inference.run(args, torch, threads, time_interleaved)
        limiter.restore_original_limits()
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        return 0
    print(
        f"bptt bench: training step = forward over T={args.seq_len} from a zero state + backward "
        f"to dx and all weight gradients, input size {args.input_size}, 1 layer",
        file=sys.stderr,
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; NumPy {np.__version__} "
        f"BLAS threads {threads}; torch {torch_info}; "
        f"{args.repeat} repeats, median ms (min-max)",
        file=sys.stderr,
    )
    # with --ragged the third implementation is the engine on the padded batch, and the
    # fourth column the fraction of valid steps instead of the GEMMs alone
    third = "padded" if args.ragged else "naive"
    fourth = "valid" if args.ragged else "GEMM ms"
    if args.ragged:
        print(
            f"ragged batches: lengths uniform in [{max(args.seq_len // 4, 1)}, {args.seq_len}] "
            "(seed 0); bptt = the engine with lengths=, padded = the engine on all T steps, "
            "torch = pack_padded_sequence -> layer -> pad_packed_sequence",
            file=sys.stderr,
        )
    header = (
        f"{'cell':5} {'dtype':7} {'B':>3} {'H':>4} | {'bptt ms':>18} {'torch ms':>18} "
        f"{third + ' ms':>18} {fourth:>18} | {'/torch':>6} {'/' + third:>7} | "
        f"{'MiB bptt':>8} {'torch':>6} {third:>6}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for dtype in args.dtype:
        for cell in (c.upper() for c in args.cell):
            for B in args.batch:
                for H in args.hidden:
                    case = Case(
                        cell,
                        B,
                        H,
                        args.seq_len,
                        args.input_size,
                        dtype,
                        torch,
                        not args.no_naive,
                        not args.no_gemm,
                        args.ragged,
                    )
                    times = time_interleaved(case.steps, args.repeat)
                    memory = (
                        {}
                        if args.no_memory
                        else memory_in_child(
                            {
                                "cell": cell,
                                "B": B,
                                "H": H,
                                "T": args.seq_len,
                                "I": args.input_size,
                                "dtype": dtype,
                                "naive_loop": not args.no_naive,
                                "ragged": args.ragged,
                                "threads": threads,
                                "torch": torch is not None,
                            }
                        )
                    )
                    med = {k: statistics.median(v) for k, v in times.items()}
                    row = {
                        "cell": cell,
                        "dtype": dtype,
                        "batch": B,
                        "hidden": H,
                        "seq_len": args.seq_len,
                        "input_size": args.input_size,
                        "threads": threads,
                        "ms": med,
                        "ms_min": {k: min(v) for k, v in times.items()},
                        "ms_max": {k: max(v) for k, v in times.items()},
                        "peak_mib": memory,
                    }
                    row["ratio_torch"] = med["bptt"] / med["torch"] if "torch" in med else None
                    row[f"ratio_{third}"] = med["bptt"] / med[third] if third in med else None
                    if args.ragged:
                        row["lengths"] = case.lengths.tolist()
                        row["valid"] = float(case.lengths.sum()) / (args.seq_len * B)
                    results.append(row)

                    def cell_ms(name, row=row):
                        return format_ms(row, name)

                    last = f"{row['valid']:>18.2f}" if args.ragged else cell_ms("gemm")
                    print(
                        f"{cell:5} {dtype:7} {B:>3} {H:>4} | {cell_ms('bptt')} {cell_ms('torch')} "
                        f"{cell_ms(third)} {last} | {_fmt(row['ratio_torch']):>6} "
                        f"{_fmt(row[f'ratio_{third}']):>7} | "
                        f"{_fmt(memory.get('bptt'), '.1f'):>8} "
                        f"{_fmt(memory.get('torch'), '.1f'):>6} "
                        f"{_fmt(memory.get(third), '.1f'):>6}",
                        flush=True,
                    )
                    del case
    limiter.restore_original_limits()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bptt bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
