"""A plain bigram model on a lines corpus, for scale: the validation loss `bptt train --lines`
would have to beat. Same split as the training run (seeded shuffle), same symbols (the characters
plus the end symbol, which also starts every sample), same loss (mean nats per predicted symbol).

    python examples/bigram_baseline.py                      # the built-in names corpus, seed 0
    python examples/bigram_baseline.py my_words.txt --seed 1 --val-fraction 0.2

P(next | previous) = (count + alpha) / (row count + alpha * V), counted on the training lines.
"""

import argparse

import numpy as np

from bptt.text.data import read_texts
from bptt.text.lines import END, read_lines, split_lines, vocabulary


def pairs(lines, vocab):
    """(previous, next) id pairs of every sample: END c1, c1 c2, ..., cn END."""
    end = vocab.encode(END)
    ids = [np.concatenate([end, vocab.encode(s), end]) for s in lines]
    return np.concatenate([i[:-1] for i in ids]), np.concatenate([i[1:] for i in ids])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpus", nargs="*", help="text files, one sample per line (none: names)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    args = p.parse_args()
    texts = read_texts(args.corpus, builtin="" if args.corpus else "names")
    train, val = split_lines(read_lines(texts), args.val_fraction, args.seed)
    vocab = vocabulary(train + val)
    V = vocab.size
    counts = np.zeros((V, V))
    np.add.at(counts, pairs(train, vocab), 1)
    prev, nxt = pairs(val, vocab)
    print(f"{len(train)} training lines, {len(val)} held out, {V} symbols, "
          f"{len(nxt)} predicted symbols in validation")
    for alpha in (1.0, 0.1, 0.01):
        probs = (counts + alpha) / (counts.sum(axis=1, keepdims=True) + alpha * V)
        loss = -np.mean(np.log(probs[prev, nxt]))
        print(f"bigram, add-{alpha:g} smoothing: validation loss {loss:.4f} nats per symbol")


if __name__ == "__main__":
    main()
