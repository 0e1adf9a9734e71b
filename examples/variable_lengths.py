"""Train a classifier on sequences of different lengths with ``lengths=`` (torch's packed meaning).

    python examples/variable_lengths.py [--steps 400] [--seed 0]

Each sequence is a run of +1/-1 values (with a little noise), 4 to 24 steps long, padded to 24
with random +1/-1 junk; its class is whether its own values sum to more than zero. A
bidirectional GRU reads the batch with ``lengths=``, so each sequence's final states are taken at
its own last step (forward) and first step (reverse), and the padding is never read; a linear
layer on the two final states gives the class. After training it prints the accuracy on fresh
sequences, and the accuracy of the same model run without ``lengths=``, which reads the junk
as if it were data. Takes a few seconds on a laptop CPU.
"""

import argparse

import numpy as np

import bptt

T = 24               # padded length
MIN_LEN = 4          # shortest sequence
HIDDEN = 16
BATCH = 32
LR = 1e-2            # Adam's learning rate
CLIP = 5.0           # global gradient norm


def make_batch(rng: np.random.Generator, B: int):
    """x (T, B, 1), lengths (B,), labels (B,): 1 when the valid values sum to more than 0."""
    lengths = rng.integers(MIN_LEN, T + 1, B)
    signs = rng.choice([-1.0, 1.0], size=(T, B))                    # the padding is junk too
    valid = np.arange(T)[:, None] < lengths[None, :]                 # (T, B)
    labels = ((signs * valid).sum(axis=0) > 0).astype(np.int64)
    x = signs + 0.1 * rng.standard_normal((T, B))
    return x[:, :, None], lengths, labels


class Classifier(bptt.Module):
    """A bidirectional GRU and a linear layer on its two final states."""

    def __init__(self, seed: int):
        super().__init__()
        self.gru = bptt.GRU(1, HIDDEN, bidirectional=True, seed=seed)
        self.head = bptt.Linear(2 * HIDDEN, 2, seed=seed + 1)

    def logits(self, x, lengths):
        _, h = self.gru(x, lengths=lengths)           # h (2, B, H): forward, reverse direction
        return self.head(np.concatenate([h[0], h[1]], axis=1))      # (B, 2)

    def backward(self, dlogits):
        dfeatures = self.head.backward(dlogits)                     # (B, 2H)
        dh = np.stack([dfeatures[:, :HIDDEN], dfeatures[:, HIDDEN:]])
        # the loss reads only the final states: no gradient into the outputs (dout None)
        self.gru.backward(None, dh)


def accuracy(model, rng, use_lengths: bool, batches: int = 20) -> float:
    right = total = 0
    for _ in range(batches):
        x, lengths, labels = make_batch(rng, BATCH)
        pred = model.logits(x, lengths if use_lengths else None).argmax(axis=1)
        right += int((pred == labels).sum())
        total += len(labels)
    return right / total


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    model = Classifier(args.seed)
    opt = bptt.Adam(model.parameters(), lr=LR)
    first = last = None
    for step in range(1, args.steps + 1):
        x, lengths, labels = make_batch(rng, BATCH)
        loss, cache = bptt.cross_entropy(model.logits(x, lengths), labels)
        opt.zero_grad()       # backward adds into .grad (torch's rule): this batch's only
        model.backward(bptt.cross_entropy_backward(1.0, cache))
        bptt.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        first = loss if first is None else first
        last = loss if last is None else 0.9 * last + 0.1 * loss   # smoothed
        if step % 100 == 0 or step == args.steps:
            print(f"step {step:4d}  loss {last:.3f}")
    test_rng = np.random.default_rng(args.seed + 1000)
    with_lengths = accuracy(model, test_rng, True)
    test_rng = np.random.default_rng(args.seed + 1000)   # the same test sequences
    without = accuracy(model, test_rng, False)
    print(f"accuracy with lengths= {with_lengths:.3f}; the same model reading the padding "
          f"{without:.3f}")
    return {"first_loss": first, "loss": last, "accuracy": with_lengths, "padded": without}


if __name__ == "__main__":
    main()
