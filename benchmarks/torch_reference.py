"""The PyTorch reference of issue 25: a 2 x 256 LSTM character model trained as ``bptt train``
trains its default, timed the same way, with the validation loss at given minutes of training.

    python benchmarks/torch_reference.py                         # marks 1 2 5 7 10, 10 minutes
    python benchmarks/torch_reference.py --marks 1 2 --minutes 2 --json torch.json

The model: one-hot input (V symbols) -> ``nn.LSTM(V, 256, num_layers=2, dropout=0.2)`` ->
dropout 0.2 -> ``nn.Linear(256, V)``; cross-entropy in nats per character. Training: Adam at
2e-3, the global gradient norm clipped to 5, T=64 characters of B=32 contiguous streams of the
first 90% of the corpus (bptt's own ``Batches``), the state carried from chunk to chunk and reset
to zeros when the epoch wraps; the rate multiplied by 0.97 every 100 steps from step 2000 (the
rule of ``bptt.nn.schedule.StepSchedule``); 2 threads. Validation: the whole last 10% (bptt's
``split``, so the held-out characters are the ones ``bptt train`` validates on) in 32 streams,
the state carried across 64-character chunks (bptt's ``eval_chunks``), in eval mode.

The clock: the training clock is the sum of the training steps' own times (one-hot input,
forward, loss, backward, clipping, the optimizer step), which is what bptt's ``chars_per_sec``
column divides by; validation, slicing batches and printing are outside it. When the clock
crosses a mark, the model is validated once (several marks crossed by one step share it). The
run stops when the clock reaches ``--minutes`` (or after ``--max-steps``), validating at the end.
"""

import argparse
import json
import math
import platform
import sys
import time

import numpy as np
import torch

from bptt.nn.schedule import StepSchedule
from bptt.text.data import Batches, Corpus, Vocab, builtin_path, eval_chunks, split


class CharLSTM(torch.nn.Module):
    """One-hot characters -> stacked LSTM (dropout between layers) -> dropout -> linear head."""

    def __init__(self, vocab_size: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = torch.nn.LSTM(vocab_size, hidden, num_layers=layers, dropout=dropout)
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(hidden, vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        """ids (T, B) int64 -> logits (T*B, V), the final (h, c)."""
        x = torch.nn.functional.one_hot(ids, self.vocab_size).float()   # (T, B, V)
        out, state = self.rnn(x, state)                                  # (T, B, H)
        logits = self.head(self.drop(out))                               # (T, B, V)
        return logits.reshape(-1, self.vocab_size), state


def load_data(corpus: list[str], val_fraction: float):
    """(vocab, train ids, validation ids), read and split by bptt's own functions."""
    data = Corpus(corpus, files=None if corpus else [builtin_path()])
    vocab = Vocab(data.chars)
    return (vocab, *split(data.encode(vocab), val_fraction))


def evaluate(model: CharLSTM, val_ids: np.ndarray, batch: int, seq_len: int) -> float:
    """Mean loss per character over all of ``val_ids``, the state carried across chunks."""
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for x, y in eval_chunks(val_ids, batch, seq_len):
            logits, state = model(torch.from_numpy(x), state)
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y).reshape(-1))
            total, count = total + loss.item() * y.size, count + y.size
    model.train()
    return total / count


def run(args: argparse.Namespace, log=print) -> dict:
    """Train as described in the module docstring; returns the marks' results and the speed."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vocab, train_ids, val_ids = load_data(args.corpus, args.val_fraction)
    batches = Batches(train_ids, args.batch, args.seq_len)
    model = CharLSTM(vocab.size, args.hidden, args.layers, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = StepSchedule(args.lr, args.lr_decay, args.lr_decay_every, args.lr_decay_start)
    marks = sorted(args.marks)
    budget = args.minutes * 60
    results, clock, step, position, state = [], 0.0, 0, 0, None
    wall0 = time.perf_counter()
    model.train()
    while clock < budget and (args.max_steps is None or step < args.max_steps):
        if position == 0:
            state = None                                   # a new epoch: state from zeros
        x, y = batches.get(position)
        x, y = torch.from_numpy(x), torch.from_numpy(y).reshape(-1)
        t0 = time.perf_counter()
        schedule.apply(opt, step)
        logits, state = model(x, state)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        state = tuple(s.detach() for s in state)
        clock += time.perf_counter() - t0
        step, position = step + 1, batches.next_position(position)
        crossed = [m for m in marks if m * 60 <= clock and m not in {r["mark"] for r in results}]
        done = clock >= budget or (args.max_steps is not None and step >= args.max_steps)
        if crossed or done:
            val = evaluate(model, val_ids, args.batch, args.seq_len)
            for m in crossed + ([None] if done else []):
                results.append({"mark": m, "val_loss": val, "step": step, "clock_s": clock,
                                "train_loss": loss.item()})
            log(f"step {step:5d}  training clock {clock:7.1f} s  val {val:.4f}"
                + (f"  (mark {', '.join(f'{m:g}' for m in crossed)} min)" if crossed else ""))
    chars = step * args.batch * args.seq_len
    return {"marks": marks, "minutes": args.minutes, "results": results, "steps": step,
            "clock_s": clock, "wall_s": time.perf_counter() - wall0,
            "chars_per_sec": chars / clock if clock > 0 else 0.0,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "command": " ".join(sys.argv)}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="*", help="text files (default: bptt's built-in corpus)")
    ap.add_argument("--marks", type=float, nargs="+", default=[1, 2, 5, 7, 10],
                    help="minutes of training clock at which to validate (default 1 2 5 7 10)")
    ap.add_argument("--minutes", type=float, default=10, help="training clock budget (10)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-decay", type=float, default=0.97)
    ap.add_argument("--lr-decay-every", type=int, default=100)
    ap.add_argument("--lr-decay-start", type=int, default=2000)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results to this file")
    return ap


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    if not args.marks or any(not math.isfinite(m) or m <= 0 for m in args.marks):
        parser().error(f"--marks: expected minutes > 0, got {args.marks}")
    out = run(args)
    print(f"{out['steps']} steps, training clock {out['clock_s']:.1f} s (wall {out['wall_s']:.1f}"
          f" s with validation), {out['chars_per_sec']:,.0f} chars/s over the training steps")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
