"""The reference the names defaults were compared with: a plain PyTorch LSTM on the same split.

    python examples/torch_names_baseline.py            # embedding 32 -> LSTM 1 x 128 -> linear
    python examples/torch_names_baseline.py 0 0        # one-hot input, as bptt's character model

Arguments: torch seed (0), embedding size (32; 0: one-hot input). Batch 32 (full batches only),
Adam 3e-3, the seeded split and the samples of `bptt train --builtin names` (end symbol first
and last, padding ignored); prints the validation loss (nats per symbol) and the seconds every
100 steps up to 2000, then the best. Needs torch.
"""

import sys
import time

import numpy as np
import torch

from bptt.text.data import read_texts
from bptt.text.lines import END, read_lines, split_lines, vocabulary

STEPS, BATCH, HIDDEN = 2000, 32, 128


def encode(lines, vocab, end):
    """(inputs, targets) per sample: END c1..cn and c1..cn END."""
    out = []
    for s in lines:
        ids = vocab.encode(s)
        out.append((np.concatenate([[end], ids]), np.concatenate([ids, [end]])))
    return out


def batch(items, end):
    """Padded (B, T) inputs and targets (-100 on padding)."""
    T = max(len(x) for x, _ in items)
    X = torch.full((len(items), T), end, dtype=torch.long)
    Y = torch.full((len(items), T), -100, dtype=torch.long)
    for b, (x, y) in enumerate(items):
        X[b, : len(x)] = torch.from_numpy(x)
        Y[b, : len(y)] = torch.from_numpy(y)
    return X, Y


class Model(torch.nn.Module):
    def __init__(self, V, emb_dim):
        super().__init__()
        self.V = V
        self.emb = torch.nn.Embedding(V, emb_dim) if emb_dim else None
        self.rnn = torch.nn.LSTM(emb_dim or V, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, V)

    def forward(self, X):
        inp = self.emb(X) if self.emb is not None else torch.nn.functional.one_hot(X, self.V)
        return self.head(self.rnn(inp.float())[0])


def main():
    torch.manual_seed(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    emb_dim = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    train, val = split_lines(read_lines(read_texts([], builtin="names")), 0.1, 0)
    vocab = vocabulary(train + val)
    V, end = vocab.size, int(vocab.encode(END)[0])
    tr, (VX, VY) = encode(train, vocab, end), batch(encode(val, vocab, end), end)
    model = Model(V, emb_dim)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng, step, start, best = np.random.default_rng(0), 0, time.time(), float("inf")
    while step < STEPS:
        order = rng.permutation(len(tr))
        for i in range(0, len(tr) - BATCH + 1, BATCH):
            X, Y = batch([tr[j] for j in order[i: i + BATCH]], end)
            loss = torch.nn.functional.cross_entropy(model(X).reshape(-1, V), Y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 100 == 0:
                with torch.no_grad():
                    v = torch.nn.functional.cross_entropy(model(VX).reshape(-1, V),
                                                          VY.reshape(-1)).item()
                best = min(best, v)
                print(step, round(v, 4), round(time.time() - start, 1), flush=True)
            if step >= STEPS:
                break
    print("best", round(best, 4))


if __name__ == "__main__":
    main()
