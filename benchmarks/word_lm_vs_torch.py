"""examples/word_language_model.py beside the same model in PyTorch, on the same data, from the
same initial weights, with the same settings (needs torch, the test extra).

    python benchmarks/word_lm_vs_torch.py                    # 6 epochs each, then step times
    python benchmarks/word_lm_vs_torch.py --epochs 1 --max-batches 20

Prints, per epoch, the validation perplexity and the training seconds of each (the two runs
differ only in their dropout masks, which come from different generators), then the training
step time of both measured alternately (``--rounds`` rounds of ``--steps`` steps each, dropout
as in training) and their ratio, and the evaluation time of the validation split.
"""

import argparse
import importlib.util
import math
import pathlib
import time

import numpy as np
import torch

import bptt

HERE = pathlib.Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("wlm", HERE.parent / "examples" /
                                              "word_language_model.py")
wlm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wlm)


class TorchWordLM(torch.nn.Module):
    def __init__(self, vocab_size, size, layers, dropout):
        super().__init__()
        self.drop = torch.nn.Dropout(dropout)
        self.encoder = torch.nn.Embedding(vocab_size, size)
        self.rnn = torch.nn.LSTM(size, size, layers, dropout=dropout)
        self.decoder = torch.nn.Linear(size, vocab_size)
        self.decoder.weight = self.encoder.weight

    def forward(self, ids, state=None):
        out, state = self.rnn(self.drop(self.encoder(ids)), state)
        logits = self.decoder(self.drop(out))
        return logits.reshape(-1, logits.shape[-1]), state


def torch_epoch(model, opt, source, bptt_len, clip, max_batches=None):
    model.train()
    start, losses, state = time.perf_counter(), [], None
    crit = torch.nn.CrossEntropyLoss()
    for i, (x, y) in enumerate(wlm.chunks(source, bptt_len)):
        if max_batches is not None and i >= max_batches:
            break
        logits, state = model(torch.as_tensor(x), state)
        state = tuple(s.detach() for s in state)
        loss = crit(logits, torch.as_tensor(y))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    return float(np.mean(losses)), time.perf_counter() - start


def torch_evaluate(model, source, bptt_len):
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.inference_mode():
        for x, y in wlm.chunks(source, bptt_len):
            logits, state = model(torch.as_tensor(x), state)
            total += torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)).item() * len(y)
            count += len(y)
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--max-batches", type=int, default=None)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lr, clip, B, T, size, layers, p = 20.0, 0.25, 20, 35, 200, 2, 0.2
    ids, vocab = wlm.corpus(2)
    train, valid = wlm.batchify(ids["train"], B), wlm.batchify(ids["valid"], 10)
    model = wlm.WordLM(len(vocab), size, layers, p, seed=0)
    ref = TorchWordLM(len(vocab), size, layers, p)
    ref.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    opt, topt = bptt.SGD(model.parameters(), lr=lr), torch.optim.SGD(ref.parameters(), lr=lr)
    plateau = bptt.ReduceLROnPlateau(opt, factor=0.25, patience=0)
    tplateau = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.25, patience=0)
    crit = bptt.CrossEntropyLoss()
    print(f"vocabulary {len(vocab):,}; {len(ids['train']):,} training words; "
          f"torch {torch.__version__}, {args.threads} threads")
    print("epoch | bptt valid ppl  train s | torch valid ppl  train s")
    for epoch in range(1, args.epochs + 1):
        _, s = wlm.train_epoch(model, opt, crit, train, T, clip, args.max_batches)
        val = wlm.evaluate(model, valid, T)
        _, ts = torch_epoch(ref, topt, train, T, clip, args.max_batches)
        tval = torch_evaluate(ref, valid, T)
        plateau.step(val)
        tplateau.step(tval)
        print(f"{epoch:5d} | {math.exp(val):14.1f} {s:8.1f} | {math.exp(tval):15.1f} {ts:8.1f}",
              flush=True)

    bt, tt, be, te = [], [], [], []
    for _ in range(args.rounds):       # alternately, so that both see the same machine
        bt.append(wlm.train_epoch(model, opt, crit, train, T, clip, args.steps)[1] / args.steps)
        tt.append(torch_epoch(ref, topt, train, T, clip, args.steps)[1] / args.steps)
        start = time.perf_counter()
        wlm.evaluate(model, valid, T)
        be.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch_evaluate(ref, valid, T)
        te.append(time.perf_counter() - start)
    b, t = float(np.median(bt)), float(np.median(tt))
    print(f"training step (B={B}, T={T}), median of {args.rounds} rounds of {args.steps}: "
          f"bptt {1e3 * b:.1f} ms, torch {1e3 * t:.1f} ms, ratio {b / t:.2f}")
    b, t = float(np.median(be)), float(np.median(te))
    print(f"evaluation of the validation split: bptt {b:.2f} s, torch {t:.2f} s, "
          f"ratio {b / t:.2f}")


if __name__ == "__main__":
    main()
