"""Train a small character-level RNN with the step-by-step API (bptt.stepwise) and Adam.

    python examples/stepwise_char_rnn.py [CORPUS.txt] [--steps 1000] [--chars 50000] [--seed 0]

Without a path it reads the corpus built into the package (bptt/corpus/tinyshakespeare.txt). It
takes a slice of the text, trains for a thousand steps (well under a minute on a laptop CPU) and
prints the mean cross-entropy, which falls from about ln(vocabulary) to below 2 nats per character,
then a short sample. Everything the course's notebook does by hand is here: one-hot inputs
(n_x, m, T_x), rnn_forward, the softmax head's gradient, rnn_backward, clipping, Adam.
"""

import argparse
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from bptt import stepwise as sw

HIDDEN = 64          # n_a
BATCH = 32           # m: sequences per step
SEQ_LEN = 25         # T_x: characters per sequence
LR = 0.01            # Adam's learning rate
CLIP = 5.0           # each gradient entry clipped to [-CLIP, CLIP], as the course does
LOG_EVERY = 100      # print the mean loss of the last LOG_EVERY steps


def read_corpus(path: str | None) -> str:
    """The text at ``path``, else the built-in corpus (else the repository's shared copy)."""
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            sys.exit(f"corpus: cannot read {path}: {err}")
    builtin = resources.files("bptt") / "corpus" / "tinyshakespeare.txt"
    if builtin.is_file():
        return builtin.read_text(encoding="utf-8")
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
    if shared.is_file():
        return shared.read_text(encoding="utf-8")
    sys.exit("no corpus: bptt/corpus/tinyshakespeare.txt is not installed; pass a text file path")


def one_hot(ids: np.ndarray, n: int) -> np.ndarray:
    """ids (m, T_x) of ints -> (n, m, T_x) one-hot columns."""
    out = np.zeros((n,) + ids.shape)
    np.put_along_axis(out, ids[None], 1.0, axis=0)
    return out


def init_params(rng, n_x: int, n_a: int, n_y: int) -> dict:
    """Small random weights, zero biases (the course's initialisation)."""
    return {"Wax": rng.standard_normal((n_a, n_x)) * 0.01,
            "Waa": rng.standard_normal((n_a, n_a)) * 0.01,
            "Wya": rng.standard_normal((n_y, n_a)) * 0.01,
            "ba": np.zeros((n_a, 1)), "by": np.zeros((n_y, 1))}


def train_step(params: dict, x: np.ndarray, targets: np.ndarray, a0: np.ndarray):
    """Forward, loss and all gradients for one batch. x: (n_x, m, T_x); targets: (n_y, m, T_x)."""
    m, T_x = x.shape[1], x.shape[2]
    a, y_pred, caches = sw.rnn_forward(x, a0, params)                 # (n_a, m, T_x), (n_y, m, T_x)
    loss = -np.sum(targets * np.log(y_pred + 1e-12)) / (m * T_x)      # mean nats per character
    dz = (y_pred - targets) / (m * T_x)                               # dL/d(Wya a + by)
    grads = sw.rnn_backward(np.einsum("ya,ymt->amt", params["Wya"], dz), caches)
    grads["dWya"] = np.einsum("ymt,amt->ya", dz, a)
    grads["dby"] = dz.sum(axis=(1, 2))[:, None]
    for g in grads.values():
        np.clip(g, -CLIP, CLIP, out=g)
    return loss, grads


def sample(params: dict, chars: list, rng, length: int = 120, start: int = 0) -> str:
    """Feed each sampled character back in, one rnn_cell_forward at a time."""
    n_x, n_a = len(chars), params["Waa"].shape[0]
    a, idx, out = np.zeros((n_a, 1)), start, []
    for _ in range(length):
        x = np.zeros((n_x, 1))
        x[idx] = 1
        a, y, _ = sw.rnn_cell_forward(x, a, params)
        idx = int(rng.choice(n_x, p=y[:, 0]))
        out.append(chars[idx])
    return "".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", help="a text file (default: the built-in corpus)")
    ap.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    ap.add_argument("--chars", type=int, default=50_000, help="length of the slice (default 50000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    text = read_corpus(args.corpus)[: args.chars]
    if len(text) <= SEQ_LEN + 1:
        sys.exit(f"corpus: expected more than {SEQ_LEN + 1} characters, got {len(text)}")
    chars = sorted(set(text))
    index = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([index[ch] for ch in text])
    n = len(chars)
    rng = np.random.default_rng(args.seed)
    params = init_params(rng, n, HIDDEN, n)
    v, s = sw.initialize_adam(params)
    a0 = np.zeros((HIDDEN, BATCH))
    print(f"{len(text)} characters, vocabulary {n} (ln {n} = {np.log(n):.2f} nats), "
          f"n_a={HIDDEN}, m={BATCH}, T_x={SEQ_LEN}")
    start, losses = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        offsets = rng.integers(0, len(ids) - SEQ_LEN - 1, size=BATCH)
        window = ids[offsets[:, None] + np.arange(SEQ_LEN + 1)]          # (m, T_x + 1)
        x, targets = one_hot(window[:, :-1], n), one_hot(window[:, 1:], n)
        loss, grads = train_step(params, x, targets, a0)
        sw.update_parameters_with_adam(params, grads, v, s, step, learning_rate=LR)
        losses.append(loss)
        if step % LOG_EVERY == 0 or step == 1:
            recent = np.mean(losses[-LOG_EVERY:]) if step > 1 else loss
            print(f"step {step:4d}  loss {recent:.3f}  ({time.perf_counter() - start:.1f} s)")
    print("sample:", repr(sample(params, chars, rng, start=int(ids[0]))))


if __name__ == "__main__":
    main()
