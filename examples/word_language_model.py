"""A word-level LSTM language model from bptt's parts, on the built-in Tiny Shakespeare.

    python examples/word_language_model.py                 # 6 epochs, prints validation perplexity
    python examples/word_language_model.py --epochs 1 --max-batches 20     # a quick look

The model is the classic one: an embedding, dropout, a stacked LSTM, dropout, and a linear
decoder whose weight is the embedding's (tied: one array, one gradient). Training is truncated
backpropagation through time over contiguous streams, plain SGD with a large rate, the gradient
norm clipped, and the rate divided by 4 whenever the validation loss stops improving. bptt has
no autograd: the model writes its backward, the chain rule read from the output back to the
input, each part's backward called in the reverse order of its forward.

Words: the text lowercased, split into runs of letters and apostrophes and single punctuation
marks, with an end-of-line token; words seen fewer than ``--min-count`` times in the training
part become ``<unk>``. The text is split 80/10/10 (train, validation, test) by lines.
"""

import argparse
import math
import re
import time
from collections import Counter

import numpy as np

import bptt
from bptt.text.data import builtin_path

EOS, UNK = "<eos>", "<unk>"


def tokenize(lines: list[str]) -> list[str]:
    """The words of ``lines``, each line ended by EOS."""
    out = []
    for line in lines:
        out += re.findall(r"[a-z']+|[.,;:!?-]", line.lower()) + [EOS]
    return out


def corpus(min_count: int = 2) -> tuple[dict, list]:
    """(splits of ids by name, the vocabulary as a list of words)."""
    with open(builtin_path(), encoding="utf-8") as f:
        lines = f.read().split("\n")
    n = len(lines)
    parts = {"train": lines[: int(0.8 * n)], "valid": lines[int(0.8 * n): int(0.9 * n)],
             "test": lines[int(0.9 * n):]}
    words = {name: tokenize(part) for name, part in parts.items()}
    counts = Counter(words["train"])
    vocab = [UNK] + sorted(w for w, c in counts.items() if c >= min_count and w != UNK)
    index = {w: i for i, w in enumerate(vocab)}
    ids = {name: np.array([index.get(w, 0) for w in ws], dtype=np.int64)
           for name, ws in words.items()}
    return ids, vocab


def batchify(ids: np.ndarray, batch: int) -> np.ndarray:
    """(N, batch): ``batch`` contiguous streams side by side (the tail that does not fill a
    row is dropped)."""
    n = len(ids) // batch
    return ids[: n * batch].reshape(batch, n).T.copy()


def chunks(source: np.ndarray, bptt_len: int):
    """(inputs (T, B), targets (T*B,)) for each chunk of ``bptt_len`` steps: the targets are
    the inputs shifted by one step."""
    for i in range(0, len(source) - 1, bptt_len):
        T = min(bptt_len, len(source) - 1 - i)
        yield source[i: i + T], source[i + 1: i + 1 + T].reshape(-1)


class WordLM(bptt.Module):
    """Embedding(V, E) -> Dropout -> LSTM(E, H, L) -> Dropout -> Linear(H, V), decoder tied."""

    def __init__(self, vocab_size: int, size: int = 200, layers: int = 2, dropout: float = 0.2,
                 seed: int = 0):
        super().__init__()
        self.drop = bptt.Dropout(dropout, seed=seed)
        self.encoder = bptt.Embedding(vocab_size, size, seed=seed + 1)
        self.rnn = bptt.LSTM(size, size, layers, dropout=dropout, seed=seed + 2)
        self.decoder = bptt.Linear(size, vocab_size, seed=seed + 3)
        self.decoder.weight = self.encoder.weight        # tying: one array, one .grad
        rng = np.random.default_rng(seed)                # the classic init: U(-0.1, 0.1), 0
        self.encoder.weight[...] = rng.uniform(-0.1, 0.1, self.encoder.weight.shape)
        self.decoder.bias[...] = 0

    def forward(self, ids, state=None):
        emb = self.drop(self.encoder(ids))               # (T, B, E); emb is kept until backward
        out, state = self.rnn(emb, state)                # (T, B, H)
        logits = self.decoder(self.drop(out))            # (T, B, V)
        return logits.reshape(-1, logits.shape[-1]), state

    def backward(self, dlogits, shape):
        """The chain rule, last part first: decoder, dropout (its second call: the output's
        mask), LSTM, dropout (its first call: the embedding's mask), encoder."""
        dout = self.drop.backward(self.decoder.backward(dlogits.reshape(*shape, -1)))
        demb, _ = self.rnn.backward(dout)                # truncated BPTT: no gradient into state
        self.encoder.backward(self.drop.backward(demb))


def evaluate(model: WordLM, source: np.ndarray, bptt_len: int) -> float:
    """Mean cross-entropy (nats per word) over ``source``, the state carried along."""
    model.eval()
    total, count, state = 0.0, 0, None
    with bptt.no_grad():
        for x, y in chunks(source, bptt_len):
            logits, state = model(x, state)
            total += bptt.cross_entropy(logits, y)[0] * len(y)
            count += len(y)
    return total / count


def train_epoch(model, opt, crit, source, bptt_len: int, clip: float, max_batches=None):
    """One pass over ``source``; returns (mean training loss, seconds)."""
    model.train()
    start, losses, state = time.perf_counter(), [], None
    for i, (x, y) in enumerate(chunks(source, bptt_len)):
        if max_batches is not None and i >= max_batches:
            break
        logits, state = model(x, state)
        loss = crit(logits, y)
        opt.zero_grad()
        model.backward(crit.backward(), x.shape)
        bptt.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss)
    return float(np.mean(losses)), time.perf_counter() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=20.0)
    ap.add_argument("--clip", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--bptt", type=int, default=35)
    ap.add_argument("--size", type=int, default=200, help="embedding = hidden size (tied)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-batches", type=int, default=None, help="per epoch (a quick look)")
    args = ap.parse_args(argv)

    ids, vocab = corpus(args.min_count)
    train, valid = batchify(ids["train"], args.batch), batchify(ids["valid"], 10)
    print(f"{len(vocab):,} words in the vocabulary; {len(ids['train']):,} training, "
          f"{len(ids['valid']):,} validation words")
    model = WordLM(len(vocab), args.size, args.layers, args.dropout, args.seed)
    opt = bptt.SGD(model.parameters(), lr=args.lr)
    plateau = bptt.ReduceLROnPlateau(opt, factor=0.25, patience=0)
    crit = bptt.CrossEntropyLoss()
    print("epoch  train ppl  valid ppl      lr   seconds")
    for epoch in range(1, args.epochs + 1):
        train_loss, seconds = train_epoch(model, opt, crit, train, args.bptt, args.clip,
                                          args.max_batches)
        val = evaluate(model, valid, args.bptt)
        print(f"{epoch:5d} {math.exp(train_loss):10.1f} {math.exp(val):10.1f} "
              f"{opt.param_groups[0]['lr']:7.3g} {seconds:9.1f}", flush=True)
        plateau.step(val)


if __name__ == "__main__":
    main()
